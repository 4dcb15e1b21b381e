#!/usr/bin/env python
"""One epoch of minibatch SGD with L2, anyglm side by side with what users would pick instead.

Every contender runs in this one process, on the same synthetic data, interleaved
repeat by repeat (so a load change on a shared machine hits all of them alike);
the table gives medians and each one's time relative to anyglm's epoch. See
``benchmarks/README.md`` for the contenders, the options and how to read the output.

    python benchmarks/epoch.py                       # FMNIST-shaped softmax, float32, batch 256
    python benchmarks/epoch.py --batch 256 1024 --model softmax logistic linear
    python benchmarks/epoch.py --scaling --memory --json results.json
    python benchmarks/epoch.py --device cuda         # GPU: anyglm on CuPy, CuPy by hand, torch CUDA
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MODELS = ("softmax", "logistic", "linear")
# Method names, in the order the table lists them.
READ = "read X once"
GATHER = "numpy gather"
SLICES = "numpy slices"
AG_EPOCH = "anyglm epoch"
AG_PORTABLE = "anyglm portable"
AG_FIT = "anyglm fit"
AG_DERIVED = "anyglm fit/epoch"
TORCH = "torch"
JAX_JIT = "anyglm jax jit"
JAX_EAGER = "anyglm jax eager"
TORCH_COMPILE = "anyglm torch compile"
TORCH_EAGER = "anyglm torch eager"
SGD = "sklearn SGD"
LBFGS = "sklearn lbfgs"
RIDGE = "sklearn ridge"
ALL_METHODS = (
    READ, SLICES, GATHER, AG_EPOCH, AG_PORTABLE, AG_DERIVED, AG_FIT, TORCH, TORCH_COMPILE,
    TORCH_EAGER, JAX_JIT, JAX_EAGER, SGD, LBFGS, RIDGE,
)  # fmt: skip
#: The rows of anyglm's PyTorch and JAX backends: method -> (backend, accelerator on).
FRAMEWORK_ROWS = {
    TORCH_COMPILE: ("torch", True),
    TORCH_EAGER: ("torch", False),
    JAX_JIT: ("jax", True),
    JAX_EAGER: ("jax", False),
}
DESCRIPTIONS = {
    READ: "X.sum(): one pass over the data, the floor",
    SLICES: "same math by hand, contiguous slices of a once-shuffled copy",
    GATHER: "same math by hand, X[perm[i:i+b]] gathered each step",
    AG_EPOCH: "anyglm's trainer, one epoch with its per-epoch shuffle",
    AG_PORTABLE: "the same, accelerators off: the portable Array API loop",
    AG_DERIVED: "(fit(epochs=4) - fit(epochs=1)) / 3, a check of the line above",
    AG_FIT: "anyglm Estimator(epochs=1).fit(X, y), input checks included",
    TORCH: "nn.Linear + autograd + optim.SGD, randperm gather each step",
    TORCH_COMPILE: "anyglm's trainer on the torch backend, its step compiled by torch.compile",
    TORCH_EAGER: "the same, accelerators off: the portable loop on eager PyTorch",
    JAX_JIT: "anyglm's trainer on the jax backend, a block as one jax.jit-compiled lax.scan",
    JAX_EAGER: "the same, accelerators off: the portable loop, JAX op by op",
    SGD: "SGDClassifier/SGDRegressor(max_iter=1, tol=None).fit, one epoch",
    LBFGS: "LogisticRegression(lbfgs) fit to anyglm's 1-epoch test accuracy",
    RIDGE: "Ridge fit (exact least squares), linear model only",
}
# Methods timed by fit() end to end: compared with anyglm's fit as well.
FIT_METHODS = {AG_FIT, SGD, LBFGS, RIDGE}
SKIPPED_EXIT = 3  # --device cuda on a machine without a usable GPU
SCALING_METHODS = (READ, SLICES, GATHER, AG_EPOCH, AG_PORTABLE, AG_FIT, TORCH)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--n", type=int, default=60000, help="training rows (default 60000)")
    p.add_argument("--d", type=int, default=784, help="features (default 784)")
    p.add_argument("--classes", type=int, default=10, help="classes for softmax (default 10)")
    p.add_argument("--n-test", type=int, default=10000, help="held-out rows (default 10000)")
    p.add_argument("--model", nargs="+", choices=MODELS, default=["softmax"])
    p.add_argument("--batch", nargs="+", type=int, default=[256], help="batch sizes (256)")
    p.add_argument("--dtype", nargs="+", choices=("float32", "float64"), default=["float32"])
    p.add_argument("--repeats", type=int, default=5, help="timed runs per method (default 5)")
    p.add_argument("--lr", type=float, default=0.01, help="learning rate (default 0.01)")
    p.add_argument("--alpha", type=float, default=1e-4, help="L2 penalty (default 1e-4)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads for BLAS and torch (default: the libraries' own default)",
    )
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    p.add_argument("--methods", nargs="+", choices=ALL_METHODS, default=None, help="run only these")
    p.add_argument("--skip", nargs="+", choices=ALL_METHODS, default=[], help="leave these out")
    p.add_argument("--scaling", action="store_true", help="also time n = 1e4 and 1e5 rows")
    p.add_argument(
        "--big", action="store_true", help="with --scaling, also n = 1e6 (3.1 GB in float32)"
    )
    p.add_argument("--scaling-only", action="store_true", help="only the scaling table")
    p.add_argument("--memory", action="store_true", help="peak memory of each fit (subprocesses)")
    p.add_argument("--json", metavar="PATH", help="write every result as JSON")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target fails")
    p.add_argument("--no-verify", action="store_true", help="skip the same-math parameter check")
    p.add_argument("--_probe", help=argparse.SUPPRESS)  # memory probe, in a subprocess
    p.add_argument("--_probe-batch", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def _limit_threads(n: int | None) -> None:
    # Must run before NumPy is imported: BLAS reads these once, when it loads.
    if n is None:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
        os.environ[var] = str(n)
    # XLA's CPU client reads these when JAX first uses it (jaxlib 0.4 to 0.10 honour both).
    xla = f"--xla_cpu_multi_thread_eigen={'false' if n == 1 else 'true'} "
    xla += f"intra_op_parallelism_threads={n}"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {xla}".strip()


def _optional(name: str) -> Any:
    try:
        return __import__(name)
    except Exception:  # missing, or broken (a CUDA library without a driver)
        return None


# -- data -----------------------------------------------------------------------------------


@dataclass
class Data:
    X: Any  # (n, d) host array of the requested dtype
    y: Any  # labels (ints) or targets (floats), shape (n,)
    Y: Any  # encoded targets (n, c): one-hot, 0/1 column or real column
    X_test: Any
    y_test: Any
    n_out: int

    @property
    def nbytes(self) -> int:
        return int(self.X.nbytes + self.Y.nbytes)


def make_data(np: Any, n: int, d: int, classes: int, model: str, dtype: str, seed: int,
              n_test: int, latent: int = 32) -> Data:  # fmt: skip
    """Synthetic data shaped like the caller asks, with structure like images'.

    Rows are ``U @ B + 0.5 * noise`` with a ``latent``-dimensional ``U`` (so the
    features are strongly correlated, as pixels are), and the targets depend
    linearly on ``U``: a linear model can learn them, up to label noise.
    """
    rng = np.random.default_rng(seed)
    total = n + n_test
    U = rng.standard_normal((total, latent), dtype=np.float32)
    B = rng.standard_normal((latent, d), dtype=np.float32) / np.float32(np.sqrt(latent))
    X = U @ B
    for start in range(0, total, 65536):  # in blocks: no second X-sized temporary
        block = X[start : start + 65536]
        block += np.float32(0.5) * rng.standard_normal(block.shape, dtype=np.float32)
    c = classes if model == "softmax" else 1
    W_u = rng.standard_normal((latent, c), dtype=np.float32) * np.float32(4 / np.sqrt(latent))
    Z = U @ W_u
    if model == "softmax":
        y = np.argmax(Z + rng.gumbel(size=Z.shape).astype(np.float32), axis=1)
        Y = np.eye(classes, dtype=dtype)[y[:n]]
    elif model == "logistic":
        y = (Z[:, 0] + rng.logistic(size=total).astype(np.float32) > 0).astype(np.int64)
        Y = y[:n, None].astype(dtype)
    else:
        y = (Z[:, 0] + rng.standard_normal(total, dtype=np.float32)).astype(dtype)
        Y = y[:n, None].astype(dtype)
    if dtype != "float32":
        X = X.astype(dtype)
    return Data(X[:n], y[:n], Y, X[n:], y[n:], c)


# -- contenders -----------------------------------------------------------------------------


@dataclass
class Setup:
    """Everything a contender needs; built once per (model, batch, dtype, n)."""

    np: Any
    model: str
    batch: int
    dtype: str
    lr: float
    alpha: float
    seed: int
    device: str
    data: Data
    xp_hand: Any = None  # numpy or cupy: the module the by-hand loops use
    dev_X: Any = None  # X, Y on the device the hand loops and anyglm use
    dev_Y: Any = None
    sync: Callable[[], None] = lambda: None
    notes: dict[str, str] = field(default_factory=dict)
    params: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # method -> (W, b) on host
    compile_s: dict[str, float] = field(default_factory=dict)  # method -> one-off compile time
    target_accuracy: float | None = None


def hand_epoch(xp: Any, X: Any, Y: Any, perm: Any, s: Setup, gather: bool) -> tuple[Any, Any]:
    """The same math as anyglm, written as one would by hand (in NumPy or CuPy)."""
    n, d = X.shape
    c = Y.shape[1]
    W = xp.zeros((d, c), dtype=X.dtype)
    b = xp.zeros(c, dtype=X.dtype)
    total = xp.zeros((), dtype=X.dtype)
    lr, alpha, bs = s.lr, s.alpha, s.batch
    for start in range(0, n, bs):
        if gather:
            idx = perm[start : start + bs]
            Xb, Yb = X[idx], Y[idx]
        else:
            Xb, Yb = X[start : start + bs], Y[start : start + bs]
        m = Xb.shape[0]
        Z = Xb @ W
        Z += b
        if s.model == "softmax":
            Z -= Z.max(axis=1, keepdims=True)
            E = xp.exp(Z)
            S = E.sum(axis=1, keepdims=True)
            total += (xp.log(S[:, 0]) - (Z * Yb).sum(axis=1)).sum()  # one-hot rows
            E /= S
            E -= Yb
            G = E
        elif s.model == "logistic":
            total += (xp.logaddexp(0, Z) - Yb * Z).sum()
            G = 1 / (1 + xp.exp(-Z)) - Yb
        else:
            G = Z - Yb
            total += 0.5 * (G * G).sum()
        G /= m
        W -= lr * (Xb.T @ G + alpha * W)
        b -= lr * G.sum(axis=0)
    float(total)  # read the loss once per epoch, like anyglm; also waits for a GPU
    return W, b


def _to_host(s: Setup, a: Any) -> Any:
    return a.get() if hasattr(a, "get") else s.np.asarray(a)


def setup_read(s: Setup) -> Callable[[], Any]:
    X = s.dev_X

    def run() -> Any:
        total = X.sum()
        float(total)  # a GPU reduction is asynchronous until read
        return None

    return run


def setup_hand(s: Setup, gather: bool) -> Callable[[], Any]:
    np, xp = s.np, s.xp_hand
    n = s.data.X.shape[0]
    name = GATHER if gather else SLICES  # the key of its parameters, for verify()
    host_perm = np.random.default_rng(s.seed).permutation(n)  # anyglm's first-epoch order
    if gather:
        X, Y = s.dev_X, s.dev_Y
    else:  # the once-shuffled copy is made outside the timing
        X = xp.asarray(s.data.X[host_perm])
        Y = xp.asarray(s.data.Y[host_perm])

    def run() -> Any:
        # A fresh permutation each epoch, drawn on the host and copied over like anyglm does.
        perm = xp.asarray(np.random.default_rng(s.seed).permutation(n)) if gather else None
        with np.errstate(over="ignore"):
            W, b = hand_epoch(xp, X, Y, perm, s, gather)
        s.params[name] = (_to_host(s, W), _to_host(s, b))
        return None

    return run


def _anyglm_backend(s: Setup) -> tuple[Any, Any, Any]:
    import anyglm

    be = anyglm.get_backend("cupy" if s.device == "cuda" else "numpy")
    be.require()
    return be, be.xp, be.default_device()


def setup_anyglm_epoch(s: Setup, accelerate: bool = True) -> Callable[[], Any] | str:
    import anyglm
    from anyglm.sources import ArraySource
    from anyglm.trainer import train

    np = s.np
    be, xp, dev = _anyglm_backend(s)
    name = AG_EPOCH if accelerate else AG_PORTABLE
    model = anyglm.get_model(s.model)
    X, Y = s.dev_X, s.dev_Y
    d, c = X.shape[1], Y.shape[1]

    def run() -> Any:
        return fit()

    def fit() -> Any:
        W = xp.zeros((d, c), dtype=be.dtype(s.dtype, dev), device=dev)
        b = xp.zeros((c,), dtype=be.dtype(s.dtype, dev), device=dev)
        res = train(
            model,
            be,
            ArraySource(be, X, Y, None, device=dev),
            W=W,
            b=b,
            n_configs=1,
            learning_rate=s.lr,
            alpha=s.alpha,
            epochs=1,
            batch_size=s.batch,
            shuffle=True,
            rng=np.random.default_rng(s.seed),
            dtype=s.dtype,
            device=dev,
            accelerate=accelerate,
        )
        if accelerate:  # which loop ran, for the notes column
            s.notes[AG_EPOCH] = "numba's compiled loop" if res.accelerated else "portable loop"
        s.params[name] = (
            be.to_numpy(res.W),
            be.to_numpy(res.b),
        )
        return None

    return run


def _framework_device(be: Any, s: Setup) -> Any:
    """The device of ``be`` matching ``--device``, or None when it has none."""
    for dev in be.devices():
        kind = getattr(dev, "type", None) or getattr(dev, "platform", None) or str(dev)
        if (kind == "cpu") == (s.device == "cpu"):
            return dev
    return None


def setup_framework_epoch(s: Setup, method: str) -> Callable[[], Any] | str:
    """anyglm's trainer on its torch or jax backend, compiled (accelerator) or eager."""
    import anyglm
    from anyglm.sources import ArraySource
    from anyglm.trainer import train

    np = s.np
    backend, accelerate = FRAMEWORK_ROWS[method]
    try:
        be = anyglm.get_backend(backend)
        be.require()
    except Exception as exc:
        return f"backend {backend!r} is not available: {exc}"
    dev = _framework_device(be, s)
    if dev is None:
        return f"backend {backend!r} has no {s.device} device"
    if s.dtype not in be.float_dtypes(dev):
        return f"backend {backend!r} has no {s.dtype} here (JAX: set JAX_ENABLE_X64=1)"
    compiled = importlib.import_module(
        "anyglm.backends.jax_jit" if backend == "jax" else "anyglm.backends.torch_compile"
    )
    model = anyglm.get_model(s.model)
    X = be.from_numpy(s.data.X, dtype=s.dtype, device=dev)
    Y = be.from_numpy(s.data.Y, dtype=s.dtype, device=dev)
    d, c = s.data.X.shape[1], s.data.Y.shape[1]

    def run() -> Any:
        xp = be.xp
        W = xp.zeros((d, c), dtype=be.dtype(s.dtype, dev), device=dev)
        b = xp.zeros((c,), dtype=be.dtype(s.dtype, dev), device=dev)
        log = compiled.COMPILE_LOG
        before = len(log)
        res = train(model, be, ArraySource(be, X, Y, None, device=dev), W=W, b=b, n_configs=1,
                    learning_rate=s.lr, alpha=s.alpha, epochs=1, batch_size=s.batch,
                    shuffle=True, rng=np.random.default_rng(s.seed), dtype=s.dtype, device=dev,
                    accelerate=accelerate)  # fmt: skip
        new = log[before:]
        if new:  # the first run compiles (the untimed warm-up); later ones find it cached
            s.compile_s[method] = s.compile_s.get(method, 0.0) + sum(r.seconds for r in new)
        if accelerate:
            what = "jax.jit + lax.scan" if backend == "jax" else "torch.compile"
            s.notes[method] = what if res.accelerated else "portable loop (not compiled here)"
        s.params[method] = (be.to_numpy(res.W), be.to_numpy(res.b))
        return None

    return run


