"""Checks of user input, with messages a person can act on.

Everything here runs once per call (never inside the training loop), reads
the user's arrays without modifying them, and raises ``TypeError`` for the
wrong kind of thing and ``ValueError`` for a bad value.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from .backend import Backend, dtype_name
from .errors import DataConversionWarning

__all__ = [
    "check_device",
    "check_features",
    "check_hyperparameters",
    "check_labels",
    "check_learning_rate",
    "check_sample_weight",
    "check_targets",
    "numeric_features",
    "plain_input",
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


def check_learning_rate(value: Any) -> float | str:
    """A learning rate: a finite number > 0, or ``"auto"`` (derived from the data).

    Examples
    --------
    >>> from anyglm.validation import check_learning_rate
    >>> check_learning_rate("auto"), check_learning_rate(0.5)
    ('auto', 0.5)
    """
    if isinstance(value, str):
        if value == "auto":
            return value
        raise TypeError(
            f"learning_rate must be a real number > 0, got {value!r} (str); "
            "or 'auto' (derived from the data)"
        )
    return check_real("learning_rate", value, allow_zero=False)


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
        "learning_rate": check_learning_rate(learning_rate),
        "epochs": check_positive_int("epochs", epochs),
        "alpha": "auto"
        if isinstance(alpha, str) and alpha == "auto"
        else check_real("alpha", alpha, allow_zero=True),
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
    """A NumPy view or copy of ``x`` (from any backend, a list, or a scalar sequence).

    ``x`` goes through :func:`plain_input` first (masks, ``np.matrix``,
    pandas' missing values and nullable dtypes, ``None``, generators).
    """
    x = plain_input(x, name)
    if owner is not None and not isinstance(x, np.ndarray):
        return owner.to_numpy(x)
    try:
        out = np.asarray(x)
    except (ValueError, TypeError) as exc:
        raise ValueError(
            f"{name} could not be read as an array ({exc}); pass a rectangular numeric array"
        ) from None
    if out.dtype.kind == "O" and out.ndim == 0 and out.item() is not None:
        raise TypeError(
            f"{name} is a {type(x).__name__}, which cannot be read as an array; pass a "
            "NumPy array, a list of rows, or a pandas DataFrame"
        )
    return out


def plain_input(x: Any, name: str) -> Any:
    """``x`` with the containers NumPy would misread turned into plain arrays, or a clear error.

    * ``None`` and generators or iterators: ``TypeError`` saying so;
    * ``np.ma.MaskedArray``: refused when any value is masked (naming the
      first), its data otherwise (anyglm has no notion of a mask);
    * ``np.matrix``: a plain 2-D array;
    * pandas objects: missing values (``NaN``, ``None``, ``pd.NA``) refused
      naming the first row and column; nullable extension dtypes (``Int64``,
      ``Float64``, ``boolean``) become NumPy's.

    Anything else is returned unchanged.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.validation import plain_input
    >>> plain_input(np.ma.masked_array([[1.0, 2.0]]), "X").__class__.__name__  # nothing masked
    'ndarray'
    >>> plain_input(np.ma.masked_invalid([[1.0, np.nan]]), "X")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: X is a masked array with 1 masked value(s), the first at row 0, column 1; ...
    """
    if x is None:
        raise TypeError(f"{name} is None; pass an array of shape (n_samples, n_features)")
    if isinstance(x, np.ndarray):
        if isinstance(x, np.ma.MaskedArray):
            return _unmasked(x, name)
        if isinstance(x, np.matrix):
            return np.asarray(x)
        return x
    if isinstance(x, Iterator):
        raise TypeError(
            f"{name} is a {type(x).__name__} (a one-pass stream); anyglm needs the whole "
            f"array: pass numpy.asarray(list({name})), or a np.memmap or zarr array for data "
            "larger than memory"
        )
    if type(x).__module__.partition(".")[0] == "pandas" and hasattr(x, "isna"):
        return _from_pandas(x, name)
    return x


def _unmasked(x: np.ma.MaskedArray, name: str) -> np.ndarray:
    mask = np.ma.getmaskarray(x)
    if mask.any():
        where = np.argwhere(mask)[0]
        at = ", ".join(
            f"{axis} {int(i)}" for axis, i in zip(("row", "column"), where, strict=False)
        )
        raise ValueError(
            f"{name} is a masked array with {int(mask.sum())} masked value(s), the first at "
            f"{at}; anyglm does not support masks. Fill them ({name}.filled(value)) or drop "
            "those rows, then pass a plain array"
        )
    return np.asarray(x.data)


def _from_pandas(x: Any, name: str) -> Any:
    frame = hasattr(x, "columns")
    for col, series in x.items() if frame else [(None, x)]:
        dt = series.dtype
        if isinstance(dt, np.dtype) and dt.kind != "O":
            continue  # NumPy columns: a NaN is found (row and column) by the finiteness check
        na = np.asarray(series.isna())  # one column at a time: no n x d temporary
        if na.any():
            where = f", column {col!r}" if frame else ""
            raise ValueError(
                f"{name} contains missing values (NaN, None or pd.NA; {int(na.sum())} "
                f"here){where}, the first at row {x.index[int(np.argmax(na))]!r}; fill them "
                f"({name}.fillna(value)) or drop those rows ({name}.dropna()) first"
            )
    dtypes = list(x.dtypes) if frame else [x.dtype]
    plain = [getattr(dt, "numpy_dtype", None) for dt in dtypes]
    if frame:  # a feature table: every column must hold numbers
        for col, dt, p in zip(x.columns, dtypes, plain, strict=True):
            kind = (p if p is not None else dt).kind if hasattr(dt, "kind") else "O"
            if kind not in "biuf":
                raise TypeError(
                    f"{name} column {col!r} has dtype {dt}, not numbers; encode it as numbers "
                    "first (e.g. pandas.get_dummies or an ordinal code)"
                )
    if all(isinstance(dt, np.dtype) for dt in dtypes):
        return x  # NumPy dtypes: numpy.asarray reads them as they are
    if all(p is not None and np.dtype(p).kind in "biuf" for p in plain):
        return x.to_numpy(dtype=np.result_type(*plain))
    return x


def numeric_features(X: np.ndarray, name: str) -> np.ndarray:
    """``X`` itself, or an object array of numbers converted to float64.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.validation import numeric_features
    >>> numeric_features(np.array([[1, 2.5]], dtype=object), "X").dtype
    dtype('float64')
    >>> numeric_features(np.array([[1, {"a": 1}]], dtype=object), "X")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    TypeError: X has dtype object and its value at row 0, column 1 is {'a': 1} (dict); ...
    """
    if X.dtype.kind != "O":
        return X
    try:
        return X.astype(np.float64)
    except (TypeError, ValueError):
        pass
    for index, value in np.ndenumerate(X):
        try:
            float(value)
        except (TypeError, ValueError):
            at = ", ".join(f"{axis} {i}" for axis, i in zip(("row", "column"), index, strict=False))
            if value is None or type(value).__name__ in ("NAType", "NaTType"):
                raise ValueError(
                    f"{name} contains a missing value ({value!r}) at {at}; fill or drop the "
                    "missing values first"
                ) from None
            raise TypeError(
                f"{name} has dtype object and its value at {at} is {value!r} "
                f"({type(value).__name__}); the argument must be a string or a number that "
                "converts to float: encode non-numeric values as numbers first"
            ) from None
    raise TypeError(f"{name} has dtype object and could not be converted to numbers")


def complex_error(name: str, dtype: Any) -> ValueError:
    """The error for complex input (a ``ValueError``, as scikit-learn raises)."""
    return ValueError(
        f"{name} is complex ({dtype}): Complex data not supported; anyglm fits real-valued "
        "data only"
    )


def shape_error(name: str, shape: tuple[int, ...]) -> ValueError | None:
    """The error for a feature matrix of the wrong shape, or ``None`` when it is fine.

    Examples
    --------
    >>> from anyglm.validation import shape_error
    >>> print(shape_error("X", (12, 0)))  # doctest: +ELLIPSIS
    X has 0 feature(s) (shape=(12, 0)) while a minimum of 1 is required; ...
    """
    if len(shape) != 2:
        hint = (
            "; Reshape your data either using X.reshape(-1, 1) if it has a single feature "
            "or X.reshape(1, -1) if it contains a single sample"
            if len(shape) == 1
            else ""
        )
        return ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}{hint}")
    if shape[0] == 0:
        return ValueError(
            f"{name} has 0 sample(s) (shape={shape}) while a minimum of 1 is required; "
            "at least one row is needed"
        )
    if shape[1] == 0:
        return ValueError(
            f"{name} has 0 feature(s) (shape={shape}) while a minimum of 1 is required; "
            "at least one column is needed"
        )
    return None


def _numeric_kind(a: np.ndarray, name: str) -> None:
    if a.dtype.kind == "c":
        raise complex_error(name, a.dtype)
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
    err = shape_error(name, tuple(X.shape))
    if err is not None:
        raise err
    if X.dtype.kind == "f" and not _all_finite(X):
        bad = np.argwhere(~np.isfinite(X))[0]
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {bad[0]}, column {bad[1]}); "
            "remove or impute those values"
        )


def check_device_features(xp: Any, X: Any, name: str = "X") -> None:
    """The same checks as :func:`check_features` for an array already on a device."""
    if xp.isdtype(X.dtype, "complex floating"):
        raise complex_error(name, dtype_name(X.dtype))
    if not xp.isdtype(X.dtype, ("real floating", "integral", "bool")):
        raise TypeError(f"{name} must be real numeric, got dtype {dtype_name(X.dtype)}")
    err = shape_error(name, tuple(int(s) for s in X.shape))
    if err is not None:
        raise err
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
    if y.dtype.kind == "O":
        y = numeric_features(y, name)
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
        warnings.warn(
            DataConversionWarning(
                f"A column-vector {name} was passed when a 1d array was expected: {name} "
                f"has shape {y.shape} and is used as {name}.ravel(). Pass a 1-D array of "
                "class labels to avoid this warning"
            ),
            stacklevel=5,
        )
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {y.shape}")
    if y.shape[0] != n_rows:
        raise ValueError(
            f"{name} has {y.shape[0]} labels but {_features_of(name)} has {n_rows} rows; "
            "they must match"
        )
    if y.dtype.kind == "c":
        raise complex_error(name, y.dtype)
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


def check_device(be: Backend, device: Any) -> Any:
    """``device`` as one of ``be``'s devices (matched by value or by name), or ``None``.

    Raises
    ------
    ValueError
        ``device`` is not a device of ``be``; the message lists the valid ones.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.validation import check_device
    >>> check_device(anyglm.get_backend("numpy"), "gpu")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: device='gpu' is not a device of backend 'numpy'; valid devices: 'cpu'. ...
    """
    if device is None:
        return None
    devices = list(be.devices())
    names = [str(d) for d in devices]
    described = be.describe_devices()
    for i, d in enumerate(devices):
        try:
            same = bool(d == device)
        except Exception:  # a device type that refuses comparisons with others
            same = False
        if same or names[i] == str(device) or (i < len(described) and described[i] == device):
            return d
    valid = ", ".join(repr(n) for n in (described if len(described) == len(devices) else names))
    raise ValueError(
        f"device={device!r} is not a device of backend {be.name!r}; valid devices: {valid}. "
        "Pass one of them, or device=None to keep the data's device"
    )
