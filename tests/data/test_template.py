"""The submission template: what it holds, and that a filled-in template reads back exactly."""

from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from analysis.data.contract import validate_panel
from analysis.data.quality import check_inputs
from analysis.data.synthetic import generate
from analysis.data.values import UNIT_ZH
from analysis.data.template import HEADERS, INDICATORS_SHEET, INSTRUCTIONS_SHEET, PROVINCES_SHEET, write_template
from analysis.registry import get_indicator, quantitative_indicators

KEYS = ["province", "indicator", "month", "numerator", "denominator", "value"]


def test_long_template_has_bilingual_headers_prefilled_rows_and_instructions(tmp_path):
    path = write_template(tmp_path / "t.xlsx", start="2023-01", end="2023-03")
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == [INSTRUCTIONS_SHEET, "数据 Data", INDICATORS_SHEET, PROVINCES_SHEET]
    data = book["数据 Data"]
    header = [c.value for c in data[1]]
    assert header[:8] == [HEADERS[k] for k in ("province", "indicator", "indicator_name", "unit", "month",
                                               "numerator", "denominator", "value")]
    assert all("/" in h and any("\u4e00" <= ch <= "\u9fff" for ch in h) for h in header)
    rows = list(data.iter_rows(min_row=2, values_only=True))
    assert len(rows) == 31 * 3
    assert all(r[3] == UNIT_ZH.get(get_indicator(r[1]).unit, get_indicator(r[1]).unit) for r in rows)
    assert rows[0][:5] == (None, 9, "平均急救响应时间", "分钟", "2023-01")
    assert next(r for r in rows if r[1] == 32)[3] == "‰"
    text = " ".join(str(c.value) for row in book[INSTRUCTIONS_SHEET].iter_rows() for c in row if c.value)
    assert "分子" in text and "numerator" in text and "python -m analysis validate" in text
    assert [c.value for c in book[INDICATORS_SHEET]["A"]][1:] == [i.number for i in quantitative_indicators()]
    assert book[PROVINCES_SHEET].max_row == 33


def test_dimension_template_has_one_sheet_per_dimension(tmp_path):
    path = write_template(tmp_path / "t.xlsx", layout="dimension", province="安徽", start="2023-01", end="2023-01")
    book = openpyxl.load_workbook(path)
    dimensions = list(dict.fromkeys(i.dimension_zh for i in quantitative_indicators()))
    assert book.sheetnames[1:-2] == dimensions
    first = book[dimensions[0]]
    assert [r[0] for r in first.iter_rows(min_row=2, values_only=True)] == ["340000"] * (first.max_row - 1)


def test_an_empty_template_reads_as_no_data_with_no_other_problem(tmp_path):
    report = check_inputs(write_template(tmp_path / "t.xlsx", start="2023-01", end="2023-02"))
    assert [p.rule for p in report.problems] == ["blank-rows", "empty"]


def _fill_long(path, data, sheets):
    book = openpyxl.load_workbook(path)
    lookup = {(int(r.indicator), r.month): r for r in data.panel.itertuples()}
    for name in sheets:
        for row in book[name].iter_rows(min_row=2):
            r = lookup.get((row[1].value, row[4].value))
            if r is None:
                continue
            if get_indicator(r.indicator).measure == "mean":
                row[6].value, row[7].value = int(r.denominator), float(r.value)
            else:
                row[5].value, row[6].value = int(r.numerator), int(r.denominator)
    book.save(path)


def _fill_wide(path, data):
    book = openpyxl.load_workbook(path)
    sheet = book["数据 Data"]
    months = [c.value for c in sheet[1][5:]]
    lookup = {(int(r.indicator), r.month): r for r in data.panel.itertuples()}
    field = {"分子": "numerator", "分母": "denominator", "数值": "value"}
    for row in sheet.iter_rows(min_row=2):
        for j, month in enumerate(months):
            r = lookup.get((row[1].value, month))
            if r is not None:
                value = getattr(r, field[row[4].value])
                row[5 + j].value = float(value) if field[row[4].value] == "value" else int(value)
    book.save(path)


@pytest.mark.parametrize("layout", ["long", "dimension", "wide"])
def test_a_filled_template_reads_back_exactly(tmp_path, layout):
    data = generate(5, provinces=["340000"], indicators=[9, 28, 32, 34])
    path = write_template(tmp_path / "t.xlsx", layout=layout, province="340000")
    if layout == "wide":
        _fill_wide(path, data)
    else:
        sheets = [s for s in openpyxl.load_workbook(path).sheetnames
                  if s not in (INSTRUCTIONS_SHEET, INDICATORS_SHEET, PROVINCES_SHEET)]
        _fill_long(path, data, sheets)
    report = check_inputs(path, plan_dates={"340000": data.plan_dates["start_month"].iat[0]})
    assert report.errors == [] and {p.rule for p in report.warnings} <= {"blank-rows"}
    pd.testing.assert_frame_equal(report.panel[KEYS], validate_panel(data.panel)[KEYS])


def test_unknown_layout_is_refused(tmp_path):
    with pytest.raises(ValueError, match="layout"):
        write_template(tmp_path / "t.xlsx", layout="diagonal")
