"""The accelerator contract: a backend may run a block of training steps its own way.

The portable loop (:func:`anyglm.steps.run_block`) is written once against
the Array API and is the reference. A backend plugin may implement the
``anyglm_accelerator`` hook: asked with the backend and an
:class:`AcceleratorSpec` (the model, the optimiser and its settings, the
penalty, the dtype, how many configurations, whether there are weights and
whether ``X`` is sparse), it returns an :class:`Accelerator` for the specs it
implements exactly, and ``None`` for every other one. Asking for momentum
therefore never silently runs plain SGD: an accelerator that only knows plain
SGD declines, and the portable loop runs.

An accelerator receives one :class:`BlockTask` at a time (a block of rows of
the epoch with its row order, the parameters, the optimiser state and the
step count) and returns a :class:`BlockResult`. It must give the same
parameters as the portable loop up to rounding; the conformance suite
compares them for every backend x model pair with an accelerator.

``ANYGLM_DISABLE_ACCELERATORS=1`` (or its older name ``ANYGLM_DISABLE_FAST_PATHS``)
trains on the portable loop only, to rule an accelerator out when results look wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

from ._env import env_flag
from .model import Model
from .optim import Columns, OptimizerSpec

__all__ = [
    "Accelerator",
    "AcceleratorSpec",
    "BlockResult",
    "BlockTask",
    "accelerators_disabled",
]


@dataclass(frozen=True)
class AcceleratorSpec:
    """What a fit asks an accelerator to implement.

    Attributes
    ----------
    model : Model
        The model object (its ``loss_and_dloss`` is the math to run).
    model_name : str
        The name it is registered under.
    optimizer : OptimizerSpec
        Schedule, momentum, averaging and penalty.
    dtype : str
        ``"float32"`` or ``"float64"``.
    n_configs : int
        ``K``, configurations trained side by side.
    weighted : bool
        Whether rows carry weights.
    sparse : bool
        Whether ``X`` is a sparse matrix.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.accelerate import AcceleratorSpec
    >>> from anyglm.optim import OptimizerSpec
    >>> spec = AcceleratorSpec(anyglm.get_model("softmax"), "softmax", OptimizerSpec(),
    ...                        "float32", 1, False, False)
    >>> spec.optimizer.plain
    True
    """

    model: Model
    model_name: str
    optimizer: OptimizerSpec
    dtype: str
    n_configs: int
    weighted: bool
    sparse: bool


@dataclass(frozen=True)
class BlockTask:
    """One block of an epoch and the training state at its start: what an accelerator gets.

    An accelerator must not modify any of these arrays: ``X``, ``Y`` and
    ``weights`` may be the caller's own, and ``W``, ``b`` and ``state`` are
    what the trainer falls back on when the epoch diverges.

    Attributes
    ----------
    X : array, shape (m, d)
        The block's features on the backend's device (a sparse matrix when
        the spec says so).
    Y : array, shape (m, c)
        Encoded targets.
    weights : array of shape (m,) or None
    order : numpy.ndarray of int64, shape (r,), or None
        The rows of the block to visit, in order (drawn on the host by the
        source; ``None``: ``0 .. m-1``). Minibatch ``j`` is
        ``order[j * batch_size : (j + 1) * batch_size]``; the last may be shorter.
    batch_size : int
    W : array, shape (d, K * c)
    b : array, shape (K * c,)
    state : dict of arrays
        The optimiser's state (:meth:`anyglm.optim.Optimizer.init`).
    t : int
        Steps taken before this block; the block's first step is ``t + 1``.
    columns : Columns
        Per-column hyperparameters (floats for one configuration).
    learning_rate, alpha : numpy.ndarray of shape (K,)
        The same per configuration, on the host, for accelerators that want scalars.
    average_from : int or None
        First averaged step (see :class:`anyglm.optim.StepContext`).
    n_configs : int

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.accelerate import BlockTask
    >>> from anyglm.optim import Columns
    >>> task = BlockTask(np.ones((4, 2)), np.ones((4, 1)), None, None, 2, np.zeros((2, 1)),
    ...                  np.zeros(1), {}, 0, Columns(0.1), np.array([0.1]), np.array([0.0]))
    >>> task.n_rows, task.n_steps
    (4, 2)
    """

    X: Any
    Y: Any
    weights: Any
    order: np.ndarray | None
    batch_size: int
    W: Any
    b: Any
    state: dict[str, Any]
    t: int
    columns: Columns
    learning_rate: np.ndarray
    alpha: np.ndarray
    average_from: int | None = None
    n_configs: int = 1

    @property
    def n_rows(self) -> int:
        """Rows visited in this block."""
        return int(self.X.shape[0]) if self.order is None else len(self.order)

    @property
    def n_steps(self) -> int:
        """Minibatch steps in this block."""
        return -(-self.n_rows // self.batch_size)

    @property
    def n_outputs(self) -> int:
        """``c``, the outputs of one configuration."""
        return int(self.W.shape[1]) // self.n_configs


class BlockResult(NamedTuple):
    """What an accelerator returns: new ``W``, ``b`` and optimiser ``state`` (new arrays),
    and ``loss_sum`` of shape ``(K,)`` on the device: per configuration, the sum over the
    block's rows of the (weighted) loss, each taken before its minibatch's update.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.accelerate import BlockResult
    >>> BlockResult(np.zeros((2, 1)), np.zeros(1), {}, np.array([3.5])).loss_sum.tolist()
    [3.5]
    """

    W: Any
    b: Any
    state: dict[str, Any]
    loss_sum: Any


class Accelerator(Protocol):
    """A compiled (or otherwise faster) pass over one block; see :class:`BlockTask`.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.accelerate import AcceleratorSpec, BlockTask
    >>> from anyglm.optim import Columns, OptimizerSpec
    >>> from anyglm.selection import find_accelerator
    >>> spec = AcceleratorSpec(anyglm.get_model("softmax"), "softmax",
    ...                        OptimizerSpec(momentum=0.9), "float64", 1, False, False)
    >>> find_accelerator(anyglm.get_backend("numpy"), spec) is None  # momentum: declined
    True
    """

    def __call__(self, task: BlockTask) -> BlockResult: ...


def accelerators_disabled() -> bool:
    """Whether ``ANYGLM_DISABLE_ACCELERATORS`` turns every accelerator off.

    Examples
    --------
    >>> import os
    >>> from anyglm.accelerate import accelerators_disabled
    >>> "ANYGLM_DISABLE_ACCELERATORS" in os.environ or not accelerators_disabled()
    True
    """
    # ANYGLM_DISABLE_FAST_PATHS is the name this switch had before accelerators.
    return env_flag("ANYGLM_DISABLE_ACCELERATORS") or env_flag("ANYGLM_DISABLE_FAST_PATHS")
