"""The parameter protocol every estimator shares (scikit-learn's conventions).

``__init__`` stores its arguments unchanged; :meth:`ParamsBase.get_params`
and :meth:`ParamsBase.set_params` read and write them by name, which is what
``sklearn.base.clone``, ``Pipeline`` and ``GridSearchCV`` rely on. Fitted
state lives in attributes ending in ``_``.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _sklearn, registry

if TYPE_CHECKING:
    from .backend import Backend
    from .model import Model

__all__ = ["FittedBase", "ParamsBase", "restore", "store_params"]

#: The key under which a pickled estimator records where its arrays lived.
_PICKLED = "__anyglm_arrays__"


def store_params(est: Any, params: dict[str, Any]) -> None:
    """``setattr`` every constructor argument in ``params`` (``locals()`` of ``__init__``).

    Examples
    --------
    >>> from anyglm.base import store_params
    >>> class E:
    ...     def __init__(self, a=1):
    ...         store_params(self, locals())
    >>> E(a=3).a
    3
    """
    for key, value in params.items():
        if key not in ("self", "__class__"):
            setattr(est, key, value)


def _init_params(cls: type) -> list[str]:
    sig = inspect.signature(cls.__init__)  # type: ignore[misc]
    return [p for p in sig.parameters if p != "self"]


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


class _OwnParams:
    """scikit-learn's parameter protocol, for when scikit-learn is not installed."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``clone`` expects.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.LogisticRegression(alpha=0.5).get_params()["alpha"]
        0.5
        """
        return {name: getattr(self, name) for name in sorted(_init_params(type(self)))}

    def set_params(self, **params: Any) -> Any:
        """Set constructor parameters; unknown names raise ``ValueError``.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.SoftmaxRegression().set_params(epochs=3).epochs
        3
        """
        valid = sorted(_init_params(type(self)))
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"Invalid parameter {key!r} for estimator {self}. "
                    f"Valid parameters are: {valid!r}."
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        defaults = {
            k: v.default for k, v in inspect.signature(type(self).__init__).parameters.items()
        }
        changed = [
            f"{k}={v!r}" for k, v in self.get_params().items() if not _same(v, defaults.get(k))
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


class ParamsBase(_sklearn.BaseEstimator if _sklearn.AVAILABLE else _OwnParams):  # type: ignore[misc]
    """``get_params``/``set_params`` and a repr showing the parameters that differ from defaults.

    With scikit-learn (>= 1.6) installed this is a
    :class:`sklearn.base.BaseEstimator` (HTML repr, metadata routing,
    ``clone``); without it, anyglm's own implementation of the same protocol.

    Examples
    --------
    >>> import anyglm
    >>> anyglm.LogisticRegression(alpha=0.5)
    LogisticRegression(alpha=0.5)
    """

    @classmethod
    def _param_names(cls) -> list[str]:
        return _init_params(cls)


class FittedBase:
    """Where a fitted estimator's parameters belong: a backend and a model, kept by name.

    Names, not objects: a pickled or copied estimator looks its backend and
    model up again in the registry of the process it lands in.

    Examples
    --------
    >>> import anyglm
    >>> est = anyglm.LinearRegression(epochs=2).fit([[0.0], [1.0]], [0.0, 1.0])
    >>> est._backend_name, est._backend_obj.name
    ('numpy', 'numpy')
    """

    _model_name: str
    _backend_name: str
    _dtype: str

    @property
    def _backend_obj(self) -> Backend:
        return registry.get_backend(self._backend_name)

    @property
    def _model_obj(self) -> Model:
        return registry.get_model(self._model_name)

    # -- pickling (pickle, copy.deepcopy, joblib) ---------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The instance's attributes, with device arrays as host copies (see :func:`restore`)."""
        getstate = getattr(super(), "__getstate__", None)
        state = getstate() if getstate is not None else None
        state = dict(self.__dict__ if state is None else state)
        name = state.get("_backend_name")
        if name is None or name == "numpy":
            return state  # unfitted, or NumPy arrays: they pickle as they are
        be = registry.get_backend(name)
        device = be.device_of(state["_W"])
        state = {
            k: _map_arrays(v, be.owns, lambda a: _HostArray(be.to_numpy(a)))
            for k, v in state.items()
        }
        state[_PICKLED] = {"backend": name, "device": str(device), "dtype": state.get("_dtype")}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        placed = state.pop(_PICKLED, None)
        if placed is not None:
            state = restore(state, placed, type(self).__name__)
        setstate = getattr(super(), "__setstate__", None)
        if setstate is not None:
            setstate(state)
        else:
            self.__dict__.update(state)


