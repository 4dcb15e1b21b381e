"""Dask inputs of a fit: any ``X`` as a Dask array, and a fit's data checked where it lives.

:func:`prepare_fit` is the Dask backend's ``prepare_fit`` (:mod:`anyglm.lazy`):
one computation over the chunks checks them (NaN and infinity, labels,
targets, sample weights) and counts the labels; only those small summaries
come back to the client, which then builds the :class:`~anyglm.backends.dask_training.DaskSource`.
"""

from __future__ import annotations

import mmap
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from anyglm.backend import Backend
from anyglm.conversion import input_kind, pick_dtype
from anyglm.inputs import Prepared
from anyglm.labels import EncodedTargets, TargetCoder, encode_targets, label_indices, unique_labels
from anyglm.model import Model
from anyglm.readers import RowView
from anyglm.selection import owner_of
from anyglm.sources import default_block_rows
from anyglm.validation import check_labels, check_real, check_targets, to_host

from .dask_arrays import check_chunk, chunk_label, host_array, is_dask_collection, to_workers
from .dask_training import ChunkTargets, DaskSource

__all__ = ["as_dask_matrix", "as_dask_rows", "prepare_fit"]


class _MemmapFile:
    """A memory-mapped file that pickles as its name: workers open it and read their rows."""

    def __init__(self, mm: np.memmap) -> None:
        self.filename = str(mm.filename)
        self.dtype: Any = mm.dtype
        self.shape = tuple(int(s) for s in mm.shape)
        self.ndim = len(self.shape)
        self.offset = int(mm.offset)
        self.order: Any = "F" if mm.flags.f_contiguous and not mm.flags.c_contiguous else "C"

    def __getitem__(self, key: Any) -> np.ndarray:
        mm = np.memmap(
            self.filename, self.dtype, "r", offset=self.offset, shape=self.shape, order=self.order
        )
        return np.array(mm[key])  # a copy: no page of the file stays mapped


class _Rows:
    """Tuple indexing ``[rows, columns]`` over an object read by row slices (a RowView)."""

    def __init__(self, view: Any) -> None:
        self.view, self.shape, self.dtype = view, tuple(view.shape), np.dtype(view.dtype)
        self.ndim = len(self.shape)

    def __getitem__(self, key: Any) -> np.ndarray:
        rows, cols = key if isinstance(key, tuple) else (key, slice(None))
        return np.asarray(self.view[rows])[:, cols]


def _portable(X: Any, name: str) -> Any:
    """``X`` read from disk as something a worker can read rows of (never its bytes pickled)."""
    if isinstance(X, np.memmap):
        if not isinstance(X.base, mmap.mmap):
            raise TypeError(
                f"{name} is a view into a memory-mapped file; pass the whole np.memmap (or "
                "np.load(path, mmap_mode='r')), or a Dask array, to train on Dask"
            )
        return _MemmapFile(X)
    if isinstance(X, RowView):
        inner = X.X
        if isinstance(inner, np.memmap):
            inner = _portable(inner, name)
        return _Rows(RowView(inner, X.rows, X.transform, X.dtype))
    return X  # zarr and h5py arrays read their own rows


def as_dask_matrix(X: Any, name: str, block_rows: int | None) -> Any:
    """``X`` as a checked 2-D Dask array with one chunk of columns.

    Dask arrays are used as they are (their chunks of rows are the
    partitions); NumPy arrays, lists, memory maps, zarr arrays and
    :class:`~anyglm.readers.RowView` objects are cut into chunks of
    ``block_rows`` rows (default about 64 MB of features).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_inputs import as_dask_matrix
    >>> as_dask_matrix(np.ones((5, 2)), "X", 2).chunks
    ((2, 2, 1), (2,))
    """
    import dask.array as da

    fresh = False
    if is_dask_collection(X):
        if not isinstance(X, da.Array):
            raise TypeError(
                f"{name} is a Dask {type(X).__name__}; anyglm trains on Dask arrays: pass "
                f"{name}.to_dask_array(lengths=True) (or .values with known lengths)"
            )
        arr = X
    else:
        kind = input_kind(X)
        if kind == "sparse":
            raise TypeError(
                f"{name} is a SciPy sparse matrix; the 'dask' backend trains on dense Dask "
                "arrays. Use backend='numpy' for sparse data."
            )
        source = _portable(X, name) if kind == "blocks" else to_host(X, name, owner_of(X))
        shape = tuple(int(s) for s in source.shape)
        rows = block_rows
        if rows is None and len(shape) == 2:
            rows = default_block_rows(shape[1], np.dtype(source.dtype).itemsize)
        chunks = (rows or max(1, shape[0] if shape else 1), *shape[1:])
        arr = da.from_array(source, chunks=chunks, asarray=False) if shape else source
        fresh = kind == "memory"  # host data: sent to the workers once, not with every round
    shape = tuple(arr.shape)
    if len(shape) != 2:
        hint = " (use X.reshape(-1, 1) for a single feature)" if len(shape) == 1 else ""
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {shape}{hint}")
    if any(np.isnan(c) for c in arr.chunks[0]) or np.isnan(shape[1]):
        raise ValueError(
            f"{name} has chunks of unknown size; call {name}.compute_chunk_sizes() first"
        )
    if shape[0] == 0 or shape[1] == 0:
        raise ValueError(f"{name} has shape {shape}; it needs at least one row and column")
    kind_code = np.dtype(arr.dtype).kind
    if kind_code == "c":
        raise TypeError(f"{name} is complex ({arr.dtype}); anyglm fits real-valued data only")
    if kind_code not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.numblocks[1] > 1:
        arr = arr.rechunk({1: -1})
    return to_workers(arr) if fresh else arr


