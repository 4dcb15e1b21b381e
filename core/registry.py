"""Plugin discovery and the backend and model registries.

Built-in plugins are registered directly from :data:`DEFAULT_PLUGINS`;
third-party ones come from the ``anyglm.plugins`` entry-point group and are
loaded one at a time, so one broken plugin never takes the others down.

Rules (documented in the plugin guide):

* A plugin that fails to import, has a hook with a wrong signature, a
  misspelled hook name, or raises while registering (any exception, even
  ``SystemExit``; only ``KeyboardInterrupt`` goes through) is skipped with a
  :class:`PluginWarning` naming it and its distribution; what it registered is
  removed; the error is kept and re-raised (as the ``__cause__`` of
  :class:`~anyglm.errors.PluginLoadError`) when its name is asked for.
* ``ANYGLM_STRICT_PLUGINS=1`` turns those failures into errors.
* ``ANYGLM_DISABLE_PLUGINS=a,b`` skips entry points (or built-in modules) by name.
* Two plugins claiming one backend or model name: the first registered wins
  and a warning names both. Built-ins register first, then entry points in
  order of (distribution name, entry-point name), so the winner does not
  depend on installation order.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Generic, TypeVar

import pluggy

from . import hookspecs
from ._env import env_flag
from .backend import Backend
from .errors import PluginLoadError, UnknownNameError
from .model import Model

__all__ = [
    "DEFAULT_PLUGINS",
    "PluginFailure",
    "PluginWarning",
    "get_backend",
    "get_model",
    "plugin_failures",
    "reload_plugins",
]

ENTRY_POINT_GROUP = "anyglm.plugins"

#: Built-in plugin modules, registered directly (no entry point needed, so an
#: editable install picks up new ones without reinstalling).
DEFAULT_PLUGINS: tuple[str, ...] = (
    "anyglm.backends.numpy",
    "anyglm.backends.array_api_strict",
    "anyglm.backends.cupy",
    "anyglm.backends.torch",
    "anyglm.backends.jax",
    "anyglm.backends.dask",
    "anyglm.plugins.linear",
    "anyglm.plugins.logistic",
    "anyglm.plugins.softmax",
)

BUILTIN = "anyglm (built-in)"


class PluginWarning(UserWarning):
    """A plugin was skipped or overridden; the message names it.

    Examples
    --------
    >>> import warnings, anyglm
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", anyglm.PluginWarning)  # fail on any broken plugin
    ...     anyglm.reload_plugins()
    ...     names = [m["name"] for m in anyglm.list_models()]
    """


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that could not be loaded, with the exception it raised.

    Examples
    --------
    >>> from anyglm.registry import PluginFailure
    >>> PluginFailure("broken", "fake-dist 1.0", ImportError("no module x")).describe()
    'broken (fake-dist 1.0): ImportError: no module x'
    """

    name: str
    origin: str
    error: BaseException

    def describe(self) -> str:
        """One line: name, origin, exception type and message.

        Examples
        --------
        >>> from anyglm.registry import PluginFailure
        >>> PluginFailure("p", "d 1.0", ValueError("bad")).describe()
        'p (d 1.0): ValueError: bad'
        """
        return f"{self.name} ({self.origin}): {type(self.error).__name__}: {self.error}"


T = TypeVar("T", Backend, Model)


@dataclass
class _Registry(Generic[T]):
    kind: str
    cls: type
    items: dict[str, T] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)

    def register_from(self, plugin_name: str, origin: str) -> tuple[Callable[[T], None], list[str]]:
        added: list[str] = []

        def register(item: T) -> None:
            if not isinstance(item, self.cls):
                raise TypeError(
                    f"plugin {plugin_name!r} registered {item!r}, which is not an "
                    f"anyglm.{self.cls.__name__} instance"
                )
            name = item.name
            if not isinstance(name, str) or not name:
                raise TypeError(f"plugin {plugin_name!r} registered a {self.kind} without a name")
            if name in self.items:
                warnings.warn(
                    f"{self.kind} {name!r} from plugin {plugin_name!r} ({origin}) is ignored: "
                    f"{self.origins[name]} registered it first",
                    PluginWarning,
                    stacklevel=3,
                )
                return
            self.items[name] = item
            self.origins[name] = origin
            added.append(name)

        return register, added

    def remove(self, names: list[str]) -> None:
        for name in names:
            self.items.pop(name, None)
            self.origins.pop(name, None)


