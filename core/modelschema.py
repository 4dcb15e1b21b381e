"""What a model file may contain: size caps, the metadata schema, arrays read header first.

A model file comes from somewhere else (a colleague, a download), so the
reader (:func:`anyglm.modelfile.read`) trusts nothing in it. Before it
allocates anything it checks the zip directory against :class:`Caps` (number
of members, total uncompressed size, how much each member inflates), the
JSON metadata against a size and a nesting-depth limit, and each array's
``.npy`` header (dtype, shape, declared size) against the caps and the size
the zip directory gives. Then every metadata field is checked for its type
and range, and every array for its shape and finiteness. Each problem is a
:class:`~anyglm.ModelFileError` naming the file and the field or array.

The caps
--------
``max_bytes``
    Total uncompressed size of the file's members, default
    :data:`MAX_BYTES` (1 GiB). Raise it for a larger model with
    ``anyglm.load(path, max_bytes=...)`` or the ``ANYGLM_MAX_MODEL_BYTES``
    environment variable (bytes).
``max_ratio``
    How many times its compressed size a member larger than
    :data:`RATIO_FLOOR` (16 MiB) may inflate to, default :data:`MAX_RATIO`
    (200). Parameters compress to about 90 % of their size; only long runs of
    identical bytes, what a zip bomb is made of, go past 200. Environment
    variable ``ANYGLM_MAX_MODEL_RATIO``.

Fixed limits: :data:`MAX_MEMBERS` members, :data:`MAX_METADATA_BYTES` of
metadata, JSON nested at most :data:`MAX_JSON_DEPTH` deep, ``.npy`` headers
of at most :data:`MAX_HEADER_BYTES`.
"""

from __future__ import annotations

import math
import os
import re
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import ModelFileError

__all__ = [
    "MAX_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_JSON_DEPTH",
    "MAX_MEMBERS",
    "MAX_METADATA_BYTES",
    "MAX_RATIO",
    "RATIO_FLOOR",
    "Caps",
    "check_arrays",
    "check_directory",
    "check_metadata",
    "json_depth",
    "read_npy",
]

#: Default cap on the total uncompressed size of a model file's members (1 GiB).
MAX_BYTES = 1 << 30
#: Default cap on uncompressed / compressed size of a member above :data:`RATIO_FLOOR`.
MAX_RATIO = 200.0
#: Members smaller than this (16 MiB) are not held to :data:`MAX_RATIO`.
RATIO_FLOOR = 16 << 20
#: Members a model file may have (a checkpoint has about ten).
MAX_MEMBERS = 64
#: Largest ``metadata.json`` (16 MiB; a history of a million epochs fits).
MAX_METADATA_BYTES = 16 << 20
#: Deepest nesting of lists and objects in ``metadata.json``.
MAX_JSON_DEPTH = 64
#: Largest ``.npy`` header.
MAX_HEADER_BYTES = 10_000


