"""The estimators: scikit-learn's conventions, labels, weights, history, divergence, backends."""

from __future__ import annotations

import functools
import re
import zipfile
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest

ESTIMATORS = [anyglm.LinearRegression, anyglm.LogisticRegression, anyglm.SoftmaxRegression]
CLASSIFIERS = [anyglm.LogisticRegression, anyglm.SoftmaxRegression]
MODEL_OF = {
    anyglm.LinearRegression: "linear",
    anyglm.LogisticRegression: "logistic",
    anyglm.SoftmaxRegression: "softmax",
}
NAME = {c: c.__name__ for c in ESTIMATORS}
LINEAR = functools.partial(anyglm.Estimator, "linear")

_RNG = np.random.default_rng(1)
X0 = _RNG.normal(size=(40, 3))
Y_BIN = (X0[:, 0] - 0.5 * X0[:, 1] > 0).astype(np.int64)
Y_3 = np.digitize(X0[:, 0], [-0.5, 0.5]).astype(np.int64)
Y_REG = X0 @ np.array([1.0, -2.0, 0.5]) + 0.3 + 0.1 * _RNG.normal(size=40)


def _target(cls: type) -> np.ndarray:
    return {
        anyglm.LinearRegression: Y_REG,
        anyglm.LogisticRegression: Y_BIN,
        anyglm.SoftmaxRegression: Y_3,
    }[cls]


def _np(a: Any) -> np.ndarray:
    """A NumPy copy of an array of any backend."""
    if type(a).__module__.startswith("array_api_strict"):
        import array_api_strict as xps

        return np.asarray(a.to_device(xps.Device("CPU_DEVICE")))
    return np.asarray(a)


def _params(est: Any) -> tuple[np.ndarray, np.ndarray]:
    return _np(est.coef_), _np(est.intercept_)


# -- the scikit-learn protocol, without scikit-learn ----------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_fit_returns_self(cls: type) -> None:
    est = cls(epochs=2, random_state=0)
    assert est.fit(X0, _target(cls)) is est
    gen = anyglm.Estimator(MODEL_OF[cls], epochs=2, random_state=0)
    assert gen.fit(X0, _target(cls)) is gen


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_get_params_names_and_values(cls: type) -> None:
    common = {
        "batch_size",
        "learning_rate",
        "epochs",
        "alpha",
        "shuffle",
        "random_state",
        "validation_fraction",
        "n_iter_no_change",
        "tol",
        "backend",
        "device",
        "dtype",
        "block_rows",
        "rounds_per_epoch",
        "penalty",
        "l1_ratio",
        "schedule",
        "power_t",
        "momentum",
        "nesterov",
        "average",
    }
    expected = common if cls is anyglm.LinearRegression else common | {"class_weight"}
    est = cls(alpha=0.5, epochs=7, batch_size=3)
    params = est.get_params()
    assert set(params) == expected
    assert params["alpha"] == 0.5 and params["epochs"] == 7 and params["batch_size"] == 3
    assert params["learning_rate"] == "auto" and params["random_state"] is None
    assert est.get_params(deep=False) == params
    assert set(anyglm.Estimator().get_params()) == common | {"class_weight", "model"}
    assert anyglm.Estimator("linear").get_params()["model"] == "linear"


@pytest.mark.parametrize("cls", [*ESTIMATORS, anyglm.Estimator], ids=lambda c: c.__name__)
def test_set_params(cls: type) -> None:
    est = cls()
    assert est.set_params(alpha=0.25, epochs=4) is est
    assert est.alpha == 0.25 and est.epochs == 4
    assert est.get_params()["alpha"] == 0.25
    with pytest.raises(
        ValueError, match=r"Invalid parameter 'alpah' for estimator .*Valid parameters are: .*alpha"
    ):
        est.set_params(alpah=1.0)
    assert not hasattr(est, "alpah")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_fixed_classes_have_no_model_parameter(cls: type) -> None:
    est = cls()
    assert est.model == MODEL_OF[cls]
    with pytest.raises(ValueError, match="Invalid parameter 'model'"):
        est.set_params(model="softmax")
    with pytest.raises(TypeError):
        cls(model="softmax")


def test_linear_regression_has_no_class_weight() -> None:
    with pytest.raises(ValueError, match="Invalid parameter 'class_weight'"):
        anyglm.LinearRegression().set_params(class_weight="balanced")


def test_repr() -> None:
    assert repr(anyglm.SoftmaxRegression()) == "SoftmaxRegression()"
    assert repr(anyglm.LogisticRegression(alpha=0.5, epochs=3)) == (
        "LogisticRegression(alpha=0.5, epochs=3)"
    )
    assert repr(anyglm.LinearRegression(backend="numpy")) == "LinearRegression(backend='numpy')"
    assert repr(anyglm.Estimator("linear")) == "Estimator(model='linear')"
    # A value equal to the default but of another type is shown (1 is not 1.0 for alpha).
    assert "learning_rate=1" in repr(anyglm.LinearRegression(learning_rate=1))


