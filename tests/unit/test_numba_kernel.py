"""The numba kernel of the NumPy backend: the compiled loop against the portable loop.

Runs where numba is installed (the ``test`` extra installs it); the
conformance suite checks the same kernel again with its size threshold off
(``ANYGLM_NUMBA_MIN_ELEMENTS=0`` in .ci/run).
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.data import ArraySource
from anyglm.fastpath import EpochTask, find_epoch_kernel
from anyglm.trainer import train

pytest.importorskip("numba")

from anyglm.backends import _numba_loops
from anyglm.backends.numba_epoch import NumbaEpochKernel, min_elements_setting
from anyglm.backends.numpy_epoch import NumpyEpochKernel
from anyglm.plugins.softmax import Softmax

N, D = 203, 13  # batch 16: twelve full minibatches and a short one of 11 rows


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANYGLM_DISABLE_FAST_PATHS", "ANYGLM_DISABLE_NUMBA", "ANYGLM_NUMBA_MIN_ELEMENTS"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the compiled loop's runs, so a test can tell it ran."""
    seen: list[int] = []
    real = _numba_loops.glm_epoch

    def counting(*args: Any) -> Any:
        seen.append(1)
        return real(*args)

    monkeypatch.setattr(_numba_loops, "glm_epoch", counting)
    return seen


def _problem(model: str, dtype: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, D)).astype(dtype)
    if model == "softmax":
        Y = np.eye(4, dtype=dtype)[rng.integers(0, 4, N)]
    elif model == "logistic":
        Y = rng.integers(0, 2, (N, 1)).astype(dtype)
    else:
        Y = (X @ rng.normal(size=(D, 2)) + rng.normal(size=(N, 2))).astype(dtype)
    return X, Y


def _fit(
    model: str, X: np.ndarray, Y: np.ndarray, *, fast: bool, weights: Any = None,
    shuffle: bool = True, lr: float = 0.05, batch: int = 16, epochs: int = 3,
) -> Any:  # fmt: skip
    be = anyglm.get_backend("numpy")
    rng = np.random.default_rng(7)
    c = Y.shape[1]
    return train(
        anyglm.get_model(model),
        be,
        ArraySource(be, X, Y, weights),
        W=(0.1 * rng.normal(size=(X.shape[1], c))).astype(X.dtype),
        b=(0.1 * rng.normal(size=c)).astype(X.dtype),
        n_configs=1,
        learning_rate=lr,
        alpha=1e-2,
        epochs=epochs,
        batch_size=batch,
        shuffle=shuffle,
        rng=np.random.default_rng(3),
        dtype=str(X.dtype),
        device="cpu",
        fast_path=fast,
    )


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_compiled_loop_matches_the_portable_loop(
    model: str, dtype: str, weighted: bool, shuffle: bool, calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem(model, dtype)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, N).astype(dtype) if weighted else None
    fast = _fit(model, X, Y, fast=True, weights=weights, shuffle=shuffle)
    assert len(calls) == 3  # one compiled run per epoch
    ref = _fit(model, X, Y, fast=False, weights=weights, shuffle=shuffle)
    rtol = 1e-4 if dtype == "float32" else 1e-11
    for got, want in ((fast.W, ref.W), (fast.b, ref.b)):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))
    np.testing.assert_allclose(fast.history["train_loss"], ref.history["train_loss"], rtol=rtol)


def test_a_batch_larger_than_the_data_and_batches_of_one(
    calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem("softmax", "float64")
    for batch in (1, 7, 9, N + 50):
        fast = _fit("softmax", X, Y, fast=True, batch=batch, epochs=1, lr=0.01)
        ref = _fit("softmax", X, Y, fast=False, batch=batch, epochs=1, lr=0.01)
        np.testing.assert_allclose(fast.W, ref.W, rtol=1e-11, atol=1e-12)
    assert len(calls) == 4


def _task(X: np.ndarray, Y: np.ndarray, **change: Any) -> EpochTask:
    c = Y.shape[1]
    fields: dict[str, Any] = dict(
        X=X, Y=Y, weights=None, order=np.random.default_rng(0).permutation(len(X)),
        batch_size=16, W=np.full((X.shape[1], c), 0.01, dtype=X.dtype),
        b=np.zeros(c, dtype=X.dtype), learning_rate=0.1, alpha=1e-3, n_configs=1,
    )  # fmt: skip
    fields.update(change)
    return EpochTask(**fields)


class _MySoftmax(Softmax):
    name = "my-softmax"


@pytest.mark.parametrize(
    "case",
    ["small", "subclass", "int-weights", "mixed-dtypes", "disabled"],
)  # fmt: skip
def test_other_tasks_go_to_the_numpy_kernel_unchanged(
    case: str, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, Y = _problem("softmax", "float64")
    model: Any = anyglm.get_model("softmax")
    change: dict[str, Any] = {}
    threshold = 0
    if case == "small":
        threshold = X.size + 1
    elif case == "subclass":
        model = _MySoftmax()
    elif case == "int-weights":
        change = dict(weights=np.ones(N, dtype=np.int64))
    elif case == "mixed-dtypes":
        Y = Y.astype(np.float32)
    else:
        monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    task = _task(X, Y, **change)
    kernel = NumbaEpochKernel(model, anyglm.get_backend("numpy").xp, min_elements=threshold)
    assert not kernel.compiled_for(task)
    got = kernel(task)
    want = NumpyEpochKernel(model, anyglm.get_backend("numpy").xp)(task)
    assert calls == []
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_several_configurations_get_the_numpy_kernel_with_a_compiled_loss_step(
    model: str, dtype: str, weighted: bool, calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, Y = _problem(model, dtype)
    K, c = 3, Y.shape[1]
    rng = np.random.default_rng(5)
    change = dict(
        W=(0.1 * rng.normal(size=(D, K * c))).astype(dtype),
        b=(0.1 * rng.normal(size=K * c)).astype(dtype),
        n_configs=K,
        learning_rate=np.repeat([0.1, 0.03, 0.01], c).astype(dtype),
        alpha=np.repeat([0.0, 1e-3, 1e-1], c).astype(dtype),
        weights=rng.uniform(0.2, 2.0, N).astype(dtype) if weighted else None,
    )
    task = _task(X, Y, **change)
    xp = anyglm.get_backend("numpy").xp
    kernel = NumbaEpochKernel(anyglm.get_model(model), xp, min_elements=0)
    assert not kernel.compiled_for(task)
    steps: list[str] = []
    for name in ("softmax_shift", "rows_step"):
        real = getattr(_numba_loops, name)
        monkeypatch.setattr(
            _numba_loops, name, lambda *a, real=real, name=name: (steps.append(name), real(*a))[1]
        )
    got = kernel(task)
    want = NumpyEpochKernel(anyglm.get_model(model), xp)(task)
    assert calls == []  # not the one-configuration loop
    assert steps == ["softmax_shift" if model == "softmax" else "rows_step"] * 13  # minibatches
    rtol = 1e-5 if dtype == "float32" else 1e-12
    for g, w in zip(got, want, strict=True):
        assert g.dtype == w.dtype and g.shape == w.shape
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * float(np.max(np.abs(w))))


def test_a_uniform_rate_array_still_runs_compiled(calls: list[int]) -> None:
    X, Y = _problem("softmax", "float64")
    task = _task(X, Y, learning_rate=np.full(4, 0.1), alpha=np.full(4, 1e-3))
    kernel = NumbaEpochKernel(anyglm.get_model("softmax"), None, min_elements=0)
    assert kernel.compiled_for(task)
    for got, want in zip(kernel(task), kernel(_task(X, Y)), strict=True):
        np.testing.assert_array_equal(got, want)
    assert len(calls) == 2


def test_inputs_stay_unchanged_and_read_only_inputs_work() -> None:
    X, Y = _problem("logistic", "float32")
    Xf = np.asfortranarray(X)  # column-major: copied to rows once
    weights = np.linspace(0.5, 1.5, N, dtype=np.float32)
    task = _task(Xf, Y, weights=weights)
    arrays = [Xf, Y, weights, task.order, task.W, task.b]
    before = [a.copy() for a in arrays]
    for a in arrays:
        a.setflags(write=False)
    kernel = NumbaEpochKernel(anyglm.get_model("logistic"), None, min_elements=0)
    W, b, total = kernel(task)
    for a, copy in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, copy)
    assert W.shape == task.W.shape and W.flags.c_contiguous and W.dtype == np.float32
    assert b.shape == task.b.shape and total.shape == (1,) and total.dtype == np.float32
    # Column-major X gives the same numbers as row-major X.
    row_major = kernel(_task(np.ascontiguousarray(X), Y, weights=weights))
    for got, want in zip((W, b, total), row_major, strict=True):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_divergence_shows_in_the_same_epoch_as_the_portable_loop(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem(model, "float64")
    X = X * 1e3
    epochs = []
    for fast in (True, False):
        with pytest.raises(anyglm.DivergenceError) as info:
            _fit(model, X, Y, fast=fast, lr=1e6, epochs=30)
        epochs.append(info.value.epoch)
    assert epochs[0] == epochs[1]


def test_a_bad_threshold_is_a_clear_error_for_the_models_it_concerns_only(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "lots")
    with pytest.raises(ValueError, match="ANYGLM_NUMBA_MIN_ELEMENTS must be a whole number"):
        min_elements_setting()
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "-3")
    with pytest.raises(ValueError, match="0 or more, got -3"):
        min_elements_setting()
    X, Y = _problem("softmax", "float64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no plugin is blamed
        with pytest.raises(ValueError, match="ANYGLM_NUMBA_MIN_ELEMENTS must be 0 or more"):
            _fit("softmax", X, Y, fast=True)
        # A model the compiled loop does not know keeps its NumPy kernel.
        xp = anyglm.get_backend("numpy").xp
        got = NumbaEpochKernel(_MySoftmax(), xp)(_task(X, Y))
    want = NumpyEpochKernel(_MySoftmax(), xp)(_task(X, Y))
    np.testing.assert_array_equal(got[0], want[0])
    assert anyglm.doctor()["numba"]["min_elements"].startswith("error:")
    from anyglm.cli import main

    assert main(["doctor"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if "numba" in s][-1]
    assert "ANYGLM_NUMBA_MIN_ELEMENTS must be 0 or more, got -3" in line
    assert "when X holds" not in line
    with pytest.raises(ValueError, match="min_elements must be 0 or more"):
        NumbaEpochKernel(_MySoftmax(), xp, min_elements=-1)


def test_the_model_codes_agree_between_the_two_modules() -> None:
    from anyglm.backends.numba_epoch import COMPILED_MODELS

    codes = (_numba_loops.LINEAR, _numba_loops.LOGISTIC, _numba_loops.SOFTMAX)
    assert COMPILED_MODELS == ("linear", "logistic", "softmax") and codes == (0, 1, 2)


def test_float32_linear_diverges_in_the_same_epoch_as_the_portable_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Squared residuals above 3.4e38 are inf in float32: the compiled loop must not
    # compute them in float64 and so see the divergence later than NumPy does.
    X = np.array([[3.0], [0.1], [0.2], [-0.1]], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.5, 0.2], dtype=np.float32)
    epochs = []
    for env in ("ANYGLM_NUMBA_MIN_ELEMENTS", "ANYGLM_DISABLE_FAST_PATHS"):
        monkeypatch.delenv("ANYGLM_NUMBA_MIN_ELEMENTS", raising=False)
        monkeypatch.delenv("ANYGLM_DISABLE_FAST_PATHS", raising=False)
        monkeypatch.setenv(env, "0" if env == "ANYGLM_NUMBA_MIN_ELEMENTS" else "1")
        est = anyglm.LinearRegression(
            epochs=3000, batch_size=4, learning_rate=0.86, alpha=0.0, shuffle=False,
            dtype="float32",
        )  # fmt: skip
        with pytest.raises(anyglm.DivergenceError) as info:
            est.fit(X, y)
        epochs.append(info.value.epoch)
    assert epochs[0] == epochs[1]


def test_the_hook_offers_the_numba_kernel_and_doctor_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    kernel = find_epoch_kernel(anyglm.get_backend("numpy"), anyglm.get_model("softmax"))
    assert isinstance(kernel, NumbaEpochKernel)
    report = anyglm.doctor()["numba"]
    assert report["enabled"] and report["version"] and report["min_elements"] == 1 << 20
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    kernel = find_epoch_kernel(anyglm.get_backend("numpy"), anyglm.get_model("softmax"))
    assert type(kernel) is NumpyEpochKernel
    assert not anyglm.doctor()["numba"]["enabled"]


def test_an_estimator_above_the_threshold_uses_it_and_agrees(
    calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(25000, 60))  # 1.5e6 values: above the default threshold
    y = (X[:, :3] @ np.array([1.0, -2.0, 0.5]) > 0).astype(int)
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit(X, y)
    assert len(calls) == 2
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    ref = anyglm.LogisticRegression(epochs=2, random_state=0).fit(X, y)
    assert len(calls) == 2
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-9, atol=1e-12)
    assert np.array_equal(est.predict(X), ref.predict(X))


def test_import_anyglm_and_a_small_fit_do_not_import_numba() -> None:
    code = (
        "import sys, numpy as np, anyglm\n"
        "X = np.random.default_rng(0).normal(size=(50, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "anyglm.LogisticRegression(epochs=2).fit(X, y)\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    with warnings.catch_warnings():
        subprocess.run([sys.executable, "-c", code], check=True)


def test_a_numba_that_fails_to_load_warns_once_and_the_numpy_kernel_trains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import anyglm.backends
    from anyglm.backends import numba_epoch

    monkeypatch.setitem(sys.modules, "anyglm.backends._numba_loops", None)  # import fails
    monkeypatch.delattr(anyglm.backends, "_numba_loops")
    monkeypatch.setattr(numba_epoch, "_import_error", None)
    X, Y = _problem("softmax", "float64")
    xp = anyglm.get_backend("numpy").xp
    kernel = NumbaEpochKernel(anyglm.get_model("softmax"), xp, min_elements=0)
    with pytest.warns(RuntimeWarning, match="could not load its numba loop.*ANYGLM_DISABLE_NUMBA"):
        got = kernel(_task(X, Y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the second epoch does not warn again
        again = kernel(_task(X, Y))
    assert not kernel.compiled_for(_task(X, Y))
    assert not anyglm.doctor()["numba"]["enabled"]
    want = NumpyEpochKernel(anyglm.get_model("softmax"), xp)(_task(X, Y))
    for g, a, w in zip(got, again, want, strict=True):
        np.testing.assert_array_equal(g, w)
        np.testing.assert_array_equal(a, w)
