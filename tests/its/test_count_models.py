"""Negative binomial and quasi-likelihood families, and the lag-1 residual adjustment.

References: statsmodels' discrete ``NegativeBinomial`` (joint maximum likelihood of the
coefficients and the NB2 shape, a different algorithm from the alternating fit of
``MASS::glm.nb`` that the package follows, with the same optimum) and its GLM families
(deviance residuals, covariance at a fixed shape); simulations with known truth.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.families import (
    ThetaWarning,
    get_family,
    negative_binomial,
    negbin_loglik,
    overdispersion_score,
    poisson_loglik,
    theta_ml,
)
from analysis.its.model import ModelError

T = np.arange(1, 121)
DESIGN = ITSDesign(interruption=61)


def negbin_series(seed=0, theta=20.0, n=120, interruption=61, slope=0.003):
    """NB2 counts with exposure around 7500 and a rate of about 1%: level change -0.2."""
    rng = np.random.default_rng(seed)
    t = np.arange(1, n + 1)
    X = ITSDesign(interruption=interruption).matrix(t)
    exposure = rng.integers(5000, 10000, n).astype(float)
    beta = np.array([np.log(0.01), 0.002, -0.2, slope])
    mu = exposure * np.exp(X.to_numpy() @ beta)
    return t, rng.negative_binomial(theta, theta / (theta + mu)).astype(float), exposure, beta


def poisson_series(seed=0):
    rng = np.random.default_rng(seed)
    X = DESIGN.matrix(T)
    exposure = rng.integers(5000, 10000, len(T)).astype(float)
    mu = exposure * np.exp(X.to_numpy() @ np.array([np.log(0.01), 0.002, -0.2, 0.003]))
    return rng.poisson(mu).astype(float), exposure


# -- negative binomial -------------------------------------------------------------------


def test_negbin_recovers_theta_and_beta_in_a_long_simulated_series():
    n, theta = 3000, 15.0
    t, y, exposure, beta = negbin_series(seed=11, theta=theta, n=n, interruption=1501, slope=0.0001)
    design = ITSDesign(interruption=1501)
    res = SegmentedRegression(y, time=t, design=design, family="negbin", exposure=exposure).fit(cov_type="model")
    z = (res.params.to_numpy() - beta) / res.std_errors.to_numpy()  # beta is on the design's scale
    assert np.all(np.abs(z) < 4), z
    details = res.cov_details
    assert abs(details["theta"] - theta) < 4 * details["theta_se"]
    assert abs(details["theta"] / theta - 1) < 0.15
    assert res.family.name == "negbin" and res.family.theta == details["theta"]
    assert res.converged and np.isinf(res.df_resid)


def test_negbin_matches_joint_nb2_maximum_likelihood_of_statsmodels():
    t, y, exposure, _ = negbin_series(seed=3)
    res = SegmentedRegression(y, time=t, design=DESIGN, family="negbin", exposure=exposure).fit(cov_type="model")
    X = DESIGN.matrix(t).to_numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = sm.NegativeBinomial(y, X, exposure=exposure, loglike_method="nb2")
        start = model.fit(disp=0, method="bfgs", maxiter=1000).params
        ref = model.fit(start_params=start, disp=0, method="newton", maxiter=100)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params[:-1], rtol=1e-6, atol=1e-9)
    assert res.cov_details["theta"] == pytest.approx(1 / ref.params[-1], rel=1e-5)


def test_negbin_model_covariance_is_the_glm_covariance_at_the_fitted_theta():
    """As ``vcov(glm.nb)``: ``(X'WX)^-1`` with ``W = mu / (1 + mu/theta)``, dispersion 1."""
    t, y, exposure, _ = negbin_series(seed=4)
    res = SegmentedRegression(y, time=t, design=DESIGN, family="negbin", exposure=exposure).fit(cov_type="model")
    theta = res.cov_details["theta"]
    X = DESIGN.matrix(t).to_numpy()
    mu = exposure * np.exp(X @ res.params.to_numpy())
    w = mu / (1 + mu / theta)
    np.testing.assert_allclose(res.cov.to_numpy(), np.linalg.inv(X.T @ (X * w[:, None])), rtol=1e-10)
    ref = sm.GLM(y, X, family=sm.families.NegativeBinomial(alpha=1 / theta), exposure=exposure).fit(tol=1e-12)
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.cov.to_numpy(), ref.cov_params(), rtol=1e-5)
    # Pearson dispersion with the NB variance mu + mu^2/theta.
    pearson = np.sum((y - mu) ** 2 / (mu + mu**2 / theta)) / (len(y) - X.shape[1])
    assert res.pearson_dispersion == pytest.approx(pearson, rel=1e-10)