def test_fitted_attributes() -> None:
    est = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(X0, Y_3)
    assert est.n_features_in_ == 3
    assert est.n_epochs_ == 3
    assert est.backend_ == "numpy"
    assert est.classes_.tolist() == [0, 1, 2]
    assert set(est.history_) == {"train_loss"}
    assert all(isinstance(v, float) for v in est.history_["train_loss"])


# -- with scikit-learn ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_sklearn_clone(cls: type) -> None:
    base = pytest.importorskip("sklearn.base")
    est = cls(alpha=0.3, epochs=2, random_state=4)
    twin = base.clone(est)
    assert twin is not est and type(twin) is cls
    assert twin.get_params() == est.get_params()
    est.fit(X0, _target(cls))
    fresh = base.clone(est)
    assert not hasattr(fresh, "coef_")
    assert fresh.get_params() == est.get_params()


def test_sklearn_estimator_type() -> None:
    base = pytest.importorskip("sklearn.base")
    assert base.is_classifier(anyglm.LogisticRegression())
    assert base.is_classifier(anyglm.SoftmaxRegression())
    assert base.is_regressor(anyglm.LinearRegression())
    assert base.is_regressor(anyglm.Estimator("linear"))
    assert base.is_classifier(anyglm.Estimator("softmax"))


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_sklearn_pipeline(cls: type) -> None:
    pipeline = pytest.importorskip("sklearn.pipeline")
    preprocessing = pytest.importorskip("sklearn.preprocessing")
    X = X0 * np.array([100.0, 0.01, 5.0]) + 50.0  # badly scaled: needs the scaler
    y = _target(cls)
    pipe = pipeline.Pipeline(
        [
            ("scale", preprocessing.StandardScaler()),
            ("glm", cls(random_state=0)),
        ]
    ).fit(X, y)
    score = pipe.score(X, y)
    assert score > (0.95 if cls is anyglm.LinearRegression else 0.85)
    assert pipe.predict(X).shape == (40,)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_sklearn_grid_search_over_alpha(cls: type) -> None:
    model_selection = pytest.importorskip("sklearn.model_selection")
    grid = [0.0, 0.1, 100.0]
    est = cls(learning_rate=0.1, epochs=10, random_state=0, batch_size=8)
    gs = model_selection.GridSearchCV(est, {"alpha": grid}, cv=2).fit(X0, _target(cls))
    assert gs.best_params_["alpha"] in grid
    # alpha=100 shrinks the weights to nearly zero and loses; it can never be the best.
    assert gs.best_params_["alpha"] != 100.0
    scores = gs.cv_results_["mean_test_score"]
    assert len(scores) == 3 and np.all(np.isfinite(scores))
    assert scores[2] < max(scores[0], scores[1])
    assert type(gs.best_estimator_) is cls
    assert gs.best_estimator_.n_features_in_ == 3


# -- labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (anyglm.LogisticRegression, np.array(["cat", "dog"])),
        (anyglm.SoftmaxRegression, np.array(["ant", "bee", "cow"])),
        (anyglm.SoftmaxRegression, np.array(["ant", "bee", "cow"], dtype=object)),
    ],
    ids=["logistic", "softmax", "softmax-object"],
)
def test_string_labels(cls: type, names: np.ndarray) -> None:
    y_idx = _target(cls)
    y = names[y_idx]
    y_list = y.tolist()
    est = cls(random_state=0).fit(X0, y_list)
    assert est.classes_.tolist() == sorted(names.tolist())
    pred = est.predict(X0)
    assert isinstance(pred, np.ndarray) and pred.shape == (40,)
    assert set(pred.tolist()) <= set(names.tolist())
    assert all(isinstance(p, str) for p in pred.tolist())
    assert est.score(X0, y) > 0.8
    # predictions agree with the integer-labelled fit
    ref = cls(random_state=0).fit(X0, y_idx)
    assert np.array_equal(names[np.asarray(ref.predict(X0))], pred)


@pytest.mark.parametrize(
    ("cls", "labels"),
    [
        (anyglm.LogisticRegression, np.array([3, 7])),
        (anyglm.LogisticRegression, np.array([-1.0, 1.0])),
        (anyglm.SoftmaxRegression, np.array([10, 20, 30])),
    ],
    ids=["logistic-3-7", "logistic-pm1", "softmax-10-20-30"],
)
def test_numeric_labels(cls: type, labels: np.ndarray) -> None:
    y = labels[_target(cls)]
    est = cls(random_state=0).fit(X0, y)
    assert est.classes_.tolist() == labels.tolist()
    pred = np.asarray(est.predict(X0))
    assert set(pred.tolist()) <= set(labels.tolist())
    assert pred.dtype.kind == labels.dtype.kind
    assert est.score(X0, y) > 0.8


