"""The project's own files: citation, contributing guide, one changelog, no dangling file names."""

from __future__ import annotations

import re
from pathlib import Path

import anyglm
import pytest
import tomllib

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def _cff() -> dict[str, str]:
    """The top-level ``key: value`` scalars of CITATION.cff (YAML, read without a YAML library)."""
    out = {}
    for line in (REPO / "CITATION.cff").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([a-z][a-z-]*):\s*(.*?)\s*$", line)
        if match:
            out[match.group(1)] = match.group(2).strip("\"'")
    return out


def test_citation_file_is_cff_1_2_and_matches_the_package() -> None:
    cff = _cff()
    # the keys CFF 1.2.0 requires, and the ones that make the citation useful
    for key in ("cff-version", "message", "title", "authors", "type", "version", "license"):
        assert key in cff, f"CITATION.cff has no {key!r}"
    assert cff["cff-version"] == "1.2.0"
    assert cff["type"] == "software"
    assert cff["version"] == anyglm.__version__
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert cff["license"] == project["license"]
    assert cff["repository-code"] == project["urls"]["Source"]
    text = (REPO / "CITATION.cff").read_text(encoding="utf-8")
    assert re.search(r"^authors:\n  - name: \S", text, flags=re.M), "authors must list someone"


@pytest.mark.parametrize(
    "needle",
    [
        'pip install -e ".[test]"',  # set up
        "pytest",  # run the tests
        "ruff check . && ruff format --check .",
        "mypy",
        "bash docs/build.sh",
        "pytest --pyargs anyglm.conformance",
        "docs/plugins.md",  # how to write a plugin
        "docs/examples/",
        "docs/check_figures.py",
        "CHANGELOG.md",
    ],
)
def test_contributing_guide_says_how(needle: str) -> None:
    assert needle in (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")


def test_contributing_guide_has_a_section_on_commits() -> None:
    text = (REPO / "CONTRIBUTING.md").read_text(encoding="utf-8")
    assert re.search(r"^## .*[Cc]ommit", text, flags=re.M)


def test_the_changelog_has_one_copy_that_the_docs_include() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert changelog.startswith("# Changelog\n")
    assert re.search(r"^## \d+\.\d+\.\d+", changelog, flags=re.M)
    page = (DOCS / "changelog.md").read_text(encoding="utf-8")
    assert "```{include} ../CHANGELOG.md" in page
    assert not re.search(r"^#", page, flags=re.M), "docs/changelog.md must not hold entries"


# -- text that names files -------------------------------------------------------------------

#: Files whose text is read by people looking for the files it names.
TEXTS = sorted(
    [
        REPO / "README.md",
        REPO / "CONTRIBUTING.md",
        REPO / "CHANGELOG.md",
        *DOCS.glob("*.md"),
        *(REPO / "benchmarks").glob("*.md"),
        *(DOCS / "examples").glob("*/README.md"),
    ]
)
# A path into the repository (core/data/README.md, docs/theory.md, benchmarks/epoch.py),
# or a capitalised project file at the top (SEED.md, LICENSE-like names).
REPO_PATH = re.compile(
    r"(?<![\w./-])((?:core|backends|plugins|tests|docs|benchmarks|\.ci)/[\w./-]*\w)"
)
TOP_FILE = re.compile(r"(?<![\w./-])([A-Z][A-Z_]+\.(?:md|cff|txt|rst))\b")


#: What a build or a run makes; a text may name these before they exist.
BUILD_OUTPUTS = ("docs/_build", "docs/generated", "benchmarks/results")


def _named_files(text: str) -> set[str]:
    return set(REPO_PATH.findall(text)) | set(TOP_FILE.findall(text))


def test_the_file_name_finder_finds_names() -> None:
    found = _named_files("see `core/data/README.md`, SEED.md and docs/theory.md; not a/b.py")
    assert found == {"core/data/README.md", "SEED.md", "docs/theory.md"}


@pytest.mark.parametrize("text", TEXTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_file_the_text_names_exists(text: Path) -> None:
    missing = []
    for name in sorted(_named_files(text.read_text(encoding="utf-8"))):
        if "*" in name or name.startswith(BUILD_OUTPUTS):
            continue
        here = [REPO / name, text.parent / name]
        if not any(p.exists() for p in here):
            missing.append(name)
    assert not missing, (
        f"{text.relative_to(REPO)} names files that are not in the repository: {missing}"
    )
