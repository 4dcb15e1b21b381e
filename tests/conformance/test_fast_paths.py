"""Backend fast paths agree with the portable training loop.

For every backend case x model whose backend offers an epoch kernel (the
``anyglm_epoch_kernel`` hook), three epochs are trained twice from the same
start and seed, through the kernel and through the portable loop, and must
agree within the cross-backend tolerance: parameters and the per-epoch loss,
shuffled and in order, with and without sample weights, for one configuration
and for two side by side (different learning rates and penalties). The kernel
must also leave its input parameters unchanged and keep dtype and device.
The batch size leaves a short last minibatch.
"""

from __future__ import annotations

from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.data import ArraySource
from anyglm.fastpath import EpochTask, find_epoch_kernel
from anyglm.trainer import train

from ._support import describe, dtype_of, make_problem, relative_error, tolerance
from .plugin import BackendCase

pytestmark = pytest.mark.anyglm_conformance

N_ROWS, BATCH, EPOCHS = 27, 8, 3


def _train(
    case: BackendCase, model_name: str, *, fast: bool, shuffle: bool, weighted: bool, k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=N_ROWS)
    rng = np.random.default_rng(1)
    c = problem.n_outputs
    # A non-zero start, so that a kernel that ignores W, b or the penalty shows.
    W0 = 0.1 * rng.normal(size=(problem.X.shape[1], k * c))
    b0 = 0.1 * rng.normal(size=k * c)
    weights = rng.uniform(0.2, 2.0, size=N_ROWS) if weighted else None
    be = case.backend
    source = ArraySource(
        be,
        case.asarray(problem.X),
        case.asarray(problem.Y),
        None if weights is None else case.asarray(weights),
        device=case.device,
    )
    result = train(
        model,
        be,
        source,
        W=case.asarray(W0),
        b=case.asarray(b0),
        n_configs=k,
        learning_rate=[0.05, 0.02][:k],
        alpha=[1e-3, 0.1][:k],
        epochs=EPOCHS,
        batch_size=BATCH,
        shuffle=shuffle,
        rng=np.random.default_rng(0),
        dtype=case.dtype,
        device=case.device,
        fast_path=fast,
    )
    for what, arr in (("W", result.W), ("b", result.b)):
        assert dtype_of(arr) == case.dtype, (
            f"{describe(case, model_name)}: the epoch kernel returned {what} in {dtype_of(arr)}"
        )
        assert be.device_of(arr) == case.device, (
            f"{describe(case, model_name)}: the epoch kernel moved {what} to {be.device_of(arr)}"
        )
    return case.to_numpy(result.W), case.to_numpy(result.b), result.history["train_loss"]


@pytest.mark.parametrize("k", [1, 2], ids=["one-config", "two-configs"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_epoch_kernel_agrees_with_the_portable_loop(
    fast_path_case: tuple[BackendCase, str], shuffle: bool, weighted: bool, k: int
) -> None:
    case, model_name = fast_path_case
    fast = _train(case, model_name, fast=True, shuffle=shuffle, weighted=weighted, k=k)
    portable = _train(case, model_name, fast=False, shuffle=shuffle, weighted=weighted, k=k)
    tol = tolerance(case.dtype)
    for what, got, expected in zip(("W", "b", "train_loss"), fast, portable, strict=True):
        err = relative_error(got, expected)
        assert err <= tol, (
            f"{describe(case, model_name)}: the backend's epoch kernel gives {what} "
            f"different from the portable loop after {EPOCHS} epochs ("
            f"{'shuffled' if shuffle else 'in order'}, "
            f"{'weighted' if weighted else 'unweighted'}, {k} configuration(s)): max relative "
            f"error {err:.3g} (tolerance {tol:g})"
        )


def test_epoch_kernel_leaves_its_inputs_unchanged(fast_path_case: tuple[BackendCase, str]) -> None:
    case, model_name = fast_path_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=N_ROWS)
    kernel = find_epoch_kernel(case.backend, model)
    assert kernel is not None
    d, c = problem.X.shape[1], problem.n_outputs
    inputs: dict[str, Any] = {
        "X": case.asarray(problem.X),
        "Y": case.asarray(problem.Y),
        "weights": case.asarray(np.linspace(0.5, 1.5, N_ROWS)),
        "W": case.asarray(np.full((d, c), 0.3)),
        "b": case.asarray(np.full(c, -0.2)),
    }
    before = {name: case.to_numpy(arr).copy() for name, arr in inputs.items()}
    order = np.random.default_rng(0).permutation(N_ROWS)
    task = EpochTask(
        inputs["X"], inputs["Y"], inputs["weights"], order, BATCH, inputs["W"], inputs["b"],
        0.05, 1e-3, 1,
    )  # fmt: skip
    kernel(task)
    for name, arr in inputs.items():
        np.testing.assert_array_equal(
            case.to_numpy(arr),
            before[name],
            err_msg=f"{describe(case, model_name)}: the epoch kernel modified its input {name}",
        )
    np.testing.assert_array_equal(
        order,
        np.random.default_rng(0).permutation(N_ROWS),
        err_msg=f"{describe(case, model_name)}: the epoch kernel modified the row order",
    )
