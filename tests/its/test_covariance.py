"""Covariance estimators: reductions to closed forms and coverage with known truth."""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.covariance import FitContext, LatentAR1, ModelBased, get_estimator, newey_west_lags
from tests.conftest import ar1


def test_newey_west_lag_rule():
    assert newey_west_lags(81) == 3 and newey_west_lags(100) == 4


def test_unknown_estimator_is_named():
    with pytest.raises(ValueError, match="unknown covariance 'ols-robust'"):
        get_estimator("ols-robust")


def test_latent_ar1_without_extra_variation_reduces_to_model_based():
    """Counts with exactly binomial variation: sigma2 is estimated at (or near) zero and the
    covariance falls back to (X'WX)^{-1}."""
    rng = np.random.default_rng(2)
    n = 120
    X = np.column_stack([np.ones(n), np.arange(n) / n])
    w = np.full(n, 400.0)
    # residuals with variance exactly 1/w and no correlation: zero extra variation on average
    resid = rng.normal(0, 1 / np.sqrt(w)) * 0.5  # under-dispersed: forces sigma2 <= 0
    ctx = FitContext(X=X, weights=w, resid=resid, time=np.arange(n), sampling=True)
    est = LatentAR1().estimate(ctx)
    assert est.details["sigma2"] == 0.0
    np.testing.assert_allclose(est.cov, ModelBased().estimate(ctx).cov)


def test_latent_ar1_recovers_phi_and_sigma_on_a_long_series():
    rng = np.random.default_rng(11)
    months = pd.period_range("1950-01", periods=720, freq="M")
    design = ITSDesign(interruption="1980-01", seasonality="none", spring_festival=False, shocks=())
    X = design.matrix(months)
    phi, sd = 0.5, 0.3
    y = 1 + 0.001 * X["time"] + ar1(rng, len(months), phi, sd)
    res = SegmentedRegression(y.to_numpy(), time=months, design=design).fit()
    assert res.cov_details["phi"] == pytest.approx(phi, abs=0.06)
    assert res.cov_details["sigma2"] == pytest.approx(sd**2 / (1 - phi**2), rel=0.15)


def _coverage(family: str, reps: int, seed: int) -> tuple[float, float, float]:
    rng = np.random.default_rng(seed)
    months = pd.period_range("2019-01", "2025-12", freq="M")
    design = ITSDesign(interruption="2023-06", washin=3, calendar="china")
    X = design.matrix(months)
    level, slope = 0.08, 0.004
    eta = (
        -1.2
        + 0.003 * X["time"].to_numpy()
        + level * X["level_change"].to_numpy()
        + slope * X["slope_change"].to_numpy()
    )
    hits = []
    for _ in range(reps):
        u = ar1(rng, len(months), rng.uniform(0.3, 0.6), 0.04)
        if family == "binomial":
            size = rng.integers(800, 4000, len(months))
            y, kw = rng.binomial(size, expit(eta + u)), {"trials": size}
        elif family == "poisson":
            size = rng.integers(5_000, 20_000, len(months)).astype(float)
            y, kw = rng.poisson(size * np.exp(eta + u)), {"exposure": size}
        else:
            y, kw = 10 + eta + u, {}
        res = SegmentedRegression(y, time=months, design=design, family=family, **kw).fit()
        lc, sc = res.coefficient("level_change"), res.coefficient("slope_change")
        _, rel = res.effect_at("2025-09")
        mean = res.family.inverse
        offset = 10 if family == "gaussian" else 0
        eta_end = eta[months.get_loc(pd.Period("2025-09", "M"))] + offset
        eta_cf = eta_end - level - slope * 27
        true_rel = mean(np.array([eta_end]))[0] / mean(np.array([eta_cf]))[0] - 1
        hits.append(
            (lc.ci_low <= level <= lc.ci_high, sc.ci_low <= slope <= sc.ci_high, rel.ci_low <= true_rel <= rel.ci_high)
        )
    return tuple(np.mean(hits, axis=0))


@pytest.mark.slow
@pytest.mark.parametrize("family", ["binomial", "poisson", "gaussian"])
def test_latent_ar1_intervals_cover_at_nominal_rate(family):
    """Simulation with known truth: latent AR(1) noise on the link scale (phi 0.3-0.6) plus
    sampling error; 95% intervals for level change, slope change and the relative effect
    at 2025-09 cover the truth in 91-99% of 300 replicates (Monte Carlo SE ~1.3%). The upper
    bound allows for the Satterthwaite degrees of freedom, which are deliberately on the
    conservative side when phi is poorly determined."""
    coverage = _coverage(family, reps=300, seed={"binomial": 1, "poisson": 2, "gaussian": 3}[family])
    for name, value in zip(("level", "slope", "relative"), coverage):
        assert 0.91 <= value <= 0.99, f"{family} {name} coverage {value:.3f}"


