"""The linear predictor of fitted parameters on new data, block by block where needed.

In-memory data gives ``Z = X @ W + b`` in one product on the parameters'
device. Data read from disk (memmaps, zarr, h5py) and sparse matrices are
processed in blocks of rows, so predicting on them needs memory for one block
of ``X`` and the ``(n, outputs)`` result only. Arrays of a lazy backend
(:mod:`anyglm.lazy`, e.g. Dask) give lazy results, computed chunk by chunk
where the chunks live; ``score`` on them is one reduction there.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from . import _sklearn, registry
from ._sklearn import available_if
from .backend import Backend
from .base import FittedBase
from .conversion import host_sample_weight, input_kind, sparse_to_backend, to_backend
from .errors import NotFittedError
from .featurenames import check_feature_names
from .glm import linear_predictor
from .lazy import lazy_owner
from .model import Model
from .readers import RowReader, first_nonfinite_row
from .selection import owner_of
from .sources import default_block_rows
from .validation import (
    check_labels,
    check_sample_weight,
    check_targets,
    plain_input,
    to_host,
)

__all__ = ["PredictMixin", "map_logits"]


def map_logits(
    backend: Backend,
    W: Any,
    b: Any,
    dtype: str,
    X: Any,
    fn: Callable[[Any], Any],
    *,
    n_features: int,
    estimator_name: str,
    block_rows: int | None = None,
) -> Any:
    """``fn(Z)`` for the linear predictor ``Z (n, c)`` of ``X``, in the namespace of ``X``.

    In-memory ``X`` is moved to the parameters' device (any backend), and the
    result comes back in ``X``'s namespace and on its device. Block and sparse
    input is processed in blocks of rows; ``fn``'s results are concatenated on
    the host and returned as NumPy. A lazy array (Dask) gives a lazy array,
    ``fn`` applied chunk by chunk where the chunks live (its backend's
    ``map_logits``, :mod:`anyglm.lazy`).

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> from anyglm.prediction import map_logits
    >>> be = anyglm.get_backend("numpy")
    >>> map_logits(be, np.ones((2, 1)), np.zeros(1), "float64", [[1.0, 2.0]], lambda Z: Z,
    ...            n_features=2, estimator_name="Estimator").tolist()
    [[3.0]]
    """
    lazy = lazy_owner(X)
    if lazy is not None:
        return lazy.map_logits(
            backend, W, b, dtype, X, fn, n_features=n_features, estimator_name=estimator_name
        )
    kind = input_kind(X)
    if kind == "memory":
        param_dev = backend.device_of(W)
        Xd, _, _ = to_backend(X, backend, "X", dtype, param_dev)
        _check_width(int(Xd.shape[1]), n_features, estimator_name)
        out = fn(linear_predictor(backend.xp, Xd, W, b, 1)[:, 0, :])
        return _back_to_input(backend, X, out, param_dev)
    if kind == "sparse":
        Xs, _, _ = sparse_to_backend(X, backend, "X", dtype)
        _check_width(int(Xs.shape[1]), n_features, estimator_name)
        return _blocks(
            backend,
            W,
            b,
            fn,
            int(Xs.shape[0]),
            lambda s, e: Xs[s:e],
            block_rows or default_block_rows(n_features, 8),
        )
    shape = tuple(int(s) for s in X.shape)
    if len(shape) != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {shape}")
    _check_width(shape[1], n_features, estimator_name)
    reader = RowReader(X)
    rows = block_rows or default_block_rows(shape[1], np.dtype(dtype).itemsize)
    raw = np.empty((rows, shape[1]), dtype=reader.dtype)
    buf = np.empty((rows, shape[1]), dtype=dtype)

    def read(s: int, e: int) -> Any:
        view = buf[: e - s]
        np.copyto(view, reader.read(s, e, raw), casting="unsafe")
        bad = first_nonfinite_row(view)
        if bad is not None:
            raise ValueError(
                f"X contains NaN or infinity (first at row {s + bad}); "
                "remove or impute those values"
            )
        return backend.from_numpy(view, dtype=dtype, device=backend.device_of(W))

    try:
        return _blocks(backend, W, b, fn, shape[0], read, rows)
    finally:
        reader.close()


def _check_width(d: int, n_features: int, estimator_name: str) -> None:
    if d != n_features:
        # scikit-learn's wording, which its estimator checks look for.
        raise ValueError(
            f"X has {d} features, but {estimator_name} is expecting {n_features} features as input"
        )


def _blocks(
    backend: Backend,
    W: Any,
    b: Any,
    fn: Callable[[Any], Any],
    n: int,
    rows: Callable[[int, int], Any],
    block_rows: int,
) -> np.ndarray:
    parts = []
    for s in range(0, n, block_rows):
        Z = linear_predictor(backend.xp, rows(s, min(s + block_rows, n)), W, b, 1)[:, 0, :]
        out = fn(Z)
        parts.append(out if isinstance(out, np.ndarray) else backend.to_numpy(out))
    return np.concatenate(parts, axis=0)


def _back_to_input(backend: Backend, X: Any, A: Any, param_dev: Any) -> Any:
    """``A`` in the namespace (and on the device) of the prediction input ``X``."""
    if isinstance(A, np.ndarray) and A.dtype.kind not in "biuf":
        return A  # string labels live on the host
    owner = owner_of(X)
    if owner is backend:
        src = backend.device_of(X)
        if src == param_dev:
            return A
        import array_api_compat

        return array_api_compat.to_device(A, src)
    host = A if isinstance(A, np.ndarray) else backend.to_numpy(A)
    if owner is None or owner.name == "numpy":
        return host
    return owner.from_numpy(host, device=owner.device_of(X))


class PredictMixin(FittedBase):
    """``decision_function``, ``predict``, ``predict_proba`` and ``score`` of a fitted estimator.

    Each maps the linear predictor of ``X`` (:func:`map_logits`) through the
    model: in one product for data in memory, block by block for data read
    from disk and sparse matrices.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.prediction import PredictMixin
    >>> issubclass(anyglm.LinearRegression, PredictMixin)
    True
    """

    _W: Any
    _b: Any
    _dtype: str
    _y_shape: int
    n_features_in_: int
    block_rows: int | None
    classes_: np.ndarray
    feature_names_in_: np.ndarray
    _get_model: Callable[[], Model]
    #: Whether regressors have ``decision_function`` (the linear predictor):
    #: yes for the generic :class:`~anyglm.Estimator`, no for the classes that
    #: follow scikit-learn's conventions strictly.
    _decision_for_regressors = True

    def _check_fitted(self) -> None:
        if not hasattr(self, "_W"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) before using it"
            )

    def _check_dispatch(self, X: Any, method: str) -> None:
        """scikit-learn's rule while its ``array_api_dispatch`` is on: predict in fit's namespace.

        Otherwise anyglm moves the input to the parameters and answers in the
        input's namespace (NumPy in, NumPy out, for a model fitted on any backend).
        """
        if not _sklearn.AVAILABLE:
            return
        from sklearn import get_config

        if not get_config().get("array_api_dispatch", False):
            return
        owner = owner_of(X)
        name = "numpy" if owner is None else owner.name
        if name == self._backend_name and (
            owner is None or owner.device_of(X) == owner.device_of(self._W)
        ):
            return
        raise ValueError(
            f"Inputs passed to {type(self).__name__}.{method}() must use the same namespace "
            f"and the same device as those passed to fit(): fitted on {self._backend_name!r}, "
            f"got {name!r} data (scikit-learn's array_api_dispatch is on; with it off, anyglm "
            "moves the data and answers in its namespace)"
        )

    def _is_classifier(self) -> bool:
        name = getattr(self, "_model_name", None)
        model = registry.get_model(name) if name else self._get_model()
        return model.task == "classification"

    def _has_decision_function(self) -> bool:
        return self._decision_for_regressors or self._is_classifier()

    def _map(self, X: Any, fn: Callable[[Any], Any], method: str) -> Any:
        self._check_fitted()
        X = plain_input(X, "X")
        self._check_dispatch(X, method)
        check_feature_names(getattr(self, "feature_names_in_", None), X, type(self).__name__)
        return map_logits(
            self._backend_obj,
            self._W,
            self._b,
            self._dtype,
            X,
            fn,
            n_features=self.n_features_in_,
            estimator_name=type(self).__name__,
            block_rows=self.block_rows,
        )

    @available_if(_has_decision_function)
    def decision_function(self, X: Any) -> Any:
        """The linear predictor ``X @ coef_.T + intercept_``.

        Returns shape ``(n,)`` for binary classifiers and 1-D regression targets,
        ``(n, n_outputs)`` otherwise, in the namespace of ``X``. A softmax model
        of two classes gives ``Z[:, 1] - Z[:, 0]`` (positive: the second class),
        as scikit-learn's binary classifiers do. Classifiers and the generic
        :class:`~anyglm.Estimator` have it; :class:`~anyglm.LinearRegression`
        does not (scikit-learn's regressors have no ``decision_function``).

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> clf = anyglm.LogisticRegression(epochs=20, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], [0, 1]).decision_function([[2.0]]).shape
        (1,)
        """
        self._check_fitted()
        one = self._model_obj.binary or self._y_shape == 1
        two_classes = getattr(self, "classes_", None) is not None and len(self.classes_) == 2

        def decision(Z: Any) -> Any:
            if Z.shape[1] == 1 and one:
                return Z[:, 0]
            if Z.shape[1] == 2 and two_classes:
                return Z[:, 1] - Z[:, 0]
            return Z

        return self._map(X, decision, "decision_function")

    def predict(self, X: Any) -> Any:
        """Predicted class labels (classifiers) or mean predictions (regressors).

        Labels are returned in the namespace of ``X`` when they are numbers and as
        a NumPy array otherwise (strings cannot live on a device).

        Examples
        --------
        >>> import anyglm
        >>> clf = anyglm.LogisticRegression(epochs=50, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], ["no", "yes"]).predict([[-3.0], [3.0]]).tolist()
        ['no', 'yes']
        """
        self._check_fitted()
        be, model = self._backend_obj, self._model_obj
        xp = be.xp
        if model.task != "classification":
            one = self._y_shape == 1

            def mean(Z: Any) -> Any:
                P = model.inverse_link(xp, Z)
                return P[:, 0] if one else P

            return self._map(X, mean, "predict")
        classes = self.classes_

        def labels(Z: Any) -> Any:
            if Z.shape[1] == 1:  # in the backend's index dtype (int32 on JAX without x64)
                idx = xp.astype(Z[:, 0] > 0, be.dtype(be.index_dtype(be.device_of(Z))))
            else:
                idx = xp.argmax(Z, axis=1)
            if classes.dtype.kind in "biuf":
                lab = be.from_numpy(classes, device=be.device_of(Z))
                return xp.take(lab, idx, axis=0)
            return classes[be.to_numpy(idx)]

        return self._map(X, labels, "predict")

    @available_if(_is_classifier)
    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape ``(n, n_classes)``, columns in ``classes_`` order.

        Classifiers only: a regressor has no ``predict_proba`` attribute.

        Examples
        --------
        >>> import anyglm
        >>> clf = anyglm.LogisticRegression(epochs=20, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], [0, 1]).predict_proba([[0.0]]).round(3).tolist()
        [[0.5, 0.5]]
        """
        self._check_fitted()
        model = self._model_obj
        xp = self._backend_obj.xp

        def proba(Z: Any) -> Any:
            P = model.inverse_link(xp, Z)
            return xp.concat([1.0 - P, P], axis=1) if Z.shape[1] == 1 else P

        return self._map(X, proba, "predict_proba")

    def score(self, X: Any, y: Any, sample_weight: Any = None) -> float:
        """Accuracy for classifiers, R^2 (averaged over targets) for regressors.

        Examples
        --------
        >>> import anyglm
        >>> clf = anyglm.LogisticRegression(epochs=50, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], [0, 1]).score([[-2.0], [2.0]], [0, 1])
        1.0
        """
        self._check_fitted()
        pred = self.predict(X)
        lazy = lazy_owner(pred)
        if lazy is not None:  # one reduction where the chunks live; only the score comes back
            classification = self._model_obj.task == "classification"
            return float(lazy.score(pred, y, sample_weight, classification=classification))
        p = to_host(pred, "prediction", owner_of(pred))
        t = to_host(y, "y", owner_of(y))
        n = p.shape[0]
        hw = host_sample_weight(sample_weight)
        w = None if hw is None else check_sample_weight(hw, n)
        if self._model_obj.task == "classification":
            t = check_labels(t, n)
            return float(np.average(p == t, weights=w))
        t = check_targets(t, n).reshape(n, -1)
        p = p.reshape(n, -1).astype(np.float64)
        if t.shape != p.shape:
            raise ValueError(f"y has shape {t.shape}, predictions have shape {p.shape}")
        ss_res = np.average((t - p) ** 2, axis=0, weights=w)
        ss_tot = np.average((t - np.average(t, axis=0, weights=w)) ** 2, axis=0, weights=w)
        r2 = np.where(ss_tot > 0, 1 - ss_res / np.where(ss_tot > 0, ss_tot, 1), 0.0)
        return float(np.mean(r2))
