"""Training and validation scores where the chunks of a Dask array live: :class:`DaskSource`.

Used by the Dask backend (:mod:`anyglm.backends.dask`; its inputs are prepared
by :mod:`anyglm.backends.dask_inputs`, its predictions made by
:mod:`anyglm.backends.dask_predict`). Every function that runs on a worker
(``_train_partition``, ``_combine``, ``_evaluate_partition``,
``_combine_scores``) gets a chunk of rows and small host values, and gives
back small values; the client only draws orders, builds graphs and reads
results.

**A round of local SGD with model averaging** (:meth:`DaskSource.run_epoch`):
for each partition (chunk of rows) with rows in this round, one task turns
the chunk into a :class:`~anyglm.sources.Block` (features in the fit's dtype,
targets encoded, row weights) and runs the trainer's
:class:`~anyglm.trainer.BlockRunner` on it from the broadcast parameters,
optimiser state and step count: the accelerator of the chunks' backend
(numba on NumPy chunks) or the portable loop, exactly as one machine runs a
block. One more task averages the partitions' parameters and every
optimiser state array, weighted by the rows each trained on, and sums their
losses. The client computes that last task: one synchronisation per round.

**Orders.** Per epoch the client draws, from the fit's generator, the order of
the partitions (when there are several and ``shuffle``) and a permutation of
each partition's rows, in that partition order; with ``R`` rounds per epoch
each partition's permutation is cut into ``R`` consecutive parts, one per
round. One partition and one round therefore draw and train exactly what
:class:`~anyglm.sources.ArraySource` draws and trains.

**Step count.** Inside a round every partition counts its steps from the
round's starting ``t``; after the round ``t`` grows by the steps of all
partitions, so after an epoch ``t`` counts every minibatch of the epoch, as
on one machine (schedules and averaging read it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from anyglm import registry
from anyglm.backend import Backend
from anyglm.evaluation import _hits, _r2
from anyglm.glm import linear_predictor
from anyglm.labels import TargetCoder, label_indices
from anyglm.model import Model
from anyglm.optim import Columns, OptimizerSpec, build
from anyglm.selection import owner_of
from anyglm.sources import Block
from anyglm.trainer import BlockRunner, EpochPass

from .dask_arrays import ChunkNamespace, host_array

__all__ = ["ChunkTargets", "DaskSource"]


@dataclass(frozen=True)
class ChunkTargets:
    """How a chunk's targets become encoded targets and row weights on a worker.

    Attributes
    ----------
    coder : TargetCoder
    classes : numpy.ndarray or None
        The sorted class labels (classifiers).
    per_class : numpy.ndarray or None
        The weight of each class (``class_weight``), multiplied into the sample weights.
    name : str
        What the targets are called in messages.
    scale : float
        The row weights are divided by it: their mean over the training rows, so
        the loss is the weighted mean (as :mod:`anyglm.inputs` scales them).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.backends.dask_training import ChunkTargets
    >>> from anyglm.labels import TargetCoder
    >>> t = ChunkTargets(TargetCoder("onehot", 3), np.array([1, 5, 7]), np.array([1.0, 2.0, 1.0]))
    >>> Y, codes = t.encode(np.array([5, 7]))
    >>> Y.tolist(), t.weights(codes, None).tolist()
    ([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0]], [2.0, 1.0])
    """

    coder: TargetCoder
    classes: np.ndarray | None
    per_class: np.ndarray | None = None
    name: str = "y"
    scale: float = 1.0

    def encode(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``(Y, codes)``: the encoded targets of ``y``'s rows, and the class indices (or None).

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.backends.dask_training import ChunkTargets
        >>> from anyglm.labels import TargetCoder
        >>> ChunkTargets(TargetCoder("values", 1), None).encode(np.array([1.5]))[0].tolist()
        [[1.5]]
        """
        if self.classes is None:
            return self.coder.encode(np.asarray(y, dtype=np.float64)), None
        codes = label_indices(self.classes, y, self.name)
        return self.coder.encode(codes), codes

    def weights(self, codes: np.ndarray | None, sample_weight: np.ndarray | None) -> Any:
        """Row weights: sample weights times class weights, or ``None`` for all ones.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.backends.dask_training import ChunkTargets
        >>> from anyglm.labels import TargetCoder
        >>> ChunkTargets(TargetCoder("binary", 1), np.array([0, 1])).weights(None, None) is None
        True
        """
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
        if self.per_class is not None and codes is not None:
            w = self.per_class[codes] if w is None else w * self.per_class[codes]
        return None if w is None else w / self.scale


