"""Learning curves and tuning heat maps: valid, non-blank PNGs; matplotlib stays optional."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest

pytest.importorskip("matplotlib")

from anyglm.plotting import plot_history, plot_tune_heatmap
from matplotlib.image import imread

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _check_png(path: Path, min_width: int = 300, min_height: int = 200) -> np.ndarray:
    """The file is a PNG of a sensible size showing more than one colour; returns its pixels."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    # IHDR: width and height are the first two big-endian uint32 after the chunk header.
    assert data[12:16] == b"IHDR"
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert min_width <= width <= 4000 and min_height <= height <= 3000, (width, height)
    pixels = imread(path)
    assert pixels.shape[:2] == (height, width)
    rgb = pixels[..., :3].reshape(-1, 3)
    packed = np.round(rgb * 255).astype(np.uint32) @ np.array([1 << 16, 1 << 8, 1], np.uint32)
    colours = np.unique(packed)
    assert len(colours) > 20, f"nearly blank image: {len(colours)} colours"
    # Not a near-uniform image: a good share of pixels differ from the background.
    background = np.median(rgb, axis=0)
    assert np.mean(np.abs(rgb - background).sum(axis=1) > 0.1) > 0.02
    return pixels


def _colour_fraction(pixels: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> float:
    """Share of pixels within ``tol`` (0-255 per channel) of a colour."""
    px = np.round(pixels[..., :3] * 255).astype(int)
    return float(np.mean(np.all(np.abs(px - np.array(rgb)) <= tol, axis=-1)))


TAB_BLUE, TAB_ORANGE, TAB_GREEN = (31, 119, 180), (255, 127, 14), (44, 160, 44)
DIVERGED_GREY = (176, 176, 176)


# ----- learning curves -------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_history() -> dict[str, list[float]]:
    X, y = anyglm.datasets.load_dataset("digits")
    X = anyglm.datasets.standardize(X[:400])[0]
    clf = anyglm.SoftmaxRegression(
        epochs=8, validation_fraction=0.25, random_state=0, learning_rate=0.05
    ).fit(X, y[:400])
    return clf.history_


def test_history_with_validation_draws_two_panels(
    tmp_path: Path, digits_history: dict[str, list[float]]
) -> None:
    assert set(digits_history) == {"train_loss", "val_loss", "val_score"}
    path = tmp_path / "curves.png"
    plot_history(digits_history, path, title="digits", metric_name="accuracy")
    pixels = _check_png(path, min_width=800)
    # Training loss (blue), validation loss (orange) and validation score (green) are drawn.
    for colour in (TAB_BLUE, TAB_ORANGE, TAB_GREEN):
        assert _colour_fraction(pixels, colour) > 0.0005, colour
    # The score curve is in the right half, the loss curves in the left half.
    half = pixels.shape[1] // 2
    assert _colour_fraction(pixels[:, half:], TAB_GREEN) > 10 * _colour_fraction(
        pixels[:, :half], TAB_GREEN
    )
    assert _colour_fraction(pixels[:, :half], TAB_BLUE) > 10 * _colour_fraction(
        pixels[:, half:], TAB_BLUE
    )


def test_history_without_validation_draws_one_panel(tmp_path: Path) -> None:
    X, y = anyglm.datasets.load_dataset("breast_cancer")
    X = anyglm.datasets.standardize(X)[0]
    clf = anyglm.LogisticRegression(epochs=4, random_state=0).fit(X, y)
    assert set(clf.history_) == {"train_loss"}
    one, two = tmp_path / "one.png", tmp_path / "two.png"
    plot_history(clf.history_, one)
    plot_history({**clf.history_, "val_score": [0.9, 0.92, 0.95, 0.96]}, two)
    pixels = _check_png(one)
    assert _colour_fraction(pixels, TAB_BLUE) > 0.0005
    assert _colour_fraction(pixels, TAB_ORANGE) == 0.0  # no validation loss curve
    assert _colour_fraction(pixels, TAB_GREEN) == 0.0  # no score panel
    # One panel is narrower than two.
    assert imread(one).shape[1] < 0.7 * imread(two).shape[1]


def test_history_with_nans_and_numpy_values(tmp_path: Path) -> None:
    history = {
        "train_loss": np.array([2.0, 1.0, 0.5, math.nan, math.nan]),
        "val_loss": [2.2, 1.1, math.nan, math.nan, math.nan],
        "val_score": [0.5, 0.7, math.nan, math.nan, math.nan],
    }
    path = tmp_path / "nan.png"
    plot_history(history, path)
    pixels = _check_png(path)
    assert _colour_fraction(pixels, TAB_GREEN) > 0.0002
    # The epoch where the loss turned non-finite is marked in red.
    assert _colour_fraction(pixels, (214, 39, 40)) > 0.0005


def test_history_all_nan_scores_and_single_epoch(tmp_path: Path) -> None:
    path = tmp_path / "one_epoch.png"
    plot_history({"train_loss": [0.7], "val_score": [math.nan]}, path)
    pixels = _check_png(path)
    assert _colour_fraction(pixels, TAB_BLUE) > 0.0001  # a single epoch still shows a point


def test_history_spanning_decades_uses_log_scale(tmp_path: Path) -> None:
    from anyglm.curves import _use_log_scale

    assert _use_log_scale(np.array([1e4, 10.0, 0.5]), None)
    assert not _use_log_scale(np.array([3.0, 2.0, 1.5]), np.array([math.nan]))
    assert not _use_log_scale(np.array([5.0, -1.0]))
    path = tmp_path / "log.png"
    plot_history({"train_loss": [1e4, 10.0, 0.5], "val_loss": [2e4, 20.0, 1.0]}, path)
    _check_png(path)


def test_history_overwrites_atomically(tmp_path: Path) -> None:
    path = tmp_path / "curves.png"
    path.write_bytes(b"old contents")
    plot_history({"train_loss": [1.0, 0.5]}, str(path))
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png"]  # no temporary left


@pytest.mark.parametrize(
    ("history", "match"),
    [
        ({}, "empty"),
        ({"val_loss": [1.0], "val_score": [0.5]}, r"train_loss.*\['val_loss', 'val_score'\]"),
        ({"train_loss": []}, "empty"),
        ({"train_loss": [[1.0, 2.0]]}, "flat"),
        ({"train_loss": ["a", "b"]}, "numbers"),
        ([1.0, 2.0], "mapping"),
    ],
)
def test_history_bad_input(tmp_path: Path, history: Any, match: str) -> None:
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match=match):
        plot_history(history, path)
    assert not path.exists()


