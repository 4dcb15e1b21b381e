r"""anyglm-probit: an example model plugin for anyglm, written with :mod:`anyglm.special`.

It adds the model ``"probit"`` (binary probit regression) to every anyglm
estimator::

    import anyglm

    clf = anyglm.Estimator(model="probit", random_state=0).fit(X, y)
    clf.predict_proba(X_new)  # Phi(X_new @ coef_ + intercept_) for the second class

The Array API standard has no special functions, and the probit link is the
standard normal CDF :math:`\Phi`; :mod:`anyglm.special` supplies ``ndtr``,
``log_ndtr`` and ``erfcx``, written once against the namespace of their input,
so the model runs unchanged on every backend (NumPy, array-api-strict, CuPy,
PyTorch, JAX, ...).
"""

from __future__ import annotations

import math
from typing import Any

import anyglm
from anyglm import special

__all__ = ["Probit", "anyglm_register_models"]
__version__ = "0.1.0"

_SQRT1_2 = 1.0 / math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


class Probit(anyglm.Model):
    r"""Binary probit regression: :math:`P(y = 1 \mid x) = \Phi(z)`, :math:`z = x^\top w + b`.

    The per-row loss is the negative log-likelihood

    .. math:: \ell(z, y) = -y \log\Phi(z) - (1 - y) \log\Phi(-z),

    written with ``log_ndtr``, which stays finite and accurate where
    :math:`\Phi(z)` underflows (about ``5e5`` at ``|z| = 1e3`` instead of ``inf``).
    Its derivative is

    .. math:: \frac{\partial\ell}{\partial z} = -y\,\frac{\varphi(z)}{\Phi(z)}
              + (1 - y)\,\frac{\varphi(z)}{\Phi(-z)},

    and the inverse Mills ratio is computed as
    :math:`\varphi(z)/\Phi(z) = \sqrt{2/\pi}\,/\operatorname{erfcx}(-z/\sqrt2)`,
    which never divides two underflowed numbers: it tends to ``-z`` for
    ``z -> -inf`` and to 0 for ``z -> inf``.

    Examples
    --------
    >>> import numpy as np
    >>> import array_api_compat.numpy as xp
    >>> from anyglm_probit import Probit
    >>> Z, Y = np.array([[-1000.0], [0.0], [1000.0]]), np.array([[1.0], [1.0], [1.0]])
    >>> Probit().loss(xp, Z, Y).round(3).tolist()
    [500007.827, 0.693, 0.0]
    >>> Probit().dloss(xp, Z, Y).round(3).tolist()
    [[-1000.001], [-0.798], [0.0]]
    """

    name = "probit"
    task = "classification"
    binary = True
    description = "binary probit regression (normal CDF link, log loss)"

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        """:math:`\\Phi(Z)`, the probability of the second class."""
        return special.ndtr(Z)

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        """Negative log-likelihood per row, from ``log_ndtr`` (finite for every finite ``Z``)."""
        rows = -(Y * special.log_ndtr(Z) + (1.0 - Y) * special.log_ndtr(-Z))
        return _row_sum(xp, rows)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        """Derivative in ``Z``, through the inverse Mills ratio written with ``erfcx``."""
        T = Z * _SQRT1_2
        mills_pos = _SQRT_2_OVER_PI / special.erfcx(-T)  # phi(z) / Phi(z)
        mills_neg = _SQRT_2_OVER_PI / special.erfcx(T)  # phi(z) / Phi(-z)
        return (1.0 - Y) * mills_neg - Y * mills_pos


def _row_sum(xp: Any, A: Any) -> Any:
    # One output column (a single binary fit) needs no reduction; the value is the same.
    return A[..., 0] if A.shape[-1] == 1 else xp.sum(A, axis=-1)


@anyglm.hookimpl
def anyglm_register_models(register: Any) -> None:
    """Register the ``"probit"`` model with anyglm."""
    register(Probit())