class PluginState:
    """The loaded plugins: registries, failures and the pluggy manager."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.backends: _Registry[Backend] = _Registry("backend", Backend)
        self.models: _Registry[Model] = _Registry("model", Model)
        self.failures: list[PluginFailure] = []
        self.disabled: list[str] = []
        self.strict = env_flag("ANYGLM_STRICT_PLUGINS")
        blocked = os.environ.get("ANYGLM_DISABLE_PLUGINS", "")
        self.blocked = {b.strip() for b in blocked.split(",") if b.strip()}

    # -- loading -----------------------------------------------------------------------

    def load(self) -> None:
        for module_name in DEFAULT_PLUGINS:
            short = module_name.rsplit(".", 1)[-1]
            if module_name in self.blocked or short in self.blocked:
                self.disabled.append(module_name)
                continue
            self._add(module_name, BUILTIN, functools.partial(importlib.import_module, module_name))
        eps = sorted(
            metadata.entry_points(group=ENTRY_POINT_GROUP),
            key=lambda ep: (_dist_name(ep), ep.name),
        )
        seen: set[tuple[str, str]] = set()
        for ep in eps:
            key = (_dist_name(ep), ep.name)
            if key in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(key)
            if ep.name in self.blocked:
                self.disabled.append(ep.name)
                continue
            self._add(ep.name, _origin(ep), ep.load)

    def _add(self, name: str, origin: str, load: Callable[[], Any]) -> None:
        registered: list[Any] = []
        backend_names: list[str] = []
        model_names: list[str] = []
        try:
            plugin = load()
            _check_hook_names(plugin)
            # Entry-point names are unique per distribution only; the origin makes
            # the pluggy name unique. Registering validates hook signatures.
            self.pm.register(plugin, name=f"{origin}: {name}")
            registered.append(plugin)
            for caller in self.pm.get_hookcallers(plugin) or []:
                if not caller.has_spec():
                    raise pluggy.PluginValidationError(
                        plugin, f"unknown hook {caller.name!r} (misspelled?)"
                    )
            targets: dict[str, tuple[_Registry[Any], list[str]]] = {
                "anyglm_register_backends": (self.backends, backend_names),
                "anyglm_register_models": (self.models, model_names),
            }
            for caller in self.pm.get_hookcallers(plugin) or []:
                if caller.name not in targets:
                    continue  # a query hook (anyglm_accelerator): called when needed
                registry, names = targets[caller.name]
                for impl in caller.get_hookimpls():
                    if impl.plugin is not plugin:
                        continue
                    # Called per plugin (not through the hook caller) so a plugin
                    # that raises can be dropped without losing the others.
                    register, added = registry.register_from(name, origin)
                    try:
                        impl.function(register=register)
                    finally:
                        names.extend(added)
        except KeyboardInterrupt:
            raise  # the user's Ctrl-C, not the plugin's failure
        except BaseException as exc:  # SystemExit, GeneratorExit, ...: a plugin must not end us
            self.backends.remove(backend_names)
            self.models.remove(model_names)
            for plugin in registered:
                self.pm.unregister(plugin)
            failure = PluginFailure(name, origin, exc)
            if self.strict:
                raise PluginLoadError(
                    f"plugin {failure.describe()} (ANYGLM_STRICT_PLUGINS is set)"
                ) from exc
            self.failures.append(failure)
            warnings.warn(
                f"anyglm skipped plugin {failure.describe()}", PluginWarning, stacklevel=4
            )

    # -- lookup ------------------------------------------------------------------------

    def lookup(self, registry: _Registry[T], name: Any) -> T:
        if not isinstance(name, str):
            raise TypeError(f"{registry.kind} name must be a string, got {type(name).__name__}")
        item = registry.items.get(name)
        if item is not None:
            return item
        known = sorted(registry.items)
        message = f"unknown {registry.kind} {name!r}; known {registry.kind}s: {', '.join(known)}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f". Did you mean {close[0]!r}?"
        for failure in self.failures:
            if failure.name == name or failure.name.rsplit(".", 1)[-1] == name:
                raise PluginLoadError(
                    f"{registry.kind} {name!r} is unavailable because its plugin failed to "
                    f"load: {failure.describe()}"
                ) from failure.error
        if self.failures:
            message += ". Plugins that failed to load: " + "; ".join(
                f.describe() for f in self.failures
            )
        raise UnknownNameError(message)


def _check_hook_names(plugin: Any) -> None:
    # pluggy only sees functions carrying the marker; a misspelled hook without
    # it would otherwise be ignored in silence.
    specs = {name for name in dir(hookspecs) if name.startswith("anyglm_")}
    for attr in dir(plugin):
        if attr.startswith("anyglm_") and attr not in specs and callable(getattr(plugin, attr)):
            close = difflib.get_close_matches(attr, sorted(specs), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise pluggy.PluginValidationError(plugin, f"unknown hook {attr!r}{hint}")


def _dist_name(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return dist.metadata["Name"] if dist is not None else ""


def _origin(ep: metadata.EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return f"entry point {ep.value}"
    return f"{dist.metadata['Name']} {dist.version}"


_lock = threading.Lock()
_state: PluginState | None = None


def plugin_state() -> PluginState:
    """The loaded plugin state, loading plugins on first use."""
    global _state
    with _lock:
        if _state is None:
            state = PluginState()
            state.load()
            _state = state
        return _state


def reload_plugins() -> None:
    """Forget loaded plugins; the next lookup rediscovers them (reads the env vars again).

    Examples
    --------
    >>> import anyglm
    >>> anyglm.reload_plugins()
    >>> "numpy" in [b["name"] for b in anyglm.list_backends()]
    True
    """
    global _state
    with _lock:
        _state = None


def plugin_failures() -> list[PluginFailure]:
    """Plugins that failed to load, with their errors.

    Examples
    --------
    >>> import anyglm
    >>> [f.name for f in anyglm.plugin_failures()]  # none on a clean install
    []
    """
    return list(plugin_state().failures)


def get_backend(name: str) -> Backend:
    """Return the backend registered as ``name``.

    Parameters
    ----------
    name : str
        A backend name such as ``"numpy"``, ``"array_api_strict"`` or ``"cupy"``.

    Returns
    -------
    Backend
        The backend; it may be unavailable (see :meth:`Backend.is_available`).

    Raises
    ------
    UnknownNameError
        No plugin registered that name; the message lists the known names.
    PluginLoadError
        The plugin of that name failed to load; its error is the ``__cause__``.

    Examples
    --------
    >>> import anyglm
    >>> anyglm.get_backend("numpy").name
    'numpy'
    """
    state = plugin_state()
    return state.lookup(state.backends, name)


def get_model(name: str) -> Model:
    """Return the model registered as ``name``.

    Parameters
    ----------
    name : str
        A model name such as ``"linear"``, ``"logistic"`` or ``"softmax"``.

    Returns
    -------
    Model

    Raises
    ------
    UnknownNameError
        No plugin registered that name; the message lists the known names.
    PluginLoadError
        The plugin of that name failed to load; its error is the ``__cause__``.

    Examples
    --------
    >>> import anyglm
    >>> anyglm.get_model("softmax").task
    'classification'
    """
    state = plugin_state()
    return state.lookup(state.models, name)


def list_backends() -> list[dict[str, Any]]:
    """Describe every registered backend.

    Returns
    -------
    list of dict
        One dict per backend, sorted by name, with keys ``name``, ``available``,
        ``reason`` (``None`` when available; ``"probe timed out after 5 s"``
        for a backend whose availability probe did not answer within
        :func:`~anyglm.backend.probe_timeout`), ``devices`` (strings),
        ``dtypes`` (supported float dtypes on the default device), ``version``
        (of the array library, ``None`` if not installed) and ``origin``
        (``"anyglm (built-in)"`` or the providing distribution and version).

    Notes
    -----
    The probes of all backends run at once, each in a daemon thread, so the
    listing takes at most about one probe timeout however many probes hang.

    Examples
    --------
    >>> import anyglm
    >>> info = {b["name"]: b for b in anyglm.list_backends()}
    >>> info["numpy"]["available"], info["numpy"]["dtypes"]
    (True, ['float32', 'float64'])
    """
    state = plugin_state()
    # Every probe starts before any is waited for: several slow or hung probes
    # then cost one probe timeout, not one each.
    for be in state.backends.items.values():
        be._start_probe()
    rows = []
    for name in sorted(state.backends.items):
        be = state.backends.items[name]
        available = be.is_available()
        rows.append(
            {
                "name": name,
                "available": available,
                "reason": be.unavailable_reason,
                "devices": be.describe_devices(),
                "dtypes": list(be.float_dtypes()) if available else [],
                "version": be.library_version(),
                "origin": state.backends.origins[name],
            }
        )
    return rows


def list_models() -> list[dict[str, Any]]:
    """Describe every registered model.

    Returns
    -------
    list of dict
        One dict per model, sorted by name, with keys ``name``, ``task``,
        ``description`` and ``origin``.

    Examples
    --------
    >>> import anyglm
    >>> {"linear", "logistic", "softmax"} <= {m["name"] for m in anyglm.list_models()}
    True
    """
    state = plugin_state()
    return [
        {
            "name": name,
            "task": state.models.items[name].task,
            "description": state.models.items[name].description,
            "origin": state.models.origins[name],
        }
        for name in sorted(state.models.items)
    ]
