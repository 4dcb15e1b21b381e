"""Shared helpers of the conformance suite: data, references, tolerances, messages.

Nothing here is a test. The data are tiny and seeded, and chosen from the
model's declared ``task`` only, so the same helpers serve built-in and
third-party models: integer class labels for classifiers (two classes for a
binary model, three otherwise) and positive count-like targets for regressors
(valid for a Poisson model; a model whose ``check_targets`` refuses them gets
targets in (0, 1), then standard normal ones).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyglm
import numpy as np
from anyglm.backend import dtype_name
from anyglm.glm import loss_and_gradient
from anyglm.model import Model

from .plugin import BackendCase

#: Relative tolerance when a backend's result is compared with NumPy's in the same
#: dtype, or with a float64 reference: ``max|a - ref| <= tol * max|ref|``.
TOLERANCE = {"float64": 1e-10, "float32": 1e-4}

#: Default size of the generic problems: tens of rows, a few features.
N_ROWS, N_FEATURES = 24, 3


@dataclass(frozen=True)
class Problem:
    """A tiny data set for one model.

    Attributes
    ----------
    X : ndarray of shape (n, d), float64
    y : ndarray of shape (n,)
        Integer labels (classifiers) or real targets (regressors), as passed to ``fit``.
    Y : ndarray of shape (n, c), float64
        ``y`` encoded as the core encodes it for :func:`anyglm.glm.loss_and_gradient`.
    n_classes : int or None
    """

    X: np.ndarray
    y: np.ndarray
    Y: np.ndarray
    n_classes: int | None

    @property
    def n_outputs(self) -> int:
        return int(self.Y.shape[1])


def tolerance(dtype: str) -> float:
    """Relative tolerance of cross-backend comparisons in ``dtype``."""
    return TOLERANCE[dtype]


def relative_error(actual: Any, reference: Any) -> float:
    """``max|actual - reference| / max|reference|`` (absolute when the reference is 0)."""
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        raise AssertionError(f"shapes differ: {a.shape} vs reference {r.shape}")
    if a.size == 0:
        return 0.0
    scale = float(np.max(np.abs(r)))
    return float(np.max(np.abs(a - r))) / (scale if scale > 0 else 1.0)


def describe(case: BackendCase, model_name: str | None = None) -> str:
    """``model 'softmax' on backend 'numpy', device cpu, float64``."""
    prefix = f"model {model_name!r} on " if model_name is not None else ""
    return prefix + case.describe()


def model_targets(model: Model, n: int, rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
    """Regression targets the model accepts: positive counts, else (0, 1), else reals."""
    scores = X @ rng.normal(scale=0.4, size=X.shape[1])
    candidates = [
        rng.poisson(np.exp(0.5 + scores)).astype(np.float64) + 1.0,
        1.0 / (1.0 + np.exp(-scores)) * 0.8 + 0.1,
        scores + rng.normal(scale=0.5, size=n),
    ]
    errors = []
    for y in candidates:
        try:
            model.check_targets(y.reshape(n, 1))
        except ValueError as exc:
            errors.append(str(exc))
            continue
        return y
    raise AssertionError(
        f"model {model.name!r} refuses positive counts, values in (0, 1) and real targets "
        f"alike, so the conformance suite cannot test it: {'; '.join(errors)}"
    )


def make_problem(model: Model, *, n: int = N_ROWS, d: int = N_FEATURES, seed: int = 0) -> Problem:
    """A seeded problem suited to ``model.task`` (see the module docstring).

    Every model test starts here, so the model's shape contract is checked here
    first, on NumPy in float64 (:func:`check_contract`): a model that breaks it
    fails each test with one message instead of an error from deep in a helper.
    """
    __tracebackhide__ = True  # failures point at the test, not here
    problem = _make_problem(model, n=n, d=d, seed=seed)
    check_contract(None, model, problem)
    return problem


def _make_problem(model: Model, *, n: int, d: int, seed: int) -> Problem:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    if model.task == "classification":
        k = 2 if model.binary else 3
        y = rng.permutation(np.arange(n) % k).astype(np.int64)
        if model.binary:
            Y = y.astype(np.float64).reshape(n, 1)
        else:
            Y = np.zeros((n, k))
            Y[np.arange(n), y] = 1.0
        return Problem(X, y, Y, k)
    y = model_targets(model, n, rng, X)
    return Problem(X, y, y.reshape(n, 1), None)


def random_parameters(problem: Problem, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Moderate parameters ``W (d, c)``, ``b (c,)``: logits of order one, no saturation."""
    rng = np.random.default_rng(seed)
    d, c = problem.X.shape[1], problem.n_outputs
    return rng.normal(scale=0.3, size=(d, c)), rng.normal(scale=0.2, size=c)


