"""Sensitivity analysis: each variant changes what it says and nothing else; leave-one-out
pooling equals pooling the remaining provinces directly; the robustness verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.evaluation.model import fit_default_model
from analysis.evaluation.settings import EvaluationSettings
from analysis.synthesis.national import national_effects, pooling_inputs
from analysis.synthesis.pooling import pool
from analysis.synthesis.sensitivity import (
    DEFAULT_VARIANTS,
    VARIANTS,
    ShockExclusionSettings,
    leave_one_out,
    sensitivity_analysis,
    sensitivity_summary,
    variant_inputs,
)

PROVINCES = ["110000", "340000", "440000", "540000"]


@pytest.fixture(scope="module")
def small():
    data = generate(17, provinces=PROVINCES, indicators=[12, 32])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    return data, starts


@pytest.fixture(scope="module")
def result(small):
    data, starts = small
    return sensitivity_analysis(data.panel, starts=starts, variants=list(VARIANTS), workers=2)


def test_every_variant_is_pooled_for_every_indicator(result):
    table = result.variants
    assert table.groupby("indicator")["variant"].apply(list).tolist() == [list(VARIANTS)] * 2
    assert (table["k"] == 4).all() and result.failures.empty
    assert set(table["verdict"]) <= {"improvement", "deterioration", "inconclusive"}
    assert "default" in DEFAULT_VARIANTS and "shocks_ignored" in DEFAULT_VARIANTS


def test_default_variant_is_the_pipelines_national_estimate(small, result):
    data, starts = small
    effects = fit_panel(data.panel, starts=starts).effects
    national = national_effects(effects)
    national = national[national["measure"] == "effect_end_relative"].set_index("indicator")
    default = result.variants[result.variants["variant"] == "default"].set_index("indicator")
    for col in ("estimate", "ci_low", "ci_high", "p_value"):
        np.testing.assert_allclose(default[col], national[col], rtol=1e-10)
    reused = sensitivity_analysis(data.panel, starts=starts, variants=["default"], baseline_effects=effects)
    pd.testing.assert_frame_equal(
        reused.variants.drop(columns="fit_seconds"),
        result.variants[result.variants["variant"] == "default"].reset_index(drop=True).drop(columns="fit_seconds"),
    )
    assert (reused.variants["fit_seconds"] == 0).all()


def _by_variant(result, column):
    return result.variants.pivot(index="indicator", columns="variant", values=column)


def test_newey_west_changes_the_intervals_not_the_provincial_point_estimates(small):
    data, starts = small
    series = data.panel[(data.panel["province"] == "340000") & (data.panel["indicator"] == 12)]
    default = fit_default_model(series, start=starts["340000"])
    settings, _ = variant_inputs("newey_west", EvaluationSettings(), starts)
    nw = fit_default_model(series, start=starts["340000"], settings=settings)
    pd.testing.assert_series_equal(default.params, nw.params)
    assert nw.cov_type == "newey-west"
    assert not np.allclose(default.std_errors, nw.std_errors)


def test_washin_and_start_variants_change_the_fit(small, result):
    data, starts = small
    estimates = _by_variant(result, "estimate")
    for variant in ("washin_0", "washin_6", "national_start", "shocks_ignored"):
        assert not np.allclose(estimates[variant], estimates["default"]), variant
    series = data.panel[(data.panel["province"] == "340000") & (data.panel["indicator"] == 32)]
    for name, washin in (("washin_0", 0), ("washin_6", 6)):
        settings, s = variant_inputs(name, EvaluationSettings(), starts)
        res = fit_default_model(series, start=s["340000"], settings=settings)
        assert settings.washin == washin and res.design.washin == washin
    _, national = variant_inputs("national_start", EvaluationSettings(), starts)
    assert set(national.values()) == {pd.Period("2023-06", "M")}


def test_shock_variants_drop_the_dummies_and_exclusion_equals_modelling(small, result):
    """One dummy per shock month and leaving the month out give the same coefficients and the
    same latent AR(1) covariance (see the module notes): the estimates coincide."""
    data, starts = small
    series = data.panel[(data.panel["province"] == "440000") & (data.panel["indicator"] == 12)]
    excluded_settings, _ = variant_inputs("shocks_excluded", EvaluationSettings(), starts)
    ignored_settings, _ = variant_inputs("shocks_ignored", EvaluationSettings(), starts)
    assert isinstance(excluded_settings, ShockExclusionSettings)
    months = pd.PeriodIndex(series["month"], freq="M")
    excluded = fit_default_model(series, start=starts["440000"], settings=excluded_settings)
    ignored = fit_default_model(series, start=starts["440000"], settings=ignored_settings)
    default = fit_default_model(series, start=starts["440000"])
    shocks = [c for c in default.params.index if c.startswith("shock_")]
    assert len(shocks) == 5 and not any(c.startswith("shock_") for c in excluded.params.index)
    assert not any(c.startswith("shock_") for c in ignored.params.index)
    assert excluded.fit_mask.sum() == default.fit_mask.sum() - 5 == ignored.fit_mask.sum() - 5
    assert not excluded.fit_mask[np.isin(months.astype(str), ["2020-02", "2022-12"])].any()
    common = default.params.drop(shocks).index
    np.testing.assert_allclose(excluded.params[common], default.params[common], rtol=1e-7)
    np.testing.assert_allclose(excluded.cov.loc[common, common], default.cov.loc[common, common], rtol=1e-5)
    estimates = _by_variant(result, "estimate")
    np.testing.assert_allclose(estimates["shocks_excluded"], estimates["default"], rtol=1e-6)


def test_leave_one_out_equals_pooling_the_other_provinces(small):
    data, starts = small
    effects = fit_panel(data.panel, starts=starts).effects
    loo = leave_one_out(effects, measure="effect_end_relative")
    assert len(loo) == 2 * 4 and (loo["k"] == 3).all()
    inputs = pooling_inputs(effects[effects["measure"] == "effect_end_relative"])
    for row in loo.itertuples():
        rest = inputs[(inputs["indicator"] == row.indicator) & (inputs["province"] != row.left_out)]
        direct = pool(rest["pool_estimate"], rest["pool_se"], method="reml", hksj=True, hksj_floor=True)
        assert row.estimate == pytest.approx(np.expm1(direct.estimate), rel=1e-10)
        assert row.ci_low == pytest.approx(np.expm1(direct.ci_low), rel=1e-10)
        assert row.p_value == pytest.approx(direct.p_value, rel=1e-10)


def test_summary_says_whether_the_conclusion_holds():
    variants = pd.DataFrame(
        {
            "indicator": [11, 11, 11, 32, 32],
            "measure": "effect_end_relative",
            "variant": ["default", "washin_0", "newey_west", "default", "washin_0"],
            "estimate": [0.05, 0.04, 0.05, -0.1, -0.12],
            "ci_low": [0.01, 0.01, -0.01, -0.15, -0.2],
            "ci_high": [0.09, 0.07, 0.11, -0.05, -0.04],
            "p_value": [0.01, 0.02, 0.1, 0.001, 0.004],
            "direction": ["up", "up", "up", "down", "down"],
            "verdict": ["improvement", "improvement", "inconclusive", "improvement", "improvement"],
        }
    )
    loo = pd.DataFrame(
        {
            "indicator": [11, 11, 32, 32],
            "measure": "effect_end_relative",
            "left_out": ["110000", "340000", "110000", "340000"],
            "estimate": [0.05, 0.06, -0.11, -0.02],
            "verdict": ["improvement", "improvement", "improvement", "inconclusive"],
        }
    )
    out = sensitivity_summary(variants, loo).set_index("indicator")
    assert out.loc[11, "variants_disagreeing"] == "newey_west" and out.loc[11, "loo_disagreeing"] == ""
    assert out.loc[32, "variants_disagreeing"] == "" and out.loc[32, "loo_disagreeing"] == "340000"
    assert not out["conclusion_robust"].any()
    assert (out.loc[11, "variant_min"], out.loc[11, "variant_max"]) == (0.04, 0.05)
    assert (out.loc[32, "loo_min"], out.loc[32, "loo_max"]) == (-0.11, -0.02)
    agreeing = sensitivity_summary(variants[variants["variant"] != "newey_west"], loo[loo["indicator"] == 11])
    assert agreeing.set_index("indicator").loc[11, "conclusion_robust"]
    with pytest.raises(ValueError, match="default"):
        sensitivity_summary(variants[variants["variant"] != "default"], loo)


def test_summary_of_the_real_run_is_consistent(result):
    summary = result.summary.set_index("indicator")
    for indicator, group in result.variants.groupby("indicator"):
        default = group[group["variant"] == "default"].iloc[0]
        assert summary.loc[indicator, "verdict"] == default["verdict"]
        differing = group.loc[group["verdict"] != default["verdict"], "variant"].tolist()
        assert summary.loc[indicator, "variants_disagreeing"] == ", ".join(differing)
    with pytest.raises(ValueError, match="unknown variant"):
        variant_inputs("washin_9", EvaluationSettings(), {})
