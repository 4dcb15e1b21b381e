#!/usr/bin/env bash
# Build anyglm's documentation: HTML, then run every example (doctest builder).
# Warnings are errors. Needs the docs extra: pip install -e ".[docs]"
# Usage: bash docs/build.sh   (SPHINXBUILD=/path/to/sphinx-build to pick another one)
set -euo pipefail
cd "$(dirname "$0")"
SPHINXBUILD="${SPHINXBUILD:-sphinx-build}"
"$SPHINXBUILD" -W --keep-going -q -b html . _build/html
"$SPHINXBUILD" -W --keep-going -q -b doctest . _build/doctest
echo "docs: HTML in docs/_build/html, doctests passed"
