"""The optimiser: minibatch SGD with schedules, momentum, averaging and penalties.

Written once against the Array API and in the shape of optax's
``(init, update)`` pairs: each piece of the update is a :class:`Transform`
that turns gradients into updates and may carry state (a dict of arrays), and
:func:`chain` composes them. Two pieces act on the parameters after the step
instead of on the gradient (a *projection*): the L1 penalty, applied as the
cumulative truncated-gradient step of Tsuruoka et al. (2009) so that weights
become exactly zero, and Polyak-Ruppert averaging of the iterates.

Updates are functional (``W - lr * g`` makes a new array), so arrays that
cannot be written in place (JAX) work and the previous parameters stay valid:
the trainer keeps them as the last finite state at no cost.

Everything a step needs besides the arrays comes in a :class:`StepContext`:
the step number ``t`` (1 for the first step of a fit; a Python int in the
portable loop, a traced integer inside a compiled one) and the per-column
hyperparameters (:class:`Columns`). Nothing here reads an array back to the
host, so a step never synchronises with a device.

The update of one step, for parameters ``p = (W, b)`` and gradients ``g``
of the mean data loss (the intercept ``b`` is never penalised):

1. ``g_W += l2 * W`` with ``l2 = alpha`` (``"l2"``), ``alpha * (1 - l1_ratio)``
   (``"elasticnet"``) or 0;
2. momentum ``mu`` (optional): ``v = mu * v - eta_t * g``; the update is ``v``,
   or ``mu * v - eta_t * g`` with Nesterov's correction; without momentum the
   update is ``-eta_t * g``;
3. ``p += update``;
4. L1 (``"l1"``, ``"elasticnet"``): the cumulative penalty
   ``u += eta_t * l1`` pulls each weight towards zero by what it has not yet
   received, never across zero;
5. averaging (optional, from step ``t_a`` on): ``p_avg += (p - p_avg) / (t - t_a + 1)``.

``eta_t`` follows the schedule (:func:`step_size`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "PENALTIES",
    "SCHEDULES",
    "Columns",
    "OptimizerSpec",
    "StepContext",
    "Transform",
    "add_l2",
    "apply_updates",
    "build",
    "chain",
    "momentum",
    "optimal_t0",
    "penalty_coefficients",
    "scale_by_schedule",
    "sgd",
    "step_size",
]

Params = tuple[Any, ...]
State = dict[str, Any]

#: Learning-rate schedules (scikit-learn's names and formulas, ``t`` counting minibatch steps).
SCHEDULES = ("constant", "invscaling", "optimal", "adaptive")
#: Penalties on the weights (never on the intercept).
PENALTIES = ("l2", "l1", "elasticnet", "none")


@dataclass(frozen=True)
class OptimizerSpec:
    """What the optimiser does, as plain values (hashable, comparable, JSON-ready).

    The settings that may differ between configurations trained side by side
    (``learning_rate`` and ``alpha``) are not here; they are :class:`Columns`.
    An accelerator reads the spec to decide whether it implements the update.

    Attributes
    ----------
    schedule : {"constant", "invscaling", "optimal", "adaptive"}
        ``eta_t`` as a function of the step ``t``; see :func:`step_size`.
    power_t : float
        Exponent of ``"invscaling"``.
    momentum : float
        In ``[0, 1)``; 0 turns momentum off.
    nesterov : bool
        Nesterov's correction (needs ``momentum > 0``).
    average : int
        0: no averaging; ``k >= 1``: average the iterates from the first step
        of epoch ``k`` on (``1``: from the start).
    penalty : {"l2", "l1", "elasticnet", "none"}
    l1_ratio : float
        Share of L1 in ``"elasticnet"``.

    Examples
    --------
    >>> from anyglm.optim import OptimizerSpec
    >>> spec = OptimizerSpec(momentum=0.9)
    >>> spec.plain, OptimizerSpec().plain
    (False, True)
    """

    schedule: str = "constant"
    power_t: float = 0.5
    momentum: float = 0.0
    nesterov: bool = False
    average: int = 0
    penalty: str = "l2"
    l1_ratio: float = 0.15

    def __post_init__(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.penalty not in PENALTIES:
            raise ValueError(f"penalty must be one of {PENALTIES}, got {self.penalty!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {self.momentum!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov=True needs momentum > 0")
        if not 0.0 <= self.l1_ratio <= 1.0:
            raise ValueError(f"l1_ratio must be in [0, 1], got {self.l1_ratio!r}")
        if self.average < 0:
            raise ValueError(f"average must be 0 (off) or an epoch >= 1, got {self.average!r}")

    @property
    def plain(self) -> bool:
        """Plain SGD with at most an L2 penalty and a rate that is constant within an epoch.

        What the simplest accelerators implement: ``"constant"`` and
        ``"adaptive"`` (which changes the rate only between epochs), no
        momentum, no averaging, no L1.
        """
        return (
            self.schedule in ("constant", "adaptive")
            and self.momentum == 0
            and self.average == 0
            and self.penalty in ("l2", "none")
        )

    @property
    def uses_l1(self) -> bool:
        """Whether the penalty has an L1 part."""
        return self.penalty in ("l1", "elasticnet")

    def to_dict(self) -> dict[str, Any]:
        """The spec as a JSON-ready dict (what model files store).

        Examples
        --------
        >>> from anyglm.optim import OptimizerSpec
        >>> OptimizerSpec.from_dict(OptimizerSpec(average=3).to_dict()).average
        3
        """
        return {
            "schedule": self.schedule,
            "power_t": self.power_t,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "average": self.average,
            "penalty": self.penalty,
            "l1_ratio": self.l1_ratio,
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> OptimizerSpec:
        """Inverse of :meth:`to_dict`; unknown keys are ignored, missing ones take defaults.

        Examples
        --------
        >>> from anyglm.optim import OptimizerSpec
        >>> OptimizerSpec.from_dict({"momentum": 0.5}).momentum
        0.5
        """
        known = {k: values[k] for k in cls().to_dict() if k in values}
        return replace(cls(), **known)


def penalty_coefficients(spec: OptimizerSpec, alpha: Any) -> tuple[Any, Any]:
    """``(l2, l1)`` multipliers of the penalty for a penalty strength ``alpha``.

    Examples
    --------
    >>> from anyglm.optim import OptimizerSpec, penalty_coefficients
    >>> penalty_coefficients(OptimizerSpec(penalty="elasticnet", l1_ratio=0.25), 2.0)
    (1.5, 0.5)
    """
    if spec.penalty == "l2":
        return alpha, 0.0 * alpha
    if spec.penalty == "l1":
        return 0.0 * alpha, alpha
    if spec.penalty == "elasticnet":
        return alpha * (1.0 - spec.l1_ratio), alpha * spec.l1_ratio
    return 0.0 * alpha, 0.0 * alpha


def optimal_t0(learning_rate: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Offset ``t0 = 1 / (eta_1 alpha)`` of the ``"optimal"`` schedule, per configuration.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.optim import optimal_t0
    >>> optimal_t0(np.array([0.5]), np.array([0.01])).tolist()
    [200.0]
    """
    lr = np.asarray(learning_rate, dtype=np.float64)
    al = np.asarray(alpha, dtype=np.float64)
    if np.any(al <= 0):
        raise ValueError(
            "schedule='optimal' needs alpha > 0 (its step is 1 / (alpha (t0 + t))); "
            f"got alpha={al.tolist()}"
        )
    return 1.0 / (lr * al)


