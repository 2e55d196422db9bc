"""Plain-language findings and methods, in Chinese and English, generated from a run.

Every sentence here is assembled from the run's tables and manifest: which indicators
improved nationally, by how much, with what certainty, how consistently across
provinces, and how the numbers were produced. Nothing is estimated; the words follow
fixed rules stated in the methods text itself, so that a reader can check them:

- **Verdict** (improvement, deterioration, inconclusive): :func:`analysis.report.tables.classify`
  applied to the 95% CI of the pooled relative effect at the evaluation month.
- **Strength of evidence**: *strong* when the verdict holds after allowing for the number
  of indicators tested (an adjusted p-value below 0.05 when the run recorded one, otherwise
  Bonferroni: p below 0.05 divided by the number of pooled indicators); *moderate* when
  the CI excludes no change but the adjusted test does not; *none* otherwise.
- **Consistency across provinces**: *consistent* when the 95% prediction interval (the
  range expected for the effect in a single province) excludes no change on the same
  side as the CI; otherwise the effect *varies between provinces*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analysis.registry import get_indicator, indicators, timeline
from analysis.report.tables import (
    LANGS,
    RunTables,
    classify,
    evaluation_month,
    format_count,
    meta_analysis_rows,
    month_label,
    province_name,
    unit_label,
    verdicts,
)
from analysis.synthesis.national import POOLED_AS

__all__ = [
    "CERTAINTY",
    "MethodsSection",
    "Summary",
    "adjusted_p_columns",
    "certainty_label",
    "dimension_sentence",
    "finding_sentence",
    "is_synthetic",
    "methods_sections",
    "national_findings",
    "province_sentence",
    "summary",
    "synthetic_notice",
]

#: Strength of evidence, strongest first.
CERTAINTY = ("strong", "moderate", "none")
#: Columns of the national table that hold multiplicity-adjusted p-values, in order of
#: preference (written by a run that applied a multiple-testing policy, e.g.
#: :func:`analysis.synthesis.multiplicity.adjust_pvalues`: Holm for the primary
#: indicators, Benjamini-Hochberg for all). Each indicator is judged by the first of them
#: that it has a value in.
ADJUSTED_P_COLUMNS = ("p_adjusted", "p_value_adjusted", "p_holm", "q_value", "p_bh", "p_fdr")
_MINUS = "\u2212"

_CERTAINTY_TEXT = {
    "strong": {"zh": "证据较强", "en": "strong evidence"},
    "moderate": {"zh": "证据中等", "en": "moderate evidence"},
    "none": {"zh": "无明确证据", "en": "no clear evidence"},
}

_TEXT: dict[str, dict[str, str]] = {
    # -- national findings ------------------------------------------------------------
    "headline": {
        "zh": "截至{month}，在全国合并评估的 {n} 项监测指标中，{n_imp} 项相对于无计划的反事实水平得到改善"
        "（其中 {n_strong} 项证据较强），{n_det} 项恶化，{n_inc} 项无明确变化。",
        "en": "By {month}, {n_imp} of the {n} monitoring indicators pooled nationally had improved relative to "
        "the counterfactual without the plan ({n_strong} with strong evidence), {n_det} had deteriorated "
        "and {n_inc} showed no clear change.",
    },
    "headline_none": {
        "zh": "本次运行没有可供全国合并的指标效应，无法给出全国结论。",
        "en": "This run has no pooled national effects, so no national conclusion can be drawn.",
    },
    "largest": {
        "zh": "相对改善幅度最大的指标是{items}。",
        "en": "The largest relative improvements were in {items}.",
    },
    "consistent_count": {
        "zh": "在改善的指标中，{n} 项在各省之间表现一致（95% 预测区间不含“无变化”），其余指标的效应因省而异。",
        "en": "Of the improved indicators, {n} improved consistently across provinces (the 95% prediction "
        "interval excludes no change); for the others the effect varied between provinces.",
    },
    "consistent_none": {
        "zh": "没有一项改善在各省之间表现一致：所有改善指标的 95% 预测区间都包含“无变化”，即单个省份未必能观察到改善。",
        "en": "No improvement was consistent across provinces: every improved indicator's 95% prediction "
        "interval includes no change, so a single province need not see the improvement.",
    },
    "dimension": {
        "zh": "{dimension}：{n} 项指标中 {n_imp} 项改善，{n_det} 项恶化，{n_inc} 项无明确变化。",
        "en": "{dimension}: {n_imp} of {n} indicators improved, {n_det} deteriorated and {n_inc} showed no "
        "clear change.",
    },
    "dimension_status": {
        "zh": "{dimension}：{n} 项均为状态类指标（是/否或描述性条目），不构成月度时间序列，未纳入中断时间序列分析。",
        "en": "{dimension}: all {n} items are status items (yes/no or descriptive), not monthly series, and "
        "are not evaluated by interrupted time series.",
    },
    "dimension_empty": {
        "zh": "{dimension}：本次运行没有该维度指标的全国合并效应。",
        "en": "{dimension}: this run has no pooled effects for the indicators of this dimension.",
    },
    "caveat_design": {
        "zh": "这些估计把各省的实际走势与其计划前趋势和季节性所预测的走势相比较，凡是与本省计划起始同时发生的变化都会被计入计划效应。"
        "与计划大致同时开始的其他政策（{events}）无法仅靠这一设计加以区分，请结合稳健性分析解读。",
        "en": "These estimates compare each province's observed course with the course its pre-plan trend and "
        "seasonality predict, and attribute to the plan any change that coincided with its start in that "
        "province. Policies that began at about the same time ({events}) cannot be separated by this "
        "design alone; read the results with the robustness analyses.",
    },
    "caveat_synthetic": {
        "zh": "注意：本次运行的数据为合成数据（已知真值），数字仅用于演示方法，不代表我国医院的实际情况。",
        "en": "Note: this run used synthetic data with a known truth; the numbers illustrate the method and are "
        "not facts about China's hospitals.",
    },
    "caveat_failures": {
        "zh": "{n} 个省份×指标序列未能拟合，未纳入上述结果（见数据质量一节）。",
        "en": "{n} province × indicator series could not be fitted and are not part of these results (see Data "
        "quality).",
    },
    # -- one indicator -----------------------------------------------------------------
    "finding_change": {
        "zh": "{name}（指标 {number}）：{month}比无计划反事实{direction} {size}%（95% CI：{direction} {low}% 至 {high}%；"
        "绝对差 {absolute}），{certainty}。{provinces}{consistency}",
        "en": "{name} [{number}]: {size}% {direction} than expected without the plan in {month} (95% CI "
        "{low}% to {high}% {direction}; absolute difference {absolute}); {certainty}. {provinces}"
        "{consistency}",
    },
    "finding_unclear": {
        "zh": "{name}（指标 {number}）：无明确变化，{month}相对效应 {relative}（95% CI），绝对差 {absolute}。{provinces}",
        "en": "{name} [{number}]: no clear change; relative effect in {month} {relative} (95% CI), absolute "
        "difference {absolute}. {provinces}",
    },
    "cumulative_total": {
        "zh": "；{k} 省合计累计额外事件 {value}（{low}, {high}）例，负值为减少",
        "en": "; extra events over the {k} provinces {value} ({low}, {high}), negative meaning events averted",
    },
    "higher": {"zh": "高", "en": "higher"},
    "lower": {"zh": "低", "en": "lower"},
    "provinces": {
        "zh": "{k} 个省份中 {n_imp} 个改善、{n_det} 个恶化。",
        "en": "It improved in {n_imp} of {k} provinces and deteriorated in {n_det}.",
    },
    "consistent": {
        "zh": "各省之间较为一致（95% 预测区间 {pi}）。",
        "en": " The effect was consistent across provinces (95% prediction interval {pi}).",
    },
    "varies": {
        "zh": "各省之间差异较大（I² = {i2}%，95% 预测区间 {pi}）。",
        "en": " The effect varied between provinces (I² = {i2}%, 95% prediction interval {pi}).",
    },
    "varies_no_pi": {"zh": "", "en": ""},
    # -- one province ------------------------------------------------------------------
    "province": {
        "zh": "{province}（计划起始 {start}）：{n} 项已拟合指标中 {n_imp} 项改善，{n_det} 项恶化，{n_inc} 项无明确变化。",
        "en": "{province} (plan start {start}): of {n} indicators fitted, {n_imp} improved, {n_det} "
        "deteriorated and {n_inc} showed no clear change.",
    },
    "province_best": {
        "zh": "相对改善最大的是{name}（{value}）。",
        "en": " The largest relative improvement was in {name} ({value}).",
    },
    "province_worst": {
        "zh": "相对恶化最大的是{name}（{value}）。",
        "en": " The largest relative deterioration was in {name} ({value}).",
    },
    "province_failed": {
        "zh": "另有 {n} 个序列未能拟合。",
        "en": " {n} further series could not be fitted.",
    },
    "list_sep": {"zh": "、", "en": ", "},
    "list_last": {"zh": "和", "en": " and "},
}


def _t(key: str, lang: str, **fields: object) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return _TEXT[key][lang].format(**fields)


def certainty_label(certainty: str, lang: str = "zh") -> str:
    """The strength of evidence in words.

    Examples
    --------
    >>> certainty_label("strong", "en"), certainty_label("none", "zh")
    ('strong evidence', '无明确证据')
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return _CERTAINTY_TEXT[certainty][lang]


