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
