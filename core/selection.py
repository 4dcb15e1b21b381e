"""Choosing what runs a job: the backend for some data, the accelerator for a fit.

The one place that resolves a backend for estimators, tuning, loading and
diagnostics (:func:`resolve_backend`), and that asks the plugins for an
accelerator (:func:`find_accelerator`).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np

from . import registry
from .accelerate import Accelerator, AcceleratorSpec, accelerators_disabled
from .backend import Backend

__all__ = ["find_accelerator", "owner_of", "resolve_backend"]


def owner_of(x: Any) -> Backend | None:
    """The registered backend whose library ``x`` belongs to, without importing any.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.selection import owner_of
    >>> owner_of(np.zeros(2)).name, owner_of([1.0, 2.0])
    ('numpy', None)
    """
    if type(x) is np.ndarray:
        return registry.get_backend("numpy")
    state = registry.plugin_state()
    for be in state.backends.items.values():
        if be.owns(x):
            return be
    return None


def resolve_backend(name: Any, X: Any = None) -> Backend:
    """The backend a job runs on: by name, or (``None``/``"auto"``) the one owning ``X``.

    ``None`` reads the ``ANYGLM_BACKEND`` environment variable first. With
    ``"auto"``, data of a registered backend's library picks that backend;
    anything else (lists, NumPy arrays, memory-mapped files) picks NumPy.

    Raises
    ------
    TypeError
        ``name`` is not a string.
    UnknownNameError, PluginLoadError, BackendUnavailableError
        The backend does not exist, failed to load, or cannot run here.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.selection import resolve_backend
    >>> resolve_backend("auto", np.zeros((2, 2))).name
    'numpy'
    """
    if name is None:
        name = os.environ.get("ANYGLM_BACKEND", "").strip() or "auto"
    if not isinstance(name, str):
        raise TypeError(f"backend must be a backend name or 'auto', got {name!r}")
    if name == "auto":
        be = owner_of(X) if X is not None else None
        be = be or registry.get_backend("numpy")
    else:
        be = registry.get_backend(name)
    be.require()
    return be


def find_accelerator(
    backend: Backend, spec: AcceleratorSpec, *, errors: str = "warn"
) -> Accelerator | None:
    """The accelerator a plugin offers for ``spec`` on ``backend``, or ``None``.

    The plugins' ``anyglm_accelerator`` hooks are asked in pluggy's order
    (the last registered first) and the first callable answer wins. A hook
    that raises or answers something that is not callable is skipped with a
    :class:`~anyglm.PluginWarning` naming the plugin, so one broken plugin
    costs speed, not the fit; ``errors="raise"`` (what the conformance suite
    and :func:`anyglm.doctor` use), or ``ANYGLM_STRICT_PLUGINS=1``, raises
    instead. ``None`` also when ``ANYGLM_DISABLE_ACCELERATORS`` is set.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.accelerate import AcceleratorSpec
    >>> from anyglm.optim import OptimizerSpec
    >>> from anyglm.selection import find_accelerator
    >>> spec = AcceleratorSpec(anyglm.get_model("softmax"), "softmax", OptimizerSpec(),
    ...                        "float64", 1, False, False)
    >>> find_accelerator(anyglm.get_backend("array_api_strict"), spec) is None  # portable only
    True
    """
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise', got {errors!r}")
    if accelerators_disabled():
        return None
    state = registry.plugin_state()
    raise_errors = errors == "raise" or state.strict
    args = {"backend": backend, "spec": spec}
    # Called one by one (pluggy's own order) so that a failing plugin can be skipped.
    for impl in reversed(state.pm.hook.anyglm_accelerator.get_hookimpls()):
        try:
            found = impl.function(*[args[name] for name in impl.argnames])
        except Exception as exc:
            if raise_errors:
                raise
            problem: str = f"raised {type(exc).__name__}: {exc}"
        else:
            if found is None:
                continue
            if callable(found):
                return found
            problem = f"returned {found!r}; it must return a callable or None"
            if raise_errors:
                raise TypeError(
                    f"the anyglm_accelerator hook of plugin {impl.plugin_name!r} {problem} "
                    f"(backend {backend.name!r}, model {spec.model_name!r})"
                )
        warnings.warn(
            f"anyglm skipped the accelerator of plugin {impl.plugin_name!r} for backend "
            f"{backend.name!r} and model {spec.model_name!r}: its anyglm_accelerator hook "
            f"{problem}. Training goes on without it (slower); run "
            f"`pytest --pyargs anyglm.conformance` to see the failure.",
            registry.PluginWarning,
            stacklevel=3,
        )
    return None
