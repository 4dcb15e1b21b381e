"""Learning curves and tuning heat maps as PNG files (needs the ``plot`` extra).

matplotlib is imported only when a plot is drawn, so ``import anyglm`` stays
light, and only through its object API (:class:`matplotlib.figure.Figure` on
an Agg canvas): no pyplot, no global figure state, no display needed. Each
PNG is rendered in memory and written atomically, so a reader never sees a
half-written file.

Examples
--------
>>> import os, tempfile
>>> from anyglm.plotting import plot_history
>>> with tempfile.TemporaryDirectory() as folder:
...     path = os.path.join(folder, "curves.png")
...     plot_history({"train_loss": [0.9, 0.5, 0.4]}, path)
...     with open(path, "rb") as f:
...         f.read(4)[1:]
b'PNG'
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .modelfile import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .tuning import TuneResult

__all__ = ["plot_history", "plot_tune_heatmap"]

_MISSING = "plotting needs matplotlib: pip install 'anyglm[plot]'"
_DPI = 100
_TRAIN_COLOUR = "tab:blue"
_VAL_COLOUR = "tab:orange"
_SCORE_COLOUR = "tab:green"
_DIVERGED_COLOUR = "#b0b0b0"


def _new_figure(width: float, height: float) -> Figure:
    """A headless figure on an Agg canvas, or ImportError when matplotlib is missing."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(_MISSING) from err
    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | os.PathLike[str]) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI)
    atomic_write_bytes(path, buf.getvalue())


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


def plot_history(
    history: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str | None = None,
    metric_name: str = "score",
) -> None:
    """Draw learning curves (loss and validation score per epoch) into a PNG file.

    The left panel shows ``train_loss`` and, if present, ``val_loss``; the
    right panel, drawn only when the history has ``val_score``, shows the
    validation metric with its best epoch marked. NaN values (a diverged
    epoch) leave a gap, and a dashed red line marks the epoch where a curve
    stopped being finite. Losses spanning more than two decades use a log
    scale.

    Parameters
    ----------
    history : mapping of str to sequence of float
        Per-epoch values, as in an estimator's ``history_``: ``train_loss``
        (required) and optionally ``val_loss`` and ``val_score``.
    path : str or os.PathLike
        Where to write the PNG (always PNG, whatever the suffix); written
        atomically.
    title : str, optional
        Figure title.
    metric_name : str, default="score"
        Name of the validation metric for the right panel's axis
        (``"accuracy"``, ``"R^2"``...).

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
    ...     plot_history(clf.history_, path, title="breast cancer", metric_name="accuracy")
    ...     os.path.getsize(path) > 1000
    True
    """
    if not isinstance(history, Mapping):
        raise ValueError(f"history must be a mapping of per-epoch lists, got {type(history)}")
    if not history:
        raise ValueError("history is empty: nothing to plot")
    train_loss = _series(history, "train_loss")
    if train_loss is None:
        raise ValueError(f"history has no 'train_loss'; its keys are {sorted(map(str, history))}")
    if train_loss.size == 0:
        raise ValueError("history['train_loss'] is empty: nothing to plot")
    val_loss = _series(history, "val_loss")
    val_score = _series(history, "val_score")
    if val_score is not None and val_score.size == 0:
        val_score = None

    n_panels = 2 if val_score is not None else 1
    fig = _new_figure(5.5 * n_panels, 4.2)
    axes = fig.subplots(1, n_panels, squeeze=False)[0]

    ax = axes[0]
    _plot_curve(ax, train_loss, _TRAIN_COLOUR, "training loss")
    if val_loss is not None and val_loss.size:
        _plot_curve(ax, val_loss, _VAL_COLOUR, "validation loss")
    _mark_divergence(ax, train_loss)
    if _use_log_scale(train_loss, val_loss):
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.set_title("loss")
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")

    if val_score is not None:
        ax = axes[1]
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

    for ax in axes:
        ax.xaxis.get_major_locator().set_params(integer=True)
    if title:
        fig.suptitle(title)
    _save(fig, path)


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.3g}"


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


