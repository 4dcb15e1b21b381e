"""Sphinx extension: the documentation's figures, drawn by anyglm while the docs build.

Every PNG a page shows is computed here, from the shipped data sets, when the
build starts, and written to ``docs/_generated/`` (ignored by git), so a
picture can never fall out of step with the library. The pages point at them
with ``{image}`` directives; the doctests on the same pages repeat the
computation and check it against ``_generated/*.json``.

The HTML builder always redraws them; other builders (doctest) draw them only
when they are missing. Drawing takes a few seconds.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

GENERATED = Path(__file__).resolve().parents[1] / "_generated"

#: Width, in pixels, that fits the text column of a page in a 1280 px browser window
#: (the pydata theme with the page's table of contents on the right: about 896 px, less
#: a classic scrollbar): a figure drawn here is at most this wide, so it is shown at its
#: natural size without scrolling.
#: Wider ones (those anyglm.plotting draws at its own size) scroll sideways in their
#: box (_static/anyglm.css); docs/check_figures.py checks none is squeezed.
TEXT_COLUMN_PX = 860
DPI = 100

#: The tutorial's grid: 3 batch sizes x 4 learning rates x 2 epoch counts x 4 alphas.
TUTORIAL_GRID: dict[str, list[Any]] = {
    "batch_size": [16, 64, 256],
    "learning_rate": [0.001, 0.01, 0.1, 1.0],
    "epochs": [5, 20],
    "alpha": [0.0, 0.001, 0.01, 0.1],
}


def all_positive_steps(steps: int = 1000) -> dict[str, list[float]]:
    """Full-batch gradient descent on ``all-positive`` (every label 1), one step at a time.

    Returns per step ``t = 0 .. steps`` the intercept ``b``, the gradient of
    the mean loss with respect to ``b`` and the loss, all at the parameters
    after ``t`` steps, computed by anyglm (``partial_fit`` for the steps,
    :func:`anyglm.glm.loss_and_gradient` for the gradient).
    """
    import anyglm
    from anyglm.datasets import load_dataset
    from anyglm.glm import loss_and_gradient

    X, y = load_dataset("all-positive")
    xp = anyglm.get_backend("numpy").xp
    model = anyglm.get_model("logistic")
    Y = np.ones((X.shape[0], 1))
    clf = anyglm.LogisticRegression(
        batch_size=X.shape[0], learning_rate=1.0, alpha=0.0, shuffle=False, average=False
    )
    W, b = np.zeros((X.shape[1], 1)), np.zeros(1)
    out: dict[str, list[float]] = {"b": [], "grad_b": [], "loss": []}
    for t in range(steps + 1):
        if t > 0:
            clf.partial_fit(X, y, classes=[0, 1])
            W, b = np.asarray(clf.coef_).T, np.asarray(clf.intercept_)
        loss, _, gb = loss_and_gradient(model, xp, X, Y, W, b)
        out["b"].append(float(b[0]))
        out["grad_b"].append(float(gb[0]))
        out["loss"].append(float(loss[0]))
    return out


def draw_all_positive(folder: Path) -> None:
    """``all_positive.png``: b and its gradient over the steps, with the asymptotes."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    data = all_positive_steps(1000)
    t = np.arange(1, len(data["b"]))
    b = np.asarray(data["b"][1:])
    grad = np.asarray(data["grad_b"][1:])
    fig = Figure(figsize=(TEXT_COLUMN_PX / DPI, 3.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2)
    left.plot(t, b, color="tab:blue", label="$b_t$ (anyglm)")
    left.plot(
        t, np.log(t), color="black", linestyle="--", linewidth=1, label=r"$\log(\varepsilon t)$"
    )
    left.set_xscale("log")
    left.set_xlabel(r"step $t$ (full batch, $\varepsilon = 1$)")
    left.set_ylabel("$b$")
    left.set_title("the intercept grows without bound")
    right.plot(t, -grad, color="tab:orange", label=r"$-\nabla_b f_{\log}$ (anyglm)")
    right.plot(t, 1 / t, color="black", linestyle="--", linewidth=1, label=r"$1/(\varepsilon t)$")
    right.set_xscale("log")
    right.set_yscale("log")
    right.set_xlabel(r"step $t$")
    right.set_ylabel(r"$-\nabla_b f_{\log}$")
    right.set_title("its gradient shrinks, never reaching 0")
    for ax in (left, right):
        ax.grid(True, alpha=0.3)
        ax.legend(loc="best")
    fig.suptitle("Logistic regression on all-positive: every label is 1")
    fig.savefig(folder / "all_positive.png", format="png", dpi=DPI)
    _write_json(folder / "all_positive.json", {k: v[::100] for k, v in data.items()})


#: The tutorial's search is the assignment's: plain SGD for the epochs in the grid.
PLAIN = {"average": False, "n_iter_no_change": None}


def tutorial_tune() -> Any:
    """The tutorial's search: softmax on digits, the grid above, 20% for validation."""
    import anyglm
    from anyglm.datasets import load_dataset, standardize, train_test_split

    X, y = load_dataset("digits")
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.2, random_state=0)
    X_tr, X_te = standardize(X_tr, X_te)
    res = anyglm.tune(
        "softmax",
        X_tr,
        y_tr,
        grid=TUTORIAL_GRID,
        validation_fraction=0.2,
        test_data=(X_te, y_te),
        random_state=0,
        estimator_params=PLAIN,
    )
    return res, (X_tr, y_tr)