@dataclass(frozen=True)
class Columns:
    """Per-column hyperparameters of one epoch: Python floats or arrays of shape ``(K * c,)``.

    ``K`` configurations of ``c`` outputs each are stacked along the columns
    of ``W``; a hyperparameter that differs between configurations is an
    array repeating each configuration's value ``c`` times (on the device of
    the parameters), which broadcasts against ``W`` and ``b``. A single
    configuration uses Python floats (no broadcast).

    Attributes
    ----------
    learning_rate : float or array
        ``eta`` of the schedule (for ``"adaptive"``, the current rate).
    alpha : float or array
        Penalty strength; the ``"optimal"`` schedule's rate depends on it.
    l2, l1 : float or array
        Penalty multipliers (:func:`penalty_coefficients`).
    t0 : float or array
        Offset of the ``"optimal"`` schedule (0 otherwise).

    Examples
    --------
    >>> from anyglm.optim import Columns
    >>> Columns(learning_rate=0.1, l2=1e-4).l1
    0.0
    """

    learning_rate: Any
    alpha: Any = 0.0
    l2: Any = 0.0
    l1: Any = 0.0
    t0: Any = 0.0


@dataclass(frozen=True)
class StepContext:
    """What one step needs besides arrays: the step number and the hyperparameters.

    Attributes
    ----------
    t : int
        1 for the first step of a fit (counts minibatch steps, across epochs).
    columns : Columns
    average_from : int or None
        First averaged step, or ``None`` while averaging is off.

    Examples
    --------
    >>> from anyglm.optim import Columns, StepContext
    >>> StepContext(3, Columns(0.1)).t
    3
    """

    t: Any
    columns: Columns
    average_from: Any = None


