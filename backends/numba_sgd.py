"""numba's compiled pass over a block, for the built-in models on the NumPy backend.

The one place where the math of :mod:`anyglm.glm` and the built-in models is
written a second time, because it earns it (docs/benchmarks.md): the portable
loop gathers each minibatch into a new array and runs two skinny matrix
products on it, reading every row from memory twice more. Here one compiled
loop reads each row of the minibatch straight from ``X``, eight rows at a
time: their linear predictors, the model's loss and derivative, and their
share of the gradient, while the rows are still in cache.

What it implements (and nothing else; :mod:`anyglm.backends.numpy` declines
every other spec before this module is imported): the built-in linear,
logistic and softmax models, one configuration, float32 or float64, dense
``X``, SGD with an L2 penalty or none, a rate constant within the block
(``"constant"`` or ``"adaptive"``), no momentum, with or without averaging and
row weights.
The same minibatches and update as the portable loop; only the order of
floating-point additions differs (within the tolerance the conformance suite
allows between backends).

Imported only when a large enough block first runs, so ``import anyglm`` and
small fits never import numba. Compiled once per signature and cached on disk
(numba's ``cache=True``).

The eight-row block is written out by hand: eight independent sums per class
keep the processor's multiply-add units busy, and each element of ``W`` and of
the gradient is loaded once for eight rows; a loop over the eight rows would
leave that to the compiler, which does not do it. ``fastmath`` is limited to
reassociation and contraction (what vectorising the sums needs): no
``nnan``/``ninf``, so a diverging epoch still ends with inf or NaN for the
trainer to see.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from anyglm.accelerate import BlockResult, BlockTask
from numba import njit

__all__ = ["LINKS", "run_block"]

_FAST = {"reassoc", "contract"}

#: The models' codes in the compiled loop.
LINEAR, LOGISTIC, SOFTMAX = 0, 1, 2


@njit(cache=True, nogil=True, fastmath=_FAST)
def _row_loss_grad(z: Any, y: Any, weight: float, scale: Any, link: int) -> float:
    """Overwrite one row's predictors ``z`` with ``scale * weight * dloss``; return its loss."""
    c = z.shape[0]
    loss = 0.0
    if link == LINEAR:  # 0.5 * |z - y|^2
        for k in range(c):
            r = z[k] - y[k]
            square = r * r  # in the data's dtype: inf where NumPy's is, for the trainer
            loss += 0.5 * square
            z[k] = r * weight * scale
    elif link == LOGISTIC:  # each column its own binary problem
        for k in range(c):
            v = z[k]
            e = math.exp(-abs(v))
            # logaddexp(0, v) - y v, and sigmoid(v) - y, without overflow
            loss += max(v, 0.0) + math.log1p(e) - y[k] * v
            p = 1.0 / (1.0 + e) if v >= 0 else e / (1.0 + e)
            z[k] = (p - y[k]) * weight * scale
    else:  # softmax: sum_k y_k (log sum exp z - z_k), with one exp per element
        top = z[0]
        for k in range(1, c):
            if z[k] > top:
                top = z[k]
        total = 0.0
        y_sum = 0.0
        for k in range(c):
            shifted = z[k] - top
            loss -= y[k] * shifted
            y_sum += y[k]
            z[k] = math.exp(shifted)
            total += z[k]
        loss += y_sum * math.log(total)
        inv = weight * scale / total
        ws = weight * scale
        for k in range(c):
            z[k] = z[k] * inv - y[k] * ws
    return loss * weight


