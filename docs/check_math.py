"""Check that the built documentation shows rendered math, not raw LaTeX.

Opens a page of the built HTML (``theory.html`` by default) in headless
Chromium, lets MathJax run, and inspects the resulting DOM:

* the page loads MathJax from the site itself (``_static/mathjax``), never
  from a CDN, so it renders offline;
* every math element Sphinx wrote (``class="math"``) holds a MathJax
  ``<mjx-container>`` whose SVG has glyphs, and there are at least as many
  containers as math elements;
* MathJax reported no TeX error (``merror``);
* no raw LaTeX (``\\frac``, ``\\(``, ``$$``, ...) is left in the visible text
  (code blocks aside).

It also takes a screenshot of the top of the page (``--screenshot``) and checks
that it is a PNG of the window's size that is not blank.

Usage::

    python docs/check_math.py [HTML_DIR] [--page theory.html] [--screenshot out.png]
                              [--chromium PATH] [--timeout SECONDS]

``HTML_DIR`` defaults to ``docs/_build/html`` (build it with ``bash docs/build.sh``).
Chromium is looked up as ``--chromium``, ``$CHROMIUM``, then ``chromium``,
``chromium-browser``, ``google-chrome`` on ``PATH`` (Debian: ``apt-get install
chromium``). Exit status: 0 when the math is rendered, 1 when it is not (the
problems are printed), 2 when the check cannot run (no page, no Chromium).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

DEFAULT_HTML = Path(__file__).resolve().parent / "_build" / "html"
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
WINDOW = (1200, 1600)
#: Chromium flags for a quiet, offline, sandbox-free headless run (CI runs as root).
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",  # let MathJax finish before the DOM is read
)

# Raw TeX as it appears when MathJax did not run: a delimiter or a control word.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\[A-Za-z]{2,}")
VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}
# Text inside these is not prose: code may legitimately contain backslashes.
SKIP = {"script", "style", "pre", "code", "textarea", "noscript", "template", "kbd"}


@dataclass
class DomReport:
    """What :func:`inspect_dom` found in a page's DOM after its scripts ran."""

    math_elements: int = 0
    rendered_math_elements: int = 0
    containers: int = 0
    glyphless_containers: int = 0
    errors: list[str] = field(default_factory=list)
    raw_tex: list[str] = field(default_factory=list)

    def problems(self, expected_math: int | None = None) -> list[str]:
        """Human-readable reasons why the math is not rendered (empty when it is)."""
        out = []
        if self.math_elements == 0 and not expected_math:
            out.append("the page has no math elements (class='math'): wrong page?")
        if self.containers == 0:
            out.append("MathJax typeset nothing: no <mjx-container> in the DOM")
        missing = self.math_elements - self.rendered_math_elements
        if missing:
            out.append(f"{missing} of {self.math_elements} math elements hold no <mjx-container>")
        if expected_math is not None and self.containers < expected_math:
            out.append(
                f"{self.containers} <mjx-container> elements for {expected_math} math elements "
                "in the page's HTML"
            )
        if self.glyphless_containers:
            out.append(f"{self.glyphless_containers} <mjx-container> elements draw no glyphs")
        if self.errors:
            out.append(f"MathJax reported {len(self.errors)} TeX errors: {self.errors[:3]}")
        if self.raw_tex:
            out.append(f"raw LaTeX left in the page's text: {self.raw_tex[:5]}")
        return out


class _Inspector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.report = DomReport()
        # Per open element: (tag, is_math_element, is_container).
        self.stack: list[tuple[str, bool, bool]] = []
        self.math_has_container: list[bool] = []  # one flag per open math element
        self.container_glyphs: list[int] = []  # one count per open container
        self.skip_depth = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), closed=tag in VOID)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._start(tag, dict(attrs), closed=True)

    def _start(self, tag: str, attrs: dict[str, str | None], *, closed: bool) -> None:
        classes = (attrs.get("class") or "").split()
        is_math = tag in ("span", "div") and "math" in classes
        is_container = tag == "mjx-container"
        if attrs.get("data-mml-node") == "merror" or tag == "mjx-merror":
            self.report.errors.append(attrs.get("data-mjx-error") or "TeX error")
        if self.container_glyphs and tag in ("use", "path", "text"):
            self.container_glyphs[-1] += 1
        if is_container:
            self.report.containers += 1
            if self.math_has_container:
                self.math_has_container[-1] = True
        if closed:
            return
        if is_math:
            self.report.math_elements += 1
            self.math_has_container.append(False)
        if is_container:
            self.container_glyphs.append(0)
        if tag in SKIP:
            self.skip_depth += 1
        self.stack.append((tag, is_math, is_container))

    def handle_endtag(self, tag: str) -> None:
        if not any(open_tag == tag for open_tag, _, _ in self.stack):
            return  # a stray end tag
        while self.stack:
            open_tag, is_math, is_container = self.stack.pop()
            if is_math and self.math_has_container.pop():
                self.report.rendered_math_elements += 1
            if is_container and self.container_glyphs.pop() == 0:
                self.report.glyphless_containers += 1
            if open_tag in SKIP:
                self.skip_depth -= 1
            if open_tag == tag:
                return

    def handle_data(self, data: str) -> None:
        if self.skip_depth == 0 and not self.container_glyphs:
            self.text.append(data)

    def finish(self) -> DomReport:
        self.close()
        text = " ".join(self.text)
        for match in RAW_TEX.finditer(text):
            start, end = max(0, match.start() - 30), min(len(text), match.end() + 30)
            self.report.raw_tex.append(" ".join(text[start:end].split()))
        return self.report


