"""The table verdicts agree with the report's rule (analysis.report.tables.classify), row by row."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from analysis.registry import quantitative_indicators
from analysis.report.tables import classify
from analysis.synthesis.direction import VERDICTS, classify_effects, improvement_sign


def test_agrees_with_the_report_rule_on_every_kind_of_interval():
    limits = [-0.2, -0.05, 0.0, 0.05, 0.2, np.nan]
    indicators = [i.number for i in quantitative_indicators()]
    rows = [
        {"indicator": ind, "estimate": 0.0, "ci_low": lo, "ci_high": hi}
        for ind in indicators
        for lo, hi in itertools.product(limits, limits)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo > hi)
    ]
    table = pd.DataFrame(rows)
    out = classify_effects(table)
    expected = [classify(r.estimate, r.ci_low, r.ci_high, d) for r, d in zip(table.itertuples(), out["direction"])]
    assert out["verdict"].tolist() == expected
    assert set(out["verdict"]) == set(VERDICTS)


def test_directions_come_from_the_registry():
    out = classify_effects(
        pd.DataFrame({"indicator": [32, 11, 9], "ci_low": [-0.3, -0.3, -0.3], "ci_high": [-0.1, -0.1, -0.1]})
    )
    assert out["direction"].tolist() == ["down", "up", "down"]
    assert out["verdict"].tolist() == ["improvement", "deterioration", "improvement"]
    assert improvement_sign(pd.Series([32, 11])).tolist() == [-1, 1]


def test_random_tables_match_elementwise():
    rng = np.random.default_rng(4)
    n = 2000
    centre = rng.normal(0, 1, n)
    half = rng.exponential(1, n)
    table = pd.DataFrame(
        {
            "indicator": rng.choice([9, 11, 29, 34, 37], n),
            "estimate": centre,
            "ci_low": centre - half,
            "ci_high": centre + half,
        }
    )
    out = classify_effects(table)
    expected = [
        classify(e, lo, hi, d)
        for e, lo, hi, d in zip(table["estimate"], table["ci_low"], table["ci_high"], out["direction"])
    ]
    assert out["verdict"].tolist() == expected


def test_direction_column_override_and_errors():
    table = pd.DataFrame({"outcome": ["x", "y"], "dir": ["down", "up"], "ci_low": [0.1, 0.1], "ci_high": [0.2, 0.2]})
    assert classify_effects(table, direction="dir")["verdict"].tolist() == ["deterioration", "improvement"]
    with pytest.raises(ValueError, match="status"):
        classify_effects(pd.DataFrame({"indicator": [1], "ci_low": [0.1], "ci_high": [0.2]}))
    with pytest.raises(ValueError, match="'up' or 'down'"):
        classify_effects(table.assign(dir=["sideways", "up"]), direction="dir")
    with pytest.raises(ValueError, match="ci_low"):
        classify_effects(pd.DataFrame({"indicator": [11], "ci_high": [0.2]}))
    empty = classify_effects(pd.DataFrame({"indicator": [], "ci_low": [], "ci_high": []}))
    assert list(empty.columns) == ["indicator", "ci_low", "ci_high", "direction", "verdict"] and empty.empty
