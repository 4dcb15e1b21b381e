"""The command line on data that lives on disk: ``.npy`` memory maps and zarr stores.

Such data is never read whole: the split, the standardisation, the validation
hold-out and the scoring read it block by block.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm.cli import main
from anyglm.readers import RowView


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANYGLM_BACKEND", "ANYGLM_STRICT_PLUGINS", "ANYGLM_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)


def run_cli(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(args)
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    assert code == 2
    assert "Traceback" not in err and "Traceback" not in out
    lines = err.strip("\n").split("\n")
    assert len(lines) == 1, err
    assert lines[0].startswith("anyglm: error: ")
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# -- .npy and zarr data ----------------------------------------------------------------------------


def _binary(n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, 3)).astype(np.float32)
    return X, (X[:, 0] - X[:, 1] > 0).astype(np.int64)


def _record_fit(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make the CLI's Estimator record the X it is fitted on."""
    import anyglm.cli_commands

    seen: list[Any] = []

    class Recording(anyglm.Estimator):
        def fit(self, X: Any, y: Any, **kwargs: Any) -> Any:
            seen.append(X)
            return super().fit(X, y, **kwargs)

    monkeypatch.setattr(anyglm.cli_commands, "Estimator", Recording)
    return seen


def test_npy_data_is_memory_mapped_and_labels_come_from_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = _binary()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    (tmp_path / "y.txt").write_text("\n".join(map(str, y)) + "\n")
    seen = _record_fit(monkeypatch)
    base = [
        "train",
        "--data",
        str(tmp_path / "X.npy"),
        "--model",
        "logistic",
        "--json",
        "--epochs",
        "5",
        "--quiet",
    ]
    code, out, err = run_cli(
        [*base, "--labels", str(tmp_path / "y.npy"), "--test-size", "0", "--no-standardize"], capsys
    )
    assert code == 0, err
    assert isinstance(seen[-1], np.memmap) and seen[-1].filename == str(tmp_path / "X.npy")
    result = json.loads(out)
    assert result["n_train"] == 200 and result["n_test"] == 0 and "test_accuracy" not in result
    assert result["train_accuracy"] > 0.9
    # With the default split and scaling the estimator gets a lazy view of the file.
    code, out, err = run_cli([*base, "--labels", str(tmp_path / "y.txt")], capsys)
    assert code == 0 and json.loads(out)["n_test"] == 40 and err == ""
    assert isinstance(seen[-1], RowView) and seen[-1].X.filename == str(tmp_path / "X.npy")
    assert seen[-1].shape == (160, 3) and seen[-1].transform is not None


@pytest.mark.parametrize(
    ("extra", "fragments"),
    [
        ([], ["holds X only", "--labels"]),
        (["--labels", "{tmp}/short.npy"], ["3 labels", "200 rows"]),
        (["--labels", "{tmp}/nothing.npy"], ["--labels: no such file"]),
    ],
)
def test_npy_label_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[str], fragments: list[str]
) -> None:
    X, _ = _binary()
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "short.npy", np.arange(3))
    argv = ["train", "--data", str(tmp_path / "X.npy"), "--model", "logistic"]
    code, out, err = run_cli([*argv, *(e.format(tmp=tmp_path) for e in extra)], capsys)
    assert_one_line_error(code, out, err, *fragments)


def test_labels_with_an_npz_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _binary()
    np.savez(tmp_path / "d.npz", X=X, y=y)
    np.save(tmp_path / "y.npy", y)
    code, out, err = run_cli(
        [
            "train",
            "--data",
            str(tmp_path / "d.npz"),
            "--model",
            "logistic",
            "--labels",
            str(tmp_path / "y.npy"),
        ],
        capsys,
    )
    assert_one_line_error(code, out, err, "--labels", ".npz")


