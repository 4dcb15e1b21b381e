"""Packaging: one import package ``anyglm``, nothing else importable, data shipped.

The wheel's file list is checked from the setuptools configuration in
``pyproject.toml``, and the licence, metadata and extras from a real sdist and
wheel, built offline from a copy of the sources (``build`` and setuptools >= 77
come with the test extra).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
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


# -- licence, metadata and extras --------------------------------------------------------------


def _pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def test_the_licence_file_is_bsd_3_clause_and_declared() -> None:
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Copyright (c) 2026, The anyglm developers" in text
    assert "Redistribution and use in source and binary forms" in text
    assert "Neither the name of the copyright holder" in text  # the third clause
    project = _pyproject()["project"]
    assert project["license"] == "BSD-3-Clause"
    assert project["license-files"] == ["LICENSE"]
    # setuptools refuses a License classifier next to an SPDX license expression
    assert not [c for c in project["classifiers"] if c.startswith("License ::")]


def test_installed_metadata_carries_the_licence_urls_and_pythons() -> None:
    meta = metadata.metadata("anyglm")
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL") or [])
    assert set(urls) == {"Homepage", "Documentation", "Source", "Issues", "Changelog"}
    assert all(u.startswith("https://github.com/anyglm/anyglm") for u in urls.values())
    pythons = sorted(
        c.rsplit(":: ", 1)[1]
        for c in meta.get_all("Classifier") or []
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    )
    assert pythons == ["3.10", "3.11", "3.12", "3.13"]
    assert meta["Requires-Python"] == ">=3.10"  # the oldest classifier is the floor


def test_gpu_extras_name_cupys_binary_wheels() -> None:
    extras = _pyproject()["project"]["optional-dependencies"]
    # cupy-cuda12x / cupy-cuda13x are CuPy's wheels; `cupy` on PyPI is its source package
    assert extras["cuda12"] == ["cupy-cuda12x>=13"]
    assert extras["cuda13"] == ["cupy-cuda13x>=13.6"]  # the first cupy-cuda13x release
    assert extras["cupy"] == ["cupy>=13"]  # for a CuPy the user builds or installs
    provided = metadata.metadata("anyglm").get_all("Provides-Extra") or []
    assert {"cuda12", "cuda13", "cupy"} <= set(provided)


def _copy_sources(dest: Path) -> Path:
    """What the build reads: pyproject, README, LICENSE and the mapped package folders."""
    src = dest / "anyglm-src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(REPO / name, src / name)
    for folder in _pyproject()["tool"]["setuptools"]["package-dir"].values():
        shutil.copytree(
            REPO / folder, src / folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    return src


def _can_build() -> str | None:
    if importlib.util.find_spec("build") is None:
        return "the 'build' package is missing: pip install -e '.[test]'"
    from importlib.metadata import version

    if int(version("setuptools").split(".")[0]) < 77:
        return "setuptools >= 77 is needed to build offline: pip install -e '.[test]'"
    return None


def test_the_sdist_and_the_wheel_ship_the_licence(tmp_path: Path) -> None:
    reason = _can_build()
    if reason:
        pytest.skip(reason)
    src, out = _copy_sources(tmp_path), tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(src)],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    version = anyglm.__version__
    (sdist,) = out.glob("*.tar.gz")
    (wheel,) = out.glob("*.whl")
    with tarfile.open(sdist) as tar:
        licence = tar.extractfile(f"anyglm-{version}/LICENSE")
        assert licence is not None
        assert licence.read() == (REPO / "LICENSE").read_bytes()
    with zipfile.ZipFile(wheel) as whl:
        names = whl.namelist()
        assert (
            whl.read(f"anyglm-{version}.dist-info/licenses/LICENSE")
            == (REPO / "LICENSE").read_bytes()
        )
        meta = Parser().parsestr(whl.read(f"anyglm-{version}.dist-info/METADATA").decode())
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert 'cupy-cuda12x>=13; extra == "cuda12"' in meta.get_all("Requires-Dist")
    assert 'cupy-cuda13x>=13.6; extra == "cuda13"' in meta.get_all("Requires-Dist")
    # everything in the wheel is the anyglm package or its metadata
    assert all(n.startswith(("anyglm/", f"anyglm-{version}.dist-info/")) for n in names)
