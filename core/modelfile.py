"""Model files: arrays plus JSON metadata in a zip, never pickle, written atomically.

This module reads and writes a plain :class:`ModelState`; it knows no
estimator class (:mod:`anyglm.persistence` turns states into estimators and
back).

Layout of a ``.anyglm`` file (a zip archive):

* ``metadata.json``: format name and version, anyglm version, estimator
  class, model name, hyperparameters, dtype, number of features and outputs,
  target shape, history; a checkpoint adds a ``checkpoint`` section (epoch,
  random-generator states, training counters);
* ``W.npy``, ``b.npy``: the parameters to predict with, ``(d, c)`` and ``(c,)``;
* ``classes.npy``: class labels (numbers or strings), classifiers only;
* ``train/*.npy`` (checkpoints): the raw iterates and the optimiser's state.

Arrays are read with ``allow_pickle=False``, so a file cannot run code.
Format version 1 (anyglm 0.1) has the same layout without ``train/``; it is
read as it was written.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
import zipfile
import zlib

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None  # type: ignore[assignment]
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ._version import __version__
from .errors import ModelFileError
from .modelschema import (
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    Caps,
    check_arrays,
    check_directory,
    check_metadata,
    json_depth,
    read_npy,
)

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MAX_USER_METADATA_BYTES",
    "ModelState",
    "atomic_write_bytes",
    "check_user_metadata",
    "read",
    "remove_stale_temporaries",
    "write",
]

FORMAT = "anyglm-model"
#: Version 2 adds the ``train/`` arrays and the optimiser's settings; readers of
#: version 2 read version 1 files too.
FORMAT_VERSION = 2


#: Largest ``metadata=`` a model file keeps, as JSON (64 KiB).
MAX_USER_METADATA_BYTES = 64 * 1024


def check_user_metadata(metadata: Any) -> dict[str, Any]:
    """``metadata`` as a JSON round trip, if it is a small JSON-serialisable dict.

    Raises
    ------
    TypeError
        Not a dict, or not serialisable as JSON.
    ValueError
        Larger than :data:`MAX_USER_METADATA_BYTES` as JSON, or holding NaN or infinity.

    Examples
    --------
    >>> from anyglm.modelfile import check_user_metadata
    >>> check_user_metadata({"columns": ["a", "b"], "label": 2})
    {'columns': ['a', 'b'], 'label': 2}
    """
    if not isinstance(metadata, dict):
        raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
    try:
        text = json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise (ValueError if "Out of range" in str(exc) else TypeError)(
            f"metadata must be JSON-serialisable (str keys; str, numbers, bools, None, lists, "
            f"dicts; no NaN or infinity): {exc}"
        ) from None
    if len(text.encode()) > MAX_USER_METADATA_BYTES:
        raise ValueError(
            f"metadata takes {len(text.encode())} bytes as JSON; a model file keeps at most "
            f"{MAX_USER_METADATA_BYTES}. Store large things next to the model file instead."
        )
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, replace.

    The temporary file (``.<name>.<random>.tmp``) is locked while it is
    written. A process killed mid-write leaves its temporary file behind; the
    next write to the same ``path`` removes every such file that no live
    writer holds (:func:`remove_stale_temporaries`), so killed saves do not
    pile up.

    Raises
    ------
    FileNotFoundError
        The folder of ``path`` does not exist.
    IsADirectoryError
        ``path`` is a folder.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.modelfile import atomic_write_bytes
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> atomic_write_bytes(path, b"hello")
    >>> path.read_bytes()
    b'hello'
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise IsADirectoryError(
            f"cannot write {str(target)!r}: it is a folder; give a file name, "
            f"e.g. {str(target / 'model.anyglm')!r}"
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist"
        )
    remove_stale_temporaries(target)
    fd, tmp = _locked_temporary(target, folder)
    try:
        _write_all(fd, data)
        os.fsync(fd)
        if fcntl is not None:
            os.replace(tmp, target)  # still locked: no cleaner can take it meanwhile
            os.close(fd)
        else:
            os.close(fd)  # Windows cannot rename an open file
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):  # closed already when replace failed on Windows
            os.close(fd)
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _locked_temporary(target: Path, folder: Path) -> tuple[int, str]:
    """A new temporary file for ``target``, locked, with the permissions open() would give."""
    for _ in range(100):
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp creates 0600
        if fcntl is None:
            return fd, tmp
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:  # a cleaner may have removed it before the lock: then take another
            if os.path.samestat(os.stat(tmp), os.fstat(fd)):
                return fd, tmp
        except FileNotFoundError:
            pass
        os.close(fd)
    raise OSError(f"could not create a temporary file for {str(target)!r} in {str(folder)!r}")


def remove_stale_temporaries(target: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that killed writes to ``target`` left; return their names.

    A temporary file of ``target`` (``.<name>.<random>.tmp`` in its folder) is
    stale when no process holds its lock: the writer died. One that is
    being written is left alone. Without ``fcntl`` (Windows), an open file
    cannot be removed, so the same rule holds.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.modelfile import remove_stale_temporaries
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / ".m.anyglm.k1ll3d.tmp").write_bytes(b"half a model")
    >>> remove_stale_temporaries(folder / "m.anyglm")
    ['.m.anyglm.k1ll3d.tmp']
    """
    target = Path(target)
    folder = target.parent if str(target.parent) else Path(".")
    prefix = f".{target.name}."
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(folder) if e.name.startswith(prefix)]
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.endswith(".tmp") or not entry.is_file(follow_symlinks=False):
            continue
        try:
            fd = os.open(entry.path, os.O_RDONLY)
        except OSError:
            continue
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # a live writer holds it
                if not os.path.samestat(os.stat(entry.path), os.fstat(fd)):
                    continue
            os.unlink(entry.path)
            removed.append(entry.name)
        except OSError:
            continue  # gone already, or (Windows) still open
        finally:
            os.close(fd)
    return sorted(removed)


