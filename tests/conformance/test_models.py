"""Conformance of every registered model on every backend case.

For each model (built-in or from a plugin) x backend x device x float dtype:

* first, the shape contract: ``loss`` and ``loss_and_dloss`` give one value per
  row, shape ``Z.shape[:-1]``, ``dloss`` and ``inverse_link`` keep the shape of
  ``Z``, all in the dtype of ``Z`` and on its device (on the training layout,
  ``Z`` of shape ``(rows, configurations, outputs)``); a model that breaks it
  fails every test with one message saying which function returned what;
* the analytic gradient of :func:`anyglm.glm.loss_and_gradient` agrees with
  central finite differences of the loss, in float64 where the device has it
  (tolerance 1e-6 relative) and in float32 with a coarser step otherwise
  (1e-2); a failure names the model, the backend, the device and the size of
  the error;
* the mean loss and its gradient agree with the same model computed by NumPy
  in float64 (and, for the built-ins, with the formulas of the theory page,
  docs/theory.md, written out independently);
* the per-row loss depends on its own row only (the core takes the mean):
  duplicating every row leaves the mean loss and gradient unchanged, and the
  mean over all rows is the mean of the means of two halves;
* at extreme linear predictors, ``z`` in {0, ±1, ±40, ±1000}, with every
  label, ``loss_and_dloss`` gives a finite loss and a finite ``dloss`` that
  agrees with the same model in float64 NumPy (a naive ``log(Phi(z))`` is
  ``-inf`` at ``z = -40``); for classifiers the probabilities are finite too;
* several configurations stacked along the columns of ``W`` are independent;
* an :class:`anyglm.Estimator` of the model predicts with the right shape,
  dtype, namespace and device.

Third parties run it on their plugin with::

    pytest --pyargs anyglm.conformance --anyglm-model mymodel
    pytest --pyargs anyglm.conformance --anyglm-backend mybackend
"""

from __future__ import annotations

from typing import Any

import anyglm
import numpy as np
import pytest

from ._support import (
    INDEPENDENT_LOSSES,
    at_points,
    call_model,
    describe,
    dtype_of,
    estimator,
    extreme_points,
    fit_targets,
    host,
    loss_and_gradient_on,
    make_problem,
    model_under_test,
    numpy_reference,
    random_parameters,
    relative_error,
    tolerance,
)
from .plugin import BackendCase

pytestmark = pytest.mark.anyglm_conformance

#: Finite-difference step and accepted relative error, per dtype the check runs in.
FD_STEP = {"float64": 1e-6, "float32": 1e-2}
FD_TOLERANCE = {"float64": 1e-6, "float32": 1e-2}


def test_model_declares_its_interface(model_name: str) -> None:
    model = anyglm.get_model(model_name)
    assert isinstance(model, anyglm.Model)
    assert model.name == model_name, (
        f"model registered as {model_name!r} names itself {model.name!r}"
    )
    assert model.task in ("regression", "classification"), (
        f"model {model_name!r}: task must be 'regression' or 'classification', got {model.task!r}"
    )
    assert isinstance(model.binary, bool), f"model {model_name!r}: binary must be a bool"
    assert not (model.binary and model.task != "classification"), (
        f"model {model_name!r}: only classifiers can be binary"
    )
    assert isinstance(model.description, str)