# ---------------------------------------------------------------------------------------
# Numbers in words
# ---------------------------------------------------------------------------------------


def _pct(value: float, *, signed: bool = False) -> str:
    """A ratio - 1 as a percentage with one decimal, e.g. ``-0.0723`` -> ``'−7.2'``."""
    if not np.isfinite(value):
        return "–"
    text = f"{100 * value:+.1f}" if signed else f"{abs(100 * value):.1f}"
    if text in ("+0.0", "-0.0"):
        return "0.0"
    return text.replace("-", _MINUS)


def _number(value: float) -> str:
    """A display-unit number with about two significant digits of its own size."""
    if not np.isfinite(value):
        return "–"
    if value == 0:
        return "0"
    decimals = int(min(4, max(0, 1 - math.floor(math.log10(abs(value))))))
    return f"{value:.{decimals}f}".replace("-", _MINUS)


def _join(items: list[str], lang: str) -> str:
    if len(items) <= 1:
        return "".join(items)
    return _t("list_sep", lang).join(items[:-1]) + _t("list_last", lang) + items[-1]


def _unit_text(unit: str, lang: str) -> str:
    text = unit_label(unit, lang)
    if not text or text in ("%", "‰"):
        # A difference of percentages is in percentage points.
        return {
            "%": {"zh": "个百分点", "en": " percentage points"},
            "‰": {"zh": "个千分点", "en": " per mille points"},
        }.get(text, {"zh": "", "en": ""})[lang]
    return text if lang == "zh" else f" {text}"


def _interval_text(low: float, high: float) -> str:
    return f"{_pct(low, signed=True)}% – {_pct(high, signed=True)}%"


# ---------------------------------------------------------------------------------------
# The national findings table
# ---------------------------------------------------------------------------------------


def adjusted_p_columns(national: pd.DataFrame) -> list[str]:
    """The multiplicity-adjusted p-value columns of the national table, in order of preference.

    Examples
    --------
    >>> adjusted_p_columns(pd.DataFrame({"p_value": [0.01], "p_bh": [0.02], "p_holm": [0.03]}))
    ['p_holm', 'p_bh']
    >>> adjusted_p_columns(pd.DataFrame({"p_value": [0.01], "p_holm": [float("nan")]}))
    []
    """
    return [c for c in ADJUSTED_P_COLUMNS if c in national.columns and national[c].notna().any()]


def _adjusted_p(row: pd.Series, columns: list[str]) -> tuple[float, str | None]:
    for column in columns:
        value = row.get(column, np.nan)
        if value is not None and np.isfinite(value):
            return float(value), column
    return np.nan, None


