"""Loading a run's tables, the verdict rule and display tables in Chinese or English.

Everything here selects, labels and formats numbers that the pipeline computed; nothing
is re-estimated. The verdict of an effect (improvement, deterioration, inconclusive) is
decided in one place, :func:`classify`, and every figure, table and page uses it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from analysis.registry import get_indicator, get_province

__all__ = [
    "LANGS",
    "VERDICTS",
    "RunTables",
    "classify",
    "diagnostics_overview",
    "diagnostics_table",
    "evaluation_month",
    "failures_table",
    "format_count",
    "format_count_interval",
    "format_interval",
    "format_p",
    "load_run",
    "measure_label",
    "meta_analysis_rows",
    "month_label",
    "national_table",
    "province_effects_table",
    "province_name",
    "province_summary",
    "province_summary_table",
    "provenance_table",
    "unit_label",
    "verdict_label",
    "verdicts",
]

LANGS = ("zh", "en")
#: Verdict keys, in the order they are listed in legends and tables.
VERDICTS = ("improvement", "deterioration", "inconclusive")
_VERDICT_TEXT = {
    "improvement": {"zh": "改善", "en": "improvement"},
    "deterioration": {"zh": "恶化", "en": "deterioration"},
    "inconclusive": {"zh": "不确定", "en": "inconclusive"},
}
# The registry's units are English; the Chinese report needs Chinese ones.
_UNIT_TEXT = {
    "minutes": "分钟",
    "months": "月",
    "index": "指数",
    "per 100 discharges": "每百出院人次",
    "per 1000 catheter-days": "每千导管日",
}
_MEASURE_TEXT = {
    "level_change": {"zh": "水平变化", "en": "Level change"},
    "slope_change": {"zh": "斜率变化（每月）", "en": "Slope change (per month)"},
    "effect_end_absolute": {"zh": "{month}绝对效应", "en": "Absolute effect at {month}"},
    "effect_end_relative": {"zh": "{month}相对效应", "en": "Relative effect at {month}"},
    "effect_cumulative": {"zh": "累计额外事件数", "en": "Cumulative extra events"},
}
_SCALE_TEXT = {
    "logit": {"zh": "logit 尺度", "en": "logit scale"},
    "log": {"zh": "对数尺度", "en": "log scale"},
    "identity": {"zh": "原始单位", "en": "display units"},
}
_MINUS = "\u2212"  # typographic minus: a hyphen is too short next to digits


def _check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise ValueError(f"lang must be one of {LANGS}, got {lang!r}")
    return lang


# ---------------------------------------------------------------------------------------
# Verdicts and labels
# ---------------------------------------------------------------------------------------


def classify(estimate: float, ci_low: float, ci_high: float, direction: str) -> str:
    """Verdict of an effect given the indicator's direction of improvement.

    An effect is an improvement when its confidence interval excludes zero on the side
    the annex calls better (above zero for ``"up"``, below for ``"down"``), a
    deterioration when it excludes zero on the other side, and inconclusive otherwise
    (including a missing interval).

    Parameters
    ----------
    estimate, ci_low, ci_high : float
        Effect and its confidence limits on any scale where 0 means no effect (a
        difference, ratio - 1, a logit or log contrast).
    direction : {"up", "down"}
        The indicator's direction (:attr:`analysis.registry.Indicator.direction`).

    Returns
    -------
    str
        ``"improvement"``, ``"deterioration"`` or ``"inconclusive"`` (see
        :func:`verdict_label` for the words in a language).

    Examples
    --------
    >>> classify(-0.08, -0.12, -0.04, "down")
    'improvement'
    >>> classify(-0.08, -0.12, -0.04, "up")
    'deterioration'
    >>> classify(0.05, -0.01, 0.11, "up")
    'inconclusive'
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction must be 'up' or 'down', got {direction!r}")
    del estimate  # the verdict rests on the interval alone; kept for a uniform call
    if not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return "inconclusive"
    sign = 1 if direction == "up" else -1
    low, high = sorted((sign * ci_low, sign * ci_high))
    if low > 0:
        return "improvement"
    if high < 0:
        return "deterioration"
    return "inconclusive"


def verdict_label(verdict: str, lang: str = "zh") -> str:
    """The verdict in words.

    Examples
    --------
    >>> verdict_label("deterioration", "zh"), verdict_label("inconclusive", "en")
    ('恶化', 'inconclusive')
    """
    return _VERDICT_TEXT[verdict][_check_lang(lang)]


