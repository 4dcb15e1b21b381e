"""Backend accelerators agree with the portable training loop, or decline.

For every backend case x model x optimiser setting (plain SGD, schedules,
momentum, Nesterov, averaging, L1, elastic net) for which the backend offers
an accelerator (the ``anyglm_accelerator`` hook), three epochs are trained
twice from the same start and seed, through the accelerator and through the
portable loop, and must agree within the cross-backend tolerance: parameters
and the per-epoch loss, shuffled and in order, with and without sample
weights, for one configuration and for two side by side (different learning
rates and penalties). An accelerator that accepts a spec must implement it
exactly; declining is always allowed (the portable loop then runs). The
accelerator must also leave its inputs unchanged and keep dtype and device.
The batch size leaves a short last minibatch.

An accelerator may decline blocks below a minimum size even for a spec it
accepts (numba's does below ``ANYGLM_NUMBA_MIN_ELEMENTS`` values, torch.compile's
below ``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS``); such a
case is skipped with that reason, never counted as a pass. Run it with the
threshold at 0 to check the compiled loop on these tiny problems.
"""

from __future__ import annotations

from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.accelerate import AcceleratorSpec, BlockTask
from anyglm.optim import Columns, OptimizerSpec, build
from anyglm.selection import find_accelerator
from anyglm.sources import ArraySource
from anyglm.trainer import train

from ._support import describe, dtype_of, make_problem, relative_error, tolerance
from .plugin import BackendCase

pytestmark = pytest.mark.anyglm_conformance

N_ROWS, BATCH, EPOCHS = 27, 8, 3


def _train(
    case: BackendCase,
    model_name: str,
    opt: OptimizerSpec,
    *,
    accelerate: bool,
    shuffle: bool,
    weighted: bool,
    k: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool]:
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=N_ROWS)
    rng = np.random.default_rng(1)
    c = problem.n_outputs
    # A non-zero start, so that an accelerator that ignores W, b or the penalty shows.
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
        optimizer=opt,
        accelerate=accelerate,
    )
    for what, arr in (("W", result.W), ("b", result.b)):
        assert dtype_of(arr) == case.dtype, (
            f"{describe(case, model_name)}: training returned {what} in {dtype_of(arr)}"
        )
        assert be.device_of(arr) == case.device, (
            f"{describe(case, model_name)}: training moved {what} to {be.device_of(arr)}"
        )
    return (
        case.to_numpy(result.W),
        case.to_numpy(result.b),
        result.history["train_loss"],
        result.accelerated,
    )


AcceleratorCase = tuple[BackendCase, str, OptimizerSpec, int, bool]


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_accelerator_agrees_with_the_portable_loop(
    accelerator_case: AcceleratorCase, shuffle: bool
) -> None:
    case, model_name, opt, k, weighted = accelerator_case
    fast = _train(case, model_name, opt, accelerate=True, shuffle=shuffle, weighted=weighted, k=k)
    if not fast[3]:
        pytest.skip(
            f"{describe(case, model_name)}: the accelerator declined every block of "
            f"{N_ROWS} rows (a minimum size: ANYGLM_NUMBA_MIN_ELEMENTS for numba, "
            "ANYGLM_TORCH_COMPILE_MIN_ELEMENTS for torch.compile); set it to 0 to check it here"
        )
    portable = _train(
        case, model_name, opt, accelerate=False, shuffle=shuffle, weighted=weighted, k=k
    )
    tol = tolerance(case.dtype)
    for what, got, expected in zip(("W", "b", "train_loss"), fast[:3], portable[:3], strict=True):
        err = relative_error(got, expected)
        assert err <= tol, (
            f"{describe(case, model_name)}: the backend's accelerator gives {what} "
            f"different from the portable loop after {EPOCHS} epochs with {opt} ("
            f"{'shuffled' if shuffle else 'in order'}, "
            f"{'weighted' if weighted else 'unweighted'}, {k} configuration(s)): max relative "
            f"error {err:.3g} (tolerance {tol:g})"
        )


def test_accelerator_leaves_its_inputs_unchanged(accelerator_case: AcceleratorCase) -> None:
    case, model_name, opt, k, weighted = accelerator_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model, n=N_ROWS)
    spec = AcceleratorSpec(model, model_name, opt, case.dtype, k, weighted, False)
    accelerator = find_accelerator(case.backend, spec, errors="raise")
    assert accelerator is not None
    d, c = problem.X.shape[1], problem.n_outputs * k
    inputs: dict[str, Any] = {
        "X": case.asarray(problem.X),
        "Y": case.asarray(problem.Y),
        "weights": case.asarray(np.linspace(0.5, 1.5, N_ROWS)) if weighted else None,
        "W": case.asarray(np.full((d, c), 0.3)),
        "b": case.asarray(np.full(c, -0.2)),
    }
    xp = case.xp
    state = build(opt, xp).init(inputs["W"], inputs["b"])
    inputs = {name: arr for name, arr in inputs.items() if arr is not None}
    before = {name: case.to_numpy(arr).copy() for name, arr in inputs.items()}
    state_before = {name: case.to_numpy(arr).copy() for name, arr in state.items()}
    order = np.random.default_rng(0).permutation(N_ROWS)
    lr, alpha = np.full(k, 0.05), np.full(k, 1e-3)
    columns = Columns(0.05, 1e-3, 1e-3, 0.0, 20000.0)
    if k > 1:
        columns = Columns(
            *(
                case.asarray(np.full(k * problem.n_outputs, v))
                for v in (0.05, 1e-3, 1e-3, 0.0, 20000.0)
            )
        )
    task = BlockTask(
        inputs["X"],
        inputs["Y"],
        inputs.get("weights"),
        order,
        BATCH,
        inputs["W"],
        inputs["b"],
        state,
        0,
        columns,
        lr,
        alpha,
        None,
        k,
    )
    accelerator(task)
    for name, arr in inputs.items():
        np.testing.assert_array_equal(
            case.to_numpy(arr),
            before[name],
            err_msg=f"{describe(case, model_name)}: the accelerator modified its input {name}",
        )
    for name, arr in state.items():
        np.testing.assert_array_equal(
            case.to_numpy(arr),
            state_before[name],
            err_msg=f"{describe(case, model_name)}: the accelerator modified the state {name}",
        )
    np.testing.assert_array_equal(
        order,
        np.random.default_rng(0).permutation(N_ROWS),
        err_msg=f"{describe(case, model_name)}: the accelerator modified the row order",
    )
