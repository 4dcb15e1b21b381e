"""anyglm-poisson: an example model plugin for anyglm.

It adds the model ``"poisson"`` (Poisson regression, log link) to every
anyglm estimator::

    import anyglm

    est = anyglm.Estimator(model="poisson", learning_rate=0.05).fit(X, counts)
    est.predict(X_new)  # expected counts, exp(X_new @ coef_ + intercept_)

The model is written only against the Array API namespace ``xp`` it is
handed, so it runs unchanged on every backend (NumPy, array-api-strict, CuPy,
PyTorch through the anyglm-torch example, ...).
"""

from __future__ import annotations

from typing import Any

import anyglm
import numpy as np

__all__ = ["Poisson", "anyglm_register_models"]
__version__ = "0.1.0"


class Poisson(anyglm.Model):
    r"""Poisson regression with the log link.

    The mean is :math:`\mu = e^{z}` for the linear predictor
    :math:`z = x^\top w + b`, and the per-row loss is the negative Poisson
    log-likelihood without its :math:`\log y!` term,

    .. math:: \ell(z, y) = \sum_j \left(e^{z_j} - y_j z_j\right),

    summed over the target columns. It equals half the Poisson deviance
    :math:`2\,(y \log(y/\mu) - y + \mu)` up to terms that depend on ``y``
    only (constant in ``z``), so it has the same minimiser and the same
    gradient, :math:`\partial \ell / \partial z = e^{z} - y`; it is not the
    deviance itself (it is not zero at a perfect fit, and can be negative).

    Targets must be non-negative (counts or rates); they need not be integers.
    """

    name = "poisson"
    task = "regression"
    description = "Poisson regression (log link, Poisson deviance up to a constant)"

    def check_targets(self, y: np.ndarray) -> None:
        negative = y < 0
        if np.any(negative):
            row, col = np.argwhere(negative)[0]
            where = f"row {row}" + (f", column {col}" if y.shape[1] > 1 else "")
            raise ValueError(
                f"model 'poisson' needs non-negative targets (counts or rates), but y has "
                f"{int(np.count_nonzero(negative))} negative value(s), the first "
                f"{float(y[row, col])!r} at {where}"
            )

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        return xp.exp(Z)

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return xp.sum(xp.exp(Z) - Y * Z, axis=-1)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return xp.exp(Z) - Y


@anyglm.hookimpl
def anyglm_register_models(register: Any) -> None:
    """Register the ``"poisson"`` model with anyglm."""
    register(Poisson())
