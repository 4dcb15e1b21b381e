"""Tuning heat maps: validation score over learning rate x alpha (see :mod:`anyglm.plotting`).

Examples
--------
>>> from anyglm.plotting import plot_tune_heatmap
>>> table = [dict(batch_size=32, learning_rate=lr, alpha=0.0, epochs=5, val_score=s)
...          for lr, s in [(0.1, 0.8), (1.0, 0.9)]]
>>> plot_tune_heatmap(table).best_params["learning_rate"]
1.0
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .figures import _Display, _fmt, _panel_axes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.colorbar import Colorbar

    from .tuning import TuneResult

__all__ = ["TuneHeatmapDisplay", "plot_tune_heatmap"]

_DIVERGED_COLOUR = "#b0b0b0"
_CHOSEN_COLOUR = "tab:red"


def _table_of(result: Any) -> list[Mapping[str, Any]]:
    table = getattr(result, "table", result)
    if isinstance(table, (str, bytes)) or not isinstance(table, Sequence):
        raise ValueError(
            f"expected a TuneResult (or its table, a list of dicts), got {type(result)}"
        )
    rows = list(table)
    if not rows:
        raise ValueError("the tune result's table is empty: nothing to plot")
    needed = ("batch_size", "learning_rate", "alpha", "epochs", "val_score")
    for row in rows:
        if not isinstance(row, Mapping):
            raise ValueError(f"table rows must be dicts, got {type(row)}")
        missing = [k for k in needed if k not in row]
        if missing:
            raise ValueError(f"a table row lacks {missing}; it has {sorted(row)}")
    return rows


def _cell_grid(
    rows: Sequence[Mapping[str, Any]], lrs: list[float], alphas: list[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Scores (alpha x lr; NaN where absent or diverged) and a diverged mask.

    Several rows for one cell (random search can repeat a setting) keep the
    best finite score; a cell is diverged only when all its rows diverged.
    """
    scores = np.full((len(alphas), len(lrs)), np.nan)
    seen = np.zeros(scores.shape, dtype=bool)
    ok = np.zeros(scores.shape, dtype=bool)
    for row in rows:
        i, j = alphas.index(float(row["alpha"])), lrs.index(float(row["learning_rate"]))
        seen[i, j] = True
        score = float(row["val_score"])
        if bool(row.get("diverged", False)) or not math.isfinite(score):
            continue
        ok[i, j] = True
        scores[i, j] = score if math.isnan(scores[i, j]) else max(scores[i, j], score)
    return scores, seen & ~ok


def _colour_limits(scores: np.ndarray) -> tuple[float, float, str]:
    """Colour range of the finite scores; a far-off low tail is clipped.

    Metrics at most 1 (accuracy, R^2) are coloured over ``[best - 1, best]``
    at most: an exploding run's R^2 of -1e200 would otherwise paint every
    useful cell the same colour. The printed values are never clipped.
    """
    finite = scores[np.isfinite(scores)]
    if finite.size == 0:
        return 0.0, 1.0, "neither"
    lo, hi = float(finite.min()), float(finite.max())
    extend = "neither"
    if hi <= 1.0 and lo < hi - 1.0:
        lo, extend = hi - 1.0, "min"
    if lo == hi:  # one value: a narrow band around it
        pad = 0.05 * max(1.0, abs(lo))
        lo, hi = lo - pad, hi + pad
    return lo, hi, extend


def _loss_key(row: Mapping[str, Any]) -> float:
    loss = float(row.get("val_loss", math.nan))
    return -loss if math.isfinite(loss) else -math.inf


