"""The backend abstraction: what the Array API standard leaves out.

The standard defines array operations but not how arrays reach a device, how
they come back to the host, which devices exist or which dtypes a device
supports. A :class:`Backend` supplies exactly that; all math goes through the
namespace it returns.
"""

from __future__ import annotations

import functools
import math
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BackendUnavailableError

__all__ = ["DEFAULT_PROBE_TIMEOUT", "Backend", "probe_timeout"]

FLOAT_DTYPES = ("float32", "float64")

#: Seconds a backend's availability probe may run before the backend is listed
#: as unavailable ("probe timed out after 5 s"); ``ANYGLM_PROBE_TIMEOUT`` changes it.
DEFAULT_PROBE_TIMEOUT = 5.0
PROBE_TIMEOUT_ENV = "ANYGLM_PROBE_TIMEOUT"


def probe_timeout() -> float:
    """Seconds each availability probe may run: ``ANYGLM_PROBE_TIMEOUT``, else 5.

    Raises
    ------
    ValueError
        The variable is set to something other than a positive, finite number.

    Examples
    --------
    >>> import os
    >>> from anyglm.backend import probe_timeout
    >>> probe_timeout()
    5.0
    >>> os.environ["ANYGLM_PROBE_TIMEOUT"] = "0.5"
    >>> probe_timeout()
    0.5
    >>> os.environ["ANYGLM_PROBE_TIMEOUT"] = "soon"
    >>> probe_timeout()
    Traceback (most recent call last):
    ...
    ValueError: ANYGLM_PROBE_TIMEOUT='soon' is not a number of seconds; set it to a positive ...
    >>> del os.environ["ANYGLM_PROBE_TIMEOUT"]
    """
    text = os.environ.get(PROBE_TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_PROBE_TIMEOUT
    hint = (
        f"set it to a positive number such as 5, or unset it for the default "
        f"({DEFAULT_PROBE_TIMEOUT:g} s)"
    )
    setting = f"{PROBE_TIMEOUT_ENV}={text!r}"
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{setting} is not a number of seconds; {hint}") from None
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{setting} must be a positive number of seconds; {hint}")
    return value


class _Probe:
    """One run of a backend's ``_probe`` in a daemon thread, with a deadline.

    A daemon thread, because a probe that never returns cannot be stopped from
    Python; as a daemon it does not keep the process alive at exit.
    """

    def __init__(self, backend: Backend, timeout: float) -> None:
        self.name = backend.name
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.done = threading.Event()
        self.result: str | None = None
        self.thread = threading.Thread(
            target=self._run, args=(backend,), name=f"anyglm-probe-{backend.name}", daemon=True
        )
        self.thread.start()

    def _run(self, backend: Backend) -> None:
        try:
            self.result = backend._probe()
        except BaseException as exc:  # a probe must never crash a listing
            self.result = f"probing {self.name!r} failed: {type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def wait(self) -> str | None:
        # The deadline counts from the start, so probes started together (see
        # registry.list_backends) time out together: N hung probes cost one timeout.
        if self.done.wait(max(0.0, self.deadline - time.monotonic())):
            return self.result
        return f"probe timed out after {self.timeout:g} s"


# Probes still running, by backend class and name: a backend object created again
# (reload_plugins) joins its hung probe instead of starting a second thread and
# waiting out a second timeout.
_running: dict[tuple[type, str], _Probe] = {}
_running_lock = threading.Lock()


class Backend:
    """Base class for array backends.

    Subclasses set :attr:`name` (the import name of the array library) and
    :attr:`modules` (top-level module names whose arrays the backend owns),
    and override :meth:`_probe` and :meth:`_load_namespace`. Everything else
    has a portable default written against the namespace.

    Examples
    --------
    >>> import anyglm
    >>> be = anyglm.get_backend("numpy")
    >>> be.name, be.default_dtype()
    ('numpy', 'float64')
    """

    #: The backend's name, by convention the array library's import name.
    name: str = ""
    #: Top-level module names of the array types this backend owns.
    modules: tuple[str, ...] = ()
    #: What to install when the library is missing.
    install_hint: str = ""

    # -- availability -------------------------------------------------------------

    def _probe(self) -> str | None:
        """Return ``None`` when usable, else the reason it is not.

        Runs in a daemon thread bounded by :func:`probe_timeout`; whatever it
        raises becomes the reason.
        """
        return None

    def _start_probe(self) -> _Probe | None:
        """Start the probe thread unless the answer is known; ``None`` for the default probe."""
        if "_unavailable_reason" in self.__dict__:
            return None  # answered (or set by a test)
        if type(self)._probe is Backend._probe:
            return None  # "available", nothing to wait for
        with _running_lock:
            probe: _Probe | None = self.__dict__.get("_probe_run")
            if probe is not None:
                return probe
            key = (type(self), self.name)
            earlier = _running.get(key)
            if earlier is not None and not earlier.done.is_set():
                probe = earlier
            else:
                probe = _Probe(self, probe_timeout())
                _running[key] = probe
            self.__dict__["_probe_run"] = probe
            return probe

    @functools.cached_property
    def _unavailable_reason(self) -> str | None:
        probe = self._start_probe()
        return None if probe is None else probe.wait()

    def is_available(self) -> bool:
        """Whether the backend can run on this machine (cached).

        The first call runs the backend's probe in a daemon thread and waits at
        most :func:`probe_timeout` seconds (``ANYGLM_PROBE_TIMEOUT``, default 5);
        a probe that takes longer leaves the backend unavailable, with the
        reason ``"probe timed out after 5 s"``. A probe still running is never
        waited for twice in one process, not even after
        :func:`~anyglm.reload_plugins`.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").is_available()
        True
        """
        return self._unavailable_reason is None

    @property
    def unavailable_reason(self) -> str | None:
        """Why the backend cannot run here, or ``None`` when it can."""
        return self._unavailable_reason

    def require(self) -> None:
        """Raise :class:`BackendUnavailableError` unless the backend is usable.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").require()  # returns None when usable
        """
        reason = self._unavailable_reason
        if reason is not None:
            raise BackendUnavailableError(
                f"backend {self.name!r} is not available here: {reason}"
                + (f" ({self.install_hint})" if self.install_hint else "")
            )

    # -- namespace, devices, dtypes ---------------------------------------------------

    def _load_namespace(self) -> Any:
        raise NotImplementedError

    @functools.cached_property
    def _xp(self) -> Any:
        self.require()
        return self._load_namespace()

    @property
    def xp(self) -> Any:
        """The Array API namespace (array-api-compat's wrapper where needed)."""
        return self._xp

    def library_version(self) -> str | None:
        """Version of the array library, or ``None`` when it is not installed.

        Read from the installed distribution (``cupy-cuda12x`` provides
        ``cupy``), so asking never imports the library.

        Examples
        --------
        >>> import anyglm, numpy
        >>> anyglm.get_backend("numpy").library_version() == numpy.__version__
        True
        """
        from importlib import metadata

        for dist in _distributions().get(self.modules[0] if self.modules else self.name, []):
            try:
                return metadata.version(dist)
            except metadata.PackageNotFoundError:
                continue
        return None

    def devices(self) -> list[Any]:
        """Devices arrays can live on; the first is the default.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").devices()
        ['cpu']
        """
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is not None:
            devs = list(info().devices())
            if devs:
                return devs
        return [self.default_device()]

    def default_device(self) -> Any:
        """The device new arrays go to when none is given.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").default_device()
        'cpu'
        """
        info = getattr(self.xp, "__array_namespace_info__", None)
        if info is not None:
            return info().default_device()
        return None

    def float_dtypes(self, device: Any = None) -> tuple[str, ...]:
        """Names of the real floating dtypes supported on ``device``.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").float_dtypes()
        ('float32', 'float64')
        """
        return FLOAT_DTYPES

    def default_dtype(self, device: Any = None) -> str:
        """The widest supported float dtype on ``device`` (float64 where possible).

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").default_dtype()
        'float64'
        """
        return self.float_dtypes(device)[-1]

    def index_dtype(self, device: Any = None) -> str:
        """Name of the integer dtype for row indices on ``device`` ("int64" by default).

        A backend whose library lacks 64-bit integers by default (JAX without
        ``jax_enable_x64``) returns ``"int32"``; the core then builds its shuffles
        and gathers in that dtype, without warnings.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").index_dtype()
        'int64'
        """
        return "int64"

    def dtype(self, name: str, device: Any = None) -> Any:
        """The namespace's dtype object for ``name`` ("float32", "float64", "int64", ...).

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").dtype("float32")
        <class 'numpy.float32'>
        """
        if name in FLOAT_DTYPES and name not in self.float_dtypes(device):
            raise ValueError(
                f"backend {self.name!r} does not support {name} on device {device!r}; "
                f"supported: {', '.join(self.float_dtypes(device))}"
            )
        return getattr(self.xp, name)

    # -- arrays in and out -------------------------------------------------------------

    def owns(self, x: Any) -> bool:
        """Whether ``x`` is an array of this backend's library (never imports it).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("numpy")
        >>> be.owns(np.zeros(2)), be.owns([0.0, 1.0])
        (True, False)
        """
        module = type(x).__module__.partition(".")[0]
        return module in self.modules

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        """Copy a host array onto ``device`` as ``dtype`` (a dtype name).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> anyglm.get_backend("numpy").from_numpy(np.arange(3), dtype="float32").dtype
        dtype('float32')
        """
        xp = self.xp
        target = None if dtype is None else self.dtype(dtype, device)
        return xp.asarray(a, dtype=target, device=device)

    def to_numpy(self, x: Any) -> np.ndarray:
        """Copy an array of this backend to a NumPy array on the host.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("array_api_strict")
        >>> be.to_numpy(be.from_numpy(np.arange(3.0))).tolist()
        [0.0, 1.0, 2.0]
        """
        return np.asarray(x)

    def device_of(self, x: Any) -> Any:
        """The device ``x`` lives on.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> anyglm.get_backend("numpy").device_of(np.zeros(2))
        'cpu'
        """
        import array_api_compat

        return array_api_compat.device(x)

    def describe_devices(self) -> list[str]:
        """Devices as strings, for listings (empty when unavailable).

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("numpy").describe_devices()
        ['cpu']
        """
        if not self.is_available():
            return []
        try:
            return [str(d) for d in self.devices()]
        except Exception:  # listing must not crash on an odd driver
            return []

    def diagnostics(self) -> dict[str, Any]:
        """What the backend reports about itself for :func:`anyglm.doctor` (default: nothing).

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("array_api_strict").diagnostics()
        {}
        """
        return {}

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


@functools.lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    from importlib import metadata

    return dict(metadata.packages_distributions())


def dtype_name(dtype: Any) -> str:
    """Canonical name of a dtype object from any namespace ("float32", ...)."""
    text = str(dtype)
    for name in ("float16", "float32", "float64", "complex64", "complex128"):
        if name in text:
            return name
    return text.rsplit(".", 1)[-1].strip("'>")


def supported_names(backends: Sequence[Backend]) -> str:
    return ", ".join(sorted(b.name for b in backends))
