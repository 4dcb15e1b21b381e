#!/usr/bin/env python
"""Softmax regression on Dask: local SGD with model averaging against NumPy's sequential SGD.

FMNIST-shaped synthetic data (default 1,000,000 x 784 float32, 10 classes, 8 chunks of
rows), generated chunk by chunk on the workers and kept there (``persist``), so ``X``
never reaches this process. Prints, side by side:

* held-out accuracy after the same epochs with the same hyperparameters: the ``dask``
  backend (2 workers) and the NumPy backend's sequential fit, which runs in a process of
  its own on the same rows (generated there from the same seeds);
* the epoch time with 1 worker and with 2 workers (one thread each, one BLAS thread),
  two clusters up at once and their fits interleaved, medians of ``--repeats`` fits
  of ``--epochs`` epochs each;
* scheduler round trips per epoch (graphs the scheduler received, counted by a
  scheduler plugin);
* this process's peak memory (its maximum resident set size) against the size of ``X``.

    python benchmarks/dask_sgd.py                    # the figures in docs/benchmarks.md
    python benchmarks/dask_sgd.py --n 200000 --repeats 3 --json out.json
"""

from __future__ import annotations

import os

# One BLAS / OpenMP / numba thread everywhere: the workers and the baseline process
# inherit these, so one worker really uses one core.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "error")  # closing clusters is not news

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

LATENT = 32
#: Plain SGD for the given epochs on both sides: no averaging, no early stopping.
PLAIN: dict[str, Any] = {"average": False, "n_iter_no_change": None}
#: The held-out rows: chunks of their own seeds (the training chunks' are 0, 1, ...).
TEST_FIRST, TEST_CHUNKS = 10**6, 2


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="training rows (default 1e6)")
    p.add_argument("--n-test", type=int, default=100_000, help="held-out rows (default 1e5)")
    p.add_argument("--d", type=int, default=784, help="features (default 784)")
    p.add_argument("--classes", type=int, default=10, help="classes (default 10)")
    p.add_argument("--chunks", type=int, default=8, help="chunks of rows of X (default 8)")
    p.add_argument("--epochs", type=int, default=3, help="epochs per fit (default 3)")
    p.add_argument("--batch", type=int, default=256, help="minibatch rows (default 256)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    p.add_argument("--seed", type=int, default=0, help="data and SGD seed (default 0)")
    p.add_argument("--repeats", type=int, default=5, help="timed fits per cluster (default 5)")
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)  # internal
    return p.parse_args(argv)


# -- the data, one chunk at a time (the same rows in every process) ---------------------------


def _mixing(d: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, 2**31])
    B = rng.standard_normal((LATENT, d), dtype=np.float32) / np.float32(np.sqrt(LATENT))
    W = rng.standard_normal((LATENT, classes), dtype=np.float32) * np.float32(4 / np.sqrt(LATENT))
    return B, W


def make_chunk(index: int, rows: int, d: int, classes: int, seed: int) -> tuple[Any, Any]:
    """Rows ``U @ B + 0.5 * noise`` and labels ``argmax(U @ W + Gumbel)`` (as epoch.py's)."""
    B, W = _mixing(d, classes, seed)
    rng = np.random.default_rng([seed, index])
    U = rng.standard_normal((rows, LATENT), dtype=np.float32)
    X = U @ B
    X += np.float32(0.5) * rng.standard_normal(X.shape, dtype=np.float32)
    Z = U @ W + rng.gumbel(size=(rows, classes)).astype(np.float32)
    return X, np.argmax(Z, axis=1).astype(np.int64)


