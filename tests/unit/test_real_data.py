"""Issue 2's acceptance line on the shipped real data.

80/20 split with random_state=0, features standardised on the training part,
the estimators' DEFAULT hyperparameters and random_state=0, on numpy and
array_api_strict (the backend follows the input), float32 and float64.
The 12 fits are shared between the quality and the agreement checks.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anyglm
import array_api_strict
import numpy as np
import pytest
from anyglm.datasets import load_dataset, standardize, train_test_split

TASKS = {
    # data set: (estimator, metric threshold)
    "digits": (anyglm.SoftmaxRegression, 0.95),
    "breast_cancer": (anyglm.LogisticRegression, 0.95),
    "diabetes": (anyglm.LinearRegression, 0.30),
}
BACKENDS = ["numpy", "array_api_strict"]
DTYPES = ["float32", "float64"]


class Fits:
    """Fits on demand, each once per test module."""

    def __init__(self) -> None:
        self._splits: dict[str, tuple[np.ndarray, ...]] = {}
        self._fits: dict[tuple[str, str, str], dict[str, Any]] = {}

    def split(self, dataset: str) -> tuple[np.ndarray, ...]:
        if dataset not in self._splits:
            X, y = load_dataset(dataset)
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0)
            X_tr, X_te = standardize(X_tr, X_te)
            self._splits[dataset] = (X_tr, X_te, y_tr, y_te)
        return self._splits[dataset]

    def get(self, dataset: str, backend: str, dtype: str) -> dict[str, Any]:
        key = (dataset, backend, dtype)
        if key not in self._fits:
            X_tr, X_te, y_tr, y_te = self.split(dataset)
            X_tr, X_te = X_tr.astype(dtype), X_te.astype(dtype)
            if backend == "array_api_strict":
                X_tr, X_te = array_api_strict.asarray(X_tr), array_api_strict.asarray(X_te)
            cls = TASKS[dataset][0]
            est = cls(random_state=0).fit(X_tr, y_tr)
            pred = est.predict(X_te)
            self._fits[key] = {
                "est": est,
                "score": est.score(X_te, y_te),
                "pred": pred,
                "pred_host": anyglm.get_backend(backend).to_numpy(pred),
                "coef": anyglm.get_backend(backend).to_numpy(est.coef_),
            }
        return self._fits[key]


@pytest.fixture(scope="module")
def fits() -> Iterator[Fits]:
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("ANYGLM_BACKEND", raising=False)  # backend=None must mean "auto" here
        yield Fits()


def test_defaults_are_the_documented_ones() -> None:
    # the acceptance line is about the DEFAULT hyperparameters; pin what they are
    for cls, _ in TASKS.values():
        params = cls().get_params()
        assert params["batch_size"] == 64
        assert params["learning_rate"] == "auto"
        assert params["epochs"] == 1000
        assert params["alpha"] == "auto"
        assert params["average"] == "auto"
        assert params["n_iter_no_change"] == 3 and params["tol"] == 1e-4
        assert params["random_state"] is None


def test_split_is_80_20_and_standardised_on_training_part(fits: Fits) -> None:
    for dataset in TASKS:
        X_tr, X_te, y_tr, y_te = fits.split(dataset)
        n = X_tr.shape[0] + X_te.shape[0]
        assert X_te.shape[0] == round(0.2 * n)
        assert y_tr.shape[0] == X_tr.shape[0] and y_te.shape[0] == X_te.shape[0]
        np.testing.assert_allclose(X_tr.mean(axis=0), 0.0, atol=1e-9)
        std = X_tr.std(axis=0)
        assert np.all((np.abs(std - 1) < 1e-9) | (std == 0))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dataset", list(TASKS))
def test_held_out_quality(fits: Fits, dataset: str, backend: str, dtype: str) -> None:
    fit = fits.get(dataset, backend, dtype)
    est = fit["est"]
    # the backend followed the input, and the parameters kept its dtype
    assert est.backend_ == backend
    assert anyglm.get_backend(backend).owns(est.coef_)
    assert fit["coef"].dtype == np.dtype(dtype)
    assert anyglm.get_backend(backend).owns(fit["pred"])
    assert est.n_epochs_ < 1000  # stopped by its rule, not by the cap
    threshold = TASKS[dataset][1]
    assert fit["score"] >= threshold, f"{dataset} on {backend}/{dtype}: {fit['score']:.4f}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dataset", list(TASKS))
def test_same_seed_same_predictions_across_backends(fits: Fits, dataset: str, dtype: str) -> None:
    a = fits.get(dataset, "numpy", dtype)
    b = fits.get(dataset, "array_api_strict", dtype)
    if dataset == "diabetes":
        rtol = 1e-5 if dtype == "float32" else 1e-12
        np.testing.assert_allclose(b["pred_host"], a["pred_host"], rtol=rtol)
    else:
        np.testing.assert_array_equal(b["pred_host"], a["pred_host"])
    rtol = 1e-4 if dtype == "float32" else 1e-10
    np.testing.assert_allclose(b["coef"], a["coef"], rtol=rtol, atol=rtol)
    assert a["score"] == pytest.approx(b["score"], abs=1e-12 if dataset != "diabetes" else 1e-6)