def test_missing_folder_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such"
    with pytest.raises(FileNotFoundError, match="such"):
        plot_history({"train_loss": [1.0]}, missing / "x.png")


# ----- tuning heat maps ------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits_tune() -> anyglm.TuneResult:
    X, y = anyglm.datasets.load_dataset("digits")
    X = anyglm.datasets.standardize(X[:300])[0]
    grid = {
        "batch_size": [16, 64],
        "learning_rate": [0.01, 0.1, 1.0],
        "alpha": [1e-4, 1e-2],
        "epochs": [2, 4],
    }
    return anyglm.tune("softmax", X, y[:300], grid=grid, refit=False)


@pytest.fixture(scope="module")
def diverging_tune() -> anyglm.TuneResult:
    # Raw (unstandardised) diabetes features reach 300: a rate of 10 explodes at once.
    X, y = anyglm.datasets.load_dataset("diabetes")
    grid = {
        "batch_size": [16, 64],
        "learning_rate": [1e-6, 1e-5, 10.0],
        "alpha": [0.0, 1e-2],
        "epochs": [3],
    }
    return anyglm.tune("linear", X, y, grid=grid, refit=False)


def test_heatmap_of_a_digits_grid(tmp_path: Path, digits_tune: anyglm.TuneResult) -> None:
    assert len(digits_tune.table) == 24
    path = tmp_path / "tune.png"
    disp = plot_tune_heatmap(digits_tune, path, metric_name="accuracy")
    pixels = _check_png(path, min_width=600)
    # Nothing diverged here: no grey "div" cells.
    assert _colour_fraction(pixels, DIVERGED_GREY, tol=3) < 0.001
    # One panel per epoch count (rows) and batch size (columns), one shared colour bar.
    assert disp.axes_.shape == (2, 2)
    assert [[a.get_title() for a in row] for row in disp.axes_] == [
        ["batch size 16, 2 epochs", "batch size 64, 2 epochs"],
        ["batch size 16, 4 epochs", "batch size 64, 4 epochs"],
    ]
    assert disp.colorbar_.ax.get_ylabel() == "validation accuracy"


