"""The optimiser: schedules, momentum, averaging, L1 and elastic net, and what they buy.

Formulas of each piece against hand computation, the effects the docs promise
(L1 gives exact zeros, elastic net lies between L1 and L2, averaging and
momentum reach a lower loss than plain SGD in the same epochs), and that every
setting resumes from a checkpoint bitwise.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import anyglm
import array_api_compat.numpy as xp
import numpy as np
import pytest
from anyglm.evaluation import evaluate
from anyglm.optim import Columns, OptimizerSpec, StepContext, build, step_size
from anyglm.sources import ArraySource

# -- the pieces ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "t", "expected"),
    [
        (OptimizerSpec(), 7, 0.2),
        (OptimizerSpec(schedule="adaptive"), 7, 0.2),
        (OptimizerSpec(schedule="invscaling", power_t=0.5), 4, 0.2 / 2),
        (OptimizerSpec(schedule="invscaling", power_t=0.25), 16, 0.2 / 2),
        # 1 / (alpha (t0 + t - 1)) with t0 = 1 / (eta alpha): eta at t = 1, then decaying.
        (OptimizerSpec(schedule="optimal"), 1, 0.2),
        (OptimizerSpec(schedule="optimal"), 51, 1 / (0.1 * (50 + 50))),
    ],
)
def test_schedules(spec: OptimizerSpec, t: int, expected: float) -> None:
    cols = Columns(learning_rate=0.2, alpha=0.1, l2=0.1, t0=1 / (0.2 * 0.1))
    assert step_size(spec, StepContext(t, cols)) == pytest.approx(expected, rel=1e-12)


def _steps(spec: OptimizerSpec, grads: list[float], **cols: Any) -> tuple[list[float], Any]:
    opt = build(spec, xp)
    W, b = np.array([[1.0]]), np.array([0.0])
    state = opt.init(W, b)
    seen = []
    for t, g in enumerate(grads, start=1):
        ctx = StepContext(t, Columns(**{"learning_rate": 0.1, **cols}), cols.get("avg_from"))
        W, b, state = opt.step(W, b, np.array([[g]]), np.array([g]), state, ctx)
        seen.append(float(W[0, 0]))
    return seen, state


def test_momentum_and_nesterov_follow_their_formulas() -> None:
    # v = mu v - eta g; W += v (heavy ball) or W += mu v - eta g (Nesterov).
    v1 = -0.1  # 0.5 * 0 - 0.1 * 1
    v2 = 0.5 * v1 - 0.1
    heavy, _ = _steps(OptimizerSpec(momentum=0.5), [1.0, 1.0])
    assert heavy == pytest.approx([1.0 + v1, 1.0 + v1 + v2])
    nesterov, _ = _steps(OptimizerSpec(momentum=0.5, nesterov=True), [1.0, 1.0])
    first = 1.0 + 0.5 * v1 - 0.1
    assert nesterov == pytest.approx([first, first + 0.5 * v2 - 0.1])


def test_averaging_averages_the_iterates_from_its_first_step() -> None:
    opt = build(OptimizerSpec(average=1), xp)
    W, b = np.array([[0.0]]), np.array([0.0])
    state = opt.init(W, b)
    iterates = []
    for t in range(1, 5):
        # The trainer sets average_from when averaging starts (here: at step 2).
        ctx = StepContext(t, Columns(learning_rate=1.0), average_from=None if t < 2 else 2)
        W, b, state = opt.step(W, b, np.array([[-1.0]]), np.array([0.0]), state, ctx)
        iterates.append(float(W[0, 0]))
    assert iterates == [1.0, 2.0, 3.0, 4.0]
    assert float(state["avg_W"][0, 0]) == pytest.approx(np.mean(iterates[1:]))  # steps 2..4


def test_the_cumulative_l1_penalty_clips_at_zero_and_catches_up() -> None:
    opt = build(OptimizerSpec(penalty="l1"), xp)
    W, b = np.array([[0.25, -0.05]]), np.zeros(2)
    state = opt.init(W, b)
    ctx = StepContext(1, Columns(learning_rate=1.0, alpha=0.1, l1=0.1))
    zero = np.zeros((1, 2))
    W, b, state = opt.step(W, b, zero, np.zeros(2), state, ctx)
    assert W.tolist() == [[pytest.approx(0.15), 0.0]]  # pulled by 0.1; -0.05 stops at 0
    # A weight the gradient pushes away from zero gets the pull it missed: the total
    # pull so far is u = 0.2, of which the first weight received 0.1 (q = -0.1) and the
    # second 0.05, the most it could (q = +0.05: it was clipped at zero).
    W, b, state = opt.step(W, b, np.array([[0.0, -5.0]]), np.zeros(2), state,
                           StepContext(2, ctx.columns))  # fmt: skip
    assert W[0, 0] == pytest.approx(0.15 - (0.2 - 0.1))
    assert W[0, 1] == pytest.approx(5.0 - (0.2 + 0.05))  # the step moved it to 5.0


# -- what they buy ---------------------------------------------------------------------------


def _sparse_problem() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1000, 100))
    w = np.zeros(100)
    w[:5] = [2.0, -3.0, 1.5, -2.0, 2.5]
    y = (X @ w + 0.5 * rng.normal(size=1000) > 0).astype(int)
    return X, y


def test_l1_zeroes_the_uninformative_weights_and_elastic_net_lies_between() -> None:
    X, y = _sparse_problem()
    fits = {
        penalty: anyglm.LogisticRegression(penalty=penalty, alpha=0.01, random_state=0)
        .fit(X, y)
        .coef_.ravel()
        for penalty in ("l1", "elasticnet", "l2")
    }
    zeros = {p: int(np.sum(c[5:] == 0.0)) for p, c in fits.items()}
    assert zeros["l1"] >= 90  # exact zeros for the 95 features that do not matter
    assert np.all(fits["l1"][:5] != 0.0)  # the 5 that do are kept
    mass = {p: float(np.abs(c[5:]).sum()) for p, c in fits.items()}
    assert zeros["l1"] > zeros["elasticnet"] > zeros["l2"] == 0
    assert mass["l1"] < mass["elasticnet"] < mass["l2"]


def test_averaging_is_off_by_default_with_an_l1_part() -> None:
    spec = anyglm.LogisticRegression(penalty="l1")._optimizer_spec()
    assert spec.average == 0
    assert anyglm.LogisticRegression()._optimizer_spec().average == 1
    assert anyglm.LogisticRegression(penalty="l1", average=True)._optimizer_spec().average == 1


def _digits_loss(**params: Any) -> float:
    X, y = anyglm.datasets.load_dataset("digits")
    X = anyglm.datasets.standardize(X)[0]
    est = anyglm.SoftmaxRegression(
        alpha=1e-4, epochs=20, n_iter_no_change=None, random_state=0, **params
    ).fit(X, y)
    be = anyglm.get_backend("numpy")
    W, b = np.asarray(est.coef_).T, np.asarray(est.intercept_)
    src = ArraySource(be, X, np.eye(10)[y])
    return float(evaluate(anyglm.get_model("softmax"), be.xp, src, W, b, 1)[0][0])


def test_momentum_reaches_a_lower_training_loss_than_plain_sgd_on_digits() -> None:
    plain = _digits_loss(learning_rate=0.05, average=False)
    assert _digits_loss(learning_rate=0.05, average=False, momentum=0.9) < 0.5 * plain
    assert _digits_loss(learning_rate=0.05, average=False, momentum=0.9, nesterov=True) < plain


def test_averaging_reaches_a_lower_training_loss_than_plain_sgd_on_digits() -> None:
    # With a step long enough that the last iterate dances around the optimum (its
    # noise floor), the average of the iterates sits closer to it.
    plain = _digits_loss(learning_rate=1.0, average=False)
    assert _digits_loss(learning_rate=1.0, average=True) < plain
    assert _digits_loss(learning_rate=1.0, average=10) < plain


# -- every setting resumes bitwise -----------------------------------------------------------

SETTINGS = {
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "average": {"average": True},
    "average-from-3": {"average": 3},
    "l1": {"penalty": "l1", "alpha": 1e-3},
    "elasticnet": {"penalty": "elasticnet", "alpha": 1e-3, "l1_ratio": 0.3},
    "invscaling": {"schedule": "invscaling", "power_t": 0.3},
    "optimal": {"schedule": "optimal", "alpha": 1e-3},
    "adaptive": {"schedule": "adaptive", "n_iter_no_change": 1, "tol": 0.5},
    "defaults": {},
}


@pytest.mark.parametrize("settings", SETTINGS.values(), ids=SETTINGS.keys())
def test_every_optimiser_resumes_bitwise(settings: dict[str, Any], tmp_path: Path) -> None:
    X, y = anyglm.datasets.load_dataset("digits")
    X = anyglm.datasets.standardize(X)[0][:400]
    y = y[:400]
    params = {"epochs": 6, "random_state": 0, "batch_size": 32, "learning_rate": 0.05,
              "n_iter_no_change": None, **settings}  # fmt: skip
    if not settings:  # the defaults, "auto" values and early stopping included
        params = {"epochs": 6, "random_state": 0}
    ck = tmp_path / "ck.anyglm"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", anyglm.ConvergenceWarning)
        anyglm.SoftmaxRegression(**{**params, "epochs": 3}).fit(X, y, checkpoint=ck)
        resumed = anyglm.SoftmaxRegression(**params).fit(X, y, resume=ck)
        straight = anyglm.SoftmaxRegression(**params).fit(X, y)
    np.testing.assert_array_equal(resumed.coef_, straight.coef_)
    np.testing.assert_array_equal(resumed.intercept_, straight.intercept_)
    assert resumed.history_ == straight.history_
    assert resumed.n_epochs_ == straight.n_epochs_


# -- learning_rate="auto" backs off where its step diverges ---------------------------------------


def test_an_auto_step_that_diverges_is_retried_at_a_tenth(monkeypatch: pytest.MonkeyPatch) -> None:
    # A model whose declared curvature bound is 100 times too small (as a Poisson loss,
    # which has none, is without one) gets a step 100 times too large: it diverges, and
    # at a tenth (still 10 times the stable step) too; at a hundredth it trains.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    y = X @ rng.normal(size=5) + 0.1 * rng.normal(size=200)
    monkeypatch.setattr(anyglm.get_model("linear"), "curvature", 0.01)
    params = {"epochs": 200, "n_iter_no_change": None, "random_state": 0, "average": False}
    est = anyglm.LinearRegression(**params)
    with pytest.warns(anyglm.errors.ConvergenceWarning, match="training again") as record:
        est.fit(X, y)
    assert sum("training again" in str(w.message) for w in record) == 2
    assert np.isfinite(est.coef_).all() and est.n_epochs_ == 200
    first = float(str(record[0].message).split("gave ")[1].split(",")[0])
    assert est.learning_rate_ == pytest.approx(first / 100, rel=1e-3)
    # The retry starts over with the same seed: it is the fit at that step.
    ref = anyglm.LinearRegression(**{**params, "learning_rate": est.learning_rate_}).fit(X, y)
    np.testing.assert_array_equal(est.coef_, ref.coef_)
    # A number passed as learning_rate is the user's: it diverges and says so.
    with pytest.raises(anyglm.DivergenceError):
        anyglm.LinearRegression(**{**params, "learning_rate": first}).fit(X, y)
    # partial_fit goes on from where it is: no restart either.
    online = anyglm.LinearRegression(**params)
    with pytest.raises(anyglm.DivergenceError):
        for _ in range(200):
            online.partial_fit(X, y)
    assert online.learning_rate_ == pytest.approx(first, rel=1e-3)


# -- the epoch cap warns -------------------------------------------------------------------------


def test_reaching_the_epoch_cap_warns_and_meeting_the_rule_does_not() -> None:
    X, y = anyglm.datasets.load_dataset("digits")
    X = anyglm.datasets.standardize(X)[0]
    with pytest.warns(anyglm.ConvergenceWarning, match=r"reached epochs=2 before") as record:
        anyglm.SoftmaxRegression(epochs=2, random_state=0).fit(X, y)
    sklearn_exceptions = pytest.importorskip("sklearn.exceptions")
    # scikit-learn's filters catch it too
    assert isinstance(record[0].message, sklearn_exceptions.ConvergenceWarning)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        est = anyglm.SoftmaxRegression(random_state=0).fit(X, y)  # stops by its rule
    assert est.n_epochs_ < est.epochs
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clf = anyglm.SoftmaxRegression(epochs=2, n_iter_no_change=None, random_state=0)
        clf.fit(X, y)  # no stopping rule: the epochs asked for are the plan, not a cap