def _small_hospital_fit(rng: np.random.Generator, months: pd.PeriodIndex, design: ITSDesign):
    """A proportion from 100-300 cases a month: the latent AR(1) variation (SD about 0.02 on
    the logit scale, phi 0.3) is small next to the binomial sampling error (SD about 0.15)."""
    X = design.matrix(months)
    eta = (
        -1.2 + 0.003 * X["time"].to_numpy() + 0.08 * X["level_change"].to_numpy() + 0.004 * X["slope_change"].to_numpy()
    )
    trials = rng.integers(100, 300, len(months))
    y = rng.binomial(trials, expit(eta + ar1(rng, len(months), 0.3, 0.02)))
    model = SegmentedRegression(y, time=months, design=design, family="binomial", trials=trials)
    return model.fit(), model.fit(cov_type="model")


def _slope_df_and_width_ratio(res, base) -> tuple[float, float]:
    gradient = (res.params.index == "slope_change").astype(float)
    slope, naive = res.coefficient("slope_change"), base.coefficient("slope_change")
    return res.df_for(gradient), (slope.ci_high - slope.ci_low) / (naive.ci_high - naive.ci_low)


def test_latent_ar1_on_the_phi_bound_keeps_sensible_degrees_of_freedom():
    """Sampling error dominates and the lag-one moment cannot be matched: phi lands on its
    upper bound. Holding phi there and carrying only the uncertainty of sigma2 gave df 1.0
    for this series (t quantile 12.7, an interval 8 times the binomial one). The criterion:
    df of at least 5 (t quantile at most 2.57) and an interval at most twice as wide as
    the model-based binomial interval."""
    months = pd.period_range("2019-01", "2025-09", freq="M")
    design = ITSDesign(interruption="2023-06", washin=3, calendar="china")
    res, base = _small_hospital_fit(np.random.default_rng(16), months, design)
    assert res.cov_details["phi"] == pytest.approx(LatentAR1().phi_bounds[1])
    df, width_ratio = _slope_df_and_width_ratio(res, base)
    assert np.isfinite(df) and 5 <= df <= res.fitted_design().shape[0] - res.fitted_design().shape[1]
    assert width_ratio <= 2.0


def test_latent_ar1_covers_when_sampling_error_dominates():
    """200 such series (Monte Carlo SE ~1.5%): the slope and level change intervals cover in
    92-99% of replicates, and in the replicates where phi is on its upper bound (about one
    in seven) the median df is at least 5 and no interval is more than 3 times as wide as
    the binomial one."""
    months = pd.period_range("2019-01", "2025-09", freq="M")
    design = ITSDesign(interruption="2023-06", washin=3, calendar="china")
    rng = np.random.default_rng(123)
    hits, on_bound = [], []
    for _ in range(200):
        res, base = _small_hospital_fit(rng, months, design)
        slope, level = res.coefficient("slope_change"), res.coefficient("level_change")
        hits.append((slope.ci_low <= 0.004 <= slope.ci_high, level.ci_low <= 0.08 <= level.ci_high))
        if res.cov_details["phi"] >= LatentAR1().phi_bounds[1] - 1e-9:
            on_bound.append(_slope_df_and_width_ratio(res, base))
    coverage = np.mean(hits, axis=0)
    assert np.all((0.92 <= coverage) & (coverage <= 0.99)), coverage
    df, width_ratio = np.array(on_bound).T
    assert len(on_bound) >= 10
    assert np.median(df) >= 5 and width_ratio.max() <= 3.0, (np.median(df), width_ratio.max())


