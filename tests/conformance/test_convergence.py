"""Convergence of the built-in models to known answers, on every backend case.

The answers are derived in the theory page (docs/theory.md).

* Linear regression on XOR (Goodfellow et al., section 6.1) reaches the
  solution of the normal equations, ``w = (0, 0)``, ``b = 1/2``, to 1e-10 in
  float64 and 1e-5 in float32, and predicts 1/2 everywhere.
* Logistic regression on labels that are all positive (declared classes
  ``[0, 1]``), without penalty, by full-batch gradient descent: the intercept
  increases from checkpoint to checkpoint and the gradient shrinks but never
  reaches zero. With an L2 penalty ``alpha`` the weights stay within the bound
  ``sqrt(2 log 2 / alpha)`` that a decreasing objective implies, while the
  unpenalised intercept still grows.
* Softmax regression recovers a planted model: on noiseless data labelled by
  the argmax of a random linear model it agrees with that model on at least
  95% of fresh points.

These tests only run for the built-in models (``anyglm_models`` marker), so
``--anyglm-model`` naming a third-party model deselects them. Third parties run
the whole suite with ``pytest --pyargs anyglm.conformance --anyglm-backend mybackend``.
"""

from __future__ import annotations

import itertools
import math

import anyglm
import numpy as np
import pytest
from anyglm.datasets import load_dataset

from ._support import describe, index_dtype, numpy_reference
from .plugin import BackendCase

pytestmark = pytest.mark.anyglm_conformance

#: The textbook algorithm these answers are about: the last iterate of SGD (no
#: averaging), for exactly the epochs asked (no early stopping).
PLAIN_SGD = {"average": False, "n_iter_no_change": None}

#: Absolute tolerance on the XOR solution, per dtype. Full-batch gradient descent with
#: learning rate 1/2 contracts the error by 1 - 0.157 / 2 per epoch (0.157: the smallest
#: eigenvalue of the Hessian), so 400 epochs leave about 1e-14.
XOR_TOLERANCE = {"float64": 1e-10, "float32": 1e-5}


