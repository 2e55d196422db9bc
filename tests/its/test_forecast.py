"""The counterfactual-forecast design against independent references.

References: statsmodels' OLS ``get_prediction`` and ``t_test`` on the pre-period fit (an
independent implementation of the forecast mean, its confidence band and the prediction
interval), the closed-form variance of a sum of forecast errors, first-order (delta-method)
variances of the simulated count forecasts, and simulations with known truth (coverage of
the cumulative-effect interval when there is no effect).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from scipy.special import expit

from analysis.its.design import DesignError
from analysis.its.families import theta_ml
from analysis.its.forecast import ForecastITS
from analysis.its.model import ModelError
from tests.conftest import ar1

MONTHS = pd.period_range("2015-01", "2022-12", freq="M")  # 96 months
INTERRUPTION = "2021-01"  # 72 pre, 24 post
CALENDAR = {"spring_festival": False, "shocks": ()}


def seasonal_mean(months):
    return 30 + 0.1 * np.arange(len(months)) + 3 * np.sin(2 * np.pi * np.asarray(months.month) / 12)


def gaussian_series(seed=0, effect=0.0, phi=0.0, sd=1.5):
    rng = np.random.default_rng(seed)
    y = seasonal_mean(MONTHS) + (ar1(rng, len(MONTHS), phi, sd) if phi else rng.normal(0, sd, len(MONTHS)))
    y[72:] += effect
    return y


def ols_reference(its, y):
    data = its.design_data()
    X = data.X.to_numpy()
    return sm.OLS(y[data.pre], X[data.pre]).fit(), X[~data.pre], data


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_gaussian_forecast_and_intervals_equal_statsmodels_get_prediction(level):
    y = gaussian_series(seed=1, effect=2.0)
    its = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, **CALENDAR)
    res = its.fit(level=level)
    ols, X_post, _ = ols_reference(its, y)
    np.testing.assert_allclose(res.params.to_numpy(), ols.params, rtol=1e-10)
    np.testing.assert_allclose(res.cov.to_numpy(), ols.cov_params(), rtol=1e-8)
    ref = ols.get_prediction(X_post).summary_frame(alpha=1 - level)
    post = res.predictions().query("phase == 'post'")
    np.testing.assert_allclose(post["forecast"], ref["mean"], rtol=1e-10)
    np.testing.assert_allclose(post["forecast_low"], ref["mean_ci_lower"], rtol=1e-10)
    np.testing.assert_allclose(post["forecast_high"], ref["mean_ci_upper"], rtol=1e-10)
    np.testing.assert_allclose(post["prediction_low"], ref["obs_ci_lower"], rtol=1e-10)
    np.testing.assert_allclose(post["prediction_high"], ref["obs_ci_upper"], rtol=1e-10)
    # The effect interval is the observation minus the counterfactual's prediction interval.
    np.testing.assert_allclose(post["effect"], y[72:] - ref["mean"], rtol=1e-10)
    np.testing.assert_allclose(post["effect_low"], y[72:] - ref["obs_ci_upper"], rtol=1e-10)
    np.testing.assert_allclose(post["effect_high"], y[72:] - ref["obs_ci_lower"], rtol=1e-10)
    # Confidence version of the per-period effect: the band of the mean.
    conf = res.effect(interval="confidence")
    np.testing.assert_allclose(conf["effect_low"], y[72:] - ref["mean_ci_upper"], rtol=1e-10)


def test_gaussian_cumulative_and_average_effects_are_closed_form():
    """Var(sum of effects) = g'Vg + n_w s^2 (prediction) or g'Vg (confidence), g the sum of
    the window's design rows: coefficient errors are shared by all periods, noise is not."""
    y = gaussian_series(seed=2, effect=1.0)
    its = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, **CALENDAR)
    res = its.fit()
    ols, X_post, _ = ols_reference(its, y)
    window = slice("2021-03", "2021-10")
    rows = np.arange(2, 10)
    g = X_post[rows].sum(axis=0)
    test = ols.t_test(g)  # statsmodels' own contrast: estimate and se of g'b
    expected_sum = float(np.squeeze(test.effect))
    estimate = y[72:][rows].sum() - expected_sum
    crit = stats.t.ppf(0.975, ols.df_resid)
    se_conf = float(np.squeeze(test.sd))
    se_pred = np.sqrt(se_conf**2 + len(rows) * ols.scale)
    for interval, se in (("prediction", se_pred), ("confidence", se_conf)):
        cum = res.cumulative_effect(window, interval=interval)
        assert cum.estimate == pytest.approx(estimate, rel=1e-10)
        assert cum.se == pytest.approx(se, rel=1e-10)
        assert (cum.ci_low, cum.ci_high) == pytest.approx((estimate - crit * se, estimate + crit * se), rel=1e-10)
        assert cum.p_value == pytest.approx(2 * stats.t.sf(abs(estimate / se), ols.df_resid), rel=1e-8)
        avg = res.average_effect(window, interval=interval)
        assert (avg.estimate, avg.se, avg.ci_low, avg.ci_high) == pytest.approx(
            (cum.estimate / 8, cum.se / 8, cum.ci_low / 8, cum.ci_high / 8), rel=1e-12
        )
        rel = res.cumulative_effect(window, interval=interval, relative=True)
        observed = y[72:][rows].sum()
        assert rel.estimate == pytest.approx(observed / expected_sum - 1, rel=1e-10)
        lo, hi = expected_sum - crit * se, expected_sum + crit * se
        assert (rel.ci_low, rel.ci_high) == pytest.approx((observed / hi - 1, observed / lo - 1), rel=1e-10)
        assert res.average_effect(window, interval=interval, relative=True) == rel
    # A list of months is the same window as the slice.
    listed = res.cumulative_effect(list(pd.period_range("2021-03", "2021-10", freq="M")))
    assert listed == res.cumulative_effect(window)


