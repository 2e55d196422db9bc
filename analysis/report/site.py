"""HTML for the report: headings and tables for notebooks, and the run's ``index.html``.

Every piece of text that reaches HTML passes through :func:`html.escape` (tables through
pandas' escaping), since province names, error messages and manifest values come from
files.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from analysis.report.tables import (
    LANGS,
    RunTables,
    evaluation_month,
    failures_table,
    load_run,
    meta_analysis_rows,
    month_label,
    provenance_table,
    province_name,
    province_summary,
    province_summary_table,
    read_optional,
    readable_numeric_columns,
    readable_table,
)

__all__ = [
    "heading_html",
    "national_intro_html",
    "note_html",
    "provenance_html",
    "province_intro_html",
    "table_html",
    "text",
    "write_index",
]

_TEXT = {
    "title": {
        "zh": "全面提升医疗质量行动计划（2023—2025年）效果评估：中断时间序列分析",
        "en": "Evaluation of the Action Plan for Comprehensive Improvement of Medical Quality (2023–2025): "
        "interrupted time-series analysis",
    },
    "province_title": {"zh": "{province}：行动计划效果评估", "en": "{province}: evaluation of the Action Plan"},
    "national_title": {"zh": "全国汇总：行动计划效果评估", "en": "National summary: evaluation of the Action Plan"},
    "lede_province": {
        "zh": "本省计划起始月：{start}；已拟合指标 {fitted} 个，拟合失败 {failed} 个。效应为{month}的观测拟合值相对于"
        "无计划反事实的差异（分段回归，95% 置信区间）。",
        "en": "Provincial plan start: {start}; {fitted} indicators fitted, {failed} failed. Effects compare the fitted "
        "value at {month} with the counterfactual without the plan (segmented regression, 95% confidence "
        "intervals).",
    },
    "lede_national": {
        "zh": "各省效应经随机效应模型合并（{method}，HKSJ 校正：{hksj}）；相对效应在对数比值尺度上合并后回转为百分比。",
        "en": "Provincial effects pooled with a random-effects model ({method}, HKSJ adjustment: {hksj}); relative "
        "effects are pooled as log ratios and shown in percent.",
    },
    "figure": {"zh": "各指标时间序列", "en": "Indicator time series"},
    "overview": {"zh": "全国合并效应总览", "en": "Overview of national pooled effects"},
    "effects": {"zh": "计划结束时的效应", "en": "Effects at the end of the plan"},
    "national_effects": {"zh": "全国合并效应", "en": "National pooled effects"},
    "forests": {"zh": "各指标分省森林图", "en": "Forest plots by indicator"},
    "provinces": {"zh": "各省概况", "en": "Provinces"},
    "diagnostics": {"zh": "模型诊断", "en": "Model diagnostics"},
    "failures": {"zh": "拟合失败的序列", "en": "Series that could not be fitted"},
    "no_failures": {"zh": "无拟合失败的序列。", "en": "Every series was fitted."},
    "multiplicity": {"zh": "多重检验校正", "en": "Multiple testing"},
    "multiplicity_note": {
        "zh": "Benjamini-Hochberg（各效应量的全部指标）与 Holm（预先声明的主要指标）校正后的 p 值。",
        "en": "p-values adjusted by Benjamini-Hochberg (across all indicators of a measure) and Holm "
        "(across the primary indicators declared before the analysis).",
    },
    "event_time": {"zh": "按实施月数的效应（分期启动）", "en": "Effects by months since the start (staggered starts)"},
    "event_time_note": {
        "zh": "第 0 月为各省自己的启动月；只汇总所有省份均有观测的月数。",
        "en": "Month 0 is each province's own start month; only months observed in every province are pooled.",
    },
    "cohorts": {"zh": "不同启动时间的省份是否效应不同", "en": "Do effects differ by start cohort?"},
    "meta_regression": {
        "zh": "效应的元回归（地区与启动延迟）",
        "en": "Meta-regression of effects on region and start delay",
    },
    "power_section": {"zh": "检验效能与最小可检测效应", "en": "Power and minimum detectable effects"},
    "targets_section": {"zh": "目标达成预测", "en": "Targets: projected attainment"},
    "robustness_section": {
        "zh": "稳健性、安慰剂检验与多水平模型",
        "en": "Robustness, placebo tests and the multilevel model",
    },
    "table_missing": {
        "zh": "本次运行未生成 tables/{name}.csv{hint}。",
        "en": "This run wrote no tables/{name}.csv{hint}.",
    },
    "table_empty": {
        "zh": "tables/{name}.csv 中没有可显示的记录（失败原因见同名 _failures 表，如有）。",
        "en": "tables/{name}.csv has no rows to show (reasons for failures, if any, are in its _failures table).",
    },
    "controlled_section": {"zh": "对照中断时间序列（比较序列）", "en": "Controlled ITS against comparison series"},
    "controlled_note": {
        "zh": "每项指标与同省的比较序列一起拟合，计划效应为两者水平与斜率变化之差，再在全国合并。",
        "en": "Each indicator is fitted with a comparison series of the same province; the plan's effect "
        "is the difference in level and slope change between them, pooled nationally.",
    },
    "controlled_hint": {
        "zh": "（在数据目录中放置 comparisons.csv，或运行时用 --comparisons 指定比较序列表）",
        "en": " (put comparisons.csv in the data directory, or give a table of comparison series with --comparisons)",
    },
    "robustness_hint": {"zh": "（本次运行使用了 --no-robustness）", "en": " (the run used --no-robustness)"},
    "rows_shown": {
        "zh": "显示前 {shown} 行，共 {total} 行；完整表格见 tables/{name}.csv。",
        "en": "First {shown} of {total} rows; the whole table is tables/{name}.csv.",
    },
    "provenance": {"zh": "数据与代码来源", "en": "Provenance"},
    "manifest": {"zh": "完整运行清单（manifest.json）", "en": "Full run manifest (manifest.json)"},
    "national_link": {"zh": "全国汇总", "en": "National summary"},
    "quality_link": {"zh": "数据质量", "en": "Data quality"},
    "report_link": {"zh": "期末评估报告（{language}）", "en": "End-of-plan report ({language})"},
    "language_zh": {"zh": "中文", "en": "Chinese"},
    "language_en": {"zh": "英文", "en": "English"},
    "workbook": {"zh": "Excel 表格", "en": "Excel workbook"},
    "tables": {"zh": "结果数据表", "en": "Result tables"},
    "no_tables": {"zh": "未找到数据表。", "en": "No tables found."},
    "html": {"zh": "网页", "en": "HTML"},
    "notebook": {"zh": "笔记本", "en": "notebook"},
    "notebook_column": {"zh": "笔记本", "en": "Notebook"},
    "report": {"zh": "报告", "en": "Report"},
    "verdict_note": {
        "zh": "改善/恶化：{month}相对效应的 95% 置信区间不含 0，且方向符合/违背指标导向；否则为不确定。",
        "en": "Improved/deteriorated: the 95% CI of the relative effect at {month} excludes 0 in (against) the "
        "indicator's direction of improvement; otherwise inconclusive.",
    },
    "file": {"zh": "文件", "en": "File"},
    "size": {"zh": "大小", "en": "Size"},
}

CSS = """
:root { --ink: #1f2328; --muted: #59636e; --rule: #d1d9e0; --accent: #0072B2; --band: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 2rem 1.5rem 4rem; color: var(--ink); line-height: 1.55;
       font-family: "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", system-ui,
                    -apple-system, "Segoe UI", Roboto, sans-serif; }
