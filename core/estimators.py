"""Estimators with scikit-learn's conventions, on any registered backend and model.

The estimator classes hold and check their parameters; fitting is
:class:`anyglm.fitting.FitMixin`'s job, predicting
:class:`anyglm.prediction.PredictMixin`'s, and a saved model is the
:class:`~anyglm.modelfile.ModelState` that :func:`anyglm.persistence.model_state`
makes of it.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import numpy as np

from . import _sklearn, modelfile, registry
from .base import ParamsBase, store_params
from .fitting import FitMixin, make_rng
from .model import Model
from .optim import OptimizerSpec
from .persistence import model_state
from .prediction import PredictMixin
from .trainstate import TrainState
from .validation import check_hyperparameters, check_positive_int, check_real

__all__ = [
    "Estimator",
    "LinearRegression",
    "LogisticRegression",
    "SoftmaxRegression",
    "make_rng",
]


class Estimator(FitMixin, PredictMixin, ParamsBase):
    """A generalised linear model trained by minibatch SGD.

    Parameters
    ----------
    model : str, default="softmax"
        Name of a registered model: ``"linear"``, ``"logistic"``, ``"softmax"``
        or one a plugin provides.
    batch_size : int, default=64
        Rows per minibatch (the last one of an epoch may be smaller; a value
        larger than the data uses all rows).
    learning_rate : float or "auto", default="auto"
        Initial step size ``eta`` of the schedule: ``W <- W - eta_t * (grad + alpha * W)``.
        ``"auto"`` derives it from the data: ``1 / (c (lambda + m / b) + alpha)``
        with ``c`` the model's curvature bound, ``lambda`` the largest eigenvalue
        of the rows' second moment, ``m`` the mean squared row norm and ``b`` the
        batch size (see :mod:`anyglm.stepsize`); the value used is ``learning_rate_``.
        Where that step diverges, ``fit`` starts over at a tenth of it (twice at
        most, with a :class:`~anyglm.ConvergenceWarning`).
    epochs : int, default=1000
        Passes over the training data: the cap, when ``n_iter_no_change`` stops
        the fit sooner (a :class:`~anyglm.ConvergenceWarning` says when the cap
        was reached first).
    alpha : float or "auto", default="auto"
        Strength of the penalty on the weights (not the intercept). ``"auto"``
        is ``1 / n_samples`` (the training rows), the penalty of scikit-learn's
        ``LogisticRegression()`` (``C=1``) and ``Ridge()`` (``alpha=1``) at their
        defaults; the value used is ``alpha_``.
    penalty : {"l2", "l1", "elasticnet", "none"}, default="l2"
        ``"l2"``: ``(alpha / 2) ||W||^2``; ``"l1"``: ``alpha ||W||_1``, which sets
        weights exactly to zero; ``"elasticnet"``: ``l1_ratio`` of L1 and the rest L2.
    l1_ratio : float, default=0.15
        Share of L1 in ``"elasticnet"``.
    schedule : {"constant", "invscaling", "optimal", "adaptive"}, default="constant"
        Learning-rate schedule (scikit-learn's, counting minibatch steps ``t``):
        ``eta``; ``eta / t ** power_t``; ``1 / (alpha (t0 + t - 1))`` with
        ``t0 = 1 / (eta alpha)``; ``eta`` divided by 5 whenever the monitored
        loss stalls for ``n_iter_no_change`` epochs.
    power_t : float, default=0.5
        Exponent of ``"invscaling"``.
    momentum : float, default=0.0
        Heavy-ball momentum in ``[0, 1)``.
    nesterov : bool, default=False
        Nesterov's correction to momentum.
    average : bool, int or "auto", default="auto"
        Polyak-Ruppert averaging of the iterates: ``True`` from the start, an
        int ``k`` from epoch ``k`` on, ``False`` never; the model predicts with
        the average, which converges with a constant step where the last
        iterate only reaches a noise floor. ``"auto"``: ``True``, except with
        an L1 part in the penalty (an average of sparse iterates is not sparse).
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    random_state : int, numpy.random.Generator or None, default=None
        Seed of the host-side generator that draws the validation split and
        every shuffle; the same seed gives the same minibatches on every backend.
    validation_fraction : float, default=0.0
        Fraction of the training rows held out to score each epoch (ignored
        when ``fit`` gets ``validation_data``; whole blocks for data read from disk).
    n_iter_no_change : int or None, default=3
        Stop when the monitored loss has not improved by ``tol`` for this many
        epochs: the validation loss with validation data, else the training
        objective (mean loss plus penalty) of the model's parameters, computed
        exactly on the training rows (a fixed sample of 10,000 of them on
        larger data). ``None`` trains all ``epochs``.
    tol : float, default=1e-4
        Minimum improvement for early stopping, relative to the first epoch's
        monitored loss (so the same ``tol`` suits losses of any scale).
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
    block_rows : int or None, default=None
        Rows per block when ``X`` is read from disk (``np.memmap``, zarr,
        h5py); ``None``: about 64 MB of features per block.
    class_weight : dict, "balanced" or None, default=None
        Classifiers only: weights per class, multiplied into ``sample_weight``.
    rounds_per_epoch : int, default=1
        Dask backend only (ignored elsewhere): rounds of local SGD with model
        averaging per epoch. In each round every partition trains on its next
        ``1 / rounds_per_epoch`` of its rows from the averaged parameters, then
        the results are averaged again; more rounds stay closer to sequential
        SGD and cost one synchronisation each (see "Scaling out" in the docs).

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
    ...                        alpha=0.0, average=False, n_iter_no_change=None,
    ...                        random_state=0).fit(X, 2 * X[:, 0] + 1)
    >>> round(float(est.coef_[0]), 3), round(float(est.intercept_), 3)
    (2.0, 1.0)
    """

    # Constructor parameters (stored by __init__, validated by fit).
    model: str
    batch_size: int
    learning_rate: float | str
    epochs: int
    alpha: float | str
    penalty: str
    l1_ratio: float
    schedule: str
    power_t: float
    momentum: float
    nesterov: bool
    average: bool | int | str
    shuffle: bool
    random_state: int | np.random.Generator | None
    validation_fraction: float
    n_iter_no_change: int | None
    tol: float
    backend: str | None
    device: Any
    dtype: str | None
    block_rows: int | None
    rounds_per_epoch: int
    # Fitted state (absent until fit): the parameters to predict with, the
    # trainer's state to continue from, and what they belong to, by name (so
    # that a pickled estimator finds its backend and model again).
    _W: Any
    _b: Any
    _train_state: TrainState | None
    _model_name: str
    _backend_name: str
    _y_shape: int
    _n_targets: int
    _dtype: str

    def __init__(
        self,
        model: str = "softmax",
        *,
        batch_size: int = 64,
        learning_rate: float | str = "auto",
        epochs: int = 1000,
        alpha: float | str = "auto",
        penalty: str = "l2",
        l1_ratio: float = 0.15,
        schedule: str = "constant",
        power_t: float = 0.5,
        momentum: float = 0.0,
        nesterov: bool = False,
        average: bool | int | str = "auto",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = 3,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        block_rows: int | None = None,
        class_weight: dict[Hashable, float] | str | None = None,
        rounds_per_epoch: int = 1,
    ) -> None:
        store_params(self, locals())

    # -- what the estimator is --------------------------------------------------------------

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (scikit-learn >= 1.6 only): what the estimator accepts and is."""
        from sklearn.utils import ClassifierTags, RegressorTags

        tags = super().__sklearn_tags__()
        model = self._get_model()
        tags.target_tags.required = True
        if model.task == "classification":
            tags.estimator_type = "classifier"
            tags.classifier_tags = ClassifierTags(multi_class=not model.binary)
            tags.regressor_tags = None
        else:
            tags.estimator_type = "regressor"
            tags.regressor_tags = RegressorTags()
            tags.classifier_tags = None
            tags.target_tags.multi_output = True  # y of shape (n, n_targets)
        # SciPy sparse X trains on NumPy; every backend's arrays stay in their namespace.
        tags.input_tags.sparse = _backend_setting(self.backend) in ("auto", "numpy")
        tags.array_api_support = True
        return tags

    @property
    def _estimator_type(self) -> str:
        return "classifier" if self._get_model().task == "classification" else "regressor"

    def _get_model(self) -> Model:
        if not isinstance(self.model, str):
            raise TypeError(f"model must be a model name (str), got {type(self.model).__name__}")
        return registry.get_model(self.model)

    # -- parameters ------------------------------------------------------------------------

    def _optimizer_spec(self) -> OptimizerSpec:
        average = self.average
        if isinstance(average, str) and average == "auto":
            average = self.penalty not in ("l1", "elasticnet")
        if isinstance(average, (bool, np.bool_)):
            start = 1 if average else 0
        elif isinstance(average, (int, np.integer)) and average >= 1:
            start = int(average)
        else:
            raise ValueError(
                f"average must be True, False, 'auto' or the epoch averaging starts at (>= 1), "
                f"got {average!r}"
            )
        if not isinstance(self.nesterov, (bool, np.bool_)):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        return OptimizerSpec(
            schedule=self.schedule if isinstance(self.schedule, str) else repr(self.schedule),
            power_t=check_real("power_t", self.power_t, allow_zero=True),
            momentum=check_real("momentum", self.momentum, allow_zero=True),
            nesterov=bool(self.nesterov),
            average=start,
            penalty=self.penalty if isinstance(self.penalty, str) else repr(self.penalty),
            l1_ratio=check_real("l1_ratio", self.l1_ratio, allow_zero=True),
        )

    def _check_params(self) -> tuple[dict[str, Any], OptimizerSpec]:
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
        spec = self._optimizer_spec()
        if spec.schedule == "optimal" and hp["alpha"] != "auto" and hp["alpha"] <= 0:
            raise ValueError(
                "schedule='optimal' needs alpha > 0: its step is 1 / (alpha (t0 + t)); "
                "pick another schedule for alpha=0"
            )
        if self.dtype not in (None, "float32", "float64"):
            raise ValueError(f"dtype must be 'float32', 'float64' or None, got {self.dtype!r}")
        if self.block_rows is not None:
            check_positive_int("block_rows", self.block_rows)
        check_positive_int("rounds_per_epoch", getattr(self, "rounds_per_epoch", 1))
        if model.task != "classification" and getattr(self, "class_weight", None) is not None:
            raise ValueError(
                f"class_weight applies to classifiers; model {model.name!r} is a regressor"
            )
        hp["model"] = model
        return hp, spec

    def save(self, path: str | os.PathLike[str], *, metadata: dict[str, Any] | None = None) -> None:
        """Write the fitted model to ``path`` (arrays plus JSON metadata, no pickle).

        The write is atomic: a reader sees the old file or the new one, never
        a partial one. Load it with :func:`anyglm.load` on any backend.

        Parameters
        ----------
        path : str or path-like
        metadata : dict, optional
            Your own JSON-serialisable notes to keep with the model (at most
            :data:`anyglm.modelfile.MAX_USER_METADATA_BYTES` bytes as JSON);
            :func:`anyglm.load` gives them back as ``file_metadata_``.

        Examples
        --------
        >>> import tempfile, pathlib, anyglm
        >>> clf = anyglm.LogisticRegression(epochs=5, random_state=0).fit([[-1.0], [1.0]], [0, 1])
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "clf.anyglm"
        >>> clf.save(path, metadata={"trained_on": "two points"})
        >>> loaded = anyglm.load(path)
        >>> loaded.predict([[3.0]]).tolist(), loaded.file_metadata_
        ([1], {'trained_on': 'two points'})
        """
        self._check_fitted()
        state = model_state(self, None, self._W, self._b, self.history_, self.n_epochs_)
        if metadata is not None:
            state.meta["user_metadata"] = modelfile.check_user_metadata(metadata)
        modelfile.write(path, state)