def test_heatmap_shows_every_epoch_count_and_epochs_selects_one(
    tmp_path: Path, digits_tune: anyglm.TuneResult
) -> None:
    every, first = tmp_path / "every.png", tmp_path / "first.png"
    last = tmp_path / "last.png"
    disp = plot_tune_heatmap(digits_tune, every)
    assert disp.epochs_shown == [2, 4]
    only_first = plot_tune_heatmap(digits_tune, first, epochs=2)
    plot_tune_heatmap(digits_tune, last, epochs=4)
    assert only_first.epochs_shown == [2] and only_first.axes_.shape == (1, 2)
    _check_png(first)
    # Two rows of panels are taller than one; the two single epoch counts differ.
    assert imread(every).shape[0] > 1.5 * imread(last).shape[0]
    assert imread(first).shape == imread(last).shape
    assert not np.array_equal(imread(last), imread(first))
    with pytest.raises(ValueError, match=r"epochs=3 .*\[2, 4\]"):
        plot_tune_heatmap(digits_tune, tmp_path / "x.png", epochs=3)


def test_heatmap_shows_diverged_cells(tmp_path: Path, diverging_tune: anyglm.TuneResult) -> None:
    diverged = [r for r in diverging_tune.table if r["diverged"]]
    assert diverged and all(math.isnan(r["val_score"]) for r in diverged)
    assert any(not r["diverged"] for r in diverging_tune.table)
    path = tmp_path / "div.png"
    plot_tune_heatmap(diverging_tune, path, metric_name="R^2")
    pixels = _check_png(path)
    # Diverged cells are painted grey (2 of 12 cells here; a grid without divergence has
    # under 0.001 of this grey, see test_heatmap_of_a_digits_grid).
    assert _colour_fraction(pixels, DIVERGED_GREY, tol=3) > 0.01


def test_colour_range_clips_an_exploding_low_tail() -> None:
    from anyglm.heatmap import _colour_limits

    lo, hi, extend = _colour_limits(np.array([0.17, 0.15, -6.9e211, math.nan]))
    assert (lo, hi, extend) == (pytest.approx(0.17 - 1.0), 0.17, "min")
    assert _colour_limits(np.array([0.9, 0.95])) == (0.9, 0.95, "neither")
    lo, hi, _ = _colour_limits(np.array([0.5]))
    assert lo < 0.5 < hi


def test_heatmap_single_learning_rate_and_alpha(tmp_path: Path) -> None:
    table = [
        {"batch_size": 32, "learning_rate": 0.1, "alpha": 1e-4, "epochs": 5, "val_score": 0.9},
    ]
    path = tmp_path / "single.png"
    plot_tune_heatmap(table, path)
    _check_png(path, min_width=250)
    one_lr = [
        {"batch_size": 8, "learning_rate": 0.1, "alpha": a, "epochs": 5, "val_score": s}
        for a, s in ((0.0, 0.8), (0.1, 0.7), (1.0, 0.6))
    ]
    path = tmp_path / "column.png"
    plot_tune_heatmap(one_lr, path)
    _check_png(path, min_width=250)


def test_heatmap_irregular_grid_and_repeats(tmp_path: Path) -> None:
    # Random search: per batch size different settings, a repeated cell, an all-diverged cell.
    table = [
        {"batch_size": 8, "learning_rate": 0.1, "alpha": 0.0, "epochs": 3, "val_score": 0.6},
        {"batch_size": 8, "learning_rate": 0.1, "alpha": 0.0, "epochs": 3, "val_score": 0.7},
        {"batch_size": 8, "learning_rate": 1.0, "alpha": 0.1, "epochs": 3, "val_score": 0.5},
        {
            "batch_size": 32,
            "learning_rate": 5.0,
            "alpha": 0.0,
            "epochs": 3,
            "val_score": math.nan,
            "diverged": True,
        },
        {"batch_size": 32, "learning_rate": 0.01, "alpha": 0.0, "epochs": 3, "val_score": 0.4},
    ]
    path = tmp_path / "random.png"
    plot_tune_heatmap(table, path)
    _check_png(path)
    from anyglm.heatmap import _cell_grid

    scores, div = _cell_grid(table[:3], [0.1, 1.0], [0.0, 0.1])
    assert scores[0, 0] == 0.7  # the better of the repeats
    assert math.isnan(scores[1, 0]) and not div[1, 0]  # never tried: blank, not diverged
    assert scores[1, 1] == 0.5