def _alpha(tables: RunTables) -> float:
    level = (tables.manifest.get("parameters") or {}).get("level", 0.95)
    try:
        return 1 - float(level)
    except (TypeError, ValueError):
        return 0.05


_FINDING_COLUMNS = [
    "indicator",
    "dimension_zh",
    "dimension_en",
    "name_zh",
    "name_en",
    "direction",
    "unit",
    "estimate",
    "ci_low",
    "ci_high",
    "pi_low",
    "pi_high",
    "p_value",
    "p_strong",
    "p_strong_source",
    "strong_threshold",
    "k",
    "i2",
    "absolute",
    "absolute_low",
    "absolute_high",
    "cumulative",
    "cumulative_low",
    "cumulative_high",
    "cumulative_k",
    "verdict",
    "certainty",
    "consistent",
    "provinces_improved",
    "provinces_deteriorated",
    "provinces_inconclusive",
]


def national_findings(tables: RunTables) -> pd.DataFrame:
    """One row per indicator with a pooled relative effect: what the summary says about it.

    Columns: ``indicator``, dimension and name in both languages, ``direction``,
    ``unit``, the pooled relative effect (``estimate``, ``ci_low``, ``ci_high``,
    ``pi_low``, ``pi_high`` as ratio - 1, ``p_value``), ``p_strong`` (the p-value the
    strength of evidence is judged by: the run's adjusted p-value, or the raw one against
    ``strong_threshold``) and ``p_strong_source`` (its column), ``k``, ``i2``, the pooled
    absolute effect in the display unit
    (``absolute``, ``absolute_low``, ``absolute_high``), the national total of the
    cumulative extra events (``cumulative``, ``cumulative_low``, ``cumulative_high`` over
    ``cumulative_k`` provinces; NaN for means), ``verdict``, ``certainty``
    (see :data:`CERTAINTY`), ``consistent`` (the prediction interval excludes no change
    on the side of the verdict) and the number of provinces improved, deteriorated and
    inconclusive. Rows are in annex order.
    """
    national = tables.national
    relative = national[national["measure"] == "effect_end_relative"].set_index("indicator")
    absolute = national[national["measure"] == "effect_end_absolute"].set_index("indicator")
    cumulative = national[national["measure"] == "effect_cumulative"].set_index("indicator")
    alpha = _alpha(tables)
    adjusted = adjusted_p_columns(national)
    n_tests = len(relative)
    threshold = alpha if adjusted else alpha / max(n_tests, 1)
    judged = verdicts(tables.effects)
    counts = (
        pd.crosstab(judged["indicator"], judged["verdict"])
        if len(judged)
        else pd.DataFrame(columns=["improvement", "deterioration", "inconclusive"])
    )
    rows = []
    for number in sorted(relative.index):
        ind = get_indicator(int(number))
        r = relative.loc[number]
        a = absolute.loc[number] if number in absolute.index else None
        c = cumulative.loc[number] if number in cumulative.index else None
        verdict = classify(r["estimate"], r["ci_low"], r["ci_high"], ind.direction)
        p_strong, source = _adjusted_p(r, adjusted) if adjusted else (float(r.get("p_value", np.nan)), "p_value")
        if verdict == "inconclusive":
            certainty = "none"
        else:
            certainty = "strong" if np.isfinite(p_strong) and p_strong < threshold else "moderate"
        pi_low, pi_high = float(r.get("pi_low", np.nan)), float(r.get("pi_high", np.nan))
        consistent = (
            verdict != "inconclusive"
            and np.isfinite(pi_low)
            and np.isfinite(pi_high)
            and classify(r["estimate"], pi_low, pi_high, ind.direction) == verdict
        )
        row_counts = counts.loc[number] if number in counts.index else {}
        rows.append(
            {
                "indicator": int(number),
                "dimension_zh": ind.dimension_zh,
                "dimension_en": ind.dimension_en,
                "name_zh": ind.name_zh,
                "name_en": ind.name_en,
                "direction": ind.direction,
                "unit": ind.unit,
                "estimate": float(r["estimate"]),
                "ci_low": float(r["ci_low"]),
                "ci_high": float(r["ci_high"]),
                "pi_low": pi_low,
                "pi_high": pi_high,
                "p_value": float(r.get("p_value", np.nan)),
                "p_strong": p_strong,
                "p_strong_source": source,
                "strong_threshold": threshold,
                "k": int(r["k"]) if np.isfinite(r.get("k", np.nan)) else 0,
                "i2": float(r.get("i2", np.nan)),
                "absolute": float(a["estimate"]) if a is not None else np.nan,
                "absolute_low": float(a["ci_low"]) if a is not None else np.nan,
                "absolute_high": float(a["ci_high"]) if a is not None else np.nan,
                **{
                    f"cumulative{suffix}": float(c[column]) if c is not None else np.nan
                    for suffix, column in (("", "estimate"), ("_low", "ci_low"), ("_high", "ci_high"))
                },
                "cumulative_k": int(c["k"]) if c is not None else 0,
                "verdict": verdict,
                "certainty": certainty,
                "consistent": bool(consistent),
                "provinces_improved": int(row_counts.get("improvement", 0)),
                "provinces_deteriorated": int(row_counts.get("deterioration", 0)),
                "provinces_inconclusive": int(row_counts.get("inconclusive", 0)),
            }
        )
    return pd.DataFrame(rows, columns=_FINDING_COLUMNS)


# ---------------------------------------------------------------------------------------
# Sentences
# ---------------------------------------------------------------------------------------


def _name(row: Any, lang: str) -> str:
    return row["name_zh"] if lang == "zh" else row["name_en"]