def _sizes(n: int, chunks: int) -> list[int]:
    base = -(-n // chunks)
    return [min(base, n - k * base) for k in range(chunks) if n - k * base > 0]


def host_data(n: int, first: int, chunks: int, d: int, classes: int, seed: int) -> Any:
    parts = [
        make_chunk(first + k, rows, d, classes, seed) for k, rows in enumerate(_sizes(n, chunks))
    ]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def dask_data(
    client: Any, n: int, first: int, chunks: int, d: int, classes: int, seed: int
) -> tuple[Any, Any]:
    """``X`` and ``y`` generated on the workers and kept there, chunk ``k`` on worker ``k % w``.

    The chunks are the partitions, so each worker gets the same number of them (Dask
    alone may place 5 of 8 on one worker, and a round then lasts 5 partitions' time).
    """
    import dask.array as da
    from dask import delayed

    workers = sorted(client.scheduler_info()["workers"])
    xs, ys = [], []
    for k, rows in enumerate(_sizes(n, chunks)):
        pair = delayed(make_chunk, nout=2, pure=True)(first + k, rows, d, classes, seed)
        X_k = da.from_delayed(pair[0], (rows, d), dtype=np.float32)
        y_k = da.from_delayed(pair[1], (rows,), dtype=np.int64)
        X_k, y_k = client.persist([X_k, y_k], workers=[workers[k % len(workers)]])
        xs.append(X_k)
        ys.append(y_k)
    return da.concatenate(xs), da.concatenate(ys)


# -- the NumPy baseline, in a process of its own ------------------------------------------------


def baseline(args: argparse.Namespace) -> dict[str, Any]:
    import anyglm

    X, y = host_data(args.n, 0, args.chunks, args.d, args.classes, args.seed)
    Xt, yt = host_data(args.n_test, TEST_FIRST, TEST_CHUNKS, args.d, args.classes, args.seed)
    ends: list[float] = []
    est = anyglm.SoftmaxRegression(
        epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr, alpha=args.alpha,
        random_state=args.seed, backend="numpy", **PLAIN,
    )  # fmt: skip
    est.set_params(epochs=1).fit(X[:4000], y[:4000])  # numba compiles here, not in the timing
    est.set_params(epochs=args.epochs)
    start = time.perf_counter()
    est.fit(X, y, callback=lambda logs: ends.append(time.perf_counter()))
    epochs = np.diff([start, *ends]).tolist()
    loss = est.history_["train_loss"]
    return {"accuracy": est.score(Xt, yt), "epoch_s": epochs, "train_loss": loss}


def run_baseline(args: argparse.Namespace) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--baseline"]
    for key in ("n", "n_test", "d", "classes", "chunks", "epochs", "batch", "lr", "alpha", "seed"):
        argv += [f"--{key.replace('_', '-')}", str(getattr(args, key))]
    out = subprocess.run(argv, capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- the clusters --------------------------------------------------------------------------------


class _Graphs:
    """Counts the graphs the scheduler receives (one per compute: a round trip)."""

    name = "anyglm-benchmark-graphs"

    def __init__(self) -> None:
        self.count = 0

    def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
        self.count += 1


def start_cluster(workers: int) -> Any:
    from distributed import Client, LocalCluster
    from distributed.diagnostics.plugin import SchedulerPlugin

    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
        memory_limit=0, silence_logs=40,
    )  # fmt: skip
    client = Client(cluster, set_as_default=False)
    counter = type("Counter", (_Graphs, SchedulerPlugin), {})()
    cluster.scheduler.add_plugin(counter, name=_Graphs.name)
    return cluster, client, counter


def timed_fit(args: argparse.Namespace, client: Any, data: Any, counter: Any) -> dict[str, Any]:
    import anyglm

    X, y, Xt, yt = data
    ends: list[float] = []
    est = anyglm.SoftmaxRegression(
        epochs=args.epochs, batch_size=args.batch, learning_rate=args.lr, alpha=args.alpha,
        random_state=args.seed, **PLAIN,
    )  # fmt: skip
    with client.as_current():
        graphs = counter.count
        start = time.perf_counter()
        est.fit(X, y, callback=lambda logs: ends.append(time.perf_counter()))
        graphs = counter.count - graphs
        accuracy = est.score(Xt, yt)
    times = np.diff([start, *ends]).tolist()
    return {
        "epoch_s": times, "graphs": graphs, "accuracy": accuracy, "coef": est.coef_,
        "train_loss": est.history_["train_loss"],
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.baseline:
        print(json.dumps(baseline(args)))
        return 0
    import anyglm

    x_bytes = args.n * args.d * 4
    load_before = os.getloadavg()
    print(
        f"anyglm {anyglm.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; X: {args.n} x "
        f"{args.d} float32 ({x_bytes / 2**30:.2f} GiB) in {args.chunks} chunks",
        flush=True,
    )
    clusters = {}
    for workers in (1, 2):
        cluster, client, counter = start_cluster(workers)
        X, y = dask_data(client, args.n, 0, args.chunks, args.d, args.classes, args.seed)
        Xt, yt = dask_data(
            client, args.n_test, TEST_FIRST, TEST_CHUNKS, args.d, args.classes, args.seed
        )
        data = [X, y, Xt, yt]
        client.gather(client.compute([a.sum() for a in data]))  # generated, kept there
        clusters[workers] = (cluster, client, counter, data)
        where = client.who_has(data[0])  # chunk of X -> the workers holding it
        per_worker: dict[str, int] = {}
        for holders in where.values():
            for address in holders:
                per_worker[address] = per_worker.get(address, 0) + 1
        print(f"{workers} worker(s): chunks of X per worker {sorted(per_worker.values())}")
        warm = argparse.Namespace(**{**vars(args), "epochs": 1})
        timed_fit(warm, client, data, counter)  # numba compiles on every worker
        print(f"{workers} worker(s): data generated on the workers and kept there", flush=True)
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for r in range(args.repeats):
        for workers in (1, 2) if r % 2 == 0 else (2, 1):  # alternate: load drift hits both
            _, client, counter, data = clusters[workers]
            runs[workers].append(timed_fit(args, client, data, counter))
        pair = {w: statistics.median(runs[w][-1]["epoch_s"]) for w in (1, 2)}
        print(f"repeat {r + 1}: epoch {pair[1]:.2f} s with 1 worker, {pair[2]:.2f} s with 2",
              flush=True)  # fmt: skip
    for cluster, client, _, _ in clusters.values():
        client.close()
        cluster.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    load_after = os.getloadavg()
    print("NumPy baseline (sequential SGD, its own process)...", flush=True)
    ref = run_baseline(args)

    epochs = {w: [t for run in runs[w] for t in run["epoch_s"]] for w in (1, 2)}
    medians = {w: statistics.median(epochs[w]) for w in (1, 2)}
    paired = statistics.median(
        statistics.median(b["epoch_s"]) / statistics.median(a["epoch_s"])
        for a, b in zip(runs[1], runs[2], strict=True)
    )
    graphs = [run["graphs"] for w in (1, 2) for run in runs[w]]
    per_epoch = (statistics.median(graphs) - 1) / args.epochs  # 1: the checks before training
    same = all(np.array_equal(run["coef"], runs[2][0]["coef"]) for w in (1, 2) for run in runs[w])
    acc = runs[2][0]["accuracy"]
    rows = [
        ("held-out accuracy, dask (2 workers)", f"{acc:.4f}"),
        ("held-out accuracy, NumPy sequential", f"{ref['accuracy']:.4f}"),
        ("difference (points)", f"{100 * (acc - ref['accuracy']):+.2f}"),
        ("epoch, 1 worker (median)", f"{medians[1]:.2f} s"),
        ("epoch, 2 workers (median)", f"{medians[2]:.2f} s"),
        ("2 workers / 1 worker (medians; paired)", f"{medians[2] / medians[1]:.2f}; {paired:.2f}"),
        ("epoch, NumPy sequential (median)", f"{statistics.median(ref['epoch_s']):.2f} s"),
        ("scheduler round trips per epoch", f"{per_epoch:g} (+1 per fit: checks, labels)"),
        ("client peak memory", f"{peak / 2**20:.0f} MiB (X: {x_bytes / 2**20:.0f} MiB)"),
        ("same parameters with 1 and 2 workers, every repeat", str(same)),
        ("load average (1, 5, 15 min) before; after the clusters",
         f"{load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}; "
         f"{load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}"),
    ]  # fmt: skip
    width = max(len(k) for k, _ in rows)
    print()
    for key, value in rows:
        print(f"{key:<{width}}  {value}")
    if args.json:
        result = {
            "args": vars(args), "accuracy_dask": acc, "accuracy_numpy": ref["accuracy"],
            "epoch_s": {str(w): epochs[w] for w in (1, 2)}, "epoch_s_numpy": ref["epoch_s"],
            "median_epoch_s": {str(w): medians[w] for w in (1, 2)}, "paired_ratio": paired,
            "round_trips_per_epoch": per_epoch, "client_peak_bytes": peak, "x_bytes": x_bytes,
            "same_parameters": same, "train_loss_dask": runs[2][0]["train_loss"],
            "load_before": load_before, "load_after": load_after,
            "train_loss_numpy": ref["train_loss"],
        }  # fmt: skip
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
