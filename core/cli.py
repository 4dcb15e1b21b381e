"""The ``anyglm`` command line: train a model on a shipped data set or a file, list plugins.

Exit codes: 0 on success, 2 for bad usage or bad input (a one-line message,
no traceback unless ``--debug``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import datasets, registry
from ._version import __version__
from .errors import PluginLoadError
from .estimators import Estimator

DEFAULT_MODEL = {
    "digits": "softmax",
    "breast_cancer": "logistic",
    "diabetes": "linear",
    "xor": "linear",
    "all-positive": "logistic",
}


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="anyglm", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"anyglm {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train on a data set and report held-out metrics")
    src = t.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.DATASETS), help="a shipped data set")
    src.add_argument("--data", help="a .npz file with arrays X and y")
    t.add_argument("--model", help="model name (default: the data set's natural model)")
    t.add_argument("--backend", default=None, help="backend name or 'auto'")
    t.add_argument("--dtype", choices=["float32", "float64"], default=None)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--learning-rate", type=float, default=0.01)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--alpha", type=float, default=1e-4)
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--test-size", type=float, default=0.2)
    t.add_argument(
        "--no-standardize",
        dest="standardize",
        action="store_false",
        help="train on raw features (they are standardised on the training part by default)",
    )
    t.add_argument("--out", help="save the fitted model to this file")
    t.add_argument("--json", action="store_true", help="print the metrics as JSON")

    sub.add_parser("backends", help="list backends, their availability and devices")
    sub.add_parser("models", help="list models")
    sub.add_parser("datasets", help="list shipped data sets")
    d = sub.add_parser("doctor", help="backends, models, versions and plugins that failed to load")
    d.add_argument("--json", action="store_true", help="print the report as JSON")
    return p


def _load_data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, str]:
    if args.dataset:
        X, y = datasets.load_dataset(args.dataset)
        return X, y, args.model or DEFAULT_MODEL[args.dataset]
    if not args.model:
        raise ValueError("--model is required with --data")
    try:
        loaded = np.load(args.data, allow_pickle=False)
    except FileNotFoundError:
        raise ValueError(f"--data: no such file {args.data!r}") from None
    except (OSError, ValueError) as exc:
        raise ValueError(f"--data: cannot read {args.data!r} as .npz ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        raise ValueError(f"--data: {args.data!r} is a single array; save X and y with np.savez")
    with loaded as f:
        missing = [k for k in ("X", "y") if k not in f.files]
        if missing:
            raise ValueError(
                f"--data: {args.data!r} has no array {', '.join(map(repr, missing))}; "
                f"it holds {', '.join(f.files) or 'nothing'} and needs X and y"
            )
        return np.asarray(f["X"]), np.asarray(f["y"]), args.model


def _train(args: argparse.Namespace) -> int:
    X, y, model = _load_data(args)
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed
    )
    if args.standardize:
        X_tr, X_te = datasets.standardize(X_tr, X_te)
    est = Estimator(
        model,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        alpha=args.alpha,
        random_state=args.seed,
        backend=args.backend,
        dtype=args.dtype,
    )
    est.fit(X_tr, y_tr)
    task = registry.get_model(model).task
    metric = "accuracy" if task == "classification" else "r2"
    result = {
        "model": model,
        "backend": est.backend_,
        "n_train": int(X_tr.shape[0]),
        "n_test": int(X_te.shape[0]),
        "epochs": est.n_epochs_,
        "final_train_loss": est.history_["train_loss"][-1],
        f"train_{metric}": est.score(X_tr, y_tr),
        f"test_{metric}": est.score(X_te, y_te),
    }
    if args.out:
        est.save(args.out)
        result["saved_to"] = args.out
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        width = max(len(k) for k in result)
        for key, value in result.items():
            text = f"{value:.4f}" if isinstance(value, float) else str(value)
            print(f"{key:<{width}}  {text}")
    return 0


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)))
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))


def _doctor(args: argparse.Namespace) -> None:
    from .doctor import doctor

    report = doctor()
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(f"anyglm {report['anyglm']} on Python {report['python']} ({report['platform']})")
    print("libraries: " + ", ".join(f"{k} {v}" for k, v in report["libraries"].items()))
    print("\nbackends:")
    _table(
        report["backends"],
        ["name", "available", "version", "dtypes", "devices", "origin", "reason"],
    )
    print("\nmodels:")
    _table(report["models"], ["name", "task", "origin"])
    print("\nplugins that failed to load:" + ("" if report["failed_plugins"] else " none"))
    for f in report["failed_plugins"]:
        print(f"  {f['name']} ({f['origin']}): {f['error']}")
    if report["disabled_plugins"]:
        print("disabled by ANYGLM_DISABLE_PLUGINS: " + ", ".join(report["disabled_plugins"]))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            return _train(args)
        if args.command == "backends":
            _table(
                registry.list_backends(),
                ["name", "available", "dtypes", "devices", "reason", "origin"],
            )
        elif args.command == "models":
            _table(registry.list_models(), ["name", "task", "description", "origin"])
        elif args.command == "doctor":
            _doctor(args)
        elif args.command == "datasets":
            _table(
                [{"name": k, "description": v} for k, v in datasets.DATASETS.items()],
                ["name", "description"],
            )
        return 0
    except (ValueError, TypeError, ArithmeticError, OSError, PluginLoadError) as exc:
        if args.debug:
            raise
        print(f"anyglm: error: {exc}", file=sys.stderr)
        return 2
