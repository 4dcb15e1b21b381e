"""Headless matplotlib figures and what the plotting Displays share.

Part of :mod:`anyglm.plotting` (which users import): a figure on an Agg canvas
made without pyplot, the axes a Display draws into (its own, or the caller's
``ax=``), atomic PNG writes, and the base class that saves a Display and shows
it in Jupyter. matplotlib is imported only when a figure is made.
"""

from __future__ import annotations

import io
import math
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from .modelfile import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure, SubFigure

_MISSING = "plotting needs matplotlib: pip install 'anyglm[plot]'"
_DPI = 100


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


def _png(fig: Figure | SubFigure) -> bytes:
    buf = io.BytesIO()
    fig.figure.savefig(buf, format="png", dpi=_DPI)
    return buf.getvalue()


def _save(fig: Figure | SubFigure, path: str | os.PathLike[str]) -> None:
    atomic_write_bytes(path, _png(fig))


def _panel_axes(
    ax: Any, n_rows: int, n_cols: int, size: tuple[float, float]
) -> tuple[Figure | SubFigure, np.ndarray, bool]:
    """The figure, an (n_rows, n_cols) array of Axes to draw in, and whether the figure is ours.

    ``ax`` is ``None`` (a new figure of ``size`` inches), one Axes (used as is
    for one panel; for several, its area is divided among them and it is
    switched off, as scikit-learn's PartialDependenceDisplay does), or a
    sequence / array of ``n_rows * n_cols`` Axes.
    """
    if ax is None:
        new = _new_figure(*size)
        return new, new.subplots(n_rows, n_cols, squeeze=False), True
    from matplotlib.axes import Axes

    if isinstance(ax, Axes):
        fig = ax.get_figure()
        assert fig is not None
        if n_rows * n_cols == 1:
            return fig, np.array([[ax]], dtype=object), False
        spec = ax.get_subplotspec()
        if spec is None:
            raise ValueError(
                f"this plot has {n_rows} x {n_cols} panels and ax was not made by "
                "subplots/add_subplot, so its area cannot be divided; pass "
                f"{n_rows * n_cols} Axes instead"
            )
        grid = spec.subgridspec(n_rows, n_cols)
        ax.set_axis_off()
        axes = np.empty((n_rows, n_cols), dtype=object)
        for i in range(n_rows):
            for j in range(n_cols):
                axes[i, j] = fig.add_subplot(grid[i, j])
        return fig, axes, False
    flat = np.asarray(ax, dtype=object).ravel()
    if flat.size != n_rows * n_cols or not all(isinstance(a, Axes) for a in flat):
        raise ValueError(
            f"ax must be one matplotlib Axes or {n_rows * n_cols} of them "
            f"({n_rows} x {n_cols} panels), got {type(ax).__name__} of {flat.size}"
        )
    fig = flat[0].get_figure()
    return fig, flat.reshape(n_rows, n_cols), False


class _Display:
    """What both Displays share: the figure, saving it, showing it in Jupyter."""

    figure_: Figure | SubFigure
    ax_: Axes
    axes_: np.ndarray
    _own_figure: bool = False

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the figure as a PNG file (whatever the suffix), atomically.

        Examples
        --------
        >>> import os, tempfile
        >>> from anyglm.plotting import LearningCurveDisplay
        >>> disp = LearningCurveDisplay.from_history({"train_loss": [1.0, 0.5]})
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     disp.save(os.path.join(folder, "curves.png"))
        ...     os.listdir(folder)
        ['curves.png']
        """
        if not hasattr(self, "figure_"):
            raise ValueError("nothing drawn yet: call plot() first")
        _save(self.figure_, path)

    def _repr_png_(self) -> bytes | None:
        # Jupyter shows a Display that made its own (pyplot-free) figure; one
        # drawn into the caller's axes is shown by the caller's figure instead.
        if not self._own_figure or not hasattr(self, "figure_"):
            return None
        return _png(self.figure_)


def _fmt(value: float) -> str:
    if not math.isfinite(value):
        return "nan"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.3g}"
