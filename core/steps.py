"""The minibatch steps of an epoch, written once: the portable loop every accelerator matches.

:func:`sgd_step` is one step (the chain rule of :mod:`anyglm.glm`, then the
optimiser of :mod:`anyglm.optim`); :func:`run_block` runs a block's
minibatches through it; :class:`BlockRunner` runs a block through an
accelerator when one takes it, else through :func:`run_block`; and
:func:`sequential_epoch` runs a source's blocks one after the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .accelerate import BlockResult, BlockTask
from .glm import loss_and_gradient
from .model import Model
from .optim import Columns, Optimizer, StepContext
from .sources import Block, DataSource

__all__ = ["BlockRunner", "EpochPass", "run_block", "sequential_epoch", "sgd_step"]


def sgd_step(
    model: Model,
    optimizer: Optimizer,
    xp: Any,
    n_configs: int,
    W: Any,
    b: Any,
    state: dict[str, Any],
    Xb: Any,
    Yb: Any,
    wb: Any,
    ctx: StepContext,
) -> tuple[Any, Any, dict[str, Any], Any]:
    """One minibatch step: the gradient of the mean loss, then the optimiser's update.

    Returns the new ``W``, ``b`` and optimiser state, and per configuration
    the sum over the minibatch's rows of the (weighted) loss before the step.
    Pure: no host synchronisation, no Python branch on array values, so a
    compiler (``jax.jit``) can trace it.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import Columns, OptimizerSpec, StepContext, build
    >>> from anyglm.steps import sgd_step
    >>> xp = anyglm.get_backend("numpy").xp
    >>> opt = build(OptimizerSpec(), xp)
    >>> X, Y = np.array([[1.0], [1.0]]), np.array([[2.0], [2.0]])
    >>> W, b, state, loss = sgd_step(anyglm.get_model("linear"), opt, xp, 1, np.zeros((1, 1)),
    ...                              np.zeros(1), {}, X, Y, None, StepContext(1, Columns(0.5)))
    >>> W.tolist(), b.tolist(), loss.tolist()  # each row's loss 0.5 * 2**2 before the step
    ([[1.0]], [1.0], [4.0])
    """
    loss, gW, gb = loss_and_gradient(model, xp, Xb, Yb, W, b, n_configs=n_configs, weights=wb)
    W, b, state = optimizer.step(W, b, gW, gb, state, ctx)
    return W, b, state, loss * Xb.shape[0]


def run_block(
    model: Model,
    optimizer: Optimizer,
    block: Block,
    batch_size: int,
    W: Any,
    b: Any,
    state: dict[str, Any],
    t: int,
    columns: Columns,
    average_from: int | None,
    n_configs: int,
) -> BlockResult:
    """The portable loop over one block: :func:`sgd_step` on each minibatch, in order.

    The reference every accelerator is checked against.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import Columns, OptimizerSpec, build
    >>> from anyglm.sources import Block
    >>> from anyglm.steps import run_block
    >>> be = anyglm.get_backend("numpy")
    >>> blk = Block(np.ones((4, 1)), np.full((4, 1), 2.0), None, np.array([3, 1, 0, 2]), 0, be)
    >>> res = run_block(anyglm.get_model("linear"), build(OptimizerSpec(), be.xp), blk, 2,
    ...                 np.zeros((1, 1)), np.zeros(1), {}, 0, Columns(0.25), None, 1)
    >>> res.W.tolist(), res.b.tolist(), res.loss_sum.tolist()
    ([[0.75]], [0.75], [5.0])
    """
    xp = block.backend.xp
    total = xp.zeros((n_configs,), dtype=W.dtype, device=block.device)
    for Xb, Yb, wb in block.batches(batch_size):
        t += 1
        ctx = StepContext(t, columns, average_from)
        W, b, state, loss = sgd_step(model, optimizer, xp, n_configs, W, b, state, Xb, Yb, wb, ctx)
        total = total + loss
    return BlockResult(W, b, state, total)


@dataclass
class BlockRunner:
    """Runs one block of an epoch: through the accelerator when it takes the block, else
    through the portable loop (:func:`run_block`). Everything but the arrays is fixed
    for the epoch, so a source that trains blocks elsewhere (on a cluster's workers)
    can ship the runner there; it holds nothing that cannot be pickled.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import Columns, OptimizerSpec, build
    >>> from anyglm.sources import Block
    >>> from anyglm.steps import BlockRunner
    >>> be = anyglm.get_backend("numpy")
    >>> runner = BlockRunner(anyglm.get_model("linear"), build(OptimizerSpec(), be.xp), None, 2,
    ...                      Columns(0.25), np.array([0.25]), np.array([0.0]), None, 1)
    >>> blk = Block(np.ones((4, 1)), np.full((4, 1), 2.0), None, None, 0, be)
    >>> res, accelerated = runner(blk, np.zeros((1, 1)), np.zeros(1), {}, 0)
    >>> res.W.tolist(), accelerated
    ([[0.75]], False)
    """

    model: Model
    optimizer: Optimizer
    accelerator: Any
    batch_size: int
    columns: Columns
    learning_rate: np.ndarray
    alpha: np.ndarray
    average_from: int | None
    n_configs: int

    def steps(self, block: Block) -> int:
        """Minibatch steps in ``block``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.optim import Columns, OptimizerSpec, build
        >>> from anyglm.sources import Block
        >>> from anyglm.steps import BlockRunner
        >>> be = anyglm.get_backend("numpy")
        >>> runner = BlockRunner(anyglm.get_model("linear"), build(OptimizerSpec(), be.xp), None,
        ...                      4, Columns(0.1), np.array([0.1]), np.array([0.0]), None, 1)
        >>> runner.steps(Block(np.ones((10, 1)), np.ones((10, 1)), None, None, 0, be))
        3
        """
        return -(-block.n_rows // self.batch_size)

    def __call__(
        self, block: Block, W: Any, b: Any, state: dict[str, Any], t: int
    ) -> tuple[BlockResult, bool]:
        """The block's result, and whether the accelerator produced it."""
        if self.accelerator is not None:
            task = BlockTask(
                block.X,
                block.Y,
                block.weights,
                block.order,
                self.batch_size,
                W,
                b,
                state,
                t,
                self.columns,
                self.learning_rate,
                self.alpha,
                self.average_from,
                self.n_configs,
            )
            res = self.accelerator(task)
            if res is not None:
                return res, True
        res = run_block(
            self.model,
            self.optimizer,
            block,
            self.batch_size,
            W,
            b,
            state,
            t,
            self.columns,
            self.average_from,
            self.n_configs,
        )
        return res, False


@dataclass
class EpochPass:
    """What one pass over a source's blocks produced (see :func:`sequential_epoch`).

    ``loss_sum`` (shape ``(K,)``, on the device) sums the row losses before each
    row's update; ``t`` is the step count after the pass.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.steps import EpochPass
    >>> EpochPass(np.zeros((1, 1)), np.zeros(1), {}, 3, np.array([1.5]), False).t
    3
    """

    W: Any
    b: Any
    state: dict[str, Any]
    t: int
    loss_sum: Any
    accelerated: bool


def sequential_epoch(
    source: DataSource,
    runner: BlockRunner,
    W: Any,
    b: Any,
    state: dict[str, Any],
    t: int,
    rng: np.random.Generator | None,
    shuffle: bool,
) -> EpochPass:
    """One epoch: the source's blocks one after the other, each continuing from the last.

    A source may run its epochs another way by defining ``run_epoch(runner, W, b,
    state, t, rng, shuffle) -> EpochPass`` (a Dask source trains its partitions
    in parallel and averages them); everything else comes here.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.optim import Columns, OptimizerSpec, build
    >>> from anyglm.sources import ArraySource
    >>> from anyglm.steps import BlockRunner, sequential_epoch
    >>> be = anyglm.get_backend("numpy")
    >>> runner = BlockRunner(anyglm.get_model("linear"), build(OptimizerSpec(), be.xp), None, 2,
    ...                      Columns(0.25), np.array([0.25]), np.array([0.0]), None, 1)
    >>> src = ArraySource(be, np.ones((4, 1)), np.full((4, 1), 2.0))
    >>> done = sequential_epoch(src, runner, np.zeros((1, 1)), np.zeros(1), {}, 0, None, False)
    >>> done.t, done.loss_sum.tolist()
    (2, [5.0])
    """
    xp = source.backend.xp
    total = xp.zeros((runner.n_configs,), dtype=W.dtype, device=source.device)
    used = False
    for block in source.blocks(rng, shuffle):
        res, accelerated = runner(block, W, b, state, t)
        used = used or accelerated
        W, b, state = res.W, res.b, res.state
        total = total + res.loss_sum
        t += runner.steps(block)
    return EpochPass(W, b, state, t, total, used)