# -- weights --------------------------------------------------------------------------------

#: Plain full-batch gradient descent for exactly 25 epochs, with a fixed penalty.
FULL_BATCH = {
    "batch_size": 1000,
    "shuffle": False,
    "epochs": 25,
    "learning_rate": 0.2,
    "alpha": 1e-4,
    "average": False,
    "n_iter_no_change": None,
}


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_zero_sample_weight_equals_dropping_rows(cls: type) -> None:
    y = _target(cls)
    keep = np.arange(40) % 4 != 0
    if cls is not anyglm.LinearRegression:
        assert set(y[keep].tolist()) == set(y.tolist())
    # The loss is sum(w_i * l_i) / n over all n rows, so zero weights equal dropping
    # those rows once the kept rows are weighted n / n_kept.
    w = keep * (len(keep) / keep.sum())
    weighted = cls(**FULL_BATCH, random_state=0).fit(X0, y, sample_weight=w)
    dropped = cls(**FULL_BATCH, random_state=0).fit(X0[keep], y[keep])
    for a, b in zip(_params(weighted), _params(dropped), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_unit_sample_weight_equals_no_weight(cls: type) -> None:
    y = _target(cls)
    plain = cls(**FULL_BATCH, random_state=0).fit(X0, y)
    ones = cls(**FULL_BATCH, random_state=0).fit(X0, y, sample_weight=np.ones(40))
    for a, b in zip(_params(plain), _params(ones), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_sample_weight_changes_the_fit(cls: type) -> None:
    y = _target(cls)
    plain = cls(**FULL_BATCH, random_state=0).fit(X0, y)
    sw = np.linspace(0.1, 3.0, 40)
    weighted = cls(**FULL_BATCH, random_state=0).fit(X0, y, sample_weight=sw)
    assert not np.allclose(_params(plain)[0], _params(weighted)[0])


def _imbalanced() -> tuple[np.ndarray, np.ndarray]:
    y = (X0[:, 0] > 0.8).astype(np.int64)  # about one in five positive
    assert 0 < y.sum() < 20
    return X0, y


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=NAME.get)
def test_class_weight_balanced(cls: type) -> None:
    X, y = _imbalanced()
    plain = cls(**FULL_BATCH, random_state=0).fit(X, y)
    balanced = cls(**FULL_BATCH, random_state=0, class_weight="balanced").fit(X, y)
    assert not np.allclose(_params(plain)[0], _params(balanced)[0])
    # "balanced" is n / (n_classes * count) per class, like scikit-learn.
    counts = np.bincount(y)
    explicit = {c: 40 / (2 * counts[c]) for c in (0, 1)}
    as_dict = cls(**FULL_BATCH, random_state=0, class_weight=explicit).fit(X, y)
    for a, b in zip(_params(balanced), _params(as_dict), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # and equals the same weights given per sample
    per_sample = np.array([explicit[c] for c in y.tolist()])
    as_sw = cls(**FULL_BATCH, random_state=0).fit(X, y, sample_weight=per_sample)
    for a, b in zip(_params(balanced), _params(as_sw), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # up-weighting the rare class makes it predicted more often
    rare = np.mean(np.asarray(balanced.predict(X)) == 1)
    assert rare >= np.mean(np.asarray(plain.predict(X)) == 1)


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=NAME.get)
def test_class_weight_dict(cls: type) -> None:
    X, y = _imbalanced()
    plain = cls(**FULL_BATCH, random_state=0).fit(X, y)
    unit = cls(**FULL_BATCH, random_state=0, class_weight={0: 1.0, 1: 1.0}).fit(X, y)
    for a, b in zip(_params(plain), _params(unit), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    heavy = cls(**FULL_BATCH, random_state=0, class_weight={1: 10.0}).fit(X, y)
    assert not np.allclose(_params(plain)[0], _params(heavy)[0])
    assert np.mean(np.asarray(heavy.predict(X)) == 1) > np.mean(np.asarray(plain.predict(X)) == 1)


def test_class_weight_with_string_labels() -> None:
    X, y = _imbalanced()
    names = np.array(["no", "yes"])[y]
    by_name = anyglm.LogisticRegression(**FULL_BATCH, class_weight={"yes": 5.0}).fit(X, names)
    by_int = anyglm.LogisticRegression(**FULL_BATCH, class_weight={1: 5.0}).fit(X, y)
    for a, b in zip(_params(by_name), _params(by_int), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


# -- history, validation, early stopping ------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
@pytest.mark.parametrize("epochs", [1, 4])
def test_history_lengths(cls: type, epochs: int) -> None:
    est = cls(epochs=epochs, random_state=0).fit(X0, _target(cls))
    assert list(est.history_) == ["train_loss"]
    assert len(est.history_["train_loss"]) == epochs == est.n_epochs_


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_history_with_validation_fraction(cls: type) -> None:
    est = cls(epochs=4, validation_fraction=0.25, random_state=0).fit(X0, _target(cls))
    assert set(est.history_) == {"train_loss", "val_loss", "val_score"}
    for values in est.history_.values():
        assert len(values) == 4
        assert np.all(np.isfinite(values))
    if cls is not anyglm.LinearRegression:
        assert all(0.0 <= s <= 1.0 for s in est.history_["val_score"])


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_history_with_validation_data(cls: type) -> None:
    y = _target(cls)
    Xv, yv = X0[:10] + 0.01, y[:10]
    est = cls(epochs=5, learning_rate=0.2, random_state=0).fit(X0, y, validation_data=(Xv, yv))
    h = est.history_
    assert set(h) == {"train_loss", "val_loss", "val_score"}
    assert len(h["val_loss"]) == len(h["val_score"]) == 5
    # the last val_score is the score of the final model on the validation data
    assert h["val_score"][-1] == pytest.approx(est.score(Xv, yv), abs=1e-9)


def test_validation_data_wins_over_fraction() -> None:
    y = Y_3
    a = anyglm.SoftmaxRegression(epochs=3, validation_fraction=0.5, random_state=0)
    a.fit(X0, y, validation_data=(X0[:5], y[:5]))
    b = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(
        X0, y, validation_data=(X0[:5], y[:5])
    )
    assert a.history_ == b.history_  # all 40 rows trained on in both


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_early_stopping(cls: type) -> None:
    est = cls(epochs=200, learning_rate=0.5, n_iter_no_change=2, tol=0.05, random_state=0)
    est.fit(X0, _target(cls))
    assert est.n_epochs_ < 200
    assert len(est.history_["train_loss"]) == est.n_epochs_


def test_early_stopping_on_validation_loss() -> None:
    est = anyglm.LinearRegression(
        epochs=200, learning_rate=0.2, n_iter_no_change=3, tol=0.01, validation_fraction=0.25
    )
    est.set_params(random_state=0).fit(X0, Y_REG)
    assert est.n_epochs_ < 200
    h = est.history_
    assert len(h["val_loss"]) == len(h["train_loss"]) == est.n_epochs_


def test_no_early_stopping_without_n_iter_no_change() -> None:
    est = anyglm.LinearRegression(epochs=30, tol=10.0, n_iter_no_change=None, random_state=0)
    assert est.fit(X0, Y_REG).n_epochs_ == 30


# -- divergence -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_divergence_error(cls: type) -> None:
    X = X0 * 1e3
    est = cls(learning_rate=1e8, epochs=200, batch_size=8, random_state=0, n_iter_no_change=None)
    with pytest.raises(anyglm.DivergenceError, match=r"diverged in epoch \d+ of 200") as info:
        est.fit(X, _target(cls))
    err = info.value
    assert isinstance(err, ArithmeticError)
    assert isinstance(err.epoch, int) and 1 <= err.epoch <= 200
    msg = str(err)
    assert f"epoch {err.epoch}" in msg
    assert re.search(r"smaller learning_rate", msg)
    assert "standardi" in msg
    # The estimator keeps the last finite parameters and the history up to them.
    coef, intercept = _params(est)
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))
    assert est.n_epochs_ == err.epoch - 1
    assert len(est.history_["train_loss"]) == err.epoch - 1
    assert np.all(np.isfinite(np.asarray(est.predict(X0), dtype=float)))


# -- dtypes ---------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_float32_in_float32_out(cls: type) -> None:
    X = X0.astype(np.float32)
    est = cls(epochs=3, random_state=0).fit(X, _target(cls))
    assert est.coef_.dtype == np.float32
    assert est.intercept_.dtype == np.float32
    if cls is anyglm.LinearRegression:
        assert est.predict(X).dtype == np.float32
    else:
        assert est.decision_function(X).dtype == np.float32
        assert est.predict_proba(X).dtype == np.float32


@pytest.mark.parametrize(
    ("X", "dtype", "expected"),
    [
        (X0, None, np.float64),
        (X0.astype(np.float16), None, np.float32),
        (np.round(X0 * 10).astype(np.int64), None, np.float64),
        (X0, "float32", np.float32),
        (X0.astype(np.float32), "float64", np.float64),
    ],
    ids=["f64", "f16", "int", "f64-as-f32", "f32-as-f64"],
)
def test_parameter_dtype(X: np.ndarray, dtype: str | None, expected: type) -> None:
    est = anyglm.LogisticRegression(epochs=2, dtype=dtype, random_state=0).fit(X, Y_BIN)
    assert est.coef_.dtype == expected


# -- backends -------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_auto_backend_follows_array_api_strict_device(cls: type) -> None:
    xps = pytest.importorskip("array_api_strict")
    dev = xps.Device("device1")
    X = xps.asarray(X0, device=dev)
    est = cls(epochs=3, random_state=0).fit(X, _target(cls))
    assert est.backend_ == "array_api_strict"
    assert type(est.coef_).__module__.startswith("array_api_strict")
    assert est.coef_.device == dev and est.intercept_.device == dev
    assert est.coef_.dtype == xps.float64
    pred = est.predict(X)
    assert type(pred).__module__.startswith("array_api_strict") and pred.device == dev
    # NumPy input to the same model: NumPy output
    assert isinstance(est.predict(X0), np.ndarray)
    # another device of the same library: answers come back on that device
    other = xps.Device("device2")
    assert est.predict(xps.asarray(X0, device=other)).device == other
    # same seed, same answer as NumPy
    ref = cls(epochs=3, random_state=0).fit(X0, _target(cls))
    np.testing.assert_allclose(_np(est.coef_), _np(ref.coef_), rtol=1e-10, atol=1e-12)
    # a model fitted on NumPy answers on the device of the library's input, not its default
    for method in ("predict", "decision_function", "predict_proba"):
        if hasattr(ref, method):
            assert getattr(ref, method)(xps.asarray(X0, device=other)).device == other, method


def test_auto_backend_float32_on_strict() -> None:
    xps = pytest.importorskip("array_api_strict")
    X = xps.asarray(X0.astype(np.float32), device=xps.Device("no_float64"))
    est = anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(X, Y_3)
    assert est.coef_.dtype == xps.float32
    proba = est.predict_proba(X)
    assert proba.dtype == xps.float32 and proba.device == xps.Device("no_float64")


def test_auto_backend_labels_on_strict() -> None:
    xps = pytest.importorskip("array_api_strict")
    est = anyglm.SoftmaxRegression(epochs=2, random_state=0)
    est.fit(xps.asarray(X0), xps.asarray(Y_3))
    assert est.classes_.tolist() == [0, 1, 2]


def test_auto_backend_for_lists_is_numpy() -> None:
    est = anyglm.LinearRegression(epochs=2, random_state=0).fit(X0.tolist(), Y_REG.tolist())
    assert est.backend_ == "numpy"
    assert isinstance(est.coef_, np.ndarray)
    assert isinstance(est.predict(X0.tolist()), np.ndarray)


def test_env_var_selects_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("array_api_strict")
    monkeypatch.setenv("ANYGLM_BACKEND", "array_api_strict")
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit(X0, Y_BIN)
    assert est.backend_ == "array_api_strict"
    assert type(est.coef_).__module__.startswith("array_api_strict")
    assert isinstance(est.predict(X0), np.ndarray)  # NumPy in, NumPy out
    # an explicit backend wins over the variable
    explicit = anyglm.LogisticRegression(epochs=2, random_state=0, backend="numpy").fit(X0, Y_BIN)
    assert explicit.backend_ == "numpy" and isinstance(explicit.coef_, np.ndarray)
    monkeypatch.setenv("ANYGLM_BACKEND", "numpy")
    assert anyglm.LogisticRegression(epochs=2).fit(X0, Y_BIN).backend_ == "numpy"
    monkeypatch.setenv("ANYGLM_BACKEND", "")
    assert anyglm.LogisticRegression(epochs=2).fit(X0, Y_BIN).backend_ == "numpy"


def test_explicit_backend_moves_numpy_input() -> None:
    pytest.importorskip("array_api_strict")
    est = anyglm.LinearRegression(epochs=2, random_state=0, backend="array_api_strict")
    est.fit(X0, Y_REG)
    assert est.backend_ == "array_api_strict"
    assert isinstance(est.predict(X0), np.ndarray)


# -- the generic Estimator --------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_estimator_by_name_equals_fixed_class(cls: type) -> None:
    kw = {"epochs": 4, "batch_size": 7, "learning_rate": 0.1, "random_state": 3}
    y = _target(cls)
    fixed = cls(**kw).fit(X0, y)
    named = anyglm.Estimator(MODEL_OF[cls], **kw).fit(X0, y)
    for a, b in zip(_params(fixed), _params(named), strict=True):
        assert np.array_equal(a, b)
    assert np.array_equal(np.asarray(fixed.predict(X0)), np.asarray(named.predict(X0)))
    assert fixed.history_ == named.history_


# -- predictions ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=NAME.get)
def test_predict_proba(cls: type) -> None:
    y = _target(cls)
    est = cls(epochs=10, learning_rate=0.3, random_state=0).fit(X0, y)
    k = len(np.unique(y))
    P = est.predict_proba(X0)
    assert P.shape == (40, k)
    assert np.all(P >= 0) and np.all(P <= 1)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-12)
    # predict is the most probable class, in classes_ order
    assert np.array_equal(est.classes_[np.argmax(P, axis=1)], np.asarray(est.predict(X0)))


def test_logistic_proba_is_sigmoid_of_decision() -> None:
    est = anyglm.LogisticRegression(epochs=5, random_state=0).fit(X0, Y_BIN)
    z = est.decision_function(X0)
    np.testing.assert_allclose(est.predict_proba(X0)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-12)


@pytest.mark.parametrize(
    ("make", "y", "decision_shape", "coef_shape", "intercept_shape"),
    [
        # LinearRegression has no decision_function; the generic Estimator does.
        (LINEAR, Y_REG, (40,), (3,), ()),
        (LINEAR, np.stack([Y_REG, -Y_REG], 1), (40, 2), (2, 3), (2,)),
        (LINEAR, Y_REG.reshape(-1, 1), (40, 1), (1, 3), (1,)),
        (anyglm.LogisticRegression, Y_BIN, (40,), (1, 3), (1,)),
        (anyglm.SoftmaxRegression, Y_3, (40, 3), (3, 3), (3,)),
        # Two classes: one column, Z[:, 1] - Z[:, 0], as scikit-learn's binary classifiers.
        (anyglm.SoftmaxRegression, Y_BIN, (40,), (2, 3), (2,)),
    ],
    ids=["linear-1d", "linear-2d", "linear-column", "logistic", "softmax-3", "softmax-2"],
)
def test_shapes(
    make: type,
    y: np.ndarray,
    decision_shape: tuple[int, ...],
    coef_shape: tuple[int, ...],
    intercept_shape: tuple[int, ...],
) -> None:
    est = make(epochs=3, random_state=0).fit(X0, y)
    D = est.decision_function(X0)
    assert D.shape == decision_shape
    regressor = est.get_params().get("model") == "linear"
    assert est.predict(X0).shape == (y.shape if regressor else (40,))
    # Documented: coef_ is (n_outputs, n_features), or (n_features,) for a 1-D regression target.
    assert est.coef_.shape == coef_shape
    assert est.intercept_.shape == intercept_shape
    # and the decision function is X @ coef_.T + intercept_
    lin = X0 @ np.asarray(est.coef_).T + np.asarray(est.intercept_)
    if lin.ndim == 2 and lin.shape[1] == 2 and D.ndim == 1:
        lin = lin[:, 1] - lin[:, 0]
    np.testing.assert_allclose(lin.reshape(D.shape), D, rtol=1e-12, atol=1e-12)
    if D.ndim == 1 and not regressor:
        # positive decision <=> the second class, as predict says
        assert np.array_equal(est.predict(X0), est.classes_[(D > 0).astype(int)])


def test_score() -> None:
    reg = anyglm.LinearRegression(random_state=0).fit(X0, Y_REG)
    pred = reg.predict(X0)
    r2 = 1 - np.sum((Y_REG - pred) ** 2) / np.sum((Y_REG - Y_REG.mean()) ** 2)
    assert reg.score(X0, Y_REG) == pytest.approx(r2, rel=1e-12)
    assert reg.score(X0, Y_REG) > 0.9
    clf = anyglm.SoftmaxRegression(random_state=0).fit(X0, Y_3)
    assert clf.score(X0, Y_3) == pytest.approx(np.mean(clf.predict(X0) == Y_3))


# -- seeds ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_same_seed_same_params_different_seed_different(cls: type) -> None:
    kw = {"epochs": 3, "batch_size": 5, "learning_rate": 0.1}
    y = _target(cls)
    a = cls(random_state=11, **kw).fit(X0, y)
    b = cls(random_state=11, **kw).fit(X0, y)
    c = cls(random_state=12, **kw).fit(X0, y)
    for pa, pb in zip(_params(a), _params(b), strict=True):
        assert np.array_equal(pa, pb)
    assert not np.array_equal(_params(a)[0], _params(c)[0])
    # a Generator seeded the same way gives the same result too
    g = cls(random_state=np.random.default_rng(11), **kw).fit(X0, y)
    assert np.array_equal(_params(a)[0], _params(g)[0])


def test_refit_is_fresh() -> None:
    est = anyglm.SoftmaxRegression(epochs=3, random_state=0)
    first = _params(est.fit(X0, Y_3))[0].copy()
    est.fit(X0, Y_BIN)  # another problem: classes and shapes are replaced
    assert est.classes_.tolist() == [0, 1]
    second = _params(est.fit(X0, Y_3))[0]
    assert np.array_equal(first, second)


def test_partial_fit_never_stops_early() -> None:
    # Early stopping would freeze the model for every later call; partial_fit, as
    # scikit-learn's, trains one epoch per call whatever n_iter_no_change says.
    clf = anyglm.LogisticRegression(random_state=0, n_iter_no_change=1, tol=0.5)
    before = None
    for call in range(1, 8):
        clf.partial_fit(X0, _target(anyglm.LogisticRegression), classes=[0, 1])
        assert clf.n_epochs_ == call
        if before is not None:
            assert not np.array_equal(clf.coef_, before)
        before = clf.coef_.copy()


# -- feature names ------------------------------------------------------------------------------


def _frame(X: np.ndarray, names: list[str]) -> Any:
    pd = pytest.importorskip("pandas")
    return pd.DataFrame(X, columns=names)


NAMES = ["age", "bmi", "bp"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=NAME.get)
def test_fit_on_a_data_frame_sets_feature_names_in(cls: type) -> None:
    import warnings

    est = cls(epochs=2, random_state=0).fit(_frame(X0, NAMES), _target(cls))
    assert est.feature_names_in_.tolist() == NAMES and est.feature_names_in_.dtype == object
    plain = cls(epochs=2, random_state=0).fit(X0, _target(cls))
    assert np.array_equal(np.asarray(est.coef_), np.asarray(plain.coef_))
    # the same columns: no warning, the answers of the model fitted on the array
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        pred = est.predict(_frame(X0, NAMES))
    # (a frame is read column-major: the product may round differently in the last bit)
    np.testing.assert_allclose(pred, plain.predict(X0), rtol=1e-12, atol=1e-12)
    # refit on an array: the names go
    est.fit(X0, _target(cls))
    assert not hasattr(est, "feature_names_in_")


def test_reordered_or_renamed_columns_are_refused() -> None:
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit(_frame(X0, NAMES), Y_BIN)
    reordered = _frame(X0, NAMES)[["bmi", "age", "bp"]]
    with pytest.raises(
        ValueError, match="Feature names must be in the same order as they were in fit"
    ):
        est.predict(reordered)
    with pytest.raises(
        ValueError,
        match=(
            r"(?s)Feature names unseen at fit time:\n- weight\n"
            r".*seen at fit time, yet now missing:\n- bmi"
        ),
    ):
        est.predict_proba(_frame(X0, ["age", "weight", "bp"]))
    with pytest.raises(ValueError, match="should match those that were passed during fit"):
        est.decision_function(_frame(X0[:, :2], ["age", "bmi"]))


def test_names_at_fit_but_not_at_predict_and_the_reverse_warn() -> None:
    named = anyglm.LogisticRegression(epochs=2, random_state=0).fit(_frame(X0, NAMES), Y_BIN)
    with pytest.warns(
        UserWarning,
        match="X does not have valid feature names, but LogisticRegression was fitted with",
    ):
        named.predict(X0)
    plain = anyglm.LogisticRegression(epochs=2, random_state=0).fit(X0, Y_BIN)
    with pytest.warns(
        UserWarning, match="X has feature names, but LogisticRegression was fitted without"
    ):
        plain.predict(_frame(X0, NAMES))
    assert np.array_equal(named.coef_, plain.coef_)  # the names change nothing else


def test_column_names_that_are_not_all_strings() -> None:
    est = anyglm.LinearRegression(epochs=2).fit(_frame(X0, [0, 1, 2]), Y_REG)  # type: ignore[list-item]
    assert not hasattr(est, "feature_names_in_")
    with pytest.raises(
        TypeError, match="Feature names are only supported if all input features have string names"
    ):
        anyglm.LinearRegression(epochs=2).fit(_frame(X0, ["a", 1, "c"]), Y_REG)  # type: ignore[list-item]


def test_feature_names_are_saved_and_checked_after_loading(tmp_path: Any) -> None:
    import json
    import zipfile

    est = anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(_frame(X0, NAMES), Y_3)
    est.save(tmp_path / "m.anyglm")
    with zipfile.ZipFile(tmp_path / "m.anyglm") as zf:
        assert json.loads(zf.read("metadata.json"))["feature_names_in"] == NAMES
    loaded = anyglm.load(tmp_path / "m.anyglm")
    assert loaded.feature_names_in_.tolist() == NAMES
    assert np.array_equal(loaded.predict(_frame(X0, NAMES)), est.predict(_frame(X0, NAMES)))
    with pytest.raises(ValueError, match="same order"):
        loaded.predict(_frame(X0, NAMES)[NAMES[::-1]])


def test_partial_fit_keeps_the_names_of_the_first_call() -> None:
    est = anyglm.LogisticRegression(random_state=0)
    est.partial_fit(_frame(X0, NAMES), Y_BIN, classes=[0, 1])
    est.partial_fit(_frame(X0, NAMES), Y_BIN)
    assert est.feature_names_in_.tolist() == NAMES
    with pytest.raises(ValueError, match="same order"):
        est.partial_fit(_frame(X0, NAMES)[NAMES[::-1]], Y_BIN)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        est.partial_fit(X0, Y_BIN)
    assert est.feature_names_in_.tolist() == NAMES


# -- partial_fit and refits keep the model consistent -----------------------------------------

_X40 = np.random.default_rng(0).normal(size=(40, 3))
_Y40 = (_X40[:, 0] + _X40[:, 1] > 0).astype(int)


def test_partial_fit_continues_a_loaded_model(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(epochs=3, random_state=0).fit(_X40, _Y40)
    est.save(tmp_path / "m")
    loaded = anyglm.load(tmp_path / "m")
    loaded.partial_fit(_X40, _Y40)
    assert loaded.n_epochs_ == 4 and len(loaded.history_["train_loss"]) == 4
    assert not np.array_equal(loaded.coef_, est.coef_)


def test_partial_fit_keeps_the_first_calls_dtype_and_device() -> None:
    xs = pytest.importorskip("array_api_strict")
    est = anyglm.LogisticRegression(random_state=0)
    est.partial_fit(_X40.astype(np.float32), _Y40, classes=[0, 1])
    est.partial_fit(_X40, _Y40)  # float64 data: converted to the model's float32
    assert est.coef_.dtype == np.float32 and est._dtype == "float32"
    dev1 = xs.Device("device1")
    strict = anyglm.LogisticRegression(random_state=0)
    strict.partial_fit(xs.asarray(_X40, device=dev1), _Y40, classes=[0, 1])
    strict.partial_fit(xs.asarray(_X40), _Y40)  # CPU_DEVICE data: moved to device1
    assert strict.coef_.device == dev1
    with pytest.raises(ValueError, match="partial_fit got data for backend 'array_api_strict'"):
        est.partial_fit(xs.asarray(_X40), _Y40)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"checkpoint_on": "bogus", "checkpoint": "ck"}, ValueError),
        ({"checkpoint": "/no/such/folder/ck"}, FileNotFoundError),
    ],
)
def test_a_refit_refused_up_front_leaves_the_fitted_model_intact(kwargs: dict, error: type) -> None:
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit(_X40, _Y40)
    before = np.asarray(est.coef_).copy()
    X5 = np.random.default_rng(1).normal(size=(40, 5))
    with pytest.raises(error):
        est.fit(X5, _Y40, **kwargs)
    assert est.n_features_in_ == 3
    assert np.array_equal(est.coef_, before)
    assert est.predict(_X40).shape == (40,)


