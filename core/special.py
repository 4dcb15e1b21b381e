r"""Special functions written once against the Array API standard.

The standard has no special functions: no ``erf``, no normal CDF. GLM links
need a few of them (the probit link is the standard normal CDF), so this
module offers them, written with the namespace of their input, in float32 and
float64, on every backend: the result stays in the input's namespace, on its
device, in its dtype, and nothing is converted to NumPy.

=================  ===================================================================
:func:`erf`        the error function
:func:`erfc`       ``1 - erf(x)``, accurate where ``erf(x)`` is close to 1
:func:`erfcx`      the scaled complementary error function ``exp(x**2) * erfc(x)``
:func:`ndtr`       the standard normal CDF :math:`\Phi(z)`
:func:`log_ndtr`   :math:`\log \Phi(z)`, finite for every finite ``z`` (``-5e5`` at ``z = -1e3``)
=================  ===================================================================

The error functions are W. J. Cody's rational Chebyshev approximations,
"Rational Chebyshev approximations for the error function", *Mathematics of
Computation* 23 (1969), 631-637, with the coefficients and the argument
splitting of ``exp(-x**2)`` of his routine CALERF (netlib ``specfun/erf``).
:func:`ndtr` and :func:`log_ndtr` follow the formulation SciPy uses
(``t = z / sqrt(2)``; ``log(erfcx(-t) / 2) - t**2`` in the lower tail).
In float64 they agree with SciPy to 1e-13 relative wherever SciPy's value is a
normal float, for ``|z|`` up to 1e3 (``tests/unit/test_special.py``). For example:

>>> import numpy as np
>>> from anyglm import special
>>> special.ndtr(np.array([-1.0, 0.0, 1.0])).round(6).tolist()
[0.158655, 0.5, 0.841345]
>>> float(special.log_ndtr(np.array(-1000.0)))  # log(ndtr(-1000)) without underflow
-500007.82669481...
"""

from __future__ import annotations

import math
from typing import Any

__all__ = ["erf", "erfc", "erfcx", "log_ndtr", "ndtr"]

# Cody (1969), CALERF: erf(x) = x * A(x^2) / B(x^2) for |x| <= 0.46875.
_A = (
    3.16112374387056560e00,
    1.13864154151050156e02,
    3.77485237685302021e02,
    3.20937758913846947e03,
    1.85777706184603153e-1,
)
_B = (
    2.36012909523441209e01,
    2.44024637934444173e02,
    1.28261652607737228e03,
    2.84423683343917062e03,
)
# erfcx(y) = C(y) / D(y) for 0.46875 <= y <= 4.
_C = (
    5.64188496988670089e-1,
    8.88314979438837594e00,
    6.61191906371416295e01,
    2.98635138197400131e02,
    8.81952221241769090e02,
    1.71204761263407058e03,
    2.05107837782607147e03,
    1.23033935479799725e03,
    2.15311535474403846e-8,
)
_D = (
    1.57449261107098347e01,
    1.17693950891312499e02,
    5.37181101862009858e02,
    1.62138957456669019e03,
    3.29079923573345963e03,
    4.36261909014324716e03,
    3.43936767414372164e03,
    1.23033935480374942e03,
)
# erfcx(y) = (1/sqrt(pi) - r P(r) / Q(r)) / y with r = 1 / y^2, for y > 4.
_P = (
    3.05326634961232344e-1,
    3.60344899949804439e-1,
    1.25781726111229246e-1,
    1.60837851487422766e-2,
    6.58749161529837803e-4,
    1.63153871373020978e-2,
)
_Q = (
    2.56852019228982242e00,
    1.87295284992346047e00,
    5.27905102951428412e-1,
    6.05183413124413191e-2,
    2.33520497626869185e-3,
)
_SQRPI = 5.6418958354775628695e-1  # 1 / sqrt(pi)
_SQRT1_2 = 0.70710678118654752440  # 1 / sqrt(2)
_SMALL = 0.46875  # Cody's first break point
_MID = 4.0  # Cody's second break point
# exp(-y^2) is 0 in float64 (and float32) beyond this, so larger y need not be computed.
_EXP_CUT = 40.0


def _namespace(x: Any, name: str) -> Any:
    import array_api_compat

    try:
        xp = array_api_compat.array_namespace(x)
    except TypeError as exc:
        raise TypeError(
            f"anyglm.special.{name} needs an array (NumPy, PyTorch, JAX, CuPy, ...), got "
            f"{type(x).__name__}; wrap numbers with your library's asarray"
        ) from exc
    if not (x.dtype == xp.float32 or x.dtype == xp.float64):
        raise TypeError(
            f"anyglm.special.{name} needs a float32 or float64 array, got dtype {x.dtype}; "
            "convert it with xp.astype(x, xp.float64) (or float32)"
        )
    return xp


