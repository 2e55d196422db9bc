"""The end-of-plan report of a run: HTML, PDF and an Excel workbook from the run's tables.

``python -m analysis report --from RUN_DIR --out DIR [--lang zh|en]`` calls
:func:`build_report`, which reads the tables an earlier ``run`` wrote (nothing is
re-estimated) and writes:

- ``report-<lang>.html``: the report, with figures in ``figures/<lang>/``;
- ``report-<lang>.pdf``: the same content typeset by Typst, with the CJK font embedded;
- ``report-<lang>.xlsx``: every table of the run (see :mod:`analysis.report.workbook`);
- ``report-<lang>.build.json``: timings and what was rebuilt or reused.

The report is assembled once as a :class:`ReportDocument`, a list of blocks (headings,
paragraphs, lists, tables, figures), and rendered twice, so the HTML and the PDF hold the
same content. Its structure: summary of findings (in the report's language, then in the
other one), methods generated from the run's parameters, national results by the annex's
six dimensions, one profile per province, robustness, power, data quality, forest plots
(appendix A) and reproducibility (appendix B).

Figures are drawn in a process pool and cached by content: a figure (or the workbook) is
redrawn only when the data it shows, the code that draws it or the language changed, so a
rebuild from unchanged tables reuses them.
"""

from __future__ import annotations

import hashlib
import html
import json
import os
import struct
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.registry import get_indicator, indicators
from analysis.report import narrative
from analysis.report.site import CSS  # the run's pages and the report share one style
from analysis.report.tables import (
    LANGS,
    RunTables,
    classify,
    diagnostics_overview,
    evaluation_month,
    failures_table,
    load_run,
    month_label,
    national_table,
    province_effects_table,
    province_name,
    province_summary_table,
    read_optional,
    readable_numeric_columns,
    readable_table,
    verdict_label,
    verdicts,
)

__all__ = [
    "Block",
    "FigureBlock",
    "Heading",
    "ListBlock",
    "PageBreak",
    "Paragraph",
    "ReportBuild",
    "ReportDocument",
    "TableBlock",
    "build_report",
    "report_document",
    "text",
]

#: Optional tables of a run, rendered when present (file name in ``tables/``).
OPTIONAL_TABLES = {"robustness": "robustness.csv", "power": "power.csv", "data_quality": "data_quality.csv"}
#: Rows of an optional table shown in the report; the workbook always has all of them.
MAX_ROWS = 60
#: Usable width of an A4 page with the template's margins, and the tallest figure (mm).
TEXT_WIDTH_MM = 174.0
MAX_FIGURE_HEIGHT_MM = {"province": 222.0, "forest": 205.0, "overview": 150.0, "event_time": 110.0}
#: Resolution of the figures: the province panels are large (about 16 x 21 inches) and
#: costly to draw, so they keep the figures module's default; the others are small.
FIGURE_DPI = {"province": 90, "forest": 150, "overview": 150, "event_time": 150}

