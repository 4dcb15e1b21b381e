"""Check that the built documentation shows every figure at (nearly) its natural width.

A figure drawn at 1640 px and squeezed into an 800 px column has unreadable
labels. This script opens every page of the built HTML that has an image in
headless Chromium, in a window ``--width`` pixels wide (1280 by default), with
scrollbars as a desktop browser has them, and compares for every ``<img>`` the
width it is shown at with its natural width (its pixels). An image shown
narrower than ``--min-ratio`` (0.9) of its natural width is an offender; so is
one that does not load. Pages whose HTML has no ``<img>`` have nothing to check
and are not opened.

Each page is measured through a copy of it, written next to it for the
duration of the run (so its relative links still work), with a small script
that waits for the images, measures them, and writes the result into the DOM,
which Chromium's ``--dump-dom`` prints. ``--screenshots DIR`` also saves a
screenshot of each page with images, at the window's width, to look at.

Usage::

    python docs/check_figures.py [HTML_DIR] [--width 1280] [--min-ratio 0.9]
                                 [--screenshots DIR] [--chromium PATH] [--timeout SECONDS]

``HTML_DIR`` defaults to ``docs/_build/html`` (build it with ``bash docs/build.sh``).
Chromium is found as in ``check_math.py``. Exit status: 0 when every figure is
shown at >= the ratio (each is listed), 1 when some are not (listed as
offenders), 2 when the check cannot run (no site, no Chromium, a page that
does not render).
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_math import FLAGS, find_chromium

DEFAULT_HTML = Path(__file__).resolve().parent / "_build" / "html"
WIDTH = 1280
HEIGHT = 1000
SCREENSHOT_HEIGHT = 4000
MIN_RATIO = 0.9
REPORT_ID = "anyglm-figure-report"
# A desktop browser shows scrollbars, which take part of the window's width.
CHECK_FLAGS = tuple(flag for flag in FLAGS if flag != "--hide-scrollbars")

# Runs in the page: make every image load now, wait for all of them, then
# measure each and append the measurements, as JSON, to the document.
MEASURE = f"""<script>
window.addEventListener("load", async () => {{
  const images = Array.from(document.images);
  for (const img of images) img.loading = "eager";
  await Promise.all(images.map((img) => img.complete ? null : new Promise((done) => {{
    img.addEventListener("load", done);
    img.addEventListener("error", done);
  }})));
  const rows = images.map((img) => {{
    const box = img.getBoundingClientRect();
    return {{
      src: img.getAttribute("src"),
      alt: img.getAttribute("alt") || "",
      natural: img.naturalWidth,
      shown: box.width,
      hidden: img.getClientRects().length === 0,
    }};
  }});
  const out = document.createElement("pre");
  out.id = "{REPORT_ID}";
  out.textContent = JSON.stringify({{viewport: window.innerWidth, images: rows}});
  document.body.appendChild(out);
}});
</script>"""
REPORT = re.compile(rf'<pre id="{REPORT_ID}"[^>]*>(.*?)</pre>', flags=re.S)


@dataclass(frozen=True)
class Image:
    """One ``<img>`` of a page as Chromium laid it out."""

    page: str
    src: str
    natural: int
    shown: float
    hidden: bool = False

    @property
    def ratio(self) -> float:
        """Shown width over natural width (0 for an image that did not load)."""
        return self.shown / self.natural if self.natural else 0.0

    def problem(self, min_ratio: float = MIN_RATIO) -> str | None:
        """Why this image is an offender, or None when it is shown wide enough."""
        if self.hidden:
            return None  # not displayed at this width (e.g. a dark-theme-only logo)
        if self.natural == 0:
            return f"{self.page}: {self.src} did not load"
        if self.ratio < min_ratio:
            return (
                f"{self.page}: {self.src} is shown {self.shown:.0f} px wide, "
                f"{self.ratio:.0%} of its natural {self.natural} px (needs >= {min_ratio:.0%})"
            )
        return None

    def describe(self) -> str:
        """One line: where, how wide, which ratio."""
        return (
            f"{self.page}: {self.src} natural {self.natural} px, "
            f"shown {self.shown:.0f} px ({self.ratio:.0%})"
        )


def pages_with_images(html_dir: Path) -> list[Path]:
    """The HTML pages of the site whose markup has an ``<img>``, sorted."""
    found = []
    for page in sorted(html_dir.rglob("*.html")):
        parts = page.relative_to(html_dir).parts
        if parts[0] in ("_static", "_sources", "_images") or page.name.startswith("."):
            continue
        if re.search(r"<img\b", page.read_text(encoding="utf-8", errors="replace"), flags=re.I):
            found.append(page)
    return found


def instrumented(page_html: str) -> str:
    """The page with eager images and the measuring script before ``</body>``."""
    page_html = re.sub(r'\sloading="lazy"', "", page_html)
    if "</body>" not in page_html:
        return page_html + MEASURE
    head, _, tail = page_html.rpartition("</body>")
    return head + MEASURE + "</body>" + tail


def parse_report(page: str, dom: str) -> tuple[int, list[Image]]:
    """The viewport width and the images measured on ``page`` from its dumped DOM."""
    match = REPORT.search(dom)
    if match is None:
        raise RuntimeError(f"{page}: the measuring script reported nothing")
    data = json.loads(html.unescape(match.group(1)))
    images = [
        Image(page, row["src"], int(row["natural"]), float(row["shown"]), bool(row["hidden"]))
        for row in data["images"]
    ]
    return int(data["viewport"]), images


def _chromium(chromium: str, extra: list[str], url: str, timeout: float) -> str:
    import tempfile

    with tempfile.TemporaryDirectory(prefix="anyglm-chromium-") as profile:
        cmd = [chromium, *CHECK_FLAGS, f"--user-data-dir={profile}", *extra, url]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=timeout, check=False, cwd=profile
        )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-5:])
        raise RuntimeError(f"chromium exited with status {done.returncode}:\n{tail}")
    return done.stdout


def measure_page(
    page: Path,
    html_dir: Path,
    *,
    chromium: str,
    width: int = WIDTH,
    timeout: float = 120.0,
    screenshot: Path | None = None,
) -> tuple[int, list[Image]]:
    """Open ``page`` at ``width`` px in Chromium; its viewport width and its images."""
    name = page.relative_to(html_dir).as_posix()
    probe = page.with_name(f".check-figures-{os.getpid()}-{page.name}")
    probe.write_text(instrumented(page.read_text(encoding="utf-8")), encoding="utf-8")
    try:
        dom = _chromium(
            chromium, [f"--window-size={width},{HEIGHT}", "--dump-dom"], probe.as_uri(), timeout
        )
        if screenshot is not None:
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            extra = [
                f"--window-size={width},{SCREENSHOT_HEIGHT}",
                f"--screenshot={screenshot.resolve()}",
            ]
            _chromium(chromium, extra, page.as_uri(), timeout)
    finally:
        probe.unlink(missing_ok=True)
    return parse_report(name, dom)


def check(
    html_dir: Path,
    *,
    chromium: str,
    width: int = WIDTH,
    min_ratio: float = MIN_RATIO,
    screenshots: Path | None = None,
    timeout: float = 120.0,
) -> tuple[list[Image], list[str], list[int]]:
    """Measure every image of the site: (images, problems, viewport widths seen)."""
    images: list[Image] = []
    viewports: list[int] = []
    html_dir = html_dir.resolve()
    for page in pages_with_images(html_dir):
        shot = None
        if screenshots is not None:
            shot = screenshots / (page.relative_to(html_dir).with_suffix(".png").as_posix())
        viewport, found = measure_page(
            page, html_dir, chromium=chromium, width=width, timeout=timeout, screenshot=shot
        )
        viewports.append(viewport)
        images.extend(found)
    problems = [p for p in (image.problem(min_ratio) for image in images) if p]
    return images, problems, viewports


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=DEFAULT_HTML)
    parser.add_argument("--width", type=int, default=WIDTH, help="window width in px")
    parser.add_argument("--min-ratio", type=float, default=MIN_RATIO)
    parser.add_argument("--screenshots", type=Path, help="save a screenshot of each page here")
    parser.add_argument("--chromium", help="the Chromium executable")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    if not (args.html_dir / "index.html").is_file():
        print(
            f"check_figures: no index.html in {args.html_dir}; build the docs first",
            file=sys.stderr,
        )
        return 2
    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("check_figures: no Chromium found (apt-get install chromium)", file=sys.stderr)
        return 2
    try:
        images, problems, viewports = check(
            args.html_dir,
            chromium=chromium,
            width=args.width,
            min_ratio=args.min_ratio,
            screenshots=args.screenshots,
            timeout=args.timeout,
        )
    except (OSError, RuntimeError, ValueError, subprocess.TimeoutExpired) as exc:
        print(f"check_figures: could not measure the figures: {exc}", file=sys.stderr)
        return 2
    shown = [image for image in images if not image.hidden]
    pages = len({image.page for image in images})
    viewport = f"viewport {min(viewports)} px" if viewports else "no page with images"
    summary = (
        f"{len(shown)} images on {pages} pages at a {args.width} px window ({viewport}), "
        f"each needing >= {args.min_ratio:.0%} of its natural width"
    )
    if problems:
        print(f"check_figures: FAILED, {summary}", file=sys.stderr)
        for problem in problems:
            print(f"  - {problem}", file=sys.stderr)
        return 1
    if not shown:
        print(f"check_figures: FAILED, {summary}: the site shows no image", file=sys.stderr)
        return 1
    print(f"check_figures: ok, {summary}")
    for image in shown:
        print(f"  {image.describe()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
