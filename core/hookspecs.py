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
    from .accelerate import Accelerator, AcceleratorSpec
    from .backend import Backend
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
def anyglm_accelerator(backend: Backend, spec: AcceleratorSpec) -> Accelerator | None:
    """Offer a faster pass over a block of training steps for ``spec`` on ``backend``, or ``None``.

    Called when training starts. Return an :class:`anyglm.accelerate.Accelerator`
    only for specs (model, optimiser, penalty, dtype, configurations, weights,
    sparse input) it implements exactly, and ``None`` for every other one: the
    portable loop then runs, which stays the reference. The conformance suite
    checks each accelerator against the portable loop.
    """
