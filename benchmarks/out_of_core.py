"""Data larger than memory: one epoch on a memory-mapped ``.npy``, in a fresh process.

Writes (once; ``--path`` reuses it) a float32 ``.npy`` of ``--rows`` x 784
features shaped like Fashion-MNIST (``benchmarks/epoch.py``'s kind of data, drawn
chunk by chunk, never whole in memory) and its labels, plus 10,000 held-out
rows. The features are not standardised (they are close to zero mean and
unit variance by construction).
Then, each in a fresh process, with the file in the page cache:

* **disk**: ``np.load(path, mmap_mode="r")`` and one epoch of
  ``SoftmaxRegression(batch_size=1024, epochs=1)`` (every other parameter at
  its default): peak resident memory, fit time, the epoch's own time (from the
  end of the pass that derives the defaults to the end of the epoch), and
  held-out accuracy;
* **quarter**: the same on the first quarter of the rows (memory must not grow
  with the rows);
* **memory**: the same rows read into memory first (``np.load`` without
  ``mmap_mode``), the same fit.

The issue's targets: disk peak <= 1.0 GB; the disk epoch <= 1.3 x the memory
epoch; held-out accuracy within 0.5 points of the memory fit; the quarter's
peak within 10 % of the full one's.

Usage::

    python benchmarks/out_of_core.py [--rows 2000000] [--path DIR] [--keep] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
D, CLASSES, N_TEST, CHUNK = 784, 10, 10_000, 100_000

CHILD = r"""
import json, sys, time

