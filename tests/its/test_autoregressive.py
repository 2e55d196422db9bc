"""Regression with autocorrelated errors: each estimator against an independent reference.

- Prais-Winsten / Cochrane-Orcutt with a known rho are GLS (statsmodels GLS with the AR(1)
  correlation matrix; statsmodels GLSAR for Cochrane-Orcutt, which drops the first row);
  the iterated estimator is checked for Stata's fixed point and, for Cochrane-Orcutt, against
  a direct minimisation of the conditional sum of squares.
- REML with AR(p) errors is checked against a brute-force maximisation of the REML
  likelihood written here from the error contrasts (the likelihood of K'y, K spanning the
  orthogonal complement of X); its information matrices against numerical derivatives of
  that likelihood; Kenward-Roger's general formulas against their one-contrast reduction.
- Regression with ARIMA errors is checked against a direct maximisation of the exact
  Gaussian likelihood.
- A simulation with known truth checks the coverage of REML intervals for the slope change.
"""

import time as timer
import warnings

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import linalg, optimize, stats
from statsmodels.tsa.arima_process import ArmaProcess

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.autoregressive import (
    AutoregressiveFitError,
    ar_autocorrelation,
    ar_from_pacf,
    contrast_df,
    fit_autoregressive,
    pacf_from_ar,
    prais_winsten,
    reml_ar,
)
from tests.conftest import ar1

DESIGN = ITSDesign(interruption=1990)


def _series(
    seed: int, n_pre: int = 40, n_post: int = 40, phi: float = 0.5, sd: float = 1.0, exclude: tuple = ()
) -> tuple[SegmentedRegression, np.ndarray]:
    rng = np.random.default_rng(seed)
    years = np.arange(1990 - n_pre, 1990 + n_post)
    design = ITSDesign(interruption=1990, exclude=exclude)
    X = design.matrix(years)
    y = (20 + 0.1 * X["time"] - 2 * X["level_change"] + 0.05 * X["slope_change"]).to_numpy()
    y = y + ar1(rng, len(years), phi, sd)
    return SegmentedRegression(y, time=years, design=design), years


def _ar1_corr(rho: float, t: np.ndarray) -> np.ndarray:
    return rho ** np.abs(t[:, None] - t[None, :]).astype(float)


# -- AR(p) building blocks -------------------------------------------------------------
def test_autocorrelation_matches_statsmodels_arma_process():
    for phi in ([0.6], [0.5, 0.3], [0.4, -0.2, 0.25]):
        expected = ArmaProcess(np.r_[1, -np.array(phi)], [1]).acf(30)
        np.testing.assert_allclose(ar_autocorrelation(np.array(phi), 29), expected, atol=1e-12)


def test_pacf_parameterisation_round_trips():
    pacf = np.array([0.7, -0.4, 0.3])
    np.testing.assert_allclose(pacf_from_ar(ar_from_pacf(pacf)), pacf, atol=1e-12)
    # the last PACF of an AR(p) is its last coefficient; the first is its lag-one autocorrelation
    phi = ar_from_pacf(pacf)
    assert phi[-1] == pytest.approx(0.3)
    assert ar_autocorrelation(phi, 1)[1] == pytest.approx(0.7)


# -- Prais-Winsten and Cochrane-Orcutt ------------------------------------------------
def test_prais_winsten_with_known_rho_is_gls_also_across_gaps():
    model, years = _series(1)
    X, y = model.design.matrix(years).to_numpy(), model.outcome
    keep = ~np.isin(years, [1960, 1961, 1962, 1995])  # gaps of 4 and 2 years
    for rows in (np.ones(len(years), bool), keep):
        fit = prais_winsten(y[rows], X[rows], years[rows], rho=0.43)
        gls = sm.GLS(y[rows], X[rows], sigma=_ar1_corr(0.43, years[rows])).fit()
        np.testing.assert_allclose(fit.params, gls.params, rtol=1e-10)
        np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), gls.bse, rtol=1e-10)
        assert fit.df_resid == gls.df_resid