def unit_label(unit: str, lang: str = "zh") -> str:
    """A display unit in ``lang`` (symbols such as % and ‰ are unchanged).

    Examples
    --------
    >>> unit_label("minutes", "zh"), unit_label("‰", "zh"), unit_label("minutes", "en")
    ('分钟', '‰', 'minutes')
    """
    _check_lang(lang)
    unit = "" if unit is None or (isinstance(unit, float) and math.isnan(unit)) else str(unit)
    return _UNIT_TEXT.get(unit, unit) if lang == "zh" else unit


def measure_label(measure: str, lang: str = "zh", *, month: str = "2025-09") -> str:
    """Name of an effect measure, e.g. "Relative effect at 2025-09".

    Examples
    --------
    >>> measure_label("effect_end_relative", "zh", month="2025-09")
    '2025年9月相对效应'
    """
    return _MEASURE_TEXT[measure][_check_lang(lang)].format(month=month_label(month, lang))


def month_label(month: str, lang: str = "zh") -> str:
    """A month 'YYYY-MM' as written in ``lang``.

    Examples
    --------
    >>> month_label("2025-09", "zh"), month_label("2025-09", "en")
    ('2025年9月', '2025-09')
    """
    period = pd.Period(month, "M")
    return f"{period.year}年{period.month}月" if _check_lang(lang) == "zh" else str(period)


def scale_label(scale: str, lang: str = "zh") -> str:
    """Name of a model scale (logit, log, identity)."""
    return _SCALE_TEXT.get(scale, {}).get(_check_lang(lang), scale)


def province_name(code: str, lang: str = "zh") -> str:
    """Province name in ``lang``, or the code itself when it is not in the registry."""
    try:
        return get_province(code).name(_check_lang(lang))
    except KeyError:
        return str(code)


# ---------------------------------------------------------------------------------------
# Number formatting
# ---------------------------------------------------------------------------------------


def _decimals(half_width: float, estimate: float) -> int:
    # Two significant digits of the interval's half-width: enough to compare provinces
    # without printing noise. Without an interval, two of the estimate.
    for value in (half_width, estimate):
        if np.isfinite(value) and value != 0:
            return int(min(4, max(0, 1 - math.floor(math.log10(abs(value))))))
    return 1


def _num(value: float, decimals: int) -> str:
    if not np.isfinite(value):
        return "–"
    text = f"{value:.{decimals}f}"
    if text.startswith("-"):
        text = _MINUS + text[1:]
        if float(text[1:]) == 0:  # "-0.0" reads as a signed effect
            text = text[1:]
    return text


def format_interval(
    estimate: float, ci_low: float, ci_high: float, *, percent: bool = False, decimals: int | None = None
) -> str:
    """``"estimate (low, high)"`` with a typographic minus.

    Parameters
    ----------
    estimate, ci_low, ci_high : float
        Values to show.
    percent : bool
        Multiply by 100 and add ``%`` (for ratio - 1); one decimal unless ``decimals``.
    decimals : int, optional
        Decimal places; default from the interval's half-width.

    Examples
    --------
    >>> format_interval(-0.0823, -0.1214, -0.0401, percent=True)
    '−8.2% (−12.1, −4.0)'
    >>> format_interval(1.234, 0.5, 1.97)
    '1.23 (0.50, 1.97)'
    """
    if percent:
        estimate, ci_low, ci_high = 100 * estimate, 100 * ci_low, 100 * ci_high
        decimals = 1 if decimals is None else decimals
    elif decimals is None:
        decimals = _decimals((ci_high - ci_low) / 2, estimate)
    tail = "%" if percent else ""
    return f"{_num(estimate, decimals)}{tail} ({_num(ci_low, decimals)}, {_num(ci_high, decimals)})"


def format_count(value: float) -> str:
    """A number of events: whole, with thousands separators and a typographic minus.

    Examples
    --------
    >>> format_count(-1234.4), format_count(47474167.0), format_count(float("nan"))
    ('−1,234', '47,474,167', '–')
    """
    if not np.isfinite(value):
        return "–"
    return _num(float(value), 0) if abs(value) < 1000 else f"{value:,.0f}".replace("-", _MINUS)


