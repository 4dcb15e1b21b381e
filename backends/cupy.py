"""The CuPy backend (NVIDIA GPUs).

Nothing here imports CuPy until the backend is probed or used, and probing
never raises: a machine without CuPy or without a GPU lists the backend as
unavailable with the reason.
"""

from __future__ import annotations

import ctypes
import importlib.util
import sys
from typing import Any

import numpy as np
from anyglm.backend import Backend
from anyglm.errors import BackendUnavailableError
from anyglm.hookspecs import hookimpl


class CupyBackend(Backend):
    """CuPy on NVIDIA GPUs, through array-api-compat's CuPy namespace."""

    name = "cupy"
    modules = ("cupy",)
    install_hint = "pip install 'anyglm[cupy]' on a machine with an NVIDIA GPU and driver"

    def _probe(self) -> str | None:
        if importlib.util.find_spec("cupy") is None:
            return "CuPy is not installed"
        # Ask the CUDA driver directly: listing backends must not import CuPy.
        return _cuda_driver()[1]

    def describe_devices(self) -> list[str]:
        if not self.is_available():
            return []
        return [f"cuda:{i}" for i in range(_cuda_driver()[0])]

    def _load_namespace(self) -> Any:
        try:
            import array_api_compat.cupy as xp
        except Exception as exc:  # a broken CUDA toolkit surfaces only on import
            raise BackendUnavailableError(
                f"backend 'cupy' failed to import CuPy: {type(exc).__name__}: {exc}"
            ) from exc
        return xp

    def devices(self) -> list[Any]:
        import cupy

        return [cupy.cuda.Device(i) for i in range(cupy.cuda.runtime.getDeviceCount())]

    def default_device(self) -> Any:
        import cupy

        return cupy.cuda.Device()

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        import cupy

        target = None if dtype is None else self.dtype(dtype, device)
        if device is None:
            return cupy.asarray(a, dtype=target)
        with device:
            return cupy.asarray(a, dtype=target)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.get())

    def device_of(self, x: Any) -> Any:
        return x.device


def _cuda_driver() -> tuple[int, str | None]:
    """Number of GPUs the CUDA driver sees, and the reason when it is none."""
    name = "nvcuda.dll" if sys.platform == "win32" else "libcuda.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return 0, f"no NVIDIA driver found ({name} could not be loaded); CuPy needs an NVIDIA GPU"
    rc = lib.cuInit(0)
    if rc != 0:
        return 0, f"the CUDA driver failed to initialise (cuInit error {rc})"
    count = ctypes.c_int(0)
    rc = lib.cuDeviceGetCount(ctypes.byref(count))
    if rc != 0:
        return 0, f"the CUDA driver could not count GPUs (cuDeviceGetCount error {rc})"
    if count.value < 1:
        return 0, "the CUDA driver sees no GPU"
    return count.value, None


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(CupyBackend())