def inspect_dom(dom: str) -> DomReport:
    """Inspect a serialised DOM (Chromium's ``--dump-dom``) for rendered math."""
    inspector = _Inspector()
    inspector.feed(dom)
    return inspector.finish()


def page_math(html: str) -> tuple[int, list[str]]:
    """Math elements in a page's HTML as Sphinx wrote it, and its MathJax script sources."""
    count = len(re.findall(r"<(?:span|div)\b[^>]*\bclass=\"[^\"]*\bmath\b", html))
    sources = re.findall(r"<script\b[^>]*\bsrc=\"([^\"]*mathjax[^\"]*)\"", html, flags=re.I)
    return count, sources


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, ``$CHROMIUM``, or the first browser on PATH."""
    for candidate in (explicit, os.environ.get("CHROMIUM")):
        if candidate:
            return shutil.which(candidate) or (candidate if os.path.isfile(candidate) else None)
    for name in BROWSERS:
        found = shutil.which(name)
        if found:
            return found
    return None


def _run_chromium(chromium: str, extra: list[str], url: str, timeout: float) -> str:
    with tempfile.TemporaryDirectory(prefix="anyglm-chromium-") as profile:
        cmd = [chromium, *FLAGS, f"--user-data-dir={profile}", *extra, url]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=profile
        )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"chromium exited with status {done.returncode}:\n{tail}")
    return done.stdout


def dump_dom(chromium: str, url: str, timeout: float = 120.0) -> str:
    """The page's DOM after its scripts ran (``--dump-dom``)."""
    return _run_chromium(chromium, ["--dump-dom"], url, timeout)


def screenshot(chromium: str, url: str, path: Path, timeout: float = 120.0) -> None:
    """A PNG screenshot of the top of the page, ``WINDOW`` pixels."""
    width, height = WINDOW
    extra = [f"--window-size={width},{height}", f"--screenshot={path.resolve()}"]
    _run_chromium(chromium, extra, url, timeout)


def png_problems(path: Path, size: tuple[int, int] = WINDOW) -> list[str]:
    """Why ``path`` is not a screenshot of a page with content (empty when it is).

    The size is read from the PNG header; whether the page has content (dark
    text on the light theme) is checked when matplotlib or Pillow can decode it.
    """
    if not path.is_file():
        return [f"no screenshot was written to {path}"]
    data = path.read_bytes()
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return [f"{path} is not a PNG file"]
    width, height = struct.unpack(">II", data[16:24])
    if (width, height) != size:
        return [f"the screenshot is {width}x{height}, expected {size[0]}x{size[1]}"]
    dark = _dark_fraction(path)
    if dark is not None and dark < 0.002:
        return [f"the screenshot is (nearly) blank: {dark:.2%} of its pixels are dark"]
    return []


def _dark_fraction(path: Path) -> float | None:
    """Fraction of pixels darker than mid-grey, or None without a PNG decoder."""
    try:
        from matplotlib.image import imread

        rgb = imread(path)[..., :3]  # floats in [0, 1]
        return float((rgb.mean(axis=-1) < 0.5).mean())
    except ImportError:
        pass
    try:
        from PIL import Image
    except ImportError:
        return None
    with Image.open(path) as image:
        grey = image.convert("L")
        histogram = grey.histogram()
        return sum(histogram[:128]) / (grey.width * grey.height)


def check(
    html_dir: Path,
    page: str = "theory.html",
    *,
    chromium: str,
    screenshot_path: Path | None = None,
    timeout: float = 120.0,
) -> tuple[DomReport, list[str]]:
    """Render ``page`` of ``html_dir``; return the DOM report and every problem found."""
    path = (html_dir / page).resolve()
    html = path.read_text(encoding="utf-8")
    expected, sources = page_math(html)
    problems = []
    if not sources:
        problems.append(f"{page} loads no MathJax script")
    for src in sources:
        if re.match(r"^(?:[a-z]+:)?//", src, flags=re.I):
            problems.append(f"{page} loads MathJax from the network ({src}), not from the site")
        elif not (path.parent / src.split("?")[0]).is_file():
            problems.append(f"{page} loads MathJax from {src}, which is not in the site")
    report = inspect_dom(dump_dom(chromium, path.as_uri(), timeout))
    problems += report.problems(expected)
    if screenshot_path is not None:
        screenshot(chromium, path.as_uri(), screenshot_path, timeout)
        problems += png_problems(screenshot_path)
    return report, problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML)
    parser.add_argument("--page", default="theory.html")
    parser.add_argument("--screenshot", type=Path, help="write a PNG of the top of the page")
    parser.add_argument("--chromium", help="the Chromium executable")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not (args.html_dir / args.page).is_file():
        print(
            f"check_math: no {args.page} in {args.html_dir}; build the docs first", file=sys.stderr
        )
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check_math: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    try:
        report, problems = check(
            args.html_dir,
            args.page,
            chromium=chromium,
            screenshot_path=args.screenshot,
            timeout=args.timeout,
        )
    except (OSError, RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"check_math: could not render {args.page}: {exc}", file=sys.stderr)
        return 2
    summary = (
        f"{args.page}: {report.containers} formulas typeset by MathJax, "
        f"{report.rendered_math_elements}/{report.math_elements} math elements rendered"
    )
    if problems:
        print(f"check_math: FAILED, {summary}", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    shot = f"; screenshot {args.screenshot}" if args.screenshot else ""
    print(f"check_math: ok, {summary}, no raw LaTeX{shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