def finding_sentence(row: pd.Series | dict, lang: str = "zh", *, month: str = "2025-09") -> str:
    """One indicator's national finding in a sentence (a row of :func:`national_findings`).

    Examples
    --------
    >>> row = {"indicator": 30, "name_zh": "住院患者围手术期死亡率", "name_en": "Perioperative mortality",
    ...        "direction": "down", "unit": "%", "estimate": -0.117, "ci_low": -0.143, "ci_high": -0.090,
    ...        "pi_low": -0.213, "pi_high": -0.009, "i2": 35.0, "k": 32, "absolute": -0.021,
    ...        "absolute_low": -0.026, "absolute_high": -0.016, "verdict": "improvement",
    ...        "certainty": "strong", "consistent": True, "provinces_improved": 20,
    ...        "provinces_deteriorated": 0}
    >>> print(finding_sentence(row, "en"))  # doctest: +NORMALIZE_WHITESPACE
    Perioperative mortality [30]: 11.7% lower than expected without the plan in 2025-09 (95% CI 9.0% to
    14.3% lower; absolute difference −0.021 (−0.026, −0.016) percentage points); strong evidence. It
    improved in 20 of 32 provinces and deteriorated in 0. The effect was consistent across provinces
    (95% prediction interval −21.3% – −0.9%).
    """
    month_text = month_label(month, lang)
    absolute = "–"
    if np.isfinite(row.get("absolute", np.nan)):
        absolute = (
            f"{_number(row['absolute'])} ({_number(row['absolute_low'])}, {_number(row['absolute_high'])})"
            f"{_unit_text(row['unit'], lang)}"
        )
    if np.isfinite(row.get("cumulative", np.nan)):
        absolute += _t(
            "cumulative_total",
            lang,
            k=int(row.get("cumulative_k", 0)),
            value=format_count(row["cumulative"]),
            low=format_count(row["cumulative_low"]),
            high=format_count(row["cumulative_high"]),
        )
    k = int(row.get("k", 0) or 0)
    provinces = (
        _t(
            "provinces",
            lang,
            k=k,
            n_imp=int(row.get("provinces_improved", 0)),
            n_det=int(row.get("provinces_deteriorated", 0)),
        )
        if k > 1
        else ""
    )
    if row["verdict"] == "inconclusive":
        relative = f"{_pct(row['estimate'], signed=True)}% ({_interval_text(row['ci_low'], row['ci_high'])})"
        return _t(
            "finding_unclear",
            lang,
            name=_name(row, lang),
            number=int(row["indicator"]),
            month=month_text,
            relative=relative,
            absolute=absolute,
            provinces=provinces,
        ).strip()
    direction = _t("higher" if row["estimate"] > 0 else "lower", lang)
    low, high = sorted((abs(row["ci_low"]), abs(row["ci_high"])))
    pi = (
        _interval_text(row["pi_low"], row["pi_high"])
        if np.isfinite(row.get("pi_low", np.nan)) and np.isfinite(row.get("pi_high", np.nan))
        else None
    )
    if pi is None:
        consistency = ""
    elif row["consistent"]:
        consistency = _t("consistent", lang, pi=pi)
    else:
        i2 = row.get("i2", np.nan)
        consistency = _t("varies", lang, pi=pi, i2=f"{i2:.0f}" if np.isfinite(i2) else "–")
    return _t(
        "finding_change",
        lang,
        name=_name(row, lang),
        number=int(row["indicator"]),
        month=month_text,
        direction=direction,
        size=_pct(row["estimate"]),
        low=_pct(low),
        high=_pct(high),
        absolute=absolute,
        certainty=certainty_label(row["certainty"], lang),
        provinces=provinces,
        consistency=consistency,
    ).strip()


@dataclass(frozen=True)
class Summary:
    """The summary of findings in one language.

    Attributes
    ----------
    headline : str
        How many indicators improved, deteriorated, showed no clear change.
    paragraphs : list of str
        Largest improvements and consistency across provinces.
    dimensions : list of str
        One sentence per annex dimension, in annex order.
    improvements, deteriorations, inconclusive : list of str
        One sentence per indicator (:func:`finding_sentence`), strongest evidence first.
    caveats : list of str
        What the design cannot separate, synthetic data, fit failures.
    """

    lang: str
    headline: str
    paragraphs: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    improvements: list[str] = field(default_factory=list)
    deteriorations: list[str] = field(default_factory=list)
    inconclusive: list[str] = field(default_factory=list)
    caveats: list[str] = field(default_factory=list)

    def text(self) -> str:
        """Everything as plain text, one paragraph per line."""
        parts = [
            self.headline,
            *self.paragraphs,
            *self.dimensions,
            *self.improvements,
            *self.deteriorations,
            *self.inconclusive,
            *self.caveats,
        ]
        return "\n".join(p for p in parts if p)


def is_synthetic(tables: RunTables) -> bool:
    """Whether the run's data came with a known truth (the run wrote recovery tables)."""
    tables_dir = tables.run_dir / "tables"
    return (tables_dir / "recovery_summary.csv").is_file() or (tables_dir / "recovery.csv").is_file()


def synthetic_notice(tables: RunTables, lang: str = "zh") -> str | None:
    """The warning that the numbers are synthetic, or None for real data."""
    return _t("caveat_synthetic", lang) if is_synthetic(tables) else None


def _dimensions() -> list[tuple[str, str, list[int]]]:
    """Annex dimensions in annex order: (zh, en, indicator numbers)."""
    out: dict[str, tuple[str, str, list[int]]] = {}
    for ind in indicators():
        out.setdefault(ind.dimension_zh, (ind.dimension_zh, ind.dimension_en, []))[2].append(ind.number)
    return list(out.values())


def dimension_sentence(findings: pd.DataFrame, dimension_zh: str, lang: str) -> str:
    """What happened in one annex dimension, as a sentence."""
    dims = {zh: (zh, en, numbers) for zh, en, numbers in _dimensions()}
    zh, en, numbers = dims[dimension_zh]
    name = zh if lang == "zh" else en
    if all(not get_indicator(n).is_quantitative for n in numbers):
        return _t("dimension_status", lang, dimension=name, n=len(numbers))
    rows = findings[findings["indicator"].isin(numbers)]
    if rows.empty:
        return _t("dimension_empty", lang, dimension=name)
    count = rows["verdict"].value_counts()
    return _t(
        "dimension",
        lang,
        dimension=name,
        n=len(rows),
        n_imp=int(count.get("improvement", 0)),
        n_det=int(count.get("deterioration", 0)),
        n_inc=int(count.get("inconclusive", 0)),
    )


