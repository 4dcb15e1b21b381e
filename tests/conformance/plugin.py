"""The pytest plugin of anyglm's conformance suite (entry point ``pytest11: anyglm``).

pytest loads this module in every project of an environment where anyglm is
installed, so it imports nothing but pytest and the standard library at import
time; anyglm itself (and with it every array library) is imported only when a
suite test asks for the suite's parameters.

What it does
------------
* Adds the options ``--anyglm-backend NAME`` and ``--anyglm-model NAME``
  (both repeatable) that restrict the suite to the named backends and models.
  An unknown name is a usage error whose message lists the known names.
* Parametrises the tests marked ``anyglm_conformance`` (every test of
  :mod:`anyglm.conformance` is) that request these arguments:

  ``backend_case``
      a :class:`BackendCase` for every registered backend x each of its
      devices x each float dtype that device supports, with ids like
      ``numpy-cpu-float64`` or ``array_api_strict-device1-float32``. A backend
      that is not available here gives one case, ``<name>-unavailable``, that
      is skipped with the backend's reason (a skip, never a pass). When such a
      backend was named with ``--anyglm-backend``, the run also ends with a
      failing exit status. A backend whose device listing raises gives one
      case, ``<name>-broken``, whose tests error with that exception.
  ``model_name``
      the name of every registered model (id: the name).
  ``accelerator_case``
      a ``(BackendCase, model_name, OptimizerSpec, n_configs, weighted)``
      tuple for every available backend case, model, optimiser spec of
      :data:`ACCELERATOR_SPECS`, one or two configurations and unweighted or
      weighted rows for which the backend offers an accelerator (the
      ``anyglm_accelerator`` hook), with ids like
      ``numpy-cpu-float32-softmax-sgd-k1-unweighted``. Combinations without
      an accelerator are not generated (the portable loop is what the other
      tests check); with none at all the test is deselected. A hook that
      raises gives a ``<case>-<model>-<spec>-broken`` case whose test errors
      with the exception.

  The markers ``anyglm_backends(*names)`` and ``anyglm_models(*names)`` limit
  one test to some backends or models (the convergence tests, for instance,
  know answers for the built-in models only), and ``anyglm_lazy`` to lazy
  backends; a test left with nothing to run after the options is deselected.
* Provides the session fixture ``anyglm_backend_sessions``: a backend that
  defines ``conformance_session()`` (a context manager; the Dask backend's
  starts a LocalCluster of two worker processes) has it entered once per
  session, before its first suite test, and closed at the end. Lazy backends
  (:mod:`anyglm.lazy`) get their data as lazy arrays (``BackendCase.data``),
  and their parameters are checked to be arrays of their chunks' library
  (``BackendCase.is_parameter_array``).
* Imports the suite's test modules as ``anyglm.conformance.<module>`` when
  pytest collects them from the package's folder, so a source checkout and an
  installed copy behave the same.

Third parties run the suite on their plugin with::

    pytest --pyargs anyglm.conformance --anyglm-backend mybackend
    pytest --pyargs anyglm.conformance --anyglm-model mymodel
"""

from __future__ import annotations

import fnmatch
import importlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:  # typing only: importing anyglm here would load every backend module
    import numpy as np
    from anyglm.backend import Backend

__all__ = ["BackendCase"]

#: The package the suite is installed as.
SUITE_PACKAGE = __name__.rpartition(".")[0] or "anyglm.conformance"
_SUITE_DIR = Path(__file__).resolve().parent

MARKER = "anyglm_conformance"
_DESELECT = "anyglm_deselected"
_BROKEN = "anyglm_broken_backend"

_BACKEND_CASES = pytest.StashKey[list[Any]]()
_MODEL_NAMES = pytest.StashKey[list[str]]()
_UNAVAILABLE_REQUESTED = pytest.StashKey[dict[str, str]]()


