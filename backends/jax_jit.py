"""The JAX backend's accelerator: the portable step compiled by ``jax.jit``, a block as one scan.

Nothing here writes the math a second time. The compiled function is
:func:`anyglm.steps.sgd_step` itself (the model's ``loss_and_dloss``, the
chain rule of :mod:`anyglm.glm`, the optimiser of :mod:`anyglm.optim`),
traced with ``jax.numpy`` as ``xp``: every full minibatch of a block is one
iteration of a ``jax.lax.scan`` whose body gathers its rows with
``jnp.take(X, idx, axis=0)`` from a ``(n_batches, batch_size)`` index
matrix, and the short last minibatch, if any, follows in the same compiled
function. The step count ``t`` is a traced integer in the scan's carry, so
the schedules, averaging and the L1 penalty are compiled too. One call, and
one host-to-device copy of the row order, per block.

So it accepts every optimiser spec, any number of configurations, row
weights, and any model whose ``loss_and_dloss`` ``jax.jit`` can trace; it
declines sparse ``X`` only. A model that cannot be traced (a Python branch on
an array value, a conversion to a host number) is found when its first block
is traced: one :class:`anyglm.PluginWarning` names it and the reason, and
the portable loop trains it, in that fit and every later one of the process.

Compiled functions are kept (the last :data:`CACHE_SIZE`) per model,
optimiser spec, configuration count, block and batch shape, dtype and
device, so a fit compiles once and later fits of the same shapes not at all;
:data:`COMPILE_LOG` records how long each compilation took.
"""

from __future__ import annotations

import time
import warnings
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from anyglm.accelerate import AcceleratorSpec, BlockResult, BlockTask
from anyglm.optim import Columns, StepContext, build
from anyglm.registry import PluginWarning
from anyglm.steps import sgd_step

__all__ = ["CACHE_SIZE", "COMPILE_LOG", "CompileRecord", "JaxAccelerator", "declares"]

#: Compiled functions kept in the process (least recently used dropped first).
CACHE_SIZE = 64


@dataclass(frozen=True)
class CompileRecord:
    """One compilation: the model, the block's shape and how long tracing plus compiling took.

    Examples
    --------
    >>> from anyglm.backends.jax_jit import CompileRecord
    >>> CompileRecord("softmax", 60000, 256, "float32", 0.41).seconds
    0.41
    """

    model: str
    rows: int
    batch_size: int
    dtype: str
    seconds: float


#: Every compilation of this process, oldest first (benchmarks read the one-off cost here).
COMPILE_LOG: list[CompileRecord] = []

_cache: OrderedDict[Any, Any] = OrderedDict()
#: Models found untraceable, by (model type, model name): never traced again.
_untraceable: dict[tuple[type, str], str] = {}


def declares(spec: AcceleratorSpec) -> bool:
    """Whether the compiled scan takes ``spec``: every dense spec, unless its model failed to trace.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.accelerate import AcceleratorSpec
    >>> from anyglm.backends.jax_jit import declares
    >>> from anyglm.optim import OptimizerSpec
    >>> softmax = anyglm.get_model("softmax")
    >>> declares(AcceleratorSpec(softmax, "softmax", OptimizerSpec(momentum=0.9, average=1),
    ...                          "float32", 4, True, False))
    True
    >>> declares(AcceleratorSpec(softmax, "softmax", OptimizerSpec(), "float32", 1, False, True))
    False
    """
    return not spec.sparse and (type(spec.model), spec.model_name) not in _untraceable


def _block_function(
    spec: AcceleratorSpec, n_full: int, rest: int, batch_size: int, averaging: bool
) -> Callable[..., Any]:
    """The function ``jax.jit`` compiles for one block shape (everything static is closed over)."""
    import jax
    import jax.numpy as jnp

    model, K = spec.model, spec.n_configs
    optimizer = build(spec.optimizer, jnp)

    def step(carry: Any, idx: Any, X: Any, Y: Any, w: Any, cols: Columns, avg: Any) -> Any:
        W, b, state, t, total = carry
        t = t + 1
        # Indices come from the source's order and are in bounds; "clip" spares the
        # mask that the default "fill" mode adds to every gather.
        Xb = jnp.take(X, idx, axis=0, mode="clip")
        Yb = jnp.take(Y, idx, axis=0, mode="clip")
        wb = None if w is None else jnp.take(w, idx, axis=0, mode="clip")
        ctx = StepContext(t, cols, avg if averaging else None)
        W, b, state, loss = sgd_step(model, optimizer, jnp, K, W, b, state, Xb, Yb, wb, ctx)
        return W, b, state, t, total + loss

    def run(
        W: Any, b: Any, state: Any, X: Any, Y: Any, w: Any, order: Any, t: Any, cols: Any, avg: Any
    ) -> Any:
        columns = Columns(*cols)
        total = jnp.zeros((K,), dtype=W.dtype)
        carry = (W, b, state, jnp.asarray(t, dtype=order.dtype), total)
        if n_full:
            full = jnp.reshape(order[: n_full * batch_size], (n_full, batch_size))

            def body(carry: Any, idx: Any) -> Any:
                return step(carry, idx, X, Y, w, columns, avg), None

            carry, _ = jax.lax.scan(body, carry, full)
        if rest:
            carry = step(carry, order[n_full * batch_size :], X, Y, w, columns, avg)
        W, b, state, _, total = carry
        return W, b, state, total

    return run