def _erf_small(xp: Any, x: Any) -> Any:
    """``erf(x)`` for ``|x| <= 0.46875`` (callers clip ``x``)."""
    t = x * x
    num = _A[4] * t
    den = t
    for a, b in zip(_A[:3], _B[:3], strict=True):
        num = (num + a) * t
        den = (den + b) * t
    return x * (num + _A[3]) / (den + _B[3])


def _erfcx_positive(xp: Any, y: Any) -> Any:
    """``erfcx(y)`` for ``y >= 0.46875`` (callers clip ``y``); 0 at ``y = inf``."""
    mid = xp.clip(y, max=_MID)
    num = _C[8] * mid
    den = mid
    for c, d in zip(_C[:7], _D[:7], strict=True):
        num = (num + c) * mid
        den = (den + d) * mid
    r_mid = (num + _C[7]) / (den + _D[7])
    # 1/y, then squared: no overflow of y*y for huge y (r underflows to 0 instead).
    inv = 1.0 / xp.clip(y, min=_MID)
    r = inv * inv
    num = _P[5] * r
    den = r
    for p, q in zip(_P[:4], _Q[:4], strict=True):
        num = (num + p) * r
        den = (den + q) * r
    r_large = (_SQRPI - r * (num + _P[4]) / (den + _Q[4])) * inv
    return xp.where(y <= _MID, r_mid, r_large)


def _exp_neg_square(xp: Any, y: Any) -> Any:
    """``exp(-y**2)`` for ``y >= 0``, accurate to a few ulps for large ``y``.

    Cody's split: ``y**2 = s**2 + (y - s)(y + s)`` with ``s = floor(16 y) / 16``, whose
    square is exact, so the rounding error of ``y*y`` (amplified ``y**2`` times by
    ``exp``) never occurs.
    """
    y = xp.clip(y, max=_EXP_CUT)
    s = xp.floor(16.0 * y) / 16.0
    return xp.exp(-s * s) * xp.exp(-(y - s) * (y + s))


def _exp_square(xp: Any, y: Any) -> Any:
    """``exp(y**2)`` for ``0 <= y`` below the overflow bound, with the same split."""
    s = xp.floor(16.0 * y) / 16.0
    return xp.exp(s * s) * xp.exp((y - s) * (y + s))


def _erfc_positive(xp: Any, y: Any) -> Any:
    """``erfc(y)`` for ``y >= 0.46875`` (callers clip ``y``)."""
    return _exp_neg_square(xp, y) * _erfcx_positive(xp, y)


def _keep_nan(xp: Any, x: Any, result: Any) -> Any:
    return xp.where(xp.isnan(x), x, result)


def erf(x: Any) -> Any:
    """The error function, :math:`\\frac{2}{\\sqrt\\pi}\\int_0^x e^{-t^2}\\,dt`.

    Parameters
    ----------
    x : array
        Real floating array (float32 or float64) of any Array API library.

    Returns
    -------
    array
        Same namespace, device, shape and dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.special import erf
    >>> erf(np.array([0.0, 0.5, -2.0, np.inf])).round(12).tolist()
    [0.0, 0.520499877813, -0.995322265019, 1.0]
    """
    xp = _namespace(x, "erf")
    y = xp.abs(x)
    small = _erf_small(xp, xp.clip(x, min=-_SMALL, max=_SMALL))
    big = 1.0 - _erfc_positive(xp, xp.clip(y, min=_SMALL))
    result = xp.where(y <= _SMALL, small, xp.where(x < 0, -big, big))
    return _keep_nan(xp, x, result)


def erfc(x: Any) -> Any:
    """The complementary error function ``1 - erf(x)``, accurate for large ``x``.

    Parameters
    ----------
    x : array
        Real floating array (float32 or float64) of any Array API library.

    Returns
    -------
    array
        Same namespace, device, shape and dtype as ``x``; it underflows to 0 for
        ``x`` above about 26.5 (float64) or 9.2 (float32).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.special import erfc
    >>> erfc(np.array([-1.0, 0.0, 10.0])).tolist()  # 1 - erf(10) would be 0
    [1.8427007929497148, 1.0, 2.088487583762545e-45]
    """
    xp = _namespace(x, "erfc")
    y = xp.abs(x)
    small = 1.0 - _erf_small(xp, xp.clip(x, min=-_SMALL, max=_SMALL))
    big = _erfc_positive(xp, xp.clip(y, min=_SMALL))
    result = xp.where(y <= _SMALL, small, xp.where(x < 0, 2.0 - big, big))
    return _keep_nan(xp, x, result)


