"""Data sources: where the trainer gets its rows from.

An epoch is a sequence of :class:`Block` objects. A source yields, for each
block, the features, the encoded targets and the row weights on the backend's
device, with the order of the block's rows drawn from the fit's seeded host
Generator; the trainer runs the minibatches inside a block in that order.

* :class:`ArraySource`: arrays already in memory on the device, as one block
  whose order is a permutation of all rows. The same seed gives the same rows
  in the same order on every backend.
* :class:`BlockSource`: an array larger than memory that can be read by row
  ranges (``np.memmap``, ``np.load(path, mmap_mode="r")``, zarr, h5py). Blocks
  of ``block_rows`` rows are visited in shuffled order, the rows inside each
  block are shuffled, each block is read into one of two reused buffers
  (plain file reads for memmaps, so no page stays mapped) while the next one
  is read in a background thread. Checks and target encoding run per block,
  so nothing of size ``n x d`` or ``n x classes`` exists beyond a block.
* :class:`SparseSource`: a SciPy sparse matrix (CSR) in memory, one block,
  minibatches as CSR row slices; the chain rule through ``X`` is unchanged.

The arrays of a block are valid until the next block is requested (block
sources reuse their buffers).

Examples
--------
>>> import numpy as np, anyglm
>>> from anyglm.sources import ArraySource
>>> X = np.arange(5.0).reshape(5, 1)
>>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
>>> [xb[:, 0].tolist() for xb, _, _ in src.epoch(np.random.default_rng(0), 2, True)]
[[2.0, 4.0], [3.0, 0.0], [1.0]]
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .backend import Backend
from .readers import RowReader, first_nonfinite_row

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "ArraySource",
    "Block",
    "BlockSource",
    "DataSource",
    "SparseSource",
    "default_block_rows",
]

#: Default size of one block of features read from disk: about 64 MB.
DEFAULT_BLOCK_BYTES = 64 * 2**20


def default_block_rows(n_features: int, itemsize: int, chunk_rows: int | None = None) -> int:
    """Rows in a block of about :data:`DEFAULT_BLOCK_BYTES`, a multiple of ``chunk_rows``.

    Examples
    --------
    >>> from anyglm.sources import default_block_rows
    >>> default_block_rows(784, 4)  # 64 MB of float32 rows of 784 features
    21399
    >>> default_block_rows(784, 4, chunk_rows=10000)  # whole zarr chunks
    20000
    """
    rows = max(1, DEFAULT_BLOCK_BYTES // max(1, n_features * itemsize))
    if chunk_rows and chunk_rows > 0:
        rows = max(chunk_rows, rows // chunk_rows * chunk_rows)
    return int(rows)


@dataclass
class Block:
    """One block of an epoch: arrays on the device and the order of its rows.

    Attributes
    ----------
    X : array or sparse matrix, shape (m, d)
    Y : array, shape (m, c)
        Encoded targets.
    weights : array of shape (m,) or None
    order : numpy.ndarray or None
        Host indices of the rows to visit, in order; ``None``: all, in order.
    start : int
        Position of the block's first row in the whole data (for messages).
    backend : Backend
    device : object

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import Block
    >>> blk = Block(np.ones((4, 2)), np.ones((4, 1)), None, np.array([1, 3]), 0,
    ...             anyglm.get_backend("numpy"))
    >>> blk.n_rows, blk.sparse
    (2, False)
    """

    X: Any
    Y: Any
    weights: Any
    order: np.ndarray | None
    start: int
    backend: Backend
    device: Any = None

    @property
    def n_rows(self) -> int:
        """Rows visited: ``len(order)``, or all rows of the block."""
        return int(self.X.shape[0]) if self.order is None else len(self.order)

    @property
    def sparse(self) -> bool:
        """Whether ``X`` is a SciPy sparse matrix."""
        return _is_scipy_sparse(self.X)

    def selected(self) -> tuple[Any, Any, Any]:
        """``(X, Y, weights)`` of the rows the block visits, in its order (``order`` None: all).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import Block
        >>> blk = Block(np.arange(3.0).reshape(3, 1), np.zeros((3, 1)), None, np.array([2, 0]),
        ...             0, anyglm.get_backend("numpy"))
        >>> blk.selected()[0].ravel().tolist()
        [2.0, 0.0]
        """
        if self.order is None:
            return self.X, self.Y, self.weights
        if self.sparse:
            w = None if self.weights is None else self.weights[self.order]
            return self.X[self.order], self.Y[self.order], w
        be, xp = self.backend, self.backend.xp
        idx = be.from_numpy(self.order, dtype=be.index_dtype(self.device), device=self.device)
        w = None if self.weights is None else xp.take(self.weights, idx, axis=0)
        return xp.take(self.X, idx, axis=0), xp.take(self.Y, idx, axis=0), w

    def batches(self, batch_size: int) -> Iterator[tuple[Any, Any, Any]]:
        """``(X_batch, Y_batch, weights_batch_or_None)`` in the block's order.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import Block
        >>> blk = Block(np.arange(3.0).reshape(3, 1), np.zeros((3, 1)), None,
        ...             np.array([2, 0, 1]), 0, anyglm.get_backend("numpy"))
        >>> [xb[:, 0].tolist() for xb, _, _ in blk.batches(2)]
        [[2.0, 0.0], [1.0]]
        """
        n = self.n_rows
        if self.order is None:
            for s in range(0, n, batch_size):
                e = min(s + batch_size, n)  # array-api-strict refuses slices past the end
                w = None if self.weights is None else self.weights[s:e]
                yield self.X[s:e, ...], self.Y[s:e, ...], w
            return
        be, xp = self.backend, self.backend.xp
        if self.sparse:
            # CSR row gathers take host indices; the dense parts are NumPy here.
            for s in range(0, n, batch_size):
                idx = self.order[s : min(s + batch_size, n)]
                w = None if self.weights is None else self.weights[idx]
                yield self.X[idx], self.Y[idx], w
            return
        # One host-to-device copy of the order per block; gathers use xp.take
        # because the standard has no integer-array indexing.
        idx_all = be.from_numpy(self.order, dtype=be.index_dtype(self.device), device=self.device)
        for s in range(0, n, batch_size):
            idx = idx_all[s : min(s + batch_size, n)]
            w = None if self.weights is None else xp.take(self.weights, idx, axis=0)
            yield xp.take(self.X, idx, axis=0), xp.take(self.Y, idx, axis=0), w


class DataSource(Protocol):
    """What the trainer iterates: the blocks of an epoch.

    Attributes
    ----------
    n_rows : int
        Rows in one epoch.
    n_features : int
    backend : Backend
    device : object
    sparse : bool

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource, DataSource
    >>> def rows(source: DataSource) -> int:
    ...     return sum(blk.n_rows for blk in source.blocks(None, shuffle=False))
    >>> rows(ArraySource(anyglm.get_backend("numpy"), np.ones((3, 1)), np.ones((3, 1))))
    3
    """

    n_rows: int
    n_features: int
    backend: Backend
    device: Any
    sparse: bool

    def blocks(self, rng: np.random.Generator | None, shuffle: bool) -> Iterator[Block]:
        """The blocks of one epoch; the order comes from ``rng`` when ``shuffle``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import ArraySource
        >>> src = ArraySource(anyglm.get_backend("numpy"), np.ones((2, 1)), np.ones((2, 1)))
        >>> len(list(src.blocks(None, shuffle=False)))
        1
        """
        ...


class _SourceBase:
    """What every source shares: :meth:`epoch`, minibatches across the blocks."""

    def blocks(self, rng: np.random.Generator | None, shuffle: bool) -> Iterator[Block]:
        raise NotImplementedError

    def epoch(
        self, rng: np.random.Generator | None, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[Any, Any, Any]]:
        """Yield ``(X_batch, Y_batch, weights_batch_or_None)`` for one epoch.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import ArraySource
        >>> X = np.arange(4.0).reshape(4, 1)
        >>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
        >>> [xb.shape[0] for xb, _, _ in src.epoch(np.random.default_rng(0), 3, shuffle=False)]
        [3, 1]
        """
        for block in self.blocks(rng, shuffle):
            yield from block.batches(batch_size)


class ArraySource(_SourceBase):
    """Arrays that already live on the backend's device, served as one block.

    Parameters
    ----------
    backend : Backend
    X, Y : arrays
        Features ``(n, d)`` and encoded targets ``(n, c)`` on one device.
    weights : array of shape (n,), optional
    device : device object
        Where index arrays are created.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
    >>> src = ArraySource(anyglm.get_backend("numpy"), np.ones((5, 2)), np.ones((5, 1)))
    >>> [blk.n_rows for blk in src.blocks(np.random.default_rng(0), True)]
    [5]
    """

    sparse = False

    def __init__(
        self, backend: Backend, X: Any, Y: Any, weights: Any = None, *, device: Any = None
    ) -> None:
        self.backend = backend
        self.xp = backend.xp
        self.X, self.Y, self.weights = X, Y, weights
        self.device = device
        self.n_rows = int(X.shape[0])
        self.n_features = int(X.shape[1])

    def order(self, rng: np.random.Generator | None, shuffle: bool) -> np.ndarray | None:
        """The rows of the next epoch, drawn on the host (``None``: in order).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import ArraySource
        >>> X = np.arange(5.0).reshape(5, 1)
        >>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
        >>> src.order(np.random.default_rng(0), True).tolist()
        [2, 4, 3, 0, 1]
        """
        if not shuffle or rng is None:
            return None
        return rng.permutation(self.n_rows)

    def blocks(self, rng: np.random.Generator | None, shuffle: bool) -> Iterator[Block]:
        """One block: all rows, in a permutation drawn from ``rng`` when ``shuffle``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import ArraySource
        >>> src = ArraySource(anyglm.get_backend("numpy"), np.ones((3, 1)), np.ones((3, 1)))
        >>> [blk.order.tolist() for blk in src.blocks(np.random.default_rng(0), True)]
        [[2, 0, 1]]
        """
        order = self.order(rng, shuffle)
        yield Block(self.X, self.Y, self.weights, order, 0, self.backend, self.device)


class SparseSource(ArraySource):
    """A SciPy sparse matrix in memory, as one block of CSR row slices.

    The targets and weights are NumPy arrays; ``X`` stays sparse throughout
    (``X @ W`` and ``X.T @ dZ`` are SciPy's sparse products), so memory grows
    with the non-zeros, not with ``n x d``.

    Parameters
    ----------
    backend : Backend
        The NumPy backend.
    X : scipy.sparse matrix or array, CSR
    Y : numpy.ndarray, shape (n, c)
    weights : numpy.ndarray of shape (n,), optional

    Examples
    --------
    >>> import numpy as np, anyglm, scipy.sparse as sp
    >>> from anyglm.sources import SparseSource
    >>> X = sp.csr_matrix(np.eye(3))
    >>> src = SparseSource(anyglm.get_backend("numpy"), X, np.ones((3, 1)))
    >>> [xb.toarray().tolist() for xb, _, _ in src.epoch(None, 2, shuffle=False)]
    [[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 0.0, 1.0]]]
    """

    sparse = True


class BlockSource(_SourceBase):
    """An array larger than memory, read block by block from disk.

    The array is cut into blocks of ``block_rows`` consecutive rows. An epoch
    visits the blocks in shuffled order and the selected rows of each block
    in shuffled order; each block is read into one of two reused buffers
    while the next one is read in a background thread. Nothing of size
    ``n x d`` or ``n x classes`` is ever built: targets are encoded and rows
    checked for NaN and infinity block by block (each block once).

    With one block and all rows selected, an epoch draws exactly the
    permutation an :class:`ArraySource` draws, so a small file trains
    bitwise like the same array in memory.

    Parameters
    ----------
    backend : Backend
    X : array-like of shape (n, d)
        Anything with ``shape``, ``dtype`` and row slicing that returns NumPy
        arrays: ``np.memmap``, a zarr or h5py array. Never written to.
    targets : numpy.ndarray of shape (n, ...)
        Host targets in the form ``encode`` takes (class indices, real values).
    encode : callable
        ``encode(targets[rows]) -> (m, c)`` float host array.
    weights : numpy.ndarray of shape (n,), optional
    dtype : str
        Float dtype of the blocks on the device.
    device : object
    block_rows : int, optional
        Rows per block; default about 64 MB of features (:func:`default_block_rows`).
    rows : numpy.ndarray of int, optional
        Sorted indices of the rows to use (a validation hold-out, or the rest);
        default all. Blocks without a selected row are never read.
    name : str
        What to call ``X`` in messages.
    prefetch : bool, default=True
        Read the next block in a background thread.

    Raises
    ------
    ValueError
        While iterating: a block holds NaN or infinity (the message names the row).

    Examples
    --------
    >>> import numpy as np, anyglm, tempfile, os
    >>> from anyglm.sources import BlockSource
    >>> path = os.path.join(tempfile.mkdtemp(), "X.npy")
    >>> np.save(path, np.arange(10.0).reshape(5, 2))
    >>> X = np.load(path, mmap_mode="r")
    >>> src = BlockSource(anyglm.get_backend("numpy"), X, np.zeros(5),
    ...                   lambda t: t.reshape(-1, 1), dtype="float64", block_rows=2)
    >>> [blk.start for blk in src.blocks(None, shuffle=False)]
    [0, 2, 4]
    """

    sparse = False

    def __init__(
        self,
        backend: Backend,
        X: Any,
        targets: np.ndarray,
        encode: Callable[[np.ndarray], np.ndarray],
        weights: np.ndarray | None = None,
        *,
        dtype: str,
        device: Any = None,
        block_rows: int | None = None,
        rows: np.ndarray | None = None,
        name: str = "X",
        prefetch: bool = True,
    ) -> None:
        self.backend = backend
        self.X = X
        self.targets = targets
        self.encode = encode
        self.weights = weights
        self.dtype = dtype
        self.device = device
        self.name = name
        self.prefetch = prefetch
        n, d = int(X.shape[0]), int(X.shape[1])
        self.n_total, self.n_features = n, d
        chunks = getattr(X, "chunks", None)
        chunk_rows = chunks[0] if isinstance(chunks, tuple) and chunks else None
        self.block_rows = block_rows or default_block_rows(d, np.dtype(dtype).itemsize, chunk_rows)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        n_blocks = -(-n // self.block_rows)
        if self.rows is None:
            self._bounds = None
            self.block_ids = list(range(n_blocks))
            self.n_rows = n
        else:
            # Where each block's selected rows start and end in self.rows.
            edges = np.arange(n_blocks + 1, dtype=np.int64) * self.block_rows
            self._bounds = np.searchsorted(self.rows, edges)
            self.block_ids = [k for k in range(n_blocks) if self._bounds[k + 1] > self._bounds[k]]
            self.n_rows = int(self.rows.size)
        self._checked: set[int] = set()
        self._lock = threading.Lock()
        self._buffers: list[np.ndarray] | None = None

    def _range(self, k: int) -> tuple[int, int]:
        start = k * self.block_rows
        return start, min(start + self.block_rows, self.n_total)

    def _selected(self, k: int) -> np.ndarray | None:
        """Positions inside block ``k`` of its selected rows (``None``: all)."""
        if self.rows is None or self._bounds is None:
            return None
        start = k * self.block_rows
        return self.rows[self._bounds[k] : self._bounds[k + 1]] - start

    def subset(self, rows: np.ndarray, name: str | None = None) -> BlockSource:
        """The same array restricted to ``rows`` (sorted indices), e.g. a validation hold-out.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import BlockSource
        >>> src = BlockSource(anyglm.get_backend("numpy"), np.ones((5, 1)), np.zeros(5),
        ...                   lambda t: t.reshape(-1, 1), dtype="float64", block_rows=2)
        >>> held_out = src.subset(np.array([1, 4]))
        >>> held_out.n_rows, [blk.start for blk in held_out.blocks(None, shuffle=False)]
        (2, [0, 4])
        """
        return BlockSource(
            self.backend, self.X, self.targets, self.encode, self.weights,
            dtype=self.dtype, device=self.device, block_rows=self.block_rows, rows=rows,
            name=name or self.name, prefetch=self.prefetch,
        )  # fmt: skip

    def _buffers_for(
        self, file_dtype: np.dtype
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        # Two buffers: one being trained on, one being filled; kept across epochs.
        # Two more hold the file's rows when they must be converted to the dtype.
        target = np.dtype(self.dtype)
        shape = (self.block_rows, *tuple(self.X.shape[1:]))
        if self._buffers is None:
            self._buffers = [np.empty(shape, dtype=target) for _ in range(2)]
            if file_dtype != target:
                self._buffers += [np.empty(shape, dtype=file_dtype) for _ in range(2)]
        bufs = self._buffers
        return bufs[:2], (bufs[2:] if len(bufs) > 2 else None)

    def blocks(self, rng: np.random.Generator | None, shuffle: bool) -> Iterator[Block]:
        """Blocks in shuffled order, rows shuffled inside each; the next one read ahead.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import BlockSource
        >>> src = BlockSource(anyglm.get_backend("numpy"), np.arange(6.0).reshape(6, 1),
        ...                   np.zeros(6), lambda t: t.reshape(-1, 1), dtype="float64",
        ...                   block_rows=2)
        >>> [(blk.start, blk.order.tolist()) for blk in src.blocks(np.random.default_rng(2), True)]
        [(4, [1, 0]), (0, [0, 1]), (2, [1, 0])]
        """
        ids = list(self.block_ids)
        if shuffle and rng is not None and len(ids) > 1:
            ids = [ids[i] for i in rng.permutation(len(ids))]
        if not ids:
            return
        reader = RowReader(self.X)
        buffers, raws = self._buffers_for(reader.dtype)
        pool = ThreadPoolExecutor(max_workers=1) if self.prefetch else None

        def load(i: int) -> np.ndarray:
            # Runs in the read-ahead thread: reading and the NaN check (both
            # release the GIL) overlap the training on the block before.
            start, stop = self._range(ids[i])
            slot = i % 2
            if raws is None:
                view = reader.read(start, stop, buffers[slot])
            else:
                raw = reader.read(start, stop, raws[slot])
                view = buffers[slot][: stop - start]
                np.copyto(view, raw, casting="unsafe")
            self._check(ids[i], view, start)
            return view

        def submit(i: int) -> Future[np.ndarray] | np.ndarray:
            if pool is None:
                return load(i)
            return pool.submit(load, i)

        pending = submit(0)
        try:
            for i, k in enumerate(ids):
                host = pending.result() if isinstance(pending, Future) else pending
                if i + 1 < len(ids):
                    pending = submit(i + 1)
                start, stop = self._range(k)
                selected = self._selected(k)
                m = stop - start if selected is None else selected.size
                order = rng.permutation(m) if shuffle and rng is not None else None
                if selected is not None:
                    order = selected if order is None else selected[order]
                yield self._block(host, start, stop, order)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
            reader.close()

    def _check(self, k: int, host: np.ndarray, start: int) -> None:
        if k in self._checked:
            return
        bad = first_nonfinite_row(host)
        if bad is not None:
            col = int(np.flatnonzero(~np.isfinite(host[bad]))[0])
            raise ValueError(
                f"{self.name} contains NaN or infinity (first at row {start + bad}, column "
                f"{col}); remove or impute those values"
            )
        with self._lock:
            self._checked.add(k)

    def _block(self, host: np.ndarray, start: int, stop: int, order: np.ndarray | None) -> Block:
        be, dev, dt = self.backend, self.device, self.dtype
        Y = be.from_numpy(self.encode(self.targets[start:stop]), dtype=dt, device=dev)
        w = None
        if self.weights is not None:
            w = be.from_numpy(self.weights[start:stop], dtype=dt, device=dev)
        return Block(be.from_numpy(host, dtype=dt, device=dev), Y, w, order, start, be, dev)


def _is_scipy_sparse(x: Any) -> bool:
    # Without importing SciPy: its sparse types live in scipy.sparse.
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "tocsr")
