"""anyglm.special: accuracy against SciPy, tails, special values, and every namespace."""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable
from typing import Any

import anyglm
import numpy as np
import pytest
from anyglm import special

sc = pytest.importorskip("scipy.special")

NAMES = ("erf", "erfc", "erfcx", "ndtr", "log_ndtr")

#: A dense grid over |z| <= 1e3: uniform over the whole range, finer over the tails'
#: interesting part, log-spaced near 0, and the break points of the approximations.
GRID = np.unique(
    np.concatenate(
        [
            np.linspace(-1e3, 1e3, 100_001),
            np.linspace(-40.0, 40.0, 200_001),
            np.geomspace(1e-300, 1e3, 5_001),
            -np.geomspace(1e-300, 1e3, 5_001),
            np.array([0.0, 0.46875, 4.0, 26.5, 37.5, 38.5, 1e3]),
            -np.array([0.46875, 4.0, 26.5, 37.5, 38.5, 1e3]),
            np.nextafter(np.array([0.46875, 4.0, -0.46875, -4.0]), 0.0),
        ]
    )
)


def _ours(name: str) -> Callable[[Any], Any]:
    return getattr(special, name)


def _scipy(name: str) -> Callable[[Any], Any]:
    return getattr(sc, name)


# -- float64 against SciPy ---------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_float64_agrees_with_scipy_to_1e13_wherever_scipys_value_is_normal(name: str) -> None:
    ours, ref = _ours(name)(GRID), _scipy(name)(GRID)
    assert ours.dtype == np.float64 and ours.shape == GRID.shape
    tiny = np.finfo(np.float64).tiny
    normal = np.isfinite(ref) & (np.abs(ref) >= tiny)
    assert normal.sum() > 200_000  # the check covers most of the grid
    rel = np.abs(ours[normal] - ref[normal]) / np.abs(ref[normal])
    worst = int(np.argmax(rel))
    assert rel[worst] <= 1e-13, (
        f"{name}({GRID[normal][worst]!r}) = {ours[normal][worst]!r}, SciPy "
        f"{ref[normal][worst]!r}: relative difference {rel[worst]:.3g}"
    )
    # Where SciPy's value is not a normal float, ours is the same kind of value.
    rest = ~normal
    np.testing.assert_array_equal(np.isinf(ours[rest]), np.isinf(ref[rest]))
    finite = rest & np.isfinite(ref)
    assert np.all(np.abs(ours[finite]) <= 2 * tiny), f"{name}: a normal value where SciPy has none"


@pytest.mark.parametrize("name", NAMES)
def test_float32_agrees_with_scipy_within_the_arguments_rounding(name: str) -> None:
    # In the tails the functions amplify a relative change of z by about z**2, so the
    # float32 error bound grows with z**2 (the rounding of z / sqrt(2) alone causes it).
    z = GRID.astype(np.float32)
    ours = _ours(name)(z)
    assert ours.dtype == np.float32
    ref = _scipy(name)(z.astype(np.float64))
    info = np.finfo(np.float32)
    normal = np.isfinite(ref) & (np.abs(ref) >= info.tiny) & (np.abs(ref) <= info.max)
    rel = np.abs(ours[normal] - ref[normal]) / np.abs(ref[normal])
    bound = 4 * info.eps * (1.0 + z[normal].astype(np.float64) ** 2)
    worst = int(np.argmax(rel / bound))
    assert rel[worst] <= bound[worst], (
        f"{name}(float32 {z[normal][worst]!r}) = {ours[normal][worst]!r}, SciPy "
        f"{ref[normal][worst]!r}: relative difference {rel[worst]:.3g} > {bound[worst]:.3g}"
    )


@pytest.mark.parametrize("name", ["erf", "erfc", "erfcx"])
def test_error_functions_are_accurate_to_a_few_ulps_against_mpmath(name: str) -> None:
    # SciPy's erfc computes exp(-x*x) directly (up to 6e-14 off in the tail); Cody's
    # split of x**2 keeps ours within a few ulps of the exact value.
    mpmath = pytest.importorskip("mpmath")
    mpmath.mp.dps = 50
    exact = {
        "erf": mpmath.erf,
        "erfc": mpmath.erfc,
        "erfcx": lambda x: mpmath.erfc(x) * mpmath.exp(x * x),
    }[name]
    xs = np.concatenate([np.linspace(-26.5, 26.5, 1_061), [0.46875, 4.0, -0.46875, -4.0]])
    ours = _ours(name)(xs)
    worst = 0.0
    for x, got in zip(xs, ours, strict=True):
        want = exact(mpmath.mpf(float(x)))
        if want == 0 or abs(want) < np.finfo(np.float64).tiny:
            continue
        worst = max(worst, float(abs((mpmath.mpf(float(got)) - want) / want)))
    assert worst <= 2e-15, f"{name}: relative error {worst:.3g} against mpmath"


