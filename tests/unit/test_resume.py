"""Checkpoints: kill -9 mid-epoch and resume bitwise; Ctrl-C in the CLI saves the state."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyglm
import numpy as np
import pytest

HYPER = {"batch_size": 1, "learning_rate": 0.01, "epochs": 6, "alpha": 1e-4, "random_state": 0}

# Trains on digits with a checkpoint every epoch; after epoch 2 a thread kills the
# process with SIGKILL 30 ms into epoch 3 (an epoch of batch size 1 takes ~0.3 s).
KILLED_RUN = """
import os, signal, sys, threading, anyglm
X, y = anyglm.datasets.load_dataset("digits")
X = anyglm.datasets.standardize(X)[0]
def callback(logs):
    if logs["epoch"] == 2:
        threading.Timer(0.03, os.kill, (os.getpid(), signal.SIGKILL)).start()
anyglm.SoftmaxRegression(**{hyper}, validation_fraction=0.2).fit(
    X, y, checkpoint=sys.argv[1], callback=callback)
"""


def _digits() -> tuple[np.ndarray, np.ndarray]:
    X, y = anyglm.datasets.load_dataset("digits")
    return anyglm.datasets.standardize(X)[0], y


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL is POSIX")
def test_killed_mid_epoch_then_resumed_is_bitwise_equal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # numba's compiled loop runs this epoch in about a millisecond, too fast for a
    # kill 30 ms into it; it is kept for large data (or ANYGLM_NUMBA_MIN_ELEMENTS=0).
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    ck = tmp_path / "state.ckpt"
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_RUN.format(hyper=HYPER), str(ck)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    meta = json.loads(__import__("zipfile").ZipFile(ck).read("metadata.json"))
    assert meta["checkpoint"]["epoch"] == 2  # killed during epoch 3, after epoch 2's save
    assert [p.name for p in tmp_path.iterdir()] == ["state.ckpt"]  # no temporary files left

    X, y = _digits()
    resumed = anyglm.SoftmaxRegression(**HYPER, validation_fraction=0.2).fit(X, y, resume=ck)
    straight = anyglm.SoftmaxRegression(**HYPER, validation_fraction=0.2).fit(X, y)
    assert resumed.n_epochs_ == straight.n_epochs_ == HYPER["epochs"]
    assert np.array_equal(np.asarray(resumed.coef_), np.asarray(straight.coef_))
    assert np.array_equal(np.asarray(resumed.intercept_), np.asarray(straight.intercept_))
    assert resumed.history_ == straight.history_


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
    with pytest.raises(ValueError, match=r"learning_rate=0\.01 there, 0\.5 here"):
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
