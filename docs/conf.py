"""Sphinx configuration for anyglm's documentation (Sphinx + MyST Markdown).

Build with ``bash docs/build.sh`` (HTML and doctest builders, warnings as errors).
"""

from __future__ import annotations

import os

import anyglm

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
]

source_suffix = {".md": "markdown"}
root_doc = "index"
# docs/examples holds installable example plugins (with their own READMEs), not pages.
exclude_patterns = ["_build", "examples", "build.sh", "Thumbs.db", ".DS_Store"]

# -- MyST ----------------------------------------------------------------------------------
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3
myst_dmath_double_inline = True

# -- API reference -------------------------------------------------------------------------
autosummary_generate = False  # tables only; the entries live on api.md itself
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # numpydoc sections carry the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True

# -- doctest -------------------------------------------------------------------------------
# The examples show the defaults: a backend chosen through the environment would change them.
doctest_global_setup = """
import os
import warnings
import numpy as np
import anyglm
os.environ.pop("ANYGLM_BACKEND", None)
warnings.simplefilter("ignore", anyglm.PluginWarning)
"""
# Only the ```{doctest} blocks written in the pages are run. The ">>>" examples in the
# library's docstrings (shown on api.md) are run too when ANYGLM_DOCS_DOCSTRINGS=1.
doctest_test_doctest_blocks = "default" if os.environ.get("ANYGLM_DOCS_DOCSTRINGS") else ""

# -- HTML ----------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"anyglm {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars: dict[str, list[str]] = {"**": []}
