"""The training loop: minibatch SGD with L2 on the weights.

The loop runs ``K`` configurations (learning rate, alpha) at once when given
vectors, with parameters stacked along the columns of ``W`` (see
:mod:`anyglm.glm`). It never synchronises with the device inside an epoch:
losses accumulate on the device and are read, together with a finiteness
check of the parameters, once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend
from .data import ArraySource
from .errors import DivergenceError
from .glm import linear_predictor, loss_and_gradient
from .model import Model
from .optim import add_l2, apply_updates, chain, sgd

__all__ = ["TrainResult", "score_from_logits", "train"]


@dataclass
class TrainResult:
    """Parameters after training and the per-epoch history.

    ``history`` maps ``"train_loss"`` (and, with validation data,
    ``"val_loss"`` and ``"val_score"``) to arrays of shape ``(epochs_run, K)``.
    """

    W: Any
    b: Any
    epochs_run: int
    history: dict[str, np.ndarray] = field(default_factory=dict)
    stopped_early: bool = False


def score_from_logits(model: Model, xp: Any, Z: Any, Y: Any) -> Any:
    """Accuracy (classifiers) or R^2 (regressors) per configuration.

    ``Z`` has shape ``(n, K, c)``, ``Y`` the encoded targets ``(n, c)``.
    """
    if model.task == "classification":
        if Z.shape[-1] == 1:
            hit = (Z[..., 0] > 0) == xp.expand_dims(Y[:, 0] > 0.5, axis=1)
        else:
            truth = xp.expand_dims(xp.argmax(Y, axis=-1), axis=1)
            hit = xp.argmax(Z, axis=-1) == truth
        return xp.mean(xp.astype(hit, Z.dtype), axis=0)
    P = model.inverse_link(xp, Z)
    R = xp.expand_dims(Y, axis=1) - P
    ss_res = xp.sum(R * R, axis=0)
    C = Y - xp.mean(Y, axis=0, keepdims=True)
    ss_tot = xp.sum(C * C, axis=0)
    # Constant targets: R^2 is undefined; report 0 like a mean predictor.
    safe = xp.where(ss_tot > 0, ss_tot, xp.ones_like(ss_tot))
    r2 = xp.where(ss_tot > 0, 1.0 - ss_res / safe, xp.zeros_like(ss_res))
    return xp.mean(r2, axis=-1)


def _per_config(
    value: float | Sequence[float],
    n_configs: int,
    n_outputs: int,
    backend: Backend,
    dtype: str,
    device: Any,
) -> Any:
    if isinstance(value, (int, float)):
        return float(value)
    column = np.repeat(np.asarray(value, dtype=np.float64), n_outputs)
    return backend.from_numpy(column, dtype=dtype, device=device)


# NumPy's overflow warnings are silenced while training: divergence is detected
# once per epoch and reported as DivergenceError, which says what to do.
@np.errstate(over="ignore", invalid="ignore")
def train(
    model: Model,
    backend: Backend,
    source: ArraySource,
    *,
    W: Any,
    b: Any,
    n_configs: int,
    learning_rate: float | Sequence[float],
    alpha: float | Sequence[float],
    epochs: int,
    batch_size: int,
    shuffle: bool,
    rng: np.random.Generator,
    dtype: str,
    device: Any,
    validation: tuple[Any, Any] | None = None,
    n_iter_no_change: int | None = None,
    tol: float = 1e-4,
) -> TrainResult:
    """Run minibatch SGD for up to ``epochs`` epochs.

    Raises
    ------
    DivergenceError
        A loss or parameter became non-finite; ``err.last_finite`` holds
        ``(W, b)`` from the end of the previous epoch and ``err.history`` the
        history up to it.
    """
    xp = backend.xp
    n_outputs = W.shape[1] // n_configs
    lr = _per_config(learning_rate, n_configs, n_outputs, backend, dtype, device)
    al = _per_config(alpha, n_configs, n_outputs, backend, dtype, device)
    opt = chain(add_l2(al, (True, False)), sgd(lr))
    state = opt.init((W, b))
    keys = ["train_loss"] + (["val_loss", "val_score"] if validation is not None else [])
    rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    best, stale = math.inf, 0
    n = source.n_rows
    for epoch in range(1, epochs + 1):
        W0, b0 = W, b
        total = xp.zeros((n_configs,), dtype=W.dtype, device=device)
        for Xb, Yb, wb in source.epoch(rng, batch_size, shuffle):
            loss, gW, gb = loss_and_gradient(
                model, xp, Xb, Yb, W, b, n_configs=n_configs, weights=wb
            )
            total = total + loss * Xb.shape[0]
            updates, state = opt.update((gW, gb), state, (W, b))
            W, b = apply_updates((W, b), updates)
        parts = [total / n]
        if validation is not None:
            Xv, Yv = validation
            Zv = linear_predictor(xp, Xv, W, b, n_configs)
            vl = xp.mean(model.loss(xp, Zv, xp.expand_dims(Yv, axis=1)), axis=0)
            parts += [vl, score_from_logits(model, xp, Zv, Yv)]
        check = xp.reshape(xp.sum(W) + xp.sum(b), (1,))
        host = backend.to_numpy(xp.concat([*parts, check])).astype(np.float64)  # one sync per epoch
        values = host[:-1].reshape(len(parts), n_configs)
        if not (np.all(np.isfinite(host[-1:])) and np.all(np.isfinite(values[0]))):
            history = {k: np.asarray(v) for k, v in rows.items()}
            err = DivergenceError(
                f"training diverged in epoch {epoch} of {epochs}: the loss or the parameters "
                f"became inf or NaN. The parameters from the end of epoch {epoch - 1} are kept. "
                f"Try a smaller learning_rate (now {learning_rate!r}) or standardise the inputs "
                f"(e.g. anyglm.datasets.standardize).",
                epoch=epoch,
            )
            err.last_finite = (W0, b0)  # type: ignore[attr-defined]
            err.history = history  # type: ignore[attr-defined]
            raise err
        for k, v in zip(keys, values, strict=True):
            rows[k].append(v)
        if n_iter_no_change is not None:
            monitored = float(values[1 if validation is not None else 0][0])
            if monitored > best - tol:
                stale += 1
            else:
                stale = 0
            best = min(best, monitored)
            if stale >= n_iter_no_change:
                return TrainResult(W, b, epoch, {k: np.asarray(v) for k, v in rows.items()}, True)
    return TrainResult(W, b, epochs, {k: np.asarray(v) for k, v in rows.items()})