def format_count_interval(estimate: float, ci_low: float, ci_high: float) -> str:
    """``"estimate (low, high)"`` for counts of events (:func:`format_count`).

    Examples
    --------
    >>> format_count_interval(-1793.2, -2692.0, -894.6)
    '−1,793 (−2,692, −895)'
    """
    return f"{format_count(estimate)} ({format_count(ci_low)}, {format_count(ci_high)})"


def format_p(p: float) -> str:
    """A p-value for a table: ``<0.001`` or three decimals.

    Examples
    --------
    >>> format_p(0.00002), format_p(0.0456), format_p(float("nan"))
    ('<0.001', '0.046', '–')
    """
    if not np.isfinite(p):
        return "–"
    return "<0.001" if p < 0.001 else f"{p:.3f}"


# ---------------------------------------------------------------------------------------
# Loading a run
# ---------------------------------------------------------------------------------------

_FAILURE_COLUMNS = ["province", "indicator", "stage", "error", "message"]


@dataclass(frozen=True)
class RunTables:
    """The tables of one evaluation run, as written by the pipeline.

    Attributes
    ----------
    run_dir : Path
        The run directory (holding ``tables/`` and ``manifest.json``).
    effects, predictions, diagnostics, failures, national : DataFrame
        ``tables/effects.csv``, ``predictions.parquet``, ``diagnostics.csv``,
        ``failures.csv`` and ``national_effects.csv``; ``province`` is always a str code
        and ``indicator`` an int.
    manifest : dict
        ``manifest.json`` (empty when the run has none).
    """

    run_dir: Path
    effects: pd.DataFrame
    predictions: pd.DataFrame
    diagnostics: pd.DataFrame
    failures: pd.DataFrame
    national: pd.DataFrame
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def provinces(self) -> list[str]:
        """Province codes with a fitted series or a failure, in code order."""
        codes = set(self.diagnostics["province"]) | set(self.failures["province"])
        return sorted(codes)

    def start_month(self, province: str) -> str | None:
        """The province's plan start month ('YYYY-MM') used by the models."""
        starts = self.diagnostics.loc[self.diagnostics["province"] == str(province), "start_month"]
        return str(starts.iloc[0]) if len(starts) else None


def _keys(frame: pd.DataFrame) -> pd.DataFrame:
    if "province" in frame:
        frame["province"] = frame["province"].astype(str)
    if "indicator" in frame and len(frame):
        frame["indicator"] = frame["indicator"].astype(int)
    return frame


def load_run(run_dir: str | Path) -> RunTables:
    """Read the tables of a run directory.

    ``effects.csv``, ``predictions.parquet`` and ``diagnostics.csv`` are required;
    a missing ``failures.csv`` or ``national_effects.csv`` reads as an empty table and a
    missing ``manifest.json`` as ``{}``.

    Raises
    ------
    FileNotFoundError
        Naming every required table that is missing.
    """
    run_dir = Path(run_dir)
    tables = run_dir / "tables"
    required = [tables / "effects.csv", tables / "predictions.parquet", tables / "diagnostics.csv"]
    missing = [str(p) for p in required if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"run directory {run_dir} lacks {', '.join(missing)}")
    # Codes such as 110000 must stay strings: read every key column as str.
    keys = {"province": str}
    effects = _keys(pd.read_csv(tables / "effects.csv", dtype=keys))
    predictions = _keys(pd.read_parquet(tables / "predictions.parquet"))
    predictions["month"] = predictions["month"].astype(str)
    diagnostics = _keys(pd.read_csv(tables / "diagnostics.csv", dtype={**keys, "start_month": str}))
    path = tables / "failures.csv"
    failures = (
        pd.read_csv(path, dtype=str, keep_default_na=False)
        if path.is_file()
        else pd.DataFrame(columns=_FAILURE_COLUMNS, dtype=str)
    )
    failures = _keys(failures.reindex(columns=list(dict.fromkeys([*_FAILURE_COLUMNS, *failures.columns]))))
    path = tables / "national_effects.csv"
    national = (
        _keys(pd.read_csv(path))
        if path.is_file()
        else pd.DataFrame(columns=["indicator", "measure", "estimate", "ci_low", "ci_high", "p_value", "k"])
    )
    path = run_dir / "manifest.json"
    manifest = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    return RunTables(run_dir, effects, predictions, diagnostics, failures, national, manifest)


