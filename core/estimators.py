"""Estimators with scikit-learn's conventions, on any registered backend and model."""

from __future__ import annotations

import copy
import inspect
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import array_api_compat
import numpy as np

from . import registry
from .backend import Backend, dtype_name
from .data import ArraySource
from .errors import DivergenceError, NotFittedError
from .glm import linear_predictor
from .model import Model
from .trainer import EpochEnd, train
from .validation import (
    check_device_features,
    check_features,
    check_hyperparameters,
    check_labels,
    check_sample_weight,
    check_targets,
    to_host,
)

__all__ = ["Estimator", "LinearRegression", "LogisticRegression", "SoftmaxRegression"]


def _owner(x: Any) -> Backend | None:
    """The available backend whose library ``x`` belongs to, without importing any."""
    if isinstance(x, np.ndarray):
        return registry.get_backend("numpy")
    state = registry.plugin_state()
    for be in state.backends.items.values():
        if be.owns(x):
            return be
    return None


def _float_dtype_of(x: Any) -> str | None:
    name = dtype_name(getattr(x, "dtype", None))
    if name in ("float32", "float64"):
        return name
    if name == "float16":
        return "float32"
    return None


def _pick_dtype(be: Backend, device: Any, requested: str | None, x: Any) -> str:
    """The requested dtype, else the input's float dtype where the device supports it."""
    if requested is not None:
        return requested
    dt = _float_dtype_of(x) or be.default_dtype(device)
    return dt if dt in be.float_dtypes(device) else be.default_dtype(device)


@dataclass
class _Prepared:
    """Checked data on the backend, and what the parameters will belong to."""

    model: Model
    backend: Backend
    device: Any
    dtype: str
    source: ArraySource
    validation: tuple[Any, Any] | None
    classes: np.ndarray | None
    y_shape: int
    n_features: int
    n_outputs: int
    n_train: int

    def zero_parameters(self, n_configs: int = 1) -> tuple[Any, Any]:
        """Zero ``W (d, K * c)`` and ``b (K * c,)`` in the data's dtype, on its device."""
        xp, dev = self.backend.xp, self.device
        dt = self.backend.dtype(self.dtype, dev)
        width = n_configs * self.n_outputs
        return (
            xp.zeros((self.n_features, width), dtype=dt, device=dev),
            xp.zeros((width,), dtype=dt, device=dev),
        )


