"""Backend fast paths: finding kernels, switching them off, and what the trainer does with them."""

from __future__ import annotations

import types
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.data import ArraySource
from anyglm.fastpath import EpochTask, fast_paths_disabled, find_epoch_kernel
from anyglm.registry import plugin_state
from anyglm.trainer import train


@pytest.fixture
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANYGLM_DISABLE_FAST_PATHS", raising=False)


def _train(model: str, fast: bool, dtype: str = "float64") -> Any:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(203, 5)).astype(dtype)
    if model == "softmax":
        Y = np.eye(3, dtype=dtype)[rng.integers(0, 3, 203)]
    elif model == "logistic":
        Y = rng.integers(0, 2, (203, 1)).astype(dtype)
    else:
        Y = (X @ rng.normal(size=(5, 1))).astype(dtype)
    be = anyglm.get_backend("numpy")
    c = Y.shape[1]
    return train(
        anyglm.get_model(model),
        be,
        ArraySource(be, X, Y, rng.uniform(0.5, 1.5, 203).astype(dtype)),
        W=np.zeros((5, 2 * c), dtype=dtype),
        b=np.zeros(2 * c, dtype=dtype),
        n_configs=2,
        learning_rate=[0.1, 0.01],
        alpha=[1e-3, 0.0],
        epochs=4,
        batch_size=16,
        shuffle=True,
        rng=np.random.default_rng(3),
        dtype=dtype,
        device="cpu",
        fast_path=fast,
    )


@pytest.mark.usefixtures("no_env")
def test_numpy_offers_a_kernel_for_every_model_and_strict_none() -> None:
    numpy, strict = anyglm.get_backend("numpy"), anyglm.get_backend("array_api_strict")
    for name in ("linear", "logistic", "softmax"):
        assert callable(find_epoch_kernel(numpy, anyglm.get_model(name)))
        assert find_epoch_kernel(strict, anyglm.get_model(name)) is None


@pytest.mark.parametrize("value", ["1", "true", "yes"])
def test_the_environment_variable_switches_kernels_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("ANYGLM_DISABLE_FAST_PATHS", value)
    assert fast_paths_disabled()
    model = anyglm.get_model("softmax")
    assert find_epoch_kernel(anyglm.get_backend("numpy"), model) is None
    # Training then takes the portable loop: bitwise what fast_path=False gives.
    a, b = _train("softmax", True), _train("softmax", False)
    np.testing.assert_array_equal(a.W, b.W)
    assert anyglm.doctor()["fast_paths"]["numpy"] == []


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernel_and_portable_loop_train_alike(model: str, dtype: str) -> None:
    fast, portable = _train(model, True, dtype), _train(model, False, dtype)
    tol = 1e-12 if dtype == "float64" else 1e-5
    scale = np.max(np.abs(portable.W))
    assert scale > 0.01  # trained
    assert np.max(np.abs(fast.W - portable.W)) <= tol * scale
    assert np.max(np.abs(fast.b - portable.b)) <= tol * max(np.max(np.abs(portable.b)), 1.0)
    np.testing.assert_allclose(
        fast.history["train_loss"], portable.history["train_loss"], rtol=tol * 10
    )
    assert fast.W.dtype == portable.W.dtype == np.dtype(dtype)


@pytest.mark.usefixtures("no_env")
def test_the_kernel_does_not_touch_the_callers_arrays() -> None:
    be = anyglm.get_backend("numpy")
    kernel = find_epoch_kernel(be, anyglm.get_model("softmax"))
    assert kernel is not None
    X = np.arange(24.0).reshape(8, 3) / 10
    Y = np.eye(2)[[0, 1, 1, 0, 1, 0, 0, 1]]
    W, b = np.full((3, 2), 0.5), np.full(2, 0.1)
    copies = [a.copy() for a in (X, Y, W, b)]
    for arr in (X, Y, W, b):
        arr.flags.writeable = False  # an in-place write would raise
    task = EpochTask(X, Y, None, np.arange(8)[::-1].copy(), 3, W, b, 0.1, 0.01, 1)
    W_new, _unused, total = kernel(task)
    for arr, before in zip((X, Y, W, b), copies, strict=True):
        np.testing.assert_array_equal(arr, before)
    assert not np.array_equal(W_new, W) and total.shape == (1,)


