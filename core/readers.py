"""Reading row ranges of arrays that live on disk, without mapping them into memory.

Used by :class:`anyglm.sources.BlockSource` while training and by
:mod:`anyglm.prediction` while predicting. :class:`RowView` is a lazy view of
some rows of such an array (a hold-out, a standardised copy) that reads like one.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

__all__ = ["RowReader", "RowView", "first_nonfinite_row"]


def first_nonfinite_row(block: np.ndarray) -> int | None:
    """Index of the first row of a host float array holding NaN or infinity, or ``None``.

    One summing pass (finite sum: all finite), then the exact check only
    where the sum says there may be a problem.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.sources import first_nonfinite_row
    >>> first_nonfinite_row(np.array([[1.0, 2.0], [3.0, np.nan]]))
    1
    """
    if block.dtype.kind != "f" or block.size == 0:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(block, axis=None)):
            return None
        rows = np.flatnonzero(~np.isfinite(block).all(axis=tuple(range(1, block.ndim))))
    return int(rows[0]) if rows.size else None


class RowReader:
    """Reads row ranges of a host array into a caller's buffer.

    C-ordered ``np.memmap`` arrays are read with plain file reads
    (``os.preadv``), so no page of the file stays mapped into the process;
    everything else (zarr, h5py, Fortran-ordered memmaps) is sliced.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.readers import RowReader
    >>> reader = RowReader(np.arange(6.0).reshape(3, 2))
    >>> reader.read(1, 3, np.empty((3, 2))).tolist()
    [[2.0, 3.0], [4.0, 5.0]]
    >>> reader.close()
    """

    def __init__(self, X: Any) -> None:
        self.X = X
        self.dtype = np.dtype(X.dtype)
        self.row_bytes = int(np.prod(X.shape[1:], dtype=np.int64)) * self.dtype.itemsize
        self._fd: int | None = None
        self._offset = 0
        filename = getattr(X, "filename", None)
        if (
            isinstance(X, np.memmap)
            and filename
            and X.flags.c_contiguous
            and hasattr(os, "preadv")
            and self._base_offset(X) is not None
        ):
            self._offset = int(self._base_offset(X) or 0)
            self._fd = os.open(filename, os.O_RDONLY)

    @staticmethod
    def _base_offset(X: np.memmap) -> int | None:
        # The byte offset of X[0] in the file: the memmap's own offset plus where
        # X starts inside its mapped buffer (a slice of a larger memmap).
        base = X
        while isinstance(base.base, np.memmap):
            base = base.base
        try:
            start = X.__array_interface__["data"][0] - base.__array_interface__["data"][0]
        except (AttributeError, KeyError, TypeError):
            return None
        return int(getattr(base, "offset", 0)) + int(start)

    def read(self, start: int, stop: int, out: np.ndarray) -> np.ndarray:
        """Rows ``start:stop`` into ``out[: stop - start]`` (same dtype as the file).

        Examples
        --------
        >>> import numpy as np, os, tempfile
        >>> from anyglm.readers import RowReader
        >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
        >>> np.save(path, np.arange(6.0).reshape(3, 2))
        >>> reader = RowReader(np.load(path, mmap_mode="r"))  # plain file reads
        >>> reader.read(2, 3, np.empty((1, 2))).tolist()
        [[4.0, 5.0]]
        >>> reader.close()
        """
        m = stop - start
        view = out[:m]
        if self._fd is not None:
            nbytes = m * self.row_bytes
            target = memoryview(view.reshape(-1).view(np.uint8))  # type: ignore[arg-type]
            pos, got = self._offset + start * self.row_bytes, 0
            while got < nbytes:
                n = os.preadv(self._fd, [target[got:]], pos + got)
                if n <= 0:
                    raise OSError(
                        f"reading rows {start}:{stop} of {self.X.filename!r} ended early "
                        "(was the file truncated?)"
                    )
                got += n
            return view
        np.copyto(view, np.asarray(self.X[start:stop]), casting="no")
        return view

    def close(self) -> None:
        """Close the file (if one was opened); reading again is an error.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.readers import RowReader
        >>> RowReader(np.ones((1, 1))).close()
        """
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self) -> None:
        self.close()


class RowView:
    """A lazy, read-only view of some rows of an array on disk, optionally transformed.

    Training and prediction read a ``RowView`` block by block like the array
    it wraps (it is never loaded whole): slicing rows ``s:e`` reads
    ``X[rows[s:e]]`` and applies ``transform`` to that block only. Use it to
    hold out rows of a memory-mapped or zarr array, or to standardise one,
    without a copy of ``X``.

    Parameters
    ----------
    X : array-like of shape (n, d)
        A NumPy array, ``np.memmap``, zarr or h5py array.
    rows : array of int, optional
        The rows to show, in this order (sorted rows read the file in order);
        default all.
    transform : callable, optional
        ``transform(block) -> block`` of the same shape, e.g. ``lambda A: (A - m) / s``.
    dtype : numpy dtype, optional
        What ``transform`` returns; default ``X``'s dtype.

    Examples
    --------
    >>> import numpy as np, os, tempfile, anyglm
    >>> from anyglm.readers import RowView
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, np.arange(8.0).reshape(4, 2))
    >>> X = np.load(path, mmap_mode="r")
    >>> view = RowView(X, rows=np.array([1, 3]), transform=lambda A: A / 10)
    >>> view.shape, view[0:2].tolist()
    ((2, 2), [[0.2, 0.3], [0.6, 0.7]])
    >>> est = anyglm.LinearRegression(epochs=2).fit(view, [0.0, 1.0])  # read block by block
    """

    def __init__(
        self,
        X: Any,
        rows: np.ndarray | None = None,
        transform: Any = None,
        dtype: Any = None,
    ) -> None:
        self.X = X
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if (
            self.rows is not None
            and self.rows.size
            and (self.rows.min() < 0 or self.rows.max() >= int(X.shape[0]))
        ):
            raise ValueError(
                f"rows must lie in [0, {int(X.shape[0])}) for an array of that many rows"
            )
        self.transform = transform
        self.dtype = np.dtype(X.dtype if dtype is None else dtype)
        n = int(X.shape[0]) if self.rows is None else int(self.rows.size)
        self.shape = (n, *tuple(int(s) for s in X.shape[1:]))
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key: Any) -> np.ndarray:
        if not isinstance(key, slice):
            raise TypeError(f"a RowView is read by row slices (view[s:e]), not by {key!r}")
        start, stop, step = key.indices(self.shape[0])
        if step != 1:
            raise TypeError("a RowView is read by contiguous row slices (step 1)")
        if self.rows is None:
            block = np.asarray(self.X[start:stop])
        else:
            block = np.asarray(self.X[self.rows[start:stop]])
        if self.transform is not None:
            block = np.asarray(self.transform(block))
        return block.astype(self.dtype, copy=False)
