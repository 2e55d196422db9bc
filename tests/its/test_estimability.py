"""Boundaries of estimation: separation, exact fits and AR coefficients near 1.

References: the existence conditions of the maximum-likelihood estimate (Albert &
Anderson 1984 for the logit; Haberman 1974 for log-linear counts), checked here against
the fit itself (the coefficient runs off and its SE explodes without the check) and
against statsmodels' own GLM, which warns of separation on the same data.
"""

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.estimability import ModelError, check_mle_exists
from analysis.its.families import get_family

T = np.arange(1, 61)
DESIGN = ITSDesign(interruption=31)


def _binomial_with_empty_post(seed=1):
    rng = np.random.default_rng(seed)
    return np.r_[rng.binomial(100, 0.05, 30), np.zeros(30)].astype(float), np.full(60, 100.0)


def test_a_phase_without_events_is_refused_with_the_periods_and_terms():
    y, n = _binomial_with_empty_post()
    with pytest.raises(ModelError, match=r"separation\): 30 periods from 31 to 60 .*'level_change', 'slope_change'"):
        SegmentedRegression(y, time=T, design=DESIGN, family="binomial", trials=n).fit()


def test_statsmodels_without_the_check_runs_off_on_the_same_data():
    """The reference: statsmodels' GLM on the same data gives a level change that is only
    a point on the way to minus infinity (|estimate| > 15, SE > 1000)."""
    y, n = _binomial_with_empty_post()
    X = DESIGN.matrix(T).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = sm.GLM(np.c_[y, n - y], X, family=sm.families.Binomial()).fit()
    assert ref.params[2] < -15 and ref.bse[2] > 1000


@pytest.mark.parametrize("family", ["poisson", "negbin", "quasipoisson"])
def test_counts_without_events_after_the_interruption_are_refused(family):
    rng = np.random.default_rng(4)
    y = np.r_[rng.poisson(3, 30), np.zeros(30)].astype(float)
    with pytest.raises(ModelError, match="does not exist"):
        SegmentedRegression(y, time=T, design=DESIGN, family=family, exposure=np.ones(60)).fit()


def test_a_shock_month_without_events_is_absorbed_and_the_effects_stay_finite():
    """A zero in a month with its own shock term: that month is fitted exactly (its
    coefficient runs off, as in R's glm); the level and slope changes equal those of the
    fit without that month."""
    rng = np.random.default_rng(1)
    y = rng.poisson(5, 60).astype(float)
    y[9] = 0
    design = ITSDesign(interruption=31, shocks=(10,))
    res = SegmentedRegression(y, time=T, design=design, family="poisson", exposure=np.ones(60)).fit(cov_type="model")
    keep = T != 10
    without = SegmentedRegression(y[keep], time=T[keep], design=DESIGN, family="poisson", exposure=np.ones(59)).fit(
        cov_type="model"
    )
    for term in ("level_change", "slope_change"):
        assert res.params[term] == pytest.approx(without.params[term], rel=1e-6)
        assert res.std_errors[term] == pytest.approx(without.std_errors[term], rel=1e-6)


def test_sparse_counts_that_are_not_separated_are_fitted():
    rng = np.random.default_rng(7)
    y = rng.poisson(0.6, 60).astype(float)
    y[[5, 40]] = 2  # events in both phases
    check_mle_exists(DESIGN.matrix(T), y, None, get_family("poisson"))
    res = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=np.ones(60)).fit()
    assert np.all(np.isfinite(res.std_errors)) and abs(res.params["level_change"]) < 10


@pytest.mark.parametrize("outcome", [np.full(60, 5.0), 1 + 0.1 * T, np.where(T < 31, 2.0, 3.0)])
@pytest.mark.parametrize("errors", [None, "prais-winsten", "reml-ar", "arima"])
def test_a_series_the_design_reproduces_exactly_is_refused(outcome, errors):
    """Constant, exactly linear, or an exact step: zero residual variation would give zero
    standard errors; every estimator refuses it with the same message."""
    with pytest.raises(ModelError, match="reproduces every value exactly"):
        SegmentedRegression(outcome, time=T, design=DESIGN, family="gaussian").fit(errors=errors)


def test_constant_counts_are_refused():
    with pytest.raises(ModelError, match="reproduces every value exactly"):
        SegmentedRegression(
            np.full(60, 50.0), time=T, design=DESIGN, family="poisson", exposure=np.full(60, 1000.0)
        ).fit()


@pytest.mark.parametrize("errors", ["prais-winsten", "reml-ar", "arima"])
def test_a_random_walk_keeps_the_ar_coefficient_inside_the_unit_circle(errors):
    """Near a unit root the Gaussian error models stay stationary (|phi| < 1) and give
    finite, positive standard errors."""
    rng = np.random.default_rng(2)
    y = np.cumsum(rng.normal(size=60)) + 50
    res = SegmentedRegression(y, time=T, design=DESIGN, family="gaussian").fit(errors=errors)
    phi = res.cov_details.get("phi", res.cov_details.get("ar1"))
    assert -1 < phi < 1 and np.all(res.std_errors > 0) and np.all(np.isfinite(res.std_errors))


def test_latent_ar1_puts_phi_on_its_documented_bound_near_a_unit_root():
    """Latent AR(1) on a log-scale random walk: the lag-one moment cannot be matched below
    0.95, so phi sits on the bound (LatentAR1.phi_bounds) and the fit still gives finite SEs."""
    rng = np.random.default_rng(2)
    rng.normal(size=60)
    lam = np.exp(np.log(200) + np.cumsum(rng.normal(0, 0.05, 60)))
    y = rng.poisson(lam).astype(float)
    res = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=np.ones(60)).fit()
    assert res.cov_details["phi"] == 0.95 and np.all(np.isfinite(res.std_errors))
