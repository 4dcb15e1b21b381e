"""The command line's data: ``--dataset``, or ``--data`` as CSV, .npz, .npy or a zarr store.

Part of :mod:`anyglm.cli`. An ``.npy`` file is memory-mapped and a zarr store
opened without reading a chunk; :mod:`anyglm.cli_prepare` splits and scales
them without reading them whole.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import datasets, tabular

_ZARR_MISSING = 'reading a zarr store needs zarr: pip install "anyglm[zarr]"'


class UsageError(ValueError):
    """Bad command-line input; reported in one line with exit code 2."""


@dataclass
class _Data:
    X: Any
    y: Any
    name: str
    on_disk: bool = False  # a memory map or zarr array: not read into memory
    table: tabular.CsvTable | None = None
    # Appended to errors about labels when the label column was not chosen.
    label_note: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


def _delimiter(args: argparse.Namespace) -> str | None:
    value = getattr(args, "delimiter", None)
    return "\t" if value == "tab" else value


def _is_csv(path: str) -> bool:
    return path.lower().endswith((".csv", ".tsv"))


def _is_zarr(path: str) -> bool:
    return os.path.isdir(path) or path.rstrip("/\\").lower().endswith(".zarr")


def _load_data(
    args: argparse.Namespace, *, need_y: bool = True, model_meta: dict[str, Any] | None = None
) -> _Data:
    labels = getattr(args, "labels", None)
    y: np.ndarray | None
    if args.dataset:
        if labels:
            raise UsageError("--labels goes with --data (an .npy or zarr file of X)")
        X_set, y_set = datasets.load_dataset(args.dataset)
        return _Data(X_set, y_set, args.dataset, meta={"source": "dataset"})
    path = args.data
    if not os.path.exists(path):
        raise UsageError(f"--data: no such file {path!r}")
    if _is_zarr(path):
        return _load_zarr(path, labels, need_y)
    if _is_csv(path):
        if labels:
            raise UsageError(f"--labels goes with .npy or zarr data; {path!r} has its own labels")
        return _load_csv(args, path, need_y, model_meta)
    try:
        # mmap_mode: an .npy is mapped, not read (an .npz ignores it).
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"--data: cannot read {path!r} as .npz, .npy, .csv or a zarr store ({exc})"
        ) from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        X = _check_2d(loaded, path)
        y = _load_labels(labels, X.shape[0], path) if labels else None
        if need_y and y is None:
            raise UsageError(
                f"--data: {path!r} holds X only; pass the labels with --labels PATH "
                "(.npy, .csv or .txt), or save X and y together with np.savez"
            )
        # A memory map (or anything else that is not a plain array) stays on disk.
        on_disk = isinstance(X, np.memmap) or not isinstance(X, np.ndarray)
        return _Data(X, y, path, on_disk=on_disk, meta={"source": "npy"})
    if labels:
        raise UsageError(f"--labels goes with .npy or zarr data; {path!r} is an .npz archive")
    with loaded as f:
        wanted = ("X", "y") if need_y else ("X",)
        missing = [k for k in wanted if k not in f.files]
        if missing:
            raise UsageError(
                f"--data: {path!r} has no array {', '.join(map(repr, missing))}; "
                f"it holds {', '.join(f.files) or 'nothing'} and needs X and y"
            )
        X = _check_2d(np.asarray(f["X"]), path)
        y = np.asarray(f["y"]) if "y" in f.files else None
    _check_rows(y, X.shape[0], path)
    return _Data(X, y, path, meta={"source": "npz"})


def _check_2d(X: Any, path: str) -> Any:
    if len(X.shape) != 2:
        raise UsageError(
            f"--data: X in {path!r} has shape {tuple(X.shape)}; it must be 2-D (rows x features)"
        )
    return X


def _check_rows(y: Any, n: int, path: str) -> None:
    if y is not None and y.shape[0] != n:
        raise UsageError(f"{path!r}: X has {n} rows but the labels have {y.shape[0]}")


def _load_labels(path: str, n: int, data_path: str) -> np.ndarray:
    if not os.path.exists(path):
        raise UsageError(f"--labels: no such file {path!r}")
    if _is_zarr(path):
        y = np.asarray(_open_zarr(path)[...])
    elif path.lower().endswith(".npy"):
        try:
            y = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise UsageError(f"--labels: cannot read {path!r} as .npy ({exc})") from None
    else:
        y = tabular.read_labels(path)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise UsageError(f"--labels: {path!r} has shape {y.shape}; it needs one label per row")
    if y.shape[0] != n:
        raise UsageError(
            f"--labels: {path!r} has {y.shape[0]} labels but {data_path!r} has {n} rows"
        )
    return y


def _open_zarr(path: str) -> Any:
    try:
        import zarr
    except ImportError:
        raise ImportError(_ZARR_MISSING) from None
    try:
        return zarr.open(path, mode="r")  # opens the store; reads no chunk
    except Exception as exc:  # zarr raises many types for a folder that is not a store
        raise UsageError(f"--data: cannot open {path!r} as a zarr store ({exc})") from None


def _load_zarr(path: str, labels: str | None, need_y: bool) -> _Data:
    store = _open_zarr(path)
    if hasattr(store, "shape"):  # an array: X only
        X, y = store, None
    else:
        names = sorted(str(k) for k in store.array_keys())
        if "X" not in names:
            raise UsageError(
                f"--data: the zarr group {path!r} has no array 'X'; it holds "
                f"{', '.join(names) or 'nothing'}"
            )
        X = store["X"]
        y = np.asarray(store["y"][...]) if "y" in names and not labels else None
    _check_2d(X, path)
    if labels:
        y = _load_labels(labels, X.shape[0], path)
    if need_y and y is None:
        raise UsageError(
            f"--data: {path!r} holds X only; pass the labels with --labels PATH, or store "
            "an array 'y' next to 'X'"
        )
    _check_rows(y, X.shape[0], path)
    return _Data(X, y, path, on_disk=True, meta={"source": "zarr"})


def _load_csv(
    args: argparse.Namespace, path: str, need_y: bool, model_meta: dict[str, Any] | None
) -> _Data:
    """Read a CSV for training (``model_meta`` None) or for a saved model (eval, predict).

    For a saved model the label column and the feature columns default to the
    ones recorded at training (the model file's ``file_metadata_``): features by header
    name when both files have a header, else by position.
    """
    rows = tabular.read_rows(path, delimiter=_delimiter(args))
    meta = model_meta or {}
    chosen = getattr(args, "label_column", None)
    names: list[str] = list(meta.get("feature_names") or [])
    n_features = meta.get("n_features")
    by_name = rows.header is not None and bool(names)
    if by_name and not set(names) <= set(rows.header or []):
        absent = [n for n in names if n not in (rows.header or [])]
        raise UsageError(
            f"{path}: the model was trained on columns this file lacks: {', '.join(absent)}"
        )
    features: list[str] | None = list(names) if by_name else None

    def recorded_label() -> tuple[str | int, bool]:
        """The label column: the user's, the model file's, else the last (a default)."""
        if chosen is not None:
            return chosen, False
        name = meta.get("label_column")
        if name is not None and rows.header is not None and name in rows.header:
            return str(name), False
        index = meta.get("label_index")
        if index is not None and rows.width == meta.get("n_columns"):
            return int(index), False
        return -1, True

    label: str | int | None
    label, label_is_default = recorded_label()
    feature_columns: list[str | int] | None = list(features) if features is not None else None
    if not need_y:
        # predict: the label column may be in the file or not; it is skipped, never read
        # (a file of new rows may have it empty).
        if features is None:
            if chosen is None and rows.width == n_features:
                drop = None
            elif chosen is None and n_features is not None and rows.width != n_features + 1:
                raise UsageError(
                    f"{path}: has {rows.width} columns; the model takes {n_features} features "
                    "(plus, optionally, the label column)"
                )
            else:
                drop = rows.column_index(label)
            feature_columns = [i for i in range(rows.width) if i != drop]
        label, label_is_default = None, False
    if model_meta is None:
        missing_hint = tabular.IMPUTE_HINT
    else:
        missing_hint = "fill it in (the model was trained without --impute)"
    table = tabular.read_csv(
        rows,
        label_column=label,
        allow_missing=bool(getattr(args, "impute", None)) or bool(meta.get("impute")),
        label_is_default=label_is_default,
        feature_columns=feature_columns,
        missing_hint=missing_hint,
    )
    note = ""
    if table.label_index is not None and label_is_default:
        note = (
            f" (the labels came from {rows.column_name(table.label_index)}, the last; choose "
            "the label column with --label-column NAME or INDEX)"
        )
    info = {
        "source": "csv",
        "label_column": table.label_name,
        "label_index": table.label_index,
        "n_columns": rows.width,
        "feature_names": table.feature_names,
    }
    return _Data(table.X, table.y, path, table=table, label_note=note, meta=info)