def test_zarr_array_is_passed_through_unread(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    zarr = pytest.importorskip("zarr")
    X, y = _binary()
    z = zarr.open_array(
        str(tmp_path / "X.zarr"), mode="w", shape=X.shape, chunks=(50, 3), dtype="float32"
    )
    z[:] = X
    group = zarr.open_group(str(tmp_path / "g.zarr"), mode="w")
    if hasattr(group, "create_array"):  # zarr 3
        group.create_array("X", data=X, chunks=(50, 3))
        group.create_array("y", data=y)
    else:  # zarr 2 (the last for Python 3.10)
        group.array("X", X, chunks=(50, 3))
        group.array("y", y)
    np.save(tmp_path / "y.npy", y)
    seen = _record_fit(monkeypatch)
    code, out, err = run_cli(
        [
            "train",
            "--data",
            str(tmp_path / "X.zarr"),
            "--labels",
            str(tmp_path / "y.npy"),
            "--model",
            "logistic",
            "--epochs",
            "5",
            "--test-size",
            "0",
            "--no-standardize",
            "--json",
            "--quiet",
        ],
        capsys,
    )
    assert code == 0, err
    assert isinstance(seen[-1], zarr.Array) and json.loads(out)["train_accuracy"] > 0.9
    monkeypatch.undo()  # a group with X and y, saved and evaluated with the real Estimator
    model = tmp_path / "m.anyglm"
    code, out, err = run_cli(
        [
            "train",
            "--data",
            str(tmp_path / "g.zarr"),
            "--model",
            "logistic",
            "--epochs",
            "5",
            "--json",
            "--quiet",
            "--out",
            str(model),
        ],
        capsys,
    )
    assert code == 0, err
    trained = json.loads(out)
    code, out, err = run_cli(
        ["eval", str(model), "--data", str(tmp_path / "g.zarr"), "--json"], capsys
    )
    assert code == 0, err
    assert json.loads(out)["accuracy"] == trained["test_accuracy"]


def test_zarr_missing_names_the_extra(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "X.zarr").mkdir()
    monkeypatch.setitem(sys.modules, "zarr", None)  # import zarr now raises ImportError
    code, out, err = run_cli(
        ["train", "--data", str(tmp_path / "X.zarr"), "--model", "linear"], capsys
    )
    assert_one_line_error(code, out, err, 'pip install "anyglm[zarr]"')


# -- never read whole ------------------------------------------------------------------------------


class SpyArray:
    """An array on disk that records the rows of every read and refuses to be read whole."""

    def __init__(self, X: np.ndarray) -> None:
        self._X = X
        self.shape = X.shape
        self.dtype = X.dtype
        self.ndim = X.ndim
        self.reads: list[int] = []

    def __len__(self) -> int:
        return int(self.shape[0])

    def __getitem__(self, key: Any) -> np.ndarray:
        out = np.asarray(self._X[key])
        self.reads.append(int(out.shape[0]) if out.ndim == 2 else 1)
        return out

    def __array__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        raise AssertionError("X was read whole")


def _spy_on_npy(monkeypatch: pytest.MonkeyPatch, name: str) -> list[SpyArray]:
    """``np.load`` of a file called ``name`` returns a SpyArray over its memory map."""
    real_load = np.load
    spies: list[SpyArray] = []

    def load(path: Any, *args: Any, **kwargs: Any) -> Any:
        out = real_load(path, *args, **kwargs)
        if Path(path).name == name:
            spies.append(SpyArray(out))
            return spies[-1]
        return out

    monkeypatch.setattr(np, "load", load)
    return spies


def _files(tmp_path: Path, data: str = "X.npy") -> list[str]:
    return ["--data", str(tmp_path / data), "--labels", str(tmp_path / "y.npy")]


def _float_binary(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.normal(loc=[3.0, -2.0, 50.0], scale=[1.0, 4.0, 20.0], size=(n, 3))
    return X, ((X[:, 0] - 3.0) - (X[:, 1] + 2.0) / 4 > 0).astype(np.int64)


def test_default_split_and_scaling_read_x_block_by_block(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import anyglm.sources

    X, y = _float_binary(300)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    argv = ["train", *_files(tmp_path), "--model", "logistic", "--epochs", "8", "--json", "--quiet"]
    code, out, err = run_cli(argv, capsys)  # default blocks: the whole file is one block
    assert code == 0, err
    whole = json.loads(out)

    block = 16  # rows of 3 float64 features
    monkeypatch.setattr(anyglm.sources, "DEFAULT_BLOCK_BYTES", block * 3 * 8)
    spies = _spy_on_npy(monkeypatch, "X.npy")
    model = tmp_path / "m.anyglm"
    code, out, err = run_cli(
        [
            *argv,
            "--out",
            str(model),
        ],
        capsys,
    )
    assert code == 0, err
    assert err == ""  # no note about reading X into memory: it is not
    spy = spies[-1]
    assert spy.reads and max(spy.reads) <= block
    # Every training row is read once for the statistics and once per epoch, the
    # validation rows once per epoch to score them, and the training and test rows to score.
    assert sum(spy.reads) >= 240 + 8 * 240 + 300
    result = json.loads(out)
    assert (result["n_train"], result["n_test"]) == (240, 60)
    assert "final_val_accuracy" in result  # the default --validation-fraction 0.1
    # Other blocks, another SGD order: close to the one-block run, not equal.
    assert result["test_accuracy"] == pytest.approx(whole["test_accuracy"], abs=0.05)
    assert result["test_accuracy"] > 0.9

    code, out, err = run_cli(
        ["eval", str(model), *_files(tmp_path), "--json"],
        capsys,
    )
    assert code == 0, err
    assert max(spies[-1].reads) <= block
    assert json.loads(out)["accuracy"] == pytest.approx(result["test_accuracy"], abs=1e-12)


def test_on_disk_training_equals_the_in_memory_fit_of_the_same_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = _float_binary(250)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    model = tmp_path / "m.anyglm"
    code, _, err = run_cli(
        [
            "train",
            *_files(tmp_path),
            "--model",
            "logistic",
            "--epochs",
            "6",
            "--quiet",
            "--out",
            str(model),
        ],
        capsys,
    )
    assert code == 0, err
    # The CLI's split (file order on disk), standardisation and folding, in memory.
    n_test = round(0.2 * 250)
    train = np.sort(np.random.default_rng(0).permutation(250)[n_test:])
    X_tr = X[train]
    mean, std = X_tr.mean(axis=0), X_tr.std(axis=0)
    ref = anyglm.Estimator("logistic", epochs=6, random_state=0, validation_fraction=0.1)
    ref.fit((X_tr - mean) / std, y[train])
    W = ref.coef_.reshape(1, -1)
    disk = anyglm.load(model)
    np.testing.assert_allclose(disk.coef_.reshape(1, -1), W / std, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        disk.intercept_, ref.intercept_ - (mean / std) @ W.ravel(), rtol=1e-10, atol=1e-12
    )
    assert disk.history_["val_score"] == pytest.approx(ref.history_["val_score"])


@pytest.mark.parametrize("kind", ["npy", "zarr"])
def test_the_defaults_work_on_a_small_file(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = _float_binary(60)
    if kind == "zarr":
        zarr = pytest.importorskip("zarr")
        data = tmp_path / "X.zarr"
        z = zarr.open_array(str(data), mode="w", shape=X.shape, chunks=(16, 3), dtype="float64")
        z[:] = X
    else:
        data = tmp_path / "X.npy"
        np.save(data, X)
    np.save(tmp_path / "y.npy", y)
    metrics = tmp_path / "metrics.json"
    code, out, err = run_cli(
        [
            "train",
            *_files(tmp_path, data.name),
            "--model",
            "logistic",
            "--epochs",
            "4",
            "--quiet",
            "--json",
            "--metrics",
            str(metrics),
        ],
        capsys,
    )
    assert code == 0, err
    result = json.loads(out)
    # 48 training rows, of which round(0.1 * 48) = 5 are held out to score every epoch.
    assert (result["n_train"], result["n_test"]) == (48, 12)
    history = json.loads(metrics.read_text())["history"]
    assert len(history["val_score"]) == len(history["val_loss"]) == 4
    assert all(v in {k / 5 for k in range(6)} for v in history["val_score"])


def test_nan_on_disk_is_named_by_its_row_or_imputed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = _float_binary(100)
    train = np.sort(np.random.default_rng(0).permutation(100)[20:])
    X[train[30], 2] = np.nan
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    argv = ["train", *_files(tmp_path), "--model", "logistic", "--epochs", "3", "--quiet"]
    code, out, err = run_cli(argv, capsys)
    assert_one_line_error(
        code, out, err, f"contains NaN or infinity (first at row {train[30]}, column 2)", "--impute"
    )
    code, out, err = run_cli([*argv, "--impute", "median"], capsys)
    assert_one_line_error(code, out, err, "--impute median", "--impute mean or zero")

    model = tmp_path / "m.anyglm"
    code, out, err = run_cli(
        [
            *argv,
            "--impute",
            "mean",
            "--out",
            str(model),
        ],
        capsys,
    )
    assert code == 0, err
    fill = anyglm.load(model).file_metadata_["impute"]
    assert fill["strategy"] == "mean"
    np.testing.assert_allclose(fill["values"], np.nanmean(X[train], axis=0), rtol=1e-12)
    # eval and predict fill the cell with the training value, reading the file by blocks.
    code, out, err = run_cli(["predict", str(model), "--data", str(tmp_path / "X.npy")], capsys)
    assert code == 0, err
    filled = np.where(np.isnan(X), fill["values"], X)
    assert [int(v) for v in out.split()] == anyglm.load(model).predict(filled).tolist()


def test_tune_on_disk(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    X, y = _float_binary(200)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    code, out, err = run_cli(
        [
            "tune",
            *_files(tmp_path),
            "--model",
            "logistic",
            "--epochs",
            "3",
            "--quiet",
            "--json",
            "--learning-rate",
            "0.1",
            "--alpha",
            "0",
        ],
        capsys,
    )
    assert code == 0
    assert "tune reads the training rows" in err and len(err.strip().splitlines()) == 1
    assert json.loads(out)["test_accuracy"] > 0.9


@pytest.mark.parametrize("suffix", ["npy", "npz"])
def test_float32_data_trains_in_float32(
    suffix: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    X, y = _float_binary(80)
    X = X.astype(np.float32)
    if suffix == "npy":
        np.save(tmp_path / "X.npy", X)
        np.save(tmp_path / "y.npy", y)
        data = _files(tmp_path)
    else:
        np.savez(tmp_path / "d.npz", X=X, y=y)
        data = ["--data", str(tmp_path / "d.npz")]
    model = tmp_path / "m.anyglm"
    code, _, err = run_cli(
        [
            "train",
            *data,
            "--model",
            "logistic",
            "--epochs",
            "2",
            "--quiet",
            "--out",
            str(model),
        ],
        capsys,
    )
    assert code == 0, err
    assert anyglm.load(model).coef_.dtype == np.float32
