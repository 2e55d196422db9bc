"""The comparison-series table (comparison_series.csv): read as the synthetic generator writes
it, and every kind of bad input refused with the file, row, column, rule and fix."""

import pandas as pd
import pytest

from analysis.data.comparison_series import COMPARISON_SERIES_COLUMNS, read_comparison_series
from analysis.data.problems import DataValidationError
from analysis.data.synthetic import generate, write

HEADER = "province,series,measure,month,numerator,denominator,value\n"


def _problems(tmp_path, body: str, header: str = HEADER) -> list[tuple[int | None, str | None, str]]:
    path = tmp_path / "comparison_series.csv"
    path.write_text(header + body, encoding="utf-8")
    with pytest.raises(DataValidationError) as caught:
        read_comparison_series(path)
    assert isinstance(caught.value, ValueError) and str(path) in str(caught.value)
    return [(p.row, p.column, p.rule) for p in caught.value.problems]


def test_the_synthetic_comparison_series_are_read_back_exactly(tmp_path):
    data = generate(5, provinces=["340000", "540000"], indicators=[14, 28])
    paths = write(data, tmp_path)
    table = read_comparison_series(paths["comparison_series"])
    assert list(table.columns) == COMPARISON_SERIES_COLUMNS and len(table) == len(data.comparison_series)
    assert set(table["series"]) == set(data.comparisons["comparison"])
    assert dict(zip(table["series"], table["measure"])) == {"14 in hospitals outside the first wave": "proportion",
                                                             "28 in hospitals outside the first wave": "mean"}
    expected = data.comparison_series.sort_values(["series", "province", "month"], ignore_index=True)
    assert (table["month"].astype(str) == expected["month"]).all()
    pd.testing.assert_series_equal(table["numerator"], expected["numerator"].astype(float), check_names=False)
    pd.testing.assert_series_equal(table["value"], expected["value"], check_names=False)
    assert table["source_row"].min() == 2 and table["source_row"].is_unique


def test_chinese_headers_and_measure_names_are_understood(tmp_path):
    path = tmp_path / "comparison_series.csv"
    path.write_text("省份,比较序列,指标类型,月份,分子,分母\n安徽,非首批医院日间手术,比例,2023年6月,12,80\n", encoding="utf-8")
    table = read_comparison_series(path)
    assert table.loc[0, ["province", "series", "measure"]].tolist() == ["340000", "非首批医院日间手术", "proportion"]


@pytest.mark.parametrize("body,expected", [
    ("火星,A,proportion,2023-06,1,8,\n", [(2, "province", "unknown-province")]),
    (",A,proportion,2023-06,1,8,\n", [(2, "province", "unknown-province")]),
    ("安徽,,proportion,2023-06,1,8,\n", [(2, "series", "bad-series-name")]),
    ("安徽,28,mean,2023-06,,,1.02\n", [(2, "series", "bad-series-name")]),
    ("安徽,A,share,2023-06,1,8,\n", [(2, "measure", "unknown-measure")]),
    ("安徽,A,proportion,2023-13,1,8,\n", [(2, "month", "bad-month")]),
    ("安徽,A,proportion,2023-06,x,8,\n", [(2, "numerator", "not-a-number")]),
    ("安徽,A,proportion,2023-06,,8,\n", [(2, "numerator", "missing-count")]),
    ("安徽,A,rate,2023-06,1,-8,\n", [(2, "denominator", "negative-count")]),
    ("安徽,A,rate,2023-06,1.5,8,\n", [(2, "numerator", "non-integer-count")]),
    ("安徽,A,proportion,2023-06,1,0,\n", [(2, "denominator", "zero-denominator")]),
    ("安徽,A,proportion,2023-06,9,8,\n", [(2, "numerator", "numerator-exceeds-denominator")]),
    ("安徽,A,proportion,2023-06,1,8,12.5\n", [(2, "value", "comparison-items")]),
    ("安徽,A,mean,2023-06,3,8,1.02\n", [(2, "numerator", "comparison-items")]),
    ("安徽,A,mean,2023-06,,8,\n", [(2, "value", "missing-value")]),
    ("安徽,A,mean,2023-06,,,12%\n", [(2, "value", "percent-not-allowed")]),
    ("安徽,A,mean,2023-06,,,1.0\n安徽,A,proportion,2023-07,1,8,\n",
     [(3, "measure", "mixed-measure")]),
    ("安徽,A,mean,2023-06,,,1.0\n安徽,A,mean,2023-06,,,1.1\n",
     [(2, "month", "duplicate-month"), (3, "month", "duplicate-month")]),
    ("安徽,A,mean,2023-06,,,1.0\n安徽,A,mean,2023-08,,,1.1\n", [(None, "month", "missing-months")]),
])
def test_bad_rows_are_refused_with_row_column_and_rule(tmp_path, body, expected):
    assert sorted(_problems(tmp_path, body), key=str) == sorted(expected, key=str)


def test_a_missing_column_and_an_empty_file_are_refused(tmp_path):
    assert _problems(tmp_path, "安徽,A,2023-06,1,8\n", header="province,series,month,numerator,denominator\n") == [
        (1, "measure", "missing-column")]
    assert _problems(tmp_path, "", header="") == [(None, None, "empty")]


def test_every_problem_is_reported_at_once_with_its_fix(tmp_path):
    path = tmp_path / "comparison_series.csv"
    path.write_text(HEADER + "火星,A,proportion,2023-06,1,8,\n安徽,B,share,2023-06,1,8,\n", encoding="utf-8")
    with pytest.raises(DataValidationError, match=r"2 problem\(s\)") as caught:
        read_comparison_series(path)
    message = str(caught.value)
    assert "row 2, column 'province' (value '火星')" in message and "row 3, column 'measure' (value 'share')" in message
    assert "fix: write proportion, rate or mean" in message
