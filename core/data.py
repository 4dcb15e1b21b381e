"""Data sources: where the trainer gets its minibatches from.

The trainer never assumes that ``X`` is one array in memory; it asks a
source for the minibatches of an epoch. :class:`ArraySource` serves arrays
already on the backend's device. The minibatch order is drawn on the host with
a seeded NumPy Generator, so every backend sees the same rows in the same
order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from .backend import Backend

__all__ = ["ArraySource"]


class ArraySource:
    """Minibatches of arrays that already live on the backend's device.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.data import ArraySource
    >>> X = np.arange(5.0).reshape(5, 1)
    >>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
    >>> [xb[:, 0].tolist() for xb, _, _ in src.epoch(np.random.default_rng(0), 2, True)]
    [[2.0, 4.0], [3.0, 0.0], [1.0]]

    Parameters
    ----------
    backend : Backend
    X, Y : arrays
        Features ``(n, d)`` and encoded targets ``(n, c)`` on one device.
    weights : array of shape (n,), optional
    device : device object
        Where index arrays are created.
    """

    def __init__(
        self, backend: Backend, X: Any, Y: Any, weights: Any = None, *, device: Any = None
    ) -> None:
        self.backend = backend
        self.xp = backend.xp
        self.X, self.Y, self.weights = X, Y, weights
        self.device = device
        self.n_rows = int(X.shape[0])

    def order(self, rng: np.random.Generator, shuffle: bool) -> np.ndarray | None:
        """The rows of the next epoch, drawn on the host (``None``: in order).

        :meth:`epoch` and the backends' epoch kernels draw it here, so both take
        the same rows from the same generator state.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.data import ArraySource
        >>> X = np.arange(5.0).reshape(5, 1)
        >>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
        >>> src.order(np.random.default_rng(0), True).tolist()
        [2, 4, 3, 0, 1]
        """
        return rng.permutation(self.n_rows) if shuffle else None

    def epoch(
        self, rng: np.random.Generator, batch_size: int, shuffle: bool
    ) -> Iterator[tuple[Any, Any, Any]]:
        """Yield ``(X_batch, Y_batch, weights_batch_or_None)`` for one epoch.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.data import ArraySource
        >>> X = np.arange(4.0).reshape(4, 1)
        >>> src = ArraySource(anyglm.get_backend("numpy"), X, X)
        >>> [xb.shape[0] for xb, _, _ in src.epoch(np.random.default_rng(0), 3, shuffle=False)]
        [3, 1]
        """
        xp, n = self.xp, self.n_rows
        perm = self.order(rng, shuffle)
        if perm is None:
            for start in range(0, n, batch_size):
                stop = min(start + batch_size, n)  # array-api-strict refuses slices past the end
                w = None if self.weights is None else self.weights[start:stop]
                yield self.X[start:stop, ...], self.Y[start:stop, ...], w
            return
        # One host-to-device copy of the permutation per epoch; gathers use
        # xp.take because the standard has no integer-array indexing.
        idx_all = self.backend.from_numpy(perm, dtype="int64", device=self.device)
        for start in range(0, n, batch_size):
            idx = idx_all[start : min(start + batch_size, n)]
            w = None if self.weights is None else xp.take(self.weights, idx, axis=0)
            yield xp.take(self.X, idx, axis=0), xp.take(self.Y, idx, axis=0), w
