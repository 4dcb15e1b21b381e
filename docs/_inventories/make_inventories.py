"""Write the hand-made intersphinx inventories (``*.inv``) from their text sources (``*.txt``).

``numpy.txt`` and ``array-api.txt`` list, in the plain form of Sphinx's
``objects.inv`` (a four-line header, then one ``name domain:role priority uri
dispname`` line per object, ``$`` at the end of a uri standing for the name),
the NumPy and Array API standard objects that anyglm's docs link to, with the
pages they have in the upstream documentation. Add a line there when the docs
refer to another object, then run::

    python docs/_inventories/make_inventories.py

``tests/unit/test_docs_inventories.py`` checks that every ``.inv`` file here is
a valid inventory and that the hand-made ones match their sources.
"""

from __future__ import annotations

import re
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER_LINES = 4
# Sphinx's pattern for an object line (a name may hold spaces, as glossary terms do).
OBJECT_LINE = re.compile(r"(.+?)\s+(\S+:\S+)\s+(-?\d+)\s+?(\S*)\s+(.*)")


def compile_inventory(text: str) -> bytes:
    """The ``objects.inv`` bytes for an inventory written out as text."""
    lines = text.splitlines()
    header, body = lines[:HEADER_LINES], lines[HEADER_LINES:]
    expected = ("# Sphinx inventory version 2", "# Project: ", "# Version: ", "# The remainder")
    for line, start in zip(header, expected, strict=True):
        if not line.startswith(start):
            raise ValueError(f"bad inventory header line {line!r}: expected {start!r}...")
    for number, line in enumerate(body, HEADER_LINES + 1):
        if not OBJECT_LINE.fullmatch(line):
            raise ValueError(
                f"line {number}: {line!r} is not 'name domain:role priority uri dispname'"
            )
    payload = "".join(f"{line}\n" for line in sorted(body)).encode("utf-8")
    return "".join(f"{line}\n" for line in header).encode("utf-8") + zlib.compress(payload, 9)


def main() -> None:
    for source in sorted(HERE.glob("*.txt")):
        target = source.with_suffix(".inv")
        target.write_bytes(compile_inventory(source.read_text(encoding="utf-8")))
        print(f"wrote {target.relative_to(HERE.parents[1])}")


if __name__ == "__main__":
    main()
