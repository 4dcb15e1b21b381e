"""Binary logistic regression: sigmoid link, log loss."""

from __future__ import annotations

from typing import Any

from anyglm.hookspecs import hookimpl
from anyglm.model import Model


class Logistic(Model):
    r"""Logistic regression with the log loss written from the logit.

    :math:`-y\log\sigma(z) - (1-y)\log(1-\sigma(z)) = \operatorname{softplus}(z) - yz`,
    and softplus is ``logaddexp(0, z)``, which neither overflows nor loses
    precision for large ``|z|``.
    """

    name = "logistic"
    task = "classification"
    binary = True
    description = "binary logistic regression (sigmoid link, log loss)"
    curvature = 0.25  # sigma'(z) = sigma(z) (1 - sigma(z)) <= 1/4

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        # sigma(z) = exp(-softplus(-z)): no overflow warning at z = -1000.
        return xp.exp(-xp.logaddexp(xp.zeros_like(Z), -Z))

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return _row_sum(xp, xp.logaddexp(xp.zeros_like(Z), Z) - Y * Z)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return self.inverse_link(xp, Z) - Y

    def loss_and_dloss(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        # The same operations as loss() and dloss(), sharing one zeros array.
        zero = xp.zeros_like(Z)
        rows = _row_sum(xp, xp.logaddexp(zero, Z) - Y * Z)
        return rows, xp.exp(-xp.logaddexp(zero, -Z)) - Y


def _row_sum(xp: Any, A: Any) -> Any:
    # One output column (a single binary fit) needs no reduction; the value is the same.
    return A[..., 0] if A.shape[-1] == 1 else xp.sum(A, axis=-1)


@hookimpl
def anyglm_register_models(register: Any) -> None:
    register(Logistic())