def read_optional(run_dir: str | Path, name: str) -> pd.DataFrame | None:
    """``tables/<name>.csv`` of a run (province codes as text), or None when absent."""
    path = Path(run_dir) / "tables" / f"{name}.csv"
    return pd.read_csv(path, dtype={"province": str}) if path.is_file() else None


def evaluation_month(tables: RunTables) -> str:
    """Month at which end-of-plan effects were evaluated ('YYYY-MM').

    Taken from the manifest's parameters, else from the effects table, else 2025-09.
    """
    month = (tables.manifest.get("parameters") or {}).get("evaluation_month")
    if month:
        return str(month)
    rows = tables.effects.loc[tables.effects["measure"] == "effect_end_relative", "window_end"]
    return str(rows.iloc[0]) if len(rows) else "2025-09"


# ---------------------------------------------------------------------------------------
# Display tables
# ---------------------------------------------------------------------------------------

_COLUMNS = {
    "indicator": {"zh": "指标", "en": "No."},
    "name": {"zh": "指标名称", "en": "Indicator"},
    "dimension": {"zh": "维度", "en": "Dimension"},
    "unit": {"zh": "单位", "en": "Unit"},
    "direction": {"zh": "导向", "en": "Better"},
    "absolute": {"zh": "绝对效应 [95% CI]", "en": "Absolute effect [95% CI]"},
    "cumulative_total": {
        "zh": "累计额外事件数（各省合计）[95% CI]",
        "en": "Cumulative extra events, all provinces [95% CI]",
    },
    "relative": {"zh": "相对效应 % [95% CI]", "en": "Relative effect, % [95% CI]"},
    "pi": {"zh": "95% 预测区间 %", "en": "95% prediction interval, %"},
    "p": {"zh": "P值", "en": "p"},
    "verdict": {"zh": "判定", "en": "Verdict"},
    "k": {"zh": "省份数 k", "en": "Provinces k"},
    "i2": {"zh": "I² (%)", "en": "I² (%)"},
    "tau2": {"zh": "τ²（对数比值）", "en": "τ² (log ratio)"},
    "province": {"zh": "省份", "en": "Province"},
    "code": {"zh": "代码", "en": "Code"},
    "start": {"zh": "计划起始月", "en": "Plan start"},
    "fitted": {"zh": "已拟合指标数", "en": "Indicators fitted"},
    "failed": {"zh": "拟合失败数", "en": "Failures"},
    "improvement": {"zh": "改善", "en": "Improved"},
    "deterioration": {"zh": "恶化", "en": "Deteriorated"},
    "inconclusive": {"zh": "不确定", "en": "Inconclusive"},
    "series": {"zh": "已拟合序列数", "en": "Series fitted"},
    "not_converged": {"zh": "未收敛", "en": "Not converged"},
    "phi_median": {"zh": "AR(1) φ 中位数", "en": "Median AR(1) φ"},
    "dw_median": {"zh": "Durbin-Watson 中位数", "en": "Median Durbin-Watson"},
    "ljung_box_low": {"zh": "Ljung-Box P<0.05 序列数", "en": "Series with Ljung-Box p < 0.05"},
    "family": {"zh": "分布族", "en": "Family"},
    "n_pre": {"zh": "干预前月数", "en": "Months pre"},
    "n_post": {"zh": "干预后月数", "en": "Months post"},
    "washin": {"zh": "过渡期月数", "en": "Wash-in"},
    "phi": {"zh": "AR(1) φ", "en": "AR(1) φ"},
    "dispersion": {"zh": "Pearson 离散度", "en": "Pearson dispersion"},
    "durbin_watson": {"zh": "Durbin-Watson", "en": "Durbin-Watson"},
    "ljung_box_p": {"zh": "Ljung-Box P值", "en": "Ljung-Box p"},
    "converged": {"zh": "收敛", "en": "Converged"},
    "stage": {"zh": "阶段", "en": "Stage"},
    "error": {"zh": "错误", "en": "Error"},
    "message": {"zh": "信息", "en": "Message"},
    "item": {"zh": "项目", "en": "Item"},
    "value": {"zh": "内容", "en": "Value"},
}
_DIRECTION_TEXT = {"up": {"zh": "越高越好", "en": "higher"}, "down": {"zh": "越低越好", "en": "lower"}}
_YES_NO = {True: {"zh": "是", "en": "yes"}, False: {"zh": "否", "en": "no"}}


