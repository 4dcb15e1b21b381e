"""Numerical stability of the built-in models at extreme logits (float32, +-1000)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.glm import loss_and_gradient

BACKENDS = ["numpy", "array_api_strict"]


def no_warnings(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` with every warning turned into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def host(backend: str, a: Any) -> np.ndarray:
    return anyglm.get_backend(backend).to_numpy(a)


def dev(backend: str, a: Any, dtype: str = "float32") -> Any:
    return anyglm.get_backend(backend).from_numpy(np.asarray(a, dtype=np.float64), dtype=dtype)


def logsumexp64(Z: np.ndarray) -> np.ndarray:
    Z = Z.astype(np.float64)
    m = Z.max(axis=-1, keepdims=True)
    return (m + np.log(np.exp(Z - m).sum(axis=-1, keepdims=True)))[..., 0]


# -- the models' own functions ---------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_sigmoid_saturates_exactly_without_warnings(backend: str, dtype: str) -> None:
    xp = anyglm.get_backend(backend).xp
    model = anyglm.get_model("logistic")
    Z = dev(backend, [[1000.0], [-1000.0], [0.0], [88.0], [-88.0]], dtype)
    P = host(backend, no_warnings(lambda: model.inverse_link(xp, Z)))
    assert P.dtype == np.dtype(dtype)
    assert P[0, 0] == 1.0
    assert P[1, 0] == 0.0
    assert P[2, 0] == 0.5
    assert np.all(np.isfinite(P)) and np.all((P >= 0) & (P <= 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_logistic_loss_and_dloss_finite_at_extreme_logits(backend: str) -> None:
    xp = anyglm.get_backend(backend).xp
    model = anyglm.get_model("logistic")
    z = np.array([1000.0, 1000.0, -1000.0, -1000.0, 0.0, 30.0])
    y = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 0.0])
    Z, Y = dev(backend, z[:, None]), dev(backend, y[:, None])
    loss = host(backend, no_warnings(lambda: model.loss(xp, Z, Y)))
    grad = host(backend, no_warnings(lambda: model.dloss(xp, Z, Y)))
    assert loss.shape == (6,) and grad.shape == (6, 1)
    assert loss.dtype == np.float32 and grad.dtype == np.float32
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad))
    # reference in float64: softplus(z) - y z
    ref = np.logaddexp(0.0, z) - y * z
    np.testing.assert_allclose(loss, ref, rtol=1e-6, atol=1e-6)
    assert loss[0] == 0.0 and loss[3] == 0.0  # confident and right: no loss
    assert loss[1] == 1000.0 and loss[2] == 1000.0  # confident and wrong: |z|
    np.testing.assert_array_equal(grad[:4, 0], [0.0, 1.0, -1.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_loss_matches_float64_logsumexp(backend: str) -> None:
    xp = anyglm.get_backend(backend).xp
    model = anyglm.get_model("softmax")
    z = np.array(
        [
            [1000.0, -1000.0, 0.0],
            [1000.0, -1000.0, 0.0],
            [-1000.0, -1000.0, -1000.0],
            [1000.0, 1000.0, 1000.0],
            [1000.0, 999.0, -1000.0],
            [0.5, -0.25, 2.0],
        ]
    )
    labels = np.array([0, 1, 2, 0, 1, 2])
    y = np.eye(3)[labels]
    Z, Y = dev(backend, z), dev(backend, y)
    loss = host(backend, no_warnings(lambda: model.loss(xp, Z, Y)))
    grad = host(backend, no_warnings(lambda: model.dloss(xp, Z, Y)))
    probs = host(backend, no_warnings(lambda: model.inverse_link(xp, Z)))
    assert loss.dtype == np.float32 and loss.shape == (6,)
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(grad)) and np.all(np.isfinite(probs))
    ref = logsumexp64(z) - z[np.arange(6), labels]
    np.testing.assert_allclose(loss, ref, rtol=1e-6, atol=1e-6)
    assert loss[0] == 0.0 and loss[1] == 2000.0
    np.testing.assert_allclose(loss[2:4], np.log(3.0), rtol=1e-6)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    # dloss = softmax(z) - y, with exact saturation
    np.testing.assert_array_equal(grad[0], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(grad[1], [1.0, -1.0, 0.0])


@pytest.mark.parametrize("backend", BACKENDS)
def test_linear_loss_finite_at_large_predictions(backend: str) -> None:
    xp = anyglm.get_backend(backend).xp
    model = anyglm.get_model("linear")
    z = np.array([[1000.0], [-1000.0]])
    y = np.array([[-1000.0], [1000.0]])
    loss = host(backend, no_warnings(lambda: model.loss(xp, dev(backend, z), dev(backend, y))))
    grad = host(backend, no_warnings(lambda: model.dloss(xp, dev(backend, z), dev(backend, y))))
    assert loss.dtype == np.float32
    np.testing.assert_array_equal(loss, [2.0e6, 2.0e6])
    np.testing.assert_array_equal(grad[:, 0], [2000.0, -2000.0])


# -- through loss_and_gradient ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["logistic", "softmax", "linear"])
@pytest.mark.parametrize("backend", BACKENDS)
def test_loss_and_gradient_finite_at_logits_1000(backend: str, name: str) -> None:
    be = anyglm.get_backend(backend)
    model = anyglm.get_model(name)
    c = 3 if name == "softmax" else 1
    # X @ W gives logits of exactly +-1000 (and 0 for the other classes)
    X = np.array([[1.0], [-1.0], [1.0], [-1.0]])
    W = np.zeros((1, c))
    W[0, 0] = 1000.0
    b = np.zeros(c)
    if name == "softmax":
        Y = np.eye(3)[[0, 0, 1, 1]]
    elif name == "logistic":
        Y = np.array([[1.0], [1.0], [0.0], [0.0]])
    else:
        Y = np.array([[0.0], [0.0], [1.0], [1.0]])
    loss, gW, gb = no_warnings(
        lambda: loss_and_gradient(
            model, be.xp, dev(backend, X), dev(backend, Y), dev(backend, W), dev(backend, b)
        )
    )
    loss, gW, gb = host(backend, loss), host(backend, gW), host(backend, gb)
    assert loss.dtype == gW.dtype == gb.dtype == np.float32
    assert np.all(np.isfinite(loss)) and np.all(np.isfinite(gW)) and np.all(np.isfinite(gb))
    # float64 reference of the same mean loss and gradient
    Z = X @ W + b
    if name == "softmax":
        rows = logsumexp64(Z) - (Z * Y).sum(axis=1)
        E = np.exp(Z - Z.max(axis=1, keepdims=True))
        dZ = E / E.sum(axis=1, keepdims=True) - Y
    elif name == "logistic":
        rows = (np.logaddexp(0.0, Z) - Y * Z)[:, 0]
        dZ = np.exp(-np.logaddexp(0.0, -Z)) - Y
    else:
        rows = 0.5 * ((Z - Y) ** 2)[:, 0]
        dZ = Z - Y
    n = X.shape[0]
    np.testing.assert_allclose(loss[0], rows.mean(), rtol=1e-6)
    np.testing.assert_allclose(gW, X.T @ dZ / n, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(gb, dZ.mean(axis=0), rtol=1e-6, atol=1e-6)


def test_float32_training_with_huge_logits_stays_finite() -> None:
    # unscaled inputs and a large step drive the logits far past +-1000 in float32;
    # the stable loss keeps every epoch's loss and the parameters finite.
    rng = np.random.default_rng(0)
    X = (rng.normal(size=(64, 3)) * 1000.0).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    clf = anyglm.LogisticRegression(
        learning_rate=1.0, epochs=5, random_state=0, n_iter_no_change=None, average=False
    )
    no_warnings(lambda: clf.fit(X, y))
    assert np.all(np.isfinite(clf.history_["train_loss"]))
    coef = np.asarray(clf.coef_)
    assert coef.dtype == np.float32
    assert np.all(np.isfinite(coef)) and np.all(np.isfinite(np.asarray(clf.intercept_)))
    assert float(np.abs(X @ coef.T).max()) > 1000.0  # the logits really are extreme
    assert clf.score(X, y) > 0.9
