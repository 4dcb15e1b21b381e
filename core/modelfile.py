"""Model files: arrays plus JSON metadata in a zip, never pickle, written atomically.

Layout of a ``.anyglm`` file (a zip archive):

* ``metadata.json``: format name and version, anyglm version, estimator
  class, model name, hyperparameters, dtype, number of features and outputs,
  target shape, history;
* ``W.npy``, ``b.npy``: parameters ``(d, c)`` and ``(c,)``;
* ``classes.npy``: class labels (numbers or strings), classifiers only.

Arrays are read with ``allow_pickle=False``, so a file cannot run code.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import registry
from ._version import __version__
from .errors import ModelFileError

__all__ = ["atomic_write_bytes", "load"]

FORMAT = "anyglm-model"
FORMAT_VERSION = 1


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically: temporary file in the same folder, fsync, replace.

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
    if not folder.is_dir():
        raise FileNotFoundError(
            f"cannot write {str(target)!r}: folder {str(folder)!r} does not exist"
        )
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    # mkstemp creates 0600; give the file the permissions open() would have.
    os.chmod(tmp, 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
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


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, a, allow_pickle=False)
    return buf.getvalue()


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):  # e.g. MT19937's key in a generator state
        return value.tolist()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return str(value)  # devices, generators: recorded for information only


def _payload(
    est: Any, W: Any, b: Any, history: dict[str, list[float]], n_epochs: int
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    be = est._backend_obj
    params = est.get_params()
    if isinstance(params.get("random_state"), np.random.Generator):
        params["random_state"] = None
    params["device"] = None  # devices do not travel between machines
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "anyglm_version": __version__,
        "estimator": type(est).__name__,
        "model": est._model_obj.name,
        "params": _jsonable(params),
        "backend": est.backend_,
        "dtype": est._dtype,
        "n_features_in": est.n_features_in_,
        "y_ndim": est._y_shape,
        "n_targets": getattr(est, "_n_targets", None),
        "n_epochs": n_epochs,
        "history": history,
    }
    arrays = {"W.npy": be.to_numpy(W), "b.npy": be.to_numpy(b)}
    if hasattr(est, "classes_"):
        classes = est.classes_
        if classes.dtype.kind == "O":
            if not all(isinstance(c, str) for c in classes.tolist()):
                raise TypeError(
                    "only numeric or string class labels can be saved; "
                    f"got labels of types {sorted({type(c).__name__ for c in classes.tolist()})}"
                )
            classes = classes.astype(str)
        arrays["classes.npy"] = classes
    return meta, arrays


def _write(
    path: str | os.PathLike[str], meta: dict[str, Any], arrays: dict[str, np.ndarray]
) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("metadata.json", json.dumps(meta, indent=1))
        for name, a in arrays.items():
            zf.writestr(name, _npy(np.ascontiguousarray(a)))
    atomic_write_bytes(path, buf.getvalue())


def save_estimator(est: Any, path: str | os.PathLike[str]) -> None:
    """Serialise a fitted estimator (see :meth:`anyglm.Estimator.save`)."""
    meta, arrays = _payload(est, est._W, est._b, est.history_, est.n_epochs_)
    _write(path, meta, arrays)


# -- checkpoints -------------------------------------------------------------------------

#: Hyperparameters a resumed fit must share with the run that wrote the checkpoint.
_RESUME_KEYS = (
    "batch_size",
    "learning_rate",
    "alpha",
    "shuffle",
    "random_state",
    "validation_fraction",
)


@dataclass
class Checkpoint:
    """The training state read from a checkpoint file."""

    path: str
    meta: dict[str, Any]
    W: np.ndarray
    b: np.ndarray
    classes: np.ndarray | None
    epoch: int
    rng_state: dict[str, Any]
    initial_rng_state: dict[str, Any]
    history: dict[str, list[np.ndarray]]
    n_train: int


def write_checkpoint(
    path: str | os.PathLike[str],
    est: Any,
    prep: Any,
    info: Any,
    initial_rng_state: dict[str, Any],
) -> None:
    """Write the state after ``info.epoch`` epochs: a model file plus a ``checkpoint`` section."""
    history = {k: [float(v[0]) for v in rows] for k, rows in info.history.items()}
    meta, arrays = _payload(est, info.W, info.b, history, info.epoch)
    meta["checkpoint"] = {
        "epoch": info.epoch,
        "rng_state": _jsonable(info.rng.bit_generator.state),
        "initial_rng_state": _jsonable(initial_rng_state),
        "n_train": prep.n_train,
    }
    _write(path, meta, arrays)


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``fit(..., checkpoint=path)``.

    Raises
    ------
    ModelFileError
        The file is not a checkpoint (a plain model file, corrupted, foreign).
    """
    spath = os.fspath(path)
    meta, W, b, classes = _read_file(spath)
    ck = meta.get("checkpoint")
    if not isinstance(ck, dict):
        raise ModelFileError(
            f"{spath!r} is a model file without training state; resume needs a file written "
            "by fit(..., checkpoint=path)"
        )
    try:
        history = {k: [np.asarray([float(v)]) for v in vals] for k, vals in meta["history"].items()}
        return Checkpoint(
            spath,
            meta,
            W,
            b,
            classes,
            int(ck["epoch"]),
            dict(ck["rng_state"]),
            dict(ck["initial_rng_state"]),
            history,
            int(ck["n_train"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{spath!r}: the checkpoint section is incomplete") from None


def check_resumable(ck: Checkpoint, est: Any, prep: Any) -> None:
    """Raise ``ValueError`` unless ``ck`` was written by a fit like this one."""
    problems = []
    params = _jsonable(est.get_params())
    for key in _RESUME_KEYS:
        if key == "random_state" and isinstance(est.random_state, np.random.Generator):
            continue  # a generator is saved as None; its state comes from the checkpoint
        if key in params and ck.meta["params"].get(key) != params[key]:
            problems.append(f"{key}={ck.meta['params'].get(key)!r} there, {params[key]!r} here")
    if ck.meta.get("model") != prep.model.name:
        problems.append(f"model {ck.meta.get('model')!r} there, {prep.model.name!r} here")
    if ck.W.shape != (prep.n_features, prep.n_outputs):
        problems.append(
            f"parameters of shape {ck.W.shape}, data needs {(prep.n_features, prep.n_outputs)}"
        )
    if ck.n_train != prep.n_train:
        problems.append(f"{ck.n_train} training rows there, {prep.n_train} here")
    if (ck.classes is None) != (prep.classes is None) or (
        ck.classes is not None and ck.classes.tolist() != prep.classes.tolist()
    ):
        problems.append("different classes")
    if ck.epoch > est.epochs:
        problems.append(f"the checkpoint is at epoch {ck.epoch}, past epochs={est.epochs}")
    if problems:
        raise ValueError(
            f"cannot resume from {ck.path!r}: it was written by a different fit ("
            + "; ".join(problems)
            + ")"
        )


def _read_array(zf: zipfile.ZipFile, name: str, path: str) -> np.ndarray:
    try:
        with zf.open(name) as fh:
            return np.lib.format.read_array(io.BytesIO(fh.read()), allow_pickle=False)
    except KeyError:
        raise ModelFileError(
            f"{path!r} is not a complete anyglm model file: {name} is missing"
        ) from None
    except ValueError as exc:
        raise ModelFileError(f"{path!r}: array {name} is unreadable ({exc})") from None


def _read_file(spath: str) -> tuple[dict[str, Any], np.ndarray, np.ndarray, np.ndarray | None]:
    """Metadata and arrays of a model file, validated; every defect is a ModelFileError."""
    if not os.path.exists(spath):
        raise FileNotFoundError(f"no model file at {spath!r}")
    try:
        zf = zipfile.ZipFile(spath)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ModelFileError(
            f"{spath!r} is not an anyglm model file (not a zip archive, or truncated): {exc}"
        ) from None
    with zf:
        try:
            meta = json.loads(zf.read("metadata.json"))
        except KeyError:
            raise ModelFileError(
                f"{spath!r} is not an anyglm model file (no metadata.json)"
            ) from None
        except (zipfile.BadZipFile, zlib.error, ValueError, OSError, EOFError) as exc:
            raise ModelFileError(f"{spath!r} is corrupted: {exc}") from None
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise ModelFileError(f"{spath!r} is not an anyglm model file (format field missing)")
        version = meta.get("format_version")
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ModelFileError(
                f"{spath!r} has format version {version!r}; this anyglm ({__version__}) reads "
                f"up to {FORMAT_VERSION}. Upgrade anyglm to load it."
            )
        try:
            W = _read_array(zf, "W.npy", spath)
            b = _read_array(zf, "b.npy", spath)
            classes = (
                _read_array(zf, "classes.npy", spath) if "classes.npy" in zf.namelist() else None
            )
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as exc:
            raise ModelFileError(f"{spath!r} is corrupted: {exc}") from None
    required = {
        "estimator": str,
        "model": str,
        "params": dict,
        "n_features_in": int,
        "history": dict,
        "dtype": str,
    }
    for key, kind in required.items():
        if not isinstance(meta.get(key), kind):
            raise ModelFileError(
                f"{spath!r}: metadata field {key!r} is missing or not a {kind.__name__}"
            )
    d = meta["n_features_in"]
    if W.ndim != 2 or W.shape[0] != d or b.shape != (W.shape[1],):
        raise ModelFileError(f"{spath!r}: parameter shapes {W.shape}, {b.shape} do not match")
    if W.dtype.kind != "f" or b.dtype.kind != "f":
        raise ModelFileError(f"{spath!r}: parameters are not floating point")
    return meta, W, b, classes


def load(path: str | os.PathLike[str], backend: str | None = None) -> Any:
    """Load a model saved with :meth:`Estimator.save`.

    Parameters
    ----------
    path : str or path-like
    backend : str or None
        Backend to put the parameters on. ``None`` uses the backend the model
        was trained on when it is available here, and NumPy otherwise.

    Returns
    -------
    Estimator
        A fitted estimator of the saved class.

    Raises
    ------
    ModelFileError
        The file is not an anyglm model file, is truncated or corrupted, or
        comes from a newer format version.

    Examples
    --------
    >>> import tempfile, pathlib, anyglm
    >>> reg = anyglm.LinearRegression(epochs=50, random_state=0).fit([[0.0], [1.0]], [1.0, 3.0])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reg.anyglm"
    >>> reg.save(path)
    >>> loaded = anyglm.load(path, backend="numpy")
    >>> bool(abs(loaded.predict([[1.0]])[0] - reg.predict([[1.0]])[0]) < 1e-12)
    True
    """
    from . import estimators

    spath = os.fspath(path)
    meta, W, b, classes = _read_file(spath)
    allowed: dict[str, type[estimators.Estimator]] = {
        "Estimator": estimators.Estimator,
        "LinearRegression": estimators.LinearRegression,
        "LogisticRegression": estimators.LogisticRegression,
        "SoftmaxRegression": estimators.SoftmaxRegression,
    }
    if meta["estimator"] not in allowed:
        raise ModelFileError(f"{spath!r}: unknown estimator class {meta['estimator']!r}")
    cls = allowed[meta["estimator"]]
    d = meta["n_features_in"]
    params = {k: v for k, v in meta["params"].items() if k in cls._param_names()}
    cw = params.get("class_weight")
    if isinstance(cw, dict) and classes is not None:
        # JSON keys are strings: map them back to the class labels they came from.
        by_text = {str(c): c for c in classes.tolist()}
        params["class_weight"] = {by_text.get(k, k): v for k, v in cw.items()}
    est = cls(**params)
    if backend is None:
        saved = meta.get("backend", "numpy")
        try:
            be = registry.get_backend(saved)
            if not be.is_available():
                be = registry.get_backend("numpy")
        except ValueError:
            be = registry.get_backend("numpy")
    else:
        be = registry.get_backend(backend)
        be.require()
    est.backend = be.name
    dt = meta.get("dtype", "float64")
    if dt not in be.float_dtypes():
        dt = be.default_dtype()
    model = registry.get_model(meta["model"])
    if model.task == "classification" and (
        classes is None or classes.ndim != 1 or W.shape[1] != model.n_outputs(len(classes), 1)
    ):
        raise ModelFileError(
            f"{spath!r}: the class labels are missing or do not match the parameters"
        )
    est._model_obj = model
    est._backend_obj = be
    est.backend_ = be.name
    est.n_features_in_ = d
    est._y_shape = int(meta.get("y_ndim", 1))
    if meta.get("n_targets") is not None:
        est._n_targets = int(meta["n_targets"])
    est._dtype = dt
    if classes is not None:
        est.classes_ = classes
    dev = be.default_device()
    try:
        history = {
            k: np.asarray(v, dtype=np.float64).reshape(-1, 1) for k, v in meta["history"].items()
        }
    except (TypeError, ValueError):
        raise ModelFileError(f"{spath!r}: metadata field 'history' is invalid") from None
    est._set_params(
        be.from_numpy(W, dtype=dt, device=dev),
        be.from_numpy(b, dtype=dt, device=dev),
        history,
        int(meta.get("n_epochs", 0)),
    )
    return est
