"""The ``anyglm`` command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.cli import main


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANYGLM_BACKEND", "ANYGLM_STRICT_PLUGINS", "ANYGLM_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("anyglm: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- train -----------------------------------------------------------------------------------------


def test_train_digits_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["train", "--dataset", "digits", "--json", "--epochs", "5"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "softmax"
    assert result["backend"] == "numpy"
    assert result["epochs"] == 5
    assert result["n_train"] == 1438 and result["n_test"] == 359
    assert 0.8 < result["test_accuracy"] <= 1.0
    assert 0.8 < result["train_accuracy"] <= 1.0
    assert result["final_train_loss"] > 0


def test_train_regression_text_output_and_saved_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "reg.anyglm"
    code, out, err = run_cli(
        ["train", "--dataset", "diabetes", "--epochs", "3", "--out", str(path)], capsys
    )
    assert code == 0, err
    keys = [line.split()[0] for line in out.strip().splitlines()]
    assert {"model", "test_r2", "train_r2", "saved_to"} <= set(keys)
    assert path.exists()
    assert anyglm.load(path).n_features_in_ == 10


def test_train_from_npz_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    path = tmp_path / "data.npz"
    np.savez(path, X=X, y=y)
    code, out, err = run_cli(
        ["train", "--data", str(path), "--model", "logistic", "--json", "--epochs", "20"],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "logistic" and result["n_test"] == 10
    assert result["train_accuracy"] > 0.8


# -- listings --------------------------------------------------------------------------------------


def test_backends_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["backends"], capsys)
    assert code == 0
    table = out.split("\n\n")[0]  # a note on cut cells may follow a blank line
    names = [line.split()[0] for line in table.strip().splitlines()[1:]]
    assert names == sorted(b["name"] for b in anyglm.list_backends())
    assert {"numpy", "array_api_strict", "cupy"} <= set(names)
    assert out.splitlines()[0].split()[:2] == ["name", "available"]


def test_models_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["models"], capsys)
    assert code == 0
    rows = out.strip().splitlines()[1:]
    names = [r.split()[0] for r in rows]
    # Installed third-party models (the docs' examples in CI) may join the built-ins.
    assert names == sorted(names)
    assert {"linear", "logistic", "softmax"} <= set(names)
    assert "classification" in rows[names.index("softmax")]


def test_datasets_listing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(["datasets"], capsys)
    assert code == 0
    names = [line.split()[0] for line in out.strip().splitlines()[1:]]
    assert names == list(anyglm.datasets.DATASETS)
    assert {"digits", "breast_cancer", "diabetes", "xor", "all-positive"} == set(names)


# -- bad input -------------------------------------------------------------------------------------


def test_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["train", "--dataset", "digits", "--model", "sofmax"], capsys)
    assert_one_line_error(code, out, err, "'sofmax'", "softmax")
    assert out == ""


def test_negative_learning_rate(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["train", "--dataset", "xor", "--learning-rate", "-1"], capsys)
    assert_one_line_error(code, out, err, "learning_rate", "-1")


@pytest.mark.parametrize(
    ("flag", "value", "name"),
    [("--epochs", "0", "epochs"), ("--batch-size", "-3", "batch_size"), ("--alpha", "-1", "alpha")],
)
def test_bad_hyperparameters(
    capsys: pytest.CaptureFixture[str], flag: str, value: str, name: str
) -> None:
    code, out, err = run_cli(["train", "--dataset", "xor", flag, value], capsys)
    assert_one_line_error(code, out, err, name)


def test_missing_data_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "nope.npz"
    code, out, err = run_cli(["train", "--data", str(missing), "--model", "linear"], capsys)
    assert_one_line_error(code, out, err, "no such file", "nope.npz")


def test_npz_without_y(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "only_x.npz"
    np.savez(path, X=np.zeros((5, 2)))
    code, out, err = run_cli(["train", "--data", str(path), "--model", "linear"], capsys)
    assert_one_line_error(code, out, err, "only_x.npz", "X and y")


def test_file_that_is_not_npz(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "text.npz"
    path.write_text("not an archive\n")
    code, out, err = run_cli(["train", "--data", str(path), "--model", "linear"], capsys)
    assert_one_line_error(code, out, err, "text.npz")


def test_data_without_model(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, X=np.zeros((5, 2)), y=np.zeros(5))
    code, out, err = run_cli(["train", "--data", str(path)], capsys)
    assert_one_line_error(code, out, err, "--model")


def test_binary_model_on_ten_classes(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["train", "--dataset", "digits", "--model", "logistic"], capsys)
    assert_one_line_error(code, out, err, "binary", "10 classes")


def test_unavailable_and_unknown_backend(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(["train", "--dataset", "xor", "--backend", "numpyy"], capsys)
    assert_one_line_error(code, out, err, "'numpyy'", "Did you mean 'numpy'")
    if not anyglm.get_backend("cupy").is_available():
        code, out, err = run_cli(["train", "--dataset", "xor", "--backend", "cupy"], capsys)
        assert_one_line_error(code, out, err, "cupy", "not available")


def test_debug_shows_the_exception(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="learning_rate"):
        main(["--debug", "train", "--dataset", "xor", "--learning-rate", "-1"])


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as excinfo:
        main(["train", "--dataset", "no_such_set"])
    assert excinfo.value.code == 2
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as excinfo:
        main([])
    assert excinfo.value.code == 2


# -- as a real process -----------------------------------------------------------------------------


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("ANYGLM_")}


def test_console_script_and_module_run(tmp_path: Path) -> None:
    script = shutil.which("anyglm", path=str(Path(sys.executable).parent))
    commands = [[sys.executable, "-m", "anyglm"]]
    if script is not None:
        commands.append([script])
    for command in commands:
        ok = subprocess.run(
            [*command, "models"], capture_output=True, text=True, cwd=tmp_path, env=_env()
        )
        assert ok.returncode == 0, ok.stderr
        assert "softmax" in ok.stdout
        bad = subprocess.run(
            [*command, "train", "--dataset", "digits", "--model", "sofmax"],
            capture_output=True,
            text=True,
            cwd=tmp_path,
            env=_env(),
        )
        assert bad.returncode == 2
        assert "Traceback" not in bad.stderr
        assert bad.stderr.count("\n") == 1 and bad.stderr.startswith("anyglm: error: ")
    assert script is not None, "the anyglm console script is not installed next to python"


# -- help ------------------------------------------------------------------------------------------


def _help_blocks(command: str, capsys: pytest.CaptureFixture[str]) -> dict[str, str]:
    """Each option's help text (wrapping undone), from ``anyglm COMMAND --help``."""
    with pytest.raises(SystemExit) as excinfo:
        main([command, "--help"])
    assert excinfo.value.code == 0
    out = capsys.readouterr().out
    blocks: dict[str, str] = {}
    current = None
    for line in out.split("options:", 1)[1].splitlines():
        stripped = line.strip()
        if line.startswith("  -"):
            current = stripped.split()[0].rstrip(",")
            blocks[current] = stripped
        elif current is not None and stripped:
            blocks[current] += " " + stripped
    return {k: " ".join(v.split()) for k, v in blocks.items()}


