"""The ``anyglm`` command line: train, evaluate, predict, tune; list plugins and data.

Exit codes: 0 on success, 2 for bad usage or bad input (a one-line message,
no traceback unless ``--debug``), 130 when interrupted (Ctrl-C).

This module parses the arguments; the jobs are in :mod:`anyglm.cli_commands`,
reading the data in :mod:`anyglm.cli_data`, splitting and scaling it in
:mod:`anyglm.cli_prepare`, and what is printed in :mod:`anyglm.cli_output`.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from . import datasets, tabular
from ._version import __version__
from .cli_commands import DEFAULT_MODEL, INTERRUPT_CHECKPOINT, _eval, _predict, _train, _tune
from .cli_data import UsageError
from .cli_output import CELL_WIDTH, _listing, _model_names
from .errors import PluginLoadError
from .estimators import Estimator
from .lazy import connect

__all__ = ["CELL_WIDTH", "DEFAULT_MODEL", "INTERRUPT_CHECKPOINT", "UsageError", "main"]


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows every default (lists as their values) and fills in the registered models."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "{models}" in text:  # built when help is shown: listing models loads plugins
            text = text.replace("{models}", _model_names().replace("%", "%%"))
        default = action.default
        if (
            "%(default)" in text
            or "(default:" in text
            or not action.option_strings
            or default is None
            or default is False
            or default is argparse.SUPPRESS
        ):
            return text
        if isinstance(default, (list, tuple)):
            shown = " ".join(str(v) for v in default).replace("%", "%%")
            return f"{text} (default: {shown})"
        return f"{text} (default: %(default)s)"


def _add_data(p: argparse.ArgumentParser, *, saved_model: bool = False, split: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.DATASETS), help="a shipped data set")
    src.add_argument(
        "--data",
        metavar="PATH",
        help=".csv (header optional; delimiter , ; TAB or | found by itself), .npz (arrays "
        "X and y), .npy (X only, memory-mapped; labels from --labels) or a zarr store (a "
        "folder or .zarr: an array X, or a group with X and y; needs anyglm[zarr])",
    )
    p.add_argument(
        "--labels",
        metavar="PATH",
        help="the labels for an .npy or zarr --data that holds X only: .npy, zarr, or "
        ".csv/.txt with one label per line",
    )
    p.add_argument(
        "--label-column",
        default=None,
        metavar="NAME_OR_INDEX",
        help="CSV: the label column, by header name or 0-based index (negative counts from "
        "the end) "
        + (
            "(default: the column the model was trained with, else the last)"
            if saved_model
            else "(default: the last column; the model file records it for eval and predict)"
        ),
    )
    p.add_argument(
        "--delimiter",
        choices=[",", ";", "tab", "|"],
        default=None,
        metavar="CHAR",
        help="CSV: the field delimiter, one of , ; tab | (default: found from the first "
        "lines of the file)",
    )
    if split:
        p.add_argument(
            "--test-size",
            type=float,
            default=0.2,
            metavar="FRACTION",
            help="fraction of the rows held out as the test part; 0: none",
        )
        p.add_argument("--seed", type=int, default=0, help="seed of the split and the SGD order")


def _add_stopping(p: argparse.ArgumentParser) -> None:
    """Early stopping and averaging: the estimator's defaults, for ``train`` and ``tune``."""
    est = _ESTIMATOR_DEFAULTS
    p.add_argument(
        "--n-iter-no-change",
        type=_patience,
        default=est["n_iter_no_change"],
        metavar="N",
        help="stop after N epochs without improvement; 0: train all --epochs",
    )
    p.add_argument(
        "--tol",
        type=float,
        default=est["tol"],
        metavar="TOL",
        help="least improvement that counts, relative to the first epoch's loss",
    )
    p.add_argument(
        "--average",
        choices=["auto", "yes", "no"],
        default=est["average"],
        help="predict with the average of the SGD iterates (auto: unless the penalty has L1)",
    )


def _add_training(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--standardize",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="scale features with the training part's mean and standard deviation (saved "
        "models take raw features either way)",
    )
    p.add_argument(
        "--impute",
        choices=tabular.IMPUTE_STRATEGIES,
        default=None,
        help="fill missing feature cells (empty, NA, NaN, N/A, null) with the training "
        "part's column mean or median, or with zero; the values are saved in the model "
        "file for eval and predict (default: a missing cell is an error naming its line "
        "and column; a missing label always is)",
    )
    p.add_argument(
        "--model",
        help="model name, one of: {models} (default: the data set's natural model; "
        "required with --data)",
    )
    p.add_argument(
        "--backend",
        default=None,
        help="backend name or 'auto' (default: $ANYGLM_BACKEND, else auto)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        default=None,
        help="with --backend dask: the Dask scheduler to train on (tcp://host:8786); "
        "default: Dask's local scheduler",
    )
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="floating type of the parameters (default: follow the data)",
    )
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--metrics", metavar="PATH", help="also write the result as a JSON file")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


_ESTIMATOR_DEFAULTS: dict[str, Any] = Estimator().get_params()


