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
    out = {"predict": _np(est.predict(X))}
    if hasattr(est, "decision_function"):
        out["decision"] = _np(est.decision_function(X))
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
    if hasattr(est, "decision_function"):
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
    with pytest.raises(TypeError, match=r"all strings; these labels are of types \['int', 'str'\]"):
        est.save(tmp_path / "m.anyglm")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("labels", "kind"),
    [([3, 7], "i"), ([0.5, 2.5], "f"), ([False, True], "b"), (["no", "yes"], "U")],
    ids=["ints", "floats", "bools", "strings"],
)
def test_object_labels_of_one_kind_are_saved_as_that_kind(
    labels: list[Any], kind: str, tmp_path: Path
) -> None:
    # pandas gives object arrays of ints; they are ints, and a model file holds them as such.
    y = np.empty(2, dtype=object)
    y[:] = labels
    y = y[Y_BIN]
    est = anyglm.LogisticRegression(**FAST).fit(X0, y)
    assert est.classes_.dtype == object
    est.save(tmp_path / "m.anyglm")
    loaded = anyglm.load(tmp_path / "m.anyglm")
    assert loaded.classes_.dtype.kind == kind
    assert loaded.classes_.tolist() == labels
    assert loaded.predict(X0).tolist() == est.predict(X0).tolist()


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
    _load_error(out, r"array classes\.npy has dtype object; .*need pickle are refused")


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


# -- crafted files: caps and validation before anything large is allocated ---------------------


def _npy_header(shape: tuple[int, ...], descr: str = "<f8") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buf.getvalue()


def _replace(path: Path, out: Path, members: dict[str, bytes], **kw: Any) -> Path:
    """Copy a model file with some members replaced (or added)."""
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
        for name in zi.namelist():
            if name not in members:
                zo.writestr(name, zi.read(name))
        for name, data in members.items():
            zo.writestr(name, data, **kw)
    return out


def _npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=False)
    return buf.getvalue()


def test_huge_declared_shape_is_refused_before_allocating(
    saved: tuple[Any, Path], tmp_path: Path
) -> None:
    _, path = saved
    # 10^12 float64 (8 TB) declared, a few bytes present: a MemoryError before the caps.
    data = _npy_header((10**6, 10**6)) + bytes(64)
    out = _replace(path, tmp_path / "huge.anyglm", {"W.npy": data})
    err = _load_error(out, r"array W\.npy declares shape \(1000000, 1000000\) of float64")
    assert "7.3 TiB" in str(err) and "max_bytes" in str(err)


def test_declared_shape_must_match_the_bytes_present(
    saved: tuple[Any, Path], tmp_path: Path
) -> None:
    _, path = saved
    data = _npy_header((4, 3)) + bytes(8 * 5)  # 12 values declared, 5 present
    out = _replace(path, tmp_path / "short.anyglm", {"W.npy": data})
    _load_error(out, r"declares shape \(4, 3\) of float64 \(96 bytes\) but the member holds 40")


