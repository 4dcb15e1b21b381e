"""anyglm.tune: vectorised grid and random search on a validation set."""

from __future__ import annotations

import math

import anyglm
import numpy as np
import pytest
from anyglm.tuning import LogUniform

X_DIGITS, Y_DIGITS = anyglm.datasets.load_dataset("digits")
X_DIGITS = anyglm.datasets.standardize(X_DIGITS)[0][:600]
Y_DIGITS = Y_DIGITS[:600]
GRID = {
    "batch_size": [16, 64],
    "learning_rate": [0.003, 0.03, 0.3],
    "epochs": [1, 3],
    "alpha": [0.0, 1e-2],
}


def _split(n: int, fraction: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    n_val = round(fraction * n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


@pytest.fixture(scope="module")
def vectorised() -> anyglm.TuneResult:
    return anyglm.tune("softmax", X_DIGITS, Y_DIGITS, grid=GRID, refit=False)


def test_every_configuration_is_in_the_table(vectorised: anyglm.TuneResult) -> None:
    assert len(vectorised.table) == 2 * 3 * 2 * 2
    combos = {
        (r["batch_size"], r["learning_rate"], r["epochs"], r["alpha"]) for r in vectorised.table
    }
    assert len(combos) == 24
    for row in vectorised.table:
        assert 0.0 <= row["val_score"] <= 1.0 and math.isfinite(row["val_loss"])
        assert row["time_s"] > 0


def test_each_configuration_equals_a_single_fit_with_the_same_seed(
    vectorised: anyglm.TuneResult,
) -> None:
    tr, va = _split(len(X_DIGITS))
    for row in vectorised.table[::5]:
        est = anyglm.Estimator(
            "softmax",
            batch_size=row["batch_size"],
            learning_rate=row["learning_rate"],
            epochs=row["epochs"],
            alpha=row["alpha"],
            random_state=0,
        ).fit(X_DIGITS[tr], Y_DIGITS[tr], validation_data=(X_DIGITS[va], Y_DIGITS[va]))
        assert row["val_score"] == pytest.approx(est.history_["val_score"][-1], abs=1e-12)
        assert row["val_loss"] == pytest.approx(est.history_["val_loss"][-1], rel=1e-9)


def test_looping_single_fits_gives_the_same_table(vectorised: anyglm.TuneResult) -> None:
    looped = anyglm.tune("softmax", X_DIGITS, Y_DIGITS, grid=GRID, refit=False, vectorize=False)
    for a, b in zip(vectorised.table, looped.table, strict=True):
        assert {k: a[k] for k in anyglm.tuning.SEARCHED} == {
            k: b[k] for k in anyglm.tuning.SEARCHED
        }
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-9)
    assert vectorised.best_params == looped.best_params


def test_best_is_the_highest_validation_score(vectorised: anyglm.TuneResult) -> None:
    top = max(r["val_score"] for r in vectorised.table)
    assert vectorised.best_score == top
    assert vectorised.best_estimator is not None
    assert (
        vectorised.best_estimator.get_params()["learning_rate"]
        == vectorised.best_params["learning_rate"]
    )


def test_diverging_configurations_are_masked_not_fatal() -> None:
    X, y = anyglm.datasets.load_dataset("diabetes")  # raw features: large steps diverge
    res = anyglm.tune(
        "linear",
        X,
        y,
        grid={"learning_rate": [1e-6, 10.0], "epochs": [20], "batch_size": [32]},
        refit=False,
    )
    by_lr = {r["learning_rate"]: r for r in res.table}
    assert by_lr[10.0]["diverged"] and math.isnan(by_lr[10.0]["val_score"])
    assert not by_lr[1e-6]["diverged"] and math.isfinite(by_lr[1e-6]["val_score"])
    assert res.best_params["learning_rate"] == 1e-6


def test_refit_and_test_score_once() -> None:
    X, y = anyglm.datasets.load_dataset("breast_cancer")
    X_tr, X_te, y_tr, y_te = anyglm.datasets.train_test_split(X, y, random_state=0)
    X_tr, X_te = anyglm.datasets.standardize(X_tr, X_te)
    res = anyglm.tune(
        "logistic",
        X_tr,
        y_tr,
        grid={"learning_rate": [0.01, 0.1], "epochs": [10]},
        test_data=(X_te, y_te),
    )
    assert res.best_estimator is not None
    assert res.best_estimator.n_epochs_ == 10
    assert res.test_score == res.best_estimator.score(X_te, y_te)
    assert res.test_score > 0.9
    assert set(res.to_dict()) == {"best_params", "best_score", "test_score", "table"}


def test_random_search_draws_n_iter_configurations() -> None:
    res = anyglm.tune(
        "softmax",
        X_DIGITS,
        Y_DIGITS,
        distributions={"learning_rate": LogUniform(1e-3, 1e-1), "alpha": [0.0, 1e-3], "epochs": 2},
        n_iter=5,
        refit=False,
    )
    assert len(res.table) == 5
    assert all(1e-3 <= r["learning_rate"] <= 1e-1 and r["epochs"] == 2 for r in res.table)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"grid": {"momentumm": [0.9]}}, ValueError, "cannot search over"),
        ({"grid": {"learning_rate": []}}, ValueError, "empty"),
        ({"grid": {"learning_rate": [-1.0]}}, ValueError, "learning_rate must be > 0"),
        ({"grid": {"epochs": [0]}}, ValueError, "epochs must be a positive integer"),
        ({}, ValueError, "exactly one of grid"),
        ({"grid": {}, "distributions": {}}, ValueError, "exactly one of grid"),
        ({"grid": {}, "estimator_params": {"epochs": 3}}, ValueError, "must not set 'epochs'"),
        ({"grid": {}, "validation_fraction": 1.5}, ValueError, "empty part"),
        ({"grid": {}, "validation_data": [1]}, TypeError, "pair"),
    ],
)
def test_bad_search_input(kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        anyglm.tune("softmax", X_DIGITS[:50], Y_DIGITS[:50], **kwargs)


def test_log_uniform_rejects_bad_bounds() -> None:
    with pytest.raises(ValueError, match="LogUniform"):
        LogUniform(0.0, 1.0)


def test_other_estimator_parameters_get_passes_of_their_own() -> None:
    X, y = anyglm.datasets.load_dataset("breast_cancer")
    X = anyglm.datasets.standardize(X)[0]
    seen: list[dict] = []
    res = anyglm.tune(
        "logistic",
        X,
        y,
        grid={"learning_rate": [0.01, 0.1], "epochs": [3], "class_weight": [None, "balanced"]},
        refit=False,
        callback=seen.append,
    )
    assert len(res.table) == 4 and len(seen) == 2 and len(res.curves) == 2
    assert {p["class_weight"] for p in seen} == {None, "balanced"}
    tr, va = _split(len(X))
    row = next(
        r for r in res.table if r["class_weight"] == "balanced" and r["learning_rate"] == 0.1
    )
    est = anyglm.LogisticRegression(
        learning_rate=0.1, epochs=3, class_weight="balanced", random_state=0
    ).fit(X[tr], y[tr], validation_data=(X[va], y[va]))
    assert row["val_loss"] == pytest.approx(est.history_["val_loss"][-1], rel=1e-9)
    assert "class_weight" in res.best_params


def test_configurations_stop_early_each_on_its_own() -> None:
    grid = {"learning_rate": [0.01, 1.0], "alpha": [1e-4], "epochs": [60], "batch_size": [32]}
    stopping = {"n_iter_no_change": 2, "tol": 1e-3}
    together = anyglm.tune(
        "softmax", X_DIGITS, Y_DIGITS, grid=grid, refit=False, estimator_params=stopping
    )
    one_by_one = anyglm.tune(
        "softmax", X_DIGITS, Y_DIGITS, grid=grid, refit=False, estimator_params=stopping,
        vectorize=False,
    )  # fmt: skip
    runs = {r["learning_rate"]: r["epochs_run"] for r in together.table}
    assert runs[1.0] < 60  # the fast configuration stopped; the slow one later or never
    assert runs[1.0] != runs[0.01]
    for a, b in zip(together.table, one_by_one.table, strict=True):
        assert a["epochs_run"] == b["epochs_run"]
        assert a["val_score"] == pytest.approx(b["val_score"], abs=1e-12)
    with pytest.raises(ValueError, match="cannot search over"):
        anyglm.tune("softmax", X_DIGITS, Y_DIGITS, grid={"n_iter_no_change": [2]})


# -- vectorised and looped passes agree to rounding ------------------------------------------------

# 400 standardised digits, batch 16. Learning rates 0.01 to 1 converge; with alpha=1,
# learning rate 100 scales W by -99 every step and diverges.
MIXED = {
    "learning_rate": [0.01, 0.1, 1.0, 100.0],
    "alpha": [1e-2, 1.0],
    "epochs": [4, 10],
    "batch_size": [16],
}


def test_vectorised_and_looped_agree_beside_a_diverging_configuration() -> None:
    X, y = X_DIGITS[:400], Y_DIGITS[:400]
    plain = {"n_iter_no_change": None, "average": False}  # plain SGD, every epoch
    fast = anyglm.tune("softmax", X, y, grid=MIXED, refit=False, estimator_params=plain)
    slow = anyglm.tune(
        "softmax", X, y, grid=MIXED, refit=False, vectorize=False, estimator_params=plain
    )
    assert any(r["diverged"] for r in fast.table)  # the grid does hold a diverging one
    for a, b in zip(fast.table, slow.table, strict=True):
        assert {k: a[k] for k in anyglm.tuning.SEARCHED} == {
            k: b[k] for k in anyglm.tuning.SEARCHED
        }
        assert a["diverged"] == b["diverged"]
        if a["diverged"]:
            assert math.isnan(a["val_score"]) and math.isnan(b["val_score"])
            continue
        # A product of width K*c adds in another order than one of width c: equal to rounding.
        assert a["val_score"] == b["val_score"], (a, b)
        assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-9), (a, b)
    assert fast.best_params == slow.best_params and fast.best_score == slow.best_score