def _env_number(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not a number") from None
    if not value > 0:
        raise ValueError(f"{name}={raw!r} must be positive")
    return value


@dataclass(frozen=True)
class Caps:
    """The limits a model file is read under (see the module docstring).

    Examples
    --------
    >>> from anyglm.modelschema import Caps
    >>> Caps.resolve(max_bytes=1000).max_bytes
    1000
    """

    max_bytes: int = MAX_BYTES
    max_ratio: float = MAX_RATIO

    @classmethod
    def resolve(cls, max_bytes: int | None = None) -> Caps:
        """The caps for one read: ``max_bytes`` if given, else the environment, else defaults.

        Examples
        --------
        >>> from anyglm.modelschema import MAX_BYTES, Caps
        >>> Caps.resolve().max_bytes == MAX_BYTES  # with ANYGLM_MAX_MODEL_BYTES unset
        True
        """
        if max_bytes is None:
            max_bytes = int(_env_number("ANYGLM_MAX_MODEL_BYTES", MAX_BYTES))
        elif isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
        return cls(int(max_bytes), _env_number("ANYGLM_MAX_MODEL_RATIO", MAX_RATIO))


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"  # pragma: no cover


_OVERRIDE = "anyglm.load(path, max_bytes=...) or ANYGLM_MAX_MODEL_BYTES"


def check_directory(zf: zipfile.ZipFile, path: str, caps: Caps) -> None:
    """Check the zip directory (member count, sizes, inflation) before reading any member.

    Examples
    --------
    >>> import io, zipfile
    >>> from anyglm.modelschema import Caps, check_directory
    >>> buf = io.BytesIO()
    >>> with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
    ...     zf.writestr("W.npy", bytes(40 << 20))  # 40 MiB of zeros
    >>> check_directory(zipfile.ZipFile(buf), "bomb.anyglm", Caps())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    anyglm.errors.ModelFileError: 'bomb.anyglm': member W.npy inflates ... times its ...
    """
    infos = zf.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(
            f"{path!r} has {len(infos)} members; a model file has at most {MAX_MEMBERS}"
        )
    total = 0
    for info in infos:
        total += info.file_size
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > RATIO_FLOOR and ratio > caps.max_ratio:
            raise ModelFileError(
                f"{path!r}: member {info.filename} inflates {ratio:.0f} times its compressed "
                f"size ({_size(info.compress_size)} to {_size(info.file_size)}; the cap is "
                f"{caps.max_ratio:g}, ANYGLM_MAX_MODEL_RATIO); refusing what looks like a zip "
                "bomb"
            )
    if total > caps.max_bytes:
        raise ModelFileError(
            f"{path!r} holds {_size(total)} uncompressed, more than the cap of "
            f"{_size(caps.max_bytes)}; if you trust the file, raise the cap with {_OVERRIDE}"
        )


_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)


def json_depth(raw: bytes) -> int:
    """The deepest nesting of ``[``/``{`` in JSON text, without parsing it (strings skipped).

    Examples
    --------
    >>> from anyglm.modelschema import json_depth
    >>> json_depth(b'{"a": [[1], "[[["], "b": {}}')
    3
    """
    if not raw:
        return 0
    codes = np.frombuffer(_STRING.sub(b'""', raw), dtype=np.uint8)
    step = np.isin(codes, (0x5B, 0x7B)).astype(np.int64) - np.isin(codes, (0x5D, 0x7D))
    return int(np.max(np.cumsum(step), initial=0))


def read_npy(fh: Any, info: zipfile.ZipInfo, path: str, caps: Caps) -> np.ndarray:
    """Read one ``.npy`` member: header first, checked, then exactly the declared bytes.

    Refused before anything is allocated: a header that is not ``.npy``
    version 1 or 2, larger than :data:`MAX_HEADER_BYTES`, a dtype that needs
    pickle or is not a plain number, boolean or string, a shape whose size
    exceeds the cap or disagrees with the member's size in the zip directory.

    Examples
    --------
    >>> import io, zipfile, numpy as np
    >>> from anyglm.modelschema import Caps, read_npy
    >>> buf = io.BytesIO()
    >>> np.lib.format.write_array_header_1_0(
    ...     buf, {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6)})
    >>> with zipfile.ZipFile(zbuf := io.BytesIO(), "w") as zf:
    ...     zf.writestr("W.npy", buf.getvalue())
    >>> zf = zipfile.ZipFile(zbuf)
    >>> with zf.open("W.npy") as fh:  # doctest: +ELLIPSIS
    ...     read_npy(fh, zf.getinfo("W.npy"), "m.anyglm", Caps())
    Traceback (most recent call last):
    ...
    anyglm.errors.ModelFileError: 'm.anyglm': array W.npy declares shape (1000000, 1000000) ...
    """
    name = info.filename
    try:
        version = np.lib.format.read_magic(fh)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(
                fh, max_header_size=MAX_HEADER_BYTES
            )
        elif version == (2, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(
                fh, max_header_size=MAX_HEADER_BYTES
            )
        else:
            raise ValueError(f".npy format version {version} is not supported")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path!r}: array {name} is unreadable ({exc})") from None
    if dtype.hasobject or dtype.kind not in "biufUS" or dtype.fields is not None:
        raise ModelFileError(
            f"{path!r}: array {name} has dtype {dtype}; a model file holds numbers, booleans "
            "and strings only (arrays that need pickle are refused)"
        )
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    header = fh.tell()
    if nbytes > caps.max_bytes:
        raise ModelFileError(
            f"{path!r}: array {name} declares shape {shape} of {dtype} ({_size(nbytes)}), "
            f"more than the cap of {_size(caps.max_bytes)}; if you trust the file, raise it "
            f"with {_OVERRIDE}"
        )
    if header + nbytes != info.file_size:
        raise ModelFileError(
            f"{path!r}: array {name} declares shape {shape} of {dtype} ({_size(nbytes)}) but "
            f"the member holds {_size(max(info.file_size - header, 0))} of data"
        )
    out = np.empty(count, dtype=dtype)
    view = memoryview(out.view(np.uint8)) if nbytes else memoryview(b"")  # type: ignore[arg-type]
    done = 0
    try:
        while done < nbytes:
            got = fh.readinto(view[done:])
            if not got:
                raise EOFError("the member ends early")
            done += got
        if fh.read(1):  # also makes zipfile check the CRC
            raise ValueError("data after the array")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"{path!r}: array {name} is unreadable ({exc})") from None
    return out.reshape(shape, order="F" if fortran else "C")