def plot_tune_heatmap(
    result: TuneResult | Sequence[Mapping[str, Any]],
    path: str | os.PathLike[str],
    *,
    epochs: int | None = None,
    title: str | None = None,
    metric_name: str = "score",
) -> None:
    """Draw the validation score over learning rate x alpha, one heat map per batch size.

    Panels sit side by side, one per batch size, sharing one colour scale
    and colour bar. Each cell is annotated with its score; diverged
    configurations are hatched grey cells marked ``div``, settings that were
    not tried stay blank, and the best cell (over all panels) is outlined in
    red. The axes are categorical, in increasing order of the values tried.

    Parameters
    ----------
    result : TuneResult or list of dict
        The result of :func:`anyglm.tune` (or its ``table``): rows with
        ``batch_size``, ``learning_rate``, ``alpha``, ``epochs``,
        ``val_score`` and ``diverged``.
    path : str or os.PathLike
        Where to write the PNG (always PNG, whatever the suffix); written
        atomically.
    epochs : int, optional
        Which ``epochs`` value of the grid to show; default the largest.
    title : str, optional
        Figure title (default names the epochs shown).
    metric_name : str, default="score"
        Name of the validation metric for the colour bar.

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
    ...     plot_tune_heatmap(res, path, metric_name="accuracy")
    ...     os.path.getsize(path) > 1000
    True
    """
    rows = _table_of(result)
    available = sorted({int(r["epochs"]) for r in rows})
    if epochs is None:
        shown = available[-1]
    elif isinstance(epochs, bool) or not isinstance(epochs, (int, np.integer)):
        raise ValueError(f"epochs must be an integer, got {epochs!r}")
    elif int(epochs) not in available:
        raise ValueError(f"epochs={epochs} is not in the tune result; it has epochs {available}")
    else:
        shown = int(epochs)
    rows = [r for r in rows if int(r["epochs"]) == shown]
    batch_sizes = sorted({int(r["batch_size"]) for r in rows})

    panels = []
    for bs in batch_sizes:
        group = [r for r in rows if int(r["batch_size"]) == bs]
        lrs = sorted({float(r["learning_rate"]) for r in group})
        alphas = sorted({float(r["alpha"]) for r in group})
        scores, diverged = _cell_grid(group, lrs, alphas)
        panels.append((bs, lrs, alphas, scores, diverged))

    all_scores = np.concatenate([p[3].ravel() for p in panels])
    vmin, vmax, extend = _colour_limits(all_scores)
    best = float(np.nanmax(all_scores)) if np.isfinite(all_scores).any() else math.nan

    n_cols = max(len(p[1]) for p in panels)
    n_rows = max(len(p[2]) for p in panels)
    width = len(panels) * (1.2 + 0.95 * n_cols) + 1.4
    height = 1.9 + 0.55 * n_rows
    fig = _new_figure(max(width, 4.5), max(height, 3.0))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]

    from matplotlib import colormaps
    from matplotlib.colors import Normalize
    from matplotlib.patches import Rectangle

    cmap = colormaps["viridis"].with_extremes(bad="white")
    norm = Normalize(vmin=vmin, vmax=vmax)
    image = None
    for ax, (bs, lrs, alphas, scores, diverged) in zip(axes, panels, strict=True):
        image = ax.imshow(
            np.ma.masked_invalid(scores),
            cmap=cmap,
            norm=norm,
            origin="lower",
            aspect="auto",
            interpolation="nearest",
        )
        annotate = scores.size <= 400
        for i in range(len(alphas)):
            for j in range(len(lrs)):
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
                if not math.isfinite(value):
                    continue
                if annotate:
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
                if value == best:
                    ax.add_patch(
                        Rectangle(
                            (j - 0.5, i - 0.5),
                            1,
                            1,
                            fill=False,
                            edgecolor="tab:red",
                            linewidth=2.5,
                            zorder=3,
                            clip_on=False,
                        )
                    )
        ax.set_xticks(range(len(lrs)), [f"{v:g}" for v in lrs])
        ax.set_yticks(range(len(alphas)), [f"{v:g}" for v in alphas])
        ax.tick_params(axis="x", labelrotation=30 if len(lrs) > 4 else 0)
        ax.set_xlabel("learning rate")
        ax.set_ylabel("alpha")
        ax.set_title(f"batch size {bs}")

    assert image is not None
    bar = fig.colorbar(image, ax=list(axes), extend=extend, shrink=0.9)
    bar.set_label(f"validation {metric_name}")
    fig.suptitle(title if title is not None else f"validation {metric_name} at {shown} epochs")
    _save(fig, path)
