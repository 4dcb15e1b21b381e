"""Defaults that converge: anyglm at its defaults against scikit-learn's, on real data.

For every data set: an 80/20 split (``--seeds`` of them, stratified for
classifiers), features standardised on the training part, then anyglm's
``LogisticRegression`` / ``SoftmaxRegression`` / ``LinearRegression`` with every
hyperparameter at its default next to scikit-learn's ``LogisticRegression()``
/ ``Ridge()`` (the exact optimum of their objective) and ``SGDClassifier(
loss="log_loss")`` / ``SGDRegressor()`` at their defaults. Held-out accuracy
or R^2, epochs and seconds.

The targets (issue 14): anyglm's score within ``max(0.01, one test row)`` of
``LogisticRegression()`` / ``Ridge()``, and never more than ``max(0.005, one
test row)`` below ``SGDClassifier`` / ``SGDRegressor``.

Then ``--fmnist``: FMNIST-shaped synthetic data (60,000 x 784 float32, 10
planted classes, standardised; ``benchmarks/epoch.py``'s generator), a default
``SoftmaxRegression().fit`` against ``SGDClassifier(loss="log_loss").fit`` at
its defaults, both timed in this process: target at least 30 x faster, with
held-out accuracy at least as high.

Usage::

    python benchmarks/defaults.py [--seeds 1] [--fmnist] [--json out.json]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent


def datasets() -> dict[str, tuple[np.ndarray, np.ndarray, str]]:
    """The real data sets of 100 to 5,000 rows scikit-learn ships, and anyglm's own."""
    import anyglm
    from sklearn import datasets as skd

    out: dict[str, tuple[np.ndarray, np.ndarray, str]] = {}
    for name in ("digits", "breast_cancer"):
        X, y = anyglm.datasets.load_dataset(name)
        out[name + " (shipped)"] = (X, y, "clf")
    X, y = anyglm.datasets.load_dataset("diabetes")
    out["diabetes (shipped)"] = (X, y, "reg")
    for name, load in (("iris", skd.load_iris), ("wine", skd.load_wine)):
        bunch = load()
        out[name] = (bunch.data, bunch.target, "clf")
    return out


def one(X: np.ndarray, y: np.ndarray, kind: str, seed: int) -> dict[str, Any]:
    import anyglm
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier, SGDRegressor
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    strat = y if kind == "clf" else None
    X_tr, X_te, y_tr, y_te = train_test_split(
        X, y, test_size=0.2, random_state=seed, stratify=strat
    )
    scaler = StandardScaler().fit(X_tr)
    X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
    if kind == "clf":
        ours_cls = anyglm.LogisticRegression if len(np.unique(y)) == 2 else anyglm.SoftmaxRegression
        exact = LogisticRegression()
        sgd: Any = SGDClassifier(loss="log_loss", random_state=seed)
    else:
        ours_cls = anyglm.LinearRegression
        exact = Ridge()
        sgd = SGDRegressor(random_state=seed)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ours = ours_cls(random_state=seed).fit(X_tr, y_tr)
    seconds = time.perf_counter() - t0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's SGD warns at its max_iter on some
        exact_score = exact.fit(X_tr, y_tr).score(X_te, y_te)
        sgd_score = sgd.fit(X_tr, y_tr).score(X_te, y_te)
    score = ours.score(X_te, y_te)
    row = 1.0 / len(y_te)
    return {
        "seed": seed,
        "n_train": len(y_tr),
        "n_test": len(y_te),
        "anyglm": score,
        "exact": exact_score,
        "sgd": sgd_score,
        "epochs": ours.n_epochs_,
        "seconds": seconds,
        "warned": any("ConvergenceWarning" in type(w.message).__name__ for w in caught),
        "near_exact": score >= exact_score - max(0.01, row),
        "not_below_sgd": score >= sgd_score - max(0.005, row),
    }


