"""Input that must be understood: names, layouts, encodings, months, numbers, file types.

Every test reads the same small series written in a different way and checks that the
canonical panel is exactly the reference one (nothing lost, nothing guessed).
"""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.data.quality import CheckSettings, check_inputs
from analysis.data.readers import header_roles, item_role
from analysis.data.values import parse_month, parse_number, unit_scale
from analysis.registry import get_indicator

CONTRACT = CheckSettings(analysis_checks=False)
KEYS = ["province", "indicator", "month", "numerator", "denominator", "value"]


def canonical(*paths, **kwargs) -> pd.DataFrame:
    report = check_inputs(list(paths), settings=CONTRACT, **kwargs)
    assert report.usable, report.to_text()
    return report.panel[KEYS]


def reference() -> pd.DataFrame:
    """Anhui (340000), perioperative mortality (32) 2023-06..08 and response time (9) 2023-06."""
    return pd.DataFrame({
        "province": ["340000"] * 4, "indicator": [9, 32, 32, 32],
        "month": pd.PeriodIndex(["2023-06", "2023-06", "2023-07", "2023-08"], freq="M"),
        "numerator": [np.nan, 3.0, 0.0, 1234.0], "denominator": [120.0, 1000.0, 1000.0, 56789.0],
        "value": [14.5, np.nan, np.nan, np.nan],
    }).astype({"province": str})


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


ENGLISH = ("province,indicator,month,numerator,denominator,value\n"
           "340000,32,2023-06,3,1000,\n340000,32,2023-07,0,1000,\n340000,32,2023-08,1234,56789,\n"
           "340000,9,2023-06,,120,14.5\n")


def test_the_plain_contract_reads_as_the_reference(tmp_path):
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", ENGLISH)), reference())


# -- column names ----------------------------------------------------------------------------


@pytest.mark.parametrize("header", [
    "省份,指标,月份,分子,分母,数值",
    " 分母 ,数值,  月份,省份 ,分子,指标",  # any order, stray spaces
    "ＰＲＯＶＩＮＣＥ,Ｉｎｄｉｃａｔｏｒ,ＭＯＮＴＨ,numerator,DENOMINATOR,Value",  # full-width, any case
    "省份 / province,指标 / indicator,月份 / month,分子（numerator）,分母 (denominator),数值 value",  # bilingual
    "省 份,指 标,年月,分子,分母,指标值",
])
def test_column_names_in_english_or_chinese_in_any_order(tmp_path, header):
    names = [c.strip() for c in header.split(",")]
    order = [next(k for k in KEYS if {k} == header_roles(n)) for n in names]
    rows = {"province": ["340000"] * 4, "indicator": ["32", "32", "32", "9"],
            "month": ["2023-06", "2023-07", "2023-08", "2023-06"], "numerator": ["3", "0", "1234", ""],
            "denominator": ["1000", "1000", "56789", "120"], "value": ["", "", "", "14.5"]}
    body = "".join(",".join(rows[k][i] for k in order) + "\n" for i in range(4))
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", header + "\n" + body)), reference())


def test_header_roles_never_guess():
    assert header_roles("分子数") == {"numerator"}
    assert header_roles("分子/分母") == {"numerator", "denominator"}  # reported as ambiguous
    assert header_roles("numerators of the month") == set()
    assert header_roles("请按模板填写每个省份、指标和月份的分子与分母，并在提交前检查") == set()  # a sentence
    assert item_role("分子 numerator") == "numerator" and item_role("合计") is None


# -- provinces and indicators ----------------------------------------------------------------


@pytest.mark.parametrize("province", ["340000", "安徽省", "安徽", "Anhui", " anhui ", "ａｎｈｕｉ", "340000.0"])
def test_province_as_code_full_or_short_chinese_or_english(tmp_path, province):
    text = ENGLISH.replace("340000,", f"{province},")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text)), reference())


@pytest.mark.parametrize("indicator", ["32", "围术期死亡率", "Perioperative mortality", "perioperative  MORTALITY",
                                       "３２", "32.0"])
def test_indicator_as_number_chinese_or_english_name(tmp_path, indicator):
    text = ENGLISH.replace(",32,", f",{indicator},")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text)), reference())