class Estimator:
    """A generalised linear model trained by minibatch SGD with L2 regularisation.

    Parameters
    ----------
    model : str, default="softmax"
        Name of a registered model: ``"linear"``, ``"logistic"``, ``"softmax"``
        or one a plugin provides.
    batch_size : int, default=32
        Rows per minibatch (the last one of an epoch may be smaller; a value
        larger than the data uses all rows).
    learning_rate : float, default=0.01
        SGD step size ``eps`` in ``W <- W - eps * (grad + alpha * W)``.
    epochs : int, default=100
        Passes over the training data.
    alpha : float, default=1e-4
        L2 penalty ``(alpha / 2) ||W||^2`` on the weights (not the intercept).
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the host-side generator that draws the validation split and
        every shuffle; the same seed gives the same minibatches on every backend.
    validation_fraction : float, default=0.0
        Fraction of the training rows held out to score each epoch (ignored
        when ``fit`` gets ``validation_data``).
    n_iter_no_change : int or None, default=None
        Stop when the monitored loss (validation loss if there is validation
        data, else training loss) has not improved by ``tol`` for this many
        epochs. ``None`` trains all ``epochs``.
    tol : float, default=1e-4
        Minimum improvement for early stopping.
    backend : str or None, default=None
        Backend name, or ``"auto"`` to follow the input's array library (NumPy
        for lists). ``None`` reads the ``ANYGLM_BACKEND`` environment variable
        and falls back to ``"auto"``.
    device : object or None, default=None
        Device on the backend; ``None`` keeps the input's device (or the
        backend's default when the data is moved from another library).
    dtype : {"float32", "float64"} or None, default=None
        Floating type of the parameters; ``None`` follows a floating input and
        uses the backend's widest float otherwise.
    class_weight : dict, "balanced" or None, default=None
        Classifiers only: weights per class, multiplied into ``sample_weight``.

    Attributes
    ----------
    coef_ : array
        Weights, shape ``(n_outputs, n_features)``, or ``(n_features,)`` for a
        1-D regression target; in the namespace and on the device of the data.
    intercept_ : array
        Intercepts, shape ``(n_outputs,)``, or ``()`` for a 1-D regression target.
    classes_ : numpy.ndarray
        Classifiers only: the sorted class labels.
    n_features_in_ : int
    history_ : dict of lists
        Per-epoch ``train_loss`` and, with validation data, ``val_loss`` and
        ``val_score`` (accuracy or R^2).
    n_epochs_ : int
        Epochs actually run (fewer than ``epochs`` after early stopping).
    backend_ : str
        Name of the backend the model was trained on.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> X = np.array([[0.0], [1.0], [2.0], [3.0]])
    >>> est = anyglm.Estimator("linear", batch_size=4, learning_rate=0.3, epochs=500,
    ...                        alpha=0.0, random_state=0).fit(X, 2 * X[:, 0] + 1)
    >>> round(float(est.coef_[0]), 3), round(float(est.intercept_), 3)
    (2.0, 1.0)
    """

    # Constructor parameters (stored by __init__, validated by fit).
    model: str
    batch_size: int
    learning_rate: float
    epochs: int
    alpha: float
    shuffle: bool
    random_state: int | np.random.Generator | None
    validation_fraction: float
    n_iter_no_change: int | None
    tol: float
    backend: str | None
    device: Any
    dtype: str | None
    # Fitted state (absent until fit).
    _W: Any
    _b: Any
    _model_obj: Model
    _backend_obj: Backend
    _y_shape: int
    _n_targets: int
    _dtype: str

    def __init__(
        self,
        model: str = "softmax",
        *,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        epochs: int = 100,
        alpha: float = 1e-4,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = None,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        class_weight: dict[Hashable, float] | str | None = None,
    ) -> None:
        _store(self, locals())

    # -- scikit-learn parameter protocol -------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [p for p in sig.parameters if p != "self"]

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as scikit-learn's ``clone`` expects.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.LogisticRegression(alpha=0.5).get_params()["alpha"]
        0.5
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params: Any) -> Estimator:
        """Set constructor parameters; unknown names raise ``ValueError``.

        Examples
        --------
        >>> import anyglm
        >>> anyglm.SoftmaxRegression().set_params(epochs=3).epochs
        3
        """
        valid = set(self._param_names())
        for key, value in params.items():
            if key not in valid:
                raise ValueError(
                    f"invalid parameter {key!r} for {type(self).__name__}; "
                    f"valid parameters: {', '.join(sorted(valid))}"
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

    def __sklearn_tags__(self) -> Any:
        from sklearn.utils import ClassifierTags, RegressorTags, Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type, target_tags=TargetTags(required=True))
        if self._estimator_type == "classifier":
            tags.classifier_tags = ClassifierTags()
        else:
            tags.regressor_tags = RegressorTags()
        return tags

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self._get_model().task == "classification" else "regressor"

    # -- resolution of model, backend, device, dtype ----------------------------------------

    def _get_model(self) -> Model:
        if not isinstance(self.model, str):
            raise TypeError(f"model must be a model name (str), got {type(self.model).__name__}")
        return registry.get_model(self.model)

    def _resolve_backend(self, X: Any) -> Backend:
        name = self.backend
        if name is None:
            name = os.environ.get("ANYGLM_BACKEND", "").strip() or "auto"
        if not isinstance(name, str):
            raise TypeError(f"backend must be a backend name or 'auto', got {name!r}")
        if name == "auto":
            be = _owner(X) or registry.get_backend("numpy")
        else:
            be = registry.get_backend(name)
        be.require()
        return be

    def _to_backend(
        self, X: Any, be: Backend, name: str, dtype: str | None, device: Any
    ) -> tuple[Any, str, Any]:
        """``X`` on ``be`` as a checked float array; returns (array, dtype name, device)."""
        owner = _owner(X)
        if owner is be:
            xp = be.xp
            if isinstance(X, np.ndarray):
                check_features(X, name)  # host data: the detailed messages, no copy
            else:
                check_device_features(xp, X, name)
            src = be.device_of(X)
            dev = src if device is None else device
            dt = _pick_dtype(be, dev, dtype, X)
            if dtype_name(X.dtype) != dt:
                X = xp.astype(X, be.dtype(dt, src))
            if src != dev:
                X = array_api_compat.to_device(X, dev)
            return X, dt, dev
        host = to_host(X, name, owner)
        check_features(host, name)
        dev = be.default_device() if device is None else device
        dt = _pick_dtype(be, dev, dtype, host)
        return be.from_numpy(host, dtype=dt, device=dev), dt, dev

    # -- fitting -------------------------------------------------------------------------

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        sample_weight: Any = None,
        classes: Sequence[Hashable] | None = None,
        validation_data: tuple[Any, Any] | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        checkpoint_on: str = "epoch",
        resume: str | os.PathLike[str] | None = None,
        callback: Callable[[dict[str, Any]], bool | None] | None = None,
    ) -> Estimator:
        """Train on ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Any array of a registered backend, or anything NumPy can read.
        y : array-like of shape (n_samples,) or (n_samples, n_targets)
            Class labels (any hashable values) or real targets.
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights; the loss is ``sum(w_i * loss_i) / n``.
        classes : sequence, optional
            Classifiers: every class, including those absent from ``y`` (a
            single-class ``y`` is refused unless the classes are declared).
        validation_data : (X_val, y_val), optional
            Scored after every epoch; takes precedence over ``validation_fraction``.
        checkpoint : path, optional
            Write the full training state (parameters, epoch, random-generator
            state, history, hyperparameters) to this file, atomically.
        checkpoint_on : {"epoch", "interrupt"}, default="epoch"
            Write the checkpoint after every epoch, or only when training is
            interrupted (``KeyboardInterrupt``, e.g. Ctrl-C), with the state
            after the last completed epoch; the interrupt is then re-raised.
        resume : path, optional
            Continue from a checkpoint written by a fit with the same data and
            hyperparameters (on any backend). The result is bitwise equal to
            an uninterrupted run on the same backend.
        callback : callable, optional
            Called after every epoch with a dict (``epoch``, ``epochs`` and the
            latest ``train_loss``, ``val_loss``, ``val_score``); returning
            ``True`` stops training after that epoch.

        Returns
        -------
        self

        Raises
        ------
        DivergenceError
            The loss or parameters became non-finite; the estimator keeps the
            last finite parameters.

        Examples
        --------
        >>> import anyglm
        >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
        >>> Xs = anyglm.datasets.standardize(X)[0]
        >>> clf = anyglm.LogisticRegression(epochs=5, random_state=0).fit(Xs, y)
        >>> clf.classes_.tolist()
        [0, 1]
        """
        from .modelfile import check_resumable, read_checkpoint

        hp = self._check_params()
        if checkpoint_on not in ("epoch", "interrupt"):
            raise ValueError(f"checkpoint_on must be 'epoch' or 'interrupt', got {checkpoint_on!r}")
        if checkpoint is not None:
            folder = os.path.dirname(os.fspath(checkpoint)) or "."
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"cannot write checkpoint {os.fspath(checkpoint)!r}: "
                    f"folder {folder!r} does not exist"
                )
        rng = _make_rng(self.random_state)
        ck = None if resume is None else read_checkpoint(resume)
        if ck is not None:
            # Replay the validation split the interrupted run drew.
            rng.bit_generator.state = ck.initial_rng_state
        initial_rng_state = dict(rng.bit_generator.state)
        prep = self._prepare(X, y, hp, rng, sample_weight, classes, validation_data)
        be, dev = prep.backend, prep.device
        W, b = prep.zero_parameters()
        start, history = 0, None
        if ck is not None:
            check_resumable(ck, self, prep)
            W = be.from_numpy(ck.W, dtype=prep.dtype, device=dev)
            b = be.from_numpy(ck.b, dtype=prep.dtype, device=dev)
            start, history = ck.epoch, ck.history
            rng.bit_generator.state = ck.rng_state
        self._adopt(prep)
        self._rng = rng
        last: list[tuple[EpochEnd, int]] = []
        every = checkpoint if checkpoint_on == "epoch" else None
        on_epoch_end = self._epoch_hook(prep, every, initial_rng_state, callback, last)
        try:
            self._run(prep, hp, W, b, rng, start, history, hp["epochs"], on_epoch_end)
        except KeyboardInterrupt:
            if last:
                done = _completed(*last[0])
                if checkpoint is not None and checkpoint_on == "interrupt":
                    from .modelfile import write_checkpoint

                    write_checkpoint(checkpoint, self, prep, done, initial_rng_state)
                self._set_params(done.W, done.b, _history_arrays(done), done.epoch)
            raise
        return self

    def partial_fit(
        self,
        X: Any,
        y: Any,
        *,
        classes: Sequence[Hashable] | None = None,
        sample_weight: Any = None,
    ) -> Estimator:
        """One pass (epoch) of minibatch SGD over ``X, y``, continuing from the current state.

        The first call initialises the model (classifiers need ``classes`` there
        unless ``y`` already holds every class); later calls must bring data with
        the same features and labels among ``classes_``. Minibatch order comes
        from a generator seeded once with ``random_state``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> X = np.array([[-2.0], [-1.0], [1.0], [2.0]])
        >>> clf = anyglm.LogisticRegression(learning_rate=0.5, random_state=0)
        >>> for _ in range(20):
        ...     clf = clf.partial_fit(X, [0, 0, 1, 1], classes=[0, 1])
        >>> clf.n_epochs_, clf.predict([[3.0]]).tolist()
        (20, [1])
        """
        hp = self._check_params()
        first = not hasattr(self, "_W")
        pinned: dict[str, Any] = {}
        if first:
            rng = _make_rng(self.random_state)
        else:
            # A model from anyglm.load() has no generator yet: seed one.
            rng = self._rng if hasattr(self, "_rng") else _make_rng(self.random_state)
            self._rng = rng
            be = self._resolve_backend(X)
            if be is not self._backend_obj:
                raise ValueError(
                    f"partial_fit got data for backend {be.name!r}, but the model "
                    f"lives on {self._backend_obj.name!r}"
                )
            # Later batches are converted to the parameters' dtype and device.
            pinned = {"dtype": self._dtype, "device": be.device_of(self._W)}
            if classes is not None and hasattr(self, "classes_"):
                declared = _unique_labels(to_host(classes, "classes", None).ravel(), "classes")
                if declared.tolist() != self.classes_.tolist():
                    raise ValueError(
                        f"classes={declared.tolist()} differs from the classes of the first "
                        f"call {self.classes_.tolist()}"
                    )
            classes = self.classes_.tolist() if hasattr(self, "classes_") else None
        hp = {**hp, "validation_fraction": 0.0}
        prep = self._prepare(X, y, hp, rng, sample_weight, classes, None, **pinned)
        if first:
            W, b = prep.zero_parameters()
            start, history = 0, None
            self._adopt(prep)
            self._rng = rng
        else:
            if prep.n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {prep.n_features} features, but the first partial_fit call had "
                    f"{self.n_features_in_}"
                )
            W, b, start = self._W, self._b, self.n_epochs_
            history = {k: [np.asarray([v]) for v in vals] for k, vals in self.history_.items()}
        self._run(prep, hp, W, b, rng, start, history, start + 1, None)
        return self

    def _check_params(self) -> dict[str, Any]:
        model = self._get_model()
        hp = check_hyperparameters(
            batch_size=self.batch_size,
            learning_rate=self.learning_rate,
            epochs=self.epochs,
            alpha=self.alpha,
            validation_fraction=self.validation_fraction,
            n_iter_no_change=self.n_iter_no_change,
            tol=self.tol,
            shuffle=self.shuffle,
        )
        if self.dtype not in (None, "float32", "float64"):
            raise ValueError(f"dtype must be 'float32', 'float64' or None, got {self.dtype!r}")
        class_weight = getattr(self, "class_weight", None)
        if model.task != "classification" and class_weight is not None:
            raise ValueError(
                f"class_weight applies to classifiers; model {model.name!r} is a regressor"
            )
        hp["model"] = model
        return hp

    def _prepare(
        self,
        X: Any,
        y: Any,
        hp: dict[str, Any],
        rng: np.random.Generator,
        sample_weight: Any,
        classes: Sequence[Hashable] | None,
        validation_data: tuple[Any, Any] | None,
        dtype: str | None = None,
        device: Any = None,
    ) -> _Prepared:
        """Check and move the data; draw the validation split from ``rng``."""
        model: Model = hp["model"]
        be = self._resolve_backend(X)
        Xd, dt, dev = self._to_backend(
            X,
            be,
            "X",
            self.dtype if dtype is None else dtype,
            self.device if device is None else device,
        )
        n, d = int(Xd.shape[0]), int(Xd.shape[1])
        y_host = to_host(y, "y", _owner(y))
        Y_host, classes_, y_shape = self._encode_fit_targets(model, y_host, n, classes)
        weights = self._weights(model, sample_weight, n, Y_host, classes_)

        train_rows = np.arange(n)
        validation = None
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise TypeError("validation_data must be a pair (X_val, y_val)")
            Xv, _, _ = self._to_backend(validation_data[0], be, "X_val", dt, dev)
            if Xv.shape[1] != d:
                raise ValueError(f"X_val has {Xv.shape[1]} features but X has {d}")
            yv_host = to_host(validation_data[1], "y_val", _owner(validation_data[1]))
            Yv = self._encode_targets(
                model, yv_host, int(Xv.shape[0]), classes_, "y_val", Y_host.shape[1]
            )
            validation = (Xv, be.from_numpy(Yv, dtype=dt, device=dev))
        elif hp["validation_fraction"] > 0:
            n_val = round(hp["validation_fraction"] * n)
            if n_val < 1 or n_val >= n:
                raise ValueError(
                    f"validation_fraction={self.validation_fraction} of {n} rows leaves "
                    f"{n_val} validation and {n - n_val} training rows; both need at least one"
                )
            perm = rng.permutation(n)
            val_rows, train_rows = np.sort(perm[:n_val]), np.sort(perm[n_val:])
            vidx = be.from_numpy(val_rows, dtype="int64", device=dev)
            validation = (
                be.xp.take(Xd, vidx, axis=0),
                be.from_numpy(Y_host[val_rows], dtype=dt, device=dev),
            )
        if len(train_rows) < n:
            Xd = be.xp.take(Xd, be.from_numpy(train_rows, dtype="int64", device=dev), axis=0)
            Y_host = Y_host[train_rows]
            weights = None if weights is None else weights[train_rows]
        Yd = be.from_numpy(Y_host, dtype=dt, device=dev)
        wd = None if weights is None else be.from_numpy(weights, dtype=dt, device=dev)
        return _Prepared(
            model=model,
            backend=be,
            device=dev,
            dtype=dt,
            source=ArraySource(be, Xd, Yd, wd, device=dev),
            validation=validation,
            classes=classes_,
            y_shape=y_shape,
            n_features=d,
            n_outputs=int(Y_host.shape[1]),
            n_train=len(train_rows),
        )

    def _adopt(self, prep: _Prepared) -> None:
        """Record what the fitted parameters belong to (backend, model, classes...)."""
        self.backend_ = prep.backend.name
        self.n_features_in_ = prep.n_features
        self._model_obj = prep.model
        self._backend_obj = prep.backend
        self._y_shape = prep.y_shape
        self._dtype = prep.dtype
        # A refit may switch between a classifier and a regressor: drop the other's state.
        if prep.classes is not None:
            self.classes_ = prep.classes
            self.__dict__.pop("_n_targets", None)
        else:
            self._n_targets = prep.n_outputs
            self.__dict__.pop("classes_", None)

    def _epoch_hook(
        self,
        prep: _Prepared,
        checkpoint: str | os.PathLike[str] | None,
        initial_rng_state: dict[str, Any],
        callback: Callable[[dict[str, Any]], bool | None] | None,
        last: list[tuple[EpochEnd, int]],
    ) -> Callable[[EpochEnd], bool | None]:
        def on_epoch_end(info: EpochEnd) -> bool | None:
            # The state after the last completed epoch, kept for an interrupt:
            # parameters are immutable arrays; the generator is copied because
            # training goes on drawing from it. The history lists only grow, so
            # their length now is enough to cut them back (see _completed).
            rng_copy = copy.deepcopy(info.rng)  # any bit generator, not only PCG64
            snapshot = EpochEnd(info.epoch, info.epochs, info.W, info.b, rng_copy, info.history)
            last[:] = [(snapshot, len(info.history["train_loss"]))]
            if checkpoint is not None:
                from .modelfile import write_checkpoint

                write_checkpoint(checkpoint, self, prep, info, initial_rng_state)
            if callback is not None:
                logs: dict[str, Any] = {"epoch": info.epoch, "epochs": info.epochs}
                logs.update({k: float(v[-1][0]) for k, v in info.history.items()})
                return callback(logs)
            return None

        return on_epoch_end

    def _run(
        self,
        prep: _Prepared,
        hp: dict[str, Any],
        W: Any,
        b: Any,
        rng: np.random.Generator,
        start: int,
        history: dict[str, list[np.ndarray]] | None,
        epochs: int,
        on_epoch_end: Callable[[EpochEnd], bool | None] | None,
    ) -> None:
        try:
            result = train(
                prep.model,
                prep.backend,
                prep.source,
                W=W,
                b=b,
                n_configs=1,
                learning_rate=hp["learning_rate"],
                alpha=hp["alpha"],
                epochs=epochs,
                batch_size=min(hp["batch_size"], prep.n_train),
                shuffle=hp["shuffle"],
                rng=rng,
                dtype=prep.dtype,
                device=prep.device,
                validation=prep.validation,
                n_iter_no_change=hp["n_iter_no_change"],
                tol=hp["tol"],
                start_epoch=start,
                history=history,
                on_epoch_end=on_epoch_end,
            )
        except DivergenceError as err:
            W0, b0 = err.last_finite  # type: ignore[attr-defined]
            self._set_params(W0, b0, err.history, err.epoch - 1)  # type: ignore[attr-defined]
            raise
        self._set_params(result.W, result.b, result.history, result.epochs_run)

    def _set_params(self, W: Any, b: Any, history: Mapping[str, Any], epochs_run: int) -> None:
        self._W, self._b = W, b
        self.history_ = {
            k: [float(v) for v in np.asarray(arr).reshape(-1, 1)[:, 0]]
            for k, arr in history.items()
        }
        self.n_epochs_ = epochs_run
        xp = self._backend_obj.xp
        if self._y_shape == 1:
            self.coef_ = W[:, 0]
            self.intercept_ = b[0]
        else:
            self.coef_ = xp.matrix_transpose(W)
            self.intercept_ = b

    def _encode_fit_targets(
        self, model: Model, y: np.ndarray, n: int, classes: Sequence[Hashable] | None
    ) -> tuple[np.ndarray, np.ndarray | None, int]:
        if model.task == "classification":
            y = check_labels(y, n)
            if classes is not None:
                declared = _unique_labels(to_host(classes, "classes", None).ravel(), "classes")
                if len(declared) != len(to_host(classes, "classes", None).ravel()):
                    raise ValueError("classes contains duplicates")
                classes_ = declared
            else:
                classes_ = _unique_labels(y, "y")
            k = len(classes_)
            if k < 2:
                raise ValueError(
                    f"y has a single class ({classes_.tolist()[0]!r}); "
                    "a classifier needs at least two. "
                    "If other classes exist but are absent here, declare them: "
                    "fit(X, y, classes=[...])"
                )
            if model.binary and k > 2:
                raise ValueError(
                    f"model {model.name!r} is binary but y has {k} classes; "
                    "use SoftmaxRegression (model='softmax') for more than two classes"
                )
            # Classifiers keep sklearn's (n_outputs, n_features) coef_, binary included.
            return self._encode_targets(model, y, n, classes_, "y"), classes_, 2
        y64 = check_targets(y, n)
        model.check_targets(y64.reshape(n, -1))
        return y64.reshape(n, -1), None, y64.ndim

    def _encode_targets(
        self,
        model: Model,
        y: np.ndarray,
        n: int,
        classes_: np.ndarray | None,
        name: str,
        n_targets: int = 1,
    ) -> np.ndarray:
        if classes_ is None:
            y64 = check_targets(y, n, name).reshape(n, -1)
            if y64.shape[1] != n_targets:
                raise ValueError(f"{name} has {y64.shape[1]} target columns but y has {n_targets}")
            model.check_targets(y64)
            return y64
        y = check_labels(y, n, name)
        idx = _label_indices(classes_, y, name)
        if model.binary:
            return idx.astype(np.float64).reshape(n, 1)
        onehot = np.zeros((n, len(classes_)))
        onehot[np.arange(n), idx] = 1.0
        return onehot

    def _weights(
        self,
        model: Model,
        sample_weight: Any,
        n: int,
        Y: np.ndarray,
        classes_: np.ndarray | None,
    ) -> np.ndarray | None:
        w = None if sample_weight is None else check_sample_weight(sample_weight, n)
        cw = getattr(self, "class_weight", None)
        if cw is not None and classes_ is not None:
            idx = Y[:, 0].astype(np.intp) if model.binary else np.argmax(Y, axis=1)
            counts = np.bincount(idx, minlength=len(classes_)).astype(np.float64)
            if isinstance(cw, str):
                if cw != "balanced":
                    raise ValueError(f"class_weight must be 'balanced', a dict or None, got {cw!r}")
                per_class = np.where(counts > 0, n / (len(classes_) * np.maximum(counts, 1)), 0.0)
            elif isinstance(cw, dict):
                per_class = np.ones(len(classes_))
                for label, value in cw.items():
                    pos = _label_indices(
                        classes_, np.asarray([label], dtype=object), "class_weight"
                    )
                    per_class[pos[0]] = _nonnegative(value, f"class_weight[{label!r}]")
            else:
                raise TypeError(f"class_weight must be 'balanced', a dict or None, got {cw!r}")
            w = per_class[idx] if w is None else w * per_class[idx]
            if not w.sum() > 0:
                raise ValueError("class_weight gives every sample a weight of zero")
        return w

    # -- prediction ----------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "_W"):
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet; call fit(X, y) before using it"
            )

    def _logits(self, X: Any) -> tuple[Any, Backend | None, Any]:
        """Z on the parameters' device, the input's backend, and the input's device
        (``None`` when the result can be returned as it is)."""
        self._check_fitted()
        be = self._backend_obj
        param_dev = be.device_of(self._W)
        Xd, _, _ = self._to_backend(X, be, "X", self._dtype, param_dev)
        if Xd.shape[1] != self.n_features_in_:
            raise ValueError(
                f"X has {Xd.shape[1]} features, but this {type(self).__name__} was fitted "
                f"with {self.n_features_in_}"
            )
        owner = _owner(X)
        back: Any = None
        if owner is not be:
            back = "host"
        elif be.device_of(X) != param_dev:
            back = be.device_of(X)
        return linear_predictor(be.xp, Xd, self._W, self._b, 1)[:, 0, :], owner, back

    def _out(self, A: Any, owner: Backend | None, back: Any) -> Any:
        """Return ``A`` in the namespace (and on the device) of the prediction input."""
        if back is None:
            return A
        if back != "host":
            return array_api_compat.to_device(A, back)
        host = self._backend_obj.to_numpy(A)
        if owner is None or owner.name == "numpy":
            return host
        return owner.from_numpy(host)

    def decision_function(self, X: Any) -> Any:
        """The linear predictor ``X @ coef_.T + intercept_``.

        Returns shape ``(n,)`` for binary classifiers and 1-D regression targets,
        ``(n, n_outputs)`` otherwise, in the namespace of ``X``.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> clf = anyglm.LogisticRegression(epochs=20, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], [0, 1]).decision_function([[2.0]]).shape
        (1,)
        """
        Z, owner, back = self._logits(X)
        if Z.shape[1] == 1 and (self._model_obj.binary or self._y_shape == 1):
            Z = Z[:, 0]
        return self._out(Z, owner, back)

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
        Z, owner, back = self._logits(X)
        be, xp, model = self._backend_obj, self._backend_obj.xp, self._model_obj
        if model.task != "classification":
            P = model.inverse_link(xp, Z)
            return self._out(P[:, 0] if self._y_shape == 1 else P, owner, back)
        idx = xp.astype(Z[:, 0] > 0, xp.int64) if Z.shape[1] == 1 else xp.argmax(Z, axis=1)
        if self.classes_.dtype.kind in "biuf":
            labels = be.from_numpy(self.classes_, device=be.device_of(Z))
            return self._out(xp.take(labels, idx, axis=0), owner, back)
        return self.classes_[be.to_numpy(idx)]

    def predict_proba(self, X: Any) -> Any:
        """Class probabilities, shape ``(n, n_classes)``, columns in ``classes_`` order.

        Examples
        --------
        >>> import anyglm
        >>> clf = anyglm.LogisticRegression(epochs=20, random_state=0)
        >>> clf.fit([[-1.0], [1.0]], [0, 1]).predict_proba([[0.0]]).round(3).tolist()
        [[0.5, 0.5]]
        """
        self._check_fitted()
        model = self._model_obj
        if model.task != "classification":
            raise AttributeError(
                f"predict_proba is only for classifiers; {model.name!r} is a regressor"
            )
        Z, owner, back = self._logits(X)
        xp = self._backend_obj.xp
        P = model.inverse_link(xp, Z)
        if Z.shape[1] == 1:
            P = xp.concat([1.0 - P, P], axis=1)
        return self._out(P, owner, back)

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
        p = to_host(pred, "prediction", _owner(pred))
        t = to_host(y, "y", _owner(y))
        n = p.shape[0]
        w = None if sample_weight is None else check_sample_weight(sample_weight, n)
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

    # -- model files ------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the fitted model to ``path`` (arrays plus JSON metadata, no pickle).

        The write is atomic: a reader sees the old file or the new one, never
        a partial one. Load it with :func:`anyglm.load` on any backend.

        Examples
        --------
        >>> import tempfile, pathlib, anyglm
        >>> clf = anyglm.LogisticRegression(epochs=5, random_state=0).fit([[-1.0], [1.0]], [0, 1])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clf.anyglm"
        >>> clf.save(path)
        >>> anyglm.load(path).predict([[3.0]]).tolist()
        [1]
        """
        from .modelfile import save_estimator

        self._check_fitted()
        save_estimator(self, path)


class _FixedModel(Estimator):
    """An estimator whose model is fixed by the class (no ``model`` parameter)."""

    _model_name = ""

    @property
    def model(self) -> str:  # type: ignore[override]
        return self._model_name

    def _get_model(self) -> Model:
        return registry.get_model(self._model_name)


class LinearRegression(_FixedModel):
    """Linear regression (squared error) by minibatch SGD with L2 (ridge).

    Takes every parameter of :class:`Estimator` except ``model`` and
    ``class_weight``.

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("diabetes")
    >>> Xs = anyglm.datasets.standardize(X)[0]
    >>> reg = anyglm.LinearRegression(random_state=0).fit(Xs, y)
    >>> reg.score(Xs, y) > 0.45
    True
    """

    _model_name = "linear"

    def __init__(
        self,
        *,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        epochs: int = 100,
        alpha: float = 1e-4,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = None,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
    ) -> None:
        _store(self, locals())


class _Classifier(_FixedModel):
    def __init__(
        self,
        *,
        batch_size: int = 32,
        learning_rate: float = 0.01,
        epochs: int = 100,
        alpha: float = 1e-4,
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = None,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        class_weight: dict[Hashable, float] | str | None = None,
    ) -> None:
        _store(self, locals())


class LogisticRegression(_Classifier):
    """Binary logistic regression (log loss) by minibatch SGD with L2.

    Takes every parameter of :class:`Estimator` except ``model``.

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
    >>> Xs = anyglm.datasets.standardize(X)[0]
    >>> anyglm.LogisticRegression(random_state=0).fit(Xs, y).score(Xs, y) > 0.95
    True
    """

    _model_name = "logistic"


class SoftmaxRegression(_Classifier):
    """Softmax (multinomial logistic) regression (cross-entropy) by minibatch SGD with L2.

    Takes every parameter of :class:`Estimator` except ``model``.

    Examples
    --------
    >>> import anyglm
    >>> X, y = anyglm.datasets.load_dataset("digits")
    >>> clf = anyglm.SoftmaxRegression(epochs=5, random_state=0)
    >>> clf.fit(anyglm.datasets.standardize(X)[0], y).classes_.tolist()
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """

    _model_name = "softmax"


def _completed(info: EpochEnd, n_rows: int) -> EpochEnd:
    """``info`` with its history cut back to the ``n_rows`` rows it had then."""
    history = {k: v[:n_rows] for k, v in info.history.items()}
    return EpochEnd(info.epoch, info.epochs, info.W, info.b, info.rng, history)


def _history_arrays(info: EpochEnd) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 1) for k, v in info.history.items()}


def _make_rng(random_state: Any) -> np.random.Generator:
    if isinstance(random_state, np.random.Generator):
        return random_state
    if random_state is None or (
        isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
    ):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be None, a non-negative int or a numpy.random.Generator, "
        f"got {random_state!r}"
    )


def _unique_labels(y: np.ndarray, name: str) -> np.ndarray:
    try:
        return np.unique(y)
    except TypeError:
        # Mixed types that cannot be sorted: keep the order of first appearance.
        seen: dict[Any, None] = {}
        for v in y:
            try:
                seen.setdefault(v, None)
            except TypeError:
                raise TypeError(f"{name} contains an unhashable label {v!r}") from None
        out = np.empty(len(seen), dtype=object)
        out[:] = list(seen)
        return out


def _sorted_lookup(classes_: np.ndarray, y: np.ndarray) -> np.ndarray | None:
    # Numbers (or strings) against sorted classes of the same kind: a binary
    # search, about 10x faster than the dictionary below on 6e4 labels.
    # Elsewhere (objects, mixed kinds, unsorted classes) None.
    # Same kind only: searchsorted promotes int64 against uint64 (or int against
    # float) to float64, where integers above 2**53 collide.
    if classes_.dtype.kind != y.dtype.kind or classes_.dtype.kind not in "biufUS":
        return None
    if len(classes_) == 0:
        return None
    if len(classes_) > 1 and not bool(np.all(classes_[1:] > classes_[:-1])):
        return None
    pos = np.minimum(np.searchsorted(classes_, y), len(classes_) - 1)
    return np.where(classes_[pos] == y, pos, -1).astype(np.intp, copy=False)


def _label_indices(classes_: np.ndarray, y: np.ndarray, name: str) -> np.ndarray:
    idx = _sorted_lookup(classes_, y)
    if idx is None:
        lookup: dict[Any, int] = {}
        for i, c in enumerate(classes_.tolist()):
            lookup[c] = i
        try:
            values = (lookup.get(v, -1) for v in y.tolist())
            idx = np.fromiter(values, dtype=np.intp, count=len(y))
        except TypeError:
            raise TypeError(f"{name} contains an unhashable label") from None
    if np.any(idx < 0):
        bad = y[np.argmax(idx < 0)]
        bad = bad.item() if isinstance(bad, np.generic) else bad  # 5, not np.int64(5)
        known = ", ".join(repr(c) for c in classes_.tolist()[:10])
        raise ValueError(
            f"{name} contains the label {bad!r}, which is not among the classes [{known}]"
        )
    return idx


def _nonnegative(value: Any, name: str) -> float:
    from .validation import check_real

    return check_real(name, value, allow_zero=True)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:
        return a is b


def _store(est: Estimator, params: dict[str, Any]) -> None:
    # scikit-learn's convention: __init__ stores its arguments unchanged.
    for key, value in params.items():
        if key not in ("self", "__class__"):
            setattr(est, key, value)
