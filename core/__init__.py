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

from . import datasets
from ._version import __version__
from .backend import Backend
from .doctor import compare_backends, doctor
from .errors import (
    BackendUnavailableError,
    DivergenceError,
    ModelFileError,
    NotFittedError,
    PluginLoadError,
    UnknownNameError,
)
from .estimators import Estimator, LinearRegression, LogisticRegression, SoftmaxRegression
from .hookspecs import hookimpl
from .model import Model
from .modelfile import load
from .registry import (
    PluginWarning,
    get_backend,
    get_model,
    list_backends,
    list_models,
    plugin_failures,
    reload_plugins,
)
from .tuning import LogUniform, TuneResult, tune

__all__ = [
    "Backend",
    "BackendUnavailableError",
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
    "tune",
]
