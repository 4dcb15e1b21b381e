"""Checkpoints: a model file plus the training state, so a fit can resume bitwise.

A checkpoint is a model file (:mod:`anyglm.modelfile`) whose metadata has a
``checkpoint`` section (epoch, the random generator's states, the trainer's
counters) and whose ``train/`` arrays hold the raw iterates and the
optimiser's state (momentum, averages, the L1 penalty's bookkeeping).
Early-stopping state is part of it, so resuming from the final checkpoint of
a run that stopped early trains no further epoch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import modelfile
from .backend import Backend
from .errors import ModelFileError
from .modelfile import ModelState, jsonable
from .trainer import EpochEnd
from .trainstate import TrainState

__all__ = ["RESUME_KEYS", "Checkpoint", "check_resumable", "read_checkpoint", "with_checkpoint"]

#: Hyperparameters a resumed fit must share with the run that wrote the checkpoint.
RESUME_KEYS = (
    "batch_size",
    "learning_rate",
    "alpha",
    "shuffle",
    "random_state",
    "validation_fraction",
    "penalty",
    "l1_ratio",
    "schedule",
    "power_t",
    "momentum",
    "nesterov",
    "average",
    "n_iter_no_change",
    "tol",
    "block_rows",
)


def with_checkpoint(
    state: ModelState,
    info: EpochEnd,
    backend: Backend,
    initial_rng_state: dict[str, Any],
    n_train: int,
) -> ModelState:
    """``state`` (the model after ``info.epoch`` epochs) plus what resuming needs.

    Examples
    --------
    >>> import numpy as np, pathlib, tempfile, anyglm
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ck"
    >>> est = anyglm.LogisticRegression(epochs=2, random_state=0)
    >>> _ = est.fit([[-1.0], [1.0]], [0, 1], checkpoint=path)
    >>> from anyglm.checkpoints import read_checkpoint
    >>> read_checkpoint(path).epoch
    2
    """
    train = info.state
    assert train is not None, "checkpoints need the trainer's state"
    arrays = dict(state.arrays)
    arrays["train/W"] = backend.to_numpy(train.W)
    arrays["train/b"] = backend.to_numpy(train.b)
    for key, value in train.opt.items():
        arrays[f"train/opt/{key}"] = backend.to_numpy(value)
    meta = dict(state.meta)
    meta["checkpoint"] = {
        "epoch": info.epoch,
        "rng_state": jsonable(info.rng.bit_generator.state),
        "initial_rng_state": jsonable(initial_rng_state),
        "n_train": n_train,
        "trainer": train.host_fields(),
    }
    return ModelState(meta, arrays)


@dataclass
class Checkpoint:
    """The training state read from a checkpoint file (:func:`read_checkpoint`).

    Examples
    --------
    >>> import pathlib, tempfile, anyglm
    >>> from anyglm.checkpoints import read_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ck"
    >>> _ = anyglm.LinearRegression(epochs=3).fit([[0.0], [1.0]], [0.0, 1.0], checkpoint=path)
    >>> ck = read_checkpoint(path)
    >>> ck.epoch, len(ck.history["train_loss"])
    (3, 3)
    """

    path: str
    state: ModelState
    epoch: int
    rng_state: dict[str, Any]
    initial_rng_state: dict[str, Any]
    history: dict[str, list[np.ndarray]]
    n_train: int

    @property
    def meta(self) -> dict[str, Any]:
        """The file's metadata."""
        return self.state.meta

    def train_state(self, backend: Backend, dtype: str, device: Any) -> TrainState:
        """The trainer's state on ``backend``, to continue from.

        A checkpoint of format version 1 (plain SGD, no optimiser state) gets
        the counters an uninterrupted run would have had: the step count, and
        the early-stopping record replayed from its history.

        Examples
        --------
        >>> import pathlib, tempfile, anyglm
        >>> from anyglm.checkpoints import read_checkpoint
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "ck"
        >>> X, y = [[0.0], [1.0], [2.0]], [0.0, 1.0, 2.0]
        >>> _ = anyglm.LinearRegression(epochs=2, batch_size=2).fit(X, y, checkpoint=path)
        >>> state = read_checkpoint(path).train_state(anyglm.get_backend("numpy"), "float64", None)
        >>> state.t  # 2 epochs of 2 minibatches
        4
        """
        arrays = self.state.arrays
        put = lambda a: backend.from_numpy(a, dtype=dtype, device=device)  # noqa: E731
        counters = self.meta["checkpoint"].get("trainer")
        if counters is None:  # version 1: parameters are the raw iterates of plain SGD
            return self._replayed(put(arrays["W"]), put(arrays["b"]))
        opt = {
            key[len("train/opt/") :]: put(value)
            for key, value in arrays.items()
            if key.startswith("train/opt/")
        }
        ts = TrainState(put(arrays["train/W"]), put(arrays["train/b"]), opt)
        try:
            ts.t = int(counters["t"])
            ts.average_from = (
                None if counters["average_from"] is None else int(counters["average_from"])
            )
            ts.best = np.asarray(counters["best"], dtype=np.float64)
            ts.stale = np.asarray(counters["stale"], dtype=np.int64)
            ts.lr_scale = np.asarray(counters["lr_scale"], dtype=np.float64)
            ts.stopped_at = np.asarray(counters["stopped_at"], dtype=np.int64)
            ts.diverged_at = np.asarray(counters["diverged_at"], dtype=np.int64)
            scale = counters.get("scale")  # absent before the scale was kept: taken again
            ts.scale = np.asarray(
                [np.inf if v is None else float(v) for v in scale]
                if scale is not None
                else [np.inf] * len(ts.best),
                dtype=np.float64,
            )
        except (KeyError, TypeError, ValueError):
            raise ModelFileError(
                f"{self.path!r}: the checkpoint's trainer section is incomplete"
            ) from None
        if ts.stopped_at.any():
            # A configuration that stopped keeps predicting with its parameters then.
            ts.frozen = (
                backend.from_numpy(
                    np.repeat(ts.stopped_at > 0, arrays["W"].shape[1]), device=device
                ),
                put(arrays["W"]),
                put(arrays["b"]),
            )
        return ts

    def _replayed(self, W: Any, b: Any) -> TrainState:
        # Format version 1 kept no counters: rebuild what an uninterrupted run
        # would have had from the parameters and the history.
        params = self.meta.get("params", {})
        ts = TrainState.start(W, b, {}, 1)
        batch = min(int(params.get("batch_size") or self.n_train), self.n_train)
        ts.t = self.epoch * -(-self.n_train // batch)
        patience, tol = params.get("n_iter_no_change"), float(params.get("tol") or 0.0)
        key = "val_loss" if "val_loss" in self.history else "train_loss"
        for epoch, value in enumerate(self.history.get(key, []), start=1):
            v = float(value[0])
            if epoch == 1:
                ts.scale[0] = abs(v)  # tol is relative to the first epoch's value
            ts.stale[0] = ts.stale[0] + 1 if v > ts.best[0] - tol * ts.scale[0] else 0
            ts.best[0] = min(ts.best[0], v)
            if patience and ts.stale[0] >= patience:
                ts.stopped_at[0] = epoch
        return ts


def read_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a checkpoint written by ``fit(..., checkpoint=path)``.

    Raises
    ------
    ModelFileError
        The file is not a checkpoint (a plain model file, corrupted, foreign).

    Examples
    --------
    >>> import pathlib, tempfile, anyglm
    >>> from anyglm.checkpoints import read_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.anyglm"
    >>> anyglm.LinearRegression(epochs=2).fit([[0.0], [1.0]], [0.0, 1.0]).save(path)
    >>> try:
    ...     read_checkpoint(path)
    ... except anyglm.ModelFileError as err:
    ...     print("without training state" in str(err))
    True
    """
    state = modelfile.read(path)
    spath = state.path
    ck = state.checkpoint
    if ck is None:
        raise ModelFileError(
            f"{spath!r} is a model file without training state; resume needs a file written "
            "by fit(..., checkpoint=path)"
        )
    try:
        history = {
            k: [np.asarray([float(v)]) for v in vals] for k, vals in state.meta["history"].items()
        }
        return Checkpoint(
            spath,
            state,
            int(ck["epoch"]),
            dict(ck["rng_state"]),
            dict(ck["initial_rng_state"]),
            history,
            int(ck["n_train"]),
        )
    except (KeyError, TypeError, ValueError):
        raise ModelFileError(f"{spath!r}: the checkpoint section is incomplete") from None


def check_resumable(
    ck: Checkpoint,
    params: dict[str, Any],
    model_name: str,
    n_features: int,
    n_outputs: int,
    n_train: int,
    classes: np.ndarray | None,
    generator_seeded: bool,
) -> None:
    """``ValueError`` unless ``ck`` was written by a fit like this one.

    ``params`` are the estimator's parameters; ``generator_seeded`` says that
    ``random_state`` is a Generator (saved as ``None``; its state comes from
    the checkpoint).

    Examples
    --------
    >>> import pathlib, tempfile, anyglm
    >>> from anyglm.checkpoints import check_resumable, read_checkpoint
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ck"
    >>> est = anyglm.LinearRegression(epochs=2).fit([[0.0], [1.0]], [0.0, 1.0], checkpoint=path)
    >>> params = {**est.get_params(), "batch_size": 16}
    >>> try:
    ...     check_resumable(read_checkpoint(path), params, "linear", 1, 1, 2, None, False)
    ... except ValueError as err:
    ...     print(str(err).split("(")[1])
    batch_size=64 there, 16 here)
    """
    problems = []
    here = jsonable(params)
    there = ck.meta.get("params", {})
    for key in RESUME_KEYS:
        if key == "random_state" and generator_seeded:
            continue
        if key in here and key in there and there[key] != here[key]:
            problems.append(f"{key}={there[key]!r} there, {here[key]!r} here")
    if ck.meta.get("model") != model_name:
        problems.append(f"model {ck.meta.get('model')!r} there, {model_name!r} here")
    W = ck.state.arrays["W"]
    if W.shape != (n_features, n_outputs):
        problems.append(f"parameters of shape {W.shape}, data needs {(n_features, n_outputs)}")
    if ck.n_train != n_train:
        problems.append(f"{ck.n_train} training rows there, {n_train} here")
    ck_classes = ck.state.arrays.get("classes")
    if (ck_classes is None) != (classes is None) or (
        ck_classes is not None and classes is not None and ck_classes.tolist() != classes.tolist()
    ):
        problems.append("different classes")
    epochs = params.get("epochs")
    if isinstance(epochs, int) and ck.epoch > epochs:
        problems.append(f"the checkpoint is at epoch {ck.epoch}, past epochs={epochs}")
    if problems:
        raise ValueError(
            f"cannot resume from {ck.path!r}: it was written by a different fit ("
            + "; ".join(problems)
            + ")"
        )