def test_latent_ar1_noise_widens_cumulative_intervals_by_its_correlation():
    y = gaussian_series(seed=4, phi=0.6)
    its = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, **CALENDAR)
    res = its.fit(cov_type="latent-ar1")
    phi, sigma2 = res.cov_details["phi"], res.cov_details["sigma2"]
    assert res.noise.kind == "ar1" and phi > 0
    X_post = res.matrix.to_numpy()[72:]
    g = X_post.sum(axis=0)
    lags = np.abs(np.subtract.outer(np.arange(24), np.arange(24)))
    var = g @ res.cov.to_numpy() @ g + sigma2 * np.sum(phi**lags)
    assert res.cumulative_effect().se == pytest.approx(np.sqrt(var), rel=1e-10)
    # Per-period prediction intervals use the marginal variance of the AR(1) noise.
    x = X_post[5]
    eff = res.effect().iloc[5]
    assert eff["se"] == pytest.approx(np.sqrt(x @ res.cov.to_numpy() @ x + sigma2), rel=1e-10)
    # The confidence band of the forecast and the confidence interval of the effect agree,
    # with the contrast's own (Satterthwaite) degrees of freedom.
    post = res.predictions().query("phase == 'post'")
    conf = res.effect(interval="confidence")
    np.testing.assert_allclose(post["forecast_high"], y[72:] - conf["effect_low"], rtol=1e-10)
    np.testing.assert_allclose(post["forecast_low"], y[72:] - conf["effect_high"], rtol=1e-10)


def count_series(seed=0, family="poisson", extra_sd=0.0, n=4000):
    rng = np.random.default_rng(seed)
    eta = -3.0 + 0.004 * np.arange(len(MONTHS)) + 0.1 * np.sin(2 * np.pi * np.asarray(MONTHS.month) / 12)
    eta = eta + rng.normal(0, extra_sd, len(MONTHS)) if extra_sd else eta
    size = rng.integers(n // 2, n, len(MONTHS)).astype(float)
    y = rng.binomial(size.astype(int), expit(eta)) if family == "binomial" else rng.poisson(size * np.exp(eta))
    return y.astype(float), size


@pytest.mark.parametrize("family, cov_type", [("poisson", "model"), ("poisson", "quasi"), ("binomial", "quasi")])
def test_simulated_count_forecasts_match_first_order_variances(family, cov_type):
    """Mean and variance of the simulated counterfactual counts against the closed form
    Var = phi V(m) + (dm/deta)^2 x'Vx (sampling, inflated to the dispersion, plus the
    delta-method variance of the expected count)."""
    y, size = count_series(seed=3, family=family, extra_sd=0.05)
    kwargs = {"trials": size} if family == "binomial" else {"exposure": size}
    res = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, family=family, **kwargs, **CALENDAR).fit(
        cov_type=cov_type, n_draws=20000, seed=11
    )
    X = res.matrix.to_numpy()
    # Proportions with var_weights: statsmodels' scale="X2" is wrong for a two-column endog.
    if family == "binomial":
        glm = sm.GLM(y[:72] / size[:72], X[:72], family=sm.families.Binomial(), var_weights=size[:72])
    else:
        glm = sm.GLM(y[:72], X[:72], family=sm.families.Poisson(), exposure=size[:72])
    glm = glm.fit(scale="X2" if cov_type == "quasi" else None)
    np.testing.assert_allclose(res.params.to_numpy(), glm.params, rtol=1e-7)
    np.testing.assert_allclose(res.cov.to_numpy(), glm.cov_params(), rtol=1e-6)
    eta = X @ glm.params
    p = expit(eta) if family == "binomial" else np.exp(eta)
    mean = size * p
    np.testing.assert_allclose(res.predictions()["forecast"], mean, rtol=1e-8)
    dispersion = max(1.0, glm.pearson_chi2 / glm.df_resid) if cov_type == "quasi" else 1.0
    assert res.noise.dispersion == pytest.approx(dispersion, rel=1e-8)
    sampling = mean * (1 - p) if family == "binomial" else mean
    deriv = mean * (1 - p) if family == "binomial" else mean
    var = dispersion * sampling + deriv**2 * np.einsum("ij,jk,ik->i", X, glm.cov_params(), X)
    draws = res._draws
    np.testing.assert_allclose(draws.mean(axis=0), mean, rtol=0.01)
    np.testing.assert_allclose(draws.var(axis=0, ddof=1), var, rtol=0.1)
    # The window sum carries the covariance of the expected counts across periods.
    G = deriv[72:, None] * X[72:]
    g = G.sum(axis=0)
    var_sum = dispersion * sampling[72:].sum() + g @ glm.cov_params() @ g
    assert res.cumulative_effect().se == pytest.approx(np.sqrt(var_sum), rel=0.05)