def test_zip_bomb_is_refused_from_the_directory(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    out = tmp_path / "bomb.anyglm"
    with zipfile.ZipFile(path) as zi, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zo:
        for name in zi.namelist():
            if name != "W.npy":
                zo.writestr(name, zi.read(name))
        with zo.open("W.npy", "w") as fh:  # 48 MiB of zeros, about 50 KB compressed
            fh.write(_npy_header((6 << 20,)))
            for _ in range(48):
                fh.write(bytes(1 << 20))
    assert out.stat().st_size < 1 << 20
    _load_error(out, r"member W\.npy inflates \d+ times its compressed size.*zip bomb")


def test_total_size_cap_and_its_overrides(
    saved: tuple[Any, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    est, path = saved
    size = sum(i.file_size for i in zipfile.ZipFile(path).infolist())
    err = None
    with pytest.raises(ModelFileError, match=r"uncompressed, more than the cap") as info:
        anyglm.load(path, max_bytes=size - 1)
    err = str(info.value)
    assert "anyglm.load(path, max_bytes=...) or ANYGLM_MAX_MODEL_BYTES" in err
    assert np.array_equal(anyglm.load(path, max_bytes=size).predict(X0), est.predict(X0))
    monkeypatch.setenv("ANYGLM_MAX_MODEL_BYTES", str(size - 1))
    with pytest.raises(ModelFileError, match="more than the cap"):
        anyglm.load(path)
    assert anyglm.load(path, max_bytes=size) is not None  # the argument wins
    monkeypatch.setenv("ANYGLM_MAX_MODEL_BYTES", "lots")
    with pytest.raises(ValueError, match="ANYGLM_MAX_MODEL_BYTES='lots' is not a number"):
        anyglm.load(path)


def test_deeply_nested_metadata_is_a_model_file_error(
    saved: tuple[Any, Path], tmp_path: Path
) -> None:
    _, path = saved
    out = _replace(path, tmp_path / "deep.anyglm", {"metadata.json": b"[" * 100_000})
    _load_error(out, r"metadata\.json nests 100000 levels deep; .* at most 64")
    text = json.dumps({"format": "anyglm-model", "x": "[[[[" * 1000})  # brackets in a string
    out = _replace(path, tmp_path / "string.anyglm", {"metadata.json": text.encode()})
    _load_error(out, r"format version None")  # got past the depth check


def test_oversized_metadata_and_too_many_members(saved: tuple[Any, Path], tmp_path: Path) -> None:
    _, path = saved
    pad = np.random.default_rng(0).integers(97, 123, size=17 << 20, dtype=np.uint8).tobytes()
    big = b'{"format": "anyglm-model", "pad": "' + pad + b'"}'  # letters: no zip bomb
    out = _replace(path, tmp_path / "big.anyglm", {"metadata.json": big})
    _load_error(out, r"metadata\.json takes \d+ bytes; .* at most 16777216")
    extra = {f"junk/{i}.npy": _npy(np.zeros(1)) for i in range(70)}
    out = _replace(path, tmp_path / "many.anyglm", extra)
    _load_error(out, r"has 7\d members; a model file has at most 64")


@pytest.mark.parametrize(
    ("key", "value", "match"),
    [
        (
            "n_epochs",
            "abc",
            r"metadata field 'n_epochs' must be an int in \[0, 1e\+12\], got 'abc'",
        ),
        ("n_epochs", -3, r"metadata field 'n_epochs' must be an int"),
        ("n_epochs", True, r"metadata field 'n_epochs' must be an int"),
        ("y_ndim", 3, r"metadata field 'y_ndim' must be 1 or 2, got 3"),
        ("dtype", "float16", r"metadata field 'dtype' must be 'float32' or 'float64'"),
        ("n_targets", "2", r"metadata field 'n_targets' must be an int"),
        ("backend", ["numpy"], r"metadata field 'backend' must be a name"),
        (
            "history",
            {"train_loss": ["a"]},
            r"metadata field 'history\.train_loss' must be a list of",
        ),
        (
            "feature_names_in",
            ["a"],
            r"metadata field 'feature_names_in' must be a list of 4 strings",
        ),
        ("user_metadata", [1], r"metadata field 'user_metadata' must be a dict"),
        ("checkpoint", {"epoch": "2"}, r"metadata field 'checkpoint\.epoch' must be an int >= 0"),
        (
            "params",
            {"epochs": "abc"},
            r"metadata field 'params' is invalid: epochs must be a positive",
        ),
        ("model", "logistic", r"metadata field 'model' is 'logistic' but the estimator Softmax"),
        ("model", "no-such-model", r"metadata field 'model': unknown model 'no-such-model'"),
        ("format_version", 0, r"format version 0, which never existed"),
    ],
)
def test_wrong_field_types_and_ranges_name_file_and_field(
    saved: tuple[Any, Path], tmp_path: Path, key: str, value: Any, match: str
) -> None:
    _, path = saved
    out = _rezip(path, tmp_path / "odd.anyglm", edit=lambda m: {**m, key: value})
    _load_error(out, match)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("member", ["W.npy", "b.npy"])
def test_non_finite_parameters_are_refused(
    saved: tuple[Any, Path], tmp_path: Path, bad: float, member: str
) -> None:
    _, path = saved
    with zipfile.ZipFile(path) as zf:
        a = np.load(io.BytesIO(zf.read(member)))
    a = a.copy()
    a.flat[1] = bad
    out = _replace(path, tmp_path / "nan.anyglm", {member: _npy(a)})
    _load_error(out, rf"array {re.escape(member)} holds NaN or infinity \(at index")


def test_regression_file_whose_targets_disagree_with_its_weights(tmp_path: Path) -> None:
    est = anyglm.LinearRegression(**FAST).fit(X0, np.stack([Y_REG, -Y_REG], 1))
    path = tmp_path / "two.anyglm"
    est.save(path)
    # n_targets 3 against W's 2 columns
    out = _rezip(path, tmp_path / "three.anyglm", edit=lambda m: {**m, "n_targets": 3})
    _load_error(out, r"'n_targets' is 3 but W\.npy has 2 output columns")
    # a 1-D target (y_ndim 1) cannot have two columns: it would predict one column silently
    out = _rezip(
        path, tmp_path / "flat.anyglm", edit=lambda m: {**m, "y_ndim": 1, "n_targets": None}
    )
    _load_error(out, r"'n_targets' \(None\) and 'y_ndim' \(1\) disagree with W\.npy's 2 output")
    # class labels in a regression file
    out = _replace(path, tmp_path / "labels.anyglm", {"classes.npy": _npy(np.array([0, 1]))})
    _load_error(out, r"regressor but the file holds class labels")


def test_checkpoint_arrays_are_validated_too(tmp_path: Path) -> None:
    path = tmp_path / "ck.anyglm"
    anyglm.SoftmaxRegression(momentum=0.9, **FAST).fit(X0, Y_3, checkpoint=path)
    with zipfile.ZipFile(path) as zf:
        names = [n for n in zf.namelist() if n.startswith("train/opt/")]
        v = np.load(io.BytesIO(zf.read(names[0])))
    assert names
    out = _replace(path, tmp_path / "bad.anyglm", {names[0]: _npy(np.full_like(v, np.nan))})
    with pytest.raises(ModelFileError, match=r"train/opt/.* holds NaN or infinity"):
        anyglm.SoftmaxRegression(momentum=0.9, **FAST).fit(X0, Y_3, resume=out)
    out = _replace(path, tmp_path / "shape.anyglm", {"train/W.npy": _npy(np.zeros((2, 2)))})
    with pytest.raises(ModelFileError, match=r"train/W\.npy has shape \(2, 2\)"):
        anyglm.SoftmaxRegression(momentum=0.9, **FAST).fit(X0, Y_3, resume=out)


CRAFTED = {
    "huge-shape": lambda path, out: _replace(path, out, {"W.npy": _npy_header((10**6, 10**6))}),
    "deep-json": lambda path, out: _replace(path, out, {"metadata.json": b"[" * 100_000}),
    "wrong-type": lambda path, out: _rezip(path, out, edit=lambda m: {**m, "n_epochs": "abc"}),
    "nan-weights": lambda path, out: _replace(path, out, {"W.npy": _npy(np.full((4, 3), np.nan))}),
    "inconsistent": lambda path, out: _rezip(path, out, edit=lambda m: {**m, "n_features_in": 9}),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_cli_predict_on_a_crafted_file_exits_2_with_one_line(
    case: str, saved: tuple[Any, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from anyglm.cli import main

    _, path = saved
    bad = CRAFTED[case](path, tmp_path / f"{case}.anyglm")
    np.save(tmp_path / "X.npy", X0)
    code = main(["predict", str(bad), "--data", str(tmp_path / "X.npy")])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("anyglm: error:"), captured.err
    assert str(bad) in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


# -- interrupted saves ----------------------------------------------------------------------------

KILLED_SAVE = """
import os, signal, sys
import numpy as np, anyglm
from anyglm import modelfile
est = anyglm.LinearRegression(epochs=2, random_state=0).fit(np.eye(3), [1.0, 2.0, 3.0])
def die(fd):  # the file is written, not yet renamed: the process is killed here
    os.kill(os.getpid(), signal.SIGKILL)
modelfile.os.fsync = die
est.save(sys.argv[1])
"""


def test_a_killed_save_leaves_a_temporary_file_that_the_next_save_removes(
    tmp_path: Path,
) -> None:
    import subprocess
    import sys

    pytest.importorskip("fcntl")
    target = tmp_path / "m.anyglm"
    for _ in range(2):
        out = subprocess.run([sys.executable, "-c", KILLED_SAVE, str(target)], timeout=300)
        assert out.returncode == -9  # SIGKILL, at the deterministic point
    # the second killed save already removed what the first left; its own file remains
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert len(leftovers) == 1 and leftovers[0].startswith(".m.anyglm.")
    assert leftovers[0].endswith(".tmp") and (tmp_path / leftovers[0]).stat().st_size > 0
    est = anyglm.LinearRegression(**FAST).fit(X0, Y_REG)
    est.save(target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.anyglm"]
    assert np.array_equal(anyglm.load(target).predict(X0), est.predict(X0))


def test_a_temporary_file_being_written_is_left_alone(tmp_path: Path) -> None:
    fcntl = pytest.importorskip("fcntl")
    target = tmp_path / "m.anyglm"
    busy = tmp_path / ".m.anyglm.busy1234.tmp"
    stale = tmp_path / ".m.anyglm.dead5678.tmp"
    other = tmp_path / ".other.anyglm.dead9999.tmp"  # another target's: not ours to remove
    for p in (busy, stale, other):
        p.write_bytes(b"partial")
    with open(busy, "rb") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # a live writer holds it
        assert modelfile.remove_stale_temporaries(target) == [stale.name]
        anyglm.LinearRegression(**FAST).fit(X0, Y_REG).save(target)
        assert busy.exists() and other.exists() and not stale.exists()
    assert modelfile.remove_stale_temporaries(target) == [busy.name]


# -- class labels and class weights in the file --------------------------------------------------

_X40 = np.random.default_rng(0).normal(size=(40, 3))
_Y40 = (_X40[:, 0] + _X40[:, 1] > 0).astype(int)


def _rewrite(path: Path, drop: str | None = None, classes: np.ndarray | None = None) -> None:
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    if drop:
        members.pop(drop)
    if classes is not None:
        import io

        buf = io.BytesIO()
        np.save(buf, classes)
        members["classes.npy"] = buf.getvalue()
    with zipfile.ZipFile(path, "w") as zf:
        for n, data in members.items():
            zf.writestr(n, data)


@pytest.mark.parametrize(
    "change", [{"drop": "classes.npy"}, {"classes": np.array([0, 1])}], ids=["missing", "too-few"]
)
def test_load_refuses_classes_that_do_not_match(tmp_path: Path, change: dict) -> None:
    y = np.arange(40) % 3
    anyglm.SoftmaxRegression(epochs=1, random_state=0).fit(_X40, y).save(tmp_path / "m")
    _rewrite(tmp_path / "m", **change)
    with pytest.raises(anyglm.ModelFileError, match="class labels are missing or do not match"):
        anyglm.load(tmp_path / "m")


def test_class_weight_dict_survives_save_and_load(tmp_path: Path) -> None:
    est = anyglm.LogisticRegression(epochs=2, random_state=0, class_weight={0: 1.0, 1: 3.0})
    est.fit(_X40, _Y40).save(tmp_path / "m")
    loaded = anyglm.load(tmp_path / "m")
    assert loaded.get_params()["class_weight"] == {0: 1.0, 1: 3.0}
    refit = loaded.fit(_X40, _Y40)
    assert np.array_equal(refit.coef_, est.coef_)
