"""Accelerators: the hook, what the NumPy backend's numba loop declares, and how it trains.

The conformance suite compares every accelerator with the portable loop on
tiny problems (with ``ANYGLM_NUMBA_MIN_ELEMENTS=0`` in .ci/run); these tests
check the contract around it: who is asked, who declines, what the trainer
does with the answers, and numba's loop on sizes and layouts of its own.
"""

from __future__ import annotations

import subprocess
import sys
import types
import warnings
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.accelerate import AcceleratorSpec, BlockTask
from anyglm.backends import numpy as numpy_backend
from anyglm.optim import Columns, OptimizerSpec
from anyglm.registry import plugin_state
from anyglm.selection import find_accelerator
from anyglm.sources import ArraySource
from anyglm.trainer import train

N, D = 203, 13  # batch 16: twelve full minibatches and a short one of 11 rows
HAS_NUMBA = numpy_backend.numba_available()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "ANYGLM_DISABLE_ACCELERATORS",
        "ANYGLM_DISABLE_FAST_PATHS",
        "ANYGLM_DISABLE_NUMBA",
        "ANYGLM_NUMBA_MIN_ELEMENTS",
        "ANYGLM_STRICT_PLUGINS",
    ):
        monkeypatch.delenv(var, raising=False)


def _spec(model: str = "softmax", **opt: Any) -> AcceleratorSpec:
    settings = {k: v for k, v in opt.items() if k not in ("k", "sparse", "dtype")}
    return AcceleratorSpec(
        anyglm.get_model(model),
        model,
        OptimizerSpec(**settings),
        opt.get("dtype", "float64"),
        opt.get("k", 1),
        False,
        opt.get("sparse", False),
    )


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
    model: str,
    X: np.ndarray,
    Y: np.ndarray,
    *,
    accelerate: bool,
    weights: Any = None,
    shuffle: bool = True,
    lr: float = 0.05,
    batch: int = 16,
    epochs: int = 3,
    optimizer: OptimizerSpec | None = None,
) -> Any:
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
        optimizer=optimizer,
        accelerate=accelerate,
    )


# -- the hook and the spec ------------------------------------------------------------------


def _register(hook: Any, name: str) -> types.ModuleType:
    plugin = types.ModuleType(name)
    plugin.anyglm_accelerator = anyglm.hookimpl(hook)  # type: ignore[attr-defined]
    plugin_state().pm.register(plugin, name=name)
    return plugin


def test_an_optimiser_no_accelerator_declares_runs_the_portable_loop() -> None:
    asked: list[AcceleratorSpec] = []

    def spy(backend: Any, spec: AcceleratorSpec) -> Any:
        asked.append(spec)
        return None  # declines everything

    plugin = _register(spy, "spy-accelerator")
    try:
        X, Y = _problem("softmax", "float64")
        momentum = OptimizerSpec(momentum=0.9)
        res = _fit("softmax", X, Y, accelerate=True, optimizer=momentum)
        ref = _fit("softmax", X, Y, accelerate=False, optimizer=momentum)
    finally:
        plugin_state().pm.unregister(plugin)
    # The spy was asked, with the spec the fit asked for, and declined; so did NumPy's own
    # accelerator, which implements plain SGD only; the portable loop trained.
    assert [s.optimizer for s in asked] == [momentum]
    assert asked[0].model_name == "softmax" and asked[0].dtype == "float64"
    assert numpy_backend.anyglm_accelerator(anyglm.get_backend("numpy"), asked[0]) is None
    assert not res.accelerated
    np.testing.assert_array_equal(res.W, ref.W)


