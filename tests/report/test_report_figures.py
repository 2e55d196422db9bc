"""Figures: structure for the small fitted run, verdict colours, layout and speed of 31 panels."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from analysis.registry import get_indicator
from analysis.report.figures import (
    VERDICT_COLOURS,
    figure_png,
    indicator_forest,
    national_overview,
    province_panels,
)
from analysis.report.tables import load_run

INDICATORS = [9, 11, 32]


@pytest.fixture(scope="module")
def run(run_dir):
    return load_run(run_dir)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_province_panels_one_axes_per_indicator(run, lang):
    fig = province_panels(run.predictions, run.effects, run.diagnostics, province="340000", lang=lang)
    assert isinstance(fig, Figure)
    assert len(fig.axes) == len(INDICATORS)
    for ax, number in zip(fig.axes, INDICATORS):
        # observed points, fitted line, counterfactual line, plan-start line
        assert len(ax.lines) == 4
        assert ax.get_title(loc="left").startswith(f"{number} ")
        assert get_indicator(number).name(lang)[:4] in ax.get_title(loc="left").replace("\n", "")
        assert ax.collections  # the counterfactual band
        assert any("%" in t.get_text() for t in ax.texts)  # the relative-effect label
    assert fig.axes[2].get_ylabel() == "‰"
    assert figure_png(fig)[:4] == b"\x89PNG"  # renders with every glyph present


def test_province_panels_unknown_province_names_the_available_ones(run):
    with pytest.raises(ValueError, match="340000"):
        province_panels(run.predictions, run.effects, run.diagnostics, province="110000")


def test_province_panels_full_province_is_fast(full_province):
    tables = full_province
    start = time.perf_counter()
    fig = province_panels(tables["predictions"], tables["effects"], tables["diagnostics"], province="340000")
    png = figure_png(fig)
    elapsed = time.perf_counter() - start
    assert len(fig.axes) == 31
    assert png[:4] == b"\x89PNG"
    # The run draws 32 of these; about 1.3 s on one core, generous margin for slow CI.
    assert elapsed < 6


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_indicator_forest_rows_and_diamond(run, lang):
    fig = indicator_forest(run.effects, run.national, indicator=11, lang=lang)
    assert len(fig.axes) == 1
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 2 + 1  # two provinces and the national estimate
    assert sum(isinstance(p, Polygon) for p in ax.patches) == 1  # the pooled diamond
    assert "%" in ax.get_xlabel()
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_indicator_forest_orders_provinces_by_estimate(run):
    rows = run.effects[(run.effects["indicator"] == 32) & (run.effects["measure"] == "effect_end_relative")]
    fig = indicator_forest(run.effects, run.national, indicator=32, lang="en")
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()][:-1]
    expected = rows.sort_values("estimate")["province"].map({"340000": "Anhui", "540000": "Tibet"}).tolist()
    assert labels == expected  # y increases with the estimate: largest at the top


def test_indicator_forest_absolute_measure_labels_the_unit(run):
    fig = indicator_forest(run.effects, run.national, indicator=9, measure="effect_end_absolute", lang="zh")
    assert "分钟" in fig.axes[0].get_xlabel()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_national_overview_groups_by_dimension(run, lang):
    fig = national_overview(run.national, lang=lang)
    # 9 and 11 are emergency and day care, 32 is outcome quality
    assert len(fig.axes) == 2
    assert [len(ax.get_yticklabels()) for ax in fig.axes] == [2, 1]
    assert figure_png(fig)[:4] == b"\x89PNG"


def test_national_overview_colours_follow_the_direction():
    # Same interval, opposite directions: up (11) improves, down (32) deteriorates.
    national = pd.DataFrame(
        {
            "indicator": [11, 32, 9],
            "measure": "effect_end_relative",
            "estimate": [0.1, 0.1, 0.0],
            "ci_low": [0.05, 0.05, -0.1],
            "ci_high": [0.15, 0.15, 0.1],
            "k": 32,
        }
    )
    fig = national_overview(national, lang="en")
    colours = {}
    for ax in fig.axes:
        for label, y in zip(ax.get_yticklabels(), ax.get_yticks()):
            markers = [
                line
                for line in ax.lines
                if line.get_marker() not in ("None", "<", ">") and np.allclose(line.get_ydata(), [y])
            ]
            colours[int(label.get_text().split()[0])] = markers[0].get_color()
    assert colours == {
        11: VERDICT_COLOURS["improvement"],
        32: VERDICT_COLOURS["deterioration"],
        9: VERDICT_COLOURS["inconclusive"],
    }