# -- the model contract --------------------------------------------------------------------------


def _where(case: BackendCase | None, model: Model) -> str:
    if case is None:
        return f"model {model.name!r} on NumPy, float64 (the reference)"
    return describe(case, model.name)


def _shape(x: Any) -> tuple[int, ...] | None:
    shape = getattr(x, "shape", None)
    return None if shape is None else tuple(shape)


def call_model(
    case: BackendCase | None, model: Model, method: str, Z: Any, Y: Any = None
) -> tuple[Any, ...]:
    """Call ``model.<method>`` and check what it returns against the contract.

    ``method`` is ``"loss_and_dloss"``, ``"loss"``, ``"dloss"`` or
    ``"inverse_link"``; ``Z`` and ``Y`` are arrays of the case (``case=None``:
    NumPy float64, the reference). Returns the outputs as a tuple (two for
    ``loss_and_dloss``, one otherwise). Fails with one message naming the model,
    backend, device, dtype, method and the shapes, when the method raises or an
    output is not an array of the contract's shape (loss: ``Z.shape[:-1]``; dloss
    and inverse link: ``Z.shape``), in the dtype of ``Z``, on the device of ``Z``.
    """
    __tracebackhide__ = True  # failures point at the test, not here
    where = _where(case, model)
    z_shape = _shape(Z)
    args = (Z,) if method == "inverse_link" else (Z, Y)
    try:
        out = getattr(model, method)(_namespace(case), *args)
    except Exception as exc:
        shapes = f"Z of shape {z_shape}" + ("" if Y is None else f" and Y of shape {_shape(Y)}")
        raise AssertionError(
            f"{where}: {method} raised {type(exc).__name__} on {shapes}: {exc}"
        ) from exc
    if method == "loss_and_dloss":
        if not (isinstance(out, tuple) and len(out) == 2):
            raise AssertionError(
                f"{where}: loss_and_dloss returned {type(out).__name__} but the contract is "
                f"a pair (loss, dloss)"
            )
        named = [("loss", out[0]), ("dloss", out[1])]
    else:
        named = [(method, out)]
        out = (out,)
    assert z_shape is not None
    dtype = dtype_of(Z)
    for name, arr in named:
        contract = z_shape[:-1] if name == "loss" else z_shape
        rule = "Z.shape[:-1]" if name == "loss" else "Z.shape"
        got = _shape(arr)
        label = name if method == "loss_and_dloss" else "its result"
        if got is None or not hasattr(arr, "dtype"):
            raise AssertionError(
                f"{where}: {method} returned {label} as a {type(arr).__name__}, not an array "
                f"of shape {contract} ({rule} for Z of shape {z_shape})"
            )
        if got != contract:
            raise AssertionError(
                f"{where}: {method} returned {label} of shape {got} but the contract is "
                f"{contract} ({rule} for Z of shape {z_shape})"
            )
        if dtype_of(arr) != dtype:
            raise AssertionError(
                f"{where}: {method} returned {label} in {dtype_of(arr)} but the contract is "
                f"the dtype of Z, {dtype}"
            )
        if case is not None and case.backend.device_of(arr) != case.device:
            raise AssertionError(
                f"{where}: {method} returned {label} on device "
                f"{case.backend.device_of(arr)!r} but the contract is the device of Z, "
                f"{case.device!r}"
            )
    return out


def _namespace(case: BackendCase | None) -> Any:
    return anyglm.get_backend("numpy").xp if case is None else case.xp


