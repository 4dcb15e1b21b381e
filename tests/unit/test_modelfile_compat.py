"""Model files written by format version 1 (anyglm 0.1.0) keep loading, predicting and resuming.

``tests/unit/data/modelfiles_v1/`` holds files that version wrote, the rows it
predicted on, and its predictions (``expected.json``); see the README there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm import modelfile

DATA = Path(__file__).resolve().parent / "data" / "modelfiles_v1"
EXPECTED = json.loads((DATA / "expected.json").read_text(encoding="utf-8"))

#: file stem -> (rows it was asked to predict, estimator class, dtype)
FILES = {
    "logistic_strings": ("logistic_strings_X.npy", anyglm.LogisticRegression, "float64"),
    "softmax_digits": ("softmax_digits_X.npy", anyglm.SoftmaxRegression, "float64"),
    "linear_1d_float32": ("diabetes_X.npy", anyglm.LinearRegression, "float32"),
    "linear_2targets": ("diabetes_X.npy", anyglm.LinearRegression, "float64"),
}


def _close(got: Any, expected: Any, dtype: str) -> None:
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert got.shape == expected.shape
    if dtype == "float64":
        # The same arithmetic, but BLAS picks its kernel by processor, and a kernel
        # adds in its own order: the last bit may differ from the machine that wrote
        # expected.json (an AMD EPYC gives 2.8e-17 off on 12 of 200 softmax values).
        np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_the_files_are_version_1() -> None:
    for stem in [*FILES, "softmax_checkpoint_epoch2"]:
        state = modelfile.read(DATA / f"{stem}.anyglm")
        assert state.meta["format_version"] == 1
        assert state.meta["anyglm_version"] == EXPECTED["anyglm_version"] == "0.1.0"


@pytest.mark.parametrize("stem", list(FILES))
def test_version_1_file_loads_and_predicts_as_it_did(stem: str) -> None:
    rows, cls, dtype = FILES[stem]
    X = np.load(DATA / rows)
    est = anyglm.load(DATA / f"{stem}.anyglm")
    assert type(est) is cls
    assert est._dtype == dtype and est.coef_.dtype == np.dtype(dtype)
    expected = EXPECTED[stem]
    pred = est.predict(X)
    if "classes_" in dir(est):
        assert pred.tolist() == expected["predict"]  # labels: exactly
    else:
        _close(pred, expected["predict"], dtype)
    if "decision" in expected:
        _close(est.decision_function(X), expected["decision"], dtype)
    if "proba" in expected:
        _close(est.predict_proba(X), expected["proba"], dtype)
    assert est.n_epochs_ == len(next(iter(est.history_.values())))


def _digits_300() -> tuple[np.ndarray, np.ndarray]:
    # The first 300 rows of the digits standardised as a whole (softmax_digits_X.npy
    # holds the first 20 of them).
    X, y = anyglm.datasets.load_dataset("digits")
    Xs = anyglm.datasets.standardize(X)[0][:300]
    np.testing.assert_array_equal(Xs[:20], np.load(DATA / "softmax_digits_X.npy"))
    return Xs, y[:300]


def test_version_1_checkpoint_resumes_to_the_uninterrupted_run(tmp_path: Path) -> None:
    ck = DATA / "softmax_checkpoint_epoch2.anyglm"
    state = modelfile.read(ck)
    assert state.checkpoint is not None and state.checkpoint["epoch"] == 2
    assert "trainer" not in state.checkpoint  # version 1 kept no trainer counters
    # The settings of the run that wrote it (today's defaults may differ).
    params = {
        k: v
        for k, v in state.meta["params"].items()
        if k not in ("epochs", "backend", "device", "dtype", "class_weight")
    }
    params["average"] = False  # version 1 had plain SGD only
    X, y = _digits_300()
    copy = tmp_path / "ck.anyglm"
    shutil.copyfile(ck, copy)
    est = anyglm.SoftmaxRegression(**{**params, "epochs": 4}).fit(X, y, resume=copy)
    assert est.n_epochs_ == 4
    straight = json.loads((DATA / "softmax_checkpoint_straight4.json").read_text())
    # Written by a version whose NumPy kernel rounded differently: close, not bitwise.
    np.testing.assert_allclose(np.asarray(est.coef_), straight["coef"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(
        np.asarray(est.intercept_), straight["intercept"], rtol=0, atol=1e-12
    )
    # and the file itself was not touched by reading it
    assert copy.read_bytes() == ck.read_bytes()


def test_version_1_checkpoint_refuses_a_different_fit(tmp_path: Path) -> None:
    X, y = _digits_300()
    est = anyglm.SoftmaxRegression(batch_size=16, epochs=4, random_state=0)
    with pytest.raises(ValueError, match=r"batch_size=32 there, 16 here"):
        est.fit(X, y, resume=DATA / "softmax_checkpoint_epoch2.anyglm")