def _block(
    x: Any, y: Any, w: Any, targets: ChunkTargets, dtype: str, order: Any, start: int
) -> Block:
    inner = owner_of(x) or registry.get_backend("numpy")
    device = inner.device_of(x)
    Y, codes = targets.encode(host_array(y))
    weights = targets.weights(codes, None if w is None else host_array(w))
    return Block(
        inner.from_numpy(x, dtype=dtype, device=device),
        inner.from_numpy(Y, dtype=dtype, device=device),
        None if weights is None else inner.from_numpy(weights, dtype=dtype, device=device),
        order,
        start,
        inner,
        device,
    )


# -- what runs on the workers ---------------------------------------------------------------------


@dataclass
class _Shared:
    """What every partition of a round gets (sent once per worker): runner and parameters."""

    model: Model
    spec: OptimizerSpec
    accelerator: Any
    batch_size: int
    columns: Columns
    learning_rate: np.ndarray
    alpha: np.ndarray
    average_from: int | None
    n_configs: int
    W: Any
    b: Any
    state: dict[str, Any]
    t: int
    targets: ChunkTargets
    dtype: str

    def runner(self, xp: Any) -> BlockRunner:
        return BlockRunner(
            self.model,
            build(self.spec, xp),
            self.accelerator,
            self.batch_size,
            self.columns,
            self.learning_rate,
            self.alpha,
            self.average_from,
            self.n_configs,
        )


@dataclass
class _Trained:
    """One partition's result, or the averaged result of a round."""

    W: Any
    b: Any
    state: dict[str, Any]
    loss_sum: Any
    accelerated: bool
    rows: int
    steps: int


def _train_partition(x: Any, y: Any, w: Any, shared: _Shared, order: Any, start: int) -> _Trained:
    block = _block(x, y, w, shared.targets, shared.dtype, order, start)
    runner = shared.runner(block.backend.xp)
    res, accelerated = runner(block, shared.W, shared.b, shared.state, shared.t)
    return _Trained(
        res.W, res.b, res.state, res.loss_sum, accelerated, block.n_rows, runner.steps(block)
    )


def _combine(parts: list[_Trained]) -> _Trained:
    """The row-weighted average of the partitions' parameters and state; summed losses."""
    if len(parts) == 1:
        return parts[0]  # one partition: its result exactly, as on one machine
    rows = sum(p.rows for p in parts)
    shares = [p.rows / rows for p in parts]

    def average(values: list[Any]) -> Any:
        out = values[0] * shares[0]
        for value, share in zip(values[1:], shares[1:], strict=True):
            out = out + value * share
        return out

    loss = parts[0].loss_sum
    for p in parts[1:]:
        loss = loss + p.loss_sum
    state = {key: average([p.state[key] for p in parts]) for key in parts[0].state}
    return _Trained(
        average([p.W for p in parts]),
        average([p.b for p in parts]),
        state,
        loss,
        any(p.accelerated for p in parts),
        rows,
        sum(p.steps for p in parts),
    )


