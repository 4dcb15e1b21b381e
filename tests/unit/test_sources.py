"""Data sources: arrays on disk and sparse matrices train and predict block by block.

What an epoch reads (every training row once, blocks in shuffled order, each
block read once and never all of X), that a file of one block trains bitwise
like the same array in memory, that bad data is reported by row without
touching the estimator or the file, and that sparse input never densifies.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.readers import RowView
from anyglm.sources import BlockSource, default_block_rows

RNG = np.random.default_rng(0)
N, D = 600, 7
X0 = RNG.normal(size=(N, D))
Y_LIN = X0 @ RNG.normal(size=D) + 0.1 * RNG.normal(size=N)
Y_BIN = (X0[:, 0] - X0[:, 1] > 0).astype(np.int64)
Y_MULTI = np.argmax(X0[:, :3] + 0.3 * RNG.normal(size=(N, 3)), axis=1)


def _npy(tmp_path: Path, X: np.ndarray, name: str = "X.npy", read_only: bool = False) -> Any:
    path = tmp_path / name
    np.save(path, X)
    if read_only:
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP)
    return np.load(path, mmap_mode="r")


class SpyArray:
    """An array on disk that records every row range read from it (zarr-like slicing)."""

    __module__ = "zarr.fake"  # read like a zarr array: by row slices

    def __init__(self, X: np.ndarray) -> None:
        self._X = X
        self.shape, self.dtype = X.shape, X.dtype
        self.reads: list[tuple[int, int]] = []

    def __getitem__(self, key: Any) -> np.ndarray:
        assert isinstance(key, slice), f"read by {key!r}, not by a row slice"
        start, stop, _ = key.indices(self.shape[0])
        self.reads.append((start, stop))
        return self._X[key].copy()


# -- what a block source reads ----------------------------------------------------------------


def test_an_epoch_visits_every_row_once_in_shuffled_blocks() -> None:
    be = anyglm.get_backend("numpy")
    X = np.arange(50.0).reshape(50, 1)
    src = BlockSource(be, X, np.zeros(50), lambda t: t.reshape(-1, 1), dtype="float64",
                      block_rows=8)  # fmt: skip
    rng = np.random.default_rng(0)
    epochs = []
    for _ in range(2):
        seen = []
        for blk in src.blocks(rng, shuffle=True):
            seen.extend((blk.X[blk.order, 0]).tolist())
            assert blk.order is not None and len(blk.order) == blk.X.shape[0] <= 8
        assert sorted(seen) == list(range(50))  # every row once
        epochs.append(seen)
    assert epochs[0] != epochs[1] and epochs[0] != sorted(epochs[0])  # reshuffled


def test_blocks_are_read_once_each_by_slices_never_whole() -> None:
    spy = SpyArray(X0)
    est = anyglm.LinearRegression(epochs=2, random_state=0, block_rows=128)
    est.fit(spy, Y_LIN)
    assert all(stop - start <= 128 for start, stop in spy.reads)
    per_epoch = -(-N // 128)
    # One read per block per epoch, and one pass before training for the
    # data-derived step and the early-stopping sample (learning_rate="auto").
    assert len(spy.reads) == (2 + 1) * per_epoch
    spy.reads.clear()
    anyglm.LinearRegression(epochs=2, learning_rate=0.01, n_iter_no_change=None,
                            block_rows=128).fit(spy, Y_LIN)  # fmt: skip
    assert len(spy.reads) == 2 * per_epoch  # nothing to derive: no pass before training
    spy.reads.clear()
    est.predict(spy)
    assert all(stop - start <= 128 for start, stop in spy.reads)


@pytest.mark.parametrize("validation_fraction", [0.0, 0.25])
@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_a_file_of_one_block_trains_bitwise_like_memory(
    tmp_path: Path, model: str, validation_fraction: float
) -> None:
    y = {"linear": Y_LIN, "logistic": Y_BIN, "softmax": Y_MULTI}[model]
    Xm = _npy(tmp_path, X0)
    params = {"epochs": 3, "random_state": 0, "validation_fraction": validation_fraction}
    mem = anyglm.Estimator(model, **params).fit(X0, y)
    disk = anyglm.Estimator(model, **params).fit(Xm, y)
    np.testing.assert_array_equal(mem.coef_, disk.coef_)
    np.testing.assert_array_equal(mem.intercept_, disk.intercept_)
    assert mem.history_ == disk.history_
    np.testing.assert_array_equal(mem.predict(X0), disk.predict(Xm))


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_many_blocks_train_as_well_as_memory(tmp_path: Path, model: str) -> None:
    y = {"linear": Y_LIN, "logistic": Y_BIN, "softmax": Y_MULTI}[model]
    Xm = _npy(tmp_path, X0)
    mem = anyglm.Estimator(model, epochs=20, random_state=0).fit(X0, y)
    disk = anyglm.Estimator(model, epochs=20, random_state=0, block_rows=100).fit(Xm, y)
    assert abs(mem.score(X0, y) - disk.score(Xm, y)) < 0.02
    again = anyglm.Estimator(model, epochs=20, random_state=0, block_rows=100).fit(Xm, y)
    np.testing.assert_array_equal(disk.coef_, again.coef_)  # the seed fixes the blocks' order


def test_validation_rows_are_held_out_of_training(tmp_path: Path) -> None:
    Xm = _npy(tmp_path, X0)
    est = anyglm.LogisticRegression(epochs=3, random_state=0, validation_fraction=0.2,
                                    block_rows=64)  # fmt: skip
    est.fit(Xm, Y_BIN)
    assert len(est.history_["val_score"]) == 3
    assert all(0.5 < v <= 1.0 for v in est.history_["val_score"])


def test_float64_file_trains_in_float32_blocks(tmp_path: Path) -> None:
    Xm = _npy(tmp_path, X0)
    est = anyglm.SoftmaxRegression(epochs=3, random_state=0, dtype="float32", block_rows=50)
    est.fit(Xm, Y_MULTI)
    assert est.coef_.dtype == np.float32
    ref = anyglm.SoftmaxRegression(epochs=3, random_state=0, dtype="float32", block_rows=50)
    ref.fit(_npy(tmp_path, X0.astype(np.float32), "X32.npy"), Y_MULTI)
    np.testing.assert_array_equal(est.coef_, ref.coef_)


def test_fortran_ordered_and_sliced_memmaps(tmp_path: Path) -> None:
    XF = np.asfortranarray(X0)
    np.save(tmp_path / "F.npy", XF)
    Xf = np.load(tmp_path / "F.npy", mmap_mode="r")
    assert Xf.flags.f_contiguous
    a = anyglm.LinearRegression(epochs=2, random_state=0, block_rows=100).fit(Xf, Y_LIN)
    b = anyglm.LinearRegression(epochs=2, random_state=0, block_rows=100).fit(
        _npy(tmp_path, X0), Y_LIN
    )
    np.testing.assert_array_equal(a.coef_, b.coef_)
    # A slice of a memory map reads from its own offset in the file.
    whole = _npy(tmp_path, np.vstack([np.full((5, D), 99.0), X0]), "padded.npy")
    c = anyglm.LinearRegression(epochs=2, random_state=0, block_rows=100).fit(whole[5:], Y_LIN)
    np.testing.assert_array_equal(c.coef_, b.coef_)


def test_default_blocks_hold_about_64_megabytes() -> None:
    rows = default_block_rows(784, 4)
    assert 60 * 2**20 <= rows * 784 * 4 <= 64 * 2**20


def test_a_row_view_holds_out_and_transforms_without_a_copy(tmp_path: Path) -> None:
    Xm = _npy(tmp_path, X0)
    rows = np.arange(0, N, 2)
    mean, scale = X0.mean(axis=0), X0.std(axis=0)
    view = RowView(Xm, rows=rows, transform=lambda A: (A - mean) / scale)
    est = anyglm.LinearRegression(epochs=3, random_state=0).fit(view, Y_LIN[rows])
    ref = anyglm.LinearRegression(epochs=3, random_state=0).fit((X0[rows] - mean) / scale,
                                                                 Y_LIN[rows])  # fmt: skip
    np.testing.assert_allclose(est.coef_, ref.coef_, rtol=1e-12)
    with pytest.raises(TypeError, match="row slices"):
        view[3]
    with pytest.raises(ValueError, match="rows must lie in"):
        RowView(Xm, rows=np.array([N]))


# -- bad data, found while streaming -----------------------------------------------------------


def test_a_nan_in_the_middle_of_a_file_names_the_row_and_changes_nothing(tmp_path: Path) -> None:
    X = X0.copy()
    X[437, 3] = np.nan
    Xm = _npy(tmp_path, X, read_only=True)
    path = tmp_path / "X.npy"
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    fresh = anyglm.LinearRegression(epochs=2, random_state=0, block_rows=100)
    with pytest.raises(ValueError, match=r"NaN or infinity \(first at row 437, column 3\)"):
        fresh.fit(Xm, Y_LIN)
    assert not hasattr(fresh, "coef_")  # no half-fitted state
    fitted = anyglm.LinearRegression(epochs=2, random_state=0).fit(X0, Y_LIN)
    coef, history = fitted.coef_.copy(), dict(fitted.history_)
    with pytest.raises(ValueError, match="row 437"):
        fitted.fit(Xm, Y_LIN)
    np.testing.assert_array_equal(fitted.coef_, coef)  # the previous fit is kept whole
    assert fitted.history_ == history
    assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
    with pytest.raises(ValueError, match="row 437"):
        fitted.predict(Xm)


def test_a_fit_that_fails_while_streaming_keeps_the_previous_rates(tmp_path: Path) -> None:
    # Without a stopping rule no pass over the rows precedes training: the NaN is met in
    # the first epoch, after the rates were chosen, and those must not be adopted.
    X = X0.copy()
    X[437, 3] = np.nan
    Xm = _npy(tmp_path, X, read_only=True)
    est = anyglm.LinearRegression(
        epochs=2, learning_rate=0.01, alpha=0.0, n_iter_no_change=None, random_state=0
    ).fit(X0, Y_LIN)
    est.set_params(learning_rate=0.5, alpha=0.3, block_rows=100)
    with pytest.raises(ValueError, match="row 437"):
        est.fit(Xm, Y_LIN)
    assert (est.learning_rate_, est.alpha_) == (0.01, 0.0)


def test_bad_shapes_and_dtypes_on_disk(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be 2-D"):
        anyglm.LinearRegression().fit(_npy(tmp_path, X0[:, 0], "one.npy"), Y_LIN)
    with pytest.raises(ValueError, match="Complex data not supported"):
        anyglm.LinearRegression().fit(_npy(tmp_path, X0 + 0j, "c.npy"), Y_LIN)
    with pytest.raises(ValueError, match="has 500 rows but X has 600"):
        anyglm.LinearRegression().fit(_npy(tmp_path, X0), Y_LIN[:500])
    est = anyglm.LinearRegression(epochs=1).fit(X0, Y_LIN)
    with pytest.raises(ValueError, match="X has 6 features, but LinearRegression is expecting"):
        est.predict(_npy(tmp_path, X0[:, :6], "six.npy"))


# -- zarr --------------------------------------------------------------------------------------


def test_zarr_arrays_train_and_predict_by_chunks(tmp_path: Path) -> None:
    zarr = pytest.importorskip("zarr")
    z = zarr.open(str(tmp_path / "X.zarr"), mode="w", shape=X0.shape, chunks=(128, D),
                  dtype="f8")  # fmt: skip
    z[:] = X0
    zr = zarr.open(str(tmp_path / "X.zarr"), mode="r")
    est = anyglm.SoftmaxRegression(epochs=3, random_state=0).fit(zr, Y_MULTI)
    ref = anyglm.SoftmaxRegression(epochs=3, random_state=0, block_rows=est.block_rows)
    ref.fit(_npy(tmp_path, X0), Y_MULTI)
    assert est.score(zr, Y_MULTI) > 0.8
    np.testing.assert_array_equal(est.predict(zr), est.predict(X0))


# -- sparse ------------------------------------------------------------------------------------


def _sparse(density: float = 0.05, seed: int = 1) -> Any:
    sp = pytest.importorskip("scipy.sparse")
    return sp.random(400, 60, density=density, format="csr", random_state=seed) * 3.0


@pytest.mark.parametrize("model", ["linear", "logistic", "softmax"])
def test_sparse_input_gives_the_dense_parameters(model: str) -> None:
    Xs = _sparse()
    Xd = Xs.toarray()
    rng = np.random.default_rng(2)
    y = {
        "linear": Xd @ rng.normal(size=60),
        "logistic": (Xd[:, :5].sum(axis=1) > 0.4).astype(int),
        "softmax": np.argmax(Xd[:, :3] + 0.01 * rng.normal(size=(400, 3)), axis=1),
    }[model]
    params = {"epochs": 5, "random_state": 0, "dtype": "float64", "validation_fraction": 0.2}
    sparse = anyglm.Estimator(model, **params).fit(Xs, y)
    dense = anyglm.Estimator(model, **params).fit(Xd, y)
    np.testing.assert_allclose(sparse.coef_, dense.coef_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sparse.intercept_, dense.intercept_, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sparse.decision_function(Xs), dense.decision_function(Xd),
                               atol=1e-10)  # fmt: skip
    np.testing.assert_allclose(sparse.history_["val_loss"], dense.history_["val_loss"],
                               atol=1e-10)  # fmt: skip


def test_sparse_input_is_never_changed_and_csc_works() -> None:
    Xs = _sparse()
    y = (Xs.toarray()[:, 0] > 0).astype(int)
    csc = Xs.tocsc()
    data_before = csc.data.copy()
    a = anyglm.LogisticRegression(epochs=3, random_state=0).fit(csc, y)
    b = anyglm.LogisticRegression(epochs=3, random_state=0).fit(Xs, y)
    np.testing.assert_allclose(a.coef_, b.coef_, atol=1e-12)
    assert csc.format == "csc"
    np.testing.assert_array_equal(csc.data, data_before)


def test_bad_sparse_input_is_named() -> None:
    Xs = _sparse().astype(np.float64)
    Xs.data[7] = np.inf
    row = int(np.searchsorted(Xs.indptr, 7, side="right") - 1)
    with pytest.raises(ValueError, match=f"NaN or infinity \\(first at row {row}, column"):
        anyglm.LinearRegression().fit(Xs, np.zeros(400))
    with pytest.raises(TypeError, match="sparse input trains on the 'numpy' backend"):
        anyglm.LinearRegression(backend="array_api_strict").fit(_sparse(), np.zeros(400))
