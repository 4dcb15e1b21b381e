"""The built docs as a reader sees them: rendered math, readable figures, working links.

docs/check_math.py checks the math (rendered, not raw LaTeX) and
docs/check_figures.py the figures (shown at >= 90 % of their natural width in a
1280 px window), both in headless Chromium; the built HTML is also checked for
the API reference in the top bar, one page per public object, and links into
the NumPy, scikit-learn, Python and Array API docs.

The checkers' logic is tested on small pages everywhere. The real checks need a
built site (``bash docs/build.sh``) and, for the rendering, Chromium
(``apt-get install -y chromium``); without them those tests are skipped with
the reason, or fail when ``ANYGLM_DOCS_RENDER_REQUIRED=1`` (CI sets it after
building the docs).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from types import ModuleType

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
HTML = Path(os.environ.get("ANYGLM_DOCS_HTML") or DOCS / "_build" / "html")
REQUIRED = os.environ.get("ANYGLM_DOCS_RENDER_REQUIRED", "").lower() not in ("", "0", "false", "no")


def _load_checker(name: str = "check_math") -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"anyglm_docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_math = _load_checker()
check_figures = _load_checker("check_figures")

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


# -- the built HTML: navigation, API pages, links into other projects' docs ---------------------


def _site() -> Path:
    _require(
        (HTML / "index.html").is_file(),
        f"no built site at {HTML}: run 'bash docs/build.sh' first",
    )
    return HTML


def _page(name: str) -> str:
    return (_site() / name).read_text(encoding="utf-8")


def test_the_api_reference_is_in_the_top_bar_not_under_more() -> None:
    page = _page("index.html")
    start = page.index('class="bd-navbar-elements navbar-nav"')
    bar = page[start : page.index("</ul>", start)]
    links = re.findall(r'class="nav-link[^"]*"\s+href="([^"]+)"', bar)
    assert "api.html" in links, links
    dropdown = bar.find("dropdown")
    assert dropdown == -1 or bar.index('href="api.html"') < dropdown  # not inside "More"
    assert {"installation.html", "quickstart.html"} <= set(links)


def _api_modules() -> list[str]:
    """The modules listed whole in api.md (entries that are importable as anyglm.<entry>)."""
    import types

    import anyglm

    text = (DOCS / "api.md").read_text(encoding="utf-8")
    modules = []
    for entry in re.findall(r"^   ([a-z_]+)$", text, flags=re.M):
        obj = getattr(anyglm, entry, None)
        if obj is not None and not isinstance(obj, types.ModuleType):
            continue  # a function of anyglm's own (doctor, tune), not a module listed whole
        if importlib.util.find_spec(f"anyglm.{entry}") is not None:
            modules.append(entry)
    return sorted(modules)


def _documented_objects() -> list[str]:
    import types

    import anyglm

    names = [
        n
        for n in anyglm.__all__
        if n not in ("__version__", "hookimpl")
        and not isinstance(getattr(anyglm, n), types.ModuleType)
    ]
    for module in _api_modules():
        mod = importlib.import_module(f"anyglm.{module}")
        names += [f"{module}.{n}" for n in mod.__all__ if callable(getattr(mod, n))]
    return sorted(names)


@pytest.mark.parametrize("name", _documented_objects())
def test_every_public_object_has_a_page_of_its_own(name: str) -> None:
    page = _site() / "generated" / f"anyglm.{name}.html"
    assert page.is_file(), f"no page for anyglm.{name}"
    assert f'id="anyglm.{name}"' in page.read_text(encoding="utf-8")


@pytest.mark.parametrize("module", _api_modules())
def test_module_pages_link_each_object_page(module: str) -> None:
    page = _page(f"generated/anyglm.{module}.html")
    mod = importlib.import_module(f"anyglm.{module}")
    for name in (n for n in mod.__all__ if callable(getattr(mod, n))):
        assert f'href="anyglm.{module}.{name}.html' in page, f"{module} page lacks {name}"


def _external_links(*pages: str) -> set[str]:
    links: set[str] = set()
    for name in pages:
        links |= set(re.findall(r'<a class="reference external" href="([^"]+)"', _page(name)))
    return links


@pytest.mark.parametrize(
    ("pages", "link"),
    [
        (
            ("index.html",),
            "https://scikit-learn.org/stable/modules/generated/"
            "sklearn.pipeline.Pipeline.html#sklearn.pipeline.Pipeline",
        ),
        (
            ("index.html",),
            "https://scikit-learn.org/stable/modules/generated/"
            "sklearn.model_selection.GridSearchCV.html#sklearn.model_selection.GridSearchCV",
        ),
        (
            ("user_guide.html",),
            "https://scikit-learn.org/stable/modules/generated/"
            "sklearn.base.clone.html#sklearn.base.clone",
        ),
        (
            ("user_guide.html", "generated/anyglm.Estimator.html"),
            "https://numpy.org/doc/stable/reference/random/generator.html#numpy.random.Generator",
        ),
        (
            ("generated/anyglm.datasets.load_dataset.html",),
            "https://numpy.org/doc/stable/reference/generated/numpy.ndarray.html#numpy.ndarray",
        ),
        (
            ("generated/anyglm.Estimator.html",),
            "https://docs.python.org/3/library/functions.html#float",
        ),
        (
            ("theory.html",),
            "https://data-apis.org/array-api/latest/API_specification/"
            "generated/array_api.logaddexp.html#array_api.logaddexp",
        ),
    ],
)
def test_links_into_other_projects_docs_resolve(pages: tuple[str, ...], link: str) -> None:
    for name in pages:
        assert link in _external_links(name), f"{name} does not link {link}"


# -- figures: the measuring logic ---------------------------------------------------------------


def test_an_image_shown_narrower_than_the_ratio_is_an_offender() -> None:
    Image = check_figures.Image
    assert Image("t.html", "a.png", 1000, 900.0).problem() is None
    squeezed = Image("t.html", "a.png", 1640, 896.0).problem()
    assert squeezed is not None and "55% of its natural 1640 px" in squeezed
    assert "did not load" in (Image("t.html", "b.png", 0, 0.0).problem() or "")
    assert Image("t.html", "c.png", 500, 0.0, hidden=True).problem() is None
    assert Image("t.html", "a.png", 1000, 850.0).problem(min_ratio=0.8) is None


def test_the_measuring_script_goes_into_the_page_and_its_report_is_read() -> None:
    page = '<html><body><img loading="lazy" src="a.png"></body></html>'
    probe = check_figures.instrumented(page)
    assert 'loading="lazy"' not in probe
    assert probe.index(check_figures.REPORT_ID) < probe.index("</body>")
    dom = (
        '<pre id="anyglm-figure-report" tabindex="-1">{"viewport":1280,"images":'
        '[{"src":"a.png","alt":"x &lt; y","natural":1640,"shown":896,"hidden":false}]}</pre>'
    )
    viewport, images = check_figures.parse_report("t.html", dom)
    assert viewport == 1280
    assert images == [check_figures.Image("t.html", "a.png", 1640, 896.0, False)]
    with pytest.raises(RuntimeError, match="reported nothing"):
        check_figures.parse_report("t.html", "<html></html>")


# -- figures: the built site in headless Chromium -------------------------------------------------


def _png(path: Path, width: int, height: int) -> None:
    """A plain grey PNG of the given size (no imaging library needed)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    rows = b"".join(b"\x00" + b"\x80" * (3 * width) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def _run_figures(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(DOCS / "check_figures.py"), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_every_figure_of_the_site_is_shown_at_its_natural_width() -> None:
    chromium = _site_and_browser()
    done = _run_figures(HTML, "--chromium", chromium)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "at a 1280 px window" in done.stdout
    shown = dict(
        re.findall(r"_images/(\S+\.png) natural \d+ px, shown \d+ px \((\d+)%\)", done.stdout)
    )
    assert {"all_positive.png", "tune_heatmap.png", "tune_curves.png"} <= set(shown), done.stdout
    assert all(int(percent) >= 90 for percent in shown.values()), shown


def test_the_figure_check_names_a_squeezed_figure(tmp_path: Path) -> None:
    chromium = _site_and_browser()
    _png(tmp_path / "wide.png", 1000, 40)
    _png(tmp_path / "small.png", 200, 40)
    (tmp_path / "index.html").write_text(
        '<html><body><img src="small.png"><img src="wide.png" style="width: 400px"></body></html>',
        encoding="utf-8",
    )
    done = _run_figures(tmp_path, "--chromium", chromium)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "index.html: wide.png is shown 400 px wide, 40% of its natural 1000 px" in done.stderr
    assert "small.png" not in done.stderr
    assert not list(tmp_path.glob(".check-figures-*")), "the measuring copy was left behind"


def test_the_figure_check_says_why_it_cannot_run(tmp_path: Path) -> None:
    done = _run_figures(tmp_path)
    assert done.returncode == 2 and "build the docs first" in done.stderr
