"""What the Dask backend's modules share: recognising Dask and CuPy objects, the client,
the chunks' namespace, and checking a chunk. Imports neither Dask nor CuPy."""

from __future__ import annotations

from typing import Any

import numpy as np
from anyglm.readers import first_nonfinite_row

__all__ = [
    "ChunkNamespace",
    "active_client",
    "check_chunk",
    "chunk_label",
    "host_array",
    "is_cupy_device",
    "is_dask_collection",
    "library",
    "to_workers",
]


def library(x: Any) -> str:
    """The top-level module of ``x``'s type: ``"numpy"``, ``"cupy"``, ``"dask"``...

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_arrays import library
    >>> library(np.zeros(2)), library(1.0)
    ('numpy', 'builtins')
    """
    return type(x).__module__.partition(".")[0]


def is_cupy_device(device: Any) -> bool:
    """Whether ``device`` is a CuPy device object (``"cpu"`` and ``None`` are not).

    Examples
    --------
    >>> from anyglm.backends.dask_arrays import is_cupy_device
    >>> is_cupy_device("cpu"), is_cupy_device(None)
    (False, False)
    """
    return device is not None and not isinstance(device, str) and library(device) == "cupy"


def is_dask_collection(x: Any) -> bool:
    """Whether ``x`` is a Dask collection (array, dataframe, delayed), without importing Dask.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_arrays import is_dask_collection
    >>> is_dask_collection(np.zeros(2))
    False
    """
    return library(x) == "dask" and hasattr(x, "__dask_graph__")


def active_client() -> Any:
    """The default ``distributed.Client`` when there is one, else ``None`` (Dask's local scheduler).

    Never imports distributed: without it loaded there is no client.

    Examples
    --------
    >>> from anyglm.backends.dask_arrays import active_client
    >>> client = active_client()  # None unless a distributed.Client was started
    >>> client is None or type(client).__name__ == "Client"
    True
    """
    import sys

    distributed = sys.modules.get("distributed")
    if distributed is None:
        return None
    try:
        return distributed.default_client()
    except ValueError:  # "No clients found"
        return None


def to_workers(x: Any) -> Any:
    """A Dask array built from host memory, sent to the cluster's workers once (``persist``).

    Otherwise every computation would carry the host data in its graph again.
    Without a ``distributed.Client`` it is returned as it is.

    Examples
    --------
    >>> import numpy as np, dask.array as da
    >>> from anyglm.backends.dask_arrays import to_workers
    >>> to_workers(da.ones(3)).sum().compute()
    np.float64(3.0)
    """
    return x if active_client() is None else x.persist()


class ChunkNamespace:
    """The Array API namespace of the chunks' library, chosen per call.

    Every function is NumPy's (array-api-compat's wrapper) unless an argument
    is a CuPy array or ``device=`` names a CuPy device; then it is CuPy's.
    Dtypes and constants are NumPy's (CuPy uses NumPy's dtypes). So one
    backend serves NumPy and CuPy chunks, and the parameters of a fit live in
    the library of its chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_arrays import ChunkNamespace
    >>> xp = ChunkNamespace()
    >>> xp.zeros((2,), dtype=xp.float32, device="cpu").dtype
    dtype('float32')
    >>> type(xp.matmul(np.ones((1, 2)), np.ones((2, 1)))).__name__
    'ndarray'
    """

    __name__ = "anyglm.backends.dask.ChunkNamespace"

    def __init__(self) -> None:
        import array_api_compat.numpy as numpy_xp

        self._numpy = numpy_xp
        self._cupy: Any = None

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (ChunkNamespace, ())  # a fresh namespace in the process that unpickles it

    def _cupy_namespace(self) -> Any:
        if self._cupy is None:
            import array_api_compat.cupy as cupy_xp

            self._cupy = cupy_xp
        return self._cupy

    def _pick(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        for a in args:
            if library(a) == "cupy":
                return self._cupy_namespace()
            if isinstance(a, (list, tuple)) and any(library(v) == "cupy" for v in a):
                return self._cupy_namespace()
        if is_cupy_device(kwargs.get("device")):
            return self._cupy_namespace()
        return self._numpy

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") and name != "__array_namespace_info__":
            raise AttributeError(name)
        target = getattr(self._numpy, name)  # AttributeError for what NumPy's lacks
        if isinstance(target, type) or not callable(target):
            value: Any = target  # a dtype or a constant
        else:

            def value(*args: Any, **kwargs: Any) -> Any:
                return getattr(self._pick(args, kwargs), name)(*args, **kwargs)

            value.__name__ = name
        setattr(self, name, value)  # looked up once per name
        return value

    def __repr__(self) -> str:
        return "<ChunkNamespace: NumPy's or CuPy's, per call>"


def host_array(x: Any) -> np.ndarray:
    """A NumPy array of a chunk (a CuPy chunk is copied to the host).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_arrays import host_array
    >>> host_array([1, 2]).tolist()
    [1, 2]
    """
    return np.asarray(x.get()) if library(x) == "cupy" else np.asarray(x)


def chunk_label(index: int, start: int, stop: int) -> str:
    """How messages name a chunk of rows.

    Examples
    --------
    >>> from anyglm.backends.dask_arrays import chunk_label
    >>> chunk_label(3, 300, 400)
    'chunk 3 (rows 300 to 399)'
    """
    return f"chunk {index} (rows {start} to {stop - 1})"


def _first_nonfinite(x: Any) -> tuple[int, int] | None:
    """``(row, column)`` of the first NaN or infinity of a chunk (on its device), or ``None``."""
    if library(x) == "cupy":
        import cupy

        if bool(cupy.isfinite(x).all()):
            return None
        x = host_array(x)
    row = first_nonfinite_row(np.asarray(x))
    if row is None:
        return None
    return row, int(np.flatnonzero(~np.isfinite(np.asarray(x)[row]))[0])


def check_chunk(x: Any, name: str, index: int, start: int) -> None:
    """``ValueError`` naming the chunk, row and column of the first NaN or infinity of ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_arrays import check_chunk
    >>> try:
    ...     check_chunk(np.array([[0.0, np.inf]]), "X", 2, 10)
    ... except ValueError as err:
    ...     print(str(err)[:58])
    X contains NaN or infinity in chunk 2 (rows 10 to 10): fir
    """
    bad = _first_nonfinite(x)
    if bad is not None:
        where = chunk_label(index, start, start + int(x.shape[0]))
        raise ValueError(
            f"{name} contains NaN or infinity in {where}: first at row {start + bad[0]}, "
            f"column {bad[1]}; remove or impute those values"
        )