def test_gradient_matches_finite_differences(backend_case: BackendCase, model_name: str) -> None:
    case = backend_case
    model = model_under_test(case, model_name)
    dtype = "float64" if case.supports("float64") else "float32"
    problem = make_problem(model)
    W0, b0 = random_parameters(problem)

    def loss_at(W: np.ndarray, b: np.ndarray) -> float:
        loss, _, _ = loss_and_gradient_on(case, model, problem.X, problem.Y, W, b, dtype=dtype)
        return float(case.to_numpy(loss)[0])

    _, gW, gb = loss_and_gradient_on(case, model, problem.X, problem.Y, W0, b0, dtype=dtype)
    analytic = np.concatenate([case.to_numpy(gW).ravel(), case.to_numpy(gb).ravel()])
    theta = np.concatenate([W0.ravel(), b0])
    h = FD_STEP[dtype]
    numeric = np.empty_like(theta)
    for i in range(theta.size):
        up, down = theta.copy(), theta.copy()
        up[i] += h
        down[i] -= h
        f_up = loss_at(up[: W0.size].reshape(W0.shape), up[W0.size :])
        f_down = loss_at(down[: W0.size].reshape(W0.shape), down[W0.size :])
        numeric[i] = (f_up - f_down) / (2 * h)
    analytic = analytic.astype(np.float64)
    err = relative_error(analytic, numeric)
    worst = int(np.argmax(np.abs(analytic - numeric)))
    ratio = float(analytic @ numeric / (numeric @ numeric)) if numeric.any() else float("nan")
    assert err <= FD_TOLERANCE[dtype], (
        f"{describe(case, model_name)}: the analytic gradient (anyglm.glm.loss_and_gradient) "
        f"differs from central finite differences of the mean loss computed in {dtype}: "
        f"max relative error {err:.3g} (tolerance {FD_TOLERANCE[dtype]:g}); worst entry "
        f"{worst} of {theta.size}: analytic {analytic[worst]:.6g}, finite difference "
        f"{numeric[worst]:.6g}; analytic/numeric ratio ~ {ratio:.4g}"
    )


def test_loss_matches_float64_numpy_reference(backend_case: BackendCase, model_name: str) -> None:
    case = backend_case
    model = model_under_test(case, model_name)
    problem = make_problem(model)
    W, b = random_parameters(problem)
    ref_loss, ref_gW, ref_gb = numpy_reference(model, problem.X, problem.Y, W, b)
    if model_name in INDEPENDENT_LOSSES:
        rows = INDEPENDENT_LOSSES[model_name](problem.X @ W + b, problem.Y)
        err = relative_error(ref_loss, np.mean(rows))
        assert err <= 1e-12, (
            f"model {model_name!r} on NumPy float64: mean loss {ref_loss!r} differs from the "
            f"textbook formula {np.mean(rows)!r} (relative error {err:.3g})"
        )

    loss, gW, gb = loss_and_gradient_on(case, model, problem.X, problem.Y, W, b)
    tol = tolerance(case.dtype)
    for what, got, ref in (
        ("mean loss", case.to_numpy(loss)[0], ref_loss),
        ("gradient in W", case.to_numpy(gW), ref_gW),
        ("gradient in b", case.to_numpy(gb), ref_gb),
    ):
        err = relative_error(got, ref)
        assert err <= tol, (
            f"{describe(case, model_name)}: {what} differs from the float64 NumPy reference "
            f"of the same model: max relative error {err:.3g} (tolerance {tol:g})"
        )
    for name, arr in (("loss", loss), ("grad_W", gW), ("grad_b", gb)):
        assert dtype_of(arr) == case.dtype, (
            f"{describe(case, model_name)}: {name} has dtype {dtype_of(arr)}, not {case.dtype}"
        )
        assert case.backend.device_of(arr) == case.device, (
            f"{describe(case, model_name)}: {name} left the device for "
            f"{case.backend.device_of(arr)!r}"
        )
    # The per-row functions' shapes, dtype and device: model_under_test checked them.


