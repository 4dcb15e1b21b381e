"""Reading delimited text files (CSV) into feature matrices and label vectors.

The standard library's :mod:`csv` module does the splitting, so quoting works
(``"height, cm"`` is one header name); :class:`csv.Sniffer` picks the
delimiter among ``,`` ``;`` TAB and ``|``. Every problem is reported in one
line that names the file, the line as an editor numbers it (1-based; the first
line of a record that spans several lines) and the column (by header name when
the file has a header, else its 1-based position).

Missing values are empty cells and ``NA``, ``N/A``, ``NaN``, ``null``,
``None`` (any case). In a feature column they are an error unless the caller
allows them (the command line's ``--impute``); they are then ``NaN`` in ``X``
and :func:`impute_values` / :func:`fill_missing` replace them. A missing label
is always an error.

Examples
--------
>>> import pathlib, tempfile
>>> from anyglm.tabular import read_csv
>>> path = pathlib.Path(tempfile.mkdtemp()) / "flowers.csv"
>>> _ = path.write_text('"petal, cm";sepal;kind\\n1.5;2;a\\n0.5;1;b\\n')
>>> table = read_csv(path, label_column="kind")
>>> table.X.tolist(), table.y.tolist(), table.feature_names
([[1.5, 2.0], [0.5, 1.0]], ['a', 'b'], ['petal, cm', 'sepal'])
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from .delimited import (
    DELIMITERS,
    MISSING,
    CsvError,
    Rows,
    _delimiter_name,
    _is_missing,
    _is_number,
    read_rows,
)

__all__ = [
    "DELIMITERS",
    "IMPUTE_HINT",
    "IMPUTE_STRATEGIES",
    "MISSING",
    "CsvError",
    "CsvTable",
    "Rows",
    "fill_missing",
    "impute_values",
    "read_csv",
    "read_labels",
    "read_rows",
]

#: What :func:`impute_values` can fill missing feature cells with.
IMPUTE_STRATEGIES = ("mean", "median", "zero")
#: What the message about a missing feature cell says to do, by default.
IMPUTE_HINT = (
    "fill it in, or pass --impute mean, median or zero to fill missing features "
    "from the training rows"
)


@dataclass
class CsvTable:
    """Features and labels read from a CSV file.

    Attributes
    ----------
    X : numpy.ndarray of float64, shape (n, d)
        Features; ``NaN`` where a cell is missing (only when missing cells
        were allowed).
    y : numpy.ndarray or None
        Labels: int64 when every label is a whole number, float64 for other
        numbers, else str. ``None`` without a label column.
    feature_names : list of str or None
        Header names of the feature columns, in order (``None`` without a header).
    label_name : str or None
        Header name of the label column.
    label_index : int or None
        0-based position of the label column in the file.
    feature_columns : list of int
        0-based positions of the feature columns in the file.
    rows : Rows
        The cells, for messages that name lines (``rows.where``).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.tabular import read_csv
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("1,2,yes\\n3,4,no\\n")
    >>> t = read_csv(path)
    >>> t.X.shape, t.y.tolist(), t.feature_names, t.label_index
    ((2, 2), ['yes', 'no'], None, 2)
    """

    X: np.ndarray
    y: np.ndarray | None
    feature_names: list[str] | None
    label_name: str | None
    label_index: int | None
    feature_columns: list[int]
    rows: Rows = field(repr=False)

    @property
    def n_missing(self) -> int:
        """Number of missing feature cells (see :meth:`first_missing`)."""
        return int(np.isnan(self.X).sum())

    def first_missing(self) -> str | None:
        """``"file: line N, column 'c'"`` of the first missing feature cell, or ``None``.

        Examples
        --------
        >>> import pathlib, tempfile
        >>> from anyglm.tabular import read_csv
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
        >>> _ = path.write_text("a,b,y\\n1,2,0\\n3,,1\\n")
        >>> t = read_csv(path, allow_missing=True)
        >>> t.first_missing().endswith("d.csv: line 3, column 'b'"), t.n_missing
        (True, 1)
        """
        bad = np.argwhere(np.isnan(self.X))
        if bad.size == 0:
            return None
        r, c = (int(v) for v in bad[0])
        return self.rows.where(r, self.feature_columns[c])


def _parse_features(
    rows: Rows, columns: Sequence[int], allow_missing: bool, hint: str, missing_hint: str
) -> np.ndarray:
    n = len(rows.cells)
    X = np.empty((n, len(columns)), dtype=np.float64)
    n_missing = 0
    first_missing: tuple[int, int, str] | None = None
    for j, col in enumerate(columns):
        values = [r[col] for r in rows.cells]
        try:
            X[:, j] = np.asarray(values, dtype=np.float64)
        except ValueError:
            bad_rows: Sequence[int] = range(n)  # the slow path finds the cell to name
        else:
            bad_rows = np.flatnonzero(~np.isfinite(X[:, j])).tolist()  # "nan", "inf"
        for i in bad_rows:
            v = values[i]
            if _is_missing(v):
                X[i, j] = np.nan
                n_missing += 1
                # Report the first missing cell in reading order: top line, then left.
                if first_missing is None or (i, col) < first_missing[:2]:
                    first_missing = (i, col, v)
                continue
            try:
                number = float(v)
            except ValueError:
                text_column = not any(_is_number(w) for w in values)
                extra = hint.format(col=_spec(rows, col)) if text_column and hint else ""
                raise CsvError(
                    f"{rows.where(i, col)}: {v!r} is not a number; features must be numeric" + extra
                ) from None
            if not np.isfinite(number):
                raise CsvError(
                    f"{rows.where(i, col)}: {v!r} is not a finite number; features must be finite"
                )
            X[i, j] = number
    if first_missing is not None and not allow_missing:
        i, col, v = first_missing
        what = "an empty cell" if v == "" else f"a missing value ({v!r})"
        more = f" ({n_missing} missing cells in all)" if n_missing > 1 else ""
        raise CsvError(f"{rows.where(i, col)}: {what}{more}; {missing_hint}")
    return X


def _spec(rows: Rows, col: int) -> str:
    return rows.header[col] if rows.header is not None else str(col)


def _parse_labels(rows: Rows, col: int, label_note: str) -> np.ndarray:
    values = [r[col] for r in rows.cells]
    for i, v in enumerate(values):
        if _is_missing(v):
            what = "empty" if v == "" else f"missing ({v!r})"
            raise CsvError(
                f"{rows.where(i, col)}: the label is {what}; every row needs one{label_note}"
            )
    try:
        y = np.asarray(values, dtype=np.float64)
    except ValueError:
        return np.asarray(values, dtype=str)  # class names
    if np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        return y.astype(np.int64)  # "1.0" in a CSV is the class 1
    return y


def read_csv(
    path: str | os.PathLike[str] | Rows,
    *,
    label_column: str | int | None = -1,
    allow_missing: bool = False,
    label_is_default: bool = False,
    feature_columns: Sequence[str | int] | None = None,
    missing_hint: str = IMPUTE_HINT,
    delimiter: str | None = None,
) -> CsvTable:
    """Read a CSV file into numeric features and a label column.

    Parameters
    ----------
    path : str, path-like or Rows
        The file (or its cells from :func:`read_rows`).
    label_column : str, int or None, default=-1
        The label column by header name or 0-based index (negative from the
        end); ``None``: every column is a feature.
    allow_missing : bool, default=False
        Keep missing feature cells as ``NaN`` instead of raising.
    label_is_default : bool, default=False
        The caller did not choose ``label_column``: messages about labels say
        which column was used and how to pick another.
    feature_columns : sequence of str or int, optional
        The feature columns (header names or 0-based indexes), in this order;
        by default every column but the label.
    missing_hint : str, optional
        What the message about a missing feature cell tells the user to do.
    delimiter : str, optional
        See :func:`read_rows`.

    Returns
    -------
    CsvTable

    Raises
    ------
    CsvError
        A ragged row, a non-numeric or (unless allowed) missing feature cell,
        a missing label, an unknown label column. One line naming file, line
        and column.

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.tabular import read_csv
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "d.csv"
    >>> _ = path.write_text("a,b,y\\n1,NA,0\\n2,3,1\\n")
    >>> from anyglm.tabular import CsvError
    >>> try:
    ...     read_csv(path)
    ... except CsvError as err:
    ...     print(err)
    /...d.csv: line 2, column 'b': a missing value ('NA'); fill it in, ...
    >>> t = read_csv(path, allow_missing=True)
    >>> t.X.tolist(), t.y.tolist(), t.label_name
    ([[1.0, nan], [2.0, 3.0]], [0, 1], 'y')
    """
    rows = path if isinstance(path, Rows) else read_rows(path, delimiter=delimiter)
    width = rows.width
    label: int | None = None if label_column is None else rows.column_index(label_column)
    label_note = ""
    hint = ""
    if label is not None and label_is_default:
        label_note = (
            f" (the labels come from {rows.column_name(label)}, the last, by default; "
            "choose the label column with --label-column NAME or INDEX)"
        )
        hint = "; if it holds the labels, pass --label-column {col}"
    if feature_columns is None:
        features = [i for i in range(width) if i != label]
    else:
        features = [rows.column_index(c, option="feature column") for c in feature_columns]
    if not features:
        raise CsvError(f"{rows.path}: has only the label column, no feature columns")
    X = _parse_features(rows, features, allow_missing, hint, missing_hint)
    y = None if label is None else _parse_labels(rows, label, label_note)
    return CsvTable(
        X=X,
        y=y,
        feature_names=None if rows.header is None else [rows.header[i] for i in features],
        label_name=None if rows.header is None or label is None else rows.header[label],
        label_index=label,
        feature_columns=features,
        rows=rows,
    )


def read_labels(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a file of labels, one per line.

    A first line of text above numbers is taken as a header; a file of class
    names cannot show one, so it must not have a header line. Returns int64
    when every label is a whole number, float64 for other numbers, else str.

    Raises
    ------
    CsvError
        The file has more than one column, or a missing label (naming its line).

    Examples
    --------
    >>> import pathlib, tempfile
    >>> from anyglm.tabular import read_labels
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "y.txt"
    >>> _ = path.write_text("label\\n1\\n0\\n1\\n")
    >>> read_labels(path).tolist()
    [1, 0, 1]
    """
    rows = read_rows(path)
    if rows.width != 1:
        raise CsvError(
            f"{rows.path}: has {rows.width} columns (delimiter "
            f"{_delimiter_name(rows.delimiter)}); a labels file needs one label per line"
        )
    return _parse_labels(rows, 0, "")