@dataclass(frozen=True)
class BackendCase:
    """One backend, one of its devices and one float dtype that the suite runs on.

    Attributes
    ----------
    backend_name : str
        Registered backend name.
    device : object
        A device object from ``Backend.devices()`` (``None`` for unavailable backends).
    dtype : str
        ``"float32"`` or ``"float64"`` (empty for unavailable backends).
    device_label : str
        The device as it appears in test ids.
    skip_reason : str or None
        Why the backend cannot run here.
    error : str or None
        Set when listing the backend's devices or dtypes failed; the case's
        tests then error at setup with this message instead of passing.
    """

    backend_name: str
    device: Any = None
    dtype: str = ""
    device_label: str = ""
    skip_reason: str | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        """Test id: ``backend-device-dtype``, or ``backend-unavailable``."""
        if self.skip_reason is not None:
            return f"{self.backend_name}-unavailable"
        if self.error is not None:
            return f"{self.backend_name}-broken"
        return f"{self.backend_name}-{self.device_label}-{self.dtype}"

    def describe(self) -> str:
        """``backend 'numpy', device cpu, float64`` (for assertion messages)."""
        return f"backend {self.backend_name!r}, device {self.device_label}, {self.dtype}"

    def _check(self) -> None:
        if self.error is not None:
            raise RuntimeError(self.error)
        if self.skip_reason is not None:
            pytest.skip(f"backend {self.backend_name!r} is not available: {self.skip_reason}")

    @property
    def backend(self) -> Backend:
        """The registered :class:`anyglm.Backend`."""
        self._check()
        import anyglm

        return anyglm.get_backend(self.backend_name)

    @property
    def xp(self) -> Any:
        """The backend's Array API namespace."""
        return self.backend.xp

    def supports(self, dtype: str) -> bool:
        """Whether this case's device supports ``dtype``."""
        return dtype in self.backend.float_dtypes(self.device)

    def asarray(self, a: Any, dtype: str | None = None) -> Any:
        """``a`` (host data) on this case's device, as ``dtype`` (default: the case's)."""
        import numpy

        return self.backend.from_numpy(
            numpy.asarray(a), dtype=dtype or self.dtype, device=self.device
        )

    def to_numpy(self, x: Any) -> np.ndarray:
        """A backend array back on the host."""
        return self.backend.to_numpy(x)

    @property
    def lazy(self) -> bool:
        """Whether the backend is lazy (``Backend.lazy``, :mod:`anyglm.lazy`): its data are
        chunked lazy arrays (Dask) and its parameters arrays of the chunks' library."""
        return bool(getattr(self.backend, "lazy", False))

    def data(self, a: Any, dtype: str | None = None, chunks: int = 1) -> Any:
        """``a`` (host data) as users pass it to ``fit`` on this backend: :meth:`asarray`'s
        array, or for a lazy backend a lazy array of ``chunks`` chunks of rows."""
        if not self.lazy:
            return self.asarray(a, dtype)
        import numpy

        return self.backend.lazy_array(
            numpy.asarray(a), dtype=dtype or self.dtype, device=self.device, chunks=chunks
        )

    def is_parameter_array(self, x: Any) -> bool:
        """Whether ``x`` is an array where this backend keeps parameters (``coef_``): one it
        owns, or for a lazy backend one of its chunks' library (what ``from_numpy`` makes)."""
        if not self.lazy:
            return self.backend.owns(x)
        import numpy

        made = self.backend.from_numpy(numpy.zeros(1), dtype=self.dtype, device=self.device)
        library = type(made).__module__.partition(".")[0]
        return type(x).__module__.partition(".")[0] == library and hasattr(x, "dtype")


# -- sessions of backends that need a running service ----------------------------------------