def test_switching_model_on_refit_drops_the_old_tasks_state(tmp_path: Path) -> None:
    est = anyglm.Estimator("softmax", epochs=2, random_state=0).fit(_X40, _Y40)
    assert hasattr(est, "classes_")
    est.set_params(model="linear").fit(_X40, _X40[:, 0])
    assert not hasattr(est, "classes_")
    est.save(tmp_path / "m")
    assert "classes.npy" not in zipfile.ZipFile(tmp_path / "m").namelist()
    est.set_params(model="softmax").fit(_X40, _Y40)
    assert not hasattr(est, "_n_targets")


def test_weights_and_targets_on_another_device_than_x_are_read_through_their_backend() -> None:
    # scikit-learn's mixed-input check: y and sample_weight on array-api-strict's
    # device1, which NumPy cannot read, X elsewhere.
    xs = pytest.importorskip("array_api_strict")
    dev1 = xs.Device("device1")
    X = _X40
    y = xs.asarray(X[:, 0], device=dev1)
    w = xs.asarray(np.linspace(0.5, 2.0, 40), device=dev1)
    est = anyglm.LinearRegression(epochs=3, n_iter_no_change=None, random_state=0)
    ref = anyglm.LinearRegression(epochs=3, n_iter_no_change=None, random_state=0)
    est.fit(X, y, sample_weight=w)
    ref.fit(X, X[:, 0], sample_weight=np.linspace(0.5, 2.0, 40))
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    assert est.score(X, y, sample_weight=w) == ref.score(X, X[:, 0], np.linspace(0.5, 2.0, 40))
