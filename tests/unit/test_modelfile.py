"""Model files: round trips, across backends, the on-disk format, atomic writes, bad files."""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from pathlib import Path
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm import modelfile
from anyglm.errors import BackendUnavailableError, ModelFileError, UnknownNameError

_RNG = np.random.default_rng(2)
X0 = _RNG.normal(size=(30, 4))
Y_BIN = (X0[:, 0] + X0[:, 1] > 0).astype(np.int64)
Y_3 = np.digitize(X0[:, 0], [-0.5, 0.5]).astype(np.int64)
Y_REG = X0 @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.5
FAST = {"epochs": 4, "learning_rate": 0.2, "batch_size": 8, "random_state": 0}


def _np(a: Any) -> np.ndarray:
    if type(a).__module__.startswith("array_api_strict"):
        import array_api_strict as xps

        return np.asarray(a.to_device(xps.Device("CPU_DEVICE")))
    return np.asarray(a)


def _is_strict(a: Any) -> bool:
    return type(a).__module__.startswith("array_api_strict")


# Each case: a fitted estimator factory and what to compare after loading.
CASES = {
    "linear": lambda: anyglm.LinearRegression(**FAST).fit(X0, Y_REG),
    "linear-2d": lambda: anyglm.LinearRegression(**FAST).fit(X0, np.stack([Y_REG, -Y_REG], 1)),
    "logistic": lambda: anyglm.LogisticRegression(**FAST).fit(X0, Y_BIN),
    "softmax": lambda: anyglm.SoftmaxRegression(**FAST).fit(X0, Y_3),
    "estimator-softmax": lambda: anyglm.Estimator("softmax", **FAST).fit(X0, Y_3),
    "logistic-float32": lambda: anyglm.LogisticRegression(**FAST).fit(X0.astype(np.float32), Y_BIN),
    "softmax-validation": lambda: anyglm.SoftmaxRegression(
        validation_fraction=0.2, class_weight="balanced", **FAST
    ).fit(X0, Y_3),
}


def _outputs(est: Any, X: Any) -> dict[str, np.ndarray]:
    out = {"predict": _np(est.predict(X)), "decision": _np(est.decision_function(X))}
    if hasattr(est, "classes_"):
        out["proba"] = _np(est.predict_proba(X))
    return out


@pytest.fixture
def saved(tmp_path: Path) -> tuple[Any, Path]:
    est = anyglm.SoftmaxRegression(**FAST).fit(X0, Y_3)
    path = tmp_path / "model.anyglm"
    est.save(path)
    return est, path


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(CASES))
def test_round_trip(case: str, tmp_path: Path) -> None:
    est = CASES[case]()
    path = tmp_path / f"{case}.anyglm"
    assert est.save(path) is None
    loaded = anyglm.load(path)
    assert type(loaded) is type(est)
    assert loaded.get_params() == {**est.get_params(), "backend": "numpy"}
    assert loaded.backend_ == "numpy"
    assert loaded.n_features_in_ == est.n_features_in_
    assert loaded.n_epochs_ == est.n_epochs_
    assert loaded.history_ == est.history_
    assert loaded.coef_.dtype == est.coef_.dtype
    assert np.array_equal(_np(loaded.coef_), _np(est.coef_))
    assert np.array_equal(_np(loaded.intercept_), _np(est.intercept_))
    if hasattr(est, "classes_"):
        assert np.array_equal(loaded.classes_, est.classes_)
    else:
        assert not hasattr(loaded, "classes_")
    X = X0[:7] + 0.3
    for key, value in _outputs(est, X).items():
        assert np.array_equal(_outputs(loaded, X)[key], value), key
    assert loaded.score(X0, est.predict(X0)) == pytest.approx(1.0)


def test_loaded_model_can_be_refit(saved: tuple[Any, Path]) -> None:
    est, path = saved
    loaded = anyglm.load(path)
    loaded.fit(X0, Y_3)
    assert np.array_equal(_np(loaded.coef_), _np(est.coef_))  # same params and seed