def test_latent_ar1_computes_the_covariance_with_the_positive_part_of_phi():
    """A series with negatively correlated errors: the moment estimate of phi is negative and
    kept in ``phi_estimate``, while the covariance uses phi = 0, which for a slope (a
    contrast that sums neighbouring months) is larger than with the negative estimate."""
    rng = np.random.default_rng(4)
    months = pd.period_range("2019-01", periods=60, freq="M")
    design = ITSDesign(interruption="2022-01", seasonality="none", spring_festival=False, shocks=())
    y = 5 + ar1(rng, len(months), -0.45, 0.3)
    model = SegmentedRegression(np.asarray(y), time=months, design=design)
    truncated = model.fit(cov_type="latent-ar1")
    raw = model.fit(cov_type="latent-ar1", positive_part=False)
    assert raw.cov_details["phi"] < -0.1
    assert truncated.cov_details["phi"] == 0.0
    assert truncated.cov_details["phi_estimate"] == pytest.approx(raw.cov_details["phi"])
    assert truncated.coefficient("slope_change").se > raw.coefficient("slope_change").se


@pytest.mark.slow
def test_latent_ar1_tail_is_nominal_in_short_series_with_shock_months():
    """Known truth (no change) in the shape of a placebo test of the evaluation: 31 + 21
    months with month dummies, Spring Festival days and the five COVID shock months, AR(1)
    errors with phi drawn from 0.3-0.6. In 20,000 level and slope tests p < 1e-4 should
    happen about twice. With the raw (negative) phi estimates it happened 8 times in these
    replicates (24 in 50,000): fits whose phi fell below 0 had too small a variance and too
    many degrees of freedom at once. The bound, 6, is exceeded by chance with probability
    0.005 when the tail is exact."""
    from analysis.evaluation.settings import EvaluationSettings

    rng = np.random.default_rng(2)
    months = pd.period_range("2019-01", "2023-07", freq="M")
    design = EvaluationSettings().design(pd.Period("2021-08", "M"))
    n, p_values = len(months), []
    for _ in range(10_000):
        phi = rng.uniform(0.3, 0.6)
        u = np.empty(n)
        u[0] = rng.normal(0, 1.2)
        for t in range(1, n):
            u[t] = phi * u[t - 1] + rng.normal(0, 1.2 * np.sqrt(1 - phi**2))
        res = SegmentedRegression(40 + 0.05 * np.arange(n) + u, time=months, design=design).fit(cov_type="latent-ar1")
        p_values += [res.coefficient("level_change").p_value, res.coefficient("slope_change").p_value]
    p_values = np.array(p_values)
    assert np.sum(p_values < 1e-4) <= 6
    assert 0.025 <= np.mean(p_values < 0.05) <= 0.06


def _binomial_latent_ar1_rejections(latent_sd, replicates, seed):
    """Level-change tests of a true null in binomial series (about 3000 trials a month,
    sampling SD 0.04 on the logit scale) with a latent AR(1) (phi 0.4) of the given SD."""
    months = pd.period_range("2019-01", periods=84, freq="M")
    design = ITSDesign(interruption="2023-06", washin=3, seasonality="none")
    X = design.matrix(months).to_numpy()
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(replicates):
        u = np.zeros(84)
        u[0] = rng.normal(0, latent_sd)
        for t in range(1, 84):
            u[t] = 0.4 * u[t - 1] + rng.normal(0, latent_sd * np.sqrt(1 - 0.4**2))
        n = rng.integers(2500, 3500, 84)
        y = rng.binomial(n, 1 / (1 + np.exp(-(np.log(0.3 / 0.7) + 0.002 * X[:, 1] + u)))).astype(float)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = SegmentedRegression(y, time=months, design=design, family="binomial", trials=n.astype(float)).fit()
        rows.append((res.cov_details["sigma2"] == 0, res.coefficient("level_change").p_value < 0.05))
    return np.array(rows)


@pytest.mark.slow
@pytest.mark.parametrize("latent_sd", [0.0, 0.02])
def test_latent_variance_estimated_at_zero_keeps_the_marginal_size(latent_sd):
    """The documented behaviour when the latent variance is estimated at 0 (docs/coverage.md):
    the interval is the sampling one. Conditional on sigma2 = 0 tests are liberal when the
    true latent SD is near the sampling SD (measured: 11% at SD 0.02, 19% at 0.03, in
    4,000 replicates), but over all fits the size stays at or below 5% (measured 3.4% and
    4.0%); this test holds the marginal rate below 6% with 1,500 replicates (MC SE 0.6
    points) and checks that sigma2 = 0 does occur in the scenario."""
    outcome = _binomial_latent_ar1_rejections(latent_sd, 1500, seed=11)
    zero, reject = outcome[:, 0].astype(bool), outcome[:, 1].astype(bool)
    assert zero.mean() > 0.05
    assert reject.mean() < 0.06
