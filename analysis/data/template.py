"""The submission template: an Excel workbook provinces fill in, which the reader understands.

``python -m analysis template --out FILE.xlsx`` writes instructions, reference sheets of
the indicators and provinces, and data sheets with bilingual headers, the indicator
numbers, names and units filled in, and one row per indicator and month (long layouts)
or one row per indicator and item with months as columns (wide layout).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.data.values import UNIT_ZH
from analysis.registry import provinces, quantitative_indicators

__all__ = ["LAYOUTS", "write_template"]

#: ``long``: one sheet, one row per indicator x month; ``dimension``: the same, one sheet
#: per dimension of the annex; ``wide``: one sheet, months as columns.
LAYOUTS = ("long", "dimension", "wide")

HEADERS = {
    "province": "省份 / province",
    "indicator": "指标 / indicator",
    "indicator_name": "指标名称 / indicator name",
    "unit": "单位 / unit",
    "month": "月份 / month",
    "numerator": "分子 / numerator",
    "denominator": "分母 / denominator",
    "value": "数值 / value",
    "field": "项目 / field",
    "note": "备注 / note",
}
INSTRUCTIONS_SHEET = "填报说明 Instructions"
INDICATORS_SHEET = "指标 Indicators"
PROVINCES_SHEET = "省份 Provinces"

INSTRUCTIONS = [
    ("全面提升医疗质量行动计划（2023—2025年）省级监测指标月度数据填报模板",
     "Monthly data template for the provincial monitoring indicators of the Action Plan (2023-2025)"),
    ("", ""),
    ("1. 每行填写一个省份、一个指标、一个月份（宽表：一个指标的一个项目，各月份为列）。",
     "1. One row per province, indicator and month (wide sheet: one row per indicator and item, months as columns)."),
    ("2. 省份：GB/T 2260 代码（如 340000）、全称（安徽省）、简称（安徽）或英文名（Anhui）；新疆生产建设兵团为 660000。",
     "2. Province: GB/T 2260 code (340000), full or short Chinese name (安徽省, 安徽) or English name (Anhui); "
     "the XPCC is 660000."),
    ("3. 指标：附件编号 9–39，已预填，请勿修改；状态类指标（1–8、40）不按月填报。",
     "3. Indicator: annex number 9-39, filled in; do not change it. Status items (1-8, 40) are not monthly series."),
    ("4. 月份：YYYY-MM（如 2023-06），也可写 2023/6、202306、2023年6月，或当月1日的日期。",
     "4. Month: YYYY-MM (2023-06); 2023/6, 202306, 2023年6月 or the first day of the month also work."),
    ("5. 比例和率类指标填写分子和分母（整数；没有发生请填 0，不要留空）。也可只填“数值”（如 35.2%）和分母，"
     "但数值须能还原出整数分子。",
     "5. Proportions and rates: give numerator and denominator (whole numbers; write 0 for none, never leave it "
     "empty). A value (e.g. 35.2%) with the denominator also works if it gives back a whole numerator."),
    ("6. 均值类指标（9 平均急救响应时间、28 CMI、33 生存时间）填写“数值”，可在“分母”填写例数。",
     "6. Means (9 response time, 28 CMI, 33 survival time): give the value; the denominator may give the cases."),
    ("7. “单位”列已预填；同一序列的所有月份请使用同一单位。",
     "7. The unit column is filled in; use the same unit in every month of a series."),
    ("8. 尚无数据的月份整行留空即可（会被跳过）；同一省份、指标、月份只能出现一次；序列中间不能缺月。",
     "8. Leave rows of months without data empty (they are skipped). Each province, indicator and month appears "
     "once; a series has no gaps."),
    ("9. 统计口径发生变更时，另附 definition_changes.csv（省份、指标、月份、说明）。",
     "9. Changes of definition go in a separate definition_changes.csv (province, indicator, month, note)."),
    ("10. 提交前检查：python -m analysis validate 文件.xlsx（列出所有问题及修改方法）。",
     "10. Check before sending: python -m analysis validate FILE.xlsx (lists every problem and how to fix it)."),
]


def _display_unit(unit: str) -> str:
    return UNIT_ZH.get(unit, unit)


def write_template(path: str | Path, *, layout: str = "long", province: str | None = None,
                   start: str = "2019-01", end: str = "2025-12") -> Path:
    """Write the submission template.

    Parameters
    ----------
    path : path
        The ``.xlsx`` file to write.
    layout : {"long", "dimension", "wide"}
        One long sheet, one long sheet per dimension, or one sheet with months as columns.
    province : str, optional
        Fill the province column with this province (code or name).
    start, end : str
        First and last month of the rows (long) or columns (wide).

    Examples
    --------
    >>> import tempfile, openpyxl
    >>> out = write_template(tempfile.mkdtemp() + "/template.xlsx", start="2023-01", end="2023-02")
    >>> openpyxl.load_workbook(out).sheetnames
    ['填报说明 Instructions', '数据 Data', '指标 Indicators', '省份 Provinces']
    """
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.worksheet.datavalidation import DataValidation

    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    if province is not None:
        from analysis.registry import get_province

        province = get_province(province).code
    months = [str(m) for m in pd.period_range(start, end, freq="M")]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    book = Workbook()
    bold = Font(bold=True)
    head_fill = PatternFill("solid", fgColor="DDEBF7")
    idle_fill = PatternFill("solid", fgColor="EEEEEE")  # cells that do not apply to the indicator

    info = book.active
    info.title = INSTRUCTIONS_SHEET
    for zh, en in INSTRUCTIONS:
        info.append([zh])
        info.append([en] if en else [])
    info["A1"].font = Font(bold=True, size=13)
    info.column_dimensions["A"].width = 120
    for row in info.iter_rows():
        for cell in row:
            cell.alignment = Alignment(wrap_text=True, vertical="top")

    def header_row(sheet, keys):
        sheet.append([HEADERS.get(k, k) for k in keys])
        for cell in sheet[1]:
            cell.font, cell.fill = bold, head_fill
        sheet.freeze_panes = "A2"

    def counts_rule() -> DataValidation:
        return DataValidation(type="whole", operator="greaterThanOrEqual", formula1="0", allow_blank=True,
                              showErrorMessage=True, errorTitle="整数 / whole number",
                              error="分子、分母须为非负整数 / counts are whole numbers, 0 or more")

    def long_sheet(title, inds):
        sheet = book.create_sheet(title)
        keys = ["province", "indicator", "indicator_name", "unit", "month", "numerator", "denominator", "value", "note"]
        header_row(sheet, keys)
        counts = counts_rule()
        sheet.add_data_validation(counts)
        for ind in inds:
            for month in months:
                sheet.append([province, ind.number, ind.name_zh, _display_unit(ind.unit), month])
                row = sheet.max_row
                sheet.cell(row, 5).number_format = "@"  # months stay text, never Excel dates
                if ind.measure == "mean":
                    sheet.cell(row, 6).fill = idle_fill
        last = sheet.max_row
        counts.add(f"F2:G{last}")
        for col, width in zip("ABCDEFGHI", (16, 10, 36, 16, 10, 14, 14, 12, 20)):
            sheet.column_dimensions[col].width = width
        return sheet

    inds = quantitative_indicators()
    if layout == "long":
        long_sheet("数据 Data", inds)
    elif layout == "dimension":
        for dimension in dict.fromkeys(i.dimension_zh for i in inds):
            long_sheet(dimension[:31], [i for i in inds if i.dimension_zh == dimension])
    else:
        sheet = book.create_sheet("数据 Data")
        header_row(sheet, ["province", "indicator", "indicator_name", "unit", "field", *months])
        items = {"numerator": "分子", "denominator": "分母", "value": "数值"}
        for ind in inds:
            for item in (("value", "denominator") if ind.measure == "mean" else ("numerator", "denominator")):
                sheet.append([province, ind.number, ind.name_zh, _display_unit(ind.unit), items[item]])
        for cell in sheet[1][5:]:
            cell.number_format = "@"
        for col, width in zip("ABCDE", (16, 10, 36, 16, 10)):
            sheet.column_dimensions[col].width = width

    ref = book.create_sheet(INDICATORS_SHEET)
    ref.append(["编号 number", "维度 dimension", "指标名称", "indicator name", "类型 measure", "单位 unit",
                "分子 numerator", "numerator", "分母 denominator", "denominator", "改善方向 direction"])
    for cell in ref[1]:
        cell.font, cell.fill = bold, head_fill
    for ind in inds:
        ref.append([ind.number, ind.dimension_zh, ind.name_zh, ind.name_en, ind.measure,
                    f"{_display_unit(ind.unit)} ({ind.unit})" if _display_unit(ind.unit) != ind.unit else ind.unit,
                    ind.numerator_zh, ind.numerator_en, ind.denominator_zh, ind.denominator_en,
                    {"up": "越高越好 higher is better", "down": "越低越好 lower is better"}[ind.direction]])
    ref.freeze_panes = "A2"
    places = book.create_sheet(PROVINCES_SHEET)
    places.append(["代码 code", "全称 name", "简称 short name", "English"])
    for cell in places[1]:
        cell.font, cell.fill = bold, head_fill
    for p in provinces():
        places.append([p.code, p.name_zh, p.short_zh, p.name_en])
    book.save(path)
    return path
