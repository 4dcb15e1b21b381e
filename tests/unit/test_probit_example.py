"""The probit example plugin (docs/examples/anyglm-probit): accurate and finite in the tails.

The conformance suite checks it on every backend once it is installed (CI does); these
tests load it from the source tree, so they run without installing it.
"""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path
from types import ModuleType
from typing import Any

import anyglm
import array_api_compat.numpy as xp
import numpy as np
import pytest

sc = pytest.importorskip("scipy.special")

SOURCE = (
    Path(__file__).resolve().parents[2]
    / "docs"
    / "examples"
    / "anyglm-probit"
    / "src"
    / "anyglm_probit"
    / "__init__.py"
)


@pytest.fixture(scope="module")
def plugin() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anyglm_probit_from_source", SOURCE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def probit(plugin: ModuleType) -> Any:
    return plugin.Probit()


def _reference(Z: np.ndarray, Y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """SciPy in float64: loss -log Phi(s z) and its derivative -s phi(z) / Phi(s z).

    phi(z) / Phi(s z) is SciPy's sqrt(2/pi) / erfcx(-s z / sqrt 2); exp(log phi - log Phi)
    would lose ten digits to cancellation at |z| = 1e3.
    """
    s = 2.0 * Y - 1.0
    mills = np.sqrt(2 / np.pi) / sc.erfcx(-s * Z / np.sqrt(2))
    return -sc.log_ndtr(s * Z)[..., 0], -s * mills


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_loss_and_derivative_are_finite_and_accurate_for_abs_z_up_to_1e3(
    probit: Any, dtype: str
) -> None:
    z = np.linspace(-1e3, 1e3, 4001)
    Z = np.concatenate([z, z]).reshape(-1, 1)
    Y = np.concatenate([np.ones_like(z), np.zeros_like(z)]).reshape(-1, 1)
    loss = probit.loss(xp, Z.astype(dtype), Y.astype(dtype))
    dloss = probit.dloss(xp, Z.astype(dtype), Y.astype(dtype))
    assert loss.dtype == dtype and dloss.dtype == dtype
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(dloss))
    ref_loss, ref_dloss = _reference(Z, Y)
    rtol = 1e-12 if dtype == "float64" else 1e-4
    tiny = float(np.finfo(dtype).tiny)
    np.testing.assert_allclose(loss, ref_loss, rtol=rtol, atol=tiny)
    np.testing.assert_allclose(dloss, ref_dloss, rtol=rtol, atol=tiny)
    # A wrong label far in the tail costs about z^2/2 and pulls with slope about |z|.
    assert float(loss[0]) == pytest.approx(5.0000782e5, rel=1e-6)
    assert float(dloss[0, 0]) == pytest.approx(-1000.0, rel=1e-5)


def test_derivative_matches_finite_differences(probit: Any) -> None:
    rng = np.random.default_rng(0)
    Z = rng.normal(scale=3.0, size=(50, 1))
    Y = (rng.uniform(size=(50, 1)) < 0.5).astype(float)
    h = 1e-6
    fd = (probit.loss(xp, Z + h, Y) - probit.loss(xp, Z - h, Y)) / (2 * h)
    np.testing.assert_allclose(probit.dloss(xp, Z, Y)[:, 0], fd, rtol=1e-7, atol=1e-9)


def test_inverse_link_is_the_normal_cdf(probit: Any) -> None:
    Z = np.linspace(-40.0, 10.0, 501).reshape(-1, 1)
    # Below the smallest normal float SciPy's ndtr flushes to 0 (z < -38); ours does not.
    tiny = float(np.finfo(np.float64).tiny)
    np.testing.assert_allclose(probit.inverse_link(xp, Z), sc.ndtr(Z), rtol=1e-13, atol=tiny)


def test_the_hook_registers_a_binary_classifier(plugin: ModuleType) -> None:
    registered: list[Any] = []
    plugin.anyglm_register_models(register=registered.append)
    (model,) = registered
    assert isinstance(model, anyglm.Model)
    assert (model.name, model.task, model.binary) == ("probit", "classification", True)


def test_probit_trains_to_the_logistic_models_accuracy(
    probit: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Registered under its own key for this test only (the installed plugin may be absent).
    state = anyglm.registry.plugin_state()
    probit = copy.copy(probit)
    probit.name = "probit-from-source"  # the registry's key is always the model's name
    monkeypatch.setitem(state.models.items, "probit-from-source", probit)
    monkeypatch.setitem(state.models.origins, "probit-from-source", "the source tree")
    X, y = anyglm.datasets.load_dataset("breast_cancer")
    X_tr, X_te, y_tr, y_te = anyglm.datasets.train_test_split(X, y, random_state=0)
    X_tr, X_te = anyglm.datasets.standardize(X_tr, X_te)
    est = anyglm.Estimator("probit-from-source", learning_rate=0.05, epochs=20, random_state=0)
    logistic = anyglm.LogisticRegression(learning_rate=0.05, epochs=20, random_state=0)
    acc = est.fit(X_tr, y_tr).score(X_te, y_te)
    assert acc >= 0.95
    assert acc >= logistic.fit(X_tr, y_tr).score(X_te, y_te) - 0.02
