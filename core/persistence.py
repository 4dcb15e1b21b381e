"""From a fitted estimator to a :class:`~anyglm.modelfile.ModelState`: what a model file holds.

:mod:`anyglm.modelfile` reads and writes plain states and knows no estimator;
this module reads an estimator's parameters and fitted attributes into one
(:func:`model_state`), and :mod:`anyglm.loading` turns a state back into an
estimator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .modelfile import ModelState, jsonable

if TYPE_CHECKING:
    from .inputs import Prepared

__all__ = ["model_state", "storable_classes"]


def model_state(
    est: Any,
    prep: Prepared | None,
    W: Any,
    b: Any,
    history: Mapping[str, Any],
    n_epochs: int,
) -> ModelState:
    """The fitted model as a :class:`~anyglm.modelfile.ModelState` (no estimator inside).

    ``prep`` is the prepared data of a fit in progress (a checkpoint), or
    ``None`` for a fitted estimator; ``W``, ``b``, ``history`` and
    ``n_epochs`` are the parameters and record to store.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.persistence import model_state
    >>> est = anyglm.LogisticRegression(epochs=2).fit([[-1.0], [1.0]], ["a", "b"])
    >>> state = model_state(est, None, est._W, est._b, est.history_, est.n_epochs_)
    >>> state.meta["estimator"], state.arrays["classes"].tolist()
    ('LogisticRegression', ['a', 'b'])
    """
    be = est._backend_obj if prep is None else prep.backend
    params = est.get_params()
    if isinstance(params.get("random_state"), (np.random.Generator, np.random.RandomState)):
        params["random_state"] = None  # a generator's state is not a parameter
    params["device"] = None  # devices do not travel between machines
    classes = getattr(est, "classes_", None) if prep is None else prep.classes
    model_name = est._model_name if prep is None else prep.model.name
    meta = {
        "estimator": type(est).__name__,
        "model": model_name,
        "params": jsonable(params),
        "backend": be.name,
        "dtype": est._dtype if prep is None else prep.dtype,
        "n_features_in": est.n_features_in_ if prep is None else prep.n_features,
        "y_ndim": est._y_shape if prep is None else prep.y_ndim,
        "n_targets": (
            getattr(est, "_n_targets", None)
            if prep is None
            else (None if classes is not None else prep.n_outputs)
        ),
        "n_epochs": n_epochs,
        "feature_names_in": _names(est, prep),
        "history": {k: [float(v) for v in np.asarray(a).reshape(-1)] for k, a in history.items()},
    }
    arrays = {"W": be.to_numpy(W), "b": be.to_numpy(b)}
    if classes is not None:
        arrays["classes"] = storable_classes(classes)
    return ModelState(meta, arrays)


def _names(est: Any, prep: Prepared | None) -> list[str] | None:
    names = getattr(est, "feature_names_in_", None) if prep is None else prep.feature_names
    return None if names is None else [str(n) for n in names]


def storable_classes(classes: np.ndarray) -> np.ndarray:
    """Class labels as an array a model file can hold (numbers, bools or strings; no objects).

    An object array whose labels are all of one kind (all ints, all floats,
    all bools or all strings) is stored as that kind; mixed kinds and other
    types are refused with the types found.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.persistence import storable_classes
    >>> storable_classes(np.array([0, 1], dtype=object)).dtype
    dtype('int64')
    >>> storable_classes(np.array(["no", "yes"], dtype=object)).tolist()
    ['no', 'yes']
    """
    if classes.dtype.kind != "O":
        return classes
    values = classes.tolist()
    kinds = {
        "bool"
        if isinstance(c, (bool, np.bool_))
        else "int"
        if isinstance(c, (int, np.integer))
        else "float"
        if isinstance(c, (float, np.floating))
        else "str"
        if isinstance(c, str)
        else type(c).__name__
        for c in values
    }
    target = {"bool": np.bool_, "int": np.int64, "float": np.float64, "str": np.str_}
    if len(kinds) == 1 and next(iter(kinds)) in target:
        out: np.ndarray | None
        try:
            out = np.asarray(values, dtype=target[next(iter(kinds))])
        except OverflowError:  # ints beyond int64
            out = None
        if out is not None and out.tolist() == values:
            return out
    raise TypeError(
        "a model file holds class labels that are all numbers (all ints, all floats or all "
        f"bools) or all strings; these labels are of types {sorted(kinds)}. Encode the "
        "labels as one of those kinds (e.g. y.astype(str)) and fit again"
    )
