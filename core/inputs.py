"""Preparing a fit's inputs: checked data on the backend, as a data source.

:func:`prepare` turns what a user passes to ``fit`` into a
:class:`Prepared`: the backend, device and dtype the parameters will live on,
the training :mod:`source <anyglm.sources>`, the validation source, and the
target encoding. The kind of ``X`` picks the source:

* arrays of a registered backend's library, NumPy arrays, lists, pandas
  objects: in memory (:class:`~anyglm.sources.ArraySource`);
* ``np.memmap`` (also from ``np.load(path, mmap_mode="r")``), zarr and h5py
  arrays: read block by block (:class:`~anyglm.sources.BlockSource`), never
  loaded whole;
* SciPy sparse matrices: kept sparse (:class:`~anyglm.sources.SparseSource`).

A lazy backend (:mod:`anyglm.lazy`, e.g. ``"dask"``) prepares its fits itself
(``prepare_fit``): its checks run where the chunks live and its source trains
there (kind ``"lazy"``).

Arrays of a library that no registered backend owns are refused (never
silently converted to NumPy).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import Backend
from .conversion import (
    host_sample_weight,
    input_kind,
    pick_dtype,
    sparse_to_backend,
    to_backend,
)
from .featurenames import feature_names
from .labels import EncodedTargets, encode_targets, row_weights
from .lazy import is_lazy
from .model import Model
from .selection import owner_of, resolve_backend
from .sources import ArraySource, BlockSource, DataSource, SparseSource
from .validation import check_device, complex_error, plain_input, shape_error, to_host

__all__ = ["Prepared", "prepare"]


@dataclass
class Prepared:
    """Checked data on the backend, and what the parameters will belong to.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.inputs import prepare
    >>> prep = prepare(anyglm.get_model("logistic"), [[0.0], [1.0]], [0, 1])
    >>> prep.n_features, prep.n_outputs, prep.classes.tolist()
    (1, 1, [0, 1])
    """

    model: Model
    backend: Backend
    device: Any
    dtype: str
    source: DataSource
    validation: DataSource | None
    targets: EncodedTargets
    n_features: int
    n_train: int
    kind: str
    #: Column names of a data frame ``X`` (all strings), else ``None``.
    feature_names: np.ndarray | None = None

    @property
    def classes(self) -> np.ndarray | None:
        """The class labels (classifiers), else ``None``."""
        return self.targets.classes

    @property
    def y_ndim(self) -> int:
        """How the targets were given (1-D or 2-D); 2 for classifiers."""
        return self.targets.y_ndim

    @property
    def n_outputs(self) -> int:
        """Columns of ``W`` for one configuration."""
        return self.targets.coder.n_outputs

    def zero_parameters(self, n_configs: int = 1) -> tuple[Any, Any]:
        """Zero ``W (d, K * c)`` and ``b (K * c,)`` in the data's dtype, on its device.

        Examples
        --------
        >>> import anyglm
        >>> from anyglm.inputs import prepare
        >>> prep = prepare(anyglm.get_model("softmax"), [[0.0], [1.0], [2.0]], [0, 1, 2])
        >>> W, b = prep.zero_parameters(n_configs=2)
        >>> W.shape, b.shape
        ((1, 6), (6,))
        """
        xp, dev = self.backend.xp, self.device
        dt = self.backend.dtype(self.dtype, dev)
        width = n_configs * self.n_outputs
        return (
            xp.zeros((self.n_features, width), dtype=dt, device=dev),
            xp.zeros((width,), dtype=dt, device=dev),
        )


def _validation_pair(validation_data: Any) -> tuple[Any, Any]:
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise TypeError("validation_data must be a pair (X_val, y_val)")
    return validation_data[0], validation_data[1]


def prepare(
    model: Model,
    X: Any,
    y: Any,
    *,
    backend: str | None = None,
    device: Any = None,
    dtype: str | None = None,
    rng: np.random.Generator | None = None,
    sample_weight: Any = None,
    classes: Sequence[Hashable] | None = None,
    class_weight: Mapping[Hashable, float] | str | None = None,
    validation_data: tuple[Any, Any] | None = None,
    validation_fraction: float = 0.0,
    block_rows: int | None = None,
    rounds_per_epoch: int = 1,
) -> Prepared:
    """Check and move the data of a fit; draw the validation split from ``rng``.

    Parameters
    ----------
    model : Model
    X, y : array-like
        Features and targets as ``fit`` takes them.
    backend, device, dtype
        As the estimator's parameters of the same names.
    rng : numpy.random.Generator, optional
        Draws the validation split (required with ``validation_fraction > 0``).
    sample_weight, classes, class_weight, validation_data, validation_fraction
        As ``fit`` and the estimator take them.
    block_rows : int, optional
        Rows per block for data read from disk (default about 64 MB).
    rounds_per_epoch : int, default=1
        Synchronisations per epoch of a lazy backend's training (model
        averaging rounds); other backends ignore it.

    Returns
    -------
    Prepared

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.inputs import prepare
    >>> X, y = np.arange(10.0).reshape(5, 2), [0, 1, 0, 1, 1]
    >>> prep = prepare(anyglm.get_model("logistic"), X, y, rng=np.random.default_rng(0),
    ...                validation_fraction=0.4)
    >>> prep.n_train, prep.validation.n_rows
    (3, 2)
    """
    if y is None:
        raise ValueError(
            f"model {model.name!r} requires y to be passed, but the target y is None; "
            "call fit(X, y)"
        )
    names = feature_names(X)
    X = plain_input(X, "X")
    be = resolve_backend(backend, X)
    if is_lazy(be):  # checks, labels and training run where the chunks live
        return be.prepare_fit(  # type: ignore[attr-defined]
            model,
            X,
            y,
            device=device,
            dtype=dtype,
            rng=rng,
            sample_weight=sample_weight,
            classes=classes,
            class_weight=class_weight,
            validation_data=validation_data,
            validation_fraction=validation_fraction,
            block_rows=block_rows,
            rounds_per_epoch=rounds_per_epoch,
        )
    kind = input_kind(X)
    if kind == "blocks":
        return _prepare_blocks(
            model,
            X,
            y,
            be,
            device,
            dtype,
            rng,
            sample_weight,
            classes,
            class_weight,
            validation_data,
            validation_fraction,
            block_rows,
        )
    if kind == "sparse":
        Xd, dt, dev = sparse_to_backend(X, be, "X", dtype)
    else:
        Xd, dt, dev = to_backend(X, be, "X", dtype, device)
    n, d = int(Xd.shape[0]), int(Xd.shape[1])
    _check_one_sample(model, n, classes)
    targets, weights = _targets_and_weights(model, y, n, classes, sample_weight, class_weight)

    train_rows = np.arange(n)
    validation: DataSource | None = None
    if validation_data is not None:
        Xv_in, yv_in = _validation_pair(validation_data)
        if input_kind(Xv_in) == "sparse":
            Xv, _, _ = sparse_to_backend(Xv_in, be, "X_val", dt)
        else:
            Xv, _, _ = to_backend(Xv_in, be, "X_val", dt, dev)
        if Xv.shape[1] != d:
            raise ValueError(f"X_val has {Xv.shape[1]} features but X has {d}")
        Yv = _validation_targets(model, targets, yv_in, int(Xv.shape[0]))
        validation = _memory_source(be, Xv, be.from_numpy(Yv, dtype=dt, device=dev), None, dev)
    elif validation_fraction > 0:
        val_rows, train_rows = _split_rows(rng, validation_fraction, n)
        Xv = _rows(be, Xd, val_rows, dev)
        Yv = be.from_numpy(targets.rows(val_rows).encoded(), dtype=dt, device=dev)
        validation = _memory_source(be, Xv, Yv, None, dev)
    if len(train_rows) < n:
        Xd = _rows(be, Xd, train_rows, dev)
        targets = targets.rows(train_rows)
        weights = None if weights is None else weights[train_rows]
    weights = _mean_one(weights)
    Yd = be.from_numpy(targets.encoded(), dtype=dt, device=dev)
    wd = None if weights is None else be.from_numpy(weights, dtype=dt, device=dev)
    return Prepared(
        model,
        be,
        dev,
        dt,
        _memory_source(be, Xd, Yd, wd, dev),
        validation,
        targets,
        d,
        len(train_rows),
        kind,
        names,
    )


def _targets_and_weights(
    model: Model, y: Any, n: int, classes: Any, sample_weight: Any, class_weight: Any
) -> tuple[EncodedTargets, np.ndarray | None]:
    targets = encode_targets(model, to_host(y, "y", owner_of(y)), n, classes=classes)
    return targets, row_weights(targets, host_sample_weight(sample_weight), class_weight, n)


def _split_rows(
    rng: np.random.Generator | None, fraction: float, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (validation, training) row indices: ``round(fraction * n)`` random rows held out."""
    assert rng is not None, "a validation split needs the fit's generator"
    n_val = round(fraction * n)
    if n_val < 1 or n_val >= n:
        raise ValueError(
            f"validation_fraction={fraction} of {n} rows leaves "
            f"{n_val} validation and {n - n_val} training rows; both need at least one"
        )
    perm = rng.permutation(n)
    return np.sort(perm[:n_val]), np.sort(perm[n_val:])


