"""The results derived on the theory page (docs/theory.md), reproduced with anyglm."""

from __future__ import annotations

import math

import anyglm
import array_api_strict
import numpy as np
import pytest
from anyglm.glm import loss_and_gradient

# The gradient checks run in float64: backends without it here (JAX without 64-bit mode)
# are left out.
AVAILABLE = [
    b["name"] for b in anyglm.list_backends() if b["available"] and "float64" in b["dtypes"]
]
BACKENDS = ["numpy", "array_api_strict"] + [
    n for n in AVAILABLE if n not in ("numpy", "array_api_strict")
]


#: The derivations are about the last iterate of (stochastic) gradient descent run for
#: exactly the epochs asked: no averaging, no early stopping.
PLAIN_GD = {"average": False, "n_iter_no_change": None}


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def test_reference_backends_are_available() -> None:
    assert "numpy" in AVAILABLE
    assert "array_api_strict" in AVAILABLE


# -- section 2: linear regression on XOR -----------------------------------------------------------


@pytest.mark.parametrize("backend", ["numpy", "array_api_strict"])
def test_xor_linear_regression_reaches_w0_b_half(backend: str) -> None:
    X, y = anyglm.datasets.load_dataset("xor")
    assert X.tolist() == [[0, 0], [0, 1], [1, 0], [1, 1]]
    assert y.tolist() == [0, 1, 1, 0]
    if backend == "array_api_strict":
        X, y = array_api_strict.asarray(X), array_api_strict.asarray(y)
    reg = anyglm.LinearRegression(
        batch_size=4, learning_rate=0.5, epochs=500, alpha=0.0, random_state=0, **PLAIN_GD
    ).fit(X, y)
    assert reg.backend_ == backend
    be = anyglm.get_backend(backend)
    coef, intercept = be.to_numpy(reg.coef_), be.to_numpy(reg.intercept_)
    assert coef.shape == (2,)
    np.testing.assert_allclose(coef, [0.0, 0.0], rtol=0, atol=1e-6)
    np.testing.assert_allclose(float(intercept), 0.5, rtol=0, atol=1e-6)
    # the best linear model predicts 0.5 everywhere; its loss (1/2n) sum r^2 is 1/8
    np.testing.assert_allclose(be.to_numpy(reg.predict(X)), 0.5, rtol=0, atol=1e-6)
    np.testing.assert_allclose(reg.history_["train_loss"][-1], 0.125, rtol=1e-9)


def test_xor_normal_equations_solution_has_zero_gradient() -> None:
    X, y = anyglm.datasets.load_dataset("xor")
    xp = anyglm.get_backend("numpy").xp
    model = anyglm.get_model("linear")
    loss, gW, gb = loss_and_gradient(
        model, xp, X, y.reshape(-1, 1), np.zeros((2, 1)), np.full(1, 0.5)
    )
    assert gW.tolist() == [[0.0], [0.0]] and gb.tolist() == [0.0]
    assert float(loss[0]) == 0.125
    # and a different point does not have a zero gradient: (1/n) X^T (y_hat - y), mean residual
    W = np.array([[0.3], [-0.2]])
    b = np.array([0.1])
    _, gW, gb = loss_and_gradient(model, xp, X, y.reshape(-1, 1), W, b)
    r = X @ W[:, 0] + b[0] - y
    np.testing.assert_allclose(gW[:, 0], X.T @ r / 4, rtol=1e-12)
    np.testing.assert_allclose(gb[0], r.mean(), rtol=1e-12)


# -- section 1: logistic regression on all-positive labels -----------------------------------------


def _all_positive() -> tuple[np.ndarray, np.ndarray]:
    X, y = anyglm.datasets.load_dataset("all-positive")
    assert set(y.tolist()) == {1}
    return X, y


def _fit_all_positive(epochs: int, alpha: float) -> anyglm.LogisticRegression:
    X, y = _all_positive()
    return anyglm.LogisticRegression(
        batch_size=X.shape[0],
        learning_rate=0.5,
        epochs=epochs,
        alpha=alpha,
        random_state=0,
        **PLAIN_GD,
    ).fit(X, y, classes=[0, 1])


def test_all_positive_labels_need_declared_classes() -> None:
    X, y = _all_positive()
    with pytest.raises(ValueError, match="single class"):
        anyglm.LogisticRegression(epochs=1).fit(X, y)


def test_all_positive_intercept_grows_with_a_shrinking_never_zero_gradient() -> None:
    X, _ = _all_positive()
    xp = anyglm.get_backend("numpy").xp
    model = anyglm.get_model("logistic")
    intercepts, grads = [], []
    for k in range(1, 31):  # the state after epoch k, one fit per k with the same seed
        clf = _fit_all_positive(k, alpha=0.0)
        assert clf.n_epochs_ == k
        w, b = np.asarray(clf.coef_)[0], float(clf.intercept_[0])
        assert np.asarray(clf.coef_).shape == (1, 2)  # scikit-learn's binary shape
        z = X @ w + b
        g_b = float(np.mean(sigmoid(z) - 1.0))  # theory.md: grad_b = mean(sigma(z) - 1)
        # the library's gradient agrees with the formula
        _, _, gb = loss_and_gradient(
            model, xp, X, np.ones((X.shape[0], 1)), w.reshape(2, 1), np.array([b])
        )
        np.testing.assert_allclose(float(gb[0]), g_b, rtol=1e-10)
        intercepts.append(b)
        grads.append(g_b)
    intercepts_arr, grads_arr = np.array(intercepts), np.array(grads)
    assert intercepts_arr[0] > 0
    assert np.all(np.diff(intercepts_arr) > 0), "b must increase every epoch"
    assert np.all(grads_arr < 0), "the gradient of b is negative, never zero"
    assert np.all(np.diff(np.abs(grads_arr)) < 0), "the gradient shrinks in magnitude"
    assert abs(grads_arr[-1]) < 0.2 * abs(grads_arr[0])
    # the training loss converges toward 0, strictly decreasing
    loss = np.array(clf.history_["train_loss"])
    assert loss[0] == pytest.approx(math.log(2), rel=0.2)
    assert np.all(np.diff(loss) < 0)