def test_heatmap_all_diverged(tmp_path: Path) -> None:
    table = [
        {
            "batch_size": 8,
            "learning_rate": lr,
            "alpha": 0.0,
            "epochs": 1,
            "val_score": math.nan,
            "diverged": True,
        }
        for lr in (1.0, 10.0)
    ]
    path = tmp_path / "all_div.png"
    plot_tune_heatmap(table, path)
    pixels = _check_png(path, min_width=250)
    assert _colour_fraction(pixels, DIVERGED_GREY, tol=3) > 0.05


@pytest.mark.parametrize(
    ("result", "kwargs", "match"),
    [
        ([], {}, "empty"),
        ("table", {}, "TuneResult"),
        ([{"batch_size": 8, "learning_rate": 0.1}], {}, r"lacks \['alpha', 'epochs'"),
        ([1, 2], {}, "dicts"),
        (
            [{"batch_size": 8, "learning_rate": 0.1, "alpha": 0, "epochs": 2, "val_score": 1}],
            {"epochs": 2.5},
            "integer",
        ),
    ],
)
def test_heatmap_bad_input(tmp_path: Path, result: Any, kwargs: Any, match: str) -> None:
    path = tmp_path / "x.png"
    with pytest.raises(ValueError, match=match):
        plot_tune_heatmap(result, path, **kwargs)
    assert not path.exists()


def test_heatmap_missing_folder(tmp_path: Path, digits_tune: anyglm.TuneResult) -> None:
    with pytest.raises(FileNotFoundError, match="nowhere"):
        plot_tune_heatmap(digits_tune, tmp_path / "nowhere" / "x.png")