def _order(rows: pd.DataFrame) -> pd.DataFrame:
    rank = rows["certainty"].map({c: i for i, c in enumerate(CERTAINTY)})
    return rows.assign(_rank=rank, _size=-np.abs(np.log1p(rows["estimate"]))).sort_values(
        ["_rank", "_size", "indicator"], kind="stable"
    )


def summary(tables: RunTables, lang: str = "zh") -> Summary:
    """The summary of findings of a run in ``lang``.

    Examples
    --------
    See ``tests/report/test_narrative.py``; the rules are in this module's docstring.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    findings = national_findings(tables)
    month = evaluation_month(tables)
    month_text = month_label(month, lang)
    caveats = []
    if is_synthetic(tables):
        caveats.append(_t("caveat_synthetic", lang))
    events = [
        f"{name_zh if lang == 'zh' else name_en}（{when}）" if lang == "zh" else f"{name_en}, {when}"
        for when, name_en, name_zh in timeline.CO_INTERVENTIONS
        if when >= str(timeline.LAUNCH[0])
    ]
    caveats.append(_t("caveat_design", lang, events=_join(events, lang)))
    if len(tables.failures):
        caveats.append(_t("caveat_failures", lang, n=len(tables.failures)))
    if findings.empty:
        return Summary(lang, _t("headline_none", lang), caveats=caveats)

    count = findings["verdict"].value_counts()
    improved = findings[findings["verdict"] == "improvement"]
    headline = _t(
        "headline",
        lang,
        month=month_text,
        n=len(findings),
        n_imp=int(count.get("improvement", 0)),
        n_det=int(count.get("deterioration", 0)),
        n_inc=int(count.get("inconclusive", 0)),
        n_strong=int((improved["certainty"] == "strong").sum()),
    )
    paragraphs = []
    if len(improved):
        top = improved.assign(_size=np.abs(np.log1p(improved["estimate"]))).nlargest(3, "_size")
        items = [
            f"{_name(r, lang)}（{_pct(r['estimate'], signed=True)}%）"
            if lang == "zh"
            else f"{_name(r, lang)} ({_pct(r['estimate'], signed=True)}%)"
            for _, r in top.iterrows()
        ]
        paragraphs.append(_t("largest", lang, items=_join(items, lang)))
        n_consistent = int(improved["consistent"].sum())
        paragraphs.append(_t("consistent_count", lang, n=n_consistent) if n_consistent else _t("consistent_none", lang))
    dimensions = [dimension_sentence(findings, zh, lang) for zh, _, _ in _dimensions()]

    def sentences(verdict: str) -> list[str]:
        rows = _order(findings[findings["verdict"] == verdict])
        return [finding_sentence(r, lang, month=month) for _, r in rows.iterrows()]

    return Summary(
        lang,
        headline,
        paragraphs,
        dimensions,
        sentences("improvement"),
        sentences("deterioration"),
        sentences("inconclusive"),
        caveats,
    )


def province_sentence(tables: RunTables, province: str, lang: str = "zh") -> str:
    """One province's results in a sentence: verdict counts, largest improvement and deterioration."""
    code = str(province)
    judged = verdicts(tables.effects[tables.effects["province"] == code])
    count = judged["verdict"].value_counts()
    start = tables.start_month(code)
    text = _t(
        "province",
        lang,
        province=province_name(code, lang),
        start=month_label(start, lang) if start else "–",
        n=len(judged),
        n_imp=int(count.get("improvement", 0)),
        n_det=int(count.get("deterioration", 0)),
        n_inc=int(count.get("inconclusive", 0)),
    )
    for verdict, key in (("improvement", "province_best"), ("deterioration", "province_worst")):
        rows = judged[judged["verdict"] == verdict]
        if len(rows):
            best = rows.loc[np.abs(np.log1p(rows["estimate"])).idxmax()]
            name = get_indicator(int(best["indicator"])).name(lang)
            text += _t(key, lang, name=name, value=f"{_pct(best['estimate'], signed=True)}%")
    failed = int((tables.failures["province"] == code).sum()) if len(tables.failures) else 0
    if failed:
        text += _t("province_failed", lang, n=failed)
    return text


# ---------------------------------------------------------------------------------------
# Methods, from the parameters actually used
# ---------------------------------------------------------------------------------------