@pytest.mark.anyglm_models("linear")
def test_linear_regression_on_xor_reaches_w0_b_half(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    X, y = load_dataset("xor")
    est = anyglm.Estimator(
        model_name,
        batch_size=4,
        learning_rate=0.5,
        epochs=400,
        alpha=0.0,
        random_state=0,
        **PLAIN_SGD,
    ).fit(case.data(X), case.data(y))
    w = case.to_numpy(est.coef_).astype(np.float64)
    b = float(case.to_numpy(est.intercept_))
    tol = XOR_TOLERANCE[case.dtype]
    assert np.max(np.abs(w)) <= tol and abs(b - 0.5) <= tol, (
        f"{describe(case, model_name)}: linear regression on XOR should reach w = (0, 0), "
        f"b = 1/2 (tolerance {tol:g}); got w = {w.tolist()}, b = {b!r}"
    )
    pred = case.to_numpy(est.predict(case.data(X)))
    np.testing.assert_allclose(pred, 0.5, atol=2 * tol, err_msg=describe(case, model_name))
    assert abs(est.history_["train_loss"][-1] - 0.125) <= 10 * tol  # (1/4) sum (1/2)(1/2)^2


def _all_positive_fit(
    case: BackendCase, model_name: str, epochs: int, alpha: float
) -> tuple[np.ndarray, float, anyglm.Estimator]:
    X, y = load_dataset("all-positive")
    est = anyglm.Estimator(
        model_name,
        batch_size=X.shape[0],  # full batch: plain gradient descent, provably monotone
        learning_rate=0.5,
        epochs=epochs,
        alpha=alpha,
        shuffle=False,
        random_state=0,
        **PLAIN_SGD,
    ).fit(case.data(X), y, classes=[0, 1])
    w = case.to_numpy(est.coef_).astype(np.float64).reshape(-1)
    b = float(case.to_numpy(est.intercept_).reshape(-1)[0])
    return w, b, est


CHECKPOINTS = (10, 20, 40, 80)


@pytest.mark.anyglm_models("logistic")
def test_logistic_all_positive_labels_intercept_grows_gradient_shrinks(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    model = anyglm.get_model(model_name)
    X, y = load_dataset("all-positive")
    assert np.all(y == 1)
    Y = np.ones((X.shape[0], 1))
    intercepts, gradients = [], []
    for epochs in CHECKPOINTS:
        w, b, est = _all_positive_fit(case, model_name, epochs, alpha=0.0)
        _, _, gb = numpy_reference(model, X, Y, w.reshape(-1, 1), np.array([b]))
        intercepts.append(b)
        gradients.append(float(gb[0]))
    what = describe(case, model_name) + ", all labels positive, alpha=0"
    assert all(g < 0 for g in gradients), (
        f"{what}: d loss / d b = mean(sigmoid(z) - 1) must stay negative; got {gradients}"
    )
    assert all(b2 > b1 for b1, b2 in itertools.pairwise(intercepts)), (
        f"{what}: the intercept must keep increasing; at epochs {CHECKPOINTS}: {intercepts}"
    )
    assert all(abs(g2) < abs(g1) for g1, g2 in itertools.pairwise(gradients)), (
        f"{what}: the gradient must keep shrinking; at epochs {CHECKPOINTS}: {gradients}"
    )
    losses = est.history_["train_loss"]
    assert all(l2 < l1 for l1, l2 in itertools.pairwise(losses)), f"{what}: loss not decreasing"
    assert losses[-1] > 0


@pytest.mark.anyglm_models("logistic")
def test_logistic_all_positive_labels_l2_keeps_weights_bounded(
    backend_case: BackendCase, model_name: str
) -> None:
    case = backend_case
    alpha = 0.5
    # Gradient descent decreases the objective, so (alpha/2)|w|^2 <= objective(0, 0) = log 2.
    bound = math.sqrt(2 * math.log(2) / alpha)
    norms, intercepts = [], []
    for epochs in (20, 80, 320):
        w, b, _ = _all_positive_fit(case, model_name, epochs, alpha=alpha)
        norms.append(float(np.linalg.norm(w)))
        intercepts.append(b)
    what = describe(case, model_name) + f", all labels positive, alpha={alpha}"
    assert max(norms) <= bound, f"{what}: |w| = {norms} exceeds the bound {bound:.3g}"
    assert norms[-1] <= norms[1] + 1e-6, f"{what}: |w| keeps growing: {norms}"
    assert intercepts[0] < intercepts[1] < intercepts[2], (
        f"{what}: the unpenalised intercept must still grow; got {intercepts}"
    )


@pytest.mark.anyglm_models("softmax")
def test_softmax_recovers_a_planted_model(backend_case: BackendCase, model_name: str) -> None:
    case = backend_case
    rng = np.random.default_rng(3)
    d, k = 4, 3
    W_true = rng.normal(scale=2.0, size=(d, k))
    b_true = rng.normal(scale=0.5, size=k)
    X_train, X_test = rng.normal(size=(120, d)), rng.normal(size=(200, d))
    y_train = np.argmax(X_train @ W_true + b_true, axis=1)
    y_test = np.argmax(X_test @ W_true + b_true, axis=1)
    assert len(np.unique(y_train)) == k
    est = anyglm.Estimator(
        model_name,
        batch_size=16,
        learning_rate=0.5,
        epochs=30,
        alpha=0.0,
        random_state=0,
        **PLAIN_SGD,
    ).fit(case.data(X_train), case.data(y_train, index_dtype(case)))
    train_acc = est.score(case.data(X_train), y_train)
    test_acc = est.score(case.data(X_test), y_test)
    assert train_acc >= 0.95 and test_acc >= 0.95, (
        f"{describe(case, model_name)}: softmax regression agrees with the planted model on "
        f"{train_acc:.1%} of the training and {test_acc:.1%} of fresh points (need >= 95%)"
    )