def impute_values(X: np.ndarray, strategy: str, names: Sequence[str] | None = None) -> np.ndarray:
    """Per-column fill values for the missing (``NaN``) cells of ``X``, from its other cells.

    Parameters
    ----------
    X : numpy.ndarray, shape (n, d)
    strategy : {"mean", "median", "zero"}
    names : sequence of str, optional
        Column names for messages.

    Raises
    ------
    ValueError
        An unknown strategy, or a column with no value at all (mean, median).

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.tabular import impute_values
    >>> X = np.array([[1.0, np.nan], [3.0, 4.0], [8.0, 6.0]])
    >>> impute_values(X, "mean").tolist(), impute_values(X, "median").tolist()
    ([4.0, 5.0], [3.0, 5.0])
    """
    if strategy not in IMPUTE_STRATEGIES:
        raise ValueError(
            f"unknown impute strategy {strategy!r}; choose one of {', '.join(IMPUTE_STRATEGIES)}"
        )
    d = X.shape[1]
    if strategy == "zero":
        return np.zeros(d, dtype=np.float64)
    empty = np.flatnonzero(np.all(np.isnan(X), axis=0))
    if empty.size:
        col = int(empty[0])
        name = repr(names[col]) if names is not None else str(col + 1)
        raise ValueError(
            f"column {name} has no value in the training rows; --impute {strategy} cannot "
            "fill it: drop the column or use --impute zero"
        )
    reduce = np.nanmean if strategy == "mean" else np.nanmedian
    return np.asarray(reduce(X, axis=0), dtype=np.float64)


def fill_missing(X: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of ``X`` with each column's ``NaN`` cells set to ``values[column]``.

    Examples
    --------
    >>> import numpy as np
    >>> from anyglm.tabular import fill_missing
    >>> X = np.array([[1.0, np.nan]])
    >>> fill_missing(X, np.array([0.0, 5.0])).tolist(), X.tolist()
    ([[1.0, 5.0]], [[1.0, nan]])
    """
    values = np.asarray(values, dtype=np.float64)
    if values.shape != (X.shape[1],):
        raise ValueError(f"{values.shape[0]} fill values for {X.shape[1]} columns")
    return np.where(np.isnan(X), values, X)