def test_divergence_is_caught_in_the_same_epoch_on_both_paths(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    X = np.random.default_rng(0).normal(size=(64, 3)) * 1e3
    epochs = []
    for disabled in ("", "1"):
        monkeypatch.setenv("ANYGLM_DISABLE_FAST_PATHS", disabled)
        est = anyglm.LinearRegression(learning_rate=10.0, epochs=30, random_state=0)
        with pytest.raises(anyglm.DivergenceError, match="diverged in epoch") as info:
            est.fit(X, X[:, 0])
        epochs.append(info.value.epoch)
        W_last, _ = info.value.last_finite  # type: ignore[attr-defined]
        assert np.all(np.isfinite(W_last))
    assert epochs[0] == epochs[1] > 1


def _register(hook: Any, name: str) -> types.ModuleType:
    plugin = types.ModuleType(name)
    plugin.anyglm_epoch_kernel = anyglm.hookimpl(hook)  # type: ignore[attr-defined]
    plugin_state().pm.register(plugin, name=name)
    return plugin


@pytest.mark.usefixtures("no_env")
@pytest.mark.parametrize("kind", ["non-callable", "raising"])
def test_a_broken_kernel_hook_costs_speed_not_the_fit(
    kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANYGLM_STRICT_PLUGINS", raising=False)

    def hook(backend: Any, model: Any) -> Any:
        if kind == "raising":
            raise RuntimeError("kernel lookup exploded")
        return "not a kernel"

    plugin = _register(hook, "bad-kernel")
    numpy, linear = anyglm.get_backend("numpy"), anyglm.get_model("linear")
    try:
        # The broken plugin is asked first (registered last) and skipped with a
        # warning that names it; NumPy's own kernel still serves.
        with pytest.warns(anyglm.PluginWarning, match="plugin 'bad-kernel'"):
            kernel = find_epoch_kernel(numpy, linear)
        assert callable(kernel)
        with pytest.warns(anyglm.PluginWarning):
            est = anyglm.LinearRegression(epochs=2, random_state=0)
            est.fit(np.eye(3), [1.0, 2.0, 3.0])
        assert np.all(np.isfinite(est.coef_))
        expected = TypeError if kind == "non-callable" else RuntimeError
        with pytest.raises(expected):
            find_epoch_kernel(numpy, linear, errors="raise")
        report = anyglm.doctor()["fast_paths"]["numpy"]
        assert report and report[0].startswith(f"error: {expected.__name__}")
        plugin_state().strict = True  # what ANYGLM_STRICT_PLUGINS=1 sets
        try:
            with pytest.raises(expected):
                find_epoch_kernel(numpy, linear)
        finally:
            plugin_state().strict = False
    finally:
        plugin_state().pm.unregister(plugin)
    assert callable(find_epoch_kernel(numpy, linear))
    with pytest.raises(ValueError, match="errors must be"):
        find_epoch_kernel(numpy, linear, errors="ignore")


@pytest.mark.usefixtures("no_env")
def test_an_array_source_subclass_keeps_its_own_minibatches() -> None:
    class Noisy(ArraySource):
        def epoch(self, rng: np.random.Generator, batch_size: int, shuffle: bool) -> Any:
            for Xb, Yb, wb in super().epoch(rng, batch_size, shuffle):
                yield Xb + 0.5 * rng.normal(size=Xb.shape), Yb, wb

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    Y = X @ np.ones((3, 1))
    be = anyglm.get_backend("numpy")
    results = []
    for fast in (True, False):
        res = train(
            anyglm.get_model("linear"), be, Noisy(be, X, Y), W=np.zeros((3, 1)),
            b=np.zeros(1), n_configs=1, learning_rate=0.05, alpha=0.0, epochs=5,
            batch_size=10, shuffle=True, rng=np.random.default_rng(1), dtype="float64",
            device="cpu", fast_path=fast,
        )  # fmt: skip
        results.append(res.W)
    np.testing.assert_array_equal(results[0], results[1])


@pytest.mark.usefixtures("no_env")
def test_a_numpy_backend_subclass_gets_no_numpy_kernel() -> None:
    from anyglm.backends.numpy import NumpyBackend

    class Other(NumpyBackend):
        name = "other-numpy"

    assert find_epoch_kernel(Other(), anyglm.get_model("linear")) is None
    assert callable(find_epoch_kernel(anyglm.get_backend("numpy"), anyglm.get_model("linear")))


@pytest.mark.usefixtures("no_env")
def test_column_major_features_are_gathered_from_one_row_major_copy() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 40))
    y = rng.integers(0, 3, 300)
    XF = np.asfortranarray(X)
    a = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(X, y)
    b = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(XF, y)
    np.testing.assert_array_equal(a.coef_, b.coef_)
    assert XF.flags.f_contiguous  # the caller's array is left as it was
    from anyglm.backends.numpy_epoch import NumpyEpochKernel

    kernel = NumpyEpochKernel(anyglm.get_model("softmax"), anyglm.get_backend("numpy").xp)
    Y = np.eye(3)[y]
    order = rng.permutation(300)
    task = EpochTask(XF, Y, None, order, 32, np.zeros((40, 3)), np.zeros(3), 0.1, 0.0, 1)
    kernel(task)
    kernel(task)  # the second epoch reuses the copy
    copies = list(kernel._row_major.values())
    assert len(copies) == 1 and copies[0][0] is XF and copies[0][1].flags.c_contiguous
