"""Every hook, every conformance-suite option and marker, and every CLI command is documented."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import pytest
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
