"""Fitting: what ``fit`` and ``partial_fit`` do, shared by every estimator.

:class:`FitMixin` turns an estimator's checked parameters into a training run:
it asks :mod:`anyglm.inputs` to prepare the data, resumes from a checkpoint
when asked, runs :func:`anyglm.trainer.train` with a per-epoch hook that
writes checkpoints and calls the user's callback, and adopts the result. A
fit is all or nothing: the estimator changes only when training produced
parameters (completed, diverged with the last finite parameters kept, or
interrupted after a completed epoch); bad data found while streaming leaves it
as it was.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import modelfile
from .base import FittedBase
from .checkpoints import Checkpoint, check_resumable, read_checkpoint, with_checkpoint
from .errors import DivergenceError, warn_not_converged
from .featurenames import check_feature_names
from .inputs import Prepared, prepare
from .labels import unique_labels
from .optim import OptimizerSpec
from .persistence import model_state
from .selection import resolve_backend
from .stepsize import resolve, run_backing_off
from .trainer import EpochEnd, TrainResult, train
from .trainstate import TrainState
from .validation import to_host

__all__ = ["FitMixin", "make_rng"]


def make_rng(random_state: Any) -> np.random.Generator:
    """The fit's host generator from ``random_state``.

    ``None`` (fresh entropy), a non-negative int (a seed), a
    :class:`numpy.random.Generator` (used as it is, and advanced), or a legacy
    :class:`numpy.random.RandomState`: a Generator on an MT19937 bit generator
    that starts from a copy of the RandomState's state. The RandomState
    itself is not advanced, so the same RandomState state always gives the
    same fit (as an int seed does).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.estimators import make_rng
    >>> int(make_rng(0).integers(10))
    8
    >>> rs = np.random.RandomState(3)
    >>> int(make_rng(rs).integers(1000)) == int(make_rng(rs).integers(1000))
    True
    """
    if isinstance(random_state, np.random.Generator):
        return random_state
    if isinstance(random_state, np.random.RandomState):
        bits = np.random.MT19937()
        bits.state = random_state.get_state(legacy=False)  # type: ignore[assignment]
        return np.random.Generator(bits)
    if random_state is None or (
        isinstance(random_state, (int, np.integer)) and not isinstance(random_state, bool)
    ):
        if random_state is not None and random_state < 0:
            raise ValueError(f"random_state must be a non-negative integer, got {random_state}")
        return np.random.default_rng(random_state)
    raise TypeError(
        f"random_state must be None, a non-negative int, a numpy.random.Generator or a "
        f"numpy.random.RandomState, got {random_state!r}"
    )


@dataclass
class _Fit:
    """What one fit produced, adopted by the estimator in one step."""

    prep: Prepared
    W: Any
    b: Any
    history: Mapping[str, Any]
    epochs_run: int
    state: TrainState | None
    #: ``(alpha_, learning_rate_)`` the parameters were trained with.
    rates: tuple[float, float]


class FitMixin(FittedBase):
    """``fit``, ``partial_fit`` and the fitted state they set (see the module docstring).

    The estimator class supplies its parameters and :meth:`_check_params`.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.fitting import FitMixin
    >>> issubclass(anyglm.SoftmaxRegression, FitMixin)
    True
    """

    random_state: Any
    backend: Any
    device: Any
    dtype: str | None
    block_rows: int | None
    _W: Any
    _b: Any
    _train_state: TrainState | None
    _y_shape: int
    _n_targets: int
    _dtype: str
    _rng: np.random.Generator
    n_features_in_: int
    n_epochs_: int
    history_: dict[str, list[float]]
    classes_: np.ndarray
    file_metadata_: dict[str, Any]
    learning_rate_: float
    alpha_: float

    def _check_params(self) -> tuple[dict[str, Any], OptimizerSpec]:
        raise NotImplementedError

    get_params: Callable[..., dict[str, Any]]

    def _prepare(
        self,
        X: Any,
        y: Any,
        hp: dict[str, Any],
        rng: np.random.Generator,
        sample_weight: Any,
        classes: Sequence[Hashable] | None,
        validation_data: tuple[Any, Any] | None,
        *,
        dtype: str | None = None,
        device: Any = None,
    ) -> Prepared:
        return prepare(
            hp["model"],
            X,
            y,
            backend=self.backend,
            device=self.device if device is None else device,
            dtype=self.dtype if dtype is None else dtype,
            rng=rng,
            sample_weight=sample_weight,
            classes=classes,
            class_weight=getattr(self, "class_weight", None),
            validation_data=validation_data,
            validation_fraction=hp["validation_fraction"],
            block_rows=self.block_rows,
            rounds_per_epoch=getattr(self, "rounds_per_epoch", 1),
        )

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
    ) -> Any:
        """Train on ``X`` and ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Any array of a registered backend, anything NumPy can read, a
            memory-mapped or zarr array (read block by block), or a SciPy
            sparse matrix (kept sparse).
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
            Write the full training state (parameters, optimiser state, epoch,
            random-generator state, history, hyperparameters) to this file,
            atomically.
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
        hp, spec = self._check_params()
        if checkpoint_on not in ("epoch", "interrupt"):
            raise ValueError(f"checkpoint_on must be 'epoch' or 'interrupt', got {checkpoint_on!r}")
        if checkpoint is not None:
            folder = os.path.dirname(os.fspath(checkpoint)) or "."
            if not os.path.isdir(folder):
                raise FileNotFoundError(
                    f"cannot write checkpoint {os.fspath(checkpoint)!r}: "
                    f"folder {folder!r} does not exist"
                )
        rng = make_rng(self.random_state)
        ck = None if resume is None else read_checkpoint(resume)
        if ck is not None:
            # Replay the validation split the interrupted run drew.
            rng.bit_generator.state = ck.initial_rng_state
        initial_rng_state = dict(rng.bit_generator.state)
        prep = self._prepare(X, y, hp, rng, sample_weight, classes, validation_data)
        W, b = prep.zero_parameters()
        state, start, history = None, 0, None
        if ck is not None:
            _check_resumable(self, ck, prep)
            state = ck.train_state(prep.backend, prep.dtype, prep.device)
            start, history = ck.epoch, ck.history
            rng.bit_generator.state = ck.rng_state
        last: list[tuple[EpochEnd, int]] = []
        every = checkpoint if checkpoint_on == "epoch" else None
        on_epoch_end = _epoch_hook(self, prep, every, initial_rng_state, callback, last)
        try:
            result = run_backing_off(
                self, prep, hp, spec, W, b, state, rng, start, history, on_epoch_end
            )
        except KeyboardInterrupt as err:
            # The rates ride on the interrupt from inside the training run; an interrupt
            # outside one (while the rates are derived) has no epoch of this run to keep.
            rates = getattr(err, "anyglm_rates", None)
            if last and rates is not None:
                done = _completed(*last[0])
                if checkpoint is not None and checkpoint_on == "interrupt":
                    self._write_checkpoint(checkpoint, prep, done, initial_rng_state)
                self._adopt(
                    _Fit(prep, done.W, done.b, _history_arrays(done), done.epoch, done.state, rates)
                )
                self._rng = rng
            raise
        self._adopt(result)
        self._rng = rng
        return self

    def partial_fit(
        self,
        X: Any,
        y: Any,
        *,
        classes: Sequence[Hashable] | None = None,
        sample_weight: Any = None,
    ) -> Any:
        """One pass (epoch) of minibatch SGD over ``X, y``, continuing from the current state.

        The first call initialises the model (classifiers need ``classes`` there
        unless ``y`` already holds every class); later calls must bring data with
        the same features and labels among ``classes_``. Minibatch order comes
        from a generator seeded once with ``random_state``. Momentum, averages
        and the step count carry over from call to call.

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
        hp, spec = self._check_params()
        first = not hasattr(self, "_W")
        pinned: dict[str, Any] = {}
        if first:
            rng = make_rng(self.random_state)
        else:
            # A model from anyglm.load() has no generator yet: seed one.
            rng = self._rng if hasattr(self, "_rng") else make_rng(self.random_state)
            be = resolve_backend(self.backend, X)
            if be.name != self._backend_name:
                raise ValueError(
                    f"partial_fit got data for backend {be.name!r}, but the model "
                    f"lives on {self._backend_name!r}"
                )
            # Later batches are converted to the parameters' dtype and device.
            pinned = {"dtype": self._dtype, "device": be.device_of(self._W)}
            if classes is not None and hasattr(self, "classes_"):
                declared = unique_labels(to_host(classes, "classes", None).ravel(), "classes")
                if declared.tolist() != self.classes_.tolist():
                    raise ValueError(
                        f"classes={declared.tolist()} differs from the classes of the first "
                        f"call {self.classes_.tolist()}"
                    )
            classes = self.classes_.tolist() if hasattr(self, "classes_") else None
        # One pass over the data given: no hold-out, and no early stopping (as scikit-learn
        # ignores n_iter_no_change in partial_fit), which would end later calls for good.
        hp = {**hp, "validation_fraction": 0.0, "n_iter_no_change": None}
        prep = self._prepare(X, y, hp, rng, sample_weight, classes, None, **pinned)
        if first:
            W, b = prep.zero_parameters()
            state, start, history = None, 0, None
        else:
            if prep.n_features != self.n_features_in_:
                raise ValueError(
                    f"X has {prep.n_features} features, but {type(self).__name__} is "
                    f"expecting {self.n_features_in_} features as input (from the first "
                    "partial_fit call)"
                )
            check_feature_names(getattr(self, "feature_names_in_", None), X, type(self).__name__)
            prep.feature_names = getattr(self, "feature_names_in_", None)
            W, b, start = self._W, self._b, self.n_epochs_
            state = self._train_state
            history = {k: [np.asarray([v]) for v in vals] for k, vals in self.history_.items()}
        result = self._run(
            prep,
            hp,
            spec,
            W,
            b,
            state,
            rng,
            start,
            history,
            start + 1,
            None,
            keep_rate=not first and hasattr(self, "learning_rate_"),
        )
        self._adopt(result)
        self._rng = rng
        return self

    def _run(
        self,
        prep: Prepared,
        hp: dict[str, Any],
        spec: OptimizerSpec,
        W: Any,
        b: Any,
        state: TrainState | None,
        rng: np.random.Generator,
        start: int,
        history: dict[str, list[np.ndarray]] | None,
        epochs: int,
        on_epoch_end: Callable[[EpochEnd], bool | None] | None,
        *,
        keep_rate: bool = False,
        lr_scale: float = 1.0,
    ) -> _Fit:
        alpha, lr, monitor = self._data_derived(prep, hp, keep_rate, lr_scale)
        try:
            result: TrainResult = train(
                prep.model,
                prep.backend,
                prep.source,
                W=W,
                b=b,
                n_configs=1,
                learning_rate=lr,
                alpha=alpha,
                epochs=epochs,
                batch_size=min(hp["batch_size"], prep.n_train),
                shuffle=hp["shuffle"],
                rng=rng,
                dtype=prep.dtype,
                device=prep.device,
                optimizer=spec,
                state=state,
                validation=prep.validation,
                monitor=monitor,
                n_iter_no_change=hp["n_iter_no_change"],
                tol=hp["tol"],
                start_epoch=start,
                history=history,
                on_epoch_end=on_epoch_end,
            )
        except DivergenceError as err:
            # The trainer attaches what it had at the end of the last finite epoch.
            W0, b0 = err.last_finite  # type: ignore[attr-defined]
            history, state = err.history, err.state  # type: ignore[attr-defined]
            self._adopt(_Fit(prep, W0, b0, history, err.epoch - 1, state, (alpha, lr)))
            self._rng = rng
            raise
        except KeyboardInterrupt as err:
            # fit adopts the last completed epoch, which these rates trained.
            err.anyglm_rates = (alpha, lr)  # type: ignore[attr-defined]
            raise
        if (
            hp["n_iter_no_change"] is not None
            and not result.stopped_early
            and result.epochs_run == epochs
            and epochs > start
            and epochs == hp["epochs"]
        ):
            warn_not_converged(type(self).__name__, epochs, hp["n_iter_no_change"], hp["tol"])
        return _Fit(
            prep, result.W, result.b, result.history, result.epochs_run, result.state, (alpha, lr)
        )

    def _data_derived(
        self, prep: Prepared, hp: dict[str, Any], keep: bool, lr_scale: float = 1.0
    ) -> tuple[float, float, Any]:
        # partial_fit goes on with the first call's "auto" values.
        alpha, lr = hp["alpha"], hp["learning_rate"]
        if keep and hasattr(self, "alpha_"):
            alpha = self.alpha_ if alpha == "auto" else alpha
            lr = self.learning_rate_ if lr == "auto" else lr
        watch = hp["n_iter_no_change"] is not None and prep.validation is None
        alpha, lr, monitor = resolve(prep.model, prep.source, alpha, lr, hp["batch_size"], watch)
        # Set on the estimator only when a fit is adopted: a fit that fails on its data
        # leaves the estimator as it was.
        return alpha, lr * lr_scale, monitor

    def _adopt(self, fit: _Fit) -> None:
        """Take the parameters of a fit and record what they belong to."""
        prep = fit.prep
        self.backend_ = prep.backend.name
        self.n_features_in_ = prep.n_features
        self._model_name = prep.model.name
        self._backend_name = prep.backend.name
        self._y_shape = prep.y_ndim
        self._dtype = prep.dtype
        # A refit may switch between a classifier and a regressor: drop the other's state.
        if prep.classes is not None:
            self.classes_ = prep.classes
            self.__dict__.pop("_n_targets", None)
        else:
            self._n_targets = prep.n_outputs
            self.__dict__.pop("classes_", None)
        _names_from(self, prep)
        self._train_state = fit.state
        self.alpha_, self.learning_rate_ = fit.rates
        self._set_params(fit.W, fit.b, fit.history, fit.epochs_run)

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

    def _write_checkpoint(
        self,
        path: str | os.PathLike[str],
        prep: Prepared,
        info: EpochEnd,
        initial_rng_state: dict[str, Any],
    ) -> None:
        history = {k: [float(v[0]) for v in rows] for k, rows in info.history.items()}
        state = model_state(self, prep, info.W, info.b, history, info.epoch)
        modelfile.write(
            path, with_checkpoint(state, info, prep.backend, initial_rng_state, prep.n_train)
        )


def _epoch_hook(
    est: FitMixin,
    prep: Prepared,
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
        snapshot = EpochEnd(
            info.epoch, info.epochs, info.W, info.b, rng_copy, info.history, info.state
        )
        last[:] = [(snapshot, len(info.history["train_loss"]))]
        if checkpoint is not None:
            est._write_checkpoint(checkpoint, prep, info, initial_rng_state)
        if callback is not None:
            logs: dict[str, Any] = {"epoch": info.epoch, "epochs": info.epochs}
            logs.update({k: float(v[-1][0]) for k, v in info.history.items()})
            return callback(logs)
        return None

    return on_epoch_end


def _names_from(est: Any, prep: Prepared) -> None:
    """``feature_names_in_`` of the data frame fitted on, or none (scikit-learn's rule)."""
    if prep.feature_names is not None:
        est.feature_names_in_ = prep.feature_names
    else:
        est.__dict__.pop("feature_names_in_", None)


def _completed(info: EpochEnd, n_rows: int) -> EpochEnd:
    """``info`` with its history cut back to the ``n_rows`` rows it had then."""
    history = {k: v[:n_rows] for k, v in info.history.items()}
    return EpochEnd(info.epoch, info.epochs, info.W, info.b, info.rng, history, info.state)


def _history_arrays(info: EpochEnd) -> dict[str, np.ndarray]:
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 1) for k, v in info.history.items()}


def _check_resumable(est: Any, ck: Checkpoint, prep: Prepared) -> None:
    check_resumable(
        ck,
        est.get_params(),
        prep.model.name,
        prep.n_features,
        prep.n_outputs,
        prep.n_train,
        prep.classes,
        isinstance(est.random_state, (np.random.Generator, np.random.RandomState)),
    )
