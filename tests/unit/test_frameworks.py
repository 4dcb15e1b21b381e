"""The built-in PyTorch and JAX backends: listing, laziness, devices, dtypes, arrays in and out.

The conformance suite checks their math and training against NumPy; these tests check
what is particular to each library, and that a machine without them lists both as
unavailable with the install hint and the suite skips them cleanly.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import warnings
from typing import Any

import anyglm
import numpy as np
import pytest

HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_JAX = importlib.util.find_spec("jax") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch is not installed")
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="JAX is not installed")

HINTS = {"torch": 'pip install "anyglm[torch]"', "jax": 'pip install "anyglm[jax]"'}
MISSING = {"torch": "PyTorch is not installed", "jax": "JAX is not installed"}

#: Makes torch and jax look uninstalled: find_spec returns None for a None entry of
#: sys.modules, and importing it raises ImportError.
HIDE = "import sys\nsys.modules['torch'] = None\nsys.modules['jax'] = None\n"


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("ANYGLM_", "JAX_"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=clean, timeout=600
    )


def _rows() -> dict[str, dict[str, Any]]:
    anyglm.reload_plugins()
    return {r["name"]: r for r in anyglm.list_backends()}


# -- listing -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["torch", "jax"])
def test_both_are_built_in(name: str) -> None:
    assert f"anyglm.backends.{name}" in anyglm.registry.DEFAULT_PLUGINS
    row = _rows()[name]
    assert row["origin"] == "anyglm (built-in)"


@needs_torch
def test_torch_is_listed_with_its_devices_and_both_dtypes() -> None:
    row = _rows()["torch"]
    assert row["available"] is True and row["reason"] is None
    assert row["devices"][0] == "cpu"
    assert row["dtypes"] == ["float32", "float64"]
    assert row["version"] is not None and row["version"].startswith("2.")


@needs_jax
def test_jax_is_listed_with_real_devices_and_honest_dtypes() -> None:
    from anyglm.backends.jax import x64_enabled

    row = _rows()["jax"]
    assert row["available"] is True and row["reason"] is None
    assert row["devices"] and "None" not in row["devices"]
    assert row["dtypes"] == (["float32", "float64"] if x64_enabled() else ["float32"])


def test_listing_imports_neither_torch_nor_jax() -> None:
    out = _python(
        "import sys, json, anyglm\n"
        "rows = {r['name']: r for r in anyglm.list_backends()}\n"
        "print(json.dumps([rows['torch']['available'], rows['jax']['available'],"
        " 'torch' in sys.modules, 'jax' in sys.modules, 'jaxlib' in sys.modules]))\n"
    )
    assert out.returncode == 0, out.stderr
    torch_ok, jax_ok, *imported = json.loads(out.stdout)
    assert (torch_ok, jax_ok) == (HAS_TORCH, HAS_JAX)
    assert imported == [False, False, False]


def test_listed_devices_match_what_the_library_reports_once_imported() -> None:
    # Before the import the listing is read from files and the driver; after it, from
    # the library. Both must say the same.
    code = (
        "import json, anyglm\n"
        "before = {r['name']: r['devices'] for r in anyglm.list_backends()}\n"
        "import importlib.util\n"
        "for m in ('torch', 'jax'):\n"
        "    if importlib.util.find_spec(m): __import__(m)\n"
        "after = {r['name']: r['devices'] for r in anyglm.list_backends()}\n"
        "print(json.dumps([before['torch'], after['torch'], before['jax'], after['jax']]))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    torch_before, torch_after, jax_before, jax_after = json.loads(out.stdout)
    assert torch_before == torch_after
    assert jax_before == jax_after


def test_without_the_libraries_both_are_unavailable_with_the_install_hint() -> None:
    code = HIDE + (
        "import json, anyglm\n"
        "rows = {r['name']: r for r in anyglm.list_backends()}\n"
        "errors = {}\n"
        "for name in ('torch', 'jax'):\n"
        "    try:\n"
        "        anyglm.Estimator('linear', backend=name).fit([[0.0], [1.0]], [0.0, 1.0])\n"
        "    except anyglm.BackendUnavailableError as exc:\n"
        "        errors[name] = str(exc)\n"
        "print(json.dumps([rows['torch'], rows['jax'], errors]))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    torch_row, jax_row, errors = json.loads(out.stdout)
    for name, row in (("torch", torch_row), ("jax", jax_row)):
        assert row["available"] is False
        assert row["reason"] == f"{MISSING[name]}; install with {HINTS[name]}"
        assert row["devices"] == [] and row["dtypes"] == []
        assert errors[name] == (
            f"backend {name!r} is not available here: {MISSING[name]} ({HINTS[name]})"
        )


def test_without_the_libraries_the_conformance_suite_skips_them_cleanly() -> None:
    code = HIDE + (
        "import pytest\n"
        "raise SystemExit(pytest.main(['-q', '-rs', '-p', 'no:cacheprovider', '--pyargs',"
        " 'anyglm.conformance', '-k', 'test_host_round_trip and (torch or jax)']))\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 skipped" in out.stdout
    assert "failed" not in out.stdout and "error" not in out.stdout.lower()
    for name in ("torch", "jax"):
        assert f"backend '{name}' is not available: {MISSING[name]}" in out.stdout


def test_naming_a_missing_library_fails_the_conformance_run() -> None:
    code = HIDE + (
        "import pytest\n"
        "raise SystemExit(pytest.main(['-q', '-p', 'no:cacheprovider', '--pyargs',"
        " 'anyglm.conformance', '--anyglm-backend', 'jax', '-k', 'test_host_round_trip']))\n"
    )
    out = _python(code)
    assert out.returncode != 0
    assert "backend 'jax' was named with --anyglm-backend but is not available" in out.stdout


# -- PyTorch -----------------------------------------------------------------------------------


@needs_torch
def test_torch_arrays_in_and_out() -> None:
    import torch

    be = anyglm.get_backend("torch")
    assert be.devices()[0] == torch.device("cpu") == be.default_device()
    assert be.float_dtypes(torch.device("cpu")) == ("float32", "float64")
    a = np.arange(6.0).reshape(2, 3)
    a.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns about non-writable NumPy arrays
        t = be.from_numpy(a, dtype="float32", device="cpu")
        t64 = be.from_numpy(a[::-1], dtype="float64")  # negative strides
    assert t.dtype == torch.float32 and be.device_of(t) == torch.device("cpu")
    np.testing.assert_array_equal(be.to_numpy(t64), a[::-1])
    leaf = torch.ones(3, requires_grad=True)
    assert be.to_numpy(leaf * 2).tolist() == [2.0, 2.0, 2.0]  # detached
    assert be.owns(t) and be.owns(torch.nn.Parameter(t)) and not be.owns(a)


@needs_torch
def test_torch_tensors_train_and_predict_as_tensors() -> None:
    import torch

    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(np.int64)
    clf = anyglm.LogisticRegression(epochs=5, random_state=0).fit(
        torch.as_tensor(X), torch.as_tensor(y)
    )
    assert clf.backend_ == "torch" and isinstance(clf.coef_, torch.Tensor)
    assert clf.coef_.dtype == torch.float64
    pred = clf.predict(torch.as_tensor(X))
    assert isinstance(pred, torch.Tensor)
    ref = anyglm.LogisticRegression(epochs=5, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.coef_.numpy(), ref.coef_, rtol=1e-12)


# -- JAX ---------------------------------------------------------------------------------------


@needs_jax
def test_jax_devices_are_real_devices_default_first() -> None:
    import jax

    be = anyglm.get_backend("jax")
    devices = be.devices()
    assert None not in devices
    assert devices[0] == jax.devices()[0] == be.default_device()
    assert set(jax.devices("cpu")) <= set(devices)
    x = be.from_numpy(np.ones(3), dtype="float32", device=devices[-1])
    assert be.device_of(x) == devices[-1]


@needs_jax
def test_jax_arrays_are_owned_whatever_module_they_report() -> None:
    import jax.numpy as jnp

    be = anyglm.get_backend("jax")
    x = jnp.ones(2)
    assert type(x).__module__.split(".")[0] in ("jaxlib", "jax")  # "jaxlib._jax" in 0.7+
    assert be.owns(x)
    assert not be.owns(np.ones(2)) and not be.owns([1.0])


def test_jax_owns_by_module_name_without_importing_jax() -> None:
    code = (
        "import sys, anyglm, numpy as np\n"
        "be = anyglm.get_backend('jax')\n"
        "Old = type('ArrayImpl', (), {'__module__': 'jaxlib.xla_extension'})\n"
        "New = type('ArrayImpl', (), {'__module__': 'jaxlib._jax'})\n"
        "print(be.owns(Old()), be.owns(New()), be.owns(np.ones(2)), 'jax' in sys.modules)\n"
    )
    out = _python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "False", "False"]


@pytest.mark.parametrize(("value", "expected"), [("1", True), ("true", True), ("0", False)])
def test_x64_is_read_from_the_environment_before_jax_is_imported(
    value: str, expected: bool
) -> None:
    code = (
        "import sys, anyglm\n"
        "from anyglm.backends.jax import x64_enabled\n"
        "be = anyglm.get_backend('jax')\n"
        "print(x64_enabled(), be.float_dtypes(), be.index_dtype(), 'jax' in sys.modules)\n"
    )
    out = _python(code, JAX_ENABLE_X64=value)
    assert out.returncode == 0, out.stderr
    dtypes = "('float32', 'float64')" if expected else "('float32',)"
    index = "int64" if expected else "int32"
    assert out.stdout.strip() == f"{expected} {dtypes} {index} False"


@needs_jax
def test_jax_with_x64_offers_float64_and_int64_once_imported() -> None:
    code = (
        "import anyglm, numpy as np\n"
        "be = anyglm.get_backend('jax')\n"
        "x = be.from_numpy(np.arange(3.0), dtype='float64')\n"
        "i = be.from_numpy(np.arange(3), dtype=be.index_dtype())\n"
        "print(be.float_dtypes(), be.index_dtype(), x.dtype, i.dtype)\n"
    )
    out = _python(code, JAX_ENABLE_X64="1")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["('float32',", "'float64')", "int64", "float64", "int64"]


@needs_jax
def test_jax_without_x64_is_float32_and_int32_without_warnings() -> None:
    from anyglm.backends.jax import x64_enabled

    if x64_enabled():
        pytest.skip("JAX runs with 64-bit mode in this session")
    be = anyglm.get_backend("jax")
    assert be.float_dtypes() == ("float32",) and be.index_dtype() == "int32"
    with pytest.raises(ValueError, match="does not support float64"):
        be.dtype("float64")
    with pytest.raises(ValueError, match=r"no int64 without 64-bit mode.*JAX_ENABLE_X64"):
        be.from_numpy(np.arange(3), dtype="int64")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        idx = be.from_numpy(np.arange(5), dtype=be.index_dtype())
        labels = be.from_numpy(np.array([3, 1, 2], dtype=np.int64))  # no dtype: narrowed
        floats = be.from_numpy(np.ones(2))
    assert str(idx.dtype) == "int32" and str(labels.dtype) == "int32"
    assert str(floats.dtype) == "float32"
    with pytest.raises(ValueError, match="cannot hold the values"):
        be.from_numpy(np.array([0, 2**40]))
    back = be.to_numpy(idx)
    back[0] = 7  # a writable host copy, not a view of JAX's buffer
    assert be.to_numpy(idx)[0] == 0


@needs_jax
def test_training_on_float32_jax_prints_no_warnings() -> None:
    # JAX warns whenever int64 or float64 is requested without 64-bit mode (the core's
    # shuffles once did, about 100 times per fit). Every warning is an error here.
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "import numpy as np, anyglm, jax.numpy as jnp\n"
        # These fits stop after a few epochs on purpose: their ConvergenceWarning is expected.
        "warnings.filterwarnings('ignore', category=anyglm.errors.ConvergenceWarning)\n"
        "from anyglm.datasets import load_dataset, standardize\n"
        "X, y = load_dataset('digits')\n"
        "X = standardize(X)[0]\n"
        "w = np.linspace(0.5, 1.5, len(y))\n"
        "soft = anyglm.SoftmaxRegression(backend='jax', epochs=3, random_state=0,"
        " validation_fraction=0.2, n_iter_no_change=5).fit(X, y, sample_weight=w)\n"
        "soft.predict(X), soft.predict_proba(X), soft.score(X, y)\n"
        "Xj = jnp.asarray(X)\n"
        "log = anyglm.LogisticRegression(epochs=3, random_state=0,"
        " validation_fraction=0.2).fit(Xj, jnp.asarray(y > 4))\n"
        "log.predict_proba(Xj), log.decision_function(Xj)\n"
        "lin = anyglm.LinearRegression(backend='jax', epochs=3, random_state=0).fit(X, X[:, 5])\n"
        "lin.predict(X), lin.score(X, X[:, 5])\n"
        "anyglm.tune('softmax', X, y, grid={'learning_rate': [0.1, 0.01], 'alpha': [0.0, 1e-3],"
        " 'epochs': [2]}, estimator_params={'backend': 'jax'})\n"
        # The traced step count (int32 here) drives the schedule, momentum and averaging.
        "anyglm.SoftmaxRegression(backend='jax', epochs=3, schedule='invscaling', momentum=0.5,"
        " average=2, penalty='elasticnet', random_state=0).fit(X, y)\n"
        "from anyglm.backends.jax_jit import COMPILE_LOG\n"
        "print(str(soft.coef_.dtype), str(log.coef_.dtype), str(lin.coef_.dtype),"
        " len(COMPILE_LOG) >= 5)\n"
    )
    out = _python(code, JAX_ENABLE_X64="0")
    assert out.returncode == 0, out.stderr[-3000:]
    # Every fit ran the compiled step (jax.jit of the portable step, one scan per block).
    assert out.stdout.split() == ["float32", "float32", "float32", "True"]
    # Nothing on stderr either, but JAX's own log line on choosing a platform (a GPU
    # machine with the CPU-only jaxlib), which is about the install, not training.
    printed = [line for line in out.stderr.splitlines() if "xla_bridge" not in line]
    assert printed == []


# -- compare_backends --------------------------------------------------------------------------


def test_compare_backends_skips_a_backend_that_lacks_the_dtype(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    be = anyglm.get_backend("array_api_strict")
    monkeypatch.setattr(type(be), "float_dtypes", lambda self, device=None: ("float32",))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    out = anyglm.compare_backends("logistic", X, y, ["numpy", "array_api_strict"], epochs=2)
    assert out["array_api_strict"]["available"] is True
    assert out["array_api_strict"]["skipped"] is True
    assert "does not support float64" in out["array_api_strict"]["reason"]
    assert "float32" in out["array_api_strict"]["reason"]
    assert "max_param_diff" not in out["array_api_strict"]
    assert out["numpy"]["max_param_diff"] == 0.0
    same = anyglm.compare_backends(
        "logistic", X, y, ["array_api_strict"], dtype="float32", epochs=2
    )
    assert same["array_api_strict"]["max_param_diff"] <= 1e-5
    with pytest.raises(ValueError, match=r"reference backend 'array_api_strict'.*float64"):
        anyglm.compare_backends("logistic", X, y, ["numpy"], reference="array_api_strict")


@needs_jax
def test_compare_backends_with_defaults_skips_float32_only_jax() -> None:
    from anyglm.backends.jax import x64_enabled

    rng = np.random.default_rng(1)
    X = rng.normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    out = anyglm.compare_backends("logistic", X, y, epochs=2)  # every available backend
    if x64_enabled():
        assert out["jax"]["max_param_diff"] <= 1e-10
    else:
        assert out["jax"]["skipped"] is True
        assert "float64" in out["jax"]["reason"]
    assert out["numpy"]["max_param_diff"] == 0.0


# -- compiled training steps (the accelerators) ------------------------------------------------


def _spec(model: str = "softmax", *, sparse: bool = False, **opt: Any) -> Any:
    from anyglm.accelerate import AcceleratorSpec
    from anyglm.optim import OptimizerSpec

    return AcceleratorSpec(
        anyglm.get_model(model), model, OptimizerSpec(**opt), "float32", 3, True, sparse
    )


def _fit(
    backend: str,
    model: Any,
    *,
    accelerate: bool,
    n: int = 203,
    d: int = 13,
    dtype: str = "float32",
    optimizer: Any = None,
    epochs: int = 3,
) -> Any:
    from anyglm.sources import ArraySource
    from anyglm.trainer import train

    rng = np.random.default_rng(3)
    X = rng.normal(size=(n, d))
    Y = np.eye(3)[rng.integers(0, 3, n)] if model.task == "classification" else X[:, :1] * 2.0
    c = Y.shape[1]
    be = anyglm.get_backend(backend)
    dev = be.default_device()

    def arr(a: np.ndarray) -> Any:
        return be.from_numpy(a, dtype=dtype, device=dev)

    return train(
        model,
        be,
        ArraySource(be, arr(X), arr(Y), arr(rng.uniform(0.5, 1.5, n)), device=dev),
        W=arr(0.1 * rng.normal(size=(d, c))),
        b=arr(np.zeros(c)),
        n_configs=1,
        learning_rate=0.05,
        alpha=1e-3,
        epochs=epochs,
        batch_size=16,  # twelve full minibatches and a short one of 11 rows
        shuffle=True,
        rng=np.random.default_rng(0),
        dtype=dtype,
        device=dev,
        optimizer=optimizer,
        accelerate=accelerate,
    )


def _agree(fast: Any, portable: Any, be: Any, tol: float) -> None:
    for got, ref in ((fast.W, portable.W), (fast.b, portable.b)):
        ref_np = be.to_numpy(ref)
        err = np.max(np.abs(be.to_numpy(got) - ref_np)) / np.max(np.abs(ref_np))
        assert err <= tol
    np.testing.assert_allclose(fast.history["train_loss"], portable.history["train_loss"], rtol=tol)


class _Untraceable(anyglm.Model):
    """Linear regression that reads a value back to the host: fine eagerly, not under jax.jit."""

    name = "untraceable-linear"

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        return Z

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return 0.5 * xp.sum((Z - Y) ** 2, axis=-1)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        if float(xp.max(xp.abs(Z))) > 1e30:  # a Python branch on an array value
            raise FloatingPointError("diverged")
        return Z - Y


@needs_jax
def test_jax_accelerator_takes_every_dense_spec_and_declines_sparse() -> None:
    from anyglm.selection import find_accelerator

    be = anyglm.get_backend("jax")
    everything = {"schedule": "invscaling", "momentum": 0.9, "nesterov": True, "average": 2}
    assert find_accelerator(be, _spec(**everything, penalty="elasticnet")) is not None
    assert find_accelerator(be, _spec("logistic", schedule="optimal")) is not None
    assert find_accelerator(be, _spec(sparse=True)) is None
    listed = anyglm.doctor()["accelerators"]["jax"]
    assert {"linear", "logistic", "softmax"} <= set(listed)


@needs_jax
def test_jax_fit_compiles_each_block_shape_once_and_agrees_with_the_portable_loop() -> None:
    from anyglm.backends import jax_jit
    from anyglm.optim import OptimizerSpec

    model = anyglm.get_model("softmax")
    opt = OptimizerSpec(schedule="invscaling", momentum=0.5, average=2, penalty="elasticnet")
    before = len(jax_jit.COMPILE_LOG)
    fast = _fit("jax", model, accelerate=True, n=211, optimizer=opt)
    assert fast.accelerated
    new = jax_jit.COMPILE_LOG[before:]
    # Three epochs of one block each: one compilation before averaging starts, one after.
    assert [(r.model, r.rows, r.batch_size) for r in new] == [("softmax", 211, 16)] * 2
    assert all(r.seconds > 0 for r in new)
    again = _fit("jax", model, accelerate=True, n=211, optimizer=opt)
    assert len(jax_jit.COMPILE_LOG) == before + 2  # the second fit found both in the cache
    portable = _fit("jax", model, accelerate=False, n=211, optimizer=opt)
    be = anyglm.get_backend("jax")
    _agree(fast, portable, be, 1e-5)
    np.testing.assert_array_equal(be.to_numpy(again.W), be.to_numpy(fast.W))


@needs_jax
def test_jax_model_that_cannot_be_traced_trains_on_the_portable_loop() -> None:
    from anyglm.selection import find_accelerator

    model = _Untraceable()
    with pytest.warns(anyglm.PluginWarning, match=r"untraceable-linear.*jax\.jit.*portable"):
        fast = _fit("jax", model, accelerate=True)
    assert not fast.accelerated
    portable = _fit("jax", model, accelerate=False)
    be = anyglm.get_backend("jax")
    np.testing.assert_array_equal(be.to_numpy(fast.W), be.to_numpy(portable.W))
    spec = _spec()
    spec = type(spec)(model, model.name, spec.optimizer, "float32", 1, False, False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # known now: declined without a second warning
        assert find_accelerator(be, spec) is None
        assert not _fit("jax", model, accelerate=True).accelerated


@pytest.fixture
def torch_compile_state(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The torch accelerator's module, with its failures and settings private to the test."""
    from anyglm.backends import torch_compile

    monkeypatch.setattr(torch_compile, "_failed", {})
    for var in ("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "ANYGLM_DISABLE_TORCH_COMPILE", "CXX"):
        monkeypatch.delenv(var, raising=False)
    return torch_compile


@needs_torch
def test_torch_accelerator_takes_every_dense_spec_unless_switched_off(
    torch_compile_state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anyglm.selection import find_accelerator

    be = anyglm.get_backend("torch")
    assert find_accelerator(be, _spec(momentum=0.9, average=1, penalty="l1")) is not None
    assert find_accelerator(be, _spec(sparse=True)) is None
    assert {"linear", "logistic", "softmax"} <= set(anyglm.doctor()["accelerators"]["torch"])
    monkeypatch.setenv("ANYGLM_DISABLE_TORCH_COMPILE", "1")
    assert find_accelerator(be, _spec()) is None
    details = anyglm.doctor()["backend_details"]["torch"]["compile"]
    assert details["enabled"] is False and details["min_elements"] == 2**20


@needs_torch
def test_torch_small_blocks_run_the_portable_loop(
    torch_compile_state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = anyglm.get_model("logistic")
    before = len(torch_compile_state.COMPILE_LOG)
    assert not _fit("torch", model, accelerate=True).accelerated  # 203 x 13 < 2**20 values
    assert len(torch_compile_state.COMPILE_LOG) == before
    monkeypatch.setenv("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "lots")
    with pytest.raises(ValueError, match=r"ANYGLM_TORCH_COMPILE_MIN_ELEMENTS.*'lots'"):
        _fit("torch", model, accelerate=True)


@needs_torch
def test_torch_compiled_step_agrees_with_the_portable_loop_in_float64(
    torch_compile_state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from anyglm.optim import OptimizerSpec

    if torch_compile_state.toolchain_problem("cpu") is not None:
        pytest.skip(torch_compile_state.toolchain_problem("cpu"))
    monkeypatch.setenv("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "0")
    model = anyglm.get_model("logistic")
    opt = OptimizerSpec(schedule="invscaling", average=2, penalty="l1")
    before = len(torch_compile_state.COMPILE_LOG)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # compiling warns nothing (torch's own imports do)
        fast = _fit("torch", model, accelerate=True, dtype="float64", optimizer=opt)
    assert fast.accelerated
    rows = sorted({r.rows for r in torch_compile_state.COMPILE_LOG[before:]})
    assert rows == [11, 16]  # the full minibatches' graph and the short last one's
    portable = _fit("torch", model, accelerate=False, dtype="float64", optimizer=opt)
    _agree(fast, portable, anyglm.get_backend("torch"), 1e-12)


@needs_torch
def test_torch_compile_failure_falls_back_to_the_portable_loop_once(
    torch_compile_state: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(spec: Any, xp: Any, serial: int) -> Any:
        def step(*args: Any) -> Any:
            raise RuntimeError("Inductor could not build its kernels")

        return step

    monkeypatch.setattr(torch_compile_state, "_compiled_step", broken)
    monkeypatch.setattr(torch_compile_state, "_cache", type(torch_compile_state._cache)())
    monkeypatch.setenv("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "0")
    model = anyglm.get_model("linear")
    with pytest.warns(anyglm.PluginWarning, match="linear.*Inductor could not build") as seen:
        fast = _fit("torch", model, accelerate=True)
    assert len(seen) == 1 and not fast.accelerated
    portable = _fit("torch", model, accelerate=False)
    be = anyglm.get_backend("torch")
    np.testing.assert_array_equal(be.to_numpy(fast.W), be.to_numpy(portable.W))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not _fit("torch", model, accelerate=True).accelerated  # no second warning


@needs_torch
def test_torch_without_a_cpp_compiler_trains_eagerly(
    torch_compile_state: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no g++, clang++ or c++ here
    assert "no C++ compiler" in (torch_compile_state.toolchain_problem("cpu") or "")
    monkeypatch.setenv("ANYGLM_TORCH_COMPILE_MIN_ELEMENTS", "0")
    with pytest.warns(anyglm.PluginWarning, match="any model.*no C\\+\\+ compiler"):
        fast = _fit("torch", anyglm.get_model("softmax"), accelerate=True)
    assert not fast.accelerated
    assert not torch_compile_state.declares(_spec())  # every model, for the process
