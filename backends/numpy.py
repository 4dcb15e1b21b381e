"""The NumPy backend: the reference every other backend is compared with.

It offers one accelerator: numba's compiled pass over a block
(:mod:`anyglm.backends.numba_sgd`) for the specs that module implements, when
numba is installed (``pip install "anyglm[numba]"``) and not turned off
(``ANYGLM_DISABLE_NUMBA=1``), on blocks of at least
``ANYGLM_NUMBA_MIN_ELEMENTS`` values (default 2**20, so that small fits do not
pay numba's import and first compilation). Everything else runs the portable
loop.
"""

from __future__ import annotations

import importlib.util
import warnings
from typing import Any

import numpy as np
from anyglm._env import env_count, env_flag
from anyglm.accelerate import AcceleratorSpec, BlockResult, BlockTask
from anyglm.backend import Backend
from anyglm.hookspecs import hookimpl

#: Default of ``ANYGLM_NUMBA_MIN_ELEMENTS``: below this many values in a block the
#: portable loop runs (about 4 MB of float32).
MIN_ELEMENTS = 1 << 20

#: Built-in models numba's loop compiles: name -> the module that defines them.
#: Checked by module as well as by name, so a third-party model registered as
#: "softmax" (with the built-in disabled) never runs the built-in's compiled loss.
COMPILED_MODELS = {
    "linear": "anyglm.plugins.linear",
    "logistic": "anyglm.plugins.logistic",
    "softmax": "anyglm.plugins.softmax",
}


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

    def diagnostics(self) -> dict[str, Any]:
        try:
            min_elements: int | str = min_elements_setting()
        except ValueError as exc:  # a bad setting is reported, not fatal
            min_elements = f"error: {exc}"
        return {
            "numba": {
                "version": _version("numba"),
                "enabled": numba_available(),
                "models": list(COMPILED_MODELS),
                "min_elements": min_elements,
            }
        }


def numba_disabled() -> bool:
    """Whether ``ANYGLM_DISABLE_NUMBA`` turns the compiled loop off.

    Examples
    --------
    >>> import os
    >>> from anyglm.backends.numpy import numba_disabled
    >>> "ANYGLM_DISABLE_NUMBA" in os.environ or not numba_disabled()
    True
    """
    return env_flag("ANYGLM_DISABLE_NUMBA")


def numba_available() -> bool:
    """Whether numba is installed (without importing it), loads, and is not turned off.

    Examples
    --------
    >>> from anyglm.backends.numpy import numba_available
    >>> isinstance(numba_available(), bool)
    True
    """
    return (
        not numba_disabled()
        and _import_error is None
        and importlib.util.find_spec("numba") is not None
    )


def min_elements_setting() -> int:
    """``ANYGLM_NUMBA_MIN_ELEMENTS``, or :data:`MIN_ELEMENTS` when it is not set.

    Raises
    ------
    ValueError
        When the variable is not a whole number of 0 or more.

    Examples
    --------
    >>> import os
    >>> from anyglm.backends.numpy import MIN_ELEMENTS, min_elements_setting
    >>> "ANYGLM_NUMBA_MIN_ELEMENTS" in os.environ or min_elements_setting() == MIN_ELEMENTS
    True
    """
    return env_count("ANYGLM_NUMBA_MIN_ELEMENTS", MIN_ELEMENTS)


#: Why the compiled loop could not be imported in this process, once it failed.
_import_error: str | None = None


