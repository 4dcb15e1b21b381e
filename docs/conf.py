"""Sphinx configuration for anyglm's documentation (Sphinx + MyST Markdown).

Build with ``bash docs/build.sh`` (HTML and doctest builders, warnings as errors).
The figures are drawn by anyglm during the build (``_ext/anyglm_figures.py``,
into ``_generated/``), and MathJax is served from ``_static/mathjax`` so the
math renders without a network connection.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyglm

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))

project = "anyglm"
author = "The anyglm developers"
copyright = "the anyglm developers"
version = release = anyglm.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.doctest",
    "sphinx.ext.mathjax",
    "numpydoc",
    "anyglm_figures",  # _ext/anyglm_figures.py: the PNGs the pages show
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# docs/examples holds installable example plugins (with their own READMEs), not pages.
exclude_patterns = [
    "_build",
    "_ext",
    "_generated",
    "_static",
    "examples",
    "build.sh",
    "Thumbs.db",
    ".DS_Store",
]

# -- MyST ----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- Math ----------------------------------------------------------------------------------
# MathJax 3.2.2 (tex-svg-full.js from the npm package mathjax@3.2.2, Apache-2.0) is
# shipped in _static/mathjax: the pages render their math offline, with every TeX
# extension built in (nothing is fetched later) and SVG output (no web fonts).
mathjax_path = "mathjax/tex-svg-full.js"

# -- API reference -------------------------------------------------------------------------
autosummary_generate = False  # tables only; the entries live on api.md itself
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- doctest -------------------------------------------------------------------------------
# The examples show the defaults: a backend chosen through the environment would change them.
doctest_global_setup = f"""
import os
import warnings
import numpy as np
import anyglm
from importlib import metadata
os.environ.pop("ANYGLM_BACKEND", None)
# The pages show what a plain install prints: third-party plugins stay out.
os.environ["ANYGLM_DISABLE_PLUGINS"] = ",".join(
    ep.name for ep in metadata.entry_points(group="anyglm.plugins"))
anyglm.reload_plugins()
warnings.simplefilter("ignore", anyglm.PluginWarning)
GENERATED = {str(DOCS / "_generated")!r}
"""
# Only the ```{doctest} blocks written in the pages are run. The ">>>" examples in the
# library's docstrings (shown on api.md) are run too when ANYGLM_DOCS_DOCSTRINGS=1.
doctest_test_doctest_blocks = "default" if os.environ.get("ANYGLM_DOCS_DOCSTRINGS") else ""

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"anyglm {release}"
html_static_path = ["_static"]
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"**": []}
