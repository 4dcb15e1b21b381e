"""Bad input gets a clear error (type and message), and the user's arrays are never modified.

Every case below checks the exception type, a fragment of its message, and that
the arrays passed in are bit-for-bit what they were before the call. Read-only
inputs must work.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.errors import (
    BackendUnavailableError,
    NotFittedError,
    UnknownNameError,
)

ESTIMATORS = [anyglm.LinearRegression, anyglm.LogisticRegression, anyglm.SoftmaxRegression]
CLASSIFIERS = [anyglm.LogisticRegression, anyglm.SoftmaxRegression]
FAST = {"epochs": 2, "random_state": 0}

_RNG = np.random.default_rng(0)
X0 = _RNG.normal(size=(24, 3))
Y_BIN = (X0[:, 0] > 0).astype(np.int64)
Y_3 = np.digitize(X0[:, 0], [-0.5, 0.5]).astype(np.int64)
Y_REG = X0 @ np.array([1.0, -2.0, 0.5])


# -- helpers ------------------------------------------------------------------------------


def _host(a: Any) -> Any:
    """A NumPy copy of an array of any backend (lists and scalars as they are)."""
    if type(a).__module__.startswith("array_api_strict"):
        import array_api_strict as xps

        return np.asarray(a.to_device(xps.Device("CPU_DEVICE"))).copy()
    return copy.deepcopy(a)


def _assert_unchanged(after: Any, before: Any) -> None:
    after = _host(after)
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray)
        assert after.dtype == before.dtype and after.shape == before.shape
        if before.dtype.kind in "fc":
            assert np.array_equal(after, before, equal_nan=True)
        else:
            assert np.array_equal(after, before)
    elif isinstance(before, (list, tuple)):
        assert type(after) is type(before) and len(after) == len(before)
        for a, b in zip(after, before, strict=True):
            _assert_unchanged(a, b)
    elif isinstance(before, dict):
        assert type(after) is dict and list(after) == list(before)
        for k in before:
            _assert_unchanged(after[k], before[k])
    elif isinstance(before, float) and math.isnan(before):
        assert math.isnan(after)
    else:
        assert after == before


def _with(a: np.ndarray, index: Any, value: Any) -> np.ndarray:
    out = a.astype(np.float64, copy=True)
    out[index] = value
    return out


def _target(cls: type) -> np.ndarray:
    return {
        anyglm.LinearRegression: Y_REG,
        anyglm.LogisticRegression: Y_BIN,
        anyglm.SoftmaxRegression: Y_3,
    }[cls]


def _fitted(cls: type, **kw: Any) -> Any:
    return cls(**FAST, **kw).fit(X0, _target(cls))


def _check_fit_raises(
    est: Any, X: Any, y: Any, exc: type, match: str, **fit_kw: Any
) -> pytest.ExceptionInfo[Any]:
    """Fit, expect ``exc`` matching ``match``, and check no input was modified."""
    before = {"X": _host(X), "y": _host(y), **{k: _host(v) for k, v in fit_kw.items()}}
    with pytest.raises(exc, match=match) as info:
        est.fit(X, y, **fit_kw)
    _assert_unchanged(X, before["X"])
    _assert_unchanged(y, before["y"])
    for k, v in fit_kw.items():
        _assert_unchanged(v, before[k])
    return info


# -- NaN / inf ----------------------------------------------------------------------------

NONFINITE = [np.nan, np.inf, -np.inf]


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_nonfinite_X_numpy(cls: type, value: float) -> None:
    X = _with(X0, (5, 1), value)
    _check_fit_raises(cls(**FAST), X, _target(cls).copy(), ValueError, "NaN or infinity")


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
def test_nonfinite_X_moved_to_other_backend(value: float) -> None:
    # Host-side checks (the array goes from NumPy to array_api_strict): names the position.
    X = _with(X0, (5, 1), value)
    est = anyglm.LogisticRegression(backend="array_api_strict", **FAST)
    _check_fit_raises(
        est, X, Y_BIN.copy(), ValueError, r"NaN or infinity \(first at row 5, column 1\)"
    )


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
def test_nonfinite_X_list(value: float) -> None:
    X = _with(X0, (2, 0), value).tolist()
    _check_fit_raises(anyglm.LinearRegression(**FAST), X, Y_REG.tolist(), ValueError, "NaN or inf")


def test_nonfinite_X_array_api_strict() -> None:
    xps = pytest.importorskip("array_api_strict")
    X = xps.asarray(_with(X0, (0, 0), np.nan))
    _check_fit_raises(anyglm.LinearRegression(**FAST), X, Y_REG.copy(), ValueError, "NaN or inf")


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
def test_nonfinite_y_regression(value: float) -> None:
    y = _with(Y_REG, 3, value)
    _check_fit_raises(anyglm.LinearRegression(**FAST), X0.copy(), y, ValueError, "y contains NaN")


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_nonfinite_y_classifier(cls: type, value: float) -> None:
    y = _with(_target(cls), 3, value)
    _check_fit_raises(cls(**FAST), X0.copy(), y, ValueError, "y contains NaN or infinity")


@pytest.mark.parametrize("value", NONFINITE, ids=["nan", "inf", "-inf"])
def test_nonfinite_X_at_predict(value: float) -> None:
    est = _fitted(anyglm.LogisticRegression)
    X = _with(X0, (1, 1), value)
    before = X.copy()
    with pytest.raises(ValueError, match="NaN or infinity"):
        est.predict(X)
    _assert_unchanged(X, before)


# -- shapes -------------------------------------------------------------------------------

# Two routes through the checks: a NumPy array trained on NumPy (checked in place), and a
# NumPy array trained on array_api_strict (checked on the host before the copy).
ROUTES = ["numpy", "array_api_strict"]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    "X",
    [X0[:, 0].copy(), X0.reshape(24, 3, 1).copy(), np.asarray(1.5)],
    ids=["1-D", "3-D", "0-D"],
)
def test_X_not_2d(X: np.ndarray, route: str) -> None:
    y = Y_REG[: X.shape[0]] if X.ndim else Y_REG[:1]
    est = anyglm.LinearRegression(backend=route, **FAST)
    _check_fit_raises(est, X, y.copy(), ValueError, r"X must be 2-D \(n_samples, n_features\)")


def test_X_1d_hint_on_host_route() -> None:
    est = anyglm.LinearRegression(backend="array_api_strict", **FAST)
    _check_fit_raises(est, X0[:, 0].copy(), Y_REG.copy(), ValueError, r"X\.reshape\(-1, 1\)")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_no_rows(cls: type, route: str) -> None:
    X = np.empty((0, 3))
    y = np.empty((0,), dtype=_target(cls).dtype)
    _check_fit_raises(cls(backend=route, **FAST), X, y, ValueError, r"no rows|at least one row")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_no_features(cls: type, route: str) -> None:
    X = np.empty((24, 0))
    est = cls(backend=route, **FAST)
    _check_fit_raises(
        est,
        X,
        _target(cls).copy(),
        ValueError,
        r"0 feature\(s\) \(shape=\(24, 0\)\) while a minimum",
    )


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("n", [23, 25, 1])
def test_y_wrong_length(cls: type, n: int) -> None:
    y = np.resize(_target(cls), n)
    _check_fit_raises(
        cls(**FAST), X0.copy(), y, ValueError, rf"y has {n} (rows|labels) but X has 24"
    )


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (Y_REG.reshape(24, 1, 1).copy(), r"y must be 1-D or 2-D, got shape \(24, 1, 1\)"),
        (np.asarray(2.0), r"y must be 1-D or 2-D, got shape \(\)"),
        (np.empty((24, 0)), r"no target columns"),
    ],
    ids=["3-D", "0-D", "no-columns"],
)
def test_y_wrong_shape_regression(y: np.ndarray, match: str) -> None:
    _check_fit_raises(anyglm.LinearRegression(**FAST), X0.copy(), y, ValueError, match)


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_y_column_vector_classifier_is_raveled_with_a_warning(cls: type) -> None:
    from anyglm.errors import DataConversionWarning

    y = _target(cls).reshape(-1, 1).copy()
    with pytest.warns(DataConversionWarning, match="A column-vector y was passed"):
        est = cls(**FAST).fit(X0.copy(), y)
    _assert_unchanged(y, _target(cls).reshape(-1, 1))
    ref = cls(**FAST).fit(X0.copy(), _target(cls).copy())
    assert np.array_equal(np.asarray(est.coef_), np.asarray(ref.coef_))


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_y_2d_classifier(cls: type) -> None:
    y = np.stack([_target(cls)] * 2, axis=1)
    _check_fit_raises(cls(**FAST), X0.copy(), y, ValueError, "1-D array of class labels")


def test_y_val_wrong_target_columns() -> None:
    y2 = np.stack([Y_REG, -Y_REG], axis=1)
    est = anyglm.LinearRegression(**FAST)
    vd = (X0[:5].copy(), Y_REG[:5].copy())
    _check_fit_raises(
        est, X0.copy(), y2, ValueError, "y_val has 1 target columns but y has 2", validation_data=vd
    )


# -- classes ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("label", [1, 0, "yes"])
def test_single_class_refused(cls: type, label: Any) -> None:
    y = np.full(24, label)
    _check_fit_raises(cls(**FAST), X0.copy(), y, ValueError, r"single class.*classes=\[")


def test_one_sample_classifier_says_so() -> None:
    # scikit-learn's check_fit2d_1sample looks for "1 sample" or "one class".
    est = anyglm.LogisticRegression(**FAST)
    _check_fit_raises(est, X0[:1].copy(), Y_BIN[:1].copy(), ValueError, r"1 sample.*one class")
    anyglm.LogisticRegression(**FAST).fit(X0[:1], Y_BIN[:1], classes=[0, 1])  # declared: fine


@pytest.mark.parametrize(
    ("cls", "classes"),
    [(anyglm.LogisticRegression, [0, 1]), (anyglm.SoftmaxRegression, [0, 1, 2])],
    ids=["logistic", "softmax"],
)
def test_single_class_allowed_when_classes_declared(cls: type, classes: list[int]) -> None:
    X, y = X0.copy(), np.ones(24, dtype=np.int64)
    Xb, yb = X.copy(), y.copy()
    est = cls(alpha=0.0, learning_rate=0.5, **FAST).fit(X, y, classes=classes)
    assert est.classes_.tolist() == classes
    proba = est.predict_proba(X)
    assert proba.shape == (24, len(classes))
    # Every label seen is 1: after training, class 1 is the most probable everywhere.
    assert np.all(est.predict(X) == 1)
    assert np.all(np.isfinite(np.asarray(est.coef_)))
    _assert_unchanged(X, Xb)
    _assert_unchanged(y, yb)


def test_all_positive_dataset_with_declared_classes() -> None:
    X, y = anyglm.datasets.load_dataset("all-positive")
    est = anyglm.LogisticRegression(alpha=0.0, epochs=3, random_state=0).fit(X, y, classes=[0, 1])
    b = np.asarray(est.history_["train_loss"])
    assert np.all(np.diff(b) < 0)  # the loss keeps falling, nothing refused


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "y", [Y_REG, Y_BIN + 0.5, np.linspace(0, 1, 24)], ids=["reg", "half", "lin"]
)
def test_continuous_y_for_classifier(cls: type, y: np.ndarray) -> None:
    _check_fit_raises(cls(**FAST), X0.copy(), y.copy(), ValueError, r"looks continuous.*LinearRegr")


def test_whole_floats_are_labels() -> None:
    est = anyglm.LogisticRegression(**FAST).fit(X0, Y_BIN.astype(np.float64))
    assert est.classes_.tolist() == [0.0, 1.0]


def test_logistic_refuses_three_classes() -> None:
    est = anyglm.LogisticRegression(**FAST)
    _check_fit_raises(
        est, X0.copy(), Y_3.copy(), ValueError, r"binary but y has 3 classes.*softmax"
    )


def test_estimator_logistic_refuses_three_classes() -> None:
    est = anyglm.Estimator("logistic", **FAST)
    _check_fit_raises(est, X0.copy(), Y_3.copy(), ValueError, "binary but y has 3 classes")


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_y_val_label_not_among_classes(cls: type) -> None:
    y = _target(cls).copy()
    y_val = y[:6].copy()
    y_val[2] = 9
    vd = (X0[:6].copy(), y_val)
    _check_fit_raises(
        cls(**FAST),
        X0.copy(),
        y,
        ValueError,
        r"y_val contains the label .*9.*not among the classes",
        validation_data=vd,
    )


@pytest.mark.parametrize("cls", CLASSIFIERS, ids=lambda c: c.__name__)
def test_class_weight_key_not_a_class(cls: type) -> None:
    est = cls(class_weight={0: 1.0, "seven": 2.0}, **FAST)
    _check_fit_raises(
        est,
        X0.copy(),
        _target(cls).copy(),
        ValueError,
        r"class_weight contains the label 'seven', which is not among the classes",
    )


def test_y_label_not_among_declared_classes() -> None:
    est = anyglm.SoftmaxRegression(**FAST)
    _check_fit_raises(
        est, X0.copy(), Y_3.copy(), ValueError, "not among the classes", classes=[0, 1, 5]
    )


def test_declared_classes_with_duplicates() -> None:
    est = anyglm.LogisticRegression(**FAST)
    _check_fit_raises(
        est, X0.copy(), Y_BIN.copy(), ValueError, "classes contains duplicates", classes=[0, 1, 1]
    )


# -- complex and object data ----------------------------------------------------------------


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_complex_X(cls: type, route: str) -> None:
    X = X0.astype(np.complex128)
    est = cls(backend=route, **FAST)
    _check_fit_raises(est, X, _target(cls).copy(), ValueError, "X is complex.*Complex data not")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize(
    ("X", "match"),
    [
        (X0.astype(str), r"numeric.*dtype"),
        (
            np.array([["a", "b"]] * 24, dtype=object),
            r"row 0, column 0 is 'a' \(str\); the argument",
        ),
        (np.array([[1.0, {"k": 1}]] * 24, dtype=object), r"column 1 is \{'k': 1\} \(dict\)"),
    ],
    ids=["str", "object-str", "object-dict"],
)
def test_string_or_object_X(X: np.ndarray, match: str, route: str) -> None:
    est = anyglm.LinearRegression(backend=route, **FAST)
    _check_fit_raises(est, X, Y_REG.copy(), TypeError, match)


@pytest.mark.parametrize("route", ROUTES)
def test_object_X_of_numbers_is_read_as_numbers(route: str) -> None:
    # scikit-learn's convention: an object array holding numbers is numeric data.
    X = X0.astype(object)
    est = anyglm.LinearRegression(backend=route, **FAST).fit(X, Y_REG)
    ref = anyglm.LinearRegression(backend=route, **FAST).fit(X0, Y_REG)
    assert np.array_equal(_host(est.coef_), _host(ref.coef_))
    assert np.array_equal(_host(est.predict(X)), _host(ref.predict(X0)))
    _assert_unchanged(X, X0.astype(object))


def test_string_X_host_route_says_encode() -> None:
    est = anyglm.LinearRegression(backend="array_api_strict", **FAST)
    _check_fit_raises(est, X0.astype(str), Y_REG.copy(), TypeError, "encode them as numbers")


def test_ragged_X() -> None:
    X = [[1.0, 2.0], [3.0]]
    _check_fit_raises(
        anyglm.LinearRegression(**FAST), X, [1.0, 2.0], ValueError, "could not be read as an array"
    )


@pytest.mark.parametrize(
    ("cls", "y", "exc", "match"),
    [
        (anyglm.LinearRegression, Y_REG.astype(np.complex128), ValueError, "y is complex"),
        (anyglm.LogisticRegression, Y_BIN.astype(np.complex128), ValueError, "y is complex"),
        (anyglm.LinearRegression, Y_REG.astype(str), TypeError, r"y must be numeric.*encode"),
        (
            anyglm.LinearRegression,
            np.array([1.0, "a"] * 12, dtype=object),
            TypeError,
            r"y has dtype object and its value at row 1 is 'a'",
        ),
        (
            anyglm.LogisticRegression,
            np.array([1 + 1j, 0] * 12, dtype=object),
            TypeError,
            "complex",
        ),
    ],
    ids=["reg-complex", "clf-complex", "reg-str", "reg-object", "clf-object-complex"],
)
def test_complex_or_object_y(cls: type, y: np.ndarray, exc: type, match: str) -> None:
    _check_fit_raises(cls(**FAST), X0.copy(), y, exc, match)


def test_complex_X_at_predict() -> None:
    est = _fitted(anyglm.LinearRegression)
    with pytest.raises(ValueError, match="Complex data not supported"):
        est.predict(X0.astype(np.complex128))


# -- prediction ---------------------------------------------------------------------------

METHODS = ["predict", "decision_function", "predict_proba", "score"]


def _call(est: Any, method: str, X: Any, cls: type) -> Any:
    if method == "score":
        return est.score(X, _target(cls)[: np.shape(X)[0]])
    return getattr(est, method)(X)


def _method_cases(methods: list[str], classes: list[type]) -> list[Any]:
    # LinearRegression has neither predict_proba nor decision_function
    # (see test_regressor_has_no_predict_proba_or_decision_function).
    return [
        pytest.param(cls, m, id=f"{cls.__name__}-{m}")
        for cls in classes
        for m in methods
        if not (m in ("predict_proba", "decision_function") and cls is anyglm.LinearRegression)
    ]


@pytest.mark.parametrize(("cls", "method"), _method_cases(METHODS, ESTIMATORS))
def test_predict_wrong_number_of_features(cls: type, method: str) -> None:
    est = _fitted(cls)
    for X in (X0[:, :2].copy(), np.hstack([X0, X0])):
        before = X.copy()
        msg = rf"X has {X.shape[1]} features, but {cls.__name__} is expecting 3 features as input"
        with pytest.raises(ValueError, match=msg):
            _call(est, method, X, cls)
        _assert_unchanged(X, before)


def test_predict_1d_X() -> None:
    est = _fitted(anyglm.LogisticRegression)
    with pytest.raises(ValueError, match="X must be 2-D"):
        est.predict(X0[0].copy())


@pytest.mark.parametrize(
    ("cls", "method"), _method_cases([*METHODS, "save"], [*ESTIMATORS, anyglm.Estimator])
)
def test_use_before_fit(cls: type, method: str, tmp_path: Any) -> None:
    est = cls()
    X = X0.copy()
    with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X, y\)") as info:
        if method == "save":
            est.save(tmp_path / "m.anyglm")
        elif method == "score":
            est.score(X, Y_3)
        else:
            getattr(est, method)(X)
    # sklearn's convention: NotFittedError is both a ValueError and an AttributeError.
    assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)
    _assert_unchanged(X, X0)
    if method == "save":
        assert not (tmp_path / "m.anyglm").exists()


def test_regressor_has_no_predict_proba_or_decision_function() -> None:
    # scikit-learn's convention: hasattr is how meta-estimators decide what to call.
    for est in (anyglm.LinearRegression(), _fitted(anyglm.LinearRegression)):
        assert not hasattr(est, "predict_proba")
        assert not hasattr(est, "decision_function")
        with pytest.raises(AttributeError, match="has no attribute 'predict_proba'"):
            est.predict_proba(X0)
    # The generic Estimator keeps the linear predictor for every model, but no
    # probabilities for a regressor.
    generic = anyglm.Estimator("linear", **FAST).fit(X0, Y_REG)
    assert hasattr(generic, "decision_function") and not hasattr(generic, "predict_proba")
    assert np.allclose(generic.decision_function(X0), generic.predict(X0))
    for cls in CLASSIFIERS:
        assert hasattr(cls(), "predict_proba") and hasattr(cls(), "decision_function")


# -- hyperparameters ----------------------------------------------------------------------

POSITIVE_INTS = ["batch_size", "epochs"]
POSITIVE_REALS = ["learning_rate"]

BAD_INT_VALUES = [
    (0, ValueError, r"must be a positive integer \(>= 1\), got 0"),
    (-3, ValueError, r"must be a positive integer \(>= 1\), got -3"),
    (np.nan, TypeError, r"must be a positive integer, got nan \(float\)"),
    (np.inf, TypeError, r"must be a positive integer, got inf \(float\)"),
    (2.5, TypeError, r"must be a positive integer, got 2\.5 \(float\)"),
    (4.0, TypeError, r"must be a positive integer, got 4\.0 \(float\)"),
    (True, TypeError, r"must be a positive integer, got True \(bool\)"),
    ("8", TypeError, r"must be a positive integer, got '8' \(str\)"),
    (None, TypeError, r"must be a positive integer, got None \(NoneType\)"),
]

BAD_REAL_VALUES = [
    (0, ValueError, r"must be > 0, got 0"),
    (0.0, ValueError, r"must be > 0, got 0\.0"),
    (-0.1, ValueError, r"must be > 0, got -0\.1"),
    (np.nan, ValueError, r"must be finite, got nan"),
    (np.inf, ValueError, r"must be finite, got inf"),
    (-np.inf, ValueError, r"must be finite, got -inf"),
    (True, TypeError, r"must be a real number > 0, got True \(bool\)"),
    ("0.1", TypeError, r"must be a real number > 0, got '0\.1' \(str\)"),
    (None, TypeError, r"must be a real number > 0, got None \(NoneType\)"),
    (1 + 0j, TypeError, r"must be a real number > 0, got \(1\+0j\) \(complex\)"),
]

BAD_ALPHA_VALUES = [
    (-1e-4, ValueError, r"alpha must be >= 0, got -0\.0001"),
    (np.nan, ValueError, r"alpha must be finite, got nan"),
    (np.inf, ValueError, r"alpha must be finite, got inf"),
    (True, TypeError, r"alpha must be a real number >= 0, got True \(bool\)"),
    (np.bool_(False), TypeError, r"alpha must be a real number >= 0"),
    ("0", TypeError, r"alpha must be a real number >= 0, got '0' \(str\)"),
    (None, TypeError, r"alpha must be a real number >= 0, got None \(NoneType\)"),
]


def _hp_cases() -> list[Any]:
    cases = []
    for name in POSITIVE_INTS:
        for value, exc, match in BAD_INT_VALUES:
            cases.append(pytest.param(name, value, exc, f"{name} {match}", id=f"{name}={value!r}"))
    for name in POSITIVE_REALS:
        for value, exc, match in BAD_REAL_VALUES:
            cases.append(pytest.param(name, value, exc, f"{name} {match}", id=f"{name}={value!r}"))
    for value, exc, match in BAD_ALPHA_VALUES:
        cases.append(pytest.param("alpha", value, exc, match, id=f"alpha={value!r}"))
    return cases


@pytest.mark.parametrize(("name", "value", "exc", "match"), _hp_cases())
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_bad_hyperparameter(cls: type, name: str, value: Any, exc: type, match: str) -> None:
    params = {**FAST, name: value}
    _check_fit_raises(cls(**params), X0.copy(), _target(cls).copy(), exc, match)


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("alpha", [0, 0.0, np.float64(0.0)])
def test_alpha_zero_is_valid(cls: type, alpha: Any) -> None:
    est = cls(alpha=alpha, **FAST).fit(X0, _target(cls))
    assert est.n_epochs_ == 2
    assert np.all(np.isfinite(np.asarray(est.coef_)))


def test_numpy_scalar_hyperparameters_are_accepted() -> None:
    est = anyglm.LinearRegression(
        batch_size=np.int32(8),
        epochs=np.int64(2),
        learning_rate=np.float32(0.05),
        alpha=np.float16(0),
    ).fit(X0, Y_REG)
    assert est.n_epochs_ == 2
    assert len(est.history_["train_loss"]) == 2


@pytest.mark.parametrize(
    ("params", "exc", "match"),
    [
        ({"tol": -1.0}, ValueError, r"tol must be >= 0"),
        ({"tol": np.nan}, ValueError, r"tol must be finite"),
        ({"n_iter_no_change": 0}, ValueError, r"n_iter_no_change must be a positive integer"),
        ({"n_iter_no_change": 1.5}, TypeError, r"n_iter_no_change must be a positive integer"),
        ({"shuffle": "yes"}, TypeError, r"shuffle must be True or False, got 'yes'"),
        ({"shuffle": 1}, TypeError, r"shuffle must be True or False, got 1"),
    ],
    ids=["tol-neg", "tol-nan", "n_iter-0", "n_iter-float", "shuffle-str", "shuffle-int"],
)
def test_other_bad_hyperparameters(params: dict[str, Any], exc: type, match: str) -> None:
    est = anyglm.SoftmaxRegression(**{**FAST, **params})
    _check_fit_raises(est, X0.copy(), Y_3.copy(), exc, match)


# -- backends and models --------------------------------------------------------------------


def test_unknown_backend_name() -> None:
    est = anyglm.LinearRegression(backend="nunpy", **FAST)
    info = _check_fit_raises(
        est, X0.copy(), Y_REG.copy(), UnknownNameError, "unknown backend 'nunpy'"
    )
    msg = str(info.value)
    assert "known backends: " in msg
    for name in ("numpy", "array_api_strict", "cupy"):
        assert name in msg
    assert "Did you mean 'numpy'?" in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, KeyError)
    assert not msg.startswith(("'", '"'))  # not KeyError's quoted repr


def test_unknown_backend_get_backend() -> None:
    with pytest.raises(UnknownNameError, match=r"Did you mean 'array_api_strict'\?"):
        anyglm.get_backend("array_api_strickt")


def test_unknown_backend_without_close_match_lists_names() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown backend 'zzzzzz'; known backends: .*numpy"
    ):
        anyglm.get_backend("zzzzzz")


def test_unknown_backend_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANYGLM_BACKEND", "nunpy")
    est = anyglm.LinearRegression(**FAST)
    _check_fit_raises(est, X0.copy(), Y_REG.copy(), UnknownNameError, "Did you mean 'numpy'")


@pytest.mark.parametrize("backend", [3, b"numpy", ["numpy"]], ids=["int", "bytes", "list"])
def test_backend_of_wrong_type(backend: Any) -> None:
    est = anyglm.LinearRegression(backend=backend, **FAST)
    _check_fit_raises(est, X0.copy(), Y_REG.copy(), TypeError, "backend must be a backend name")


def test_unknown_model_name() -> None:
    est = anyglm.Estimator("sofmax", **FAST)
    info = _check_fit_raises(est, X0.copy(), Y_3.copy(), UnknownNameError, "unknown model 'sofmax'")
    msg = str(info.value)
    assert "known models: " in msg and "linear" in msg and "logistic" in msg
    assert "Did you mean 'softmax'?" in msg


def test_unknown_model_get_model() -> None:
    with pytest.raises(
        UnknownNameError, match=r"unknown model 'logisitc'.*Did you mean 'logistic'"
    ):
        anyglm.get_model("logisitc")


def test_model_of_wrong_type() -> None:
    est = anyglm.Estimator(3, **FAST)  # type: ignore[arg-type]
    _check_fit_raises(est, X0.copy(), Y_3.copy(), TypeError, r"model must be a model name \(str\)")


def test_unavailable_cupy() -> None:
    be = anyglm.get_backend("cupy")
    if be.is_available():
        pytest.skip("CuPy is usable on this machine; the unavailable case cannot be shown here")
    reason = be.unavailable_reason
    assert reason
    listed = {b["name"]: b for b in anyglm.list_backends()}["cupy"]
    assert listed["available"] is False and listed["reason"] == reason
    est = anyglm.LogisticRegression(backend="cupy", **FAST)
    info = _check_fit_raises(
        est,
        X0.copy(),
        Y_BIN.copy(),
        BackendUnavailableError,
        "backend 'cupy' is not available here",
    )
    assert reason in str(info.value)


def test_unavailable_backend_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    # Any backend may be unavailable; make array_api_strict so for this test only.
    be = anyglm.get_backend("array_api_strict")
    monkeypatch.setitem(be.__dict__, "_unavailable_reason", "pretend its GPU is missing")
    assert not be.is_available()
    est = anyglm.LinearRegression(backend="array_api_strict", **FAST)
    _check_fit_raises(
        est,
        X0.copy(),
        Y_REG.copy(),
        BackendUnavailableError,
        r"'array_api_strict' is not available here: pretend its GPU is missing",
    )
    with pytest.raises(BackendUnavailableError, match="pretend its GPU is missing"):
        be.require()


# -- random_state, dtype, class_weight, sample_weight, validation -------------------------


@pytest.mark.parametrize(
    ("random_state", "exc", "match"),
    [
        (-1, ValueError, r"random_state must be a non-negative integer, got -1"),
        (1.5, TypeError, r"random_state must be None, a non-negative int, a numpy\.random"),
        ("seed", TypeError, r"random_state must be None.*got 'seed'"),
        (True, TypeError, r"random_state must be None.*got True"),
    ],
    ids=["negative", "float", "str", "bool"],
)
def test_bad_random_state(random_state: Any, exc: type, match: str) -> None:
    est = anyglm.LinearRegression(epochs=2, random_state=random_state)
    _check_fit_raises(est, X0.copy(), Y_REG.copy(), exc, match)


@pytest.mark.parametrize(
    "random_state",
    [None, 0, np.int64(7), np.random.default_rng(3), np.random.RandomState(5)],
    ids=["None", "int", "np.int64", "Generator", "RandomState"],
)
def test_good_random_state(random_state: Any) -> None:
    est = anyglm.LinearRegression(epochs=2, random_state=random_state).fit(X0, Y_REG)
    assert est.n_epochs_ == 2


def test_random_state_as_random_state_is_deterministic_and_not_advanced() -> None:
    # A RandomState is read (its MT19937 state copied into a Generator), not advanced:
    # the same RandomState gives the same fit, and a different seed a different one.
    rs = np.random.RandomState(5)
    before = rs.get_state(legacy=False)
    params = {"epochs": 2, "batch_size": 4}
    a = anyglm.LinearRegression(random_state=rs, **params).fit(X0, Y_REG)
    b = anyglm.LinearRegression(random_state=rs, **params).fit(X0, Y_REG)
    c = anyglm.LinearRegression(random_state=np.random.RandomState(6), **params).fit(X0, Y_REG)
    assert np.array_equal(a.coef_, b.coef_)
    assert not np.array_equal(a.coef_, c.coef_)
    after = rs.get_state(legacy=False)
    assert after["state"]["pos"] == before["state"]["pos"]
    assert np.array_equal(after["state"]["key"], before["state"]["key"])


@pytest.mark.parametrize("dtype", ["float16", "int32", "double", 32, "f4"])
def test_bad_dtype(dtype: Any) -> None:
    est = anyglm.LinearRegression(dtype=dtype, **FAST)
    _check_fit_raises(
        est, X0.copy(), Y_REG.copy(), ValueError, r"dtype must be 'float32', 'float64' or None"
    )


@pytest.mark.parametrize(
    ("class_weight", "exc", "match"),
    [
        ("bal", ValueError, r"class_weight must be 'balanced', a dict or None, got 'bal'"),
        ([1.0, 2.0], TypeError, r"class_weight must be 'balanced', a dict or None"),
        ({1: -1.0}, ValueError, r"class_weight\[1\] must be >= 0, got -1\.0"),
        ({1: np.nan}, ValueError, r"class_weight\[1\] must be finite"),
        ({1: "2"}, TypeError, r"class_weight\[1\] must be a real number"),
        ({0: 0.0, 1: 0.0}, ValueError, r"class_weight gives every sample a weight of zero"),
        ({5: 1.0}, ValueError, r"label 5, which is not among the classes \[0, 1\]"),
    ],
    ids=["str", "list", "negative", "nan", "value-str", "all-zero", "unknown-key"],
)
def test_bad_class_weight(class_weight: Any, exc: type, match: str) -> None:
    est = anyglm.LogisticRegression(class_weight=class_weight, **FAST)
    _check_fit_raises(est, X0.copy(), Y_BIN.copy(), exc, match)


def test_class_weight_on_a_regressor() -> None:
    est = anyglm.Estimator("linear", class_weight="balanced", **FAST)
    _check_fit_raises(
        est, X0.copy(), Y_REG.copy(), ValueError, r"class_weight applies to classifiers"
    )


@pytest.mark.parametrize(
    ("sample_weight", "exc", "match"),
    [
        (-np.ones(24), ValueError, "sample_weight must be non-negative"),
        (_with(np.ones(24), 4, -0.5), ValueError, "sample_weight must be non-negative"),
        (np.ones(23), ValueError, r"sample_weight must have shape \(24,\), got \(23,\)"),
        (np.ones(25), ValueError, r"sample_weight must have shape \(24,\), got \(25,\)"),
        (np.ones((24, 1)), ValueError, r"sample_weight must have shape \(24,\), got \(24, 1\)"),
        (_with(np.ones(24), 4, np.nan), ValueError, "sample_weight contains NaN or infinity"),
        (_with(np.ones(24), 4, np.inf), ValueError, "sample_weight contains NaN or infinity"),
        (np.zeros(24), ValueError, "sample_weight sums to zero"),
        (np.array(["1"] * 24), TypeError, r"sample_weight must be numeric"),
        (np.ones(24, dtype=np.complex128), ValueError, r"sample_weight is complex"),
    ],
    ids=[
        "all-negative",
        "one-negative",
        "short",
        "long",
        "2-D",
        "nan",
        "inf",
        "zeros",
        "str",
        "complex",
    ],
)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_bad_sample_weight(cls: type, sample_weight: Any, exc: type, match: str) -> None:
    sw = sample_weight.copy()
    _check_fit_raises(cls(**FAST), X0.copy(), _target(cls).copy(), exc, match, sample_weight=sw)


@pytest.mark.parametrize(
    "validation_data",
    [
        (X0[:4].copy(),),
        (X0[:4].copy(), Y_BIN[:4].copy(), Y_BIN[:4].copy()),
        X0[:4].copy(),
        {"X": X0[:4].copy(), "y": Y_BIN[:4].copy()},
    ],
    ids=["one", "three", "array", "dict"],
)
def test_validation_data_not_a_pair(validation_data: Any) -> None:
    est = anyglm.LogisticRegression(**FAST)
    _check_fit_raises(
        est,
        X0.copy(),
        Y_BIN.copy(),
        TypeError,
        r"validation_data must be a pair \(X_val, y_val\)",
        validation_data=validation_data,
    )


@pytest.mark.parametrize(
    ("validation_data", "match"),
    [
        ((X0[:4, :2].copy(), Y_BIN[:4].copy()), "X_val has 2 features but X has 3"),
        ((X0[:4].copy(), Y_BIN[:3].copy()), "y_val has 3 labels but X(_val)? has 4 rows"),
        ((_with(X0[:4], (0, 0), np.nan), Y_BIN[:4].copy()), "X_val contains NaN or infinity"),
    ],
    ids=["features", "length", "nan"],
)
def test_bad_validation_data_contents(validation_data: Any, match: str) -> None:
    est = anyglm.LogisticRegression(**FAST)
    _check_fit_raises(
        est, X0.copy(), Y_BIN.copy(), ValueError, match, validation_data=validation_data
    )


@pytest.mark.parametrize(
    ("fraction", "exc", "match"),
    [
        (1.0, ValueError, r"validation_fraction must be in \[0, 1\), got 1\.0"),
        (1.5, ValueError, r"validation_fraction must be in \[0, 1\), got 1\.5"),
        (-0.1, ValueError, r"validation_fraction must be >= 0, got -0\.1"),
        (np.nan, ValueError, r"validation_fraction must be finite"),
        ("0.2", TypeError, r"validation_fraction must be a real number"),
        (None, TypeError, r"validation_fraction must be a real number"),
        (0.01, ValueError, r"validation_fraction=0\.01 of 24 rows leaves 0 validation"),
        (0.99, ValueError, r"validation_fraction=0\.99 of 24 rows leaves 24 validation and 0"),
    ],
    ids=["one", "above-one", "negative", "nan", "str", "None", "too-small", "too-large"],
)
def test_bad_validation_fraction(fraction: Any, exc: type, match: str) -> None:
    est = anyglm.SoftmaxRegression(validation_fraction=fraction, **FAST)
    _check_fit_raises(est, X0.copy(), Y_3.copy(), exc, match)


# -- read-only inputs -----------------------------------------------------------------------


def _readonly(a: np.ndarray) -> np.ndarray:
    out = a.copy()
    out.setflags(write=False)
    return out


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_read_only_inputs_fit_and_predict(cls: type, route: str) -> None:
    X, y = _readonly(X0), _readonly(_target(cls))
    sw = _readonly(np.linspace(0.5, 1.5, 24))
    Xv, yv = _readonly(X0[:6]), _readonly(_target(cls)[:6])
    params = {"backend": route, "epochs": 3, "random_state": 0, "batch_size": 5}
    est = cls(**params).fit(X, y, sample_weight=sw, validation_data=(Xv, yv))
    ref = cls(**params).fit(
        X0.copy(),
        _target(cls).copy(),
        sample_weight=sw.copy(),
        validation_data=(Xv.copy(), yv.copy()),
    )
    pred = np.asarray(est.predict(X))
    assert pred.shape == (24,)
    assert np.array_equal(pred, np.asarray(ref.predict(X0.copy())))
    if cls is not anyglm.LinearRegression:
        assert np.array_equal(
            np.asarray(est.decision_function(X)), np.asarray(ref.decision_function(X0))
        )
        assert est.predict_proba(X).shape == (24, len(est.classes_))
    assert isinstance(est.score(X, y), float)
    for a, b in [(X, X0), (y, _target(cls)), (Xv, X0[:6]), (yv, _target(cls)[:6])]:
        assert not a.flags.writeable
        _assert_unchanged(a, b)


def test_read_only_inputs_with_validation_fraction_and_class_weight() -> None:
    X, y = _readonly(X0), _readonly(Y_3)
    est = anyglm.SoftmaxRegression(
        validation_fraction=0.25, class_weight="balanced", shuffle=False, **FAST
    ).fit(X, y)
    assert len(est.history_["val_loss"]) == 2
    _assert_unchanged(X, X0)
    _assert_unchanged(y, Y_3)


def test_successful_fit_leaves_inputs_untouched() -> None:
    # The NumPy backend may use the caller's array without a copy: training must not write it.
    X, y = X0.copy(), Y_REG.copy()
    sw = np.linspace(0.1, 2.0, 24)
    swb = sw.copy()
    anyglm.LinearRegression(epochs=3, batch_size=24, shuffle=False, random_state=0).fit(
        X, y, sample_weight=sw
    )
    _assert_unchanged(X, X0)
    _assert_unchanged(y, Y_REG)
    _assert_unchanged(sw, swb)


# -- containers NumPy would misread -----------------------------------------------------------


def _masked(a: np.ndarray, index: Any) -> np.ma.MaskedArray:
    out = np.ma.masked_array(a.copy(), mask=np.zeros(a.shape, dtype=bool))
    out[index] = np.ma.masked
    return out


def test_masked_X_is_refused_at_fit_and_predict() -> None:
    # A mask hides a NaN: ignoring it trained on the NaN and blamed the learning rate.
    X = _masked(_with(X0, (3, 1), np.nan), (3, 1))
    match = r"X is a masked array with 1 masked value\(s\), the first at row 3, column 1.*filled"
    with pytest.raises(ValueError, match=match):
        anyglm.LogisticRegression(**FAST).fit(X, Y_BIN)
    est = _fitted(anyglm.LogisticRegression)
    with pytest.raises(ValueError, match=match):
        est.predict(X)
    assert np.ma.getmaskarray(X)[3, 1]  # the user's mask is untouched


def test_masked_y_and_unmasked_masked_arrays() -> None:
    y = np.ma.masked_array(Y_BIN.copy(), mask=np.arange(24) == 5)
    with pytest.raises(ValueError, match=r"y is a masked array .* the first at row 5"):
        anyglm.LogisticRegression(**FAST).fit(X0, y)
    # nothing masked: the data is used as it is
    plain = anyglm.LogisticRegression(**FAST).fit(X0, Y_BIN)
    est = anyglm.LogisticRegression(**FAST).fit(np.ma.masked_array(X0.copy()), Y_BIN)
    assert np.array_equal(est.coef_, plain.coef_)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix itself
@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_np_matrix_at_fit_and_predict(cls: type) -> None:
    # np.matrix keeps two dimensions under indexing: Z[:, 0] was an IndexError at predict.
    M = np.asmatrix(X0)
    est = cls(**FAST).fit(M, _target(cls))
    ref = cls(**FAST).fit(X0, _target(cls))
    pred = est.predict(M)
    assert type(pred) is np.ndarray and pred.shape == (24,)
    assert np.array_equal(pred, ref.predict(X0))
    assert np.array_equal(ref.predict(M), ref.predict(X0))
    if cls is not anyglm.LinearRegression:
        assert ref.predict_proba(M).shape == (24, len(ref.classes_))


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")
def test_np_matrix_target() -> None:
    y = np.asmatrix(Y_REG).T  # (24, 1)
    est = anyglm.LinearRegression(**FAST).fit(X0, y)
    assert est.predict(X0).shape == (24, 1)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: None, r"X is None; pass an array of shape \(n_samples, n_features\)"),
        (lambda: (row for row in X0), r"X is a generator \(a one-pass stream\).*asarray"),
        (lambda: iter(X0.tolist()), r"X is a list_iterator \(a one-pass stream\)"),
    ],
    ids=["None", "generator", "iterator"],
)
def test_X_that_is_not_an_array(make: Any, match: str) -> None:
    with pytest.raises(TypeError, match=match):
        anyglm.LogisticRegression(**FAST).fit(make(), Y_BIN)
    with pytest.raises(TypeError, match=match):
        _fitted(anyglm.LogisticRegression).predict(make())


def test_y_none_names_the_problem() -> None:
    with pytest.raises(ValueError, match="requires y to be passed, but the target y is None"):
        anyglm.LinearRegression(**FAST).fit(X0, None)


def test_sparse_X_on_another_backend_names_sparse() -> None:
    sp = pytest.importorskip("scipy.sparse")
    est = anyglm.LogisticRegression(backend="array_api_strict", **FAST)
    with pytest.raises(TypeError, match=r"SciPy sparse matrix; sparse input trains on the 'numpy'"):
        est.fit(sp.csr_matrix(X0), Y_BIN)


def test_nullable_pandas_columns() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X0, columns=["a", "b", "c"])
    df["b"] = pd.array([1, 2, None, *range(21)], dtype="Int64")
    before = df.copy()
    with pytest.raises(
        ValueError, match=r"X contains missing values .*pd\.NA.*column 'b', the first at row 2"
    ):
        anyglm.LogisticRegression(**FAST).fit(df, Y_BIN)
    pd.testing.assert_frame_equal(df, before)
    # without the missing value, a nullable column is numbers like any other
    df["b"] = pd.array(range(24), dtype="Int64")
    est = anyglm.LogisticRegression(**FAST).fit(df, Y_BIN)
    ref = anyglm.LogisticRegression(**FAST).fit(df.astype("float64").to_numpy(), Y_BIN)
    assert np.array_equal(est.coef_, ref.coef_)
    y = pd.Series(pd.array([0, 1, None, *([1] * 21)], dtype="Int64"))
    with pytest.raises(ValueError, match=r"y contains missing values .* row 2"):
        anyglm.LogisticRegression(**FAST).fit(X0, y)


def test_non_numeric_pandas_column_is_named() -> None:
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(X0, columns=["a", "b", "c"])
    df["c"] = pd.Categorical(["x", "y"] * 12)
    with pytest.raises(TypeError, match=r"X column 'c' has dtype category, not numbers"):
        anyglm.LogisticRegression(**FAST).fit(df, Y_BIN)


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_unknown_device_lists_the_valid_ones(backend: str) -> None:
    if backend != "numpy":
        pytest.importorskip("array_api_strict")
    est = anyglm.LogisticRegression(backend=backend, device="gpu", **FAST)
    with pytest.raises(
        ValueError,
        match=rf"device='gpu' is not a device of backend '{backend}'; valid devices: .*cpu|CPU",
    ):
        est.fit(X0, Y_BIN)


def test_save_to_a_folder_names_the_folder(tmp_path: Any) -> None:
    est = _fitted(anyglm.LogisticRegression)
    folder = tmp_path / "models"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=rf"cannot write '{folder}': it is a folder"):
        est.save(folder)
    assert list(folder.iterdir()) == [] and list(tmp_path.iterdir()) == [folder]
    with pytest.raises(IsADirectoryError, match="is a folder, not a model file"):
        anyglm.load(folder)