def _compiled() -> Any:
    """The compiled loop's module, or ``None`` (with one warning) when numba fails to load.

    numba can fail at import in ways ``find_spec`` does not see: a version
    that does not support this NumPy, or no writable folder for its cache.
    Training then goes on with the portable loop.
    """
    global _import_error
    if _import_error is not None:
        return None
    try:
        from . import numba_sgd
    except Exception as exc:
        _import_error = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"anyglm could not load its numba loop ({_import_error}); training goes on "
            f"with the portable loop. Set ANYGLM_DISABLE_NUMBA=1 to skip numba.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None
    return numba_sgd


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def declares(spec: AcceleratorSpec) -> bool:
    """Whether numba's loop implements ``spec`` exactly (numba itself not consulted).

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.accelerate import AcceleratorSpec
    >>> from anyglm.backends.numpy import declares
    >>> from anyglm.optim import OptimizerSpec
    >>> softmax = anyglm.get_model("softmax")
    >>> declares(AcceleratorSpec(softmax, "softmax", OptimizerSpec(), "float32", 1, False, False))
    True
    >>> declares(AcceleratorSpec(softmax, "softmax", OptimizerSpec(momentum=0.9), "float32", 1,
    ...                          False, False))
    False
    """
    opt = spec.optimizer
    return (
        COMPILED_MODELS.get(spec.model_name) == type(spec.model).__module__
        and opt.schedule in ("constant", "adaptive")  # the rate is fixed within a block
        and opt.momentum == 0
        and opt.penalty in ("l2", "none")
        and spec.n_configs == 1
        and spec.dtype in ("float32", "float64")
        and not spec.sparse
    )


class NumbaAccelerator:
    """numba's compiled pass over a block, for one fit (see the module docstring).

    Returns ``None`` (the portable loop runs) for blocks of fewer than
    ``min_elements`` values, and when numba fails to load.

    Parameters
    ----------
    spec : AcceleratorSpec
        A spec :func:`declares` accepts.
    min_elements : int, optional
        Smallest block (``X.size``) it compiles for; default
        ``ANYGLM_NUMBA_MIN_ELEMENTS`` or 2**20.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.accelerate import AcceleratorSpec, BlockTask
    >>> from anyglm.backends.numpy import NumbaAccelerator
    >>> from anyglm.optim import Columns, OptimizerSpec
    >>> spec = AcceleratorSpec(anyglm.get_model("linear"), "linear", OptimizerSpec(),
    ...                        "float64", 1, False, False)
    >>> task = BlockTask(np.ones((4, 1)), np.full((4, 1), 2.0), None, np.array([3, 1, 0, 2]),
    ...                  2, np.zeros((1, 1)), np.zeros(1), {}, 0, Columns(0.25),
    ...                  np.array([0.25]), np.array([0.0]))
    >>> res = NumbaAccelerator(spec, min_elements=0)(task)
    >>> res.W.tolist(), res.b.tolist(), res.loss_sum.tolist()
    ([[0.75]], [0.75], [5.0])
    """

    def __init__(self, spec: AcceleratorSpec, *, min_elements: int | None = None) -> None:
        if min_elements is not None and int(min_elements) < 0:
            raise ValueError(f"min_elements must be 0 or more, got {min_elements!r}")
        self.spec = spec
        # The environment variable is read when a block runs, so a bad value is the
        # fit's ValueError, not a failure of this plugin's hook.
        self.min_elements = None if min_elements is None else int(min_elements)
        self._row_major: tuple[Any, np.ndarray] | None = None

    def _rows(self, X: np.ndarray) -> np.ndarray:
        # The loop reads X row by row; reading a column-major array that way
        # touches one cache line per value (100 x slower on a pandas frame's
        # .values), so a row-major copy is made, once per fit.
        if X.flags.c_contiguous:
            return X
        if self._row_major is None or self._row_major[0] is not X:
            self._row_major = (X, np.ascontiguousarray(X))
        return self._row_major[1]

    def __call__(self, task: BlockTask) -> BlockResult | None:
        X = task.X
        dtype = np.dtype(self.spec.dtype)
        threshold = min_elements_setting() if self.min_elements is None else self.min_elements
        if X.size < max(threshold, 1) or X.dtype != dtype or task.Y.dtype != dtype:
            return None
        if task.weights is not None and task.weights.dtype != dtype:
            return None
        loops = _compiled()
        if loops is None:
            return None
        penalised = self.spec.optimizer.penalty == "l2"
        return loops.run_block(task, loops.LINKS[self.spec.model_name], self._rows(X), penalised)


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(NumpyBackend())


@hookimpl
def anyglm_accelerator(backend: Any, spec: AcceleratorSpec) -> Any:
    # Exactly this backend: a subclass may bring another namespace or arrays.
    if type(backend) is not NumpyBackend or not declares(spec) or not numba_available():
        return None
    return NumbaAccelerator(spec)