_FAMILY_TEXT = {
    "binomial": {
        "zh": "二项分布（logit 连接），分子为事件数、分母为试验数",
        "en": "binomial with logit link (numerator of denominator)",
    },
    "poisson": {
        "zh": "泊松分布（log 连接），以分母（暴露量）为偏移量",
        "en": "Poisson with log link and the denominator as exposure (offset)",
    },
    "gaussian": {"zh": "正态分布（恒等连接）", "en": "Gaussian (identity link)"},
    "negbin": {"zh": "负二项分布（log 连接）", "en": "negative binomial (log link)"},
    "quasibinomial": {"zh": "拟二项分布", "en": "quasi-binomial"},
    "quasipoisson": {"zh": "拟泊松分布", "en": "quasi-Poisson"},
}
_COV_TEXT = {
    "latent-ar1": {
        "zh": "在连接尺度上假设潜在 AR(1) 过程并叠加二项/泊松抽样误差的三明治协方差（Zeger 1988），φ 与潜在方差按其在拟合投影下的期望以矩估计，"
        "置信区间采用 Satterthwaite 自由度的 t 分布",
        "en": "a sandwich covariance under a latent AR(1) process on the link scale plus binomial/Poisson sampling "
        "error (Zeger 1988), with φ and the latent variance estimated by moments matched to their expectation "
        "under the fitted projection, and t intervals with Satterthwaite degrees of freedom",
    },
    "newey-west": {
        "zh": "Newey-West 异方差自相关稳健协方差",
        "en": "the Newey-West heteroskedasticity and autocorrelation consistent covariance",
    },
    "quasi": {
        "zh": "以 Pearson 离散度缩放的拟似然协方差（不考虑自相关）",
        "en": "the quasi-likelihood covariance scaled by the Pearson dispersion (no allowance for autocorrelation)",
    },
    "model": {
        "zh": "基于模型的协方差（假设误差独立）",
        "en": "the model-based covariance (independent errors assumed)",
    },
}
_POOL_TEXT = {
    "reml": {"zh": "限制性极大似然（REML）", "en": "restricted maximum likelihood (REML)"},
    "dl": {"zh": "DerSimonian-Laird", "en": "DerSimonian-Laird"},
    "pm": {"zh": "Paule-Mandel", "en": "Paule-Mandel"},
    "ml": {"zh": "极大似然", "en": "maximum likelihood"},
    "fe": {"zh": "固定效应（τ² = 0）", "en": "fixed effect (τ² = 0)"},
}
_METHODS_TEXT: dict[str, dict[str, str]] = {
    "data_title": {"zh": "数据", "en": "Data"},
    "data": {
        "zh": "{n_prov} 个省级单位 × {n_ind} 项监测指标的月度数据（{first} 至 {last}），共 {n_series} 个序列，其中 {n_fitted} 个拟合成功、"
        "{n_failed} 个失败。{inputs}",
        "en": "Monthly data for {n_prov} provincial units × {n_ind} monitoring indicators ({first} to {last}): "
        "{n_series} series, {n_fitted} fitted and {n_failed} failed. {inputs}",
    },
    "inputs": {
        "zh": "输入文件：{files}（SHA-256 校验值见附录）。",
        "en": "Input files: {files} (SHA-256 checksums in the appendix).",
    },
    "design_title": {"zh": "模型设定", "en": "Model"},
    "design": {
        "zh": "每个省份 × 指标序列单独拟合分段回归：计划前趋势，以及在本省计划起始月的水平变化和斜率变化。"
        "各省起始月为 {starts}（未提供时默认 {default}）。起始后 {washin} 个月为过渡期，不参与拟合（起始后的时间仍从起始月计算）。{season}{sf}{shocks}",
        "en": "Each province × indicator series was fitted with its own segmented regression: a pre-plan trend, and "
        "a level change and a slope change at the province's own plan start. Starts ranged over {starts} "
        "(default {default} where none was given). A wash-in of {washin} months after the start was left out of "
        "the fit (time since the start is still counted from the start month). {season}{sf}{shocks}",
    },
    "season_month": {"zh": "以月份哑变量控制季节性；", "en": "Month-of-year dummies capture seasonality; "},
    "season_fourier": {"zh": "以 {k} 对傅里叶项控制季节性；", "en": "{k} Fourier pairs capture seasonality; "},
    "season_none": {"zh": "未控制季节性；", "en": "No seasonal terms were used; "},
    "sf_on": {
        "zh": "以当月春节假期天数控制移动的春节（在 1 月与 2 月之间移动）；",
        "en": "the number of Spring Festival holiday days in the month captures the moving holiday; ",
    },
    "sf_off": {"zh": "未控制春节；", "en": "the Spring Festival was not modelled; "},
    "shocks": {
        "zh": "新冠冲击月（{months}）各设一个哑变量。",
        "en": "each COVID-19 shock month ({months}) has its own dummy.",
    },
    "shocks_none": {"zh": "未设冲击月哑变量。", "en": "no shock months were modelled."},
    "family_title": {"zh": "分布族", "en": "Outcome families"},
    "family": {"zh": "{family}：指标 {numbers}", "en": "{family}: indicators {numbers}"},
    "family_intro": {
        "zh": "按指标类型选择分布族（极大似然拟合）：",
        "en": "The outcome family follows the indicator's measure (fitted by maximum likelihood):",
    },
    "se_title": {"zh": "标准误与效应", "en": "Standard errors and effects"},
    "se": {
        "zh": "标准误采用{cov}。效应为{month}有计划的模型期望值与反事实期望值之差（绝对效应，显示单位）及其比值减 1（相对效应，区间在对数尺度上计算），"
        "由 delta 法求得；累计效应为从过渡期结束至{month}的额外事件数（使用实际分母）。置信水平 {level}%。",
        "en": "Standard errors use {cov}. Effects compare the modelled expected value with the plan and the "
        "counterfactual expected value in {month}: the difference in display units (absolute) and their ratio "
        "− 1 (relative, interval on the log scale), by the delta method; the cumulative effect counts extra "
        "events from the end of the wash-in to {month} using the observed denominators. Confidence level "
        "{level}%.",
    },
    "pool_title": {"zh": "全国合并", "en": "National pooling"},
    "pool": {
        "zh": "各省效应经随机效应 meta 分析合并：τ² 采用{method}估计，{hksj}并报告 95% 预测区间（单个省份效应的预期范围）与 I²。"
        "相对效应在对数比值尺度上合并后回转为百分比。",
        "en": "Provincial effects were pooled by random-effects meta-analysis: τ² by {method}, {hksj}, with the 95% "
        "prediction interval (the range expected for a single province's effect) and I². Relative effects "
        "were pooled as log ratios and shown in percent.",
    },
    "pool_equal": {
        "zh": "比例与率类指标的期末绝对效应取各省绝对效应的算术平均（等权随机效应，区间即单样本 t 区间）："
        "这类指标的绝对效应及其标准误都随本省水平增大，逆方差加权会低估全国平均效应。",
        "en": "For proportions and rates the end-of-plan absolute effect is the unweighted mean of the provinces' "
        "absolute effects (equal-weight random effects; the interval is the one-sample t interval): their "
        "absolute effects and standard errors both grow with the province's level, and inverse-variance "
        "weights would underestimate the mean effect.",
    },
    "pool_relative": {
        "zh": "比例与率类指标的期末绝对效应由合并的相对效应乘以各省反事实水平的均值得到。",
        "en": "For proportions and rates the end-of-plan absolute effect is the pooled relative effect applied to "
        "the provinces' mean counterfactual level.",
    },
    "bias_corrected": {
        "zh": "比例与率类指标的绝对效应与累计效应已校正反事实回转换偏倚（对数连接：exp(η − v/2)）。",
        "en": "Absolute and cumulative effects of proportions and rates are corrected for the bias of the "
        "back-transformed counterfactual (log link: exp(η − v/2)).",
    },
    "hksj_on": {
        "zh": "置信区间采用 Hartung-Knapp-Sidik-Jonkman 校正，",
        "en": "Hartung-Knapp-Sidik-Jonkman confidence intervals",
    },
    "hksj_floor": {
        "zh": '置信区间采用 Hartung-Knapp-Sidik-Jonkman 校正（校正因子下限为 1，即 metafor 的 test="adhoc"），',
        "en": "Hartung-Knapp-Sidik-Jonkman confidence intervals with the adjustment factor floored at 1 "
        '(metafor\'s test="adhoc")',
    },
    "hksj_off": {"zh": "置信区间采用 Wald 正态近似，", "en": "Wald (normal) confidence intervals"},
    "verdict_title": {"zh": "结论判定与多重检验", "en": "Verdicts and multiple testing"},
    "verdict": {
        "zh": "判定为改善/恶化：{month}相对效应的 95% 置信区间不含 0，且方向符合/违背指标导向；否则为无明确变化。",
        "en": "An effect is an improvement (deterioration) when the 95% CI of its relative effect in {month} "
        "excludes 0 in (against) the indicator's direction of improvement; otherwise it is inconclusive.",
    },
    "multiplicity_recorded": {
        "zh": "多重检验：本次运行记录的策略为 {policy}；证据“较强”指校正后 P 值 < {alpha}（依次取 {column} 中该指标有值的第一列）。",
        "en": "Multiple testing: the run recorded the policy {policy}; evidence is called strong when the adjusted "
        "p-value is below {alpha} (the first of {column} that the indicator has).",
    },
    "multiplicity_none": {
        "zh": "多重检验：本次运行未记录多重检验校正。为此，只有当 P 值小于 {alpha} / {n} = {threshold}（对 {n} 项全国合并指标的 "
        "Bonferroni 校正）时才称证据“较强”；若计划对所有指标均无效果，仍预期约 {expected} 项指标因偶然达到 P < {alpha}。",
        "en": "Multiple testing: the run recorded no multiple-testing adjustment. Evidence is therefore called strong "
        "only when p < {alpha} / {n} = {threshold} (Bonferroni over the {n} pooled indicators); if the plan "
        "had no effect on any indicator, about {expected} would still reach p < {alpha} by chance.",
    },
    "consistency": {
        "zh": "若 95% 预测区间与置信区间同侧不含 0，则称效应“各省一致”。",
        "en": "An effect is called consistent across provinces when its 95% prediction interval also excludes 0 "
        "on the same side.",
    },
    "software_title": {"zh": "软件", "en": "Software"},
    "software": {
        "zh": "{package}，Python {python}；{deps}。代码版本 {commit}{dirty}。报告由 Typst {typst} 排版。",
        "en": "{package}, Python {python}; {deps}. Code revision {commit}{dirty}. Report typeset with Typst {typst}.",
    },
    "dirty": {"zh": "（含未提交修改）", "en": " (with uncommitted changes)"},
    "other_title": {"zh": "其他参数", "en": "Other parameters"},
}
_KNOWN_PARAMETERS = {
    "washin",
    "seasonality",
    "spring_festival",
    "shocks",
    "first_post_time",
    "cov_type",
    "evaluation_month",
    "level",
    "pooling_method",
    "pooling_hksj",
    "lang",
    "workers",
    "plan_start_default",
    "pooling_hksj_floor",
    "pooling_absolute_counts",
    "bias_corrected_effects",
}


