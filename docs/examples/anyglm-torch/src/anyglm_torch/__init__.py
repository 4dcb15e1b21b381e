"""anyglm-torch: an example backend plugin for anyglm.

It adds the backend ``"torch"``: PyTorch tensors on the CPU and on every
CUDA GPU PyTorch sees, through array-api-compat's PyTorch namespace. With it
installed, every anyglm estimator accepts tensors and returns tensors::

    import anyglm, torch

    clf = anyglm.LogisticRegression().fit(torch.as_tensor(X), torch.as_tensor(y))
    clf.coef_  # a torch.Tensor on the device of X

Importing this module (which anyglm does to list plugins) never imports
PyTorch; PyTorch is imported when the backend is probed or used.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import anyglm
import numpy as np

__all__ = ["TorchBackend", "anyglm_register_backends"]
__version__ = "0.1.0"


class TorchBackend(anyglm.Backend):
    """PyTorch on the CPU and on CUDA GPUs, through ``array_api_compat.torch``.

    Devices are ``torch.device`` objects (``cpu``, ``cuda:0``, ...); strings
    such as ``"cuda:1"`` are accepted wherever a device is asked for.
    """

    name = "torch"
    modules = ("torch",)
    install_hint = "pip install anyglm-torch"

    def _probe(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "PyTorch is not installed"
        try:
            import torch  # noqa: F401
        except Exception as exc:  # a broken install (missing shared library, ...)
            return f"PyTorch failed to import: {type(exc).__name__}: {exc}"
        try:
            import array_api_compat.torch  # noqa: F401
        except Exception as exc:  # array-api-compat too old for this torch
            return f"array_api_compat.torch failed to import: {type(exc).__name__}: {exc}"
        return None

    def _load_namespace(self) -> Any:
        import array_api_compat.torch as xp

        return xp

    def devices(self) -> list[Any]:
        import torch

        devs = [torch.device("cpu")]
        if torch.cuda.is_available():
            devs += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return devs

    def default_device(self) -> Any:
        import torch

        return torch.device("cpu")

    def float_dtypes(self, device: Any = None) -> tuple[str, ...]:
        return ("float32", "float64")

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        import torch

        target = None if dtype is None else self.dtype(dtype, device)
        dev = None if device is None else torch.device(device)
        a = np.asarray(a)
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            # torch warns on read-only arrays and cannot view negative strides.
            a = np.ascontiguousarray(a).copy()
        return torch.asarray(a, dtype=target, device=dev)

    def to_numpy(self, x: Any) -> np.ndarray:
        return x.detach().cpu().resolve_conj().resolve_neg().numpy()

    def device_of(self, x: Any) -> Any:
        return x.device


@anyglm.hookimpl
def anyglm_register_backends(register: Any) -> None:
    """Register the ``"torch"`` backend with anyglm."""
    register(TorchBackend())
