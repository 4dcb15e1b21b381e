"""The CLI's jobs end to end: train -> save -> eval / predict, tune, CSV input, metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import anyglm
import numpy as np
import pytest
from anyglm.cli import main


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_save_eval_predict_round_trip(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tmp_path / "digits.anyglm"
    metrics = tmp_path / "metrics.json"
    code, out, _ = run(
        [
            "train",
            "--dataset",
            "digits",
            "--epochs",
            "15",
            "--out",
            str(model),
            "--metrics",
            str(metrics),
            "--json",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    trained = json.loads(out)
    assert trained["test_accuracy"] >= 0.9
    saved = json.loads(metrics.read_text())
    assert len(saved["history"]["train_loss"]) == 15
    assert saved["test_accuracy"] == trained["test_accuracy"]

    # eval re-creates the same held-out split; the saved model takes raw features
    # (the standardisation is folded into its parameters), so the score is the same.
    code, out, _ = run(["eval", str(model), "--dataset", "digits", "--json"], capsys)
    assert code == 0
    assert json.loads(out)["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-12)

    X, y = anyglm.datasets.load_dataset("digits")
    np.save(tmp_path / "X.npy", X[:7])
    code, out, _ = run(["predict", str(model), "--data", str(tmp_path / "X.npy")], capsys)
    assert code == 0
    predicted = [int(v) for v in out.split()]
    assert predicted == anyglm.load(model).predict(X[:7]).tolist()
    assert np.mean(np.array(predicted) == y[:7]) >= 5 / 7


def test_csv_with_header_and_named_label_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    labels = np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    lines = ["a,b,answer,c"] + [
        f"{x[0]},{x[1]},{lab},{x[2]}" for x, lab in zip(X, labels, strict=True)
    ]
    path.write_text("\n".join(lines) + "\n")
    model = tmp_path / "m.anyglm"
    code, out, err = run(
        [
            "train",
            "--data",
            str(path),
            "--model",
            "logistic",
            "--label-column",
            "answer",
            "--epochs",
            "30",
            "--out",
            str(model),
            "--json",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    assert json.loads(out)["test_accuracy"] >= 0.8
    # predicting from the same CSV drops the label column because the widths say so
    code, out, _ = run(
        ["predict", str(model), "--data", str(path), "--label-column", "answer"], capsys
    )
    assert code == 0
    assert set(out.split()) <= {"yes", "no"} and len(out.split()) == 80


def test_tune_prints_the_table_and_saves_the_best(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    best = tmp_path / "best.anyglm"
    metrics = tmp_path / "tune.json"
    code, out, _ = run(
        [
            "tune",
            "--dataset",
            "breast_cancer",
            "--batch-size",
            "16",
            "64",
            "--learning-rate",
            "0.01",
            "0.1",
            "--epochs",
            "2",
            "5",
            "--alpha",
            "0",
            "0.01",
            "--out",
            str(best),
            "--metrics",
            str(metrics),
            "--quiet",
        ],
        capsys,
    )
    assert code == 0
    assert out.splitlines()[0].split()[:4] == ["batch_size", "learning_rate", "epochs", "alpha"]
    report = json.loads(metrics.read_text())
    assert report["configurations"] == 16 and len(report["table"]) == 16
    assert report["test_accuracy"] > 0.9
    loaded = anyglm.load(best)
    assert loaded.get_params()["batch_size"] == report["best_batch_size"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["train", "--data", "nope.csv", "--model", "linear"], "no such file"),
        (["train", "--dataset", "digits", "--model", "softmx"], "Did you mean 'softmax'"),
        (["train", "--dataset", "digits", "--learning-rate", "-1"], "learning_rate must be > 0"),
        (["train", "--dataset", "digits", "--batch-size", "0"], "batch_size must be a positive"),
        (["tune", "--dataset", "digits", "--alpha", "-1"], "alpha must be >= 0"),
        (["eval", "missing.anyglm", "--dataset", "digits"], "no model file"),
        (["train", "--dataset", "digits", "--backend", "nunpy"], "Did you mean 'numpy'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run(argv, capsys)
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_wrong_label_column_names_the_columns(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n9,10,1\n")
    code, _, err = run(
        ["train", "--data", str(path), "--model", "logistic", "--label-column", "target"], capsys
    )
    assert code == 2 and "columns: a, b, label" in err
    code, _, err = run(
        ["train", "--data", str(path), "--model", "logistic", "--label-column", "7"], capsys
    )
    assert code == 2 and "out of range" in err