def _number_or_auto(text: str) -> float | str:
    if text == "auto":
        return text
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or 'auto', got {text!r}") from None


def _patience(text: str) -> int | None:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value or None


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anyglm",
        description="Linear, logistic and softmax regression by minibatch SGD, on any backend.",
        formatter_class=_HelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"anyglm {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    def command(name: str, text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=text, description=text, formatter_class=_HelpFormatter)

    t = command("train", "train, report held-out metrics, optionally save")
    _add_data(t)
    _add_training(t)
    # The estimator's own defaults, so the command line and Python agree.
    est = _ESTIMATOR_DEFAULTS
    t.add_argument(
        "--batch-size", type=int, default=est["batch_size"], metavar="N", help="rows per minibatch"
    )
    t.add_argument(
        "--learning-rate",
        type=_number_or_auto,
        default=est["learning_rate"],
        metavar="RATE",
        help="SGD step size, or 'auto' (derived from the data)",
    )
    t.add_argument(
        "--epochs",
        type=int,
        default=est["epochs"],
        metavar="N",
        help="most passes over the training rows (early stopping usually ends sooner)",
    )
    t.add_argument(
        "--alpha",
        type=_number_or_auto,
        default=est["alpha"],
        metavar="A",
        help="L2 penalty on the weights, or 'auto' (1 / training rows, as LogisticRegression(C=1))",
    )
    _add_stopping(t)
    t.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        metavar="FRACTION",
        help="part of the training rows held out to score every epoch; 0: none",
    )
    t.add_argument("--out", metavar="PATH", help="save the fitted model here")
    t.add_argument("--plot", metavar="PNG", help="learning curves (needs anyglm[plot])")
    t.add_argument("--checkpoint", metavar="PATH", help="save the training state every epoch")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")

    tu = command("tune", "search the hyperparameters on a validation split")
    _add_data(tu)
    _add_training(tu)
    _add_stopping(tu)
    tu.add_argument(
        "--batch-size",
        type=int,
        nargs="+",
        default=[est["batch_size"]],
        metavar="N",
        help="batch sizes; one pass over the data each",
    )
    tu.add_argument(
        "--learning-rate",
        type=_number_or_auto,
        nargs="+",
        default=["auto", 0.01, 0.1],
        metavar="RATE",
        help="SGD step sizes ('auto': derived from the data)",
    )
    tu.add_argument(
        "--epochs",
        type=int,
        nargs="+",
        default=[10, 50],
        metavar="N",
        help="epoch counts; snapshots of one run",
    )
    tu.add_argument(
        "--alpha",
        type=_number_or_auto,
        nargs="+",
        default=["auto", 1e-4, 1e-2],
        metavar="A",
        help="L2 penalties on the weights ('auto': 1 / training rows)",
    )
    tu.add_argument(
        "--validation-fraction",
        type=float,
        default=0.2,
        metavar="FRACTION",
        help="part of the training rows that scores the configurations",
    )
    tu.add_argument("--top", type=int, default=10, metavar="N", help="rows of the table to print")
    tu.add_argument("--out", metavar="PATH", help="save the best model (refit) here")
    tu.add_argument("--plot", metavar="PNG", help="heat maps of the validation scores")

    e = command("eval", "score a saved model on a data set's held-out part")
    e.add_argument("model_file", metavar="MODEL", help="a file written by train --out")
    _add_data(e, saved_model=True)
    e.add_argument("--all", action="store_true", help="score on every row, not the held-out part")
    e.add_argument("--json", action="store_true", help="print the result as JSON")
    e.add_argument("--backend", default=None, help="backend to load the model on")

    pr = command("predict", "predict with a saved model")
    pr.add_argument("model_file", metavar="MODEL", help="a file written by train --out")
    _add_data(pr, saved_model=True, split=False)
    pr.add_argument("--output", metavar="PATH", help="write predictions here (default: stdout)")
    pr.add_argument("--backend", default=None, help="backend to load the model on")

    for name, text in (
        ("backends", "list backends, their availability and devices"),
        ("models", "list models"),
        ("datasets", "list shipped data sets"),
        ("doctor", "backends, models, versions and plugins that failed to load"),
    ):
        command(name, text).add_argument(
            "--json", action="store_true", help="print as JSON (every value whole)"
        )
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code.

    Examples
    --------
    >>> from anyglm.cli import main
    >>> main(["models", "--json"]) == 0  # doctest: +ELLIPSIS
    [...
    True
    """
    parser = _parser()
    args = parser.parse_args(argv)
    commands = {"train": _train, "tune": _tune, "eval": _eval, "predict": _predict}
    try:
        backend = getattr(args, "backend", None) or os.environ.get("ANYGLM_BACKEND") or None
        with connect(getattr(args, "scheduler", None), backend):  # --scheduler: a Dask cluster
            return commands.get(args.command, _listing)(args)
    except KeyboardInterrupt:
        print("anyglm: interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, ArithmeticError, OSError, ImportError, PluginLoadError) as exc:
        if args.debug:
            raise
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        print(f"anyglm: error: {message}", file=sys.stderr)
        return 2
