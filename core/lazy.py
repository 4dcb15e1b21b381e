"""Lazy backends: data that stays where it lives, parameters that come home.

Most backends hold whole arrays on one device, and the core computes on them
directly. A *lazy* backend's arrays are chunked, lazily evaluated collections
(Dask arrays, possibly spread over a cluster) whose chunks are arrays of an
ordinary library (NumPy, or CuPy on GPUs). Training such data chunk by chunk
where the chunks live, and bringing home only the small parameters, needs
the backend's own code for what the core otherwise does itself; this module
says what that code is, and the core asks for it by these names only.

A lazy backend is a :class:`~anyglm.backend.Backend` whose ``lazy`` attribute
is true. For it:

* ``xp``, ``from_numpy``, ``to_numpy`` and ``device_of`` are about its
  **parameters**: ``xp`` computes in the chunks' library, ``from_numpy``
  makes arrays of that library (so the parameters, ``coef_`` and the
  optimiser state are small NumPy or CuPy arrays), and ``device`` names the
  chunks' device. ``to_numpy`` and ``device_of`` also take the lazy arrays
  (``to_numpy`` then computes). ``owns`` claims the lazy arrays: they pick
  the backend under ``backend="auto"``.
* It implements :class:`LazyBackend`: preparing a fit
  (:meth:`LazyBackend.prepare_fit`, whose data source trains where the chunks
  live through ``run_epoch`` and scores through ``run_evaluation``; see
  :func:`anyglm.trainer.train`), predicting chunk by chunk into lazy arrays
  (:meth:`LazyBackend.map_logits`), scoring as a reduction
  (:meth:`LazyBackend.score`), and making lazy arrays of host data
  (:meth:`LazyBackend.lazy_array`, for tests).

Row subsets and concatenations of lazy arrays (what :func:`anyglm.tune`
needs to split data) go through the array's own Array API namespace
(:func:`take_rows`, :func:`concat_rows`), so they stay lazy too.

Examples
--------
>>> import numpy as np, anyglm
>>> from anyglm.lazy import is_lazy, lazy_owner
>>> is_lazy(anyglm.get_backend("numpy")), lazy_owner(np.zeros(3)) is None
(False, True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from .backend import Backend
from .model import Model
from .selection import owner_of

__all__ = ["LazyBackend", "concat_rows", "connect", "is_lazy", "lazy_owner", "take_rows"]


@runtime_checkable
class LazyBackend(Protocol):
    """What a lazy backend implements besides :class:`~anyglm.backend.Backend`.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.lazy import LazyBackend
    >>> isinstance(anyglm.get_backend("numpy"), LazyBackend)
    False
    """

    name: str
    lazy: bool

    def lazy_array(
        self, a: np.ndarray, *, dtype: str | None = None, device: Any = None, chunks: int = 1
    ) -> Any:
        """Host data as a lazy array of ``chunks`` row chunks on ``device``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> x = anyglm.get_backend("dask").lazy_array(np.ones((4, 2)), chunks=2)
        >>> x.numblocks
        (2, 1)
        """
        ...

    def prepare_fit(
        self,
        model: Model,
        X: Any,
        y: Any,
        *,
        device: Any,
        dtype: str | None,
        rng: np.random.Generator | None,
        sample_weight: Any,
        classes: Sequence[Hashable] | None,
        class_weight: Mapping[Hashable, float] | str | None,
        validation_data: tuple[Any, Any] | None,
        validation_fraction: float,
        block_rows: int | None,
        rounds_per_epoch: int,
    ) -> Any:
        """Check the data where it lives and return an :class:`anyglm.inputs.Prepared`.

        Takes :func:`anyglm.inputs.prepare`'s arguments. The source and the
        validation source of the result train and score where the chunks
        live (``run_epoch``, ``run_evaluation``).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.inputs import prepare
        >>> prep = prepare(anyglm.get_model("logistic"), np.array([[0.0], [1.0]]), [0, 1],
        ...                backend="dask")
        >>> prep.kind, prep.classes.tolist()
        ('lazy', [0, 1])
        """
        ...

    def map_logits(
        self,
        backend: Backend,
        W: Any,
        b: Any,
        dtype: str,
        X: Any,
        fn: Callable[[Any], Any],
        *,
        n_features: int,
        estimator_name: str,
    ) -> Any:
        """``fn(Z)`` chunk by chunk for the linear predictor of lazy ``X``, as a lazy array.

        ``W`` and ``b`` are the parameters of ``backend`` (the fitted model's).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> Z = be.map_logits(be, np.ones((2, 1)), np.zeros(1), "float64",
        ...                   be.lazy_array(np.ones((3, 2))), lambda Z: Z,
        ...                   n_features=2, estimator_name="Estimator")
        >>> Z.compute().ravel().tolist()
        [2.0, 2.0, 2.0]
        """
        ...

    def score(self, pred: Any, y: Any, sample_weight: Any, *, classification: bool) -> float:
        """Accuracy or R^2 (mean over targets) of lazy predictions, as one reduction.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> be.score(be.lazy_array(np.array([0, 1, 1])), np.array([0, 1, 0]), None,
        ...          classification=True)
        0.6666666666666666
        """
        ...


def is_lazy(backend: Backend | None) -> bool:
    """Whether ``backend`` is a lazy backend (its ``lazy`` attribute is true).

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.lazy import is_lazy
    >>> is_lazy(anyglm.get_backend("numpy")), is_lazy(anyglm.get_backend("dask"))
    (False, True)
    """
    return backend is not None and bool(getattr(backend, "lazy", False))


def lazy_owner(x: Any) -> Any:
    """The lazy backend that owns ``x``, or ``None`` (never imports a library).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.lazy import lazy_owner
    >>> lazy_owner(np.zeros(2)) is None
    True
    """
    if type(x) is np.ndarray:
        return None
    owner = owner_of(x)
    return owner if is_lazy(owner) else None


def take_rows(x: Any, rows: np.ndarray) -> Any:
    """The rows ``rows`` (sorted host indices) of ``x``: lazy for a lazy array, else NumPy.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.lazy import take_rows
    >>> take_rows(np.arange(6).reshape(3, 2), np.array([0, 2])).tolist()
    [[0, 1], [4, 5]]
    """
    if lazy_owner(x) is None:
        return np.asarray(x)[rows]
    import array_api_compat

    return array_api_compat.array_namespace(x).take(x, rows, axis=0)


def concat_rows(parts: Sequence[Any], like: Any = None) -> Any:
    """``parts`` stacked along the rows: lazy when the first part is lazy, else NumPy.

    A lazy result takes the chunks of rows of ``like`` (the array the parts
    were taken from) when it has as many rows: the partitions a lazy backend
    trains on stay the user's.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.lazy import concat_rows
    >>> concat_rows([np.zeros(2), np.ones(1)]).tolist()
    [0.0, 0.0, 1.0]
    """
    if lazy_owner(parts[0]) is None:
        return np.concatenate([np.asarray(p) for p in parts])
    import array_api_compat

    out = array_api_compat.array_namespace(parts[0]).concat(list(parts), axis=0)
    rows = getattr(like, "chunks", None)
    if rows and hasattr(out, "rechunk") and tuple(like.shape[:1]) == tuple(out.shape[:1]):
        out = out.rechunk({0: rows[0]})
    return out


@contextlib.contextmanager
def connect(address: str | None, backend: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client`` of the Dask scheduler at ``address`` while the block runs.

    What ``anyglm train --backend dask --scheduler ADDRESS`` trains on: the
    client is the default one inside the block (the Dask backend computes
    there) and is closed after it. ``address=None`` does nothing (the Dask
    backend then uses a client already running, or Dask's local scheduler).

    Raises
    ------
    ValueError
        An address with a ``backend`` other than ``"dask"``: the other backends
        train in this process and would ignore the cluster.
    ImportError
        distributed is not installed.

    Examples
    --------
    >>> from anyglm.lazy import connect
    >>> with connect(None) as client:
    ...     client is None
    True
    """
    if address is None:
        yield None
        return
    if backend != "dask":
        raise ValueError(
            f"--scheduler {address} trains on a Dask cluster, but the backend is "
            f"{backend or 'auto'!r}: add --backend dask"
        )
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            'a Dask scheduler needs distributed: pip install "anyglm[dask]"'
        ) from None
    with Client(address, set_as_default=True) as client:
        yield client
