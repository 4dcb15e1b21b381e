"""The built docs show rendered math, not raw LaTeX, in headless Chromium (docs/check_math.py).

The checker's DOM inspection is tested on small pages everywhere. The real
check, the theory page of the built site opened in Chromium, needs a built site
(``bash docs/build.sh``) and Chromium (``apt-get install -y chromium``); without
them those tests are skipped with the reason, or fail when
``ANYGLM_DOCS_RENDER_REQUIRED=1`` (CI sets it after building the docs).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
HTML = Path(os.environ.get("ANYGLM_DOCS_HTML") or DOCS / "_build" / "html")
REQUIRED = os.environ.get("ANYGLM_DOCS_RENDER_REQUIRED", "").lower() not in ("", "0", "false", "no")


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("anyglm_docs_check_math", DOCS / "check_math.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_math = _load_checker()

RENDERED = """<html><body><p>Notation: <span class="math notranslate nohighlight"><mjx-container
class="MathJax" jax="SVG"><svg width="1.2ex"><g><use data-c="1D45B" href="#g"></use></g></svg>
</mjx-container></span> examples.</p><div class="math notranslate nohighlight"><mjx-container
class="MathJax" jax="SVG" display="true"><svg><g><path d="M0 0"></path></g></svg></mjx-container>
</div><pre>&gt;&gt;&gt; print("\\\\frac")  # code may hold backslashes</pre><br><img src="x.png">
</body></html>"""

RAW = """<html><body><p>Notation: <span class="math notranslate nohighlight">\\(n\\)</span>
examples.</p><div class="math notranslate nohighlight">\\[\\frac{1}{n} \\sum_i x_i\\]</div>
</body></html>"""


def _require(condition: bool, reason: str) -> None:
    if condition:
        return
    if REQUIRED:
        pytest.fail(f"{reason} (ANYGLM_DOCS_RENDER_REQUIRED is set)")
    pytest.skip(reason)


def _site_and_browser() -> str:
    _require(
        (HTML / "theory.html").is_file(),
        f"no built site at {HTML}: run 'bash docs/build.sh' first",
    )
    chromium = check_math.find_chromium()
    _require(chromium is not None, "Chromium is not installed: apt-get install -y chromium")
    assert chromium is not None
    return str(chromium)


# -- the site serves MathJax itself --------------------------------------------------------------


def test_mathjax_is_shipped_with_the_docs_not_loaded_from_a_cdn() -> None:
    conf = (DOCS / "conf.py").read_text(encoding="utf-8")
    match = re.search(r"^mathjax_path\s*=\s*[\"']([^\"']+)[\"']", conf, flags=re.M)
    assert match, "conf.py must set mathjax_path to the local copy"
    path = match.group(1)
    assert not re.match(r"^(?:[a-z]+:)?//", path), f"mathjax_path {path!r} is a network URL"
    local = DOCS / "_static" / path
    assert local.is_file(), f"{local} is missing"
    assert local.stat().st_size > 1_000_000  # the whole of MathJax, with every TeX extension
    assert (local.parent / "LICENSE").is_file()
    assert re.search(r"^html_static_path\s*=\s*\[\s*[\"']_static[\"']", conf, flags=re.M)


# -- the DOM inspection ------------------------------------------------------------------------


def test_rendered_math_passes_the_inspection() -> None:
    report = check_math.inspect_dom(RENDERED)
    assert (report.math_elements, report.rendered_math_elements, report.containers) == (2, 2, 2)
    assert report.problems(expected_math=2) == []


def test_raw_latex_fails_the_inspection() -> None:
    report = check_math.inspect_dom(RAW)
    assert report.containers == 0 and report.math_elements == 2
    problems = "\n".join(report.problems(expected_math=2))
    assert "typeset nothing" in problems
    assert "2 of 2 math elements" in problems
    assert "raw LaTeX" in problems and "\\frac" in problems


def test_half_rendered_pages_and_tex_errors_fail() -> None:
    half = RENDERED.replace(
        '<div class="math notranslate nohighlight"><mjx-container',
        '<div class="math notranslate nohighlight">\\[x\\]</div><div><mjx-container',
    )
    problems = check_math.inspect_dom(half).problems(expected_math=2)
    assert any("1 of 2 math elements" in p for p in problems), problems
    assert any("raw LaTeX" in p for p in problems), problems
    broken = RENDERED.replace(
        '<path d="M0 0"></path>', '<g data-mml-node="merror" data-mjx-error="Undefined \\foo"></g>'
    )
    report = check_math.inspect_dom(broken)
    assert report.errors == ["Undefined \\foo"]
    assert report.glyphless_containers == 1
    assert len(report.problems(expected_math=2)) == 2


def test_fewer_formulas_than_the_page_has_fail() -> None:
    report = check_math.inspect_dom(RENDERED)
    assert any("2 <mjx-container> elements for 3" in p for p in report.problems(expected_math=3))


def test_page_math_counts_elements_and_finds_the_script() -> None:
    html = (
        '<script defer="defer" src="_static/mathjax/tex-svg-full.js?v=1"></script>'
        '<span class="math notranslate nohighlight">\\(a\\)</span><div class="math">\\[b\\]</div>'
        '<span class="mathematics">no</span>'
    )
    assert check_math.page_math(html) == (2, ["_static/mathjax/tex-svg-full.js?v=1"])


# -- the built site in headless Chromium ---------------------------------------------------------


def _run_checker(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DOCS / "check_math.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_theory_page_shows_rendered_math_in_chromium(tmp_path: Path) -> None:
    chromium = _site_and_browser()
    shot = tmp_path / "theory.png"
    done = _run_checker(HTML, "--chromium", chromium, "--screenshot", shot)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"(\d+) formulas typeset by MathJax, (\d+)/(\d+) math elements", done.stdout)
    assert found, done.stdout
    typeset, rendered, total = map(int, found.groups())
    assert total >= 100 and rendered == total and typeset >= total  # the theory page is math
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert check_math.png_problems(shot) == []


def test_the_check_fails_when_mathjax_does_not_run(tmp_path: Path) -> None:
    chromium = _site_and_browser()
    site = tmp_path / "html"
    site.mkdir()
    for folder in ("_static", "_images"):
        if (HTML / folder).is_dir():
            (site / folder).symlink_to((HTML / folder).resolve(), target_is_directory=True)
    page = (HTML / "theory.html").read_text(encoding="utf-8")
    without, removed = re.subn(r"<script[^>]*mathjax/[^>]*></script>", "", page, flags=re.I)
    assert removed == 1
    (site / "theory.html").write_text(without, encoding="utf-8")
    done = _run_checker(site, "--chromium", chromium)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "loads no MathJax script" in done.stderr
    assert "typeset nothing" in done.stderr and "raw LaTeX" in done.stderr


def test_the_checker_says_why_it_cannot_run(tmp_path: Path) -> None:
    done = _run_checker(tmp_path)
    assert done.returncode == 2
    assert "build the docs first" in done.stderr
    (tmp_path / "theory.html").write_text("<html></html>", encoding="utf-8")
    done = _run_checker(tmp_path, "--chromium", tmp_path / "no-such-browser")
    assert done.returncode == 2 and "no Chromium" in done.stderr