def test_indicator_name_column_alone_or_with_the_number(tmp_path):
    text = ("省份,指标名称,月份,分子,分母,数值\n安徽,围术期死亡率,2023-06,3,1000,\n安徽,围术期死亡率,2023-07,0,1000,\n"
            "安徽,围术期死亡率,2023-08,1234,56789,\n安徽,平均急救响应时间,2023-06,,120,14.5\n")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text)), reference())
    both = text.replace("省份,指标名称,", "省份,指标,指标名称,").replace("安徽,围", "安徽,32,围").replace("安徽,平", "安徽,9,平")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "q.csv", both)), reference())


def test_an_ambiguous_indicator_name_is_an_error_not_a_guess(tmp_path, monkeypatch):
    registry = importlib.import_module("analysis.registry.indicators")
    table = dict(registry._lookup())
    # Give indicator 31 the normalised name of indicator 32 as a second name.
    table["围术期死亡率"] = (get_indicator(31), get_indicator(32))
    monkeypatch.setattr(registry, "_lookup", lambda: table)
    report = check_inputs(write(tmp_path, "p.csv", ENGLISH.replace(",32,", ",围术期死亡率,")), settings=CONTRACT)
    found = [(p.row, p.rule) for p in report.errors]
    assert found == [(2, "ambiguous-indicator"), (3, "ambiguous-indicator"), (4, "ambiguous-indicator")]
    assert "matches annex numbers [31, 32]" in report.errors[0].message


# -- months ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["2023-06", "2023-6", "2023/6", "2023/06", "202306", "2023年6月", "2023年06月",
                                  "２０２３年６月", "2023-06-01", "2023/6/1", "2023-06-01 00:00:00", "2023年6月1日",
                                  "2023.06", " 2023-06 "])
def test_month_forms(text):
    assert parse_month(text) == (pd.Period("2023-06", "M"), None)


@pytest.mark.parametrize("text, reason", [
    ("2023-13", "month 13 does not exist"), ("2023.1", "ambiguous"), ("2023-06-15", "first day of the month"),
    ("June 2023", "not a month"), ("45078", "Excel date serial"), ("1899-12", "outside"), ("23-06", "not a month"),
])
def test_months_that_are_refused(text, reason):
    month, why = parse_month(text)
    assert month is None and reason in why


def test_months_as_excel_date_cells_and_first_day_of_month(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["省份", "指标", "月份", "分子", "分母", "数值"])
    sheet.append(["安徽", 32, dt.datetime(2023, 6, 1), 3, 1000])
    sheet.append(["安徽", 32, dt.date(2023, 7, 1), 0, 1000])
    sheet.append(["安徽", 32, "2023-08-01", 1234, 56789])
    sheet.append(["安徽", 9, 202306, None, 120, 14.5])
    book.save(tmp_path / "p.xlsx")
    pd.testing.assert_frame_equal(canonical(tmp_path / "p.xlsx"), reference())


# -- numbers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, value", [("1,234", 1234.0), ("１２３４", 1234.0), ("1,234,567", 1234567.0),
                                         (" 12 ", 12.0), ("１，２３４", 1234.0), ("+5", 5.0), ("1.5e3", 1500.0),
                                         ("0", 0.0), ("−3", -3.0)])
def test_numbers_as_people_write_them(text, value):
    number, reason = parse_number(text)
    assert reason is None and number.value == value and number.mark is None


@pytest.mark.parametrize("text", ["1,5", "1,2345", "12,34,567", "abc", "1.2.3", "nan", "inf", "--1", "%", "1_000"])
def test_numbers_that_are_refused(text):
    number, reason = parse_number(text)
    assert number is None and reason.startswith("not a number")


def test_thousands_separators_and_full_width_digits_in_a_file(tmp_path):
    text = ENGLISH.replace("1234,56789", '"1,234","５６,７８９"').replace(",3,1000,", ",３,1000,")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text)), reference())