def test_negbin_theta_ml_matches_a_direct_maximisation_of_the_profile_likelihood():
    from scipy import optimize
    from scipy.special import gammaln

    rng = np.random.default_rng(5)
    mu = rng.uniform(50, 500, 400)
    y = rng.negative_binomial(8, 8 / (8 + mu)).astype(float)
    theta, se = theta_ml(y, mu)

    def negloglik(log_theta):
        th = np.exp(log_theta)
        return -np.sum(gammaln(th + y) - gammaln(th) + th * np.log(th) + y * np.log(mu) - (th + y) * np.log(th + mu))

    best = np.exp(optimize.minimize_scalar(negloglik, bounds=(-5, 10), method="bounded", options={"xatol": 1e-12}).x)
    assert theta == pytest.approx(best, rel=1e-6)
    assert 0 < se < theta


def test_negbin_with_huge_theta_is_the_poisson_model():
    y, exposure = poisson_series(seed=6)
    poisson = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=exposure).fit(cov_type="model")
    nb = SegmentedRegression(y, time=T, design=DESIGN, family=negative_binomial(theta=1e10), exposure=exposure).fit(
        cov_type="model"
    )
    np.testing.assert_allclose(nb.params.to_numpy(), poisson.params.to_numpy(), rtol=1e-7, atol=1e-10)
    np.testing.assert_allclose(nb.cov.to_numpy(), poisson.cov.to_numpy(), rtol=1e-6)
    assert nb.cov_details["theta"] == 1e10
    eta = np.linspace(-6, -3, 5)
    size = np.full(5, 1000.0)
    family = negative_binomial(theta=1e10)
    np.testing.assert_allclose(family.information(eta, size), get_family("poisson").information(eta, size), rtol=1e-6)
    yy = np.array([0.0, 1, 3, 10, 50])
    mean = get_family("poisson").mean_counts(eta, size)
    np.testing.assert_allclose(
        family.deviance_residuals(yy, mean, size),
        get_family("poisson").deviance_residuals(yy, mean, size),
        rtol=1e-5,
        atol=1e-8,
    )


def test_negbin_without_overdispersion_warns_as_r_and_falls_back_to_poisson():
    """Counts with less than Poisson variation: theta's maximum is at infinity (R's
    theta.ml runs into its iteration limit, or past zero, depending on the arithmetic).
    The fit is flagged, warns, and is exactly the Poisson fit on every machine."""
    X = DESIGN.matrix(T).to_numpy()
    exposure = np.full(len(T), 10000.0)
    y = np.round(exposure * np.exp(X @ np.array([np.log(0.01), 0.002, -0.2, 0.003])))
    with pytest.warns(ThetaWarning, match="no overdispersion"):
        res = SegmentedRegression(y, time=T, design=DESIGN, family="negbin", exposure=exposure).fit(cov_type="model")
    poisson = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=exposure).fit(cov_type="model")
    assert not res.converged and res.cov_details["theta"] == np.inf and res.family.name == "poisson"
    np.testing.assert_allclose(res.params.to_numpy(), poisson.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(res.std_errors.to_numpy(), poisson.std_errors.to_numpy(), rtol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 1.0 + 1e-13, 1.0 - 1e-13])
