"""The compiled loop behind :class:`anyglm.backends.numba_epoch.NumbaEpochKernel`.

Imported only when that kernel first runs, so that ``import anyglm`` never
imports numba. Compiled once per signature (dtype, memory layout, read-only or
not) and cached on disk (numba's
``cache=True``), so later processes skip the compilation.

The eight-row block is written out by hand: eight independent sums per
class keep the processor's multiply-add units busy, and each element of ``W``
and of the gradient is loaded once for eight rows. A loop over the eight
rows would leave that to the compiler, which does not do it.

``fastmath`` is limited to reassociation and contraction (what vectorising
the sums needs): no ``nnan``/``ninf``, so a diverging epoch still ends with
inf or NaN for the trainer to see.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

_FAST = {"reassoc", "contract"}

#: The models' codes; ``numba_epoch.COMPILED_MODELS`` lists the models in this order
#: (a test checks that they agree).
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
) -> float:
    """One epoch over ``order`` in minibatches of ``batch``; updates ``WT`` and ``b`` in place.

    ``WT`` is ``W`` transposed (c x d, rows contiguous). Returns the sum of the
    (weighted) row losses, each taken before its minibatch's update.
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
                        g0 * x0[j] + g1 * x1[j] + g2 * x2[j] + g3 * x3[j]
                        + g4 * x4[j] + g5 * x5[j] + g6 * x6[j] + g7 * x7[j]
                    )  # fmt: skip
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
    return total


# -- the loss step of a minibatch, for the NumPy kernel's loop (several configurations) --
#
# With many configurations side by side (``tune``), the two matrix products are wide
# enough for BLAS to run near the processor's peak, so the NumPy kernel keeps them
# and only the loss and its derivative, a dozen NumPy passes over the (m, K, c)
# predictors, are compiled. Softmax takes three passes: the shift here, NumPy's
# vectorised exp in between (much faster than a compiled scalar exp), and the rest.


@njit(cache=True, nogil=True, fastmath=_FAST)
def softmax_shift(Z: Any, Y: Any, n_configs: int, yz: Any) -> None:
    """Subtract each row's and configuration's max; keep ``sum y z`` and ``sum y`` in ``yz``."""
    m, kc = Z.shape
    c = kc // n_configs
    for i in range(m):
        y = Y[i]
        for q in range(n_configs):
            z = Z[i, q * c : (q + 1) * c]
            top = z[0]
            for k in range(1, c):
                if z[k] > top:
                    top = z[k]
            y_z = 0.0
            y_sum = 0.0
            for k in range(c):
                z[k] -= top
                y_z += y[k] * z[k]
                y_sum += y[k]
            yz[i, q] = y_z
            yz[i, n_configs + q] = y_sum


@njit(cache=True, nogil=True, fastmath=_FAST)
def softmax_finish(
    E: Any, Y: Any, w: Any, has_w: bool, lr: Any, inv_m: float, n_configs: int, yz: Any,
    totals: Any,
) -> None:  # fmt: skip
    """From ``E = exp(shifted)``: add the losses to ``totals``, overwrite ``E`` with the step."""
    m, kc = E.shape
    c = kc // n_configs
    for i in range(m):
        y = Y[i]
        weight = w[i] if has_w else 1.0
        for q in range(n_configs):
            e = E[i, q * c : (q + 1) * c]
            total = 0.0
            for k in range(c):
                total += e[k]
            totals[q] += weight * (yz[i, n_configs + q] * math.log(total) - yz[i, q])
            ws = weight * inv_m
            inv = ws / total
            for k in range(c):
                e[k] = (e[k] * inv - y[k] * ws) * lr[q * c + k]


@njit(cache=True, nogil=True, fastmath=_FAST)
def rows_step(
    Z: Any, Y: Any, w: Any, has_w: bool, lr: Any, inv_m: float, n_configs: int, link: int,
    totals: Any,
) -> None:  # fmt: skip
    """Linear or logistic: add the losses to ``totals``, overwrite ``Z`` with the step."""
    m, kc = Z.shape
    c = kc // n_configs
    for i in range(m):
        y = Y[i]
        weight = w[i] if has_w else 1.0
        for q in range(n_configs):
            totals[q] += _row_loss_grad(Z[i, q * c : (q + 1) * c], y, weight, inv_m, link)
        for k in range(kc):
            Z[i, k] *= lr[k]