def test_restart_at_gaps_is_gls_with_independent_segments_as_stata():
    """Stata restarts the AR(1) transformation after a gap: each run of consecutive periods
    is then an independent stationary AR(1) series (block-diagonal covariance)."""
    model, years = _series(2)
    X, y = model.design.matrix(years).to_numpy(), model.outcome
    keep = ~np.isin(years, [1970, 1971])
    t, Xk, yk = years[keep], X[keep], y[keep]
    block = np.cumsum(np.r_[0, np.diff(t) > 1])
    sigma = _ar1_corr(0.6, t) * (block[:, None] == block[None, :])
    fit = prais_winsten(yk, Xk, t, rho=0.6, gaps="restart")
    gls = sm.GLS(yk, Xk, sigma=sigma).fit()
    np.testing.assert_allclose(fit.params, gls.params, rtol=1e-10)
    co = prais_winsten(yk, Xk, t, rho=0.6, gaps="restart", corc=True)
    assert co.nobs == keep.sum() - 2  # the first row of each segment is dropped


def test_cochrane_orcutt_with_known_rho_matches_statsmodels_glsar():
    model, years = _series(3)
    X, y = model.design.matrix(years).to_numpy(), model.outcome
    fit = prais_winsten(y, X, years, rho=0.37, corc=True)
    glsar = sm.GLSAR(y, X, rho=0.37).fit()  # whitening drops the first observation
    np.testing.assert_allclose(fit.params, glsar.params, rtol=1e-10)
    np.testing.assert_allclose(np.sqrt(np.diag(fit.cov)), glsar.bse, rtol=1e-10)
    assert fit.df_resid == glsar.df_resid == len(y) - 1 - X.shape[1]


def _regress_rho(e: np.ndarray) -> float:
    return float(np.sum(e[1:] * e[:-1]) / np.sum(e[:-1] ** 2))


def test_twostep_and_iterated_prais_winsten_follow_statas_recipe():
    model, years = _series(4)
    X, y = model.design.matrix(years).to_numpy(), model.outcome
    ols = np.linalg.lstsq(X, y, rcond=None)[0]
    rho1 = _regress_rho(y - X @ ols)
    two = fit_autoregressive(model, method="prais-winsten", twostep=True)
    assert two.cov_details["rho"] == pytest.approx(rho1, rel=1e-12)
    gls = sm.GLS(y, X, sigma=_ar1_corr(rho1, years)).fit()
    np.testing.assert_allclose(two.params.to_numpy(), gls.params, rtol=1e-10)
    assert two.cov_details["iterations"] == 1
    it = fit_autoregressive(model, method="prais-winsten")
    # converged: the rho of the final residuals reproduces the rho used (Stata's tol 1e-6)
    rho = it.cov_details["rho"]
    assert _regress_rho(y - X @ it.params.to_numpy()) == pytest.approx(rho, abs=2e-6)
    assert it.converged and it.cov_details["iterations"] > 2
    assert it.df_resid == len(y) - 4 and it.cov_type == "prais-winsten"


def test_iterated_cochrane_orcutt_minimises_the_conditional_sum_of_squares():
    """The fixed point of iterated Cochrane-Orcutt with the regression rho is the
    conditional least-squares estimate, found here by direct minimisation."""
    model, years = _series(5, phi=0.6)
    X, y = model.design.matrix(years).to_numpy(), model.outcome
    co = fit_autoregressive(model, method="cochrane-orcutt", tol=1e-10)

    def css(theta):
        e = y - X @ theta[:-1]
        return np.sum((e[1:] - theta[-1] * e[:-1]) ** 2)

    start = np.r_[np.linalg.lstsq(X, y, rcond=None)[0], 0.0]
    best = optimize.minimize(css, start, method="BFGS", options={"gtol": 1e-10})
    np.testing.assert_allclose(co.params.to_numpy(), best.x[:-1], rtol=1e-5, atol=1e-6)
    assert co.cov_details["rho"] == pytest.approx(best.x[-1], abs=1e-6)
    assert co.cov_details["nobs"] == len(y) - 1 and co.df_resid == len(y) - 1 - 4


# -- REML with AR(p) errors -------------------------------------------------------------
def _contrast_loglik(y, X, t, phi, sigma2):
    """REML log-likelihood as the likelihood of the error contrasts K'y (up to a constant)."""
    K = linalg.null_space(X.T)
    R = ar_autocorrelation(np.atleast_1d(phi), int(np.ptp(t)))[np.abs(t[:, None] - t[None, :])]
    return stats.multivariate_normal(np.zeros(K.shape[1]), sigma2 * K.T @ R @ K).logpdf(K.T @ y)