def _check_one_sample(model: Model, n: int, classes: Any) -> None:
    if n == 1 and classes is None and model.task == "classification":
        raise ValueError(
            "X has 1 sample (n_samples=1), so y has one class; a classifier needs samples "
            "of at least two classes. If the classes are known, declare them: "
            "fit(X, y, classes=[...]) (or partial_fit)"
        )


def _mean_one(weights: np.ndarray | None, rows: np.ndarray | None = None) -> np.ndarray | None:
    """Row weights scaled to mean 1 over the training rows (``rows``; all when ``None``).

    The loss is then the weighted mean ``sum(w_i loss_i) / sum(w_i)``, as
    scikit-learn's: integer weights act as repeated rows, and the scale of the
    weights (a class weight of 1000) does not change the step size.
    """
    if weights is None:
        return None
    mean = float(np.mean(weights if rows is None else weights[rows]))
    if not mean > 0:
        raise ValueError(
            "every training row has weight zero (sample_weight times class_weight); "
            "at least one needs a positive weight"
        )
    return weights / mean


def _memory_source(be: Backend, X: Any, Y: Any, w: Any, dev: Any) -> ArraySource:
    if input_kind(X) == "sparse":
        return SparseSource(be, X, Y, w, device=dev)
    return ArraySource(be, X, Y, w, device=dev)