def _evaluate_partition(
    x: Any, y: Any, w: Any, shared: tuple[Any, ...], order: Any, start: int
) -> Any:
    targets, dtype, model, W, b, k, weighted = shared
    block = _block(x, y, w, targets, dtype, order, start)
    xp = block.backend.xp
    X, Y, rw = block.selected()
    m = int(X.shape[0])
    Z = linear_predictor(xp, X, W, b, k)
    per_row = model.loss(xp, Z, xp.expand_dims(Y, axis=1))
    if weighted and rw is not None:
        per_row = per_row * xp.reshape(rw, (m, 1))
    loss = xp.sum(per_row, axis=0)
    if model.task == "classification":
        return m, loss, xp.sum(_hits(xp, Z, Y), axis=0)
    R = xp.expand_dims(Y, axis=1) - model.inverse_link(xp, Z)
    mean = xp.mean(Y, axis=0)
    C = Y - mean
    return m, loss, xp.sum(R * R, axis=0), mean, xp.sum(C * C, axis=0)


def _evaluate_one(
    x: Any, y: Any, w: Any, shared: tuple[Any, ...], order: Any, start: int, classification: bool
) -> tuple[Any, Any]:
    return _combine_scores([_evaluate_partition(x, y, w, shared, order, start)], classification)


def _scan_partition(
    x: Any, y: Any, w: Any, targets: ChunkTargets, dtype: str, order: Any, start: int,
    keep: np.ndarray,
) -> tuple[float, float, int, tuple[Any, Any, Any] | None]:  # fmt: skip
    """Sum and maximum of ``w_i (||x_i||^2 + 1)`` over the partition's rows, and its ``keep``
    rows (positions among them), as :func:`anyglm.stepsize.scan` takes them from a block."""
    block = _block(x, y, w, targets, dtype, order, start)
    be, xp, dev = block.backend, block.backend.xp, block.device
    X, Y, rw = block.selected()
    scale = xp.vecdot(X, X) + 1.0
    if rw is not None:
        scale = scale * rw
    stats = be.to_numpy(xp.stack([xp.sum(scale), xp.max(scale)]))
    rows = None
    if keep.size:
        idx = be.from_numpy(keep, dtype=be.index_dtype(dev), device=dev)
        wk = None if rw is None else xp.take(rw, idx, axis=0)
        rows = (xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0), wk)
    return float(stats[0]), float(stats[1]), int(X.shape[0]), rows


def _combine_scores(parts: list[tuple[Any, ...]], classification: bool) -> tuple[Any, Any]:
    """Mean loss and accuracy (or R^2) from the partitions' sums, as :func:`evaluate` does."""
    n, loss, extra = 0, None, None
    mean = m2 = None
    for part in parts:
        m, rows = part[0], part[1]
        loss = rows if loss is None else loss + rows
        if classification:
            extra = part[2] if extra is None else extra + part[2]
        else:
            extra = part[2] if extra is None else extra + part[2]
            if mean is None:
                mean, m2 = part[3], part[4]
            else:  # Chan, Golub and LeVeque's pairwise combination
                delta = part[3] - mean
                total = n + m
                mean = mean + delta * (m / total)
                m2 = m2 + part[4] + delta * delta * (n * m / total)
        n += m
    assert loss is not None and extra is not None
    if classification:
        return loss / n, extra / n
    return loss / n, _r2(ChunkNamespace(), extra, m2)


# -- the source --------------------------------------------------------------------------------


_LOST_WORKER = {"KilledWorker", "CommClosedError", "FutureCancelledError", "StreamClosedError"}


