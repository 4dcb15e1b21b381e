"""Conformance of every registered backend, on each of its devices and float dtypes.

Checks, per backend case:

* the namespace offers every function, dtype and array attribute anyglm's core
  and built-in models use, and each works on the device in the dtype, keeps
  the result there and agrees with NumPy;
* host round trip: ``from_numpy`` then ``to_numpy`` gives the data back exactly,
  on the requested device and in the requested dtype (for a lazy backend, its
  lazy arrays too);
* the same seed gives the same minibatches, in the same order, as on NumPy
  (:class:`anyglm.sources.ArraySource` over ``X = arange``);

and per backend case x model:

* parameters trained on the backend agree with those trained on NumPy in the
  same dtype, within ``TOLERANCE`` (relative: 1e-10 in float64, 1e-4 in float32),
  with plain SGD and with each optimiser setting (schedules, momentum, Nesterov,
  averaging, L1, elastic net, and the defaults' data-derived values);
* dtype and device are preserved: ``coef_`` and ``intercept_`` live on the
  input's device in the input's dtype (array-api-strict's fake devices catch
  silent device changes), also when host data are sent there with ``device=``;
  parameters follow ``X``: they are arrays of the backend, or for a lazy
  backend (Dask, :mod:`anyglm.lazy`) arrays of its chunks' library, while
  predictions on its lazy arrays stay lazy;
* read-only NumPy inputs work, and no input (host or device) is modified;
* a model saved on the backend loads on NumPy and back with equal predictions;
* array-api-strict only: a whole fit (with a validation split) and predict with
  data-dependent shapes and boolean-mask indexing switched off (what lazy
  backends cannot do) runs and gives the same results.

Third parties run it on their backend with::

    pytest --pyargs anyglm.conformance --anyglm-backend mybackend
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.sources import ArraySource

from ._support import (
    describe,
    dtype_of,
    estimator,
    fit_targets,
    host,
    index_dtype,
    make_problem,
    relative_error,
    tolerance,
)
from .plugin import BackendCase

pytestmark = pytest.mark.anyglm_conformance

#: Namespace functions used by anyglm's core and its built-in models.
NAMESPACE_FUNCTIONS = (
    "all",
    "argmax",
    "asarray",
    "astype",
    "concat",
    "exp",
    "expand_dims",
    "isdtype",
    "isfinite",
    "log",
    "logaddexp",
    "matmul",
    "matrix_transpose",
    "max",
    "mean",
    "ones_like",
    "reshape",
    "sum",
    "take",
    "where",
    "zeros",
    "zeros_like",
)
#: Dtype objects the core asks the namespace for.
NAMESPACE_DTYPES = ("float32", "float64", "int64", "bool")
#: Array attributes the core uses.
ARRAY_ATTRIBUTES = ("shape", "dtype", "ndim", "T", "__matmul__", "__getitem__")

Op = Callable[..., Any]

#: (name, the operation on the namespace, the same on NumPy). Operations take
#: ``(xp, A, B, idx, dtype, device)``, references ``(A, B, idx)``; A and B are 3 x 4.
OPERATIONS: list[tuple[str, Op, Op]] = [
    (
        "zeros",
        lambda xp, A, B, i, dt, dev: xp.zeros((2, 3), dtype=dt, device=dev),
        lambda A, B, i: np.zeros((2, 3)),
    ),
    ("zeros_like", lambda xp, A, B, i, dt, dev: xp.zeros_like(A), lambda A, B, i: np.zeros_like(A)),
    ("ones_like", lambda xp, A, B, i, dt, dev: xp.ones_like(A), lambda A, B, i: np.ones_like(A)),
    (
        "reshape",
        lambda xp, A, B, i, dt, dev: xp.reshape(A, (4, 3)),
        lambda A, B, i: A.reshape(4, 3),
    ),
    (
        "expand_dims",
        lambda xp, A, B, i, dt, dev: xp.expand_dims(A, axis=1),
        lambda A, B, i: A[:, None, :],
    ),
    ("take", lambda xp, A, B, i, dt, dev: xp.take(A, i, axis=0), lambda A, B, i: A[i]),
    ("sum", lambda xp, A, B, i, dt, dev: xp.sum(A, axis=0), lambda A, B, i: A.sum(axis=0)),
    ("sum-all", lambda xp, A, B, i, dt, dev: xp.sum(A), lambda A, B, i: A.sum()),
    ("mean", lambda xp, A, B, i, dt, dev: xp.mean(A, axis=0), lambda A, B, i: A.mean(axis=0)),
    (
        "max",
        lambda xp, A, B, i, dt, dev: xp.max(A, axis=-1, keepdims=True),
        lambda A, B, i: A.max(axis=-1, keepdims=True),
    ),
    ("exp", lambda xp, A, B, i, dt, dev: xp.exp(A), lambda A, B, i: np.exp(A)),
    ("log", lambda xp, A, B, i, dt, dev: xp.log(B), lambda A, B, i: np.log(B)),
    (
        "logaddexp",
        lambda xp, A, B, i, dt, dev: xp.logaddexp(xp.zeros_like(A), A),
        lambda A, B, i: np.logaddexp(0, A),
    ),
    ("argmax", lambda xp, A, B, i, dt, dev: xp.argmax(A, axis=1), lambda A, B, i: A.argmax(axis=1)),
    (
        "where",
        lambda xp, A, B, i, dt, dev: xp.where(A > 0, A, xp.zeros_like(A)),
        lambda A, B, i: np.where(A > 0, A, 0),
    ),
    (
        "isfinite-all",
        lambda xp, A, B, i, dt, dev: xp.all(xp.isfinite(A)),
        lambda A, B, i: np.bool_(True),
    ),
    (
        "concat",
        lambda xp, A, B, i, dt, dev: xp.concat([A, B], axis=1),
        lambda A, B, i: np.concatenate([A, B], axis=1),
    ),
    (
        "astype",
        lambda xp, A, B, i, dt, dev: xp.astype(A > 0, dt),
        lambda A, B, i: (A > 0).astype(float),
    ),
    (
        "matmul",
        lambda xp, A, B, i, dt, dev: xp.matmul(A, xp.matrix_transpose(B)),
        lambda A, B, i: A @ B.T,
    ),
    ("matmul-operator", lambda xp, A, B, i, dt, dev: A.T @ B, lambda A, B, i: A.T @ B),
    (
        "scalar-arithmetic",
        lambda xp, A, B, i, dt, dev: 0.5 * (A - B) / 3.0 + 1.0,
        lambda A, B, i: 0.5 * (A - B) / 3.0 + 1.0,
    ),
]


def test_namespace_offers_what_anyglm_uses(backend_case: BackendCase) -> None:
    case = backend_case
    xp = case.xp
    missing = [name for name in NAMESPACE_FUNCTIONS + NAMESPACE_DTYPES if not hasattr(xp, name)]
    A = case.asarray(np.ones((2, 2)))
    # Moves between devices go through array_api_compat.to_device (torch tensors have no
    # to_device method), so only the attributes the core reads directly are required.
    missing += [f"array.{name}" for name in ARRAY_ATTRIBUTES if not hasattr(A, name)]
    assert not missing, (
        f"{describe(case)}: the namespace {getattr(xp, '__name__', xp)!r} lacks what anyglm "
        f"uses: {', '.join(missing)}"
    )
    assert xp.isdtype(A.dtype, "real floating")
    assert not xp.isdtype(case.asarray(np.arange(3), index_dtype(case)).dtype, "real floating")


@pytest.mark.parametrize("name", [op[0] for op in OPERATIONS])
def test_namespace_operations_stay_on_device(backend_case: BackendCase, name: str) -> None:
    case = backend_case
    be, xp = case.backend, case.xp
    _, op, reference = next(op for op in OPERATIONS if op[0] == name)
    rng = np.random.default_rng(0)
    A_host = rng.normal(size=(3, 4))
    B_host = rng.uniform(0.5, 2.0, size=(3, 4))
    idx_host = np.array([2, 0, 2])
    A, B = case.asarray(A_host), case.asarray(B_host)
    idx = case.asarray(idx_host, index_dtype(case))
    dt = be.dtype(case.dtype, case.device)
    out = op(xp, A, B, idx, dt, case.device)
    expected = reference(A_host, B_host, idx_host)
    what = f"{describe(case)}: xp.{name}"
    assert be.device_of(out) == case.device, f"{what} moved the result to {be.device_of(out)!r}"
    got = case.to_numpy(out)
    assert got.shape == np.shape(expected), (
        f"{what}: shape {got.shape}, expected {np.shape(expected)}"
    )
    if np.asarray(expected).dtype.kind == "f":
        assert dtype_of(out) == case.dtype, f"{what} returned {dtype_of(out)}, not {case.dtype}"
        err = relative_error(got, expected)
        assert err <= 10 * tolerance(case.dtype), f"{what}: relative error {err:.3g} vs NumPy"
    else:
        np.testing.assert_array_equal(got, expected, err_msg=what)


def test_host_round_trip(backend_case: BackendCase) -> None:
    case = backend_case
    be = case.backend
    a = np.random.default_rng(0).normal(size=(5, 3))
    x = case.asarray(a)
    assert case.is_parameter_array(x), f"{describe(case)}: from_numpy gave a {type(x).__name__}"
    assert be.device_of(x) == case.device, (
        f"{describe(case)}: from_numpy put data on the wrong device"
    )
    assert dtype_of(x) == case.dtype
    back = be.to_numpy(x)
    assert isinstance(back, np.ndarray) and back.dtype == np.dtype(case.dtype)
    np.testing.assert_array_equal(back, a.astype(case.dtype), err_msg=describe(case))
    perm = np.array([4, 0, 3, 1, 2])
    ix = case.asarray(perm, index_dtype(case))
    assert be.device_of(ix) == case.device
    np.testing.assert_array_equal(be.to_numpy(ix), perm, err_msg=describe(case))
    assert be.to_numpy(ix).dtype.kind == "i"
    if be.name != "numpy":
        assert not be.owns(a), f"{describe(case)}: the backend claims NumPy arrays"
    if case.lazy:  # its data: lazy arrays it owns, on the device, computed by to_numpy
        lazy = case.data(a, chunks=2)
        assert be.owns(lazy) and be.device_of(lazy) == case.device, describe(case)
        np.testing.assert_array_equal(be.to_numpy(lazy), a.astype(case.dtype))


@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_same_seed_gives_numpys_minibatches(backend_case: BackendCase, shuffle: bool) -> None:
    case = backend_case
    n = 11
    X = np.arange(n, dtype=np.float64).reshape(n, 1)
    Y = 10 * X
    w = np.arange(n, dtype=np.float64) + 100
    ours = ArraySource(
        case.backend, case.asarray(X), case.asarray(Y), case.asarray(w), device=case.device
    )
    ref = ArraySource(anyglm.get_backend("numpy"), X, Y, w)
    rng_ours, rng_ref = np.random.default_rng(7), np.random.default_rng(7)
    for epoch in range(3):
        got = list(ours.epoch(rng_ours, 4, shuffle))
        expected = list(ref.epoch(rng_ref, 4, shuffle))
        assert len(got) == len(expected) == 3
        for (xb, yb, wb), (xr, yr, wr) in zip(got, expected, strict=True):
            for arr in (xb, yb, wb):
                assert case.backend.device_of(arr) == case.device, describe(case)
            msg = f"{describe(case)}: epoch {epoch} minibatch differs from NumPy's"
            np.testing.assert_array_equal(case.to_numpy(xb), xr, err_msg=msg)
            np.testing.assert_array_equal(case.to_numpy(yb), yr, err_msg=msg)
            np.testing.assert_array_equal(case.to_numpy(wb), wr, err_msg=msg)


def test_trained_parameters_agree_with_numpy(backend_case: BackendCase, model_name: str) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    ours = estimator(model_name).fit(case.data(problem.X), fit_targets(case, problem))
    ref = estimator(model_name, backend="numpy", dtype=case.dtype).fit(problem.X, problem.y)
    tol = tolerance(case.dtype)
    for what, got, expected in (
        ("coef_", case.to_numpy(ours.coef_), np.asarray(ref.coef_)),
        ("intercept_", case.to_numpy(ours.intercept_), np.asarray(ref.intercept_)),
        ("history_['train_loss']", ours.history_["train_loss"], ref.history_["train_loss"]),
        (
            "decision_function",
            case.to_numpy(ours.decision_function(case.data(problem.X))),
            ref.decision_function(problem.X),
        ),
    ):
        err = relative_error(got, expected)
        assert err <= tol, (
            f"{describe(case, model_name)}: {what} after training differs from NumPy's in "
            f"{case.dtype} with the same seed: max relative error {err:.3g} (tolerance {tol:g})"
        )


OPTIMISER_SETTINGS: dict[str, dict[str, Any]] = {
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "average": {"average": True},
    "invscaling": {"schedule": "invscaling", "power_t": 0.4},
    "optimal": {"schedule": "optimal"},
    "adaptive": {"schedule": "adaptive", "n_iter_no_change": 1, "tol": 0.5},
    "l1": {"penalty": "l1"},
    "elasticnet": {"penalty": "elasticnet", "l1_ratio": 0.4},
    "defaults": {"learning_rate": "auto", "alpha": "auto", "n_iter_no_change": 2},
}


@pytest.mark.parametrize("setting", list(OPTIMISER_SETTINGS))
def test_each_optimiser_agrees_with_numpy(
    backend_case: BackendCase, model_name: str, setting: str
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    params = OPTIMISER_SETTINGS[setting]
    ours = estimator(model_name, **params).fit(case.asarray(problem.X), fit_targets(case, problem))
    ref = estimator(model_name, backend="numpy", dtype=case.dtype, **params)
    ref.fit(problem.X, problem.y)
    tol = tolerance(case.dtype)
    for what, got, expected in (
        ("coef_", case.to_numpy(ours.coef_), np.asarray(ref.coef_)),
        ("intercept_", case.to_numpy(ours.intercept_), np.asarray(ref.intercept_)),
    ):
        err = relative_error(got, expected)
        assert err <= tol, (
            f"{describe(case, model_name)}, optimiser {setting} {params}: {what} differs from "
            f"NumPy's by {err:.3g} (tolerance {tol:g})"
        )


def test_dtype_and_device_are_preserved(backend_case: BackendCase, model_name: str) -> None:
    case = backend_case
    be = case.backend
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    what = describe(case, model_name)

    def check(est: anyglm.Estimator, how: str) -> None:
        for name in ("coef_", "intercept_"):
            arr = getattr(est, name)
            assert case.is_parameter_array(arr), f"{what} ({how}): {name} is a {type(arr).__name__}"
            assert be.device_of(arr) == case.device, (
                f"{what} ({how}): {name} is on {be.device_of(arr)!r}, not {case.device!r}"
            )
            assert dtype_of(arr) == case.dtype, (
                f"{what} ({how}): {name} has dtype {dtype_of(arr)}, not {case.dtype}"
            )
        assert est.backend_ == case.backend_name

    X = case.data(problem.X)
    check(estimator(model_name).fit(X, fit_targets(case, problem)), "data on the device")
    sent = estimator(model_name, backend=case.backend_name, device=case.device, dtype=case.dtype)
    sent.fit(problem.X, problem.y)
    check(sent, "NumPy data sent with backend=, device=, dtype=")
    out = sent.decision_function(X)
    assert be.owns(out) and be.device_of(out) == case.device, (
        f"{what}: decision_function of device data left the device"
    )
    assert isinstance(sent.decision_function(problem.X), np.ndarray), (
        f"{what}: decision_function of NumPy data must return NumPy data"
    )


def test_read_only_inputs_work_and_inputs_are_not_modified(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    what = describe(case, model_name)
    X, y = problem.X.copy(), problem.y.copy()
    weights = np.linspace(0.5, 1.5, X.shape[0])
    for a in (X, y, weights):
        a.setflags(write=False)
    est = estimator(model_name, backend=case.backend_name, device=case.device, dtype=case.dtype)
    est.fit(X, y, sample_weight=weights)
    est.predict(X)
    est.score(X, y)
    np.testing.assert_array_equal(X, problem.X, err_msg=f"{what}: fit modified X")
    np.testing.assert_array_equal(y, problem.y, err_msg=f"{what}: fit modified y")
    np.testing.assert_array_equal(weights, np.linspace(0.5, 1.5, X.shape[0]))

    Xd, yd = case.data(problem.X), fit_targets(case, problem)
    Xd_before, yd_before = case.to_numpy(Xd).copy(), case.to_numpy(yd).copy()
    est = estimator(model_name).fit(Xd, yd)
    est.predict(Xd)
    est.decision_function(Xd)
    np.testing.assert_array_equal(case.to_numpy(Xd), Xd_before, err_msg=f"{what}: X changed")
    np.testing.assert_array_equal(case.to_numpy(yd), yd_before, err_msg=f"{what}: y changed")


def test_saved_model_loads_on_numpy_and_back(
    backend_case: BackendCase, model_name: str, tmp_path: Path
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    what = describe(case, model_name)
    X = case.data(problem.X)
    est = estimator(model_name).fit(X, fit_targets(case, problem))
    decision = case.to_numpy(est.decision_function(X))
    labels = case.to_numpy(est.predict(X))
    tol = tolerance(case.dtype)

    est.save(tmp_path / "there.anyglm")
    on_numpy = anyglm.load(tmp_path / "there.anyglm", backend="numpy")
    assert on_numpy.backend_ == "numpy"
    err = relative_error(on_numpy.decision_function(problem.X), decision)
    assert err <= tol, f"{what}: loaded on NumPy, decision_function differs by {err:.3g}"
    if model.task == "classification":
        np.testing.assert_array_equal(on_numpy.predict(problem.X), labels, err_msg=what)
        np.testing.assert_array_equal(on_numpy.classes_, est.classes_, err_msg=what)

    on_numpy.save(tmp_path / "numpy.anyglm")
    back = anyglm.load(tmp_path / "numpy.anyglm", backend=case.backend_name)
    assert back.backend_ == case.backend_name
    again = back.decision_function(X)
    assert case.backend.owns(again) and case.backend.device_of(again) == case.device, (
        f"{what}: the reloaded model's predictions for device data left the device"
    )
    err = relative_error(host(case, again), decision)
    assert err <= tol, f"{what}: saved on NumPy and loaded back, decision differs by {err:.3g}"
    np.testing.assert_array_equal(host(case, back.predict(X)), labels, err_msg=what)


@pytest.mark.anyglm_backends("array_api_strict")
def test_fit_and_predict_without_data_dependent_shapes(
    backend_case: BackendCase, model_name: str
) -> None:
    from array_api_strict import ArrayAPIStrictFlags

    case = backend_case
    model = anyglm.get_model(model_name)
    problem = make_problem(model)
    X, y = case.asarray(problem.X), fit_targets(case, problem)
    expected = estimator(model_name, validation_fraction=0.25).fit(X, y)
    # Lazy libraries (JAX under jit, Dask) cannot size an output by its data: no
    # unique/nonzero and no boolean-mask indexing.
    with ArrayAPIStrictFlags(data_dependent_shapes=False, boolean_indexing=False):
        est = estimator(model_name, validation_fraction=0.25).fit(X, y)
        decision = est.decision_function(X)
        labels = est.predict(X)
        score = est.score(X, y)
        if model.task == "classification":
            est.predict_proba(X)
    what = describe(case, model_name) + " without data-dependent shapes"
    err = relative_error(case.to_numpy(decision), case.to_numpy(expected.decision_function(X)))
    assert err == 0.0, f"{what}: results differ from the default flags ({err:.3g})"
    np.testing.assert_array_equal(
        case.to_numpy(labels), case.to_numpy(expected.predict(X)), err_msg=what
    )
    assert score == expected.score(X, y)
    assert est.history_ == expected.history_
