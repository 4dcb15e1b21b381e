"""Regressions for bugs found in review: generators, partial_fit, refits, files, CSV, JSON."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import anyglm
import numpy as np
import pytest
from anyglm.cli import main

X3 = np.random.default_rng(0).normal(size=(40, 3))
Y3 = (X3[:, 0] + X3[:, 1] > 0).astype(int)


@pytest.mark.parametrize("bitgen", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_any_numpy_generator_trains_checkpoints_and_resumes(tmp_path: Path, bitgen: type) -> None:
    ck = tmp_path / "ck"
    part = anyglm.LogisticRegression(epochs=2, random_state=np.random.Generator(bitgen(0)))
    part.fit(X3, Y3, checkpoint=ck)
    resumed = anyglm.LogisticRegression(epochs=4, random_state=np.random.Generator(bitgen(0)))
    resumed.fit(X3, Y3, resume=ck)
    straight = anyglm.LogisticRegression(epochs=4, random_state=np.random.Generator(bitgen(0)))
    straight.fit(X3, Y3)
    assert np.array_equal(resumed.coef_, straight.coef_)


def test_partial_fit_continues_a_loaded_model(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(epochs=3, random_state=0).fit(X3, Y3)
    est.save(tmp_path / "m")
    loaded = anyglm.load(tmp_path / "m")
    loaded.partial_fit(X3, Y3)
    assert loaded.n_epochs_ == 4 and len(loaded.history_["train_loss"]) == 4
    assert not np.array_equal(loaded.coef_, est.coef_)


def test_partial_fit_keeps_the_first_calls_dtype_and_device() -> None:
    xs = pytest.importorskip("array_api_strict")
    est = anyglm.LogisticRegression(random_state=0)
    est.partial_fit(X3.astype(np.float32), Y3, classes=[0, 1])
    est.partial_fit(X3, Y3)  # float64 data: converted to the model's float32
    assert est.coef_.dtype == np.float32 and est._dtype == "float32"
    dev1 = xs.Device("device1")
    strict = anyglm.LogisticRegression(random_state=0)
    strict.partial_fit(xs.asarray(X3, device=dev1), Y3, classes=[0, 1])
    strict.partial_fit(xs.asarray(X3), Y3)  # CPU_DEVICE data: moved to device1
    assert strict.coef_.device == dev1
    with pytest.raises(ValueError, match="partial_fit got data for backend 'array_api_strict'"):
        est.partial_fit(xs.asarray(X3), Y3)


def test_tune_trains_where_the_input_lives() -> None:
    xs = pytest.importorskip("array_api_strict")
    res = anyglm.tune("logistic", xs.asarray(X3), xs.asarray(Y3), grid={"epochs": [2]})
    assert res.best_estimator is not None
    assert res.best_estimator.backend_ == "array_api_strict"


def test_tune_checks_test_data_before_searching() -> None:
    calls: list[dict] = []
    with pytest.raises(TypeError, match="test_data must be a pair"):
        anyglm.tune("logistic", X3, Y3, grid={"epochs": [1]}, test_data=[X3], callback=calls.append)
    assert calls == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"checkpoint_on": "bogus", "checkpoint": "ck"}, ValueError),
        ({"checkpoint": "/no/such/folder/ck"}, FileNotFoundError),
    ],
)
def test_a_refit_refused_up_front_leaves_the_fitted_model_intact(kwargs: dict, error: type) -> None:
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit(X3, Y3)
    before = np.asarray(est.coef_).copy()
    X5 = np.random.default_rng(1).normal(size=(40, 5))
    with pytest.raises(error):
        est.fit(X5, Y3, **kwargs)
    assert est.n_features_in_ == 3
    assert np.array_equal(est.coef_, before)
    assert est.predict(X3).shape == (40,)


def test_switching_model_on_refit_drops_the_old_tasks_state(tmp_path: Path) -> None:
    est = anyglm.Estimator("softmax", epochs=2, random_state=0).fit(X3, Y3)
    assert hasattr(est, "classes_")
    est.set_params(model="linear").fit(X3, X3[:, 0])
    assert not hasattr(est, "classes_")
    est.save(tmp_path / "m")
    assert "classes.npy" not in zipfile.ZipFile(tmp_path / "m").namelist()
    est.set_params(model="softmax").fit(X3, Y3)
    assert not hasattr(est, "_n_targets")


def _rewrite(path: Path, drop: str | None = None, classes: np.ndarray | None = None) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if drop:
        members.pop(drop)
    if classes is not None:
        import io

        buf = io.BytesIO()
        np.save(buf, classes)
        members["classes.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


@pytest.mark.parametrize(
    "change", [{"drop": "classes.npy"}, {"classes": np.array([0, 1])}], ids=["missing", "too-few"]
)
def test_load_refuses_classes_that_do_not_match(tmp_path: Path, change: dict) -> None:
    y = np.arange(40) % 3
    anyglm.SoftmaxRegression(epochs=1, random_state=0).fit(X3, y).save(tmp_path / "m")
    _rewrite(tmp_path / "m", **change)
    with pytest.raises(anyglm.ModelFileError, match="class labels are missing or do not match"):
        anyglm.load(tmp_path / "m")


def test_class_weight_dict_survives_save_and_load(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(epochs=2, random_state=0, class_weight={0: 1.0, 1: 3.0})
    est.fit(X3, Y3).save(tmp_path / "m")
    loaded = anyglm.load(tmp_path / "m")
    assert loaded.get_params()["class_weight"] == {0: 1.0, 1: 3.0}
    refit = loaded.fit(X3, Y3)
    assert np.array_equal(refit.coef_, est.coef_)


def test_resume_with_a_generator_random_state(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    anyglm.LogisticRegression(epochs=2, random_state=np.random.default_rng(5)).fit(
        X3, Y3, checkpoint=ck
    )
    resumed = anyglm.LogisticRegression(epochs=4, random_state=np.random.default_rng(99))
    resumed.fit(X3, Y3, resume=ck)  # the state comes from the checkpoint, not the new seed
    straight = anyglm.LogisticRegression(epochs=4, random_state=np.random.default_rng(5))
    straight.fit(X3, Y3)
    assert np.array_equal(resumed.coef_, straight.coef_)


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
            "10",
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


def test_uint64_labels_match_declared_int_classes() -> None:
    est = anyglm.LogisticRegression(random_state=0).partial_fit(X_IDS, Y_IDS, classes=IDS)
    assert [int(c) for c in est.classes_] == IDS
    assert [int(p) for p in est.predict(X_IDS)] == [int(v) for v in Y_IDS]


def test_uint64_validation_labels_against_int64_training_labels() -> None:
    est = anyglm.LogisticRegression(random_state=0, epochs=2)
    est.fit(X_IDS, Y_IDS.astype(np.int64), validation_data=(X_IDS, Y_IDS))
    assert len(est.history_["val_score"]) == 2


def test_an_integer_label_beyond_float_precision_is_not_taken_for_a_float_class() -> None:
    y = np.array([0.0, 0.0, 2.0**53, 2.0**53])
    y_val = np.array([0, 0, 2**53 + 1, 2**53 + 1])  # 2**53 + 1 is no class
    est = anyglm.LogisticRegression(random_state=0, epochs=2)
    with pytest.raises(ValueError, match="y_val contains the label 9007199254740993"):
        est.fit(X_IDS, y, validation_data=(X_IDS, y_val))