def test_negbin_boundary_decision_does_not_depend_on_the_last_bits(scale):
    """The same underdispersed series with exposures perturbed in the 13th digit (the size
    of a BLAS kernel's rounding differences) gives the same flagged Poisson fallback."""
    X = DESIGN.matrix(T).to_numpy()
    exposure = np.full(len(T), 10000.0) * scale
    y = np.round(10000.0 * np.exp(X @ np.array([np.log(0.01), 0.002, -0.2, 0.003])))
    with pytest.warns(ThetaWarning, match="no overdispersion"):
        res = SegmentedRegression(y, time=T, design=DESIGN, family="negbin", exposure=exposure).fit(cov_type="model")
    assert res.cov_details["theta"] == np.inf and not res.converged


def test_overdispersion_score_is_the_slope_of_the_nb_likelihood_at_the_poisson_limit():
    """Closed form: loglik_NB(theta) - loglik_Poisson = score / (2 theta) + O(theta^-2)."""
    rng = np.random.default_rng(3)
    mean = rng.uniform(2, 40, 60)
    y = rng.negative_binomial(5.0, 5.0 / (5.0 + mean)).astype(float)
    score = overdispersion_score(y, mean)
    for theta in (1e5, 1e6):
        slope = (negbin_loglik(y, mean, theta) - poisson_loglik(y, mean)) * 2 * theta
        assert slope == pytest.approx(score, rel=1e-3)
    assert score > 0  # overdispersed draws: the ordinary path estimates a finite theta
    theta_hat, _ = theta_ml(y, mean)
    assert 1 < theta_hat < 50


def test_negbin_works_with_the_other_covariance_estimators():
    t, y, exposure, _ = negbin_series(seed=7)
    model = SegmentedRegression(y, time=t, design=DESIGN, family="negbin", exposure=exposure)
    model_based = model.fit(cov_type="model")
    for cov_type in ("latent-ar1", "newey-west", "quasi"):
        res = model.fit(cov_type=cov_type)
        np.testing.assert_allclose(res.params.to_numpy(), model_based.params.to_numpy(), rtol=1e-12)
        assert np.all(np.isfinite(res.std_errors)) and res.cov_details["theta"] == model_based.cov_details["theta"]
    assert model.fit().cov_type == "latent-ar1"


@pytest.mark.parametrize("family", ["poisson", "binomial", "negbin"])
def test_deviance_residuals_match_statsmodels(family):
    rng = np.random.default_rng(8)
    size = rng.integers(20, 200, 50).astype(float)
    p = rng.uniform(0.05, 0.6, 50)
    y = rng.binomial(size.astype(int), p).astype(float)
    y[:3] = [0, size[3 - 2], 0]  # zeros and a full count
    mean = size * p
    fam = negative_binomial(theta=7.5) if family == "negbin" else get_family(family)
    ours = fam.deviance_residuals(y, mean, size)
    if family == "binomial":
        ref = sm.families.Binomial().resid_dev(y / size, p, var_weights=size)
    else:
        ref = fam.statsmodels_family().resid_dev(y, mean)
    np.testing.assert_allclose(ours, ref, rtol=1e-9, atol=1e-12)


# -- quasi families ----------------------------------------------------------------------


