"""The side tables of a run: each province's plan start, and listed changes of definition."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import Problem
from analysis.data.readers import header_key, read_grids
from analysis.data.rules import problem
from analysis.data.values import cell_text, parse_month
from analysis.registry import get_indicator, get_province

_SIDE_ALIASES = {
    "province": ("province", "省份", "省", "省份名称", "省份代码", "地区"),
    "indicator": ("indicator", "指标", "指标编号"),
    "month": ("month", "月份", "change month", "变更月份", "口径变更月份", "年月"),
    "start_month": ("start_month", "start month", "start", "plan start", "起始月份", "开始月份", "启动月份",
                    "实施月份", "起始月"),
    "note": ("note", "notes", "description", "备注", "说明", "变更说明"),
}


def side_table(path: str | Path, required: tuple[str, ...], optional: tuple[str, ...], *,
               aliases: Mapping[str, tuple[str, ...]] = _SIDE_ALIASES,
               named_columns: bool = False) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Read a small table (plan dates, changes of definition, comparison series,
    covariates): its first sheet whose first non-empty row names the required columns.

    Returns text columns by role (header names in ``aliases``, English or Chinese) plus
    ``line`` (the line in the file), ``file`` and ``sheet``, with a warning
    (``unknown-column``) for each named column of no role, which is not read; or None and the
    problems of the file (unreadable, a missing column, no rows). With ``named_columns``
    the columns of no role are the table's data (covariates) and are returned under their
    header text instead.
    """
    file = str(path)
    grids, problems = read_grids(path)
    if problems:
        return None, problems
    keys = {header_key(a): role for role in (*required, *optional) for a in aliases[role]}
    for grid in grids:
        filled = np.flatnonzero(grid.cells.notna().any(axis=1).to_numpy())
        if not len(filled):
            continue
        at = int(filled[0])
        header = grid.cells.iloc[at]
        columns = {}
        ignored = []
        for j, text in header.items():
            role = keys.get(header_key(text)) if pd.notna(text) else None
            if role and role not in columns:
                columns[role] = j
            elif named_columns and pd.notna(text) and str(text).strip() and str(text).strip() not in columns:
                columns[str(text).strip()] = j
            elif pd.notna(text) and str(text).strip():
                ignored.append(str(text))
        missing = [r for r in required if r not in columns]
        if missing:
            return None, [problem("missing-column", file, sheet=grid.sheet, row=int(grid.lines[at]), column=r,
                                  message=f"the header has no '{r}' column") for r in missing]
        body = grid.cells.iloc[at + 1:]
        keep = body.notna().any(axis=1).to_numpy()
        out = pd.DataFrame({role: body[j].to_numpy() for role, j in columns.items()}, dtype="string")[keep]
        for role in (*required, *optional):
            if role not in out:
                out[role] = pd.Series(pd.NA, index=out.index, dtype="string")
        out["line"] = np.asarray(grid.lines[at + 1:])[keep]
        out["file"], out["sheet"] = file, grid.sheet
        warnings = [problem("unknown-column", file, sheet=grid.sheet, row=int(grid.lines[at]), column=name,
                            message="not a column of this table (or a second column of the same kind); it is ignored")
                    for name in ignored]
        return out.reset_index(drop=True), warnings
    return None, [problem("empty", file, message="the table has no rows")]


def read_plan_table(path: str | Path) -> tuple[dict[str, pd.Period], list[Problem]]:
    """Province start months from a ``province, start_month`` table (CSV or Excel)."""
    table, problems = side_table(path, ("province", "start_month"), ())
    if table is None:
        return {}, problems
    starts: dict[str, pd.Period] = {}
    seen: dict[str, int] = {}
    for row in table.itertuples():
        where = {"sheet": row.sheet, "row": int(row.line)}
        try:
            code = get_province("" if pd.isna(row.province) else row.province).code
        except KeyError as err:
            problems.append(problem("unknown-province", row.file, **where, column="province",
                                    value=cell_text(row.province), message=err.args[0]))
            continue
        month, _ = parse_month(row.start_month) if pd.notna(row.start_month) else (None, None)
        if month is None:
            problems.append(problem("bad-month", row.file, **where, column="start_month", value=cell_text(row.start_month),
                                    message="start_month must be written YYYY-MM"))
            continue
        if code in seen:
            problems.append(problem("duplicate-province", row.file, **where, column="province",
                                    value=cell_text(row.province),
                                    message=f"the province already has a start month on row {seen[code]}"))
            continue
        seen[code] = int(row.line)
        starts[code] = month
    return starts, problems


_ALL = {"*", "all", "全部", "所有", "全国"}


def read_definition_changes(path: str | Path) -> tuple[pd.DataFrame, list[Problem]]:
    """Changes of definition from a ``province, indicator, month[, note]`` table.

    An empty province or indicator (or ``*``, ``all``, ``全部``) means every province or
    every indicator. Returns ``province`` (code or NA), ``indicator`` (number or NA),
    ``month`` (Period), ``note`` and ``source`` (file and row, for messages).
    """
    table, problems = side_table(path, ("month",), ("province", "indicator", "note"))
    rows = []
    if table is None:
        return pd.DataFrame(columns=["province", "indicator", "month", "note", "source"]), problems
    for row in table.itertuples():
        where = {"sheet": row.sheet, "row": int(row.line)}
        prov = ind = None
        if pd.notna(row.province) and row.province.strip().casefold() not in _ALL:
            try:
                prov = get_province(row.province).code
            except KeyError as err:
                problems.append(problem("unknown-province", row.file, **where, column="province", value=row.province,
                                        message=err.args[0]))
                continue
        if pd.notna(row.indicator) and row.indicator.strip().casefold() not in _ALL:
            try:
                ind = get_indicator(row.indicator).number
            except KeyError as err:
                rule = "ambiguous-indicator" if err.args[0].startswith("ambiguous") else "unknown-indicator"
                problems.append(problem(rule, row.file, **where, column="indicator", value=row.indicator,
                                        message=err.args[0]))
                continue
        month, _ = parse_month(row.month) if pd.notna(row.month) else (None, None)
        if month is None:
            problems.append(problem("bad-month", row.file, **where, column="month", value=cell_text(row.month),
                                    message="month must be written YYYY-MM"))
            continue
        rows.append({"province": prov, "indicator": ind, "month": month,
                     "note": None if pd.isna(row.note) else str(row.note),
                     "source": f"{row.file}{f' [{row.sheet}]' if row.sheet else ''} row {row.line}"})
    frame = pd.DataFrame(rows, columns=["province", "indicator", "month", "note", "source"])
    frame["indicator"] = frame["indicator"].astype("Int64")
    return frame, problems
