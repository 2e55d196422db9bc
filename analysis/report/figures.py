"""Figures of an evaluation run: province small multiples, forest plots, national overview.

Figures are built with the object-oriented API (:class:`matplotlib.figure.Figure`, no
pyplot), so they work under any backend, are never kept alive by pyplot's figure
registry, and are freed as soon as the caller drops them. Colours are the Okabe-Ito
palette, distinguishable with the common colour-vision deficiencies; verdicts also
differ by marker shape so that colour is never the only cue.

Relative effects (ratio - 1) are drawn on a log-ratio axis labelled in percent: a
halving and a doubling are equally far from "no effect", and the intervals, computed
on the log scale, are symmetric there.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Polygon
from matplotlib.ticker import MaxNLocator

from analysis.registry import get_indicator, indicators, timeline
from analysis.report.fonts import strict_glyphs, use_cjk_font
from analysis.report.tables import (
    VERDICTS,
    classify,
    format_interval,
    measure_label,
    month_label,
    province_name,
    scale_label,
    unit_label,
    verdict_label,
)

__all__ = [
    "OKABE_ITO",
    "VERDICT_COLOURS",
    "VERDICT_MARKERS",
    "figure_png",
    "indicator_forest",
    "national_overview",
    "province_panels",
    "save_figure",
    "show",
]

#: Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000",
    "orange": "#E69F00",
    "sky_blue": "#56B4E9",
    "bluish_green": "#009E73",
    "yellow": "#F0E442",
    "blue": "#0072B2",
    "vermillion": "#D55E00",
    "reddish_purple": "#CC79A7",
}
VERDICT_COLOURS = {
    "improvement": OKABE_ITO["bluish_green"],
    "deterioration": OKABE_ITO["vermillion"],
    "inconclusive": "#6E6E6E",
}
VERDICT_MARKERS = {"improvement": "o", "deterioration": "s", "inconclusive": "D"}

#: Default resolution: 32 province figures must stay quick to draw and small to store.
DPI = 90
_OBSERVED = "#4D4D4D"
FITTED_COLOUR = OKABE_ITO["blue"]
_COUNTERFACTUAL = OKABE_ITO["orange"]
_START = OKABE_ITO["reddish_purple"]
WASHIN_COLOUR = OKABE_ITO["sky_blue"]
_COVID = "#BBBBBB"
#: Relative-effect axes show at most -60% .. +150%; longer intervals end in an arrow.
_REL_CLIP = (math.log(0.4), math.log(2.5))
_REL_TICKS = (-90, -75, -50, -40, -30, -20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200)

_TEXT = {
    "observed": {"zh": "观测值", "en": "Observed"},
    "fitted": {"zh": "模型拟合值", "en": "Fitted"},
    "counterfactual": {"zh": "反事实（无计划）及95% CI", "en": "Counterfactual (no plan), 95% CI"},
    "start": {"zh": "本省计划起始", "en": "Provincial plan start"},
    "washin": {"zh": "过渡期", "en": "Wash-in"},
    "covid": {"zh": "新冠冲击月", "en": "COVID-19 shock months"},
    "panels_title": {
        "zh": "{province}：各监测指标的中断时间序列",
        "en": "{province}: interrupted time series of the monitoring indicators",
    },
    "panels_note": {
        "zh": "各格角上数字：{month}相对于反事实的相对效应 %（95% CI）；颜色：绿=改善，红=恶化，灰=不确定（按指标导向判定）",
        "en": "Figure in each panel: relative effect vs the counterfactual at {month}, % (95% CI); "
        "green = improvement, red = deterioration, grey = inconclusive (given the indicator's direction)",
    },
    "no_effect": {"zh": "未估计", "en": "not estimated"},
    "estimate_ci": {"zh": "估计值（95% CI）", "en": "Estimate (95% CI)"},
    "national": {"zh": "全国合并（随机效应）", "en": "National (random effects)"},
    "pi": {"zh": "95% 预测区间", "en": "95% prediction interval"},
    "higher": {"zh": "越高越好", "en": "higher is better"},
    "lower": {"zh": "越低越好", "en": "lower is better"},
    "log_ratio": {"zh": "%，对数比值刻度", "en": "%, log-ratio scale"},
    "events": {"zh": "事件数", "en": "events"},
    "overview_title": {
        "zh": "全国合并的{month}相对效应（随机效应，95% CI）",
        "en": "National pooled relative effect at {month} (random effects, 95% CI)",
    },
    "overview_note": {"zh": "↑ 越高越好  ↓ 越低越好", "en": "↑ higher is better   ↓ lower is better"},
}


def figure_text(key: str, lang: str, **fields: str) -> str:
    return _TEXT[key][lang].format(**fields)


# ---------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------


def figure_png(fig: Figure, *, dpi: float | None = None) -> bytes:
    """Render ``fig`` to PNG bytes, failing on any character without a glyph.

    Examples
    --------
    >>> fig = Figure(figsize=(2, 1))
    >>> figure_png(fig)[:4]
    b'\\x89PNG'
    """
    buffer = io.BytesIO()
    with strict_glyphs():
        fig.savefig(buffer, format="png", dpi=dpi or fig.dpi)
    return buffer.getvalue()


def show(fig: Figure, *, dpi: float | None = None) -> None:
    """Display ``fig`` in a notebook as a PNG image, then release the figure's artists.

    The figures are not registered with pyplot, so the inline backend neither shows nor
    keeps them; clearing frees the memory without waiting for the garbage collector.
    The figure's title becomes the image's alternative text.
    """
    from IPython.display import Image, display

    png = figure_png(fig, dpi=dpi)
    display(Image(data=png, format="png", alt=_title_of(fig)))
    fig.clear()


def _title_of(fig: Figure) -> str:
    title = fig.get_suptitle()
    if not title and fig.texts:  # figures here put the title in their first text
        title = fig.texts[0].get_text()
    return " ".join(title.split())


def save_figure(fig: Figure, path: str | Path, *, dpi: float | None = None) -> Path:
    """Write ``fig`` to ``path`` (format from the suffix), failing on missing glyphs."""
    path = Path(path)
    with strict_glyphs():
        fig.savefig(path, dpi=dpi or fig.dpi)
    return path


# ---------------------------------------------------------------------------------------
# Shared helpers
# ---------------------------------------------------------------------------------------


def check_lang(lang: str) -> None:
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")


def _month_x(months: Iterable[str] | pd.Series) -> np.ndarray:
    """Months 'YYYY-MM' as decimal years (the first day of the month)."""
    text = pd.Series(months, dtype=str)
    return text.str[:4].astype(int).to_numpy() + (text.str[5:7].astype(int).to_numpy() - 1) / 12


def _runs(months: Sequence[pd.Period]) -> list[tuple[pd.Period, pd.Period]]:
    """Consecutive months grouped into (first, last) runs."""
    runs: list[tuple[pd.Period, pd.Period]] = []
    for month in sorted(months):
        if runs and month == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], month)
        else:
            runs.append((month, month))
    return runs


def wrap_label(text: str, lang: str, *, width_zh: int, width_en: int) -> str:
    """Wrap a label; Chinese has no spaces, so it is cut every ``width_zh`` characters."""
    if lang == "zh":
        return "\n".join(text[i : i + width_zh] for i in range(0, len(text), width_zh))
    return "\n".join(textwrap.wrap(text, width=width_en, break_on_hyphens=False))


def indicator_title(number: int, lang: str) -> str:
    return f"{number} {get_indicator(number).name(lang)}"


def relative_ticks(lo: float, hi: float) -> list[float]:
    """Round percentages for a log-ratio axis, at least a ninth of the axis apart."""
    gap = (hi - lo) / 9
    ticks = [0]
    for side in (sorted((t for t in _REL_TICKS if t < 0), reverse=True), [t for t in _REL_TICKS if t > 0]):
        last = 0.0
        for t in side:  # outwards from zero, so the ticks next to it are the ones kept
            x = math.log1p(t / 100)
            if not lo <= x <= hi:
                break
            if abs(x - last) >= gap:
                ticks.append(t)
                last = x
    return sorted(ticks)


def format_percent_tick(value: float) -> str:
    return f"{value:+.0f}%".replace("-", "\u2212") if value else "0"


def relative_limits(lows: np.ndarray, highs: np.ndarray) -> tuple[float, float]:
    """Log-ratio axis limits covering the intervals (clipped) and zero, with margins."""
    finite_lo = lows[np.isfinite(lows)]
    finite_hi = highs[np.isfinite(highs)]
    lo = min(0.0, finite_lo.min() if finite_lo.size else -0.1)
    hi = max(0.0, finite_hi.max() if finite_hi.size else 0.1)
    lo, hi = max(lo, _REL_CLIP[0]), min(hi, _REL_CLIP[1])
    pad = 0.06 * (hi - lo or 0.2)
    return lo - pad, hi + pad


def _set_relative_axis(ax, lo: float, hi: float, *, label: bool = True) -> None:
    ax.set_xlim(lo, hi)
    ticks = relative_ticks(lo, hi)
    ax.set_xticks([math.log1p(t / 100) for t in ticks])
    ax.set_xticklabels([format_percent_tick(t) for t in ticks] if label else [])


def _interval(ax, y: float, lo: float, hi: float, *, xlim: tuple[float, float], colour: str, lw: float = 1.3) -> None:
    """Horizontal interval clipped to ``xlim``; a clipped end is drawn as an arrowhead."""
    left, right = max(lo, xlim[0]), min(hi, xlim[1])
    if not (np.isfinite(left) and np.isfinite(right)):
        return
    ax.plot([left, right], [y, y], color=colour, lw=lw, solid_capstyle="butt", zorder=2)
    if lo < xlim[0]:
        ax.plot([xlim[0]], [y], marker="<", color=colour, ms=4, zorder=2, clip_on=False)
    if hi > xlim[1]:
        ax.plot([xlim[1]], [y], marker=">", color=colour, ms=4, zorder=2, clip_on=False)


# ---------------------------------------------------------------------------------------
# Province small multiples
# ---------------------------------------------------------------------------------------

# Panel geometry in inches: fixed sizes keep every province's figure alike and avoid
# constrained layout, which costs more than the drawing itself for 31 panels.
_PANEL_W, _PANEL_H = 3.3, 1.75
_GAP_W, _GAP_H = 0.62, 0.78
_MARGIN_L, _MARGIN_R, _MARGIN_B, _MARGIN_T = 0.55, 0.15, 0.35, 1.15


def _free_corner(
    x: np.ndarray, y: np.ndarray, xlim: tuple[float, float], ylim: tuple[float, float]
) -> tuple[float, float, str, str]:
    """The axes corner whose label box covers the fewest data points, for the effect label."""
    xs = (x - xlim[0]) / (xlim[1] - xlim[0])
    ys = (y - ylim[0]) / (ylim[1] - ylim[0])
    # (x, y, ha, va) of each corner with the box the label roughly occupies, in the order
    # preferred on ties; the label is about 45% of a panel wide and 15% high.
    corners = [
        ((0.02, 0.97, "left", "top"), (xs < 0.47) & (ys > 0.80)),
        ((0.98, 0.97, "right", "top"), (xs > 0.53) & (ys > 0.80)),
        ((0.02, 0.03, "left", "bottom"), (xs < 0.47) & (ys < 0.20)),
        ((0.98, 0.03, "right", "bottom"), (xs > 0.53) & (ys < 0.20)),
    ]
    return min(corners, key=lambda c: int(np.count_nonzero(c[1])))[0]


def _y_limits(core: np.ndarray, band: np.ndarray) -> tuple[float, float]:
    """Limits from the observed, fitted and counterfactual values; a wide band is cut.

    A small province's counterfactual band can be many times the data range; drawing
    it whole would flatten the series the panel is about.
    """
    core = core[np.isfinite(core)]
    band = band[np.isfinite(band)]
    lo, hi = core.min(), core.max()
    span = hi - lo or abs(hi) or 1.0
    if band.size:
        lo = max(min(lo, band.min()), lo - 0.35 * span)
        hi = min(max(hi, band.max()), hi + 0.35 * span)
    pad = 0.06 * (hi - lo)
    low = lo - pad
    if core.min() >= 0 and low < 0:
        low = 0.0
    return low, hi + pad


def _draw_series(
    ax,
    series: pd.DataFrame,
    *,
    number: int,
    start: str | None,
    effect: pd.Series | None,
    lang: str,
    xlim: tuple[float, float],
) -> None:
    ind = get_indicator(number)
    x = _month_x(series["month"])
    after = (series["phase"] != "pre").to_numpy()
    washin = (series["phase"] == "washin").to_numpy()
    for first, last in _runs(timeline.COVID_SHOCK_MONTHS):
        x0, x1 = _month_x([str(first)])[0], _month_x([str(last)])[0] + 1 / 12
        if x1 > x[0] and x0 < x[-1]:
            ax.axvspan(x0, x1, color=_COVID, alpha=0.45, lw=0, zorder=0)
    if washin.any():
        ax.axvspan(x[washin].min(), x[washin].max() + 1 / 12, color=WASHIN_COLOUR, alpha=0.18, lw=0, zorder=0)
    if start:
        ax.axvline(_month_x([start])[0], color=_START, lw=1.0, zorder=1)
    if after.any():
        xa = x[after]
        ax.fill_between(
            xa,
            series["counterfactual_low"].to_numpy()[after],
            series["counterfactual_high"].to_numpy()[after],
            color=_COUNTERFACTUAL,
            alpha=0.22,
            lw=0,
            zorder=1,
        )
        ax.plot(xa, series["counterfactual"].to_numpy()[after], color=_COUNTERFACTUAL, lw=1.3, ls=(0, (4, 2)), zorder=3)
    ax.plot(x, series["fitted"].to_numpy(), color=FITTED_COLOUR, lw=1.2, zorder=3)
    observed = series["observed"].to_numpy(float)
    ax.plot(x, observed, ls="none", marker="o", ms=2.3, mew=0, color=_OBSERVED, alpha=0.75, zorder=2)

    core = np.concatenate([observed, series["fitted"].to_numpy(float), series["counterfactual"].to_numpy(float)[after]])
    band = np.concatenate(
        [series["counterfactual_low"].to_numpy(float)[after], series["counterfactual_high"].to_numpy(float)[after]]
    )
    ylim = _y_limits(core, band)
    ax.set_ylim(*ylim)
    ax.set_xlim(*xlim)
    ax.set_xticks(range(math.ceil(xlim[0]), math.floor(xlim[1]) + 1))
    ax.set_xticklabels([str(y) for y in range(math.ceil(xlim[0]), math.floor(xlim[1]) + 1)])
    ax.tick_params(labelsize=7, length=2.5, pad=1.5)
    ax.set_title(
        wrap_label(indicator_title(number, lang), lang, width_zh=26, width_en=52),
        loc="left",
        fontsize=8.5,
        pad=3,
        y=1.0,
    )  # a fixed y skips the costly auto-placement
    ax.yaxis.set_major_locator(MaxNLocator(nbins=5, steps=[1, 2, 2.5, 5, 10]))
    ax.set_ylabel(unit_label(ind.unit, lang), fontsize=7.5, labelpad=2)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    if effect is None:
        text, colour = figure_text("no_effect", lang), VERDICT_COLOURS["inconclusive"]
    else:
        verdict = classify(effect["estimate"], effect["ci_low"], effect["ci_high"], ind.direction)
        text = format_interval(effect["estimate"], effect["ci_low"], effect["ci_high"], percent=True)
        colour = VERDICT_COLOURS[verdict]
    cx, cy, ha, va = _free_corner(
        np.concatenate([x, x, x[after]]),
        np.concatenate([observed, series["fitted"].to_numpy(float), series["counterfactual"].to_numpy(float)[after]]),
        xlim,
        ylim,
    )
    ax.text(
        cx,
        cy,
        text,
        transform=ax.transAxes,
        ha=ha,
        va=va,
        fontsize=7.5,
        color=colour,
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
        zorder=5,
    )


def province_panels(
    predictions: pd.DataFrame,
    effects: pd.DataFrame,
    diagnostics: pd.DataFrame,
    *,
    province: str,
    lang: str = "zh",
    ncols: int = 4,
    dpi: float = DPI,
) -> Figure:
    """Small multiples of one province: one panel per fitted indicator.

    Each panel shows the observed months (points), the fitted model (solid), the
    counterfactual without the plan with its 95% confidence band (dashed, from the first
    wash-in month), the province's plan start (vertical line), the wash-in (light blue)
    and the COVID-19 shock months (grey), titled with the annex number and name, and
    labelled with the relative effect at the evaluation month and its 95% CI, coloured
    by its verdict.

    Parameters
    ----------
    predictions, effects, diagnostics : DataFrame
        The run's tables (see :func:`analysis.report.tables.load_run`).
    province : str
        Province code, e.g. ``"340000"``.
    lang : {"zh", "en"}
        Language of all text.
    ncols : int
        Panels per row.
    dpi : float
        Resolution of the figure.

    Returns
    -------
    Figure
        One axes per indicator, in annex order.
    """
    check_lang(lang)
    use_cjk_font()
    code = str(province)
    pred = predictions[predictions["province"].astype(str) == code]
    if pred.empty:
        raise ValueError(
            f"no predictions for province {code!r}; provinces present: "
            f"{sorted(predictions['province'].astype(str).unique())[:40]}"
        )
    numbers = sorted(int(i) for i in pred["indicator"].unique())
    diag = diagnostics[diagnostics["province"].astype(str) == code]
    start = str(diag["start_month"].iloc[0]) if len(diag) else None
    rel = effects[(effects["province"].astype(str) == code) & (effects["measure"] == "effect_end_relative")]
    rel = rel.set_index("indicator")
    month = str(rel["window_end"].iloc[0]) if len(rel) and "window_end" in rel else str(timeline.IMPLEMENTATION_END)

    nrows = math.ceil(len(numbers) / ncols)
    width = _MARGIN_L + ncols * _PANEL_W + (ncols - 1) * _GAP_W + _MARGIN_R
    height = _MARGIN_T + nrows * _PANEL_H + (nrows - 1) * _GAP_H + _MARGIN_B
    fig = Figure(figsize=(width, height), dpi=dpi)
    xs = _month_x(pred["month"])
    xlim = (math.floor(xs.min()) - 0.05, xs.max() + 1 / 12 + 0.05)
    groups = dict(tuple(pred.groupby("indicator", sort=True)))
    for k, number in enumerate(numbers):
        row, col = divmod(k, ncols)
        left = _MARGIN_L + col * (_PANEL_W + _GAP_W)
        top = _MARGIN_T + row * (_PANEL_H + _GAP_H)
        ax = fig.add_axes((left / width, 1 - (top + _PANEL_H) / height, _PANEL_W / width, _PANEL_H / height))
        series = groups[number].sort_values("month")
        _draw_series(
            ax,
            series,
            number=number,
            start=start,
            effect=rel.loc[number] if number in rel.index else None,
            lang=lang,
            xlim=xlim,
        )

    fig.suptitle(
        figure_text("panels_title", lang, province=province_name(code, lang)),
        x=_MARGIN_L / width,
        y=1 - 0.12 / height,
        ha="left",
        va="top",
        fontsize=14,
    )
    handles = [
        Line2D([], [], ls="none", marker="o", ms=4, color=_OBSERVED, label=figure_text("observed", lang)),
        Line2D([], [], color=FITTED_COLOUR, lw=1.5, label=figure_text("fitted", lang)),
        (Patch(color=_COUNTERFACTUAL, alpha=0.25, lw=0), Line2D([], [], color=_COUNTERFACTUAL, lw=1.5, ls=(0, (4, 2)))),
        Line2D([], [], color=_START, lw=1.2, label=figure_text("start", lang)),
        Patch(color=WASHIN_COLOUR, alpha=0.3, lw=0, label=figure_text("washin", lang)),
        Patch(color=_COVID, alpha=0.6, lw=0, label=figure_text("covid", lang)),
    ]
    labels = [figure_text(k, lang) for k in ("observed", "fitted", "counterfactual", "start", "washin", "covid")]
    fig.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(_MARGIN_L / width, 1 - 0.48 / height),
        ncol=6,
        frameon=False,
        fontsize=9,
        handlelength=2.2,
        borderaxespad=0,
        columnspacing=1.6,
    )
    fig.text(
        _MARGIN_L / width,
        1 - 0.80 / height,
        figure_text("panels_note", lang, month=month_label(month, lang)),
        ha="left",
        va="top",
        fontsize=8.5,
        color="#333333",
    )
    return fig


# ---------------------------------------------------------------------------------------
# Forest plot of one indicator
# ---------------------------------------------------------------------------------------


def _axis_label(measure: str, *, unit: str, scale: str, month: str, lang: str) -> str:
    name = measure_label(measure, lang, month=month)
    if measure == "effect_end_relative":
        detail = figure_text("log_ratio", lang)
    elif measure == "effect_end_absolute":
        detail = unit_label(unit, lang)
    elif measure == "effect_cumulative":
        detail = figure_text("events", lang)
    else:
        detail = scale_label(scale, lang)
    return f"{name}（{detail}）" if lang == "zh" else f"{name} ({detail})"


def indicator_forest(
    effects: pd.DataFrame,
    national: pd.DataFrame,
    *,
    indicator: int,
    measure: str = "effect_end_relative",
    lang: str = "zh",
    dpi: float = DPI,
) -> Figure:
    """Forest plot of one indicator's provincial effects and the national pooled effect.

    Provinces are ordered by their estimate (largest at the top) with 95% CIs, coloured
    and shaped by verdict; the national random-effects estimate is the diamond at the
    bottom, its 95% prediction interval the thin line through it. Relative effects are in
    percent on a log-ratio axis.

    Parameters
    ----------
    effects, national : DataFrame
        The run's ``effects`` and ``national`` tables.
    indicator : int
        Annex number.
    measure : str
        One of the measures of ``effects`` (default the relative effect at 2025-09).
    lang : {"zh", "en"}
        Language of all text.
    dpi : float
        Resolution of the figure.

    Returns
    -------
    Figure
        A single axes.
    """
    check_lang(lang)
    use_cjk_font()
    ind = get_indicator(int(indicator))
    rows = effects[(effects["indicator"].astype(int) == ind.number) & (effects["measure"] == measure)]
    if rows.empty:
        raise ValueError(f"no {measure!r} effects for indicator {ind.number}")
    rows = rows.sort_values("estimate", ascending=True)
    pooled = national[(national["indicator"].astype(int) == ind.number) & (national["measure"] == measure)]
    pooled_row = pooled.iloc[0] if len(pooled) else None
    relative = measure == "effect_end_relative"
    transform = np.log1p if relative else (lambda v: np.asarray(v, float))
    month = str(rows["window_end"].iloc[0]) if "window_end" in rows else str(timeline.IMPLEMENTATION_END)

    n = len(rows)
    height = 1.55 + 0.24 * (n + (2 if pooled_row is not None else 0))
    fig = Figure(figsize=(8.2, height), dpi=dpi)
    ax = fig.add_axes((2.0 / 8.2, 0.75 / height, 4.3 / 8.2, 1 - 1.5 / height))
    est = transform(rows["estimate"].to_numpy(float))
    lo = transform(rows["ci_low"].to_numpy(float))
    hi = transform(rows["ci_high"].to_numpy(float))
    all_lo, all_hi = lo, hi
    if pooled_row is not None:
        p_lo = [pooled_row.get("pi_low", np.nan), pooled_row["ci_low"]]
        p_hi = [pooled_row.get("pi_high", np.nan), pooled_row["ci_high"]]
        all_lo = np.concatenate([lo, transform(np.asarray(p_lo, float))])
        all_hi = np.concatenate([hi, transform(np.asarray(p_hi, float))])
    if relative:
        xlim = relative_limits(all_lo, all_hi)
    else:
        finite = np.concatenate([all_lo, all_hi, est, [0.0]])
        finite = finite[np.isfinite(finite)]
        pad = 0.06 * (finite.max() - finite.min() or 1.0)
        xlim = (finite.min() - pad, finite.max() + pad)

    labels, ys = [], []
    for y, (row, e, l, h) in enumerate(zip(rows.itertuples(index=False), est, lo, hi)):
        verdict = classify(row.estimate, row.ci_low, row.ci_high, ind.direction)
        colour = VERDICT_COLOURS[verdict]
        _interval(ax, y, l, h, xlim=xlim, colour=colour)
        if xlim[0] <= e <= xlim[1]:
            ax.plot([e], [y], marker=VERDICT_MARKERS[verdict], ms=5, color=colour, zorder=3, ls="none")
        labels.append(province_name(row.province, lang))
        ys.append(y)
        ax.text(
            1.02,
            y,
            format_interval(row.estimate, row.ci_low, row.ci_high, percent=relative),
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=7.5,
            color=colour,
        )

    if pooled_row is not None:
        y = -1.6
        verdict = classify(pooled_row["estimate"], pooled_row["ci_low"], pooled_row["ci_high"], ind.direction)
        colour = VERDICT_COLOURS[verdict]
        pi = (pooled_row.get("pi_low", np.nan), pooled_row.get("pi_high", np.nan))
        if np.all(np.isfinite(pi)):
            _interval(ax, y, *transform(np.asarray(pi, float)), xlim=xlim, colour="#333333", lw=0.9)
        e, l, h = transform(np.asarray([pooled_row["estimate"], pooled_row["ci_low"], pooled_row["ci_high"]], float))
        l, h = max(l, xlim[0]), min(h, xlim[1])
        ax.add_patch(
            Polygon(
                [(l, y), (e, y + 0.42), (h, y), (e, y - 0.42)], closed=True, fc=colour, ec="#222222", lw=0.6, zorder=4
            )
        )
        k = pooled_row.get("k", np.nan)
        i2 = pooled_row.get("i2", np.nan)
        stats = [f"k={int(k)}"] if np.isfinite(k) else []
        if np.isfinite(i2):
            stats.append(f"I²={i2:.0f}%")
        labels.append(figure_text("national", lang))
        ys.append(y)
        ax.text(
            1.02,
            y,
            format_interval(pooled_row["estimate"], pooled_row["ci_low"], pooled_row["ci_high"], percent=relative)
            + "\n"
            + ", ".join(stats),
            transform=ax.get_yaxis_transform(),
            va="center",
            ha="left",
            fontsize=8,
            color=colour,
        )
        ax.axhline(-0.8, color="#999999", lw=0.6)

    ax.text(
        1.02,
        1.0,
        figure_text("estimate_ci", lang),
        transform=ax.transAxes,
        va="bottom",
        ha="left",
        fontsize=8,
        color="#444444",
    )
    ax.axvline(0.0, color="#222222", lw=0.8, zorder=1)
    if relative:
        _set_relative_axis(ax, *xlim)
    else:
        ax.set_xlim(*xlim)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=8)
    ax.set_ylim(min(ys) - 0.8, n - 0.4)
    ax.tick_params(axis="x", labelsize=7.5)
    ax.tick_params(axis="y", length=0, pad=7)
    ax.grid(axis="x", color="#E5E5E5", lw=0.6, zorder=0)
    ax.set_axisbelow(True)
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    unit = str(rows["unit"].iloc[0]) if "unit" in rows else ""
    scale = str(rows["scale"].iloc[0]) if "scale" in rows else ""
    ax.set_xlabel(_axis_label(measure, unit=unit, scale=scale, month=month, lang=lang), fontsize=8.5)
    title = wrap_label(indicator_title(ind.number, lang), lang, width_zh=30, width_en=60)
    direction = figure_text("higher" if ind.direction == "up" else "lower", lang)
    fig.text(0.02, 1 - 0.12 / height, title, ha="left", va="top", fontsize=11)
    fig.text(
        0.02,
        1 - (0.34 if "\n" not in title else 0.52) / height,
        direction,
        ha="left",
        va="top",
        fontsize=8.5,
        color="#444444",
    )
    handles = [
        Line2D(
            [], [], ls="none", marker=VERDICT_MARKERS[v], color=VERDICT_COLOURS[v], ms=5, label=verdict_label(v, lang)
        )
        for v in VERDICTS
    ]
    if pooled_row is not None:
        handles.append(Line2D([], [], color="#333333", lw=0.9, label=figure_text("pi", lang)))
    fig.legend(
        handles=handles,
        loc="lower left",
        bbox_to_anchor=(0.02, 0.01),
        ncol=4,
        frameon=False,
        fontsize=8,
        handletextpad=0.3,
        columnspacing=1.2,
    )
    return fig


# ---------------------------------------------------------------------------------------
# National overview
# ---------------------------------------------------------------------------------------

_ROW_H = 0.25
_GROUP_GAP = 0.45


def national_overview(
    national: pd.DataFrame, *, lang: str = "zh", month: str | None = None, dpi: float = DPI
) -> Figure:
    """Pooled relative effect at the end of the plan for every indicator.

    One row per indicator, grouped by the annex dimension (one axes per dimension), point
    and 95% CI on a log-ratio axis in percent, coloured and shaped by verdict given the
    indicator's direction (marked ↑ or ↓ after the name); the estimate, CI and number of
    provinces are printed on the right.

    Parameters
    ----------
    national : DataFrame
        The run's national table (``national_effects.csv``).
    lang : {"zh", "en"}
        Language of all text.
    month : str, optional
        Evaluation month for the labels ('YYYY-MM'); default the end of implementation.
    dpi : float
        Resolution of the figure.

    Returns
    -------
    Figure
        One axes per dimension that has pooled indicators.
    """
    check_lang(lang)
    use_cjk_font()
    rows = national[national["measure"] == "effect_end_relative"].copy()
    if rows.empty:
        raise ValueError("the national table has no effect_end_relative rows")
    rows["indicator"] = rows["indicator"].astype(int)
    rows = rows.set_index("indicator")
    groups: dict[str, list[int]] = {}
    for ind in indicators():  # annex order, so dimensions appear as in the annex
        if ind.number in rows.index:
            groups.setdefault(ind.dimension_zh if lang == "zh" else ind.dimension_en, []).append(ind.number)

    lo_all = np.log1p(rows["ci_low"].to_numpy(float))
    hi_all = np.log1p(rows["ci_high"].to_numpy(float))
    xlim = relative_limits(lo_all, hi_all)
    left_in = 3.1 if lang == "zh" else 3.9
    plot_w, right_in = 4.2, 2.0
    width = left_in + plot_w + right_in
    top_in, bottom_in = 0.85, 0.6
    height = top_in + bottom_in + sum(len(v) * _ROW_H for v in groups.values()) + _GROUP_GAP * len(groups)
    fig = Figure(figsize=(width, height), dpi=dpi)

    cursor = top_in
    axes = []
    for g, (dimension, numbers) in enumerate(groups.items()):
        cursor += _GROUP_GAP
        h = len(numbers) * _ROW_H
        ax = fig.add_axes((left_in / width, 1 - (cursor + h) / height, plot_w / width, h / height))
        axes.append(ax)
        cursor += h
        labels = []
        for y, number in enumerate(numbers):
            ind = get_indicator(number)
            row = rows.loc[number]
            verdict = classify(row["estimate"], row["ci_low"], row["ci_high"], ind.direction)
            colour = VERDICT_COLOURS[verdict]
            e, l, hh = np.log1p([row["estimate"], row["ci_low"], row["ci_high"]])
            _interval(ax, y, l, hh, xlim=xlim, colour=colour)
            if xlim[0] <= e <= xlim[1]:
                ax.plot([e], [y], marker=VERDICT_MARKERS[verdict], ms=5, color=colour, ls="none", zorder=3)
            arrow = "↑" if ind.direction == "up" else "↓"
            name = wrap_label(ind.name(lang), lang, width_zh=24, width_en=52).replace("\n", " ")
            labels.append(f"{number} {name} {arrow}")
            k = row.get("k", np.nan)
            note = format_interval(row["estimate"], row["ci_low"], row["ci_high"], percent=True)
            if np.isfinite(k):
                note += f"  k={int(k)}"
            ax.text(
                1.02, y, note, transform=ax.get_yaxis_transform(), va="center", ha="left", fontsize=7.5, color=colour
            )
        ax.set_yticks(range(len(numbers)))
        ax.set_yticklabels(labels, fontsize=8)
        ax.set_ylim(len(numbers) - 0.5, -0.5)  # first indicator at the top
        ax.axvline(0.0, color="#222222", lw=0.8, zorder=1)
        _set_relative_axis(ax, *xlim, label=g == len(groups) - 1)
        ax.tick_params(axis="y", length=0, pad=7)
        ax.tick_params(axis="x", labelsize=7.5, length=0 if g < len(groups) - 1 else 3)
        ax.grid(axis="x", color="#E5E5E5", lw=0.6)
        ax.set_axisbelow(True)
        for side in ("top", "right", "left") if g == len(groups) - 1 else ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.set_title(dimension, loc="left", fontsize=9.5, x=-left_in / plot_w + 0.02, y=1.0, pad=4)

    month = month or str(timeline.IMPLEMENTATION_END)
    axes[-1].set_xlabel(_axis_label("effect_end_relative", unit="", scale="", month=month, lang=lang), fontsize=8.5)
    fig.text(
        0.02,
        1 - 0.12 / height,
        figure_text("overview_title", lang, month=month_label(month, lang)),
        ha="left",
        va="top",
        fontsize=12.5,
    )
    handles = [
        Line2D(
            [], [], ls="none", marker=VERDICT_MARKERS[v], color=VERDICT_COLOURS[v], ms=5, label=verdict_label(v, lang)
        )
        for v in VERDICTS
    ]
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.02, 1 - 0.5 / height),
        ncol=3,
        frameon=False,
        fontsize=8.5,
        handletextpad=0.3,
        columnspacing=1.4,
        borderaxespad=0,
    )
    fig.text(
        0.02, 1 - 0.82 / height, figure_text("overview_note", lang), ha="left", va="top", fontsize=8.5, color="#444444"
    )
    return fig
