"""anyglm: linear, logistic and softmax regression written once against the Array API.

Losses and their analytic gradients are written against the Python Array API
standard and trained by minibatch SGD with L2 regularisation, on any array
library a backend plugin brings (NumPy, array-api-strict and CuPy built in).

Examples
--------
>>> import anyglm
>>> X, y = anyglm.datasets.load_dataset("digits")
>>> X_tr, X_te, y_tr, y_te = anyglm.datasets.train_test_split(X, y, random_state=0)
>>> X_tr, X_te = anyglm.datasets.standardize(X_tr, X_te)
>>> clf = anyglm.SoftmaxRegression(random_state=0).fit(X_tr, y_tr)
>>> clf.score(X_te, y_te) > 0.95
True
"""

if __name__ != "anyglm":  # the source folder core/ must not be importable as "core"
    raise ImportError("core/ is anyglm's source folder; install the package and import anyglm")

from typing import TYPE_CHECKING, Any

from . import datasets, special
from ._version import __version__
from .backend import Backend
from .doctor import compare_backends, doctor
from .errors import (
    BackendUnavailableError,
    ConvergenceWarning,
    DivergenceError,
    ModelFileError,
    PluginLoadError,
    UnknownNameError,
)
from .hookspecs import hookimpl
from .model import Model
from .registry import (
    PluginWarning,
    get_backend,
    get_model,
    list_backends,
    list_models,
    plugin_failures,
    reload_plugins,
)

# The estimators (and what needs them) derive from scikit-learn's base classes
# when scikit-learn is installed, and importing scikit-learn takes most of a
# second: they are imported on first use (PEP 562), so that `import anyglm`,
# the registry and the conformance plugin stay light.
_LAZY = {
    "Estimator": "estimators",
    "LinearRegression": "estimators",
    "LogisticRegression": "estimators",
    "SoftmaxRegression": "estimators",
    "NotFittedError": "errors",
    "load": "loading",
    "tune": "tuning",
    "LogUniform": "tuning",
    "TuneResult": "tuning",
}

if TYPE_CHECKING:
    from .errors import NotFittedError
    from .estimators import Estimator, LinearRegression, LogisticRegression, SoftmaxRegression
    from .loading import load
    from .tuning import LogUniform, TuneResult, tune


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'anyglm' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "Backend",
    "BackendUnavailableError",
    "ConvergenceWarning",
    "DivergenceError",
    "Estimator",
    "LinearRegression",
    "LogUniform",
    "LogisticRegression",
    "Model",
    "ModelFileError",
    "NotFittedError",
    "PluginLoadError",
    "PluginWarning",
    "SoftmaxRegression",
    "TuneResult",
    "UnknownNameError",
    "__version__",
    "compare_backends",
    "datasets",
    "doctor",
    "get_backend",
    "get_model",
    "hookimpl",
    "list_backends",
    "list_models",
    "load",
    "plugin_failures",
    "reload_plugins",
    "special",
    "tune",
]
