"""The forecast design against CausalPy's published interrupted time-series example.

Data: ``causalpy_its_synthetic.csv`` (CausalPy ``causalpy/data/its.csv``), monthly
2010-01 .. 2019-12, intervention 2017-01; model ``y ~ 1 + t + C(month)`` fitted to the
pre-period and forecast over the 36 post-period months.

Published numbers used (nothing else is asserted against CausalPy):

* OLS, CausalPy's scikit-learn example (docs notebook "Interrupted Time Series (ITS) with
  scikit-learn models", ``its_skl``; rendered at causalpy.readthedocs.io, the maketables
  ``ETable`` of ``result``, 3 decimals): month effects 2.852, 1.162, 7.148, 15.036,
  24.790, 18.214, 33.483, 16.247, 9.194, 6.279, 0.578 (February .. December against
  January) and trend ``t`` 0.210. Both are least squares, so the comparison is exact up
  to the published rounding (half a unit in the third decimal).
* Bayesian, CausalPy's PyMC example (``docs/source/notebooks/its_pymc.ipynb`` at commit
  020f67985c74691845c8b4ec60025ef5867822cb of pymc-labs/CausalPy; 4 chains x 1000
  draws, seed 42): posterior of the average post-period causal impact mean 1.843, sd
  0.671, 94% HDI [0.644, 3.173], MCSE of the mean 0.012; of the cumulative impact at the
  last month mean 66.336, sd 24.139, 94% HDI [23.186, 114.221], MCSE 0.416; ``sigma`` 2
  [1.7, 2.3]; ``t`` 0.21 [0.19, 0.23]; intercept (at t = 0, 2010-01) 23 [21, 24]. Its
  impact is ``y`` minus posterior-predictive draws, so it includes observation noise: the
  frequentist analogue is the *prediction* interval.

Why the Bayesian tolerances are what they are: CausalPy's priors (``beta ~ N(0, 50)``,
``sigma ~ HalfNormal(1)``) are weak against 84 observations, so the posterior mean of a
linear function of the coefficients is the OLS estimate up to a negligible shrinkage plus
Monte Carlo error; we allow 3 published MCSEs. The posterior sd of the realised impact is
the OLS prediction standard error times about ``sqrt(df / (df - 2)) = 1.014`` (the t
distribution of the posterior predictive) up to Monte Carlo error (MCSE of the sd 0.01 on
0.671), so 5% relative. HDI limits are estimated from 4000 draws and an HDI is not the
equal-tailed interval, so their limits are held to 0.2 posterior sd.
"""

import numpy as np
import pandas as pd
import pytest

from analysis.its.forecast import ForecastITS

PUBLISHED_OLS_MONTHS = [2.852, 1.162, 7.148, 15.036, 24.790, 18.214, 33.483, 16.247, 9.194, 6.279, 0.578]
PUBLISHED_OLS_TREND = 0.210


@pytest.fixture(scope="module")
def causalpy_its(validation_dir):
    data = pd.read_csv(validation_dir / "causalpy_its_synthetic.csv")
    its = ForecastITS(
        data["y"], time=data["date"], interruption="2017-01", seasonality="month", spring_festival=False, shocks=()
    )
    return data, its.fit(cov_type="model")


def test_pre_period_ols_equals_causalpy_sklearn_coefficients(causalpy_its):
    _, res = causalpy_its
    months = res.params[[f"month_{m:02d}" for m in range(2, 13)]].to_numpy()
    np.testing.assert_allclose(months, PUBLISHED_OLS_MONTHS, atol=0.0005 + 1e-9)
    assert res.params["time"] == pytest.approx(PUBLISHED_OLS_TREND, abs=0.0005 + 1e-9)
    assert res.n_pre == 84 and res.n_post == 36


def test_coefficients_agree_with_causalpy_pymc_posterior(causalpy_its):
    _, res = causalpy_its
    # Our intercept is the pre-period trend at the interruption (2017-01, t = 84).
    intercept_at_t0 = res.params["const"] - 84 * res.params["time"]
    assert round(intercept_at_t0) == 23 and 21 <= intercept_at_t0 <= 24
    assert round(res.params["time"], 2) == 0.21
    sigma = np.sqrt(res.noise.variance)
    assert round(sigma) == 2 and 1.7 <= sigma <= 2.3
    published = {"month_05": (15, 13, 17), "month_06": (25, 23, 27), "month_08": (33, 31, 35)}
    for name, (_, low, high) in published.items():
        assert low <= res.params[name] <= high


@pytest.mark.parametrize(
    "measure, mean, sd, hdi, mcse",
    [("average", 1.843, 0.671, (0.644, 3.173), 0.012), ("cumulative", 66.336, 24.139, (23.186, 114.221), 0.416)],
)
def test_post_period_impact_agrees_with_causalpy_pymc(causalpy_its, measure, mean, sd, hdi, mcse):
    _, res = causalpy_its
    method = res.average_effect if measure == "average" else res.cumulative_effect
    effect = method(level=0.94)  # CausalPy reports 94% HDIs
    assert effect.estimate == pytest.approx(mean, abs=3 * mcse)
    assert effect.se == pytest.approx(sd, rel=0.05)
    assert effect.ci_low == pytest.approx(hdi[0], abs=0.2 * sd)
    assert effect.ci_high == pytest.approx(hdi[1], abs=0.2 * sd)
    # The coefficient-only interval is too narrow for CausalPy's posterior-predictive impact.
    assert method(level=0.94, interval="confidence").se < 0.9 * sd


def test_covid_excess_deaths_example(validation_dir):
    """CausalPy's COVID example data: deaths in England and Wales, forecast from 2020-01 with
    trend, month and mean temperature fitted on 2006-01 .. 2019-12. A sanity check: April 2020
    (the first wave) shows a large excess, the largest of 2020, whatever the error model."""
    data = pd.read_csv(validation_dir / "causalpy_covid_deaths_england_wales.csv")
    common = dict(
        time=data["date"], interruption="2020-01", spring_festival=False, shocks=(), covariates=data[["temp"]]
    )
    fits = {
        "gaussian": ForecastITS(data["deaths"], **common).fit(),
        "quasipoisson": ForecastITS(data["deaths"], family="quasipoisson", exposure=np.ones(len(data)), **common).fit(),
    }
    for name, res in fits.items():
        effect = res.effect().set_index("month")
        april = effect.loc["2020-04"]
        assert april["effect"] > 30_000, name  # about 44,000 excess deaths against about 44,500 expected
        assert april["effect_low"] > 20_000 and april["p_value"] < 0.001, name
        assert april["relative"] > 0.7, name
        in_2020 = effect.loc[effect.index.str.startswith("2020"), "effect"]
        assert in_2020.idxmax() == "2020-04", name
        assert res.params["temp"] < 0  # fewer deaths in warmer months, given the month effects
        first_wave = res.cumulative_effect(slice("2020-03", "2020-06"))
        assert first_wave.ci_low > 0, name
