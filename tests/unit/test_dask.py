"""The Dask backend: local SGD with model averaging on a LocalCluster of two worker processes.

Grouped by subject: choosing the backend; the algorithm (against an independent
NumPy implementation, and exactly NumPy's fit with one partition); data that
never reaches the client; checks and messages; predictions and scores; state
(save, load, partial_fit, resume); tune; a worker that dies mid-round; the CLI.

The cluster is the conformance suite's (``anyglm_backend_sessions``): one per
test session, shared with the suite's Dask cases.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest

da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")

# The functions below run on the workers, which cannot import this test module.
cloudpickle.register_pickle_by_value(sys.modules[__name__])


@pytest.fixture(scope="module")
def client(anyglm_backend_sessions: Any) -> Any:
    return anyglm_backend_sessions.enter("dask")


@pytest.fixture
def be() -> Any:
    return anyglm.get_backend("dask")


#: Plain SGD for a fixed number of epochs (no averaging, no early stopping): what the
#: references below compute.
PLAIN = {"average": False, "n_iter_no_change": None}


def _blobs(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=2.0, size=(k, d))
    y = rng.integers(0, k, size=n)
    return centres[y] + rng.normal(size=(n, d)), y


def _persisted(a: np.ndarray, rows: int) -> Any:
    return da.from_array(a, chunks=(rows, *a.shape[1:])).persist()


# -- choosing the backend ----------------------------------------------------------------------


def test_listing_backends_does_not_import_dask() -> None:
    code = (
        "import sys, anyglm\n"
        "rows = {r['name']: r for r in anyglm.list_backends()}\n"
        "assert rows['dask']['available'], rows['dask']\n"
        "assert 'dask' not in sys.modules and 'distributed' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "ok", out.stderr


@pytest.mark.usefixtures("client")
def test_a_dask_array_picks_the_backend_and_parameters_live_in_numpy(be: Any) -> None:
    X, y = _blobs(60, 3, 3)
    clf = anyglm.SoftmaxRegression(epochs=2, random_state=0, **PLAIN).fit(
        _persisted(X, 20), _persisted(y, 20)
    )
    assert clf.backend_ == "dask"
    assert type(clf.coef_) is np.ndarray and clf.coef_.dtype == np.float64
    assert clf.coef_.shape == (3, 3)
    assert isinstance(clf.predict(_persisted(X, 20)), da.Array)


def test_a_dask_dataframe_is_refused_with_the_way_out(be: Any) -> None:
    class FakeFrame:  # a Dask collection that is not an array
        __module__ = "dask.dataframe.core"

        def __dask_graph__(self) -> None: ...

    with pytest.raises(TypeError, match=r"to_dask_array\(lengths=True\)"):
        anyglm.SoftmaxRegression(backend="dask").fit(FakeFrame(), [0, 1])


def test_parameters_live_in_the_chunks_library_numpy_or_cupy() -> None:
    from anyglm.backends.dask_arrays import ChunkNamespace

    class CupyArray:  # stands in for cupy.ndarray: only its module matters here
        __module__ = "cupy._core.core"

    class CupyDevice:
        __module__ = "cupy.cuda.device"

    class CupyNamespace:
        def __getattr__(self, name: str) -> Any:
            return lambda *args, **kwargs: f"cupy.{name}"

    xp = ChunkNamespace()
    xp._cupy = CupyNamespace()  # what array_api_compat.cupy would be
    assert xp.matmul(CupyArray(), CupyArray()) == "cupy.matmul"
    assert xp.concat([np.zeros(1), CupyArray()]) == "cupy.concat"
    assert xp.zeros((2,), dtype=xp.float32, device=CupyDevice()) == "cupy.zeros"
    assert type(xp.zeros((2,), dtype=xp.float32, device="cpu")) is np.ndarray
    assert type(xp.matmul(np.ones((1, 2)), np.ones((2, 1)))) is np.ndarray
    assert xp.float64 is np.float64


# -- the algorithm -----------------------------------------------------------------------------


def _reference_local_sgd(
    X: np.ndarray,
    y: np.ndarray,
    rows: int,
    *,
    epochs: int,
    batch: int,
    lr: float,
    alpha: float,
    seed: int,
    rounds: int = 1,
) -> tuple[np.ndarray, np.ndarray, int]:
    """Local SGD with model averaging for least squares, written from the documentation."""
    rng = np.random.default_rng(seed)
    n, d = X.shape
    W, b, t = np.zeros((d, 1)), np.zeros(1), 0
    starts = list(range(0, n, rows))
    for _ in range(epochs):
        ids = list(range(len(starts)))
        if len(ids) > 1:
            ids = [ids[i] for i in rng.permutation(len(ids))]
        orders = {k: rng.permutation(min(rows, n - starts[k])) for k in ids}
        for r in range(rounds):
            trained = []
            for k in ids:
                order = np.array_split(orders[k], rounds)[r]
                Wk, bk = W, b
                for s in range(0, len(order), batch):
                    idx = starts[k] + order[s : s + batch]
                    err = X[idx] @ Wk + bk - y[idx].reshape(-1, 1)
                    gW = X[idx].T @ err / len(idx) + alpha * Wk
                    Wk, bk = Wk - lr * gW, bk - lr * err.mean(axis=0)
                    t += 1
                trained.append((len(order), Wk, bk))
            total = sum(m for m, _, _ in trained)
            W = sum(Wk * (m / total) for m, Wk, _ in trained)
            b = sum(bk * (m / total) for m, _, bk in trained)
    return W, b, t


@pytest.mark.usefixtures("client")
@pytest.mark.parametrize("rounds", [1, 3])
def test_rounds_are_local_sgd_with_row_weighted_averaging(rounds: int) -> None:
    rng = np.random.default_rng(4)
    X = rng.normal(size=(70, 3))  # chunks of 20, 20, 20, 10 rows: unequal weights
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.3 + rng.normal(scale=0.1, size=70)
    settings = {"epochs": 3, "batch": 6, "lr": 0.05, "alpha": 1e-3, "seed": 7}
    W, b, t = _reference_local_sgd(X, y, 20, rounds=rounds, **settings)
    reg = anyglm.LinearRegression(
        epochs=3, batch_size=6, learning_rate=0.05, alpha=1e-3, random_state=7,
        rounds_per_epoch=rounds, **PLAIN,
    ).fit(_persisted(X, 20), _persisted(y, 20))  # fmt: skip
    np.testing.assert_allclose(reg.coef_, W[:, 0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(reg.intercept_, b[0], rtol=1e-10)
    assert reg._train_state.t == t  # every partition's minibatches, as on one machine


@pytest.mark.usefixtures("client")
@pytest.mark.parametrize(
    "params",
    [
        {"model": "softmax"},  # the defaults: step and alpha "auto", averaging, early stopping
        {"model": "logistic", "class_weight": "balanced", "validation_fraction": 0.25},
        {"model": "softmax", "momentum": 0.9, "average": 2, "penalty": "elasticnet"},
        {"model": "linear", "schedule": "invscaling", "learning_rate": 0.01},
    ],
    ids=["defaults", "logistic-weighted-split", "momentum-average-elasticnet", "linear"],
)
def test_one_partition_trains_exactly_what_numpy_trains(params: dict[str, Any]) -> None:
    X, y = _blobs(90, 4, 2 if params["model"] == "logistic" else 3, seed=1)
    if params["model"] == "linear":
        y = X @ np.arange(1.0, 5.0)
    weights = np.linspace(0.5, 2.0, 90)
    settings = {"batch_size": 8, "random_state": 3, **params}
    if len(params) > 1:
        settings = {"epochs": 4, "learning_rate": 0.05, "n_iter_no_change": None, **settings}
    ours = anyglm.Estimator(**settings).fit(
        _persisted(X, 90), _persisted(y, 90), sample_weight=_persisted(weights, 90)
    )
    ref = anyglm.Estimator(**settings, backend="numpy").fit(X, y, sample_weight=weights)
    assert ours.backend_ == "dask"
    # The row weights are scaled to mean one; the mean of sums over the chunks rounds
    # in other places than NumPy's mean of the whole vector: equal up to rounding.
    for got, expected in ((ours.coef_, ref.coef_), (ours.intercept_, ref.intercept_)):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(ours.history_["train_loss"], ref.history_["train_loss"], rtol=1e-10)
    assert ours.n_epochs_ == ref.n_epochs_


@pytest.mark.usefixtures("client")
def test_the_seed_fixes_the_result_and_another_seed_changes_it() -> None:
    X, y = _blobs(120, 5, 4, seed=2)
    Xd, yd = _persisted(X, 30), _persisted(y, 30)

    def fit(seed: int) -> np.ndarray:
        est = anyglm.SoftmaxRegression(epochs=2, batch_size=7, random_state=seed, **PLAIN)
        return np.asarray(est.fit(Xd, yd).coef_)

    np.testing.assert_array_equal(fit(5), fit(5))
    assert not np.array_equal(fit(5), fit(6))


@pytest.mark.usefixtures("client")
def test_more_rounds_per_epoch_come_closer_to_sequential_sgd() -> None:
    X, y = _blobs(800, 6, 3, seed=3)
    settings = {"epochs": 1, "batch_size": 10, "learning_rate": 0.02, "random_state": 0, **PLAIN}
    sequential = anyglm.SoftmaxRegression(**settings, backend="numpy").fit(X, y)
    gaps = []
    for rounds in (1, 4, 16):
        est = anyglm.SoftmaxRegression(**settings, rounds_per_epoch=rounds)
        est.fit(_persisted(X, 100), _persisted(y, 100))  # 8 partitions
        gaps.append(float(np.abs(est.coef_ - sequential.coef_).max()))
    assert gaps[0] > gaps[1] > gaps[2], gaps


@pytest.mark.usefixtures("client")
def test_workers_run_numba_on_numpy_chunks_and_agree_with_the_portable_loop(
    client: Any,
) -> None:
    from anyglm.inputs import prepare
    from anyglm.trainer import train

    pytest.importorskip("numba")
    X, y = _blobs(400, 8, 3, seed=5)
    prep = prepare(
        anyglm.get_model("softmax"), _persisted(X, 100), _persisted(y, 100), backend="dask"
    )

    def run(accelerate: bool) -> Any:
        W, b = prep.zero_parameters()
        return train(
            prep.model, prep.backend, prep.source, W=W, b=b, n_configs=1, learning_rate=0.05,
            alpha=1e-4, epochs=2, batch_size=16, shuffle=True, rng=np.random.default_rng(0),
            dtype=prep.dtype, device=prep.device, accelerate=accelerate,
        )  # fmt: skip

    def set_min(value: str | None) -> None:
        if value is None:
            os.environ.pop("ANYGLM_NUMBA_MIN_ELEMENTS", None)
        else:
            os.environ["ANYGLM_NUMBA_MIN_ELEMENTS"] = value

    client.run(set_min, "0")
    try:
        fast = run(accelerate=True)
    finally:
        client.run(set_min, None)
    portable = run(accelerate=False)
    assert fast.accelerated and not portable.accelerated
    np.testing.assert_allclose(fast.W, portable.W, rtol=1e-10, atol=1e-12)


@pytest.mark.usefixtures("client")
@pytest.mark.parametrize("k", [4, 10])
def test_four_and_ten_classes_give_a_multiclass_model(k: int) -> None:
    X, y = _blobs(100 * k, 6, k, seed=k)
    Xd, yd = _persisted(X, 25 * k), _persisted(y, 25 * k)
    clf = anyglm.SoftmaxRegression(epochs=5, learning_rate=0.05, random_state=0, **PLAIN)
    clf.fit(Xd, yd)
    assert clf.classes_.tolist() == list(range(k))
    assert clf.coef_.shape == (k, 6)
    proba = clf.predict_proba(Xd).compute()
    assert proba.shape == (100 * k, k)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(clf.predict(Xd).compute())) == set(range(k))
    assert clf.score(Xd, yd) > 0.7  # chance: 1 / k


# -- the data stay where they are --------------------------------------------------------------


def _not_on_client(block: np.ndarray, client_pid: int) -> np.ndarray:
    if os.getpid() == client_pid:
        raise AssertionError("a chunk of X was computed in the client process")
    return block


@pytest.mark.usefixtures("client")
def test_fit_predict_and_score_never_compute_x_or_y_on_the_client() -> None:
    X, y = _blobs(300, 4, 3, seed=6)
    pid = os.getpid()
    Xd = da.from_array(X, chunks=(75, 4)).map_blocks(_not_on_client, pid, dtype=X.dtype)
    yd = da.from_array(y, chunks=75).map_blocks(_not_on_client, pid, dtype=y.dtype)
    # learning_rate and alpha "auto", averaging; early stopping on the training objective
    # (a sample of rows), then on a validation split.
    anyglm.SoftmaxRegression(epochs=4, random_state=0).fit(Xd, yd)
    clf = anyglm.SoftmaxRegression(epochs=3, random_state=0, validation_fraction=0.2)
    clf.fit(Xd, yd, sample_weight=da.ones(300, chunks=75), classes=[0, 1, 2])
    clf.partial_fit(Xd, yd)
    pred = clf.predict(Xd)
    assert isinstance(pred, da.Array) and pred.chunks == ((75, 75, 75, 75),)
    assert 0.5 < clf.score(Xd, yd) <= 1.0
    anyglm.tune("softmax", Xd, yd, grid={"learning_rate": [0.01, 0.1], "epochs": [1]}, refit=False)


# -- checks and messages -----------------------------------------------------------------------


@pytest.mark.usefixtures("client")
def test_nan_in_one_chunk_is_named_and_leaves_the_estimator_as_it_was() -> None:
    X, y = _blobs(40, 3, 2, seed=7)
    X[27, 2] = np.nan
    clf = anyglm.LogisticRegression(epochs=2, **PLAIN)
    with pytest.raises(ValueError, match=r"chunk 2 \(rows 20 to 29\): first at row 27, column 2"):
        clf.fit(_persisted(X, 10), _persisted(y, 10))
    assert not hasattr(clf, "coef_")


@pytest.mark.usefixtures("client")
@pytest.mark.parametrize(
    ("fit_args", "error", "message"),
    [
        ({"y": "three"}, ValueError, "is binary but y has 3 classes"),
        ({"y": "one"}, ValueError, "a single class"),
        ({"y": "three", "classes": [0, 1]}, ValueError, "y contains the label 2, which is not"),
        ({"y": "continuous"}, ValueError, r"such as 0.5\).* \(in chunk 1 \(rows 10 to 19\)\)"),
        ({"y": "short"}, ValueError, "y has 19 rows but X has 20"),
        ({"weights": "negative"}, ValueError, r"non-negative \(in chunk 1 \(rows 10 to 19\)\)"),
        ({"X": "1-D"}, ValueError, "must be 2-D"),
        ({"class_weight": {7: 1.0}}, ValueError, "class_weight contains the label 7"),
    ],
    ids=["binary-3", "one-class", "undeclared", "continuous", "short", "negative", "1d", "cw"],
)
def test_bad_data_gets_a_clear_error(fit_args: dict[str, Any], error: type, message: str) -> None:
    X = np.random.default_rng(0).normal(size=(20, 2))
    y = {
        None: np.arange(20) % 2,
        "three": np.arange(20) % 3,
        "one": np.zeros(20, dtype=int),
        "continuous": np.where(np.arange(20) == 13, 0.5, np.arange(20) % 2),  # chunk 1 only
        "short": np.arange(19) % 2,
    }[fit_args.get("y")]
    weights = None
    if fit_args.get("weights") == "negative":
        weights = np.ones(20)
        weights[15] = -1.0
    Xd = _persisted(X[:, 0] if fit_args.get("X") == "1-D" else X, 10)
    clf = anyglm.LogisticRegression(class_weight=fit_args.get("class_weight"), backend="dask")
    with pytest.raises(error, match=message):
        clf.fit(
            Xd,
            _persisted(y, 10) if len(y) == 20 else y,
            classes=fit_args.get("classes"),
            sample_weight=None if weights is None else _persisted(weights, 10),
        )


def test_rounds_per_epoch_is_checked() -> None:
    with pytest.raises(ValueError, match="rounds_per_epoch must be a positive integer"):
        anyglm.LinearRegression(rounds_per_epoch=0).fit([[0.0], [1.0]], [0.0, 1.0])


# -- predictions and scores --------------------------------------------------------------------


@pytest.mark.usefixtures("client")
def test_predictions_are_lazy_and_equal_numpys() -> None:
    X, y = _blobs(90, 4, 3, seed=8)
    labels = np.array(["ant", "bee", "cat"])[y]
    Xd = _persisted(X, 30)
    ours = anyglm.SoftmaxRegression(epochs=3, random_state=1, **PLAIN)
    ours.fit(Xd, _persisted(labels, 30))
    ref = anyglm.SoftmaxRegression(epochs=3, random_state=1, backend="numpy", **PLAIN)
    ref.fit(X, labels)  # 3 partitions averaged: not the same model; compare predictions of ours
    for method in ("predict", "predict_proba", "decision_function"):
        lazy = getattr(ours, method)(Xd)
        assert isinstance(lazy, da.Array) and lazy.chunks[0] == (30, 30, 30), method
        on_host = getattr(ours, method)(X)
        assert isinstance(on_host, np.ndarray)
        np.testing.assert_array_equal(lazy.compute(), on_host, err_msg=method)
    weights = np.linspace(0.1, 3.0, 90)
    expected = float(np.average(ours.predict(X) == labels, weights=weights))
    assert ours.score(Xd, labels, sample_weight=weights) == pytest.approx(expected, abs=1e-15)
    # a model trained on NumPy predicts lazily on Dask data too
    assert isinstance(ref.predict(Xd), da.Array)
    np.testing.assert_array_equal(ref.predict(Xd).compute(), ref.predict(X))


@pytest.mark.usefixtures("client")
def test_regression_score_is_numpys_r2() -> None:
    rng = np.random.default_rng(9)
    X = rng.normal(size=(80, 3))
    Y = np.stack([X @ [1.0, 2.0, 3.0] + 100.0, X @ [0.5, 0.0, -1.0]], axis=1)
    Y = Y + rng.normal(size=Y.shape)
    reg = anyglm.LinearRegression(epochs=3, random_state=0, **PLAIN).fit(_persisted(X, 20), Y)
    weights = rng.uniform(0.5, 2.0, size=80)
    lazy = reg.score(_persisted(X, 20), _persisted(Y, 20), sample_weight=weights)
    assert lazy == pytest.approx(reg.score(X, Y, sample_weight=weights), rel=1e-12)


@pytest.mark.usefixtures("client")
def test_nan_at_prediction_time_names_the_chunk() -> None:
    X, y = _blobs(40, 2, 2, seed=10)
    clf = anyglm.LogisticRegression(epochs=1, **PLAIN).fit(_persisted(X, 10), _persisted(y, 10))
    X[33, 1] = np.inf
    with pytest.raises(ValueError, match=r"chunk 3 \(rows 30 to 39\): first at row 33, column 1"):
        clf.predict(_persisted(X, 10)).compute()


# -- state: save, load, partial_fit, resume ----------------------------------------------------


@pytest.mark.usefixtures("client")
def test_saved_model_loads_anywhere_and_partial_fit_is_one_round(tmp_path: Path) -> None:
    X, y = _blobs(80, 3, 3, seed=11)
    Xd, yd = _persisted(X, 20), _persisted(y, 20)
    clf = anyglm.SoftmaxRegression(random_state=0)
    for _ in range(3):
        clf.partial_fit(Xd, yd, classes=[0, 1, 2])
    assert clf.n_epochs_ == 3 and clf._train_state.t == 3 * 4  # 4 partitions of 20 rows
    clf.save(tmp_path / "m.anyglm")
    on_numpy = anyglm.load(tmp_path / "m.anyglm", backend="numpy")
    back = anyglm.load(tmp_path / "m.anyglm")
    assert back.backend_ == "dask" and type(back.coef_) is np.ndarray
    np.testing.assert_array_equal(on_numpy.decision_function(X), clf.decision_function(X))
    np.testing.assert_array_equal(back.predict(Xd).compute(), clf.predict(X))


@pytest.mark.usefixtures("client")
def test_resuming_a_checkpoint_gives_the_uninterrupted_result(tmp_path: Path) -> None:
    X, y = _blobs(90, 3, 3, seed=12)
    Xd, yd = _persisted(X, 30), _persisted(y, 30)
    settings = {"random_state": 4, "validation_fraction": 0.2, "rounds_per_epoch": 2, **PLAIN}
    straight = anyglm.SoftmaxRegression(epochs=4, **settings).fit(Xd, yd)
    anyglm.SoftmaxRegression(epochs=2, **settings).fit(Xd, yd, checkpoint=tmp_path / "ck")
    resumed = anyglm.SoftmaxRegression(epochs=4, **settings).fit(Xd, yd, resume=tmp_path / "ck")
    np.testing.assert_array_equal(resumed.coef_, straight.coef_)
    assert resumed.history_ == straight.history_


# -- round trips -------------------------------------------------------------------------------


class _CountGraphs(distributed.diagnostics.plugin.SchedulerPlugin):
    name = "anyglm-count-graphs"

    def __init__(self) -> None:
        self.graphs = 0

    def update_graph(self, scheduler: Any, **kwargs: Any) -> None:
        self.graphs += 1


def test_one_synchronisation_per_round_and_one_per_validation_score(client: Any) -> None:
    scheduler = client.cluster.scheduler  # LocalCluster: the scheduler runs in this process
    counter = _CountGraphs()
    scheduler.add_plugin(counter, name=counter.name)
    try:
        X, y = _blobs(120, 3, 3, seed=13)
        Xd, yd = _persisted(X, 30), _persisted(y, 30)
        distributed.wait([Xd, yd])
        before = counter.graphs
        anyglm.SoftmaxRegression(
            epochs=3, rounds_per_epoch=2, validation_fraction=0.25, learning_rate=0.05, **PLAIN
        ).fit(Xd, yd)
        # 1 to check the data and find the labels, then per epoch 2 rounds and 1 score.
        assert counter.graphs - before == 1 + 3 * (2 + 1)
    finally:
        scheduler.remove_plugin(name=counter.name)


# -- tune --------------------------------------------------------------------------------------


@pytest.mark.usefixtures("client")
def test_tune_trains_the_grid_on_dask_like_numpy_with_one_partition() -> None:
    X, y = _blobs(120, 4, 3, seed=14)
    grid = {"learning_rate": [0.01, 0.1], "alpha": [1e-4, 1e-2], "epochs": [1, 3]}
    ours = anyglm.tune("softmax", _persisted(X, 120), _persisted(y, 120), grid=grid)
    ref = anyglm.tune("softmax", X, y, grid=grid)
    assert ours.best_estimator is not None and ours.best_estimator.backend_ == "dask"
    assert [r["val_score"] for r in ours.table] == [r["val_score"] for r in ref.table]
    assert ours.best_params == ref.best_params
    np.testing.assert_array_equal(ours.best_estimator.coef_, ref.best_estimator.coef_)


# -- a worker that dies mid-round --------------------------------------------------------------


def _die_once_marked(block: np.ndarray, marker: str, always: bool) -> np.ndarray:
    if os.path.exists(marker):
        if not always:
            try:
                os.unlink(marker)  # only the first worker to get here dies
            except FileNotFoundError:
                return block
        os._exit(1)
    return block


@pytest.fixture
def small_cluster() -> Any:
    import dask

    # No retries: the first worker that dies fails its task for good.
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, dashboard_address=":0", silence_logs=50
        ) as cluster,
        distributed.Client(cluster, set_as_default=False) as c,
    ):
        yield c


def test_a_worker_dying_once_mid_round_does_not_change_the_result(
    client: Any, tmp_path: Path
) -> None:
    X, y = _blobs(120, 3, 3, seed=15)
    marker = tmp_path / "die"
    Xd = da.from_array(X, chunks=(30, 3)).map_blocks(
        _die_once_marked, str(marker), False, dtype=X.dtype
    )
    clf = anyglm.SoftmaxRegression(epochs=3, random_state=0, **PLAIN)

    def after_epoch(logs: dict[str, Any]) -> None:
        if logs["epoch"] == 1:
            marker.touch()  # one worker dies in the next round, while training

    clf.fit(Xd, y, callback=after_epoch)
    assert not marker.exists()  # a worker did run into it and died
    undisturbed = anyglm.SoftmaxRegression(epochs=3, random_state=0, **PLAIN).fit(
        da.from_array(X, chunks=(30, 3)), y
    )
    np.testing.assert_array_equal(clf.coef_, undisturbed.coef_)
    assert clf.n_epochs_ == 3


def test_a_fit_that_loses_its_workers_fails_clearly_and_leaves_no_model(
    small_cluster: Any, tmp_path: Path
) -> None:
    X, y = _blobs(120, 3, 3, seed=15)
    marker = tmp_path / "die"
    Xd = da.from_array(X, chunks=(30, 3)).map_blocks(
        _die_once_marked, str(marker), True, dtype=X.dtype
    )
    clf = anyglm.SoftmaxRegression(epochs=3, random_state=0, **PLAIN)

    def after_epoch(logs: dict[str, Any]) -> None:
        marker.touch()

    with (
        small_cluster.as_current(),
        pytest.raises(RuntimeError, match="a Dask worker died while training an epoch"),
    ):
        clf.fit(Xd, y, callback=after_epoch)
    assert not hasattr(clf, "coef_") and not hasattr(clf, "n_epochs_")


# -- the command line --------------------------------------------------------------------------


def test_cli_trains_on_a_cluster_from_a_zarr_store(client: Any, tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    X, y = _blobs(200, 4, 3, seed=16)
    group = zarr.open_group(str(tmp_path / "data.zarr"), mode="w")
    group.create_array("X", shape=X.shape, chunks=(50, 4), dtype="float64")[...] = X
    group.create_array("y", shape=y.shape, chunks=(50,), dtype="int64")[...] = y
    out = subprocess.run(
        [
            sys.executable, "-m", "anyglm", "train", "--backend", "dask",
            "--scheduler", client.scheduler.address, "--data", str(tmp_path / "data.zarr"),
            "--model", "softmax", "--test-size", "0", "--no-standardize", "--epochs", "2",
            "--quiet", "--json",
        ],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert '"backend": "dask"' in out.stdout