def test_quasipoisson_is_poisson_with_the_pearson_scaled_covariance():
    y, exposure = poisson_series(seed=9)
    y = np.round(y * np.random.default_rng(9).uniform(0.8, 1.2, len(y)))  # overdispersed
    quasi = SegmentedRegression(y, time=T, design=DESIGN, family="quasipoisson", exposure=exposure).fit()
    poisson = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=exposure).fit(cov_type="quasi")
    np.testing.assert_allclose(quasi.params.to_numpy(), poisson.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(quasi.cov.to_numpy(), poisson.cov.to_numpy(), rtol=1e-12)
    assert quasi.df_resid == len(T) - 4  # t intervals with n - p df, as R's summary
    assert quasi.cov_details["scale"] == pytest.approx(quasi.pearson_dispersion, rel=1e-12)
    assert quasi.family.label == "quasipoisson" and quasi.family.name == "poisson"
    X = DESIGN.matrix(T).to_numpy()
    ref = sm.GLM(y, X, family=sm.families.Poisson(), exposure=exposure).fit(scale="X2")
    np.testing.assert_allclose(quasi.cov.to_numpy(), ref.cov_params(), rtol=1e-6)
    # An explicit covariance still wins.
    model_based = SegmentedRegression(y, time=T, design=DESIGN, family="quasipoisson", exposure=exposure).fit(
        cov_type="model"
    )
    assert np.isinf(model_based.df_resid)


def test_quasibinomial_is_binomial_with_the_pearson_scaled_covariance():
    rng = np.random.default_rng(10)
    trials = rng.integers(300, 600, len(T)).astype(float)
    p = 1 / (1 + np.exp(-(-1 + 0.004 * (T - 61) - 0.2 * (T >= 61) + rng.normal(0, 0.1, len(T)))))
    y = rng.binomial(trials.astype(int), p).astype(float)
    quasi = SegmentedRegression(y, time=T, design=DESIGN, family="quasibinomial", trials=trials).fit()
    binomial = SegmentedRegression(y, time=T, design=DESIGN, family="binomial", trials=trials).fit(cov_type="quasi")
    np.testing.assert_allclose(quasi.params.to_numpy(), binomial.params.to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(quasi.cov.to_numpy(), binomial.cov.to_numpy(), rtol=1e-12)
    assert quasi.df_resid == len(T) - 4 and quasi.cov_details["scale"] > 1


# -- lag-1 residual adjustment -----------------------------------------------------------


def test_lagged_residual_is_the_previous_deviance_residual_and_the_refit_is_a_glm_on_it():
    y, exposure = poisson_series(seed=12)
    model = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=exposure)
    res = model.fit(cov_type="model", lagged_residual=True)
    X = DESIGN.matrix(T)
    first = sm.GLM(y, X.to_numpy(), family=sm.families.Poisson(), exposure=exposure).fit()
    lagged = first.resid_deviance[:-1]
    assert list(res.params.index)[-1] == "lagged_residual"
    assert not res.fit_mask[0] and res.fit_mask[1:].all()
    assert res.n_pre == 59 and res.n_post == 60
    ref = sm.GLM(
        y[1:], np.column_stack([X.to_numpy()[1:], lagged]), family=sm.families.Poisson(), exposure=exposure[1:]
    ).fit()
    np.testing.assert_allclose(res.params.to_numpy(), ref.params, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(res.cov.to_numpy(), ref.cov_params(), rtol=1e-5)
    assert len(res.residuals) == len(T) - 1


def test_lagged_residual_crosses_an_excluded_period_and_stays_in_the_counterfactual():
    y, exposure = poisson_series(seed=13)
    design = ITSDesign(interruption=61, exclude=(62,))
    model = SegmentedRegression(y, time=T, design=design, family="poisson", exposure=exposure)
    data = model.design_data()
    residuals = np.arange(len(data.y), dtype=float)
    lagged = model.add_lagged_residual(data, residuals)
    column = lagged.X["lagged_residual"]
    # Row 63 follows 61 among the fitted rows: it gets 61's residual (as dplyr::lag in
    # Bryant et al.); row 1 has no lag and is dropped.
    assert column.loc[63] == residuals[list(data.time).index(61)]
    assert column.loc[2] == residuals[0] and 1 not in column.index
    np.testing.assert_array_equal(column.to_numpy(), residuals[:-1])
    assert not lagged.fit_mask[0] and not lagged.fit_mask[61] and lagged.fit_mask.sum() == len(T) - 2
    # Not an intervention term: the counterfactual keeps it.
    assert "lagged_residual" not in design.intervention_names(lagged.X)
    pd.testing.assert_series_equal(design.counterfactual(lagged.X)["lagged_residual"], column)
    res = model.fit(cov_type="model", lagged_residual=True)
    pred = res.predictions()
    pre = pred["phase"] == "pre"
    np.testing.assert_allclose(pred.loc[pre, "fitted"], pred.loc[pre, "counterfactual"])
    # Effects do not depend on the lagged-residual coefficient (it is 0 in both scenarios).
    _, relative = res.effect_at(70)
    k = 70 - 61
    assert relative.estimate == pytest.approx(np.expm1(res.params["level_change"] + k * res.params["slope_change"]))


def test_lagged_residual_is_taken_within_each_stacked_series():
    y, exposure = poisson_series(seed=14)
    y2, exposure2 = poisson_series(seed=15)
    time = np.r_[T, T]
    group = np.r_[np.ones(len(T)), np.zeros(len(T))]
    model = SegmentedRegression(
        np.r_[y, y2], time=time, design=DESIGN, family="poisson", exposure=np.r_[exposure, exposure2], group=group
    )
    data = model.design_data()
    lagged = model.add_lagged_residual(data, np.arange(2 * len(T), dtype=float))
    assert lagged.X.shape[0] == 2 * len(T) - 2
    assert not lagged.fit_mask[0] and not lagged.fit_mask[len(T)]
    assert lagged.X["lagged_residual"].iloc[len(T) - 1] == len(T)  # second series' row 2 lags its row 1
    assert lagged.n_pre == 59 and lagged.n_post == 60  # treated series only


def test_negbin_lagged_residual_is_the_first_fits_deviance_residual():
    t, y, exposure, _ = negbin_series(seed=16)
    model = SegmentedRegression(y, time=t, design=DESIGN, family="negbin", exposure=exposure)
    first = model.fit(cov_type="model")
    res = model.fit(cov_type="model", lagged_residual=True)
    assert "lagged_residual" in res.params.index and res.cov_details["theta"] != first.cov_details["theta"]
    X = DESIGN.matrix(t).to_numpy()
    mean = exposure * np.exp(X @ first.params.to_numpy())
    dev = first.family.deviance_residuals(y, mean, exposure)
    data = model.add_lagged_residual(model.design_data(), dev)
    np.testing.assert_allclose(data.X["lagged_residual"].to_numpy(), dev[:-1])


# -- bad inputs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"family": "negbin"}, "negative binomial model needs an exposure"),
        ({"family": "negbin", "trials": np.ones(120)}, "negative binomial model needs an exposure"),
        ({"family": "negbin", "exposure": np.ones(120), "trials": np.ones(120)}, "and no trials"),
        ({"family": "quasipoisson"}, "Poisson model needs an exposure"),
        ({"family": "quasibinomial", "exposure": np.ones(120)}, "needs trials"),
        ({"family": "nbinom"}, "unknown family 'nbinom'"),
    ],
)
def test_count_family_arguments_are_checked(kwargs, message):
    with pytest.raises(ModelError, match=message):
        SegmentedRegression(np.ones(120), time=T, design=DESIGN, **kwargs)


def test_negbin_rejects_non_integer_counts_and_unusable_theta():
    with pytest.raises(ModelError, match="non-negative integers"):
        SegmentedRegression(np.full(120, 1.5), time=T, design=DESIGN, family="negbin", exposure=np.ones(120))
    with pytest.raises(ValueError, match="theta is not known before the fit"):
        get_family("negbin").information(np.zeros(3), np.ones(3))
    with pytest.raises(ValueError, match="finite and positive"):
        negative_binomial(theta=-1)
    with pytest.raises(ValueError, match="has no theta"):
        get_family("poisson").with_theta(3)


def test_lagged_residual_input_is_checked():
    y, exposure = poisson_series(seed=17)
    model = SegmentedRegression(y, time=T, design=DESIGN, family="poisson", exposure=exposure)
    data = model.design_data()
    with pytest.raises(ModelError, match="residuals for 120 fitted rows"):
        model.add_lagged_residual(data, np.zeros(5))
    once = model.add_lagged_residual(data, np.zeros(120))
    with pytest.raises(ModelError, match="already has a lagged_residual"):
        model.add_lagged_residual(once, np.zeros(119))
