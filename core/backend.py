"""The backend abstraction: what the Array API standard leaves out.

The standard defines array operations but not how arrays reach a device, how
they come back to the host, which devices exist or which dtypes a device
supports. A :class:`Backend` supplies exactly that; all math goes through the
namespace it returns.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np

from .errors import BackendUnavailableError

__all__ = ["Backend"]

FLOAT_DTYPES = ("float32", "float64")


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
        """Return ``None`` when usable, else the reason it is not. Must not raise."""
        return None

    @functools.cached_property
    def _unavailable_reason(self) -> str | None:
        try:
            return self._probe()
        except Exception as exc:  # a probe must never crash a listing
            return f"probing {self.name!r} failed: {type(exc).__name__}: {exc}"

    def is_available(self) -> bool:
        """Whether the backend can run on this machine (cached).

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