def as_dask_rows(v: Any, name: str, row_chunks: tuple[int, ...], against: str = "X") -> Any:
    """Targets or weights as a Dask array whose chunks of rows are ``row_chunks``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_inputs import as_dask_rows
    >>> as_dask_rows(np.arange(5), "y", (3, 2)).chunks
    ((3, 2),)
    """
    import dask.array as da

    n = int(sum(row_chunks))
    fresh = False  # made here from host data
    if is_dask_collection(v):
        if not isinstance(v, da.Array):
            raise TypeError(
                f"{name} is a Dask {type(v).__name__}; pass {name}.to_dask_array(lengths=True)"
            )
        arr = v
    else:
        host = to_host(v, name, owner_of(v))
        arr = da.from_array(host, chunks=(n or 1, *host.shape[1:]), asarray=False)
        fresh = True
    if arr.ndim == 0 or arr.ndim > 2:
        raise ValueError(f"{name} must be 1-D or 2-D, got shape {tuple(arr.shape)}")
    if np.isnan(arr.shape[0]) or int(arr.shape[0]) != n:
        raise ValueError(f"{name} has {arr.shape[0]} rows but {against} has {n}; they must match")
    if arr.chunks[0] != tuple(row_chunks):
        arr = arr.rechunk({0: row_chunks})
    if arr.ndim == 2 and arr.numblocks[1] > 1:
        arr = arr.rechunk({1: -1})
    return to_workers(arr) if fresh else arr


# -- targets on a worker ----------------------------------------------------------------------


# -- preparing a fit ----------------------------------------------------------------------


@dataclass
class _Summary:
    """One chunk's labels, and per label (in all, for regression) the weight it holds.

    ``weights`` sums the sample weights (1 without them) of each label over all the
    chunk's rows, ``train`` over its training rows (those a validation split leaves).
    """

    labels: np.ndarray | None = None
    weights: np.ndarray | None = None
    train: np.ndarray | None = None


def _summarise(
    x: Any, y: Any, w: Any, index: int, start: int, model: Model, names: tuple[str, str],
    train: np.ndarray | None,
) -> _Summary:  # fmt: skip
    """One chunk's checks, labels and label weights (runs on a worker)."""
    check_chunk(x, names[0], index, start)
    m = int(x.shape[0])
    where = chunk_label(index, start, start + m)
    try:
        yh = host_array(y)
        wh = np.ones(m)
        if w is not None:
            wh = np.asarray(host_array(w), dtype=np.float64)
            if not np.all(np.isfinite(wh)):
                raise ValueError("sample_weight contains NaN or infinity")
            if np.any(wh < 0):
                raise ValueError("sample_weight must be non-negative")
        codes = np.zeros(m, dtype=np.intp)
        labels = None
        if model.task == "classification":
            checked = check_labels(yh, m, names[1])
            labels = unique_labels(checked, names[1])
            codes = label_indices(labels, checked, names[1])
        else:
            model.check_targets(check_targets(yh, m, names[1]).reshape(m, -1))
    except (ValueError, TypeError) as err:
        raise type(err)(f"{err} (in {where})") from None
    k = 1 if labels is None else len(labels)
    rows: Any = slice(None) if train is None else train
    return _Summary(
        labels,
        np.bincount(codes, weights=wh, minlength=k),
        np.bincount(codes[rows], weights=wh[rows], minlength=k),
    )


