"""The hooks a plugin may implement.

A plugin is a module (or any object) with functions decorated by
:data:`anyglm.hookimpl`, found through the ``anyglm.plugins`` entry-point
group. Each registration hook receives a ``register`` callable, so a plugin
states what it provides instead of returning it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from .backend import Backend
    from .fastpath import EpochKernel
    from .model import Model

PROJECT = "anyglm"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def anyglm_register_backends(register: Callable[[Backend], None]) -> None:
    """Register array backends by calling ``register(backend)`` once per backend."""


@hookspec
def anyglm_register_models(register: Callable[[Model], None]) -> None:
    """Register models (loss families) by calling ``register(model)`` once per model."""


@hookspec(firstresult=True)
def anyglm_epoch_kernel(backend: Backend, model: Model) -> EpochKernel | None:
    """Offer a faster implementation of one training epoch, or ``None``.

    Called when training starts. The first implementation that returns a
    kernel (an :class:`anyglm.fastpath.EpochKernel`) runs every epoch of that
    fit instead of the portable loop; returning ``None`` keeps the portable
    path, which stays the reference. The conformance suite checks, for every
    backend x model pair with a kernel, that both give the same parameters and
    losses within the cross-backend tolerance.
    """