def step_size(spec: OptimizerSpec, ctx: StepContext) -> Any:
    """``eta_t`` for step ``ctx.t`` (a float, or a column array).

    * ``"constant"`` and ``"adaptive"``: ``eta``;
    * ``"invscaling"``: ``eta / t ** power_t``;
    * ``"optimal"``: ``1 / (alpha (t0 + t - 1))`` with ``t0 = 1 / (eta alpha)``,
      so ``eta_1 = eta`` (Bottou's schedule, as scikit-learn defines it, with
      ``t`` counting minibatch steps).

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, step_size
    >>> ctx = StepContext(4, Columns(learning_rate=0.8))
    >>> step_size(OptimizerSpec(schedule="invscaling"), ctx)
    0.4
    """
    cols = ctx.columns
    if spec.schedule == "invscaling":
        return cols.learning_rate / (ctx.t**spec.power_t)
    if spec.schedule == "optimal":
        return 1.0 / (cols.alpha * (cols.t0 + (ctx.t - 1)))
    return cols.learning_rate


class Transform(NamedTuple):
    """A gradient transformation: ``init(params) -> state`` and
    ``update(grads, state, params, ctx) -> (updates, state)``.

    ``state`` is a dict of arrays (empty for stateless pieces); ``ctx`` is the
    step's :class:`StepContext`.

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, scale_by_schedule
    >>> opt = scale_by_schedule(OptimizerSpec())
    >>> opt.update((1.0,), opt.init((0.0,)), (0.0,), StepContext(1, Columns(0.1)))[0]
    (-0.1,)
    """

    init: Callable[[Params], State]
    update: Callable[[Params, State, Params, StepContext], tuple[Params, State]]


def _no_state(params: Params) -> State:
    return {}


def add_l2(mask: tuple[bool, ...]) -> Transform:
    """Add ``l2 * p`` to the gradient of every parameter ``p`` whose ``mask`` is true.

    The gradient of ``(l2 / 2) ||p||^2``; the intercept is left out with
    ``mask=(True, False)`` for ``(W, b)``.

    Examples
    --------
    >>> from anyglm.optim import Columns, StepContext, add_l2
    >>> t = add_l2((True, False))
    >>> t.update((1.0, 1.0), {}, (10.0, 10.0), StepContext(1, Columns(0.1, l2=0.1)))[0]
    (2.0, 1.0)
    """

    def update(grads: Params, state: State, params: Params, ctx: StepContext) -> Any:
        l2 = ctx.columns.l2
        out = tuple(g + l2 * p if m else g for g, p, m in zip(grads, params, mask, strict=True))
        return out, state

    return Transform(_no_state, update)