def _per_class(classes: np.ndarray, counts: np.ndarray, class_weight: Any) -> np.ndarray | None:
    """Class weights as :func:`anyglm.labels.row_weights` computes them, from the labels'
    (weighted) counts."""
    if class_weight is None:
        return None
    if isinstance(class_weight, str):
        if class_weight != "balanced":
            raise ValueError(
                f"class_weight must be 'balanced', a dict or None, got {class_weight!r}"
            )
        total = counts.sum()
        return np.where(counts > 0, total / (len(classes) * np.where(counts > 0, counts, 1)), 0.0)
    if isinstance(class_weight, Mapping):
        per_class = np.ones(len(classes))
        for label, value in class_weight.items():
            pos = label_indices(classes, np.asarray([label], dtype=object), "class_weight")
            per_class[pos[0]] = check_real(f"class_weight[{label!r}]", value, allow_zero=True)
        return per_class
    raise TypeError(f"class_weight must be 'balanced', a dict or None, got {class_weight!r}")


def _summaries(
    X: Any, y: Any, w: Any, model: Model, names: tuple[str, str], train: np.ndarray | None
) -> list[Any]:
    from dask import delayed

    xs, ys = list(X.to_delayed().ravel()), list(y.to_delayed().ravel())
    ws = [None] * len(xs) if w is None else list(w.to_delayed().ravel())
    starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
    tasks = []
    for k in range(len(xs)):
        mine = None
        if train is not None:  # positions in chunk k of its training rows
            lo, hi = np.searchsorted(train, starts[k : k + 2])
            mine = train[lo:hi] - starts[k]
        start = int(starts[k])
        tasks.append(delayed(_summarise)(xs[k], ys[k], ws[k], k, start, model, names, mine))
    return tasks