def draw_tutorial(folder: Path) -> None:
    """``tune_heatmap.png`` and ``tune_curves.png`` of the tutorial, and its table."""
    import anyglm
    from anyglm.plotting import plot_history, plot_tune_heatmap

    res, (X_tr, y_tr) = tutorial_tune()
    plot_tune_heatmap(res, folder / "tune_heatmap.png", metric_name="accuracy")
    best = anyglm.SoftmaxRegression(
        **res.best_params, **PLAIN, validation_fraction=0.2, random_state=0
    )
    best.fit(X_tr, y_tr)
    plot_history(
        best.history_,
        folder / "tune_curves.png",
        title="the best configuration, trained with a validation split",
        metric_name="accuracy",
    )
    table = [{k: v for k, v in row.items() if k != "time_s"} for row in res.table]
    _write_json(folder / "tune_table.json", {"best_params": res.best_params, "table": table})


#: What each drawing function writes.
FIGURES: list[tuple[Callable[[Path], None], tuple[str, ...]]] = [
    (draw_all_positive, ("all_positive.png", "all_positive.json")),
    (draw_tutorial, ("tune_heatmap.png", "tune_curves.png", "tune_table.json")),
]


def _write_json(path: Path, payload: Any) -> None:
    def clean(value: Any) -> Any:
        if isinstance(value, float) and not math.isfinite(value):
            return None
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    path.write_text(json.dumps(clean(payload), indent=1) + "\n", encoding="utf-8")


def generate(folder: Path = GENERATED, *, force: bool = True) -> list[str]:
    """Draw every figure into ``folder`` (only the missing ones unless ``force``)."""
    folder.mkdir(parents=True, exist_ok=True)
    drawn: list[str] = []
    for draw, outputs in FIGURES:
        if force or not all((folder / name).exists() for name in outputs):
            draw(folder)
            drawn.extend(outputs)
    return drawn


def _on_builder_inited(app: Any) -> None:
    from sphinx.errors import ExtensionError
    from sphinx.util import logging

    try:
        import matplotlib  # noqa: F401
    except ImportError as err:
        raise ExtensionError(
            'the documentation\'s figures are drawn with matplotlib: pip install -e ".[docs,plot]"'
        ) from err
    start = time.perf_counter()
    drawn = generate(force=app.builder.format == "html")
    if drawn:
        logging.getLogger(__name__).info(
            "anyglm_figures: drew %s in %.1f s", ", ".join(drawn), time.perf_counter() - start
        )


def setup(app: Any) -> dict[str, Any]:
    app.connect("builder-inited", _on_builder_inited)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