def scale_by_schedule(spec: OptimizerSpec) -> Transform:
    """Multiply the gradient by ``-eta_t`` (:func:`step_size`): plain SGD's update.

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, scale_by_schedule
    >>> t = scale_by_schedule(OptimizerSpec())
    >>> t.update((2.0,), {}, (0.0,), StepContext(1, Columns(0.25)))[0]
    (-0.5,)
    """

    def update(grads: Params, state: State, params: Params, ctx: StepContext) -> Any:
        eta = step_size(spec, ctx)
        return tuple(-eta * g for g in grads), state

    return Transform(_no_state, update)


def momentum(spec: OptimizerSpec) -> Transform:
    """Heavy-ball momentum on the scaled gradient (scikit-learn's form), optionally Nesterov.

    ``v = mu * v - eta_t * g``; the update is ``v``, or ``mu * v - eta_t * g``
    with Nesterov's correction. The velocity starts at zero.

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, momentum
    >>> t = momentum(OptimizerSpec(momentum=0.5))
    >>> ctx = StepContext(1, Columns(1.0))
    >>> upd, state = t.update((1.0,), t.init((0.0,)), (0.0,), ctx)
    >>> upd, t.update((1.0,), state, (0.0,), ctx)[0]
    ((-1.0,), (-1.5,))
    """
    mu = spec.momentum

    def init(params: Params) -> State:
        return {f"velocity{i}": 0.0 * p for i, p in enumerate(params)}

    def update(grads: Params, state: State, params: Params, ctx: StepContext) -> Any:
        eta = step_size(spec, ctx)
        new_state: State = {}
        out = []
        for i, g in enumerate(grads):
            v = mu * state[f"velocity{i}"] - eta * g
            new_state[f"velocity{i}"] = v
            out.append(mu * v - eta * g if spec.nesterov else v)
        return tuple(out), new_state

    return Transform(init, update)


