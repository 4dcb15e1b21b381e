"""The training loop: minibatch SGD with L2 on the weights.

The loop runs ``K`` configurations (learning rate, alpha) at once when given
vectors, with parameters stacked along the columns of ``W`` (see
:mod:`anyglm.glm`). It never synchronises with the device inside an epoch:
losses accumulate on the device and are read, together with a finiteness
check of the parameters, once per epoch.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend
from .data import ArraySource
from .errors import DivergenceError
from .fastpath import EpochTask, find_epoch_kernel
from .glm import linear_predictor, loss_and_gradient
from .model import Model
from .optim import add_l2, apply_updates, chain, sgd

__all__ = ["EpochEnd", "TrainResult", "score_from_logits", "train"]


@dataclass
class TrainResult:
    """Parameters after training and the per-epoch history.

    ``history`` maps ``"train_loss"`` (and, with validation data,
    ``"val_loss"`` and ``"val_score"``) to arrays of shape ``(epochs_run, K)``.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.data import ArraySource
    >>> from anyglm.trainer import train
    >>> be = anyglm.get_backend("numpy")
    >>> X, Y = np.array([[0.0], [1.0]]), np.array([[1.0], [3.0]])
    >>> res = train(anyglm.get_model("linear"), be, ArraySource(be, X, Y), W=np.zeros((1, 1)),
    ...             b=np.zeros(1), n_configs=1, learning_rate=0.1, alpha=0.0, epochs=3,
    ...             batch_size=2, shuffle=False, rng=np.random.default_rng(0),
    ...             dtype="float64", device="cpu")
    >>> res.epochs_run, res.history["train_loss"].shape
    (3, (3, 1))
    """

    W: Any
    b: Any
    epochs_run: int
    history: dict[str, np.ndarray] = field(default_factory=dict)
    stopped_early: bool = False
    snapshots: dict[int, tuple[Any, Any]] = field(default_factory=dict)
    #: Epoch at which each configuration diverged (0: never), with ``on_divergence="mask"``.
    diverged_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))


def score_from_logits(model: Model, xp: Any, Z: Any, Y: Any) -> Any:
    """Accuracy (classifiers) or R^2 (regressors) per configuration.

    ``Z`` has shape ``(n, K, c)``, ``Y`` the encoded targets ``(n, c)``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp, anyglm
    >>> Z = xp.asarray([[[2.0, 0.0]], [[0.0, 1.0]]])  # (n=2, K=1, c=2)
    >>> Y = xp.asarray([[1.0, 0.0], [1.0, 0.0]])
    >>> anyglm.trainer.score_from_logits(anyglm.get_model("softmax"), xp, Z, Y).tolist()
    [0.5]
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
    value: np.ndarray,
    n_configs: int,
    n_outputs: int,
    backend: Backend,
    dtype: str,
    device: Any,
) -> Any:
    column = np.repeat(np.asarray(value, dtype=np.float64), n_outputs)
    return backend.from_numpy(column, dtype=dtype, device=device)


@dataclass
class EpochEnd:
    """What an ``on_epoch_end`` callback sees after each epoch.

    ``history`` maps metric names to lists of per-configuration arrays, one
    per completed epoch (resumed epochs included).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> seen = []
    >>> X, y = np.array([[-1.0], [1.0]]), [0, 1]
    >>> _ = anyglm.LogisticRegression(epochs=2).fit(X, y, callback=seen.append)
    >>> [logs["epoch"] for logs in seen]  # fit's callback gets these fields as a dict
    [1, 2]
    """

    epoch: int
    epochs: int
    W: Any
    b: Any
    rng: np.random.Generator
    history: dict[str, list[np.ndarray]]


def _as_arrays(rows: dict[str, list[np.ndarray]], n_configs: int) -> dict[str, np.ndarray]:
    # (epochs, K) even when no epoch completed (divergence in the first one).
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, n_configs) for k, v in rows.items()}


