"""The training loop: one loop over any data source, one step written once.

An epoch asks the source for its blocks (:mod:`anyglm.sources`); each block
runs its minibatches either through an accelerator a backend offers for the
fit's :class:`~anyglm.accelerate.AcceleratorSpec`, or through the portable
loop (:func:`run_block`), whose step (:func:`sgd_step`) is the chain rule of
:mod:`anyglm.glm` followed by the optimiser of :mod:`anyglm.optim`.

``K`` configurations (learning rate, alpha) train at once when given vectors,
with parameters stacked along the columns of ``W``. The loop never
synchronises with the device inside an epoch: losses accumulate on the device
and are read, together with a finiteness check of the parameters, once per
epoch. Early stopping, the ``"adaptive"`` schedule and divergence are decided
per configuration from those numbers; a configuration that stops or diverges
is frozen while the others go on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .accelerate import AcceleratorSpec
from .backend import Backend
from .errors import DivergenceError
from .evaluation import evaluate, score_from_logits
from .model import Model
from .optim import OptimizerSpec, build
from .optim import penalty_coefficients as _penalty
from .sources import ArraySource, DataSource
from .steps import BlockRunner, EpochPass, run_block, sequential_epoch, sgd_step
from .trainstate import ColumnMaker, TrainState, early_stopping, freeze, model_parameters

__all__ = [
    "BlockRunner",
    "EpochEnd",
    "EpochPass",
    "TrainResult",
    "TrainState",
    "run_block",
    "score_from_logits",
    "sequential_epoch",
    "sgd_step",
    "train",
]


@dataclass
class TrainResult:
    """Parameters after training and the per-epoch history.

    ``W`` and ``b`` are the parameters to predict with (averaged when the
    optimiser averages); ``state`` continues training. ``history`` maps
    ``"train_loss"`` (and, with validation data, ``"val_loss"`` and
    ``"val_score"``) to arrays of shape ``(epochs_run, K)``.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
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
    #: Epoch at which each configuration stopped early (0: never).
    stopped_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    state: TrainState | None = None
    #: Whether an accelerator ran the epochs (else the portable loop).
    accelerated: bool = False