# -- the log form and the tails ----------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_log_ndtr_is_finite_and_increasing_for_abs_z_up_to_1e3(dtype: str) -> None:
    z = np.linspace(-1e3, 1e3, 200_001).astype(dtype)
    out = special.log_ndtr(z)
    assert np.all(np.isfinite(out)), f"log_ndtr is not finite at {z[~np.isfinite(out)][:3]}"
    assert np.all(out <= 0)
    assert np.all(np.diff(out) >= 0), "log_ndtr must not decrease"
    # log Phi(z) = -z^2/2 - log(-z) - log(2 pi)/2 - 1/z^2 + ... for z -> -inf
    zl = np.float64(-1e3)
    asymptote = -(zl**2) / 2 - np.log(-zl) - 0.5 * np.log(2 * np.pi) - 1 / zl**2
    rtol = 1e-15 if dtype == "float64" else 1e-6
    assert abs(float(out[0]) - asymptote) <= rtol * abs(asymptote)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_inverse_mills_ratio_from_erfcx_is_finite_and_tends_to_minus_z(dtype: str) -> None:
    # phi(z) / Phi(z) = sqrt(2/pi) / erfcx(-z/sqrt(2)): the stable form the probit uses.
    z = np.linspace(-1e3, 1e3, 20_001).astype(dtype)
    ratio = np.sqrt(2 / np.pi) / special.erfcx(-z / np.sqrt(2).astype(dtype))
    assert np.all(np.isfinite(ratio)) and np.all(ratio >= 0)
    far = z < -100
    np.testing.assert_allclose(ratio[far], -z[far] - 1 / z[far], rtol=1e-5)
    assert ratio[-1] == 0  # phi/Phi underflows for large z


def test_special_values_and_symmetries_without_warnings() -> None:
    x = np.array([-np.inf, -1e308, -30.0, -1.0, -0.0, 0.0, 1.0, 30.0, 1e308, np.inf, np.nan])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow / invalid-value warning from any branch
        out = {name: _ours(name)(x) for name in NAMES}
    for name in NAMES:
        np.testing.assert_allclose(out[name], _scipy(name)(x), rtol=1e-13, err_msg=name)
    assert np.isnan(out["erf"][-1]) and np.isnan(out["log_ndtr"][-1])
    assert out["log_ndtr"][0] == -np.inf and out["ndtr"][0] == 0.0 and out["ndtr"][-2] == 1.0
    assert out["erfcx"][0] == np.inf and out["erfcx"][-2] == 0.0
    z = np.linspace(-8, 8, 1601)
    np.testing.assert_array_equal(special.erf(-z), -special.erf(z))
    np.testing.assert_allclose(special.ndtr(z) + special.ndtr(-z), 1.0, rtol=0, atol=2e-16)
    np.testing.assert_allclose(special.erfc(z) + special.erf(z), 1.0, rtol=0, atol=4e-16)


# -- every namespace ---------------------------------------------------------------------------


def _namespaces() -> list[Any]:
    params = [pytest.param("numpy", None, id="numpy")]
    params.append(pytest.param("array_api_strict", "device1", id="array_api_strict-device1"))
    for name in ("torch", "jax"):
        missing = importlib.util.find_spec(name) is None
        marks = pytest.mark.skipif(missing, reason=f"{name} is not installed")
        params.append(pytest.param(name, None, id=name, marks=marks))
    return params


@pytest.mark.parametrize(("backend_name", "device_name"), _namespaces())
@pytest.mark.parametrize("name", NAMES)
def test_results_stay_in_the_inputs_namespace_device_and_dtype(
    backend_name: str, device_name: str | None, name: str
) -> None:
    be = anyglm.get_backend(backend_name)
    device = be.default_device()
    if device_name is not None:
        device = next(d for d in be.devices() if device_name in str(d))
    z = np.linspace(-60.0, 60.0, 241)
    reference = _ours(name)(z)
    for dtype in be.float_dtypes(device):
        x = be.from_numpy(z, dtype=dtype, device=device)
        before = be.to_numpy(x).copy()
        out = _ours(name)(x)
        what = f"{name} on {backend_name} ({device}, {dtype})"
        assert be.owns(out), f"{what} returned a {type(out).__name__}"
        assert be.device_of(out) == device, f"{what} moved the result to {be.device_of(out)}"
        assert anyglm.backend.dtype_name(out.dtype) == dtype, f"{what}: dtype {out.dtype}"
        np.testing.assert_array_equal(be.to_numpy(x), before, err_msg=f"{what} changed x")
        got = be.to_numpy(out).astype(np.float64)
        expected = reference if dtype == "float64" else _ours(name)(z.astype(np.float32))
        rtol = 1e-14 if dtype == "float64" else 1e-5
        both_inf = np.isinf(got) & np.isinf(expected)
        # XLA on the CPU flushes subnormals to zero: below the smallest normal, absolute.
        atol = float(np.finfo(dtype).tiny)
        np.testing.assert_allclose(
            got[~both_inf], expected[~both_inf], rtol=rtol, atol=atol, err_msg=what
        )


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_can_jit_and_differentiate_log_ndtr() -> None:
    import jax
    import jax.numpy as jnp

    z = jnp.asarray([-1e3, -5.0, 0.0, 5.0])
    np.testing.assert_allclose(jax.jit(special.log_ndtr)(z), special.log_ndtr(z), rtol=1e-6)
    grad = jax.grad(lambda v: jnp.sum(special.log_ndtr(v)))(z)
    mills = np.sqrt(2 / np.pi) / sc.erfcx(-np.asarray(z, dtype=np.float64) / np.sqrt(2))
    np.testing.assert_allclose(np.asarray(grad), mills, rtol=1e-4)


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_a_list_is_refused_with_a_hint(name: str) -> None:
    with pytest.raises(TypeError, match=rf"anyglm.special.{name} needs an array.*asarray"):
        _ours(name)([0.0, 1.0])


@pytest.mark.parametrize("name", NAMES)
def test_an_integer_array_is_refused_naming_its_dtype(name: str) -> None:
    with pytest.raises(TypeError, match=r"float32 or float64 array, got dtype int64"):
        _ours(name)(np.arange(3, dtype=np.int64))


def test_special_is_public() -> None:
    assert "special" in anyglm.__all__ and anyglm.special is special
    assert set(special.__all__) == set(NAMES)
