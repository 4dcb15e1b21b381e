"""The array-api-strict backend: the portability proof.

array-api-strict implements the standard and nothing else, and has fake
devices, so code that runs here uses no NumPy-only feature and never mixes
devices by accident.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from anyglm.backend import Backend
from anyglm.hookspecs import hookimpl

# Devices whose dtype support our training loop satisfies ("no_x64" lacks the
# int64 index arrays used for shuffling).
_FLOAT32_ONLY = {"no_float64"}
_SKIPPED = {"no_x64"}


class ArrayApiStrictBackend(Backend):
    """array-api-strict on its CPU device and its fake devices."""

    name = "array_api_strict"
    modules = ("array_api_strict",)
    install_hint = "pip install 'anyglm[strict]'"

    def _probe(self) -> str | None:
        if importlib.util.find_spec("array_api_strict") is None:
            return "array-api-strict is not installed"
        return None

    def _load_namespace(self) -> Any:
        import array_api_strict

        return array_api_strict

    def devices(self) -> list[Any]:
        info = self.xp.__array_namespace_info__()
        return [d for d in info.devices() if _device_name(d) not in _SKIPPED]

    def float_dtypes(self, device: Any = None) -> tuple[str, ...]:
        if device is not None and _device_name(device) in _FLOAT32_ONLY:
            return ("float32",)
        return ("float32", "float64")

    def to_numpy(self, x: Any) -> np.ndarray:
        xp = self.xp
        host = x.to_device(xp.Device("CPU_DEVICE"))
        return np.asarray(host)


def _device_name(device: Any) -> str:
    # array_api_strict.Device keeps its name in ``_device``; repr is the fallback.
    return str(getattr(device, "_device", device))


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(ArrayApiStrictBackend())
