"""Residual and model diagnostics against independent references.

References: statsmodels' own tests on an equivalent statsmodels fit (``acorr_breusch_godfrey``
on OLS, ``OLSInfluence`` / ``GLMInfluence``, ``pearson_chi2``, the Cameron-Trivedi
regression of ``test_poisson_dispersion``), closed forms computed here with numpy (ACF,
Yule-Walker PACF, Ljung-Box Q, Durbin-Watson, the auxiliary regressions), and simulations in
which the diagnostic must find what was built in (AR(1) errors, overdispersion) and mostly
stay quiet otherwise.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import stats
from statsmodels.discrete._diagnostics_count import test_poisson_dispersion as sm_poisson_dispersion
from statsmodels.stats.diagnostic import acorr_breusch_godfrey
from statsmodels.stats.outliers_influence import OLSInfluence

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its import diagnostics as dg
from analysis.its.design import MIN_POINTS_PER_PHASE, RECOMMENDED_POINTS_PER_PHASE
from analysis.its.forecast import ForecastITS
from tests.conftest import ar1

MONTHS = pd.period_range("2016-01", "2023-12", freq="M")  # 96 months
DESIGN = ITSDesign(interruption="2021-01", washin=3, spring_festival=False, shocks=())
KEEP = ~DESIGN.in_washin(MONTHS)


def gaussian_fit(seed=0, phi=0.0, design=DESIGN, cov_type="model"):
    rng = np.random.default_rng(seed)
    X = design.matrix(MONTHS)
    noise = ar1(rng, len(MONTHS), phi, 1.0) if phi else rng.normal(0, 1.0, len(MONTHS))
    y = (20 + 0.05 * X["time"] - 1.0 * X["level_change"] + noise).to_numpy()
    return y, SegmentedRegression(y, time=MONTHS, design=design).fit(cov_type=cov_type)


def count_fit(seed=0, family="poisson", extra_sd=0.0, cov_type="model"):
    rng = np.random.default_rng(seed)
    X = DESIGN.matrix(MONTHS)
    eta = (-3 + 0.003 * X["time"] + 0.1 * X["level_change"]).to_numpy() + rng.normal(0, extra_sd, len(MONTHS))
    n = rng.integers(1000, 3000, len(MONTHS)).astype(float)
    if family == "binomial":
        y = rng.binomial(n.astype(int), 1 / (1 + np.exp(-eta))).astype(float)
        kwargs = {"trials": n}
    else:
        y = rng.poisson(n * np.exp(eta)).astype(float)
        kwargs = {"exposure": n}
    return y, n, SegmentedRegression(y, time=MONTHS, design=DESIGN, family=family, **kwargs).fit(cov_type=cov_type)


def ols_reference(y):
    return sm.OLS(y[KEEP], DESIGN.matrix(MONTHS[KEEP]).to_numpy()).fit()


# -- autocorrelation: closed forms and statsmodels --------------------------------------
def test_acf_pacf_and_bounds_are_the_closed_forms():
    _, res = gaussian_fit(seed=1, phi=0.4)
    e = res.residuals.to_numpy()
    n = len(e)
    table = dg.residual_autocorrelation(res, max_lag=10)
    d = e - e.mean()
    gamma = np.array([d[: n - k] @ d[k:] for k in range(11)])
    np.testing.assert_allclose(table["acf"], gamma[1:] / gamma[0], rtol=1e-10)
    # Yule-Walker with the n - k ("adjusted") autocovariances: the last coefficient of the
    # order-k autoregression solving the Toeplitz system.
    adjusted = gamma / (n - np.arange(11))
    rho = adjusted / adjusted[0]
    pacf = [
        np.linalg.solve(rho[np.abs(np.subtract.outer(np.arange(k), np.arange(k)))], rho[1 : k + 1])[-1]
        for k in range(1, 11)
    ]
    np.testing.assert_allclose(table["pacf"], pacf, rtol=1e-8)
    assert table["bound"].iloc[0] == pytest.approx(1.959964 / np.sqrt(n), rel=1e-6)
    # Bartlett: se_k^2 = (1 + 2 sum_{j<k} r_j^2) / n.
    r = gamma[1:] / gamma[0]
    bartlett = 1.959964 * np.sqrt((1 + 2 * np.r_[0, np.cumsum(r[:-1] ** 2)]) / n)
    np.testing.assert_allclose(table["acf_bartlett"], bartlett, rtol=1e-5)


def test_ljung_box_and_durbin_watson_are_the_closed_forms():
    _, res = gaussian_fit(seed=2, phi=0.3)
    e = res.residuals.to_numpy()
    n = len(e)
    d = e - e.mean()
    r = np.array([d[: n - k] @ d[k:] for k in range(1, 13)]) / (d @ d)
    q = n * (n + 2) * np.cumsum(r**2 / (n - np.arange(1, 13)))
    lb = dg.ljung_box(res, lags=range(1, 13))
    np.testing.assert_allclose(lb["statistic"], q, rtol=1e-10)
    np.testing.assert_allclose(lb["p_value"], stats.chi2.sf(q, np.arange(1, 13)), rtol=1e-8)
    lb_adjusted = dg.ljung_box(res, lags=[4, 8], model_df=2)
    np.testing.assert_allclose(lb_adjusted["p_value"], stats.chi2.sf(q[[3, 7]], [2, 6]), rtol=1e-8)
    dw = dg.durbin_watson(res)
    assert dw["statistic"].iloc[0] == pytest.approx(np.sum(np.diff(e) ** 2) / (e @ e), rel=1e-12)


@pytest.mark.parametrize("order", [1, 2, 4, 12])
def test_breusch_godfrey_equals_statsmodels_on_the_equivalent_ols_fit(order):
    y, res = gaussian_fit(seed=3, phi=0.3)
    ref = acorr_breusch_godfrey(ols_reference(y), nlags=order, result_object=True)
    bg = dg.breusch_godfrey(res, orders=(order,)).iloc[0]
    assert bg["lm"] == pytest.approx(ref.lm, rel=1e-9)
    assert bg["lm_p_value"] == pytest.approx(ref.lmpval, rel=1e-8)
    assert bg["f"] == pytest.approx(ref.fval, rel=1e-9)
    assert bg["f_p_value"] == pytest.approx(ref.fpval, rel=1e-8)


def test_breusch_godfrey_for_counts_is_the_weighted_auxiliary_regression():
    y, n, res = count_fit(seed=4, extra_sd=0.05)
    X = DESIGN.matrix(MONTHS[KEEP]).to_numpy()
    mu = n[KEEP] * np.exp(X @ res.params.to_numpy())
    r = (y[KEEP] - mu) / np.sqrt(mu)
    Z = np.column_stack([X * np.sqrt(mu)[:, None], np.r_[0.0, r[:-1]], np.r_[0.0, 0.0, r[:-2]]])
    aux = sm.OLS(r, Z).fit()  # no constant column: statsmodels reports the uncentred R^2
    bg = dg.breusch_godfrey(res, orders=(2,)).iloc[0]
    assert bg["lm"] == pytest.approx(len(r) * aux.rsquared, rel=1e-8)
    f = aux.f_test(np.eye(2, Z.shape[1], Z.shape[1] - 2))
    assert bg["f"] == pytest.approx(float(np.squeeze(f.fvalue)), rel=1e-8)


# -- overdispersion ---------------------------------------------------------------------------
def test_overdispersion_tests_equal_statsmodels_and_closed_forms():
    y, n, res = count_fit(seed=5, extra_sd=0.08)
    X = DESIGN.matrix(MONTHS[KEEP]).to_numpy()
    glm = sm.GLM(y[KEEP], X, family=sm.families.Poisson(), exposure=n[KEEP]).fit()
    table = dg.overdispersion(res).set_index("test")
    df = glm.df_resid
    assert table.loc["pearson", "statistic"] == pytest.approx(glm.pearson_chi2, rel=1e-8)
    assert table.loc["pearson", "estimate"] == pytest.approx(glm.pearson_chi2 / df, rel=1e-8)
    assert table.loc["pearson", "p_value"] == pytest.approx(stats.chi2.sf(glm.pearson_chi2, df), rel=1e-6)
    ref = sm_poisson_dispersion(glm).summary_frame().set_index("method")
    t = table.loc["cameron_trivedi_nb2", "statistic"]
    assert t == pytest.approx(ref.loc["CT nb2", "statistic"], rel=1e-8)
    assert table.loc["cameron_trivedi_nb2", "p_value"] == pytest.approx(ref.loc["CT nb2", "pvalue"] / 2, rel=1e-6)
    # NB1: regression on a constant, i.e. the one-sample t ratio of z = ((y - mu)^2 - y) / mu.
    mu = glm.fittedvalues
    z = ((y[KEEP] - mu) ** 2 - y[KEEP]) / mu
    t1 = z.mean() / np.sqrt(np.sum((z - z.mean()) ** 2) / (len(z) - 1) / len(z))
    assert table.loc["cameron_trivedi_nb1", "statistic"] == pytest.approx(t1, rel=1e-8)
    assert table.loc["cameron_trivedi_nb1", "estimate"] == pytest.approx(z.mean(), rel=1e-8)
    # Binomial: the Pearson test only; Gaussian: nothing to test.
    _, _, binomial = count_fit(seed=5, family="binomial")
    assert list(dg.overdispersion(binomial)["test"]) == ["pearson"]
    assert dg.overdispersion(gaussian_fit()[1]).empty


# -- influence -------------------------------------------------------------------------------
def test_gaussian_influence_equals_statsmodels_ols_influence():
    y, res = gaussian_fit(seed=6)
    ref = OLSInfluence(ols_reference(y))
    table = dg.influence(res)
    np.testing.assert_allclose(table["leverage"], ref.hat_matrix_diag, rtol=1e-10)
    np.testing.assert_allclose(table["cooks_distance"], ref.cooks_distance[0], rtol=1e-9)
    np.testing.assert_allclose(table["studentized_residual"], ref.resid_studentized_internal, rtol=1e-9)
    assert (table["flagged"] == (table["cooks_distance"] > 4 / len(table))).all()
    assert list(table["month"][:2]) == ["2016-01", "2016-02"]


@pytest.mark.parametrize("family, cov_type", [("poisson", "model"), ("poisson", "quasi"), ("binomial", "model")])
def test_glm_influence_equals_statsmodels_glm_influence(family, cov_type):
    y, n, res = count_fit(seed=7, family=family, extra_sd=0.05, cov_type=cov_type)
    X = DESIGN.matrix(MONTHS[KEEP]).to_numpy()
    if family == "poisson":
        glm = sm.GLM(y[KEEP], X, family=sm.families.Poisson(), exposure=n[KEEP])
    else:
        glm = sm.GLM(y[KEEP] / n[KEEP], X, family=sm.families.Binomial(), var_weights=n[KEEP])
    ref = glm.fit(scale="X2" if cov_type == "quasi" else None).get_influence()
    table = dg.influence(res)
    np.testing.assert_allclose(table["leverage"], ref.hat_matrix_diag, rtol=1e-7)
    np.testing.assert_allclose(table["cooks_distance"], ref.cooks_distance[0], rtol=1e-6)


def test_rows_with_their_own_shock_dummy_have_no_influence():
    design = ITSDesign(interruption="2021-01", spring_festival=False, shocks=("2020-02",))
    _, res = gaussian_fit(seed=8, design=design)
    table = dg.influence(res).set_index("month")
    assert table.loc["2020-02", "leverage"] == pytest.approx(1.0)
    assert np.isnan(table.loc["2020-02", "cooks_distance"]) and not table.loc["2020-02", "flagged"]
    assert table["cooks_distance"].drop("2020-02").notna().all()


# -- phases -----------------------------------------------------------------------------------
def test_phase_sizes_follow_the_design_thresholds():
    months = pd.period_range("2020-01", "2021-06", freq="M")
    design = ITSDesign(interruptions=("2020-06", "2021-02"), seasonality="none", spring_festival=False, shocks=())
    y = np.random.default_rng(0).normal(10, 1, len(months))
    with pytest.warns(UserWarning):
        res = SegmentedRegression(y, time=months, design=design).fit(cov_type="model")
    table = dg.phase_sizes(res)
    assert list(table["phase"]) == ["pre", "post_1", "post_2"]
    assert list(table["n_points"]) == [5, 8, 5]
    expected = [
        "error" if k < MIN_POINTS_PER_PHASE else "warning" if k < RECOMMENDED_POINTS_PER_PHASE else "ok"
        for k in table["n_points"]
    ]
    assert list(table["status"]) == expected == ["warning", "ok", "warning"]
    assert list(table["starts"][1:]) == ["2020-06", "2021-02"]
    summary = dg.diagnose(res).summary()
    assert "only 5 points in the pre phase" in summary


# -- stacked series, forecasts and designs that cannot be rebuilt ------------------------------
def test_controlled_its_is_diagnosed_series_by_series():
    years = np.arange(1970, 2001)
    rng = np.random.default_rng(9)
    treated = 120 - 1.5 * (years - 1989) + ar1(rng, years.size, 0.6, 3)
    control = 110 - 1.0 * (years - 1989) + rng.normal(0, 3, years.size)
    res = SegmentedRegression(
        np.r_[treated, control],
        time=np.r_[years, years],
        design=ITSDesign(interruption=1989),
        group=np.r_[np.ones(years.size), np.zeros(years.size)],
    ).fit(cov_type="model")
    acf = dg.residual_autocorrelation(res, max_lag=3)
    assert list(acf["series"].unique()) == ["treated", "control"]
    e = res.residuals.to_numpy()[: years.size]
    d = e - e.mean()
    assert acf.query("series == 'treated'")["acf"].iloc[0] == pytest.approx(d[:-1] @ d[1:] / (d @ d), rel=1e-10)
    # Lags never cross from the treated series into the control series: the first control
    # row has no lagged residual, so the auxiliary regressor there is zero.
    bg = dg.breusch_godfrey(res, orders=(1,))
    r = res.residuals.to_numpy()
    lag = np.r_[0.0, r[:-1]]
    lag[years.size] = 0.0
    Z = np.column_stack([dg._fitted(res).X, lag])
    coef, *_ = np.linalg.lstsq(Z, r, rcond=None)
    assert bg["lm"].iloc[0] == pytest.approx(len(r) * (1 - np.sum((r - Z @ coef) ** 2) / (r @ r)), rel=1e-9)


def test_forecast_results_are_diagnosed_on_the_pre_period_fit():
    rng = np.random.default_rng(10)
    y = 30 + 0.1 * np.arange(96) + ar1(rng, 96, 0.5, 1.0)
    res = ForecastITS(
        y, time=MONTHS, interruption="2021-01", seasonality="none", spring_festival=False, shocks=()
    ).fit()
    X = res.fitted_design().to_numpy()
    ref = acorr_breusch_godfrey(sm.OLS(y[:60], X).fit(), nlags=1, result_object=True)
    d = dg.diagnose(res)
    assert d.breusch_godfrey["lm"].iloc[0] == pytest.approx(ref.lm, rel=1e-9)
    assert list(d.phases["n_points"]) == [60, 36]
    assert len(d.influence) == 60


def test_a_lagged_residual_fit_is_diagnosed_on_its_own_design():
    """The results keep the fitted design (with the lagged residual column), so influence and
    Breusch-Godfrey use exactly the matrix that was fitted rather than a rebuilt one."""
    y, _ = gaussian_fit(seed=11, phi=0.3)
    res = SegmentedRegression(y, time=MONTHS, design=DESIGN).fit(cov_type="model", lagged_residual=True)
    X = res.fitted_design()
    assert "lagged_residual" in X.columns and len(X) == int(res.fit_mask.sum())
    d = dg.diagnose(res)
    assert len(d.influence) == len(X) and not d.breusch_godfrey.empty


# -- the summary and the tidy table -------------------------------------------------------------
def test_summary_names_the_problem_and_the_remedy():
    _, res = gaussian_fit(seed=12, phi=0.7)
    d = dg.diagnose(res)
    text = d.summary()
    assert "residual autocorrelation at lag 1 (Ljung-Box p=" in text and "cov_type='latent-ar1'" in text
    aware = dg.diagnose(gaussian_fit(seed=12, phi=0.7, cov_type="latent-ar1")[1]).problems()
    row = aware[aware["diagnostic"] == "autocorrelation"].iloc[0]
    assert row["severity"] == "note" and "already allows" in row["message"]
    _, _, overdispersed = count_fit(seed=13, extra_sd=0.2)
    assert "overdispersion (Pearson chi2/df = " in dg.diagnose(overdispersed).summary()
    _, _, quasi = count_fit(seed=13, extra_sd=0.2, cov_type="quasi")
    problems = dg.diagnose(quasi).problems().set_index("diagnostic")
    assert problems.loc["overdispersion", "severity"] == "note"
    frame = d.to_frame()
    assert {"ljung_box", "durbin_watson", "breusch_godfrey", "influence", "phase_pre", "phase_post"} <= set(
        frame["diagnostic"]
    )
    assert list(frame.columns) == ["diagnostic", "series", "lag", "statistic", "df", "p_value", "estimate", "flagged"]
    with pytest.raises(AttributeError):
        d.alpha = 0.1


# -- simulations: detect what was built in ---------------------------------------------------
@pytest.mark.slow
def test_ar1_residuals_are_detected_and_white_noise_mostly_not():
    reps = 150

    def flagged(phi, seed):
        _, res = gaussian_fit(seed=seed, phi=phi)
        return (dg.diagnose(res, n_sim=400).problems()["diagnostic"] == "autocorrelation").any()

    detected = np.mean([flagged(0.6, 100 + s) for s in range(reps)])
    false_alarms = np.mean([flagged(0.0, 500 + s) for s in range(reps)])
    assert detected > 0.9
    assert false_alarms < 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)
    # Breusch-Godfrey (F version) finds the AR(1) errors too.
    power = np.mean(
        [dg.breusch_godfrey(gaussian_fit(seed=100 + s, phi=0.6)[1])["f_p_value"].iloc[0] < 0.05 for s in range(50)]
    )
    assert power > 0.9


@pytest.mark.slow
def test_design_based_ljung_box_p_values_are_uniform_under_independent_errors():
    """The chi-square reference over-rejects for regression residuals (month dummies, 15
    columns, 93 points); the Monte Carlo p-value under the fitted design has its level."""
    reps = 300
    p = np.array(
        [
            dg.ljung_box(gaussian_fit(seed=2000 + s)[1], lags=[1, 12], n_sim=500, seed=s)[
                ["p_value", "p_value_design"]
            ].to_numpy()
            for s in range(reps)
        ]
    )
    rejected = (p < 0.05).mean(axis=0)  # rows: lag 1, lag 12; columns: chi-square, design
    band = 3 * np.sqrt(0.05 * 0.95 / reps)
    assert np.all(np.abs(rejected[:, 1] - 0.05) < band)
    assert rejected[1, 0] > rejected[1, 1]  # the seasonal lag is where the chi-square reference fails most


@pytest.mark.slow
def test_overdispersion_is_detected_and_pure_poisson_mostly_not():
    reps = 150

    def pearson_p(extra_sd, seed):
        return dg.overdispersion(count_fit(seed=seed, extra_sd=extra_sd)[2]).set_index("test").loc["pearson", "p_value"]

    assert np.mean([pearson_p(0.1, 100 + s) < 0.05 for s in range(reps)]) > 0.9
    assert np.mean([pearson_p(0.0, 500 + s) < 0.05 for s in range(reps)]) < 0.05 + 3 * np.sqrt(0.05 * 0.95 / reps)


@pytest.mark.parametrize("seed,lags", [(0, 12), (1, 5), (2, 20)])
def test_ljung_box_p_value_matches_statsmodels(seed, lags):
    from statsmodels.stats.diagnostic import acorr_ljungbox

    from analysis.its.diagnostics import ljung_box_p_value

    rng = np.random.default_rng(seed)
    x = np.convolve(rng.normal(size=90), [1, 0.5], mode="valid") + 3.0
    reference = float(acorr_ljungbox(x, lags=[lags])["lb_pvalue"].iat[0])
    assert ljung_box_p_value(x, lags=lags) == pytest.approx(reference, rel=1e-10)
