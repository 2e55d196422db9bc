"""Every table of a run in one Excel workbook.

One sheet per table in the run's ``tables/`` directory (the CSV, or the Parquet file when
there is no CSV of the same name), with the pipeline's own column names and values, so a
sheet holds exactly the rows of its file; a ``README`` sheet lists the sheets with their
source file, row count and a description in the report's language; ``findings`` holds
the national findings with their sentences in Chinese and English; ``manifest`` holds the
run's manifest flattened to key/value rows.

openpyxl's write-only mode streams rows to disk; the predictions table (about 80,000 rows
for the full panel) dominates the time.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["SHEET_DESCRIPTIONS", "read_table", "run_table_files", "sheet_name", "write_workbook"]

#: What each known table holds, for the README sheet.
SHEET_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "effects": {
        "zh": "各省 × 指标 × 效应量：估计值、标准误、95% CI、P 值",
        "en": "Province × indicator × measure: estimate, standard error, 95% CI, p-value",
    },
    "predictions": {
        "zh": "逐月观测值、拟合值与反事实值及 95% 置信带",
        "en": "Per month: observed, fitted and counterfactual values with 95% confidence bands",
    },
    "diagnostics": {
        "zh": "各序列模型诊断（AR(1) φ、离散度、Durbin-Watson、Ljung-Box）",
        "en": "Per series: model diagnostics (AR(1) φ, dispersion, Durbin-Watson, Ljung-Box)",
    },
    "failures": {"zh": "未能拟合的序列及原因", "en": "Series that could not be fitted, with the reason"},
    "national_effects": {
        "zh": "全国随机效应合并结果（τ²、I²、预测区间）",
        "en": "National random-effects pooled estimates (τ², I², prediction interval)",
    },
    "recovery": {"zh": "合成数据：估计值与已知真值对照", "en": "Synthetic data: estimates against the known truth"},
    "recovery_summary": {
        "zh": "合成数据：覆盖率、假阳性率与检验效能",
        "en": "Synthetic data: coverage, false-positive rate and power",
    },
    "robustness": {"zh": "稳健性分析", "en": "Robustness analyses"},
    "power": {"zh": "检验效能分析", "en": "Power analysis"},
    "data_quality": {"zh": "数据质量检查", "en": "Data quality checks"},
    "findings": {
        "zh": "全国结论（报告摘要所依据的表），含中英文表述",
        "en": "National findings behind the report's summary, with sentences in Chinese and English",
    },
    "manifest": {
        "zh": "运行清单（manifest.json）展开为键值对",
        "en": "The run manifest (manifest.json) as key/value rows",
    },
}
_README_TEXT = {
    "title": {
        "zh": "全面提升医疗质量行动计划（2023—2025年）效果评估：数据表",
        "en": "Evaluation of the Action Plan for Comprehensive Improvement of Medical Quality (2023–2025): tables",
    },
    "columns": {
        "zh": ["工作表", "来源文件", "行数", "列数", "内容"],
        "en": ["Sheet", "Source file", "Rows", "Columns", "Content"],
    },
    "note": {
        "zh": "各工作表的列名与取值与运行目录中的文件一致（未经四舍五入）。",
        "en": "Column names and values are as in the run's files (not rounded).",
    },
}
_EXCEL_MAX_ROWS = 1_048_576
_INVALID_SHEET_CHARS = re.compile(r"[\[\]:*?/\\]")
# Characters XML 1.0 cannot hold; openpyxl refuses them.
_ILLEGAL_XML = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def sheet_name(stem: str, taken: set[str] | None = None) -> str:
    """A valid, unique Excel sheet name (at most 31 characters, no ``[]:*?/\\``).

    Examples
    --------
    >>> sheet_name("national_effects")
    'national_effects'
    >>> sheet_name("a/b" + "x" * 40, {"a_b" + "x" * 28})
    'a_bxxxxxxxxxxxxxxxxxxxxxxxxxx~2'
    """
    taken = taken or set()
    base = _INVALID_SHEET_CHARS.sub("_", stem)[:31] or "sheet"
    name, k = base, 1
    while name.lower() in {t.lower() for t in taken}:
        k += 1
        suffix = f"~{k}"
        name = base[: 31 - len(suffix)] + suffix
    return name


def run_table_files(run_dir: str | Path) -> dict[str, Path]:
    """The tables of a run: stem -> file, the CSV preferred over a Parquet twin, sorted."""
    tables = Path(run_dir) / "tables"
    files: dict[str, Path] = {}
    for path in sorted(tables.glob("*.parquet")):
        files[path.stem] = path
    for path in sorted(tables.glob("*.csv")):
        files[path.stem] = path
    return dict(sorted(files.items()))


def read_table(path: Path) -> pd.DataFrame:
    """A run table as written (codes such as ``110000`` kept as text)."""
    if path.suffix == ".parquet":
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"province": str}, keep_default_na=True)
    if "province" in frame:
        frame["province"] = frame["province"].astype("string").astype(object)
    return frame


def _cell(value: Any) -> Any:
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (np.generic,)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    if isinstance(value, str):
        return _ILLEGAL_XML.sub("", value)
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def _rows(frame: pd.DataFrame) -> Iterator[list[Any]]:
    columns = [frame[c].to_numpy(dtype=object) for c in frame.columns]
    for row in zip(*columns):
        yield [_cell(v) for v in row]


def _flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _flatten(item, f"{prefix}.{key}" if prefix else str(key))
    elif isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        for i, item in enumerate(value):
            yield from _flatten(item, f"{prefix}[{i}]")
    else:
        yield prefix, value


def _width(frame: pd.DataFrame, column: str) -> float:
    values = frame[column].head(200).tolist()
    longest = max([len(str(column))] + [len(str(v)) for v in values if v is not None])
    return float(min(60, max(8, longest + 2)))


def _write_sheet(workbook, name: str, frame: pd.DataFrame) -> None:
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font, PatternFill
    from openpyxl.utils import get_column_letter

    if len(frame) + 1 > _EXCEL_MAX_ROWS:
        raise ValueError(f"table {name!r} has {len(frame)} rows, more than an Excel sheet holds")
    sheet = workbook.create_sheet(name)
    for j, column in enumerate(frame.columns, start=1):
        sheet.column_dimensions[get_column_letter(j)].width = _width(frame, column)
    sheet.freeze_panes = "A2"
    bold, fill = Font(bold=True), PatternFill("solid", fgColor="F6F8FA")
    header = []
    for column in frame.columns:
        cell = WriteOnlyCell(sheet, value=str(column))
        cell.font, cell.fill = bold, fill
        header.append(cell)
    sheet.append(header)
    for row in _rows(frame):
        sheet.append(row)
    if len(frame.columns):
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(frame.columns))}{len(frame) + 1}"


def write_workbook(
    run_dir: str | Path, path: str | Path, *, lang: str = "zh", findings: pd.DataFrame | None = None
) -> Path:
    """Write every table of ``run_dir`` to the workbook ``path``.

    Parameters
    ----------
    run_dir : path
        A run directory (``tables/``, ``manifest.json``).
    path : path
        The ``.xlsx`` file to write (replaced if it exists).
    lang : {"zh", "en"}
        Language of the README sheet; the tables keep the pipeline's column names.
    findings : DataFrame, optional
        The report's national findings (:func:`analysis.report.narrative.national_findings`
        with sentences), written as the ``findings`` sheet.

    Returns
    -------
    Path
        The written workbook.
    """
    from openpyxl import Workbook
    from openpyxl.styles import Font

    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    run_dir = Path(run_dir)
    files = run_table_files(run_dir)
    if not files:
        raise FileNotFoundError(f"no tables in {run_dir / 'tables'}")
    sheets: list[tuple[str, str, pd.DataFrame]] = []  # (sheet, source, frame)
    taken: set[str] = {"README"}
    if findings is not None:
        name = sheet_name("findings", taken)
        taken.add(name)
        sheets.append((name, "—", findings))
    for stem, file in files.items():
        name = sheet_name(stem, taken)
        taken.add(name)
        sheets.append((name, f"tables/{file.name}", read_table(file)))
    manifest_path = run_dir / "manifest.json"
    if manifest_path.is_file():
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        flat = pd.DataFrame(list(_flatten(manifest)), columns=["key", "value"])
        name = sheet_name("manifest", taken)
        sheets.append((name, "manifest.json", flat))

    workbook = Workbook(write_only=True)
    readme = workbook.create_sheet("README")
    for column, width in zip("ABCDE", (20, 30, 10, 10, 70)):
        readme.column_dimensions[column].width = width
    from openpyxl.cell import WriteOnlyCell

    title = WriteOnlyCell(readme, value=_README_TEXT["title"][lang])
    title.font = Font(bold=True, size=13)
    readme.append([title])
    readme.append([_README_TEXT["note"][lang]])
    readme.append([])
    header = []
    for text in _README_TEXT["columns"][lang]:
        cell = WriteOnlyCell(readme, value=text)
        cell.font = Font(bold=True)
        header.append(cell)
    readme.append(header)
    for name, source, frame in sheets:
        stem = Path(source).stem if source not in ("—",) else name
        description = SHEET_DESCRIPTIONS.get(stem, SHEET_DESCRIPTIONS.get(name, {})).get(lang, "")
        readme.append([name, source, len(frame), len(frame.columns), description])
    for name, _, frame in sheets:
        _write_sheet(workbook, name, frame)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    workbook.save(path)
    return path
