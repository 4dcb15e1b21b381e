"""Exceptions raised by anyglm.

Every error a user can cause derives from :class:`ValueError` or
:class:`TypeError`, so code written against scikit-learn's conventions keeps
working; the subclasses below let callers catch anyglm's cases precisely.
"""

from __future__ import annotations

__all__ = [
    "BackendUnavailableError",
    "DivergenceError",
    "ModelFileError",
    "NotFittedError",
    "PluginLoadError",
    "UnknownNameError",
]


class UnknownNameError(ValueError, KeyError):
    """A backend or model name that no registered plugin provides."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(ValueError):
    """A backend that is registered but cannot run here (library or device missing)."""


class PluginLoadError(RuntimeError):
    """A plugin failed to load; raised in strict mode or when its name is requested.

    The original exception is chained as ``__cause__``.
    """


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before :meth:`fit` was called."""


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign or of an unsupported version."""


class DivergenceError(ArithmeticError):
    """Training produced a non-finite loss or non-finite parameters.

    Attributes
    ----------
    epoch : int
        The 1-based epoch in which the divergence was detected.
    """

    def __init__(self, message: str, *, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch
