"""The JAX backend: ``jax.numpy`` on the CPU and on GPUs.

``jax.numpy`` implements the Array API standard itself (since JAX 0.4.32), so
it is the namespace. Three things make JAX different from NumPy, and each is
handled here rather than in the core:

* its arrays report ``type(x).__module__ == "jaxlib._jax"`` (``jaxlib.xla_extension``
  in older releases), not ``"jax"``, so the backend owns both top-level names;
* ``jax.numpy.__array_namespace_info__().devices()`` includes ``None``; the
  backend lists JAX's real devices instead (the default one first);
* without ``jax_enable_x64`` (or ``JAX_ENABLE_X64=1``) there is no float64 and
  no int64: the backend then offers float32 only and int32 row indices, so a fit
  runs without JAX's truncation warnings.

JAX arrays are immutable; the training loop updates functionally, so they work
as they are. Nothing here imports JAX until the backend is used; listing it
reads the environment and the installed files only.

Its accelerator (:mod:`anyglm.backends.jax_jit`) compiles the portable training
step with ``jax.jit``, a block of minibatches as one ``lax.scan``, for every
dense fit: without it each step would dispatch its operations one by one.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from typing import Any

import numpy as np
from anyglm.accelerate import AcceleratorSpec
from anyglm.backend import Backend
from anyglm.errors import BackendUnavailableError
from anyglm.hookspecs import hookimpl

from .cupy import _cuda_driver

__all__ = ["JaxBackend"]

#: Integer and complex dtypes that JAX narrows without x64.
_NARROWED = {"int64": "int32", "uint64": "uint32", "complex128": "complex64"}
#: GPU plugins of JAX (``pip install "jax[cuda12]"`` and successors).
_CUDA_PLUGINS = ("jax_cuda12_plugin", "jax_cuda13_plugin")


class JaxBackend(Backend):
    """JAX on its CPU and GPU devices, with float64 only when x64 is enabled.

    Devices are JAX ``Device`` objects (``jax.devices()``, the default first,
    then the CPU when the default is a GPU).

    Examples
    --------
    >>> import anyglm
    >>> be = anyglm.get_backend("jax")
    >>> be.name, be.modules
    ('jax', ('jax', 'jaxlib'))
    """

    name = "jax"
    modules = ("jax", "jaxlib")
    install_hint = 'pip install "anyglm[jax]"'

    def _probe(self) -> str | None:
        if importlib.util.find_spec("jax") is None:
            return "JAX is not installed"
        if importlib.util.find_spec("jaxlib") is None:
            return "jaxlib is not installed (JAX needs it to run)"
        return None

    @property
    def unavailable_reason(self) -> str | None:
        # Listings show the reason alone, so it names the fix too (require() adds the
        # install hint to the bare reason itself).
        reason = self._unavailable_reason
        return None if reason is None else f"{reason}; install with {self.install_hint}"

    def _load_namespace(self) -> Any:
        try:
            import jax.numpy as xp
        except Exception as exc:  # a broken jaxlib or a bad JAX_* variable surfaces here
            raise BackendUnavailableError(
                f"backend 'jax' failed to import JAX: {type(exc).__name__}: {exc}"
            ) from exc
        if not hasattr(xp, "__array_namespace_info__"):
            raise BackendUnavailableError(
                "backend 'jax' needs jax.numpy with the Array API (JAX >= 0.4.35); "
                f"upgrade with {self.install_hint}"
            )
        return xp

    # -- devices and dtypes ------------------------------------------------------------

    def describe_devices(self) -> list[str]:
        if not self.is_available():
            return []
        if "jax" in sys.modules:  # already imported: ask JAX itself
            try:
                # "platform:id" in every JAX release (str() gave "TFRT_CPU_0" before 0.5).
                return [f"{d.platform}:{d.id}" for d in self.devices()]
            except Exception:  # listing must not crash on an odd driver
                return []
        has_plugin = any(importlib.util.find_spec(p) is not None for p in _CUDA_PLUGINS)
        # JAX_PLATFORMS (e.g. "cpu" or "cuda") restricts what JAX will initialise.
        platforms = os.environ.get("JAX_PLATFORMS", "").lower()
        gpu_allowed = not platforms or "cuda" in platforms or "gpu" in platforms
        n_gpus = _cuda_driver()[0] if has_plugin and gpu_allowed else 0
        cpu = ["cpu:0"] if not platforms or "cpu" in platforms else []
        return [f"gpu:{i}" for i in range(n_gpus)] + cpu

    def devices(self) -> list[Any]:
        self.require()
        import jax

        devs = list(jax.devices())  # the default platform's devices, GPUs where present
        try:
            cpus = jax.devices("cpu")
        except RuntimeError:  # JAX_PLATFORMS excludes the CPU
            cpus = []
        return devs + [d for d in cpus if d not in devs]

    def default_device(self) -> Any:
        self.require()
        import jax

        return jax.devices()[0]

    def float_dtypes(self, device: Any = None) -> tuple[str, ...]:
        return ("float32", "float64") if x64_enabled() else ("float32",)

    def index_dtype(self, device: Any = None) -> str:
        return "int64" if x64_enabled() else "int32"

    def dtype(self, name: str, device: Any = None) -> Any:
        if name in _NARROWED and not x64_enabled():
            raise ValueError(
                f"backend 'jax' has no {name} without 64-bit mode; use "
                f"{_NARROWED[name]} (backend.index_dtype() for row indices) or enable it "
                "with JAX_ENABLE_X64=1 or jax.config.update('jax_enable_x64', True)"
            )
        return super().dtype(name, device)

    # -- arrays in and out -------------------------------------------------------------

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        xp = self.xp
        a = np.asarray(a)
        if dtype is None and not x64_enabled():
            dtype = _narrow(a)
        target = None if dtype is None else self.dtype(dtype, device)
        return xp.asarray(a, dtype=target, device=device)

    def to_numpy(self, x: Any) -> np.ndarray:
        # np.asarray would give a read-only view of JAX's buffer on the CPU.
        return np.array(x)


def x64_enabled() -> bool:
    """Whether JAX runs with 64-bit types, without importing JAX to find out.

    Once JAX is imported its configuration decides (``jax_enable_x64``, which
    ``jax.config.update`` changes); before, the ``JAX_ENABLE_X64`` variable
    that JAX will read at import.

    Examples
    --------
    >>> from anyglm.backends.jax import x64_enabled
    >>> isinstance(x64_enabled(), bool)
    True
    """
    jax = sys.modules.get("jax")
    config = getattr(jax, "config", None)
    if config is not None:
        return bool(config.jax_enable_x64)
    # JAX's own parsing (jax._src.config.bool_env); it refuses other values at import.
    value = os.environ.get("JAX_ENABLE_X64", "0").strip().lower()
    return value in ("y", "yes", "t", "true", "on", "1")


def _narrow(a: np.ndarray) -> str | None:
    """The 32-bit dtype JAX would store ``a`` in without x64, checked to hold its values."""
    name = a.dtype.name
    if name == "float64":
        return "float32"
    narrow = _NARROWED.get(name)
    if narrow is None or narrow.startswith("complex") or a.size == 0:
        return narrow
    info = np.iinfo(narrow)
    low, high = a.min(), a.max()
    if low < info.min or high > info.max:
        raise ValueError(
            f"backend 'jax' without 64-bit mode stores integers as {narrow}, which cannot hold "
            f"the values {low}..{high} of this {name} array; enable 64-bit mode with "
            "JAX_ENABLE_X64=1 or jax.config.update('jax_enable_x64', True)"
        )
    return narrow


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(JaxBackend())


@hookimpl
def anyglm_accelerator(backend: Any, spec: AcceleratorSpec) -> Any:
    # Exactly this backend: a subclass may bring other arrays. Importing the module
    # imports no JAX; the first block does.
    if type(backend) is not JaxBackend:
        return None
    from . import jax_jit

    return jax_jit.JaxAccelerator(spec, backend) if jax_jit.declares(spec) else None