def jsonable(value: Any) -> Any:
    """``value`` with NumPy scalars and arrays turned into Python ones (for JSON).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.modelfile import jsonable
    >>> jsonable({"a": np.int64(3), "b": (np.arange(2), None)})
    {'a': 3, 'b': [[0, 1], None]}
    """
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # e.g. MT19937's key in a generator state
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return str(value)  # devices, generators: recorded for information only


@dataclass
class ModelState:
    """The content of a model file: JSON metadata and named host arrays.

    Attributes
    ----------
    meta : dict
        JSON-ready metadata (see the module docstring).
    arrays : dict of str to numpy.ndarray
        ``"W"``, ``"b"``, optionally ``"classes"`` and ``"train/..."``.
    path : str
        Where it was read from (empty for a state not read from a file).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.modelfile import ModelState
    >>> ModelState({"model": "linear"}, {"W": np.zeros((2, 1)), "b": np.zeros(1)}).arrays["W"].shape
    (2, 1)
    """

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    path: str = ""

    @property
    def checkpoint(self) -> dict[str, Any] | None:
        """The checkpoint section, or ``None`` for a plain model file."""
        ck = self.meta.get("checkpoint")
        return ck if isinstance(ck, dict) else None


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def write(path: str | os.PathLike[str], state: ModelState) -> None:
    """Write ``state`` to ``path`` atomically (format :data:`FORMAT_VERSION`).

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile
    >>> from anyglm import modelfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.anyglm"
    >>> meta = {"estimator": "Estimator", "model": "linear", "params": {}, "n_features_in": 2,
    ...         "history": {}, "dtype": "float64"}
    >>> modelfile.write(path, modelfile.ModelState(meta, {"W": np.ones((2, 1)), "b": np.ones(1)}))
    >>> modelfile.read(path).arrays["W"].tolist()
    [[1.0], [1.0]]
    """
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "anyglm_version": __version__,
        **{k: v for k, v in state.meta.items() if k not in ("format", "format_version")},
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(jsonable(meta), indent=1))
        for name, a in state.arrays.items():
            zf.writestr(f"{name}.npy", _npy(a))
    atomic_write_bytes(path, buf.getvalue())


