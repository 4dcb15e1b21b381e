"""Checks of user input, with messages a person can act on.

Everything here runs once per call (never inside the training loop), reads
the user's arrays without modifying them, and raises ``TypeError`` for the
wrong kind of thing and ``ValueError`` for a bad value.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from .backend import Backend, dtype_name

__all__ = [
    "check_features",
    "check_hyperparameters",
    "check_labels",
    "check_sample_weight",
    "check_targets",
]


def _is_real_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def check_positive_int(name: str, value: Any) -> int:
    if not _is_integer(value):
        raise TypeError(
            f"{name} must be a positive integer, got {value!r} ({type(value).__name__})"
        )
    if value < 1:
        raise ValueError(f"{name} must be a positive integer (>= 1), got {value!r}")
    return int(value)


def check_real(name: str, value: Any, *, allow_zero: bool) -> float:
    bound = ">= 0" if allow_zero else "> 0"
    if not _is_real_number(value):
        raise TypeError(
            f"{name} must be a real number {bound}, got {value!r} ({type(value).__name__})"
        )
    v = float(value)
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be {bound}, got {value!r}")
    return v


def check_hyperparameters(
    *,
    batch_size: Any,
    learning_rate: Any,
    epochs: Any,
    alpha: Any,
    validation_fraction: Any = 0.0,
    n_iter_no_change: Any = None,
    tol: Any = 1e-4,
    shuffle: Any = True,
) -> dict[str, Any]:
    """Validate the training hyperparameters; return them normalised to Python types.

    Examples
    --------
    >>> from anyglm.validation import check_hyperparameters
    >>> check_hyperparameters(batch_size=32, learning_rate=0.1, epochs=5, alpha=0)["alpha"]
    0.0
    >>> check_hyperparameters(batch_size=32, learning_rate=-1, epochs=5, alpha=0)
    Traceback (most recent call last):
    ...
    ValueError: learning_rate must be > 0, got -1
    """
    out: dict[str, Any] = {
        "batch_size": check_positive_int("batch_size", batch_size),
        "learning_rate": check_real("learning_rate", learning_rate, allow_zero=False),
        "epochs": check_positive_int("epochs", epochs),
        "alpha": check_real("alpha", alpha, allow_zero=True),
        "tol": check_real("tol", tol, allow_zero=True),
    }
    vf = check_real("validation_fraction", validation_fraction, allow_zero=True)
    if not vf < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    out["validation_fraction"] = vf
    out["n_iter_no_change"] = (
        None
        if n_iter_no_change is None
        else check_positive_int("n_iter_no_change", n_iter_no_change)
    )
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be True or False, got {shuffle!r}")
    out["shuffle"] = bool(shuffle)
    return out


def to_host(x: Any, name: str, owner: Backend | None) -> np.ndarray:
    """A NumPy view or copy of ``x`` (from any backend, a list, or a scalar sequence)."""
    if owner is not None:
        return owner.to_numpy(x)
    try:
        return np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} could not be read as an array ({exc}); pass a rectangular numeric array"
        ) from None


def _numeric_kind(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "c":
        raise TypeError(f"{name} is complex ({a.dtype}); anyglm fits real-valued data only")
    if a.dtype.kind not in "biuf":
        raise TypeError(
            f"{name} must be numeric, got dtype {a.dtype}"
            + (
                " (strings or Python objects); encode them as numbers first"
                if a.dtype.kind in "OUSV"
                else ""
            )
        )


def _all_finite(X: np.ndarray) -> bool:
    # A sum is finite only if every term is: one pass and no n x d boolean
    # temporary; a sum that overflows from finite values falls through to the
    # exact check.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(X, axis=None)):
            return True
    return bool(np.all(np.isfinite(X)))


def check_features(X: np.ndarray, name: str = "X") -> None:
    """Check a host feature matrix: real, 2-D, non-empty, finite.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.validation import check_features
    >>> check_features(np.array([[1.0, np.nan]]))
    Traceback (most recent call last):
    ...
    ValueError: X contains NaN or infinity (first at row 0, column 1); remove or impute those values
    """
    _numeric_kind(X, name)
    if X.ndim != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if X.ndim == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}{hint}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} has no rows (shape {X.shape}); at least one sample is needed")
    if X.shape[1] == 0:
        raise ValueError(f"{name} has no features (shape {X.shape}); at least one column is needed")
    if X.dtype.kind == "f" and not _all_finite(X):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}); "
            "remove or impute those values"
        )


def check_device_features(xp: Any, X: Any, name: str = "X") -> None:
    """The same checks as :func:`check_features` for an array already on a device."""
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be real numeric, got dtype {dtype_name(X.dtype)}")
    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {tuple(X.shape)}")
    if X.shape[0] == 0 or X.shape[1] == 0:
        raise ValueError(f"{name} has shape {tuple(X.shape)}; it needs at least one row and column")
    if (
        xp.isdtype(X.dtype, "real floating")
        and not bool(xp.isfinite(xp.sum(X)))  # cheap first: finite sum => all finite
        and not bool(xp.all(xp.isfinite(X)))
    ):
        raise ValueError(f"{name} contains NaN or infinity; remove or impute those values")


def check_targets(y: np.ndarray, n_rows: int, name: str = "y") -> np.ndarray:
    """Regression targets as float64 of shape ``(n,)`` or ``(n, t)``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.validation import check_targets
    >>> check_targets(np.array([1, 2]), 2).dtype
    dtype('float64')
    """
    _numeric_kind(y, name)
    if y.ndim not in (1, 2):
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {y.shape[0]} rows but {_features_of(name)} has {n_rows}; they must match"
        )
    if y.ndim == 2 and y.shape[1] == 0:
        raise ValueError(f"{name} has no target columns (shape {y.shape})")
    out = np.asarray(y, dtype=np.float64)
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} contains NaN or infinity; remove those samples")
    return out


def _features_of(target_name: str) -> str:
    # "y_val" pairs with "X_val": name the feature array the user passed alongside.
    return "X" + target_name[1:] if target_name.startswith("y") else "X"


def check_labels(y: np.ndarray, n_rows: int, name: str = "y") -> np.ndarray:
    """Class labels as a 1-D host array; floats must be whole numbers.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.validation import check_labels
    >>> check_labels(np.array([0.0, 0.5]), 2)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: y looks continuous (non-integer values such as 0.5); a classifier needs ...
    """
    if y.ndim == 2 and y.shape[1] == 1:
        raise ValueError(
            f"{name} has shape {y.shape}; pass class labels as a 1-D array (y.ravel())"
        )
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {y.shape[0]} labels but {_features_of(name)} has {n_rows} rows; "
            "they must match"
        )
    if y.dtype.kind == "c":
        raise TypeError(f"{name} is complex ({y.dtype}); class labels must be real or strings")
    if y.dtype.kind == "f":
        if not np.all(np.isfinite(y)):
            raise ValueError(f"{name} contains NaN or infinity; remove those samples")
        if not np.all(y == np.round(y)):
            example = y[y != np.round(y)][0].item()
            raise ValueError(
                f"{name} looks continuous (non-integer values such as {example!r}); "
                "a classifier needs class labels; for a real-valued target use LinearRegression"
            )
    if y.dtype.kind == "O":
        for v in y:
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{name} contains NaN or infinity; remove those samples")
            if isinstance(v, complex):
                raise TypeError(
                    f"{name} contains complex values; class labels must be real or strings"
                )
    return y


def check_sample_weight(sample_weight: Any, n_rows: int) -> np.ndarray:
    """Non-negative finite weights of shape ``(n,)`` with a positive sum.

    Examples
    --------
    >>> from anyglm.validation import check_sample_weight
    >>> check_sample_weight([1, 2], 2).tolist()
    [1.0, 2.0]
    """
    w = to_host(sample_weight, "sample_weight", None)
    _numeric_kind(w, "sample_weight")
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.shape != (n_rows,):
        raise ValueError(f"sample_weight must have shape ({n_rows},), got {w.shape}")
    w = w.astype(np.float64)
    if not np.all(np.isfinite(w)):
        raise ValueError("sample_weight contains NaN or infinity")
    if np.any(w < 0):
        raise ValueError("sample_weight must be non-negative")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight")
    return w