def test_per_row_loss_depends_on_its_own_row_only(
    backend_case: BackendCase, model_name: str
) -> None:
    """The model returns one loss per row, from that row alone; the core takes the mean.

    So duplicating every row changes neither the mean loss nor its gradient, and
    the mean over all rows is the mean of the means of two halves: a model that
    divides by the batch size, or mixes rows, fails.
    """
    case = backend_case
    model = model_under_test(case, model_name)
    problem = make_problem(model)
    W, b = random_parameters(problem)
    X, Y = problem.X, problem.Y
    tol = tolerance(case.dtype)

    def evaluate(Xs: np.ndarray, Ys: np.ndarray) -> list[np.ndarray]:
        return [case.to_numpy(a) for a in loss_and_gradient_on(case, model, Xs, Ys, W, b)]

    once = evaluate(X, Y)
    twice = evaluate(np.concatenate([X, X]), np.concatenate([Y, Y]))
    for what, a, ref in zip(("loss", "gradient in W", "gradient in b"), twice, once, strict=True):
        err = relative_error(a, ref)
        assert err <= tol, (
            f"{describe(case, model_name)}: duplicating every row changed the {what} "
            f"(relative change {err:.3g}, tolerance {tol:g}); model.loss must give each row's "
            f"loss from that row alone (one value per row, not a mean or sum: the core "
            f"takes the mean)"
        )
    half = X.shape[0] // 2
    first = evaluate(X[:half], Y[:half])
    second = evaluate(X[half:], Y[half:])
    for i, what in enumerate(("loss", "gradient in W", "gradient in b")):
        mean = (first[i] + second[i]) / 2
        err = relative_error(once[i], mean)
        assert err <= tol, (
            f"{describe(case, model_name)}: the {what} of all rows is not the mean of the "
            f"{what}es of two equal halves (relative error {err:.3g}, tolerance {tol:g})"
        )


def test_configurations_are_independent(backend_case: BackendCase, model_name: str) -> None:
    """Two parameter sets stacked as ``W = [W1 | W2]`` give each one's own loss and gradient."""
    case = backend_case
    model = model_under_test(case, model_name)
    problem = make_problem(model)
    W1, b1 = random_parameters(problem, seed=1)
    W2, b2 = random_parameters(problem, seed=2)
    stacked = loss_and_gradient_on(
        case,
        model,
        problem.X,
        problem.Y,
        np.concatenate([W1, W2], axis=1),
        np.concatenate([b1, b2]),
        n_configs=2,
    )
    loss, gW, gb = (case.to_numpy(a) for a in stacked)
    assert loss.shape == (2,), f"{describe(case, model_name)}: loss shape {loss.shape} != (2,)"
    c = problem.n_outputs
    tol = tolerance(case.dtype)
    for k, (W, b) in enumerate(((W1, b1), (W2, b2))):
        single = [
            case.to_numpy(a) for a in loss_and_gradient_on(case, model, problem.X, problem.Y, W, b)
        ]
        for what, got, ref in (
            ("loss", loss[k : k + 1], single[0]),
            ("gradient in W", gW[:, k * c : (k + 1) * c], single[1]),
            ("gradient in b", gb[k * c : (k + 1) * c], single[2]),
        ):
            err = relative_error(got, ref)
            assert err <= tol, (
                f"{describe(case, model_name)}: with two configurations trained at once, the "
                f"{what} of configuration {k} differs from training it alone (relative error "
                f"{err:.3g}); model functions must reduce over the last axis only"
            )