def _signature(args: tuple[Any, ...]) -> tuple[Any, ...]:
    """What a compiled function is specific to: each leaf's shape, dtype, weakness and device."""
    import jax

    leaves, tree = jax.tree_util.tree_flatten(args, is_leaf=lambda x: x is None)
    sig: list[Any] = []
    for leaf in leaves:
        if leaf is None or isinstance(leaf, (bool, int, float)):
            sig.append(type(leaf))
        else:
            sig.append((leaf.shape, str(leaf.dtype), getattr(leaf, "weak_type", False),
                        tuple(leaf.devices()) if hasattr(leaf, "devices") else None))  # fmt: skip
    return (tree, tuple(sig))


class JaxAccelerator:
    """``jax.jit`` of the portable step, a block of minibatches as one ``lax.scan``.

    Parameters
    ----------
    spec : AcceleratorSpec
        A spec :func:`declares` accepts.
    backend : Backend
        The JAX backend (its index dtype and host-to-device copies).

    Attributes
    ----------
    compile_seconds : float
        Time spent tracing and compiling in this fit (0 when every block
        found a compiled function in the cache).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.accelerate import AcceleratorSpec, BlockTask
    >>> from anyglm.backends.jax_jit import JaxAccelerator
    >>> from anyglm.optim import Columns, OptimizerSpec
    >>> be = anyglm.get_backend("jax")
    >>> spec = AcceleratorSpec(anyglm.get_model("linear"), "linear", OptimizerSpec(),
    ...                        "float32", 1, False, False)
    >>> arr = lambda a: be.from_numpy(np.asarray(a, dtype=np.float32))
    >>> task = BlockTask(arr(np.ones((4, 1))), arr(np.full((4, 1), 2.0)), None,
    ...                  np.array([3, 1, 0, 2]), 2, arr(np.zeros((1, 1))), arr(np.zeros(1)),
    ...                  {}, 0, Columns(0.25), np.array([0.25]), np.array([0.0]))
    >>> res = JaxAccelerator(spec, be)(task)
    >>> res.W.tolist(), res.b.tolist(), res.loss_sum.tolist()  # as the portable loop gives
    ([[0.75]], [0.75], [5.0])
    """

    def __init__(self, spec: AcceleratorSpec, backend: Any) -> None:
        self.spec = spec
        self.backend = backend
        self.compile_seconds = 0.0

    def __call__(self, task: BlockTask) -> BlockResult | None:
        spec = self.spec
        if (type(spec.model), spec.model_name) in _untraceable:
            return None
        be = self.backend
        device = be.device_of(task.X)
        m = int(task.X.shape[0])
        host_order = np.arange(m) if task.order is None else task.order
        order = be.from_numpy(host_order, dtype=be.index_dtype(device), device=device)
        n_full, rest = divmod(len(host_order), task.batch_size)
        averaging = task.average_from is not None
        cols = task.columns
        args = (
            task.W,
            task.b,
            task.state,
            task.X,
            task.Y,
            task.weights,
            order,
            task.t,
            (cols.learning_rate, cols.alpha, cols.l2, cols.l1, cols.t0),
            task.average_from if averaging else 0,
        )
        key = (spec, n_full, rest, task.batch_size, averaging, _signature(args))
        compiled = _cache.get(key)
        if compiled is None:
            compiled = self._compile(key, args, n_full, rest, task.batch_size, averaging)
            if compiled is None:
                return None
        else:
            _cache.move_to_end(key)
        W, b, state, total = compiled(*args)
        return BlockResult(W, b, state, total)

    def _compile(
        self,
        key: Any,
        args: tuple[Any, ...],
        n_full: int,
        rest: int,
        batch_size: int,
        averaging: bool,
    ) -> Any:
        import jax

        spec = self.spec
        start = time.perf_counter()
        try:
            fn = _block_function(spec, n_full, rest, batch_size, averaging)
            compiled = jax.jit(fn).lower(*args).compile()
        except Exception as exc:  # the model's code is not traceable: the portable loop runs it
            reason = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
            _untraceable[(type(spec.model), spec.model_name)] = reason
            warnings.warn(
                f"anyglm could not compile model {spec.model_name!r} with jax.jit ({reason}); "
                f"it trains on the portable loop instead (slower on JAX). A model's "
                f"loss_and_dloss must not branch on array values or convert them to Python "
                f"numbers to be compiled.",
                PluginWarning,
                stacklevel=4,
            )
            return None
        seconds = time.perf_counter() - start
        self.compile_seconds += seconds
        rows = n_full * batch_size + rest
        COMPILE_LOG.append(CompileRecord(spec.model_name, rows, batch_size, spec.dtype, seconds))
        _cache[key] = compiled
        while len(_cache) > CACHE_SIZE:
            _cache.popitem(last=False)
        return compiled