def test_random_search_takes_scipy_stats_distributions() -> None:
    stats = pytest.importorskip("scipy.stats")
    space = {
        "learning_rate": stats.loguniform(1e-3, 1e-1),
        "batch_size": stats.randint(16, 65),
        "alpha": [0.0, 1e-3],
        "epochs": 2,
    }
    res = anyglm.tune("softmax", X_DIGITS, Y_DIGITS, distributions=space, n_iter=4, refit=False)
    again = anyglm.tune("softmax", X_DIGITS, Y_DIGITS, distributions=space, n_iter=4, refit=False)
    assert len(res.table) == 4
    for row in res.table:
        assert 1e-3 <= row["learning_rate"] <= 1e-1 and isinstance(row["learning_rate"], float)
        assert 16 <= row["batch_size"] <= 64 and isinstance(row["batch_size"], int)
    # drawn from the generator seeded with random_state: the same draws again
    assert [r["learning_rate"] for r in res.table] == [r["learning_rate"] for r in again.table]
    assert len({r["learning_rate"] for r in res.table}) == 4


def test_a_distribution_that_is_not_univariate_is_refused() -> None:
    stats = pytest.importorskip("scipy.stats")
    with pytest.raises(
        TypeError, match=r"distributions\['learning_rate'\]\.rvs\(\) must return one"
    ):
        anyglm.tune(
            "softmax",
            X_DIGITS,
            Y_DIGITS,
            distributions={"learning_rate": stats.dirichlet([1.0, 1.0])},
            n_iter=1,
            refit=False,
        )


