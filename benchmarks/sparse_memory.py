"""Sparse input trains without densifying: peak memory of a fit on a large CSR matrix.

Builds a SciPy CSR matrix of 100,000 x 100,000 with 0.1 % non-zeros (1e7
values, about 120 MB; dense it would be 80 GB in float64, 40 GB in float32),
then fits one epoch of logistic and of softmax regression on it, each in a
fresh process, and prints the peak resident memory of each process, the epoch
time and the training accuracy. The issue's target: peak <= 2 GB.

Usage::

    python benchmarks/sparse_memory.py [--n 100000] [--d 100000] [--density 0.001]
                                       [--epochs 1] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np, scipy.sparse as sp, anyglm
n, d, density, epochs, model, seed = sys.argv[1:7]
n, d, epochs, seed = int(n), int(d), int(epochs), int(seed)
rng = np.random.default_rng(seed)
X = sp.random(n, d, density=float(density), format="csr", random_state=rng, dtype=np.float64)
X.data *= 3.0
w = np.zeros(d)
w[rng.choice(d, 50, replace=False)] = rng.normal(size=50) * 3
score = X @ w
if model == "logistic":
    y = (score > np.median(score)).astype(int)
else:
    y = np.digitize(score, np.quantile(score, [0.1 * k for k in range(1, 10)]))
built = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
est = anyglm.Estimator(model, epochs=epochs, batch_size=256, learning_rate=0.1,
                       random_state=0).fit(X, y)
fit_s = time.perf_counter() - t0
acc = est.score(X[:20000], y[:20000])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"model": model, "nnz": int(X.nnz), "csr_mb": (X.data.nbytes + X.indices.nbytes
      + X.indptr.nbytes) / 2**20, "rss_after_building_mb": built, "peak_rss_mb": peak,
      "fit_s": fit_s, "train_accuracy_first_20000": acc,
      "dense_float64_gb": n * d * 8 / 1e9}))
"""


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=100_000)
    p.add_argument("--d", type=int, default=100_000)
    p.add_argument("--density", type=float, default=0.001)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    rows = []
    for model in ("logistic", "softmax"):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(args.n), str(args.d), str(args.density),
             str(args.epochs), model, "0"],
            check=True, capture_output=True, text=True,
        )  # fmt: skip
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "target_peak_mb": 2048,
    }
    print(f"{args.n} x {args.d} CSR, density {args.density}, {args.epochs} epoch(s), batch 256")
    print(f"{'model':<9} {'nnz':>10} {'CSR MB':>7} {'peak RSS MB':>12} {'fit s':>7} "
          f"{'train acc':>9}  dense would be")  # fmt: skip
    for r in rows:
        print(f"{r['model']:<9} {r['nnz']:>10} {r['csr_mb']:>7.0f} {r['peak_rss_mb']:>12.0f} "
              f"{r['fit_s']:>7.1f} {r['train_accuracy_first_20000']:>9.3f}  "
              f"{r['dense_float64_gb']:.0f} GB (float64)")  # fmt: skip
    ok = all(r["peak_rss_mb"] <= meta["target_peak_mb"] for r in rows)
    print(f"target peak <= {meta['target_peak_mb']} MB: {'holds' if ok else 'FAILS'}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump({"meta": meta, "rows": rows}, fh, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
