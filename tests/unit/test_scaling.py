"""Streaming column statistics and the standardising transform (anyglm.scaling)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from anyglm.readers import RowView
from anyglm.scaling import ColumnStats, Standardize, column_stats


def _data(n: int = 1003, d: int = 4, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(loc=[1e6, -3.0, 0.0, 7.0], scale=[1.0, 50.0, 1e-3, 2.0], size=(n, d))


@pytest.mark.parametrize("block_rows", [1, 7, 100, 5000])
def test_block_by_block_equals_numpy(block_rows: int, tmp_path: Path) -> None:
    X = _data()
    np.save(tmp_path / "X.npy", X)
    stats = column_stats(np.load(tmp_path / "X.npy", mmap_mode="r"), block_rows=block_rows)
    assert stats.n_rows == 1003 and stats.count.tolist() == [1003] * 4
    np.testing.assert_allclose(stats.mean, X.mean(axis=0), rtol=1e-14)
    # A large mean (1e6) and a small spread: the merged moments keep their precision.
    np.testing.assert_allclose(stats.std, X.std(axis=0), rtol=1e-9)


def test_rows_of_a_view_and_float32_accumulate_in_float64() -> None:
    X = _data().astype(np.float32)
    rows = np.sort(np.random.default_rng(1).choice(1003, size=400, replace=False))
    stats = column_stats(RowView(X, rows=rows), block_rows=64)
    ref = X[rows].astype(np.float64)
    np.testing.assert_allclose(stats.mean, ref.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, ref.std(axis=0), rtol=1e-9)
    assert stats.mean.dtype == np.float64


def test_missing_values_are_skipped_and_filled() -> None:
    X = _data(200)
    X[np.random.default_rng(2).random(X.shape) < 0.2] = np.nan
    stats = column_stats(X, block_rows=13, missing="ignore")
    assert stats.count.tolist() == (~np.isnan(X)).sum(axis=0).tolist()
    np.testing.assert_allclose(stats.mean, np.nanmean(X, axis=0), rtol=1e-12)
    np.testing.assert_allclose(stats.std, np.nanstd(X, axis=0), rtol=1e-9)
    for fill in (np.nanmean(X, axis=0), np.zeros(4)):
        filled = np.where(np.isnan(X), fill, X)
        after = stats.with_fill(fill)
        np.testing.assert_allclose(after.mean, filled.mean(axis=0), rtol=1e-12)
        np.testing.assert_allclose(after.std, filled.std(axis=0), rtol=1e-9)
        assert after.count.tolist() == [200] * 4


def test_a_bad_value_is_named_by_its_row_in_the_file() -> None:
    X = _data(50)
    X[37, 2] = np.inf
    X[20, 1] = np.nan
    with pytest.raises(
        ValueError, match=r"X contains NaN or infinity \(first at row 20, column 1\)"
    ):
        column_stats(X, block_rows=8)
    # NaN skipped; infinity never is. Through a view, the row is the file's.
    view = RowView(X, rows=np.arange(30, 50))
    with pytest.raises(ValueError, match=r"data contains infinity \(first at row 37, column 2\)"):
        column_stats(view, block_rows=8, missing="ignore", name="data")


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="missing must be 'error' or 'ignore'"):
        column_stats(np.ones((2, 2)), missing="drop")
    with pytest.raises(ValueError, match=r"2-D with at least one row, got shape \(0, 3\)"):
        column_stats(np.ones((0, 3)))
    with pytest.raises(ValueError, match="mean and scale together"):
        Standardize(mean=[0.0])


def test_constant_columns_scale_by_one_and_merge_is_symmetric() -> None:
    X = np.array([[1.0, 5.0], [3.0, 5.0], [8.0, 5.0]])
    a, b = column_stats(X[:1]), column_stats(X[1:])
    assert a.merge(b).scale.tolist()[1] == 1.0
    np.testing.assert_allclose(a.merge(b).m2, b.merge(a).m2)
    empty = ColumnStats(np.zeros(2, np.int64), np.zeros(2), np.zeros(2), 0)
    assert np.isnan(empty.std).all()


def test_standardize_fills_then_scales_in_float64() -> None:
    block = np.array([[np.nan, 2.0], [4.0, np.nan]], dtype=np.float32)
    out = Standardize([1.0, 2.0], [2.0, 4.0], fill=[3.0, 6.0], dtype="float32")(block)
    assert out.dtype == np.float32
    assert out.tolist() == [[1.0, 0.0], [1.5, 1.0]]
    assert np.isnan(block).sum() == 2  # the input is not changed
