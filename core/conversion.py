"""User arrays as checked backend arrays: which library owns them, which dtype, which device.

:func:`input_kind` tells how an ``X`` is read (in memory, block by block from
disk, or sparse); :func:`to_backend` and :func:`sparse_to_backend` turn it into
a checked float array of the fit's backend; :func:`refuse_foreign` refuses
arrays of a library no registered backend owns, rather than converting them
silently. :mod:`anyglm.inputs` (fitting) and :mod:`anyglm.prediction` build on
these.
"""

from __future__ import annotations

from typing import Any

import array_api_compat
import numpy as np

from . import registry
from .backend import Backend, dtype_name
from .readers import RowView
from .selection import owner_of
from .validation import (
    check_device,
    check_device_features,
    check_features,
    complex_error,
    numeric_features,
    plain_input,
    shape_error,
    to_host,
)

__all__ = [
    "host_sample_weight",
    "input_kind",
    "pick_dtype",
    "refuse_foreign",
    "sparse_to_backend",
    "to_backend",
]

#: Top-level modules of array libraries whose arrays anyglm must not convert
#: silently: a backend must own them (those with ``__array_namespace__`` or
#: ``__dlpack__`` are recognised too).
ARRAY_LIBRARIES = (
    "torch",
    "jax",
    "jaxlib",
    "cupy",
    "cupyx",
    "dask",
    "tensorflow",
    "mxnet",
    "paddle",
    "sparse",
    "mlx",
    "ndonnx",
)


def _top_module(x: Any) -> str:
    return type(x).__module__.partition(".")[0]


def input_kind(x: Any) -> str:
    """How ``X`` is read: ``"blocks"``, ``"sparse"`` or ``"memory"``.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from anyglm.conversion import input_kind
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, np.ones((3, 2)))
    >>> input_kind(np.load(path, mmap_mode="r")), input_kind(np.ones((3, 2)))
    ('blocks', 'memory')
    """
    if isinstance(x, (np.memmap, RowView)):
        return "blocks"
    top = _top_module(x)
    if top == "zarr" or (top == "h5py" and hasattr(x, "shape") and hasattr(x, "dtype")):
        return "blocks"
    if top == "scipy" and type(x).__module__.startswith("scipy.sparse") and hasattr(x, "tocsr"):
        return "sparse"
    return "memory"


def refuse_foreign(x: Any, name: str) -> None:
    """``TypeError`` for an array of a library that no registered backend owns.

    Examples
    --------
    >>> from anyglm.conversion import refuse_foreign
    >>> class FakeArray:
    ...     __module__ = "mxnet"
    ...     def __array_namespace__(self): ...
    >>> try:
    ...     refuse_foreign(FakeArray(), "X")
    ... except TypeError as err:
    ...     print(str(err)[:45])
    X is a mxnet array, and no registered backend
    """
    top = _top_module(x)
    if top in ("numpy", "builtins", "zarr", "h5py", "scipy", "pandas"):
        return
    looks_like_array = (
        top in ARRAY_LIBRARIES or hasattr(x, "__array_namespace__") or hasattr(x, "__dlpack__")
    )
    if not looks_like_array or owner_of(x) is not None:
        return
    rows = registry.list_backends()
    names = ", ".join(r["name"] for r in rows)
    hint = {
        "torch": "pip install 'anyglm[torch]'",
        "jax": "pip install 'anyglm[jax]'",
        "jaxlib": "pip install 'anyglm[jax]'",
        "dask": "pip install 'anyglm[dask]'",
        "cupy": "pip install 'anyglm[cuda12]' (or cuda13)",
    }.get(top)
    raise TypeError(
        f"{name} is a {top} array, and no registered backend owns {top} arrays "
        f"(backends: {names}); anyglm does not convert it behind your back. "
        + (f"Install the backend ({hint}) or " if hint else "Pass ")
        + "a NumPy array (e.g. numpy.asarray(...)) if a copy on the host is what you want."
    )


def _float_dtype_of(x: Any) -> str | None:
    name = dtype_name(getattr(x, "dtype", None))
    if name in ("float32", "float64"):
        return name
    if name == "float16":
        return "float32"
    return None


def pick_dtype(be: Backend, device: Any, requested: str | None, x: Any) -> str:
    """The requested dtype, else the input's float dtype where the device supports it.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.conversion import pick_dtype
    >>> pick_dtype(anyglm.get_backend("numpy"), "cpu", None, np.ones(2, dtype=np.float32))
    'float32'
    """
    if requested is not None:
        return requested
    dt = _float_dtype_of(x) or be.default_dtype(device)
    return dt if dt in be.float_dtypes(device) else be.default_dtype(device)