@pytest.mark.parametrize(
    ("spec", "declared"),
    [
        (_spec("softmax"), True),
        (_spec("linear", penalty="none"), True),
        (_spec("logistic", schedule="adaptive"), True),
        (_spec("softmax", dtype="float32"), True),
        (_spec("softmax", momentum=0.5), False),
        (_spec("softmax", average=1), True),
        (_spec("linear", average=3, schedule="adaptive"), True),
        (_spec("softmax", penalty="l1"), False),
        (_spec("softmax", penalty="elasticnet"), False),
        (_spec("softmax", schedule="invscaling"), False),
        (_spec("softmax", schedule="optimal"), False),
        (_spec("softmax", k=2), False),
        (_spec("softmax", sparse=True), False),
    ],
)
def test_numba_declares_sgd_with_a_fixed_rate_on_the_builtin_models_only(
    spec: AcceleratorSpec, declared: bool
) -> None:
    assert numpy_backend.declares(spec) is declared


def test_a_model_named_like_a_builtin_is_not_compiled() -> None:
    from anyglm.plugins.softmax import Softmax

    class MySoftmax(Softmax):  # a subclass may change the loss
        name = "softmax"

    spec = AcceleratorSpec(MySoftmax(), "softmax", OptimizerSpec(), "float64", 1, False, False)
    assert type(spec.model).__module__ != "anyglm.plugins.softmax"
    assert not numpy_backend.declares(spec)


def test_other_backends_and_numpy_subclasses_get_no_numpy_accelerator() -> None:
    from anyglm.backends.numpy import NumpyBackend

    class Other(NumpyBackend):
        name = "other-numpy"

    spec = _spec("linear")
    assert find_accelerator(Other(), spec) is None
    assert find_accelerator(anyglm.get_backend("array_api_strict"), spec) is None
    expected = HAS_NUMBA
    assert (find_accelerator(anyglm.get_backend("numpy"), spec) is not None) is expected