def chain(*transforms: Transform) -> Transform:
    """Apply transformations in order, each to the output of the previous one.

    The chained state is one flat dict; each piece's keys are prefixed with
    its position (``"1.velocity0"``), so pieces never collide.

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, add_l2, chain
    >>> from anyglm.optim import scale_by_schedule
    >>> opt = chain(add_l2((True,)), scale_by_schedule(OptimizerSpec()))
    >>> opt.update((1.0,), opt.init((2.0,)), (2.0,), StepContext(1, Columns(0.1, l2=1.0)))[0]
    (-0.30000000000000004,)
    """

    def init(params: Params) -> State:
        state: State = {}
        for i, t in enumerate(transforms):
            state.update({f"{i}.{k}": v for k, v in t.init(params).items()})
        return state

    def update(grads: Params, state: State, params: Params, ctx: StepContext) -> Any:
        new_state: State = {}
        for i, t in enumerate(transforms):
            prefix = f"{i}."
            own = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
            grads, own = t.update(grads, own, params, ctx)
            new_state.update({prefix + k: v for k, v in own.items()})
        return grads, new_state

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates``, element by element, as new arrays.

    Examples
    --------
    >>> from anyglm.optim import apply_updates
    >>> apply_updates((1.0, 2.0), (0.5, -0.5))
    (1.5, 1.5)
    """
    return tuple(p + u for p, u in zip(params, updates, strict=True))


def sgd(spec: OptimizerSpec) -> Transform:
    """The gradient transformation ``spec`` asks for: L2, then the schedule or momentum.

    Examples
    --------
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, sgd
    >>> opt = sgd(OptimizerSpec())
    >>> opt.update((1.0, 1.0), opt.init((2.0, 2.0)), (2.0, 2.0),
    ...            StepContext(1, Columns(0.5, l2=0.5)))[0]  # the intercept is not penalised
    (-1.0, -0.5)
    """
    pieces = [add_l2((True, False))]
    pieces.append(momentum(spec) if spec.momentum > 0 else scale_by_schedule(spec))
    return chain(*pieces)


@dataclass
class Optimizer:
    """The whole step for ``(W, b)``: :func:`sgd`'s transform, then the projections.

    Build one with :func:`build`. ``state`` keys: the transform's (``"0.*"``),
    ``"l1_u"`` and ``"l1_q"`` for the cumulative L1 penalty, ``"avg_W"`` and
    ``"avg_b"`` for averaging. Every value is an array on the parameters'
    device, so the state can be saved in a checkpoint and traced by a compiler.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, build
    >>> import array_api_compat.numpy as xp
    >>> opt = build(OptimizerSpec(penalty="l1"), xp)
    >>> W, b = np.array([[0.05, -1.0]]), np.zeros(2)
    >>> state = opt.init(W, b)
    >>> W, b, state = opt.step(W, b, np.zeros((1, 2)), np.zeros(2), state,
    ...                        StepContext(1, Columns(1.0, l1=0.1)))
    >>> W.tolist()  # 0.05 is pulled to exactly 0, -1.0 towards 0 by 0.1
    [[0.0, -0.9]]
    """

    spec: OptimizerSpec
    xp: Any
    transform: Transform = field(init=False)

    def __post_init__(self) -> None:
        self.transform = sgd(self.spec)

    def init(self, W: Any, b: Any) -> State:
        """Initial state for parameters ``W (d, K*c)`` and ``b (K*c,)``."""
        state = dict(self.transform.init((W, b)))
        if self.spec.uses_l1:
            state["l1_u"] = 0.0 * b  # total L1 pull each column could have had
            state["l1_q"] = 0.0 * W  # what each weight actually received
        if self.spec.average:
            state["avg_W"] = W
            state["avg_b"] = b
        return state

    def step(
        self, W: Any, b: Any, gW: Any, gb: Any, state: State, ctx: StepContext
    ) -> tuple[Any, Any, State]:
        """One update of ``(W, b)`` from the gradients of the mean data loss."""
        # The transform's keys start with its position ("0.", "1."); the projections' do not.
        own = {k: v for k, v in state.items() if k[:1].isdigit()}
        updates, own = self.transform.update((gW, gb), own, (W, b), ctx)
        W, b = apply_updates((W, b), updates)
        new_state = {**state, **own}
        if self.spec.uses_l1:
            W, new_state = self._l1(W, new_state, ctx)
        if self.spec.average and ctx.average_from is not None:
            k = ctx.t - ctx.average_from + 1  # iterates averaged, this one included
            new_state["avg_W"] = new_state["avg_W"] + (W - new_state["avg_W"]) / k
            new_state["avg_b"] = new_state["avg_b"] + (b - new_state["avg_b"]) / k
        return W, b, new_state

    def _l1(self, W: Any, state: State, ctx: StepContext) -> tuple[Any, State]:
        # Tsuruoka, Tsujii and Ananiadou (2009), as scikit-learn's SGD applies it:
        # each weight is pulled towards zero by the total penalty u it could have
        # received so far minus what it did receive (q), and clipped at zero.
        xp = self.xp
        u = state["l1_u"] + step_size(self.spec, ctx) * ctx.columns.l1
        q = state["l1_q"]
        zero = xp.zeros_like(W)
        pulled = xp.where(
            W > 0,
            xp.maximum(zero, W - (u + q)),
            xp.where(W < 0, xp.minimum(zero, W + (u - q)), W),
        )
        return pulled, {**state, "l1_u": u, "l1_q": q + (pulled - W)}

    def averaged(self, W: Any, b: Any, state: State, averaging: bool) -> tuple[Any, Any]:
        """The parameters a model should predict with: the average once it runs."""
        if self.spec.average and averaging:
            return state["avg_W"], state["avg_b"]
        return W, b


def build(spec: OptimizerSpec, xp: Any) -> Optimizer:
    """The :class:`Optimizer` for ``spec`` on the namespace ``xp``.

    Examples
    --------
    >>> import array_api_compat.numpy as xp
    >>> from anyglm.optim import OptimizerSpec, build
    >>> sorted(build(OptimizerSpec(momentum=0.9, average=1), xp).init(0.0, 0.0))
    ['1.velocity0', '1.velocity1', 'avg_W', 'avg_b']
    """
    return Optimizer(spec, xp)
