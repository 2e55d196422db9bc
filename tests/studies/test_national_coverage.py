"""Acceptance checks of the national synthesis: the estimand, the summaries and a small study."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.data.synthetic import generate
from analysis.its.effects import linear, ratio_minus_one
from analysis.studies import national_coverage as nc

# ---------------------------------------------------------------------------------------
# The estimand
# ---------------------------------------------------------------------------------------


def test_closed_form_mean_agrees_with_draws_from_the_generator():
    """The closed form is derived from the generator's description; the draws come from the
    generator itself, so a change of its effect distribution makes them disagree."""
    ref = nc.reference_means(indicators=[11, 34], seeds=range(500, 530))
    closed = ref[ref["method"] == "closed form"]
    assert set(closed["measure"]) == {"level_change", "slope_change"} and len(closed) == 4
    # 960 draws per row: the Monte Carlo mean is within 4 of its standard errors unless the
    # formula is wrong (the chance of a false alarm over four rows is below 1e-3).
    z = (closed["mc_mean"] - closed["true_mean"]) / closed["mc_se"]
    assert (z.abs() < 4).all(), closed
    # the direction of improvement: 11 (reperfusion, up) positive, 34 (infection rate, down) negative
    signs = closed.set_index("indicator")["true_mean"]
    assert (signs.loc[11] > 0).all() and (signs.loc[34] < 0).all()


def test_monte_carlo_mean_is_the_average_true_effect_on_the_log_scale():
    seeds = range(700, 703)
    ref = nc.reference_means(indicators=[26], seeds=seeds).set_index("measure")
    truth = pd.concat([generate(s, indicators=[26]).truth for s in seeds])
    assert ref.loc["effect_end_relative", "n_draws"] == len(truth) == 96
    assert ref.loc["effect_end_relative", "true_mean"] == pytest.approx(np.log1p(truth["effect_end_relative"]).mean())
    assert ref.loc["effect_end_absolute", "true_mean"] == pytest.approx(truth["effect_end_absolute"].mean())
    assert ref.loc["effect_end_absolute", "mc_se"] == pytest.approx(
        truth["effect_end_absolute"].std() / np.sqrt(len(truth))
    )


def test_finite_population_mean_averages_provinces_on_the_pooling_scale():
    truth = pd.DataFrame(
        {
            "province": ["1", "2", "3", "1", "2", "3"],
            "indicator": [11, 11, 11, 14, 14, 14],
            "zero_effect": [False, False, True, False, False, False],
            "confounded": [False] * 3 + [True] * 3,
            "level_change": [0.3, 0.6, 0.0, 1.0, 2.0, 3.0],
            "slope_change": [0.01, 0.02, 0.0, 0.0, 0.0, 0.3],
            "effect_end_absolute": [2.0, 4.0, 0.0, 1.0, 1.0, 1.0],
            "effect_end_relative": [0.5, 1.0, 0.0, 0.1, 0.1, 0.1],
        }
    )
    out = nc.finite_population_means(truth).set_index(["indicator", "measure"])
    assert out.loc[(11, "level_change"), "truth_finite"] == pytest.approx(0.3)
    assert out.loc[(11, "effect_end_absolute"), "truth_finite"] == pytest.approx(2.0)
    assert out.loc[(11, "effect_end_relative"), "truth_finite"] == pytest.approx(np.log(1.5 * 2.0) / 3)
    assert not out.loc[(11, "level_change"), "confounded"] and out.loc[(14, "slope_change"), "confounded"]


def test_coverage_is_judged_on_the_pooling_scale():
    national = pd.DataFrame(
        {
            "indicator": [12, 12],
            "measure": ["effect_end_relative", "slope_change"],
            "k": 32,
            "estimate": [0.10, 0.004],
            "ci_low": [0.05, 0.001],
            "ci_high": [0.20, 0.007],
            "p_value": [0.001, 0.01],
        }
    )
    reference = pd.DataFrame(
        {"indicator": [12, 12], "measure": ["effect_end_relative", "slope_change"], "true_mean": [np.log(1.04), 0.0075]}
    )
    finite = pd.DataFrame(
        {
            "indicator": [12, 12],
            "measure": ["effect_end_relative", "slope_change"],
            "truth_finite": [np.log(1.06), 0.006],
            "confounded": False,
        }
    )
    out = nc.national_coverage_table(national, reference=reference, finite=finite).set_index("measure")
    rel = out.loc["effect_end_relative"]
    assert rel["estimate"] == pytest.approx(np.log(1.10)) and rel["ci_low"] == pytest.approx(np.log(1.05))
    assert not rel["covered"] and rel["covered_finite"]
    slope = out.loc["slope_change"]
    assert not slope["covered"] and slope["covered_finite"]
    assert slope["standardised_error"] == pytest.approx((0.004 - 0.0075) / 0.003)
    assert abs(slope["standardised_error"]) > 1


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------


def test_coverage_summary_clusters_the_monte_carlo_se_by_replicate():
    # three replicates of four rows: covered 4, 2 and 3 times. With equal cluster sizes the
    # ratio-estimator SE is the SD of the replicate means over sqrt(replicates).
    covered = [True] * 4 + [True, True, False, False] + [True, True, True, False]
    national = pd.DataFrame(
        {
            "replicate": np.repeat([0, 1, 2], 4),
            "measure": "level_change",
            "truth": 1.0,
            "covered": covered,
            "covered_finite": True,
            "standardised_error": 0.5,
            "significant": True,
        }
    )
    out = nc.coverage_summary(national).set_index("measure")
    means = np.array([1.0, 0.5, 0.75])
    assert out.loc["level_change", "coverage"] == pytest.approx(0.75)
    assert out.loc["level_change", "mc_se"] == pytest.approx(means.std(ddof=1) / np.sqrt(3))
    assert out.loc["all", "n"] == 12
    assert np.isnan(out.loc["level_change", "false_positive_rate"])  # no true zero


def test_coverage_by_indicator_bias_and_width():
    national = pd.DataFrame(
        {
            "indicator": 31,
            "measure": "level_change",
            "confounded": False,
            "truth": -0.04,
            "estimate": [-0.05, -0.02, -0.04],
            "ci_low": [-0.08, -0.05, -0.05],
            "ci_high": [-0.02, 0.01, -0.03],
            "covered": [True, True, True],
            "covered_finite": True,
            "significant": [True, False, True],
        }
    )
    row = nc.coverage_by_indicator(national).iloc[0]
    assert row["mean_bias"] == pytest.approx(0.01 / 3)
    assert row["relative_bias"] == pytest.approx(0.01 / 3 / 0.04)
    assert row["rmse"] == pytest.approx(np.sqrt((0.01**2 + 0.02**2) / 3))
    assert row["mean_ci_width"] == pytest.approx((0.06 + 0.06 + 0.02) / 3)
    assert row["significant"] == pytest.approx(2 / 3)


def test_false_discovery_proportion_by_hand():
    # m = 5; sorted p 0.001, 0.008, 0.02, 0.04, 0.3: BH at 0.05 compares with 0.01, 0.02, 0.03,
    # 0.04, 0.05, so the four smallest are discoveries. Of them one is a true null and one a
    # non-null with the wrong sign.
    tests = pd.DataFrame(
        {
            "replicate": 0,
            "measure": "level_change",
            "indicator": 11,
            "p_value": [0.02, 0.001, 0.3, 0.008, 0.04],
            "null": [False, True, False, False, False],
            "estimate": [0.1, 0.2, 0.1, -0.3, 0.2],
            "true_value": [0.1, 0.0, 0.1, 0.2, 0.1],
        }
    )
    row = nc.true_discoveries(tests, q=0.05).iloc[0]
    assert (row["m"], row["m0"], row["discoveries"], row["false_discoveries"], row["sign_errors"]) == (5, 1, 4, 1, 1)
    assert row["fdp"] == pytest.approx(0.25) and row["directional_fdp"] == pytest.approx(0.5)
    assert row["power"] == pytest.approx(3 / 4)
    # no discovery: FDP is 0 by definition
    quiet = tests.assign(p_value=0.9)
    assert nc.true_discoveries(quiet).iloc[0]["fdp"] == 0


def test_holm_families_with_a_true_null():
    tests = pd.DataFrame(
        {
            "replicate": 0,
            "province": np.repeat(["1", "2", "3"], 4),
            "measure": "slope_change",
            "indicator": [11, 12, 31, 32] * 3,
            # province 1: p 0.004 <= 0.05/4 rejected (a true null); 2: no null; 3: null at 0.02 > 0.05/3
            "p_value": [0.004, 0.3, 0.5, 0.6, 0.001, 0.002, 0.003, 0.004, 0.001, 0.02, 0.5, 0.9],
            "null": [True, False, False, False, False, False, False, False, False, True, True, False],
        }
    )
    out = nc.holm_fwer(tests, primary=(11, 12, 31, 32))
    assert out["province"].tolist() == ["1", "3"]
    assert out["any_false_rejection"].tolist() == [True, False]
    summary = nc.multiplicity_summary(nc.true_discoveries(tests.assign(measure="slope_change")), out)
    assert summary["holm_fwer"].iat[0] == pytest.approx(0.5)


@pytest.mark.parametrize("df", [7.0, 38.5, np.inf])
def test_placebo_degrees_of_freedom_are_recovered_from_the_interval(df):
    cov = np.array([[0.04**2]])
    contrasts = [
        linear("level_change", 0.05, np.ones(1), cov, df=df, level=0.95, scale="logit"),
        ratio_minus_one("effect_end_relative", -0.08, np.ones(1), cov, df=df, level=0.95),
    ]
    placebo = pd.DataFrame([c.as_dict() for c in contrasts])
    recovered = nc._recover_df(placebo, level=0.95)
    if np.isfinite(df):
        assert recovered == pytest.approx([df, df], rel=1e-6)
    else:
        assert np.isinf(recovered).all()


def test_reference_seeds_must_not_reuse_replicates():
    with pytest.raises(ValueError, match="overlap"):
        nc.simulation_study(seeds=[3, 4], reference_seeds=[4, 5])
    with pytest.raises(ValueError, match="subset"):
        nc.simulation_study(seeds=[3], placebo_seeds=[4])


# ---------------------------------------------------------------------------------------
# A small study
# ---------------------------------------------------------------------------------------


@pytest.mark.slow
def test_small_study_covers_the_truth_and_controls_error_rates(tmp_path):
    """Eight replicates of 32 provinces x 4 indicators (a mean, a proportion, a rate, a rare
    proportion; 11 and 32 are primary), placebo tests at 12 months."""
    reps = 8
    indicators = [9, 11, 26, 32]
    tables = nc.simulation_study(
        seeds=range(101, 101 + reps),
        indicators=indicators,
        offsets=(12,),
        reference_seeds=range(nc.REFERENCE_SEED0, nc.REFERENCE_SEED0 + 30),
    )
    assert tables.failures.empty, tables.failures
    national = tables.national
    # four pooled measures per indicator, and the national total of the cumulative effects of
    # the three proportions and rates
    assert len(national) == reps * (len(indicators) * 4 + 3) and not national["confounded"].any()
    totals = national[national["measure"] == "effect_cumulative"]
    assert sorted(totals["indicator"].unique()) == [11, 26, 32]
    assert (totals["truth"] == totals["truth_finite"]).all()

    # Coverage: the four measures of one indicator are nearly the same event, so the
    # independent units are at most reps x indicators = 32 intervals; at 95% the binomial
    # SE is then sqrt(0.95 * 0.05 / 32) = 0.039, and 3 SE below nominal is 0.83.
    coverage = national["covered"].mean()
    assert coverage >= 0.95 - 3 * np.sqrt(0.95 * 0.05 / (reps * len(indicators))), national
    # the interval is for the superpopulation mean, so it covers the finite-population mean at
    # least as often (large between-province spread)
    assert national["covered_finite"].mean() >= coverage - 0.05

    # Placebo: 8 x 128 series; the three placebo measures of a series are dependent, so the
    # SE uses the series count: sqrt(0.05 * 0.95 / 1024) = 0.0068; allow 3 SE above nominal.
    placebo = tables.placebo
    rate = (placebo["p_value"] < 0.05).mean()
    assert rate <= 0.05 + 3 * np.sqrt(0.05 * 0.95 / (reps * 128)), rate

    # FDR: mean FDP over replicate x measure families, within two of its own Monte Carlo SEs
    # of q (BH controls it at q * m0 / m, about 0.0075 here, so this is lenient).
    tests = nc._provincial_tests(tables.provincial)
    fdr = nc.multiplicity_summary(nc.true_discoveries(tests, q=0.05).assign(family="all"), by=("family",)).iloc[0]
    assert fdr["fdr"] <= 0.05 + 2 * fdr["fdr_mc_se"], fdr
    # Under the complete null of the placebo tests FDR is the chance of any discovery: 24
    # families (8 x 3 measures), binomial SE at 0.05 is 0.044; allow 2 SE (at most 3 families).
    placebo_fdr = nc.true_discoveries(nc._placebo_tests(placebo), by=("replicate", "measure"))
    assert (placebo_fdr["false_discoveries"] > 0).mean() <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / len(placebo_fdr))

    paths = nc.write_report(tables, tmp_path / "report.md")
    text = paths["report"].read_text(encoding="utf-8")
    assert "National interval coverage" in text and "Placebo tests" in text
    assert pd.read_csv(paths["coverage"])["measure"].tolist()[-1] == "all"