def check_contract(case: BackendCase | None, model: Model, problem: Problem | None = None) -> None:
    """Check every model function's shape, dtype and device on a small problem.

    ``Z`` has the layout of training: ``(rows, configurations, outputs)`` with
    two configurations, and ``Y`` has shape ``(rows, 1, outputs)``, broadcast
    over the configurations. ``case=None`` checks on NumPy in float64.
    """
    __tracebackhide__ = True  # failures point at the test, not here
    if problem is None:
        problem = _make_problem(model, n=N_ROWS, d=N_FEATURES, seed=0)
    n, c = problem.Y.shape
    W1, b1 = random_parameters(problem, seed=1)
    W2, b2 = random_parameters(problem, seed=2)
    Z_host = np.stack([problem.X @ W1 + b1, problem.X @ W2 + b2], axis=1)
    Y_host = problem.Y.reshape(n, 1, c)
    if case is None:
        Z, Y = Z_host, Y_host
    else:
        Z, Y = case.asarray(Z_host), case.asarray(Y_host)
    for method in ("loss_and_dloss", "loss", "dloss"):
        call_model(case, model, method, Z, Y)
    call_model(case, model, "inverse_link", Z)


def model_under_test(case: BackendCase, model_name: str) -> Model:
    """The registered model, once its contract holds on ``case`` (see :func:`check_contract`)."""
    __tracebackhide__ = True  # failures point at the test, not here
    model = anyglm.get_model(model_name)
    check_contract(case, model)
    return model


class _ContractChecked(Model):
    """``model`` whose ``loss_and_dloss`` results are checked before the core uses them."""

    def __init__(self, case: BackendCase, model: Model) -> None:
        self.case, self.model = case, model
        self.name, self.task, self.binary = model.name, model.task, model.binary

    def loss_and_dloss(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        __tracebackhide__ = True  # failures point at the test, not here
        rows, dZ = call_model(self.case, self.model, "loss_and_dloss", Z, Y)
        return rows, dZ


# -- extreme linear predictors ---------------------------------------------------------------------

#: Linear predictors of the extreme-value test, by increasing ``|z|``, so a message
#: names the smallest ``|z|`` that fails first.
EXTREME_Z = (0.0, -1.0, 1.0, -40.0, 40.0, -1000.0, 1000.0)


@dataclass(frozen=True)
class ExtremePoints:
    """Rows of ``Z`` at :data:`EXTREME_Z`, each with every label, on the training layout.

    Attributes
    ----------
    Z, Y : ndarray of shape (m, 1, c), float64
        One configuration; ``Y`` encoded as the core encodes it.
    labels : list of str
        For each row, where it is: ``"z = -40 (class 1)"``.
    """

    Z: np.ndarray
    Y: np.ndarray
    labels: list[str]


def extreme_points(model: Model) -> ExtremePoints:
    """Every ``z`` of :data:`EXTREME_Z` with every label of the model.

    ``z`` is broadcast over the model's outputs (``"z = -40"``); with several
    outputs, each output also takes ``z`` alone, the others 0 (``"z = -40 at
    output 2"``), where a softmax that does not shift by the row maximum breaks.
    Classifiers get each class; regressors the smallest and largest of the
    suite's targets.
    """
    problem = _make_problem(model, n=N_ROWS, d=N_FEATURES, seed=0)
    c = problem.n_outputs
    if problem.n_classes is not None:
        k = problem.n_classes
        encoded = [np.eye(k)[j] if k == c else np.array([float(j)]) for j in range(k)]
        targets = [(f"class {j}", y) for j, y in enumerate(encoded)]
    else:
        lo, hi = float(np.min(problem.y)), float(np.max(problem.y))
        targets = [(f"target {t:g}", np.full(c, t)) for t in dict.fromkeys((lo, hi))]
    patterns: list[tuple[str, np.ndarray]] = [("", np.ones(c))]
    if c > 1:
        patterns += [(f" at output {j}", np.eye(c)[j]) for j in range(c)]
    Z, Y, labels = [], [], []
    for z in EXTREME_Z:
        for suffix, pattern in patterns:
            for label, y in targets:
                Z.append(z * pattern)
                Y.append(y)
                labels.append(f"z = {z:g}{suffix} ({label})")
    m = len(labels)
    return ExtremePoints(
        np.asarray(Z, dtype=np.float64).reshape(m, 1, c),
        np.asarray(Y, dtype=np.float64).reshape(m, 1, c),
        labels,
    )


def at_points(labels: list[str], rows: np.ndarray, limit: int = 4) -> str:
    """``z = -40 (class 1), z = 40 (class 0)``: the first ``limit`` labels where ``rows``."""
    hits = [label for label, hit in zip(labels, rows, strict=True) if hit]
    text = ", ".join(hits[:limit])
    return text + (f" and {len(hits) - limit} more" if len(hits) > limit else "")


def loss_and_gradient_on(
    case: BackendCase,
    model: Model,
    X: np.ndarray,
    Y: np.ndarray,
    W: np.ndarray,
    b: np.ndarray,
    *,
    dtype: str | None = None,
    n_configs: int = 1,
) -> tuple[Any, Any, Any]:
    """:func:`anyglm.glm.loss_and_gradient` with host inputs moved to the case's device."""
    put = case.asarray
    return loss_and_gradient(
        _ContractChecked(case, model),
        case.xp,
        put(X, dtype),
        put(Y, dtype),
        put(W, dtype),
        put(b, dtype),
        n_configs=n_configs,
    )


def numpy_reference(
    model: Model, X: np.ndarray, Y: np.ndarray, W: np.ndarray, b: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray]:
    """Mean loss and gradient of the same model computed by NumPy in float64."""
    xp = anyglm.get_backend("numpy").xp
    loss, gW, gb = loss_and_gradient(model, xp, X, Y, W, b)
    return float(loss[0]), np.asarray(gW, dtype=np.float64), np.asarray(gb, dtype=np.float64)


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0) + np.log1p(np.exp(-np.abs(z)))