def host_sample_weight(sample_weight: Any) -> Any:
    """``sample_weight`` on the host, read through the backend owning it (``None`` stays).

    Weights may live in another library or on another device than ``X``
    (scikit-learn's "everything follows X"); NumPy cannot read every such array
    itself (array-api-strict's ``device1``, CuPy), its backend can.

    Examples
    --------
    >>> from anyglm.conversion import host_sample_weight
    >>> host_sample_weight([1.0, 2.0]).tolist()
    [1.0, 2.0]
    """
    if sample_weight is None:
        return None
    return to_host(sample_weight, "sample_weight", owner_of(sample_weight))


def to_backend(
    X: Any, be: Backend, name: str, dtype: str | None, device: Any
) -> tuple[Any, str, Any]:
    """``X`` (in memory) on ``be`` as a checked float array; returns (array, dtype, device).

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.conversion import to_backend
    >>> X, dt, dev = to_backend([[1, 2]], anyglm.get_backend("numpy"), "X", None, None)
    >>> X.dtype.name, dt, dev
    ('float64', 'float64', 'cpu')
    """
    X = plain_input(X, name)
    refuse_foreign(X, name)
    device = check_device(be, device)
    owner = owner_of(X)
    if owner is be:
        xp = be.xp
        if isinstance(X, np.ndarray):
            X = numeric_features(X, name)
            check_features(X, name)  # host data: the detailed messages, no copy
        else:
            check_device_features(xp, X, name)
        src = be.device_of(X)
        dev = src if device is None else device
        dt = pick_dtype(be, dev, dtype, X)
        if dtype_name(X.dtype) != dt:
            X = xp.astype(X, be.dtype(dt, src))
        if src != dev:
            X = array_api_compat.to_device(X, dev)
        return _row_major(X), dt, dev
    host = numeric_features(to_host(X, name, owner), name)
    check_features(host, name)
    dev = be.default_device() if device is None else device
    dt = pick_dtype(be, dev, dtype, host)
    return _row_major(be.from_numpy(host, dtype=dt, device=dev)), dt, dev


def _row_major(X: Any) -> Any:
    # One row-major copy of a NumPy array, as scikit-learn's SGD makes: minibatches
    # gather rows, which in a column-major array (a pandas frame's values) touch one
    # cache line per value, and BLAS rounds by layout, so a frame and the same values
    # as a C array would otherwise train to different last bits.
    if isinstance(X, np.ndarray) and not X.flags.c_contiguous:
        return np.ascontiguousarray(X)
    return X


def sparse_to_backend(X: Any, be: Backend, name: str, dtype: str | None) -> tuple[Any, str, Any]:
    """A checked CSR copy of a SciPy sparse matrix in the fit's float dtype (NumPy only).

    Examples
    --------
    >>> import numpy as np, anyglm, scipy.sparse as sp
    >>> from anyglm.conversion import sparse_to_backend
    >>> X, dt, dev = sparse_to_backend(sp.csc_matrix(np.eye(2)), anyglm.get_backend("numpy"),
    ...                                "X", "float32")
    >>> X.format, dt
    ('csr', 'float32')
    """
    if be.name != "numpy":
        raise TypeError(
            f"{name} is a SciPy sparse matrix; sparse input trains on the 'numpy' backend, "
            f"not {be.name!r}. Use backend='numpy' (or 'auto'), or densify {name} yourself."
        )
    err = shape_error(name, tuple(int(s) for s in X.shape))
    if err is not None:
        raise err
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise complex_error(name, X.dtype)
    if kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got a sparse matrix of dtype {X.dtype}")
    dt = pick_dtype(be, "cpu", dtype, X)
    # tocsr/astype copy: the user's matrix is never modified or kept.
    csr = X.tocsr().astype(dt, copy=True)
    csr.sum_duplicates()
    if kind == "f" and not np.all(np.isfinite(csr.data)):
        first = int(np.flatnonzero(~np.isfinite(csr.data))[0])
        row = int(np.searchsorted(csr.indptr, first, side="right") - 1)
        raise ValueError(
            f"{name} contains NaN or infinity (first at row {row}, column "
            f"{int(csr.indices[first])}); remove or impute those values"
        )
    return csr, dt, "cpu"
