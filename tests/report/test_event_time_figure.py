"""The event-time figure: what it draws, in both languages, and that every glyph renders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure

from analysis.registry import get_indicator
from analysis.report.event_time_figure import event_time_figure
from analysis.report.figures import figure_png

PROVINCES = ["110000", "340000", "440000", "540000"]
STARTS = {"110000": "2023-06", "340000": "2023-08", "440000": "2023-07", "540000": "2023-10"}
LAST = pd.Period("2024-12", "M")


def _provinces(measure: str) -> pd.DataFrame:
    """A hand-made per-province table: each province observed from its start to 2024-12."""
    rng = np.random.default_rng(0)
    rows = []
    for code, start in STARTS.items():
        for k in range(LAST.ordinal - pd.Period(start, "M").ordinal + 1):
            value = 0.04 + 0.002 * k + rng.normal(0, 0.01)
            rows.append(
                {
                    "province": code,
                    "indicator": 11,
                    "start_month": start,
                    "event_time": k,
                    "month": "",
                    "phase": "washin" if k < 3 else "post",
                    "measure": measure,
                    "estimate": value,
                    "se": 0.01,
                    "ci_low": value - 0.02,
                    "ci_high": value + 0.02,
                    "p_value": 0.01,
                    "df": 20.0,
                    "scale": "ratio - 1" if measure == "effect_relative" else "%",
                }
            )
    return pd.DataFrame(rows)


def _curve(provinces: pd.DataFrame, *, balanced: bool) -> pd.DataFrame:
    counts = provinces.groupby("event_time")["province"].nunique()
    curve = provinces.groupby(["indicator", "measure", "event_time"], as_index=False).agg(
        phase=("phase", "first"), estimate=("estimate", "mean")
    )
    curve["k_provinces"] = curve["event_time"].map(counts)
    curve["ci_low"], curve["ci_high"] = curve["estimate"] - 0.015, curve["estimate"] + 0.015
    return curve[curve["k_provinces"] == len(STARTS)] if balanced else curve


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_draws_band_line_zero_washin_and_province_curves(lang):
    provinces = _provinces("effect_relative")
    curve = _curve(provinces, balanced=True)
    fig = event_time_figure(curve, indicator=11, provinces=provinces, lang=lang)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    # the national line is drawn on the log-ratio scale at each event time
    national = ax.lines[-1]
    np.testing.assert_array_equal(national.get_xdata(), curve["event_time"])
    np.testing.assert_allclose(national.get_ydata(), np.log1p(curve["estimate"]))
    # the zero line first, then one grey line per province, then the national line
    assert len(ax.lines) == 1 + len(STARTS) + 1
    assert list(ax.lines[0].get_ydata()) == [0, 0]
    assert sum(isinstance(c, PolyCollection) for c in ax.collections) == 1  # the confidence band
    (washin,) = ax.patches  # months 0-2, shaded from edge to edge of their markers
    assert (washin.get_x(), washin.get_x() + washin.get_width()) == (-0.5, 2.5)
    # balanced: one stretch, labelled with its number of provinces
    counts = [t.get_text() for t in ax.texts]
    assert counts == (["4个省份"] if lang == "zh" else ["4 provinces"])
    texts = " ".join(t.get_text() for t in fig.texts)
    assert get_indicator(11).name(lang)[:4] in texts.replace("\n", "")
    if lang == "zh":
        assert ax.get_xlabel() == "本省计划起始后月数" and "相对效应" in ax.get_ylabel()
        assert "过渡期" in [t.get_text() for t in fig.legends[0].get_texts()]
    else:
        assert ax.get_xlabel() == "Months since the provincial plan start"
        assert ax.get_ylabel().startswith("Relative effect")
        assert [t.get_text() for t in fig.legends[0].get_texts()] == [
            "National estimate, 95% CI",
            "Provincial estimates",
            "Wash-in",
        ]
    assert any(label.get_text().endswith("%") for label in ax.get_yticklabels())
    assert figure_png(fig)[:4] == b"\x89PNG"  # renders with every glyph present


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_unbalanced_curve_shows_where_the_number_of_provinces_changes(lang):
    provinces = _provinces("effect_absolute")
    curve = _curve(provinces, balanced=False)
    fig = event_time_figure(curve, indicator=11, measure="effect_absolute", lang=lang)
    ax = fig.axes[0]
    # the 2023-10 starter drops out after month 14, the 2023-06 starter is alone at month 18;
    # stretches too short for words get the bare number
    first = "4个省份" if lang == "zh" else "4 provinces"
    assert [t.get_text() for t in ax.texts] == [first, "3", "2", "1"]
    dashed = [line.get_xdata()[0] for line in ax.lines if len(set(line.get_xdata())) == 1]
    assert dashed == [14.5, 16.5, 17.5]
    assert "%" in ax.get_ylabel()
    assert ("绝对效应" if lang == "zh" else "Absolute effect") in ax.get_ylabel()
    assert len(fig.legends[0].get_texts()) == 2  # national and wash-in: no province curves given
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_bad_requests_are_refused():
    curve = _curve(_provinces("effect_relative"), balanced=True)
    with pytest.raises(ValueError, match="lang"):
        event_time_figure(curve, indicator=11, lang="fr")
    with pytest.raises(ValueError, match="no 'effect_relative' event-time curve for indicator 12"):
        event_time_figure(curve, indicator=12)
    with pytest.raises(ValueError, match="measure"):
        event_time_figure(curve, indicator=11, measure="level_change")