def _read_metadata(zf: zipfile.ZipFile, path: str) -> dict[str, Any]:
    try:
        info = zf.getinfo("metadata.json")
    except KeyError:
        raise ModelFileError(f"{path!r} is not an anyglm model file (no metadata.json)") from None
    if info.file_size > MAX_METADATA_BYTES:
        raise ModelFileError(
            f"{path!r}: metadata.json takes {info.file_size} bytes; a model file's metadata "
            f"is at most {MAX_METADATA_BYTES}"
        )
    try:
        with zf.open(info) as fh:
            raw = fh.read(MAX_METADATA_BYTES + 1)
    except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
        raise ModelFileError(f"{path!r} is corrupted: {exc}") from None
    depth = json_depth(raw)
    if depth > MAX_JSON_DEPTH:
        raise ModelFileError(
            f"{path!r}: metadata.json nests {depth} levels deep; a model file's metadata "
            f"nests at most {MAX_JSON_DEPTH}"
        )
    try:
        meta = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise ModelFileError(f"{path!r} is corrupted: metadata.json is not JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelFileError(f"{path!r} is not an anyglm model file (format field missing)")
    return meta


def read(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> ModelState:
    """Read and validate a model file; every defect is a :class:`~anyglm.ModelFileError`.

    Nothing in the file is trusted: sizes are checked against caps before
    anything is allocated, and every field and array is validated (see
    :mod:`anyglm.modelschema`, which also says how to raise the caps).

    Parameters
    ----------
    path : str or path-like
    max_bytes : int, optional
        Cap on the total uncompressed size of the file's members; default
        :data:`anyglm.modelschema.MAX_BYTES` (1 GiB) or the
        ``ANYGLM_MAX_MODEL_BYTES`` environment variable.

    Raises
    ------
    FileNotFoundError
        No file at ``path``.
    IsADirectoryError
        ``path`` is a folder.
    ModelFileError
        Not an anyglm model file, truncated, corrupted, inconsistent, over a
        cap, or of a newer format version.

    Examples
    --------
    >>> import pathlib, tempfile, anyglm
    >>> from anyglm import modelfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "m.anyglm"
    >>> anyglm.LinearRegression(epochs=2).fit([[0.0], [1.0]], [0.0, 1.0]).save(path)
    >>> state = modelfile.read(path)
    >>> state.meta["model"], state.arrays["W"].shape
    ('linear', (1, 1))
    """
    caps = Caps.resolve(max_bytes)
    spath = os.fspath(path)
    if os.path.isdir(spath):
        raise IsADirectoryError(f"{spath!r} is a folder, not a model file")
    if not os.path.exists(spath):
        raise FileNotFoundError(f"no model file at {spath!r}")
    try:
        zf = zipfile.ZipFile(spath)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ModelFileError(
            f"{spath!r} is not an anyglm model file (not a zip archive, or truncated): {exc}"
        ) from None
    with zf:
        check_directory(zf, spath, caps)
        meta = _read_metadata(zf, spath)
        version = meta.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{spath!r} has format version {version!r}; this anyglm ({__version__}) reads "
                f"up to {FORMAT_VERSION}. Upgrade anyglm to load it."
            )
        if version < 1:
            raise ModelFileError(f"{spath!r} has format version {version!r}, which never existed")
        check_metadata(meta, spath)
        arrays = {}
        for info in zf.infolist():
            if not info.filename.endswith(".npy"):
                continue
            try:
                with zf.open(info) as fh:
                    arrays[info.filename[: -len(".npy")]] = read_npy(fh, info, spath, caps)
            except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
                raise ModelFileError(f"{spath!r} is corrupted: {exc}") from None
    check_arrays(meta, arrays, spath)
    return ModelState(meta, arrays, spath)