class _HostArray:
    """A host copy of a device array inside a pickled estimator."""

    __slots__ = ("array",)

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __reduce__(self) -> tuple[Any, ...]:
        return (_HostArray, (self.array,))


def _map_arrays(value: Any, match: Callable[[Any], bool], fn: Callable[[Any], Any]) -> Any:
    """``value`` with every array ``match`` accepts replaced by ``fn(array)``.

    Walks dicts, lists, tuples and dataclass instances (the trainer's state).
    """
    if match(value):
        return fn(value)
    if isinstance(value, dict):
        return {k: _map_arrays(v, match, fn) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_map_arrays(v, match, fn) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = copy.copy(value)
        for f in dataclasses.fields(value):
            setattr(out, f.name, _map_arrays(getattr(value, f.name), match, fn))
        return out
    return value


def restore(state: dict[str, Any], placed: dict[str, Any], owner: str) -> dict[str, Any]:
    """Put the host copies of a pickled estimator's arrays back on a backend.

    The rule: the backend the estimator was trained on, on the device of the
    same name, in the same dtype. Where that backend is not registered or not
    available in this process, NumPy; where the device is missing, the
    backend's default device; where the dtype is not supported there, the
    backend's default dtype. Each fallback warns (:class:`RuntimeWarning`)
    saying what changed; predictions are those of the same parameters.

    Examples
    --------
    >>> import pickle, anyglm
    >>> import array_api_strict as xp
    >>> est = anyglm.LinearRegression(epochs=2).fit(xp.asarray([[0.0], [1.0]]), [0.0, 1.0])
    >>> again = pickle.loads(pickle.dumps(est))
    >>> again._backend_name, type(again.coef_).__module__.split(".")[0]
    ('array_api_strict', 'array_api_strict')
    """
    name = placed["backend"]
    problems = []
    try:
        be = registry.get_backend(name)
        be.require()
    except (ValueError, RuntimeError) as exc:  # unknown, unavailable or failed to load
        problems.append(f"backend {name!r} is not usable here ({exc}); it is on NumPy now")
        be = registry.get_backend("numpy")
    devices = be.devices()
    device = next((d for d in devices if str(d) == placed["device"]), None)
    if device is None:
        device = be.default_device()
        if be.name == name:
            problems.append(f"device {placed['device']} does not exist here; it is on {device}")
    dtype = placed.get("dtype") or be.default_dtype(device)
    if dtype not in be.float_dtypes(device):
        problems.append(f"{dtype} is not supported on {device}; it is {be.default_dtype(device)}")
        dtype = be.default_dtype(device)

    def put(host: _HostArray) -> Any:
        a = host.array
        return be.from_numpy(a, dtype=dtype if a.dtype.kind == "f" else None, device=device)

    out = {k: _map_arrays(v, lambda x: isinstance(x, _HostArray), put) for k, v in state.items()}
    if be.name != name:
        out["_backend_name"] = out["backend_"] = be.name
    out["_dtype"] = dtype
    if problems:
        warnings.warn(
            f"unpickling a fitted {owner}: " + "; ".join(problems), RuntimeWarning, stacklevel=3
        )
    return out