@njit(cache=True, nogil=True, fastmath=_FAST)
def glm_epoch(
    X: Any,
    Y: Any,
    w: Any,
    has_w: bool,
    order: Any,
    batch: int,
    WT: Any,
    b: Any,
    lr: Any,
    decay: Any,
    link: int,
    AT: Any,
    ab: Any,
    t0: int,
    average_from: int,
) -> float:
    """One epoch over ``order`` in minibatches of ``batch``; updates ``WT`` and ``b`` in place.

    ``WT`` is ``W`` transposed (c x d, rows contiguous). Returns the sum of the
    (weighted) row losses, each taken before its minibatch's update.

    With ``average_from >= 1`` the averages ``AT`` (transposed, like ``WT``) and
    ``ab`` follow each step ``t = t0 + 1, t0 + 2, ...`` from ``average_from`` on:
    ``A += (W - A) / (t - average_from + 1)``, as :class:`anyglm.optim.Optimizer`
    does it; ``average_from = 0``: no averaging (``AT`` and ``ab`` untouched).
    """
    n, d = X.shape
    c = WT.shape[0]
    GT = np.zeros_like(WT)
    gb = np.zeros_like(b)
    Z = np.empty((8, c), dtype=WT.dtype)
    total = 0.0
    for start in range(0, n, batch):
        stop = min(start + batch, n)
        scale = lr / (stop - start)
        GT[:] = 0
        gb[:] = 0
        i = start
        while i + 8 <= stop:
            x0 = X[order[i]]
            x1 = X[order[i + 1]]
            x2 = X[order[i + 2]]
            x3 = X[order[i + 3]]
            x4 = X[order[i + 4]]
            x5 = X[order[i + 5]]
            x6 = X[order[i + 6]]
            x7 = X[order[i + 7]]
            for k in range(c):
                wk = WT[k]
                a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = b[k]
                for j in range(d):
                    v = wk[j]
                    a0 += x0[j] * v
                    a1 += x1[j] * v
                    a2 += x2[j] * v
                    a3 += x3[j] * v
                    a4 += x4[j] * v
                    a5 += x5[j] * v
                    a6 += x6[j] * v
                    a7 += x7[j] * v
                Z[0, k] = a0
                Z[1, k] = a1
                Z[2, k] = a2
                Z[3, k] = a3
                Z[4, k] = a4
                Z[5, k] = a5
                Z[6, k] = a6
                Z[7, k] = a7
            for q in range(8):
                r = order[i + q]
                total += _row_loss_grad(Z[q], Y[r], w[r] if has_w else 1.0, scale, link)
            for k in range(c):
                g0, g1, g2, g3 = Z[0, k], Z[1, k], Z[2, k], Z[3, k]
                g4, g5, g6, g7 = Z[4, k], Z[5, k], Z[6, k], Z[7, k]
                gb[k] += g0 + g1 + g2 + g3 + g4 + g5 + g6 + g7
                gk = GT[k]
                for j in range(d):
                    gk[j] += (
                        g0 * x0[j]
                        + g1 * x1[j]
                        + g2 * x2[j]
                        + g3 * x3[j]
                        + g4 * x4[j]
                        + g5 * x5[j]
                        + g6 * x6[j]
                        + g7 * x7[j]
                    )
            i += 8
        while i < stop:  # the minibatch's last rows, one at a time
            r = order[i]
            x0 = X[r]
            for k in range(c):
                wk = WT[k]
                a0 = b[k]
                for j in range(d):
                    a0 += x0[j] * wk[j]
                Z[0, k] = a0
            total += _row_loss_grad(Z[0], Y[r], w[r] if has_w else 1.0, scale, link)
            for k in range(c):
                g0 = Z[0, k]
                gb[k] += g0
                gk = GT[k]
                for j in range(d):
                    gk[j] += g0 * x0[j]
            i += 1
        for k in range(c):
            b[k] -= gb[k]
            wk = WT[k]
            gk = GT[k]
            for j in range(d):
                wk[j] = decay * wk[j] - gk[j]
        t0 += 1
        if average_from > 0 and t0 >= average_from:
            count = WT.dtype.type(t0 - average_from + 1)
            for k in range(c):
                ab[k] += (b[k] - ab[k]) / count
                ak = AT[k]
                wk = WT[k]
                for j in range(d):
                    ak[j] += (wk[j] - ak[j]) / count
    return total


#: The compiled losses, by built-in model name.
LINKS = {"linear": LINEAR, "logistic": LOGISTIC, "softmax": SOFTMAX}


def run_block(task: BlockTask, link: int, X: np.ndarray, penalised: bool) -> BlockResult:
    """One block through :func:`glm_epoch`: new arrays, the task's own left as they were.

    ``X`` is the block's features with contiguous rows (the caller makes a
    row-major copy of a column-major array once per fit).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.accelerate import BlockTask
    >>> from anyglm.backends.numba_sgd import LINKS, run_block
    >>> from anyglm.optim import Columns
    >>> X = np.ones((4, 1))
    >>> task = BlockTask(X, np.full((4, 1), 2.0), None, None, 2, np.zeros((1, 1)), np.zeros(1),
    ...                  {}, 0, Columns(0.25), np.array([0.25]), np.array([0.0]))
    >>> run_block(task, LINKS["linear"], X, True).W.tolist()
    [[0.75]]
    """
    Y, weights = np.ascontiguousarray(task.Y), task.weights
    dtype = task.W.dtype.type
    n = X.shape[0]
    order = np.arange(n, dtype=np.int64) if task.order is None else task.order
    order = np.ascontiguousarray(order, dtype=np.int64)
    lr = float(task.learning_rate[0])
    l2 = float(task.alpha[0]) if penalised else 0.0
    WT = np.array(task.W.T, dtype=dtype, order="C", copy=True)
    b = np.array(task.b, dtype=dtype, copy=True)
    has_w = weights is not None
    w = np.ascontiguousarray(weights) if has_w else np.ones(1, dtype=dtype)
    averaging = "avg_W" in task.state and task.average_from is not None
    if averaging:  # the epoch's own copies, as for W and b
        AT = np.array(task.state["avg_W"].T, dtype=dtype, order="C", copy=True)
        ab = np.array(task.state["avg_b"], dtype=dtype, copy=True)
    else:
        AT, ab = np.zeros((1, 1), dtype=dtype), np.zeros(1, dtype=dtype)
    total = glm_epoch(
        X,
        Y,
        w,
        has_w,
        order,
        int(min(task.batch_size, n)),
        WT,
        b,
        dtype(lr),
        dtype(1 - lr * l2),
        link,
        AT,
        ab,
        int(task.t),
        int(task.average_from) if averaging else 0,
    )
    state = task.state
    if averaging:
        state = {**state, "avg_W": np.ascontiguousarray(AT.T), "avg_b": ab}
    return BlockResult(np.ascontiguousarray(WT.T), b, state, np.asarray([total], dtype=dtype))
