"""Softmax (multinomial logistic) regression: cross-entropy."""

from __future__ import annotations

from typing import Any

from anyglm.hookspecs import hookimpl
from anyglm.model import Model


def _log_softmax(xp: Any, Z: Any) -> Any:
    # Subtracting the row maximum keeps exp() in [0, 1]; log-sum-exp of the
    # shifted logits is then exact for logits of any magnitude.
    shifted = Z - xp.max(Z, axis=-1, keepdims=True)
    return shifted - xp.log(xp.sum(xp.exp(shifted), axis=-1, keepdims=True))


class Softmax(Model):
    r"""Softmax regression: :math:`\hat y = \operatorname{softmax}(z)`, cross-entropy loss.

    The loss is computed as ``-sum(y * log_softmax(z))`` with log-sum-exp,
    never as ``log(softmax(z))``, and its derivative is ``softmax(z) - y``.
    """

    name = "softmax"
    task = "classification"
    binary = False
    description = "multinomial logistic regression (softmax, cross-entropy)"
    curvature = 0.5  # the Hessian diag(p) - p p^T has eigenvalues <= 1/2

    def inverse_link(self, xp: Any, Z: Any) -> Any:
        shifted = Z - xp.max(Z, axis=-1, keepdims=True)
        E = xp.exp(shifted)
        return E / xp.sum(E, axis=-1, keepdims=True)

    def loss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return -xp.sum(Y * _log_softmax(xp, Z), axis=-1)

    def dloss(self, xp: Any, Z: Any, Y: Any) -> Any:
        return self.inverse_link(xp, Z) - Y

    def loss_and_dloss(self, xp: Any, Z: Any, Y: Any) -> tuple[Any, Any]:
        # One max, exp and sum for both; the same values as loss() and dloss(),
        # in half the operations. vecdot is one call where multiply-then-sum is
        # two, and NumPy sums over a short last axis slowly.
        shifted = Z - xp.max(Z, axis=-1, keepdims=True)
        E = xp.exp(shifted)
        S = xp.sum(E, axis=-1, keepdims=True)
        rows = xp.vecdot(Y, xp.log(S) - shifted)
        return rows, E / S - Y


@hookimpl
def anyglm_register_models(register: Any) -> None:
    register(Softmax())
