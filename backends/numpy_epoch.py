"""The NumPy backend's fast path: one training epoch with preallocated buffers.

Same minibatches and the same update as the portable loop in
:mod:`anyglm.trainer`, with NumPy-only tools the Array API does not have:
gathers written straight into a reused buffer (``np.take(..., out=)``),
``matmul(..., out=)`` and in-place updates of the epoch's own copies of ``W``
and ``b``. The portable loop allocates a fresh minibatch (800 KB for 256 rows of
784 float32 features) and several parameter-sized temporaries every step;
here each step allocates only the model's small ``(m, K, c)`` outputs.

Softmax regression gets its own step: NumPy reduces over a short last axis (the
10 classes of a ``(256, 10)`` block) about 4x slower than over a long one, and
a softmax step needs three such reductions. It transposes the logits to
``(K, c, m)`` (a 10 KB copy) so that every reduction runs along the rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from anyglm.fastpath import EpochTask
from anyglm.model import Model
from anyglm.plugins.softmax import Softmax

__all__ = ["NumpyEpochKernel"]


class NumpyEpochKernel:
    """The :class:`~anyglm.fastpath.EpochKernel` of the NumPy backend, for any model.

    The model's own ``loss_and_dloss`` computes the loss and its derivative,
    so third-party models get the fast path too.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.fastpath import EpochTask
    >>> from anyglm.backends.numpy_epoch import NumpyEpochKernel
    >>> kernel = NumpyEpochKernel(anyglm.get_model("linear"), anyglm.get_backend("numpy").xp)
    >>> task = EpochTask(X=np.ones((4, 1)), Y=np.full((4, 1), 2.0), weights=None,
    ...                  order=np.array([3, 1, 0, 2]), batch_size=2, W=np.zeros((1, 1)),
    ...                  b=np.zeros(1), learning_rate=0.25, alpha=0.0, n_configs=1)
    >>> W, b, loss_sum = kernel(task)
    >>> W.tolist(), b.tolist(), loss_sum.tolist()
    ([[0.75]], [0.75], [5.0])
    """

    def __init__(self, model: Model, xp: Any) -> None:
        self.model = model
        self.xp = xp
        # Exactly the built-in softmax: a subclass may change the loss.
        self._softmax = type(model) is Softmax

    def __call__(self, task: EpochTask) -> tuple[Any, Any, Any]:
        X, Y, weights, order = task.X, task.Y, task.weights, task.order
        n, d = X.shape
        K, c = task.n_configs, task.n_outputs
        lr, alpha = task.learning_rate, task.alpha
        # The epoch's own copies: the task's W and b stay as they were, for the
        # trainer to fall back on if this epoch diverges.
        W = np.array(task.W, copy=True, order="C")
        b = np.array(task.b, copy=True)
        decay = 1 - lr * alpha
        size = min(task.batch_size, n)
        kc = W.shape[1]
        z_buf = np.empty((size, kc), dtype=W.dtype)
        g_buf = np.empty((d, kc), dtype=W.dtype)
        if order is not None:
            x_buf = np.empty((size, d), dtype=X.dtype)
            y_buf = np.empty((size, Y.shape[1]), dtype=Y.dtype)
            w_buf = None if weights is None else np.empty((size,), dtype=weights.dtype)
        total = np.zeros((K,), dtype=W.dtype)
        for start in range(0, n, size):
            stop = min(start + size, n)
            m = stop - start
            if order is None:
                Xb, Yb = X[start:stop], Y[start:stop]
                wb = None if weights is None else weights[start:stop]
            else:
                idx = order[start:stop]
                # mode="clip": with out=, the default mode="raise" gathers into a
                # temporary first; the trainer's order holds valid rows only.
                Xb = X.take(idx, axis=0, out=x_buf[:m], mode="clip")
                Yb = Y.take(idx, axis=0, out=y_buf[:m], mode="clip")
                wb = None
                if weights is not None and w_buf is not None:
                    wb = weights.take(idx, axis=0, out=w_buf[:m], mode="clip")
            Z = np.matmul(Xb, W, out=z_buf[:m])
            if self._softmax:
                # (K*c, m), logits of one class of one configuration per row.
                step_t = _softmax_step(Z, b, Yb, wb, K, c, lr / m, total)
                step = step_t.T
                b -= np.add.reduce(step_t, axis=1)
            else:
                Z += b
                rows, dZ = self.model.loss_and_dloss(
                    self.xp, np.reshape(Z, (m, K, c)), np.reshape(Yb, (m, 1, c))
                )
                if wb is not None:
                    rows = rows * np.reshape(wb, (m, 1))
                    dZ = dZ * np.reshape(wb, (m, 1, 1))
                total += np.sum(rows, axis=0)
                # lr/m folded into dZ (m x Kc) rather than the gradient (d x Kc).
                step = np.reshape(dZ, (m, kc)) * (lr / m)
                b -= np.sum(step, axis=0)
            W *= decay
            W -= np.matmul(Xb.T, step, out=g_buf)
        return W, b, total


def _softmax_step(
    Z: np.ndarray, b: np.ndarray, Yb: np.ndarray, wb: Any, K: int, c: int, scale: Any, total: Any
) -> np.ndarray:
    """Softmax loss and scaled gradient in the ``(K*c, m)`` layout.

    Adds the (weighted) loss of the minibatch to ``total`` (shape ``(K,)``) and
    returns ``scale * w * (softmax(Z) - Y)`` transposed, the same values as
    :meth:`Softmax.loss_and_dloss` up to rounding. ``ufunc.reduce`` rather than
    ``np.max``/``np.sum``: on 2,560 values the wrappers cost as much as the work.
    """
    m = Z.shape[0]
    S = np.add(Z.T, b.reshape(K * c, 1))  # a contiguous (K*c, m) copy
    Yt = np.ascontiguousarray(Yb.T)  # (c, m)
    row_mass = np.add.reduce(Yt, axis=0)  # 1 for one-hot targets
    Yw = Yt
    if wb is not None:
        Yw, row_mass = Yt * wb, row_mass * wb
    # One configuration: 2-D blocks, whose reductions NumPy runs 5x faster than
    # those of a (1, c, m) block.
    blocks, axis = (S, 0) if K == 1 else (S.reshape(K, c, m), 1)
    blocks -= np.maximum.reduce(blocks, axis=axis, keepdims=True)
    # Loss of row i: log(sum_j exp(s_ij)) * sum_j y_ij - sum_j y_ij s_ij.
    total -= S.reshape(K, c * m) @ Yw.reshape(c * m)
    np.exp(blocks, out=blocks)
    norm = np.add.reduce(blocks, axis=axis, keepdims=True)  # (1, m) or (K, 1, m)
    total += np.log(norm).reshape(K, m) @ row_mass
    blocks /= norm
    blocks -= Yt
    factor = scale if np.ndim(scale) == 0 else scale.reshape(K * c, 1)
    if wb is not None:
        factor = factor * wb
    S *= factor
    return S