def test_percent_strings_become_counts_only_with_the_denominator(tmp_path):
    # 0.3% of 1000 is 3 perioperative deaths (the indicator is in per mille; % converts exactly).
    text = ENGLISH.replace("340000,32,2023-06,3,1000,", "340000,32,2023-06,,1000,0.3%").replace(
        "340000,32,2023-07,0,1000,", "340000,32,2023-07,,1000,0‰")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text.replace("0.3%", "3‰"))), reference())
    mixed = check_inputs(write(tmp_path, "q.csv", text), settings=CONTRACT)
    assert [p.rule for p in mixed.errors] == ["mixed-units"]


def test_a_value_in_the_indicators_own_unit_with_a_denominator(tmp_path):
    # Without a mark the value is in the indicator's unit: 3 (per mille) of 1000 is 3 deaths.
    text = ENGLISH.replace("340000,32,2023-06,3,1000,", "340000,32,2023-06,,1000,3")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text)), reference())


def test_percent_cells_of_excel_are_percentages(tmp_path):
    from openpyxl import Workbook

    book = Workbook()
    sheet = book.active
    sheet.append(["province", "indicator", "month", "denominator", "value"])
    sheet.append(["安徽", 29, "2023-06", 1250, 0.352])
    sheet["E2"].number_format = "0.0%"
    book.save(tmp_path / "p.xlsx")
    panel = canonical(tmp_path / "p.xlsx")
    assert panel[["numerator", "denominator"]].values.tolist() == [[440.0, 1250.0]]


def test_empty_cells_are_not_zeros(tmp_path):
    empty = check_inputs(write(tmp_path, "p.csv", ENGLISH.replace(",0,1000,", ",,1000,")), settings=CONTRACT)
    assert [(p.row, p.rule) for p in empty.errors] == [(3, "missing-count")]
    zero = canonical(write(tmp_path, "q.csv", ENGLISH))
    assert zero["numerator"].iat[2] == 0.0


def test_units_convert_only_where_the_unit_allows():
    assert unit_scale("%", get_indicator(29)) == 100 and unit_scale("‰", get_indicator(29)) == 1000
    assert unit_scale("例次/百出院人次", get_indicator(26)) == 100 and unit_scale("‰", get_indicator(26)) is None
    assert unit_scale("分钟", get_indicator(9)) == 1 and unit_scale("小时", get_indicator(9)) is None
    assert unit_scale("%", get_indicator(28)) is None


# -- encodings and file types ----------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030", "utf-16"])
def test_text_encodings(tmp_path, encoding):
    text = ("省份,指标,月份,分子,分母,数值\n安徽省,围术期死亡率,2023年6月,3,1000,\n安徽省,32,2023年7月,0,1000,\n"
            "安徽省,32,2023年8月,\"1,234\",56789,\n安徽省,平均急救响应时间,2023年6月,,120,14.5\n")
    pd.testing.assert_frame_equal(canonical(write(tmp_path, "p.csv", text, encoding)), reference())


@pytest.mark.parametrize("delimiter", ["\t", ";"])
def test_other_delimiters_and_title_rows(tmp_path, delimiter):
    text = "安徽省 2023 年医疗质量监测数据\n\n" + ENGLISH.replace(",", delimiter)
    path = write(tmp_path, "p.tsv" if delimiter == "\t" else "p.csv", text)
    pd.testing.assert_frame_equal(canonical(path), reference())


def test_parquet_with_typed_columns(tmp_path):
    frame = pd.DataFrame({"省份": ["安徽"] * 4, "指标": [32, 32, 32, 9],
                          "月份": pd.to_datetime(["2023-06-01", "2023-07-01", "2023-08-01", "2023-06-01"]),
                          "分子": pd.array([3, 0, 1234, None], dtype="Int64"), "分母": [1000, 1000, 56789, 120],
                          "数值": [np.nan, np.nan, np.nan, 14.5]})
    frame.to_parquet(tmp_path / "p.parquet")
    pd.testing.assert_frame_equal(canonical(tmp_path / "p.parquet"), reference())


def test_excel_with_several_sheets_and_reference_sheets(tmp_path):
    from analysis.data.template import write_template
    from openpyxl import load_workbook

    path = write_template(tmp_path / "t.xlsx", layout="dimension", province="340000", start="2023-06", end="2023-08")
    book = load_workbook(path)
    cells = {("急诊和日间医疗质量", 9, "2023-06"): (None, 120, 14.5), ("结果质量", 32, "2023-06"): (3, 1000, None),
             ("结果质量", 32, "2023-07"): (0, 1000, None), ("结果质量", 32, "2023-08"): (1234, 56789, None)}
    for (sheet, ind, month), (num, den, val) in cells.items():
        for row in book[sheet].iter_rows(min_row=2):
            if row[1].value == ind and row[4].value == month:
                row[5].value, row[6].value, row[7].value = num, den, val
    book.save(path)
    report = check_inputs(path, settings=CONTRACT)
    pd.testing.assert_frame_equal(report.panel[KEYS], reference())
    assert set(report.panel["source_sheet"]) == {"急诊和日间医疗质量", "结果质量"}
    assert {s.sheet for s in report.sources} == {"急诊和日间医疗质量", "医疗行为质量", "结果质量", "病历质量"}


def test_wide_layout_with_months_as_columns(tmp_path):
    text = ("省份,指标,项目,2023-06,2023/7,2023年8月\n安徽,32,分子,3,0,1234\n安徽,32,分母,1000,1000,56789\n"
            "安徽,9,数值,14.5,,\n安徽,9,分母,120,,\n")
    report = check_inputs(write(tmp_path, "p.csv", text), settings=CONTRACT)
    pd.testing.assert_frame_equal(report.panel[KEYS], reference())
    acc = report.accounting.set_index("row")
    assert acc.loc[2, "status"] == "merged" and acc.loc[2, "merged_with"] == "row 3"
    assert acc.loc[2, "months"] == "2023-06..2023-08" and acc.loc[2, "observations"] == 3


def test_wide_layout_of_means_needs_no_item_column(tmp_path):
    text = "province,indicator,2023-06,2023-07\n安徽,9,14.5,15.1\n"
    report = check_inputs(write(tmp_path, "p.csv", text), settings=CONTRACT)
    assert report.usable and report.panel["value"].tolist() == [14.5, 15.1]


def test_long_layout_with_an_item_column_merges_rows(tmp_path):
    text = ("省份,指标,月份,项目,数值\n安徽,32,2023-06,分子,3\n安徽,32,2023-06,分母,1000\n安徽,32,2023-07,分母,1000\n"
            "安徽,32,2023-07,分子,0\n安徽,32,2023-08,numerator,1234\n安徽,32,2023-08,denominator,56789\n"
            "安徽,9,2023-06,数值,14.5\n安徽,9,2023-06,分母,120\n")
    report = check_inputs(write(tmp_path, "p.csv", text), settings=CONTRACT)
    pd.testing.assert_frame_equal(report.panel[KEYS], reference())
    acc = report.accounting.set_index("row")
    assert acc["status"].eq("merged").all()
    assert acc.loc[4, "merged_with"] == "row 5" and acc.loc[8, "merged_with"] == "row 9"


def test_several_files_make_one_panel(tmp_path):
    first = write(tmp_path, "a.csv", "province,indicator,month,numerator,denominator\n安徽,32,2023-06,3,1000\n"
                                     "安徽,32,2023-07,0,1000\n")
    second = write(tmp_path, "b.csv", "省份,指标,月份,分子,分母,数值\nAnhui,32,2023-08,1234,56789,\nAnhui,9,2023-06,,120,14.5\n",
                   encoding="gbk")
    pd.testing.assert_frame_equal(canonical(first, second), reference())


def test_blank_rows_are_skipped_and_accounted(tmp_path):
    text = ENGLISH + "340000,32,2023-09,,,\n\n,,,,,\n"
    report = check_inputs(write(tmp_path, "p.csv", text), settings=CONTRACT)
    pd.testing.assert_frame_equal(report.panel[KEYS], reference())
    assert [p.rule for p in report.problems] == ["blank-rows"]
    skipped = report.accounting[report.accounting["status"] == "skipped"]
    assert skipped["row"].tolist() == [6, 7, 8] and set(skipped["rules"]) == {"blank-rows"}
