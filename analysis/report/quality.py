"""The data-quality section of the report: completeness heat maps and the list of problems.

Everything shown is read from the tables a run writes (``tables/series_quality.csv``,
``tables/data_quality.csv``, ``tables/row_accounting.csv``); nothing is recomputed from
the data. Figures use the object-oriented matplotlib API and the report's CJK font, as
:mod:`analysis.report.figures` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.colors import BoundaryNorm, ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from analysis.registry import get_indicator, provinces
from analysis.report.figures import OKABE_ITO
from analysis.report.fonts import use_cjk_font
from analysis.report.tables import province_name

__all__ = [
    "STATUS",
    "QualityTables",
    "accounting_table",
    "completeness",
    "completeness_figure",
    "load_quality",
    "overview_figure",
    "problems_table",
    "summary_html",
    "text",
]

#: Status of one province x indicator x month cell, drawn in this order.
STATUS = ("absent", "present", "warning", "gap", "excluded")
_COLOURS = {
    "absent": "#F2F2F2",
    "present": OKABE_ITO["bluish_green"],
    "warning": OKABE_ITO["orange"],
    "gap": OKABE_ITO["vermillion"],
    "excluded": OKABE_ITO["reddish_purple"],
}

_TEXT = {
    "title": {"zh": "数据质量", "en": "Data quality"},
    "absent": {"zh": "无数据", "en": "no data"},
    "present": {"zh": "有数据", "en": "data"},
    "warning": {"zh": "有警告的月份", "en": "month with a warning"},
    "gap": {"zh": "序列中缺失的月份", "en": "missing inside a series"},
    "excluded": {"zh": "因错误排除的序列", "en": "series excluded for errors"},
    "grid_title": {"zh": "各指标按省份和月份的数据完整性", "en": "Completeness by indicator, province and month"},
    "overview_title": {
        "zh": "各省各指标的数据完整性（{first}—{last} 中有数据的月份占比）",
        "en": "Completeness by province and indicator (share of months {first}–{last} with data)",
    },
    "share": {"zh": "有数据月份占比", "en": "share of months with data"},
    "excluded_mark": {"zh": "× 因错误排除", "en": "× excluded for errors"},
    "summary": {
        "zh": "输入行 {total} 行：使用 {used}，合并 {merged}，排除 {excluded}，跳过 {skipped}。"
        "序列 {series} 个，其中 {excluded_series} 个因错误排除；错误 {errors} 个，警告 {warnings} 个。",
        "en": "{total} input rows: {used} used, {merged} merged, {excluded} excluded, {skipped} skipped. "
        "{series} series, {excluded_series} excluded for errors; {errors} errors, {warnings} warnings.",
    },
    "warnings": {"zh": "警告", "en": "Warnings"},
    "errors": {"zh": "错误", "en": "Errors"},
    "accounting": {"zh": "输入行去向", "en": "What became of each input row"},
    "no_warnings": {"zh": "没有警告。", "en": "No warnings."},
    "no_errors": {"zh": "没有错误。", "en": "No errors."},
    "no_data": {"zh": "本次运行没有数据质量表。", "en": "This run has no data-quality tables."},
}
_COLUMNS = {
    "severity": {"zh": "级别", "en": "Severity"},
    "rule": {"zh": "规则", "en": "Rule"},
    "province": {"zh": "省份", "en": "Province"},
    "indicator": {"zh": "指标", "en": "Indicator"},
    "month": {"zh": "月份", "en": "Month"},
    "file": {"zh": "文件", "en": "File"},
    "sheet": {"zh": "工作表", "en": "Sheet"},
    "row": {"zh": "行", "en": "Row"},
    "column": {"zh": "列", "en": "Column"},
    "value": {"zh": "值", "en": "Value"},
    "message": {"zh": "说明", "en": "Message"},
    "fix": {"zh": "修改方法", "en": "How to fix"},
    "used": {"zh": "使用", "en": "used"},
    "merged": {"zh": "合并", "en": "merged"},
    "excluded": {"zh": "排除", "en": "excluded"},
    "skipped": {"zh": "跳过", "en": "skipped"},
    "rows": {"zh": "行数", "en": "rows"},
}


def text(key: str, lang: str = "zh", **fields: object) -> str:
    """A label of the data-quality section in ``lang``."""
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    return _TEXT[key][lang].format(**fields)


@dataclass(frozen=True)
class QualityTables:
    """The data-quality tables of a run (empty frames where a table is missing)."""

    problems: pd.DataFrame
    accounting: pd.DataFrame
    series: pd.DataFrame

    @property
    def empty(self) -> bool:
        return self.series.empty and self.accounting.empty


def load_quality(run_dir: str | Path) -> QualityTables:
    """Read ``data_quality.csv``, ``row_accounting.csv`` and ``series_quality.csv`` of a run."""
    tables = Path(run_dir) / "tables"

    def read(name: str) -> pd.DataFrame:
        path = tables / f"{name}.csv"
        if not path.is_file():
            return pd.DataFrame()
        return pd.read_csv(
            path,
            dtype={"province": str, "file": str, "sheet": str, "month": str},
            keep_default_na=False,
            na_values=[""],
        )

    return QualityTables(read("data_quality"), read("row_accounting"), read("series_quality"))


def completeness(series: pd.DataFrame) -> tuple[np.ndarray, list[str], list[int], pd.PeriodIndex]:
    """Status codes (index into :data:`STATUS`) by province x indicator x month.

    Returns the array (provinces, indicators, months), the province codes, the indicator
    numbers and the months (the span of all series).
    """
    if series.empty:
        return np.zeros((0, 0, 0), dtype=int), [], [], pd.PeriodIndex([], freq="M")
    first = pd.Period(series["first_month"].min(), "M")
    last = pd.Period(series["last_month"].max(), "M")
    months = pd.period_range(first, last, freq="M")
    codes = [p.code for p in provinces() if p.code in set(series["province"].astype(str))]
    numbers = sorted(int(i) for i in series["indicator"].unique())
    grid = np.zeros((len(codes), len(numbers), len(months)), dtype=int)
    where_p = {c: k for k, c in enumerate(codes)}
    where_i = {n: k for k, n in enumerate(numbers)}
    for row in series.itertuples():
        p, i = where_p[str(row.province)], where_i[int(row.indicator)]
        a = pd.Period(row.first_month, "M").ordinal - first.ordinal
        b = pd.Period(row.last_month, "M").ordinal - first.ordinal
        present = STATUS.index("excluded" if row.status == "excluded" else "present")
        grid[p, i, a : b + 1] = present
        for month in _split(row.missing_months):
            grid[p, i, pd.Period(month, "M").ordinal - first.ordinal] = STATUS.index("gap")
        if row.status != "excluded":
            for month in _split(row.warning_months):
                k = pd.Period(month, "M").ordinal - first.ordinal
                if 0 <= k < len(months):
                    grid[p, i, k] = STATUS.index("warning")
    return grid, codes, numbers, months


def _split(cell) -> list[str]:
    return [m for m in str(cell).split(";") if m and m != "nan"] if isinstance(cell, str) else []


def _cmap() -> tuple[ListedColormap, BoundaryNorm]:
    cmap = ListedColormap([_COLOURS[s] for s in STATUS])
    return cmap, BoundaryNorm(np.arange(len(STATUS) + 1) - 0.5, len(STATUS))


def _legend(fig: Figure, lang: str) -> None:
    handles = [Patch(facecolor=_COLOURS[s], edgecolor="#999999", label=text(s, lang)) for s in STATUS]
    fig.legend(handles=handles, loc="lower center", ncol=len(STATUS), frameon=False, fontsize=8)


def completeness_figure(series: pd.DataFrame, *, lang: str = "zh", columns: int = 6) -> Figure:
    """Small multiples: one heat map per indicator, provinces down and months across,
    each cell coloured by its status (data, warning, missing inside a series, excluded)."""
    use_cjk_font()
    grid, codes, numbers, months = completeness(series)
    n = max(len(numbers), 1)
    rows = int(np.ceil(n / columns))
    fig = Figure(figsize=(2.3 * min(columns, n) + 1.2, 2.0 * rows + 1.2), dpi=90)
    fig.suptitle(text("grid_title", lang), fontsize=12)
    cmap, norm = _cmap()
    names = [province_name(c, lang) for c in codes]
    years = [k for k, m in enumerate(months) if m.month == 1]
    for k, number in enumerate(numbers):
        ax = fig.add_subplot(rows, min(columns, n), k + 1)
        ax.imshow(grid[:, k, :], aspect="auto", interpolation="nearest", cmap=cmap, norm=norm)
        ax.set_title(f"{number} {get_indicator(number).name(lang)}", fontsize=7, loc="left", wrap=True)
        ax.set_xticks(years, [str(months[y].year)[2:] for y in years], fontsize=6)
        if k % columns == 0:
            ax.set_yticks(range(len(codes)), names, fontsize=5)
        else:
            ax.set_yticks([])
    _legend(fig, lang)
    fig.subplots_adjust(
        left=0.07,
        right=0.99,
        top=1 - 0.9 / (2.0 * rows + 1.2),
        bottom=0.9 / (2.0 * rows + 1.2),
        hspace=0.6,
        wspace=0.08,
    )
    return fig


def overview_figure(series: pd.DataFrame, *, lang: str = "zh") -> Figure:
    """Province x indicator heat map of the share of months with data over the span of the
    panel; series excluded for errors are crossed out."""
    use_cjk_font()
    grid, codes, numbers, months = completeness(series)
    fig = Figure(figsize=(0.32 * max(len(numbers), 1) + 2.5, 0.26 * max(len(codes), 1) + 1.8), dpi=90)
    ax = fig.add_subplot(1, 1, 1)
    if len(months):
        share = np.isin(grid, [STATUS.index("present"), STATUS.index("warning")]).mean(axis=2)
        image = ax.imshow(share, aspect="auto", interpolation="nearest", cmap="viridis", vmin=0, vmax=1)
        bar = fig.colorbar(image, ax=ax, fraction=0.03, pad=0.02)
        bar.set_label(text("share", lang))
        excluded = (grid == STATUS.index("excluded")).any(axis=2)
        for p, i in zip(*np.nonzero(excluded)):
            ax.text(i, p, "×", ha="center", va="center", color="white", fontsize=9)
        title = text("overview_title", lang, first=str(months[0]), last=str(months[-1]))
    else:
        title = text("no_data", lang)
    ax.set_title(title + ("   " + text("excluded_mark", lang) if len(months) else ""), fontsize=10, loc="left")
    ax.set_xticks(range(len(numbers)), [str(n) for n in numbers], fontsize=7)
    ax.set_yticks(range(len(codes)), [province_name(c, lang) for c in codes], fontsize=7)
    fig.subplots_adjust(left=0.18, right=0.95, top=0.92, bottom=0.08)
    return fig


def _header(keys: list[str], lang: str) -> list[str]:
    return [_COLUMNS[k][lang] for k in keys]


def problems_table(problems: pd.DataFrame, *, severity: str = "warning", lang: str = "zh") -> pd.DataFrame:
    """Problems of one severity for display: where (file, sheet, row, column), the series,
    the rule, the message and how to fix it."""
    keys = ["rule", "province", "indicator", "month", "file", "sheet", "row", "column", "value", "message", "fix"]
    if problems.empty:
        return pd.DataFrame(columns=_header(keys, lang))
    part = problems[problems["severity"] == severity].copy()
    part["province"] = [province_name(p, lang) if isinstance(p, str) and p else "" for p in part["province"]]
    for col in ("indicator", "row"):
        part[col] = [("" if pd.isna(v) else str(int(float(v)))) for v in part[col]]
    part = part.reindex(columns=keys).fillna("")
    part.columns = _header(keys, lang)
    return part.reset_index(drop=True)


def accounting_table(accounting: pd.DataFrame, *, lang: str = "zh") -> pd.DataFrame:
    """Input rows by file and sheet: how many were used, merged, excluded and skipped."""
    statuses = ["used", "merged", "excluded", "skipped"]
    if accounting.empty:
        return pd.DataFrame(columns=_header(["file", "sheet", "rows", *statuses], lang))
    frame = accounting.assign(sheet=accounting["sheet"].fillna(""))
    counts = frame.groupby(["file", "sheet", "status"], sort=False).size().unstack(fill_value=0)
    counts = counts.reindex(columns=statuses, fill_value=0)
    counts.insert(0, "rows", counts.sum(axis=1))
    out = counts.reset_index()
    out.columns = _header(["file", "sheet", "rows", *statuses], lang)
    return out


def summary_html(tables: QualityTables, *, lang: str = "zh") -> str:
    """One escaped paragraph: rows used, merged, excluded, skipped; series; errors, warnings."""
    import html

    acc, probs, series = tables.accounting, tables.problems, tables.series
    counts = acc["status"].value_counts() if not acc.empty else pd.Series(dtype=int)
    severity = probs["severity"].value_counts() if not probs.empty else pd.Series(dtype=int)
    message = text(
        "summary",
        lang,
        total=len(acc),
        used=int(counts.get("used", 0)),
        merged=int(counts.get("merged", 0)),
        excluded=int(counts.get("excluded", 0)),
        skipped=int(counts.get("skipped", 0)),
        series=len(series),
        excluded_series=int((series["status"] == "excluded").sum()) if not series.empty else 0,
        errors=int(severity.get("error", 0)),
        warnings=int(severity.get("warning", 0)),
    )
    return f"<p>{html.escape(message)}</p>"