def _header(keys: list[str], lang: str) -> list[str]:
    return [_COLUMNS[k][lang] for k in keys]


def meta_analysis_rows(national: pd.DataFrame) -> pd.DataFrame:
    """The rows of the national table that are meta-analyses: not the sums over the provinces
    (national totals of cumulative effects, ``method == "sum"``).

    Examples
    --------
    >>> national = pd.DataFrame({"measure": ["effect_end_relative", "effect_cumulative"], "method": ["reml", "sum"]})
    >>> meta_analysis_rows(national)["measure"].tolist()
    ['effect_end_relative']
    """
    return national[national["method"] != "sum"] if "method" in national else national


def _measure_rows(effects: pd.DataFrame, measure: str) -> pd.DataFrame:
    return effects[effects["measure"] == measure].set_index("indicator")


def verdicts(effects: pd.DataFrame) -> pd.DataFrame:
    """Verdict of each province's relative effect at the end of the plan.

    Returns the ``effect_end_relative`` rows of ``effects`` with a ``verdict`` column
    (see :func:`classify`).
    """
    rows = effects[effects["measure"] == "effect_end_relative"].copy()
    rows["verdict"] = [
        classify(e, lo, hi, get_indicator(int(i)).direction)
        for e, lo, hi, i in zip(rows["estimate"], rows["ci_low"], rows["ci_high"], rows["indicator"])
    ]
    return rows


def province_effects_table(tables: RunTables, *, province: str, lang: str = "zh") -> pd.DataFrame:
    """End-of-plan effects of one province, one row per fitted indicator.

    Columns: indicator number, name, unit, absolute effect [95% CI] in the display unit,
    relative effect [95% CI] in percent, its p-value and the verdict in ``lang``.
    """
    _check_lang(lang)
    effects = tables.effects[tables.effects["province"] == str(province)]
    absolute = _measure_rows(effects, "effect_end_absolute")
    relative = _measure_rows(verdicts(effects), "effect_end_relative")
    rows = []
    for number in sorted(set(absolute.index) | set(relative.index)):
        ind = get_indicator(int(number))
        a = absolute.loc[number] if number in absolute.index else None
        r = relative.loc[number] if number in relative.index else None
        rows.append(
            [
                int(number),
                ind.name(lang),
                unit_label(ind.unit, lang),
                format_interval(a["estimate"], a["ci_low"], a["ci_high"]) if a is not None else "–",
                format_interval(r["estimate"], r["ci_low"], r["ci_high"], percent=True) if r is not None else "–",
                format_p(r["p_value"]) if r is not None else "–",
                verdict_label(r["verdict"], lang) if r is not None else "–",
            ]
        )
    keys = ["indicator", "name", "unit", "absolute", "relative", "p", "verdict"]
    return pd.DataFrame(rows, columns=_header(keys, lang))


