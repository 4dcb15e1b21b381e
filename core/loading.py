"""Loading model files as fitted estimators: the bridge from :mod:`anyglm.modelfile`.

:mod:`anyglm.modelfile` reads a plain state; this module picks the estimator
class it names (among anyglm's own only), the backend to put the parameters
on (:func:`anyglm.selection.resolve_backend`'s rules), and installs the state.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from . import modelfile, registry
from .errors import ModelFileError, UnknownNameError
from .estimators import Estimator, LinearRegression, LogisticRegression, SoftmaxRegression
from .selection import resolve_backend

__all__ = ["load"]

#: The classes a model file may name; anything else is refused.
ESTIMATORS: dict[str, type[Estimator]] = {
    "Estimator": Estimator,
    "LinearRegression": LinearRegression,
    "LogisticRegression": LogisticRegression,
    "SoftmaxRegression": SoftmaxRegression,
}


def load(
    path: str | os.PathLike[str], backend: str | None = None, *, max_bytes: int | None = None
) -> Any:
    """Load a model saved with :meth:`Estimator.save`.

    Parameters
    ----------
    path : str or path-like
    backend : str or None
        Backend to put the parameters on. ``None`` uses the backend the model
        was trained on when it is available here, and NumPy otherwise.
    max_bytes : int, optional
        Cap on the file's total uncompressed size (default 1 GiB, or the
        ``ANYGLM_MAX_MODEL_BYTES`` environment variable); a file over it is
        refused before anything is read. See :mod:`anyglm.modelschema`.

    Returns
    -------
    Estimator
        A fitted estimator of the saved class; ``file_metadata_`` holds what
        was saved with ``save(path, metadata=...)`` (an empty dict otherwise).

    Raises
    ------
    ModelFileError
        The file is not an anyglm model file, is truncated or corrupted,
        inconsistent, over a size cap, or comes from a newer format version;
        the message names the file and the field.

    Examples
    --------
    >>> import tempfile, pathlib, anyglm
    >>> reg = anyglm.LinearRegression(epochs=50, random_state=0).fit([[0.0], [1.0]], [1.0, 3.0])
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "reg.anyglm"
    >>> reg.save(path)
    >>> loaded = anyglm.load(path, backend="numpy")
    >>> bool(abs(loaded.predict([[1.0]])[0] - reg.predict([[1.0]])[0]) < 1e-12)
    True
    """
    state = modelfile.read(path, max_bytes=max_bytes)
    spath, meta, arrays = state.path, state.meta, state.arrays
    cls = ESTIMATORS.get(meta["estimator"])
    if cls is None:
        raise ModelFileError(f"{spath!r}: unknown estimator class {meta['estimator']!r}")
    try:
        model = registry.get_model(meta["model"])
    except UnknownNameError as exc:
        raise ModelFileError(f"{spath!r}: metadata field 'model': {exc}") from None
    named = meta["params"].get("model", model.name) if cls is Estimator else cls._fixed_model
    if named != model.name:
        raise ModelFileError(
            f"{spath!r}: metadata field 'model' is {model.name!r} but the estimator "
            f"{meta['estimator']} has model {named!r}"
        )
    W, b, classes = arrays["W"], arrays["b"], arrays.get("classes")
    params = {k: v for k, v in meta["params"].items() if k in cls._param_names()}
    cw = params.get("class_weight")
    if isinstance(cw, dict) and classes is not None:
        # JSON keys are strings: map them back to the class labels they came from.
        by_text = {str(c): c for c in classes.tolist()}
        params["class_weight"] = {by_text.get(k, k): v for k, v in cw.items()}
    est = cls(**params)
    try:
        est._check_params()
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"{spath!r}: metadata field 'params' is invalid: {exc}") from None
    if backend is None:
        try:
            be = registry.get_backend(meta.get("backend", "numpy"))
            if not be.is_available():
                be = registry.get_backend("numpy")
        except (UnknownNameError, ValueError):
            be = registry.get_backend("numpy")
    else:
        be = resolve_backend(backend)
    est.backend = be.name
    dt = meta.get("dtype", "float64")
    if dt not in be.float_dtypes():
        dt = be.default_dtype()
    if model.task == "classification" and (
        classes is None or classes.ndim != 1 or W.shape[1] != model.n_outputs(len(classes), 1)
    ):
        raise ModelFileError(
            f"{spath!r}: the class labels are missing or do not match the parameters"
        )
    if model.task != "classification":
        _check_regression(spath, meta, W.shape[1], classes is not None)
    est._model_name = model.name
    est._backend_name = be.name
    est.backend_ = be.name
    est.n_features_in_ = meta["n_features_in"]
    est._y_shape = int(meta.get("y_ndim", 1))
    if meta.get("n_targets") is not None:
        est._n_targets = int(meta["n_targets"])
    est._dtype = dt
    est._train_state = None
    user = meta.get("user_metadata")
    est.file_metadata_ = dict(user) if isinstance(user, dict) else {}
    if classes is not None:
        est.classes_ = classes
    names = meta.get("feature_names_in")
    if names is not None:
        est.feature_names_in_ = np.asarray(names, dtype=object)
    dev = be.default_device()
    try:
        history = {
            k: np.asarray(v, dtype=np.float64).reshape(-1, 1) for k, v in meta["history"].items()
        }
    except (TypeError, ValueError):
        raise ModelFileError(f"{spath!r}: metadata field 'history' is invalid") from None
    est._set_params(
        be.from_numpy(W, dtype=dt, device=dev),
        be.from_numpy(b, dtype=dt, device=dev),
        history,
        int(meta.get("n_epochs", 0)),
    )
    return est


def _check_regression(path: str, meta: dict[str, Any], n_out: int, has_classes: bool) -> None:
    """A regression file: no labels, and as many output columns as targets."""
    if has_classes:
        raise ModelFileError(
            f"{path!r}: model {meta['model']!r} is a regressor but the file "
            "holds class labels (classes.npy)"
        )
    n_targets = meta.get("n_targets")
    one_d = meta.get("y_ndim", 1) == 1
    if (n_targets is not None and n_targets != n_out) or (one_d and n_out != 1):
        raise ModelFileError(
            f"{path!r}: metadata fields 'n_targets' ({n_targets}) and 'y_ndim' "
            f"({meta.get('y_ndim', 1)}) disagree with W.npy's {n_out} output column(s)"
        )