def _stale_epochs(monitored: Sequence[float], tol: float) -> int:
    """Epochs since the monitored loss last improved by more than ``tol``."""
    best, stale = math.inf, 0
    for value in monitored:
        stale = stale + 1 if value > best - tol else 0
        best = min(best, value)
    return stale


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
    start_epoch: int = 0,
    history: dict[str, list[np.ndarray]] | None = None,
    on_epoch_end: Callable[[EpochEnd], bool | None] | None = None,
    on_divergence: str = "raise",
    snapshots: Collection[int] = (),
    fast_path: bool = True,
) -> TrainResult:
    """Run minibatch SGD from epoch ``start_epoch + 1`` up to ``epochs``.

    Parameters
    ----------
    learning_rate, alpha : float or sequence of K floats
        One value, or one per configuration (columns of ``W`` in blocks of ``c``).
    start_epoch, history
        Resume after ``start_epoch`` completed epochs whose metrics are in
        ``history`` (the generator ``rng`` must be in the state it had then).
    on_epoch_end : callable, optional
        Called after every epoch with an :class:`EpochEnd`; returning ``True``
        stops training after that epoch.
    on_divergence : {"raise", "mask"}
        ``"raise"``: raise :class:`DivergenceError`. ``"mask"``: freeze each
        diverged configuration at its last finite parameters, record NaN for its
        later metrics and keep training the others.
    snapshots : collection of int
        Epochs after which ``(W, b)`` is kept in ``TrainResult.snapshots``.
    fast_path : bool
        Run each epoch through the backend's epoch kernel when a plugin offers
        one (:mod:`anyglm.fastpath`) and ``source`` is an :class:`ArraySource`
        itself (a subclass may change the minibatches, which a kernel would
        not see); ``False`` keeps the portable loop, the reference the kernels
        are checked against.

    Raises
    ------
    DivergenceError
        With ``on_divergence="raise"``: a loss or parameter became non-finite;
        ``err.last_finite`` holds ``(W, b)`` from the end of the previous epoch
        and ``err.history`` the history up to it.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.data import ArraySource
    >>> from anyglm.trainer import train
    >>> be = anyglm.get_backend("numpy")
    >>> X, Y = np.array([[0.0], [1.0]]), np.array([[1.0], [3.0]])
    >>> res = train(anyglm.get_model("linear"), be, ArraySource(be, X, Y), W=np.zeros((1, 2)),
    ...             b=np.zeros(2), n_configs=2, learning_rate=[0.1, 0.5], alpha=0.0,
    ...             epochs=200, batch_size=2, shuffle=False, rng=np.random.default_rng(0),
    ...             dtype="float64", device="cpu")
    >>> np.round(res.W, 3).tolist(), np.round(res.b, 3).tolist()  # the larger rate is there
    ([[1.979, 2.0]], [1.013, 1.0])
    """
    if on_divergence not in ("raise", "mask"):
        raise ValueError(f"on_divergence must be 'raise' or 'mask', got {on_divergence!r}")
    xp = backend.xp
    n_outputs = W.shape[1] // n_configs
    lr_host = np.broadcast_to(np.asarray(learning_rate, dtype=np.float64), (n_configs,)).copy()
    al_host = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (n_configs,)).copy()

    def rates() -> tuple[Any, Any]:
        if n_configs == 1 and on_divergence == "raise":
            return float(lr_host[0]), float(al_host[0])  # scalars: no broadcast cost
        return (
            _per_config(lr_host, n_configs, n_outputs, backend, dtype, device),
            _per_config(al_host, n_configs, n_outputs, backend, dtype, device),
        )

    def make_optimizer() -> Any:
        lr, al = rates()
        return chain(add_l2(al, (True, False)), sgd(lr))

    # Exactly an ArraySource: a subclass may serve other minibatches than X and Y hold.
    use_kernel = fast_path and type(source) is ArraySource
    kernel = find_epoch_kernel(backend, model) if use_kernel else None
    opt = make_optimizer()
    state = opt.init((W, b))
    keys = ["train_loss"] + (["val_loss", "val_score"] if validation is not None else [])
    rows: dict[str, list[np.ndarray]] = {k: list((history or {}).get(k, [])) for k in keys}
    diverged_at = np.zeros(n_configs, dtype=np.int64)
    kept: dict[int, tuple[Any, Any]] = {}
    n = source.n_rows
    epoch = start_epoch
    stopped_early = False
    for epoch in range(start_epoch + 1, epochs + 1):
        W0, b0 = W, b
        if kernel is not None:
            lr, al = rates()
            task = EpochTask(
                source.X, source.Y, source.weights, source.order(rng, shuffle),
                batch_size, W, b, lr, al, n_configs,
            )  # fmt: skip
            W, b, total = kernel(task)
        else:
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
        # Per-configuration parameter sums: non-finite iff some parameter is.
        d = W.shape[0]
        wsum = xp.sum(xp.sum(xp.reshape(W, (d, n_configs, n_outputs)), axis=2), axis=0)
        check = wsum + xp.sum(xp.reshape(b, (n_configs, n_outputs)), axis=1)
        host = backend.to_numpy(xp.concat([*parts, check])).astype(np.float64)  # one sync
        values = host.reshape(len(parts) + 1, n_configs)
        finite = np.isfinite(values[-1]) & np.isfinite(values[0])
        values = values[:-1]
        new = ~finite & (diverged_at == 0)
        if np.any(new):
            if on_divergence == "raise":
                err = DivergenceError(
                    f"training diverged in epoch {epoch} of {epochs}: the loss or the "
                    f"parameters became inf or NaN. The parameters from the end of epoch "
                    f"{epoch - 1} are kept. Try a smaller learning_rate (now "
                    f"{learning_rate!r}) or standardise the inputs "
                    f"(e.g. anyglm.datasets.standardize).",
                    epoch=epoch,
                )
                err.last_finite = (W0, b0)  # type: ignore[attr-defined]
                err.history = _as_arrays(rows, n_configs)  # type: ignore[attr-defined]
                raise err
            diverged_at[new] = epoch
            cols = np.repeat(diverged_at > 0, n_outputs)
            mask = backend.from_numpy(cols, device=device)
            W = xp.where(mask, W0, W)
            b = xp.where(mask, b0, b)
            lr_host[diverged_at > 0] = 0.0
            al_host[diverged_at > 0] = 0.0
            opt = make_optimizer()
            state = opt.init((W, b))
        values[:, diverged_at > 0] = np.nan
        for k, v in zip(keys, values, strict=True):
            rows[k].append(v)
        if epoch in snapshots:
            kept[epoch] = (W, b)
        stop = False
        if on_epoch_end is not None:
            stop = bool(on_epoch_end(EpochEnd(epoch, epochs, W, b, rng, rows)))
        if n_iter_no_change is not None:
            monitored = [
                float(v[0]) for v in rows["val_loss" if validation is not None else "train_loss"]
            ]
            if _stale_epochs(monitored, tol) >= n_iter_no_change:
                stopped_early = True
                break
        if stop:
            break
    result = TrainResult(W, b, epoch, _as_arrays(rows, n_configs), stopped_early)
    result.snapshots = kept
    result.diverged_at = diverged_at
    return result