def _m(key: str, lang: str, **fields: object) -> str:
    return _METHODS_TEXT[key][lang].format(**fields)


def _ranges(numbers: list[int]) -> str:
    """``[9, 10, 11, 13]`` -> ``'9–11, 13'``."""
    numbers = sorted(set(numbers))
    parts, start = [], None
    for i, n in enumerate(numbers):
        if start is None:
            start = n
        if i + 1 == len(numbers) or numbers[i + 1] != n + 1:
            parts.append(str(start) if start == n else f"{start}–{n}")
            start = None
    return ", ".join(parts)


def _multiplicity_policy(parameters: dict) -> str | None:
    for key, value in parameters.items():
        if any(word in key.lower() for word in ("multiplic", "multiple_testing", "fdr", "adjust", "primary")):
            return f"{key}={value}"
    return None


@dataclass(frozen=True)
class MethodsSection:
    """One part of the methods: a title, paragraphs, and a list (e.g. families by indicator)."""

    key: str
    title: str
    paragraphs: tuple[str, ...] = ()
    items: tuple[str, ...] = ()


def methods_sections(
    tables: RunTables, lang: str = "zh", *, report_versions: dict[str, str] | None = None
) -> list[MethodsSection]:
    """The methods, generated from the run's manifest and tables.

    Model families come from the diagnostics table (the family each series was actually
    fitted with), the covariance estimator from the effects table (falling back to the
    manifest), and every other choice from the manifest's ``parameters``; parameters the
    text does not know are listed as they are, so nothing used is left out.
    """
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    manifest = tables.manifest
    parameters = dict(manifest.get("parameters") or {})
    month_text = month_label(evaluation_month(tables), lang)
    diag, effects = tables.diagnostics, tables.effects
    sections: list[MethodsSection] = []

    def add(key: str, paragraphs: list[str], items: list[str] | None = None) -> None:
        sections.append(
            MethodsSection(key, _m(f"{key}_title", lang), tuple(p for p in paragraphs if p), tuple(items or ()))
        )

    # Data
    months = tables.predictions["month"] if len(tables.predictions) else pd.Series(dtype=str)
    inputs = [item for item in manifest.get("inputs") or [] if isinstance(item, dict)]
    files = ", ".join(
        f"{item.get('role', '')}: {str(item.get('path', '')).rsplit('/', 1)[-1]}".strip(": ") for item in inputs
    )
    n_fitted = len(diag)
    add(
        "data",
        [
            _m(
                "data",
                lang,
                n_prov=len(tables.provinces),
                n_ind=diag["indicator"].nunique() if n_fitted else 0,
                first=month_label(months.min(), lang) if len(months) else "–",
                last=month_label(months.max(), lang) if len(months) else "–",
                n_series=n_fitted + len(tables.failures),
                n_fitted=n_fitted,
                n_failed=len(tables.failures),
                inputs=_m("inputs", lang, files=files) if files else "",
            ).strip()
        ],
    )

    # Design
    starts = sorted(set(diag["start_month"].astype(str))) if n_fitted else []
    start_text = (
        month_label(starts[0], lang)
        if len(starts) == 1
        else f"{month_label(starts[0], lang)} – {month_label(starts[-1], lang)}"
        if starts
        else "–"
    )
    seasonality = str(parameters.get("seasonality", "month"))
    if seasonality == "month":
        season = _m("season_month", lang)
    elif seasonality.startswith("fourier:"):
        season = _m("season_fourier", lang, k=seasonality.split(":", 1)[1])
    else:
        season = _m("season_none", lang)
    sf = _m("sf_on" if parameters.get("spring_festival", True) else "sf_off", lang)
    shocks = list(parameters.get("shocks") or [])
    shock_text = (
        _m("shocks", lang, months=", ".join(month_label(m, lang) for m in shocks))
        if shocks
        else _m("shocks_none", lang)
    )
    default = parameters.get("plan_start_default", str(timeline.IMPLEMENTATION_START))
    add(
        "design",
        [
            _m(
                "design",
                lang,
                starts=start_text,
                default=month_label(default, lang),
                washin=parameters.get("washin", "–"),
                season=season,
                sf=sf,
                shocks=shock_text,
            )
        ],
    )

    # Families actually used
    lines = []
    if n_fitted:
        for family, rows in diag.groupby("family", sort=False):
            label = _FAMILY_TEXT.get(str(family), {}).get(lang, str(family))
            lines.append(_m("family", lang, family=label, numbers=_ranges(rows["indicator"].astype(int).tolist())))
    add("family", [_m("family_intro", lang)], lines)

    # Standard errors and effects
    cov_types = sorted(set(effects["cov_type"].dropna().astype(str))) if "cov_type" in effects else []
    cov_types = cov_types or [str(parameters.get("cov_type", "–"))]
    cov = "; ".join(_COV_TEXT.get(c, {}).get(lang, c) for c in cov_types)
    level = parameters.get("level", 0.95)
    se_text = [_m("se", lang, cov=cov, month=month_text, level=f"{100 * float(level):g}")]
    if parameters.get("bias_corrected_effects"):
        se_text.append(_m("bias_corrected", lang))
    add("se", [" ".join(se_text) if lang == "en" else "".join(se_text)])

    # Pooling (sums of provinces, the cumulative effects, are not meta-analyses)
    national = meta_analysis_rows(tables.national)
    method = str(
        parameters.get("pooling_method")
        or (national["method"].iloc[0] if "method" in national and len(national) else "reml")
    )
    hksj = parameters.get(
        "pooling_hksj", bool(national["hksj"].iloc[0]) if "hksj" in national and len(national) else True
    )
    floor = bool(parameters.get("pooling_hksj_floor", False))
    pool_text = [
        _m(
            "pool",
            lang,
            method=_POOL_TEXT.get(method, {}).get(lang, method),
            hksj=_m(("hksj_floor" if floor else "hksj_on") if hksj else "hksj_off", lang),
        )
    ]
    ways = set(national["pooled_as"].dropna()) if "pooled_as" in national else set()
    for key, way in (("pool_equal", "equal"), ("pool_relative", "relative")):
        if POOLED_AS[way] in ways:
            pool_text.append(_m(key, lang))
    add("pool", [" ".join(pool_text) if lang == "en" else "".join(pool_text)])

    # Verdicts and multiplicity
    findings = national_findings(tables)
    alpha = _alpha(tables)
    policy = _multiplicity_policy(parameters)
    columns = adjusted_p_columns(national)
    paragraphs = [_m("verdict", lang, month=month_text)]
    if policy or columns:
        paragraphs.append(
            _m(
                "multiplicity_recorded",
                lang,
                policy=policy or "–",
                column=" → ".join(columns) or "p_value",
                alpha=f"{alpha:g}",
            )
        )
    else:
        n = max(len(findings), 1)
        paragraphs.append(
            _m(
                "multiplicity_none",
                lang,
                alpha=f"{alpha:g}",
                n=n,
                threshold=f"{alpha / n:.2g}",
                expected=f"{alpha * n:.1f}",
            )
        )
    paragraphs.append(_m("consistency", lang))
    add("verdict", paragraphs)

    # Software
    deps = manifest.get("dependencies") or {}
    dep_text = ", ".join(
        f"{name} {version}"
        for name, version in deps.items()
        if name in ("numpy", "pandas", "scipy", "statsmodels", "matplotlib")
    )
    package = manifest.get("package") or {}
    revision = manifest.get("code_revision") or {}
    versions = report_versions or {}
    add(
        "software",
        [
            _m(
                "software",
                lang,
                package=f"{package.get('name', 'plan-its')} {package.get('version', '')}".strip(),
                python=manifest.get("python", "–"),
                deps=dep_text or "–",
                commit=str(revision.get("commit", "–"))[:12],
                dirty=_m("dirty", lang) if revision.get("dirty") else "",
                typst=versions.get("typst", "–"),
            )
        ],
    )

    other = {k: v for k, v in parameters.items() if k not in _KNOWN_PARAMETERS}
    if other:
        add("other", [], [f"{k} = {v}" for k, v in other.items()])
    return sections