def prepare_fit(
    backend: Backend,
    model: Model,
    X: Any,
    y: Any,
    *,
    device: Any,
    dtype: str | None,
    rng: np.random.Generator | None,
    sample_weight: Any,
    classes: Sequence[Hashable] | None,
    class_weight: Mapping[Hashable, float] | str | None,
    validation_data: tuple[Any, Any] | None,
    validation_fraction: float,
    block_rows: int | None,
    rounds_per_epoch: int,
) -> Prepared:
    """A fit's data on Dask, checked and its labels found in one reduction: a :class:`DaskSource`.

    ``X`` and ``y`` are never computed on the client: each chunk is checked
    for NaN and infinity (the message names the chunk), its labels and
    their counts (for ``class_weight``) are found where it lives, and only
    those small summaries come back, in one computation with the
    validation data's.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.backends.dask_inputs import prepare_fit
    >>> be = anyglm.get_backend("dask")
    >>> X = be.lazy_array(np.array([[0.0], [np.nan], [1.0], [2.0]]), chunks=2)
    >>> try:
    ...     prepare_fit(be, anyglm.get_model("logistic"), X, np.array([0, 1, 0, 1]),
    ...                 device=None, dtype=None, rng=None, sample_weight=None, classes=None,
    ...                 class_weight=None, validation_data=None, validation_fraction=0.0,
    ...                 block_rows=None, rounds_per_epoch=1)
    ... except ValueError as err:
    ...     print(str(err)[:67])
    X contains NaN or infinity in chunk 0 (rows 0 to 1): first at row 1
    """
    import dask

    Xd = as_dask_matrix(X, "X", block_rows)
    n, d = int(Xd.shape[0]), int(Xd.shape[1])
    dev = backend.device_of(Xd)
    if device is not None and device != dev:
        raise ValueError(
            f"device={device!r}, but the chunks of X live on {dev!r}; the 'dask' backend "
            "trains where the chunks are (leave device=None)"
        )
    dt = pick_dtype(backend, dev, dtype, Xd)
    yd = as_dask_rows(y, "y", Xd.chunks[0])
    wd = None
    if sample_weight is not None:
        if not is_dask_collection(sample_weight) and np.ndim(sample_weight) == 0:
            sample_weight = np.full(n, sample_weight)  # one weight for every row, as elsewhere
        wd = as_dask_rows(sample_weight, "sample_weight", Xd.chunks[0])
        if wd.ndim != 1:
            raise ValueError(f"sample_weight must have shape ({n},), got {tuple(wd.shape)}")
    classify = model.task == "classification"
    _check_target_shape(yd, "y", classify)
    split = None
    if validation_data is None and validation_fraction > 0:
        # The rows an in-memory fit would hold out, drawn before the summaries: the row
        # weights are scaled to mean one over the training rows.
        assert rng is not None, "a validation split needs the fit's generator"
        n_val = round(validation_fraction * n)
        if n_val < 1 or n_val >= n:
            raise ValueError(
                f"validation_fraction={validation_fraction} of {n} rows leaves "
                f"{n_val} validation and {n - n_val} training rows; both need at least one"
            )
        perm = rng.permutation(n)
        split = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    tasks = _summaries(Xd, yd, wd, model, ("X", "y"), None if split is None else split[1])
    val = None
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        Xv = as_dask_matrix(validation_data[0], "X_val", block_rows)
        if int(Xv.shape[1]) != d:
            raise ValueError(f"X_val has {Xv.shape[1]} features but X has {d}")
        yv = as_dask_rows(validation_data[1], "y_val", Xv.chunks[0], "X_val")
        _check_target_shape(yv, "y_val", classify)
        if not classify and _columns(yv) != _columns(yd):
            raise ValueError(f"y_val has {_columns(yv)} target columns but y has {_columns(yd)}")
        val = (Xv, yv)
        tasks += _summaries(Xv, yv, None, model, ("X_val", "y_val"), None)
    found = dask.compute(*tasks, optimize_graph=False)
    train, held = found[: len(Xd.chunks[0])], found[len(Xd.chunks[0]) :]
    if wd is not None and not sum(float(s.weights.sum()) for s in train) > 0:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight")
    per_class = None
    if classify:
        union = unique_labels(np.concatenate([s.labels for s in train]), "y")
        enc = encode_targets(model, union, len(union), classes=classes)
        assert enc.classes is not None
        counts = np.zeros(len(enc.classes))  # sample weights per class, as row_weights's
        trained = np.zeros(len(enc.classes))  # the same over the training rows
        for s in train:
            pos = label_indices(enc.classes, s.labels, "y")
            np.add.at(counts, pos, s.weights)
            np.add.at(trained, pos, s.train)
        per_class = _per_class(enc.classes, counts, class_weight)
        if per_class is not None and not float(per_class @ counts) > 0:
            raise ValueError("class_weight gives every sample a weight of zero")
        if held:
            label_indices(enc.classes, np.concatenate([s.labels for s in held]), "y_val")
        targets = EncodedTargets(np.empty(0, dtype=np.intp), enc.coder, enc.classes, 2)
        total = float(trained @ (np.ones(len(trained)) if per_class is None else per_class))
    else:
        t = _columns(yd)
        targets = EncodedTargets(np.empty((0, t)), TargetCoder("values", t), None, yd.ndim)
        total = float(sum(float(s.train.sum()) for s in train))
    scale = 1.0
    if wd is not None or per_class is not None:
        # Weights scaled to mean one over the training rows: the loss is the weighted mean.
        scale = total / (n if split is None else len(split[1]))
        if not scale > 0:
            raise ValueError(
                "every training row has weight zero (sample_weight times class_weight); "
                "at least one needs a positive weight"
            )
    chunk_targets = ChunkTargets(targets.coder, targets.classes, per_class, "y", scale)
    source = DaskSource(
        backend, Xd, yd, wd, chunk_targets, dtype=dt, device=dev,
        rounds_per_epoch=rounds_per_epoch,
    )  # fmt: skip
    validation = None
    if val is not None:
        plain = ChunkTargets(targets.coder, targets.classes, None, "y_val")
        validation = DaskSource(backend, val[0], val[1], None, plain, dtype=dt, device=dev,
                                name="X_val")  # fmt: skip
    elif split is not None:
        validation = source.subset(split[0], "X (validation rows)", weighted=False)
        source = source.subset(split[1])
    return Prepared(model, backend, dev, dt, source, validation, targets, d, source.n_rows, "lazy")


def _columns(y: Any) -> int:
    return 1 if y.ndim == 1 else int(y.shape[1])


def _check_target_shape(y: Any, name: str, classify: bool) -> None:
    if not classify:
        if y.ndim == 2 and y.shape[1] == 0:
            raise ValueError(f"{name} has no target columns (shape {tuple(y.shape)})")
        return
    if y.ndim == 2 and y.shape[1] == 1:
        raise ValueError(
            f"{name} has shape {tuple(y.shape)}; pass class labels as a 1-D array (y.ravel())"
        )
    if y.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array of class labels, got shape {tuple(y.shape)}")
