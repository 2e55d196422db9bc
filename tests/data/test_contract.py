"""The data contract: every bad input is reported with file, row, column and rule."""

from pathlib import Path

import pandas as pd
import pytest

from analysis.data.contract import find_inputs, read_panel, read_plan_dates
from analysis.data.problems import DataValidationError

HEADER = "province,indicator,month,numerator,denominator,value\n"


def good_rows(province="安徽", indicator="32", months=("2023-01", "2023-02", "2023-03")):
    return "".join(f"{province},{indicator},{m},3,1000,\n" for m in months)


def write(tmp_path: Path, text: str, name="panel.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list:
    with pytest.raises(DataValidationError) as info:
        read_panel(path)
    return info.value.problems


def test_valid_panel_is_canonicalised(tmp_path):
    text = HEADER + good_rows() + "Anhui,平均急救响应时间,2023-01,,120,14.5\n"
    panel = read_panel(write(tmp_path, text))
    assert set(panel["province"]) == {"340000"}
    assert panel.loc[panel["indicator"] == 9, "value"].tolist() == [14.5]
    assert panel.loc[panel["indicator"] == 32, "numerator"].tolist() == [3, 3, 3]
    assert str(panel["month"].iat[0]) == "2023-01"
    assert panel["source_row"].tolist() == [5, 2, 3, 4]  # sorted by indicator; rows point into the file


def test_utf8_bom_and_column_case_are_accepted(tmp_path):
    path = tmp_path / "panel.csv"
    path.write_bytes(("\ufeff" + HEADER.upper() + good_rows()).encode("utf-8"))
    assert len(read_panel(path)) == 3


@pytest.mark.parametrize(
    "row, column, rule",
    [
        ("火星,32,2023-04,3,1000,", "province", "unknown-province"),
        ("安徽,99,2023-04,3,1000,", "indicator", "unknown-indicator"),
        ("安徽,1,2023-04,3,1000,", "indicator", "status-indicator"),
        ("安徽,32,April 2023,3,1000,", "month", "bad-month"),
        ("安徽,32,2023-04,-3,1000,", "numerator", "negative-count"),
        ("安徽,32,2023-04,2.5,1000,", "numerator", "non-integer-count"),
        ("安徽,32,2023-04,abc,1000,", "numerator", "not-a-number"),
        ("安徽,32,2023-04,,1000,", "numerator", "missing-count"),
        ("安徽,32,2023-04,1001,1000,", "numerator", "numerator-exceeds-denominator"),
        ("安徽,32,2023-04,3,0,", "denominator", "zero-denominator"),
        ("安徽,9,2023-04,,100,", "value", "missing-value"),
    ],
)
def test_each_bad_row_is_located(tmp_path, row, column, rule):
    path = write(tmp_path, HEADER + good_rows() + row + "\n")
    found = problems(path)
    match = [p for p in found if p.rule == rule]
    assert match, f"expected a {rule} problem, got {[p.rule for p in found]}"
    assert match[0].row == 5 and match[0].column == column and match[0].file == str(path)
    assert str(path) in str(match[0]) and "row 5" in str(match[0])


def test_duplicate_month_names_both_rows(tmp_path):
    path = write(tmp_path, HEADER + good_rows() + "340000,32,2023-03,4,1000,\n")
    dup = [p for p in problems(path) if p.rule == "duplicate-month"]
    assert sorted(p.row for p in dup) == [4, 5]
    assert "rows 4, 5" in dup[0].message


def test_missing_month_inside_a_series_is_reported(tmp_path):
    path = write(tmp_path, HEADER + good_rows(months=("2023-01", "2023-02", "2023-05")))
    gap = [p for p in problems(path) if p.rule == "missing-months"]
    assert len(gap) == 1 and "2023-03, 2023-04" in gap[0].message


def test_missing_required_column(tmp_path):
    path = write(tmp_path, "province,month,numerator\n安徽,2023-01,3\n")
    found = problems(path)
    assert [(p.rule, p.column, p.row) for p in found] == [("missing-column", "indicator", 1)]


def test_all_problems_are_reported_at_once(tmp_path):
    path = write(tmp_path, HEADER + "火星,32,2023-01,3,10,\n安徽,32,2023-02,30,10,\n安徽,99,2023-03,1,1,\n")
    assert {p.rule for p in problems(path)} >= {"unknown-province", "numerator-exceeds-denominator", "unknown-indicator"}


def test_error_table_is_tidy(tmp_path):
    with pytest.raises(DataValidationError) as info:
        read_panel(write(tmp_path, HEADER + "火星,32,2023-01,3,10,\n"))
    frame = info.value.to_frame()
    # The original seven columns come first; sheet, fix and the series follow.
    assert list(frame.columns) == ["file", "row", "column", "value", "rule", "message", "severity", "sheet", "fix",
                                   "province", "indicator", "month"]


def test_find_inputs_in_a_directory(tmp_path):
    write(tmp_path, HEADER + good_rows())
    write(tmp_path, "province,start_month\n安徽,2023-08\n", name="plan_dates.csv")
    panel, plan = find_inputs(tmp_path)
    assert panel.name == "panel.csv" and plan.name == "plan_dates.csv"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no panel.csv"):
        find_inputs(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="no such file"):
        find_inputs(tmp_path / "nothing")


def test_plan_dates_default_and_errors(tmp_path):
    default = pd.Period("2023-06", "M")
    good = write(tmp_path, "province,start_month\n安徽省,2023-08\n", name="plan_dates.csv")
    starts = read_plan_dates(good, ["340000", "110000"], default=default)
    assert starts == {"340000": pd.Period("2023-08", "M"), "110000": default}
    bad = write(tmp_path, "province,start_month\n安徽,2023-08\nAnhui,2023-09\n火星,2023-07\n", name="bad.csv")
    with pytest.raises(DataValidationError) as info:
        read_plan_dates(bad, ["340000"], default=default)
    assert [(p.row, p.rule) for p in info.value.problems] == [(3, "duplicate-province"), (4, "unknown-province")]
