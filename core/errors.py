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
    """A backend or model name that no registered plugin provides.

    Examples
    --------
    >>> import anyglm
    >>> try:
    ...     anyglm.get_backend("nunpy")
    ... except anyglm.UnknownNameError as err:
    ...     print(str(err).split(". ")[-1])
    Did you mean 'numpy'?
    """

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class BackendUnavailableError(ValueError):
    """A backend that is registered but cannot run here (library or device missing).

    Examples
    --------
    >>> import anyglm
    >>> be = anyglm.get_backend("cupy")
    >>> try:
    ...     be.require()
    ... except anyglm.BackendUnavailableError as err:
    ...     print("unavailable:", be.unavailable_reason is not None)
    ... else:
    ...     print("unavailable:", False)  # a machine with CuPy and a GPU
    unavailable: ...
    """


class PluginLoadError(RuntimeError):
    """A plugin failed to load; raised in strict mode or when its name is requested.

    The original exception is chained as ``__cause__``.

    Examples
    --------
    >>> import anyglm
    >>> issubclass(anyglm.PluginLoadError, RuntimeError)
    True
    """


class NotFittedError(ValueError, AttributeError):
    """An estimator was used before :meth:`fit` was called.

    Examples
    --------
    >>> import anyglm
    >>> try:
    ...     anyglm.SoftmaxRegression().predict([[1.0]])
    ... except anyglm.NotFittedError as err:
    ...     print(err)
    this SoftmaxRegression is not fitted yet; call fit(X, y) before using it
    """


class ModelFileError(ValueError):
    """A model file is truncated, corrupted, foreign or of an unsupported version.

    Examples
    --------
    >>> import pathlib, tempfile, anyglm
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "notes.txt"
    >>> _ = path.write_text("not a model")
    >>> try:
    ...     anyglm.load(path)
    ... except anyglm.ModelFileError as err:
    ...     print("not an anyglm model file" in str(err))
    True
    """


class DivergenceError(ArithmeticError):
    """Training produced a non-finite loss or non-finite parameters.

    Attributes
    ----------
    epoch : int
        The 1-based epoch in which the divergence was detected.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> X = np.array([[1000.0], [-1000.0]])
    >>> try:
    ...     anyglm.LinearRegression(learning_rate=1.0, epochs=200).fit(X, [1.0, 2.0])
    ... except anyglm.DivergenceError as err:
    ...     print(err.epoch)
    27
    """

    def __init__(self, message: str, *, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch
