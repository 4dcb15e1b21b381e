"""Checkpoints: interrupted or killed mid-epoch and resumed bitwise; Ctrl-C in the CLI saves.

Every interruption happens at a deterministic point: the model's ``loss_and_dloss``
is replaced by a wrapper whose Nth call (one per minibatch) raises
``KeyboardInterrupt``, or sends SIGKILL in a child process; nothing depends on
how long an epoch takes.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest

HYPER = {"batch_size": 1, "learning_rate": 0.01, "epochs": 6, "alpha": 1e-4, "random_state": 0}

# Kill-and-resume trials: 240 training rows in minibatches of 8, so 30 minibatches
# an epoch. Without early stopping the run goes 6 epochs; with it, it stops after
# epoch 8 of at most 40 (asserted below, so a change of that shows).
SMALL = {"batch_size": 8, "learning_rate": 0.1, "alpha": 1e-4, "random_state": 0, "average": False}
PLAIN = {**SMALL, "epochs": 6, "validation_fraction": 0.2, "n_iter_no_change": None}
EARLY = {**SMALL, "epochs": 40, "validation_fraction": 0.2, "n_iter_no_change": 2, "tol": 1e-2}
STOPS_AFTER = 12

# (epoch, minibatch) at which training is interrupted: the minibatch's loss is
# being computed, so its update is not applied; -1 is the epoch's last minibatch.
# Epoch 1 is left out: its interruption leaves no checkpoint to resume from.
PLAIN_KILLS = [(2, 0), (2, 13), (2, -1), (3, 1), (3, 22), (4, 0), (4, -1), (5, 7), (6, 0), (6, -1)]
EARLY_KILLS = [(2, 0), (2, -1), (3, 15), (4, 0), (5, 9), (6, 29), (7, 0), (7, 3), (8, 0), (8, -1)]


class _Interrupts:
    """Replaces the model's ``loss_and_dloss``: counts the calls, and the call
    numbered ``at`` (1-based; one call per minibatch) raises ``KeyboardInterrupt``,
    as Ctrl-C would at that point. ``at=None`` only counts."""

    def __init__(self, model: anyglm.Model, at: int | None = None) -> None:
        self.inner = model.loss_and_dloss
        self.at = at
        self.calls = 0

    def __call__(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return self.inner(xp, Z, Y)


def _small_digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = _digits()
    return X[:300], y[:300]


def _checkpoint_epoch(path: Path) -> int:
    with zipfile.ZipFile(path) as zf:
        return int(json.loads(zf.read("metadata.json"))["checkpoint"]["epoch"])


def _assert_bitwise_equal(resumed: anyglm.Estimator, straight: anyglm.Estimator) -> None:
    assert resumed.n_epochs_ == straight.n_epochs_
    assert np.array_equal(np.asarray(resumed.coef_), np.asarray(straight.coef_))
    assert np.array_equal(np.asarray(resumed.intercept_), np.asarray(straight.intercept_))
    assert resumed.history_ == straight.history_


def _kill_and_resume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, Any], epoch: int, batch: int
) -> None:
    """Interrupt a fit with a checkpoint every epoch at (epoch, batch), resume, compare."""
    # The numba loop (for large data) calls no Python per minibatch: kept off, so the
    # interruption happens where the parameters say whatever the problem size.
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    X, y = _small_digits()
    model = anyglm.get_model("softmax")
    counter = _Interrupts(model)
    ends: list[int] = []  # calls made by the end of each epoch
    monkeypatch.setattr(model, "loss_and_dloss", counter)
    straight = anyglm.SoftmaxRegression(**params).fit(
        X, y, callback=lambda logs: ends.append(counter.calls)
    )
    per_epoch = ends[0]
    assert per_epoch == 30 and ends == [per_epoch * (e + 1) for e in range(len(ends))]
    assert epoch <= straight.n_epochs_
    at = per_epoch * (epoch - 1) + (batch % per_epoch) + 1

    ck = tmp_path / "state.ckpt"
    monkeypatch.setattr(model, "loss_and_dloss", _Interrupts(model, at))
    with pytest.raises(KeyboardInterrupt):
        anyglm.SoftmaxRegression(**params).fit(X, y, checkpoint=ck)
    assert _checkpoint_epoch(ck) == epoch - 1  # the last epoch completed before it
    assert [p.name for p in tmp_path.iterdir()] == ["state.ckpt"]  # no temporary files

    monkeypatch.setattr(model, "loss_and_dloss", counter.inner)
    resumed = anyglm.SoftmaxRegression(**params).fit(X, y, resume=ck)
    _assert_bitwise_equal(resumed, straight)


@pytest.mark.parametrize(("epoch", "batch"), PLAIN_KILLS)
def test_interrupted_mid_epoch_then_resumed_is_bitwise_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: int, batch: int
) -> None:
    _kill_and_resume(tmp_path, monkeypatch, PLAIN, epoch, batch)


@pytest.mark.parametrize(("epoch", "batch"), EARLY_KILLS)
def test_interrupted_mid_epoch_with_early_stopping_then_resumed_is_bitwise_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: int, batch: int
) -> None:
    X, y = _small_digits()
    assert anyglm.SoftmaxRegression(**EARLY).fit(X, y).n_epochs_ == STOPS_AFTER
    _kill_and_resume(tmp_path, monkeypatch, EARLY, epoch, batch)


@pytest.mark.parametrize(("epoch", "batch"), [(3, 4), (5, -1)])
def test_interrupted_in_the_portable_loop_then_resumed_is_bitwise_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, epoch: int, batch: int
) -> None:
    monkeypatch.setenv("ANYGLM_DISABLE_FAST_PATHS", "1")
    _kill_and_resume(tmp_path, monkeypatch, PLAIN, epoch, batch)


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(PLAIN, id="all-epochs"),
        pytest.param(EARLY, id="stopped-early"),
    ],
)
def test_resuming_from_the_final_checkpoint_trains_nothing_more(
    tmp_path: Path, params: dict[str, Any]
) -> None:
    # A process killed after its last checkpoint was written, before it could report
    # that it had finished: resuming must give the finished run, not train on.
    X, y = _small_digits()
    ck = tmp_path / "state.ckpt"
    straight = anyglm.SoftmaxRegression(**params).fit(X, y, checkpoint=ck)
    assert _checkpoint_epoch(ck) == straight.n_epochs_
    resumed = anyglm.SoftmaxRegression(**params).fit(X, y, resume=ck)
    _assert_bitwise_equal(resumed, straight)


# The same in a process killed with SIGKILL (no cleanup of any kind runs) while the
# loss of minibatch sys.argv[2] is computed: a checkpoint every epoch on digits.
KILLED_RUN = """
import os, signal, sys, anyglm
X, y = anyglm.datasets.load_dataset("digits")
X = anyglm.datasets.standardize(X)[0]
model = anyglm.get_model("softmax")
inner, calls, kill_at = model.loss_and_dloss, [0], int(sys.argv[2])
def loss_and_dloss(xp, Z, Y):
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return inner(xp, Z, Y)
model.loss_and_dloss = loss_and_dloss
anyglm.SoftmaxRegression(**{hyper}, validation_fraction=0.2).fit(
    X, y, checkpoint=sys.argv[1])
"""


def _digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = anyglm.datasets.load_dataset("digits")
    return anyglm.datasets.standardize(X)[0], y


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_mid_epoch_then_resumed_is_bitwise_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Killed at the 100th minibatch of epoch 3 (batch size 1: one row each). The numba
    # loop calls no Python per minibatch, so it is kept off here and in the child.
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    X, y = _digits()
    n_train = X.shape[0] - round(0.2 * X.shape[0])
    ck = tmp_path / "state.ckpt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN.format(hyper=HYPER), str(ck), str(2 * n_train + 100)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert _checkpoint_epoch(ck) == 2  # killed during epoch 3, after epoch 2's save
    assert [p.name for p in tmp_path.iterdir()] == ["state.ckpt"]  # no temporary files left

    resumed = anyglm.SoftmaxRegression(**HYPER, validation_fraction=0.2).fit(X, y, resume=ck)
    straight = anyglm.SoftmaxRegression(**HYPER, validation_fraction=0.2).fit(X, y)
    assert resumed.n_epochs_ == straight.n_epochs_ == HYPER["epochs"]
    _assert_bitwise_equal(resumed, straight)


def test_checkpoint_written_on_numpy_resumes_on_array_api_strict(tmp_path: Path) -> None:
    xs = pytest.importorskip("array_api_strict")
    X, y = _digits()
    X, y = X[:300], y[:300]
    hyper = {**HYPER, "batch_size": 16, "epochs": 4}
    ck = tmp_path / "state.ckpt"
    anyglm.SoftmaxRegression(**{**hyper, "epochs": 2}).fit(X, y, checkpoint=ck)
    resumed = anyglm.SoftmaxRegression(**hyper, backend="array_api_strict").fit(X, y, resume=ck)
    straight = anyglm.SoftmaxRegression(**hyper).fit(X, y)
    assert isinstance(resumed.coef_, type(xs.asarray(1.0)))
    be = anyglm.get_backend("array_api_strict")
    np.testing.assert_allclose(be.to_numpy(resumed.coef_), straight.coef_, rtol=1e-12, atol=1e-14)


def test_resume_refuses_a_different_fit(tmp_path: Path) -> None:
    X, y = _digits()
    X, y = X[:200], y[:200]
    ck = tmp_path / "state.ckpt"
    anyglm.SoftmaxRegression(epochs=1, random_state=0).fit(X, y, checkpoint=ck)
    with pytest.raises(ValueError, match=r"learning_rate='auto' there, 0\.5 here"):
        anyglm.SoftmaxRegression(epochs=2, random_state=0, learning_rate=0.5).fit(X, y, resume=ck)
    with pytest.raises(ValueError, match="training rows"):
        anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(X[:100], y[:100], resume=ck)
    longer = tmp_path / "longer.ckpt"
    anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(X, y, checkpoint=longer)
    with pytest.raises(ValueError, match="past epochs=2"):
        anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(X, y, resume=longer)
    plain = tmp_path / "model.anyglm"
    anyglm.SoftmaxRegression(epochs=1, random_state=0).fit(X, y).save(plain)
    with pytest.raises(anyglm.ModelFileError, match="without training state"):
        anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(X, y, resume=plain)
    with pytest.raises(ValueError, match="checkpoint_on"):
        anyglm.SoftmaxRegression(epochs=1).fit(X, y, checkpoint=ck, checkpoint_on="sometimes")


def test_interrupt_keeps_the_last_epoch_and_writes_the_checkpoint(tmp_path: Path) -> None:
    X, y = _digits()
    X, y = X[:200], y[:200]
    ck = tmp_path / "state.ckpt"

    def stop_in_epoch_three(logs: dict) -> None:
        if logs["epoch"] == 3:
            raise KeyboardInterrupt

    est = anyglm.SoftmaxRegression(epochs=10, random_state=0)
    with pytest.raises(KeyboardInterrupt):
        est.fit(X, y, checkpoint=ck, checkpoint_on="interrupt", callback=stop_in_epoch_three)
    # The callback ran after epoch 3 completed, so epoch 3's state is the last complete one.
    assert est.n_epochs_ == 3 and len(est.history_["train_loss"]) == 3
    resumed = anyglm.SoftmaxRegression(epochs=10, random_state=0).fit(X, y, resume=ck)
    straight = anyglm.SoftmaxRegression(epochs=10, random_state=0).fit(X, y)
    assert np.array_equal(resumed.coef_, straight.coef_)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT delivery differs on Windows")
def test_ctrl_c_in_anyglm_train_saves_a_checkpoint_and_exits_130(tmp_path: Path) -> None:
    cmd = [
        sys.executable,
        "-m",
        "anyglm",
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "100000",
        "--batch-size",
        "1",
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    time.sleep(2.0)  # let at least one epoch finish (one takes well under a second)
    proc.send_signal(signal.SIGINT)
    try:
        _, err = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "interrupted" in err and "--resume anyglm-train.ckpt" in err
    ck = tmp_path / "anyglm-train.ckpt"
    assert ck.exists()
    epoch = json.loads(__import__("zipfile").ZipFile(ck).read("metadata.json"))["checkpoint"][
        "epoch"
    ]
    assert epoch >= 1
    done = subprocess.run(
        [
            *cmd[:6],
            "--epochs",
            str(epoch + 1),
            "--batch-size",
            "1",
            "--quiet",
            "--json",
            "--resume",
            "anyglm-train.ckpt",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["epochs"] == epoch + 1
    assert os.path.exists(ck)


# -- any NumPy generator as random_state ------------------------------------------------------

_X40 = np.random.default_rng(0).normal(size=(40, 3))
_Y40 = (_X40[:, 0] + _X40[:, 1] > 0).astype(int)


@pytest.mark.parametrize("bitgen", [np.random.MT19937, np.random.Philox, np.random.SFC64])
def test_any_numpy_generator_trains_checkpoints_and_resumes(tmp_path: Path, bitgen: type) -> None:
    ck = tmp_path / "ck"
    part = anyglm.LogisticRegression(epochs=2, random_state=np.random.Generator(bitgen(0)))
    part.fit(_X40, _Y40, checkpoint=ck)
    resumed = anyglm.LogisticRegression(epochs=4, random_state=np.random.Generator(bitgen(0)))
    resumed.fit(_X40, _Y40, resume=ck)
    straight = anyglm.LogisticRegression(epochs=4, random_state=np.random.Generator(bitgen(0)))
    straight.fit(_X40, _Y40)
    assert np.array_equal(resumed.coef_, straight.coef_)


def test_resume_with_a_generator_random_state(tmp_path: Path) -> None:
    ck = tmp_path / "ck"
    anyglm.LogisticRegression(epochs=2, random_state=np.random.default_rng(5)).fit(
        _X40, _Y40, checkpoint=ck
    )
    resumed = anyglm.LogisticRegression(epochs=4, random_state=np.random.default_rng(99))
    resumed.fit(_X40, _Y40, resume=ck)  # the state comes from the checkpoint, not the new seed
    straight = anyglm.LogisticRegression(epochs=4, random_state=np.random.default_rng(5))
    straight.fit(_X40, _Y40)
    assert np.array_equal(resumed.coef_, straight.coef_)