def test_count_effect_intervals_are_quantiles_of_the_simulated_counterfactual():
    y, size = count_series(seed=5)
    res = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, family="poisson", exposure=size, **CALENDAR).fit(
        n_draws=2000, seed=1
    )
    window = slice("2021-06", "2022-05")
    rows = np.arange(72 + 5, 72 + 17)
    draws = res._draws[:, rows].sum(axis=1)
    lo, hi = np.quantile(draws, [0.05, 0.95])
    cum = res.cumulative_effect(window, level=0.9)
    observed = y[rows].sum()
    assert (cum.ci_low, cum.ci_high) == pytest.approx((observed - hi, observed - lo), rel=1e-12)
    p = 2 * min(1 + np.sum(draws >= observed), 1 + np.sum(draws <= observed)) / (len(draws) + 1)
    assert cum.p_value == pytest.approx(min(1.0, p))
    eff = res.effect(level=0.9)
    q = np.quantile(res._draws[:, 72:], [0.05, 0.95], axis=0)
    np.testing.assert_allclose(eff["effect_low"], y[72:] - q[1])
    np.testing.assert_allclose(eff["effect_high"], y[72:] - q[0])
    # The same seed gives the same draws.
    again = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, family="poisson", exposure=size, **CALENDAR).fit(
        n_draws=2000, seed=1
    )
    assert again.cumulative_effect(window) == res.cumulative_effect(window)


def test_negative_binomial_theta_is_the_maximum_likelihood_fixed_point():
    y, size = count_series(seed=6, extra_sd=0.15)
    res = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, family="negbin", exposure=size, **CALENDAR).fit()
    theta = res.family.theta
    mean = res.predictions()["forecast"].to_numpy()[:72]
    assert theta_ml(y[:72], mean)[0] == pytest.approx(theta, rel=1e-6)
    ref = sm.GLM(
        y[:72], res.matrix.to_numpy()[:72], family=sm.families.NegativeBinomial(alpha=1 / theta), exposure=size[:72]
    ).fit()
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-6, atol=1e-7)
    assert res.cov_details["theta"] == theta


@pytest.mark.slow
def test_cumulative_prediction_interval_covers_zero_95_percent_without_effect():
    """Known truth: no effect, iid noise. The realised cumulative effect is zero-mean noise
    and the prediction interval should contain 0 in 95% of series; the confidence interval
    (coefficients only) is too narrow for the realised effect: it covers 0 with probability
    ``2 F_t(crit * se_conf / se_pred) - 1``, the ratio of the two standard errors being the
    same in every replicate (the residual variance cancels)."""
    reps, hits_pred, hits_conf = 600, 0, 0
    for seed in range(reps):
        y = gaussian_series(seed=1000 + seed)
        res = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, **CALENDAR).fit()
        pred = res.cumulative_effect()
        conf = res.cumulative_effect(interval="confidence")
        hits_pred += pred.ci_low <= 0 <= pred.ci_high
        hits_conf += conf.ci_low <= 0 <= conf.ci_high
    assert abs(hits_pred / reps - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / reps)
    ratio = conf.se / pred.se
    expected = 2 * stats.t.cdf(stats.t.ppf(0.975, res.df_resid) * ratio, res.df_resid) - 1
    assert expected < 0.93
    assert abs(hits_conf / reps - expected) < 3.5 * np.sqrt(expected * (1 - expected) / reps)


@pytest.mark.slow
def test_poisson_cumulative_interval_coverage_without_effect():
    reps, hits = 300, 0
    for seed in range(reps):
        y, size = count_series(seed=2000 + seed, n=400)
        res = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, family="poisson", exposure=size, **CALENDAR).fit(
            n_draws=1000, seed=seed
        )
        cum = res.cumulative_effect()
        hits += cum.ci_low <= 0 <= cum.ci_high
    assert abs(hits / reps - 0.95) < 3.5 * np.sqrt(0.95 * 0.05 / reps)


