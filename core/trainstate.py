"""The state of training and the decisions taken on it, per configuration.

:class:`TrainState` is everything training needs to go on (parameters,
optimiser state, step count, the early-stopping record); checkpoints save it.
The functions here decide, once per epoch and on the host, what happens to
each of the ``K`` configurations trained side by side: which parameters it
predicts with (averaged, or frozen after a stop or a divergence), whether it
stops early, and how the ``"adaptive"`` schedule changes its rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .backend import Backend
from .optim import Columns, Optimizer, OptimizerSpec, optimal_t0
from .optim import penalty_coefficients as _penalty

__all__ = [
    "ADAPTIVE_MIN_RATE",
    "ColumnMaker",
    "TrainState",
    "early_stopping",
    "freeze",
    "model_parameters",
]

#: The "adaptive" schedule stops dividing the rate below this (scikit-learn's floor).
ADAPTIVE_MIN_RATE = 1e-6


@dataclass
class TrainState:
    """Everything training needs to go on: parameters, optimiser state, counters.

    ``W`` and ``b`` are the raw iterates (what the next step starts from);
    the parameters a model predicts with may be their average
    (:meth:`model_parameters`). Saved in checkpoints, so a resumed fit is
    bitwise equal to an uninterrupted one.

    Attributes
    ----------
    W, b : arrays
    opt : dict of arrays
        The optimiser's state.
    t : int
        Minibatch steps taken.
    average_from : int or None
        First averaged step once averaging runs.
    best, stale : numpy.ndarray of shape (K,)
        Lowest monitored loss so far and epochs since it improved by ``tol``.
    lr_scale : numpy.ndarray of shape (K,)
        Factor on the learning rate (the ``"adaptive"`` schedule divides it by 5).
    stopped_at, diverged_at : numpy.ndarray of int, shape (K,)
        Epoch at which each configuration stopped early or diverged (0: never).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.trainer import TrainState
    >>> TrainState.start(np.zeros((2, 3)), np.zeros(3), {}, 3).running.tolist()
    [True, True, True]
    """

    W: Any
    b: Any
    opt: dict[str, Any]
    t: int = 0
    average_from: int | None = None
    best: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stale: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    lr_scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    stopped_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    diverged_at: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The first epoch's monitored value per configuration (``tol`` is relative to it).
    scale: np.ndarray = field(default_factory=lambda: np.zeros(0))
    #: ``(columns, W, b)``: the model parameters of the configurations (a boolean
    #: column mask on the device) frozen by a stop or a divergence.
    frozen: tuple[Any, Any, Any] | None = None

    @classmethod
    def start(cls, W: Any, b: Any, opt: dict[str, Any], n_configs: int) -> TrainState:
        """The state before the first step."""
        return cls(
            W,
            b,
            opt,
            best=np.full(n_configs, np.inf),
            stale=np.zeros(n_configs, dtype=np.int64),
            lr_scale=np.ones(n_configs),
            stopped_at=np.zeros(n_configs, dtype=np.int64),
            diverged_at=np.zeros(n_configs, dtype=np.int64),
            scale=np.full(n_configs, np.inf),
        )

    @property
    def running(self) -> np.ndarray:
        """Per configuration: neither stopped nor diverged."""
        return (self.stopped_at == 0) & (self.diverged_at == 0)

    def host_fields(self) -> dict[str, Any]:
        """The counters as JSON-ready values (checkpoints store them).

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.trainer import TrainState
        >>> TrainState.start(np.zeros((1, 1)), np.zeros(1), {}, 1).host_fields()["stale"]
        [0]
        """
        return {
            "t": int(self.t),
            "average_from": self.average_from,
            "best": [float(v) for v in self.best],
            "stale": [int(v) for v in self.stale],
            "lr_scale": [float(v) for v in self.lr_scale],
            "stopped_at": [int(v) for v in self.stopped_at],
            "diverged_at": [int(v) for v in self.diverged_at],
            "scale": [float(v) if np.isfinite(v) else None for v in self.scale],
        }


class ColumnMaker:
    """Turns per-configuration host values into the step's :class:`Columns`.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import OptimizerSpec
    >>> from anyglm.trainstate import ColumnMaker, TrainState
    >>> maker = ColumnMaker(OptimizerSpec(), anyglm.get_backend("numpy"), np.array([0.1, 0.2]),
    ...                     np.array([0.0, 1e-3]), 2, "float64", "cpu", scalars=False)
    >>> state = TrainState.start(np.zeros((3, 4)), np.zeros(4), {}, 2)
    >>> maker.make(state).learning_rate.tolist()  # each rate repeated for 2 outputs
    [0.1, 0.1, 0.2, 0.2]
    """

    def __init__(
        self,
        spec: OptimizerSpec,
        backend: Backend,
        lr: np.ndarray,
        alpha: np.ndarray,
        n_outputs: int,
        dtype: str,
        device: Any,
        scalars: bool,
    ) -> None:
        self.spec, self.backend, self.lr, self.alpha = spec, backend, lr, alpha
        self.n_outputs, self.dtype, self.device, self.scalars = n_outputs, dtype, device, scalars
        self.t0 = optimal_t0(lr, alpha) if spec.schedule == "optimal" else np.zeros_like(lr)

    def host(self, state: TrainState) -> tuple[np.ndarray, np.ndarray]:
        """Per configuration: learning rate and alpha; 0 for frozen configurations.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.optim import OptimizerSpec
        >>> from anyglm.trainstate import ColumnMaker, TrainState
        >>> maker = ColumnMaker(OptimizerSpec(), anyglm.get_backend("numpy"), np.array([0.1]),
        ...                     np.array([1e-3]), 1, "float64", "cpu", scalars=True)
        >>> state = TrainState.start(np.zeros((3, 1)), np.zeros(1), {}, 1)
        >>> state.stopped_at[0] = 4  # a configuration that stopped gets rate 0
        >>> [v.tolist() for v in maker.host(state)]
        [[0.0], [0.0]]
        """
        run = state.running
        return self.lr * state.lr_scale * run, self.alpha * run

    def make(self, state: TrainState) -> Columns:
        """The :class:`Columns` of the next epoch for ``state``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.optim import OptimizerSpec
        >>> from anyglm.trainstate import ColumnMaker, TrainState
        >>> spec = OptimizerSpec(penalty="elasticnet", l1_ratio=0.5)
        >>> maker = ColumnMaker(spec, anyglm.get_backend("numpy"), np.array([0.1]),
        ...                     np.array([1e-2]), 1, "float64", "cpu", scalars=True)
        >>> cols = maker.make(TrainState.start(np.zeros((3, 1)), np.zeros(1), {}, 1))
        >>> cols.l2, cols.l1
        (0.005, 0.005)
        """
        lr, alpha = self.host(state)
        t0 = self.t0
        if self.spec.schedule == "optimal":
            # The rate comes from alpha here: a frozen configuration keeps its
            # alpha and gets t0 = inf, so its rate is exactly 0.
            alpha = self.alpha
            t0 = np.where(state.running, self.t0, np.inf)
        l2, l1 = _penalty(self.spec, alpha)
        values = (lr, alpha, l2, l1, t0)
        if self.scalars:
            return Columns(*(float(np.asarray(v).reshape(-1)[0]) for v in values))
        return Columns(*(self._col(v) for v in values))

    def _col(self, values: Any) -> Any:
        column = np.repeat(np.asarray(values, dtype=np.float64), self.n_outputs)
        return self.backend.from_numpy(column, dtype=self.dtype, device=self.device)


def model_parameters(xp: Any, opt: Optimizer, state: TrainState, K: int) -> tuple[Any, Any]:
    """The parameters to predict with: averaged iterates once averaging runs, and the
    frozen parameters of stopped or diverged configurations.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import OptimizerSpec, build
    >>> from anyglm.trainstate import TrainState, model_parameters
    >>> xp = anyglm.get_backend("numpy").xp
    >>> opt = build(OptimizerSpec(average=1), xp)
    >>> state = TrainState.start(np.ones((1, 1)), np.ones(1), {"avg_W": np.zeros((1, 1)),
    ...                          "avg_b": np.zeros(1)}, 1)
    >>> state.average_from = 1  # averaging runs: the average is what predicts
    >>> model_parameters(xp, opt, state, 1)[0].tolist()
    [[0.0]]
    """
    W, b = opt.averaged(state.W, state.b, state.opt, state.average_from is not None)
    if state.frozen is None:
        return W, b
    cols, fW, fb = state.frozen
    return xp.where(cols, fW, W), xp.where(cols, fb, b)


def freeze(
    xp: Any,
    backend: Backend,
    opt: Optimizer,
    state: TrainState,
    source_state: TrainState,
    configs: np.ndarray,
    K: int,
    device: Any,
) -> TrainState:
    """Freeze ``configs`` at ``source_state``'s model parameters; they stop moving.

    Their raw iterates return to ``source_state``'s, and their optimiser state
    (momentum) is zeroed so that a zero learning rate really stops them.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import OptimizerSpec, build
    >>> from anyglm.trainstate import TrainState, freeze, model_parameters
    >>> be = anyglm.get_backend("numpy")
    >>> opt = build(OptimizerSpec(), be.xp)
    >>> before = TrainState.start(np.zeros((1, 2)), np.zeros(2), {}, 2)
    >>> after = TrainState.start(np.ones((1, 2)), np.ones(2), {}, 2)
    >>> after = freeze(be.xp, be, opt, after, before, np.array([False, True]), 2, "cpu")
    >>> model_parameters(be.xp, opt, after, 2)[0].tolist()  # the second one is back at 0
    [[1.0, 0.0]]
    """
    c = state.W.shape[1] // K
    cols_host = np.repeat(configs, c)
    cols = backend.from_numpy(cols_host, device=device)
    fW, fb = model_parameters(xp, opt, source_state, K)
    if state.frozen is not None:
        old, prev_fW, prev_fb = state.frozen
        fW, fb = xp.where(old, prev_fW, fW), xp.where(old, prev_fb, fb)
        cols = xp.logical_or(old, cols)
    W = xp.where(cols, source_state.W, state.W)
    b = xp.where(cols, source_state.b, state.b)
    opt_state = {
        key: xp.where(cols, xp.zeros_like(v), v) if key[:1].isdigit() else v
        for key, v in state.opt.items()
    }
    state.W, state.b, state.opt = W, b, opt_state
    state.frozen = (cols, fW, fb)
    return state


def early_stopping(
    xp: Any,
    backend: Backend,
    opt: Optimizer,
    spec: OptimizerSpec,
    state: TrainState,
    monitored: np.ndarray,
    tol: float,
    patience: int,
    epoch: int,
    lr_host: np.ndarray,
    K: int,
    device: Any,
) -> TrainState:
    """scikit-learn's rule per configuration: count epochs without an improvement of
    ``tol`` over the best so far; at ``patience``, divide an ``"adaptive"`` rate by 5
    (while it stays above 1e-6) or stop.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import OptimizerSpec, build
    >>> from anyglm.trainstate import TrainState, early_stopping
    >>> be = anyglm.get_backend("numpy")
    >>> spec = OptimizerSpec(schedule="adaptive")
    >>> state = TrainState.start(np.zeros((1, 1)), np.zeros(1), {}, 1)
    >>> for epoch, loss in enumerate([1.0, 1.0, 1.0], start=1):
    ...     state = early_stopping(be.xp, be, build(spec, be.xp), spec, state,
    ...                            np.array([loss]), 1e-4, 2, epoch, np.array([0.1]), 1, "cpu")
    >>> state.lr_scale.tolist(), state.stopped_at.tolist()  # rate divided by 5, not stopped
    ([0.2], [0])
    """
    running = state.running
    # tol is relative to the first epoch's monitored value (a loss of any scale).
    first = ~np.isfinite(state.scale)
    state.scale = np.where(first & running, np.abs(monitored), state.scale)
    worse = monitored > state.best - tol * np.where(np.isfinite(state.scale), state.scale, 0.0)
    state.stale = np.where(running & worse, state.stale + 1, np.where(running, 0, state.stale))
    state.best = np.where(running, np.minimum(state.best, monitored), state.best)
    due = running & (state.stale >= patience)
    if not np.any(due):
        return state
    stop = due.copy()
    if spec.schedule == "adaptive":
        can_shrink = due & (lr_host * state.lr_scale / 5 >= ADAPTIVE_MIN_RATE)
        state.lr_scale = np.where(can_shrink, state.lr_scale / 5, state.lr_scale)
        state.stale = np.where(can_shrink, 0, state.stale)
        stop = due & ~can_shrink
    if np.any(stop):
        state.stopped_at[stop] = epoch
        state = freeze(xp, backend, opt, state, state, stop, K, device)
    return state