@pytest.mark.parametrize(
    ("model", "optimizer"),
    [
        ("linear", {}),
        ("logistic", {"momentum": 0.9}),
        ("softmax", {"penalty": "elasticnet"}),
        ("softmax", {"average": True}),
    ],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_each_configuration_of_a_pass_is_a_single_configuration(
    model: str, optimizer: dict, dtype: str
) -> None:
    from anyglm.trainer import train

    X = X_DIGITS[:150, :20]
    y = {"linear": X[:, 0] * 3.0, "logistic": (Y_DIGITS[:150] > 4).astype(int)}.get(
        model, Y_DIGITS[:150]
    )
    lrs, alphas = [0.05, 2.0, 0.5], [1e-3, 1e-2, 0.0]

    def run(k: list[int]) -> tuple[np.ndarray, np.ndarray]:
        est = anyglm.Estimator(
            model, batch_size=8, epochs=3, dtype=dtype, random_state=0, **optimizer
        )
        hp, spec = est._check_params()
        rng = np.random.default_rng(0)
        prep = est._prepare(X, y, hp, rng, np.linspace(0.5, 2, 150), None, None)
        W, b = prep.zero_parameters(len(k))
        out = train(
            prep.model, prep.backend, prep.source, W=W, b=b, n_configs=len(k),
            learning_rate=[lrs[i] for i in k], alpha=[alphas[i] for i in k], epochs=3,
            batch_size=8, shuffle=True, rng=rng, dtype=prep.dtype, device=prep.device,
            optimizer=spec, on_divergence="mask", accelerate=False,
        )  # fmt: skip
        return np.asarray(out.W), np.asarray(out.b)

    W3, b3 = run([0, 1, 2])
    c = W3.shape[1] // 3
    for i in range(3):
        W1, b1 = run([i])
        # equal up to the rounding of a wider product (BLAS blocks by width)
        rtol = 1e-10 if dtype == "float64" else 1e-4
        np.testing.assert_allclose(W3[:, i * c : (i + 1) * c], W1, rtol=rtol, atol=rtol)
        np.testing.assert_allclose(b3[i * c : (i + 1) * c], b1, rtol=rtol, atol=rtol)


def test_auto_values_are_searched_like_numbers() -> None:
    grid = {"learning_rate": ["auto", 0.05], "alpha": ["auto", 1e-3], "epochs": [5]}
    res = anyglm.tune("softmax", X_DIGITS, Y_DIGITS, refit=False, grid=grid)
    assert {(r["learning_rate"], r["alpha"]) for r in res.table} == {
        ("auto", "auto"), ("auto", 1e-3), (0.05, "auto"), (0.05, 1e-3)
    }  # fmt: skip
    # Each configuration scores as its own fit with the same "auto" values.
    row = next(r for r in res.table if r["learning_rate"] == "auto" and r["alpha"] == "auto")
    n = len(X_DIGITS)
    tr = np.sort(np.random.default_rng(0).permutation(n)[round(0.2 * n) :])
    va = np.setdiff1d(np.arange(n), tr)
    est = anyglm.SoftmaxRegression(epochs=5, random_state=0).fit(
        X_DIGITS[tr], Y_DIGITS[tr], validation_data=(X_DIGITS[va], Y_DIGITS[va])
    )
    assert row["val_loss"] == pytest.approx(est.history_["val_loss"][-1], rel=1e-9)


# -- where tune trains, what it checks first -------------------------------------------------

_X40 = np.random.default_rng(0).normal(size=(40, 3))
_Y40 = (_X40[:, 0] + _X40[:, 1] > 0).astype(int)


def test_tune_trains_where_the_input_lives() -> None:
    xs = pytest.importorskip("array_api_strict")
    res = anyglm.tune("logistic", xs.asarray(_X40), xs.asarray(_Y40), grid={"epochs": [2]})
    assert res.best_estimator is not None
    assert res.best_estimator.backend_ == "array_api_strict"


def test_tune_checks_test_data_before_searching() -> None:
    calls: list[dict] = []
    with pytest.raises(TypeError, match="test_data must be a pair"):
        anyglm.tune(
            "logistic", _X40, _Y40, grid={"epochs": [1]}, test_data=[_X40], callback=calls.append
        )
    assert calls == []
