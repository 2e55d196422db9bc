"""Event-time curves: closed forms for one series, pooling wiring, the balanced window, the
subgroup test against independent references, and recovery of the synthetic truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit

from analysis.data.synthetic import generate
from analysis.evaluation.event_time import EVENT_TIME_COLUMNS, event_time_effects, fit_event_time_models
from analysis.its.design import ITSDesign
from analysis.its.model import SegmentedRegression
from analysis.registry import get_indicator
from analysis.synthesis.event_time import (
    COHORT_COLUMNS,
    COHORT_TEST_COLUMNS,
    POOLED_COLUMNS,
    _subgroup_fit,
    cohort_heterogeneity,
    pooled_event_time,
)
from analysis.synthesis.pooling import pool

PROVINCES = ["110000", "120000", "130000", "140000", "150000", "210000", "220000", "230000", "310000", "320000"]
#: One indicator of each family: response time (Gaussian, minutes), STEMI reperfusion
#: (binomial, %), catheter-related infections (Poisson, per 1000 catheter-days). None has
#: the DRG/DIP co-intervention, which the model does not include.
INDICATORS = [9, 11, 34]
WASHIN = 3


# ---------------------------------------------------------------------------------------
# The truth of the synthetic generator by event time
# ---------------------------------------------------------------------------------------

_INVERSE = {"proportion": expit, "rate": np.exp, "mean": lambda x: x}


def true_event_time_effects(data) -> pd.DataFrame:
    """True effects per province x indicator x event time, from the generator's linear
    predictor without the plan and its plan term: the mean with the plan against the mean
    without it, in display units and as a log ratio."""
    monthly = data.truth_monthly.merge(data.plan_dates, on="province")
    months = pd.PeriodIndex(monthly["month"], freq="M")
    starts = pd.PeriodIndex(monthly["start_month"], freq="M")
    monthly["event_time"] = months.asi8 - starts.asi8
    parts = []
    for number, rows in monthly.groupby("indicator"):
        indicator = get_indicator(int(number))
        inverse = _INVERSE[indicator.measure]
        scale = 1.0 if indicator.measure == "mean" else indicator.scale
        with_plan = inverse(rows["eta_counterfactual"] + rows["plan_effect_eta"])
        without = inverse(rows["eta_counterfactual"])
        parts.append(rows.assign(absolute=scale * (with_plan - without), log_ratio=np.log(with_plan / without)))
    return pd.concat(parts)[["province", "indicator", "month", "event_time", "absolute", "log_ratio"]]


def true_national_curve(data) -> pd.DataFrame:
    """The provinces' true effects averaged at each event time (log ratios for the relative
    effect, as they are pooled), one row per indicator x measure x event time."""
    truth = true_event_time_effects(data)
    curve = truth.groupby(["indicator", "event_time"])[["absolute", "log_ratio"]].mean().reset_index()
    curve["effect_absolute"] = curve["absolute"]
    curve["effect_relative"] = np.expm1(curve["log_ratio"])
    return curve.melt(
        id_vars=["indicator", "event_time"],
        value_vars=["effect_absolute", "effect_relative"],
        var_name="measure",
        value_name="true_value",
    )


def _fit(seed: int, provinces=PROVINCES, indicators=INDICATORS):
    data = generate(seed, provinces=provinces, indicators=indicators)
    starts = dict(zip(data.plan_dates["province"], data.plan_dates["start_month"]))
    results, failures = fit_event_time_models(data.panel, starts=starts)
    assert failures.empty
    return data, results


@pytest.fixture(scope="module")
def fitted():
    data, results = _fit(2)
    return data, results, event_time_effects(results)


def test_the_truth_helper_reproduces_the_generators_end_of_plan_effects(fitted):
    data, _, _ = fitted
    truth = true_event_time_effects(data)
    at_end = truth[truth["month"] == "2025-09"].merge(data.truth, on=["province", "indicator"])
    np.testing.assert_allclose(at_end["absolute"], at_end["effect_end_absolute"], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.expm1(at_end["log_ratio"]), at_end["effect_end_relative"], rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------
# One series: closed forms
# ---------------------------------------------------------------------------------------

MONTHS = pd.period_range("2020-01", "2024-12", freq="M")
START = pd.Period("2023-01", "M")


def _gaussian_fit(*, washin: int = 0, washin_mode: str = "exclude", seed: int = 0):
    k = (MONTHS.asi8 - START.ordinal).astype(float)
    rng = np.random.default_rng(seed)
    y = 20 + 0.05 * k + np.where(k >= 0, 1.5 + 0.2 * k, 0.0) + rng.normal(0, 0.5, len(k))
    design = ITSDesign(
        interruption=START, washin=washin, washin_mode=washin_mode, seasonality="none", spring_festival=False, shocks=()
    )
    return SegmentedRegression(y, time=MONTHS, design=design).fit(cov_type="model")


def _closed_form(res, k: np.ndarray, ramp: np.ndarray) -> dict[str, np.ndarray]:
    """Identity link: effect = level * ramp + slope * k, counterfactual = const + time * k."""
    beta, cov = res.params, res.cov.to_numpy()
    names = list(res.params.index)
    grad = np.zeros((len(k), len(names)))
    grad[:, names.index("level_change")] = ramp
    grad[:, names.index("slope_change")] = k
    effect = grad @ beta.to_numpy()
    counterfactual = beta["const"] + beta["time"] * k
    return {
        "effect": effect,
        "se": np.sqrt(np.einsum("ij,jk,ik->i", grad, cov, grad)),
        "relative": effect / counterfactual,
    }


def test_effects_by_event_time_match_the_closed_form_of_a_linear_model():
    res = _gaussian_fit()
    table = event_time_effects({("340000", 9): res})
    assert list(table.columns) == EVENT_TIME_COLUMNS
    absolute = table[table["measure"] == "effect_absolute"]
    relative = table[table["measure"] == "effect_relative"]
    k = absolute["event_time"].to_numpy()
    np.testing.assert_array_equal(k, np.arange(24))  # 2023-01 .. 2024-12
    assert (absolute["month"] == [str(START + int(j)) for j in k]).all()
    expected = _closed_form(res, k.astype(float), np.ones(len(k)))
    np.testing.assert_allclose(absolute["estimate"], expected["effect"], rtol=1e-10)
    np.testing.assert_allclose(absolute["se"], expected["se"], rtol=1e-8)
    crit = stats.t.ppf(0.975, res.df_resid)
    np.testing.assert_allclose(absolute["ci_high"] - absolute["estimate"], crit * expected["se"], rtol=1e-8)
    np.testing.assert_allclose(absolute["df"], res.df_resid)
    np.testing.assert_allclose(relative["estimate"], expected["relative"], rtol=1e-10)
    assert (absolute["scale"] == "minutes").all() and (relative["scale"] == "ratio - 1").all()


def test_inside_an_excluded_washin_the_post_period_line_is_carried_back():
    res = _gaussian_fit(washin=WASHIN, washin_mode="exclude")
    table = event_time_effects({("340000", 9): res}, max_event_time=5)
    absolute = table[table["measure"] == "effect_absolute"]
    assert absolute["phase"].tolist() == ["washin"] * WASHIN + ["post"] * 3
    k = absolute["event_time"].to_numpy(float)
    np.testing.assert_allclose(absolute["estimate"], _closed_form(res, k, np.ones(6))["effect"], rtol=1e-10)


def test_inside_a_ramped_washin_the_level_change_builds_up_linearly():
    res = _gaussian_fit(washin=WASHIN, washin_mode="ramp")
    table = event_time_effects({("340000", 9): res}, max_event_time=5)
    absolute = table[table["measure"] == "effect_absolute"]
    k = absolute["event_time"].to_numpy(float)
    ramp = np.minimum(1.0, (k + 1) / WASHIN)
    np.testing.assert_allclose(absolute["estimate"], _closed_form(res, k, ramp)["effect"], rtol=1e-10)


def test_the_window_stops_at_max_event_time_and_at_through():
    res = _gaussian_fit()
    assert event_time_effects({("340000", 9): res}, max_event_time=4)["event_time"].max() == 4
    through = event_time_effects({("340000", 9): res}, through="2023-09")
    assert through["month"].max() == "2023-09" and through["event_time"].max() == 8


def test_integer_time_is_refused():
    years = np.arange(2000, 2020)
    y = 5 + 0.1 * (years - 2010) + np.where(years >= 2010, 1.0, 0.0) + np.random.default_rng(0).normal(0, 0.1, 20)
    res = SegmentedRegression(y, time=years, design=ITSDesign(interruption=2010)).fit(cov_type="model")
    with pytest.raises(ValueError, match="integer time"):
        event_time_effects({("340000", 9): res})


# ---------------------------------------------------------------------------------------
# The synthetic panel: event times of each province, balanced window
# ---------------------------------------------------------------------------------------


def test_event_time_zero_is_each_provinces_own_start(fitted):
    data, _, table = fitted
    starts = dict(zip(data.plan_dates["province"], data.plan_dates["start_month"]))
    assert len(set(starts.values())) >= 4  # a staggered panel
    first = table[table["event_time"] == 0]
    assert (first["month"] == first["province"].map(starts)).all()
    assert (first["start_month"] == first["month"]).all()
    # every month of the data from the start on: the panel ends in 2025-12
    last = table.groupby("province")["event_time"].max()
    expected = {p: pd.Period("2025-12", "M").ordinal - pd.Period(s, "M").ordinal for p, s in starts.items()}
    assert last.to_dict() == expected
    assert (table.loc[table["event_time"] < WASHIN, "phase"] == "washin").all()
    assert (table.loc[table["event_time"] >= WASHIN, "phase"] == "post").all()


def test_balanced_window_keeps_event_times_every_province_reaches(fitted):
    data, _, table = fitted
    starts = pd.PeriodIndex(data.plan_dates["start_month"], freq="M")
    reach = pd.Period("2025-12", "M").ordinal - starts.asi8.max()  # the latest starter's last event time
    balanced = pooled_event_time(table)
    assert list(balanced.columns) == POOLED_COLUMNS
    assert balanced["event_time"].max() == reach
    assert (balanced["k_provinces"] == len(PROVINCES)).all() and balanced["balanced"].all()
    assert len(balanced) == len(INDICATORS) * 2 * (reach + 1)

    everything = pooled_event_time(table, balanced=False)
    counts = table.groupby(["indicator", "measure", "event_time"]).size()
    got = everything.set_index(["indicator", "measure", "event_time"])["k_provinces"]
    pd.testing.assert_series_equal(got, counts.rename("k_provinces"), check_dtype=False)
    assert (everything["balanced"] == (everything["k_provinces"] == len(PROVINCES))).all()
    assert everything["event_time"].max() > reach


def test_pooled_points_are_random_effects_meta_analyses_on_the_log_scale(fitted):
    _, _, table = fitted
    pooled = pooled_event_time(table).set_index(["indicator", "measure", "event_time"])
    for number, k in [(11, 5), (34, 12), (9, 20)]:
        at_k = table[(table["indicator"] == number) & (table["event_time"] == k)]
        rel = at_k[at_k["measure"] == "effect_relative"]
        log_se = (np.log1p(rel["ci_high"]) - np.log1p(rel["ci_low"])) / (2 * stats.t.ppf(0.975, rel["df"]))
        ref = pool(np.log1p(rel["estimate"]), log_se, method="reml", hksj=True)
        row = pooled.loc[(number, "effect_relative", k)]
        np.testing.assert_allclose(
            [row["estimate"], row["ci_low"], row["ci_high"]],
            np.expm1([ref.estimate, ref.ci_low, ref.ci_high]),
            rtol=1e-7,
        )
        assert row["df"] == len(rel) - 1 and np.isnan(row["se"])
        ab = at_k[at_k["measure"] == "effect_absolute"]
        # absolute effects of proportions and rates are averaged unweighted (means: weighted)
        weights = "inverse-variance" if number == 9 else "equal"
        ref = pool(ab["estimate"], ab["se"], method="reml", hksj=True, weights=weights)
        np.testing.assert_allclose(
            pooled.loc[(number, "effect_absolute", k), ["estimate", "se", "p_value"]],
            [ref.estimate, ref.se, ref.p_value],
            rtol=1e-10,
        )
        assert pooled.loc[(number, "effect_absolute", k), "weights"] == weights


def test_fixed_effect_pooling_is_the_inverse_variance_mean(fitted):
    _, _, table = fitted
    rows = table[(table["indicator"] == 9) & (table["measure"] == "effect_absolute") & (table["event_time"] == 8)]
    w = 1 / rows["se"].to_numpy() ** 2
    mean = float(w @ rows["estimate"].to_numpy() / w.sum())
    out = pooled_event_time(rows, method="fe", hksj=False)
    np.testing.assert_allclose(out[["estimate", "se"]].iloc[0], [mean, 1 / np.sqrt(w.sum())], rtol=1e-12)
    np.testing.assert_allclose(out["ci_high"].iat[0] - mean, 1.959964 / np.sqrt(w.sum()), rtol=1e-6)


def test_with_one_province_the_pooled_curve_is_that_provinces_curve(fitted):
    _, _, table = fitted
    one = table[table["province"] == PROVINCES[3]]
    pooled = pooled_event_time(one)
    assert (pooled["k_provinces"] == 1).all() and len(pooled) == len(one)
    merged = pooled.merge(one, on=["indicator", "measure", "event_time"], suffixes=("", "_own"))
    for column in ("estimate", "se", "ci_low", "ci_high", "p_value", "df"):
        np.testing.assert_array_equal(merged[column].to_numpy(float), merged[f"{column}_own"].to_numpy(float))


def test_bad_tables_are_refused(fitted):
    _, _, table = fitted
    with pytest.raises(ValueError, match="column"):
        pooled_event_time(table.drop(columns="start_month"))
    with pytest.raises(ValueError, match="unknown measure"):
        pooled_event_time(table.replace({"measure": {"effect_relative": "level_change"}}))
    with pytest.raises(ValueError, match="no plan start"):
        fit_event_time_models(generate(1, provinces=["110000"], indicators=[9]).panel, starts={})


# ---------------------------------------------------------------------------------------
# Recovery of the truth
# ---------------------------------------------------------------------------------------


def _compare_with_truth(data, table) -> pd.DataFrame:
    curve = pooled_event_time(table)
    merged = curve.merge(true_national_curve(data), on=["indicator", "measure", "event_time"], validate="one_to_one")
    merged["covered"] = (merged["ci_low"] <= merged["true_value"]) & (merged["true_value"] <= merged["ci_high"])
    return merged[merged["phase"] == "post"]  # the wash-in is model-based either way (see the module notes)


def test_the_national_curve_tracks_the_true_event_time_effects(fitted):
    data, _, table = fitted
    merged = _compare_with_truth(data, table)
    assert len(merged) == len(INDICATORS) * 2 * (merged["event_time"].nunique())
    # Each curve (about 20 correlated points) covers the truth at most event times...
    by_curve = merged.groupby(["indicator", "measure"])["covered"].mean()
    assert (by_curve >= 0.7).all(), by_curve
    # ...and its error is small next to the interval: a curve of noise or a shifted curve
    # would not pass.
    half = (merged["ci_high"] - merged["ci_low"]) / 2
    error = merged["estimate"] - merged["true_value"]
    assert float(np.median(np.abs(error) / half)) < 0.5
    # the truth is not trivially inside: the effects of these indicators are far from zero
    assert (merged.groupby(["indicator", "measure"])["true_value"].apply(lambda v: np.abs(v).mean()) > 0).all()


def test_each_series_curve_lines_up_with_its_true_event_times(fitted):
    data, _, table = fitted
    truth = true_event_time_effects(data)
    merged = table.merge(
        truth, on=["province", "indicator", "event_time"], suffixes=("", "_true"), validate="many_to_one"
    )
    assert len(merged) == len(table) and (merged["month"] == merged["month_true"]).all()
    merged["true_value"] = np.where(
        merged["measure"] == "effect_relative", np.expm1(merged["log_ratio"]), merged["absolute"]
    )
    post = merged[merged["phase"] == "post"]
    covered = (post["ci_low"] <= post["true_value"]) & (post["true_value"] <= post["ci_high"])
    assert covered.mean() >= 0.85, covered.mean()


@pytest.mark.slow
def test_coverage_of_the_true_curve_across_seeds():
    hits = []
    for seed in range(11, 31):
        data, results = _fit(seed)
        merged = _compare_with_truth(data, event_time_effects(results, max_event_time=24))
        # a few event times apart, so that the points are not one long correlated curve
        hits.append(merged[merged["event_time"].isin([3, 9, 15, 21])]["covered"].to_numpy())
    covered = np.concatenate(hits)
    assert len(covered) == 20 * len(INDICATORS) * 2 * 4
    assert covered.mean() >= 0.85, covered.mean()


# ---------------------------------------------------------------------------------------
# Start cohorts
# ---------------------------------------------------------------------------------------


def _meta_table(y, se, cohorts, *, measure="effect_absolute", event_time=6) -> pd.DataFrame:
    n = len(y)
    return pd.DataFrame(
        {
            "province": [f"p{i:02d}" for i in range(n)],
            "indicator": 9,
            "start_month": cohorts,
            "event_time": event_time,
            "month": "",
            "phase": "post",
            "measure": measure,
            "estimate": y,
            "se": se,
            "ci_low": np.nan,
            "ci_high": np.nan,
            "p_value": np.nan,
            "df": np.inf,
            "scale": "minutes",
        }
    )


def _random_meta(rng, *, cohorts=("2023-06", "2023-07", "2023-08", "2023-09"), per=3, shift=0.0, tau=0.2):
    labels = np.repeat(cohorts, per)
    effect = np.repeat(np.arange(len(cohorts)) * shift, per)
    se = rng.uniform(0.05, 0.3, len(labels))
    y = effect + rng.normal(0, tau, len(labels)) + rng.normal(0, se)
    return y, se, labels


def test_fixed_effect_q_between_is_total_minus_within_heterogeneity():
    y, se, labels = _random_meta(np.random.default_rng(3), shift=0.3)
    out = cohort_heterogeneity(_meta_table(y, se, labels), event_time=6, method="fe", hksj=False)
    assert list(out.tests.columns) == COHORT_TEST_COLUMNS and list(out.cohorts.columns) == COHORT_COLUMNS

    def cochran(values, s):
        w = 1 / s**2
        return float((w * (values - w @ values / w.sum()) ** 2).sum())

    within = sum(cochran(y[labels == c], se[labels == c]) for c in np.unique(labels))
    test = out.tests.iloc[0]
    np.testing.assert_allclose(test["q_between"], cochran(y, se) - within, rtol=1e-10)
    np.testing.assert_allclose(test["p_value"], stats.chi2.sf(cochran(y, se) - within, 3), rtol=1e-8)
    assert test["tau2"] == 0 and test["test"] == "chi2" and test["df_num"] == 3
    for row in out.cohorts.itertuples():
        w = 1 / se[labels == row.cohort] ** 2
        np.testing.assert_allclose(row.estimate, w @ y[labels == row.cohort] / w.sum(), rtol=1e-12)
        np.testing.assert_allclose(row.se, 1 / np.sqrt(w.sum()), rtol=1e-12)


def _reml_by_matrices(y, v, labels, tau2):
    """Restricted log-likelihood of y ~ cohort with V = diag(v + tau2), by matrix algebra."""
    X = (labels[:, None] == np.unique(labels)[None, :]).astype(float)
    V_inv = np.diag(1 / (v + tau2))
    XtVX = X.T @ V_inv @ X
    beta = np.linalg.solve(XtVX, X.T @ V_inv @ y)
    r = y - X @ beta
    return -0.5 * (np.log(v + tau2).sum() + np.linalg.slogdet(XtVX)[1] + r @ V_inv @ r)


def test_residual_tau2_maximises_the_restricted_likelihood():
    rng = np.random.default_rng(8)
    for shift, tau in [(0.2, 0.3), (0.0, 0.15), (0.5, 0.0)]:
        y, se, labels = _random_meta(rng, shift=shift, tau=tau, per=4)
        out = cohort_heterogeneity(_meta_table(y, se, labels), event_time=6)
        brute = optimize.minimize_scalar(
            lambda t, y=y, se=se, labels=labels: -_reml_by_matrices(y, se**2, labels, t),
            bounds=(0, 5),
            method="bounded",
            options={"xatol": 1e-10},
        )
        best = brute.x if -brute.fun > _reml_by_matrices(y, se**2, labels, 0.0) else 0.0
        np.testing.assert_allclose(out.tests["tau2"].iat[0], best, atol=1e-6)


def test_one_cohort_is_the_random_effects_model_of_pool():
    y, se, _ = _random_meta(np.random.default_rng(5), tau=0.25)
    out = cohort_heterogeneity(_meta_table(y, se, ["2023-07"] * len(y)), event_time=6)
    # pool() stops Fisher scoring at a step of 1e-5 as metafor does; tau^2 here is the exact root
    ref = pool(y, se, method="reml", hksj=True)
    row = out.cohorts.iloc[0]
    np.testing.assert_allclose(
        [row["estimate"], row["se"], row["ci_low"], row["ci_high"], out.tests["tau2"].iat[0]],
        [ref.estimate, ref.se, ref.ci_low, ref.ci_high, ref.tau2],
        rtol=0,
        atol=5e-5,
    )
    assert np.isnan(out.tests["p_value"].iat[0])  # nothing to compare


def test_agrees_with_the_meta_regression_on_a_cohort_factor():
    metaregression = pytest.importorskip("analysis.synthesis.metaregression")
    y, se, labels = _random_meta(np.random.default_rng(21), shift=0.2)
    frame = pd.DataFrame({"y": y, "se": se, "cohort": labels})
    ref = metaregression.meta_regression(frame, estimate="y", se="se", moderators="cohort", method="reml", knha=True)
    out = cohort_heterogeneity(_meta_table(y, se, labels), event_time=6)
    test = out.tests.iloc[0]
    np.testing.assert_allclose(test["tau2"], ref.tau2, atol=1e-5)  # metafor's stopping rule there
    np.testing.assert_allclose([test["statistic"], test["p_value"]], [ref.qm, ref.qm_p_value], rtol=1e-4)


def test_relative_effects_are_compared_as_log_ratios():
    y, se, labels = _random_meta(np.random.default_rng(4), shift=0.1, tau=0.05)
    ratio = np.expm1(y)
    table = _meta_table(ratio, se * (1 + ratio), labels, measure="effect_relative")
    on_log = cohort_heterogeneity(_meta_table(y, se, labels), event_time=6)
    out = cohort_heterogeneity(table, event_time=6)
    np.testing.assert_allclose(out.tests["p_value"], on_log.tests["p_value"], rtol=1e-8)
    np.testing.assert_allclose(out.cohorts["estimate"], np.expm1(on_log.cohorts["estimate"]), rtol=1e-8)
    assert out.cohorts["se"].isna().all()


def test_the_cohort_test_holds_its_level_and_detects_real_differences():
    rng = np.random.default_rng(2024)

    def rejection(shift):
        p = []
        for _ in range(400):  # the table-free core of cohort_heterogeneity, for speed
            y, se, labels = _random_meta(rng, shift=shift)
            codes = pd.factorize(labels, sort=True)[0]
            p.append(_subgroup_fit(y, se**2, codes, method="reml", hksj=True, level=0.95).p_value)
        return float(np.mean(np.asarray(p) < 0.05))

    null = rejection(0.0)
    assert 0.02 <= null <= 0.085, null  # 400 draws: Monte Carlo SE about 0.011
    assert rejection(0.25) >= 0.6


def test_cohorts_of_the_synthetic_panel(fitted):
    data, _, table = fitted
    out = cohort_heterogeneity(table, event_time=[6, 12])
    starts = data.plan_dates["start_month"]
    assert len(out.tests) == len(INDICATORS) * 2 * 2
    assert (out.tests["n_cohorts"] == starts.nunique()).all()
    assert (out.tests["k_provinces"] == len(PROVINCES)).all()
    sizes = out.cohorts.groupby(["indicator", "measure", "event_time"])["k_provinces"].sum()
    assert (sizes == len(PROVINCES)).all()
    counts = out.cohorts[
        (out.cohorts["indicator"] == 9)
        & (out.cohorts["event_time"] == 6)
        & (out.cohorts["measure"] == "effect_absolute")
    ].set_index("cohort")["k_provinces"]
    assert counts.to_dict() == starts.value_counts().to_dict()
    # a grouping of one's own (early vs late starters)
    early = {p: "early" if s <= "2023-07" else "late" for p, s in zip(data.plan_dates["province"], starts)}
    two = cohort_heterogeneity(table, event_time=6, cohort_of=early)
    assert (two.tests["n_cohorts"] == 2).all() and set(two.cohorts["cohort"]) == {"early", "late"}
    with pytest.raises(ValueError, match="no cohort"):
        cohort_heterogeneity(table, event_time=6, cohort_of={})
