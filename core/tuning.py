"""Hyperparameter search that trains a whole grid in one pass over the data.

All (learning rate, alpha) settings that share a batch size train together:
their parameters are stacked along the columns of ``W`` (see
:mod:`anyglm.glm`), so each minibatch costs one GEMM of width ``K * c``
instead of ``K`` GEMMs of width ``c``. Different ``epochs`` values are
snapshots of the longest run. Every configuration sees the minibatches a
single fit with the same seed would see, so its score equals that fit's.
"""

from __future__ import annotations

import itertools
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .estimators import Estimator, _make_rng, _owner
from .trainer import train
from .validation import check_positive_int, check_real, to_host

__all__ = ["LogUniform", "TuneResult", "tune"]

SEARCHED = ("batch_size", "learning_rate", "epochs", "alpha")


@dataclass(frozen=True)
class LogUniform:
    """A distribution for random search: log-uniform on ``[low, high]``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.tuning import LogUniform
    >>> v = LogUniform(1e-4, 1e-1).sample(np.random.default_rng(0))
    >>> 1e-4 <= v <= 1e-1
    True
    """

    low: float
    high: float

    def __post_init__(self) -> None:
        if not (0 < self.low <= self.high and math.isfinite(self.high)):
            raise ValueError(f"LogUniform needs 0 < low <= high < inf, got {self.low}, {self.high}")

    def sample(self, rng: np.random.Generator) -> float:
        """One draw, using ``rng``.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.tuning import LogUniform
        >>> 0.01 <= LogUniform(0.01, 1.0).sample(np.random.default_rng(0)) <= 1.0
        True
        """
        return float(np.exp(rng.uniform(np.log(self.low), np.log(self.high))))


