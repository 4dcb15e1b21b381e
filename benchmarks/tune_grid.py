"""Vectorised tuning against looping single fits over the same grid.

The grid of issue 4: 4 batch sizes x 4 learning rates x 3 epoch counts x 4
alphas (192 configurations), softmax regression on synthetic data shaped like
Fashion-MNIST (60000 x 784 float32, 10 classes), scored on a validation split.
``anyglm.tune`` trains the 16 (learning rate, alpha) settings of a batch size
in one pass and reads the epoch counts off the longest run; the baseline fits
each configuration on its own, as a loop over ``Estimator.fit`` would. Both
must find the same best configuration.

Usage::

    python benchmarks/tune_grid.py              # full size (a few minutes on 2 cores)
    python benchmarks/tune_grid.py --n 10000    # smaller
    python benchmarks/tune_grid.py --json out.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import platform
import time

import anyglm
import numpy as np

GRID = {
    "batch_size": [128, 256, 512, 1024],
    "learning_rate": [0.001, 0.01, 0.1, 1.0],
    "epochs": [1, 2, 3],
    "alpha": [0.0, 1e-4, 1e-3, 1e-2],
}


def synthetic(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A planted softmax model with noise: learnable, but not trivially."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)).astype(np.float32)
    W = rng.normal(size=(d, classes)).astype(np.float32) / np.sqrt(d)
    logits = X @ W * 8 + rng.gumbel(size=(n, classes)).astype(np.float32)
    return X, np.argmax(logits, axis=1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=60000)
    p.add_argument("--d", type=int, default=784)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--repeats", type=int, default=1, help="runs of each side; medians reported")
    p.add_argument("--json", help="write the results here")
    args = p.parse_args()

    X, y = synthetic(args.n, args.d, args.classes)
    n_val = args.n // 6
    perm = np.random.default_rng(0).permutation(args.n)
    val, tr = np.sort(perm[:n_val]), np.sort(perm[n_val:])
    X_tr, y_tr, X_val, y_val = X[tr], y[tr], X[val], y[val]
    configs = [dict(zip(GRID, c, strict=True)) for c in itertools.product(*GRID.values())]
    machine = platform.processor() or platform.machine()
    print(f"{len(configs)} configurations, X {X_tr.shape} float32, {machine}")

    def vectorised() -> anyglm.TuneResult:
        return anyglm.tune(
            "softmax",
            X_tr,
            y_tr,
            grid=GRID,
            validation_data=(X_val, y_val),
            refit=False,
            random_state=0,
        )

    def loop() -> dict:
        rows = []
        for cfg in configs:
            est = anyglm.Estimator("softmax", random_state=0, **cfg)
            try:
                est.fit(X_tr, y_tr, validation_data=(X_val, y_val))
            except anyglm.DivergenceError:
                continue
            rows.append((est.history_["val_score"][-1], -est.history_["val_loss"][-1], cfg))
        return max(rows, key=lambda r: (r[0], r[1]))[2]

    t_vec, t_loop, ratios = [], [], []
    for rep in range(args.repeats):
        # Alternate the order so drift on a shared machine hits both sides alike.
        for side in ("vec", "loop") if rep % 2 == 0 else ("loop", "vec"):
            t0 = time.perf_counter()
            if side == "vec":
                res = vectorised()
                t_vec.append(time.perf_counter() - t0)
            else:
                best_loop = loop()
                t_loop.append(time.perf_counter() - t0)
        ratios.append(t_loop[-1] / t_vec[-1])
    med = float(np.median(ratios))
    print(
        f"anyglm.tune (vectorised): median {np.median(t_vec):.1f} s, best {res.best_params} "
        f"val accuracy {res.best_score:.4f}"
    )
    print(f"loop of single fits:      median {np.median(t_loop):.1f} s, best {best_loop}")
    same = best_loop == res.best_params
    print(
        f"speed-up: median {med:.2f}x over {args.repeats} run(s) "
        f"(each {', '.join(f'{r:.2f}' for r in ratios)}); same best configuration: {same}"
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(
                {
                    "n": args.n,
                    "d": args.d,
                    "configurations": len(configs),
                    "vectorised_s": t_vec,
                    "loop_s": t_loop,
                    "speedups": ratios,
                    "median_speedup": med,
                    "same_best": same,
                    "best": res.best_params,
                },
                fh,
                indent=2,
            )


if __name__ == "__main__":
    main()
