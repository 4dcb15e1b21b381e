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
    """A seeded problem suited to ``model.task`` (see the module docstring)."""
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
        model,
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
#: (SEED.md sections 1-3), as functions of host ``Z (n, c)`` and ``Y (n, c)``.
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
    }
    settings.update(params)
    return anyglm.Estimator(model_name, **settings)


def fit_targets(case: BackendCase, problem: Problem) -> Any:
    """``problem.y`` on the case's device: int64 labels or float targets in the case dtype."""
    if problem.n_classes is not None:
        return case.asarray(problem.y, "int64")
    return case.asarray(problem.y)


def dtype_of(x: Any) -> str:
    """Canonical dtype name of an array of any library."""
    return dtype_name(x.dtype)


def host(case: BackendCase, x: Any) -> np.ndarray:
    """A result of any namespace as a host array (NumPy arrays pass through)."""
    if isinstance(x, np.ndarray):
        return x
    return case.to_numpy(x)
