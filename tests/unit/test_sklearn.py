"""anyglm as a scikit-learn citizen: estimator checks, pickling, joblib, pipelines, tags.

scikit-learn is optional: with it installed the estimators derive from its base
classes and mixins; without it (the last tests, in a subprocess that blocks the
import) everything else works the same.
"""

from __future__ import annotations

import copy
import json
import pickle
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone  # noqa: E402
from sklearn.exceptions import NotFittedError as SkNotFittedError  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

ESTIMATORS = [anyglm.LinearRegression, anyglm.LogisticRegression, anyglm.SoftmaxRegression]

#: Checks each estimator is expected to fail, and why (also listed in the user guide).
SAMPLE_WEIGHTS = (
    "SGD counts rows, not weights: with integer weights the minibatches differ from those "
    "of the repeated rows, and so do the data-derived defaults (alpha='auto' is 1/n, "
    "learning_rate='auto' uses the batch size); sample weights do enter as a weighted mean, "
    "and with a fixed alpha and learning_rate this check's small data (one full batch) "
    "passes (tested below)"
)
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    name: {
        "check_sample_weight_equivalence_on_dense_data": SAMPLE_WEIGHTS,
        "check_sample_weight_equivalence_on_sparse_data": SAMPLE_WEIGHTS,
    }
    for name in ("LinearRegression", "LogisticRegression", "SoftmaxRegression")
}


def _expected_failed(estimator: Any) -> dict[str, str]:
    return EXPECTED_FAILURES[type(estimator).__name__]


def test_at_most_three_expected_failures_each() -> None:
    assert all(len(v) <= 3 for v in EXPECTED_FAILURES.values())


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_weights_equal_repeated_rows_when_the_steps_are_the_same(cls: type) -> None:
    # The expected failure above is SGD's, not the weighting's: with a fixed alpha and
    # learning rate, and data that fits in one batch, weights are repeated rows.
    from sklearn.utils.estimator_checks import (
        check_sample_weight_equivalence_on_dense_data as check,
    )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check(cls.__name__, cls(alpha=1e-4, learning_rate=0.01))


@parametrize_with_checks([cls() for cls in ESTIMATORS], expected_failed_checks=_expected_failed)
def test_scikit_learn_estimator_checks(estimator: Any, check: Any) -> None:
    # The estimators as a user gets them: default parameters.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        check(estimator)


# -- base classes, tags, NotFittedError ------------------------------------------------------


def test_the_estimators_are_scikit_learn_estimators() -> None:
    assert issubclass(anyglm.Estimator, BaseEstimator)
    assert issubclass(anyglm.LinearRegression, RegressorMixin)
    for cls in (anyglm.LogisticRegression, anyglm.SoftmaxRegression):
        assert issubclass(cls, ClassifierMixin)
    mro = anyglm.LogisticRegression.mro()
    assert mro.index(ClassifierMixin) < mro.index(BaseEstimator)  # scikit-learn's order
    assert sklearn.base.is_classifier(anyglm.SoftmaxRegression())
    assert sklearn.base.is_regressor(anyglm.LinearRegression())
    assert sklearn.base.is_regressor(anyglm.Estimator("linear"))
    assert sklearn.base.is_classifier(anyglm.Estimator("logistic"))


@pytest.mark.parametrize(
    ("est", "kind", "multi_class"),
    [
        (anyglm.LinearRegression(), "regressor", None),
        (anyglm.LogisticRegression(), "classifier", False),
        (anyglm.SoftmaxRegression(), "classifier", True),
        (anyglm.Estimator("logistic"), "classifier", False),
    ],
    ids=["linear", "logistic", "softmax", "estimator-logistic"],
)
def test_tags(est: Any, kind: str, multi_class: bool | None) -> None:
    tags = get_tags(est)
    assert tags.estimator_type == kind
    assert tags.array_api_support is True
    assert tags.input_tags.sparse is True  # SciPy sparse X trains on NumPy
    assert tags.target_tags.required is True
    if multi_class is None:
        assert tags.classifier_tags is None and tags.target_tags.multi_output is True
    else:
        assert tags.classifier_tags.multi_class is multi_class
    # sparse input is for the NumPy backend only
    other = clone(est).set_params(backend="array_api_strict")
    assert get_tags(other).input_tags.sparse is False


