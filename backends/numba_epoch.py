"""A compiled epoch for the built-in models on the NumPy backend, when numba is installed.

The NumPy kernel (:mod:`anyglm.backends.numpy_epoch`) gathers each minibatch
into a buffer and runs two skinny matrix products on it; the gather reads X
from memory and writes it again, and the products stream the buffer twice.
Here one compiled loop reads each row of the minibatch straight from ``X``,
eight rows at a time: their linear predictors, the model's loss and
derivative, and their share of the gradient, while the rows are still in
cache. On 60000 x 784 float32 data, one core, an epoch took 0.58-0.81 x the
time of the NumPy kernel for softmax and 0.39 x for logistic and linear
regression (docs/benchmarks.md).

The same minibatches and update as the portable loop; only the order of
floating-point additions differs (within the tolerance the conformance suite
allows between backends). Used only where it can help and is known to be
right: the built-in linear, logistic and softmax models, float32 or float64,
and training data of at least ``ANYGLM_NUMBA_MIN_ELEMENTS`` values (default
2**20), so that small fits do not pay numba's import and first compilation.
Several configurations side by side (``tune``) make the matrix products wide
enough for BLAS to win; those epochs run the NumPy kernel's loop with only
the loss step compiled (0.3 x the time of its NumPy version for 16 softmax
configurations). Everything else goes to the NumPy kernel.
``ANYGLM_DISABLE_NUMBA=1`` turns both off.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from typing import Any

import numpy as np
from anyglm._env import env_flag
from anyglm.fastpath import EpochTask
from anyglm.model import Model

from .numpy_epoch import NumpyEpochKernel

__all__ = [
    "COMPILED_MODELS",
    "MIN_ELEMENTS",
    "NumbaEpochKernel",
    "min_elements_setting",
    "numba_available",
    "numba_disabled",
]

#: Default of ``ANYGLM_NUMBA_MIN_ELEMENTS``: below this many values in X a fit
#: keeps the NumPy kernel (about 4 MB of float32).
MIN_ELEMENTS = 1 << 20

#: The models the compiled loop knows, in the order of their codes in ``_numba_loops``.
COMPILED_MODELS = ("linear", "logistic", "softmax")
_LINKS = {name: code for code, name in enumerate(COMPILED_MODELS)}


def numba_disabled() -> bool:
    """Whether ``ANYGLM_DISABLE_NUMBA`` turns the compiled kernel off.

    Examples
    --------
    >>> import os
    >>> from anyglm.backends.numba_epoch import numba_disabled
    >>> numba_disabled() == (os.environ.get("ANYGLM_DISABLE_NUMBA", "") not in
    ...                      ("", "0", "false", "no"))
    True
    """
    return env_flag("ANYGLM_DISABLE_NUMBA")


def numba_available() -> bool:
    """Whether numba is installed (without importing it) and not turned off.

    Examples
    --------
    >>> from anyglm.backends.numba_epoch import numba_available
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
    >>> from anyglm.backends.numba_epoch import MIN_ELEMENTS, min_elements_setting
    >>> "ANYGLM_NUMBA_MIN_ELEMENTS" in os.environ or min_elements_setting() == MIN_ELEMENTS
    True
    """
    raw = os.environ.get("ANYGLM_NUMBA_MIN_ELEMENTS", "").strip()
    if not raw:
        return MIN_ELEMENTS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(
            f"ANYGLM_NUMBA_MIN_ELEMENTS must be a whole number of values, got {raw!r}; "
            f"unset it for the default {MIN_ELEMENTS}"
        ) from None
    if value < 0:
        raise ValueError(f"ANYGLM_NUMBA_MIN_ELEMENTS must be 0 or more, got {value}")
    return value


#: Why the compiled loop could not be imported in this process, once it failed.
_import_error: str | None = None


def _compiled_loops() -> Any:
    """The compiled loops' module, or ``None`` (with one warning) when numba fails to load.

    numba can fail at import in ways ``find_spec`` does not see: a version
    that does not support this NumPy, or no writable folder for its cache.
    The fit then goes on with the NumPy kernel.
    """
    global _import_error
    if _import_error is not None:
        return None
    try:
        from . import _numba_loops
    except Exception as exc:
        _import_error = f"{type(exc).__name__}: {exc}"
        warnings.warn(
            f"anyglm could not load its numba loop ({_import_error}); training goes on "
            f"with the NumPy kernel. Set ANYGLM_DISABLE_NUMBA=1 to skip numba.",
            RuntimeWarning,
            stacklevel=2,
        )
        return None
    return _numba_loops


def _builtin_link(model: Model) -> int | None:
    """The compiled loss of a built-in model, or ``None`` for any other model."""
    from anyglm.plugins.linear import Linear
    from anyglm.plugins.logistic import Logistic
    from anyglm.plugins.softmax import Softmax

    # Exactly these classes: a subclass may change the loss.
    builtin = {Linear: "linear", Logistic: "logistic", Softmax: "softmax"}
    name = builtin.get(type(model))
    return None if name is None else _LINKS[name]


def _scalar(value: Any) -> float | None:
    """One float for a scalar or an array holding one value repeated, else ``None``."""
    a = np.asarray(value)
    if a.ndim == 0:
        return float(a)
    flat = a.reshape(-1)
    if flat.size and bool(np.all(flat == flat[0])):
        return float(flat[0])
    return None


class NumbaEpochKernel:
    """The NumPy backend's :class:`~anyglm.fastpath.EpochKernel` when numba is installed.

    Runs the compiled loop for the tasks it covers (see the module's
    docstring) and hands every other task to a :class:`NumpyEpochKernel`.

    Parameters
    ----------
    model : Model
    xp : namespace
        The NumPy backend's array namespace.
    min_elements : int, optional
        Smallest ``X.size`` for the compiled loop; default
        ``ANYGLM_NUMBA_MIN_ELEMENTS`` (read at each epoch; a value that is not
        a whole number of 0 or more makes the fit raise ``ValueError``) or 2**20.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.fastpath import EpochTask
    >>> from anyglm.backends.numba_epoch import NumbaEpochKernel
    >>> kernel = NumbaEpochKernel(anyglm.get_model("linear"), anyglm.get_backend("numpy").xp,
    ...                           min_elements=0)
    >>> task = EpochTask(X=np.ones((4, 1)), Y=np.full((4, 1), 2.0), weights=None,
    ...                  order=np.array([3, 1, 0, 2]), batch_size=2, W=np.zeros((1, 1)),
    ...                  b=np.zeros(1), learning_rate=0.25, alpha=0.0, n_configs=1)
    >>> W, b, loss_sum = kernel(task)
    >>> W.tolist(), b.tolist(), loss_sum.tolist()
    ([[0.75]], [0.75], [5.0])
    """

    def __init__(self, model: Model, xp: Any, *, min_elements: int | None = None) -> None:
        self.model = model
        self.fallback = NumpyEpochKernel(model, xp)
        if min_elements is not None and int(min_elements) < 0:
            raise ValueError(f"min_elements must be 0 or more, got {min_elements!r}")
        self._min_elements = None if min_elements is None else int(min_elements)
        self._link = _builtin_link(model)
        self._with_compiled_loss = (
            None if self._link is None else _CompiledLossKernel(model, xp, self._link)
        )

    def _eligible(self, task: EpochTask) -> bool:
        """A built-in model, one float dtype throughout, enough data, numba there."""
        X, Y, W = task.X, task.Y, task.W
        if self._link is None:
            return False  # before the threshold: other models never read it
        threshold = min_elements_setting() if self._min_elements is None else self._min_elements
        if X.size < max(threshold, 1):
            return False
        dtype = W.dtype
        if dtype not in (np.float32, np.float64) or X.dtype != dtype or Y.dtype != dtype:
            return False
        if task.weights is not None and task.weights.dtype != dtype:
            return False
        return numba_available()

    def compiled_for(self, task: EpochTask) -> bool:
        """Whether ``task`` runs through the compiled loop.

        Otherwise it runs through the NumPy kernel: with its loss step compiled
        for the built-in models on large data (several configurations, or
        learning rates or penalties that differ between columns), as it is for
        the rest.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.fastpath import EpochTask
        >>> from anyglm.backends.numba_epoch import NumbaEpochKernel
        >>> kernel = NumbaEpochKernel(anyglm.get_model("softmax"), None, min_elements=100)
        >>> task = EpochTask(np.ones((10, 5)), np.ones((10, 2)), None, None, 4,
        ...                  np.zeros((5, 2)), np.zeros(2), 0.1, 0.0, 1)
        >>> kernel.compiled_for(task)  # 50 values, fewer than 100
        False
        """
        return self._eligible(task) and self._one_config(task)

    @staticmethod
    def _one_config(task: EpochTask) -> bool:
        return (
            task.n_configs == 1
            and _scalar(task.learning_rate) is not None
            and _scalar(task.alpha) is not None
        )

    def __call__(self, task: EpochTask) -> tuple[Any, Any, Any]:
        loops = _compiled_loops() if self._eligible(task) else None
        if loops is None:
            return self.fallback(task)
        if not self._one_config(task):
            # Wide products (tune's configurations side by side) run best in BLAS.
            assert self._with_compiled_loss is not None  # _eligible checked the model
            self._with_compiled_loss.loops = loops
            return self._with_compiled_loss(task)

        X, Y, weights = task.X, task.Y, task.weights
        # Row-major copies of column-major inputs, made once per training run; also
        # without shuffling (unlike the NumPy kernel, whose BLAS reads column-major
        # slices well): the loop reads X row by row.
        X, Y, weights = self.fallback._rows(X), self.fallback._rows(Y), self.fallback._rows(weights)
        dtype = task.W.dtype.type
        n = X.shape[0]
        order = np.arange(n, dtype=np.int64) if task.order is None else task.order
        order = np.ascontiguousarray(order, dtype=np.int64)
        lr, alpha = _scalar(task.learning_rate), _scalar(task.alpha)
        link = self._link
        assert lr is not None and alpha is not None and link is not None  # compiled_for checked
        # The epoch's own copies: the task's W and b stay as they were.
        WT = np.array(task.W.T, dtype=dtype, order="C", copy=True)
        b = np.array(task.b, dtype=dtype, copy=True)
        has_w = weights is not None
        w = weights if has_w else np.ones(1, dtype=dtype)
        total = loops.glm_epoch(
            X, Y, w, has_w, order, int(min(task.batch_size, n)), WT, b,
            dtype(lr), dtype(1 - lr * alpha), link,
        )  # fmt: skip
        return np.ascontiguousarray(WT.T), b, np.asarray([total], dtype=dtype)


class _CompiledLossKernel(NumpyEpochKernel):
    """The NumPy kernel with the loss step of a built-in model compiled.

    Gathers and matrix products as the NumPy kernel does them; the dozen NumPy
    passes of the loss and its derivative over the ``(m, K, c)`` predictors
    become two compiled passes (and NumPy's vectorised ``exp`` for softmax).
    """

    def __init__(self, model: Model, xp: Any, link: int) -> None:
        super().__init__(model, xp)
        self.link = link
        self.loops: Any = None  # the compiled module, set by NumbaEpochKernel

    def _loss_step(
        self, Z: np.ndarray, Yb: np.ndarray, wb: np.ndarray | None, lr: Any, K: int, c: int
    ) -> tuple[np.ndarray, np.ndarray]:
        loops = self.loops
        m, kc = Z.shape
        lr_cols = np.ascontiguousarray(np.broadcast_to(np.asarray(lr, dtype=Z.dtype), (kc,)))
        has_w = wb is not None
        w = wb if wb is not None else np.ones(1, dtype=Z.dtype)
        totals = np.zeros(K)
        if self.link == _LINKS["softmax"]:
            yz = np.empty((m, 2 * K))
            loops.softmax_shift(Z, Yb, K, yz)
            np.exp(Z, out=Z)
            loops.softmax_finish(Z, Yb, w, has_w, lr_cols, 1.0 / m, K, yz, totals)
        else:
            loops.rows_step(Z, Yb, w, has_w, lr_cols, 1.0 / m, K, self.link, totals)
        return totals.astype(Z.dtype), Z