def _estimator(s: Setup, epochs: int) -> Any:
    import anyglm

    cls = {
        "softmax": anyglm.SoftmaxRegression,
        "logistic": anyglm.LogisticRegression,
        "linear": anyglm.LinearRegression,
    }[s.model]
    return cls(
        batch_size=s.batch,
        learning_rate=s.lr,
        alpha=s.alpha,
        epochs=epochs,
        random_state=s.seed,
        backend="cupy" if s.device == "cuda" else "numpy",
        dtype=s.dtype,
    )


def _fit_inputs(s: Setup) -> tuple[Any, Any]:
    if s.device == "cuda":  # device arrays in, as a GPU user would pass them
        return s.dev_X, s.xp_hand.asarray(s.data.y)
    return s.data.X, s.data.y


def setup_anyglm_fit(s: Setup) -> Callable[[], Any]:
    X, y = _fit_inputs(s)

    def run() -> Any:
        est = _estimator(s, 1).fit(X, y)
        s.sync()
        return est

    return run


def setup_anyglm_derived(s: Setup) -> Callable[[], Any]:
    X, y = _fit_inputs(s)

    def run() -> float:
        t0 = time.perf_counter()
        _estimator(s, 1).fit(X, y)
        t1 = time.perf_counter()
        _estimator(s, 4).fit(X, y)
        t4 = time.perf_counter()
        return ((t4 - t1) - (t1 - t0)) / 3  # the measured time of this method

    return run