def national_table(tables: RunTables, *, lang: str = "zh") -> pd.DataFrame:
    """Random-effects national effects at the end of the plan, one row per indicator.

    Columns: number, dimension, name, unit, relative effect [95% CI] and its 95%
    prediction interval in percent, p, absolute effect [95% CI], the cumulative extra
    events added up over the provinces [95% CI] (proportions and rates; negative: events
    averted), k, I² and τ² of the relative effect (τ² on the log-ratio scale on which it
    was pooled), and the verdict.
    """
    _check_lang(lang)
    national = tables.national
    relative = _measure_rows(national, "effect_end_relative")
    absolute = _measure_rows(national, "effect_end_absolute")
    cumulative = _measure_rows(national, "effect_cumulative")
    rows = []
    for number in sorted(set(relative.index) | set(absolute.index)):
        ind = get_indicator(int(number))
        r = relative.loc[number] if number in relative.index else None
        a = absolute.loc[number] if number in absolute.index else None
        c = cumulative.loc[number] if number in cumulative.index else None
        verdict = classify(r["estimate"], r["ci_low"], r["ci_high"], ind.direction) if r is not None else None
        rows.append(
            [
                int(number),
                ind.dimension_zh if lang == "zh" else ind.dimension_en,
                ind.name(lang),
                unit_label(ind.unit, lang),
                _DIRECTION_TEXT[ind.direction][lang],
                format_interval(r["estimate"], r["ci_low"], r["ci_high"], percent=True) if r is not None else "–",
                (
                    f"({_num(100 * r['pi_low'], 1)}, {_num(100 * r['pi_high'], 1)})"
                    if r is not None and "pi_low" in r
                    else "–"
                ),
                format_p(r["p_value"]) if r is not None else "–",
                format_interval(a["estimate"], a["ci_low"], a["ci_high"]) if a is not None else "–",
                format_count_interval(c["estimate"], c["ci_low"], c["ci_high"]) if c is not None else "–",
                int(r["k"]) if r is not None and np.isfinite(r.get("k", np.nan)) else "–",
                _num(r["i2"], 1) if r is not None and "i2" in r else "–",
                f"{r['tau2']:.2g}" if r is not None and "tau2" in r and np.isfinite(r["tau2"]) else "–",
                verdict_label(verdict, lang) if verdict else "–",
            ]
        )
    keys = [
        "indicator",
        "dimension",
        "name",
        "unit",
        "direction",
        "relative",
        "pi",
        "p",
        "absolute",
        "cumulative_total",
        "k",
        "i2",
        "tau2",
        "verdict",
    ]
    return pd.DataFrame(rows, columns=_header(keys, lang))


def province_summary(tables: RunTables) -> pd.DataFrame:
    """Per province: indicators fitted, failures and counts of each verdict.

    Columns ``province``, ``fitted``, ``failed``, ``improvement``, ``deterioration``,
    ``inconclusive`` (language-neutral; the index page and notebooks label them).
    """
    fitted = tables.diagnostics.groupby("province")["indicator"].nunique()
    failed = (
        tables.failures.groupby("province")["indicator"].nunique() if len(tables.failures) else pd.Series(dtype=int)
    )
    judged = verdicts(tables.effects)
    counts = pd.crosstab(judged["province"], judged["verdict"]).reindex(columns=list(VERDICTS), fill_value=0)
    out = pd.DataFrame({"province": tables.provinces})
    out["fitted"] = out["province"].map(fitted).fillna(0).astype(int)
    out["failed"] = out["province"].map(failed).fillna(0).astype(int)
    for verdict in VERDICTS:
        out[verdict] = out["province"].map(counts[verdict]).fillna(0).astype(int)
    return out


def province_summary_table(tables: RunTables, *, lang: str = "zh") -> pd.DataFrame:
    """:func:`province_summary` with province names and column labels in ``lang``."""
    _check_lang(lang)
    summary = province_summary(tables)
    out = pd.DataFrame(
        {
            _COLUMNS["province"][lang]: [province_name(c, lang) for c in summary["province"]],
            _COLUMNS["code"][lang]: summary["province"],
        }
    )
    for key in ("fitted", "failed", *VERDICTS):
        out[_COLUMNS[key][lang]] = summary[key].to_numpy()
    return out


def diagnostics_overview(tables: RunTables, *, lang: str = "zh") -> pd.DataFrame:
    """Per indicator across provinces: series fitted, not converged, residual checks.

    Columns: indicator, name, series fitted, failures, not converged, median AR(1) φ,
    median Durbin-Watson and the number of series with a Ljung-Box p below 0.05
    (residual autocorrelation left after the model).
    """
    _check_lang(lang)
    diag = tables.diagnostics
    failed = tables.failures.groupby("indicator").size() if len(tables.failures) else pd.Series(dtype=int)
    rows = []
    for number in sorted(set(diag["indicator"]) | set(failed.index)):
        d = diag[diag["indicator"] == number]
        rows.append(
            [
                int(number),
                get_indicator(int(number)).name(lang),
                len(d),
                int(failed.get(number, 0)),
                int((~d["converged"].astype(bool)).sum()),
                _num(d["phi"].median(), 2),
                _num(d["durbin_watson"].median(), 2),
                int((d["ljung_box_p"] < 0.05).sum()),
            ]
        )
    keys = ["indicator", "name", "series", "failed", "not_converged", "phi_median", "dw_median", "ljung_box_low"]
    return pd.DataFrame(rows, columns=_header(keys, lang))


