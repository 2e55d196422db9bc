import numpy as np
import pandas as pd
import pytest

from analysis.data.contract import validate_panel
from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import EFFECT_COLUMNS, fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.synthesis.national import national_effects, pooling_inputs


def canonical(panel: pd.DataFrame) -> pd.DataFrame:
    """The generator's panel checked and canonicalised as a file would be."""
    return validate_panel(panel, source="synthetic panel")


@pytest.fixture(scope="module")
def small():
    data = generate(7, provinces=["340000", "540000"], indicators=[9, 26, 32])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    return data, canonical(data.panel), starts


def test_every_series_gives_the_documented_measures(small):
    _, panel, starts = small
    res = fit_panel(panel, starts=starts)
    assert list(res.effects.columns) == EFFECT_COLUMNS
    measures = res.effects.groupby(["province", "indicator"])["measure"].apply(set)
    assert measures[("340000", 9)] == {"level_change", "slope_change", "effect_end_absolute", "effect_end_relative"}
    assert measures[("340000", 32)] == measures[("340000", 9)] | {"effect_cumulative"}
    assert len(res.predictions) == 6 * 84 and res.failures.empty
    units = res.effects.set_index(["province", "indicator", "measure"])["unit"]
    assert units[("340000", 32, "effect_end_absolute")] == "‰"
    assert units[("340000", 26, "level_change")] == "log"


def test_a_failing_series_is_reported_and_the_others_go_on(small):
    _, panel, starts = small
    # Tibet's perioperative mortality stops before the plan: not an ITS.
    broken = panel[
        ~((panel["province"] == "540000") & (panel["indicator"] == 32) & (panel["month"] > pd.Period("2023-07", "M")))
    ]
    res = fit_panel(broken, starts=starts, workers=2)
    assert res.failures[["province", "indicator", "error"]].values.tolist() == [["540000", 32, "DesignError"]]
    assert "post-interruption" in res.failures["message"].iat[0]
    assert res.diagnostics.shape[0] == 5


def test_workers_give_identical_results(small):
    _, panel, starts = small
    one = fit_panel(panel, starts=starts, workers=1).effects
    two = fit_panel(panel, starts=starts, workers=2).effects
    pd.testing.assert_frame_equal(one, two)


def test_relative_effects_are_pooled_on_the_log_scale(small):
    _, panel, starts = small
    effects = fit_panel(panel, starts=starts).effects
    inputs = pooling_inputs(effects)
    rel = inputs[inputs["measure"] == "effect_end_relative"]
    np.testing.assert_allclose(rel["pool_estimate"], np.log1p(rel["estimate"]))
    national = national_effects(effects, hksj=False)
    row = national[(national["indicator"] == 32) & (national["measure"] == "effect_end_relative")].iloc[0]
    w = 1 / (rel[rel["indicator"] == 32]["pool_se"] ** 2 + row["tau2"])
    pooled = np.sum(w * rel[rel["indicator"] == 32]["pool_estimate"]) / np.sum(w)
    assert row["estimate"] == pytest.approx(np.expm1(pooled), rel=1e-9)
    assert row["k"] == 2


def test_settings_reach_the_design():
    design = EvaluationSettings(washin=0, seasonality="fourier:2").design(pd.Period("2023-08", "M"))
    assert design.washin == 0 and design.seasonality == "fourier:2"
    assert str(design.interruption) == "2023-08"


def test_df_column_is_the_one_each_interval_uses(small):
    """Pooling recovers standard errors from the intervals, so each row's df must be the
    degrees of freedom its own interval used (Satterthwaite df differ by contrast)."""
    from scipy import stats

    _, panel, starts = small
    effects = fit_panel(panel, starts=starts).effects
    linear = effects[effects["measure"] != "effect_end_relative"]
    crit = stats.t.ppf(0.975, linear["df"])
    np.testing.assert_allclose((linear["ci_high"] - linear["ci_low"]) / 2, crit * linear["se"], rtol=1e-8)
    assert linear["df"].nunique() > 1


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("cov_type", "latent_ar1", "cov_type must be one of"),
        ("pooling_method", "REML", "pooling_method must be one of"),
        ("pooling_absolute_counts", "equal-weights", "pooling_absolute_counts must be one of"),
        ("washin", -1, "washin must be"),
        ("level", 95, "level must be between 0 and 1"),
        ("seasonality", "fourier:9", "seasonality"),
        ("evaluation_month", "2025-13", "evaluation_month must be months"),
        ("primary_indicators", (11, 99), "primary_indicators"),
    ],
)
def test_settings_refuse_unknown_choices_naming_the_valid_ones(field, value, message):
    with pytest.raises(ValueError, match=message):
        EvaluationSettings(**{field: value})


def test_the_pooling_methods_the_settings_accept_are_the_pooling_core_s():
    from typing import get_args

    from analysis.evaluation.settings import POOLING_METHODS
    from analysis.synthesis.pooling import Method

    assert set(POOLING_METHODS) == set(get_args(Method))
