"""Every hook, suite option and marker, CLI command, public object and extra is documented."""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import re
import types
from pathlib import Path
from typing import Any

import anyglm
import pytest
import tomllib
from anyglm import hookspecs

DOCS = Path(__file__).resolve().parents[2] / "docs"


class _RecordingGroup:
    def __init__(self) -> None:
        self.options: list[str] = []

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.options.extend(n for n in names if n.startswith("--"))


class _RecordingParser:
    def __init__(self) -> None:
        self.group = _RecordingGroup()

    def getgroup(self, *args: Any, **kwargs: Any) -> _RecordingGroup:
        return self.group

    def addoption(self, *names: str, **kwargs: Any) -> None:
        self.group.addoption(*names, **kwargs)


class _RecordingConfig:
    def __init__(self) -> None:
        self.markers: list[str] = []

    def getoption(self, name: str, default: Any = None) -> Any:
        return default

    def addinivalue_line(self, name: str, line: str) -> None:
        if name == "markers" and ": internal" not in line:  # internal ones are not user API
            self.markers.append(line.split(":")[0].split("(")[0].strip())


def _hooks() -> list[str]:
    return [
        name
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("anyglm_")
    ]


def _plugin_page() -> str:
    return (DOCS / "plugins.md").read_text(encoding="utf-8")


def test_there_are_hooks_to_document() -> None:
    assert set(_hooks()) >= {"anyglm_register_backends", "anyglm_register_models"}


@pytest.mark.parametrize("hook", _hooks())
def test_every_hook_is_in_the_hook_reference(hook: str) -> None:
    page = _plugin_page()
    assert f"autofunction:: anyglm.hookspecs.{hook}" in page, f"{hook} missing from plugins.md"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring"


def _suite_options_and_markers() -> tuple[list[str], list[str]]:
    from anyglm.conformance import plugin

    parser = _RecordingParser()
    plugin.pytest_addoption(parser)  # type: ignore[arg-type]
    config = _RecordingConfig()
    plugin.pytest_configure(config)  # type: ignore[arg-type]
    return parser.group.options, config.markers


def test_the_suite_has_options_and_markers() -> None:
    options, markers = _suite_options_and_markers()
    assert {"--anyglm-backend", "--anyglm-model"} <= set(options)
    assert markers


@pytest.mark.parametrize("option", _suite_options_and_markers()[0])
def test_every_suite_option_is_documented(option: str) -> None:
    assert f"`{option}" in _plugin_page(), f"suite option {option} missing from plugins.md"


@pytest.mark.parametrize("marker", _suite_options_and_markers()[1])
def test_every_suite_marker_is_documented(marker: str) -> None:
    assert marker in _plugin_page(), f"suite marker {marker} missing from plugins.md"


def _cli_commands() -> list[str]:
    from anyglm.cli import _parser

    sub = next(a for a in _parser()._actions if a.dest == "command")
    return sorted(sub.choices)  # type: ignore[arg-type]


@pytest.mark.parametrize("command", _cli_commands())
def test_every_cli_command_is_in_the_user_guide(command: str) -> None:
    guide = (DOCS / "user_guide.md").read_text(encoding="utf-8")
    assert f"anyglm {command}" in guide, f"'anyglm {command}' missing from user_guide.md"


# -- the API reference --------------------------------------------------------------------------


def _api_entries() -> set[str]:
    """The names listed in api.md's autosummary tables."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    entries = set()
    for block in re.findall(r"\.\. autosummary::\n((?:   .*\n|\n)+)", text):
        for line in block.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.add(line)
    return entries


def test_api_tables_generate_one_page_per_object() -> None:
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    tables = text.count(".. autosummary::")
    assert tables >= 5
    assert text.count(":toctree: generated") == tables
    assert re.search(r"^autosummary_generate = True$", (DOCS / "conf.py").read_text(), re.M)


@pytest.mark.parametrize("name", sorted(set(anyglm.__all__) - {"__version__", "hookimpl"}))
def test_every_public_name_is_in_the_api_reference(name: str) -> None:
    assert name in _api_entries(), f"anyglm.{name} has no line in docs/api.md"


def test_hookimpl_is_described_in_the_hook_reference() -> None:
    assert ".. py:data:: anyglm.hookimpl" in _plugin_page()


def _api_modules() -> list[str]:
    """The api.md entries that are modules of anyglm (listed whole)."""
    modules = []
    for entry in _api_entries():
        obj = getattr(anyglm, entry, None) if "." not in entry else None
        if "." in entry or not (obj is None or isinstance(obj, types.ModuleType)):
            continue
        if importlib.util.find_spec(f"anyglm.{entry}") is not None:
            modules.append(entry)
    return sorted(modules)


def test_the_api_reference_lists_modules() -> None:
    assert {"datasets", "plotting"} <= set(_api_modules())


@pytest.mark.parametrize("module", _api_modules())
def test_a_module_of_the_api_reference_declares_its_public_names(module: str) -> None:
    # its page lists exactly __all__ (autosummary_ignore_module_all = False)
    mod = importlib.import_module(f"anyglm.{module}")
    assert getattr(mod, "__all__", None), f"anyglm.{module} has no __all__ for its API page"


# -- installation and quickstart ------------------------------------------------------------------


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((DOCS.parent / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "extra",
    sorted(set(_pyproject()["project"]["optional-dependencies"]) - {"test", "docs"}),
)
def test_every_user_extra_is_on_the_installation_page(extra: str) -> None:
    page = (DOCS / "installation.md").read_text(encoding="utf-8")
    assert f'pip install "anyglm[{extra}]"' in page, f"anyglm[{extra}] missing from installation.md"


def test_installation_page_says_how_to_pick_a_cuda_extra() -> None:
    page = (DOCS / "installation.md").read_text(encoding="utf-8")
    assert "nvidia-smi" in page and "CUDA Version" in page
    for extra, wheel in (("cuda12", "cupy-cuda12x"), ("cuda13", "cupy-cuda13x")):
        assert f"`anyglm[{extra}]` | `{wheel}" in page


def test_quickstart_names_every_runtime_dependency() -> None:
    first = (DOCS / "quickstart.md").read_text(encoding="utf-8").split("\n\n")[1]
    spelled = {"numpy": "NumPy"}
    for requirement in _pyproject()["project"]["dependencies"]:
        name = re.split(r"[<>=!~ ]", requirement, maxsplit=1)[0]
        assert spelled.get(name, name) in first, f"quickstart's dependency list lacks {name}"