def diagnostics_table(tables: RunTables, *, province: str, lang: str = "zh") -> pd.DataFrame:
    """Model diagnostics of one province's series, labelled in ``lang``."""
    _check_lang(lang)
    diag = tables.diagnostics[tables.diagnostics["province"] == str(province)].sort_values("indicator")
    rows = []
    for row in diag.itertuples(index=False):
        rows.append(
            [
                int(row.indicator),
                get_indicator(int(row.indicator)).name(lang),
                row.family,
                row.start_month,
                int(row.n_pre),
                int(row.n_post),
                int(row.washin),
                _num(row.phi, 2),
                _num(row.pearson_dispersion, 2),
                _num(row.durbin_watson, 2),
                format_p(row.ljung_box_p),
                _YES_NO[bool(row.converged)][lang],
            ]
        )
    keys = [
        "indicator",
        "name",
        "family",
        "start",
        "n_pre",
        "n_post",
        "washin",
        "phi",
        "dispersion",
        "durbin_watson",
        "ljung_box_p",
        "converged",
    ]
    return pd.DataFrame(rows, columns=_header(keys, lang))


def failures_table(tables: RunTables, *, province: str | None = None, lang: str = "zh") -> pd.DataFrame:
    """Series that could not be fitted (all, or one province's), labelled in ``lang``."""
    _check_lang(lang)
    failures = tables.failures
    if province is not None:
        failures = failures[failures["province"] == str(province)]
    rows = [
        [
            province_name(f.province, lang),
            int(f.indicator),
            get_indicator(int(f.indicator)).name(lang),
            f.stage,
            f.error,
            f.message,
        ]
        for f in failures.itertuples(index=False)
    ]
    keys = ["province", "indicator", "name", "stage", "error", "message"]
    return pd.DataFrame(rows, columns=_header(keys, lang))


_PROVENANCE_TEXT = {
    "package": {"zh": "软件包", "en": "Package"},
    "revision": {"zh": "代码版本", "en": "Code revision"},
    "python": {"zh": "Python", "en": "Python"},
    "input": {"zh": "输入数据", "en": "Input"},
    "parameters": {"zh": "参数", "en": "Parameters"},
    "run": {"zh": "运行时间", "en": "Run"},
    "counts": {"zh": "计数", "en": "Counts"},
    "dirty": {"zh": "（含未提交修改）", "en": " (uncommitted changes)"},
    "rows": {"zh": "行", "en": "rows"},
}


