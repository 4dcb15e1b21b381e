"""Learning curves: loss and validation score per epoch (see :mod:`anyglm.plotting`).

Examples
--------
>>> from anyglm.plotting import plot_history
>>> plot_history({"train_loss": [0.9, 0.5], "val_score": [0.6, 0.8]}).axes_.shape
(1, 2)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import _Display, _fmt, _panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = ["LearningCurveDisplay", "plot_history"]

_TRAIN_COLOUR = "tab:blue"
_VAL_COLOUR = "tab:orange"
_SCORE_COLOUR = "tab:green"


def _series(history: Mapping[str, Any], key: str) -> np.ndarray | None:
    if key not in history or history[key] is None:
        return None
    try:
        values = np.asarray(history[key], dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"history[{key!r}] must be a sequence of numbers: {err}") from None
    if values.ndim != 1:
        raise ValueError(
            f"history[{key!r}] must be a flat sequence of per-epoch values, "
            f"got shape {values.shape}"
        )
    return values


def _first_non_finite_after_finite(values: np.ndarray) -> int | None:
    """1-based epoch where a curve that had finite values turns non-finite (divergence)."""
    finite = np.isfinite(values)
    if not finite.any():
        return None
    bad = np.flatnonzero(~finite)
    bad = bad[bad > np.flatnonzero(finite)[0]]
    return int(bad[0]) + 1 if bad.size else None


def _use_log_scale(*curves: np.ndarray | None) -> bool:
    """Log scale for losses spanning more than two decades (all positive)."""
    parts = [c[np.isfinite(c)] for c in curves if c is not None]
    values = np.concatenate(parts) if parts else np.empty(0)
    if values.size < 2 or values.min() <= 0:
        return False
    return bool(values.max() / values.min() > 100.0)


def _plot_curve(ax: Axes, values: np.ndarray, colour: str, label: str) -> None:
    epochs = np.arange(1, values.size + 1)
    marker = "o" if values.size <= 40 else None
    ax.plot(epochs, values, color=colour, label=label, marker=marker, markersize=3)


def _mark_divergence(ax: Axes, values: np.ndarray) -> None:
    epoch = _first_non_finite_after_finite(values)
    if epoch is not None:
        ax.axvline(epoch, color="tab:red", linestyle="--", linewidth=1, label="non-finite")


class LearningCurveDisplay(_Display):
    """Learning curves: loss and validation score per epoch.

    The first panel shows ``train_loss`` and, if present, ``val_loss``; a
    second panel, drawn only when the history has ``val_score``, shows the
    validation metric with its best epoch marked. NaN values (a diverged
    epoch) leave a gap, and a dashed red line marks the epoch where a curve
    stopped being finite. Losses spanning more than two decades use a log
    scale. Build it with :meth:`from_history` or :meth:`from_estimator`.

    Parameters
    ----------
    history : mapping of str to sequence of float
        Per-epoch values, as in an estimator's ``history_``: ``train_loss``
        (required) and optionally ``val_loss`` and ``val_score``.
    metric_name : str, default="score"
        Name of the validation metric (``"accuracy"``, ``"R^2"``...).
    title : str, optional
        Figure title.

    Attributes
    ----------
    figure_ : matplotlib Figure (or SubFigure)
    ax_ : matplotlib Axes
        The loss panel.
    score_ax_ : matplotlib Axes or None
        The validation-score panel, when there is one.
    axes_ : numpy.ndarray of Axes, shape (1, n_panels)

    Raises
    ------
    ValueError
        ``history`` is empty, has no ``train_loss``, or holds something other
        than flat sequences of numbers.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.plotting import LearningCurveDisplay
    >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
    >>> X = anyglm.datasets.standardize(X)[0]
    >>> clf = anyglm.LogisticRegression(epochs=5, validation_fraction=0.2,
    ...                                 random_state=0).fit(X, y)
    >>> disp = LearningCurveDisplay.from_estimator(clf)
    >>> disp.axes_.shape, disp.score_ax_.get_ylabel()
    ((1, 2), 'accuracy')
    """

    score_ax_: Axes | None

    def __init__(
        self,
        history: Mapping[str, Sequence[float]],
        *,
        metric_name: str = "score",
        title: str | None = None,
    ) -> None:
        if not isinstance(history, Mapping):
            raise ValueError(f"history must be a mapping of per-epoch lists, got {type(history)}")
        if not history:
            raise ValueError("history is empty: nothing to plot")
        train_loss = _series(history, "train_loss")
        if train_loss is None:
            raise ValueError(
                f"history has no 'train_loss'; its keys are {sorted(map(str, history))}"
            )
        if train_loss.size == 0:
            raise ValueError("history['train_loss'] is empty: nothing to plot")
        val_score = _series(history, "val_score")
        self.train_loss = train_loss
        self.val_loss = _series(history, "val_loss")
        self.val_score = val_score if val_score is not None and val_score.size else None
        self.metric_name = metric_name
        self.title = title

    @classmethod
    def from_history(
        cls,
        history: Mapping[str, Sequence[float]],
        *,
        ax: Any = None,
        metric_name: str = "score",
        title: str | None = None,
    ) -> LearningCurveDisplay:
        """Draw the learning curves of a history (an estimator's ``history_``).

        Parameters
        ----------
        history : mapping of str to sequence of float
        ax : matplotlib Axes or sequence of Axes, optional
            Where to draw; see :meth:`plot`.
        metric_name : str, default="score"
        title : str, optional

        Returns
        -------
        LearningCurveDisplay

        Examples
        --------
        >>> from anyglm.plotting import LearningCurveDisplay
        >>> history = {"train_loss": [0.9, 0.5], "val_loss": [1.0, 0.6], "val_score": [0.7, 0.8]}
        >>> disp = LearningCurveDisplay.from_history(history, metric_name="accuracy")
        >>> [line.get_label() for line in disp.ax_.get_lines()]
        ['training loss', 'validation loss']
        """
        return cls(history, metric_name=metric_name, title=title).plot(ax=ax)

    @classmethod
    def from_estimator(
        cls,
        estimator: Any,
        *,
        ax: Any = None,
        metric_name: str | None = None,
        title: str | None = None,
    ) -> LearningCurveDisplay:
        """Draw the learning curves of a fitted estimator (its ``history_``).

        Parameters
        ----------
        estimator : fitted Estimator
        ax : matplotlib Axes or sequence of Axes, optional
            Where to draw; see :meth:`plot`.
        metric_name : str, optional
            Default ``"accuracy"`` for a classifier (it has ``classes_``),
            ``"R^2"`` otherwise.
        title : str, optional

        Returns
        -------
        LearningCurveDisplay

        Raises
        ------
        ValueError
            The estimator has not been fitted.

        Examples
        --------
        >>> import numpy as np, anyglm
        >>> from anyglm.plotting import LearningCurveDisplay
        >>> reg = anyglm.LinearRegression(epochs=3, random_state=0)
        >>> reg = reg.fit(np.arange(8.0).reshape(4, 2), np.arange(4.0))
        >>> LearningCurveDisplay.from_estimator(reg).score_ax_ is None  # no validation data
        True
        """
        history = getattr(estimator, "history_", None)
        if history is None:
            raise ValueError(
                f"{type(estimator).__name__} has no history_: fit it before plotting its curves"
            )
        if metric_name is None:
            metric_name = "accuracy" if hasattr(estimator, "classes_") else "R^2"
        return cls(history, metric_name=metric_name, title=title).plot(ax=ax)

    def plot(self, *, ax: Any = None) -> LearningCurveDisplay:
        """Draw the curves.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
            ``None``: a new figure (one panel, or two side by side with a
            validation score). One Axes: the panels share its area. Two Axes
            (a history with ``val_score``): loss in the first, score in the
            second.

        Returns
        -------
        LearningCurveDisplay
            ``self``, with ``figure_``, ``ax_``, ``score_ax_`` and ``axes_`` set.

        Raises
        ------
        ImportError
            matplotlib is not installed.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from anyglm.plotting import LearningCurveDisplay
        >>> fig = Figure()
        >>> left, right = fig.subplots(1, 2)
        >>> disp = LearningCurveDisplay({"train_loss": [0.9, 0.5]}).plot(ax=right)
        >>> disp.ax_ is right and disp.figure_ is fig
        True
        """
        n_panels = 2 if self.val_score is not None else 1
        fig, axes, own = _panel_axes(ax, 1, n_panels, (5.5 * n_panels, 4.2))
        loss_ax = axes[0, 0]
        _plot_curve(loss_ax, self.train_loss, _TRAIN_COLOUR, "training loss")
        if self.val_loss is not None and self.val_loss.size:
            _plot_curve(loss_ax, self.val_loss, _VAL_COLOUR, "validation loss")
        _mark_divergence(loss_ax, self.train_loss)
        if _use_log_scale(self.train_loss, self.val_loss):
            loss_ax.set_yscale("log")
        loss_ax.set_xlabel("epoch")
        loss_ax.set_ylabel("loss")
        loss_ax.set_title("loss")
        loss_ax.grid(True, alpha=0.3)
        loss_ax.legend(loc="best", fontsize="small")

        score_ax = None
        if self.val_score is not None:
            score_ax = axes[0, 1]
            _draw_score(score_ax, self.val_score, self.metric_name)

        for a in axes.ravel():
            a.xaxis.get_major_locator().set_params(integer=True)
        if self.title:
            fig.suptitle(self.title)
        self.figure_, self.axes_, self._own_figure = fig, axes, own
        self.ax_, self.score_ax_ = loss_ax, score_ax
        return self


def _draw_score(ax: Axes, val_score: np.ndarray, metric_name: str) -> None:
    _plot_curve(ax, val_score, _SCORE_COLOUR, f"validation {metric_name}")
    _mark_divergence(ax, val_score)
    if np.isfinite(val_score).any():
        best = int(np.nanargmax(np.where(np.isfinite(val_score), val_score, np.nan)))
        ax.plot(
            [best + 1],
            [val_score[best]],
            marker="*",
            markersize=12,
            color="tab:red",
            linestyle="none",
            label=f"best {_fmt(float(val_score[best]))} (epoch {best + 1})",
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel(metric_name)
    ax.set_title(f"validation {metric_name}")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Any = None,
    title: str | None = None,
    metric_name: str = "score",
) -> LearningCurveDisplay:
    """Draw learning curves (loss and validation score per epoch); optionally write a PNG.

    A shortcut for :meth:`LearningCurveDisplay.from_history` that also writes
    the figure to ``path``.

    Parameters
    ----------
    history : mapping of str to sequence of float
        Per-epoch values, as in an estimator's ``history_``: ``train_loss``
        (required) and optionally ``val_loss`` and ``val_score``.
    path : str or os.PathLike, optional
        Where to write the PNG (always PNG, whatever the suffix); written
        atomically. With ``ax``, the whole figure holding ``ax`` is written.
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw (see :meth:`LearningCurveDisplay.plot`).
    title : str, optional
        Figure title.
    metric_name : str, default="score"
        Name of the validation metric for the score panel's axis
        (``"accuracy"``, ``"R^2"``...).

    Returns
    -------
    LearningCurveDisplay

    Raises
    ------
    ImportError
        matplotlib is not installed.
    ValueError
        ``history`` is empty, has no ``train_loss``, or holds something other
        than flat sequences of numbers.
    FileNotFoundError
        The folder of ``path`` does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import anyglm
    >>> from anyglm.plotting import plot_history
    >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
    >>> X = anyglm.datasets.standardize(X)[0]
    >>> clf = anyglm.LogisticRegression(epochs=5, validation_fraction=0.2,
    ...                                 random_state=0).fit(X, y)
    >>> sorted(clf.history_)
    ['train_loss', 'val_loss', 'val_score']
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "curves.png")
    ...     disp = plot_history(clf.history_, path, title="breast cancer", metric_name="accuracy")
    ...     os.path.getsize(path) > 1000
    True
    >>> disp.score_ax_.get_title()
    'validation accuracy'
    """
    disp = LearningCurveDisplay(history, metric_name=metric_name, title=title).plot(ax=ax)
    if path is not None:
        disp.save(path)
    return disp
