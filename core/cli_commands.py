"""The command line's jobs: train, tune, eval and predict.

Part of :mod:`anyglm.cli`, which parses the arguments and calls these.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import numpy as np

from . import registry
from .cli_data import UsageError, _load_data
from .cli_output import _emit, _model_names, _progress, _table
from .cli_prepare import (
    _check_labels_fit,
    _fill_from_model,
    _fold_scaling,
    _model_metadata,
    _prepare,
    _rows_of,
    _split_rows,
    _task,
    _with_label_note,
)
from .errors import DivergenceError
from .estimators import Estimator
from .loading import load

DEFAULT_MODEL = {
    "digits": "softmax",
    "breast_cancer": "logistic",
    "diabetes": "linear",
    "xor": "linear",
    "all-positive": "logistic",
}
INTERRUPT_CHECKPOINT = "anyglm-train.ckpt"


def _save_model(est: Any, path: str, meta: dict[str, Any]) -> None:
    """``est.save`` with what eval and predict need (:func:`anyglm.load` gives it back)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"cannot write {path!r}: folder {folder!r} does not exist")
    est.save(path, metadata=meta)


def _load_model(path: str, backend: str | None) -> tuple[Any, dict[str, Any]]:
    """The model of a file and its metadata (empty for a model saved from Python)."""
    est = load(path, backend=backend)
    meta = dict(est.file_metadata_)
    meta.setdefault("n_features", est.n_features_in_)
    return est, meta


# -- commands ---------------------------------------------------------------------------------


def _model_name(args: argparse.Namespace) -> str:
    if args.model:
        return str(args.model)
    if args.dataset:
        return DEFAULT_MODEL[args.dataset]
    raise UsageError(f"--model is required with --data; one of: {_model_names()}")


