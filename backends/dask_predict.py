"""Predicting and scoring on Dask arrays: lazy results, chunk by chunk; a score in one reduction."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from anyglm import registry
from anyglm.backend import Backend
from anyglm.glm import linear_predictor
from anyglm.validation import check_labels, check_targets

from .dask_arrays import check_chunk, chunk_label, host_array, library
from .dask_inputs import as_dask_matrix, as_dask_rows

__all__ = ["map_logits", "score"]


def _predict_chunk(
    x: Any, backend_name: str, W: Any, b: Any, dtype: str, fn: Callable[[Any], Any],
    block_info: Any = None,
) -> Any:  # fmt: skip
    info = (block_info or {}).get(0, {})
    index = info.get("chunk-location", (0,))[0]
    start = info.get("array-location", [(0, 0)])[0][0]
    check_chunk(x, "X", index, start)
    backend = registry.get_backend(backend_name)
    same = library(x) == library(W)
    Xd = backend.from_numpy(x if same else host_array(x), dtype=dtype, device=backend.device_of(W))
    out = fn(linear_predictor(backend.xp, Xd, W, b, 1)[:, 0, :])
    if library(out) == library(x):
        return out
    host = out if isinstance(out, np.ndarray) else backend.to_numpy(out)
    if library(x) == "cupy" and host.dtype.kind in "biuf":
        import cupy

        return cupy.asarray(host)
    return host


def map_logits(
    backend: Backend,
    W: Any,
    b: Any,
    dtype: str,
    X: Any,
    fn: Callable[[Any], Any],
    *,
    n_features: int,
    estimator_name: str,
) -> Any:
    """``fn`` of the linear predictor of a Dask array, chunk by chunk, as a lazy Dask array.

    ``W`` and ``b`` belong to ``backend`` (the fitted model's, any backend);
    each chunk is checked for NaN and infinity when it is computed (the
    message names the chunk) and the results are in the chunks' library.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.backends.dask_predict import map_logits
    >>> be = anyglm.get_backend("dask")
    >>> X = be.lazy_array(np.ones((3, 2)), chunks=3)
    >>> out = map_logits(anyglm.get_backend("numpy"), np.ones((2, 2)), np.zeros(2), "float64",
    ...                  X, lambda Z: Z, n_features=2, estimator_name="Estimator")
    >>> out.shape, out.compute()[0].tolist()
    ((3, 2), [2.0, 2.0])
    """
    import dask.array as da

    Xd = as_dask_matrix(X, "X", None)
    if int(Xd.shape[1]) != n_features:
        raise ValueError(
            f"X has {Xd.shape[1]} features, but this {estimator_name} was fitted with {n_features}"
        )
    # fn on one row of zeros, here: the shape, dtype and library of what the chunks give.
    probe = backend.from_numpy(np.zeros((1, n_features)), dtype=dtype, device=backend.device_of(W))
    sample = fn(linear_predictor(backend.xp, probe, W, b, 1)[:, 0, :])
    sample_host = sample if isinstance(sample, np.ndarray) else backend.to_numpy(sample)
    meta = sample_host[:0] if sample_host.ndim == 1 else sample_host[:0, :]
    kwargs: dict[str, Any] = {"dtype": sample_host.dtype, "meta": meta}
    if sample_host.ndim == 1:
        kwargs.update(drop_axis=1, chunks=(Xd.chunks[0],))
    else:
        kwargs.update(chunks=(Xd.chunks[0], (int(sample_host.shape[1]),)))
    return da.map_blocks(_predict_chunk, Xd, backend.name, W, b, dtype, fn, **kwargs)


def _score_chunk(p: Any, t: Any, w: Any, classification: bool, index: int, start: int) -> Any:
    ph, th = host_array(p), host_array(t)
    m = int(ph.shape[0])
    try:
        wh = np.ones(m) if w is None else np.asarray(host_array(w), dtype=np.float64)
        if not np.all(np.isfinite(wh)) or np.any(wh < 0):
            raise ValueError("sample_weight must be finite and non-negative")
        if classification:
            labels = check_labels(th, m)
            return float(np.sum(wh * (ph == labels))), float(wh.sum())
        tt = check_targets(th, m).reshape(m, -1)
        pp = ph.reshape(m, -1).astype(np.float64)
        if tt.shape != pp.shape:
            raise ValueError(f"y has {tt.shape[1]} target columns, predictions have {pp.shape[1]}")
    except (ValueError, TypeError) as err:
        raise type(err)(f"{err} (in {chunk_label(index, start, start + m)})") from None
    sw = float(wh.sum())
    mean = (wh @ tt) / sw if sw > 0 else np.zeros(tt.shape[1])
    return sw, mean, wh @ (tt - mean) ** 2, wh @ (tt - pp) ** 2


def score(pred: Any, y: Any, sample_weight: Any, *, classification: bool) -> float:
    """Accuracy or R^2 (averaged over targets) of lazy predictions, as one reduction.

    The same numbers as :meth:`anyglm.prediction.PredictMixin.score` on the
    host: per chunk, the (weighted) hits, or the weighted sums the R^2 needs
    (combined with Chan et al.'s pairwise update), come back to the client.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.backends.dask_predict import score
    >>> be = anyglm.get_backend("dask")
    >>> score(be.lazy_array(np.array(["a", "b", "b", "a"]), chunks=2), np.array(["a"] * 4),
    ...       np.array([1.0, 1.0, 1.0, 3.0]), classification=True)
    0.6666666666666666
    """
    import dask
    from dask import delayed

    chunks = pred.chunks[0]
    yd = as_dask_rows(y, "y", chunks, "the prediction")
    wd = None if sample_weight is None else as_dask_rows(sample_weight, "sample_weight", chunks)
    if wd is not None and wd.ndim != 1:
        raise ValueError(f"sample_weight must have shape ({pred.shape[0]},)")
    ps, ts = list(pred.to_delayed().ravel()), list(yd.to_delayed().ravel())
    ws = [None] * len(ps) if wd is None else list(wd.to_delayed().ravel())
    starts = np.concatenate([[0], np.cumsum(chunks)]).astype(np.int64)
    tasks = [
        delayed(_score_chunk)(ps[k], ts[k], ws[k], classification, k, int(starts[k]))
        for k in range(len(ps))
    ]
    parts = dask.compute(*tasks, optimize_graph=False)
    total = sum(p[0] if classification else 0.0 for p in parts)
    if classification:
        weights = sum(p[1] for p in parts)
        if not weights > 0:
            raise ValueError(
                "sample_weight sums to zero; at least one sample needs a positive weight"
            )
        return float(total / weights)
    sw, mean, m2, res = 0.0, None, None, None
    for w_k, mean_k, m2_k, res_k in parts:
        res = res_k if res is None else res + res_k
        if w_k <= 0:
            continue
        if mean is None:
            sw, mean, m2 = w_k, mean_k, m2_k
            continue
        delta = mean_k - mean
        new = sw + w_k
        mean = mean + delta * (w_k / new)
        m2 = m2 + m2_k + delta * delta * (sw * w_k / new)
        sw = new
    if mean is None or res is None or m2 is None:
        raise ValueError("sample_weight sums to zero; at least one sample needs a positive weight")
    ss_res, ss_tot = res / sw, m2 / sw
    r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
    return float(np.mean(r2))