def _linear_rows(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    return 0.5 * np.sum((Z - Y) ** 2, axis=1)


def _logistic_rows(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    # -y log(sigma(z)) - (1 - y) log(1 - sigma(z)), with log sigma(z) = -softplus(-z).
    return np.sum(Y * _softplus(-Z) + (1.0 - Y) * _softplus(Z), axis=1)


def _softmax_rows(Z: np.ndarray, Y: np.ndarray) -> np.ndarray:
    m = np.max(Z, axis=1, keepdims=True)
    log_p = Z - m - np.log(np.sum(np.exp(Z - m), axis=1, keepdims=True))
    return -np.sum(Y * log_p, axis=1)


#: Per-row losses of the built-in models written independently of their plugins
#: (docs/theory.md, the three models), as functions of host ``Z (n, c)`` and ``Y (n, c)``.
INDEPENDENT_LOSSES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "linear": _linear_rows,
    "logistic": _logistic_rows,
    "softmax": _softmax_rows,
}


def estimator(model_name: str, **params: Any) -> anyglm.Estimator:
    """A small, seeded estimator for the generic checks (a few epochs on tens of rows)."""
    settings: dict[str, Any] = {
        "batch_size": 8,
        "learning_rate": 0.05,
        "epochs": 4,
        "alpha": 1e-3,
        "random_state": 0,
        # A fixed number of epochs: where early stopping would stop could differ
        # between backends by rounding at the threshold, not by a defect.
        "n_iter_no_change": None,
    }
    settings.update(params)
    return anyglm.Estimator(model_name, **settings)


def index_dtype(case: BackendCase) -> str:
    """The integer dtype the case's backend uses on its device ("int32" for JAX without x64)."""
    return case.backend.index_dtype(case.device)


def fit_targets(case: BackendCase, problem: Problem) -> Any:
    """``problem.y`` as data of the case (:meth:`BackendCase.data`): integer labels (the
    backend's index dtype) or float targets in the case dtype."""
    if problem.n_classes is not None:
        return case.data(problem.y, index_dtype(case))
    return case.data(problem.y)


def dtype_of(x: Any) -> str:
    """Canonical dtype name of an array of any library."""
    return dtype_name(x.dtype)


def host(case: BackendCase, x: Any) -> np.ndarray:
    """A result of any namespace as a host array (NumPy arrays pass through)."""
    if isinstance(x, np.ndarray):
        return x
    return case.to_numpy(x)
