"""The CuPy backend (NVIDIA GPUs).

Nothing here imports CuPy until the backend is probed or used, and probing
never raises: a machine without CuPy or without a GPU lists the backend as
unavailable with the reason.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from anyglm.backend import Backend
from anyglm.hookspecs import hookimpl


class CupyBackend(Backend):
    """CuPy on NVIDIA GPUs, through array-api-compat's CuPy namespace."""

    name = "cupy"
    modules = ("cupy",)
    install_hint = "pip install 'anyglm[cupy]' on a machine with an NVIDIA GPU and driver"

    def _probe(self) -> str | None:
        if importlib.util.find_spec("cupy") is None:
            return "CuPy is not installed"
        try:
            import cupy
        except Exception as exc:  # a broken CUDA install surfaces here
            return f"CuPy failed to import: {type(exc).__name__}: {exc}"
        try:
            count = cupy.cuda.runtime.getDeviceCount()
        except Exception as exc:  # no driver, no device, or a driver too old
            return f"no usable CUDA GPU: {type(exc).__name__}: {exc}"
        if count < 1:
            return "no CUDA GPU found"
        return None

    def _load_namespace(self) -> Any:
        import array_api_compat.cupy as xp

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


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(CupyBackend())
