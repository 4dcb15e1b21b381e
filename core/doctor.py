"""Diagnostics: what anyglm found on this machine, and whether backends agree."""

from __future__ import annotations

import platform
import sys
from collections.abc import Sequence
from importlib import metadata
from typing import Any

import numpy as np

from . import registry
from ._version import __version__

__all__ = ["compare_backends", "doctor"]


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def doctor() -> dict[str, Any]:
    """Report every backend, model and failed plugin, with versions.

    Returns
    -------
    dict
        ``anyglm``, ``python``, ``platform``, ``libraries`` (versions of the
        runtime dependencies), ``backends`` and ``models`` (as
        :func:`list_backends` and :func:`list_models` give them),
        ``failed_plugins`` (name, origin, error), ``disabled_plugins`` and
        ``accelerators``: per available backend, the models a plugin offers an
        accelerator for at the default optimiser (empty when
        ``ANYGLM_DISABLE_ACCELERATORS`` is set); ``backend_details``: what each
        backend reports about itself (:meth:`anyglm.Backend.diagnostics`; the
        NumPy backend: its numba loop's ``version``, ``enabled``, ``models``,
        ``min_elements``).

    Examples
    --------
    >>> import anyglm
    >>> report = anyglm.doctor()
    >>> report["anyglm"] == anyglm.__version__, "numpy" in report["libraries"]
    (True, True)
    >>> sorted(report["backend_details"]["numpy"])
    ['numba']
    """
    state = registry.plugin_state()
    backends = registry.list_backends()
    return {
        "anyglm": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "libraries": {d: _version(d) for d in ("numpy", "array-api-compat", "pluggy")},
        "backends": backends,
        "models": registry.list_models(),
        "failed_plugins": [
            {
                "name": f.name,
                "origin": f.origin,
                "error": f"{type(f.error).__name__}: {f.error}",
            }
            for f in state.failures
        ],
        "disabled_plugins": list(state.disabled),
        "accelerators": _accelerators(backends),
        "backend_details": _diagnostics(backends),
    }


def _accelerators(backends: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Per available backend: the models it offers an accelerator for, at the default spec."""
    from .accelerate import AcceleratorSpec
    from .optim import OptimizerSpec
    from .selection import find_accelerator

    models = [registry.get_model(row["name"]) for row in registry.list_models()]
    out: dict[str, list[str]] = {}
    for row in backends:
        if not row["available"]:
            continue
        be = registry.get_backend(row["name"])
        try:
            names = []
            for m in models:
                spec = AcceleratorSpec(
                    m, m.name, OptimizerSpec(), be.default_dtype(), 1, False, False
                )
                if find_accelerator(be, spec, errors="raise") is not None:
                    names.append(m.name)
            out[be.name] = names
        except Exception as exc:  # a raising hook is reported, not fatal to the report
            out[be.name] = [f"error: {type(exc).__name__}: {exc}"]
    return out


def _diagnostics(backends: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for row in backends:
        try:
            info = registry.get_backend(row["name"]).diagnostics()
        except Exception as exc:  # a backend's report must not break the whole report
            info = {"error": f"{type(exc).__name__}: {exc}"}
        if info:
            out[row["name"]] = info
    return out


def compare_backends(
    model: str,
    X: Any,
    y: Any,
    backends: Sequence[str] | None = None,
    *,
    reference: str = "numpy",
    dtype: str = "float64",
    random_state: int = 0,
    **params: Any,
) -> dict[str, dict[str, Any]]:
    """Train one configuration with one seed on several backends and compare.

    Parameters
    ----------
    model : str
        Model name.
    X, y : array-like
        Training data (any namespace; it is copied to each backend).
    backends : sequence of str, optional
        Backends to compare; default: every available backend.
    reference : str, default="numpy"
        The backend the others are compared with.
    dtype : {"float32", "float64"}
    random_state : int
        Seed shared by every run, so each backend sees the same minibatches.
    **params
        Further :class:`Estimator` parameters (``epochs``, ``learning_rate``, ...).

    Returns
    -------
    dict
        For each backend: ``available`` and ``reason``, and when it ran,
        ``max_param_diff`` (largest absolute difference of ``coef_`` and
        ``intercept_`` from the reference) and ``max_prediction_diff`` (of
        ``decision_function`` on ``X``). An available backend whose default
        device lacks ``dtype`` (JAX without 64-bit mode and float64) is not
        run: its entry has ``skipped`` set to ``True`` and the ``reason``.

    Raises
    ------
    ValueError
        The reference backend lacks ``dtype`` on its default device.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> X = np.random.default_rng(0).normal(size=(40, 3))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> out = anyglm.compare_backends("logistic", X, y, ["numpy", "array_api_strict"], epochs=3)
    >>> out["array_api_strict"]["max_param_diff"] < 1e-12
    True
    """
    from .estimators import Estimator
    from .selection import owner_of
    from .validation import to_host

    X_host = to_host(X, "X", owner_of(X))
    y_host = to_host(y, "y", owner_of(y))
    names = (
        list(backends)
        if backends is not None
        else [b["name"] for b in registry.list_backends() if b["available"]]
    )
    if reference not in names:
        names.insert(0, reference)

    def run(name: str) -> tuple[np.ndarray, np.ndarray]:
        be = registry.get_backend(name)
        est = Estimator(model, backend=name, dtype=dtype, random_state=random_state, **params)
        est.fit(be.from_numpy(X_host, dtype=dtype), y_host)
        theta = np.concatenate(
            [np.ravel(be.to_numpy(est.coef_)), np.ravel(be.to_numpy(est.intercept_))]
        )
        pred = be.to_numpy(est.decision_function(be.from_numpy(X_host, dtype=dtype)))
        return theta.astype(np.float64), pred.astype(np.float64)

    def lacks_dtype(be: Any) -> str | None:
        device = be.default_device()
        supported = be.float_dtypes(device)
        if dtype in supported:
            return None
        return (
            f"backend {be.name!r} does not support {dtype} on its default device {device} "
            f"(supported: {', '.join(supported)})"
        )

    ref_backend = registry.get_backend(reference)
    ref_backend.require()
    missing = lacks_dtype(ref_backend)
    if missing is not None:
        raise ValueError(f"the reference {missing}; choose another reference or dtype")
    ref_theta, ref_pred = run(reference)
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        be = registry.get_backend(name)
        if not be.is_available():
            out[name] = {"available": False, "reason": be.unavailable_reason}
            continue
        missing = lacks_dtype(be)
        if missing is not None:
            out[name] = {"available": True, "skipped": True, "reason": missing}
            continue
        theta, pred = (ref_theta, ref_pred) if name == reference else run(name)
        out[name] = {
            "available": True,
            "reason": None,
            "max_param_diff": float(np.max(np.abs(theta - ref_theta))),
            "max_prediction_diff": float(np.max(np.abs(pred - ref_pred))),
        }
    return out
