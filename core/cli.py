"""The ``anyglm`` command line: train, evaluate, predict, tune; list plugins and data.

Exit codes: 0 on success, 2 for bad usage or bad input (a one-line message,
no traceback unless ``--debug``), 130 when interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import datasets, registry
from ._version import __version__
from .errors import DivergenceError, PluginLoadError
from .estimators import Estimator

DEFAULT_MODEL = {
    "digits": "softmax",
    "breast_cancer": "logistic",
    "diabetes": "linear",
    "xor": "linear",
    "all-positive": "logistic",
}
INTERRUPT_CHECKPOINT = "anyglm-train.ckpt"


class UsageError(ValueError):
    """Bad command-line input; reported in one line with exit code 2."""


# -- argument parsing ---------------------------------------------------------------------


def _add_data(p: argparse.ArgumentParser, *, labels: bool = True, split: bool = True) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(datasets.DATASETS), help="a shipped data set")
    src.add_argument(
        "--data",
        metavar="PATH",
        help=".npz (arrays X and y), .npy (X only) or .csv (header optional)",
    )
    if labels:
        p.add_argument(
            "--label-column",
            default="-1",
            help="CSV: the target column, by index (default -1, the last) or header name",
        )
    if split:
        p.add_argument(
            "--test-size", type=float, default=0.2, help="held-out fraction (default 0.2)"
        )
        p.add_argument("--seed", type=int, default=0, help="seed of the split and the SGD order")
        p.add_argument(
            "--standardize",
            action=argparse.BooleanOptionalAction,
            default=True,
            help="scale features with the training part's mean and standard deviation "
            "(default; saved models take raw features either way)",
        )


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", help="model name (default: the data set's natural model)")
    p.add_argument("--backend", default=None, help="backend name or 'auto' (default)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=None)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument("--metrics", metavar="PATH", help="write the result (and history) as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="anyglm",
        description="Linear, logistic and softmax regression by minibatch SGD, on any backend.",
    )
    p.add_argument("--version", action="version", version=f"anyglm {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train, report held-out metrics, optionally save")
    _add_data(t)
    _add_common(t)
    t.add_argument("--batch-size", type=int, default=32)
    t.add_argument("--learning-rate", type=float, default=0.01)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--alpha", type=float, default=1e-4)
    t.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="part of the training rows held out to score every epoch (default 0.1; 0: none)",
    )
    t.add_argument("--out", metavar="PATH", help="save the fitted model here")
    t.add_argument("--plot", metavar="PNG", help="learning curves (needs anyglm[plot])")
    t.add_argument("--checkpoint", metavar="PATH", help="save the training state every epoch")
    t.add_argument("--resume", metavar="PATH", help="continue from a checkpoint")

    tu = sub.add_parser("tune", help="search the hyperparameters on a validation split")
    _add_data(tu)
    _add_common(tu)
    tu.add_argument("--batch-size", type=int, nargs="+", default=[32])
    tu.add_argument("--learning-rate", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    tu.add_argument("--epochs", type=int, nargs="+", default=[10, 50])
    tu.add_argument("--alpha", type=float, nargs="+", default=[0.0, 1e-4, 1e-2])
    tu.add_argument("--validation-fraction", type=float, default=0.2)
    tu.add_argument("--top", type=int, default=10, help="rows of the table to print")
    tu.add_argument("--out", metavar="PATH", help="save the best model (refit) here")
    tu.add_argument("--plot", metavar="PNG", help="heat map of validation scores")

    e = sub.add_parser("eval", help="score a saved model on a data set's held-out part")
    e.add_argument("model_file", metavar="MODEL", help="a file written by train --out")
    _add_data(e)
    e.add_argument("--all", action="store_true", help="score on every row, not the held-out part")
    e.add_argument("--json", action="store_true")
    e.add_argument("--backend", default=None, help="backend to load the model on")

    pr = sub.add_parser("predict", help="predict with a saved model")
    pr.add_argument("model_file", metavar="MODEL", help="a file written by train --out")
    _add_data(pr, split=False)
    pr.add_argument("--output", metavar="PATH", help="write predictions here (default stdout)")
    pr.add_argument("--backend", default=None, help="backend to load the model on")

    for name, text in (
        ("backends", "list backends, their availability and devices"),
        ("models", "list models"),
        ("datasets", "list shipped data sets"),
        ("doctor", "backends, models, versions and plugins that failed to load"),
    ):
        sp = sub.add_parser(name, help=text)
        sp.add_argument("--json", action="store_true", help="print as JSON")
    return p


# -- data ------------------------------------------------------------------------------------


def _read_csv(path: str, label_column: str | None) -> tuple[np.ndarray, np.ndarray | None]:
    with open(path, encoding="utf-8") as fh:
        rows = [[v.strip() for v in line.rstrip("\r\n").split(",")] for line in fh if line.strip()]
    if not rows:
        raise UsageError(f"--data: {path!r} is empty")
    header: list[str] | None = None
    # A header has a non-number where the next row has a number; a text label
    # column is non-numeric in every row and does not make a header on its own.
    first = [_is_number(v) for v in rows[0]]
    if not all(first) and (
        len(rows) == 1 or any(not f and _is_number(v) for f, v in zip(first, rows[1], strict=False))
    ):
        header, rows = rows[0], rows[1:]
    width = len(rows[0]) if rows else 0
    if not rows or any(len(r) != width for r in rows):
        raise UsageError(f"--data: {path!r} has no data rows or rows of different lengths")
    table = np.asarray(rows, dtype=object)
    if label_column is None:
        y = None
        features = table
    else:
        col = _column_index(label_column, header, width, path)
        y = table[:, col]
        features = np.delete(table, col, axis=1)
    try:
        X = features.astype(np.float64)
    except ValueError:
        raise UsageError(f"--data: {path!r} has non-numeric feature values") from None
    if y is not None:
        try:
            y = y.astype(np.float64)
        except ValueError:
            y = y.astype(str)  # class names
        else:
            if np.all(y == np.round(y)):
                y = y.astype(np.int64)  # "1.0" in a CSV is the class 1
    return X, y


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_index(spec: str, header: list[str] | None, width: int, path: str) -> int:
    try:
        col = int(spec)
    except ValueError:
        if header is None or spec not in header:
            known = ", ".join(header) if header else "none (the file has no header)"
            raise UsageError(
                f"--label-column {spec!r} not found in {path!r}; columns: {known}"
            ) from None
        return header.index(spec)
    if not -width <= col < width:
        raise UsageError(f"--label-column {col} is out of range: {path!r} has {width} columns")
    return col % width


def _load_data(args: argparse.Namespace, *, need_y: bool = True) -> tuple[np.ndarray, Any]:
    if args.dataset:
        return datasets.load_dataset(args.dataset)
    path = args.data
    if not os.path.exists(path):
        raise UsageError(f"--data: no such file {path!r}")
    if path.endswith(".csv"):
        return _read_csv(path, getattr(args, "label_column", "-1") if need_y else None)
    try:
        loaded = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"--data: cannot read {path!r} as .npz, .npy or .csv ({exc})") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        if need_y:
            raise UsageError(f"--data: {path!r} holds one array; save X and y with np.savez")
        return np.asarray(loaded), None
    with loaded as f:
        wanted = ("X", "y") if need_y else ("X",)
        missing = [k for k in wanted if k not in f.files]
        if missing:
            raise UsageError(
                f"--data: {path!r} has no array {', '.join(map(repr, missing))}; "
                f"it holds {', '.join(f.files) or 'nothing'} and needs X and y"
            )
        return np.asarray(f["X"]), (np.asarray(f["y"]) if "y" in f.files else None)


def _split(args: argparse.Namespace, X: np.ndarray, y: Any) -> tuple[np.ndarray, ...]:
    X_tr, X_te, y_tr, y_te = datasets.train_test_split(
        X, y, test_size=args.test_size, random_state=args.seed
    )
    return X_tr, X_te, y_tr, y_te


def _scaler(args: argparse.Namespace, X_tr: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    if not args.standardize:
        return None
    mean = X_tr.mean(axis=0)
    std = X_tr.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _fold_scaling(est: Estimator, scaler: tuple[np.ndarray, np.ndarray]) -> None:
    """Rewrite the parameters so the model takes raw features.

    On standardised inputs ``z = (x - m) / s``: ``z W + b = x (W / s) + (b - (m / s) W)``.
    """
    be = est._backend_obj
    W = be.to_numpy(est._W).astype(np.float64)
    b = be.to_numpy(est._b).astype(np.float64)
    mean, scale = scaler
    W_raw = W / scale[:, None]
    b_raw = b - (mean / scale) @ W
    dev = be.device_of(est._W)
    history = {k: np.asarray(v).reshape(-1, 1) for k, v in est.history_.items()}
    est._set_params(
        be.from_numpy(W_raw, dtype=est._dtype, device=dev),
        be.from_numpy(b_raw, dtype=est._dtype, device=dev),
        history,
        est.n_epochs_,
    )


# -- output ----------------------------------------------------------------------------------


def _emit(
    args: argparse.Namespace, result: dict[str, Any], extra: dict[str, Any] | None = None
) -> None:
    if getattr(args, "metrics", None):
        from .modelfile import atomic_write_bytes

        payload = {**result, **(extra or {})}
        atomic_write_bytes(args.metrics, (_json(payload) + "\n").encode())
    if args.json:
        print(_json(result))
        return
    width = max(len(k) for k in result)
    for key, value in result.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {text}")


def _json(value: Any) -> str:
    """Strict JSON: NaN and infinities (a diverged configuration) become null."""

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not np.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(clean(value), indent=2, allow_nan=False)


def _table(rows: list[dict[str, Any]], columns: Sequence[str]) -> None:
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.4g}"
        if isinstance(value, (list, tuple)):
            return ", ".join(str(v) for v in value)
        return str(value)

    cells = [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        print("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _progress(args: argparse.Namespace, total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    # disable=None: silent when stderr is not a terminal (logs, CI).
    return tqdm(total=total, desc=desc, unit="epoch", disable=True if args.quiet else None)


# -- commands ---------------------------------------------------------------------------------


def _model_name(args: argparse.Namespace) -> str:
    if args.model:
        return str(args.model)
    if args.dataset:
        return DEFAULT_MODEL[args.dataset]
    raise UsageError("--model is required with --data")


def _train(args: argparse.Namespace) -> int:
    model = _model_name(args)
    registry.get_model(model)  # an unknown name is a usage error before any work
    X, y = _load_data(args)
    X_tr, X_te, y_tr, y_te = _split(args, X, y)
    scaler = _scaler(args, X_tr)
    X_fit = X_tr if scaler is None else (X_tr - scaler[0]) / scaler[1]
    est = Estimator(
        model,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        alpha=args.alpha,
        random_state=args.seed,
        validation_fraction=args.validation_fraction,
        backend=args.backend,
        dtype=args.dtype,
    )
    bar = _progress(args, args.epochs, f"train {model}")

    def on_epoch(logs: dict[str, Any]) -> None:
        bar.n = logs["epoch"]
        bar.set_postfix(loss=f"{logs['train_loss']:.4g}", refresh=False)
        bar.refresh()

    checkpoint = args.checkpoint or INTERRUPT_CHECKPOINT
    try:
        est.fit(
            X_fit,
            y_tr,
            checkpoint=checkpoint,
            checkpoint_on="epoch" if args.checkpoint else "interrupt",
            resume=args.resume,
            callback=on_epoch,
        )
    except KeyboardInterrupt:
        bar.close()
        done = getattr(est, "n_epochs_", 0)
        where = f"; the state after epoch {done} is in {checkpoint!r}" if done else ""
        print(
            f"anyglm: interrupted{where}; continue with --resume {checkpoint}"
            if done
            else "anyglm: interrupted before the first epoch ended; nothing saved",
            file=sys.stderr,
        )
        return 130
    except DivergenceError as err:
        raise DivergenceError(
            f"{err}" + ("" if args.standardize else " On the command line: drop --no-standardize."),
            epoch=err.epoch,
        ) from None
    finally:
        bar.close()
    if scaler is not None:
        _fold_scaling(est, scaler)
    task = registry.get_model(model).task
    metric = "accuracy" if task == "classification" else "r2"
    result: dict[str, Any] = {
        "model": model,
        "backend": est.backend_,
        "n_train": int(X_tr.shape[0]),
        "n_test": int(X_te.shape[0]),
        "epochs": est.n_epochs_,
        "final_train_loss": est.history_["train_loss"][-1],
        f"train_{metric}": est.score(X_tr, y_tr),
        f"test_{metric}": est.score(X_te, y_te),
    }
    if "val_score" in est.history_:
        result[f"final_val_{metric}"] = est.history_["val_score"][-1]
    if args.out:
        est.save(args.out)
        result["saved_to"] = args.out
    if args.plot:
        from .plotting import plot_history

        plot_history(
            est.history_,
            args.plot,
            title=f"{model} on {args.dataset or args.data}",
            metric_name=metric,
        )
        result["plot"] = args.plot
    _emit(args, result, {"history": est.history_})
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .tuning import tune

    model = _model_name(args)
    registry.get_model(model)
    X, y = _load_data(args)
    X_tr, X_te, y_tr, y_te = _split(args, X, y)
    scaler = _scaler(args, X_tr)
    if scaler is not None:
        X_tr, X_te = (X_tr - scaler[0]) / scaler[1], (X_te - scaler[0]) / scaler[1]
    grid = {
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "alpha": args.alpha,
    }
    passes = len(set(args.batch_size))
    bar = _progress(args, passes, f"tune {model}")
    params = {k: v for k, v in (("backend", args.backend), ("dtype", args.dtype)) if v}
    try:
        res = tune(
            model,
            X_tr,
            y_tr,
            grid=grid,
            validation_fraction=args.validation_fraction,
            test_data=(X_te, y_te),
            random_state=args.seed,
            estimator_params=params,
            callback=lambda info: bar.update(1),
        )
    finally:
        bar.close()
    best = res.best_estimator
    assert best is not None
    if scaler is not None:
        _fold_scaling(best, scaler)
    # The order tune() ranks by: score, then the lower validation loss.
    rows = sorted(
        res.table,
        key=lambda r: (
            -np.nan_to_num(r["val_score"], nan=-np.inf),
            np.nan_to_num(r["val_loss"], nan=np.inf),
        ),
    )
    if not args.json:
        _table(
            rows[: args.top],
            ["batch_size", "learning_rate", "epochs", "alpha", "val_score", "val_loss", "diverged"],
        )
        print()
    metric = "accuracy" if registry.get_model(model).task == "classification" else "r2"
    result: dict[str, Any] = {
        "model": model,
        "configurations": len(res.table),
        **{f"best_{k}": v for k, v in res.best_params.items()},
        f"best_val_{metric}": res.best_score,
        f"test_{metric}": res.test_score,
    }
    if args.out:
        best.save(args.out)
        result["saved_to"] = args.out
    if args.plot:
        from .plotting import plot_tune_heatmap

        plot_tune_heatmap(res, args.plot, metric_name=metric)
        result["plot"] = args.plot
    _emit(args, result, {"table": res.table})
    return 0


def _eval(args: argparse.Namespace) -> int:
    from .modelfile import load

    est = load(args.model_file, backend=args.backend)
    X, y = _load_data(args)
    if not args.all:
        _, X, _, y = _split(args, X, y)
    metric = "accuracy" if est._model_obj.task == "classification" else "r2"
    result = {"model_file": args.model_file, "n": int(X.shape[0]), metric: est.score(X, y)}
    _emit(args, result)
    return 0


def _predict(args: argparse.Namespace) -> int:
    from .modelfile import load

    est = load(args.model_file, backend=args.backend)
    if args.data is not None and args.data.endswith(".csv"):
        # A CSV may carry the label column or not: drop it only when the widths say so.
        with open(args.data, encoding="utf-8") as fh:
            width = len(fh.readline().split(","))
        X, _ = _read_csv(args.data, None if width == est.n_features_in_ else args.label_column)
    else:
        X, _ = _load_data(args, need_y=False)
    pred = est.predict(X)
    values = est._backend_obj.to_numpy(pred) if not isinstance(pred, np.ndarray) else pred
    text = "\n".join(str(v) for v in values.tolist()) + "\n"
    if args.output:
        from .modelfile import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def _listing(args: argparse.Namespace) -> int:
    if args.command == "doctor":
        _doctor(args)
        return 0
    if args.command == "backends":
        rows = registry.list_backends()
        columns = ["name", "available", "dtypes", "devices", "reason", "origin"]
    elif args.command == "models":
        rows = registry.list_models()
        columns = ["name", "task", "description", "origin"]
    else:
        rows = [{"name": k, "description": v} for k, v in datasets.DATASETS.items()]
        columns = ["name", "description"]
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        _table(rows, columns)
    return 0


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
    print("\nfast paths (epoch kernels):")
    for name, models in report["fast_paths"].items():
        print(f"  {name}: {', '.join(models) if models else 'none (portable loop)'}")
    nb = report["numba"]
    if nb["version"] is None:
        print("  numba: not installed (pip install 'anyglm[numba]': a faster NumPy epoch)")
    elif isinstance(nb["min_elements"], str):  # "error: ..." from a bad setting
        print(f"  numba {nb['version']}: {nb['min_elements'].removeprefix('error: ')}")
    elif not nb["enabled"]:
        print(f"  numba {nb['version']}: compiled loop turned off (ANYGLM_DISABLE_NUMBA or "
              "ANYGLM_DISABLE_FAST_PATHS)")  # fmt: skip
    else:
        print(f"  numba {nb['version']}: compiled NumPy loop for {', '.join(nb['models'])} "
              f"when X holds >= {nb['min_elements']} values")  # fmt: skip


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