def test_design_drops_intervention_terms_and_post_period_shocks():
    y = gaussian_series(seed=7)
    its = ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, spring_festival=False, shocks=("2016-03", "2021-05"))
    data = its.design_data()
    assert "level_change" not in data.X and "slope_change" not in data.X
    assert "shock_2016-03" in data.X and "shock_2021-05" not in data.X
    assert data.n_pre == 72 and data.n_post == 24
    # No calendar terms unless asked; the Chinese calendar adds Spring Festival days.
    assert "spring_festival_days" not in ForecastITS(y, time=MONTHS, interruption=INTERRUPTION).design_data().X
    assert (
        "spring_festival_days"
        in ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, calendar="china").design_data().X
    )


def test_covariates_enter_the_design_and_are_checked():
    y = gaussian_series(seed=8)
    temp = pd.DataFrame({"temp": np.random.default_rng(0).normal(10, 5, len(MONTHS))})
    res = ForecastITS(
        y + 0.5 * temp["temp"].to_numpy(), time=MONTHS, interruption=INTERRUPTION, covariates=temp, **CALENDAR
    ).fit()
    assert res.params["temp"] == pytest.approx(0.5, abs=0.1)
    with pytest.raises(ModelError, match="rows"):
        ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, covariates=temp.iloc[:10], **CALENDAR)
    bad = temp.copy()
    bad.iloc[3, 0] = np.nan
    with pytest.raises(ModelError, match="missing"):
        ForecastITS(y, time=MONTHS, interruption=INTERRUPTION, covariates=bad, **CALENDAR)
    with pytest.raises(ModelError, match="clash"):
        ForecastITS(
            y, time=MONTHS, interruption=INTERRUPTION, covariates=temp.rename(columns={"temp": "time"}), **CALENDAR
        ).design_data()


def test_unforecastable_designs_are_refused():
    months = pd.period_range("2020-03", "2021-12", freq="M")
    y = np.linspace(1, 2, len(months))
    with pytest.raises(DesignError, match="never occur"):  # January first appears after the interruption
        ForecastITS(y, time=months, interruption="2020-12", **CALENDAR).design_data()
    with pytest.raises(DesignError, match="at least"):
        ForecastITS(y, time=months, interruption="2020-04", seasonality="none", **CALENDAR).design_data()
    with pytest.raises(DesignError, match="nothing to forecast"):
        ForecastITS(y, time=months, interruption="2022-06", seasonality="none", **CALENDAR).design_data()


def test_windows_and_arguments_are_checked():
    res = ForecastITS(gaussian_series(seed=9), time=MONTHS, interruption=INTERRUPTION, **CALENDAR).fit()
    with pytest.raises(ValueError, match="after the interruption"):
        res.cumulative_effect(["2020-06"])
    with pytest.raises(ValueError, match="not a period"):
        res.cumulative_effect(["2023-06"])
    with pytest.raises(ValueError, match="no post-interruption"):
        res.cumulative_effect(slice("2019-01", "2020-06"))
    with pytest.raises(ValueError, match="interval"):
        res.cumulative_effect(interval="credible")
    with pytest.raises(ValueError, match="level"):
        res.effect(level=95)


def test_results_are_read_only_and_tidy():
    res = ForecastITS(gaussian_series(seed=10, effect=3.0), time=MONTHS, interruption=INTERRUPTION, **CALENDAR).fit()
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.level = 0.9
    with pytest.raises(ValueError):
        res.outcome[0] = 0.0
    with pytest.raises(TypeError):
        res.cov_details["phi"] = 0.5
    frame = res.to_frame()
    assert list(frame["measure"]) == ["effect_cumulative", "effect_average", "effect_relative"] * 2
    assert list(frame["interval"]) == ["prediction"] * 3 + ["confidence"] * 3
    assert (frame["n_periods"] == 24).all() and frame["start"].iloc[0] == "2021-01"
    pred = res.predictions()
    assert list(pred["phase"].unique()) == ["pre", "post"] and pred["effect"].iloc[:72].isna().all()
    avg = res.average_effect()
    assert avg.ci_low < 3.0 < avg.ci_high


def test_integer_time_works():
    years = np.arange(1970, 2001)
    y = 100 - 1.2 * (years - 1970) + np.random.default_rng(1).normal(0, 2, years.size)
    res = ForecastITS(y, time=years, interruption=1989).fit()
    pred = res.predictions()
    assert "time" in pred and pred["time"].iloc[-1] == 2000
    assert res.cumulative_effect(slice(1989, 1993)).estimate == pytest.approx(
        res.effect()["effect"].iloc[:5].sum(), rel=1e-12
    )