def _chosen_row(rows: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The configuration :func:`anyglm.tune` chooses: highest score, then lowest loss, first."""
    ok = [
        r
        for r in rows
        if not bool(r.get("diverged", False)) and math.isfinite(float(r["val_score"]))
    ]
    if not ok:
        return None
    return max(ok, key=lambda r: (float(r["val_score"]), _loss_key(r)))


def _cell_of(params: Mapping[str, Any]) -> tuple[int, int, float, float]:
    return (
        int(params["epochs"]),
        int(params["batch_size"]),
        float(params["learning_rate"]),
        float(params["alpha"]),
    )


class TuneHeatmapDisplay(_Display):
    """Validation score over learning rate x alpha: a panel per epoch count and batch size.

    Panels form a grid: one row per ``epochs`` value searched (smallest at
    the top) and one column per batch size (``rows="batch_size"`` swaps
    them), sharing one colour scale and colour bar. Each cell is annotated
    with its score; diverged configurations are hatched grey cells marked
    ``div``, settings that were not tried stay
    blank, and exactly one cell, the chosen configuration
    (``TuneResult.best_params``), is outlined in red, even when others tie
    with it. The axes are categorical, in increasing order of the values
    tried. Build it with :meth:`from_result`.

    Parameters
    ----------
    table : list of dict
        Rows with ``batch_size``, ``learning_rate``, ``alpha``, ``epochs``,
        ``val_score`` and optionally ``val_loss`` and ``diverged`` (a
        :class:`~anyglm.TuneResult`'s ``table``).
    best_params : dict, optional
        The chosen configuration; by default the one :func:`anyglm.tune`
        would choose from ``table`` (highest score, then lowest validation
        loss, then first in the table).
    epochs : int, optional
        Show only this ``epochs`` value; by default every one searched.
    rows : {"epochs", "batch_size"}, default="epochs"
        What changes down the grid of panels (the other changes across it).
    metric_name : str, default="score"
        Name of the validation metric for the colour bar.
    title : str, optional
        Figure title.

    Attributes
    ----------
    figure_ : matplotlib Figure (or SubFigure)
    ax_ : matplotlib Axes
        The first panel.
    axes_ : numpy.ndarray of Axes, shape (n_epochs, n_batch_sizes)
        (transposed with ``rows="batch_size"``).
    best_ax_ : matplotlib Axes or None
        The panel holding the outlined cell (``None`` when ``epochs`` hides it).
    colorbar_ : matplotlib Colorbar
    epochs_shown : list of int
    batch_sizes : list of int
    best_params : dict or None

    Raises
    ------
    ValueError
        The table is empty or malformed, ``epochs`` is not one of its values,
        or ``best_params`` is not a row of it.

    Examples
    --------
    >>> from anyglm.plotting import TuneHeatmapDisplay
    >>> table = [dict(batch_size=32, learning_rate=lr, alpha=0.0, epochs=e, val_score=s)
    ...          for lr, e, s in [(0.1, 5, 0.9), (1.0, 5, 0.9), (0.1, 10, 0.8), (1.0, 10, 0.7)]]
    >>> disp = TuneHeatmapDisplay(table).plot()
    >>> disp.axes_.shape, disp.best_params["learning_rate"], disp.best_ax_.get_title()
    ((2, 1), 0.1, 'batch size 32, 5 epochs')
    """

    best_ax_: Axes | None
    colorbar_: Colorbar

    def __init__(
        self,
        table: Sequence[Mapping[str, Any]],
        *,
        best_params: Mapping[str, Any] | None = None,
        epochs: int | None = None,
        rows: str = "epochs",
        metric_name: str = "score",
        title: str | None = None,
    ) -> None:
        if rows not in ("epochs", "batch_size"):
            raise ValueError(f"rows must be 'epochs' or 'batch_size', got {rows!r}")
        self.rows = rows
        table = _table_of(table)
        available = sorted({int(r["epochs"]) for r in table})
        if epochs is None:
            shown = available
        elif isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
            raise ValueError(f"epochs must be an integer, got {epochs!r}")
        elif int(epochs) not in available:
            raise ValueError(
                f"epochs={epochs} is not in the tune result; it has epochs {available}"
            )
        else:
            shown = [int(epochs)]
        if best_params is None:
            best_params = _chosen_row(table)
        elif not any(_cell_of(r) == _cell_of(best_params) for r in table):
            raise ValueError(f"best_params {dict(best_params)} is not a configuration of the table")
        self.best_params = (
            None
            if best_params is None
            else {k: best_params[k] for k in ("batch_size", "learning_rate", "alpha", "epochs")}
        )
        self.epochs_shown = shown
        self.batch_sizes = sorted(
            {int(r["batch_size"]) for r in table if int(r["epochs"]) in shown}
        )
        self._rows = [r for r in table if int(r["epochs"]) in shown]
        self.metric_name = metric_name
        self.title = title

    @classmethod
    def from_result(
        cls,
        result: TuneResult | Sequence[Mapping[str, Any]],
        *,
        ax: Any = None,
        epochs: int | None = None,
        rows: str = "epochs",
        metric_name: str | None = None,
        title: str | None = None,
    ) -> TuneHeatmapDisplay:
        """Draw the heat maps of a :func:`anyglm.tune` result (or its ``table``).

        Parameters
        ----------
        result : TuneResult or list of dict
        ax : matplotlib Axes or sequence of Axes, optional
            Where to draw; see :meth:`plot`.
        epochs : int, optional
            Show only this ``epochs`` value; by default every one searched.
        rows : {"epochs", "batch_size"}, default="epochs"
            What changes down the grid of panels.
        metric_name : str, optional
            Default ``"accuracy"`` when the result's best estimator is a
            classifier, ``"R^2"`` for a regressor, else ``"score"``.
        title : str, optional

        Returns
        -------
        TuneHeatmapDisplay

        Examples
        --------
        >>> import anyglm
        >>> from anyglm.plotting import TuneHeatmapDisplay
        >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
        >>> X = anyglm.datasets.standardize(X)[0]
        >>> res = anyglm.tune("logistic", X, y, grid={"learning_rate": [0.01, 0.1],
        ...                   "alpha": [1e-4, 1e-2], "epochs": [2, 3], "batch_size": [32, 64]})
        >>> disp = TuneHeatmapDisplay.from_result(res)
        >>> disp.axes_.shape, disp.best_params == res.best_params
        ((2, 2), True)
        >>> disp.colorbar_.ax.get_ylabel()
        'validation accuracy'
        """
        best = getattr(result, "best_params", None)
        if metric_name is None:
            est = getattr(result, "best_estimator", None)
            metric_name = (
                "score" if est is None else "accuracy" if hasattr(est, "classes_") else "R^2"
            )
        return cls(
            _table_of(result),
            best_params=best,
            epochs=epochs,
            rows=rows,
            metric_name=metric_name,
            title=title,
        ).plot(ax=ax)

    def _panels(self) -> dict[tuple[int, int], tuple[list[float], list[float], Any, Any]]:
        panels = {}
        for e in self.epochs_shown:
            for bs in self.batch_sizes:
                group = [
                    r for r in self._rows if int(r["epochs"]) == e and int(r["batch_size"]) == bs
                ]
                if not group:
                    continue
                lrs = sorted({float(r["learning_rate"]) for r in group})
                alphas = sorted({float(r["alpha"]) for r in group})
                scores, diverged = _cell_grid(group, lrs, alphas)
                panels[(e, bs)] = (lrs, alphas, scores, diverged)
        return panels

    def plot(self, *, ax: Any = None) -> TuneHeatmapDisplay:
        """Draw the heat maps.

        Parameters
        ----------
        ax : matplotlib Axes or sequence of Axes, optional
            ``None``: a new figure. One Axes: the panels share its area (it
            is switched off). ``n_epochs * n_batch_sizes`` Axes: one panel each,
            row by row (see ``rows``).

        Returns
        -------
        TuneHeatmapDisplay
            ``self``, with ``figure_``, ``ax_``, ``axes_``, ``best_ax_`` and
            ``colorbar_`` set.

        Raises
        ------
        ImportError
            matplotlib is not installed.

        Examples
        --------
        >>> from matplotlib.figure import Figure
        >>> from anyglm.plotting import TuneHeatmapDisplay
        >>> table = [dict(batch_size=8, learning_rate=0.1, alpha=a, epochs=3, val_score=s)
        ...          for a, s in [(0.0, 0.8), (0.1, 0.8)]]
        >>> fig = Figure()
        >>> disp = TuneHeatmapDisplay(table).plot(ax=fig.subplots())
        >>> disp.figure_ is fig, disp.best_params["alpha"]  # the first of two ties
        (True, 0.0)
        """
        panels = self._panels()
        n_rows, n_cols = len(self.epochs_shown), len(self.batch_sizes)
        if self.rows == "batch_size":
            n_rows, n_cols = n_cols, n_rows
        n_lr = max(len(p[0]) for p in panels.values())
        n_alpha = max(len(p[1]) for p in panels.values())
        width = n_cols * (1.1 + 0.8 * n_lr) + 1.3
        height = n_rows * (1.1 + 0.45 * n_alpha) + 0.7
        fig, axes, own = _panel_axes(ax, n_rows, n_cols, (max(width, 4.5), max(height, 3.0)))

        from matplotlib import colormaps
        from matplotlib.colors import Normalize
        from matplotlib.patches import Rectangle

        all_scores = np.concatenate([p[2].ravel() for p in panels.values()])
        vmin, vmax, extend = _colour_limits(all_scores)
        cmap = colormaps["viridis"].with_extremes(bad="white")
        norm = Normalize(vmin=vmin, vmax=vmax)
        chosen = None if self.best_params is None else _cell_of(self.best_params)
        image = None
        self.best_ax_ = None
        for r, e in enumerate(self.epochs_shown):
            for c, bs in enumerate(self.batch_sizes):
                pax = axes[r, c] if self.rows == "epochs" else axes[c, r]
                if (e, bs) not in panels:  # random search: no configuration here
                    pax.set_axis_off()
                    pax.set_title(f"batch size {bs}, {e} epochs")
                    pax.text(
                        0.5,
                        0.5,
                        "not searched",
                        ha="center",
                        va="center",
                        transform=pax.transAxes,
                        color="grey",
                    )
                    continue
                lrs, alphas, scores, diverged = panels[(e, bs)]
                image = pax.imshow(
                    np.ma.masked_invalid(scores),
                    cmap=cmap,
                    norm=norm,
                    origin="lower",
                    aspect="auto",
                    interpolation="nearest",
                )
                _annotate(pax, scores, diverged, cmap, norm)
                if chosen is not None and chosen[:2] == (e, bs):
                    i, j = alphas.index(chosen[3]), lrs.index(chosen[2])
                    pax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            fill=False,
                            edgecolor=_CHOSEN_COLOUR,
                            linewidth=2.5,
                            zorder=3,
                            clip_on=False,
                            label="chosen",
                        )
                    )
                    self.best_ax_ = pax
                pax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
                pax.set_yticks(range(len(alphas)), [f"{v:g}" for v in alphas])
                pax.tick_params(axis="x", labelrotation=30 if len(lrs) > 4 else 0)
                pax.set_xlabel("learning rate")
                pax.set_ylabel("alpha")
                pax.set_title(f"batch size {bs}, {e} epochs")
        assert image is not None
        self.colorbar_ = fig.colorbar(image, ax=list(axes.ravel()), extend=extend, shrink=0.9)
        self.colorbar_.set_label(f"validation {self.metric_name}")
        if self.title is not None:
            fig.suptitle(self.title)
        elif ax is None:
            chosen_text = "; red: the chosen configuration" if self.best_ax_ is not None else ""
            fig.suptitle(f"validation {self.metric_name}{chosen_text}")
        self.figure_, self.axes_, self._own_figure = fig, axes, own
        self.ax_ = axes[0, 0]
        return self


def _annotate(ax: Axes, scores: np.ndarray, diverged: np.ndarray, cmap: Any, norm: Any) -> None:
    from matplotlib.patches import Rectangle

    annotate = scores.size <= 400
    for i in range(scores.shape[0]):
        for j in range(scores.shape[1]):
            if diverged[i, j]:
                ax.add_patch(
                    Rectangle(
                        (j - 0.5, i - 0.5),
                        1,
                        1,
                        facecolor=_DIVERGED_COLOUR,
                        edgecolor="white",
                        hatch="//",
                        linewidth=0.5,
                    )
                )
                if annotate:
                    ax.text(j, i, "div", ha="center", va="center", fontsize=9, color="black")
                continue
            value = scores[i, j]
            if annotate and math.isfinite(value):
                r, g, b, _ = cmap(norm(value))
                dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
                ax.text(
                    j,
                    i,
                    _fmt(float(value)),
                    ha="center",
                    va="center",
                    fontsize=9,
                    color="white" if dark else "black",
                )


def plot_tune_heatmap(
    result: TuneResult | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str] | None = None,
    *,
    ax: Any = None,
    epochs: int | None = None,
    rows: str = "epochs",
    title: str | None = None,
    metric_name: str = "score",
) -> TuneHeatmapDisplay:
    """Draw the validation score over learning rate x alpha; optionally write a PNG.

    A shortcut for :meth:`TuneHeatmapDisplay.from_result` that also writes
    the figure to ``path``: one panel per epoch count (rows) and batch size
    (columns), the chosen configuration outlined in red.

    Parameters
    ----------
    result : TuneResult or list of dict
        The result of :func:`anyglm.tune` (or its ``table``): rows with
        ``batch_size``, ``learning_rate``, ``alpha``, ``epochs``,
        ``val_score`` and ``diverged``.
    path : str or os.PathLike, optional
        Where to write the PNG (always PNG, whatever the suffix); written
        atomically. With ``ax``, the whole figure holding ``ax`` is written.
    ax : matplotlib Axes or sequence of Axes, optional
        Where to draw (see :meth:`TuneHeatmapDisplay.plot`).
    epochs : int, optional
        Show only this ``epochs`` value of the grid; by default every one.
    rows : {"epochs", "batch_size"}, default="epochs"
        What changes down the grid of panels (the other changes across it).
    title : str, optional
        Figure title.
    metric_name : str, default="score"
        Name of the validation metric for the colour bar.

    Returns
    -------
    TuneHeatmapDisplay

    Raises
    ------
    ImportError
        matplotlib is not installed.
    ValueError
        The table is empty or malformed, or ``epochs`` is not one of its
        values.
    FileNotFoundError
        The folder of ``path`` does not exist.

    Examples
    --------
    >>> import os, tempfile
    >>> import anyglm
    >>> from anyglm.plotting import plot_tune_heatmap
    >>> X, y = anyglm.datasets.load_dataset("breast_cancer")
    >>> X = anyglm.datasets.standardize(X)[0]
    >>> res = anyglm.tune("logistic", X, y, grid={"learning_rate": [0.01, 0.1],
    ...                   "alpha": [1e-4, 1e-2], "epochs": [3], "batch_size": [32, 64]})
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "tune.png")
    ...     disp = plot_tune_heatmap(res, path, metric_name="accuracy")
    ...     os.path.getsize(path) > 1000
    True
    >>> disp.axes_.shape, plot_tune_heatmap(res, rows="batch_size").axes_.shape
    ((1, 2), (2, 1))
    """
    disp = TuneHeatmapDisplay(
        _table_of(result),
        best_params=getattr(result, "best_params", None),
        epochs=epochs,
        rows=rows,
        metric_name=metric_name,
        title=title,
    ).plot(ax=ax)
    if path is not None:
        disp.save(path)
    return disp