def test_path_as_str(saved: tuple[Any, Path]) -> None:
    est, path = saved
    other = str(path.with_name("again.anyglm"))
    est.save(other)
    assert np.array_equal(anyglm.load(other).predict(X0), est.predict(X0))


# -- across backends ------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["linear", "logistic", "softmax", "logistic-float32"])
def test_numpy_to_array_api_strict(case: str, tmp_path: Path) -> None:
    xps = pytest.importorskip("array_api_strict")
    est = CASES[case]()
    path = tmp_path / "m.anyglm"
    est.save(path)
    loaded = anyglm.load(path, backend="array_api_strict")
    assert loaded.backend_ == "array_api_strict" and loaded.backend == "array_api_strict"
    assert _is_strict(loaded.coef_)
    assert loaded.coef_.dtype == (xps.float32 if "float32" in case else xps.float64)
    np.testing.assert_allclose(_np(loaded.coef_), _np(est.coef_), rtol=0, atol=0)
    # strict input -> strict output, equal to the NumPy model's answers
    Xs = xps.asarray(X0)
    pred = loaded.predict(Xs)
    assert _is_strict(pred)
    assert np.array_equal(_np(pred), _np(est.predict(X0)))
    np.testing.assert_allclose(
        _np(loaded.decision_function(Xs)), est.decision_function(X0), rtol=1e-6, atol=1e-6
    )
    # NumPy input to the loaded strict model -> NumPy output
    assert isinstance(loaded.predict(X0), np.ndarray)


@pytest.mark.parametrize("cls", [anyglm.LinearRegression, anyglm.SoftmaxRegression])
def test_array_api_strict_to_numpy(cls: type, tmp_path: Path) -> None:
    xps = pytest.importorskip("array_api_strict")
    y = Y_REG if cls is anyglm.LinearRegression else Y_3
    X = xps.asarray(X0, device=xps.Device("device1"))
    est = cls(**FAST).fit(X, y)
    assert est.backend_ == "array_api_strict"
    path = tmp_path / "m.anyglm"
    est.save(path)
    on_numpy = anyglm.load(path, backend="numpy")
    assert isinstance(on_numpy.coef_, np.ndarray) and on_numpy.backend_ == "numpy"
    assert np.array_equal(on_numpy.coef_, _np(est.coef_))
    assert np.array_equal(on_numpy.predict(X0), _np(est.predict(X)))
    # backend=None: the backend it was trained on, when available here
    again = anyglm.load(path)
    assert again.backend_ == "array_api_strict" and _is_strict(again.coef_)
    assert np.array_equal(_np(again.predict(xps.asarray(X0))), _np(est.predict(X)))


def test_saved_backend_unavailable_falls_back_to_numpy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("array_api_strict")
    est = anyglm.LinearRegression(backend="array_api_strict", **FAST).fit(X0, Y_REG)
    path = tmp_path / "m.anyglm"
    est.save(path)
    be = anyglm.get_backend("array_api_strict")
    monkeypatch.setitem(be.__dict__, "_unavailable_reason", "pretend it is not installed")
    loaded = anyglm.load(path)
    assert loaded.backend_ == "numpy" and isinstance(loaded.coef_, np.ndarray)
    with pytest.raises(BackendUnavailableError, match="pretend it is not installed"):
        anyglm.load(path, backend="array_api_strict")


# -- labels ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "names"),
    [
        (anyglm.LogisticRegression, ["benign", "malignant"]),
        (anyglm.SoftmaxRegression, ["ant", "bee", "cow"]),
    ],
)
def test_string_classes_survive(cls: type, names: list[str], tmp_path: Path) -> None:
    idx = Y_BIN if len(names) == 2 else Y_3
    y = np.array(names, dtype=object)[idx]  # object dtype in, strings out
    est = cls(**FAST).fit(X0, y)
    path = tmp_path / "m.anyglm"
    est.save(path)
    loaded = anyglm.load(path)
    assert loaded.classes_.tolist() == names
    pred = loaded.predict(X0)
    assert pred.tolist() == est.predict(X0).tolist()
    assert all(isinstance(p, str) for p in pred.tolist())
    assert loaded.score(X0, y) == est.score(X0, y)


