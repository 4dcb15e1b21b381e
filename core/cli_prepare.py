"""Preparing the command line's data for a fit: split, fill, standardise; fold the scaling back.

Part of :mod:`anyglm.cli`. Data in memory is split and standardised in memory.
Data on disk (an ``.npy`` memory map, a zarr array) is never read whole: the
training and test parts are :class:`~anyglm.readers.RowView` objects over
sorted row indices, the statistics come from one streaming pass over the
training rows (:func:`anyglm.scaling.column_stats`), and the scaling is a
transform each block gets as it is read.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import registry, tabular
from .cli_data import UsageError, _Data
from .estimators import Estimator
from .modelfile import MAX_USER_METADATA_BYTES, check_user_metadata
from .readers import RowView
from .scaling import ColumnStats, Standardize, column_stats


def _split_rows(args: argparse.Namespace, n: int, on_disk: bool) -> tuple[Any, Any]:
    """Row indexes of the training and test parts (the same draw as datasets.train_test_split)."""
    test_size = args.test_size
    if not 0 <= test_size < 1:
        raise UsageError(f"--test-size must be >= 0 and < 1, got {test_size}")
    n_test = round(test_size * n)
    if test_size > 0 and not 0 < n_test < n:
        raise UsageError(f"--test-size {test_size} of {n} rows leaves an empty part")
    if n_test == 0:  # every row trains, in order
        return np.arange(n), np.arange(0)
    perm = np.random.default_rng(args.seed).permutation(n)
    test, train = perm[:n_test], perm[n_test:]
    if on_disk:  # in file order: one sweep over the file
        test, train = np.sort(test), np.sort(train)
    return train, test


@dataclass
class _Prepared:
    X_fit: Any  # what the estimator trains on (filled and standardised)
    X_tr: Any  # the training rows with raw features (filled): what the saved model takes
    X_te: Any  # the test rows, likewise; None without a test part
    y_tr: Any
    y_te: Any
    scaler: tuple[np.ndarray, np.ndarray] | None  # (mean, scale) of the training rows
    fill: np.ndarray | None  # the --impute values
    transform: Standardize | None  # raw rows -> what the estimator trains on
    X_te_fit: Any = None  # the test rows as the estimator trains on them (on disk: lazy)

    def test_for_fit(self) -> Any:
        """The test rows as the estimator saw its training rows (before the scaling is folded)."""
        if self.X_te is None or self.transform is None:
            return self.X_te
        if self.X_te_fit is not None:
            return self.X_te_fit
        return self.transform(self.X_te)


def _fit_dtype(X: Any) -> np.dtype:
    """The float type the filled and standardised rows get: float32 stays, all else float64."""
    return np.dtype(np.float32 if np.dtype(X.dtype) == np.float32 else np.float64)


def _prepare(args: argparse.Namespace, data: _Data) -> _Prepared:
    """Split, fill missing cells and standardise, copying X as little as possible.

    Every step is a :class:`RowView` of ``data.X`` first: data on disk stays
    there (the estimator reads the views block by block); data in memory is
    read out of the views into arrays.
    """
    X = data.X
    n = int(X.shape[0])
    train, test = _split_rows(args, n, data.on_disk)
    split = test.size > 0
    y = np.asarray(data.y)
    y_tr, y_te = (y[train], y[test]) if split else (y, None)
    rows = train if split else None
    fill, stats = _fill_values(args, data, rows) if args.impute else (None, None)
    raw = None if fill is None else Standardize(fill=fill, dtype=_fit_dtype(X))
    scaler = None
    if args.standardize:
        if stats is None:
            stats = _stats(_lazy(X, rows, raw), data, False)
        scaler = (stats.mean, stats.scale)
    fit = raw if scaler is None else Standardize(*scaler, fill=fill, dtype=_fit_dtype(X))

    def view(part: np.ndarray | None, transform: Standardize | None) -> Any:
        v = _lazy(X, part, transform)
        return v if data.on_disk or v is X else v[0 : len(v)]

    X_tr = view(rows, raw)
    X_te = view(test, raw) if split else None
    X_fit = X_tr if fit is raw else view(rows, fit)
    X_te_fit = view(test, fit) if split and data.on_disk and fit is not None else None
    return _Prepared(X_fit, X_tr, X_te, y_tr, y_te, scaler, fill, fit, X_te_fit)


def _lazy(X: Any, rows: np.ndarray | None, transform: Standardize | None) -> Any:
    """Rows of X, transformed as they are read; X itself when that changes nothing.

    X itself keeps a memory map one (plain file reads, see RowReader) and lets
    the estimator train on the file as it is.
    """
    if rows is None and transform is None:
        return X
    return RowView(X, rows=rows, transform=transform, dtype=getattr(transform, "dtype", None))


def _stats(X: Any, data: _Data, ignore_nan: bool) -> ColumnStats:
    try:
        return column_stats(X, missing="ignore" if ignore_nan else "error", name=data.name)
    except ValueError as err:
        hint = "" if ignore_nan else " or fill NaN with --impute"
        raise UsageError(f"{err}; remove those values{hint}") from None


def _fill_values(
    args: argparse.Namespace, data: _Data, rows: np.ndarray | None
) -> tuple[np.ndarray | None, ColumnStats | None]:
    """The --impute values from the training rows, and (on disk) the filled rows' statistics.

    In memory: only when X has a missing value (then any strategy). On disk:
    always (the test rows are not read to look), in the one pass that also
    gives the statistics for --standardize; the median needs every value at
    once, so it is refused there.
    """
    X = data.X
    if not data.on_disk:
        if not (np.dtype(X.dtype).kind == "f" and bool(np.isnan(X).any())):
            return None, None
        names = data.table.feature_names if data.table is not None else None
        X_tr = X if rows is None else X[rows]
        return tabular.impute_values(X_tr, args.impute, names), None
    if args.impute not in ("mean", "zero"):
        raise UsageError(
            f"--impute {args.impute} needs every training value in memory; for an .npy "
            "or zarr file use --impute mean or zero"
        )
    stats = _stats(_lazy(X, rows, None), data, True)
    empty = np.flatnonzero(stats.count == 0)
    if args.impute == "mean" and empty.size:
        raise UsageError(
            f"column {int(empty[0])} of {data.name!r} has no value in the training rows; "
            "--impute mean cannot fill it: drop the column or use --impute zero"
        )
    fill = stats.mean if args.impute == "mean" else np.zeros(stats.mean.shape)
    return fill, stats.with_fill(fill)


def _rows_of(data: _Data, rows: np.ndarray) -> Any:
    """Some rows of the data: a lazy view on disk, an array in memory."""
    view = _lazy(data.X, rows, None)
    return view if data.on_disk else view[0 : len(view)]


def _fill_from_model(data: _Data, X: Any, meta: dict[str, Any]) -> Any:
    """Missing cells get the fill values the model was trained with."""
    fill = meta.get("impute")
    if not fill:
        return X
    values = np.asarray(fill.get("values", []), dtype=np.float64)
    if values.shape != (X.shape[1],):
        raise UsageError(
            f"the model file's fill values are for {values.shape[0]} features; "
            f"{data.name!r} has {X.shape[1]}"
        )
    if data.on_disk:
        return _lazy(X, None, Standardize(fill=values, dtype=_fit_dtype(X)))
    if np.dtype(X.dtype).kind != "f" or not np.isnan(X).any():
        return X
    return tabular.fill_missing(X, values)


def _fold_scaling(est: Estimator, scaler: tuple[np.ndarray, np.ndarray]) -> None:
    """Rewrite the parameters so the model takes raw features.

    On standardised inputs ``z = (x - m) / s``: ``z W + b = x (W / s) + (b - (m / s) W)``.
    The parameters are read from the public ``coef_``/``intercept_``; writing
    them back still goes through the estimator's private ``_set_params`` until
    the estimator has a public way to replace fitted parameters.
    """
    be = registry.get_backend(est.backend_)
    coef = be.to_numpy(est.coef_)
    intercept = be.to_numpy(est.intercept_)
    dtype = coef.dtype.name
    device = be.device_of(est.coef_)
    W = (coef[:, None] if coef.ndim == 1 else coef.T).astype(np.float64)
    b = intercept.reshape(-1).astype(np.float64)
    mean, scale = scaler
    W_raw = W / scale[:, None]
    b_raw = b - (mean / scale) @ W
    history = {k: np.asarray(v).reshape(-1, 1) for k, v in est.history_.items()}
    est._set_params(
        be.from_numpy(W_raw, dtype=dtype, device=device),
        be.from_numpy(b_raw, dtype=dtype, device=device),
        history,
        est.n_epochs_,
    )


def _model_metadata(data: _Data, prep: _Prepared, args: argparse.Namespace) -> dict[str, Any]:
    """What eval and predict need from the training run, as the model file keeps it.

    Checked before the fit, so a model too large to save fails in a second,
    not after the training: feature names that do not fit are left out (eval
    and predict then match columns by position) with a note on stderr.
    """
    meta = dict(data.meta)
    meta["n_features"] = int(data.X.shape[1])
    if prep.fill is not None:
        meta["impute"] = {"strategy": args.impute, "values": prep.fill.tolist()}
    try:
        return check_user_metadata(meta)
    except ValueError:
        if not meta.get("feature_names"):
            raise
    meta["feature_names"] = None
    print(
        f"anyglm: note: the model file keeps no feature names ({meta['n_features']} are too "
        f"many for {MAX_USER_METADATA_BYTES} bytes); eval and predict match columns by position",
        file=sys.stderr,
    )
    return check_user_metadata(meta)


def _task(model: str) -> tuple[str, str]:
    """The model's task and the name of its score: ``accuracy`` or ``r2``."""
    task = registry.get_model(model).task
    return task, "accuracy" if task == "classification" else "r2"


def _check_labels_fit(data: _Data, task: str) -> None:
    y = np.asarray(data.y)
    if (
        data.table is not None
        and task == "classification"
        and y.dtype.kind == "f"
        and not np.all(y == np.round(y))
    ):
        sample = ", ".join(f"{v:g}" for v in y[:3])
        raise UsageError(
            f"{data.name}: the labels ({sample}, ...) are not whole numbers or names; a "
            f"classifier needs class labels{data.label_note}"
        )


def _with_label_note(err: Exception, data: _Data) -> Exception:
    """The error, with a hint about the label column when the user did not choose it."""
    if not data.label_note:
        return err
    first = str(err).splitlines()[0] if str(err) else type(err).__name__
    return UsageError(first + data.label_note)