def hwm_mb():  # peak resident memory since the last reset (Linux)
    with open("/proc/self/status") as fh:
        line = next(l for l in fh if l.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024

# A fork keeps its parent's peak: start this process's own count here.
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
import numpy as np, anyglm, anyglm.stepsize as stepsize
mode, folder, rows = sys.argv[1], sys.argv[2], int(sys.argv[3])
X = np.load(folder + "/X.npy", mmap_mode="r")[:rows]
y = np.load(folder + "/y.npy")[:rows]
X_te, y_te = np.load(folder + "/X_test.npy"), np.load(folder + "/y_test.npy")
if mode == "memory":
    X = np.ascontiguousarray(X)  # read the rows into memory
    assert type(X) is np.ndarray
marks = {}
real_scan = stepsize.scan
def scan(*a, **k):  # the pass that derives the defaults: the epoch starts after it
    out = real_scan(*a, **k)
    marks["scan_end"] = time.perf_counter()
    return out
stepsize.scan = scan  # resolve() looks scan up in its module when it runs
def at_epoch_end(logs):
    marks["epoch_end"] = time.perf_counter()
# Warm up: numba loads (or compiles) its loop at the first large block; do that on 2048
# test rows, outside the timing, with the loop's size threshold off for that one fit.
import os
os.environ["ANYGLM_NUMBA_MIN_ELEMENTS"] = "0"
anyglm.SoftmaxRegression(batch_size=1024, epochs=1).fit(X_te[:2048], y_te[:2048])
del os.environ["ANYGLM_NUMBA_MIN_ELEMENTS"]
with open("/proc/self/clear_refs", "w") as fh:
    fh.write("5")
base = hwm_mb()
t0 = time.perf_counter()
est = anyglm.SoftmaxRegression(batch_size=1024, epochs=1, random_state=0)
est.fit(X, y, callback=at_epoch_end)
fit_s = time.perf_counter() - t0
peak = hwm_mb()
print(json.dumps({"mode": mode, "rows": rows, "peak_rss_mb": peak, "rss_before_fit_mb": base,
                  "fit_s": fit_s, "epoch_s": marks["epoch_end"] - marks["scan_end"],
                  "accuracy": est.score(X_te, y_te), "learning_rate": est.learning_rate_}))
"""


class Planted:
    """``benchmarks/epoch.py``'s data (rows ``U @ B + 0.5 noise``, labels from a planted
    softmax model of ``U``), drawn chunk by chunk with one planted model."""

    def __init__(self, latent: int = 32) -> None:
        rng = np.random.default_rng(0)
        self.latent = latent
        self.B = rng.standard_normal((latent, D), dtype=np.float32) / np.float32(np.sqrt(latent))
        self.W_u = rng.standard_normal((latent, CLASSES), dtype=np.float32) * np.float32(
            4 / np.sqrt(latent)
        )

    def chunk(self, rows: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        U = rng.standard_normal((rows, self.latent), dtype=np.float32)
        X = U @ self.B
        X += np.float32(0.5) * rng.standard_normal(X.shape, dtype=np.float32)
        Z = U @ self.W_u
        y = np.argmax(Z + rng.gumbel(size=Z.shape).astype(np.float32), axis=1)
        return X, y.astype(np.int64)


def write_data(folder: Path, rows: int) -> None:
    """X.npy, y.npy (training) and X_test.npy, y_test.npy, written chunk by chunk."""
    planted = Planted()
    X = np.lib.format.open_memmap(folder / "X.npy", mode="w+", dtype=np.float32, shape=(rows, D))
    y = np.empty(rows, dtype=np.int64)
    for start in range(0, rows, CHUNK):
        stop = min(start + CHUNK, rows)
        X[start:stop], y[start:stop] = planted.chunk(stop - start, seed=1 + start // CHUNK)
    X.flush()
    del X
    np.save(folder / "y.npy", y)
    X_test, y_test = planted.chunk(N_TEST, seed=10**6)
    np.save(folder / "X_test.npy", X_test)
    np.save(folder / "y_test.npy", y_test)


def warm(folder: Path) -> float:
    """Read every file once, so the runs find them in the page cache; returns seconds."""
    t0 = time.perf_counter()
    for name in ("X.npy", "y.npy", "X_test.npy", "y_test.npy"):
        with open(folder / name, "rb") as fh:
            while fh.read(64 * 2**20):
                pass
    return time.perf_counter() - t0


def run(mode: str, folder: Path, rows: int) -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-c", CHILD, mode, str(folder), str(rows)],
                         check=True, capture_output=True, text=True)  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--path", metavar="DIR", help="folder for the data (reused if present)")
    p.add_argument("--keep", action="store_true", help="keep the data written to a temp folder")
    p.add_argument("--repeats", type=int, default=1, help="runs of each mode (medians)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    folder = Path(args.path) if args.path else Path(tempfile.mkdtemp(prefix="anyglm-ooc-"))
    folder.mkdir(parents=True, exist_ok=True)
    made = not (folder / "X.npy").exists()
    try:
        if made:
            t0 = time.perf_counter()
            write_data(folder, args.rows)
            print(f"wrote {args.rows} x {D} float32 ({args.rows * D * 4 / 1e9:.1f} GB) to "
                  f"{folder} in {time.perf_counter() - t0:.0f} s")  # fmt: skip
        rows = int(np.load(folder / "X.npy", mmap_mode="r").shape[0])
        print(f"page cache warmed in {warm(folder):.1f} s")
        modes = [("disk", rows), ("quarter", rows // 4), ("memory", rows)]
        results: dict[str, list[dict[str, Any]]] = {m: [] for m, _ in modes}
        for _ in range(args.repeats):
            for mode, n in modes:
                results[mode].append(run("disk" if mode == "quarter" else mode, folder, n))

        def med(mode: str, key: str) -> float:
            return float(np.median([r[key] for r in results[mode]]))

        print(f"{'run':<8} {'rows':>9} {'peak RSS MB':>11} {'fit s':>7} {'epoch s':>8} "
              f"{'accuracy':>8}")  # fmt: skip
        for mode, n in modes:
            print(f"{mode:<8} {n:>9} {med(mode, 'peak_rss_mb'):>11.0f} {med(mode, 'fit_s'):>7.2f} "
                  f"{med(mode, 'epoch_s'):>8.2f} {med(mode, 'accuracy'):>8.4f}")  # fmt: skip
        checks = {
            "disk peak <= 1.0 GB": med("disk", "peak_rss_mb") <= 1024,
            "disk epoch <= 1.3 x memory epoch": med("disk", "epoch_s")
            <= 1.3 * med("memory", "epoch_s"),
            "accuracy within 0.5 points of memory": abs(med("disk", "accuracy")
                                                        - med("memory", "accuracy")) <= 0.005,
            "quarter peak within 10 % of full": abs(med("quarter", "peak_rss_mb")
                                                    - med("disk", "peak_rss_mb"))
            <= 0.10 * med("disk", "peak_rss_mb"),
        }  # fmt: skip
        ratio = med("disk", "epoch_s") / med("memory", "epoch_s")
        print(f"disk epoch / memory epoch: {ratio:.2f}")
        for name, ok in checks.items():
            print(f"  {name}: {'holds' if ok else 'FAILS'}")
        if args.json:
            meta = {
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                "machine": platform.platform(),
                "cpus": os.cpu_count(),
                "rows": rows,
            }
            report = {"meta": meta, "runs": results, "checks": checks}
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 0 if all(checks.values()) else 1
    finally:
        if made and not args.path and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