def erfcx(x: Any) -> Any:
    """The scaled complementary error function ``exp(x**2) * erfc(x)``.

    It falls like ``1 / (x sqrt(pi))`` for large positive ``x`` instead of
    underflowing, which makes ratios such as the inverse Mills ratio
    :math:`\\varphi(z) / \\Phi(z) = \\sqrt{2/\\pi} / \\operatorname{erfcx}(-z/\\sqrt2)`
    computable for every ``z``. It overflows to ``inf`` for ``x`` below about
    -26.6 (float64) or -9.4 (float32), where ``exp(x**2)`` does.

    Parameters
    ----------
    x : array
        Real floating array (float32 or float64) of any Array API library.

    Returns
    -------
    array
        Same namespace, device, shape and dtype as ``x``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.special import erfcx
    >>> erfcx(np.array([0.0, 1.0, -1.0])).tolist()
    [1.0, 0.42758357615580705, 5.008980080762283]
    >>> float(erfcx(np.array(1e3)) * 1e3 * np.sqrt(np.pi))  # ~ 1 / (x sqrt(pi))
    0.9999995000007...
    """
    xp = _namespace(x, "erfcx")
    y = xp.abs(x)
    # Beyond this bound 2 * exp(x**2) overflows the dtype.
    bound = math.sqrt(math.log(float(xp.finfo(x.dtype).max) / 2.0)) * (1.0 - 1e-6)
    xs = xp.clip(x, min=-_SMALL, max=_SMALL)
    small = xp.exp(xs * xs) * (1.0 - _erf_small(xp, xs))
    positive = _erfcx_positive(xp, xp.clip(y, min=_SMALL))
    negative = 2.0 * _exp_square(xp, xp.clip(y, max=bound)) - positive
    negative = xp.where(y > bound, xp.full_like(x, math.inf), negative)
    result = xp.where(y <= _SMALL, small, xp.where(x < 0, negative, positive))
    return _keep_nan(xp, x, result)


def ndtr(z: Any) -> Any:
    """The standard normal cumulative distribution function :math:`\\Phi(z)`.

    :math:`\\Phi(z) = \\tfrac12 \\operatorname{erfc}(-z/\\sqrt2)`, computed from
    ``erf`` near 0 and from ``erfc`` in both tails, so the lower tail keeps its
    relative accuracy down to the smallest normal float (``z`` about -37.5 in
    float64).

    Parameters
    ----------
    z : array
        Real floating array (float32 or float64) of any Array API library.

    Returns
    -------
    array
        Same namespace, device, shape and dtype as ``z``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.special import ndtr
    >>> [f"{v:.10g}" for v in ndtr(np.array([-10.0, 0.0, 2.0]))]  # relative accuracy in the tail
    ['7.619853024e-24', '0.5', '0.9772498681']
    """
    xp = _namespace(z, "ndtr")
    t = z * _SQRT1_2
    y = xp.abs(t)
    small = 0.5 + 0.5 * _erf_small(xp, xp.clip(t, min=-_SMALL, max=_SMALL))
    tail = 0.5 * _erfc_positive(xp, xp.clip(y, min=_SMALL))
    result = xp.where(y <= _SMALL, small, xp.where(t < 0, tail, 1.0 - tail))
    return _keep_nan(xp, z, result)


def log_ndtr(z: Any) -> Any:
    """The logarithm of the standard normal CDF, :math:`\\log\\Phi(z)`, without underflow.

    For ``z < -1`` it is ``log(erfcx(-t) / 2) - t**2`` with ``t = z / sqrt(2)``,
    which stays finite and accurate where :math:`\\Phi(z)` itself underflows
    (about ``-5e5`` at ``z = -1e3``); for ``z >= -1`` it is
    ``log1p(-ndtr(-z))``, accurate where :math:`\\Phi(z)` is close to 1.

    Parameters
    ----------
    z : array
        Real floating array (float32 or float64) of any Array API library.

    Returns
    -------
    array
        Same namespace, device, shape and dtype as ``z``; ``-inf`` only at
        ``z = -inf`` (or below about ``-sqrt(2 * max float)``).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.special import log_ndtr
    >>> log_ndtr(np.array([-1000.0, -40.0, 0.0, 40.0])).round(6).tolist()
    [-500007.826695, -804.608442, -0.693147, -0.0]
    """
    xp = _namespace(z, "log_ndtr")
    t = z * _SQRT1_2
    # t*t overflows only where log(Phi(z)) is below -max float itself.
    limit = math.sqrt(float(xp.finfo(z.dtype).max))
    tl = xp.clip(t, min=-limit, max=-_SQRT1_2)
    lower = xp.log(0.5 * _erfcx_positive(xp, -tl)) - tl * tl
    lower = xp.where(t < -limit, xp.full_like(z, -math.inf), lower)
    tu = xp.clip(t, min=-_SQRT1_2)
    upper = xp.log1p(-0.5 * erfc(tu))
    result = xp.where(z < -1.0, lower, upper)
    return _keep_nan(xp, z, result)