# -- metadata -----------------------------------------------------------------------------------


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _field(path: str, key: str, value: Any, want: str) -> ModelFileError:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    return ModelFileError(f"{path!r}: metadata field {key!r} must be {want}, got {shown}")


def _opt_int(meta: dict[str, Any], key: str, path: str, low: int, high: float) -> None:
    v = meta.get(key)
    if v is not None and not (_is_int(v) and low <= v <= high):
        raise _field(path, key, v, f"an int in [{low}, {high:g}]")


def _history(value: Any, key: str, path: str) -> None:
    if not isinstance(value, dict):
        raise _field(path, key, value, "a dict of lists of numbers")
    for name, rows in value.items():
        if not (isinstance(rows, list) and all(_is_number(r) for r in rows)):
            raise _field(path, f"{key}.{name}", rows, "a list of numbers")


_COUNTERS = {
    "best": _is_number,
    "stale": _is_int,
    "lr_scale": _is_number,
    "stopped_at": _is_int,
    "diverged_at": _is_int,
}


def _checkpoint(ck: Any, path: str) -> None:
    if not isinstance(ck, dict):
        raise _field(path, "checkpoint", ck, "a dict")
    for key in ("epoch", "n_train"):
        if key in ck and not (_is_int(ck[key]) and ck[key] >= 0):
            raise _field(path, f"checkpoint.{key}", ck[key], "an int >= 0")
    for key in ("rng_state", "initial_rng_state"):
        if key in ck and not isinstance(ck[key], dict):
            raise _field(path, f"checkpoint.{key}", ck[key], "a dict")
    trainer = ck.get("trainer")
    if trainer is None:
        return
    if not isinstance(trainer, dict):
        raise _field(path, "checkpoint.trainer", trainer, "a dict")
    if "t" in trainer and not (_is_int(trainer["t"]) and trainer["t"] >= 0):
        raise _field(path, "checkpoint.trainer.t", trainer["t"], "an int >= 0")
    start = trainer.get("average_from")
    if start is not None and not (_is_int(start) and start >= 0):
        raise _field(path, "checkpoint.trainer.average_from", start, "an int >= 0 or null")
    for key, ok in _COUNTERS.items():
        if key in trainer and not (
            isinstance(trainer[key], list) and all(ok(v) for v in trainer[key])
        ):
            raise _field(path, f"checkpoint.trainer.{key}", trainer[key], "a list of numbers")


_REQUIRED = {
    "estimator": str,
    "model": str,
    "params": dict,
    "n_features_in": int,
    "history": dict,
    "dtype": str,
}