@dataclass
class TuneResult:
    """The outcome of :func:`tune`.

    Attributes
    ----------
    table : list of dict
        One row per configuration: its hyperparameters, ``val_score``,
        ``val_loss``, ``train_loss`` (at its epoch count), ``diverged`` and
        ``time_s`` (the wall time of the pass it belonged to, shared by the
        configurations trained together).
    best_params : dict
        The configuration with the highest validation score (lowest validation
        loss among equal scores).
    best_score : float
    best_estimator : Estimator or None
        The best configuration, refit on training plus validation data
        (``refit=True``) or trained on the training part only.
    test_score : float or None
        The best estimator's score on ``test_data``, computed once at the end.
    curves : list of dict
        One entry per pass (a batch size and any other searched parameters):
        ``batch_size``, ``params`` (the other searched parameters), ``settings``
        (its (learning_rate, alpha) pairs) and the per-epoch ``val_score`` and
        ``val_loss`` of each, arrays of shape ``(epochs, K)``.

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("digits")
    >>> res = anyglm.tune("softmax", X[:300], y[:300], grid={"epochs": [2]}, refit=False)
    >>> sorted(res.to_dict())
    ['best_params', 'best_score', 'table', 'test_score']
    """

    table: list[dict[str, Any]]
    best_params: dict[str, Any]
    best_score: float
    best_estimator: Estimator | None = None
    test_score: float | None = None
    curves: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no estimator).

        Examples
        --------
        >>> import json, anyglm
        >>> X, y = anyglm.datasets.load_dataset("digits")
        >>> res = anyglm.tune("softmax", X[:200], y[:200], grid={"epochs": [1]}, refit=False)
        >>> sorted(json.loads(json.dumps(res.to_dict())))
        ['best_params', 'best_score', 'table', 'test_score']
        """
        return {
            "best_params": self.best_params,
            "best_score": self.best_score,
            "test_score": self.test_score,
            "table": self.table,
        }


def _values(name: str, raw: Any) -> list[Any]:
    values = list(raw) if isinstance(raw, (list, tuple, np.ndarray)) else [raw]
    if not values:
        raise ValueError(f"grid[{name!r}] is empty")
    if name not in SEARCHED:
        return values  # other estimator parameters are checked by fit
    check = {
        "batch_size": lambda v: check_positive_int("batch_size", v),
        "epochs": lambda v: check_positive_int("epochs", v),
        "learning_rate": lambda v: check_real("learning_rate", v, allow_zero=False),
        "alpha": lambda v: check_real("alpha", v, allow_zero=True),
    }[name]
    return [check(v) for v in values]


def _configurations(
    grid: Mapping[str, Any] | None,
    distributions: Mapping[str, Any] | None,
    n_iter: int,
    defaults: dict[str, Any],
    rng: np.random.Generator,
) -> list[dict[str, Any]]:
    if (grid is None) == (distributions is None):
        raise ValueError(
            "pass exactly one of grid= (grid search) or distributions= (random search)"
        )
    space = grid if grid is not None else distributions
    assert space is not None
    unknown = set(space) - set(defaults)
    if unknown:
        raise ValueError(
            f"cannot search over {sorted(unknown)}; searchable: {', '.join(sorted(defaults))}"
        )
    names = [*SEARCHED, *sorted(set(space) - set(SEARCHED))]
    if grid is not None:
        axes = {k: _values(k, grid.get(k, defaults[k])) for k in names}
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*axes.values())]
    check_positive_int("n_iter", n_iter)
    configs = []
    for _ in range(n_iter):
        cfg = {}
        for k in names:
            spec = space.get(k, defaults[k])
            if isinstance(spec, LogUniform):
                value: Any = spec.sample(rng)
            elif isinstance(spec, (list, tuple, np.ndarray)):
                value = list(spec)[int(rng.integers(len(spec)))]
            else:
                value = spec
            cfg[k] = _values(k, [value])[0]
        configs.append(cfg)
    return configs


def tune(
    model: str,
    X: Any,
    y: Any,
    *,
    grid: Mapping[str, Any] | None = None,
    distributions: Mapping[str, Any] | None = None,
    n_iter: int = 20,
    validation_data: tuple[Any, Any] | None = None,
    validation_fraction: float = 0.2,
    test_data: tuple[Any, Any] | None = None,
    refit: bool = True,
    random_state: int = 0,
    vectorize: bool = True,
    estimator_params: Mapping[str, Any] | None = None,
    callback: Callable[[dict[str, Any]], None] | None = None,
) -> TuneResult:
    """Search ``batch_size``, ``learning_rate``, ``epochs`` and ``alpha`` on a validation set.

    Any other :class:`Estimator` parameter (``class_weight``, ``shuffle``, ...)
    may be searched too; each of its values costs a pass of its own.

    Parameters
    ----------
    model : str
        Registered model name.
    X, y : array-like
        Training data (validation rows are split off unless ``validation_data``
        is given).
    grid : dict, optional
        Lists of values per hyperparameter (grid search); unspecified ones keep
        the estimator's default.
    distributions : dict, optional
        Random search: per hyperparameter a list (uniform choice), a
        :class:`LogUniform`, or a fixed value; ``n_iter`` configurations.
    validation_data : (X_val, y_val), optional
    validation_fraction : float, default=0.2
        Fraction of ``X`` held out (seeded by ``random_state``) when no
        ``validation_data`` is given.
    test_data : (X_test, y_test), optional
        Scored once, at the end, with the best estimator.
    refit : bool, default=True
        Refit the best configuration on training plus validation data;
        ``False`` trains it on the training part only.
    random_state : int, default=0
        Seed of the split and of every configuration's minibatch order.
    vectorize : bool, default=True
        Train all (learning rate, alpha) settings of a batch size in one pass.
        ``False`` loops single fits (same results, slower; for comparison).
    estimator_params : dict, optional
        Other :class:`Estimator` parameters (``backend``, ``dtype``, ``class_weight``...).
    callback : callable, optional
        Called after each pass with a dict (``batch_size``, ``configurations``,
        ``time_s``).

    Returns
    -------
    TuneResult

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
    >>> X = anyglm.datasets.standardize(X)[0]
    >>> res = anyglm.tune("logistic", X, y, grid={"learning_rate": [0.01, 0.1],
    ...                   "alpha": [1e-4, 1e-2], "epochs": [5, 10], "batch_size": [32]})
    >>> len(res.table), res.best_score > 0.9
    (8, True)
    """
    params = dict(estimator_params or {})
    space = grid if grid is not None else (distributions or {})
    if params.get("n_iter_no_change") is not None or "n_iter_no_change" in space:
        raise ValueError(
            "tune() trains every configuration for its epochs; early stopping "
            "(n_iter_no_change) is not supported there: search 'epochs' instead"
        )
    for k in (*SEARCHED, "model", "random_state", "validation_fraction"):
        if k in params:
            raise ValueError(f"estimator_params must not set {k!r}; it is set by tune()")
    if test_data is not None and not (isinstance(test_data, (tuple, list)) and len(test_data) == 2):
        raise TypeError("test_data must be a pair (X_test, y_test)")
    if params.get("backend") in (None, "auto") and not os.environ.get("ANYGLM_BACKEND", "").strip():
        # The search copies the data to the host to split it; train where the input lives.
        owner = _owner(X)
        if owner is not None:
            params["backend"] = owner.name
    base = Estimator(model, random_state=random_state, **params)
    fixed = {"model", "random_state", "validation_fraction", "n_iter_no_change", "tol", *params}
    defaults = {k: v for k, v in base.get_params().items() if k not in fixed}
    configs = _configurations(
        grid, distributions, n_iter, defaults, np.random.default_rng(random_state)
    )

    X_host = to_host(X, "X", _owner(X))
    y_host = to_host(y, "y", _owner(y))
    if validation_data is None:
        vf = check_real("validation_fraction", validation_fraction, allow_zero=False)
        n = X_host.shape[0]
        n_val = round(vf * n)
        if not 0 < n_val < n:
            raise ValueError(
                f"validation_fraction={validation_fraction} of {n} rows leaves an empty part"
            )
        perm = np.random.default_rng(random_state).permutation(n)
        val_rows, train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        X_tr, y_tr = X_host[train_rows], y_host[train_rows]
        X_val, y_val = X_host[val_rows], y_host[val_rows]
    else:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_tr, y_tr = X_host, y_host
        X_val = to_host(validation_data[0], "X_val", _owner(validation_data[0]))
        y_val = to_host(validation_data[1], "y_val", _owner(validation_data[1]))

    table: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    # One pass per batch size and combination of other searched parameters; the
    # (learning rate, alpha) settings inside a pass train together.
    passes: list[tuple[int, dict[str, Any]]] = []
    for c in configs:
        key = (c["batch_size"], {k: v for k, v in c.items() if k not in SEARCHED})
        if key not in passes:
            passes.append(key)
    passes.sort(key=lambda p: p[0])
    for bs, others in passes:
        group = [
            c
            for c in configs
            if c["batch_size"] == bs and all(c[k] == v for k, v in others.items())
        ]
        settings = sorted({(c["learning_rate"], c["alpha"]) for c in group})
        max_epochs = max(c["epochs"] for c in group)
        pass_base = Estimator(**{**base.get_params(), **others})
        t0 = time.perf_counter()
        run = _train_group if vectorize else _loop_group
        hist, diverged = run(pass_base, bs, settings, max_epochs, X_tr, y_tr, X_val, y_val)
        elapsed = time.perf_counter() - t0
        curves.append(
            {
                "batch_size": bs,
                "params": others,
                "settings": settings,
                "val_score": hist["val_score"],
                "val_loss": hist["val_loss"],
            }
        )
        for c in group:
            col = settings.index((c["learning_rate"], c["alpha"]))
            e = int(c["epochs"])
            bad = 0 < diverged[col] <= e
            table.append(
                {
                    **c,
                    "val_score": math.nan if bad else float(hist["val_score"][e - 1, col]),
                    "val_loss": math.nan if bad else float(hist["val_loss"][e - 1, col]),
                    "train_loss": math.nan if bad else float(hist["train_loss"][e - 1, col]),
                    "diverged": bool(bad),
                    "time_s": elapsed,
                }
            )
        if callback is not None:
            callback({"batch_size": bs, **others, "configurations": len(group), "time_s": elapsed})

    ok = [r for r in table if not r["diverged"]]
    if not ok:
        raise ArithmeticError(
            "every configuration diverged; try smaller learning rates or standardised inputs"
        )
    best = max(ok, key=lambda r: (r["val_score"], -r["val_loss"]))
    best_params = {k: v for k, v in best.items() if k in configs[0]}
    result = TuneResult(table, best_params, best["val_score"], curves=curves)
    est = Estimator(model, random_state=random_state, **params, **best_params)
    if refit:
        est.fit(np.concatenate([X_tr, X_val]), np.concatenate([y_tr, y_val]))
    else:
        est.fit(X_tr, y_tr, validation_data=(X_val, y_val))
    result.best_estimator = est
    if test_data is not None:
        result.test_score = est.score(test_data[0], test_data[1])
    return result


def _train_group(
    base: Estimator,
    batch_size: int,
    settings: Sequence[tuple[float, float]],
    epochs: int,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    est = Estimator(**{**base.get_params(), "batch_size": batch_size, "epochs": epochs})
    hp = est._check_params()
    rng = _make_rng(base.random_state)
    prep = est._prepare(X, y, hp, rng, None, None, (X_val, y_val))
    K = len(settings)
    W, b = prep.zero_parameters(K)
    result = train(
        prep.model,
        prep.backend,
        prep.source,
        W=W,
        b=b,
        n_configs=K,
        learning_rate=[s[0] for s in settings],
        alpha=[s[1] for s in settings],
        epochs=epochs,
        batch_size=min(batch_size, prep.n_train),
        shuffle=hp["shuffle"],
        rng=rng,
        dtype=prep.dtype,
        device=prep.device,
        validation=prep.validation,
        on_divergence="mask",
    )
    return result.history, result.diverged_at


def _loop_group(
    base: Estimator,
    batch_size: int,
    settings: Sequence[tuple[float, float]],
    epochs: int,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    from .errors import DivergenceError

    keys = ("train_loss", "val_loss", "val_score")
    hist = {k: np.full((epochs, len(settings)), np.nan) for k in keys}
    diverged = np.zeros(len(settings), dtype=np.int64)
    for k, (lr, alpha) in enumerate(settings):
        est = Estimator(
            **{
                **base.get_params(),
                "batch_size": batch_size,
                "epochs": epochs,
                "learning_rate": lr,
                "alpha": alpha,
            }
        )
        try:
            est.fit(X, y, validation_data=(X_val, y_val))
        except DivergenceError as err:
            diverged[k] = err.epoch
        for key in keys:
            vals = est.history_[key]
            hist[key][: len(vals), k] = vals
    return hist, diverged
