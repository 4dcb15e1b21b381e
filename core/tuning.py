"""Hyperparameter search that trains a whole grid in one pass over the data.

All (learning rate, alpha) settings that share a batch size train together:
their parameters are stacked along the columns of ``W`` (see
:mod:`anyglm.glm`), so each minibatch costs one GEMM of width ``K * c``
instead of ``K`` GEMMs of width ``c``. Different ``epochs`` values are
snapshots of the longest run. Every configuration sees the minibatches a
single fit with the same seed would see, so its numbers are that fit's up to
floating-point rounding: one product of width ``K * c`` adds in another order
than ``K`` products of width ``c`` (BLAS picks its blocking by the width).
Rounding only shows where SGD amplifies it, at steps near divergence, whose
trajectory is chaotic: such a configuration can score differently in a
different company (``tune(vectorize=False)`` trains each setting alone). Its
neighbours on the grid, which converge, agree to within 1e-10 or so.
Data of a lazy backend (Dask) is split where it lives and the grid trains
there in the same rounds (:mod:`anyglm.lazy`).
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

from .errors import DivergenceError
from .estimators import Estimator, make_rng
from .inputs import Prepared
from .lazy import concat_rows, lazy_owner, take_rows
from .selection import owner_of
from .stepsize import auto_alpha, auto_learning_rate, scan
from .trainer import train
from .validation import check_learning_rate, check_positive_int, check_real, to_host

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
        "learning_rate": check_learning_rate,
        "alpha": lambda v: "auto" if v == "auto" else check_real("alpha", v, allow_zero=True),
    }[name]
    return [check(v) for v in values]


def _draw(name: str, dist: Any, rng: np.random.Generator) -> Any:
    """One value from a distribution with scipy.stats' ``rvs(random_state=...)``."""
    try:
        value = dist.rvs(random_state=rng)
    except Exception as exc:
        raise ValueError(
            f"distributions[{name!r}].rvs(random_state=...) failed: {type(exc).__name__}: {exc}"
        ) from exc
    value = np.asarray(value)
    if value.ndim != 0 or value.dtype.kind not in "biuf":
        raise TypeError(
            f"distributions[{name!r}].rvs() must return one number, got {value!r}; "
            "pass a univariate distribution (e.g. scipy.stats.loguniform(1e-4, 1e-1))"
        )
    return value.item()


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
            elif callable(getattr(spec, "rvs", None)):  # scipy.stats and look-alikes
                value = _draw(k, spec, rng)
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
        :class:`LogUniform`, a scipy.stats distribution (anything with
        ``rvs(random_state=...)``, e.g. ``scipy.stats.loguniform(1e-4, 1)`` or
        ``scipy.stats.randint(16, 257)``), or a fixed value; ``n_iter``
        configurations, drawn from a generator seeded with ``random_state``.
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
        ``False`` trains them one after another (the same results up to
        floating-point rounding, see the module's docstring; slower).
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
    for k in (*SEARCHED, "model", "random_state", "validation_fraction"):
        if k in params:
            raise ValueError(f"estimator_params must not set {k!r}; it is set by tune()")
    if test_data is not None and not (isinstance(test_data, (tuple, list)) and len(test_data) == 2):
        raise TypeError("test_data must be a pair (X_test, y_test)")
    if params.get("backend") in (None, "auto") and not os.environ.get("ANYGLM_BACKEND", "").strip():
        # The search copies the data to the host to split it; train where the input lives.
        owner = owner_of(X)
        if owner is not None:
            params["backend"] = owner.name
    base = Estimator(model, random_state=random_state, **params)
    fixed = {"model", "random_state", "validation_fraction", "n_iter_no_change", "tol", *params}
    defaults = {k: v for k, v in base.get_params().items() if k not in fixed}
    configs = _configurations(
        grid, distributions, n_iter, defaults, np.random.default_rng(random_state)
    )

    # Lazy data (Dask) is split where it lives; anything else is copied to the host.
    keep = lazy_owner(X) is not None
    X_host = X if keep else to_host(X, "X", owner_of(X))
    y_host = y if keep and lazy_owner(y) is not None else to_host(y, "y", owner_of(y))
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
        X_tr, y_tr = take_rows(X_host, train_rows), take_rows(y_host, train_rows)
        X_val, y_val = take_rows(X_host, val_rows), take_rows(y_host, val_rows)
    else:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data must be a pair (X_val, y_val)")
        X_tr, y_tr = X_host, y_host
        X_val, y_val = validation_data
        if lazy_owner(X_val) is None:
            X_val = to_host(X_val, "X_val", owner_of(X_val))
        if lazy_owner(y_val) is None:
            y_val = to_host(y_val, "y_val", owner_of(y_val))

    table: list[dict[str, Any]] = []
    curves: list[dict[str, Any]] = []
    divergences: list[int] = []  # the epoch of each diverged configuration
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
        # "auto" (a string) sorts first, numbers by value.
        settings = sorted(
            {(c["learning_rate"], c["alpha"]) for c in group},
            key=lambda s: tuple(
                (not isinstance(v, str), 0.0 if isinstance(v, str) else v) for v in s
            ),
        )
        max_epochs = max(c["epochs"] for c in group)
        pass_base = Estimator(**{**base.get_params(), **others})
        t0 = time.perf_counter()
        run = _train_group if vectorize else _loop_group
        hist, diverged, stopped = run(pass_base, bs, settings, max_epochs, X_tr, y_tr, X_val, y_val)
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
            # A configuration that stopped early is reported as it was then.
            e = int(c["epochs"]) if stopped[col] == 0 else min(int(c["epochs"]), int(stopped[col]))
            bad = 0 < diverged[col] <= e
            if bad:
                divergences.append(int(diverged[col]))
            table.append(
                {
                    **c,
                    "val_score": math.nan if bad else float(hist["val_score"][e - 1, col]),
                    "val_loss": math.nan if bad else float(hist["val_loss"][e - 1, col]),
                    "train_loss": math.nan if bad else float(hist["train_loss"][e - 1, col]),
                    "diverged": bool(bad),
                    "epochs_run": e,
                    "time_s": elapsed,
                }
            )
        if callback is not None:
            callback({"batch_size": bs, **others, "configurations": len(group), "time_s": elapsed})

    ok = [r for r in table if not r["diverged"]]
    if not ok:
        raise DivergenceError(
            "every configuration diverged; try smaller learning rates or standardised inputs",
            epoch=min(divergences),
        )
    best = max(ok, key=lambda r: (r["val_score"], -r["val_loss"]))
    best_params = {k: v for k, v in best.items() if k in configs[0]}
    result = TuneResult(table, best_params, best["val_score"], curves=curves)
    est = Estimator(model, random_state=random_state, **params, **best_params)
    if refit:
        est.fit(concat_rows([X_tr, X_val], like=X), concat_rows([y_tr, y_val], like=X))
    else:
        est.fit(X_tr, y_tr, validation_data=(X_val, y_val))
    result.best_estimator = est
    if test_data is not None:
        result.test_score = est.score(test_data[0], test_data[1])
    return result


def _train_group(
    base: Estimator,
    batch_size: int,
    settings: Sequence[tuple[Any, Any]],
    epochs: int,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    est = Estimator(**{**base.get_params(), "batch_size": batch_size, "epochs": epochs})
    hp, spec = est._check_params()
    rng = make_rng(base.random_state)
    prep = est._prepare(X, y, hp, rng, None, None, (X_val, y_val))
    K = len(settings)
    W, b = prep.zero_parameters(K)
    rates, alphas = _resolved(prep, settings, batch_size)
    result = train(
        prep.model,
        prep.backend,
        prep.source,
        W=W,
        b=b,
        n_configs=K,
        learning_rate=rates,
        alpha=alphas,
        epochs=epochs,
        batch_size=min(batch_size, prep.n_train),
        shuffle=hp["shuffle"],
        rng=rng,
        dtype=prep.dtype,
        device=prep.device,
        optimizer=spec,
        validation=prep.validation,
        n_iter_no_change=hp["n_iter_no_change"],
        tol=hp["tol"],
        on_divergence="mask",
    )
    return result.history, result.diverged_at, result.stopped_at


def _resolved(
    prep: Prepared, settings: Sequence[tuple[Any, Any]], batch_size: int
) -> tuple[list[float], list[float]]:
    """The (learning rate, alpha) of each setting with ``"auto"`` values worked out.

    The same rules as a single fit's (:mod:`anyglm.stepsize`), so a configuration's
    numbers are those its own fit would use.
    """
    alphas = [auto_alpha(prep.n_train) if a == "auto" else float(a) for _, a in settings]
    sample = scan(prep.source) if any(lr == "auto" for lr, _ in settings) else None
    rates = []
    for (lr, _), alpha in zip(settings, alphas, strict=True):
        if lr == "auto":
            assert sample is not None
            lr = auto_learning_rate(prep.model, sample, alpha, min(batch_size, prep.n_train))
        rates.append(float(lr))
    return rates, alphas


def _loop_group(
    base: Estimator,
    batch_size: int,
    settings: Sequence[tuple[Any, Any]],
    epochs: int,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The settings trained one after another, each alone (``vectorize=False``)."""
    keys = ("train_loss", "val_loss", "val_score")
    hist = {k: np.full((epochs, len(settings)), np.nan) for k in keys}
    diverged = np.zeros(len(settings), dtype=np.int64)
    stopped = np.zeros(len(settings), dtype=np.int64)
    for k, setting in enumerate(settings):
        one, div, stop = _train_group(base, batch_size, [setting], epochs, X, y, X_val, y_val)
        diverged[k], stopped[k] = div[0], stop[0]
        for key in keys:
            rows = np.asarray(one[key])[:, 0]
            hist[key][: len(rows), k] = rows
    return hist, diverged, stopped