# ----- matplotlib stays optional ---------------------------------------------------------


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def test_import_is_light_and_plotting_is_headless(tmp_path: Path) -> None:
    # import anyglm (and anyglm.plotting) loads no matplotlib; drawing then ignores a GUI
    # backend requested through the environment: the object API draws on Agg, pyplot is
    # not imported and no DISPLAY is needed.
    target = tmp_path / "h.png"
    proc = _run(
        f"""
        import os, sys
        os.environ.pop("DISPLAY", None)
        os.environ["MPLBACKEND"] = "TkAgg"
        import anyglm, anyglm.plotting
        print(sorted(m for m in sys.modules if m.split(".")[0] == "matplotlib"))
        anyglm.plotting.plot_history({{"train_loss": [1.0, 0.5]}}, {str(target)!r})
        print("matplotlib" in sys.modules, "matplotlib.pyplot" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["[]", "True False"]
    assert target.read_bytes()[:8] == PNG_SIGNATURE


def test_missing_matplotlib_raises_a_helpful_import_error(tmp_path: Path) -> None:
    target = tmp_path / "x.png"
    proc = _run(
        f"""
        import sys
        sys.modules["matplotlib"] = None  # import matplotlib now raises ImportError
        from anyglm.plotting import plot_history, plot_tune_heatmap
        rows = [dict(batch_size=8, learning_rate=0.1, alpha=0.0, epochs=1, val_score=0.5)]
        for call in (lambda: plot_history({{"train_loss": [1.0]}}, {str(target)!r}),
                     lambda: plot_tune_heatmap(rows, {str(target)!r})):
            try:
                call()
            except ImportError as err:
                print("ImportError:", err)
        """
    )
    assert proc.returncode == 0, proc.stderr
    expected = "ImportError: plotting needs matplotlib: pip install 'anyglm[plot]'"
    assert proc.stdout.splitlines() == [expected, expected]
    assert not target.exists()


# ----- the Display objects -----------------------------------------------------------------------


def _outlines(disp: Any) -> list[tuple[Any, Any]]:
    """(Axes, Rectangle) of every red outline (unfilled rectangle) in the heat maps."""
    from matplotlib.colors import to_rgba
    from matplotlib.patches import Rectangle

    red = to_rgba("tab:red")
    return [
        (ax, p)
        for ax in disp.axes_.ravel()
        for p in ax.patches
        if isinstance(p, Rectangle) and not p.get_fill() and p.get_edgecolor() == red
    ]


def test_learning_curve_display_holds_its_figure_and_axes(
    digits_history: dict[str, list[float]],
) -> None:
    from anyglm.plotting import LearningCurveDisplay

    disp = LearningCurveDisplay.from_history(digits_history, metric_name="accuracy")
    assert disp.axes_.shape == (1, 2)
    assert disp.ax_ is disp.axes_[0, 0] and disp.score_ax_ is disp.axes_[0, 1]
    assert disp.ax_.get_figure() is disp.figure_
    labels = [line.get_label() for line in disp.ax_.get_lines()]
    assert labels == ["training loss", "validation loss"]
    score = disp.score_ax_.get_lines()[0].get_ydata()
    np.testing.assert_array_equal(score, digits_history["val_score"])
    # Shown by Jupyter without savefig: the Display renders its own figure.
    png = disp._repr_png_()
    assert png is not None and png[:8] == PNG_SIGNATURE


def test_learning_curves_into_the_callers_axes(digits_history: dict[str, list[float]]) -> None:
    from anyglm.plotting import LearningCurveDisplay
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 6))
    top, bottom_left, bottom_right = fig.subplot_mosaic([["t", "t"], ["l", "r"]]).values()
    # Two Axes: loss in the first, score in the second.
    disp = LearningCurveDisplay.from_history(digits_history, ax=[bottom_left, bottom_right])
    assert disp.figure_ is fig and disp.ax_ is bottom_left and disp.score_ax_ is bottom_right
    assert len(bottom_right.get_lines()) >= 1 and len(top.get_lines()) == 0
    assert disp._repr_png_() is None  # the caller's figure is shown, not a second copy
    # One Axes for two panels: its area is divided and it is switched off.
    disp = LearningCurveDisplay.from_history(digits_history, ax=top)
    assert not top.axison and disp.figure_ is fig
    assert disp.ax_ is not top and disp.ax_.get_figure() is fig
    # One Axes for one panel (no validation score): drawn into it.
    (single,) = Figure().subplots(1, 1, squeeze=False)[0]
    disp = LearningCurveDisplay.from_history({"train_loss": [1.0, 0.5]}, ax=single)
    assert disp.ax_ is single and disp.score_ax_ is None and len(single.get_lines()) == 1
    with pytest.raises(ValueError, match="one matplotlib Axes or 2"):
        LearningCurveDisplay.from_history(digits_history, ax=[single])


def test_learning_curve_from_estimator_names_the_metric() -> None:
    from anyglm.plotting import LearningCurveDisplay

    X, y = anyglm.datasets.load_dataset("diabetes")
    X = anyglm.datasets.standardize(X)[0]
    reg = anyglm.LinearRegression(epochs=3, validation_fraction=0.2, random_state=0).fit(X, y)
    disp = LearningCurveDisplay.from_estimator(reg, title="diabetes")
    assert disp.score_ax_ is not None and disp.score_ax_.get_ylabel() == "R^2"
    assert disp.figure_.get_suptitle() == "diabetes"
    with pytest.raises(ValueError, match="fit it before"):
        LearningCurveDisplay.from_estimator(anyglm.LinearRegression())


def test_plot_functions_return_displays_and_write_only_when_asked(
    tmp_path: Path, digits_tune: anyglm.TuneResult
) -> None:
    from anyglm.plotting import LearningCurveDisplay, TuneHeatmapDisplay

    curves = plot_history({"train_loss": [1.0, 0.5]})
    heat = plot_tune_heatmap(digits_tune)
    assert isinstance(curves, LearningCurveDisplay) and isinstance(heat, TuneHeatmapDisplay)
    assert list(tmp_path.iterdir()) == []
    heat.save(tmp_path / "again.png")
    _check_png(tmp_path / "again.png")


def test_the_heat_map_outlines_exactly_the_chosen_configuration(
    digits_tune: anyglm.TuneResult,
) -> None:
    from anyglm.plotting import TuneHeatmapDisplay

    best = digits_tune.best_params
    top = max(r["val_score"] for r in digits_tune.table)
    assert sum(r["val_score"] == top for r in digits_tune.table) > 1  # a tie in this grid
    disp = TuneHeatmapDisplay.from_result(digits_tune)
    assert disp.best_params == {k: best[k] for k in disp.best_params}
    ((ax, rect),) = _outlines(disp)  # one outline over all panels
    assert ax is disp.best_ax_
    assert ax.get_title() == f"batch size {best['batch_size']}, {best['epochs']} epochs"
    col = round(rect.get_x() + 0.5)
    row = round(rect.get_y() + 0.5)
    xticks = [t.get_text() for t in ax.get_xticklabels()]
    yticks = [t.get_text() for t in ax.get_yticklabels()]
    assert xticks[col] == f"{best['learning_rate']:g}" and yticks[row] == f"{best['alpha']:g}"
    # A snapshot that does not hold the chosen configuration outlines nothing.
    other = 2 if best["epochs"] == 4 else 4
    hidden = TuneHeatmapDisplay.from_result(digits_tune, epochs=other)
    assert _outlines(hidden) == [] and hidden.best_ax_ is None


def test_ties_in_a_plain_table_pick_what_tune_would() -> None:
    from anyglm.plotting import TuneHeatmapDisplay

    def row(lr: float, alpha: float, epochs: int, score: float, loss: float) -> dict[str, Any]:
        return {
            "batch_size": 8,
            "learning_rate": lr,
            "alpha": alpha,
            "epochs": epochs,
            "val_score": score,
            "val_loss": loss,
            "diverged": False,
        }

    table = [
        row(0.1, 0.0, 5, 0.9, 0.30),
        row(1.0, 0.0, 5, 0.9, 0.20),
        row(1.0, 0.1, 5, 0.9, 0.20),
        row(0.1, 0.0, 9, 0.9, 0.25),
        row(1.0, 0.1, 9, 0.5, 0.10),
    ]
    disp = TuneHeatmapDisplay(table).plot()
    # Highest score, then lowest loss, then the first in the table: lr 1.0, alpha 0, 5 epochs.
    assert disp.best_params == {"batch_size": 8, "learning_rate": 1.0, "alpha": 0.0, "epochs": 5}
    ((ax, rect),) = _outlines(disp)
    assert ax is disp.axes_[0, 0] and (rect.get_x(), rect.get_y()) == (0.5, -0.5)
    chosen = dict(table[3])
    disp = TuneHeatmapDisplay(table, best_params=chosen).plot()
    ((ax, rect),) = _outlines(disp)
    assert ax is disp.axes_[1, 0] and (rect.get_x(), rect.get_y()) == (-0.5, -0.5)
    with pytest.raises(ValueError, match="not a configuration of the table"):
        TuneHeatmapDisplay(table, best_params={**chosen, "learning_rate": 3.0})


def test_heat_map_panels_into_the_callers_axes(digits_tune: anyglm.TuneResult) -> None:
    from anyglm.plotting import TuneHeatmapDisplay
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 8))
    grid = fig.subplots(2, 2)
    disp = TuneHeatmapDisplay.from_result(digits_tune, ax=grid)
    assert disp.figure_ is fig and disp.axes_.shape == (2, 2)
    assert all(a is b for a, b in zip(disp.axes_.ravel(), grid.ravel(), strict=True))
    assert len(_outlines(disp)) == 1
    fig2 = Figure()
    one = fig2.add_subplot(1, 1, 1)
    disp = TuneHeatmapDisplay.from_result(digits_tune, ax=one, epochs=4)
    assert disp.axes_.shape == (1, 2) and not one.axison and disp.figure_ is fig2
    with pytest.raises(ValueError, match=r"4 of them \(2 x 2 panels\)"):
        TuneHeatmapDisplay.from_result(digits_tune, ax=grid[0])


def test_displays_draw_without_pyplot() -> None:
    proc = _run(
        """
        import sys, anyglm
        from anyglm.plotting import LearningCurveDisplay, TuneHeatmapDisplay
        rows = [dict(batch_size=8, learning_rate=0.1, alpha=0.0, epochs=e, val_score=0.5)
                for e in (1, 2)]
        d = TuneHeatmapDisplay.from_result(rows)
        c = LearningCurveDisplay.from_history({"train_loss": [1.0, 0.5]})
        print(type(d.figure_).__name__, d.axes_.shape, len(c._repr_png_()) > 1000)
        print("matplotlib.pyplot" in sys.modules)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["Figure (2, 1) True", "False"]


def test_heat_map_rows_can_be_the_batch_sizes(digits_tune: anyglm.TuneResult) -> None:
    from anyglm.plotting import TuneHeatmapDisplay

    wide = TuneHeatmapDisplay.from_result(digits_tune)
    tall = TuneHeatmapDisplay.from_result(digits_tune, rows="batch_size")
    titles = np.array([[a.get_title() for a in row] for row in wide.axes_])
    assert tall.axes_.shape == (2, 2)
    assert [[a.get_title() for a in row] for row in tall.axes_] == titles.T.tolist()
    assert len(_outlines(tall)) == 1 and tall.best_ax_ is not None
    assert tall.best_ax_.get_title() == wide.best_ax_.get_title()  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="rows must be 'epochs' or 'batch_size'"):
        TuneHeatmapDisplay(digits_tune.table, rows="alpha")