def test_all_positive_intercept_grows_like_a_logarithm() -> None:
    # b_t ~ log(eps * t): ten times more epochs add about log(10) to b
    b50 = float(_fit_all_positive(50, alpha=0.0).intercept_[0])
    b500 = float(_fit_all_positive(500, alpha=0.0).intercept_[0])
    assert b500 > b50
    assert abs((b500 - b50) - math.log(10)) < 0.5


def test_all_positive_with_l2_keeps_the_weights_bounded() -> None:
    X, _ = _all_positive()
    alpha = 0.1
    a, b = _fit_all_positive(50, alpha=alpha), _fit_all_positive(500, alpha=alpha)
    n50 = float(np.linalg.norm(np.asarray(a.coef_)))
    n500 = float(np.linalg.norm(np.asarray(b.coef_)))
    # |grad_w| <= max ||x_i||, so each step keeps ||w|| <= max ||x_i|| / alpha
    bound = float(np.linalg.norm(X, axis=1).max()) / alpha
    assert n50 <= bound and n500 <= bound
    assert n500 <= 1.5 * n50  # no growth between 50 and 500 epochs
    # the unpenalised bias still diverges
    assert float(b.intercept_[0]) > float(a.intercept_[0]) + 1.0


# -- section 3: the softmax gradient ---------------------------------------------------------------


def _softmax_problem(seed: int = 0):
    rng = np.random.default_rng(seed)
    n, d, c = 7, 4, 3
    X = rng.normal(size=(n, d))
    labels = rng.integers(0, c, size=n)
    Y = np.eye(c)[labels]
    W = rng.normal(size=(d, c))
    b = rng.normal(size=c)
    return X, Y, W, b


def _np_softmax(Z: np.ndarray) -> np.ndarray:
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _np_cross_entropy(X, Y, W, b) -> float:
    Z = X @ W + b
    m = Z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(Z - m).sum(axis=1, keepdims=True)))[:, 0]
    return float(np.mean(lse - (Z * Y).sum(axis=1)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_gradient_matches_formula_and_finite_differences(backend: str) -> None:
    be = anyglm.get_backend(backend)
    xp = be.xp
    model = anyglm.get_model("softmax")
    X, Y, W, b = _softmax_problem()
    n = X.shape[0]

    def on(a: np.ndarray):
        return be.from_numpy(a, dtype="float64")

    def loss_at(W_: np.ndarray, b_: np.ndarray) -> float:
        loss, _, _ = loss_and_gradient(model, xp, on(X), on(Y), on(W_), on(b_))
        return float(be.to_numpy(loss)[0])

    loss, gW, gb = loss_and_gradient(model, xp, on(X), on(Y), on(W), on(b))
    loss, gW, gb = be.to_numpy(loss), be.to_numpy(gW), be.to_numpy(gb)
    assert gW.dtype == np.float64 and gW.shape == W.shape and gb.shape == b.shape

    # the formula derived in docs/theory.md: X^T (softmax(Z) - Y) / n and the row mean
    P = _np_softmax(X @ W + b)
    np.testing.assert_allclose(gW, X.T @ (P - Y) / n, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gb, (P - Y).mean(axis=0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(loss[0], _np_cross_entropy(X, Y, W, b), rtol=1e-12)

    # central finite differences of the library's own loss
    h = 1e-6
    fd_W = np.zeros_like(W)
    for i in range(W.shape[0]):
        for j in range(W.shape[1]):
            E = np.zeros_like(W)
            E[i, j] = h
            fd_W[i, j] = (loss_at(W + E, b) - loss_at(W - E, b)) / (2 * h)
    fd_b = np.zeros_like(b)
    for j in range(b.shape[0]):
        e = np.zeros_like(b)
        e[j] = h
        fd_b[j] = (loss_at(W, b + e) - loss_at(W, b - e)) / (2 * h)
    np.testing.assert_allclose(gW, fd_W, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(gb, fd_b, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("backend", BACKENDS)
def test_softmax_gradient_with_stacked_configurations(backend: str) -> None:
    # K configurations side by side give each configuration's own loss and gradient
    be = anyglm.get_backend(backend)
    xp = be.xp
    model = anyglm.get_model("softmax")
    X, Y, W1, b1 = _softmax_problem(0)
    _, _, W2, b2 = _softmax_problem(1)
    W = np.concatenate([W1, W2], axis=1)
    b = np.concatenate([b1, b2])

    def on(a: np.ndarray):
        return be.from_numpy(a, dtype="float64")

    loss, gW, gb = (
        be.to_numpy(a)
        for a in loss_and_gradient(model, xp, on(X), on(Y), on(W), on(b), n_configs=2)
    )
    assert loss.shape == (2,)
    n = X.shape[0]
    for k, (Wk, bk) in enumerate([(W1, b1), (W2, b2)]):
        cols = slice(3 * k, 3 * k + 3)
        P = _np_softmax(X @ Wk + bk)
        np.testing.assert_allclose(loss[k], _np_cross_entropy(X, Y, Wk, bk), rtol=1e-12)
        np.testing.assert_allclose(gW[:, cols], X.T @ (P - Y) / n, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gb[cols], (P - Y).mean(axis=0), rtol=1e-12, atol=1e-14)
