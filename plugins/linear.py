"""Linear regression: identity link, squared error."""

from __future__ import annotations

from typing import Any

from anyglm.hookspecs import hookimpl
from anyglm.model import Model


class Linear(Model):
    r"""Linear regression with the loss :math:`\tfrac12 \lVert z - y \rVert^2` per row.

    The factor one half makes ``dloss`` the plain residual, matching the
    gradient ``X^T (Xw + b - y) / n`` derived in the theory pages.
    """

    name = "linear"
    task = "regression"
    description = "least squares (identity link, squared error)"
    curvature = 1.0

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        return Z

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        R = Z - Y
        return 0.5 * _row_sum(xp, R * R)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return Z - Y

    def loss_and_dloss(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        R = Z - Y
        return 0.5 * _row_sum(xp, R * R), R


def _row_sum(xp: Any, A: Any) -> Any:
    # One target needs no reduction; the value is the same.
    return A[..., 0] if A.shape[-1] == 1 else xp.sum(A, axis=-1)


@hookimpl
def anyglm_register_models(register: Any) -> None:
    register(Linear())
