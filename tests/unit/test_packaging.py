"""Packaging: one import package ``anyglm``, nothing else importable, data shipped.

Building a wheel needs setuptools >= 77 (``license`` is an SPDX string), which the
test venv does not have offline, so the wheel's file list is checked from the
setuptools configuration in ``pyproject.toml`` instead of from a built wheel.
"""

from __future__ import annotations

import fnmatch
import json
import os
import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import anyglm
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANYGLM_")}
    env.pop("PYTHONPATH", None)
    return env


def run_python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, env=_env()
    )


def test_source_folders_are_not_importable_packages(tmp_path: Path) -> None:
    out = run_python(
        "import importlib.util, json, sys\n"
        "print(json.dumps({n: importlib.util.find_spec(n) is None "
        "for n in ('core', 'backends', 'plugins', 'anyglm')}))\n",
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {
        "core": True,
        "backends": True,
        "plugins": True,
        "anyglm": False,
    }


@pytest.mark.parametrize("name", ["core", "backends", "plugins"])
def test_importing_a_source_folder_from_the_repo_root_fails(name: str) -> None:
    # with the repo root on sys.path the folders are found, but refuse to import
    out = run_python(f"import {name}", REPO)
    assert out.returncode != 0
    assert "ImportError" in out.stderr
    assert "anyglm" in out.stderr


def test_import_is_light(tmp_path: Path) -> None:
    heavy = ["array_api_strict", "cupy", "sklearn", "pytest", "matplotlib"]
    out = run_python(
        "import json, sys\nimport anyglm\n"
        f"print(json.dumps([m for m in {heavy!r} if m in sys.modules]))\n",
        tmp_path,
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == []


def test_version_and_public_names() -> None:
    assert isinstance(anyglm.__version__, str)
    assert anyglm.__version__[0].isdigit()
    assert metadata.version("anyglm") == anyglm.__version__
    names = anyglm.__all__
    assert len(names) == len(set(names))
    assert len(names) <= 30
    assert "__version__" in names
    for name in names:
        assert hasattr(anyglm, name), name
        assert not name.startswith("_") or name == "__version__"


def test_dependencies_are_the_three_runtime_ones() -> None:
    requires = metadata.requires("anyglm") or []
    runtime = sorted(
        r.split(">")[0].split("=")[0].split("<")[0].strip() for r in requires if "extra ==" not in r
    )
    # tqdm: the progress bar issue 4 asks for (small, pure Python, no dependencies).
    assert runtime == ["array-api-compat", "numpy", "pluggy", "tqdm"]


def test_entry_points_are_declared() -> None:
    eps = metadata.distribution("anyglm").entry_points
    scripts = {ep.name: ep.value for ep in eps if ep.group == "console_scripts"}
    assert scripts == {"anyglm": "anyglm.cli:main"}
    pytest11 = {ep.name: ep.value for ep in eps if ep.group == "pytest11"}
    assert pytest11 == {"anyglm": "anyglm.conformance.plugin"}


def test_py_typed_and_data_files_are_resources() -> None:
    root = resources.files("anyglm")
    assert root.joinpath("py.typed").is_file()
    data = root.joinpath("data")
    for name in (
        "README.md",
        "digits.csv.gz",
        "breast_cancer.csv.gz",
        "diabetes_data_raw.csv.gz",
        "diabetes_target.csv.gz",
    ):
        assert data.joinpath(name).is_file(), name
        assert len(data.joinpath(name).read_bytes()) > 0


def test_subpackages_import_under_anyglm() -> None:
    import anyglm.backends.numpy
    import anyglm.conformance
    import anyglm.plugins.softmax

    assert anyglm.backends.numpy.__name__ == "anyglm.backends.numpy"
    assert anyglm.plugins.softmax.__name__ == "anyglm.plugins.softmax"
    assert anyglm.conformance.__name__ == "anyglm.conformance"


def test_setuptools_configuration_ships_only_anyglm() -> None:
    # What the wheel holds is decided by these tables; every path must land under anyglm/.
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    st = config["tool"]["setuptools"]
    packages = st["packages"]
    assert packages and all(p == "anyglm" or p.startswith("anyglm.") for p in packages)
    assert set(st["package-dir"]) <= set(packages)
    assert st["package-dir"]["anyglm"] == "core"
    for folder in st["package-dir"].values():
        assert (REPO / folder / "__init__.py").is_file(), folder
    # every shipped data file is matched by the package-data globs
    globs = st["package-data"]["anyglm"]
    assert set(st["package-data"]) == {"anyglm"}
    shipped = ["py.typed", *(f"data/{p.name}" for p in (REPO / "core" / "data").iterdir())]
    for rel in shipped:
        assert any(fnmatch.fnmatch(rel, g) for g in globs), rel
