"""The examples in anyglm's docstrings run, and every public class and function has one."""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import inspect
import pkgutil

import anyglm
import pytest

# Sub-packages the source tree maps under anyglm (their folders are not inside core/,
# so an editable install's anyglm.__path__ does not contain them).
SUBPACKAGES = ("anyglm.backends", "anyglm.plugins", "anyglm.conformance")
SKIPPED = {"anyglm.__main__"}  # runs the CLI on import
if importlib.util.find_spec("numba") is None:
    SKIPPED.add("anyglm.backends.numba_sgd")  # imports numba, an optional extra
# The compiled steps' examples compile: they need the optional library.
if importlib.util.find_spec("jax") is None:
    SKIPPED.add("anyglm.backends.jax_jit")
if importlib.util.find_spec("torch") is None:
    SKIPPED.add("anyglm.backends.torch_compile")


def _needs_pytest(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return False
    with open(spec.origin, encoding="utf-8") as f:
        source = f.read()
    return "import pytest" in source or "from pytest" in source


def _module_names() -> list[str]:
    names = {"anyglm"}
    packages = [anyglm.__path__]
    for sub in SUBPACKAGES:
        names.add(sub)
        packages.append(importlib.import_module(sub).__path__)
    prefixes = ["anyglm.", *(f"{s}." for s in SUBPACKAGES)]
    for path, prefix in zip(packages, prefixes, strict=True):
        for info in pkgutil.walk_packages(path, prefix):
            names.add(info.name)
    return sorted(
        n
        for n in names
        if n not in SKIPPED and not (n.startswith("anyglm.conformance") and _needs_pytest(n))
    )


MODULES = _module_names()


def test_every_part_of_the_package_is_collected() -> None:
    for name in (
        "anyglm",
        "anyglm.estimators",
        "anyglm.registry",
        "anyglm.glm",
        "anyglm.datasets",
        "anyglm.backends.numpy",
        "anyglm.backends.cupy",
        "anyglm.plugins.softmax",
    ):
        assert name in MODULES, name
    assert "anyglm.__main__" not in MODULES


@pytest.fixture
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("ANYGLM_BACKEND", "ANYGLM_STRICT_PLUGINS", "ANYGLM_DISABLE_PLUGINS"):
        monkeypatch.delenv(var, raising=False)
    anyglm.reload_plugins()


@pytest.mark.usefixtures("_clean_env")
@pytest.mark.parametrize("module_name", MODULES)
def test_doctests_pass(module_name: str) -> None:
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, report=True, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed"


def test_the_package_has_many_examples() -> None:
    finder = doctest.DocTestFinder()
    total = 0
    for name in MODULES:
        for test in finder.find(importlib.import_module(name)):
            total += len(test.examples)
    assert total >= 40


def _public_callables() -> list[str]:
    names = []
    for name in anyglm.__all__:
        obj = getattr(anyglm, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            names.append(name)
    return names


def test_public_callables_are_found() -> None:
    names = _public_callables()
    for name in ("Estimator", "SoftmaxRegression", "get_backend", "list_backends", "load"):
        assert name in names
    assert "datasets" not in names and "__version__" not in names


@pytest.mark.parametrize("name", _public_callables())
def test_public_object_has_an_example(name: str) -> None:
    obj = getattr(anyglm, name)
    doc = obj.__doc__ or ""  # its own docstring, not one inherited from a base class
    assert doc.strip(), f"anyglm.{name} has no docstring"
    assert "Examples" in doc, f"anyglm.{name}'s docstring has no Examples section"
    assert ">>>" in doc, f"anyglm.{name}'s Examples section has no example"


def _module_public_objects() -> list[str]:
    """Every class, function and public method a module lists in its ``__all__``."""
    names = []
    for module_name in MODULES:
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            if getattr(obj, "__module__", "") != module_name:
                continue  # re-exported; checked where it is defined
            names.append(f"{module_name}.{name}")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        names.append(f"{module_name}.{name}.{attr}")
    return names


def _resolve(path: str) -> object:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(path)


def test_module_public_objects_are_found() -> None:
    names = _module_public_objects()
    assert "anyglm.fitting.FitMixin.fit" in names
    assert "anyglm.prediction.PredictMixin.predict" in names
    assert "anyglm.tuning.tune" in names


@pytest.mark.parametrize("path", _module_public_objects())
def test_every_public_function_class_and_method_has_an_example(path: str) -> None:
    doc = inspect.getdoc(_resolve(path)) or ""
    assert ">>>" in doc, f"{path} has no example in its docstring"