def test_predictions_have_shape_dtype_namespace_and_device(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    be = case.backend
    model = model_under_test(case, model_name)
    problem = make_problem(model)
    n, d = problem.X.shape
    X = case.data(problem.X)
    est = estimator(model_name).fit(X, fit_targets(case, problem))
    what = describe(case, model_name)

    def on_device(
        name: str, arr: Any, shape: tuple[int, ...], dtype: str | None, parameter: bool = False
    ) -> None:
        # Parameters follow X: arrays of the backend, or of a lazy backend's chunks' library.
        owned = case.is_parameter_array(arr) if parameter else be.owns(arr)
        assert owned, f"{what}: {name} is a {type(arr).__name__}, not a {be.name} array"
        assert be.device_of(arr) == case.device, (
            f"{what}: {name} is on {be.device_of(arr)!r}, the input on {case.device!r}"
        )
        assert tuple(arr.shape) == shape, (
            f"{what}: {name} has shape {tuple(arr.shape)}, not {shape}"
        )
        if dtype is not None:
            assert dtype_of(arr) == dtype, f"{what}: {name} has dtype {dtype_of(arr)}, not {dtype}"

    pred = est.predict(X)
    decision = est.decision_function(X)
    if problem.n_classes is not None:
        k = problem.n_classes
        on_device("predict(X)", pred, (n,), None)
        assert case.xp.isdtype(pred.dtype, "integral"), f"{what}: labels have dtype {pred.dtype}"
        labels = case.to_numpy(pred)
        assert set(labels.tolist()) <= set(range(k)), f"{what}: predicted labels {labels}"
        on_device("decision_function(X)", decision, (n,) if model.binary else (n, k), case.dtype)
        proba = est.predict_proba(X)
        on_device("predict_proba(X)", proba, (n, k), case.dtype)
        P = case.to_numpy(proba).astype(np.float64)
        assert np.all((P >= 0) & (P <= 1)), f"{what}: probabilities outside [0, 1]"
        np.testing.assert_allclose(P.sum(axis=1), 1.0, atol=10 * tolerance(case.dtype))
        np.testing.assert_array_equal(np.argmax(P, axis=1), labels, err_msg=what)
        n_out = 1 if model.binary else k
        on_device("coef_", est.coef_, (n_out, d), case.dtype, parameter=True)
        on_device("intercept_", est.intercept_, (n_out,), case.dtype, parameter=True)
        np.testing.assert_array_equal(est.classes_, np.arange(k), err_msg=what)
    else:
        on_device("predict(X)", pred, (n,), case.dtype)
        on_device("decision_function(X)", decision, (n,), case.dtype)
        mean = model.inverse_link(case.xp, decision)
        err = relative_error(case.to_numpy(pred), case.to_numpy(mean))
        assert err <= tolerance(case.dtype), f"{what}: predict != inverse_link(decision_function)"
        on_device("coef_", est.coef_, (d,), case.dtype, parameter=True)
        on_device("intercept_", est.intercept_, (), case.dtype, parameter=True)
    assert est.n_features_in_ == d
    assert est.backend_ == case.backend_name
    assert len(est.history_["train_loss"]) == est.n_epochs_ == 4
    assert np.all(np.isfinite(est.history_["train_loss"])), f"{what}: non-finite training loss"

    # Host input, host output: predictions follow the namespace of X.
    on_host = est.predict(problem.X)
    assert isinstance(on_host, np.ndarray), f"{what}: predict(numpy X) gave {type(on_host)}"
    expected = host(case, pred)
    if problem.n_classes is not None:
        np.testing.assert_array_equal(on_host, expected, err_msg=what)
    else:
        assert relative_error(on_host, expected) <= tolerance(case.dtype), what
    score = est.score(X, fit_targets(case, problem))
    assert isinstance(score, float) and np.isfinite(score), f"{what}: score {score!r}"


def test_loss_and_dloss_agrees_with_the_separate_methods(
    backend_case: BackendCase, model_name: str
) -> None:
    """A model may fuse loss and dloss (the training loop calls ``loss_and_dloss``);
    the fused values must equal what ``loss`` and ``dloss`` give alone."""
    case, model = backend_case, model_under_test(backend_case, model_name)
    problem = make_problem(model)
    W, b = random_parameters(problem)
    Z, Y = case.asarray(problem.X @ W + b), case.asarray(problem.Y)
    rows, dZ = model.loss_and_dloss(case.xp, Z, Y)
    tol = tolerance(case.dtype)
    for name, fused, alone in (
        ("loss", rows, model.loss(case.xp, Z, Y)),
        ("dloss", dZ, model.dloss(case.xp, Z, Y)),
    ):
        err = relative_error(case.to_numpy(fused), case.to_numpy(alone))
        assert err <= tol, (
            f"{describe(case, model_name)}: loss_and_dloss() returns a {name} that differs "
            f"from {name}() by {err:.3g} (tolerance {tol:g})"
        )


def test_loss_is_finite_at_extreme_linear_predictors(
    backend_case: BackendCase, model_name: str
) -> None:
    """Training meets large ``|z|`` (unscaled data, early epochs at a large step); a loss
    that overflows there ends in a DivergenceError blamed on the learning rate.

    ``loss_and_dloss`` (training) and ``loss`` (validation, ``score``) must give
    finite losses, ``dloss`` must be finite and agree with the float64 NumPy
    reference within :func:`tolerance` of the dtype, measured in each row relative
    to ``max(1, max|reference|)`` there. For regressors, points where the float64
    reference's mean or loss lies beyond the dtype's range (``exp(1000)`` of a log
    link) are left out: no array of that dtype can hold the answer. A classifier's
    loss at ``|z| <= 1000`` is at most about ``z**2 / 2`` (probit), well inside
    float32, so every point counts.
    """
    case = backend_case
    model = model_under_test(case, model_name)
    points = extreme_points(model)
    labels = points.labels
    # Overflow warnings are not the verdict (a regressor's exp(1000) overflows by
    # right): the values are judged below.
    with np.errstate(all="ignore"):
        ref_rows, ref_dZ = (
            np.asarray(a, dtype=np.float64)
            for a in call_model(None, model, "loss_and_dloss", points.Z, points.Y)
        )
        (ref_P,) = call_model(None, model, "inverse_link", points.Z)
        Z, Y = case.asarray(points.Z), case.asarray(points.Y)
        rows_dev, dZ_dev = call_model(case, model, "loss_and_dloss", Z, Y)
        (alone_dev,) = call_model(case, model, "loss", Z, Y)
        (P_dev,) = call_model(case, model, "inverse_link", Z)
    ref_P = np.asarray(ref_P, dtype=np.float64)
    rows = host(case, rows_dev).astype(np.float64).reshape(-1)
    alone = host(case, alone_dev).astype(np.float64).reshape(-1)
    dZ = host(case, dZ_dev).astype(np.float64).reshape(len(labels), -1)
    P = host(case, P_dev).astype(np.float64).reshape(len(labels), -1)
    ref_rows, ref_dZ, ref_P = (
        ref_rows.reshape(-1),
        ref_dZ.reshape(len(labels), -1),
        ref_P.reshape(len(labels), -1),
    )

    in_range = np.ones(len(labels), dtype=bool)
    if model.task != "classification":
        biggest = float(np.finfo(case.dtype).max)
        with np.errstate(invalid="ignore"):
            for ref in (ref_P, ref_dZ, ref_rows.reshape(-1, 1)):
                in_range &= np.all(np.isfinite(ref) & (np.abs(ref) <= biggest), axis=1)

    problems = []
    bad_loss = in_range & ~np.isfinite(rows)
    if bad_loss.any():
        problems.append(f"loss is not finite at {at_points(labels, bad_loss)}")
    bad_dloss = in_range & ~np.all(np.isfinite(dZ), axis=1)
    if bad_dloss.any():
        problems.append(f"dloss is not finite at {at_points(labels, bad_dloss)}")
    bad_alone = in_range & ~np.isfinite(alone)
    if bad_alone.any():
        problems.append(
            f"loss() (used for validation and score) is not finite at "
            f"{at_points(labels, bad_alone)}"
        )
    if model.task == "classification":
        bad_p = ~np.all(np.isfinite(P), axis=1)
        if bad_p.any():
            problems.append(f"inverse_link is not finite at {at_points(labels, bad_p)}")
    compared = in_range & ~bad_dloss & np.all(np.isfinite(ref_dZ), axis=1)
    tol = tolerance(case.dtype)
    with np.errstate(invalid="ignore"):
        scale = np.maximum(1.0, np.max(np.abs(ref_dZ), axis=1))
        err = np.max(np.abs(dZ - ref_dZ), axis=1) / scale
    off = compared & ~(err <= tol)
    if off.any():
        worst = int(np.argmax(np.where(off, err, -1.0)))
        problems.append(
            f"dloss differs from the same model in float64 NumPy at {at_points(labels, off)}: "
            f"relative error up to {err[worst]:.3g} at {labels[worst]} (tolerance {tol:g})"
        )
    assert not problems, f"{describe(case, model_name)}: " + "; ".join(problems)