def test_not_fitted_error_is_scikit_learns() -> None:
    assert issubclass(anyglm.NotFittedError, SkNotFittedError)
    with pytest.raises(SkNotFittedError, match="not fitted yet"):
        anyglm.SoftmaxRegression().predict([[1.0]])
    est = anyglm.LogisticRegression()
    with pytest.raises(SkNotFittedError):
        sklearn.utils.validation.check_is_fitted(est)
    sklearn.utils.validation.check_is_fitted(est.fit([[0.0], [1.0]], [0, 1]))


def test_regressor_has_no_predict_proba_nor_decision_function() -> None:
    reg = anyglm.LinearRegression(epochs=2).fit([[0.0], [1.0]], [0.0, 1.0])
    assert not hasattr(reg, "predict_proba") and not hasattr(reg, "decision_function")
    assert "predict_proba" not in dir(reg)
    clf = anyglm.LogisticRegression(epochs=2).fit([[0.0], [1.0]], [0, 1])
    assert hasattr(clf, "predict_proba") and hasattr(clf, "decision_function")


def test_two_class_softmax_decision_function_is_one_column() -> None:
    X = np.random.default_rng(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    est = anyglm.SoftmaxRegression(epochs=5, random_state=0).fit(X, y)
    d = est.decision_function(X)
    Z = X @ np.asarray(est.coef_).T + np.asarray(est.intercept_)
    assert d.shape == (30,)
    np.testing.assert_allclose(d, Z[:, 1] - Z[:, 0], rtol=1e-12, atol=1e-12)
    assert np.array_equal(est.predict(X), est.classes_[(d > 0).astype(int)])
    # roc_auc_score reads one column of scores for a binary problem
    assert sklearn.metrics.roc_auc_score(y, d) > 0.9


def test_html_repr_and_metadata_routing() -> None:
    est = anyglm.LogisticRegression(alpha=0.5)
    html = est._repr_html_()
    assert "LogisticRegression" in html and "alpha" in html
    assert repr(est) == "LogisticRegression(alpha=0.5)"
    X = np.random.default_rng(1).normal(size=(40, 2))
    y = (X[:, 0] + 0.3 * X[:, 1] > 0).astype(int)
    w = np.where(np.arange(40) < 20, 5.0, 0.2)
    with sklearn.config_context(enable_metadata_routing=True):
        routed = anyglm.LogisticRegression(epochs=5, random_state=0).set_fit_request(
            sample_weight=True
        )
        pipe = sklearn.pipeline.Pipeline([("clf", routed)]).fit(X, y, sample_weight=w)
    weighted = anyglm.LogisticRegression(epochs=5, random_state=0).fit(X, y, sample_weight=w)
    plain = anyglm.LogisticRegression(epochs=5, random_state=0).fit(X, y)
    got = np.asarray(pipe[-1].coef_)
    assert np.array_equal(got, np.asarray(weighted.coef_))
    assert not np.array_equal(got, np.asarray(plain.coef_))


# -- pickling ------------------------------------------------------------------------------


def _data(cls: type) -> tuple[np.ndarray, np.ndarray]:
    X = np.random.default_rng(3).normal(size=(50, 4))
    if cls is anyglm.LinearRegression:
        return X, X @ np.array([1.0, -1.0, 0.5, 2.0])
    if cls is anyglm.LogisticRegression:
        return X, np.where(X[:, 0] > 0, "yes", "no")
    return X, np.digitize(X[:, 0], [-0.5, 0.5])


def _host(a: Any) -> np.ndarray:
    if type(a).__module__.startswith("array_api_strict"):
        import array_api_strict as xps

        return np.asarray(a.to_device(xps.Device("CPU_DEVICE")))
    return np.asarray(a)


def _round_trips(est: Any, tmp_path: Path) -> list[Any]:
    import joblib

    joblib.dump(est, tmp_path / "est.joblib")
    return [
        pickle.loads(pickle.dumps(est)),
        copy.deepcopy(est),
        joblib.load(tmp_path / "est.joblib"),
    ]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_pickle_deepcopy_and_joblib_round_trips(cls: type, tmp_path: Path) -> None:
    X, y = _data(cls)
    est = cls(epochs=3, random_state=0, validation_fraction=0.2).fit(X, y)
    copies = _round_trips(est, tmp_path)
    for again in copies:
        assert type(again) is cls and again.get_params() == est.get_params()
        assert np.array_equal(again.predict(X), est.predict(X))
        assert again.history_ == est.history_ and again.n_epochs_ == est.n_epochs_
        if cls is not anyglm.LinearRegression:
            assert np.array_equal(again.predict_proba(X), est.predict_proba(X))
    # and training goes on from where it was (trainer state and generator included)
    expected = np.asarray(est.partial_fit(X, y).coef_)
    for again in copies:
        assert np.array_equal(np.asarray(again.partial_fit(X, y).coef_), expected)
    # an unfitted estimator too
    fresh = pickle.loads(pickle.dumps(cls(alpha=0.3)))
    assert fresh.alpha == 0.3 and not hasattr(fresh, "coef_")


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_array_api_strict_arrays_survive_pickling(cls: type, tmp_path: Path) -> None:
    xps = pytest.importorskip("array_api_strict")
    X, y = _data(cls)
    dev = xps.Device("device1")
    Xs = xps.asarray(X.astype(np.float32), device=dev)
    est = cls(epochs=3, random_state=0).fit(Xs, y)
    for again in _round_trips(est, tmp_path):
        for name in ("coef_", "intercept_", "_W", "_b"):
            arr = getattr(again, name)
            assert type(arr).__module__.startswith("array_api_strict"), name
            assert arr.device == dev and arr.dtype == xps.float32, name
        assert again._train_state is not None
        assert type(again._train_state.W).__module__.startswith("array_api_strict")
        pred = again.predict(Xs)
        assert type(pred).__module__.startswith("array_api_strict") or pred.dtype.kind in "OU"
        assert np.array_equal(_host(pred), _host(est.predict(Xs)))


def test_unpickling_where_the_backend_is_unavailable_falls_back_to_numpy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xps = pytest.importorskip("array_api_strict")
    X, y = _data(anyglm.SoftmaxRegression)
    est = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(xps.asarray(X), y)
    blob = pickle.dumps(est)
    be = anyglm.get_backend("array_api_strict")
    monkeypatch.setitem(be.__dict__, "_unavailable_reason", "pretend it is not installed")
    with pytest.warns(
        RuntimeWarning, match=r"backend 'array_api_strict' is not usable here.*NumPy"
    ):
        again = pickle.loads(blob)
    assert again.backend_ == "numpy" and isinstance(again.coef_, np.ndarray)
    assert np.array_equal(again.predict(X), _host(est.predict(xps.asarray(X))))


def test_unpickling_where_the_device_is_missing_uses_the_default_device(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    xps = pytest.importorskip("array_api_strict")
    X, y = _data(anyglm.LinearRegression)
    est = anyglm.LinearRegression(epochs=3).fit(xps.asarray(X, device=xps.Device("device2")), y)
    blob = pickle.dumps(est)
    be = anyglm.get_backend("array_api_strict")
    only_cpu = [d for d in be.devices() if "device2" not in str(d)]
    monkeypatch.setattr(type(be), "devices", lambda self: only_cpu)
    with pytest.warns(RuntimeWarning, match="device2.* does not exist here"):
        again = pickle.loads(blob)
    assert again.coef_.device == be.default_device()
    np.testing.assert_array_equal(_host(again.coef_), _host(est.coef_))


def test_grid_search_with_two_loky_workers() -> None:
    from sklearn.model_selection import GridSearchCV

    X, y = _data(anyglm.LogisticRegression)
    search = GridSearchCV(
        anyglm.LogisticRegression(epochs=3, random_state=0),
        {"alpha": [1e-4, 1e-1]},
        cv=2,
        n_jobs=2,
    )
    import joblib

    with joblib.parallel_backend("loky"):
        search.fit(X, y)
    assert search.best_params_["alpha"] in (1e-4, 1e-1)
    assert np.isfinite(search.cv_results_["mean_test_score"]).all()
    serial = GridSearchCV(
        anyglm.LogisticRegression(epochs=3, random_state=0), {"alpha": [1e-4, 1e-1]}, cv=2
    ).fit(X, y)
    np.testing.assert_array_equal(
        search.cv_results_["mean_test_score"], serial.cv_results_["mean_test_score"]
    )


def test_pipeline_and_cross_validation() -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = anyglm.datasets.load_dataset("breast_cancer")
    pipe = make_pipeline(StandardScaler(), anyglm.LogisticRegression(random_state=0))
    scores = cross_val_score(pipe, X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.9


# -- without scikit-learn --------------------------------------------------------------------

NO_SKLEARN = textwrap.dedent(
    """
    import json, pickle, sys
    sys.modules["sklearn"] = None  # any "import sklearn..." now raises ImportError
    import numpy as np
    import anyglm
    from anyglm import _sklearn

    X = np.random.default_rng(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = anyglm.LogisticRegression(epochs=5, random_state=0).fit(X, y)
    again = pickle.loads(pickle.dumps(clf))
    try:
        anyglm.SoftmaxRegression().predict(X)
    except ValueError as err:
        not_fitted = [type(err).__name__, isinstance(err, AttributeError)]
    try:
        anyglm.LinearRegression().set_params(alpah=1)
    except ValueError as err:
        bad_param = str(err)
    print(json.dumps({
        "available": _sklearn.AVAILABLE,
        "score": clf.score(X, y),
        "same": bool(np.array_equal(again.predict(X), clf.predict(X))),
        "repr": repr(anyglm.LogisticRegression(alpha=0.5, epochs=3)),
        "params": sorted(anyglm.LinearRegression().get_params())[:3],
        "not_fitted": not_fitted,
        "bad_param": bad_param,
        "proba": hasattr(anyglm.LinearRegression(), "predict_proba"),
        "decision": hasattr(anyglm.LogisticRegression(), "decision_function"),
        "sklearn_loaded": [m for m in sys.modules if m.startswith("sklearn.")],
    }))
    """
)


def test_everything_works_without_scikit_learn() -> None:
    out = subprocess.run(
        [sys.executable, "-c", NO_SKLEARN], capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["available"] is False
    assert got["score"] > 0.8 and got["same"] is True
    assert got["repr"] == "LogisticRegression(alpha=0.5, epochs=3)"
    assert got["params"] == ["alpha", "average", "backend"]
    assert got["not_fitted"] == ["NotFittedError", True]
    assert "Invalid parameter 'alpah'" in got["bad_param"]
    assert got["proba"] is False and got["decision"] is True
    assert got["sklearn_loaded"] == []


def test_import_anyglm_does_not_import_scikit_learn() -> None:
    code = (
        "import sys, anyglm; a = 'sklearn' in sys.modules; anyglm.LinearRegression; "
        "print(a, 'sklearn' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    # imported on first use of an estimator, not by `import anyglm`
    assert out.stdout.split() == ["False", "True"]


ARRAY_API_CHECKS = textwrap.dedent(
    """
    import json, os, warnings
    os.environ["SCIPY_ARRAY_API"] = "1"  # before SciPy loads: scikit-learn's array API checks
    warnings.simplefilter("ignore")
    import anyglm
    from sklearn.utils.estimator_checks import check_estimator

    out = {}
    for cls in (anyglm.LinearRegression, anyglm.LogisticRegression, anyglm.SoftmaxRegression):
        rows = check_estimator(cls(), on_fail=None)
        rows = [r for r in rows if "array_api" in r["check_name"]]
        out[cls.__name__] = {
            "passed": sum(r["status"] == "passed" for r in rows),
            "failed": [r["check_name"] + ": " + str(r["exception"])[:200]
                       for r in rows if r["status"] == "failed"],
        }
    print(json.dumps(out))
    """
)


def test_scikit_learn_array_api_checks_with_array_api_strict() -> None:
    # scikit-learn runs them only when SCIPY_ARRAY_API=1 is set before SciPy is imported.
    pytest.importorskip("array_api_strict")
    out = subprocess.run(
        [sys.executable, "-c", ARRAY_API_CHECKS], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    for name, res in got.items():
        assert res["failed"] == [], name
        # NumPy and array_api_strict inputs (two devices), and predict refusing another
        # namespace while array_api_dispatch is on (check_array_api_same_namespace)
        assert res["passed"] >= 4, (name, res)