_TEXT: dict[str, dict[str, str]] = {
    "header": {
        "zh": "全面提升医疗质量行动计划（2023—2025年）期末评估",
        "en": "Action Plan for Medical Quality 2023–2025: end-of-plan evaluation",
    },
    "author": {"zh": "plan-its 中断时间序列评估", "en": "plan-its interrupted time-series evaluation"},
    "contents": {"zh": "目录", "en": "Contents"},
    "meta_data": {"zh": "数据", "en": "Data"},
    "meta_run": {"zh": "运行时间", "en": "Run"},
    "meta_revision": {"zh": "代码版本", "en": "Code revision"},
    "meta_month": {"zh": "效应评估月", "en": "Effects evaluated at"},
    "meta_scope": {"zh": "范围", "en": "Scope"},
    "meta_scope_value": {
        "zh": "{n_prov} 个省级单位，{n_ind} 项监测指标，{n_series} 个序列",
        "en": "{n_prov} provincial units, {n_ind} monitoring indicators, {n_series} series",
    },
    "summary": {"zh": "主要发现", "en": "Summary of findings"},
    "summary_other": {"zh": "Summary of findings (English)", "en": "主要发现（中文）"},
    "by_dimension": {"zh": "分维度", "en": "By dimension"},
    "improvements": {"zh": "改善的指标", "en": "Indicators that improved"},
    "deteriorations": {"zh": "恶化的指标", "en": "Indicators that deteriorated"},
    "unclear": {"zh": "无明确变化的指标", "en": "Indicators without a clear change"},
    "caveats": {"zh": "解读须知", "en": "Reading these results"},
    "counts_caption": {
        "zh": "各维度的全国结论（{month}相对效应）",
        "en": "National verdicts by dimension (relative effect at {month})",
    },
    "col_dimension": {"zh": "维度", "en": "Dimension"},
    "col_indicators": {"zh": "指标数", "en": "Indicators"},
    "col_strong": {"zh": "其中证据较强的改善", "en": "Improved, strong evidence"},
    "methods": {"zh": "方法", "en": "Methods"},
    "national": {"zh": "全国结果：按附件六个维度", "en": "National results by the annex's six dimensions"},
    "national_intro": {
        "zh": "各维度依次给出全国合并的{month}相对效应图（点与 95% 置信区间，按指标导向着色）和全部全国合并效应；各省估计值的森林图见附录 A。",
        "en": "For each dimension: the pooled relative effect at {month} (point and 95% CI, coloured by verdict "
        "given the indicator's direction) and every pooled effect; forest plots of the provincial "
        "estimates are in appendix A.",
    },
    "overview_caption": {
        "zh": "{dimension}：全国合并的{month}相对效应（随机效应，95% CI；对数比值刻度，单位 %）",
        "en": "{dimension}: national pooled relative effect at {month} (random effects, 95% CI; log-ratio axis, in %)",
    },
    "national_caption": {"zh": "{dimension}：全国合并效应", "en": "{dimension}: national pooled effects"},
    "status_items": {"zh": "状态类指标：", "en": "Status items:"},
    "provinces": {"zh": "各省概况", "en": "Provincial profiles"},
    "provinces_intro": {
        "zh": "每省一页小多图：观测值（点）、模型拟合值（实线）、无计划反事实及其 95% 置信带（虚线与阴影）、本省计划起始（竖线）、"
        "过渡期（浅蓝）与新冠冲击月（灰）；纵轴为各指标的显示单位，各格角上为{month}相对效应（95% CI）。随后是该省的效应表。",
        "en": "One page of small multiples per province: observed months (points), the fitted model (solid), the "
        "counterfactual without the plan with its 95% confidence band (dashed, shaded), the provincial plan "
        "start (vertical line), the wash-in (light blue) and COVID-19 shock months (grey); the vertical axes "
        "are in each indicator's display unit and each panel's corner gives the relative effect at {month} "
        "(95% CI). The province's table of effects follows.",
    },
    "provinces_caption": {
        "zh": "各省结论计数（{month}相对效应）",
        "en": "Verdicts by province (relative effect at {month})",
    },
    "province_figure": {
        "zh": "{province}：各指标的观测值、拟合值与反事实",
        "en": "{province}: observed, fitted and counterfactual values of each indicator",
    },
    "province_table": {"zh": "{province}：{month}效应", "en": "{province}: effects at {month}"},
    "no_predictions": {"zh": "本省没有可绘制的拟合序列。", "en": "No fitted series to draw for this province."},
    "robustness": {"zh": "稳健性分析", "en": "Robustness"},
    "power": {"zh": "检验效能", "en": "Power"},
    "data_quality": {"zh": "数据质量", "en": "Data quality"},
    "not_computed": {
        "zh": "本次运行未计算{what}：运行目录中没有 tables/{file}。",
        "en": "{what} was not computed in this run: the run directory has no tables/{file}.",
    },
    "empty_table": {
        "zh": "{what}（tables/{file}）没有记录：本次运行没有需要列出的内容。",
        "en": "{what} (tables/{file}) has no rows: there was nothing to list in this run.",
    },
    "what_robustness": {"zh": "稳健性分析", "en": "Robustness analysis"},
    "what_power": {"zh": "检验效能分析", "en": "Power analysis"},
    "what_data_quality": {"zh": "数据质量检查表", "en": "The data-quality table"},
    "optional_caption": {"zh": "{title}（tables/{file}）", "en": "{title} (tables/{file})"},
    "truncated": {
        "zh": "仅显示前 {shown} 行（共 {total} 行）；完整表格见工作簿的“{sheet}”工作表。",
        "en": "Showing the first {shown} of {total} rows; the workbook's sheet '{sheet}' has them all.",
    },
    "recovery": {"zh": "已知真值的还原（合成数据）", "en": "Recovery of the known truth (synthetic data)"},
    "recovery_intro": {
        "zh": "本次运行的数据附有已知真值：下表给出 95% 置信区间对真值的覆盖率、真实效应为零的序列中被判为显著的比例（假阳性率）、"
        "真实效应非零的序列中被判为显著的比例（检验效能）以及绝对误差中位数（不含受未建模的共同干预影响的序列）。",
        "en": "The data of this run come with a known truth: the table gives the share of 95% CIs covering the "
        "true value, the share of true-zero effects found significant (false-positive rate), the share of "
        "non-zero effects found significant (power) and the median absolute error (series confounded by an "
        "unmodelled co-intervention left out).",
    },
    "recovery_caption": {"zh": "估计值与已知真值的对照", "en": "Estimates against the known truth"},
    "failures": {"zh": "拟合失败的序列", "en": "Series that could not be fitted"},
    "no_failures": {"zh": "所有序列均拟合成功。", "en": "Every series was fitted."},
    "diagnostics": {"zh": "残差诊断（按指标汇总各省）", "en": "Residual diagnostics by indicator (across provinces)"},
    "diagnostics_note": {
        "zh": "AR(1) φ 为潜在自相关估计；Ljung-Box P<0.05 的序列数提示模型之后仍存在残差自相关（标准误已按潜在 AR(1) 处理时，这属于预期）。",
        "en": "AR(1) φ is the estimated latent autocorrelation; series with a Ljung-Box p below 0.05 have residual "
        "autocorrelation left after the model (expected where the covariance allows for a latent AR(1)).",
    },
    "forests": {"zh": "附录 A：分指标森林图", "en": "Appendix A: forest plots by indicator"},
    "forests_intro": {
        "zh": "每项指标一幅：各省{month}相对效应及 95% 置信区间（按估计值排序，按结论着色与区分形状），底部菱形为全国随机效应合并估计，细线为 95% 预测区间。",
        "en": "One plot per indicator: each province's relative effect at {month} with its 95% CI (ordered by "
        "estimate, coloured and shaped by verdict); the diamond at the bottom is the national random-effects "
        "estimate and the thin line its 95% prediction interval.",
    },
    "event_time": {"zh": "按实施月数的效应（分期启动）", "en": "Effects by months since the start (staggered starts)"},
    "event_time_intro": {
        "zh": "各省启动月份不同：第 0 月为各省自己的启动月。每幅图为主要指标的全国合并相对效应（随机效应，95% CI），"
        "只汇总所有省份均有观测的月数；每个省份只与其自身启动前的反事实比较，因此不存在以已实施省份为对照的问题。"
        "全部指标见 tables/event_time_national.csv。",
        "en": "Provinces started in different months: month 0 is each province's own start. Each plot shows a primary "
        "indicator's national relative effect (random effects, 95% CI) over the months observed in every province; "
        "each province is compared only with its own pre-start counterfactual, so no province that has already "
        "started serves as a control. All indicators: tables/event_time_national.csv.",
    },
    "event_time_caption": {
        "zh": "指标 {number}（{name}）：按启动后月数的全国相对效应",
        "en": "Indicator {number} ({name}): national relative effect by months since the start",
    },
    "forest_caption": {
        "zh": "指标 {number}（{name}）：各省与全国的{month}相对效应",
        "en": "Indicator {number} ({name}): provincial and national relative effects at {month}",
    },
    "reproducibility": {"zh": "附录 B：可重复性", "en": "Appendix B: reproducibility"},
    "reproducibility_intro": {
        "zh": "以下信息来自运行清单（manifest.json）及本报告读取的数据表，足以在相同代码版本下复现全部结果。",
        "en": "From the run manifest (manifest.json) and the tables this report read: enough to reproduce every "
        "result with the same code revision.",
    },
    "run_caption": {"zh": "运行信息", "en": "Run"},
    "inputs_caption": {"zh": "输入文件及 SHA-256 校验值", "en": "Input files and SHA-256 checksums"},
    "parameters_caption": {"zh": "模型与运行参数", "en": "Model and run parameters"},
    "versions_caption": {"zh": "软件版本", "en": "Software versions"},
    "tables_caption": {"zh": "本报告读取的数据表", "en": "Tables read by this report"},
    "timings_caption": {"zh": "运行各阶段耗时", "en": "Stage timings of the run"},
    "no_manifest": {
        "zh": "运行目录中没有 manifest.json，无法给出输入校验值与参数。",
        "en": "The run directory has no manifest.json: input checksums and parameters are unknown.",
    },
    "item": {"zh": "项目", "en": "Item"},
    "value": {"zh": "内容", "en": "Value"},
    "role": {"zh": "角色", "en": "Role"},
    "path": {"zh": "路径", "en": "Path"},
    "rows": {"zh": "行数", "en": "Rows"},
    "bytes": {"zh": "字节", "en": "Bytes"},
    "sha256": {"zh": "SHA-256", "en": "SHA-256"},
    "parameter": {"zh": "参数", "en": "Parameter"},
    "package": {"zh": "软件包", "en": "Package"},
    "version": {"zh": "版本", "en": "Version"},
    "file": {"zh": "文件", "en": "File"},
    "stage": {"zh": "阶段", "en": "Stage"},
    "seconds": {"zh": "秒", "en": "Seconds"},
    "used_by_report": {"zh": "（生成本报告）", "en": " (this report)"},
    "dirty": {"zh": "（含未提交修改）", "en": " (with uncommitted changes)"},
    "yes": {"zh": "是", "en": "yes"},
    "no": {"zh": "否", "en": "no"},
    "figure": {"zh": "图", "en": "Figure"},
    "table": {"zh": "表", "en": "Table"},
}