def _train(args: argparse.Namespace) -> int:
    model = _model_name(args)
    task, metric = _task(model)  # an unknown name is a usage error before any work
    data = _load_data(args)
    _check_labels_fit(data, task)
    prep = _prepare(args, data)
    meta = _model_metadata(data, prep, args) if args.out else {}
    est = Estimator(
        model,
        batch_size=args.batch_size,
        learning_rate=args.learning_rate,
        epochs=args.epochs,
        alpha=args.alpha,
        n_iter_no_change=args.n_iter_no_change,
        tol=args.tol,
        average=_average(args.average),
        random_state=args.seed,
        validation_fraction=args.validation_fraction,
        backend=args.backend,
        dtype=args.dtype,
    )
    bar = _progress(args, args.epochs, f"train {model}", "epoch")

    def on_epoch(logs: dict[str, Any]) -> None:
        bar.n = logs["epoch"]
        shown = {"loss": f"{logs['train_loss']:.4g}"}
        if "val_score" in logs:
            shown[f"val_{metric}"] = f"{logs['val_score']:.4g}"
        bar.set_postfix(shown, refresh=False)
        bar.refresh()

    checkpoint = args.checkpoint or INTERRUPT_CHECKPOINT
    try:
        est.fit(
            prep.X_fit,
            prep.y_tr,
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
    except (ValueError, TypeError) as err:
        raise _with_label_note(err, data) from None
    finally:
        bar.close()
    if prep.scaler is not None:
        _fold_scaling(est, prep.scaler)
    result: dict[str, Any] = {
        "model": model,
        "backend": est.backend_,
        "n_train": int(prep.X_tr.shape[0]),
        "n_test": 0 if prep.X_te is None else int(prep.X_te.shape[0]),
        "epochs": est.n_epochs_,
        "final_train_loss": est.history_["train_loss"][-1],
        f"train_{metric}": est.score(prep.X_tr, prep.y_tr),
    }
    if prep.X_te is not None:
        result[f"test_{metric}"] = est.score(prep.X_te, prep.y_te)
    if "val_score" in est.history_:
        result[f"final_val_{metric}"] = est.history_["val_score"][-1]
    if args.out:
        _save_model(est, args.out, meta)
        result["saved_to"] = args.out
    if args.plot:
        from .plotting import plot_history

        plot_history(
            est.history_,
            args.plot,
            title=f"{model} on {data.name}",
            metric_name=metric,
        )
        result["plot"] = args.plot
    _emit(args, result, {"history": est.history_})
    return 0


def _tune(args: argparse.Namespace) -> int:
    from .tuning import tune

    model = _model_name(args)
    task, metric = _task(model)
    data = _load_data(args)
    _check_labels_fit(data, task)
    prep = _prepare(args, data)
    meta = _model_metadata(data, prep, args) if args.out else {}
    X_fit, X_te = prep.X_fit, prep.test_for_fit()
    if data.on_disk:
        # The search splits its rows in memory; the test rows are still read block by block.
        print(
            f"anyglm: note: tune reads the training rows of {data.name!r} into memory",
            file=sys.stderr,
        )
        X_fit = np.asarray(X_fit[0 : int(X_fit.shape[0])])
    grid = {
        "batch_size": args.batch_size,
        "learning_rate": args.learning_rate,
        "epochs": args.epochs,
        "alpha": args.alpha,
    }
    # One pass over the data per batch size; every other setting trains inside it.
    passes = len(set(args.batch_size))
    bar = _progress(args, passes, f"tune {model}", "pass")
    params: dict[str, Any] = {
        k: v for k, v in (("backend", args.backend), ("dtype", args.dtype)) if v
    }
    params.update(n_iter_no_change=args.n_iter_no_change, tol=args.tol,
                  average=_average(args.average))  # fmt: skip
    try:
        res = tune(
            model,
            X_fit,
            prep.y_tr,
            grid=grid,
            validation_fraction=args.validation_fraction,
            test_data=None if X_te is None else (X_te, prep.y_te),
            random_state=args.seed,
            estimator_params=params,
            callback=lambda info: bar.update(1),
        )
    except (ValueError, TypeError) as err:
        raise _with_label_note(err, data) from None
    finally:
        bar.close()
    best = res.best_estimator
    assert best is not None
    if prep.scaler is not None:
        _fold_scaling(best, prep.scaler)
    # One name for the validation metric in the printed table and the summary
    # (the metrics file keeps TuneResult.table as the Python API has it).
    val_key = f"val_{metric}"
    table = [{(val_key if k == "val_score" else k): v for k, v in r.items()} for r in res.table]
    # The order tune() ranks by: score, then the lower validation loss.
    ranked = sorted(
        table,
        key=lambda r: (
            -np.nan_to_num(r[val_key], nan=-np.inf),
            np.nan_to_num(r["val_loss"], nan=np.inf),
        ),
    )
    if not args.json:
        _table(
            ranked[: args.top],
            ["batch_size", "learning_rate", "epochs", "alpha", val_key, "val_loss", "diverged"],
        )
        print()
    result: dict[str, Any] = {
        "model": model,
        "configurations": len(res.table),
        **{f"best_{k}": v for k, v in res.best_params.items()},
        f"best_{val_key}": res.best_score,
    }
    if res.test_score is not None:
        result[f"test_{metric}"] = res.test_score
    if args.out:
        _save_model(best, args.out, meta)
        result["saved_to"] = args.out
    if args.plot:
        from .plotting import plot_tune_heatmap

        plot_tune_heatmap(res, args.plot, metric_name=metric)
        result["plot"] = args.plot
    _emit(args, result, {"table": res.table})
    return 0


def _eval(args: argparse.Namespace) -> int:
    est, meta = _load_model(args.model_file, args.backend)
    data = _load_data(args, model_meta=meta)
    X, y = data.X, data.y
    if not args.all and args.test_size > 0:
        _, test = _split_rows(args, int(X.shape[0]), data.on_disk)
        X, y = _rows_of(data, test), np.asarray(y)[test]
    X = _fill_from_model(data, X, meta)
    _, metric = _task(est.model)
    try:
        score = est.score(X, y)
    except (ValueError, TypeError) as err:
        raise _with_label_note(err, data) from None
    result = {"model_file": args.model_file, "n": int(X.shape[0]), metric: score}
    _emit(args, result)
    return 0


def _predict(args: argparse.Namespace) -> int:
    est, meta = _load_model(args.model_file, args.backend)
    data = _load_data(args, need_y=False, model_meta=meta)
    X = _fill_from_model(data, data.X, meta)
    pred = est.predict(X)
    if not isinstance(pred, np.ndarray):
        pred = registry.get_backend(est.backend_).to_numpy(pred)
    values = pred
    text = "\n".join(str(v) for v in values.tolist()) + "\n"
    if args.output:
        from .modelfile import atomic_write_bytes

        atomic_write_bytes(args.output, text.encode())
    else:
        sys.stdout.write(text)
    return 0


def _average(choice: str) -> bool | str:
    return {"yes": True, "no": False}.get(choice, choice)
