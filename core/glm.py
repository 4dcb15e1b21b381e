"""The chain rule through ``X``, written once for every model.

Derived in the theory page (docs/theory.md, "One gradient for all three").

Parameters carry a configuration axis from the start: ``W`` has shape
``(d, K * c)`` and ``b`` shape ``(K * c,)`` for ``K`` configurations of ``c``
outputs each, so K learning rates or penalties train in one GEMM of width
``K * c``. A single fit is ``K = 1``.
"""

from __future__ import annotations

from typing import Any

from .model import Model

__all__ = ["linear_predictor", "loss_and_gradient"]


def linear_predictor(xp: Any, X: Any, W: Any, b: Any, n_configs: int) -> Any:
    """``Z = X @ W + b`` reshaped to ``(n, K, c)``.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from anyglm.glm import linear_predictor
    >>> X, W, b = np.ones((5, 3)), np.ones((3, 4)), np.zeros(4)
    >>> linear_predictor(xp, X, W, b, n_configs=2).shape  # 2 configurations of 2 outputs
    (5, 2, 2)
    """
    n = X.shape[0]
    Z = X @ W + b
    return xp.reshape(Z, (n, n_configs, W.shape[1] // n_configs))


def loss_and_gradient(
    model: Model,
    xp: Any,
    X: Any,
    Y: Any,
    W: Any,
    b: Any,
    *,
    n_configs: int = 1,
    weights: Any = None,
) -> tuple[Any, Any, Any]:
    """Mean data loss and its gradient for every configuration.

    Parameters
    ----------
    model : Model
        Supplies the per-row loss and its derivative in ``Z``.
    xp : namespace
        The Array API namespace of ``X``.
    X : array, shape (n, d)
    Y : array, shape (n, c)
        Encoded targets (one-hot, 0/1 column, or real values).
    W : array, shape (d, K * c)
    b : array, shape (K * c,)
    n_configs : int
        ``K``.
    weights : array, shape (n,), optional
        Per-row weights; the loss is ``sum(weights * loss_rows) / n``.

    Returns
    -------
    loss : array, shape (K,)
        ``(1/n) sum_i w_i l(z_i, y_i)``, without the L2 term.
    grad_W : array, shape (d, K * c)
        ``X^T dZ / n``.
    grad_b : array, shape (K * c,)
        Row mean of ``dZ``.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.glm import loss_and_gradient
    >>> import array_api_compat.numpy as xp
    >>> X = np.array([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    >>> Y = np.array([[0.], [1.], [1.], [0.]])
    >>> loss, gW, gb = loss_and_gradient(anyglm.get_model("linear"), xp, X, Y,
    ...                                  np.zeros((2, 1)), np.full(1, 0.5))
    >>> float(loss[0]), gW.ravel().tolist(), gb.tolist()
    (0.125, [0.0, 0.0], [0.0])
    """
    n = X.shape[0]
    Z = linear_predictor(xp, X, W, b, n_configs)
    rows, dZ = model.loss_and_dloss(xp, Z, xp.reshape(Y, (n, 1, Y.shape[-1])))
    if weights is not None:
        rows = rows * xp.reshape(weights, (n, 1))
        dZ = dZ * xp.reshape(weights, (n, 1, 1))
    loss = xp.sum(rows, axis=0) / n
    # Scaling dZ (n x Kc) is cheaper than scaling the gradient (d x Kc) when n < d.
    dZ = xp.reshape(dZ, (n, W.shape[1])) / n
    return loss, _xt_dz(xp, X, dZ), xp.sum(dZ, axis=0)


def _xt_dz(xp: Any, X: Any, dZ: Any) -> Any:
    # The same sums either way; the layout is the library's. PyTorch's CPU BLAS runs
    # dZ.T @ X (row-major output, as autograd's nn.Linear computes it) 1.3 to 1.5 x
    # faster than X.T @ dZ on an AMD EPYC: a torch epoch, FMNIST-shaped, batch 256,
    # compiled 136 -> 100 ms, eager 144 -> 111 ms (benchmarks/epoch.py, 2026-12-03).
    # NumPy's portable loop is 13 % slower that way round and XLA rewrites it back.
    # (By the namespace's name: array_api_compat's is_torch_namespace is lru_cached,
    # which torch.compile warns about when it traces this step.)
    if getattr(xp, "__name__", "").split(".")[-1] == "torch":
        return (dZ.T @ X).T
    return X.T @ dZ
