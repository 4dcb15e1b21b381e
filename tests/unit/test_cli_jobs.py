"""The CLI's jobs end to end: train -> save -> eval / predict, tune, CSV input, metrics files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

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


# -- CSV files as people write them ----------------------------------------------------------------


def _features(n: int = 150, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, np.where(X[:, 0] + 0.5 * X[:, 1] > 0, "yes", "no")


def _csv(
    path: Path,
    X: np.ndarray,
    labels: Any,
    *,
    sep: str = ",",
    header: str | None = None,
    label_at: int = 2,
) -> Path:
    lines = [] if header is None else [header]
    for x, lab in zip(X, labels, strict=True):
        cells = [f"{v:.6f}" for v in x]
        cells.insert(label_at, str(lab))
        lines.append(sep.join(cells))
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _train(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    code, out, err = run([*argv, "--json", "--quiet"], capsys)
    assert code == 0, err
    return dict(json.loads(out))


def test_semicolon_csv_with_quoted_header_trains_and_evals_without_label_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    path = _csv(
        tmp_path / "semi.csv", X, labels, sep=";", header='"height; cm";"weight, kg";answer;c'
    )
    model = tmp_path / "m.anyglm"
    trained = _train(
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
        ],
        capsys,
    )
    assert trained["n_train"] == 120 and trained["test_accuracy"] >= 0.9
    # Three feature columns were read (no field was split at the quoted ; or ,).
    assert anyglm.load(model).n_features_in_ == 3
    # eval finds the label column by itself: the model file records it.
    code, out, err = run(["eval", str(model), "--data", str(path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-12)
    # predict on a file whose columns come in another order: matched by header name.
    order = ['"weight, kg"', "c", '"height; cm"']
    shuffled = tmp_path / "shuffled.csv"
    rows = [";".join(order)] + [f"{x[1]:.6f};{x[2]:.6f};{x[0]:.6f}" for x in X]
    shuffled.write_text("\n".join(rows) + "\n")
    code, out, _ = run(["predict", str(model), "--data", str(shuffled)], capsys)
    code2, out2, _ = run(["predict", str(model), "--data", str(path)], capsys)
    assert code == code2 == 0 and out == out2 and len(out.split()) == 150


def test_eval_without_label_column_on_a_file_without_header(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    path = _csv(tmp_path / "plain.csv", X, (labels == "yes").astype(int), label_at=0)
    model = tmp_path / "m.anyglm"
    trained = _train(
        [
            "train",
            "--data",
            str(path),
            "--model",
            "logistic",
            "--label-column",
            "0",
            "--epochs",
            "30",
            "--out",
            str(model),
        ],
        capsys,
    )
    code, out, err = run(["eval", str(model), "--data", str(path), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["accuracy"] == pytest.approx(trained["test_accuracy"], abs=1e-12)
    # predict drops the label column (first, as recorded) from a file that has it
    code, out, _ = run(["predict", str(model), "--data", str(path)], capsys)
    assert code == 0
    np.testing.assert_array_equal([int(v) for v in out.split()], anyglm.load(model).predict(X))


def test_a_model_file_records_what_eval_and_predict_need(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    path = _csv(tmp_path / "d.csv", X, labels, header="a,b,answer,c")
    model = tmp_path / "m.anyglm"
    _train(
        [
            "train",
            "--data",
            str(path),
            "--model",
            "logistic",
            "--label-column",
            "answer",
            "--epochs",
            "3",
            "--out",
            str(model),
        ],
        capsys,
    )
    meta = anyglm.load(model).file_metadata_
    assert meta["label_column"] == "answer" and meta["label_index"] == 2
    assert meta["feature_names"] == ["a", "b", "c"] and meta["n_columns"] == 4
    assert meta["n_features"] == 3 and "impute" not in meta
    assert anyglm.load(model).classes_.tolist() == ["no", "yes"]


def test_an_empty_cell_is_one_line_or_imputed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    path = _csv(tmp_path / "gaps.csv", X, labels, header="a,b,label,c", label_at=2)
    lines = path.read_text().splitlines()
    lines[6] = lines[6].replace(lines[6].split(",")[1], "", 1)  # line 7: empty 'b'
    lines[9] = lines[9].replace(lines[9].split(",")[3], "NA", 1)  # line 10: NA in 'c'
    path.write_text("\n".join(lines) + "\n")
    argv = [
        "train",
        "--data",
        str(path),
        "--model",
        "logistic",
        "--label-column",
        "label",
        "--epochs",
        "30",
    ]
    code, _, err = run(argv, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{path}: line 7, column 'b': an empty cell (2 missing cells in all)" in err
    assert "--impute" in err
    model = tmp_path / "m.anyglm"
    trained = _train([*argv, "--impute", "median", "--out", str(model)], capsys)
    assert trained["test_accuracy"] >= 0.9
    fill = anyglm.load(model).file_metadata_["impute"]
    assert fill["strategy"] == "median" and len(fill["values"]) == 3
    # eval and predict fill the missing cells with the training values, not a new guess.
    code, out, err = run(["eval", str(model), "--data", str(path), "--json", "--all"], capsys)
    assert code == 0, err
    assert json.loads(out)["n"] == 150
    code, out, err = run(["predict", str(model), "--data", str(path)], capsys)
    assert code == 0, err
    filled = X.copy()
    filled[5, 0 + 1] = fill["values"][1]
    filled[8, 2] = fill["values"][2]
    expected = anyglm.load(model).predict(np.round(filled, 6))
    assert out.split() == expected.tolist()


def test_a_model_without_imputation_names_the_missing_cell_in_eval(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    good = _csv(tmp_path / "good.csv", X, labels, header="a,b,label,c")
    model = tmp_path / "m.anyglm"
    _train(
        [
            "train",
            "--data",
            str(good),
            "--model",
            "logistic",
            "--label-column",
            "label",
            "--epochs",
            "3",
            "--out",
            str(model),
        ],
        capsys,
    )
    lines = good.read_text().splitlines()
    lines[3] = lines[3].replace(lines[3].split(",")[0], "null", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    code, _, err = run(["eval", str(model), "--data", str(bad)], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{bad}: line 4, column 'a': a missing value ('null')" in err
    assert "trained without --impute" in err


def test_a_ragged_row_names_file_and_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features(20)
    path = _csv(tmp_path / "ragged.csv", X, labels, header="a,b,label,c")
    lines = path.read_text().splitlines()
    lines[12] += ",9.5"
    path.write_text("\n".join(lines) + "\n")
    code, _, err = run(["train", "--data", str(path), "--model", "logistic"], capsys)
    assert code == 2
    assert err.strip() == (
        f"anyglm: error: {path}: line 13 has 5 fields, expected 4 "
        "(as in the header on line 1; delimiter ',')"
    )


def test_an_empty_label_is_an_error_not_a_class(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features(20)
    labels = labels.copy()
    labels[4] = ""
    path = _csv(tmp_path / "nolabel.csv", X, labels, label_at=3)
    code, _, err = run(
        ["train", "--data", str(path), "--model", "logistic", "--impute", "mean"], capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert f"{path}: line 5, column 4: the label is empty" in err
    assert "the labels come from column 4, the last, by default" in err


def test_the_default_label_column_is_named_when_it_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features(40)
    # The labels are in the first column; by default the last column (numbers) is taken.
    first = _csv(tmp_path / "first.csv", X, labels, header="label,a,b,c", label_at=0)
    code, _, err = run(["train", "--data", str(first), "--model", "logistic"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "'yes' is not a number" in err or "'no' is not a number" in err
    assert "pass --label-column label" in err
    numeric = _csv(
        tmp_path / "numeric.csv", X, (labels == "yes").astype(int), header="label,a,b,c", label_at=0
    )
    code, _, err = run(["train", "--data", str(numeric), "--model", "logistic"], capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "not whole numbers or names" in err
    assert "the labels came from column 'c', the last" in err and "--label-column" in err


def test_predict_skips_the_label_column_without_reading_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, labels = _features()
    train = _csv(tmp_path / "train.csv", X, (labels == "yes").astype(int), label_at=1)
    model = tmp_path / "m.anyglm"
    _train(
        [
            "train",
            "--data",
            str(train),
            "--model",
            "logistic",
            "--label-column",
            "1",
            "--epochs",
            "5",
            "--out",
            str(model),
        ],
        capsys,
    )
    expected = anyglm.load(model).predict(np.round(X, 6)).tolist()
    # New rows: the label column is there but empty (no header, found by its index).
    new = _csv(tmp_path / "new.csv", X, [""] * len(X), label_at=1)
    code, out, err = run(["predict", str(model), "--data", str(new)], capsys)
    assert code == 0, err
    assert [int(v) for v in out.split()] == expected
    # Without the label column at all.
    bare = tmp_path / "bare.csv"
    bare.write_text("".join(f"{a:.6f},{b:.6f},{c:.6f}\n" for a, b, c in X))
    code, out, err = run(["predict", str(model), "--data", str(bare)], capsys)
    assert code == 0, err
    assert [int(v) for v in out.split()] == expected
    # A file of another width is named, not guessed at.
    wide = tmp_path / "wide.csv"
    wide.write_text("".join(f"{a},{b},{c},1,2\n" for a, b, c in X))
    code, _, err = run(["predict", str(model), "--data", str(wide)], capsys)
    assert code == 2 and "has 5 columns; the model takes 3 features" in err


def test_no_test_part_keeps_rows_and_labels_together(capsys: pytest.CaptureFixture[str]) -> None:
    # --test-size 0 once paired the rows in file order with labels in shuffled order.
    trained = _train(
        ["train", "--dataset", "breast_cancer", "--test-size", "0", "--epochs", "5"], capsys
    )
    assert trained["n_train"] == 569 and trained["n_test"] == 0
    assert trained["train_accuracy"] > 0.9  # 0.61 when the labels were shuffled


def test_feature_names_too_long_for_the_model_file_are_left_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = np.random.default_rng(0)
    d = 400  # 400 names of 200 characters: more than the model file's 64 KiB of metadata
    names = [f"feature_{j:03d}_" + "x" * 187 for j in range(d)]
    X = rng.normal(size=(40, d))
    y = (X[:, 0] > 0).astype(int)
    path = tmp_path / "wide.csv"
    rows = [",".join([*names, "label"])] + [
        ",".join([*(f"{v:.4f}" for v in x), str(t)]) for x, t in zip(X, y, strict=True)
    ]
    path.write_text("\n".join(rows) + "\n")
    model = tmp_path / "m.anyglm"
    argv = ["train", "--data", str(path), "--model", "logistic", "--epochs", "2", "--quiet"]
    code, out, err = run([*argv, "--out", str(model)], capsys)
    assert code == 0, err
    assert "keeps no feature names" in err and "match columns by position" in err
    meta = anyglm.load(model).file_metadata_
    assert meta["feature_names"] is None and meta["label_column"] == "label"
    code, out, err = run(["predict", str(model), "--data", str(path)], capsys)
    assert code == 0, err
    assert len(out.split()) == 40
