"""The PyTorch backend: tensors on the CPU and on CUDA GPUs.

PyTorch is not Array-API compliant itself; array-api-compat's
``array_api_compat.torch`` namespace is, and all math goes through it.
Nothing here imports PyTorch until the backend is used: listing backends
finds it with :func:`importlib.util.find_spec` and counts GPUs through the
CUDA driver (as the CuPy backend does), so a machine without PyTorch lists
the backend as unavailable with the install hint, and one with it pays no
import for a listing. Randomness stays on the host (a NumPy Generator), so
``torch.Generator`` is never used and every backend sees the same minibatches.

Its accelerator (:mod:`anyglm.backends.torch_compile`) compiles the portable
training step with ``torch.compile`` for every dense fit, on blocks of at least
``ANYGLM_TORCH_COMPILE_MIN_ELEMENTS`` values (default 2**20); where compiling
does not work on the machine, the portable loop trains (eager PyTorch).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import numpy as np
from anyglm.accelerate import AcceleratorSpec
from anyglm.backend import Backend
from anyglm.errors import BackendUnavailableError
from anyglm.hookspecs import hookimpl

from .cupy import _cuda_driver

__all__ = ["TorchBackend"]


class TorchBackend(Backend):
    """PyTorch on the CPU and on every CUDA GPU it sees, through ``array_api_compat.torch``.

    Devices are ``torch.device`` objects (``cpu``, ``cuda:0``, ...); strings
    such as ``"cuda:1"`` are accepted wherever a device is asked for. Both
    float32 and float64 are supported on every device.

    Examples
    --------
    >>> import anyglm
    >>> be = anyglm.get_backend("torch")
    >>> be.name, be.install_hint
    ('torch', 'pip install "anyglm[torch]"')
    """

    name = "torch"
    modules = ("torch",)
    install_hint = 'pip install "anyglm[torch]"'

    def _probe(self) -> str | None:
        if importlib.util.find_spec("torch") is None:
            return "PyTorch is not installed"
        if importlib.util.find_spec("array_api_compat.torch") is None:
            return "array-api-compat has no PyTorch namespace (upgrade array-api-compat)"
        return None

    @property
    def unavailable_reason(self) -> str | None:
        # Listings show the reason alone, so it names the fix too (require() adds the
        # install hint to the bare reason itself).
        reason = self._unavailable_reason
        return None if reason is None else f"{reason}; install with {self.install_hint}"

    def _load_namespace(self) -> Any:
        try:
            import array_api_compat.torch as xp
        except Exception as exc:  # a broken install surfaces only on import
            raise BackendUnavailableError(
                f"backend 'torch' failed to import PyTorch: {type(exc).__name__}: {exc}"
            ) from exc
        return xp

    def describe_devices(self) -> list[str]:
        if not self.is_available():
            return []
        if "torch" in sys.modules:  # already imported: ask PyTorch itself
            return super().describe_devices()
        n_gpus = _cuda_driver()[0] if _torch_has_cuda() else 0
        return ["cpu"] + [f"cuda:{i}" for i in range(n_gpus)]

    def devices(self) -> list[Any]:
        self.require()
        import torch

        devs = [torch.device("cpu")]
        if torch.cuda.is_available():
            devs += [torch.device("cuda", i) for i in range(torch.cuda.device_count())]
        return devs

    def default_device(self) -> Any:
        self.require()
        import torch

        return torch.device("cpu")

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        xp = self.xp
        import torch

        target = None if dtype is None else self.dtype(dtype, device)
        dev = None if device is None else torch.device(device)
        a = np.asarray(a)
        if not a.flags.writeable or any(s < 0 for s in a.strides):
            # torch warns on read-only arrays and cannot view negative strides; a copy
            # also keeps the tensor from aliasing an array the caller protected.
            a = np.array(a, order="C")
        return xp.asarray(a, dtype=target, device=dev)

    def to_numpy(self, x: Any) -> np.ndarray:
        return np.asarray(x.detach().cpu().resolve_conj().resolve_neg().numpy())

    def device_of(self, x: Any) -> Any:
        return x.device

    def diagnostics(self) -> dict[str, Any]:
        from . import torch_compile as tc

        try:
            min_elements: int | str = tc.min_elements_setting()
        except ValueError as exc:  # a bad setting is reported, not fatal
            min_elements = f"error: {exc}"
        return {
            "compile": {
                "enabled": not tc.compile_disabled(),
                "cpu_toolchain": tc.toolchain_problem("cpu") or "ok",
                "min_elements": min_elements,
            }
        }


def _torch_has_cuda() -> bool:
    """Whether the installed PyTorch is a CUDA build, read from its files (no import)."""
    spec = importlib.util.find_spec("torch")
    if spec is None or not spec.submodule_search_locations:
        return False
    lib = Path(next(iter(spec.submodule_search_locations))) / "lib"
    names = ("libtorch_cuda.so", "torch_cuda.dll")
    return any((lib / name).exists() for name in names)


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(TorchBackend())


@hookimpl
def anyglm_accelerator(backend: Any, spec: AcceleratorSpec) -> Any:
    # Exactly this backend: a subclass may bring other tensors. Importing the module
    # imports no PyTorch; the first block does.
    if type(backend) is not TorchBackend:
        return None
    from . import torch_compile

    return (
        torch_compile.TorchCompileAccelerator(spec, backend)
        if torch_compile.declares(spec)
        else None
    )