def _brute_force_reml(y, X, t, p):
    def negative(z):
        phi = ar_from_pacf(np.tanh(z[:p]))
        return -_contrast_loglik(y, X, t, phi, np.exp(z[p]))

    best = None
    for start in (-0.5, 0.0, 0.5):
        found = optimize.minimize(
            negative,
            np.r_[np.full(p, start), 0.0],
            method="Nelder-Mead",
            options={"xatol": 1e-9, "fatol": 1e-12, "maxiter": 20000, "maxfev": 20000},
        )
        best = found if best is None or found.fun < best.fun else best
    return ar_from_pacf(np.tanh(best.x[:p])), float(np.exp(best.x[p])), -best.fun


@pytest.mark.parametrize("order, exclude", [(1, ()), (2, ()), (1, (1975, 1976, 1995))])
def test_reml_maximises_the_error_contrast_likelihood(order, exclude):
    model, _ = _series(6, n_pre=25, n_post=20, phi=0.55, exclude=exclude)
    data = model.design_data()
    t = data.time.to_numpy()
    X = data.X.to_numpy()
    fit = reml_ar(data.y, X, t, order=order)
    phi, sigma2, best = _brute_force_reml(data.y, X, t, order)
    np.testing.assert_allclose(fit.ar, phi, atol=2e-4)
    assert fit.sigma2 == pytest.approx(sigma2, rel=1e-3)
    assert _contrast_loglik(data.y, X, t, fit.ar, fit.sigma2) >= best - 1e-7
    # the coefficients are GLS at the estimated correlation
    R = ar_autocorrelation(fit.ar, int(np.ptp(t)))[np.abs(t[:, None] - t[None, :])]
    gls = sm.GLS(data.y, X, sigma=R).fit()
    np.testing.assert_allclose(fit.params, gls.params, rtol=1e-8)
    np.testing.assert_allclose(fit.cov, fit.sigma2 * np.linalg.inv(X.T @ np.linalg.solve(R, X)), rtol=1e-8)