def setup_torch(s: Setup) -> Callable[[], Any] | str:
    torch = _optional("torch")
    if torch is None:
        return "torch is not importable"
    dev = "cuda" if s.device == "cuda" else "cpu"
    if dev == "cuda" and not torch.cuda.is_available():
        return "torch sees no CUDA device"
    np = s.np
    tdtype = getattr(torch, s.dtype)
    Xt = torch.as_tensor(s.data.X, device=dev)
    if s.model == "softmax":
        yt = torch.as_tensor(s.data.y, dtype=torch.int64, device=dev)
        crit: Any = torch.nn.CrossEntropyLoss()
    elif s.model == "logistic":
        yt = torch.as_tensor(s.data.Y, dtype=tdtype, device=dev)
        crit = torch.nn.BCEWithLogitsLoss()
    else:
        yt = torch.as_tensor(s.data.Y, dtype=tdtype, device=dev)

        def crit(z: Any, y: Any) -> Any:
            return 0.5 * torch.nn.functional.mse_loss(z, y)  # anyglm's (1/2)(z - y)^2, c = 1

    n, d = s.data.X.shape
    c = s.data.n_out

    def sync() -> None:
        if dev == "cuda":
            torch.cuda.synchronize()

    def run() -> Any:
        lin = torch.nn.Linear(d, c, dtype=tdtype, device=dev)
        with torch.no_grad():
            lin.weight.zero_()
            lin.bias.zero_()
        opt = torch.optim.SGD(
            [
                {"params": [lin.weight], "weight_decay": s.alpha},
                {"params": [lin.bias], "weight_decay": 0.0},
            ],
            lr=s.lr,
        )
        perm = torch.as_tensor(np.random.default_rng(s.seed).permutation(n), device=dev)
        total = torch.zeros((), dtype=tdtype, device=dev)
        for start in range(0, n, s.batch):
            idx = perm[start : start + s.batch]
            opt.zero_grad(set_to_none=True)
            loss = crit(lin(Xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * idx.shape[0]
        float(total)
        sync()
        s.params[TORCH] = (
            lin.weight.detach().cpu().numpy().T.copy(),
            lin.bias.detach().cpu().numpy().copy(),
        )
        return None

    return run


def setup_sgd(s: Setup) -> Callable[[], Any] | str:
    if s.device != "cpu":
        return "CPU only"
    lm = _optional("sklearn.linear_model")
    if lm is None:
        return "scikit-learn is not importable"
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import SGDClassifier, SGDRegressor

    X, y = s.data.X, s.data.y

    def run() -> Any:
        common = dict(
            penalty="l2",
            alpha=s.alpha,
            learning_rate="constant",
            eta0=s.lr,
            max_iter=1,
            tol=None,
            shuffle=True,
            random_state=s.seed,
        )
        if s.model == "linear":
            est = SGDRegressor(loss="squared_error", **common)
        else:
            est = SGDClassifier(loss="log_loss", **common)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(X, y)
        return est

    return run


def setup_lbfgs(s: Setup) -> Callable[[], Any] | str:
    if s.device != "cpu":
        return "CPU only"
    if s.model == "linear":
        return "classifiers only (see sklearn ridge)"
    if _optional("sklearn.linear_model") is None:
        return "scikit-learn is not importable"
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    np = s.np
    X, y = s.data.X, s.data.y
    n = X.shape[0]
    # anyglm's objective is mean loss + (alpha/2)||W||^2; sklearn's is C * sum + (1/2)||W||^2.
    C = 1.0 / (s.alpha * n)

    def fit(max_iter: int) -> Any:
        est = LogisticRegression(C=C, solver="lbfgs", max_iter=max_iter, tol=1e-12)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return est.fit(X, y)

    # The target: anyglm's held-out accuracy after its one epoch.
    target = float(_estimator(s, 1).fit(X, y).score(s.data.X_test, s.data.y_test))
    s.target_accuracy = target

    def acc(e: Any) -> float:
        return float(np.mean(e.predict(s.data.X_test) == s.data.y_test))

    # Fewest iterations reaching the target: doubling, then bisection.
    lo, hi, reached = 0, 1, None
    while hi <= 512:
        e = fit(hi)
        if acc(e) >= target:
            reached = acc(e)
            break
        if int(np.max(e.n_iter_)) < hi:  # converged below the target
            break
        lo, hi = hi, hi * 2
    if reached is None:
        s.notes[LBFGS] = f"never reached {target:.4f} (stopped at {hi} iterations)"
        iters = hi
    else:
        while hi - lo > 1:
            mid = (lo + hi) // 2
            e = fit(mid)
            if acc(e) >= target:
                hi, reached = mid, acc(e)
            else:
                lo = mid
        iters = hi
        s.notes[LBFGS] = f"{iters} iterations to {reached:.4f} >= anyglm's {target:.4f}"

    def run() -> Any:
        return fit(iters)

    return run


def setup_ridge(s: Setup) -> Callable[[], Any] | str:
    if s.device != "cpu":
        return "CPU only"
    if s.model != "linear":
        return "linear model only"
    if _optional("sklearn.linear_model") is None:
        return "scikit-learn is not importable"
    from sklearn.linear_model import Ridge

    X, y = s.data.X, s.data.y
    n = X.shape[0]

    def run() -> Any:
        return Ridge(alpha=s.alpha * n).fit(X, y)

    return run


SETUPS: dict[str, Callable[[Setup], Callable[[], Any] | str]] = {
    READ: setup_read,
    SLICES: lambda s: setup_hand(s, gather=False),
    GATHER: lambda s: setup_hand(s, gather=True),
    AG_EPOCH: setup_anyglm_epoch,
    AG_PORTABLE: lambda s: setup_anyglm_epoch(s, accelerate=False),
    AG_DERIVED: setup_anyglm_derived,
    AG_FIT: setup_anyglm_fit,
    TORCH: setup_torch,
    **{m: (lambda s, m=m: setup_framework_epoch(s, m)) for m in FRAMEWORK_ROWS},
    SGD: setup_sgd,
    LBFGS: setup_lbfgs,
    RIDGE: setup_ridge,
}


def make_setup(np: Any, args: argparse.Namespace, model: str, batch: int, dtype: str, n: int,
               n_test: int) -> Setup:  # fmt: skip
    data = make_data(np, n, args.d, args.classes, model, dtype, args.seed, n_test)
    s = Setup(np, model, batch, dtype, args.lr, args.alpha, args.seed, args.device, data)
    if args.device == "cuda":
        import cupy

        s.xp_hand = cupy
        s.dev_X, s.dev_Y = cupy.asarray(data.X), cupy.asarray(data.Y)
        s.sync = cupy.cuda.Device().synchronize
    else:
        s.xp_hand, s.dev_X, s.dev_Y = np, data.X, data.Y
    return s


def cuda_problem() -> str | None:
    """Why ``--device cuda`` cannot run here, or None."""
    cupy = _optional("cupy")
    if cupy is None:
        return "CuPy is not importable"
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            return "CuPy sees no GPU"
    except Exception as exc:  # no driver
        return f"CuPy sees no GPU ({type(exc).__name__}: {exc})"
    return None


# -- timing ---------------------------------------------------------------------------------


@dataclass
class Row:
    method: str
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    skipped: str | None = None
    note: str = ""
    compile_s: float | None = None  # one-off compile time (its first, untimed run)

    @property
    def median(self) -> float:
        return statistics.median(self.wall) if self.wall else float("nan")

    @property
    def cpu_median(self) -> float:
        return statistics.median(self.cpu) if self.cpu else float("nan")

    def paired(self, ref: Row | None) -> float | None:
        """Median over rounds of this row's time over ``ref``'s in the same round.

        Runs of one round are seconds apart, so a slow drift of the machine's load
        cancels out of each quotient; a steadier ratio than the ratio of medians.
        """
        if ref is None or not self.wall or len(ref.wall) != len(self.wall):
            return None
        return statistics.median(a / b for a, b in zip(self.wall, ref.wall, strict=True))


def time_methods(s: Setup, methods: list[str], repeats: int) -> dict[str, Row]:
    """Median wall and CPU time of each method, interleaved repeat by repeat."""
    rows: dict[str, Row] = {}
    runs: dict[str, Callable[[], Any]] = {}
    for name in methods:
        label = name.replace("numpy", "cupy") if s.xp_hand is not s.np else name
        row = rows[name] = Row(label)
        try:
            made = SETUPS[name](s)
        except Exception as exc:  # report, never abort the whole benchmark
            row.skipped = f"{type(exc).__name__}: {exc}"
            continue
        if isinstance(made, str):
            row.skipped = made
            continue
        try:
            made()  # warm-up: imports, allocator, kernels; not timed
        except Exception as exc:
            row.skipped = f"{type(exc).__name__}: {exc}"
            continue
        runs[name] = made
    for rep in range(repeats):
        order = list(runs)
        k = rep % len(order) if order else 0
        for name in order[k:] + order[:k]:  # rotate the order from repeat to repeat
            c0, t0 = time.process_time(), time.perf_counter()
            out = runs[name]()
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            if name == AG_DERIVED:
                wall, cpu = float(out), float("nan")
            rows[name].wall.append(wall)
            rows[name].cpu.append(cpu)
    for name, note in s.notes.items():
        if name in rows:
            rows[name].note = note
    for name, seconds in s.compile_s.items():
        if name in rows:
            rows[name].compile_s = seconds
    return rows


def verify(s: Setup) -> dict[str, float]:
    """Largest |W - W_anyglm| of the by-hand loops and torch after the same epoch."""
    np = s.np
    ref = s.params.get(AG_EPOCH)
    out: dict[str, float] = {}
    if ref is None:
        return out
    scale = float(np.max(np.abs(ref[0]))) or 1.0
    for name, (W, _b) in s.params.items():
        if name == AG_EPOCH:
            continue
        out[name] = float(np.max(np.abs(np.asarray(W, dtype=np.float64) - ref[0]))) / scale
    return out


# -- targets and printing -------------------------------------------------------------------


def targets(rows: dict[str, Row], s: Setup) -> list[dict[str, Any]]:
    """The targets of the performance issue, on the medians of this run.

    ``value`` is the ratio of the medians (what decides ``holds``); ``paired`` the
    median of the same ratio taken round by round, for comparison.
    """

    def med(name: str) -> float | None:
        r = rows.get(name)
        return r.median if r is not None and r.wall else None

    def paired(num: str, den: str) -> float | None:
        a, b = rows.get(num), rows.get(den)
        return a.paired(b) if a is not None and b is not None else None

    out: list[dict[str, Any]] = []

    def add(
        text: str, num: str, den: str, check: Callable[[float], bool], stretch: bool,
        extra: bool = False,
    ) -> None:  # fmt: skip
        a, b = med(num), med(den)
        value = a / b if a and b else None
        out.append(
            {
                "target": text,
                "holds": None if value is None else check(value),
                "value": value,
                "paired": paired(num, den),
                "stretch": stretch,
                # Ours, stricter than the issue (which times epochs): --strict ignores it.
                "extra": extra,
            }
        )

    hand = "numpy" if s.device == "cpu" else "cupy"
    add(f"anyglm epoch <= 1.05 x {hand} gather", AG_EPOCH, GATHER, lambda v: v <= 1.05, False)
    add(f"anyglm epoch <= 1.05 x {hand} slices", AG_EPOCH, SLICES, lambda v: v <= 1.05, True)
    add("anyglm epoch <= 2 x reading X once", AG_EPOCH, READ, lambda v: v <= 2.0, True)
    if s.device == "cpu":
        add("anyglm epoch >= 1.5 x faster than torch", TORCH, AG_EPOCH, lambda v: v >= 1.5, False)
        # The PyTorch and JAX backends: JAX against the NumPy backend's epoch (numba's loop
        # where installed), torch against the hand-written PyTorch loop; the compiled torch
        # target only where torch.compile ran (else the eager one is the target).
        add("anyglm jax jit <= 0.9 x anyglm epoch", JAX_JIT, AG_EPOCH, lambda v: v <= 0.9, False)
        compiled = rows.get(TORCH_COMPILE)
        if compiled is None or compiled.note == "torch.compile":
            add("anyglm torch compile <= 0.9 x torch", TORCH_COMPILE, TORCH, lambda v: v <= 0.9,
                False)  # fmt: skip
        add("anyglm torch eager <= 1.05 x torch", TORCH_EAGER, TORCH, lambda v: v <= 1.05, False)
        if s.model == "softmax":  # the figure: 10 one-vs-rest passes of SGDClassifier
            add(
                "anyglm epoch >= 20 x faster than sklearn SGD",
                SGD,
                AG_EPOCH,
                lambda v: v >= 20,
                False,
            )
            add(
                "anyglm fit >= 20 x faster than sklearn SGD fit",
                SGD,
                AG_FIT,
                lambda v: v >= 20,
                False,
                extra=True,
            )
    else:
        add("anyglm epoch no slower than torch CUDA", TORCH, AG_EPOCH, lambda v: v >= 1.0, False)
        ag = med(AG_EPOCH)
        if s.data.X.shape[0] == 60000 and s.batch == 1024 and ag:
            out.append(
                {
                    "target": "anyglm epoch <= 5 ms (FMNIST-shaped, batch 1024)",
                    "holds": ag <= 0.005,
                    "value": ag * 1e3,
                    "paired": None,
                    "stretch": False,
                }
            )
    return out


def print_table(title: str, rows: dict[str, Row], s: Setup, diffs: dict[str, float]) -> None:
    ag = rows.get(AG_EPOCH)
    fit = rows.get(AG_FIT)
    ag_t = ag.median if ag and ag.wall else None
    fit_t = fit.median if fit and fit.wall else None
    print(f"\n## {title}")
    print(
        f"{'method':20s} {'median ms':>10s} {'min ms':>9s} {'cpu ms':>9s} "
        f"{'x anyglm epoch':>15s} {'paired':>7s} {'x anyglm fit':>13s}  notes"
    )
    for name in ALL_METHODS:
        row = rows.get(name)
        if row is None:
            continue
        if row.skipped:
            print(f"{row.method:20s} {'-':>10s} {'':>9s} {'':>9s} {'':>15s} {'':>7s} "
                  f"{'':>13s}  skipped: {row.skipped}")  # fmt: skip
            continue
        med, mn = row.median * 1e3, min(row.wall) * 1e3
        cpu = row.cpu_median * 1e3
        r_ep = f"{row.median / ag_t:.2f}" if ag_t else "-"
        r_fit = f"{row.median / fit_t:.2f}" if fit_t and name in FIT_METHODS else ""
        p = row.paired(ag) if name != AG_DERIVED else None
        r_pair = f"{p:.2f}" if p is not None else ""
        notes = [row.note] if row.note else []
        if row.compile_s is not None:
            notes.append(f"compiled once in {row.compile_s:.2f} s (not in the times)")
        if name in diffs:
            notes.append(f"|W - W_anyglm| / max|W| = {diffs[name]:.1e}")
        print(
            f"{row.method:20s} {med:10.1f} {mn:9.1f} {cpu:9.1f} {r_ep:>15s} {r_pair:>7s} "
            f"{r_fit:>13s}  " + "; ".join(notes)
        )


def print_targets(result: list[dict[str, Any]]) -> None:
    print("\ntargets (ratio of the medians above; in brackets, the paired ratio):")
    for t in result:
        state = {True: "holds", False: "FAILS", None: "n/a"}[t["holds"]]
        value = "-" if t["value"] is None else f"{t['value']:.2f}"
        if t.get("paired") is not None:
            value += f" ({t['paired']:.2f})"
        label = " (stretch)" if t["stretch"] else " (extra check)" if t.get("extra") else ""
        print(f"  [{state:5s}] {t['target']}{label}: {value}")


def rows_json(rows: dict[str, Row]) -> list[dict[str, Any]]:
    ag = rows.get(AG_EPOCH)
    ag_t = ag.median if ag and ag.wall else None
    out = []
    for name, r in rows.items():
        entry: dict[str, Any] = {"method": r.method, "description": DESCRIPTIONS[name]}
        if r.skipped:
            entry["skipped"] = r.skipped
        else:
            entry.update(
                median_s=r.median,
                min_s=min(r.wall),
                cpu_median_s=r.cpu_median,
                runs_s=r.wall,
                ratio_vs_anyglm_epoch=(r.median / ag_t) if ag_t else None,
                paired_ratio_vs_anyglm_epoch=r.paired(ag) if name != AG_DERIVED else None,
                note=r.note,
                compile_s=r.compile_s,
            )
        out.append(entry)
    return out


# -- memory ---------------------------------------------------------------------------------


def _status_kb(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` (Linux), else ``None``."""
    try:
        with open("/proc/self/status") as f:
            m = re.search(rf"{field}:\s+(\d+)", f.read())
        return int(m.group(1)) if m else None
    except OSError:
        return None


def _hwm_kb() -> int | None:
    return _status_kb("VmHWM")


def _rss_kb() -> int | None:
    return _status_kb("VmRSS")


def _reset_hwm() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def probe(args: argparse.Namespace) -> None:
    """Run one fit in this (fresh) process and print its peak memory as JSON."""
    import tracemalloc

    import numpy as np

    model, dtype, method = args.model[0], args.dtype[0], args._probe
    s = make_setup(np, args, model, args._probe_batch, dtype, args.n, 0)
    made = SETUPS[method](s)
    if isinstance(made, str):
        print(json.dumps({"method": method, "skipped": made}))
        return
    rss_before = _rss_kb()
    reset = _reset_hwm()
    tracemalloc.start()
    made()
    traced_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    hwm = _hwm_kb()
    if not reset or hwm is None:  # fall back to the whole process's peak
        import resource

        hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "method": method,
                "data_bytes": s.data.nbytes,
                "rss_before_fit_bytes": None if rss_before is None else rss_before * 1024,
                "peak_rss_bytes": hwm * 1024,
                "peak_reset": reset,
                "traced_peak_bytes": traced_peak,
            }
        )
    )


def measure_memory(args: argparse.Namespace, model: str, batch: int, dtype: str) -> list[dict]:
    methods = [m for m in (AG_FIT, GATHER, TORCH, SGD) if _wanted(args, m)]
    out = []
    for m in methods:
        cmd = [sys.executable, os.path.abspath(__file__), "--_probe", m, "--_probe-batch",
               str(batch), "--model", model, "--dtype", dtype, "--n", str(args.n), "--d",
               str(args.d), "--classes", str(args.classes), "--device", args.device]  # fmt: skip
        if args.threads is not None:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            out.append({"method": m, "skipped": (proc.stderr.strip().splitlines() or ["?"])[-1]})
            continue
        out.append(json.loads(lines[-1]))
    return out


def print_memory(result: list[dict]) -> list[dict[str, Any]]:
    print("\n## peak memory during one fit (fresh process each; MB = 1e6 bytes)")
    print(f"{'method':18s} {'data MB':>9s} {'RSS before':>11s} {'peak RSS':>9s} "
          f"{'extra RSS':>10s} {'traced':>8s}  target: peak <= 2 x data + 100 MB")  # fmt: skip
    checks = []
    for r in result:
        if "skipped" in r:
            print(f"{r['method']:18s} skipped: {r['skipped']}")
            continue
        data = r["data_bytes"] / 1e6
        before = (r["rss_before_fit_bytes"] or 0) / 1e6
        peak = r["peak_rss_bytes"] / 1e6
        extra = peak - before
        traced = r["traced_peak_bytes"] / 1e6
        # The fit's own footprint: the data it was given plus what it adds.
        ok = data + extra <= 2 * data + 100
        if r["method"] == AG_FIT:
            checks.append(
                {
                    "target": "anyglm fit: data + extra RSS <= 2 x data + 100 MB",
                    "holds": ok,
                    "value": data + extra,
                    "paired": None,
                    "stretch": False,
                }
            )
        print(
            f"{r['method']:18s} {data:9.0f} {before:11.0f} {peak:9.0f} {extra:10.0f} "
            f"{traced:8.0f}  {'holds' if ok else 'FAILS'}"
        )
    return checks


# -- main -----------------------------------------------------------------------------------


def _wanted(args: argparse.Namespace, name: str) -> bool:
    if name in args.skip:
        return False
    return args.methods is None or name in args.methods


def _meta(args: argparse.Namespace, np: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "command": " ".join([os.path.basename(sys.executable), *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "numpy": np.__version__,
    }
    for name in ("anyglm", "sklearn", "torch", "cupy", "numba", "array_api_compat"):
        mod = _optional(name)
        if mod is not None:
            meta[name] = getattr(mod, "__version__", "?")
    with contextlib.suppress(Exception):
        from threadpoolctl import threadpool_info

        meta["blas"] = [
            {k: i.get(k) for k in ("internal_api", "version", "num_threads")}
            for i in threadpool_info()
        ]
    with contextlib.suppress(OSError):
        meta["loadavg_start"] = os.getloadavg()
    if args.device == "cuda":
        with contextlib.suppress(Exception):
            import cupy

            props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
            meta["gpu"] = props["name"].decode()
    return meta


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    _limit_threads(args.threads)
    # The fits here run a fixed number of epochs on purpose: anyglm's warning that the
    # stopping rule was not met would only clutter the table.
    warnings.filterwarnings("ignore", message=r".* reached epochs=\d+ before its loss")
    if args.device == "cuda":
        # JAX would take 75 % of the GPU's memory when it starts, leaving CuPy and torch
        # (timed in the same process) short; allocate on demand instead.
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    import numpy as np

    if args.threads is not None:
        torch = _optional("torch")
        if torch is not None:
            torch.set_num_threads(args.threads)
    if args._probe:
        probe(args)
        return 0
    if args.device == "cuda":
        problem = cuda_problem()
        if problem is not None:
            print(f"# --device cuda: {problem}; nothing was timed")
            return SKIPPED_EXIT
    meta = _meta(args, np)
    print(f"# anyglm epoch benchmark, {meta['date']}, device {args.device}")
    print(f"# {meta['command']}")
    print(f"# python {meta['python']}, numpy {meta['numpy']}, cpus {meta['cpu_count']}, "
          f"threads {args.threads or 'library default'}"
          + (f", gpu {meta['gpu']}" if "gpu" in meta else ""))  # fmt: skip
    print(
        f"# one epoch of minibatch SGD, lr {args.lr}, alpha {args.alpha}; medians of "
        f"{args.repeats} runs, after one untimed warm-up run each"
    )
    report: dict[str, Any] = {"meta": meta, "results": [], "scaling": [], "memory": []}
    all_ok = True
    methods = [m for m in ALL_METHODS if _wanted(args, m)]
    if not args.scaling_only:
        for model in args.model:
            for dtype in args.dtype:
                for batch in args.batch:
                    s = make_setup(np, args, model, batch, dtype, args.n, args.n_test)
                    title = f"{model}, {dtype}, batch {batch}, n {args.n} x d {args.d}" + (
                        f", {args.classes} classes" if model == "softmax" else ""
                    )
                    rows = time_methods(s, methods, args.repeats)
                    diffs = {} if args.no_verify else verify(s)
                    print_table(title, rows, s, diffs)
                    tg = targets(rows, s)
                    mem: list[dict] = []
                    if args.memory and args.device == "cpu":
                        mem = measure_memory(args, model, batch, dtype)
                        tg += print_memory(mem)
                    print_targets(tg)
                    all_ok &= all(
                        t["holds"] is not False
                        for t in tg
                        if not t["stretch"] and not t.get("extra")
                    )
                    report["results"].append(
                        {
                            "model": model,
                            "dtype": dtype,
                            "batch": batch,
                            "n": args.n,
                            "d": args.d,
                            "classes": s.data.n_out,
                            "rows": rows_json(rows),
                            "same_math_param_diff": diffs,
                            "targets": tg,
                            "memory": mem,
                            "target_accuracy": s.target_accuracy,
                        }
                    )
                    del s
    if args.scaling or args.scaling_only:
        sizes = [10_000, 100_000] + ([1_000_000] if args.big else [])
        scale_methods = [m for m in SCALING_METHODS if _wanted(args, m)]
        model, dtype, batch = args.model[0], args.dtype[0], args.batch[0]
        print(f"\n## scaling in n: {model}, {dtype}, batch {batch}, d {args.d}")
        print(f"{'n':>9s} " + " ".join(f"{m:>14s}" for m in scale_methods) + "   (ms per epoch)")
        per_n = []
        for n in sizes:
            s = make_setup(np, args, model, batch, dtype, n, 0)
            rows = time_methods(s, scale_methods, args.repeats)
            cells = []
            for m in scale_methods:
                r = rows[m]
                cells.append("skipped" if r.skipped else f"{r.median * 1e3:.1f}")
            print(f"{n:9d} " + " ".join(f"{c:>14s}" for c in cells))
            per_n.append({"n": n, "rows": rows_json(rows)})
            del s
        # Linear growth: time per row at the largest n against the smallest.
        growth = {}
        for i, m in enumerate(scale_methods):
            first, last = per_n[0]["rows"][i], per_n[-1]["rows"][i]
            if "median_s" in first and "median_s" in last:
                per_row_last = last["median_s"] / per_n[-1]["n"]
                growth[m] = per_row_last / (first["median_s"] / per_n[0]["n"])
        print(
            "time per row at n = {:,} relative to n = {:,}: ".format(per_n[-1]["n"], per_n[0]["n"])
            + ", ".join(f"{m} {g:.2f}" for m, g in growth.items())
            + "  (1.00 = linear in n)"
        )
        report["scaling"] = {"model": model, "dtype": dtype, "batch": batch, "sizes": per_n,
                             "per_row_growth": growth}  # fmt: skip
    with contextlib.suppress(OSError):
        meta["loadavg_end"] = os.getloadavg()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=float)
        print(f"\nwrote {args.json}")
    return 1 if args.strict and not all_ok else 0


if __name__ == "__main__":
    sys.exit(main())