def _rows(be: Backend, X: Any, rows: np.ndarray, dev: Any) -> Any:
    if input_kind(X) == "sparse":
        return X[rows]
    return be.xp.take(X, be.from_numpy(rows, dtype=be.index_dtype(dev), device=dev), axis=0)


def _validation_targets(model: Model, targets: EncodedTargets, y: Any, n: int) -> np.ndarray:
    classes = targets.classes
    yv = to_host(y, "y_val", owner_of(y))
    n_targets = None if classes is not None else targets.coder.n_outputs
    enc = encode_targets(model, yv, n, classes=classes, name="y_val", n_targets=n_targets)
    return enc.encoded()


def _prepare_blocks(
    model: Model,
    X: Any,
    y: Any,
    be: Backend,
    device: Any,
    dtype: str | None,
    rng: np.random.Generator | None,
    sample_weight: Any,
    classes: Sequence[Hashable] | None,
    class_weight: Mapping[Hashable, float] | str | None,
    validation_data: tuple[Any, Any] | None,
    validation_fraction: float,
    block_rows: int | None,
) -> Prepared:
    """A fit on an array read from disk: checks and encoding per block, y in memory."""
    shape = tuple(int(s) for s in X.shape)
    err = shape_error("X", shape)
    if err is not None:
        raise err
    n, d = shape
    _check_one_sample(model, n, classes)
    kind = np.dtype(X.dtype).kind
    if kind == "c":
        raise complex_error("X", X.dtype)
    if kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}")
    device = check_device(be, device)
    dev = be.default_device() if device is None else device
    dt = pick_dtype(be, dev, dtype, X)
    targets, weights = _targets_and_weights(model, y, n, classes, sample_weight, class_weight)
    codes = targets.codes
    split = None
    if validation_data is None and validation_fraction > 0:
        # The same random rows an in-memory fit would hold out; each block then
        # serves its training rows, and the held-out rows are read to score them.
        split = _split_rows(rng, validation_fraction, n)
    weights = _mean_one(weights, None if split is None else split[1])
    source = BlockSource(
        be, X, codes, targets.coder.encode, weights, dtype=dt, device=dev, block_rows=block_rows
    )
    validation: DataSource | None = None
    n_train = n
    if validation_data is not None:
        Xv_in, yv_in = _validation_pair(validation_data)
        if input_kind(Xv_in) == "blocks":
            nv = int(Xv_in.shape[0])
            yv = to_host(yv_in, "y_val", owner_of(yv_in))
            n_targets = None if targets.classes is not None else targets.coder.n_outputs
            enc = encode_targets(
                model, yv, nv, classes=targets.classes, name="y_val", n_targets=n_targets
            )
            if int(Xv_in.shape[1]) != d:
                raise ValueError(f"X_val has {Xv_in.shape[1]} features but X has {d}")
            validation = BlockSource(
                be,
                Xv_in,
                enc.codes,
                enc.coder.encode,
                None,
                dtype=dt,
                device=dev,
                block_rows=block_rows,
                name="X_val",
            )
        else:
            Xv, _, _ = to_backend(Xv_in, be, "X_val", dt, dev)
            if Xv.shape[1] != d:
                raise ValueError(f"X_val has {Xv.shape[1]} features but X has {d}")
            Yv = _validation_targets(model, targets, yv_in, int(Xv.shape[0]))
            validation = ArraySource(be, Xv, be.from_numpy(Yv, dtype=dt, device=dev), device=dev)
    elif split is not None:
        validation = source.subset(split[0], name="X (validation rows)")
        source = source.subset(split[1])
        n_train = source.n_rows
    return Prepared(model, be, dev, dt, source, validation, targets, d, n_train, "blocks")
