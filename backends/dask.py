"""The Dask backend: data in Dask arrays, on a dask.distributed cluster or Dask's local scheduler.

A lazy backend (:mod:`anyglm.lazy`). Its arrays are ``dask.array`` arrays whose
chunks of rows are NumPy arrays (or CuPy arrays on GPUs); passing one to
``fit`` picks this backend, and so does ``backend="dask"`` (NumPy, zarr and
memory-mapped inputs are then cut into chunks of ``block_rows`` rows, by
default one chunk of up to about 64 MB).

**Training** runs by rounds of local SGD with model averaging (Zinkevich et
al. 2010; Stich 2018): each partition (chunk of rows) trains from the
broadcast parameters with the single-machine block code, through the
accelerator the chunks' backend offers (numba on NumPy chunks), and a round
ends with one row-weighted average of the parameters and of the optimiser's
state, computed on the cluster: one synchronisation per round. A round is an
epoch unless the estimator's ``rounds_per_epoch`` says otherwise. The seed fixes
the partition order and the rows' order inside each partition; they are
drawn on the client and shipped with the tasks. See
:mod:`anyglm.backends.dask_training`.

**Parameters** live in the chunks' library: ``xp`` is a
:class:`ChunkNamespace` that computes with NumPy's (or CuPy's) namespace,
``from_numpy`` makes NumPy arrays (CuPy arrays for a CuPy device), so
``coef_`` is a small array of the chunks' library and a saved model loads on
any backend. ``to_numpy`` and ``device_of`` take Dask arrays too.

**Where it runs**: the active ``distributed.Client``
(``distributed.default_client()``) when there is one, otherwise Dask's local
scheduler. ``X`` and ``y`` are never computed on the client: label discovery,
finiteness checks and class weights are reductions over the chunks, and
``predict`` returns lazy arrays.

Nothing here imports Dask until the backend is used; listing it only checks
that Dask is installed (``pip install "anyglm[dask]"``).
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
from anyglm import registry
from anyglm.accelerate import AcceleratorSpec, BlockResult, BlockTask
from anyglm.backend import Backend
from anyglm.hookspecs import hookimpl
from anyglm.model import Model

from .dask_arrays import (
    ChunkNamespace,
    active_client,
    is_cupy_device,
    is_dask_collection,
    library,
    to_workers,
)

__all__ = ["ChunkAccelerator", "DaskBackend", "chunk_backends"]


class DaskBackend(Backend):
    """Dask arrays, trained by rounds of local SGD with model averaging (see the module).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> be = anyglm.get_backend("dask")
    >>> X = be.lazy_array(np.ones((4, 2)), chunks=2)
    >>> be.owns(X), be.device_of(X), type(be.from_numpy(np.ones(2))).__name__
    (True, 'cpu', 'ndarray')
    """

    name = "dask"
    modules = ("dask",)
    install_hint = "pip install 'anyglm[dask]'"
    #: A lazy backend (:mod:`anyglm.lazy`): parameters in the chunks' library.
    lazy = True

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # Pickled by name (a prediction's chunk function closes over its backend): the
        # process that unpickles it gets its own registered backend, not this probe's thread.
        return (registry.get_backend, (self.name,))

    def _probe(self) -> str | None:
        # find_spec on the top-level package: listing backends never imports Dask.
        if importlib.util.find_spec("dask") is None:
            return "Dask is not installed"
        return None

    def _load_namespace(self) -> Any:
        return ChunkNamespace()

    def devices(self) -> list[Any]:
        """``"cpu"`` (NumPy chunks), then the GPUs of CuPy chunks when CuPy is usable.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.get_backend("dask").devices()[0]
        'cpu'
        """
        found: list[Any] = ["cpu"]
        cupy = registry.plugin_state().backends.items.get("cupy")
        if cupy is not None and cupy.is_available():
            found += cupy.devices()
        return found

    def default_device(self) -> Any:
        return "cpu"

    def describe_devices(self) -> list[str]:
        if not self.is_available():
            return []
        cupy = registry.plugin_state().backends.items.get("cupy")
        gpus = cupy.describe_devices() if cupy is not None else []
        return ["cpu", *gpus]

    def from_numpy(self, a: np.ndarray, *, dtype: str | None = None, device: Any = None) -> Any:
        """A NumPy array (a CuPy array on a CuPy device): parameters live in the chunks' library.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> anyglm.get_backend("dask").from_numpy(np.arange(2), dtype="float32")
        array([0., 1.], dtype=float32)
        """
        if is_cupy_device(device):
            return registry.get_backend("cupy").from_numpy(a, dtype=dtype, device=device)
        return np.asarray(a, dtype=dtype)

    def to_numpy(self, x: Any) -> np.ndarray:
        """A NumPy copy of a chunk-library array, or of a Dask array (computed).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> be.to_numpy(be.lazy_array(np.arange(4.0), chunks=2)).tolist()
        [0.0, 1.0, 2.0, 3.0]
        """
        if is_dask_collection(x):
            x = x.compute()
        if library(x) == "cupy":
            return np.asarray(x.get())
        return np.asarray(x)

    def device_of(self, x: Any) -> Any:
        """``"cpu"`` for NumPy data, the CuPy device for CuPy data (a Dask array's chunks').

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> be.device_of(np.zeros(2)), be.device_of(be.lazy_array(np.zeros(2)))
        ('cpu', 'cpu')
        """
        if is_dask_collection(x):
            x = getattr(x, "_meta", None)
        if library(x) == "cupy":
            return x.device
        return "cpu"

    def diagnostics(self) -> dict[str, Any]:
        from importlib import metadata

        try:
            version: str | None = metadata.version("distributed")
        except metadata.PackageNotFoundError:
            version = None
        client = active_client()
        where = "local (no distributed.Client)" if client is None else str(client.scheduler.address)
        return {"distributed": version, "scheduler": where}

    # -- the lazy-backend protocol (anyglm.lazy) ------------------------------------------

    def lazy_array(
        self, a: np.ndarray, *, dtype: str | None = None, device: Any = None, chunks: int = 1
    ) -> Any:
        """Host data as a Dask array of ``chunks`` chunks of rows, on ``device``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> x = anyglm.get_backend("dask").lazy_array(np.arange(6.0), chunks=3)
        >>> x.chunks, x.sum().compute()
        (((2, 2, 2),), np.float64(15.0))
        """
        import dask.array as da

        data = self.from_numpy(np.asarray(a), dtype=dtype, device=device)
        n = int(data.shape[0]) if data.ndim else 1
        rows = max(1, -(-n // max(1, int(chunks))))
        return to_workers(da.from_array(data, chunks=(rows, *data.shape[1:]), asarray=False))

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
        """Checks and label discovery as one reduction on the cluster; a :class:`DaskSource`.

        See :func:`anyglm.backends.dask_inputs.prepare_fit`.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> X = be.lazy_array(np.arange(8.0).reshape(4, 2), chunks=2)
        >>> prep = be.prepare_fit(anyglm.get_model("softmax"), X, np.array([2, 0, 1, 2]),
        ...     device=None, dtype=None, rng=None, sample_weight=None, classes=None,
        ...     class_weight=None, validation_data=None, validation_fraction=0.0,
        ...     block_rows=None, rounds_per_epoch=1)
        >>> prep.classes.tolist(), prep.source.n_partitions
        ([0, 1, 2], 2)
        """
        from .dask_inputs import prepare_fit

        return prepare_fit(
            self,
            model,
            X,
            y,
            device=device,
            dtype=dtype,
            rng=rng,
            sample_weight=sample_weight,
            classes=classes,
            class_weight=class_weight,
            validation_data=validation_data,
            validation_fraction=validation_fraction,
            block_rows=block_rows,
            rounds_per_epoch=rounds_per_epoch,
        )

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
        """``fn(Z)`` chunk by chunk into a lazy Dask array (``map_blocks``).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> out = be.map_logits(be, np.ones((2, 1)), np.zeros(1), "float64",
        ...                     be.lazy_array(np.ones((4, 2)), chunks=2), lambda Z: Z[:, 0],
        ...                     n_features=2, estimator_name="Estimator")
        >>> out.chunks, out.compute().tolist()
        (((2, 2),), [2.0, 2.0, 2.0, 2.0])
        """
        from .dask_predict import map_logits

        return map_logits(
            backend, W, b, dtype, X, fn, n_features=n_features, estimator_name=estimator_name
        )

    def score(self, pred: Any, y: Any, sample_weight: Any, *, classification: bool) -> float:
        """Accuracy or R^2 of lazy predictions: one reduction on the cluster, one float back.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> be = anyglm.get_backend("dask")
        >>> be.score(be.lazy_array(np.array([1.0, 2.0, 4.0])), np.array([1.0, 2.0, 3.0]), None,
        ...          classification=False)
        0.5
        """
        from .dask_predict import score

        return score(pred, y, sample_weight, classification=classification)

    @contextlib.contextmanager
    def conformance_session(self) -> Iterator[Any]:
        """A LocalCluster of 2 worker processes (one thread each) and its client, for tests.

        The conformance suite enters it once per test session before the
        backend's first case (see the plugin guide); the client is the default
        one while the session lasts.

        Examples
        --------
        >>> import anyglm
        >>> callable(anyglm.get_backend("dask").conformance_session)
        True
        """
        from distributed import Client, LocalCluster

        cluster = LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,  # logging.ERROR: a worker killed on purpose is not news
        )
        client = Client(cluster)
        try:
            yield client
        finally:
            client.close()
            cluster.close()


class ChunkAccelerator:
    """The accelerator of the chunks' backend, looked up where a block runs.

    The Dask backend's answer to the ``anyglm_accelerator`` hook: on a
    worker, a block of NumPy chunks runs through the NumPy backend's
    accelerator (numba's loop) when it accepts the spec and the block, a block
    of CuPy chunks through CuPy's; ``None`` (the portable loop) otherwise.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.accelerate import AcceleratorSpec, BlockTask
    >>> from anyglm.backends.dask import ChunkAccelerator
    >>> from anyglm.optim import Columns, OptimizerSpec
    >>> spec = AcceleratorSpec(anyglm.get_model("linear"), "linear", OptimizerSpec(),
    ...                        "float64", 1, False, False)
    >>> task = BlockTask(np.ones((4, 1)), np.full((4, 1), 2.0), None, None, 2, np.zeros((1, 1)),
    ...                  np.zeros(1), {}, 0, Columns(0.25), np.array([0.25]), np.array([0.0]))
    >>> ChunkAccelerator(spec)(task) is None  # 4 values: below numba's minimum block size
    True
    """

    def __init__(self, spec: AcceleratorSpec) -> None:
        self.spec = spec

    def __call__(self, task: BlockTask) -> BlockResult | None:
        from anyglm.selection import find_accelerator, owner_of

        backend = owner_of(task.X)
        if backend is None or backend.name == DaskBackend.name:
            return None
        # Looked up for each block (a few microseconds): nothing is shared between the
        # blocks that Dask's threaded scheduler runs at once, so no cache can be raced.
        accelerator = find_accelerator(backend, self.spec)
        return None if accelerator is None else accelerator(task)


def chunk_backends() -> list[Backend]:
    """The backends whose arrays Dask chunks may be: NumPy, and CuPy when it is usable.

    Examples
    --------
    >>> from anyglm.backends.dask import chunk_backends
    >>> [be.name for be in chunk_backends()][0]
    'numpy'
    """
    found = [registry.get_backend("numpy")]
    cupy = registry.plugin_state().backends.items.get("cupy")
    if cupy is not None and importlib.util.find_spec("cupy") is not None and cupy.is_available():
        found.append(cupy)
    return found


@hookimpl
def anyglm_register_backends(register: Any) -> None:
    register(DaskBackend())


@hookimpl
def anyglm_accelerator(backend: Any, spec: AcceleratorSpec) -> Any:
    if not isinstance(backend, DaskBackend):
        return None
    from anyglm.selection import find_accelerator

    # Offered when a chunks' backend offers one for this spec (it may still decline a block).
    if any(find_accelerator(inner, spec) is not None for inner in chunk_backends()):
        return ChunkAccelerator(spec)
    return None
