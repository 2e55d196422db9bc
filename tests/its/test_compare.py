import numpy as np
import pytest

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.compare import compare_methods, conclusion_depends_on_method, side_by_side


@pytest.fixture
def model():
    t = np.arange(1, 61)
    rng = np.random.default_rng(2)
    return SegmentedRegression(
        10 + 0.1 * t - 2 * (t >= 31) + rng.normal(0, 1, 60), time=t, design=ITSDesign(interruption=31)
    )


def test_each_method_equals_its_own_fit(model):
    table = compare_methods(model, at=60)
    assert table["error"].isna().all()
    nw = model.fit(cov_type="newey-west").coefficient("level_change")
    row = table[(table["method"] == "newey-west") & (table["quantity"] == "level_change")].iloc[0]
    assert row["ci_low"] == pytest.approx(nw.ci_low) and row["p_value"] == pytest.approx(nw.p_value)
    ols_est = table[(table["method"] == "ols") & (table["quantity"] == "level_change")]["estimate"].iat[0]
    nw_est = row["estimate"]
    assert ols_est == pytest.approx(nw_est)  # same point estimate, different intervals
    assert set(table["quantity"]) == {"level_change", "slope_change", "effect_absolute", "effect_relative"}


def test_failures_are_reported_and_side_by_side_pivots(model):
    table = compare_methods(model, methods=[("ols", {"cov_type": "model"}), ("broken", {"cov_type": "nope"})])
    assert table.loc[table["method"] == "broken", "error"].iat[0].startswith("ValueError")
    wide = side_by_side(table)
    assert list(wide.columns) == ["ols"] and set(wide.index) == {"level_change", "slope_change"}
    assert not conclusion_depends_on_method(table).any()


def test_count_family_uses_count_methods():
    t = np.arange(1, 49)
    rng = np.random.default_rng(3)
    n = rng.integers(900, 1100, 48)
    y = rng.binomial(n, 0.2)
    table = compare_methods(
        SegmentedRegression(y, time=t, design=ITSDesign(interruption=25), family="binomial", trials=n)
    )
    assert set(table["method"]) == {"independent", "quasi", "newey-west", "lagged-residual", "latent-ar1"}