class _BackendSessions:
    """Context managers of backends entered once per test session (a Dask LocalCluster)."""

    def __init__(self) -> None:
        import contextlib

        self._stack = contextlib.ExitStack()
        self.entered: dict[str, Any] = {}

    def enter(self, backend_name: str) -> Any:
        """Enter ``conformance_session()`` of the backend once; what it yields, or None."""
        if backend_name not in self.entered:
            import anyglm

            start = getattr(anyglm.get_backend(backend_name), "conformance_session", None)
            self.entered[backend_name] = (
                None if start is None else self._stack.enter_context(start())
            )
        return self.entered[backend_name]

    def close(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def anyglm_backend_sessions() -> Any:
    """Backends' ``conformance_session()`` contexts, entered on first use, closed at the end.

    ``anyglm_backend_sessions.enter("dask")`` starts the Dask backend's LocalCluster
    (two worker processes) and returns its client; later calls return the same one.
    """
    sessions = _BackendSessions()
    yield sessions
    sessions.close()


@pytest.fixture(autouse=True)
def _anyglm_backend_session(request: pytest.FixtureRequest) -> None:
    # A suite test of a backend that defines conformance_session() (Dask: a LocalCluster)
    # runs inside it; nothing is imported or started for any other test.
    callspec = getattr(request.node, "callspec", None)
    if callspec is None or request.node.get_closest_marker(MARKER) is None:
        return
    case = callspec.params.get("backend_case")
    if case is None and isinstance(callspec.params.get("accelerator_case"), tuple):
        case = callspec.params["accelerator_case"][0]
    if not isinstance(case, BackendCase) or case.skip_reason or case.error:
        return
    request.getfixturevalue("anyglm_backend_sessions").enter(case.backend_name)


# -- options and markers -------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup(
        "anyglm", "anyglm conformance suite (pytest --pyargs anyglm.conformance)"
    )
    group.addoption(
        "--anyglm-backend",
        action="append",
        dest="anyglm_backends",
        default=None,
        metavar="NAME",
        help=(
            "run anyglm's conformance tests only on the registered backend NAME (repeatable; "
            "default: every registered backend, each device and float dtype; unavailable "
            "backends are skipped with their reason, and naming one here fails the run)"
        ),
    )
    group.addoption(
        "--anyglm-model",
        action="append",
        dest="anyglm_models",
        default=None,
        metavar="NAME",
        help=(
            "run anyglm's conformance tests only for the registered model NAME "
            "(repeatable; default: every registered model)"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{MARKER}: an anyglm conformance test; its backend_case and model_name "
        "arguments are parametrised by the anyglm plugin",
    )
    config.addinivalue_line(
        "markers", "anyglm_backends(*names): run this conformance test only on these backends"
    )
    config.addinivalue_line(
        "markers", "anyglm_models(*names): run this conformance test only for these models"
    )
    config.addinivalue_line(
        "markers", "anyglm_lazy: run this conformance test only on lazy backends (Dask)"
    )
    config.addinivalue_line(
        "markers", f"{_DESELECT}: internal; nothing left to run after --anyglm-* options"
    )
    config.addinivalue_line("markers", f"{_BROKEN}(error): internal; the backend case fails")
    backends = _option(config, "anyglm_backends")
    models = _option(config, "anyglm_models")
    if backends or models:
        _validate(backends, models)


def _option(config: pytest.Config, dest: str) -> list[str]:
    values = config.getoption(dest, default=None) or []
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _validate(backends: list[str], models: list[str]) -> None:
    import anyglm

    problems = []
    for flag, names, lookup, known in (
        ("--anyglm-backend", backends, anyglm.get_backend, anyglm.list_backends),
        ("--anyglm-model", models, anyglm.get_model, anyglm.list_models),
    ):
        for name in names:
            try:
                lookup(name)
            except Exception as exc:  # UnknownNameError, PluginLoadError
                message = f"{flag} {name}: {exc}"
                if exc.__cause__ is not None:
                    message += f" (caused by {exc.__cause__!r})"
                if "known" not in str(exc):
                    message += "; known: " + ", ".join(item["name"] for item in known())
                problems.append(message)
    if problems:
        raise pytest.UsageError("anyglm conformance suite:\n" + "\n".join(problems))


# -- parametrisation -------------------------------------------------------------------------


def _device_label(device: Any) -> str:
    text = str(device)
    quoted = re.search(r"""['"]([^'"]+)['"]""", text)
    if quoted:
        text = quoted.group(1)
    return re.sub(r"[^\w.:]+", "_", text).strip("_") or "default"


def _backend_cases(config: pytest.Config) -> list[Any]:
    cached = config.stash.get(_BACKEND_CASES, None)
    if cached is not None:
        return cached
    import anyglm

    requested = _option(config, "anyglm_backends")
    names = requested or [row["name"] for row in anyglm.list_backends()]
    unavailable: dict[str, str] = {}
    cases: list[Any] = []
    for name in names:
        be = anyglm.get_backend(name)
        if not be.is_available():
            reason = str(be.unavailable_reason)
            if requested:
                unavailable[name] = reason
            case = BackendCase(name, skip_reason=reason)
            skip = pytest.mark.skip(reason=f"backend {name!r} is not available: {reason}")
            cases.append(pytest.param(case, id=case.id, marks=skip))
            continue
        try:
            found = []
            for device in be.devices():
                label = _device_label(device)
                for dtype in be.float_dtypes(device):
                    found.append(BackendCase(name, device, dtype, label))
        except Exception as exc:  # a backend whose listing crashes fails its tests
            broken = BackendCase(
                name,
                error=f"backend {name!r}: listing devices and dtypes failed: "
                f"{type(exc).__name__}: {exc}",
            )
            found = [broken]
        for case in found:
            marks = () if case.error is None else (getattr(pytest.mark, _BROKEN)(case.error),)
            cases.append(pytest.param(case, id=case.id, marks=marks))
    config.stash[_BACKEND_CASES] = cases
    config.stash[_UNAVAILABLE_REQUESTED] = unavailable
    return cases


def _model_names(config: pytest.Config) -> list[str]:
    cached = config.stash.get(_MODEL_NAMES, None)
    if cached is not None:
        return cached
    import anyglm

    names = _option(config, "anyglm_models") or [row["name"] for row in anyglm.list_models()]
    config.stash[_MODEL_NAMES] = names
    return names


def _restrict(params: list[Any], marker: pytest.Mark | None, key: Any) -> list[Any]:
    if marker is None:
        return params
    allowed = set(marker.args)
    return [p for p in params if key(p) in allowed]


def _is_lazy(backend_name: str) -> bool:
    import anyglm

    return bool(getattr(anyglm.get_backend(backend_name), "lazy", False))


def _deselected(argname: str) -> Any:
    return pytest.param(None, id=f"no-{argname}", marks=getattr(pytest.mark, _DESELECT))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker(MARKER) is None:
        return  # not a conformance test: leave it alone
    config = metafunc.config
    if "backend_case" in metafunc.fixturenames:
        params = _restrict(
            _backend_cases(config),
            metafunc.definition.get_closest_marker("anyglm_backends"),
            lambda p: p.values[0].backend_name,
        )
        if metafunc.definition.get_closest_marker("anyglm_lazy") is not None:
            params = [p for p in params if _is_lazy(p.values[0].backend_name)]
        metafunc.parametrize("backend_case", params or [_deselected("backend")])
    if "model_name" in metafunc.fixturenames:
        names = _restrict(
            _model_names(config),
            metafunc.definition.get_closest_marker("anyglm_models"),
            lambda name: name,
        )
        params = [pytest.param(name, id=name) for name in names]
        metafunc.parametrize("model_name", params or [_deselected("model")])
    if "accelerator_case" in metafunc.fixturenames:
        triples = _accelerator_cases(_backend_cases(config), _model_names(config))
        metafunc.parametrize("accelerator_case", triples or [_deselected("accelerator")])


#: Optimiser settings each accelerator is asked about, by test id: an
#: accelerator must implement a spec exactly or decline it.
ACCELERATOR_SPECS: dict[str, dict[str, Any]] = {
    "sgd": {},
    "sgd-no-penalty": {"penalty": "none"},
    "adaptive": {"schedule": "adaptive"},
    "invscaling": {"schedule": "invscaling", "power_t": 0.4},
    "optimal": {"schedule": "optimal"},
    "momentum": {"momentum": 0.8},
    "nesterov": {"momentum": 0.8, "nesterov": True},
    "average": {"average": 2},
    "l1": {"penalty": "l1"},
    "elasticnet": {"penalty": "elasticnet", "l1_ratio": 0.4},
}


def _accelerator_cases(backend_cases: list[Any], models: list[str]) -> list[Any]:
    import anyglm
    from anyglm.accelerate import AcceleratorSpec
    from anyglm.optim import OptimizerSpec
    from anyglm.selection import find_accelerator

    params = []
    for param in backend_cases:
        case = param.values[0]
        if case is None or case.skip_reason is not None or case.error is not None:
            continue
        for name in models:
            for spec_id, settings in ACCELERATOR_SPECS.items():
                triple_id = f"{case.id}-{name}-{spec_id}"
                opt = OptimizerSpec(**settings)
                try:
                    backend = anyglm.get_backend(case.backend_name)
                    model = anyglm.get_model(name)
                    accepted = [
                        (k, weighted)
                        for k in (1, 2)
                        for weighted in (False, True)
                        if find_accelerator(
                            backend,
                            AcceleratorSpec(model, name, opt, case.dtype, k, weighted, False),
                            errors="raise",
                        )
                        is not None
                    ]
                except Exception as exc:  # a raising hook fails its triple's test
                    error = (
                        f"backend {case.backend_name!r}, model {name!r}, optimiser {spec_id}: "
                        f"the anyglm_accelerator hook raised {type(exc).__name__}: {exc}"
                    )
                    broken = getattr(pytest.mark, _BROKEN)(error)
                    params.append(
                        pytest.param(
                            (case, name, opt, 1, False), id=f"{triple_id}-broken", marks=broken
                        )
                    )
                    continue
                for k, weighted in accepted:
                    what = f"{triple_id}-k{k}-{'weighted' if weighted else 'unweighted'}"
                    params.append(pytest.param((case, name, opt, k, weighted), id=what))
    return params


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    dropped = [item for item in items if item.get_closest_marker(_DESELECT) is not None]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = [item for item in items if item.get_closest_marker(_DESELECT) is None]


def pytest_runtest_setup(item: pytest.Item) -> None:
    broken = item.get_closest_marker(_BROKEN)
    if broken is not None:
        pytest.fail(str(broken.args[0]), pytrace=False)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    unavailable = session.config.stash.get(_UNAVAILABLE_REQUESTED, {})
    if unavailable and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    unavailable = config.stash.get(_UNAVAILABLE_REQUESTED, {})
    for name, reason in unavailable.items():
        terminalreporter.write_line(
            f"anyglm: backend {name!r} was named with --anyglm-backend but is not available "
            f"here ({reason}); its conformance tests were skipped, so the run fails",
            red=True,
        )


# -- collection: import the suite as anyglm.conformance ----------------------------------------


def _in_suite(path: Path) -> bool:
    try:
        return path.resolve() == _SUITE_DIR
    except OSError:
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    # A plain directory collector: pytest's Package would import the folder's
    # __init__.py under a name derived from the checkout ("conformance").
    if _in_suite(path):
        return pytest.Dir.from_parent(parent, path=path)
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> Any:
    if _in_suite(module_path.parent):
        return _SuiteModule.from_parent(parent, path=module_path)
    return None


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> Any:
    # A project running the suite may set python_files to something else
    # ("*_test.py"); the suite's own test_*.py modules are collected regardless.
    # (Files the python_files patterns do match reach _SuiteModule through
    # pytest_pycollect_makemodule; returning them here too would collect them twice.)
    if not (file_path.suffix == ".py" and file_path.name.startswith("test_")):
        return None
    if not _in_suite(file_path.parent) or parent.session.isinitpath(file_path):
        return None
    patterns = parent.config.getini("python_files")
    if any(
        fnmatch.fnmatch(file_path.name, p) or fnmatch.fnmatch(str(file_path), p) for p in patterns
    ):
        return None
    return _SuiteModule.from_parent(parent, path=file_path)


class _SuiteModule(pytest.Module):
    """A suite module, imported by its package name rather than from its path.

    Test functions are found by the suite's own naming (``test_*``), whatever
    ``python_functions`` the project running the suite configures.
    """

    def _getobj(self) -> Any:
        module = importlib.import_module(f"{SUITE_PACKAGE}.{self.path.stem}")
        self.config.pluginmanager.consider_module(module)
        return module

    def funcnamefilter(self, name: str) -> bool:
        return name.startswith("test_")

    def classnamefilter(self, name: str) -> bool:
        return name.startswith("Test")
