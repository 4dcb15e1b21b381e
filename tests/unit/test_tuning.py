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
        ({"grid": {"momentum": [0.9]}}, ValueError, "cannot search over"),
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


def test_early_stopping_is_refused_with_advice() -> None:
    with pytest.raises(ValueError, match="search 'epochs' instead"):
        anyglm.tune(
            "softmax", X_DIGITS, Y_DIGITS, grid={}, estimator_params={"n_iter_no_change": 2}
        )
    with pytest.raises(ValueError, match="search 'epochs' instead"):
        anyglm.tune("softmax", X_DIGITS, Y_DIGITS, grid={"n_iter_no_change": [2]})
