"""Optional fast paths: a backend may run a whole training epoch its own way.

The portable loop in :mod:`anyglm.trainer` is written once against the Array
API, allocates a new array for every intermediate and is the reference. A
backend plugin may implement the ``anyglm_epoch_kernel`` hook and return an
:class:`EpochKernel` that runs the same epoch faster: preallocated buffers,
in-place updates, gathers straight into them, fused kernels on a GPU. It sees
the same minibatches (the row order is drawn by the trainer) and must give the
same parameters up to rounding; the conformance suite checks that it does.

Set the environment variable ``ANYGLM_DISABLE_FAST_PATHS=1`` to train on the
portable path only (to rule a kernel out when results look wrong).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ._env import env_flag

if TYPE_CHECKING:
    from .backend import Backend
    from .model import Model

__all__ = ["EpochKernel", "EpochTask", "fast_paths_disabled", "find_epoch_kernel"]


@dataclass(frozen=True)
class EpochTask:
    """Everything one epoch needs; what an :class:`EpochKernel` receives.

    A kernel must not modify any of these arrays: ``X``, ``Y`` and ``weights``
    may be the caller's own, ``W`` and ``b`` are what the trainer falls back on.

    Attributes
    ----------
    X : array, shape (n, d)
        Features on the backend's device.
    Y : array, shape (n, c)
        Encoded targets (one-hot, a 0/1 column, or real values).
    weights : array of shape (n,) or None
        Per-row weights; the loss of a minibatch is ``sum(w * loss_rows) / m``.
    order : numpy.ndarray of int64, shape (n,), or None
        The rows of the epoch in order, drawn on the host by the trainer;
        ``None`` means ``0 .. n-1`` (no shuffling). Minibatch ``j`` is
        ``order[j * batch_size : (j + 1) * batch_size]``; the last one may be shorter.
    batch_size : int
    W : array, shape (d, K * c)
        Weights at the start of the epoch (the trainer keeps them to fall back
        on when the epoch diverges).
    b : array, shape (K * c,)
        Intercepts at the start of the epoch.
    learning_rate, alpha : float or array of shape (K * c,)
        One value for every column, or one per column on the device.
    n_configs : int
        ``K``, the number of configurations trained side by side.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.fastpath import EpochTask
    >>> task = EpochTask(X=np.ones((4, 2)), Y=np.ones((4, 1)), weights=None, order=None,
    ...                  batch_size=2, W=np.zeros((2, 1)), b=np.zeros(1), learning_rate=0.1,
    ...                  alpha=0.0, n_configs=1)
    >>> task.n_rows, task.n_outputs
    (4, 1)
    """

    X: Any
    Y: Any
    weights: Any
    order: np.ndarray | None
    batch_size: int
    W: Any
    b: Any
    learning_rate: Any
    alpha: Any
    n_configs: int

    @property
    def n_rows(self) -> int:
        """Rows of the training data.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.fastpath import EpochTask
        >>> EpochTask(np.ones((3, 1)), np.ones((3, 1)), None, None, 2, np.zeros((1, 1)),
        ...           np.zeros(1), 0.1, 0.0, 1).n_rows
        3
        """
        return int(self.X.shape[0])

    @property
    def n_outputs(self) -> int:
        """``c``, the outputs of one configuration.

        Examples
        --------
        >>> import numpy as np
        >>> from anyglm.fastpath import EpochTask
        >>> EpochTask(np.ones((3, 1)), np.ones((3, 2)), None, None, 2, np.zeros((1, 4)),
        ...           np.zeros(4), 0.1, 0.0, 2).n_outputs
        2
        """
        return int(self.W.shape[1]) // self.n_configs


class EpochKernel(Protocol):
    """One epoch of minibatch SGD with L2 on the weights, the fast way.

    For each minibatch ``B`` of ``m`` rows, with ``rows, dZ =
    model.loss_and_dloss(Z)`` on ``Z = X_B @ W + b`` (weighted when weights
    are given), the update is ``W <- W - lr * (X_B^T dZ / m + alpha * W)`` and
    ``b <- b - lr * sum(dZ) / m``, exactly as the portable loop does it.

    Returns ``(W, b, loss_sum)``: the parameters after the epoch (new arrays)
    and, per configuration (shape ``(K,)``), the sum over all rows of the
    (weighted) loss before each row's update.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.fastpath import EpochTask, find_epoch_kernel
    >>> kernel = find_epoch_kernel(anyglm.get_backend("numpy"), anyglm.get_model("linear"))
    >>> task = EpochTask(X=np.ones((4, 1)), Y=np.full((4, 1), 2.0), weights=None, order=None,
    ...                  batch_size=4, W=np.zeros((1, 1)), b=np.zeros(1), learning_rate=0.5,
    ...                  alpha=0.0, n_configs=1)
    >>> W, b, loss_sum = kernel(task)
    >>> W.tolist(), b.tolist(), loss_sum.tolist()  # loss 2 per row before the step
    ([[1.0]], [1.0], [8.0])
    """

    def __call__(self, task: EpochTask) -> tuple[Any, Any, Any]: ...


def fast_paths_disabled() -> bool:
    """Whether ``ANYGLM_DISABLE_FAST_PATHS`` turns the backend fast paths off.

    Examples
    --------
    >>> import os
    >>> from anyglm.fastpath import fast_paths_disabled
    >>> fast_paths_disabled() == (os.environ.get("ANYGLM_DISABLE_FAST_PATHS", "") not in
    ...                           ("", "0", "false", "no"))
    True
    """
    return env_flag("ANYGLM_DISABLE_FAST_PATHS")


def find_epoch_kernel(
    backend: Backend, model: Model, *, errors: str = "warn"
) -> EpochKernel | None:
    """The epoch kernel a plugin offers for ``model`` on ``backend``, or ``None``.

    The plugins' ``anyglm_epoch_kernel`` hooks are asked in pluggy's order
    (the last registered first) and the first callable answer wins. A hook
    that raises or answers something that is not callable is skipped with a
    :class:`~anyglm.PluginWarning` naming the plugin, so one broken plugin
    costs speed, not the fit; ``errors="raise"`` (what the conformance suite
    and :func:`anyglm.doctor` use), or ``ANYGLM_STRICT_PLUGINS=1``, raises
    instead. ``None`` also when ``ANYGLM_DISABLE_FAST_PATHS`` is set.

    Parameters
    ----------
    backend : Backend
    model : Model
    errors : {"warn", "raise"}

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.fastpath import find_epoch_kernel
    >>> find_epoch_kernel(anyglm.get_backend("array_api_strict"),
    ...                   anyglm.get_model("softmax")) is None  # portable path only
    True
    """
    if errors not in ("warn", "raise"):
        raise ValueError(f"errors must be 'warn' or 'raise', got {errors!r}")
    if fast_paths_disabled():
        return None
    from .registry import PluginWarning, plugin_state

    state = plugin_state()
    raise_errors = errors == "raise" or state.strict
    args = {"backend": backend, "model": model}
    # Called one by one (pluggy's own order) so that a failing plugin can be skipped.
    for impl in reversed(state.pm.hook.anyglm_epoch_kernel.get_hookimpls()):
        try:
            kernel = impl.function(*[args[name] for name in impl.argnames])
        except Exception as exc:
            if raise_errors:
                raise
            problem: str = f"raised {type(exc).__name__}: {exc}"
        else:
            if kernel is None:
                continue
            if callable(kernel):
                return kernel
            problem = f"returned {kernel!r}; it must return a callable or None"
            if raise_errors:
                raise TypeError(
                    f"the anyglm_epoch_kernel hook of plugin {impl.plugin_name!r} {problem} "
                    f"(backend {backend.name!r}, model {model.name!r})"
                )
        warnings.warn(
            f"anyglm skipped the epoch kernel of plugin {impl.plugin_name!r} for backend "
            f"{backend.name!r} and model {model.name!r}: its anyglm_epoch_kernel hook "
            f"{problem}. Training goes on without it (slower); run "
            f"`pytest --pyargs anyglm.conformance` to see the failure.",
            PluginWarning,
            stacklevel=3,
        )
    return None