@pytest.mark.parametrize("command", ["train", "tune", "eval", "predict"])
def test_help_shows_every_default(
    command: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import argparse

    from anyglm.cli import _parser

    monkeypatch.setenv("COLUMNS", "100")
    blocks = _help_blocks(command, capsys)
    sub = next(a for a in _parser()._actions if a.dest == "command")
    parser = sub.choices[command]  # type: ignore[index]
    checked = 0
    for action in parser._actions:
        default = action.default
        if not action.option_strings or any(default is v for v in (None, False, argparse.SUPPRESS)):
            continue
        value = action.default
        shown = " ".join(map(str, value)) if isinstance(value, list) else str(value)
        block = blocks[action.option_strings[0]]
        assert f"(default: {shown})" in block, block
        assert block.count("(default:") == 1, block
        checked += 1
    assert checked == {"train": 11, "tune": 12, "eval": 2, "predict": 0}[command]
    if command in ("train", "tune"):
        models = [m["name"] for m in anyglm.list_models()]
        assert f"one of: {', '.join(models)}" in blocks["--model"]
        assert "(default: the last column" in blocks["--label-column"]
        assert "--impute" in blocks
    else:
        assert "(default: the column the model was trained with" in blocks["--label-column"]


def test_tune_help_shows_list_defaults(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    blocks = _help_blocks("tune", capsys)
    assert "(default: auto 0.01 0.1)" in blocks["--learning-rate"]
    assert "(default: 10 50)" in blocks["--epochs"]
    assert "(default: auto 0.0001 0.01)" in blocks["--alpha"]


# -- progress bars and the tune table --------------------------------------------------------------


def test_train_bar_shows_the_loss_and_the_validation_score(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyglm.cli_output

    monkeypatch.setattr(anyglm.cli_output, "_bar_disabled", lambda args: False)
    code, _, err = run_cli(["train", "--dataset", "digits", "--epochs", "3", "--json"], capsys)
    assert code == 0
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "3/3" in last and "epoch" in last
    assert "loss=" in last and "val_accuracy=" in last
    code, _, err = run_cli(
        ["train", "--dataset", "diabetes", "--epochs", "2", "--validation-fraction", "0"], capsys
    )
    assert code == 0
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "loss=" in last and "val_" not in last


def test_tune_bar_counts_passes(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyglm.cli_output

    monkeypatch.setattr(anyglm.cli_output, "_bar_disabled", lambda args: False)
    argv = [
        "tune",
        "--dataset",
        "xor",
        "--batch-size",
        "2",
        "4",
        "--epochs",
        "2",
        "3",
        "--learning-rate",
        "0.1",
        "--alpha",
        "0",
        "--test-size",
        "0.25",
        "--validation-fraction",
        "0.34",
        "--json",
    ]
    code, _, err = run_cli(argv, capsys)
    assert code == 0, err
    last = err.replace("\r", "\n").strip().splitlines()[-1]
    assert "2/2" in last and "pass" in last and "epoch" not in last


@pytest.mark.parametrize(("dataset", "metric"), [("breast_cancer", "accuracy"), ("diabetes", "r2")])
def test_tune_table_and_summary_name_the_metric_alike(
    dataset: str, metric: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = [
        "tune",
        "--dataset",
        dataset,
        "--learning-rate",
        "0.01",
        "--alpha",
        "0",
        "--epochs",
        "2",
        "--quiet",
    ]
    code, out, err = run_cli(argv, capsys)
    assert code == 0, err
    table, summary = out.split("\n\n")
    assert f"val_{metric}" in table.splitlines()[0].split()
    assert f"best_val_{metric}" in [line.split()[0] for line in summary.splitlines()]
    assert "val_score" not in out


# -- listings with long cells ----------------------------------------------------------------------


def test_long_cells_are_cut_in_the_table_and_whole_in_json(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from anyglm import cli, registry

    devices = [f"array_api_strict.Device('device{i}')" for i in range(6)]  # 200 characters
    fake = [
        {
            "name": "wide",
            "available": True,
            "dtypes": ["float64"],
            "devices": devices,
            "reason": None,
            "origin": "anyglm (built-in)",
        },
        {
            "name": "narrow",
            "available": False,
            "dtypes": [],
            "devices": [],
            "reason": "a long reason " * 8,
            "origin": "anyglm (built-in)",
        },
    ]
    monkeypatch.setattr(registry, "list_backends", lambda: fake)
    code, out, _ = run_cli(["backends"], capsys)
    assert code == 0
    lines = out.splitlines()
    header = lines[0]
    assert header.split() == ["name", "available", "dtypes", "devices", "origin", "reason"]
    wide = lines[1]
    devices_cell = wide[header.index("devices") : header.index("origin")].rstrip()
    assert len(devices_cell) == cli.CELL_WIDTH and devices_cell.endswith("…")
    assert devices_cell[:-1] == ", ".join(devices)[: cli.CELL_WIDTH - 1]
    assert "a long reason " * 7 in lines[2]  # the last column is not cut
    assert "--json shows every value whole" in out
    code, out, _ = run_cli(["backends", "--json"], capsys)
    assert json.loads(out)[0]["devices"] == devices


def test_doctor_table_stays_narrow(capsys: pytest.CaptureFixture[str]) -> None:
    from anyglm import cli

    code, out, _ = run_cli(["doctor"], capsys)
    assert code == 0
    table = out.split("backends:\n", 1)[1].split("\n\n", 1)[0].splitlines()
    header = table[0]
    start, stop = header.index("devices"), header.index("origin")
    assert stop - start <= cli.CELL_WIDTH + 2
    report = anyglm.doctor()
    longest = max(len(", ".join(map(str, b["devices"]))) for b in report["backends"])
    if longest > cli.CELL_WIDTH:
        assert "…" in "\n".join(table)


# -- exit codes ------------------------------------------------------------------------------------


def test_ctrl_c_during_a_fit_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyglm.cli_commands

    class Interrupted(anyglm.Estimator):
        def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
            raise KeyboardInterrupt

    monkeypatch.setattr(anyglm.cli_commands, "Estimator", Interrupted)
    code, _, err = run_cli(["train", "--dataset", "xor", "--quiet"], capsys)
    assert code == 130
    assert err.strip() == "anyglm: interrupted before the first epoch ended; nothing saved"


# -- CSV without a header; strict JSON --------------------------------------------------------

_X40 = np.random.default_rng(0).normal(size=(40, 3))
_Y40 = (_X40[:, 0] + _X40[:, 1] > 0).astype(int)


def test_csv_without_header_and_text_labels_keeps_every_row(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 2))
    names = np.where(X[:, 0] > 0, "setosa", "virginica")
    path = tmp_path / "iris.csv"
    path.write_text(
        "".join(f"{a},{b},{n}\r\n" for (a, b), n in zip(X, names, strict=True)), encoding="utf-8"
    )
    code = main(
        [
            "train",
            "--data",
            str(path),
            "--model",
            "logistic",
            "--test-size",
            "0.2",
            "--epochs",
            "5",
            "--json",
            "--quiet",
            "--out",
            str(tmp_path / "m"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and out["n_train"] + out["n_test"] == 30
    assert sorted(anyglm.load(tmp_path / "m").classes_.tolist()) == ["setosa", "virginica"]


def test_json_output_is_strict_even_with_diverged_configurations(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    metrics = tmp_path / "m.json"
    code = main(
        [
            "tune",
            "--dataset",
            "diabetes",
            "--no-standardize",
            "--learning-rate",
            "1e-6",
            "1000",
            "--epochs",
            "20",
            "--alpha",
            "0",
            "--json",
            "--quiet",
            "--metrics",
            str(metrics),
        ]
    )
    assert code == 0
    json.loads(capsys.readouterr().out)
    table = json.loads(metrics.read_text(), parse_constant=lambda c: pytest.fail(c))["table"]
    diverged = [r for r in table if r["diverged"]]
    assert diverged and all(r["val_score"] is None for r in diverged)


# Labels beyond 2**53 and mixed integer kinds: the binary-search lookup must compare
# exactly, as the dictionary it replaced did (found in review of the fast label lookup).
IDS = [1234567890123456789, 1234567890123456790]
X_IDS = np.array([[-1.0], [-0.5], [0.5], [1.0]])
Y_IDS = np.array([IDS[0], IDS[0], IDS[1], IDS[1]], dtype=np.uint64)