def _backend_setting(backend: Any) -> Any:
    if backend is None:
        return os.environ.get("ANYGLM_BACKEND", "").strip() or "auto"
    return backend


class _FixedModel(Estimator):
    """An estimator whose model is fixed by the class (no ``model`` parameter).

    These follow scikit-learn's conventions strictly: a regressor has neither
    ``decision_function`` nor ``predict_proba``.
    """

    _fixed_model = ""
    _decision_for_regressors = False

    @property
    def model(self) -> str:  # type: ignore[override]
        return self._fixed_model

    def _get_model(self) -> Model:
        return registry.get_model(self._fixed_model)


class LinearRegression(_sklearn.RegressorMixin, _FixedModel):
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

    _fixed_model = "linear"
    # Ahead of scikit-learn's mixin: a score for every backend, and anyglm's own tags.
    score = PredictMixin.score
    __sklearn_tags__ = Estimator.__sklearn_tags__

    def __init__(
        self,
        *,
        batch_size: int = 64,
        learning_rate: float | str = "auto",
        epochs: int = 1000,
        alpha: float | str = "auto",
        penalty: str = "l2",
        l1_ratio: float = 0.15,
        schedule: str = "constant",
        power_t: float = 0.5,
        momentum: float = 0.0,
        nesterov: bool = False,
        average: bool | int | str = "auto",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = 3,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        block_rows: int | None = None,
        rounds_per_epoch: int = 1,
    ) -> None:
        store_params(self, locals())


class _Classifier(_sklearn.ClassifierMixin, _FixedModel):
    # Ahead of scikit-learn's mixin: a score for every backend, and anyglm's own tags.
    score = PredictMixin.score
    __sklearn_tags__ = Estimator.__sklearn_tags__

    def __init__(
        self,
        *,
        batch_size: int = 64,
        learning_rate: float | str = "auto",
        epochs: int = 1000,
        alpha: float | str = "auto",
        penalty: str = "l2",
        l1_ratio: float = 0.15,
        schedule: str = "constant",
        power_t: float = 0.5,
        momentum: float = 0.0,
        nesterov: bool = False,
        average: bool | int | str = "auto",
        shuffle: bool = True,
        random_state: int | np.random.Generator | None = None,
        validation_fraction: float = 0.0,
        n_iter_no_change: int | None = 3,
        tol: float = 1e-4,
        backend: str | None = None,
        device: Any = None,
        dtype: str | None = None,
        block_rows: int | None = None,
        class_weight: dict[Hashable, float] | str | None = None,
        rounds_per_epoch: int = 1,
    ) -> None:
        store_params(self, locals())


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

    _fixed_model = "logistic"


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

    _fixed_model = "softmax"
