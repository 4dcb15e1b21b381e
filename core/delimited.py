"""Splitting delimited text files (CSV) into rows of cells, before any cell is a number.

The standard library's :mod:`csv` module does the splitting, so quoting works
(``"height, cm"`` is one header name); :class:`csv.Sniffer` picks the
delimiter among ``,`` ``;`` TAB and ``|``, and a first row with text above
numbers is taken as a header. Every problem is reported in one line that names
the file and the line as an editor numbers it (1-based; the first line of a
record that spans several lines). :mod:`anyglm.tabular` reads the cells as
features and labels; import these names from there.

Examples
--------
>>> import pathlib, tempfile
>>> from anyglm.tabular import read_rows
>>> path = pathlib.Path(tempfile.mkdtemp()) / "flowers.csv"
>>> _ = path.write_text('"petal, cm";sepal;kind\\n1.5;2;a\\n')
>>> read_rows(path).header
['petal, cm', 'sepal', 'kind']
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass

__all__ = ["DELIMITERS", "MISSING", "CsvError", "Rows", "read_rows"]

#: Delimiters the sniffer chooses from, in the order of preference for a tie.
DELIMITERS = (",", ";", "\t", "|")
#: Cell texts (compared lower-case, stripped) that mean "no value".
MISSING = frozenset({"", "na", "n/a", "nan", "null", "none"})
_SAMPLE_BYTES = 64 * 1024


class CsvError(ValueError):
    """A problem in a CSV file; the message is one line naming file, line and column.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.tabular import CsvError, read_rows
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "ragged.csv"
    >>> _ = path.write_text("a,b,y\\n1,2,0\\n3,1\\n")
    >>> try:
    ...     read_rows(path)
    ... except CsvError as err:
    ...     print(str(err).split(": ", 1)[1])
    line 3 has 2 fields, expected 3 (as in the header on line 1; delimiter ',')
    """


@dataclass
class Rows:
    """The cells of a delimited file, before any column is read as numbers.

    Attributes
    ----------
    path : str
    header : list of str or None
        The first row, when it is a header (see :func:`read_rows`).
    cells : list of list of str
        The data rows, cells stripped of surrounding blanks.
    lines : list of int
        The 1-based line where each data row starts.
    delimiter : str

    Examples
    --------
    >>> from anyglm.tabular import Rows
    >>> rows = Rows("f.csv", ["a", "y"], [["1", "0"], ["2", "1"]], [2, 3], ",")
    >>> rows.width, rows.where(1, 0)
    (2, "f.csv: line 3, column 'a'")
    """

    path: str
    header: list[str] | None
    cells: list[list[str]]
    lines: list[int]
    delimiter: str

    @property
    def width(self) -> int:
        """Number of columns.

        Examples
        --------
        >>> from anyglm.tabular import Rows
        >>> Rows("f.csv", None, [["1", "2", "3"]], [1], ",").width
        3
        """
        return len(self.header) if self.header is not None else len(self.cells[0])

    def column_name(self, index: int) -> str:
        """How messages name column ``index`` (0-based): ``'name'`` or ``3`` (1-based).

        Examples
        --------
        >>> from anyglm.tabular import Rows
        >>> Rows("f.csv", ["a", "b"], [["1", "2"]], [2], ",").column_name(1)
        "column 'b'"
        >>> Rows("f.csv", None, [["1", "2"]], [1], ",").column_name(1)
        'column 2'
        """
        if self.header is not None:
            return f"column {self.header[index]!r}"
        return f"column {index + 1}"

    def where(self, row: int, col: int | None = None) -> str:
        """``"file: line N, column 'c'"`` for a data row (0-based) and column.

        Examples
        --------
        >>> from anyglm.tabular import Rows
        >>> Rows("f.csv", ["a", "b"], [["1", "2"]], [2], ",").where(0, 1)
        "f.csv: line 2, column 'b'"
        """
        text = f"{self.path}: line {self.lines[row]}"
        return text if col is None else f"{text}, {self.column_name(col)}"

    def column_index(self, spec: str | int, option: str = "--label-column") -> int:
        """The 0-based index of a column given by header name or index (negative from the end).

        Raises
        ------
        CsvError
            No column of that name, or the index is out of range.

        Examples
        --------
        >>> from anyglm.tabular import Rows
        >>> rows = Rows("f.csv", ["a", "b", "y"], [["1", "2", "0"]], [2], ",")
        >>> rows.column_index("y"), rows.column_index(-1), rows.column_index("0")
        (2, 2, 0)
        """
        width = self.width
        if isinstance(spec, str):
            text = spec.strip()
            if self.header is not None and text in self.header:
                return self.header.index(text)
            try:
                col = int(text)
            except ValueError:
                known = (
                    ", ".join(self.header)
                    if self.header is not None
                    else "none (the file has no header; give a 0-based index)"
                )
                raise CsvError(
                    f"{option} {spec!r} not found in {self.path!r}; columns: {known}"
                ) from None
        else:
            col = int(spec)
        if not -width <= col < width:
            raise CsvError(
                f"{option} {col} is out of range: {self.path!r} has {width} columns "
                f"(0-based indexes 0 to {width - 1}, or -1 for the last)"
            )
        return col % width


def _sniff_delimiter(sample: str) -> str:
    """The delimiter of a file from its first lines; ``","`` for a single column."""
    try:
        return csv.Sniffer().sniff(sample, delimiters="".join(DELIMITERS)).delimiter
    except csv.Error:
        pass
    # The sniffer gives up on a ragged row or one column: take the delimiter that
    # splits most lines into the same number (>1) of fields.
    lines = [ln for ln in sample.splitlines() if ln.strip()][:50]
    best, best_key = ",", (0.0, 0)
    for delim in DELIMITERS:
        widths = Counter(len(r) for r in csv.reader(lines, delimiter=delim))
        width, count = widths.most_common(1)[0] if widths else (1, 0)
        key = (count / max(len(lines), 1), width)
        if width > 1 and key > best_key:
            best, best_key = delim, key
    return best


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _is_missing(text: str) -> bool:
    return text.lower() in MISSING


def _looks_like_header(first: list[str], rest: list[list[str]]) -> bool:
    # A header has a text cell where a later row has a number. A text column
    # (class names) is text in every row and does not make a header on its own;
    # a file of one row with text in it is a header with no data.
    text_cols = [
        i for i, v in enumerate(first) if not _is_number(v) and not _is_missing(v) and v != ""
    ]
    if not text_cols:
        return False
    if not rest:
        return True
    for row in rest[:20]:
        for i in text_cols:
            if i < len(row) and _is_number(row[i]) and not _is_missing(row[i]):
                return True
    return False


def read_rows(
    path: str | os.PathLike[str], *, delimiter: str | None = None, header: bool | None = None
) -> Rows:
    """Split a delimited text file into cells, finding the delimiter and the header.

    Parameters
    ----------
    path : str or path-like
    delimiter : str, optional
        One character; by default sniffed among ``,`` ``;`` TAB ``|``.
    header : bool, optional
        Whether the first row names the columns; by default it does when it
        has a text cell above a number.

    Returns
    -------
    Rows

    Raises
    ------
    CsvError
        The file is empty, not UTF-8 text, or a row has another number of
        fields than the header (or the first row): the message names the line.
    FileNotFoundError

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.tabular import read_rows
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("a|b\\n1|2\\n\\n3|4\\n")
    >>> rows = read_rows(path)
    >>> rows.header, rows.cells, rows.lines, rows.delimiter
    (['a', 'b'], [['1', '2'], ['3', '4']], [2, 4], '|')
    """
    spath = os.fspath(path)
    if not os.path.isfile(spath):
        raise FileNotFoundError(f"no such file {spath!r}")
    try:
        # utf-8-sig: drop the byte-order mark spreadsheet programs write.
        with open(spath, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise CsvError(
            f"{spath}: line {line}: not UTF-8 text ({exc.reason}); save the file as UTF-8"
        ) from None
    if delimiter is None:
        sample = text[:_SAMPLE_BYTES]
        if len(text) > _SAMPLE_BYTES and "\n" in sample:
            sample = sample[: sample.rindex("\n")]  # no half line at the end
        delimiter = _sniff_delimiter(sample)
    elif len(delimiter) != 1:
        raise CsvError(f"the delimiter must be one character, got {delimiter!r}")

    reader = csv.reader(text.splitlines(keepends=True), delimiter=delimiter, strict=True)
    records: list[list[str]] = []
    lines: list[int] = []
    start = 1
    try:
        for record in reader:
            cells = [c.strip() for c in record]
            if any(cells):  # blank lines (and rows of blanks) are not rows
                records.append(cells)
                lines.append(start)
            start = reader.line_num + 1
    except csv.Error as exc:
        raise CsvError(f"{spath}: line {start}: {exc}") from None
    if not records:
        raise CsvError(f"{spath}: the file is empty; it needs rows of numbers")
    names: list[str] | None = None
    if header is None:
        header = _looks_like_header(records[0], records[1:])
    if header:
        names, records, header_line = records[0], records[1:], lines[0]
        lines = lines[1:]
        expected = f"as in the header on line {header_line}"
    else:
        expected = f"as on line {lines[0]}"
    width = len(names) if names is not None else len(records[0]) if records else 0
    if not records:
        raise CsvError(f"{spath}: only a header (line {lines[0] if lines else 1}), no data rows")
    for cells, line in zip(records, lines, strict=True):
        if len(cells) != width:
            raise CsvError(
                f"{spath}: line {line} has {len(cells)} fields, expected {width} ({expected}; "
                f"delimiter {_delimiter_name(delimiter)})"
            )
    return Rows(spath, names, records, lines, delimiter)


def _delimiter_name(delimiter: str) -> str:
    return {"\t": "TAB", " ": "space"}.get(delimiter, repr(delimiter))
