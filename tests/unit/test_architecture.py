"""The shape of the code: dependencies point one way, modules and classes stay small.

Parsed from the source files, not imported: an import inside a function or
under ``if TYPE_CHECKING:`` counts like any other, so a cycle cannot hide
behind a lazy import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Source folder -> the package it installs as (pyproject's package-dir).
PACKAGES = {"core": "anyglm", "backends": "anyglm.backends", "plugins": "anyglm.plugins"}
MAX_MODULE_LINES = 600
MAX_CLASS_LINES = 400
#: Modules allowed over the limits, with the reason (none today).
EXCEPTIONS: dict[str, str] = {}


def _modules(folder: str) -> dict[str, Path]:
    package = PACKAGES[folder]
    out = {}
    for path in sorted((ROOT / folder).glob("*.py")):
        name = package if path.stem == "__init__" else f"{package}.{path.stem}"
        out[name] = path
    return out


def _imports(module: str, path: Path) -> set[str]:
    """Every anyglm module ``module`` imports, resolved to module names."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.stem == "__init__" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("anyglm"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("anyglm"):
                continue
            found.add(target)
            for alias in node.names:  # "from . import registry" names a module
                found.add(f"{target}.{alias.name}")
    return found


def _graph() -> dict[str, set[str]]:
    mods = {**_modules("core"), **_modules("backends"), **_modules("plugins")}
    return {m: {t for t in _imports(m, p) if t in mods and t != m} for m, p in mods.items()}


def test_the_import_parser_sees_imports() -> None:
    graph = _graph()
    assert "anyglm.registry" in graph["anyglm.selection"]
    assert "anyglm.trainer" in graph["anyglm.fitting"]
    assert "anyglm.model" in graph["anyglm.hookspecs"]  # under TYPE_CHECKING


def test_no_import_cycle_in_the_package() -> None:
    graph = _graph()
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    # The package's __init__ re-exports everything; it is the one allowed hub.
    cycles = [c for c in cycles if not c.startswith("anyglm ->") and " anyglm ->" not in c]
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_core_never_imports_a_particular_backend_or_model() -> None:
    for module, path in _modules("core").items():
        bad = {
            t for t in _imports(module, path) if t.startswith(("anyglm.backends", "anyglm.plugins"))
        }
        assert not bad, f"{module} imports {sorted(bad)}; reach plugins through the registry"


def test_backends_never_import_models() -> None:
    for module, path in _modules("backends").items():
        bad = {t for t in _imports(module, path) if t.startswith("anyglm.plugins")}
        assert not bad, f"{module} imports {sorted(bad)}; accelerators see the model in the spec"


@pytest.mark.parametrize("path", sorted((ROOT / "core").glob("*.py")), ids=lambda p: p.name)
def test_core_modules_and_classes_stay_small(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    lines = text.count("\n") + 1
    key = f"core/{path.name}"
    if key in EXCEPTIONS:
        return
    assert lines <= MAX_MODULE_LINES, f"{key} has {lines} lines (limit {MAX_MODULE_LINES})"
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.ClassDef):
            size = (node.end_lineno or node.lineno) - node.lineno + 1
            assert size <= MAX_CLASS_LINES, (
                f"{key}: class {node.name} has {size} lines (limit {MAX_CLASS_LINES})"
            )


def test_no_file_cites_a_document_the_repository_does_not_have() -> None:
    for folder in ("core", "backends", "plugins", "tests/conformance", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path == Path(__file__).resolve():
                continue
            assert "SEED.md" not in path.read_text(encoding="utf-8"), (
                f"{path.relative_to(ROOT)} cites SEED.md, which is not in the repository; "
                "link the theory page (docs/theory.md) instead"
            )
