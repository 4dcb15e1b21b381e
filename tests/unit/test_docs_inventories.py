"""The intersphinx inventories kept in docs/_inventories: valid, local, in step with their sources.

The docs link into the Python, NumPy, scikit-learn and Array API standard
documentation without a network connection, because every inventory is a file
in the repository (docs/conf.py says where each comes from).
"""

from __future__ import annotations

import importlib.util
import re
import runpy
import zlib
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
INVENTORIES = DOCS / "_inventories"
EXPECTED = {
    "python": "https://docs.python.org/3/",
    "numpy": "https://numpy.org/doc/stable/",
    "sklearn": "https://scikit-learn.org/stable/",
    "array-api": "https://data-apis.org/array-api/latest/",
}


def _maker() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "anyglm_docs_make_inventories", INVENTORIES / "make_inventories.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Sphinx's own pattern for an object line: a name may contain spaces (glossary terms).
LINE = re.compile(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)")


def read_inventory(path: Path) -> tuple[list[str], list[str]]:
    """Header lines and object lines of an ``objects.inv`` (version 2)."""
    data = path.read_bytes()
    parts = data.split(b"\n", 4)
    header = [line.decode("utf-8") for line in parts[:4]]
    body = zlib.decompress(parts[4]).decode("utf-8").splitlines()
    return header, body


def _objects(path: Path) -> dict[str, str]:
    """``{"name domain:role": uri}`` of an inventory, ``$`` expanded."""
    out = {}
    for line in read_inventory(path)[1]:
        match = LINE.fullmatch(line)
        assert match, line
        name, kind, _priority, uri, _display = match.groups()
        out[f"{name} {kind}"] = uri[:-1] + name if uri.endswith("$") else uri
    return out


def _mapping() -> dict[str, Any]:
    return runpy.run_path(str(DOCS / "conf.py"))["intersphinx_mapping"]


def test_conf_reads_every_inventory_from_a_file_in_the_repository() -> None:
    mapping = _mapping()
    assert set(mapping) == set(EXPECTED)
    for name, (base, location) in mapping.items():
        assert base == EXPECTED[name]
        path = Path(location)
        assert not str(location).startswith(("http:", "https:")), f"{name} is fetched"
        assert path.is_file() and path.parent == INVENTORIES, location


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_inventory_is_a_valid_objects_inv(name: str) -> None:
    location = _mapping()[name][1]
    header, body = read_inventory(Path(location))
    assert header[0] == "# Sphinx inventory version 2"
    assert header[1].startswith("# Project: ") and header[2].startswith("# Version: ")
    assert body
    for line in body:
        assert LINE.fullmatch(line), f"{name}.inv: {line!r} is not an object line"


@pytest.mark.parametrize(
    ("name", "key", "uri"),
    [
        ("python", "pathlib.Path py:class", "library/pathlib.html#pathlib.Path"),
        ("sklearn", "sklearn.pipeline.Pipeline py:class", "modules/generated/"),
        ("sklearn", "sklearn.model_selection.GridSearchCV py:class", "modules/generated/"),
        ("sklearn", "sklearn.base.clone py:function", "modules/generated/"),
        ("numpy", "numpy.ndarray py:class", "reference/generated/numpy.ndarray.html"),
        ("numpy", "numpy.random.Generator py:class", "reference/random/generator.html"),
        ("array-api", "array_api.logaddexp py:function", "API_specification/generated/"),
    ],
)
def test_the_objects_the_docs_link_to_are_in_the_inventories(name: str, key: str, uri: str) -> None:
    objects = _objects(INVENTORIES / f"{name}.inv")
    assert key in objects, f"{key} missing from {name}.inv"
    assert objects[key].startswith(uri)


@pytest.mark.parametrize("source", sorted(INVENTORIES.glob("*.txt")), ids=lambda p: p.name)
def test_hand_made_inventories_match_their_sources(source: Path) -> None:
    # Regenerate with: python docs/_inventories/make_inventories.py
    compiled = _maker().compile_inventory(source.read_text(encoding="utf-8"))
    target = source.with_suffix(".inv")
    assert target.is_file(), f"{target.name} was never written"
    header, body = read_inventory(target)
    expected = compiled.split(b"\n", 4)
    assert header == [line.decode() for line in expected[:4]]
    assert body == zlib.decompress(expected[4]).decode().splitlines()


def test_the_maker_refuses_a_malformed_line() -> None:
    text = (INVENTORIES / "numpy.txt").read_text(encoding="utf-8") + "numpy.zeros py:function\n"
    with pytest.raises(ValueError, match="is not 'name domain:role priority uri dispname'"):
        _maker().compile_inventory(text)
