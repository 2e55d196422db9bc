"""National end-of-plan absolute effects of count indicators (analysis.synthesis.national)."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.synthesis.national import absolute_at_mean_counterfactual, national_effects, national_totals
from analysis.synthesis.pooling import pool


def _provinces(rng: np.random.Generator, *, k: int = 32, family: str = "poisson") -> tuple[pd.DataFrame, float]:
    """Province effects as the ITS fits report them, for a rate whose counterfactual level
    varies between provinces (log-normal, mean ``exp(0.5^2 / 2)``) with a relative effect
    independent of the level (mean 0.10, SD 0.03). The absolute effect is level x relative;
    its standard error grows with the level (Poisson variance), the log ratio's does not.
    Returns the rows and the true mean absolute effect ``E[level] E[relative]``."""
    level = np.exp(rng.normal(0.0, 0.5, k))
    relative_true = rng.normal(0.10, 0.03, k)
    se_log = 0.03
    log_ratio = np.log1p(relative_true) + rng.normal(0, se_log, k)
    relative = np.expm1(log_ratio)
    absolute = level * relative
    se_abs = level * se_log * (1 + relative)
    crit = stats.t.ppf(0.975, 30)
    rows = []
    for i in range(k):
        common = {"province": f"p{i}", "indicator": 26, "family": family, "df": 30.0, "p_value": 0.5}
        rows.append(
            {
                **common,
                "measure": "effect_end_absolute",
                "estimate": absolute[i],
                "se": se_abs[i],
                "ci_low": absolute[i] - crit * se_abs[i],
                "ci_high": absolute[i] + crit * se_abs[i],
                "scale": "per 100",
            }
        )
        rows.append(
            {
                **common,
                "measure": "effect_end_relative",
                "estimate": relative[i],
                "se": (1 + relative[i]) * se_log,
                "ci_low": np.expm1(log_ratio[i] - crit * se_log),
                "ci_high": np.expm1(log_ratio[i] + crit * se_log),
                "scale": "ratio - 1",
            }
        )
    return pd.DataFrame(rows), float(np.exp(0.125) * 0.10)


def test_default_pools_absolute_effects_of_counts_with_equal_weights():
    effects, _ = _provinces(np.random.default_rng(1))
    national = national_effects(effects).set_index("measure")
    absolute = national.loc["effect_end_absolute"]
    rows = effects[effects["measure"] == "effect_end_absolute"]
    reference = pool(rows["estimate"], rows["se"], hksj=True, hksj_floor=True, weights="equal")
    assert absolute["estimate"] == pytest.approx(rows["estimate"].mean(), rel=1e-12)
    assert (absolute["ci_low"], absolute["ci_high"], absolute["p_value"]) == pytest.approx(
        (reference.ci_low, reference.ci_high, reference.p_value), rel=1e-12
    )
    assert absolute["pooled_as"] == "random effects, equal weights" and absolute["weights"] == "equal"
    # the relative effect is pooled with inverse-variance weights whatever the option
    weighted = national_effects(effects, absolute_counts="inverse-variance").set_index("measure")
    assert weighted.loc["effect_end_absolute", "pooled_as"] == "random effects"
    assert weighted.loc["effect_end_absolute", "estimate"] != pytest.approx(absolute["estimate"], rel=1e-3)
    pd.testing.assert_series_equal(weighted.loc["effect_end_relative"], national.loc["effect_end_relative"])
    assert list(national.columns)[-3:] == ["scale", "df", "pooled_as"]
    assert (national["df"] == national["k"] - 1).all()


def test_absolute_effect_is_the_relative_one_at_the_mean_counterfactual():
    effects, _ = _provinces(np.random.default_rng(1))
    national = national_effects(effects, absolute_counts="relative").set_index("measure")
    absolute, relative = national.loc["effect_end_absolute"], national.loc["effect_end_relative"]
    wide = effects.pivot(index="province", columns="measure", values="estimate")
    mean_level = float((wide["effect_end_absolute"] / wide["effect_end_relative"]).mean())
    assert absolute["estimate"] == pytest.approx(mean_level * relative["estimate"], rel=1e-12)
    assert absolute["p_value"] == relative["p_value"]
    assert absolute["pooled_as"] == "relative x mean counterfactual"
    assert absolute["ci_low"] < mean_level * relative["ci_low"] < mean_level * relative["ci_high"] < absolute["ci_high"]


def test_means_keep_the_inverse_variance_absolute_effect():
    effects, _ = _provinces(np.random.default_rng(2), family="gaussian")
    direct = national_effects(effects, absolute_counts="inverse-variance")
    for option in ("equal", "relative"):
        pd.testing.assert_frame_equal(national_effects(effects, absolute_counts=option), direct)


def test_unknown_option_is_rejected():
    effects, _ = _provinces(np.random.default_rng(2))
    with pytest.raises(ValueError, match="absolute_counts must be one of"):
        national_effects(effects, absolute_counts="median")


@pytest.mark.slow
def test_equal_weights_and_derived_effect_cover_the_mean_where_inverse_variance_is_biased():
    """Known truth, 400 replicates of 32 provinces: inverse-variance weights give the
    high-level provinces (large effects, large standard errors) the least weight and
    underestimate the mean effect; the unweighted mean and the derived estimate are unbiased
    and their 95% intervals cover the mean in about 95% of replicates (Monte Carlo SE 1.1
    points)."""
    rng = np.random.default_rng(3)
    found: dict[str, list] = {option: [] for option in ("equal", "relative", "inverse-variance")}
    for _ in range(400):
        effects, truth = _provinces(rng)
        for option, out in found.items():
            row = national_effects(effects, absolute_counts=option).set_index("measure").loc["effect_end_absolute"]
            out.append((row["estimate"] / truth - 1, row["ci_low"] <= truth <= row["ci_high"]))
    summary = {option: np.array(out).mean(axis=0) for option, out in found.items()}
    for option in ("equal", "relative"):
        bias, coverage = summary[option]
        assert abs(bias) < 0.02 and 0.925 <= coverage <= 0.975, (option, summary)
    assert summary["inverse-variance"][0] < -0.05, summary


def test_without_both_end_of_plan_rows_nothing_is_derived():
    effects, _ = _provinces(np.random.default_rng(4))
    only_absolute = effects[effects["measure"] == "effect_end_absolute"]
    pooled = national_effects(only_absolute, absolute_counts="relative")
    assert list(pooled["pooled_as"]) == ["random effects"]
    assert absolute_at_mean_counterfactual(pooled, only_absolute).equals(pooled)


# ---------------------------------------------------------------------------------------
# national totals of cumulative effects


def test_total_of_two_provinces_uses_welch_degrees_of_freedom():
    """Reference: scipy's Welch t test of two samples, whose mean difference is a sum of two
    independent estimates (the second with its sign flipped) with df n - 1 each."""
    rng = np.random.default_rng(5)
    a, b = rng.normal(3.0, 2.0, 8), rng.normal(1.0, 5.0, 14)
    se_a, se_b = a.std(ddof=1) / np.sqrt(a.size), b.std(ddof=1) / np.sqrt(b.size)
    effects = pd.DataFrame(
        {
            "province": ["a", "b"],
            "indicator": 31,
            "measure": "effect_cumulative",
            "estimate": [a.mean(), -b.mean()],
            "se": [se_a, se_b],
            "df": [a.size - 1.0, b.size - 1.0],
            "scale": "count",
        }
    )
    row = national_totals(effects, level=0.9).iloc[0]
    welch = stats.ttest_ind(a, b, equal_var=False)
    ci = welch.confidence_interval(confidence_level=0.9)
    assert row["estimate"] == pytest.approx(a.mean() - b.mean(), rel=1e-12)
    assert row["df"] == pytest.approx(welch.df, rel=1e-12)
    assert row["p_value"] == pytest.approx(welch.pvalue, rel=1e-10)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert row["k"] == 2 and row["pooled_as"] == "sum of provinces" and row["method"] == "sum"


def test_national_effects_add_up_cumulative_effects_and_skip_missing_ones():
    effects, _ = _provinces(np.random.default_rng(6), k=5)
    cumulative = pd.DataFrame(
        {
            "province": [f"p{i}" for i in range(5)],
            "indicator": 26,
            "family": "poisson",
            "measure": "effect_cumulative",
            "estimate": [-10.0, -20.0, np.nan, -5.0, 0.0],
            "se": [5.0, 8.0, np.nan, 4.0, 3.0],
            "df": np.inf,
            "scale": "count",
        }
    )
    z = stats.norm.ppf(0.975)
    cumulative = cumulative.assign(
        ci_low=cumulative["estimate"] - z * cumulative["se"], ci_high=cumulative["estimate"] + z * cumulative["se"]
    )
    national = national_effects(pd.concat([effects, cumulative], ignore_index=True)).set_index("measure")
    row = national.loc["effect_cumulative"]
    assert row["estimate"] == -35.0 and row["se"] == pytest.approx(np.sqrt(25 + 64 + 16 + 9))
    assert row["k"] == 4 and np.isinf(row["df"])  # the province without an estimate is not in the sum
    assert row["ci_low"] == pytest.approx(-35.0 - stats.norm.ppf(0.975) * row["se"])
    without = national_effects(pd.concat([effects, cumulative], ignore_index=True), totals=False)
    assert "effect_cumulative" not in set(without["measure"])
    alone = national_effects(cumulative)
    assert list(alone["measure"]) == ["effect_cumulative"]


def test_total_covers_the_sum_of_the_provinces_true_effects():
    """Known truth: 32 provinces whose cumulative effects are estimated from 6-15 noisy
    observations each (t intervals with 5-14 df). The Welch-Satterthwaite t interval for the
    total covers the true total in about 95% of 4000 replicates (Monte Carlo SE 0.35 points)."""
    rng = np.random.default_rng(7)
    reps, k = 4000, 32
    n = rng.integers(6, 16, k)
    theta = rng.normal(-50, 30, k)
    sd = rng.uniform(20, 200, k)
    samples = [rng.normal(theta[i], sd[i], (reps, n[i])) for i in range(k)]
    frame = pd.DataFrame(
        {
            "province": np.tile(np.arange(k).astype(str), reps),
            "indicator": np.repeat(np.arange(reps), k),  # one replicate per "indicator"
            "measure": "effect_cumulative",
            "estimate": np.column_stack([x.mean(axis=1) for x in samples]).ravel(),
            "se": np.column_stack([x.std(axis=1, ddof=1) / np.sqrt(x.shape[1]) for x in samples]).ravel(),
            "df": np.tile(n - 1.0, reps),
        }
    )
    totals = national_totals(frame)
    assert len(totals) == reps
    covered = (totals["ci_low"] <= theta.sum()) & (theta.sum() <= totals["ci_high"])
    # with a normal quantile instead the interval would be too narrow
    z = stats.norm.ppf(0.975) * totals["se"]
    assert ((totals["estimate"] - z <= theta.sum()) & (theta.sum() <= totals["estimate"] + z)).mean() < covered.mean()
    assert 0.94 <= np.mean(covered) <= 0.96, np.mean(covered)
