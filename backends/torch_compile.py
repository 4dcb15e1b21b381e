"""The PyTorch backend's accelerator: the portable step compiled by ``torch.compile``.

Nothing here writes the math a second time: the compiled function is
:func:`anyglm.steps.sgd_step` itself (the model's ``loss_and_dloss``, the
chain rule of :mod:`anyglm.glm`, the optimiser of :mod:`anyglm.optim`) with
``array_api_compat.torch`` as ``xp``, plus the minibatch's gather
(``xp.take``) and the running loss sum. TorchDynamo traces it into one graph
and Inductor compiles it: fused element-wise kernels around the two matrix
products, C++ on the CPU, Triton on a GPU. The loop over the minibatches of a
block stays in Python and calls the compiled step once per minibatch; a
block's short last minibatch is a second graph.

Everything a step needs besides arrays is passed as a tensor on the
parameters' device in their dtype (the step count ``t``, the per-column
hyperparameters, the first averaged step), so one graph serves every step,
block and epoch: a Python number would be baked into the graph, or recompile it.

It accepts every optimiser spec, any number of configurations and row weights,
and any model ``torch.compile`` can run (a model that breaks the graph still
runs correctly, in pieces); it declines sparse ``X``. Where compiling fails
(no C++ compiler for the CPU, no Triton for a GPU, a model Dynamo cannot
handle), one :class:`anyglm.PluginWarning` says why and the portable loop
trains instead, for that model (or, when the toolchain is missing, for every
model) for the rest of the process.

Compiling costs seconds (about 3 s for the first graph of a process with a warm
Inductor cache, 15 to 20 s with a cold one, a fraction of a second for each
later graph), so blocks of fewer than ``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS``
values (default 2**20, as for numba) run the portable loop, and
``ANYGLM_DISABLE_TORCH_COMPILE=1`` turns compiling off altogether.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import time
import types
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from anyglm._env import env_count, env_flag
from anyglm.accelerate import AcceleratorSpec, BlockResult, BlockTask
from anyglm.optim import Columns, StepContext, build
from anyglm.registry import PluginWarning
from anyglm.steps import sgd_step

__all__ = [
    "COMPILE_LOG",
    "MIN_ELEMENTS",
    "CompileRecord",
    "TorchCompileAccelerator",
    "compile_disabled",
    "declares",
    "min_elements_setting",
    "toolchain_problem",
]

#: Default of ``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS``: below this many values in a block
#: the portable loop runs (compiling would cost more than it saves).
MIN_ELEMENTS = 1 << 20
#: Compiled steps kept in the process (least recently used dropped first).
CACHE_SIZE = 32


@dataclass(frozen=True)
class CompileRecord:
    """One compiled graph: the model, the minibatch rows and how long the first call took.

    The first call of a compiled step traces, compiles and runs it; ``seconds``
    is that call's time, so it includes one step's arithmetic (milliseconds).

    Examples
    --------
    >>> from anyglm.backends.torch_compile import CompileRecord
    >>> CompileRecord("softmax", 256, "float32", "cpu", 2.9).rows
    256
    """

    model: str
    rows: int
    dtype: str
    device: str
    seconds: float


#: Every compiled graph of this process, oldest first (benchmarks read the one-off cost here).
COMPILE_LOG: list[CompileRecord] = []

_cache: OrderedDict[Any, Any] = OrderedDict()
#: Why compiling failed: by (model type, model name), or for every model under the key None.
_failed: dict[Any, str] = {}


def compile_disabled() -> bool:
    """Whether ``ANYGLM_DISABLE_TORCH_COMPILE`` turns the compiled step off.

    Examples
    --------
    >>> import os
    >>> from anyglm.backends.torch_compile import compile_disabled
    >>> "ANYGLM_DISABLE_TORCH_COMPILE" in os.environ or not compile_disabled()
    True
    """
    return env_flag("ANYGLM_DISABLE_TORCH_COMPILE")


def min_elements_setting() -> int:
    """``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS``, or :data:`MIN_ELEMENTS` when it is not set.

    Raises
    ------
    ValueError
        When the variable is not a whole number of 0 or more.

    Examples
    --------
    >>> import os
    >>> from anyglm.backends.torch_compile import MIN_ELEMENTS, min_elements_setting
    >>> "ANYGLM_TORCH_COMPILE_MIN_ELEMENTS" in os.environ or min_elements_setting() == MIN_ELEMENTS
    True
    """
    return env_count("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", MIN_ELEMENTS)


def toolchain_problem(device_type: str) -> str | None:
    """Why Inductor cannot compile for ``device_type`` here, or ``None``; imports nothing.

    The CPU needs a C++ compiler (``CXX``, else ``g++``, ``clang++`` or ``c++`` on
    the PATH); a CUDA GPU needs Triton.

    Examples
    --------
    >>> from anyglm.backends.torch_compile import toolchain_problem
    >>> toolchain_problem("cpu") is None or "C++ compiler" in toolchain_problem("cpu")
    True
    """
    if device_type == "cpu":
        names = [os.environ.get("CXX", "").strip(), "g++", "clang++", "c++"]
        if any(name and shutil.which(name) for name in names):
            return None
        return "no C++ compiler found for Inductor on the CPU (set CXX or install g++)"
    if device_type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "Triton is not installed (Inductor needs it to compile for a GPU)"
        return None
    return f"Inductor does not compile for {device_type!r} devices"


def declares(spec: AcceleratorSpec) -> bool:
    """Whether the compiled step takes ``spec``: every dense spec, unless compiling is off.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.accelerate import AcceleratorSpec
    >>> from anyglm.backends.torch_compile import compile_disabled, declares
    >>> from anyglm.optim import OptimizerSpec
    >>> spec = AcceleratorSpec(anyglm.get_model("logistic"), "logistic",
    ...                        OptimizerSpec(penalty="l1", average=2), "float64", 3, True, False)
    >>> declares(spec) or compile_disabled()
    True
    """
    return (
        not spec.sparse
        and not compile_disabled()
        and None not in _failed
        and (type(spec.model), spec.model_name) not in _failed
    )


def _step_function(spec: AcceleratorSpec, xp: Any) -> Any:
    """The step that is compiled: gather the minibatch, :func:`sgd_step`, add its loss."""
    model, n_configs = spec.model, spec.n_configs
    optimizer = build(spec.optimizer, xp)

    def step(
        W: Any,
        b: Any,
        state: Any,
        total: Any,
        X: Any,
        Y: Any,
        w: Any,
        idx: Any,
        t: Any,
        cols: tuple[Any, ...],
        average_from: Any,
    ) -> Any:
        Xb = xp.take(X, idx, axis=0)
        Yb = xp.take(Y, idx, axis=0)
        wb = None if w is None else xp.take(w, idx, axis=0)
        ctx = StepContext(t, Columns(*cols), average_from)
        W, b, state, loss = sgd_step(model, optimizer, xp, n_configs, W, b, state, Xb, Yb, wb, ctx)
        return W, b, state, total + loss

    return step


def _compiled_step(spec: AcceleratorSpec, xp: Any, serial: int) -> Any:
    """``torch.compile`` of the step for ``spec``, with a code object of its own.

    Dynamo keeps its graphs, and counts recompilations against its limit, per
    code object; a copy per spec keeps the steps of different fits from
    evicting one another or falling back to eager mode at that limit.
    """
    import torch

    fn = _step_function(spec, xp)
    code = fn.__code__.replace(co_name=f"anyglm_step_{serial}")
    fresh = types.FunctionType(code, fn.__globals__, code.co_name, fn.__defaults__, fn.__closure__)
    return torch.compile(fresh, dynamic=False)


class TorchCompileAccelerator:
    """``torch.compile`` of the portable step; the loop over a block's minibatches in Python.

    Parameters
    ----------
    spec : AcceleratorSpec
        A spec :func:`declares` accepts.
    backend : Backend
        The PyTorch backend.
    min_elements : int, optional
        Smallest block (``X`` values) it compiles for; default
        ``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS`` or 2**20.

    Attributes
    ----------
    compile_seconds : float
        Time of the first calls of new compiled graphs in this fit.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.accelerate import AcceleratorSpec, BlockTask
    >>> from anyglm.backends.torch_compile import TorchCompileAccelerator
    >>> from anyglm.optim import Columns, OptimizerSpec
    >>> be = anyglm.get_backend("torch")
    >>> spec = AcceleratorSpec(anyglm.get_model("linear"), "linear", OptimizerSpec(),
    ...                        "float64", 1, False, False)
    >>> arr = lambda a: be.from_numpy(np.asarray(a, dtype=np.float64))
    >>> task = BlockTask(arr(np.ones((4, 1))), arr(np.full((4, 1), 2.0)), None,
    ...                  np.array([3, 1, 0, 2]), 2, arr(np.zeros((1, 1))), arr(np.zeros(1)),
    ...                  {}, 0, Columns(0.25), np.array([0.25]), np.array([0.0]))
    >>> TorchCompileAccelerator(spec, be)(task) is None  # 4 values: below the threshold
    True
    >>> res = TorchCompileAccelerator(spec, be, min_elements=0)(task)  # compiles: seconds
    >>> res.W.tolist(), res.b.tolist(), res.loss_sum.tolist()  # as the portable loop gives
    ([[0.75]], [0.75], [5.0])
    """

    def __init__(
        self, spec: AcceleratorSpec, backend: Any, *, min_elements: int | None = None
    ) -> None:
        if min_elements is not None and int(min_elements) < 0:
            raise ValueError(f"min_elements must be 0 or more, got {min_elements!r}")
        self.spec = spec
        self.backend = backend
        self.min_elements = None if min_elements is None else int(min_elements)
        self.compile_seconds = 0.0

    def _usable(self, X: Any) -> bool:
        threshold = min_elements_setting() if self.min_elements is None else self.min_elements
        if X.numel() < max(threshold, 1) or not declares(self.spec):
            return False
        problem = toolchain_problem(X.device.type)
        if problem is not None:
            self._give_up(None, problem)
            return False
        return True

    def _give_up(self, key: Any, reason: str) -> None:
        _failed[key] = reason
        who = "any model" if key is None else f"model {self.spec.model_name!r}"
        warnings.warn(
            f"anyglm could not compile the training step of {who} with torch.compile "
            f"({reason}); training goes on with the portable loop (eager PyTorch). Set "
            f"ANYGLM_DISABLE_TORCH_COMPILE=1 to skip compiling.",
            PluginWarning,
            stacklevel=5,
        )

    def _step(self, dtype: Any, device: Any) -> _Step:
        key = (self.spec, str(dtype), str(device))
        entry = _cache.get(key)
        if entry is None:
            with _quiet():
                entry = _Step(_compiled_step(self.spec, self.backend.xp, next(_serial)))
            _cache[key] = entry
            while len(_cache) > CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        return entry

    def __call__(self, task: BlockTask) -> BlockResult | None:
        import torch

        X = task.X
        if not self._usable(X):
            return None
        W, b, state = task.W, task.b, task.state
        dtype, device = W.dtype, W.device
        try:
            entry = self._step(dtype, device)
        except Exception as exc:  # torch.compile refuses this Python or platform
            self._give_up(None, _reason(exc))
            return None
        if task.order is None:
            order = torch.arange(int(X.shape[0]), device=device)
        else:  # one host-to-device copy per block; the steps take views of it
            order = self.backend.from_numpy(task.order, dtype="int64", device=device)
        n, bs = int(order.shape[0]), task.batch_size
        # t, the hyperparameters and the first averaged step as tensors in the parameters'
        # dtype: one graph for every step (float64 keeps t exact where the portable loop's
        # Python int is; float32 rounds t above 2**24 steps, by at most 6e-8 relative).
        ts = torch.arange(task.t + 1, task.t + 1 + task.n_steps, dtype=dtype, device=device)

        def tensor(v: Any) -> Any:
            return v if isinstance(v, torch.Tensor) else torch.tensor(v, dtype=dtype, device=device)

        c = task.columns
        cols = tuple(tensor(v) for v in (c.learning_rate, c.alpha, c.l2, c.l1, c.t0))
        avg = None if task.average_from is None else tensor(float(task.average_from))
        total = torch.zeros((task.n_configs,), dtype=dtype, device=device)
        graph = (tuple(X.shape), task.weights is None, avg is None, tuple(v.shape for v in cols))
        with torch.no_grad():
            for j, start in enumerate(range(0, n, bs)):
                idx = order[start : min(start + bs, n)]
                shape = (int(idx.shape[0]), *graph)
                new = shape not in entry.graphs
                began = time.perf_counter()
                try:
                    with _quiet() if new else contextlib.nullcontext():
                        W, b, state, total = entry.fn(
                            W, b, state, total, X, task.Y, task.weights, idx, ts[j], cols, avg
                        )
                except Exception as exc:
                    if not new:
                        raise
                    # Compiling failed. Nothing was changed in place, so the portable loop
                    # runs this block from its start (and raises any error of the model's).
                    self._give_up((type(self.spec.model), self.spec.model_name), _reason(exc))
                    return None
                if new:
                    seconds = time.perf_counter() - began
                    entry.graphs.add(shape)
                    self.compile_seconds += seconds
                    COMPILE_LOG.append(
                        CompileRecord(
                            self.spec.model_name, shape[0], self.spec.dtype, str(device), seconds
                        )
                    )
        return BlockResult(W, b, state, total)


@dataclass
class _Step:
    """A compiled step and the graph shapes it has compiled (first calls are compilations)."""

    fn: Any
    graphs: set[Any] = field(default_factory=set)


_serial = itertools.count()


def _reason(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the DeprecationWarnings torch's own modules raise while Inductor is imported."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch")
        yield
