"""Column means and standard deviations in one streaming pass; standardisation, lazily.

:func:`column_stats` reads an array block by block (an ``np.memmap``, a zarr
array, a :class:`~anyglm.readers.RowView` of some rows of one, or an array in
memory) and merges the blocks' moments in float64 (Chan, Golub and LeVeque's
pairwise update), so nothing of the array's size is ever held.
:class:`Standardize` is the matching transform: handed to
:class:`~anyglm.readers.RowView`, it standardises each block as training
reads it. Together they standardise data that does not fit in memory, as the
command line does for ``.npy`` and zarr files.

Examples
--------
>>> import numpy as np, os, tempfile, anyglm
>>> from anyglm.readers import RowView
>>> from anyglm.scaling import Standardize, column_stats
>>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
>>> np.save(path, np.array([[1.0, 10.0], [3.0, 10.0], [5.0, 40.0], [7.0, 40.0]]))
>>> X = np.load(path, mmap_mode="r")
>>> stats = column_stats(X, block_rows=2)
>>> stats.mean.tolist(), stats.std.tolist()
([4.0, 25.0], [2.23606797749979, 15.0])
>>> Z = RowView(X, transform=Standardize(stats.mean, stats.scale), dtype="float64")
>>> Z[0:2].round(3).tolist()
[[-1.342, -1.0], [-0.447, -1.0]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .readers import RowReader, RowView
from .sources import default_block_rows

__all__ = ["ColumnStats", "Standardize", "column_stats"]

_MISSING_MODES = ("error", "ignore")


@dataclass(frozen=True)
class ColumnStats:
    """Per-column count, mean and sum of squared deviations of the rows seen.

    Attributes
    ----------
    count : numpy.ndarray of int64, shape (d,)
        Values seen per column (rows minus the missing cells skipped).
    mean : numpy.ndarray of float64, shape (d,)
        Mean of those values (0 where there is none).
    m2 : numpy.ndarray of float64, shape (d,)
        Sum of their squared deviations from the mean.
    n_rows : int
        Rows seen.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.scaling import column_stats
    >>> a = column_stats(np.array([[1.0], [2.0]]))
    >>> b = column_stats(np.array([[3.0], [4.0]]))
    >>> a.merge(b).mean.tolist(), a.merge(b).std.tolist()
    ([2.5], [1.118033988749895])
    """

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray
    n_rows: int

    @property
    def std(self) -> np.ndarray:
        """Population standard deviation per column (NaN where no value was seen).

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.scaling import column_stats
        >>> column_stats(np.array([[0.0, 1.0], [2.0, 1.0]])).std.tolist()
        [1.0, 0.0]
        """
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.sqrt(np.where(self.count > 0, self.m2 / self.count, np.nan))

    @property
    def scale(self) -> np.ndarray:
        """What to divide by to standardise: the standard deviation, 1 where it is 0.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.scaling import column_stats
        >>> column_stats(np.array([[0.0, 1.0], [2.0, 1.0]])).scale.tolist()
        [1.0, 1.0]
        """
        std = self.std
        return np.where(std > 0, std, 1.0)

    def merge(self, other: ColumnStats) -> ColumnStats:
        """The statistics of both sets of rows together.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.scaling import column_stats
        >>> X = np.arange(10.0).reshape(5, 2)
        >>> merged = column_stats(X[:2]).merge(column_stats(X[2:]))
        >>> np.allclose(merged.std, X.std(axis=0)), merged.n_rows
        (True, 5)
        """
        na, nb = self.count.astype(np.float64), other.count.astype(np.float64)
        n = na + nb
        delta = other.mean - self.mean
        with np.errstate(invalid="ignore", divide="ignore"):
            share = np.where(n > 0, nb / n, 0.0)
            mean = self.mean + delta * share
            m2 = self.m2 + other.m2 + np.where(n > 0, delta * delta * na * share, 0.0)
        return ColumnStats(self.count + other.count, mean, m2, self.n_rows + other.n_rows)

    def with_fill(self, values: Any) -> ColumnStats:
        """The statistics after each missing cell of column ``j`` is set to ``values[j]``.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.scaling import column_stats
        >>> X = np.array([[1.0], [np.nan], [5.0]])
        >>> column_stats(X, missing="ignore").with_fill([0.0]).mean.tolist()
        [2.0]
        """
        values = np.asarray(values, dtype=np.float64)
        k = self.n_rows - self.count  # missing cells per column, all set to the value
        filled = ColumnStats(k, values, np.zeros_like(values), 0)
        return self.merge(filled)


def _block_stats(A: np.ndarray, skip_nan: bool) -> ColumnStats:
    m = A.shape[0]
    if not skip_nan:
        mean = A.mean(axis=0)
        dev = A - mean
        count = np.full(A.shape[1], m, dtype=np.int64)
        return ColumnStats(count, mean, np.einsum("ij,ij->j", dev, dev), m)
    seen = ~np.isnan(A)
    count = seen.sum(axis=0).astype(np.int64)
    total = np.where(seen, A, 0.0).sum(axis=0)
    mean = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    dev = np.where(seen, A - mean, 0.0)
    return ColumnStats(count, mean, np.einsum("ij,ij->j", dev, dev), m)


def _source_row(X: Any, row: int) -> int:
    """The row of the array on disk that row ``row`` of ``X`` reads (a RowView maps it)."""
    if isinstance(X, RowView) and X.rows is not None:
        return int(X.rows[row])
    return row


def column_stats(
    X: Any, *, block_rows: int | None = None, missing: str = "error", name: str = "X"
) -> ColumnStats:
    """Count, mean and squared deviations of each column, reading ``X`` block by block.

    Parameters
    ----------
    X : array-like of shape (n, d)
        Anything with ``shape``, ``dtype`` and row slices: ``np.memmap``
        (read with plain file reads), a zarr or h5py array, a
        :class:`~anyglm.readers.RowView`, a NumPy array.
    block_rows : int, optional
        Rows per read; default about 64 MB of float64 rows (a multiple of a
        zarr array's chunk rows).
    missing : {"error", "ignore"}, default="error"
        What a NaN is: an error, or a missing value left out of its column's
        statistics (``count`` says how many values were seen). Infinity is
        always an error.
    name : str, default="X"
        What to call ``X`` in messages.

    Returns
    -------
    ColumnStats

    Raises
    ------
    ValueError
        ``X`` is not 2-D or has no rows, or holds NaN (unless ignored) or
        infinity: the message names the first such row (of the array a
        ``RowView`` reads) and column.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.scaling import column_stats
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0]])
    >>> stats = column_stats(X, missing="ignore")
    >>> stats.count.tolist(), stats.mean.tolist()
    ([2, 1], [2.0, 4.0])
    >>> try:
    ...     column_stats(X)
    ... except ValueError as err:
    ...     print(err)
    X contains NaN or infinity (first at row 0, column 1)
    """
    if missing not in _MISSING_MODES:
        raise ValueError(f"missing must be 'error' or 'ignore', got {missing!r}")
    shape = tuple(int(s) for s in X.shape)
    if len(shape) != 2 or shape[0] == 0:
        raise ValueError(f"{name} must be 2-D with at least one row, got shape {shape}")
    n, d = shape
    chunks = getattr(X, "chunks", None)
    chunk_rows = chunks[0] if isinstance(chunks, tuple) and chunks else None
    rows = block_rows or default_block_rows(d, 8, chunk_rows)
    reader = RowReader(X)
    buf = np.empty((min(rows, n), d), dtype=reader.dtype)
    stats = ColumnStats(np.zeros(d, np.int64), np.zeros(d), np.zeros(d), 0)
    try:
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            A = np.asarray(reader.read(start, stop, buf), dtype=np.float64)
            with np.errstate(invalid="ignore"):
                bad = ~np.isfinite(A) if missing == "error" else np.isinf(A)
            if bad.any():
                i, j = (int(v[0]) for v in np.nonzero(bad))
                what = "NaN or infinity" if missing == "error" else "infinity"
                row = _source_row(X, start + i)
                raise ValueError(f"{name} contains {what} (first at row {row}, column {j})")
            stats = stats.merge(_block_stats(A, missing == "ignore"))
    finally:
        reader.close()
    return stats


class Standardize:
    """``(A - mean) / scale`` per column, computed in float64; missing cells filled first.

    A picklable callable for :class:`~anyglm.readers.RowView`'s ``transform``.

    Parameters
    ----------
    mean, scale : array-like of shape (d,), optional
        Subtracted, then divided by; both or neither (no scaling).
    fill : array-like of shape (d,), optional
        What a NaN in column ``j`` becomes, before scaling.
    dtype : numpy dtype, default="float64"
        What the transform returns.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.scaling import Standardize
    >>> Standardize([1.0, 0.0], [2.0, 1.0], fill=[5.0, 0.0])(np.array([[3.0, np.nan]])).tolist()
    [[1.0, 0.0]]
    """

    def __init__(
        self, mean: Any = None, scale: Any = None, fill: Any = None, dtype: Any = "float64"
    ) -> None:
        if (mean is None) != (scale is None):
            raise ValueError("give mean and scale together, or neither")
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.fill = None if fill is None else np.asarray(fill, dtype=np.float64)
        self.dtype = np.dtype(dtype)

    def __call__(self, block: Any) -> np.ndarray:
        """The transformed block.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.scaling import Standardize
        >>> Standardize(fill=[0.5], dtype="float32")(np.array([[np.nan]])).dtype
        dtype('float32')
        """
        A = np.asarray(block, dtype=np.float64)
        if self.fill is not None:
            A = np.where(np.isnan(A), self.fill, A)
        if self.mean is not None and self.scale is not None:
            A = (A - self.mean) / self.scale
        return A.astype(self.dtype, copy=False)