@dataclass
class EpochEnd:
    """What an ``on_epoch_end`` callback sees after each epoch.

    ``W`` and ``b`` are the parameters to predict with; ``state`` is the
    training state (a snapshot: later epochs do not change it). ``history``
    maps metric names to lists of per-configuration arrays, one per completed
    epoch (resumed epochs included).

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
    state: TrainState | None = None


def _as_arrays(rows: dict[str, list[np.ndarray]], n_configs: int) -> dict[str, np.ndarray]:
    # (epochs, K) even when no epoch completed (divergence in the first one).
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, n_configs) for k, v in rows.items()}


# NumPy's overflow warnings are silenced while training: divergence is detected
# once per epoch and reported as DivergenceError, which says what to do.
@np.errstate(over="ignore", invalid="ignore", divide="ignore")
def train(
    model: Model,
    backend: Backend,
    source: DataSource,
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
    optimizer: OptimizerSpec | None = None,
    state: TrainState | None = None,
    validation: tuple[Any, Any] | DataSource | None = None,
    monitor: DataSource | None = None,
    n_iter_no_change: int | None = None,
    tol: float = 1e-4,
    start_epoch: int = 0,
    history: dict[str, list[np.ndarray]] | None = None,
    on_epoch_end: Callable[[EpochEnd], bool | None] | None = None,
    on_divergence: str = "raise",
    snapshots: Collection[int] = (),
    accelerate: bool = True,
) -> TrainResult:
    """Run minibatch SGD from epoch ``start_epoch + 1`` up to ``epochs``.

    Parameters
    ----------
    model, backend : Model, Backend
    source : DataSource
        The training rows (:mod:`anyglm.sources`).
    W, b : arrays
        Starting parameters, shapes ``(d, K * c)`` and ``(K * c,)``; ignored
        when ``state`` is given.
    learning_rate, alpha : float or sequence of K floats
        One value, or one per configuration (columns of ``W`` in blocks of ``c``).
    optimizer : OptimizerSpec, optional
        Schedule, momentum, averaging, penalty; default plain SGD with L2.
    state : TrainState, optional
        Continue from this state (a checkpoint or ``partial_fit``).
    validation : (X, Y) on the device, or a DataSource, optional
        Scored after every epoch.
    monitor : DataSource, optional
        Rows on which, without validation data, early stopping watches the
        training objective (mean weighted loss plus penalty) of the model's
        parameters, exactly (:func:`anyglm.stepsize.scan`'s sample); without
        it, the running loss of the epoch's minibatches (noisy) is watched.
    n_iter_no_change : int, optional
        Stop a configuration when its monitored loss (validation loss with
        validation data, else the training objective on ``monitor``, else the
        epoch's running training loss) has not improved by ``tol`` times its
        first epoch's value for this many epochs; with ``schedule="adaptive"``
        divide its rate by 5 instead, until the rate falls below 1e-6.
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
    accelerate : bool
        Run blocks through an accelerator a plugin offers for this fit's spec;
        ``False`` keeps the portable loop, the reference accelerators are
        checked against.

    Raises
    ------
    DivergenceError
        With ``on_divergence="raise"``: a loss or parameter became non-finite;
        ``err.last_finite`` holds ``(W, b)`` from the end of the previous epoch
        and ``err.history`` the history up to it.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
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
    from .selection import find_accelerator

    if on_divergence not in ("raise", "mask"):
        raise ValueError(f"on_divergence must be 'raise' or 'mask', got {on_divergence!r}")
    spec = optimizer or OptimizerSpec()
    xp = backend.xp
    K = n_configs
    lr_host = np.broadcast_to(np.asarray(learning_rate, dtype=np.float64), (K,)).copy()
    al_host = np.broadcast_to(np.asarray(alpha, dtype=np.float64), (K,)).copy()
    opt = build(spec, xp)
    if state is None:
        state = TrainState.start(W, b, opt.init(W, b), K)
    n_outputs = state.W.shape[1] // K
    cols = ColumnMaker(
        spec,
        backend,
        lr_host,
        al_host,
        n_outputs,
        dtype,
        device,
        scalars=K == 1 and on_divergence == "raise",
    )
    weighted = getattr(source, "weights", None) is not None
    acc_spec = AcceleratorSpec(model, model.name, spec, dtype, K, weighted, source.sparse)
    accelerator = find_accelerator(backend, acc_spec) if accelerate else None
    if isinstance(validation, tuple):
        validation = ArraySource(backend, validation[0], validation[1], device=device)
    keys = ["train_loss"] + (["val_loss", "val_score"] if validation is not None else [])
    rows: dict[str, list[np.ndarray]] = {k: list((history or {}).get(k, [])) for k in keys}
    kept: dict[int, tuple[Any, Any]] = {}
    n = source.n_rows
    epoch = start_epoch
    used_accelerator = False
    for epoch in range(start_epoch + 1, epochs + 1):
        if not np.any(state.running):
            epoch -= 1  # a resumed fit that had already stopped: nothing left to do
            break
        if spec.average and epoch >= spec.average and state.average_from is None:
            state.average_from = state.t + 1
        before = state
        columns = cols.make(state)
        lr_now, alpha_now = cols.host(state)
        runner = BlockRunner(
            model, opt, accelerator, batch_size, columns, lr_now, alpha_now, state.average_from, K
        )
        run_epoch = getattr(source, "run_epoch", None)
        if run_epoch is None:
            done = sequential_epoch(
                source, runner, state.W, state.b, state.opt, state.t, rng, shuffle
            )
        else:  # a source that runs its blocks elsewhere (a cluster) and combines them
            done = run_epoch(runner, state.W, state.b, state.opt, state.t, rng, shuffle)
        W, b, opt_state, t, total = done.W, done.b, done.state, done.t, done.loss_sum
        used_accelerator = used_accelerator or done.accelerated
        state = dataclasses.replace(
            state,
            W=W,
            b=b,
            opt=opt_state,
            t=t,
            best=state.best.copy(),
            stale=state.stale.copy(),
            lr_scale=state.lr_scale.copy(),
            stopped_at=state.stopped_at.copy(),
            diverged_at=state.diverged_at.copy(),
            scale=state.scale.copy(),
        )
        Wm, bm = model_parameters(xp, opt, state, K)
        parts = [total / n]
        if validation is not None:
            parts += list(evaluate(model, xp, validation, Wm, bm, K))
        watch = monitor is not None and validation is None and n_iter_no_change is not None
        if watch:  # the exact training objective on the sample: its data part and norms
            assert monitor is not None
            parts += [evaluate(model, xp, monitor, Wm, bm, K, weighted=True)[0],
                      *_norms(xp, Wm, K)]  # fmt: skip
        # Per-configuration parameter sums: non-finite iff some parameter is.
        check = _column_sums(xp, W, b, K) + _column_sums(xp, Wm, bm, K)
        host = backend.to_numpy(xp.concat([*parts, check])).astype(np.float64)  # one sync
        values = host.reshape(len(parts) + 1, K)
        # Diverged: a non-finite parameter, or a non-finite loss (training, validation,
        # objective) that finite but huge parameters can give.
        finite = np.all(np.isfinite(values), axis=0)
        objective = None
        if watch:
            l2, l1 = _penalty(spec, al_host)
            objective = values[-4] + 0.5 * l2 * values[-3] + l1 * values[-2]
            values = values[:-3]
        values = values[:-1]
        new = ~finite & state.running
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
                err.last_finite = model_parameters(xp, opt, before, K)  # type: ignore[attr-defined]
                err.history = _as_arrays(rows, K)  # type: ignore[attr-defined]
                err.state = before  # type: ignore[attr-defined]
                raise err
            state.diverged_at[new] = epoch
            state = freeze(xp, backend, opt, state, before, new, K, device)
        values[:, ~state.running & ~new] = np.nan
        values[:, new] = np.nan
        for k, v in zip(keys, values, strict=True):
            rows[k].append(v)
        if n_iter_no_change is not None:
            monitored = values[1] if validation is not None else values[0]
            if objective is not None:
                monitored = objective
            state = early_stopping(
                xp,
                backend,
                opt,
                spec,
                state,
                monitored,
                tol,
                n_iter_no_change,
                epoch,
                lr_host,
                K,
                device,
            )
        Wm, bm = model_parameters(xp, opt, state, K)
        if epoch in snapshots:
            kept[epoch] = (Wm, bm)
        stop = False
        if on_epoch_end is not None:
            stop = bool(on_epoch_end(EpochEnd(epoch, epochs, Wm, bm, rng, rows, state)))
        if not np.any(state.running) or stop:
            break
    Wm, bm = model_parameters(xp, opt, state, K)
    return TrainResult(
        Wm,
        bm,
        epoch,
        _as_arrays(rows, K),
        stopped_early=bool(np.any(state.stopped_at > 0)) and K == 1,
        snapshots=kept,
        diverged_at=state.diverged_at.copy(),
        stopped_at=state.stopped_at.copy(),
        state=state,
        accelerated=used_accelerator,
    )


def _norms(xp: Any, W: Any, K: int) -> tuple[Any, Any]:
    """Per configuration: ``||W_k||^2`` and ``||W_k||_1`` (the penalties' parts)."""
    d, c = W.shape[0], W.shape[1] // K
    W3 = xp.reshape(W, (d, K, c))
    return xp.sum(xp.sum(W3 * W3, axis=2), axis=0), xp.sum(xp.sum(xp.abs(W3), axis=2), axis=0)


def _column_sums(xp: Any, W: Any, b: Any, K: int) -> Any:
    d, c = W.shape[0], W.shape[1] // K
    wsum = xp.sum(xp.sum(xp.reshape(W, (d, K, c)), axis=2), axis=0)
    return wsum + xp.sum(xp.reshape(b, (K, c)), axis=1)
