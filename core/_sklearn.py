"""scikit-learn's base classes when scikit-learn (>= 1.6) is installed, stand-ins otherwise.

anyglm's estimators inherit :class:`sklearn.base.BaseEstimator` and the
classifier or regressor mixin when scikit-learn is there (as LightGBM and
XGBoost do), which brings the HTML repr, metadata routing
(``set_fit_request``), scikit-learn's tags and its ``NotFittedError``.
scikit-learn stays optional: without it (or with a version older than 1.6,
which lacks the tags API) the names below are small stand-ins, and anyglm
works the same apart from those extras.

Importing scikit-learn takes time (about 0.5-0.9 s: it imports SciPy and,
when installed, pandas), which ``import anyglm`` pays once when scikit-learn
is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper, wraps
from types import MethodType
from typing import Any


class _AvailableIf:
    """``available_if`` without scikit-learn: the attribute exists when ``check(obj)`` is true."""

    def __init__(self, fn: Callable[..., Any], check: Callable[[Any], Any]) -> None:
        self.fn, self.check = fn, check
        update_wrapper(self, fn)  # type: ignore[arg-type]

    def _require(self, obj: Any, owner: Any) -> None:
        try:
            ok = self.check(obj)
        except Exception as exc:
            raise AttributeError(
                f"This {owner.__name__!r} has no attribute {self.fn.__name__!r}"
            ) from exc
        if not ok:
            raise AttributeError(f"This {owner.__name__!r} has no attribute {self.fn.__name__!r}")

    def __get__(self, obj: Any, owner: Any = None) -> Any:
        if obj is None:

            @wraps(self.fn)
            def unbound(*args: Any, **kwargs: Any) -> Any:
                self._require(args[0], owner)
                return self.fn(*args, **kwargs)

            return unbound
        self._require(obj, owner if owner is not None else type(obj))
        return MethodType(self.fn, obj)


def _own_available_if(check: Callable[[Any], Any]) -> Callable[[Callable[..., Any]], Any]:
    return lambda fn: _AvailableIf(fn, check)


class _NoBase:
    """Stand-in for scikit-learn's ``BaseEstimator`` (anyglm.base supplies the methods)."""


class _NoMixin:
    """Stand-in for scikit-learn's classifier and regressor mixins."""


try:
    from sklearn.base import BaseEstimator as _SkBase
    from sklearn.base import ClassifierMixin as _SkClassifier
    from sklearn.base import RegressorMixin as _SkRegressor
    from sklearn.exceptions import DataConversionWarning as _SkConversion
    from sklearn.exceptions import NotFittedError as _SkNotFitted
    from sklearn.utils import Tags as _Tags  # noqa: F401 (scikit-learn >= 1.6)
    from sklearn.utils.metaestimators import available_if as _sk_available_if
except Exception as exc:  # not installed, too old (no tags API), or broken
    if not isinstance(exc, ImportError):
        import warnings

        warnings.warn(
            f"scikit-learn is installed but failed to import ({type(exc).__name__}: {exc}); "
            "anyglm's estimators work without its base classes",
            RuntimeWarning,
            stacklevel=2,
        )
    AVAILABLE = False
    BaseEstimator: type = _NoBase
    ClassifierMixin: type = _NoMixin
    RegressorMixin: type = _NoMixin
    NotFittedErrorBases: tuple[type, ...] = (ValueError, AttributeError)
    DataConversionWarningBase: type = UserWarning
    available_if: Callable[[Callable[[Any], Any]], Callable[[Callable[..., Any]], Any]] = (
        _own_available_if
    )
else:
    AVAILABLE = True
    BaseEstimator = _SkBase
    ClassifierMixin = _SkClassifier
    RegressorMixin = _SkRegressor
    NotFittedErrorBases = (_SkNotFitted,)
    DataConversionWarningBase = _SkConversion
    available_if = _sk_available_if
