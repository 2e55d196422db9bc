"""Write the binary members of the bad-input corpus (Excel workbooks, a GBK file, damaged bytes).

The CSV cases are plain text files kept as they are; this script recreates the files that
cannot be typed: ``python tests/data/bad_inputs/_make_corpus.py``. Each case's expected
problems are in ``<case>.expected`` (see tests/data/test_bad_inputs.py).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _book(path: Path, sheets: dict[str, list[list]], *, formats: dict[tuple[str, str], str] | None = None) -> None:
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    for (title, cell), fmt in (formats or {}).items():
        book[title][cell].number_format = fmt
    book.save(path)


def main() -> None:
    # A workbook with two data sheets, a reference sheet, date cells and percent cells.
    _book(HERE / "combo_excel.xlsx", {
        "填报说明": [["请按模板填写"], ["一行一个省份、指标和月份"]],
        "急诊": [["省份", "指标", "月份", "分子", "分母"],
                 ["安徽", 10, dt.datetime(2023, 6, 1), 12, 40],
                 ["安徽", 10, dt.datetime(2023, 7, 1), 50, 40],
                 ["安徽", 10, dt.datetime(2023, 8, 15), 11, 40]],
        "结果": [["省份 / province", "指标 / indicator", "月份 / month", "数值 / value", "分母 / denominator"],
                 ["Anhui", 29, "2023-06", 0.352, 1250],
                 ["Anhui", 29, "2023-07", 0.35, 1000],
                 ["Anhui", 29, "2023-08", 0.3528, 1250]],
    }, formats={("结果", "D2"): "0.0%", ("结果", "D3"): "0%", ("结果", "D4"): "0.00%"})
    # Months as columns with an item column; one negative numerator in 2023-07.
    _book(HERE / "wide_items_bad.xlsx", {
        "数据": [["省份", "指标", "项目", "2023-06", "2023-07", "2023-08"],
                 ["安徽", 32, "分子", 3, -1, 2],
                 ["安徽", 32, "分母", 1000, 1000, 1000],
                 ["安徽", 31, "分子", 1, 2, 3],
                 ["安徽", 31, "合计", 5, 5, 5]],
    })
    # Months as columns without an item column: fine for means, not for proportions.
    _book(HERE / "wide_needs_field.xlsx", {
        "Sheet1": [["province", "indicator", dt.datetime(2023, 6, 1), dt.datetime(2023, 7, 1)],
                   ["安徽", 9, 14.5, 15.1],
                   ["安徽", 32, 0.3, 0.25]],
    })
    (HERE / "unreadable_workbook.xlsx").write_bytes(b"PK\x03\x04 this is not really a workbook")
    (HERE / "unsupported_type.xls").write_bytes(b"\xd0\xcf\x11\xe0 an old binary Excel file")
    gbk = "省份,指标,月份,分子,分母\n安徽,32,2023-06,3,1000\n火星,32,2023-07,3,1000\n"
    (HERE / "gbk_unknown_province.csv").write_bytes(gbk.encode("gbk"))
    damaged = "省份,指标,月份,分子,分母\n安徽,32,2023-06,3,1000\n安徽,32,2023-07,3,1000\n".encode("utf-8")
    damaged = damaged.replace("安徽,32,2023-07".encode(), "安".encode() + b"\xff\xfe" + ",32,2023-07".encode())
    (HERE / "encoding_damaged.csv").write_bytes(damaged)


if __name__ == "__main__":
    main()