def _lost_worker(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if type(seen).__name__ in _LOST_WORKER:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class DaskSource:
    """The rows of a fit in a Dask array: trained and scored where the chunks live.

    Implements the trainer's ``run_epoch`` and the evaluator's
    ``run_evaluation`` (see the module docstring); it never streams blocks to
    the client.

    Parameters
    ----------
    backend : Backend
        The Dask backend.
    X, y : dask.array.Array
        Features ``(n, d)`` with one chunk of columns, and targets whose
        chunks of rows are those of ``X``.
    sample_weight : dask.array.Array of shape (n,) or None
    targets : ChunkTargets
    dtype : str
    device : object
        The chunks' device (``"cpu"`` for NumPy chunks).
    rows : numpy.ndarray of int, optional
        Sorted indices of the rows to use (a validation split); default all.
    rounds_per_epoch : int, default=1
    name : str
        What to call ``X`` in messages.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.backends.dask_training import ChunkTargets, DaskSource
    >>> from anyglm.labels import TargetCoder
    >>> be = anyglm.get_backend("dask")
    >>> X, y = be.lazy_array(np.ones((6, 2)), chunks=3), be.lazy_array(np.ones(6), chunks=3)
    >>> src = DaskSource(be, X, y, None, ChunkTargets(TargetCoder("values", 1), None),
    ...                  dtype="float64", device="cpu", rows=np.array([0, 1, 5]))
    >>> src.n_rows, src.n_partitions
    (3, 2)
    """

    sparse = False

    def __init__(
        self,
        backend: Backend,
        X: Any,
        y: Any,
        sample_weight: Any,
        targets: ChunkTargets,
        *,
        dtype: str,
        device: Any,
        rows: np.ndarray | None = None,
        rounds_per_epoch: int = 1,
        name: str = "X",
    ) -> None:
        self.backend, self.X, self.y, self.sample_weight = backend, X, y, sample_weight
        self.targets, self.dtype, self.device, self.name = targets, dtype, device, name
        self.rounds_per_epoch = int(rounds_per_epoch)
        self.n_total, self.n_features = int(X.shape[0]), int(X.shape[1])
        self.starts = np.concatenate([[0], np.cumsum(X.chunks[0])]).astype(np.int64)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        if self.rows is None:
            self._bounds = None
            self.n_rows = self.n_total
        else:
            self._bounds = np.searchsorted(self.rows, self.starts)
            self.n_rows = int(self.rows.size)
        self.partitions = [k for k in range(len(X.chunks[0])) if self._count(k) > 0]
        #: What weighs the rows (``None``: they are unweighted), read by the trainer.
        self.weights = sample_weight if sample_weight is not None else targets.per_class
        #: Computations sent to the scheduler (one per round; one per validation score).
        self.round_trips = 0
        self._pieces: tuple[list[Any], list[Any], list[Any]] | None = None

    @property
    def n_partitions(self) -> int:
        """Chunks of rows that hold rows of this source."""
        return len(self.partitions)

    def _count(self, k: int) -> int:
        if self._bounds is None:
            return int(self.starts[k + 1] - self.starts[k])
        return int(self._bounds[k + 1] - self._bounds[k])

    def _selected(self, k: int) -> np.ndarray | None:
        """Positions inside chunk ``k`` of its selected rows (``None``: all)."""
        if self.rows is None or self._bounds is None:
            return None
        return self.rows[self._bounds[k] : self._bounds[k + 1]] - self.starts[k]

    def _parts(self) -> tuple[list[Any], list[Any], list[Any]]:
        if self._pieces is None:
            xs = list(self.X.to_delayed().ravel())
            ys = list(self.y.to_delayed().ravel())
            ws = (
                [None] * len(xs)
                if self.sample_weight is None
                else list(self.sample_weight.to_delayed().ravel())
            )
            self._pieces = (xs, ys, ws)
        return self._pieces

    def subset(
        self, rows: np.ndarray, name: str | None = None, weighted: bool = True
    ) -> DaskSource:
        """The same data restricted to ``rows`` (sorted indices), e.g. a validation split.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.backends.dask_training import ChunkTargets, DaskSource
        >>> from anyglm.labels import TargetCoder
        >>> be = anyglm.get_backend("dask")
        >>> src = DaskSource(be, be.lazy_array(np.ones((4, 1)), chunks=2),
        ...                  be.lazy_array(np.ones(4), chunks=2),
        ...                  None, ChunkTargets(TargetCoder("values", 1), None),
        ...                  dtype="float64", device="cpu")
        >>> src.subset(np.array([3])).partitions
        [1]
        """
        targets = self.targets
        if not weighted:
            targets = ChunkTargets(targets.coder, targets.classes, None, targets.name, 1.0)
        return DaskSource(
            self.backend, self.X, self.y, self.sample_weight if weighted else None, targets,
            dtype=self.dtype, device=self.device, rows=rows,
            rounds_per_epoch=self.rounds_per_epoch, name=name or self.name,
        )  # fmt: skip

    def blocks(self, rng: np.random.Generator | None, shuffle: bool) -> Any:
        """Not available: a Dask source trains and scores on the workers, never on the client.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.backends.dask_training import ChunkTargets, DaskSource
        >>> from anyglm.labels import TargetCoder
        >>> be = anyglm.get_backend("dask")
        >>> src = DaskSource(be, be.lazy_array(np.ones((2, 1))), be.lazy_array(np.ones(2)),
        ...                  None, ChunkTargets(TargetCoder("values", 1), None),
        ...                  dtype="float64", device="cpu")
        >>> try:
        ...     src.blocks(None, False)
        ... except TypeError as err:
        ...     print(str(err)[:40])
        a Dask source trains where its chunks li
        """
        raise TypeError(
            "a Dask source trains where its chunks live (run_epoch, run_evaluation); it does "
            "not stream blocks to the client"
        )

    def _compute(self, graph: Any, what: str) -> Any:
        import dask

        try:
            (out,) = dask.compute(graph, optimize_graph=False)
        except Exception as exc:
            if not _lost_worker(exc):
                raise
            raise RuntimeError(
                f"a Dask worker died while {what} and the cluster could not finish the work "
                f"({type(exc).__name__}: {exc}). The fit was stopped; the estimator keeps what "
                "it had before fit (no partial model). Check the workers (logs, memory limits) "
                "and fit again."
            ) from exc
        self.round_trips += 1
        return out

    def run_epoch(
        self,
        runner: BlockRunner,
        W: Any,
        b: Any,
        state: dict[str, Any],
        t: int,
        rng: np.random.Generator | None,
        shuffle: bool,
    ) -> EpochPass:
        """One epoch: ``rounds_per_epoch`` rounds of local SGD with model averaging.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> X, y = np.arange(8.0).reshape(8, 1), np.arange(8.0)
        >>> reg = anyglm.LinearRegression(backend="dask", block_rows=4, epochs=2, batch_size=2)
        >>> reg.fit(X, y).n_epochs_  # 2 partitions, averaged after each epoch
        2
        """
        from dask import delayed

        ids = list(self.partitions)
        if shuffle and rng is not None and len(ids) > 1:
            ids = [ids[i] for i in rng.permutation(len(ids))]
        R = self.rounds_per_epoch
        orders: dict[int, np.ndarray | None] = {}
        for k in ids:
            selected = self._selected(k)
            m = self._count(k)
            order = rng.permutation(m) if shuffle and rng is not None else None
            if selected is not None:
                order = selected if order is None else selected[order]
            if R > 1 and order is None:
                order = np.arange(m)
            orders[k] = order
        xs, ys, ws = self._parts()
        total: Any = None
        used = False
        for r in range(R):
            work = []
            for k in ids:
                order = orders[k]
                part = order if R == 1 else np.array_split(order, R)[r]  # type: ignore[arg-type]
                if part is None or len(part):
                    work.append((k, part))
            if not work:
                continue
            shared = _Shared(
                runner.model, runner.optimizer.spec, runner.accelerator, runner.batch_size,
                runner.columns, runner.learning_rate, runner.alpha, runner.average_from,
                runner.n_configs, W, b, state, t, self.targets, self.dtype,
            )  # fmt: skip
            # The parameters travel inside each task (they are small): no extra key to fetch.
            tasks = [
                delayed(_train_partition, pure=False)(
                    xs[k], ys[k], ws[k], shared, part, int(self.starts[k])
                )
                for k, part in work
            ]
            graph = tasks[0] if len(tasks) == 1 else delayed(_combine, pure=False)(tasks)
            what = f"training round {r + 1} of {R}" if R > 1 else "training an epoch"
            done: _Trained = self._compute(graph, what)
            W, b, state = done.W, done.b, done.state
            t += done.steps
            total = done.loss_sum if total is None else total + done.loss_sum
            used = used or done.accelerated
        if total is None:
            total = self.backend.xp.zeros((runner.n_configs,), dtype=W.dtype, device=self.device)
        return EpochPass(W, b, state, t, total, used)

    def run_scan(self, keep: np.ndarray) -> tuple[float, float, int, list[tuple[Any, Any, Any]]]:
        """What :func:`anyglm.stepsize.scan` gathers, in one pass on the workers.

        The sum and maximum of the row scales, the rows seen, and the rows
        ``keep`` (sorted positions in the unshuffled order: partition by
        partition) as ``(X, Y, weights)`` pieces: only those rows reach the
        client (at most :data:`anyglm.stepsize.SAMPLE_ROWS`).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.inputs import prepare
        >>> prep = prepare(anyglm.get_model("linear"), np.array([[3.0, 4.0], [1.0, 0.0]]),
        ...                [0.0, 1.0], backend="dask", block_rows=1)
        >>> total, top, seen, parts = prep.source.run_scan(np.array([1]))
        >>> total, top, seen, [p[0].tolist() for p in parts]
        (28.0, 26.0, 2, [[[1.0, 0.0]]])
        """
        from dask import delayed

        xs, ys, ws = self._parts()
        counts = [self._count(k) for k in self.partitions]
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        tasks = []
        for i, k in enumerate(self.partitions):
            lo, hi = np.searchsorted(keep, [offsets[i], offsets[i + 1]])
            mine = np.asarray(keep[lo:hi] - offsets[i], dtype=np.int64)
            tasks.append(
                delayed(_scan_partition, pure=False)(
                    xs[k], ys[k], ws[k], self.targets, self.dtype, self._selected(k),
                    int(self.starts[k]), mine,
                )
            )  # fmt: skip
        found = self._compute(tasks, "scanning the rows (learning_rate='auto', early stopping)")
        total = top = 0.0
        seen = 0
        parts = []
        for s_k, top_k, m_k, rows in found:  # in partition order, as a pass over blocks
            total += s_k
            top = max(top, top_k)
            seen += m_k
            if rows is not None:
                parts.append(rows)
        return total, top, seen, parts

    def run_evaluation(
        self, model: Model, xp: Any, W: Any, b: Any, n_configs: int, *, weighted: bool = False
    ) -> tuple[Any, Any]:
        """Mean loss and accuracy (or R^2) per configuration, as :func:`anyglm.evaluation.evaluate`.

        With ``weighted``, the loss is weighted by the rows' weights (the
        training objective's data part), as there.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.inputs import prepare
        >>> prep = prepare(anyglm.get_model("logistic"), np.array([[1.0], [-1.0]]), [1, 0],
        ...                backend="dask")
        >>> loss, acc = prep.source.run_evaluation(prep.model, prep.backend.xp,
        ...                                        np.ones((1, 1)), np.zeros(1), 1)
        >>> acc.tolist()
        [1.0]
        """
        from dask import delayed

        xs, ys, ws = self._parts()
        if not weighted:
            ws = [None] * len(ws)
        shared = (self.targets, self.dtype, model, W, b, n_configs, weighted)
        classification = model.task == "classification"
        if len(self.partitions) == 1:
            k = self.partitions[0]
            args = (xs[k], ys[k], ws[k], shared, self._selected(k), int(self.starts[k]))
            graph = delayed(_evaluate_one, pure=False)(*args, classification)
        else:
            tasks = [
                delayed(_evaluate_partition, pure=False)(
                    xs[k], ys[k], ws[k], shared, self._selected(k), int(self.starts[k])
                )
                for k in self.partitions
            ]
            graph = delayed(_combine_scores, pure=False)(tasks, classification)
        loss, score_ = self._compute(graph, "scoring the validation data")
        return loss, score_
