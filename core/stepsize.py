"""What a fit learns about its data before the first step: the default step and a sample.

One pass over the training rows (block by block for data read from disk)
gathers a :class:`TrainingSample`: the mean of ``w_i (||x_i||^2 + 1)`` over the
rows, and a fixed random subset of at most :data:`SAMPLE_ROWS` rows kept in
memory. The sample serves twice:

* ``learning_rate="auto"``: minibatch SGD on a mean loss is stable for steps
  below ``1 / L(b)`` with ``L(b)`` the *expected smoothness* of a minibatch of
  ``b`` rows (Gower et al. 2019, "SGD: general analysis and improved rates"),
  about ``c (lambda + m / b)`` for a GLM: ``c`` the model's curvature bound
  (:attr:`anyglm.Model.curvature`), ``lambda`` the largest eigenvalue of the
  rows' second moment ``mean_i w_i [x_i, 1][x_i, 1]^T`` (estimated by power
  iteration on the sample) and ``m`` the mean of ``w_i (||x_i||^2 + 1)``.
  ``"auto"`` takes ``1 / (c (lambda + m / b) + alpha)``. On standardised
  features with correlated columns, ``lambda`` is far below the largest row
  norm, so this step is one to two orders of magnitude longer than SAG's
  ``1 / (c max_i ||x_i||^2)``, and still stable.
* early stopping without validation data: the training objective (mean loss
  plus penalty) of the model's parameters on the sample, exact, not the noisy
  running loss of the epoch's minibatches (:mod:`anyglm.trainer`).

The sample is drawn with its own fixed-seed generator, so the fit's own
generator (the minibatch order) is untouched.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import dtype_name
from .errors import DivergenceError, convergence_warning_class, user_stacklevel
from .model import Model
from .sources import ArraySource, DataSource, SparseSource

__all__ = [
    "AUTO_BACKOFFS",
    "SAMPLE_BYTES",
    "SAMPLE_ROWS",
    "TrainingSample",
    "auto_alpha",
    "auto_learning_rate",
    "resolve",
    "run_backing_off",
    "scan",
]

#: Most rows the sample keeps, and the most memory it may take (64 MB).
SAMPLE_ROWS = 10_000
SAMPLE_BYTES = 64 * 2**20
#: Power iterations for the largest eigenvalue (converged to well under 1 % on real data).
POWER_ITERATIONS = 30


@dataclass
class TrainingSample:
    """What one pass over the training rows found (see the module docstring).

    Attributes
    ----------
    source : DataSource
        The sampled rows (all of them when there are at most ``SAMPLE_ROWS``),
        in memory on the fit's device.
    mean_scale, max_scale : float
        Mean and largest ``w_i (||x_i||^2 + 1)`` over all training rows.
    n_rows : int
        Training rows scanned.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
    >>> from anyglm.stepsize import scan
    >>> X = np.random.default_rng(0).normal(size=(30000, 3))
    >>> sample = scan(ArraySource(anyglm.get_backend("numpy"), X, np.zeros((30000, 1))))
    >>> sample.n_rows, sample.source.n_rows  # all rows scanned, 10,000 kept
    (30000, 10000)
    """

    source: DataSource
    mean_scale: float
    max_scale: float
    n_rows: int

    def top_eigenvalue(self) -> float:
        """Largest eigenvalue of ``mean_i w_i [x_i, 1][x_i, 1]^T`` over the sample.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.sources import ArraySource
        >>> from anyglm.stepsize import scan
        >>> X = np.array([[1.0, 0.0], [-1.0, 0.0]])  # second moment diag(1, 0, 1)
        >>> sample = scan(ArraySource(anyglm.get_backend("numpy"), X, np.zeros((2, 1))))
        >>> round(sample.top_eigenvalue(), 6)
        1.0
        """
        src = self.source
        X, w = src.X, getattr(src, "weights", None)  # type: ignore[attr-defined]
        n, d = int(X.shape[0]), int(X.shape[1])
        if src.sparse:
            return _power_host(lambda v: _apply_sparse(X, w, v), d + 1, n)
        be = src.backend
        xp = be.xp
        v = be.from_numpy(_start(d + 1), dtype=dtype_name(X.dtype), device=src.device)
        lam = 0.0
        for _ in range(POWER_ITERATIONS):
            u = X @ v[:d] + v[d]  # [X, 1] v
            if w is not None:
                u = u * w
            new = xp.concat([X.T @ u, xp.reshape(xp.sum(u), (1,))]) / n
            norm = float(be.to_numpy(xp.sqrt(xp.sum(new * new))))
            if not norm > 0:
                return 0.0
            lam, v = norm, new / norm
        return lam


def _start(size: int) -> np.ndarray:
    v = np.random.default_rng(12345).standard_normal(size)
    return v / np.linalg.norm(v)


def _apply_sparse(X: Any, w: Any, v: np.ndarray) -> np.ndarray:
    d = X.shape[1]
    u = np.asarray(X @ v[:d]).reshape(-1) + v[d]
    if w is not None:
        u = u * np.asarray(w)
    return np.concatenate([np.asarray(X.T @ u).reshape(-1), [u.sum()]])


def _power_host(apply: Any, size: int, n: int) -> float:
    v = _start(size)
    lam = 0.0
    for _ in range(POWER_ITERATIONS):
        new = apply(v) / n
        norm = float(np.linalg.norm(new))
        if not norm > 0:
            return 0.0
        lam, v = norm, new / norm
    return lam


def _sample_size(n: int, row_bytes: int) -> int:
    return int(min(n, SAMPLE_ROWS, max(256, SAMPLE_BYTES // max(1, row_bytes))))


def scan(source: DataSource, *, sample_rows: int | None = None) -> TrainingSample:
    """One pass over ``source``'s training rows: row scales, and a sample kept in memory.

    A source whose rows live elsewhere (a Dask source, on a cluster's workers)
    defines ``run_scan(keep)``, returning the sum and maximum of the row scales,
    the rows seen and the ``keep`` rows (positions in the unshuffled order) as
    ``(X, Y, weights)`` pieces in memory; only those rows come back.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
    >>> from anyglm.stepsize import scan
    >>> X = np.array([[3.0, 4.0], [1.0, 0.0]])
    >>> s = scan(ArraySource(anyglm.get_backend("numpy"), X, np.zeros((2, 1))))
    >>> s.mean_scale, s.max_scale, s.source.n_rows
    (14.0, 26.0, 2)
    """
    n = int(source.n_rows)
    d = int(source.n_features)
    size = sample_rows or _sample_size(n, d * 8)
    # Which rows (in the source's visiting order without shuffling) the sample keeps.
    keep = np.sort(np.random.default_rng(2024).choice(n, size=min(size, n), replace=False))
    be, dev = source.backend, source.device
    run_scan = getattr(source, "run_scan", None)
    if run_scan is not None:  # a source whose rows live elsewhere (Dask) scans them there
        total, top, seen, parts = run_scan(keep)
    else:
        total, top, seen, parts = _scan_blocks(source, keep)
    if keep.size == n and isinstance(source, ArraySource):
        sample: DataSource = source  # in memory already: the sample is all of it, no copy
    else:
        sample = _join(be, dev, parts, source.sparse)
    return TrainingSample(sample, total / max(seen, 1), top, seen)


def _scan_blocks(
    source: DataSource, keep: np.ndarray
) -> tuple[float, float, int, list[tuple[Any, Any, Any]]]:
    """Sum and maximum of the row scales, rows seen, and the rows ``keep`` selects."""
    be, dev = source.backend, source.device
    total, top, seen = 0.0, 0.0, 0
    parts: list[tuple[Any, Any, Any]] = []
    for blk in source.blocks(None, shuffle=False):
        X, Y, w = blk.selected()
        m = int(X.shape[0])
        lo, hi = np.searchsorted(keep, [seen, seen + m])
        mine = keep[lo:hi] - seen
        if blk.sparse:
            scale = np.asarray(X.multiply(X).sum(axis=1), dtype=np.float64).reshape(-1) + 1.0
            if w is not None:
                scale = scale * np.asarray(w, dtype=np.float64)
            total += float(scale.sum())
            top = max(top, float(scale.max()) if scale.size else 0.0)
            if mine.size:
                parts.append((X[mine], Y[mine], None if w is None else w[mine]))
        else:
            xp = be.xp
            scale = xp.vecdot(X, X) + 1.0
            if w is not None:
                scale = scale * w
            stats = be.to_numpy(xp.stack([xp.sum(scale), xp.max(scale)]))
            total += float(stats[0])
            top = max(top, float(stats[1]))
            if mine.size:
                idx = be.from_numpy(mine, dtype=be.index_dtype(dev), device=dev)
                # Gathers are copies: a block source reuses its buffers for the next block.
                wk = None if w is None else xp.take(w, idx, axis=0)
                parts.append((xp.take(X, idx, axis=0), xp.take(Y, idx, axis=0), wk))
        seen += m
    return total, top, seen, parts


def _join(be: Any, dev: Any, parts: list[tuple[Any, Any, Any]], sparse: bool) -> DataSource:
    Xs, Ys, ws = zip(*parts, strict=True)
    w = None if ws[0] is None else ws
    if sparse:
        import scipy.sparse as sp

        X = sp.vstack(Xs, format="csr")
        W = None if w is None else np.concatenate(w)
        return SparseSource(be, X, np.concatenate(Ys), W, device=dev)
    xp = be.xp
    X = Xs[0] if len(Xs) == 1 else xp.concat(Xs, axis=0)
    Y = Ys[0] if len(Ys) == 1 else xp.concat(Ys, axis=0)
    Wt = None if w is None else (w[0] if len(w) == 1 else xp.concat(w, axis=0))
    return ArraySource(be, X, Y, Wt, device=dev)


def auto_learning_rate(
    model: Model, sample: TrainingSample, alpha: float, batch_size: int
) -> float:
    """``1 / (c (lambda + m / b) + alpha)``: the step of ``learning_rate="auto"``.

    A model that declares no curvature bound (:attr:`anyglm.Model.curvature` is
    ``None``, e.g. a Poisson loss, which has none) gets ``c = 1``, the bound of
    squared error.

    Raises
    ------
    ValueError
        The data give no finite bound.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
    >>> from anyglm.stepsize import auto_learning_rate, scan
    >>> X = np.array([[1.0, 0.0], [-1.0, 0.0]])  # lambda = 1, m = 2
    >>> sample = scan(ArraySource(anyglm.get_backend("numpy"), X, np.zeros((2, 1))))
    >>> round(auto_learning_rate(anyglm.get_model("logistic"), sample, 0.0, 2), 6)  # 1/(0.25*2)
    2.0
    """
    curvature: Any = getattr(model, "curvature", None)
    if curvature is None:
        # No bound declared (a Poisson loss has none): squared error's, 1, which holds
        # near a zero start; where it diverges, fit retries at a tenth (fitting.py).
        curvature = 1.0
    L = float(curvature) * (sample.top_eigenvalue() + sample.mean_scale / batch_size)
    L += float(alpha)
    if not (np.isfinite(L) and L > 0):
        raise ValueError(
            f"learning_rate='auto' found no usable bound on the curvature (L = {L!r}); "
            "pass a number as learning_rate"
        )
    return 1.0 / L


def auto_alpha(n_rows: int) -> float:
    """``alpha="auto"``: ``1 / n_rows``, scikit-learn's ``LogisticRegression()`` penalty.

    ``LogisticRegression`` minimises ``C sum_i loss_i + ||w||^2 / 2``; divided by
    ``C n`` that is anyglm's mean loss plus ``(alpha / 2) ||w||^2`` with
    ``alpha = 1 / (C n)``. ``Ridge(alpha=1)`` gives the same for squared error.

    Examples
    --------
    >>> from anyglm.stepsize import auto_alpha
    >>> auto_alpha(400)
    0.0025
    """
    return 1.0 / n_rows


def resolve(
    model: Model,
    source: DataSource,
    alpha: float | str,
    learning_rate: float | str,
    batch_size: int,
    watch: bool,
) -> tuple[float, float, DataSource | None]:
    """A fit's ``alpha`` and learning rate with ``"auto"`` worked out, and its stopping sample.

    ``alpha="auto"`` is ``1 / n`` for ``n`` training rows (the penalty of
    ``LogisticRegression(C=1)`` and ``Ridge(alpha=1)``);
    ``learning_rate="auto"`` is :func:`auto_learning_rate`. The one pass over the
    rows (:func:`scan`) runs only when ``"auto"`` or ``watch`` (early stopping
    on the training objective) needs it; the third value is the sample to watch.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.sources import ArraySource
    >>> from anyglm.stepsize import resolve
    >>> src = ArraySource(anyglm.get_backend("numpy"), np.ones((4, 1)), np.zeros((4, 1)))
    >>> resolve(anyglm.get_model("linear"), src, "auto", 0.1, 2, watch=False)
    (0.25, 0.1, None)
    """
    if alpha == "auto":
        alpha = auto_alpha(source.n_rows)
    sample = scan(source) if learning_rate == "auto" or watch else None
    if learning_rate == "auto":
        assert sample is not None
        batch = min(batch_size, source.n_rows)
        learning_rate = auto_learning_rate(model, sample, float(alpha), batch)
    monitor = sample.source if sample is not None and watch else None
    return float(alpha), float(learning_rate), monitor


#: How many times ``fit`` retries a ``learning_rate="auto"`` step that diverged.
AUTO_BACKOFFS = 2


def run_backing_off(
    est: Any,
    prep: Any,
    hp: dict[str, Any],
    spec: Any,
    W: Any,
    b: Any,
    state: Any,
    rng: np.random.Generator,
    start: int,
    history: Any,
    on_epoch_end: Any,
) -> Any:
    """``est._run`` (:mod:`anyglm.fitting`) over ``hp["epochs"]``; a derived step that diverges is
    retried smaller.

    ``learning_rate="auto"`` is ``1 / L`` for a bound ``L`` on the curvature,
    which a model such as a Poisson loss cannot declare (its ``exp`` has no
    bound), and momentum can amplify. Where that step diverges, the fit starts
    over (same seed, zero parameters) at a tenth of it, at most
    :data:`AUTO_BACKOFFS` times, with a :class:`~anyglm.ConvergenceWarning` naming
    the step. A number passed as ``learning_rate``, a resumed fit and
    ``partial_fit`` are never changed behind the user's back: they raise.

    Examples
    --------
    >>> import warnings, numpy as np
    >>> from types import SimpleNamespace
    >>> from anyglm.errors import DivergenceError
    >>> from anyglm.stepsize import run_backing_off
    >>> class Estimator:  # its derived step, 2.0, diverges; a tenth of it trains
    ...     def _run(self, *args, lr_scale):
    ...         self.learning_rate_ = 2.0 * lr_scale
    ...         if lr_scale == 1.0:
    ...             raise DivergenceError("diverged", epoch=3)
    ...         return "trained at %.1f" % self.learning_rate_
    >>> prep = SimpleNamespace(model=SimpleNamespace(name="poisson"),
    ...                        zero_parameters=lambda: (None, None))
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     run_backing_off(Estimator(), prep, {"learning_rate": "auto", "epochs": 5}, None,
    ...                     None, None, None, np.random.default_rng(0), 0, None, None)
    'trained at 0.2'
    >>> str(seen[0].message).split(";")[0]
    "learning_rate='auto' gave 2, and training diverged with it (model 'poisson')"
    """
    first_state = dict(rng.bit_generator.state)
    auto = isinstance(hp["learning_rate"], str) and start == 0 and state is None
    for attempt in range(AUTO_BACKOFFS + 1):
        try:
            return est._run(
                prep, hp, spec, W, b, state, rng, start, history, hp["epochs"], on_epoch_end,
                lr_scale=0.1**attempt,
            )  # fmt: skip
        except DivergenceError:
            if not auto or attempt == AUTO_BACKOFFS:
                raise
            diverged = est.learning_rate_
        warnings.warn(
            f"learning_rate='auto' gave {diverged:.4g}, and training diverged with it (model "
            f"{prep.model.name!r}); training again from the start with {diverged / 10:.4g}. "
            "Pass a number as learning_rate to choose the step yourself.",
            convergence_warning_class(),
            stacklevel=user_stacklevel(),
        )
        rng.bit_generator.state = first_state
        W, b = prep.zero_parameters()
    raise AssertionError("unreachable")  # pragma: no cover