def check_metadata(meta: dict[str, Any], path: str) -> None:
    """Check the type and range of every metadata field anyglm reads.

    Examples
    --------
    >>> from anyglm.modelschema import check_metadata
    >>> meta = {"estimator": "LinearRegression", "model": "linear", "params": {},
    ...         "n_features_in": 2, "history": {}, "dtype": "float64", "n_epochs": "abc"}
    >>> check_metadata(meta, "m.anyglm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    anyglm.errors.ModelFileError: 'm.anyglm': metadata field 'n_epochs' must be an int ...
    """
    for key, kind in _REQUIRED.items():
        value = meta.get(key)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise ModelFileError(
                f"{path!r}: metadata field {key!r} is missing or not a {kind.__name__}"
            )
    if meta["dtype"] not in ("float32", "float64"):
        raise _field(path, "dtype", meta["dtype"], "'float32' or 'float64'")
    for key in ("estimator", "model", "backend", "anyglm_version"):
        value = meta.get(key)
        if value is not None and not (isinstance(value, str) and 0 < len(value) <= 200):
            raise _field(path, key, value, "a name (a string of 1 to 200 characters)")
    _opt_int(meta, "n_features_in", path, 1, 1e12)
    _opt_int(meta, "n_epochs", path, 0, 1e12)
    _opt_int(meta, "n_targets", path, 1, 1e12)
    if meta.get("y_ndim", 1) not in (1, 2) or isinstance(meta.get("y_ndim"), bool):
        raise _field(path, "y_ndim", meta.get("y_ndim"), "1 or 2")
    _history(meta["history"], "history", path)
    names = meta.get("feature_names_in")
    if names is not None and not (
        isinstance(names, list)
        and len(names) == meta["n_features_in"]
        and all(isinstance(n, str) for n in names)
    ):
        raise _field(
            path, "feature_names_in", names, f"a list of {meta['n_features_in']} strings or null"
        )
    user = meta.get("user_metadata")
    if user is not None and not isinstance(user, dict):
        raise _field(path, "user_metadata", user, "a dict")
    if "checkpoint" in meta:
        _checkpoint(meta["checkpoint"], path)


def check_arrays(meta: dict[str, Any], arrays: dict[str, np.ndarray], path: str) -> None:
    """Check the arrays' presence, shapes against the metadata, and finiteness.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.modelschema import check_arrays
    >>> meta = {"n_features_in": 2}
    >>> W = np.array([[1.0], [np.nan]])
    >>> check_arrays(meta, {"W": W, "b": np.zeros(1)}, "m.anyglm")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    anyglm.errors.ModelFileError: 'm.anyglm': array W.npy holds NaN or infinity (at index (1, 0)...
    """
    for name in ("W", "b"):
        if name not in arrays:
            raise ModelFileError(
                f"{path!r} is not a complete anyglm model file: {name}.npy is missing"
            )
    W, b = arrays["W"], arrays["b"]
    d = meta["n_features_in"]
    if W.ndim != 2 or W.shape[0] != d or W.shape[1] < 1 or b.shape != (W.shape[1],):
        raise ModelFileError(
            f"{path!r}: parameter shapes {W.shape}, {b.shape} do not match "
            f"n_features_in={d} (W must be (n_features_in, n_outputs), b (n_outputs,))"
        )
    n_targets = meta.get("n_targets")
    if n_targets is not None and meta.get("y_ndim", 1) == 1 and n_targets != 1:
        raise _field(path, "n_targets", n_targets, "1 for a 1-D target (y_ndim=1)")
    if n_targets is not None and "classes" not in arrays and W.shape[1] != n_targets:
        raise ModelFileError(
            f"{path!r}: metadata field 'n_targets' is {n_targets} but W.npy has "
            f"{W.shape[1]} output columns"
        )
    for name, a in arrays.items():
        if name == "classes":
            if a.ndim != 1 or len(a) < 2:
                raise ModelFileError(
                    f"{path!r}: array classes.npy must be 1-D with at least two labels, "
                    f"got shape {a.shape}"
                )
            continue
        if a.dtype.kind != "f":
            what = "parameters are" if name in ("W", "b") else f"array {name}.npy is"
            raise ModelFileError(f"{path!r}: {what} not floating point (dtype {a.dtype})")
        if name.startswith("train/") and a.ndim > 2:
            raise ModelFileError(f"{path!r}: array {name}.npy has shape {a.shape}")
        bad = ~np.isfinite(a)
        if bad.any():
            where = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ModelFileError(
                f"{path!r}: array {name}.npy holds NaN or infinity (at index {where}); a saved "
                "model's parameters are finite"
            )
    for name in ("train/W", "train/b"):
        ref = W if name == "train/W" else b
        if name in arrays and arrays[name].shape != ref.shape:
            raise ModelFileError(
                f"{path!r}: array {name}.npy has shape {arrays[name].shape}, "
                f"the parameters {ref.shape}"
            )