def test_numeric_classes_survive(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(**FAST).fit(X0, np.array([3, 7])[Y_BIN])
    est.save(tmp_path / "m.anyglm")
    loaded = anyglm.load(tmp_path / "m.anyglm")
    assert loaded.classes_.tolist() == [3, 7]
    assert loaded.classes_.dtype.kind == "i"
    assert np.array_equal(loaded.predict(X0), est.predict(X0))


def test_unsaveable_labels_give_type_error(tmp_path: Path) -> None:
    y = np.array([1, "one"], dtype=object)[Y_BIN]
    est = anyglm.LogisticRegression(**FAST).fit(X0, y)
    with pytest.raises(TypeError, match="only numeric or string class labels can be saved"):
        est.save(tmp_path / "m.anyglm")
    assert list(tmp_path.iterdir()) == []


# -- the format -----------------------------------------------------------------------------


def test_file_is_a_zip_with_metadata_and_plain_arrays(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(**FAST).fit(X0, np.array(["no", "yes"])[Y_BIN])
    path = tmp_path / "m.anyglm"
    est.save(path)
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None
        names = set(zf.namelist())
        assert names == {"metadata.json", "W.npy", "b.npy", "classes.npy"}
        meta = json.loads(zf.read("metadata.json").decode("utf-8"))
        arrays = {
            n: np.load(io.BytesIO(zf.read(n)), allow_pickle=False)
            for n in names
            if n != "metadata.json"
        }
    assert meta["format"] == "anyglm-model"
    assert meta["format_version"] == modelfile.FORMAT_VERSION and isinstance(
        meta["format_version"], int
    )
    assert meta["anyglm_version"] == anyglm.__version__
    assert meta["estimator"] == "LogisticRegression"
    assert meta["model"] == "logistic"
    assert meta["dtype"] == "float64"
    assert meta["n_features_in"] == 4
    assert meta["params"]["epochs"] == FAST["epochs"]
    assert meta["params"]["learning_rate"] == FAST["learning_rate"]
    assert meta["history"] == est.history_
    for a in arrays.values():
        assert a.dtype.kind != "O"  # nothing that needs pickle
    assert arrays["classes.npy"].tolist() == ["no", "yes"]
    W, b = arrays["W.npy"], arrays["b.npy"]
    assert W.shape == (4, 1) and b.shape == (1,)
    np.testing.assert_array_equal(W[:, 0], np.asarray(est.coef_).reshape(-1))
    np.testing.assert_array_equal(b, np.asarray(est.intercept_).reshape(-1))


def test_generator_random_state_is_not_pickled(tmp_path: Path) -> None:
    est = anyglm.LinearRegression(epochs=2, random_state=np.random.default_rng(0)).fit(X0, Y_REG)
    est.save(tmp_path / "m.anyglm")
    with zipfile.ZipFile(tmp_path / "m.anyglm") as zf:
        meta = json.loads(zf.read("metadata.json"))
    assert meta["params"]["random_state"] is None
    assert anyglm.load(tmp_path / "m.anyglm").random_state is None


# -- atomic writes ----------------------------------------------------------------------------


def test_save_replaces_existing_file(saved: tuple[Any, Path]) -> None:
    est, path = saved
    path.write_bytes(b"an old file that is not a model")
    est.save(path)
    assert np.array_equal(anyglm.load(path).predict(X0), est.predict(X0))
    # overwrite a model with another model
    other = anyglm.LinearRegression(**FAST).fit(X0, Y_REG)
    other.save(path)
    assert type(anyglm.load(path)) is anyglm.LinearRegression
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.anyglm"]


def test_no_temporary_files_left(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(**FAST).fit(X0, Y_BIN)
    for i in range(3):
        est.save(tmp_path / f"m{i}.anyglm")
    est.save(tmp_path / "m0.anyglm")
    assert sorted(os.listdir(tmp_path)) == ["m0.anyglm", "m1.anyglm", "m2.anyglm"]


def test_failed_write_keeps_old_file_and_leaves_no_temp(
    saved: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = saved
    before = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(modelfile.os, "replace", broken_replace)
    other = anyglm.LinearRegression(**FAST).fit(X0, Y_REG)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.anyglm"]


def test_save_into_missing_folder(saved: tuple[Any, Path]) -> None:
    est, path = saved
    target = path.parent / "no" / "such" / "folder" / "m.anyglm"
    with pytest.raises(FileNotFoundError, match=re.escape(str(target.parent))):
        est.save(target)
    assert not target.parent.exists()


# -- bad files ------------------------------------------------------------------------------


def _rezip(path: Path, out: Path, *, edit: Any = None, drop: tuple[str, ...] = ()) -> Path:
    """Copy a model file, editing metadata.json (a function of the dict) or dropping members."""
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w") as zo:
        for name in zi.namelist():
            if name in drop:
                continue
            data = zi.read(name)
            if name == "metadata.json" and edit is not None:
                data = json.dumps(edit(json.loads(data))).encode()
            zo.writestr(name, data)
    return out


def _member_data_span(path: Path, member: str) -> tuple[int, int]:
    """Byte range of a member's compressed data inside the zip."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
    raw = path.read_bytes()
    header = info.header_offset
    name_len = int.from_bytes(raw[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28 : header + 30], "little")
    start = header + 30 + name_len + extra_len
    return start, start + info.compress_size


def _load_error(path: Path, match: str) -> ModelFileError:
    with pytest.raises(ModelFileError, match=match) as info:
        anyglm.load(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)  # the message names the file
    return info.value


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.1])
def test_truncated_file(saved: tuple[Any, Path], fraction: float) -> None:
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * fraction)])
    _load_error(path, r"not an anyglm model file \(not a zip archive, or truncated\)")


def test_empty_file(saved: tuple[Any, Path]) -> None:
    _, path = saved
    path.write_bytes(b"")
    _load_error(path, "not a zip archive, or truncated")


@pytest.mark.parametrize("member", ["metadata.json", "W.npy", "b.npy", "classes.npy"])
@pytest.mark.parametrize("how", ["zeroed", "inverted", "middle-bytes"])
def test_corrupted_member(saved: tuple[Any, Path], member: str, how: str) -> None:
    _, path = saved
    start, stop = _member_data_span(path, member)
    raw = bytearray(path.read_bytes())
    if how == "zeroed":
        raw[start:stop] = bytes(stop - start)
    elif how == "inverted":
        raw[start:stop] = bytes(b ^ 0xFF for b in raw[start:stop])
    else:
        mid = (start + stop) // 2
        raw[mid : mid + 4] = bytes(b ^ 0x5A for b in raw[mid : mid + 4])
    path.write_bytes(bytes(raw))
    _load_error(path, r"corrupted|unreadable|not an anyglm model file|not a complete")


def test_corrupted_central_directory(saved: tuple[Any, Path]) -> None:
    _, path = saved
    raw = bytearray(path.read_bytes())
    raw[-22:-18] = b"XXXX"  # the end-of-central-directory signature
    path.write_bytes(bytes(raw))
    _load_error(path, "not an anyglm model file")


def test_foreign_zip(tmp_path: Path) -> None:
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
        zf.writestr("W.npy", b"not really")
    _load_error(path, r"not an anyglm model file \(no metadata.json\)")


def test_foreign_zip_with_other_metadata(tmp_path: Path) -> None:
    path = tmp_path / "foreign.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"name": "someone else's model"}))
    _load_error(path, r"not an anyglm model file \(format field missing\)")


@pytest.mark.parametrize(
    "content", [b"just some text\n" * 20, b"\x00\x01\x02binary junk" * 10, b"PK\x03\x04"]
)
def test_not_a_zip(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "text.anyglm"
    path.write_bytes(content)
    _load_error(path, r"not an anyglm model file \(not a zip archive")


def test_metadata_not_json(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = tmp_path / "bad.anyglm"
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w") as zo:
        for name in zi.namelist():
            zo.writestr(name, b"{not json" if name == "metadata.json" else zi.read(name))
    _load_error(out, "corrupted")


@pytest.mark.parametrize("version", [modelfile.FORMAT_VERSION + 1, 99])
def test_newer_format_version(saved: tuple[Any, Path], tmp_path: Path, version: int) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "new.anyglm", edit=lambda m: {**m, "format_version": version})
    err = _load_error(out, rf"format version {version}")
    msg = str(err)
    assert f"reads up to {modelfile.FORMAT_VERSION}" in msg
    assert "Upgrade anyglm" in msg


@pytest.mark.parametrize("version", ["1", None, 1.0])
def test_format_version_of_wrong_type(
    saved: tuple[Any, Path], tmp_path: Path, version: Any
) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "odd.anyglm", edit=lambda m: {**m, "format_version": version})
    _load_error(out, "format version")


@pytest.mark.parametrize("missing", ["W.npy", "b.npy"])
def test_missing_array(saved: tuple[Any, Path], tmp_path: Path, missing: str) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "partial.anyglm", drop=(missing,))
    _load_error(out, rf"not a complete anyglm model file: {re.escape(missing)} is missing")


@pytest.mark.parametrize("key", ["estimator", "n_features_in", "params", "model", "history"])
def test_incomplete_metadata(saved: tuple[Any, Path], tmp_path: Path, key: str) -> None:
    _, path = saved
    out = _rezip(
        path,
        tmp_path / "incomplete.anyglm",
        edit=lambda m: {k: v for k, v in m.items() if k != key},
    )
    _load_error(out, rf"metadata field '{key}' is missing")


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("history", [0.5, 0.4], "dict"),
        ("n_features_in", "4", "int"),
        ("params", None, "dict"),
        ("model", 3, "str"),
    ],
)
def test_metadata_field_of_wrong_type(
    saved: tuple[Any, Path], tmp_path: Path, key: str, value: Any, kind: str
) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "odd.anyglm", edit=lambda m: {**m, key: value})
    _load_error(out, rf"metadata field '{key}' is missing or not a {kind}")


def test_unknown_estimator_class_in_metadata(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "evil.anyglm", edit=lambda m: {**m, "estimator": "os.system"})
    _load_error(out, "unknown estimator class 'os.system'")


def test_shape_mismatch_in_metadata(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "shape.anyglm", edit=lambda m: {**m, "n_features_in": 9})
    _load_error(out, "parameter shapes .* do not match")


def test_pickled_array_is_refused(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = tmp_path / "pickle.anyglm"
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w") as zo:
        for name in zi.namelist():
            zo.writestr(name, buf.getvalue() if name == "classes.npy" else zi.read(name))
    _load_error(out, r"array classes\.npy is unreadable")


def test_integer_parameters_are_refused(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = tmp_path / "ints.anyglm"
    buf = io.BytesIO()
    np.save(buf, np.zeros((4, 3), dtype=np.int64), allow_pickle=False)
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w") as zo:
        for name in zi.namelist():
            zo.writestr(name, buf.getvalue() if name == "W.npy" else zi.read(name))
    _load_error(out, "parameters are not floating point")


def test_missing_path(tmp_path: Path) -> None:
    path = tmp_path / "nothing-here.anyglm"
    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        anyglm.load(path)


def test_load_with_unknown_backend(saved: tuple[Any, Path]) -> None:
    _, path = saved
    with pytest.raises(UnknownNameError, match=r"unknown backend 'nunpy'.*Did you mean 'numpy'"):
        anyglm.load(path, backend="nunpy")


def test_load_with_unavailable_cupy(saved: tuple[Any, Path]) -> None:
    be = anyglm.get_backend("cupy")
    if be.is_available():
        pytest.skip("CuPy is usable on this machine")
    _, path = saved
    with pytest.raises(BackendUnavailableError, match=re.escape(be.unavailable_reason or "?")):
        anyglm.load(path, backend="cupy")


def test_written_files_get_the_usual_permissions(tmp_path: Path) -> None:
    import os
    import stat

    umask = os.umask(0o022)
    os.umask(umask)
    est = anyglm.LogisticRegression(epochs=2, random_state=0).fit([[-1.0], [1.0]], [0, 1])
    est.save(tmp_path / "m.anyglm")
    mode = stat.S_IMODE((tmp_path / "m.anyglm").stat().st_mode)
    assert mode == 0o666 & ~umask
