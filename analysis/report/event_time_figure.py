"""Figure of the national event-time curve: the plan's effect by months since each province's start.

The curve comes from :func:`analysis.synthesis.event_time.pooled_event_time`; the figure
follows the conventions of :mod:`analysis.report.figures` (object-oriented matplotlib, the
Okabe-Ito palette, the wash-in in light blue, relative effects on a log-ratio axis labelled
in percent, the CJK font registered and every glyph checked when the figure is rendered).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from analysis.registry import get_indicator
from analysis.report.figures import (
    DPI,
    FITTED_COLOUR,
    WASHIN_COLOUR,
    check_lang,
    figure_text,
    format_percent_tick,
    indicator_title,
    relative_limits,
    relative_ticks,
    wrap_label,
)
from analysis.report.fonts import use_cjk_font
from analysis.report.tables import unit_label

__all__ = ["event_time_figure"]

_PROVINCE = "#B8B8B8"
#: Event times a stretch must span for its number of provinces to be written out in words.
_LABEL_MONTHS = 4
_TEXT = {
    "national": {"zh": "全国合并估计及95% CI", "en": "National estimate, 95% CI"},
    "provinces": {"zh": "各省估计", "en": "Provincial estimates"},
    "x_label": {"zh": "本省计划起始后月数", "en": "Months since the provincial plan start"},
    "effect_relative": {"zh": "相对效应", "en": "Relative effect"},
    "effect_absolute": {"zh": "绝对效应", "en": "Absolute effect"},
    "subtitle": {
        "zh": "{measure}随本省计划起始后月数的变化（随机效应合并，95% CI）",
        "en": "{measure} by months since each province's own start (random-effects pooling, 95% CI)",
    },
    "n_provinces": {"zh": "{n}个省份", "en": "{n} provinces"},
    "note": {
        "zh": "第0月为各省计划起始月；图中标注每段所合并的省份数。过渡期内为模型外推，不反映效应形成的快慢。",
        "en": "Month 0 is each province's own start month; labels give the number of provinces pooled. "
        "Inside the wash-in the curve is model-based and says nothing about how fast effects appeared.",
    },
}


def _text(key: str, lang: str, **fields: object) -> str:
    return _TEXT[key][lang].format(**fields)


def _runs(values: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges ``(first, last)`` of consecutive equal values."""
    runs: list[tuple[int, int]] = []
    for i, value in enumerate(values):
        if runs and values[runs[-1][1]] == value:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def event_time_figure(
    pooled: pd.DataFrame,
    *,
    indicator: int,
    measure: str = "effect_relative",
    provinces: pd.DataFrame | None = None,
    lang: str = "zh",
    dpi: float = DPI,
) -> Figure:
    """The national effect of one indicator by event time, with its 95% confidence band.

    Event time 0 is each province's own start month. The figure shows the pooled estimate
    (line and points) with its confidence band, the zero line, the wash-in (light blue),
    the number of provinces pooled over each stretch of event times (printed at the top),
    and, when ``provinces`` is given, each province's own curve in light grey. Relative
    effects are drawn on a log-ratio axis labelled in percent.

    Parameters
    ----------
    pooled : pandas.DataFrame
        The national curve (:func:`analysis.synthesis.event_time.pooled_event_time`).
    indicator : int
        Annex number.
    measure : {"effect_relative", "effect_absolute"}
        Which effect to draw.
    provinces : pandas.DataFrame, optional
        The per-province table (:func:`analysis.synthesis.event_time.event_time_effects`);
        its curves are drawn over the event times of the national curve.
    lang : {"zh", "en"}
        Language of all text.
    dpi : float
        Resolution of the figure.

    Returns
    -------
    Figure
        A single axes.

    Examples
    --------
    >>> curve = pd.DataFrame({"indicator": 11, "measure": "effect_relative", "event_time": range(6),
    ...                       "phase": ["washin"] * 3 + ["post"] * 3, "k_provinces": 5,
    ...                       "estimate": 0.05, "ci_low": 0.01, "ci_high": 0.09})
    >>> fig = event_time_figure(curve, indicator=11, lang="en")
    >>> fig.axes[0].get_xlabel()
    'Months since the provincial plan start'
    """
    check_lang(lang)
    if measure not in ("effect_relative", "effect_absolute"):
        raise ValueError(f"measure must be 'effect_relative' or 'effect_absolute', not {measure!r}")
    use_cjk_font()
    ind = get_indicator(int(indicator))
    curve = pooled[(pooled["indicator"].astype(int) == ind.number) & (pooled["measure"] == measure)]
    if curve.empty:
        raise ValueError(f"no {measure!r} event-time curve for indicator {ind.number}")
    curve = curve.sort_values("event_time")
    relative = measure == "effect_relative"
    # Log ratios for relative effects: a halving and a doubling are equally far from zero.
    transform = (lambda v: np.log1p(np.asarray(v, float))) if relative else (lambda v: np.asarray(v, float))
    k = curve["event_time"].to_numpy(int)
    est, lo, hi = (transform(curve[c]) for c in ("estimate", "ci_low", "ci_high"))

    width, height = 7.6, 4.6
    fig = Figure(figsize=(width, height), dpi=dpi)
    ax = fig.add_axes((0.9 / width, 0.95 / height, 1 - 1.15 / width, 1 - 2.05 / height))

    washin = k[(curve["phase"] == "washin").to_numpy()]
    if washin.size:
        ax.axvspan(washin.min() - 0.5, washin.max() + 0.5, color=WASHIN_COLOUR, alpha=0.18, lw=0, zorder=0)
    ax.axhline(0.0, color="#222222", lw=0.8, zorder=1)

    lines = []
    if provinces is not None:
        own = provinces[
            (provinces["indicator"].astype(int) == ind.number)
            & (provinces["measure"] == measure)
            & provinces["event_time"].between(k.min(), k.max())
        ]
        for _, series in own.sort_values("event_time").groupby("province", sort=True):
            with np.errstate(invalid="ignore", divide="ignore"):
                y = transform(series["estimate"])
            ax.plot(series["event_time"].to_numpy(int), y, color=_PROVINCE, lw=0.7, alpha=0.8, zorder=1)
            lines.append(y)

    ax.fill_between(k, lo, hi, color=FITTED_COLOUR, alpha=0.22, lw=0, zorder=2)
    ax.plot(k, est, color=FITTED_COLOUR, lw=1.6, marker="o", ms=3, zorder=3)

    ax.set_xlim(k.min() - 0.6, k.max() + 0.6)
    if relative:
        ylim = relative_limits(np.concatenate([lo, *lines]), np.concatenate([hi, *lines]))
        ax.set_ylim(*ylim)
        ticks = relative_ticks(*ylim)
        ax.set_yticks([math.log1p(t / 100) for t in ticks])
        ax.set_yticklabels([format_percent_tick(t) for t in ticks])
        detail = figure_text("log_ratio", lang)
    else:
        values = np.concatenate([lo, hi, [0.0], *lines]) if lines else np.concatenate([lo, hi, [0.0]])
        values = values[np.isfinite(values)]
        pad = 0.08 * (values.max() - values.min() or 1.0)
        ax.set_ylim(values.min() - pad, values.max() + pad)
        detail = unit_label(ind.unit, lang)
    name = _text(measure, lang)
    ax.set_ylabel(f"{name}（{detail}）" if lang == "zh" else f"{name} ({detail})", fontsize=9)
    ax.set_xlabel(_text("x_label", lang), fontsize=9)
    ax.tick_params(labelsize=8)
    ax.grid(axis="y", color="#E5E5E5", lw=0.6)
    ax.set_axisbelow(True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)

    # The number of provinces behind each stretch of the curve: a change in k changes who
    # is averaged, which the reader must not take for a change of the effect.
    counts = curve["k_provinces"].to_numpy(int)
    for first, last in _runs(counts):
        if first:
            ax.axvline(k[first] - 0.5, color="#999999", lw=0.6, ls=(0, (2, 2)), zorder=1)
        # A stretch too short for the words gets the bare number (the first label explains it).
        wide = first == 0 or k[last] - k[first] >= _LABEL_MONTHS
        label = _text("n_provinces", lang, n=counts[first]) if wide else str(counts[first])
        ax.text(
            (k[first] + k[last]) / 2,
            0.985,
            label,
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="top",
            fontsize=7.5,
            color="#444444",
            zorder=4,
            bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.85},
        )

    title = wrap_label(indicator_title(ind.number, lang), lang, width_zh=34, width_en=70)
    direction = figure_text("higher" if ind.direction == "up" else "lower", lang)
    fig.text(
        0.9 / width,
        1 - 0.12 / height,
        f"{title}（{direction}）" if lang == "zh" else f"{title} ({direction})",
        ha="left",
        va="top",
        fontsize=11.5,
    )
    fig.text(
        0.9 / width,
        1 - 0.45 / height,
        _text("subtitle", lang, measure=name),
        ha="left",
        va="top",
        fontsize=9,
        color="#333333",
    )
    handles = [
        (Patch(color=FITTED_COLOUR, alpha=0.3, lw=0), Line2D([], [], color=FITTED_COLOUR, lw=1.6, marker="o", ms=3))
    ]
    labels = [_text("national", lang)]
    if lines:
        handles.append(Line2D([], [], color=_PROVINCE, lw=1.0))
        labels.append(_text("provinces", lang))
    if washin.size:
        handles.append(Patch(color=WASHIN_COLOUR, alpha=0.3, lw=0))
        labels.append(figure_text("washin", lang))
    fig.legend(
        handles,
        labels,
        loc="upper left",
        bbox_to_anchor=(0.9 / width, 1 - 0.72 / height),
        ncol=len(handles),
        frameon=False,
        fontsize=8.5,
        borderaxespad=0,
        handlelength=2.0,
        columnspacing=1.6,
    )
    note = wrap_label(_text("note", lang), lang, width_zh=58, width_en=120)
    fig.text(0.9 / width, 0.1 / height, note, ha="left", va="bottom", fontsize=7.5, color="#555555")
    return fig