h1 { font-size: 1.55rem; margin: 0 0 .2rem; font-weight: 600; }
h1 + p.subtitle { margin: 0 0 1.5rem; color: var(--muted); font-size: 1.05rem; }
h2 { font-size: 1.2rem; margin: 2.2rem 0 .6rem; padding-bottom: .25rem; border-bottom: 1px solid var(--rule); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
table { border-collapse: collapse; width: 100%; font-size: .92rem; margin: .4rem 0 1rem; }
th, td { text-align: left; padding: .35rem .6rem; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: var(--band); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:hover td { background: #fbfcfd; }
.note { color: var(--muted); font-size: .9rem; }
.good { color: #007a5a; } .bad { color: #b34700; }
.callout { background: var(--band); border: 1px solid var(--rule); border-radius: 6px; padding: .8rem 1rem; }
pre { background: var(--band); padding: .8rem; overflow-x: auto; font-size: .8rem; border-radius: 6px; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .88em; }
"""


def text(key: str, lang: str = "zh", **fields: object) -> str:
    """A report phrase in ``lang`` (plain text; escape before putting it in HTML).

    Examples
    --------
    >>> text("province_title", "en", province="Anhui")
    'Anhui: evaluation of the Action Plan'
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return _TEXT[key][lang].format(**fields)


def heading_html(title: str, *, level: int = 2, note: str | None = None) -> str:
    """An escaped heading, optionally followed by a muted note paragraph.

    Examples
    --------
    >>> heading_html("安徽 <省>", level=1)
    '<h1>安徽 &lt;省&gt;</h1>'
    """
    out = f"<h{level}>{html.escape(title)}</h{level}>"
    if note:
        out += note_html(note)
    return out


def note_html(message: str) -> str:
    """An escaped, muted paragraph.

    Examples
    --------
    >>> note_html("a < b")
    '<p class="note">a &lt; b</p>'
    """
    return f'<p class="note">{html.escape(message)}</p>'


def table_html(frame: pd.DataFrame, *, numeric: Sequence[str] = ()) -> str:
    """An HTML table of ``frame`` without its index; cell text is escaped.

    Columns named in ``numeric`` are right-aligned.

    Examples
    --------
    >>> table_html(pd.DataFrame({"a": ["<b>"]}))
    '<table class="dataframe"><thead><tr><th>a</th></tr></thead><tbody><tr><td>&lt;b&gt;</td></tr></tbody></table>'
    """
    head = "".join(f"<th{_cls(c, numeric)}>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for row in frame.itertuples(index=False):
        cells = "".join(f"<td{_cls(c, numeric)}>{_cell(v)}</td>" for c, v in zip(frame.columns, row))
        body.append(f"<tr>{cells}</tr>")
    # class "dataframe" picks up the table styling of Jupyter and nbconvert.
    return f'<table class="dataframe"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _cls(column: object, numeric: Sequence[str]) -> str:
    return ' class="num"' if column in numeric else ""


def _cell(value: object) -> str:
    if isinstance(value, _Raw):
        return value.html
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "–"
    return html.escape(str(value))


class _Raw:
    """Cell content that is already safe HTML (built here from escaped parts)."""

    def __init__(self, markup: str) -> None:
        self.html = markup


def _link(href: str | None, label: str) -> _Raw | str:
    if not href:
        return "–"
    # Quote the path (spaces, non-ASCII) for the URL, then escape it for the attribute.
    url = html.escape(quote(str(href), safe="/#?=&.-_~"), quote=True)
    return _Raw(f'<a href="{url}">{html.escape(label)}</a>')


def provenance_html(manifest: dict, *, lang: str = "zh", full: bool = False) -> str:
    """The provenance table of a run's manifest; with ``full``, the whole manifest too."""
    out = table_html(provenance_table(manifest, lang=lang))
    if full and manifest:
        dump = json.dumps(manifest, ensure_ascii=False, indent=2, sort_keys=True, default=str)
        out += (
            f"<details><summary>{html.escape(text('manifest', lang))}</summary>"
            f"<pre>{html.escape(dump, quote=False)}</pre></details>"
        )
    return out


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.1f} MB" if size >= 1e6 else f"{max(size / 1e3, 0.1):.1f} kB"


def _provinces_table(tables: RunTables, pages: list[dict], lang: str) -> pd.DataFrame:
    summary = province_summary_table(tables, lang=lang)
    codes = summary.iloc[:, 1].tolist()
    by_code = {str(p["province"]): p for p in pages if p.get("kind") == "province" and p.get("province") is not None}
    for code in sorted(set(by_code) - set(codes)):  # a page for a province without tables
        summary.loc[len(summary)] = [province_name(code, lang), code, *[0] * (summary.shape[1] - 2)]
        codes.append(code)
    summary.insert(2, text("report", lang), [_link(by_code.get(c, {}).get("html"), text("html", lang)) for c in codes])
    summary.insert(
        3,
        text("notebook_column", lang),
        [_link(by_code.get(c, {}).get("ipynb"), text("notebook", lang)) for c in codes],
    )
    return summary.sort_values(summary.columns[1], kind="stable")


def province_intro_html(tables: RunTables, *, province: str, lang: str = "zh") -> str:
    """Title and one-paragraph summary of a province's report."""
    code = str(province)
    summary = province_summary(tables).set_index("province")
    fitted, failed = (
        (int(summary.loc[code, "fitted"]), int(summary.loc[code, "failed"])) if code in summary.index else (0, 0)
    )
    start = tables.start_month(code)
    lede = text(
        "lede_province",
        lang,
        start=month_label(start, lang) if start else "–",
        fitted=fitted,
        failed=failed,
        month=month_label(evaluation_month(tables), lang),
    )
    return heading_html(text("province_title", lang, province=province_name(code, lang)), level=1, note=lede)


def national_intro_html(tables: RunTables, *, lang: str = "zh") -> str:
    """Title and one-paragraph summary of the national report."""
    national = meta_analysis_rows(tables.national)
    method = str(national["method"].iloc[0]).upper() if "method" in national and len(national) else "–"
    hksj = bool(national["hksj"].iloc[0]) if "hksj" in national and len(national) else None
    yes_no = {True: {"zh": "是", "en": "yes"}, False: {"zh": "否", "en": "no"}, None: {"zh": "–", "en": "–"}}
    lede = text("lede_national", lang, method=method, hksj=yes_no[hksj][lang])
    return heading_html(text("national_title", lang), level=1, note=lede)


def write_index(run_dir: str | Path, *, pages: list[dict], lang: str = "zh") -> Path:
    """Write ``run_dir/index.html``: the landing page of an evaluation run.

    The page is self-contained (inline CSS, no external assets) and holds the title of
    the evaluation in Chinese and English, a link to the national summary, a table of
    provinces (report and notebook links, indicators fitted, failures and verdict
    counts), links to every table in ``tables/``, the failures and the provenance.

    Parameters
    ----------
    run_dir : str or Path
        The run directory (see :func:`analysis.report.tables.load_run`).
    pages : list of dict
        Rendered pages: ``{"kind": "national" | "data_quality" | "province", "province": code or None,
        "html": path, "ipynb": path}`` and reports ``{"kind": "report", "lang": "zh" | "en",
        "html": path, "pdf": path, "xlsx": path}``, with paths relative to ``run_dir``.
    lang : {"zh", "en"}
        Language of the page (the title is always shown in both).

    Returns
    -------
    Path
        The written ``index.html``.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    run_dir = Path(run_dir)
    tables = load_run(run_dir)
    other = "en" if lang == "zh" else "zh"
    month = month_label(evaluation_month(tables), lang)
    parts = [heading_html(text("title", lang), level=1), f'<p class="subtitle">{html.escape(text("title", other))}</p>']

    for page in (p for p in pages if p.get("kind") in ("national", "data_quality")):
        name = "national_link" if page.get("kind") == "national" else "quality_link"
        links = [_link(page.get("html"), text(name, lang)), _link(page.get("ipynb"), text("notebook", lang))]
        cells = " · ".join(link.html if isinstance(link, _Raw) else html.escape(link) for link in links)
        parts.append(f'<p class="callout">{cells}</p>')

    for page in (p for p in pages if p.get("kind") == "report"):
        language = text(f"language_{page.get('lang')}", lang)
        links = [
            _link(page.get("html"), text("report_link", lang, language=language)),
            _link(page.get("pdf"), "PDF"),
            _link(page.get("xlsx"), text("workbook", lang)),
        ]
        cells = " · ".join(link.html if isinstance(link, _Raw) else html.escape(link) for link in links)
        parts.append(f'<p class="callout">{cells}</p>')

    parts.append(heading_html(text("provinces", lang), note=text("verdict_note", lang, month=month)))
    provinces = _provinces_table(tables, pages, lang)
    parts.append(table_html(provinces, numeric=list(provinces.columns[4:])))

    parts.append(heading_html(text("tables", lang)))
    files = sorted(p for p in (run_dir / "tables").glob("*") if p.suffix in (".csv", ".parquet") and p.is_file())
    if files:
        listing = pd.DataFrame(
            [[_link(p.relative_to(run_dir).as_posix(), p.name), _size(p)] for p in files],
            columns=[text("file", lang), text("size", lang)],
        )
        parts.append(table_html(listing, numeric=[text("size", lang)]))
    else:
        parts.append(note_html(text("no_tables", lang)))

    parts.append(heading_html(text("failures", lang)))
    failures = failures_table(tables, lang=lang)
    parts.append(table_html(failures) if len(failures) else note_html(text("no_failures", lang)))

    parts.append(heading_html(text("provenance", lang)))
    parts.append(provenance_html(tables.manifest, lang=lang, full=True))

    title = html.escape(text("title", lang))
    document = (
        f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{title}</title>\n'
        f"<style>{CSS}</style>\n</head>\n<body>\n" + "\n".join(parts) + "\n</body>\n</html>\n"
    )
    path = run_dir / "index.html"
    path.write_text(document, encoding="utf-8")
    return path


def run_table_html(
    run_dir: str | Path,
    name: str,
    *,
    lang: str = "zh",
    query: str | None = None,
    columns: Sequence[str] | None = None,
    max_rows: int = 60,
    hint: str = "",
) -> str:
    """A table of the run (``tables/<name>.csv``) made readable, or a note when it is absent.

    ``query`` filters rows (:meth:`pandas.DataFrame.query`), ``columns`` selects columns;
    names of provinces, measures and columns follow ``lang``, and at most ``max_rows`` rows
    are shown (the note says how many there are).
    """
    frame = read_optional(run_dir, name)
    if frame is None:
        return note_html(text("table_missing", lang, name=name, hint=text(hint, lang) if hint else ""))
    if query:
        frame = frame.query(query)
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    frame = frame.reset_index(drop=True)
    if frame.empty:
        return note_html(text("table_empty", lang, name=name))
    shown = readable_table(frame.head(max_rows), lang)
    out = table_html(shown, numeric=readable_numeric_columns(frame, shown, lang))
    if len(frame) > max_rows:
        out += note_html(text("rows_shown", lang, shown=max_rows, total=len(frame), name=name))
    return out