def test_reml_information_matrices_match_numerical_derivatives():
    model, _ = _series(7, n_pre=20, n_post=16, phi=0.4)
    data = model.design_data()
    t, X, y = data.time.to_numpy(), data.X.to_numpy(), data.y
    fit = reml_ar(y, X, t, order=2)
    theta = fit.theta

    def loglik(th, yy=y):
        return _contrast_loglik(yy, X, t, th[:-1], th[-1])

    h = 1e-4 * np.maximum(1, np.abs(theta))
    m = len(theta)
    hessian = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            ei, ej = np.eye(m)[i] * h[i], np.eye(m)[j] * h[j]
            hessian[i, j] = (
                loglik(theta + ei + ej) - loglik(theta + ei - ej) - loglik(theta - ei + ej) + loglik(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    np.testing.assert_allclose(fit.observed_information(), -hessian, rtol=2e-4, atol=1e-6)
    # Expected information: the observed information is a quadratic form in y plus a
    # constant, so its expectation under Sigma is exact over y = 0 and the columns of
    # chol(Sigma) (E y'Ay = tr(L'AL)).
    sigma = fit.sigma2 * ar_autocorrelation(fit.ar, int(np.ptp(t)))[np.abs(t[:, None] - t[None, :])]
    L = np.linalg.cholesky(sigma)

    def observed_at(yy):
        return reml_ar.__globals__["REMLARFit"](
            yy, X, t, fit.names, fit.ar, fit.sigma2, fit.params, fit.cov, fit.reml_loglik, True
        ).observed_information()

    constant = observed_at(np.zeros_like(y))
    expectation = constant + sum(observed_at(L[:, k]) - constant for k in range(len(y)))
    np.testing.assert_allclose(fit.expected_information(), expectation, rtol=1e-6, atol=1e-9)


def _kenward_roger_general(fit, L: np.ndarray) -> tuple[float, float]:
    """Kenward and Roger (1997) section 3 for an l x p contrast matrix L: (lambda, m)."""
    pc = fit._pieces()
    Phi, P = pc["Phi"], pc["P"]
    W = np.linalg.inv(fit.expected_information())
    ell = L.shape[0]
    Theta = L.T @ np.linalg.solve(L @ Phi @ L.T, L)
    m = len(P)
    A1 = sum(
        W[i, j] * np.trace(Theta @ Phi @ P[i] @ Phi) * np.trace(Theta @ Phi @ P[j] @ Phi)
        for i in range(m)
        for j in range(m)
    )
    A2 = sum(
        W[i, j] * np.trace(Theta @ Phi @ P[i] @ Phi @ Theta @ Phi @ P[j] @ Phi) for i in range(m) for j in range(m)
    )
    B = (A1 + 6 * A2) / (2 * ell)
    g = ((ell + 1) * A1 - (ell + 4) * A2) / ((ell + 2) * A2)
    c1, c2, c3 = (
        g / (3 * ell + 2 * (1 - g)),
        (ell - g) / (3 * ell + 2 * (1 - g)),
        (ell + 2 - g) / (3 * ell + 2 * (1 - g)),
    )
    E = 1 / (1 - A2 / ell)
    V = 2 / ell * (1 + c1 * B) / ((1 - c2 * B) ** 2 * (1 - c3 * B))
    rho = V / (2 * E**2)
    df = 4 + (ell + 2) / (ell * rho - 1)
    return df / (E * (df - 2)), df


def test_kenward_roger_df_of_one_contrast_is_the_general_formula():
    model, _ = _series(8)
    res = fit_autoregressive(model, method="reml-ar", df_method="kenward-roger")
    from analysis.its.autoregressive import _REML_FITS

    fit = _REML_FITS[res][0]
    for name in ("level_change", "slope_change"):
        L = (res.params.index == name).astype(float)[None, :]
        lam, m = _kenward_roger_general(fit, L)
        assert lam == pytest.approx(1.0, abs=1e-8)  # one contrast: no scaling of F
        assert contrast_df(res, {name: 1.0}) == pytest.approx(m, rel=1e-8)
    # two contrasts jointly: lambda < 1 and a finite denominator df (sanity of the pieces)
    lam, m = _kenward_roger_general(fit, np.eye(4)[2:])
    assert 0 < lam <= 1 and 2 < m < len(model.outcome)
    # without the second-derivative term the adjustment is a Kackar-Harville inflation
    linear = fit.kenward_roger_cov(second_order=False)
    assert np.linalg.eigvalsh(linear - fit.cov).min() > -1e-12
    np.testing.assert_allclose(res.cov.to_numpy(), fit.kenward_roger_cov())


def _phi_of_theta(theta, X, t):
    """(X' Sigma^-1 X)^-1 for theta = (phi_1, .., phi_p, sigma2), from statsmodels' ACF."""
    acf = ArmaProcess(np.r_[1, -theta[:-1]], [1]).acf(int(np.ptp(t)) + 1)
    sigma = theta[-1] * acf[np.abs(t[:, None] - t[None, :])]
    return np.linalg.inv(X.T @ np.linalg.solve(sigma, X))


def test_kenward_roger_pieces_reproduce_numerical_second_derivatives_of_phi():
    """d2 Phi / dtheta_h dtheta_j = Phi (P_h Phi P_j + P_j Phi P_h - Q_hj - Q_jh + R_hj) Phi
    (Kenward and Roger 1997): the P, Q and R matrices of the adjustment against finite
    differences of Phi(theta) computed independently."""
    model, _ = _series(13, n_pre=24, n_post=20, phi=0.5)
    data = model.design_data()
    t, X = data.time.to_numpy(), data.X.to_numpy()
    fit = reml_ar(data.y, X, t, order=2)
    pc = fit._pieces()
    Phi, P, Q, R = pc["Phi"], pc["P"], pc["Q"], pc["R"]
    theta = fit.theta
    h = np.r_[1e-3, 1e-3, 1e-3 * theta[-1]]
    for a in range(3):
        for b in range(3):
            ea, eb = np.eye(3)[a] * h[a], np.eye(3)[b] * h[b]
            numeric = (
                _phi_of_theta(theta + ea + eb, X, t)
                - _phi_of_theta(theta + ea - eb, X, t)
                - _phi_of_theta(theta - ea + eb, X, t)
                + _phi_of_theta(theta - ea - eb, X, t)
            ) / (4 * h[a] * h[b])
            analytic = Phi @ (P[a] @ Phi @ P[b] + P[b] @ Phi @ P[a] - Q[(a, b)] - Q[(b, a)] + R[(a, b)]) @ Phi
            np.testing.assert_allclose(analytic, numeric, rtol=2e-3, atol=1e-6)  # d2/dsigma2^2 is 0
        step = np.eye(3)[a] * h[a]
        first = (_phi_of_theta(theta + step, X, t) - _phi_of_theta(theta - step, X, t)) / (2 * h[a])
        np.testing.assert_allclose(-Phi @ P[a] @ Phi, first, rtol=1e-4, atol=1e-8 * np.abs(first).max())


def test_results_df_is_that_of_the_end_of_period_effect():
    model, years = _series(9)
    res = fit_autoregressive(model, method="reml-ar")
    k = years[-1] - 1990
    end = contrast_df(res, {"level_change": 1.0, "slope_change": float(k)})
    assert res.df_resid == pytest.approx(end)
    absolute, _ = res.effect_at(int(years[-1]))
    se = np.sqrt(
        res.cov.loc["level_change", "level_change"]
        + 2 * k * res.cov.loc["level_change", "slope_change"]
        + k * k * res.cov.loc["slope_change", "slope_change"]
    )
    assert absolute.ci_high - absolute.estimate == pytest.approx(stats.t.ppf(0.975, end) * se)
    if getattr(res, "contrast_df", None) is not None:  # ITSResults with per-contrast df
        sc = res.coefficient("slope_change")
        slope_df = contrast_df(res, {"slope_change": 1.0})
        assert slope_df != pytest.approx(end, rel=1e-3)
        assert sc.ci_high - sc.estimate == pytest.approx(stats.t.ppf(0.975, slope_df) * sc.se)
    lowest = fit_autoregressive(model, method="reml-ar", df_at="min").df_resid
    assert lowest <= min(end, contrast_df(res, {"level_change": 1.0}), contrast_df(res, {"slope_change": 1.0})) + 1e-9
    assert contrast_df(res, {"slope_change": 1.0}, df_method="residual") == len(years) - 4
    pw = fit_autoregressive(model, method="prais-winsten")
    assert contrast_df(pw, {"slope_change": 1.0}) == pw.df_resid  # constant across contrasts


# -- ARIMA errors --------------------------------------------------------------------------
def _exact_ar1_negative_loglik(theta, y, X, t):
    beta, phi, innovation = theta[:-2], theta[-2], theta[-1]
    return -stats.multivariate_normal(X @ beta, innovation / (1 - phi**2) * _ar1_corr(phi, t)).logpdf(y)


def _exact_ar1_ml(y, X, t):
    def negative(z):
        return _exact_ar1_negative_loglik(np.r_[z[:-2], np.tanh(z[-2]), np.exp(z[-1])], y, X, t)

    start = np.r_[np.linalg.lstsq(X, y, rcond=None)[0], 0.3, 0.0]
    found = optimize.minimize(negative, start, method="BFGS", options={"gtol": 1e-8})
    found = optimize.minimize(
        negative,
        found.x,
        method="Nelder-Mead",
        options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 40000, "maxfev": 40000},
    )
    return np.r_[found.x[:-2], np.tanh(found.x[-2]), np.exp(found.x[-1])]


@pytest.mark.parametrize("exclude", [(), (1975, 1976)])
def test_arima_1_0_0_is_exact_maximum_likelihood(exclude):
    """Coefficients, AR parameter and innovation variance maximise the exact Gaussian
    likelihood (written here with the dense AR(1) covariance, gaps at their true lags);
    standard errors are the inverse of its numerical Hessian."""
    model, _ = _series(10, n_pre=30, n_post=25, phi=0.6, exclude=exclude)
    data = model.design_data()
    y, X, t = data.y, data.X.to_numpy(), data.time.to_numpy()
    res = fit_autoregressive(model, method="arima", order=(1, 0, 0))
    theta = _exact_ar1_ml(y, X, t)
    np.testing.assert_allclose(res.params.to_numpy(), theta[:-2], rtol=2e-4, atol=2e-4)
    assert res.cov_details["ar1"] == pytest.approx(theta[-2], abs=5e-4)
    assert res.cov_details["sigma2"] == pytest.approx(theta[-1], rel=2e-3)
    assert res.df_resid == np.inf and res.cov_type == "arima"
    m = len(theta)
    h = 1e-4 * np.maximum(1, np.abs(theta))
    hessian = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            ei, ej = np.eye(m)[i] * h[i], np.eye(m)[j] * h[j]
            corners = ((1, 1, 1), (1, -1, -1), (-1, 1, -1), (-1, -1, 1))
            hessian[i, j] = sum(
                sign * _exact_ar1_negative_loglik(theta + si * ei + sj * ej, y, X, t) for si, sj, sign in corners
            ) / (4 * h[i] * h[j])
    expected = np.sqrt(np.diag(np.linalg.inv(hessian)))[:-2]
    np.testing.assert_allclose(res.std_errors.to_numpy(), expected, rtol=2e-3)


def test_arima_with_differencing_drops_the_unidentified_constant():
    model, _ = _series(14)
    with pytest.warns(RuntimeWarning, match="const"):
        res = fit_autoregressive(model, method="arima", order=(0, 1, 1))
    assert "const" not in res.params.index and "level_change" in res.params.index
    assert np.isfinite(res.std_errors).all()
    absolute, _ = res.effect_at(2009)  # effects need only the change terms
    assert np.isfinite(absolute.se)


# -- interface ------------------------------------------------------------------------------
def test_rejects_what_it_cannot_fit():
    model, years = _series(11)
    with pytest.raises(AutoregressiveFitError, match="unknown method"):
        fit_autoregressive(model, method="gls")
    with pytest.raises(AutoregressiveFitError, match="unknown option"):
        fit_autoregressive(model, method="prais-winsten", order=2)
    with pytest.raises(AutoregressiveFitError, match="df_method"):
        fit_autoregressive(model, method="reml-ar", df_method="between-within")
    counts = SegmentedRegression(
        np.arange(len(years)) + 50, time=years, design=DESIGN, family="poisson", exposure=np.full(len(years), 1000.0)
    )
    with pytest.raises(ValueError, match="Gaussian"):
        fit_autoregressive(counts, method="reml-ar")
    stacked = SegmentedRegression(
        np.r_[model.outcome, model.outcome + 1],
        time=np.r_[years, years],
        design=DESIGN,
        group=np.r_[np.ones(len(years)), np.zeros(len(years))],
    )
    with pytest.raises(ValueError, match="single series"):
        fit_autoregressive(stacked, method="prais-winsten")


def test_methods_agree_on_a_long_series_and_time_each_fit():
    """On a long AR(1) series the four estimators estimate the same thing."""
    model, _ = _series(12, n_pre=150, n_post=150, phi=0.5)
    fits, seconds = {}, {}
    for method in ("prais-winsten", "cochrane-orcutt", "reml-ar", "arima"):
        start = timer.perf_counter()
        fits[method] = fit_autoregressive(model, method=method)
        seconds[method] = timer.perf_counter() - start
    for method, res in fits.items():
        assert res.params["level_change"] == pytest.approx(fits["reml-ar"].params["level_change"], abs=0.1)
        rho = res.cov_details.get("rho", res.cov_details.get("phi", res.cov_details.get("ar1")))
        assert rho == pytest.approx(0.5, abs=0.1), method
    assert max(seconds.values()) < 5


@pytest.mark.slow
def test_reml_intervals_for_the_slope_change_cover_at_the_nominal_rate():
    """AR(1) errors with phi = 0.5, 40 + 40 annual points. 95% intervals for the slope
    change from REML with small-sample df should cover the truth about as often as the
    oracle interval (GLS with the true covariance, normal quantile: exactly 95% in
    expectation) on the same simulated series; pairing removes most Monte Carlo noise.
    Prais-Winsten with n - p df is included to show that the comparison can fail."""
    rng = np.random.default_rng(2024)
    years = np.arange(1950, 2030)
    X = DESIGN.matrix(years)
    beta = np.array([20, 0.1, -2, 0.05])
    Xn = X.to_numpy()
    sigma = _ar1_corr(0.5, years) / (1 - 0.25)
    oracle_cov = np.linalg.inv(Xn.T @ np.linalg.solve(sigma, Xn))
    oracle_se = np.sqrt(oracle_cov[3, 3])
    hits = {"oracle": [], "satterthwaite": [], "kenward-roger": [], "prais-winsten": []}
    start = timer.perf_counter()
    for _ in range(500):
        y = Xn @ beta + ar1(rng, len(years), 0.5, 1.0)
        gls = oracle_cov @ Xn.T @ np.linalg.solve(sigma, y)
        hits["oracle"].append(abs(gls[3] - 0.05) <= 1.959964 * oracle_se)
        model = SegmentedRegression(y, time=years, design=DESIGN)
        for name in ("satterthwaite", "kenward-roger", "prais-winsten"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = (
                    fit_autoregressive(model, method="prais-winsten")
                    if name == "prais-winsten"
                    else fit_autoregressive(model, method="reml-ar", df_method=name)
                )
            sc = res.coefficient("slope_change")
            hits[name].append(sc.ci_low <= 0.05 <= sc.ci_high)
    coverage = {k: float(np.mean(v)) for k, v in hits.items()}
    for name in ("satterthwaite", "kenward-roger"):
        assert abs(coverage[name] - coverage["oracle"]) <= 0.02, coverage
        assert 0.92 <= coverage[name] <= 0.975, coverage
    assert coverage["prais-winsten"] < coverage["oracle"] - 0.02, coverage  # the naive df under-cover
    assert timer.perf_counter() - start < 120
