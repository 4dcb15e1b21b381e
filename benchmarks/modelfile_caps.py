"""How fast, and in how little memory, anyglm refuses crafted model files.

Builds one hostile variant of a small valid model file per case (a 10^6 x 10^6
array header, a 1 MB zip bomb that inflates to 1 GB, 100,000 nested ``[`` in
the metadata, a field of the wrong type, NaN weights, shapes that disagree),
then loads each in a fresh Python process and reports the time to the
``ModelFileError`` and the memory it took: the peak traced by ``tracemalloc``
(NumPy reports its buffers there) and the growth of the process's maximum
resident set size, both counted from after the imports. Targets: under 1 s and
100 MB each.

Usage::

    python benchmarks/modelfile_caps.py              # a table
    python benchmarks/modelfile_caps.py --json out.json
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

PROBE = r"""
import json, resource, sys, time, tracemalloc
import anyglm
anyglm.load, anyglm.LinearRegression  # imported before the clock starts (scikit-learn too)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
tracemalloc.start()
t0 = time.perf_counter()
try:
    anyglm.load(sys.argv[1])
    outcome = "loaded"
except anyglm.ModelFileError as err:
    outcome = "ModelFileError: " + str(err).split(": ", 1)[-1][:90]
except BaseException as err:  # what the reader must never let through
    outcome = f"{type(err).__name__}: {str(err)[:90]}"
seconds = time.perf_counter() - t0
peak = tracemalloc.get_traced_memory()[1]
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"seconds": seconds, "traced_peak_mb": peak / 2**20,
                  "rss_growth_mb": (after - before) / 1024, "outcome": outcome}))
"""


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def _header(shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _copy(src: Path, dst: Path, replace: dict[str, bytes]) -> None:
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
        for name in zi.namelist():
            if name not in replace:
                zo.writestr(name, zi.read(name))
        for name, data in replace.items():
            zo.writestr(name, data)


def _edit(src: Path, dst: Path, key: str, value: object) -> None:
    with zipfile.ZipFile(src) as zf:
        meta = json.loads(zf.read("metadata.json"))
    meta[key] = value
    _copy(src, dst, {"metadata.json": json.dumps(meta).encode()})


def _bomb(src: Path, dst: Path, gigabytes: float = 1.0) -> None:
    """W.npy replaced by a header and ``gigabytes`` of zeros, streamed (never in memory)."""
    n = int(gigabytes * 1e9) // 8
    chunk = bytes(1 << 24)
    with zipfile.ZipFile(src) as zi, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zo:
        for name in zi.namelist():
            if name != "W.npy":
                zo.writestr(name, zi.read(name))
        with zo.open("W.npy", "w", force_zip64=True) as fh:
            fh.write(_header((n,)))
            left = n * 8
            while left:
                step = min(left, len(chunk))
                fh.write(chunk[:step])
                left -= step


CASES: dict[str, Callable[[Path, Path], None]] = {
    "header declaring (10^6, 10^6)": lambda s, d: _copy(
        s, d, {"W.npy": _header((10**6, 10**6)) + bytes(64)}
    ),
    "zip bomb (1 GB of zeros)": _bomb,
    "100,000 nested [ in metadata": lambda s, d: _copy(s, d, {"metadata.json": b"[" * 100_000}),
    'n_epochs: "abc"': lambda s, d: _edit(s, d, "n_epochs", "abc"),
    "NaN weights": lambda s, d: _copy(s, d, {"W.npy": _npy(np.full((64, 10), np.nan))}),
    "n_features_in disagreeing with W": lambda s, d: _edit(s, d, "n_features_in", 65),
    "n_targets (3) disagreeing with W (2)": lambda s, d: _edit(s, d, "n_targets", 3),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()
    import anyglm

    X, y = anyglm.datasets.load_dataset("digits")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        valid = Path(tmp) / "valid.anyglm"
        once = {"epochs": 1, "n_iter_no_change": None, "random_state": 0}
        anyglm.SoftmaxRegression(**once).fit(X, y).save(valid)
        regression = Path(tmp) / "regression.anyglm"
        two = np.stack([y, -y], axis=1).astype(np.float64)
        anyglm.LinearRegression(**once).fit(X, two).save(regression)
        for name, build in [("valid file (for scale)", None), *CASES.items()]:
            path = valid if build is None else Path(tmp) / "crafted.anyglm"
            if build is not None:
                build(regression if "n_targets" in name else valid, path)
            out = subprocess.run(
                [sys.executable, "-c", PROBE, str(path)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = {"case": name, "file_bytes": path.stat().st_size, **json.loads(out.stdout)}
            rows.append(row)
            print(
                f"{name:32s} {row['file_bytes'] / 2**20:8.2f} MB file  "
                f"{row['seconds'] * 1000:8.1f} ms  traced peak {row['traced_peak_mb']:7.2f} MB  "
                f"RSS growth {row['rss_growth_mb']:7.2f} MB  {row['outcome']}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
