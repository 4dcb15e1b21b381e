"""Lazy backends (:mod:`anyglm.lazy`, Dask): training where the chunks live, against one machine.

Runs only on lazy backends (marker ``anyglm_lazy``). A lazy backend trains each
partition (chunk of rows) from the broadcast parameters and averages the results
weighted by rows, once per round. Two consequences are checked against NumPy:

* **Exact**: with one minibatch per partition, a round is one step of full-batch
  gradient descent (the mean gradient over all rows is the row-weighted average of
  the partitions' mean gradients, penalty included). A fit on three chunks of
  unequal size, with ``batch_size`` at least a chunk's rows, agrees with NumPy's
  full-batch fit within the cross-backend ``TOLERANCE``.
* **Within a stated tolerance**: with several minibatches per partition the
  average is not sequential SGD. After ``AVERAGING_EPOCHS`` epochs on three
  chunks, the training loss of the fitted parameters is within
  ``AVERAGING_TOLERANCE`` (relative) of NumPy's sequential fit with the same
  settings, for one round per epoch and for three (built-in models, whose
  problems are known to converge there).

With one chunk a lazy backend must agree with NumPy exactly like any backend: the
rest of the suite feeds it one-chunk lazy data (``BackendCase.data``).
"""

from __future__ import annotations

from typing import Any

import anyglm
import numpy as np
import pytest

from ._support import describe, host, make_problem, numpy_reference, relative_error, tolerance
from .plugin import BackendCase

pytestmark = [pytest.mark.anyglm_conformance, pytest.mark.anyglm_lazy]

#: Relative gap allowed between the training loss of local SGD with model averaging
#: (three partitions) and of NumPy's sequential SGD, after ``AVERAGING_EPOCHS`` epochs.
AVERAGING_TOLERANCE = 0.01
AVERAGING_EPOCHS = 20
#: Plain SGD for the given epochs (no averaged iterates, no early stopping), both sides.
PLAIN_SGD = {"average": False, "n_iter_no_change": None}


def _parameters(case: BackendCase, est: Any) -> tuple[np.ndarray, np.ndarray]:
    W = host(case, est.coef_).astype(np.float64)
    b = host(case, est.intercept_).astype(np.float64).reshape(-1)
    return (W.reshape(-1, 1) if W.ndim == 1 else W.T), b


def test_one_minibatch_per_partition_is_full_batch_gradient_descent(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=25)  # three chunks of 9, 9 and 7 rows
    y = case.data(problem.y, "int64" if problem.n_classes is not None else None, chunks=3)
    settings = {"learning_rate": 0.1, "epochs": 5, "alpha": 1e-3, "random_state": 0, **PLAIN_SGD}
    ours = anyglm.Estimator(model_name, batch_size=9, **settings)
    ours.fit(case.data(problem.X, chunks=3), y)
    ref = anyglm.Estimator(model_name, batch_size=25, backend="numpy", dtype=case.dtype, **settings)
    ref.fit(problem.X, problem.y)
    tol = tolerance(case.dtype)
    for what, got, expected in zip(
        ("coef_", "intercept_"), _parameters(case, ours), _parameters(case, ref), strict=True
    ):
        err = relative_error(got, expected)
        assert err <= tol, (
            f"{describe(case, model_name)}: with one minibatch per partition a round of model "
            f"averaging is a full-batch gradient step, but {what} differs from NumPy's full-batch "
            f"fit by {err:.3g} (tolerance {tol:g}): is the average weighted by rows, over every "
            "partition?"
        )


@pytest.mark.anyglm_models("linear", "logistic", "softmax")
@pytest.mark.parametrize("rounds", [1, 3], ids=["1-round", "3-rounds"])
def test_model_averaging_ends_near_sequential_sgd(
    backend_case: BackendCase, model_name: str, rounds: int
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=90)
    y = case.data(problem.y, "int64" if problem.n_classes is not None else None, chunks=3)
    settings = {
        "batch_size": 5, "learning_rate": 0.05, "epochs": AVERAGING_EPOCHS, "alpha": 1e-3,
        "random_state": 0, **PLAIN_SGD,
    }  # fmt: skip
    ours = anyglm.Estimator(model_name, rounds_per_epoch=rounds, **settings)
    ours.fit(case.data(problem.X, chunks=3), y)
    ref = anyglm.Estimator(model_name, backend="numpy", dtype=case.dtype, **settings)
    ref.fit(problem.X, problem.y)
    loss = numpy_reference(model, problem.X, problem.Y, *_parameters(case, ours))[0]
    expected = numpy_reference(model, problem.X, problem.Y, *_parameters(case, ref))[0]
    gap = abs(loss - expected) / abs(expected)
    assert gap <= AVERAGING_TOLERANCE, (
        f"{describe(case, model_name)}: after {AVERAGING_EPOCHS} epochs of local SGD with model "
        f"averaging on 3 partitions ({rounds} round(s) per epoch) the training loss is "
        f"{loss:.6g}, NumPy's sequential SGD reaches {expected:.6g}: a relative gap of "
        f"{gap:.3g} (tolerance {AVERAGING_TOLERANCE:g})"
    )
