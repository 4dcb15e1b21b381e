"""Learning curves and tuning heat maps, in scikit-learn's Display style (needs ``plot``).

Each plot is a Display object: build it with a ``from_...`` class method (or
the functions :func:`plot_history` and :func:`plot_tune_heatmap`), which draws
it and returns it holding the figure (``figure_``) and the axes (``ax_``, and
``axes_`` for all panels). Pass ``ax=`` to draw into your own axes (a figure
of yours, a notebook cell); without it the Display makes its own headless
figure. :meth:`LearningCurveDisplay.save` (or the ``path`` argument of the
functions) writes a PNG atomically, so a reader never sees a half-written
file. In Jupyter a Display that made its own figure shows itself as the value
of a cell (its ``_repr_png_``); no ``savefig`` is needed.

matplotlib is imported only when a plot is drawn, so ``import anyglm`` stays
light. A figure the Display makes itself uses the object API on an Agg canvas:
no pyplot, no global figure state, no display needed.

Examples
--------
>>> from anyglm.plotting import LearningCurveDisplay
>>> disp = LearningCurveDisplay.from_history({"train_loss": [0.9, 0.5, 0.4]})
>>> disp.ax_.get_xlabel(), disp.figure_ is disp.ax_.figure
('epoch', True)
"""

from .curves import LearningCurveDisplay, plot_history
from .heatmap import TuneHeatmapDisplay, plot_tune_heatmap

__all__ = [
    "LearningCurveDisplay",
    "TuneHeatmapDisplay",
    "plot_history",
    "plot_tune_heatmap",
]
