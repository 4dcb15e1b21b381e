"""The ``anyglm`` command line."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

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
    names = [line.split()[0] for line in out.strip().splitlines()[1:]]
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
