"""A small composable optimiser, in the shape of optax's ``(init, update)`` pairs.

Updates are functional (``W - lr * g`` makes a new array), so arrays that
cannot be written in place (JAX) work and the previous parameters stay valid:
the trainer keeps them as the last finite state at no cost.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Transform", "add_l2", "apply_updates", "chain", "sgd"]

Params = tuple[Any, ...]


class Transform(NamedTuple):
    """A gradient transformation: ``init(params) -> state`` and
    ``update(grads, state, params) -> (updates, state)``.

    Examples
    --------
    >>> from anyglm.optim import sgd
    >>> opt = sgd(0.1)
    >>> opt.update((1.0,), opt.init((0.0,)), (0.0,))[0]
    (-0.1,)
    """

    init: Callable[[Params], Any]
    update: Callable[[Params, Any, Params], tuple[Params, Any]]


def sgd(learning_rate: Any) -> Transform:
    """Plain SGD: ``updates = -learning_rate * grads``.

    ``learning_rate`` may be a float or an array broadcasting against each
    parameter (one rate per configuration column).

    Examples
    --------
    >>> from anyglm.optim import sgd, apply_updates
    >>> opt = sgd(0.5)
    >>> upd, _ = opt.update((2.0,), opt.init((1.0,)), (1.0,))
    >>> apply_updates((1.0,), upd)
    (0.0,)
    """

    def update(grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        return tuple(-learning_rate * g for g in grads), state

    return Transform(lambda params: None, update)


def add_l2(alpha: Any, mask: tuple[bool, ...]) -> Transform:
    """Add ``alpha * p`` to the gradient of every parameter ``p`` whose ``mask`` is true.

    This is the gradient of ``(alpha / 2) * ||p||^2``; the bias is left out
    by passing ``mask=(True, False)`` for ``(W, b)``.

    Examples
    --------
    >>> from anyglm.optim import add_l2
    >>> t = add_l2(0.1, (True, False))
    >>> t.update((1.0, 1.0), None, (10.0, 10.0))[0]
    (2.0, 1.0)
    """

    def update(grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        return tuple(
            g + alpha * p if m else g for g, p, m in zip(grads, params, mask, strict=True)
        ), state

    return Transform(lambda params: None, update)


def chain(*transforms: Transform) -> Transform:
    """Apply transformations in order, each to the output of the previous one.

    Examples
    --------
    >>> from anyglm.optim import add_l2, chain, sgd
    >>> opt = chain(add_l2(1.0, (True,)), sgd(0.1))
    >>> opt.update((1.0,), opt.init((2.0,)), (2.0,))[0]
    (-0.30000000000000004,)
    """

    def init(params: Params) -> Any:
        return tuple(t.init(params) for t in transforms)

    def update(grads: Params, state: Any, params: Params) -> tuple[Params, Any]:
        new_state = []
        for t, s in zip(transforms, state, strict=True):
            grads, s = t.update(grads, s, params)
            new_state.append(s)
        return grads, tuple(new_state)

    return Transform(init, update)


def apply_updates(params: Params, updates: Params) -> Params:
    """``params + updates``, element by element, as new arrays.

    Examples
    --------
    >>> from anyglm.optim import apply_updates
    >>> apply_updates((1.0, 2.0), (0.5, -0.5))
    (1.5, 1.5)
    """
    return tuple(p + u for p, u in zip(params, updates, strict=True))