def fmnist(repeats: int) -> dict[str, Any]:
    import anyglm
    from sklearn.linear_model import SGDClassifier

    spec = importlib.util.spec_from_file_location("anyglm_bench_epoch", HERE / "epoch.py")
    assert spec is not None and spec.loader is not None
    epoch = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = epoch
    spec.loader.exec_module(epoch)
    data = epoch.make_data(np, 60000, 784, 10, "softmax", "float32", 0, 10000)
    mean, std = data.X.mean(axis=0), data.X.std(axis=0)
    X, X_te = (data.X - mean) / std, (data.X_test - mean) / std
    rows: dict[str, list[dict[str, Any]]] = {"anyglm": [], "sgd": []}
    for _ in range(repeats):
        t0 = time.perf_counter()
        ours = anyglm.SoftmaxRegression().fit(X, data.y)
        rows["anyglm"].append({"s": time.perf_counter() - t0, "acc": ours.score(X_te, data.y_test),
                               "epochs": ours.n_epochs_})  # fmt: skip
    t0 = time.perf_counter()
    sgd = SGDClassifier(loss="log_loss").fit(X, data.y)
    rows["sgd"].append({"s": time.perf_counter() - t0, "acc": sgd.score(X_te, data.y_test),
                        "epochs": int(sgd.n_iter_)})  # fmt: skip
    med = float(np.median([r["s"] for r in rows["anyglm"]]))
    return {
        "anyglm_runs": rows["anyglm"],
        "sgd": rows["sgd"][0],
        "anyglm_median_s": med,
        "speedup": rows["sgd"][0]["s"] / med,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1, help="splits per data set (default 1)")
    p.add_argument("--fmnist", action="store_true", help="also the FMNIST-shaped speed check")
    p.add_argument("--repeats", type=int, default=3, help="anyglm fits in the FMNIST check")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args(argv)
    import anyglm
    import sklearn

    meta = {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "anyglm": anyglm.__version__,
        "sklearn": sklearn.__version__,
    }
    print(f"anyglm {meta['anyglm']} at its defaults, scikit-learn {meta['sklearn']}, "
          f"{meta['date']}")  # fmt: skip
    header = (f"{'data set':<22} {'seed':>4} {'anyglm':>7} {'exact':>7} {'SGD':>7} "
              f"{'epochs':>6} {'s':>6}  targets")  # fmt: skip
    print(header)
    results = []
    for name, (X, y, kind) in datasets().items():
        for seed in range(args.seeds):
            r = one(X, y, kind, seed)
            r["data"] = name
            results.append(r)
            ok = "ok" if r["near_exact"] and r["not_below_sgd"] else "FAIL"
            note = " (ConvergenceWarning)" if r["warned"] else ""
            print(f"{name:<22} {seed:>4} {r['anyglm']:>7.4f} {r['exact']:>7.4f} {r['sgd']:>7.4f} "
                  f"{r['epochs']:>6} {r['seconds']:>6.2f}  {ok}{note}")  # fmt: skip
    held = sum(r["near_exact"] and r["not_below_sgd"] for r in results)
    print(f"targets hold in {held} of {len(results)} (exact: LogisticRegression() / Ridge(); "
          f"SGD: SGDClassifier(loss='log_loss') / SGDRegressor(), at their defaults)")  # fmt: skip
    out: dict[str, Any] = {"meta": meta, "rows": results}
    failed = held < len(results)
    if args.fmnist:
        f = fmnist(args.repeats)
        out["fmnist"] = f
        runs = ", ".join(f"{r['s']:.2f}" for r in f["anyglm_runs"])
        acc = f["anyglm_runs"][0]["acc"]
        print(f"\nFMNIST-shaped 60000 x 784 float32: anyglm default fit "
              f"{f['anyglm_median_s']:.2f} s "
              f"(median of {runs}; {f['anyglm_runs'][0]['epochs']} epochs, accuracy {acc:.4f}); "
              f"SGDClassifier {f['sgd']['s']:.1f} s ({f['sgd']['epochs']} epochs, accuracy "
              f"{f['sgd']['acc']:.4f}): {f['speedup']:.1f} x faster")  # fmt: skip
        fast = f["speedup"] >= 30 and acc >= f["sgd"]["acc"]
        print(f"target >= 30 x faster with accuracy at least as high: "
              f"{'holds' if fast else 'FAILS'}")  # fmt: skip
        failed = failed or not fast
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1, default=float), encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
