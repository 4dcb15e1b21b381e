"""The NumPy backend: the reference every other backend is compared with."""

from __future__ import annotations

from typing import Any

import numpy as np
from anyglm.backend import Backend
from anyglm.hookspecs import hookimpl


class NumpyBackend(Backend):
    """NumPy on the host CPU, through array-api-compat's NumPy namespace."""

    name = "numpy"
    modules = ("numpy",)

    def _load_namespace(self) -> Any:
        import array_api_compat.numpy as xp

        return xp

    def devices(self) -> list[Any]:
        return ["cpu"]

    def default_device(self) -> Any:
        return "cpu"

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        # The "cpu" device is NumPy's only one; passing it through keeps the
        # call portable while avoiding a copy when the dtype already matches.
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x)

    def device_of(self, x: Any) -> Any:
        return "cpu"


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(NumpyBackend())


@hookimpl
def anyglm_epoch_kernel(backend: Any, model: Any) -> Any:
    # Exactly this backend: a subclass may bring another namespace or arrays.
    if type(backend) is NumpyBackend:
        from .numba_epoch import NumbaEpochKernel, numba_available
        from .numpy_epoch import NumpyEpochKernel

        if numba_available():  # compiled loop for large fits, NumPy kernel for the rest
            return NumbaEpochKernel(model, backend.xp)
        return NumpyEpochKernel(model, backend.xp)
    return None
