"""The CSV reader (anyglm.tabular): delimiters, quoting, headers, missing cells, messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from anyglm.tabular import (
    CsvError,
    fill_missing,
    impute_values,
    read_csv,
    read_labels,
    read_rows,
)


def write(tmp_path: Path, text: str, name: str = "d.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# -- delimiters and quoting ------------------------------------------------------------------


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_found(tmp_path: Path, delimiter: str) -> None:
    rows = [["a", "b", "y"], ["1.5", "2", "0"], ["3", "-4e-1", "1"], ["5", "6", "0"]]
    path = write(tmp_path, "".join(delimiter.join(r) + "\n" for r in rows))
    table = read_csv(path)
    assert table.rows.delimiter == delimiter
    assert table.feature_names == ["a", "b"] and table.label_name == "y"
    np.testing.assert_array_equal(table.X, [[1.5, 2.0], [3.0, -0.4], [5.0, 6.0]])
    assert table.y.tolist() == [0, 1, 0] and table.y.dtype == np.int64


def test_quoted_comma_in_a_header_is_one_name(tmp_path: Path) -> None:
    path = write(tmp_path, '"height, cm",weight,label\n170,60,1\n160,"55",0\n')
    table = read_csv(path)
    assert table.feature_names == ["height, cm", "weight"]
    np.testing.assert_array_equal(table.X, [[170.0, 60.0], [160.0, 55.0]])


def test_semicolon_file_with_a_quoted_semicolon_and_decimal_points(tmp_path: Path) -> None:
    path = write(tmp_path, 'x;"a; b";y\n0.5;1;no\n1.5;2;yes\n')
    table = read_csv(path, label_column="y")
    assert table.rows.delimiter == ";"
    assert table.feature_names == ["x", "a; b"]
    assert table.y.tolist() == ["no", "yes"]


def test_sniffer_fallback_on_a_ragged_sample_still_names_the_line(tmp_path: Path) -> None:
    # csv.Sniffer gives up on a sample with a ragged row; the delimiter is still found
    # and the ragged row is reported with its line.
    path = write(tmp_path, "a;b;y\n1;2;0\n3;4\n5;6;1\n")
    with pytest.raises(CsvError) as err:
        read_rows(path)
    message = str(err.value)
    assert message == (
        f"{path}: line 3 has 2 fields, expected 3 (as in the header on line 1; delimiter ';')"
    )


def test_explicit_delimiter_and_a_bad_one(tmp_path: Path) -> None:
    path = write(tmp_path, "1|2.5|0\n3|4.5|1\n")
    table = read_csv(path, delimiter="|")
    assert table.X.tolist() == [[1.0, 2.5], [3.0, 4.5]]
    with pytest.raises(CsvError, match="only the label column"):  # "," honoured: one column
        read_csv(path, delimiter=",")
    with pytest.raises(CsvError, match="one character"):
        read_rows(path, delimiter="||")


def test_byte_order_mark_blank_lines_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbfa,y\r\n1,0\r\n\r\n   \r\n2,1\r\n")
    rows = read_rows(path)
    assert rows.header == ["a", "y"]  # no BOM glued to the first name
    assert rows.lines == [2, 5]  # editor line numbers, blank lines skipped
    assert rows.cells == [["1", "0"], ["2", "1"]]


def test_a_quoted_field_over_two_lines_counts_lines_like_an_editor(tmp_path: Path) -> None:
    path = write(tmp_path, 'name,a,y\n"two\nlines",1,0\nok,x,1\n', name="multi.csv")
    with pytest.raises(CsvError, match=r"multi\.csv: line 4, column 'a': 'x' is not a number"):
        read_csv(path, feature_columns=["a"])


# -- header detection ------------------------------------------------------------------------


def test_no_header_with_text_labels_keeps_the_first_row(tmp_path: Path) -> None:
    path = write(tmp_path, "1,2,setosa\n3,4,virginica\n")
    table = read_csv(path)
    assert table.rows.header is None and table.feature_names is None
    assert table.X.shape == (2, 2) and table.y.tolist() == ["setosa", "virginica"]


def test_header_only_file_and_empty_file(tmp_path: Path) -> None:
    with pytest.raises(CsvError, match=r"only a header \(line 1\), no data rows"):
        read_rows(write(tmp_path, "a,b,y\n", "h.csv"))
    with pytest.raises(CsvError, match="the file is empty"):
        read_rows(write(tmp_path, "\n\n", "e.csv"))


def test_not_utf8_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,y\n1,0\n2,caf\xe9\n")
    with pytest.raises(CsvError, match=r"latin\.csv: line 3: not UTF-8"):
        read_rows(path)


# -- problems in cells ------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["", "NA", "nan", "N/A", "null", "None", "NaN"])
def test_a_missing_feature_is_an_error_naming_file_line_and_column(
    tmp_path: Path, cell: str
) -> None:
    path = write(tmp_path, f"a,b,y\n1,2,0\n3,{cell},1\n4,5,0\n")
    with pytest.raises(CsvError) as err:
        read_csv(path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: line 3, column 'b': ")
    assert ("an empty cell" if cell == "" else f"a missing value ({cell!r})") in message
    assert "--impute" in message


def test_missing_cells_are_counted_and_kept_as_nan_when_allowed(tmp_path: Path) -> None:
    path = write(tmp_path, "1,,0\n,2,1\n3,4,0\n")  # no header: columns by position
    message = r"line 1, column 2: an empty cell \(2 missing cells in all\)"
    with pytest.raises(CsvError, match=message):  # the first in reading order
        read_csv(path)
    table = read_csv(path, allow_missing=True)
    assert np.isnan(table.X[0, 1]) and np.isnan(table.X[1, 0]) and table.n_missing == 2
    assert table.first_missing() == f"{path}: line 1, column 2"


def test_a_missing_label_is_always_an_error_and_never_a_class(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n1,yes\n2,\n3,no\n")
    with pytest.raises(CsvError) as err:
        read_csv(path, allow_missing=True)
    assert str(err.value) == f"{path}: line 3, column 'y': the label is empty; every row needs one"
    with pytest.raises(CsvError, match=r"the label is missing \('NA'\).*--label-column"):
        read_csv(write(tmp_path, "1,yes\n2,NA\n", "n.csv"), label_is_default=True)


def test_a_text_feature_names_the_value(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,y\n1,2,0\n3,three,1\n")
    with pytest.raises(CsvError) as err:
        read_csv(path)
    assert str(err.value) == (
        f"{path}: line 3, column 'b': 'three' is not a number; features must be numeric"
    )


def test_the_default_label_column_hints_at_the_text_column(tmp_path: Path) -> None:
    path = write(tmp_path, "kind,a,b\nx,1,2\ny,3,4\n")
    with pytest.raises(CsvError, match=r"'x' is not a number.*pass --label-column kind$"):
        read_csv(path, label_is_default=True)


def test_infinite_feature_is_named(tmp_path: Path) -> None:
    path = write(tmp_path, "a,y\n1,0\ninf,1\n")
    with pytest.raises(CsvError, match=r"line 3, column 'a': 'inf' is not a finite number"):
        read_csv(path)


# -- label and feature columns ---------------------------------------------------------------


def test_label_column_by_name_index_and_negative_index(tmp_path: Path) -> None:
    path = write(tmp_path, "y,a,b\n0,1,2\n1,3,4\n")
    for spec in ("y", "0", 0, -3):
        table = read_csv(path, label_column=spec)
        assert table.label_index == 0 and table.feature_names == ["a", "b"]
        assert table.y.tolist() == [0, 1]


def test_unknown_and_out_of_range_label_columns(tmp_path: Path) -> None:
    path = write(tmp_path, "a,b,label\n1,2,0\n")
    with pytest.raises(CsvError, match=r"'target' not found .*columns: a, b, label"):
        read_csv(path, label_column="target")
    with pytest.raises(CsvError, match=r"7 is out of range.*3 columns"):
        read_csv(path, label_column=7)
    no_header = write(tmp_path, "1,2,0\n", "nh.csv")
    with pytest.raises(CsvError, match="the file has no header"):
        read_csv(no_header, label_column="label")


def test_feature_columns_by_name_in_a_new_order(tmp_path: Path) -> None:
    path = write(tmp_path, "b,extra,a,y\n2,9,1,0\n4,9,3,1\n")
    table = read_csv(path, label_column=None, feature_columns=["a", "b"])
    assert table.X.tolist() == [[1.0, 2.0], [3.0, 4.0]] and table.y is None


def test_labels_kinds(tmp_path: Path) -> None:
    assert read_csv(write(tmp_path, "1,1.0\n2,0.0\n", "a.csv")).y.dtype == np.int64
    assert read_csv(write(tmp_path, "1,1.5\n2,0.25\n", "b.csv")).y.dtype == np.float64
    y = read_csv(write(tmp_path, "1, cat \n2,dog\n", "c.csv")).y
    assert y.tolist() == ["cat", "dog"]  # surrounding blanks are not part of a name


def test_read_labels(tmp_path: Path) -> None:
    assert read_labels(write(tmp_path, "y\n1\n0\n", "y.txt")).tolist() == [1, 0]
    assert read_labels(write(tmp_path, "cat\ndog\n", "n.txt")).tolist() == ["cat", "dog"]
    with pytest.raises(CsvError, match=r"gap\.csv: line 3, column 1: the label is missing"):
        read_labels(write(tmp_path, "1\n\nNA\n", "gap.csv"))
    with pytest.raises(CsvError, match="has 2 columns"):
        read_labels(write(tmp_path, "1,2\n3,4\n", "two.csv"))


# -- imputation --------------------------------------------------------------------------------


def test_impute_values_and_fill(tmp_path: Path) -> None:
    X = np.array([[1.0, np.nan, 0.0], [2.0, 4.0, np.nan], [6.0, 8.0, 3.0]])
    before = X.copy()
    np.testing.assert_array_equal(impute_values(X, "mean"), [3.0, 6.0, 1.5])
    np.testing.assert_array_equal(impute_values(X, "median"), [2.0, 6.0, 1.5])
    np.testing.assert_array_equal(impute_values(X, "zero"), [0.0, 0.0, 0.0])
    filled = fill_missing(X, impute_values(X, "mean"))
    assert filled[0, 1] == 6.0 and filled[1, 2] == 1.5 and not np.isnan(filled).any()
    np.testing.assert_array_equal(X, before)  # the input is left alone
    with pytest.raises(ValueError, match="unknown impute strategy 'mode'"):
        impute_values(X, "mode")
    empty = np.array([[1.0, np.nan], [2.0, np.nan]])
    with pytest.raises(ValueError, match="column 'b' has no value"):
        impute_values(empty, "median", names=["a", "b"])
    assert impute_values(empty, "zero").tolist() == [0.0, 0.0]