def text(key: str, lang: str = "zh", **fields: object) -> str:
    """A phrase of the report in ``lang``.

    Examples
    --------
    >>> text("robustness", "en"), text("robustness", "zh")
    ('Robustness', '稳健性分析')
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return _TEXT[key][lang].format(**fields)


def _other(lang: str) -> str:
    return "en" if lang == "zh" else "zh"


# ---------------------------------------------------------------------------------------
# The document: blocks rendered to HTML and to Typst data
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heading:
    """A section heading (level 1 starts a new page in the PDF)."""

    text: str
    level: int = 1
    key: str | None = None


@dataclass(frozen=True)
class Paragraph:
    """Plain text; ``style`` is ``body``, ``lede``, ``note``, ``callout`` or ``mono``."""

    text: str
    style: str = "body"


@dataclass(frozen=True)
class ListBlock:
    """A bulleted list."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class TableBlock:
    """A table of formatted text cells.

    ``numeric`` columns are right-aligned; ``tones`` gives each row's verdict (or None),
    shown in colour in column ``tone_column``; ``widths`` gives relative widths (a number
    for a flexible column, ``"auto"`` for a fitted one); ``key`` names the table for tests
    and links.
    """

    frame: pd.DataFrame
    caption: str | None = None
    key: str | None = None
    numeric: tuple[str, ...] = ()
    tones: tuple[str | None, ...] | None = None
    tone_column: str | None = None
    widths: tuple[float | str, ...] | None = None
    size: float = 7.5


@dataclass(frozen=True)
class FigureBlock:
    """A PNG figure (path relative to the report directory) with its caption."""

    path: str
    caption: str
    alt: str
    width_mm: float
    key: str | None = None


@dataclass(frozen=True)
class PageBreak:
    """Start a new page in the PDF (no effect in HTML)."""


Block = Heading | Paragraph | ListBlock | TableBlock | FigureBlock | PageBreak


@dataclass
class ReportDocument:
    """The whole report as blocks, with its title page."""

    lang: str
    title: str
    subtitle: str
    meta: list[tuple[str, str]]
    notice: str | None
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)

    @property
    def headings(self) -> list[Heading]:
        return [b for b in self.blocks if isinstance(b, Heading)]

    @property
    def tables(self) -> list[TableBlock]:
        return [b for b in self.blocks if isinstance(b, TableBlock)]

    @property
    def figures(self) -> list[FigureBlock]:
        return [b for b in self.blocks if isinstance(b, FigureBlock)]

    # -- Typst --------------------------------------------------------------------------
    def to_typst(self) -> dict[str, Any]:
        """The document as data for ``templates/report.typ``."""
        blocks = []
        for b in self.blocks:
            if isinstance(b, Heading):
                blocks.append({"kind": "heading", "level": b.level, "text": b.text})
            elif isinstance(b, Paragraph):
                blocks.append({"kind": "paragraph", "text": b.text, "style": b.style})
            elif isinstance(b, ListBlock):
                blocks.append({"kind": "list", "items": list(b.items)})
            elif isinstance(b, TableBlock):
                columns = [str(c) for c in b.frame.columns]
                blocks.append(
                    {
                        "kind": "table",
                        "caption": b.caption,
                        "columns": columns,
                        "rows": [[_cell_text(v) for v in row] for row in b.frame.itertuples(index=False)],
                        "align": ["right" if c in b.numeric else "left" for c in b.frame.columns],
                        "widths": list(b.widths) if b.widths else None,
                        "size": b.size,
                        "tones": list(b.tones) if b.tones is not None else None,
                        "tone_column": columns.index(b.tone_column) if b.tone_column in columns else None,
                    }
                )
            elif isinstance(b, FigureBlock):
                blocks.append(
                    {
                        "kind": "figure",
                        "path": "/" + b.path,
                        "caption": b.caption,
                        "alt": b.alt,
                        "width_mm": round(b.width_mm, 1),
                    }
                )
            elif isinstance(b, PageBreak):
                blocks.append({"kind": "pagebreak"})
        return {
            "title": self.title,
            "subtitle": self.subtitle,
            "author": text("author", self.lang),
            "header": text("header", self.lang),
            "lang": self.lang,
            "region": "cn" if self.lang == "zh" else "gb",
            "meta": [list(m) for m in self.meta],
            "notice": self.notice,
            "contents_title": text("contents", self.lang),
            "blocks": blocks,
        }

    # -- HTML ---------------------------------------------------------------------------
    def to_html(self) -> str:
        """A self-standing HTML page (figures linked from ``figures/``)."""
        lang = self.lang
        esc = html.escape
        body: list[str] = []
        toc: list[str] = []
        numbers = [0, 0]
        n_fig = n_tab = 0
        for i, b in enumerate(self.blocks):
            if isinstance(b, Heading):
                anchor = b.key or f"s{i}"
                label = b.text
                if b.level <= 2:
                    if b.level == 1:
                        numbers = [numbers[0] + 1, 0]
                        label = f"{numbers[0]} {b.text}"
                    else:
                        numbers[1] += 1
                        label = f"{numbers[0]}.{numbers[1]} {b.text}"
                    toc.append(f'<li class="l{b.level}"><a href="#{esc(anchor, quote=True)}">{esc(label)}</a></li>')
                body.append(f'<h{b.level + 1} id="{esc(anchor, quote=True)}">{esc(label)}</h{b.level + 1}>')
            elif isinstance(b, Paragraph):
                cls = {
                    "body": "",
                    "lede": ' class="lede"',
                    "note": ' class="note"',
                    "callout": ' class="callout"',
                    "mono": ' class="mono"',
                }[b.style]
                body.append(f"<p{cls}>{esc(b.text)}</p>")
            elif isinstance(b, ListBlock):
                body.append("<ul>" + "".join(f"<li>{esc(item)}</li>" for item in b.items) + "</ul>")
            elif isinstance(b, TableBlock):
                n_tab += 1
                body.append(_table_html(b, f"{text('table', lang)} {n_tab}", lang))
            elif isinstance(b, FigureBlock):
                n_fig += 1
                caption = f"{text('figure', lang)} {n_fig}{'：' if lang == 'zh' else ': '}{b.caption}"
                body.append(
                    f'<figure id="{esc(b.key or f"f{n_fig}", quote=True)}"><img src="{esc(b.path, quote=True)}" '
                    f'alt="{esc(b.alt, quote=True)}" loading="lazy">'
                    f"<figcaption>{esc(caption)}</figcaption></figure>"
                )
        meta = "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in self.meta)
        notice = f'<p class="callout">{esc(self.notice)}</p>' if self.notice else ""
        head = (
            f'<header><h1>{esc(self.title)}</h1><p class="subtitle">{esc(self.subtitle)}</p>'
            f'<table class="meta">{meta}</table>{notice}</header>'
            f'<nav><h2>{esc(text("contents", lang))}</h2><ol class="toc">{"".join(toc)}</ol></nav>'
        )
        return (
            f'<!DOCTYPE html>\n<html lang="{"zh-CN" if lang == "zh" else "en"}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{esc(self.title)}</title>\n'
            f"<style>{CSS}{_REPORT_CSS}</style>\n</head>\n<body>\n{head}\n<main>\n"
            + "\n".join(body)
            + "\n</main>\n</body>\n</html>\n"
        )


