"""Scores and losses of fitted parameters on a data source, per configuration.

Used for the per-epoch validation metrics. Everything stays on the device;
a source of several blocks is evaluated block by block and the per-block
sums are combined (Chan et al.'s pairwise update for the variance of the
targets), so no block larger than the source's own is ever built. A source that
evaluates elsewhere (a Dask source scores its partitions on the cluster's
workers) defines ``run_evaluation(model, xp, W, b, n_configs, weighted=...)``
returning the same pair, and :func:`evaluate` hands over to it.
"""

from __future__ import annotations

from typing import Any

from .glm import linear_predictor
from .model import Model
from .sources import DataSource

__all__ = ["evaluate", "score_from_logits"]


def score_from_logits(model: Model, xp: Any, Z: Any, Y: Any) -> Any:
    """Accuracy (classifiers) or R^2 (regressors) per configuration.

    ``Z`` has shape ``(n, K, c)``, ``Y`` the encoded targets ``(n, c)``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp, anyglm
    >>> from anyglm.evaluation import score_from_logits
    >>> Z = xp.asarray([[[2.0, 0.0]], [[0.0, 1.0]]])  # (n=2, K=1, c=2)
    >>> Y = xp.asarray([[1.0, 0.0], [1.0, 0.0]])
    >>> score_from_logits(anyglm.get_model("softmax"), xp, Z, Y).tolist()
    [0.5]
    """
    if model.task == "classification":
        return xp.mean(_hits(xp, Z, Y), axis=0)
    P = model.inverse_link(xp, Z)
    R = xp.expand_dims(Y, axis=1) - P
    ss_res = xp.sum(R * R, axis=0)
    C = Y - xp.mean(Y, axis=0, keepdims=True)
    return _r2(xp, ss_res, xp.sum(C * C, axis=0))


def _hits(xp: Any, Z: Any, Y: Any) -> Any:
    if Z.shape[-1] == 1:
        hit = (Z[..., 0] > 0) == xp.expand_dims(Y[:, 0] > 0.5, axis=1)
    else:
        truth = xp.expand_dims(xp.argmax(Y, axis=-1), axis=1)
        hit = xp.argmax(Z, axis=-1) == truth
    return xp.astype(hit, Z.dtype)


def _r2(xp: Any, ss_res: Any, ss_tot: Any) -> Any:
    # Constant targets: R^2 is undefined; report 0 like a mean predictor.
    safe = xp.where(ss_tot > 0, ss_tot, xp.ones_like(ss_tot))
    r2 = xp.where(ss_tot > 0, 1.0 - ss_res / safe, xp.zeros_like(ss_res))
    return xp.mean(r2, axis=-1)


def evaluate(
    model: Model,
    xp: Any,
    source: DataSource,
    W: Any,
    b: Any,
    n_configs: int,
    *,
    weighted: bool = False,
) -> tuple[Any, Any]:
    """Mean loss and score of ``(W, b)`` over every row of ``source``, per configuration.

    Returns two device arrays of shape ``(K,)``: the mean loss (weighted by
    the source's row weights with ``weighted=True``: ``sum_i w_i l_i / n``, the
    training objective's data part), and the accuracy or R^2
    (:func:`score_from_logits`, unweighted). A source with a ``run_evaluation``
    method (one that scores where its data live, like a Dask source) computes
    them itself, with the same meaning.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.evaluation import evaluate
    >>> from anyglm.sources import ArraySource
    >>> be = anyglm.get_backend("numpy")
    >>> X, Y = np.array([[1.0], [-1.0]]), np.array([[1.0], [0.0]])
    >>> loss, acc = evaluate(anyglm.get_model("logistic"), be.xp, ArraySource(be, X, Y),
    ...                      np.ones((1, 1)), np.zeros(1), 1)
    >>> acc.tolist()
    [1.0]
    """
    run_evaluation = getattr(source, "run_evaluation", None)
    if run_evaluation is not None:
        loss_and_score: tuple[Any, Any] = run_evaluation(
            model, xp, W, b, n_configs, weighted=weighted
        )
        return loss_and_score
    classify = model.task == "classification"
    n = 0
    loss_sum: Any = None
    hits: Any = None
    ss_res: Any = None
    mean: Any = None  # running mean and sum of squared deviations of the targets
    m2: Any = None
    for blk in source.blocks(None, shuffle=False):
        X, Y, w = blk.selected()
        m = int(X.shape[0])
        Z = linear_predictor(xp, X, W, b, n_configs)
        per_row = model.loss(xp, Z, xp.expand_dims(Y, axis=1))
        if weighted and w is not None:
            per_row = per_row * xp.reshape(w, (m, 1))
        rows = xp.sum(per_row, axis=0)
        loss_sum = rows if loss_sum is None else loss_sum + rows
        if classify:
            h = xp.sum(_hits(xp, Z, Y), axis=0)
            hits = h if hits is None else hits + h
        else:
            R = xp.expand_dims(Y, axis=1) - model.inverse_link(xp, Z)
            res = xp.sum(R * R, axis=0)
            ss_res = res if ss_res is None else ss_res + res
            block_mean = xp.mean(Y, axis=0)
            C = Y - block_mean
            block_m2 = xp.sum(C * C, axis=0)
            if mean is None:
                mean, m2 = block_mean, block_m2
            else:  # Chan, Golub and LeVeque's pairwise combination
                delta = block_mean - mean
                total = n + m
                mean = mean + delta * (m / total)
                m2 = m2 + block_m2 + delta * delta * (n * m / total)
        n += m
    if n == 0:
        raise ValueError("cannot evaluate on a source without rows")
    loss = loss_sum / n
    if classify:
        return loss, hits / n
    return loss, _r2(xp, ss_res, m2)
