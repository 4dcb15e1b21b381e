"""Exceptions raised by anyglm.

Every error a user can cause derives from :class:`ValueError` or
:class:`TypeError`, so code written against scikit-learn's conventions keeps
working; the subclasses below let callers catch anyglm's cases precisely.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = [
    "BackendUnavailableError",
    "ConvergenceWarning",
    "DataConversionWarning",
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


class DivergenceError(ValueError, ArithmeticError):
    """Training produced a non-finite loss or non-finite parameters.

    A :class:`ValueError` like every error a user's settings cause (a learning
    rate too large for the data), and an :class:`ArithmeticError`, which it
    was first, so ``except ArithmeticError`` keeps catching it.

    Attributes
    ----------
    epoch : int
        The 1-based epoch in which the divergence was detected.

    Examples
    --------
    >>> import numpy as np, anyglm
    >>> X = np.array([[1000.0], [-1000.0]])
    >>> try:
    ...     anyglm.LinearRegression(learning_rate=1.0, epochs=200, n_iter_no_change=None,
    ...                             average=False).fit(X, [1.0, 2.0])
    ... except anyglm.DivergenceError as err:
    ...     print(err.epoch)
    27
    >>> E = anyglm.DivergenceError
    >>> issubclass(E, ValueError), issubclass(E, ArithmeticError)
    (True, True)
    """

    def __init__(self, message: str, *, epoch: int) -> None:
        super().__init__(message)
        self.epoch = epoch

    def __reduce__(self) -> tuple[Any, ...]:
        # The default passes only ``args`` back to __init__, which also needs ``epoch``:
        # without this, an error raised in a worker process could not reach its parent.
        message = self.args[0] if self.args else ""
        return (_rebuild_divergence, (type(self), message, self.epoch), self.__dict__)


def _rebuild_divergence(cls: type[DivergenceError], message: str, epoch: int) -> DivergenceError:
    return cls(message, epoch=epoch)


class ConvergenceWarning(UserWarning):
    """A fit reached its epoch cap before its stopping rule was met.

    When scikit-learn is installed, the warning raised is also an instance of
    :class:`sklearn.exceptions.ConvergenceWarning`, so filters written for
    scikit-learn's estimators catch anyglm's too.

    Examples
    --------
    >>> import warnings, numpy as np, anyglm
    >>> X = np.random.default_rng(0).normal(size=(50, 2))
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     _ = anyglm.LinearRegression(epochs=2, random_state=0).fit(X, X[:, 0])
    >>> any(issubclass(w.category, anyglm.ConvergenceWarning) for w in seen)
    True
    """


_warning_class: type[Warning] | None = None


def convergence_warning_class() -> type[Warning]:
    """The class warnings are raised with: ours, and scikit-learn's too when it is installed.

    scikit-learn is imported here, when a fit first warns, never at ``import anyglm``.

    Examples
    --------
    >>> import anyglm
    >>> from anyglm.errors import convergence_warning_class
    >>> issubclass(convergence_warning_class(), anyglm.ConvergenceWarning)
    True
    """
    global _warning_class
    if _warning_class is None:
        try:
            from sklearn.exceptions import ConvergenceWarning as Theirs
        except ImportError:
            _warning_class = ConvergenceWarning
        else:
            _warning_class = type(
                "ConvergenceWarning",
                (ConvergenceWarning, Theirs),
                {"__module__": __name__, "__doc__": ConvergenceWarning.__doc__},
            )
    return _warning_class


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside anyglm.

    Counted from the function that calls :func:`warnings.warn`, so a warning
    raised at any depth inside the package names the user's line.

    Examples
    --------
    >>> from anyglm.errors import user_stacklevel
    >>> user_stacklevel() >= 1
    True
    """
    import os
    import sys

    package = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)  # the caller of warnings.warn: level 1
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(package):
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    return level


def warn_not_converged(name: str, epochs: int, patience: int, tol: float) -> None:
    """Warn that a fit used all ``epochs`` without meeting its stopping rule.

    Examples
    --------
    >>> import warnings
    >>> from anyglm.errors import warn_not_converged
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     warn_not_converged("SoftmaxRegression", 5, 3, 1e-4)
    >>> "reached epochs=5" in str(seen[0].message)
    True
    """
    import warnings

    warnings.warn(
        f"{name} reached epochs={epochs} before its loss stopped improving by tol={tol:g} "
        f"(relative to the first epoch) for n_iter_no_change={patience} epochs; the model "
        f"may not have converged. Raise epochs, or raise tol to stop sooner.",
        convergence_warning_class(),
        stacklevel=user_stacklevel(),
    )


# NotFittedError and DataConversionWarning derive from scikit-learn's classes
# when scikit-learn is installed. Importing it takes most of a second, so the
# two classes are made on first use (PEP 562), not when anyglm is imported.

_NOT_FITTED_DOC = """An estimator was used before :meth:`fit` was called.

    A :class:`ValueError` and an :class:`AttributeError`; with scikit-learn
    installed also a :class:`sklearn.exceptions.NotFittedError`, so
    scikit-learn's ``except NotFittedError`` catches it.

    Examples
    --------
    >>> import anyglm
    >>> try:
    ...     anyglm.SoftmaxRegression().predict([[1.0]])
    ... except anyglm.NotFittedError as err:
    ...     print(err)
    this SoftmaxRegression is not fitted yet; call fit(X, y) before using it
    """

_CONVERSION_DOC = """Input was converted to the form anyglm expects (a column vector ``y`` raveled).

    scikit-learn's :class:`~sklearn.exceptions.DataConversionWarning` when it
    is installed, a :class:`UserWarning` otherwise.

    Examples
    --------
    >>> import warnings, anyglm
    >>> from anyglm.errors import DataConversionWarning
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = anyglm.LogisticRegression(epochs=2).fit([[0.0], [1.0]], [[0], [1]])
    >>> caught[0].category is DataConversionWarning
    True
    """


def _make(name: str) -> type:
    from . import _sklearn

    if name == "NotFittedError":
        cls = type(name, _sklearn.NotFittedErrorBases, {"__doc__": _NOT_FITTED_DOC})
    else:
        cls = type(name, (_sklearn.DataConversionWarningBase,), {"__doc__": _CONVERSION_DOC})
    cls.__module__ = __name__
    return cls


if TYPE_CHECKING:

    class NotFittedError(ValueError, AttributeError):
        """An estimator was used before ``fit``."""

    class DataConversionWarning(UserWarning):
        """Input was converted to the form anyglm expects."""

else:

    def __getattr__(name: str) -> Any:
        if name in ("NotFittedError", "DataConversionWarning"):
            cls = globals()[name] = _make(name)
            return cls
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