@pytest.mark.parametrize("var", ["ANYGLM_DISABLE_ACCELERATORS", "ANYGLM_DISABLE_FAST_PATHS"])
def test_the_environment_variable_switches_accelerators_off(
    var: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(var, "1")
    assert find_accelerator(anyglm.get_backend("numpy"), _spec()) is None
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem("softmax", "float64")
    assert not _fit("softmax", X, Y, accelerate=True).accelerated


@pytest.mark.parametrize("kind", ["non-callable", "raising"])
def test_a_broken_accelerator_hook_costs_speed_not_the_fit(kind: str) -> None:
    def hook(backend: Any, spec: Any) -> Any:
        if kind == "raising":
            raise RuntimeError("accelerator lookup exploded")
        return "not an accelerator"

    plugin = _register(hook, "bad-accelerator")
    numpy = anyglm.get_backend("numpy")
    try:
        # The broken plugin is asked first (registered last) and skipped with a
        # warning that names it; NumPy's own answer (or the portable loop) serves.
        with pytest.warns(anyglm.PluginWarning, match="plugin 'bad-accelerator'"):
            find_accelerator(numpy, _spec("linear"))
        with pytest.warns(anyglm.PluginWarning):
            est = anyglm.LinearRegression(epochs=2, random_state=0)
            est.fit(np.eye(3), [1.0, 2.0, 3.0])
        assert np.all(np.isfinite(est.coef_))
        expected = TypeError if kind == "non-callable" else RuntimeError
        with pytest.raises(expected):
            find_accelerator(numpy, _spec("linear"), errors="raise")
        report = anyglm.doctor()["accelerators"]["numpy"]
        assert report and report[0].startswith(f"error: {expected.__name__}")
        plugin_state().strict = True  # what ANYGLM_STRICT_PLUGINS=1 sets
        try:
            with pytest.raises(expected):
                find_accelerator(numpy, _spec("linear"))
        finally:
            plugin_state().strict = False
    finally:
        plugin_state().pm.unregister(plugin)
    with pytest.raises(ValueError, match="errors must be"):
        find_accelerator(numpy, _spec("linear"), errors="ignore")


def test_import_anyglm_and_a_small_fit_do_not_import_numba() -> None:
    code = (
        "import sys, numpy as np, anyglm\n"
        "X = np.random.default_rng(0).normal(size=(50, 3)); y = (X[:, 0] > 0).astype(int)\n"
        "anyglm.LogisticRegression(epochs=2).fit(X, y)\n"
        "assert 'numba' not in sys.modules, 'numba imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_bad_threshold_is_a_clear_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "lots")
    with pytest.raises(ValueError, match="ANYGLM_NUMBA_MIN_ELEMENTS must be a whole number"):
        numpy_backend.min_elements_setting()
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "-3")
    with pytest.raises(ValueError, match="0 or more, got -3"):
        numpy_backend.min_elements_setting()
    details = anyglm.doctor()["backend_details"]["numpy"]["numba"]
    assert details["min_elements"].startswith("error:")
    from anyglm.cli import main

    assert main(["doctor"]) == 0
    line = [s for s in capsys.readouterr().out.splitlines() if "numba" in s][-1]
    assert "ANYGLM_NUMBA_MIN_ELEMENTS must be 0 or more, got -3" in line
    with pytest.raises(ValueError, match="min_elements must be 0 or more"):
        numpy_backend.NumbaAccelerator(_spec(), min_elements=-1)
    if HAS_NUMBA:  # a fit that would use the loop says what is wrong, blaming no plugin
        X, Y = _problem("softmax", "float64")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            with pytest.raises(ValueError, match="ANYGLM_NUMBA_MIN_ELEMENTS must be 0 or more"):
                _fit("softmax", X, Y, accelerate=True)


# -- numba's loop ---------------------------------------------------------------------------

needs_numba = pytest.mark.skipif(not HAS_NUMBA, reason="numba is not installed")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the compiled loop's runs, so a test can tell it ran."""
    from anyglm.backends import numba_sgd

    seen: list[int] = []
    real = numba_sgd.glm_epoch

    def counting(*args: Any) -> Any:
        seen.append(1)
        return real(*args)

    monkeypatch.setattr(numba_sgd, "glm_epoch", counting)
    return seen


@needs_numba
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffled", "in-order"])
def test_compiled_loop_matches_the_portable_loop(
    model: str,
    dtype: str,
    weighted: bool,
    shuffle: bool,
    calls: list[int],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem(model, dtype)
    weights = np.random.default_rng(1).uniform(0.2, 2.0, N).astype(dtype) if weighted else None
    fast = _fit(model, X, Y, accelerate=True, weights=weights, shuffle=shuffle)
    assert len(calls) == 3 and fast.accelerated  # one compiled run per epoch
    ref = _fit(model, X, Y, accelerate=False, weights=weights, shuffle=shuffle)
    rtol = 1e-4 if dtype == "float32" else 1e-11
    for got, want in ((fast.W, ref.W), (fast.b, ref.b)):
        assert got.dtype == want.dtype == np.dtype(dtype)
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol * np.max(np.abs(want)))
    np.testing.assert_allclose(fast.history["train_loss"], ref.history["train_loss"], rtol=rtol)


@needs_numba
def test_batches_larger_than_the_data_and_batches_of_one(
    calls: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem("softmax", "float64")
    for batch in (1, 7, 9, N + 50):
        fast = _fit("softmax", X, Y, accelerate=True, batch=batch, epochs=1, lr=0.01)
        ref = _fit("softmax", X, Y, accelerate=False, batch=batch, epochs=1, lr=0.01)
        np.testing.assert_allclose(fast.W, ref.W, rtol=1e-11, atol=1e-12)
    assert len(calls) == 4


@needs_numba
def test_small_blocks_run_the_portable_loop(calls: list[int]) -> None:
    X, Y = _problem("softmax", "float64")  # 2639 values, far below 2**20
    res = _fit("softmax", X, Y, accelerate=True)
    assert not res.accelerated and not calls
    np.testing.assert_array_equal(res.W, _fit("softmax", X, Y, accelerate=False).W)


@needs_numba
def test_inputs_stay_unchanged_and_column_major_input_is_copied_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem("softmax", "float64")
    XF = np.asfortranarray(X)
    for a in (X, XF, Y):
        a.setflags(write=False)
    by_row = _fit("softmax", X, Y, accelerate=True)
    by_col = _fit("softmax", XF, Y, accelerate=True)
    np.testing.assert_array_equal(by_row.W, by_col.W)
    assert XF.flags.f_contiguous and not XF.flags.writeable
    acc = numpy_backend.NumbaAccelerator(_spec(), min_elements=0)
    task = BlockTask(
        XF,
        Y,
        None,
        np.arange(N),
        16,
        np.zeros((D, 4)),
        np.zeros(4),
        {},
        0,
        Columns(0.1),
        np.array([0.1]),
        np.array([0.0]),
    )
    acc(task)
    copy = acc._row_major
    acc(task)  # the next block of the same array reuses the copy
    assert copy is not None and acc._row_major is copy and copy[1].flags.c_contiguous


@needs_numba
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_divergence_shows_in_the_same_epoch_as_the_portable_loop(
    model: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem(model, "float64")
    X = X * 1e3
    epochs = []
    for accelerate in (True, False):
        with pytest.raises(anyglm.DivergenceError) as info:
            _fit(model, X, Y, accelerate=accelerate, lr=1e6, epochs=30)
        epochs.append(info.value.epoch)
    assert epochs[0] == epochs[1]


@needs_numba
def test_float32_linear_diverges_in_the_same_epoch_as_the_portable_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Squared residuals above 3.4e38 are inf in float32: the compiled loop must not
    # compute them in float64 and so see the divergence later than NumPy does.
    X = np.array([[3.0], [0.1], [0.2], [-0.1]], dtype=np.float32)
    y = np.array([1.0, 0.0, 0.5, 0.2], dtype=np.float32)
    epochs = []
    for var, value in (("ANYGLM_NUMBA_MIN_ELEMENTS", "0"), ("ANYGLM_DISABLE_ACCELERATORS", "1")):
        monkeypatch.setenv(var, value)
        est = anyglm.LinearRegression(
            epochs=3000,
            batch_size=4,
            learning_rate=0.86,
            alpha=0.0,
            shuffle=False,
            dtype="float32",
            average=False,
            n_iter_no_change=None,
        )
        with pytest.raises(anyglm.DivergenceError) as info:
            est.fit(X, y)
        epochs.append(info.value.epoch)
    assert epochs[0] == epochs[1]


@needs_numba
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


@needs_numba
def test_doctor_reports_the_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    report = anyglm.doctor()
    assert report["accelerators"]["numpy"] == ["linear", "logistic", "softmax"]
    numba = report["backend_details"]["numpy"]["numba"]
    assert numba["enabled"] and numba["version"] and numba["min_elements"] == 1 << 20
    monkeypatch.setenv("ANYGLM_DISABLE_NUMBA", "1")
    report = anyglm.doctor()
    assert report["accelerators"]["numpy"] == []
    assert not report["backend_details"]["numpy"]["numba"]["enabled"]


@needs_numba
def test_a_numba_that_fails_to_load_warns_once_and_the_portable_loop_trains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import anyglm.backends

    monkeypatch.setitem(sys.modules, "anyglm.backends.numba_sgd", None)  # import fails
    if hasattr(anyglm.backends, "numba_sgd"):
        monkeypatch.delattr(anyglm.backends, "numba_sgd")
    monkeypatch.setattr(numpy_backend, "_import_error", None)
    monkeypatch.setenv("ANYGLM_NUMBA_MIN_ELEMENTS", "0")
    X, Y = _problem("softmax", "float64")
    with pytest.warns(RuntimeWarning, match="could not load its numba loop.*ANYGLM_DISABLE_NUMBA"):
        got = _fit("softmax", X, Y, accelerate=True)
    assert not got.accelerated
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning; numba is now reported off
        again = _fit("softmax", X, Y, accelerate=True)
    assert not anyglm.doctor()["backend_details"]["numpy"]["numba"]["enabled"]
    want = _fit("softmax", X, Y, accelerate=False)
    np.testing.assert_array_equal(got.W, want.W)
    np.testing.assert_array_equal(again.W, want.W)