def _compact(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(_compact(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    return str(value)


def provenance_table(manifest: dict[str, Any], *, lang: str = "zh") -> pd.DataFrame:
    """Provenance of a run in two columns (item, value) from its manifest.

    Absent keys are skipped and unknown ones ignored, so older or newer manifests still
    display.

    Examples
    --------
    >>> provenance_table({"package": {"name": "plan-its", "version": "0.1.0"}}, lang="en").iloc[0, 1]
    'plan-its 0.1.0'
    """
    text = {k: v[_check_lang(lang)] for k, v in _PROVENANCE_TEXT.items()}
    rows: list[tuple[str, str]] = []
    package = manifest.get("package")
    if isinstance(package, dict):
        rows.append((text["package"], f"{package.get('name', '')} {package.get('version', '')}".strip()))
    elif package:
        rows.append((text["package"], str(package)))
    revision = manifest.get("code_revision")
    if isinstance(revision, dict):
        commit = str(revision.get("commit") or "–")
        rows.append((text["revision"], commit + (text["dirty"] if revision.get("dirty") else "")))
    elif revision:
        rows.append((text["revision"], str(revision)))
    if manifest.get("python"):
        rows.append((text["python"], str(manifest["python"])))
    for item in manifest.get("inputs") or []:
        if not isinstance(item, dict):
            rows.append((text["input"], str(item)))
            continue
        label = text["input"] + (f" ({item['role']})" if item.get("role") else "")
        parts = [str(item.get("path", ""))]
        if item.get("rows") is not None:
            parts.append(f"{item['rows']} {text['rows']}")
        if item.get("sha256"):
            parts.append(f"sha256 {item['sha256']}")
        rows.append((label, " · ".join(p for p in parts if p)))
    parameters = manifest.get("parameters")
    if isinstance(parameters, dict) and parameters:
        rows.append((text["parameters"], "; ".join(f"{k}={_compact(v)}" for k, v in parameters.items())))
    if manifest.get("started") or manifest.get("finished"):
        rows.append((text["run"], f"{manifest.get('started', '?')} → {manifest.get('finished', '?')}"))
    counts = manifest.get("counts")
    if isinstance(counts, dict) and counts:
        rows.append((text["counts"], "; ".join(f"{k}={_compact(v)}" for k, v in counts.items())))
    return pd.DataFrame(rows, columns=_header(["item", "value"], lang))


# Column labels of optional tables whose schema the report does not know in advance.
_GENERIC_COLUMNS = {
    "variant_min": {"zh": "各设定最小值", "en": "Variants: min"},
    "variant_max": {"zh": "各设定最大值", "en": "Variants: max"},
    "n_variants": {"zh": "设定数", "en": "Variants"},
    "variants_disagreeing": {"zh": "结论不同的设定", "en": "Variants that disagree"},
    "loo_min": {"zh": "逐一剔除省份最小值", "en": "Leave-one-out: min"},
    "loo_max": {"zh": "逐一剔除省份最大值", "en": "Leave-one-out: max"},
    "loo_disagreeing": {"zh": "剔除后结论改变的省份", "en": "Provinces whose omission changes the verdict"},
    "conclusion_robust": {"zh": "结论稳健", "en": "Robust"},
    "direction": {"zh": "改善方向", "en": "Better"},
    "verdict": {"zh": "结论", "en": "Verdict"},
    "province": {"zh": "省份", "en": "Province"},
    "comparison": {"zh": "对照序列", "en": "Comparison"},
    "pooled_as": {"zh": "合并方式", "en": "Pooled as"},
    "indicator": {"zh": "指标", "en": "Indicator"},
    "measure": {"zh": "效应量", "en": "Measure"},
    "estimate": {"zh": "估计值", "en": "Estimate"},
    "se": {"zh": "标准误", "en": "SE"},
    "ci_low": {"zh": "95% CI 下限", "en": "CI low"},
    "ci_high": {"zh": "95% CI 上限", "en": "CI high"},
    "p_value": {"zh": "P值", "en": "p"},
    "n": {"zh": "n", "en": "n"},
    "coverage": {"zh": "覆盖率", "en": "Coverage"},
    "false_positive_rate": {"zh": "假阳性率", "en": "False-positive rate"},
    "power": {"zh": "检验效能", "en": "Power"},
    "median_abs_error": {"zh": "绝对误差中位数", "en": "Median absolute error"},
}


def _fmt(value: object, column: str) -> str:
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return "✓" if value else "–"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "–"
        if column == "p_value" or column.startswith("p_") or column.endswith("_p"):
            return format_p(float(value))
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.3g}".replace("-", "\u2212")
    return str(value)


def readable_table(frame: pd.DataFrame, lang: str) -> pd.DataFrame:
    """A table of any schema made readable: names for codes, labels, rounding.

    Columns without any value are left out (the workbook keeps them)."""
    out = pd.DataFrame(index=range(len(frame)))
    for column in frame.columns:
        if frame[column].isna().all():
            continue
        values = frame[column].tolist()
        if column == "province":
            shown = [province_name(str(v), lang) for v in values]
        elif column == "measure":
            shown = [
                measure_label(v, lang) if isinstance(v, str) and v in _MEASURES else _fmt(v, column) for v in values
            ]
        elif column == "verdict":
            shown = [
                verdict_label(v, lang) if v in ("improvement", "deterioration", "inconclusive") else _fmt(v, column)
                for v in values
            ]
        else:
            shown = [_fmt(v, str(column)) for v in values]
        label = _GENERIC_COLUMNS.get(str(column), {}).get(lang, str(column))
        out[label] = shown
    return out


_MEASURES = ("level_change", "slope_change", "effect_end_absolute", "effect_end_relative", "effect_cumulative")


def readable_numeric_columns(frame: pd.DataFrame, shown: pd.DataFrame, lang: str) -> tuple[str, ...]:
    """Labels of the numeric columns of :func:`readable_table`'s output (to right-align)."""
    labels = {str(column): _GENERIC_COLUMNS.get(str(column), {}).get(lang, str(column)) for column in frame.columns}
    return tuple(
        labels[str(column)]
        for column in frame.columns
        if labels[str(column)] in shown.columns
        and pd.api.types.is_numeric_dtype(frame[column])
        and column not in ("indicator",)
    )