_REPORT_CSS = """
h2 { font-size: 1.35rem; margin-top: 2.6rem; color: var(--accent); }
h3 { font-size: 1.12rem; margin: 1.8rem 0 .5rem; }
h4 { font-size: 1.0rem; margin: 1.4rem 0 .4rem; color: var(--accent); }
p.lede { font-size: 1.08rem; }
p.mono { font-size: .85rem; }
table.meta { width: auto; font-size: .9rem; } table.meta th { background: none; color: var(--muted); font-weight: 400; }
nav ol.toc { list-style: none; padding-left: 0; columns: 2; font-size: .92rem; }
nav li.l2 { padding-left: 1.2rem; }
figure { margin: 1rem 0 1.6rem; } figure img { max-width: 100%; height: auto; border: 1px solid var(--rule); }
figcaption, caption { color: var(--muted); font-size: .88rem; text-align: left; padding: .3rem 0; caption-side: top; }
td.improvement { color: #007a5a; font-weight: 600; } td.deterioration { color: #b34700; font-weight: 600; }
td.inconclusive { color: var(--muted); }
"""


def _cell_text(value: object) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "–"
    return str(value)


def _table_html(b: TableBlock, label: str, lang: str) -> str:
    esc = html.escape
    columns = list(b.frame.columns)
    num = ' class="num"'
    head = "".join(f"<th{num if c in b.numeric else ''}>{esc(str(c))}</th>" for c in columns)
    rows = []
    for r, row in enumerate(b.frame.itertuples(index=False)):
        cells = []
        for c, value in zip(columns, row):
            classes = ["num"] if c in b.numeric else []
            if b.tones is not None and c == b.tone_column and b.tones[r]:
                classes.append(b.tones[r])
            attr = f' class="{" ".join(classes)}"' if classes else ""
            cells.append(f"<td{attr}>{esc(_cell_text(value))}</td>")
        rows.append(f"<tr>{''.join(cells)}</tr>")
    caption = f"<caption>{esc(label)}{'：' if lang == 'zh' else ': '}{esc(b.caption)}</caption>" if b.caption else ""
    key = f' id="{esc(b.key, quote=True)}"' if b.key else ""
    return (
        f'<table class="dataframe"{key}>{caption}<thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    )


# ---------------------------------------------------------------------------------------
# Figures: tasks drawn in a process pool, cached by content
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureTask:
    """One figure to draw: what (kind, subject), from which rows, to which file."""

    kind: str  # "province", "forest", "overview" or "event_time"
    subject: str
    lang: str
    path: Path
    frames: dict[str, pd.DataFrame]
    month: str
    dpi: int

    @property
    def name(self) -> str:
        return self.path.name

    def key(self, code_version: str) -> str:
        digest = hashlib.sha256()
        digest.update(json.dumps([self.kind, self.subject, self.lang, self.month, self.dpi, code_version]).encode())
        for name in sorted(self.frames):
            frame = self.frames[name]
            digest.update(name.encode())
            digest.update(json.dumps([str(c) for c in frame.columns]).encode())
            digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()


def _draw(task: FigureTask) -> tuple[str, float]:
    """Draw and save one figure (runs in a worker process)."""
    from analysis.report import figures

    start = time.perf_counter()
    frames = task.frames
    if task.kind == "province":
        fig = figures.province_panels(
            frames["predictions"],
            frames["effects"],
            frames["diagnostics"],
            province=task.subject,
            lang=task.lang,
            dpi=task.dpi,
        )
    elif task.kind == "forest":
        fig = figures.indicator_forest(
            frames["effects"], frames["national"], indicator=int(task.subject), lang=task.lang, dpi=task.dpi
        )
    elif task.kind == "overview":
        fig = figures.national_overview(frames["national"], lang=task.lang, month=task.month, dpi=task.dpi)
    elif task.kind == "event_time":
        from analysis.report.event_time_figure import event_time_figure

        fig = event_time_figure(frames["pooled"], indicator=int(task.subject), lang=task.lang, dpi=task.dpi)
    else:
        raise ValueError(f"unknown figure kind {task.kind!r}")
    task.path.parent.mkdir(parents=True, exist_ok=True)
    tmp = task.path.with_suffix(".tmp.png")
    figures.save_figure(fig, tmp, dpi=task.dpi)
    os.replace(tmp, task.path)  # a half-written file never looks like a cached figure
    fig.clear()
    return task.name, time.perf_counter() - start


def _png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as handle:
        head = handle.read(24)
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def _source_digest(*modules: str) -> str:
    import importlib
    from importlib import metadata

    digest = hashlib.sha256()
    for name in modules:
        module = importlib.import_module(name)
        digest.update(Path(module.__file__).read_bytes())
    for dist in ("matplotlib", "mplfonts", "openpyxl"):
        try:
            digest.update(f"{dist}={metadata.version(dist)}".encode())
        except metadata.PackageNotFoundError:
            pass
    return digest.hexdigest()[:16]


# ---------------------------------------------------------------------------------------
# Formatting helpers
# ---------------------------------------------------------------------------------------


def _key_value(
    rows: Sequence[tuple[str, object]], lang: str, *, key: str, caption: str, first: str = "item", second: str = "value"
) -> TableBlock:
    frame = pd.DataFrame([(k, _cell_text(v)) for k, v in rows], columns=[text(first, lang), text(second, lang)])
    return TableBlock(frame, caption=caption, key=key, widths=("auto", 1))


# ---------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------


def _dimensions() -> list[tuple[str, str, list[int]]]:
    out: dict[str, tuple[str, str, list[int]]] = {}
    for ind in indicators():
        out.setdefault(ind.dimension_zh, (ind.dimension_zh, ind.dimension_en, []))[2].append(ind.number)
    return list(out.values())


def _summary_blocks(
    doc: ReportDocument,
    tables: RunTables,
    lang: str,
    *,
    findings: pd.DataFrame,
    heading_key: str,
    title: str,
    full: bool = True,
) -> None:
    s = narrative.summary(tables, lang)
    month = month_label(evaluation_month(tables), lang)
    doc.add(Heading(title, 1, heading_key), Paragraph(s.headline, "lede"))
    doc.add(*(Paragraph(p) for p in s.paragraphs))
    doc.add(Heading(text("by_dimension", lang), 2), ListBlock(tuple(s.dimensions)))
    if full and len(findings):
        rows = []
        for zh, en, numbers in _dimensions():
            sub = findings[findings["indicator"].isin(numbers)]
            if sub.empty:
                continue
            count = sub["verdict"].value_counts()
            rows.append(
                [
                    zh if lang == "zh" else en,
                    len(sub),
                    *(int(count.get(v, 0)) for v in ("improvement", "deterioration", "inconclusive")),
                    int(((sub["verdict"] == "improvement") & (sub["certainty"] == "strong")).sum()),
                ]
            )
        columns = [
            text("col_dimension", lang),
            text("col_indicators", lang),
            *(verdict_label(v, lang).capitalize() for v in ("improvement", "deterioration", "inconclusive")),
            text("col_strong", lang),
        ]
        frame = pd.DataFrame(rows, columns=columns)
        doc.add(
            TableBlock(
                frame,
                caption=text("counts_caption", lang, month=month),
                key=f"{heading_key}-counts",
                numeric=tuple(columns[1:]),
                widths=(1, "auto", "auto", "auto", "auto", "auto"),
                size=8.5,
            )
        )
    for key, items in (
        ("improvements", s.improvements),
        ("deteriorations", s.deteriorations),
        ("unclear", s.inconclusive),
    ):
        if items:
            doc.add(Heading(text(key, lang), 2), ListBlock(tuple(items)))
    doc.add(Heading(text("caveats", lang), 2), *(Paragraph(c, "callout") for c in s.caveats))


def _methods_blocks(doc: ReportDocument, tables: RunTables, lang: str, versions: dict[str, str]) -> None:
    doc.add(Heading(text("methods", lang), 1, "methods"))
    for section in narrative.methods_sections(tables, lang, report_versions=versions):
        doc.add(Heading(section.title, 2, f"methods-{section.key}"), *(Paragraph(p) for p in section.paragraphs))
        if section.items:
            doc.add(ListBlock(section.items))


def _national_tones(tables: RunTables, numbers: list[int]) -> tuple[str | None, ...]:
    relative = tables.national[tables.national["measure"] == "effect_end_relative"].set_index("indicator")
    tones = []
    for number in numbers:
        if number in relative.index:
            r = relative.loc[number]
            tones.append(classify(r["estimate"], r["ci_low"], r["ci_high"], get_indicator(int(number)).direction))
        else:
            tones.append(None)
    return tuple(tones)


def _national_blocks(
    doc: ReportDocument, tables: RunTables, lang: str, figure: Callable[..., FigureBlock | None], findings: pd.DataFrame
) -> None:
    month = evaluation_month(tables)
    doc.add(
        Heading(text("national", lang), 1, "national"),
        Paragraph(text("national_intro", lang, month=month_label(month, lang))),
    )
    full = national_table(tables, lang=lang)
    number_col, dimension_col, verdict_col = full.columns[0], full.columns[1], full.columns[-1]
    for index, (zh, en, numbers) in enumerate(_dimensions(), start=1):
        name = zh if lang == "zh" else en
        doc.add(Heading(name, 2, f"dimension-{index}"), Paragraph(narrative.dimension_sentence(findings, zh, lang)))
        status = [n for n in numbers if not get_indicator(n).is_quantitative]
        if status:
            doc.add(
                Paragraph(text("status_items", lang), "note"),
                ListBlock(tuple(f"{n} {get_indicator(n).name(lang)}" for n in status)),
            )
        rows = full[full[number_col].isin(numbers)].drop(columns=[dimension_col])
        if rows.empty:
            continue
        block = figure(
            "overview",
            str(index),
            caption=text("overview_caption", lang, dimension=name, month=month_label(month, lang)),
        )
        if block is not None:
            doc.add(block)
        shown_numbers = [int(n) for n in rows[number_col]]
        # number, name, unit, direction, relative, PI, p, absolute, cumulative total, k, I², τ², verdict
        widths = (0.6, 2.0, 0.8, 0.75, 1.7, 1.4, 0.65, 1.75, 1.9, 0.55, 0.6, 0.8, 0.85)
        doc.add(
            TableBlock(
                rows.reset_index(drop=True),
                caption=text("national_caption", lang, dimension=name),
                key=f"national-{index}",
                numeric=(rows.columns[0], *rows.columns[9:12]),
                tones=_national_tones(tables, shown_numbers),
                tone_column=verdict_col,
                widths=widths,
                size=7,
            )
        )


def _province_blocks(
    doc: ReportDocument, tables: RunTables, lang: str, figure: Callable[..., FigureBlock | None]
) -> None:
    month = evaluation_month(tables)
    doc.add(
        Heading(text("provinces", lang), 1, "provinces"),
        Paragraph(text("provinces_intro", lang, month=month_label(month, lang))),
    )
    summary = province_summary_table(tables, lang=lang)
    doc.add(
        TableBlock(
            summary,
            caption=text("provinces_caption", lang, month=month_label(month, lang)),
            key="provinces-summary",
            numeric=tuple(summary.columns[2:]),
            size=8,
        )
    )
    judged = verdicts(tables.effects)
    with_predictions = set(tables.predictions["province"]) if len(tables.predictions) else set()
    for code in tables.provinces:
        name = province_name(code, lang)
        doc.add(
            PageBreak(),
            Heading(name, 3, f"province-{code}"),
            Paragraph(narrative.province_sentence(tables, code, lang)),
        )
        block = (
            figure("province", code, caption=text("province_figure", lang, province=name))
            if code in with_predictions
            else None
        )
        doc.add(block if block is not None else Paragraph(text("no_predictions", lang), "note"))
        effects = province_effects_table(tables, province=code, lang=lang)
        if len(effects):
            doc.add(PageBreak())
            own = judged[judged["province"] == code].set_index("indicator")["verdict"]
            tones = tuple(own.get(int(n)) for n in effects.iloc[:, 0])
            doc.add(
                TableBlock(
                    effects,
                    caption=text("province_table", lang, province=name, month=month_label(month, lang)),
                    key=f"province-{code}",
                    numeric=(effects.columns[0], effects.columns[5]),
                    tones=tones,
                    tone_column=effects.columns[-1],
                    widths=(0.45, 3.0, 1.1, 2.1, 2.1, 0.7, 0.8),
                )
            )
        failed = failures_table(tables, province=code, lang=lang)
        if len(failed):
            doc.add(
                TableBlock(
                    failed,
                    caption=text("failures", lang),
                    key=f"failures-{code}",
                    widths=("auto", "auto", 1, "auto", "auto", 1.5),
                )
            )


def _optional_table(doc: ReportDocument, tables: RunTables, lang: str, name: str, title: str) -> None:
    file = OPTIONAL_TABLES[name]
    frame = read_optional(tables.run_dir, Path(file).stem)
    if frame is None:
        doc.add(Paragraph(text("not_computed", lang, what=text(f"what_{name}", lang), file=file), "note"))
        return
    if frame.empty:
        doc.add(Paragraph(text("empty_table", lang, what=text(f"what_{name}", lang), file=file), "note"))
        return
    shown = readable_table(frame.head(MAX_ROWS), lang)
    size = 7.5 if len(shown.columns) <= 9 else 6.5 if len(shown.columns) <= 14 else 5.5
    doc.add(
        TableBlock(
            shown,
            caption=text("optional_caption", lang, title=title, file=file),
            key=name,
            numeric=readable_numeric_columns(frame, shown, lang),
            size=size,
        )
    )
    if len(frame) > MAX_ROWS:
        doc.add(Paragraph(text("truncated", lang, shown=MAX_ROWS, total=len(frame), sheet=name), "note"))


def _quality_blocks(doc: ReportDocument, tables: RunTables, lang: str) -> None:
    doc.add(Heading(text("robustness", lang), 1, "robustness"))
    _optional_table(doc, tables, lang, "robustness", text("robustness", lang))
    recovery = tables.run_dir / "tables" / "recovery_summary.csv"
    if recovery.is_file():
        frame = pd.read_csv(recovery)
        shown = readable_table(frame, lang)
        doc.add(
            Heading(text("recovery", lang), 2),
            Paragraph(text("recovery_intro", lang)),
            TableBlock(
                shown,
                caption=text("recovery_caption", lang),
                key="recovery",
                numeric=readable_numeric_columns(frame, shown, lang),
                size=8,
            ),
        )

    doc.add(Heading(text("power", lang), 1, "power"))
    _optional_table(doc, tables, lang, "power", text("power", lang))

    doc.add(Heading(text("data_quality", lang), 1, "data-quality"))
    _optional_table(doc, tables, lang, "data_quality", text("data_quality", lang))
    doc.add(Heading(text("failures", lang), 2))
    failed = failures_table(tables, lang=lang)
    doc.add(
        TableBlock(failed, key="failures", widths=("auto", "auto", 1, "auto", "auto", 1.5))
        if len(failed)
        else Paragraph(text("no_failures", lang))
    )
    overview = diagnostics_overview(tables, lang=lang)
    if len(overview):
        doc.add(
            Heading(text("diagnostics", lang), 2),
            Paragraph(text("diagnostics_note", lang), "note"),
            TableBlock(
                overview,
                key="diagnostics",
                numeric=tuple(overview.columns[2:]),
                widths=("auto", 1, *("auto",) * (len(overview.columns) - 2)),
            ),
        )


def _event_time_blocks(
    doc: ReportDocument, tables: RunTables, lang: str, figure: Callable[..., FigureBlock | None]
) -> None:
    numbers = _event_time_indicators(tables)
    if not numbers:
        return
    doc.add(Heading(text("event_time", lang), 1, "event-time"), Paragraph(text("event_time_intro", lang)))
    for number in numbers:
        block = figure(
            "event_time",
            str(number),
            caption=text("event_time_caption", lang, number=number, name=get_indicator(int(number)).name(lang)),
        )
        if block is not None:
            doc.add(block)


def _event_time_curves(tables: RunTables) -> pd.DataFrame | None:
    return read_optional(tables.run_dir, "event_time_national")


def _event_time_indicators(tables: RunTables) -> list[int]:
    """The primary indicators declared in the run's parameters that have an event-time curve."""
    curves = _event_time_curves(tables)
    if curves is None or curves.empty:
        return []
    primary = (tables.manifest.get("parameters") or {}).get("primary_indicators") or []
    return sorted({int(n) for n in primary} & set(curves["indicator"].astype(int)))


def _forest_blocks(
    doc: ReportDocument, tables: RunTables, lang: str, figure: Callable[..., FigureBlock | None]
) -> None:
    month = evaluation_month(tables)
    numbers = sorted(set(tables.effects.loc[tables.effects["measure"] == "effect_end_relative", "indicator"]))
    if not numbers:
        return
    doc.add(
        Heading(text("forests", lang), 1, "forests"),
        Paragraph(text("forests_intro", lang, month=month_label(month, lang))),
    )
    for number in numbers:
        block = figure(
            "forest",
            str(number),
            caption=text(
                "forest_caption",
                lang,
                number=number,
                name=get_indicator(int(number)).name(lang),
                month=month_label(month, lang),
            ),
        )
        if block is not None:
            doc.add(block)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _reproducibility_blocks(
    doc: ReportDocument, tables: RunTables, lang: str, versions: dict[str, str], table_files: dict[str, dict[str, Any]]
) -> None:
    manifest = tables.manifest
    doc.add(
        Heading(text("reproducibility", lang), 1, "reproducibility"), Paragraph(text("reproducibility_intro", lang))
    )
    if not manifest:
        doc.add(Paragraph(text("no_manifest", lang), "callout"))
    package = manifest.get("package") or {}
    revision = manifest.get("code_revision") or {}
    run_rows: list[tuple[str, object]] = []
    if package:
        run_rows.append(("package", f"{package.get('name', '')} {package.get('version', '')}".strip()))
    if revision:
        run_rows.append(("code_revision", revision.get("commit")))
        run_rows.append(("uncommitted_changes", text("yes" if revision.get("dirty") else "no", lang)))
    for key in ("python", "platform", "started", "finished"):
        if manifest.get(key):
            run_rows.append((key, manifest[key]))
    for key, value in (manifest.get("counts") or {}).items():
        run_rows.append((f"counts.{key}", value))
    if manifest.get("render_failures"):
        run_rows.append(("render_failures", json.dumps(manifest["render_failures"], ensure_ascii=False)))
    if run_rows:
        doc.add(_key_value(run_rows, lang, key="run", caption=text("run_caption", lang)))
    inputs = [item for item in manifest.get("inputs") or [] if isinstance(item, dict)]
    if inputs:
        frame = pd.DataFrame(
            [
                [
                    item.get("role", "–"),
                    item.get("path", "–"),
                    _cell_text(item.get("rows")),
                    _cell_text(item.get("bytes")),
                    item.get("sha256", "–"),
                ]
                for item in inputs
            ],
            columns=[text(k, lang) for k in ("role", "path", "rows", "bytes", "sha256")],
        )
        doc.add(
            TableBlock(
                frame,
                caption=text("inputs_caption", lang),
                key="inputs",
                numeric=(text("rows", lang), text("bytes", lang)),
                widths=("auto", 1, "auto", "auto", "auto"),
                size=6.5,
            )
        )
    parameters = manifest.get("parameters") or {}
    if parameters:
        doc.add(
            _key_value(
                [
                    (k, json.dumps(v, ensure_ascii=False) if isinstance(v, (list, dict)) else v)
                    for k, v in parameters.items()
                ],
                lang,
                key="parameters",
                caption=text("parameters_caption", lang),
                first="parameter",
            )
        )
    deps = dict(manifest.get("dependencies") or {})
    rows = [(name, version) for name, version in deps.items()]
    rows += [(f"{name}{text('used_by_report', lang)}", version) for name, version in versions.items()]
    doc.add(
        _key_value(
            rows, lang, key="versions", caption=text("versions_caption", lang), first="package", second="version"
        )
    )
    frame = pd.DataFrame(
        [[f"tables/{name}", info["rows"], info["sha256"]] for name, info in table_files.items()],
        columns=[text("file", lang), text("rows", lang), text("sha256", lang)],
    )
    doc.add(
        TableBlock(
            frame,
            caption=text("tables_caption", lang),
            key="tables-read",
            numeric=(text("rows", lang),),
            widths=("auto", "auto", 1),
            size=6.5,
        )
    )
    timings = manifest.get("timings_seconds") or {}
    if timings:
        doc.add(
            _key_value(
                list(timings.items()),
                lang,
                key="timings",
                caption=text("timings_caption", lang),
                first="stage",
                second="seconds",
            )
        )


# ---------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------


#: Manifest entries that change with every run of the same inputs (times, what was reused).
_VOLATILE_MANIFEST_KEYS = ("started", "finished", "timings_seconds", "pages", "reports", "cache", "render_failures")


def _stable_manifest(path: Path) -> str | None:
    """Digest of the manifest without its per-run entries (times, cache use): a rerun on
    unchanged inputs, parameters and code reuses the workbook, whose manifest sheet then
    names the run that wrote it."""
    if not path.is_file():
        return None
    manifest = json.loads(path.read_text(encoding="utf-8"))
    stable = {k: v for k, v in manifest.items() if k not in _VOLATILE_MANIFEST_KEYS}
    return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()


def _table_files(run_dir: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for path in sorted((run_dir / "tables").glob("*")):
        if path.suffix not in (".csv", ".parquet") or not path.is_file():
            continue
        if path.suffix == ".csv":
            with open(path, "rb") as handle:
                rows = max(0, sum(1 for _ in handle) - 1)
        else:
            import pyarrow.parquet as pq

            rows = pq.ParquetFile(path).metadata.num_rows
        out[path.name] = {"rows": rows, "sha256": _sha256(path), "bytes": path.stat().st_size}
    return out


def report_versions() -> dict[str, str]:
    """Versions of what builds the report (beyond the run's own dependencies)."""
    from importlib import metadata

    from analysis.report.pdf import typst_version

    versions = {"typst": typst_version()}
    for dist in ("openpyxl", "matplotlib", "mplfonts"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def report_document(
    tables: RunTables,
    *,
    lang: str = "zh",
    figure: Callable[..., FigureBlock | None] | None = None,
    versions: dict[str, str] | None = None,
    table_files: dict[str, dict[str, Any]] | None = None,
) -> ReportDocument:
    """The report of a run as a :class:`ReportDocument`.

    Parameters
    ----------
    tables : RunTables
        The run (:func:`analysis.report.tables.load_run`).
    lang : {"zh", "en"}
        Language of the report; the summary is given in the other language too.
    figure : callable, optional
        ``figure(kind, subject, caption=...)`` returning the :class:`FigureBlock` of a drawn
        figure (or None to leave it out); without it the document has no figures.
    versions : dict, optional
        Versions of the software building the report (default :func:`report_versions`).
    table_files : dict, optional
        Rows and checksums of the run's tables (computed when omitted).
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    from analysis.report.site import text as site_text

    figure = figure or (lambda *args, **kwargs: None)
    versions = versions if versions is not None else report_versions()
    table_files = table_files if table_files is not None else _table_files(tables.run_dir)
    manifest = tables.manifest
    month = evaluation_month(tables)
    inputs = [item for item in manifest.get("inputs") or [] if isinstance(item, dict)]
    meta = [
        (
            text("meta_scope", lang),
            text(
                "meta_scope_value",
                lang,
                n_prov=len(tables.provinces),
                n_ind=tables.diagnostics["indicator"].nunique() if len(tables.diagnostics) else 0,
                n_series=len(tables.diagnostics) + len(tables.failures),
            ),
        ),
        (text("meta_month", lang), month_label(month, lang)),
    ]
    if inputs:
        meta.append(
            (
                text("meta_data", lang),
                " · ".join(
                    f"{Path(str(item.get('path', ''))).name} (sha256 {str(item.get('sha256', ''))[:12]}…)"
                    for item in inputs
                ),
            )
        )
    if manifest.get("started") or manifest.get("finished"):
        meta.append((text("meta_run", lang), f"{manifest.get('started', '?')} → {manifest.get('finished', '?')}"))
    revision = manifest.get("code_revision") or {}
    if revision:
        dirty = text("dirty", lang) if revision.get("dirty") else ""
        meta.append((text("meta_revision", lang), f"{revision.get('commit', '–')}{dirty}"))
    notice = narrative.synthetic_notice(tables, lang)
    doc = ReportDocument(lang, site_text("title", lang), site_text("title", _other(lang)), meta, notice)
    findings = narrative.national_findings(tables)
    _summary_blocks(doc, tables, lang, findings=findings, heading_key="summary", title=text("summary", lang))
    _summary_blocks(
        doc,
        tables,
        _other(lang),
        findings=findings,
        heading_key="summary-other",
        title=text("summary_other", lang),
        full=False,
    )
    _methods_blocks(doc, tables, lang, versions)
    _national_blocks(doc, tables, lang, figure, findings)
    _province_blocks(doc, tables, lang, figure)
    _quality_blocks(doc, tables, lang)
    _forest_blocks(doc, tables, lang, figure)
    _event_time_blocks(doc, tables, lang, figure)
    _reproducibility_blocks(doc, tables, lang, versions, table_files)
    return doc


def _figure_tasks(tables: RunTables, lang: str, figures_dir: Path) -> dict[tuple[str, str], FigureTask]:
    month = evaluation_month(tables)
    tasks: dict[tuple[str, str], FigureTask] = {}
    national = tables.national
    relative = national[national["measure"] == "effect_end_relative"] if len(national) else national
    for index, (_, _, numbers) in enumerate(_dimensions(), start=1):
        rows = relative[relative["indicator"].isin(numbers)] if len(relative) else relative
        if len(rows):
            tasks["overview", str(index)] = FigureTask(
                "overview",
                str(index),
                lang,
                figures_dir / f"national_dimension_{index}.png",
                {"national": rows.reset_index(drop=True)},
                month,
                FIGURE_DPI["overview"],
            )
    predictions = tables.predictions
    if len(predictions):
        by_province = dict(tuple(predictions.groupby("province", sort=True)))
        effects = tables.effects[tables.effects["measure"] == "effect_end_relative"]
        for code in tables.provinces:
            if code not in by_province:
                continue
            frames = {
                "predictions": by_province[code].reset_index(drop=True),
                "effects": effects[effects["province"] == code].reset_index(drop=True),
                "diagnostics": tables.diagnostics[tables.diagnostics["province"] == code].reset_index(drop=True),
            }
            tasks["province", code] = FigureTask(
                "province", code, lang, figures_dir / f"province_{code}.png", frames, month, FIGURE_DPI["province"]
            )
    rel_effects = tables.effects[tables.effects["measure"] == "effect_end_relative"]
    for number in sorted(set(rel_effects["indicator"])):
        frames = {
            "effects": rel_effects[rel_effects["indicator"] == number].reset_index(drop=True),
            "national": relative[relative["indicator"] == number].reset_index(drop=True) if len(relative) else relative,
        }
        tasks["forest", str(number)] = FigureTask(
            "forest", str(number), lang, figures_dir / f"forest_{number}.png", frames, month, FIGURE_DPI["forest"]
        )
    curves = _event_time_curves(tables)
    for number in _event_time_indicators(tables):
        frames = {"pooled": curves[curves["indicator"] == number].reset_index(drop=True)}
        tasks["event_time", str(number)] = FigureTask(
            "event_time",
            str(number),
            lang,
            figures_dir / f"event_time_{number}.png",
            frames,
            month,
            FIGURE_DPI["event_time"],
        )
    return tasks


@dataclass
class ReportBuild:
    """What :func:`build_report` wrote and how long each stage took (seconds)."""

    out_dir: Path
    lang: str
    paths: dict[str, Path] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    figures_drawn: int = 0
    figures_reused: int = 0
    figure_seconds: dict[str, float] = field(default_factory=dict)
    workbook_reused: bool = False
    pdf_pages: int = 0
    document: ReportDocument | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "lang": self.lang,
            "paths": {k: str(v) for k, v in self.paths.items()},
            "timings": self.timings,
            "figures_drawn": self.figures_drawn,
            "figures_reused": self.figures_reused,
            "figure_seconds": self.figure_seconds,
            "workbook_reused": self.workbook_reused,
            "pdf_pages": self.pdf_pages,
        }


def _findings_sheet(tables: RunTables) -> pd.DataFrame:
    findings = narrative.national_findings(tables)
    month = evaluation_month(tables)
    for lang in LANGS:
        findings[f"sentence_{lang}"] = [
            narrative.finding_sentence(row, lang, month=month) for _, row in findings.iterrows()
        ]
    return findings


def _write_workbook_job(run_dir: str, path: str, lang: str, findings: pd.DataFrame) -> float:
    from analysis.report.workbook import write_workbook

    start = time.perf_counter()
    tmp = Path(path).with_suffix(".tmp.xlsx")
    write_workbook(run_dir, tmp, lang=lang, findings=findings)
    os.replace(tmp, path)
    return time.perf_counter() - start


def _pool(workers: int) -> ProcessPoolExecutor:
    import multiprocessing

    # forkserver, not fork: the parent has pyarrow's thread pool running (Parquet, Arrow
    # strings), and forking a process with threads can deadlock the child.
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["analysis.report.figures", "analysis.report.workbook"])
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


def build_report(
    run_dir: str | Path,
    out_dir: str | Path,
    *,
    lang: str = "zh",
    workers: int | None = None,
    formats: Sequence[str] = ("html", "pdf", "xlsx"),
    echo: Callable[[str], None] | None = None,
) -> ReportBuild:
    """Build the report of an earlier run: HTML, PDF and workbook.

    Parameters
    ----------
    run_dir : path
        A run directory written by ``python -m analysis run`` (``tables/``,
        ``manifest.json``); it is only read.
    out_dir : path
        Where ``report-<lang>.{html,pdf,xlsx}`` and ``figures/<lang>/`` are written; it may
        be the run directory itself. ``_build/`` keeps the Typst source, its data and the
        figure cache.
    lang : {"zh", "en"}
        Language of the report.
    workers : int, optional
        Processes drawing figures and writing the workbook (default: the core count);
        1 does everything in this process.
    formats : sequence of {"html", "pdf", "xlsx"}
        What to write.
    echo : callable, optional
        Receives one line per stage with its time (e.g. ``print``).

    Returns
    -------
    ReportBuild
        Paths, timings, and how many figures were drawn or reused.

    Raises
    ------
    FileNotFoundError
        If the run lacks a required table.
    analysis.report.fonts.FontNotFoundError
        If the CJK font is missing (figures and PDF never fall back to boxes).
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    unknown = set(formats) - {"html", "pdf", "xlsx"}
    if unknown:
        raise ValueError(f"unknown formats {sorted(unknown)}; choose from html, pdf, xlsx")
    echo = echo or (lambda line: None)
    start_all = time.perf_counter()
    run_dir, out = Path(run_dir).resolve(), Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    build_dir = out / "_build"
    build_dir.mkdir(exist_ok=True)
    result = ReportBuild(out, lang)

    def stage(name: str, since: float) -> float:
        now = time.perf_counter()
        result.timings[name] = round(now - since, 3)
        echo(f"{name:>10}: {result.timings[name]:.1f} s")
        return now

    t = time.perf_counter()
    from analysis.report.fonts import use_cjk_font

    use_cjk_font()  # fail before any work if the font is missing
    if "pdf" in formats:
        from analysis.report.pdf import font_dir

        font_dir()
    tables = load_run(run_dir)
    table_files = _table_files(run_dir)
    versions = report_versions()
    t = stage("load", t)

    cache_path = build_dir / f"cache-{lang}.json"
    cache = json.loads(cache_path.read_text(encoding="utf-8")) if cache_path.is_file() else {}
    figure_cache: dict[str, str] = dict(cache.get("figures") or {})
    figures_dir = out / "figures" / lang
    tasks = _figure_tasks(tables, lang, figures_dir) if {"html", "pdf"} & set(formats) else {}
    code_version = _source_digest("analysis.report.figures", "analysis.report.tables", "analysis.report.fonts")
    keys = {name: task.key(code_version) for name, task in tasks.items()}
    stale = [
        name for name, task in tasks.items() if figure_cache.get(task.name) != keys[name] or not task.path.is_file()
    ]
    # Costliest first, so the pool is not left waiting on one province at the end.
    stale.sort(key=lambda name: {"province": 0, "forest": 1, "overview": 2, "event_time": 3}[name[0]])
    result.figures_reused = len(tasks) - len(stale)

    workbook_path = out / f"report-{lang}.xlsx"
    workbook_key = hashlib.sha256(
        json.dumps(
            [
                lang,
                {k: v["sha256"] for k, v in table_files.items()},
                _stable_manifest(run_dir / "manifest.json"),
                _source_digest("analysis.report.workbook", "analysis.report.narrative"),
            ]
        ).encode()
    ).hexdigest()
    write_workbook = "xlsx" in formats and (cache.get("workbook") != workbook_key or not workbook_path.is_file())
    result.workbook_reused = "xlsx" in formats and not write_workbook
    findings = _findings_sheet(tables) if write_workbook else None
    jobs = len(stale) + int(write_workbook)
    workers = max(1, min(workers or os.cpu_count() or 1, os.cpu_count() or 1))

    workbook_future: Future | None = None
    # Even for the workbook alone, a worker lets it be written while the PDF is typeset.
    pool = _pool(min(workers, jobs)) if workers > 1 and jobs else None
    try:
        if pool is None:
            for name in stale:
                _, seconds = _draw(tasks[name])
                result.figure_seconds[tasks[name].name] = round(seconds, 3)
                figure_cache[tasks[name].name] = keys[name]
            if write_workbook:
                result.timings["workbook_cpu"] = round(
                    _write_workbook_job(str(run_dir), str(workbook_path), lang, findings), 3
                )
        else:
            if write_workbook:  # the longest single job: start it first
                workbook_future = pool.submit(_write_workbook_job, str(run_dir), str(workbook_path), lang, findings)
            futures = {pool.submit(_draw, tasks[name]): name for name in stale}
            for future, name in futures.items():
                _, seconds = future.result()
                result.figure_seconds[tasks[name].name] = round(seconds, 3)
                figure_cache[tasks[name].name] = keys[name]
        result.figures_drawn = len(stale)
        cache_path.write_text(json.dumps({**cache, "figures": figure_cache}, indent=1), encoding="utf-8")
        t = stage("figures", t)

        def figure(kind: str, subject: str, *, caption: str) -> FigureBlock | None:
            task = tasks.get((kind, subject))
            if task is None or not task.path.is_file():
                return None
            width_px, height_px = _png_size(task.path)
            width = min(TEXT_WIDTH_MM, MAX_FIGURE_HEIGHT_MM[kind] * width_px / height_px)
            if kind == "forest":
                width = min(width, 150.0)
            return FigureBlock(task.path.relative_to(out).as_posix(), caption, caption, width, f"{kind}-{subject}")

        document = report_document(tables, lang=lang, figure=figure, versions=versions, table_files=table_files)
        result.document = document
        t = stage("document", t)

        if "html" in formats:
            path = out / f"report-{lang}.html"
            path.write_text(document.to_html(), encoding="utf-8")
            result.paths["html"] = path
            t = stage("html", t)
        if "pdf" in formats:
            from analysis.report.pdf import compile_pdf

            info = compile_pdf(document.to_typst(), out / f"report-{lang}.pdf", root=out, build_dir=build_dir)
            result.paths["pdf"] = info.path
            result.pdf_pages = info.pages
            t = stage("pdf", t)
        if "xlsx" in formats:
            if workbook_future is not None:
                result.timings["workbook_cpu"] = round(workbook_future.result(), 3)
            result.paths["xlsx"] = workbook_path
            cache["workbook"] = workbook_key
            t = stage("workbook", t)
    finally:
        if pool is not None:
            # On an error, drop the figures not yet started; the cache above only lists finished ones.
            pool.shutdown(cancel_futures=True)
    cache_path.write_text(json.dumps({**cache, "figures": figure_cache}, indent=1), encoding="utf-8")
    result.timings["total"] = round(time.perf_counter() - start_all, 3)
    echo(
        f"{'total':>10}: {result.timings['total']:.1f} s ({result.figures_drawn} figures drawn, "
        f"{result.figures_reused} reused{', workbook reused' if result.workbook_reused else ''})"
    )
    build_info = out / f"report-{lang}.build.json"
    build_info.write_text(json.dumps(result.as_dict(), ensure_ascii=False, indent=1), encoding="utf-8")
    result.paths["build"] = build_info
    return result
