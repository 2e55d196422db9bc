"""Regression with ARIMA errors against R's ``stats::arima`` (exact maximum likelihood).

Reference numbers: ``tests/results/r_arima.csv``, written by ``tests/results/r_arima.R``
with R 4.2.2 (``arima(y, order, seasonal, xreg = cbind(step, ramp))``, method "CSS-ML")
from the shared validation data; the script says how each series and design was built.

Tolerances. Estimates: 5e-4 relative (four significant digits). R's BFGS stops at a
relative change of 1e-8 in the objective; the package polishes further and ends at an
equal or higher log-likelihood (checked), so the last digits of R's estimates are R's
stopping point. Standard errors: 1e-3 relative. R takes them from a finite-difference
Hessian with steps of 1e-3; on the annual AR(1) series the package's SEs agree with an
accurate Hessian of the exact likelihood written out here (to 1e-5), and R's are off by
up to 8e-4 (its AR coefficient's SE 0.085279 against 0.085350).
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import optimize

from analysis.its import ITSDesign, SegmentedRegression
from analysis.its.autoregressive import select_arima_order

DATA = Path(__file__).resolve().parents[3] / "shared" / "validation" / "data"
REFERENCE = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "r_arima.csv")
TERMS = {"level_change": "step", "slope_change": "ramp", "time": "time", "const": "intercept"}

pytestmark = pytest.mark.skipif(not DATA.is_dir(), reason="shared validation data not available")


def _series(example):
    """Outcome, time and first post-interruption period of each example, as in the R script."""
    if example == "deaths":
        d = pd.read_csv(DATA / "causalpy_covid_deaths_england_wales.csv")
        d = d[d.date < "2020-01-01"]
        return d.deaths.to_numpy(float), pd.PeriodIndex(d.date.str[:7], freq="M"), "2016-01", (2, 1, 0), (0, 1, 1, 12)
    if example == "prop99":
        p = pd.read_csv(DATA / "prop99_cigsale_wide.csv")
        return np.log(p.California.to_numpy(float)), p.Year.to_numpy(), 1989, (1, 0, 0), (0, 0, 0, 0)
    s = pd.read_csv(DATA / "seatbelts_uk.csv")
    return np.log(s.drivers.to_numpy(float)), pd.PeriodIndex(s.date, freq="M"), "1983-02", (0, 1, 1), (0, 1, 1, 12)


def _fit(example):
    y, time, start, order, seasonal = _series(example)
    # R's ramp is 1 in the first post-interruption period (first_post_time=1).
    design = ITSDesign(interruption=start, first_post_time=1)
    model = SegmentedRegression(y, time=time, design=design, family="gaussian")
    with pytest.warns(RuntimeWarning, match="unidentified") if sum(order[1:2]) + seasonal[1] else _no_warning():
        return model.fit(errors="arima", order=order, seasonal_order=seasonal)


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.fixture(scope="module", params=["deaths", "prop99", "seatbelts"])
def fitted(request):
    return request.param, _fit(request.param)


def test_estimates_and_standard_errors_match_r(fitted):
    example, res = fitted
    ref = REFERENCE[REFERENCE.example == example].set_index("term")
    compared = 0
    for ours, theirs in TERMS.items():
        if theirs in ref.index:
            assert res.params[ours] == pytest.approx(ref.at[theirs, "estimate"], rel=5e-4), (example, ours)
            assert res.std_errors[ours] == pytest.approx(ref.at[theirs, "se"], rel=1e-3), (example, ours)
            compared += 1
    arma = [t for t in ref.index if t[:2] in ("ar", "ma") or t[:3] in ("sar", "sma")]
    for name in arma:
        assert res.cov_details[name] == pytest.approx(ref.at[name, "estimate"], rel=5e-4, abs=1e-5), (example, name)
        assert res.cov_details[f"{name}_se"] == pytest.approx(ref.at[name, "se"], rel=1e-3), (example, name)
    assert compared >= 2 and arma
    assert res.cov_details["sigma2"] == pytest.approx(ref.at["sigma2", "estimate"], rel=1e-4)
    # AIC counts the parameters as R does (the innovation variance included).
    assert res.cov_details["aic"] + 2 * res.cov_details["loglik"] == pytest.approx(
        ref.at["aic", "estimate"] + 2 * ref.at["loglik", "estimate"], abs=1e-6
    )
    # The maximum found is R's or higher, never lower.
    assert res.cov_details["loglik"] >= ref.at["loglik", "estimate"] - 1e-6
    assert res.converged


def test_differencing_absorbs_the_level_and_trend_as_r_drops_the_mean():
    _, res = "deaths", _fit("deaths")
    assert list(res.params.index) == ["level_change", "slope_change"]


def test_standard_errors_are_the_exact_likelihood_hessian():
    """Annual AR(1) example: the exact Gaussian AR(1) likelihood written out (stationary
    start), maximised and differentiated numerically here, independently of statsmodels."""
    y, years, start, order, _ = _series("prop99")
    res = _fit("prop99")
    X = ITSDesign(interruption=start, first_post_time=1).matrix(years).to_numpy()
    n = len(y)

    def negative_loglik(theta):
        beta, phi, sigma2 = theta[:4], theta[4], theta[5]
        r = y - X @ beta
        e = np.r_[r[0] * np.sqrt(1 - phi**2), r[1:] - phi * r[:-1]]
        return 0.5 * n * np.log(2 * np.pi * sigma2) - 0.5 * np.log(1 - phi**2) + 0.5 * e @ e / sigma2

    start_values = np.r_[res.params.to_numpy(), res.cov_details["ar1"], res.cov_details["sigma2"]]
    found = optimize.minimize(
        negative_loglik,
        start_values,
        method="Nelder-Mead",
        options={"xatol": 1e-12, "fatol": 1e-14, "maxiter": 100000, "maxfev": 100000},
    )
    theta = found.x
    assert -found.fun == pytest.approx(res.cov_details["loglik"], abs=1e-7)
    np.testing.assert_allclose(res.params.to_numpy(), theta[:4], rtol=1e-5, atol=1e-7)
    h = 1e-4 * np.maximum(np.abs(theta), 1e-2)
    m = len(theta)
    hessian = np.empty((m, m))
    for i in range(m):
        for j in range(m):
            ei, ej = np.eye(m)[i] * h[i], np.eye(m)[j] * h[j]
            hessian[i, j] = (
                negative_loglik(theta + ei + ej)
                - negative_loglik(theta + ei - ej)
                - negative_loglik(theta - ei + ej)
                + negative_loglik(theta - ei - ej)
            ) / (4 * h[i] * h[j])
    se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    np.testing.assert_allclose(res.std_errors.to_numpy(), se[:4], rtol=1e-5)
    assert res.cov_details["ar1_se"] == pytest.approx(se[4], rel=1e-4)


AUTO = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "r_auto_arima.csv").set_index("example")


@pytest.mark.parametrize("example", ["deaths"])
def test_auto_order_is_the_order_auto_arima_chooses(example):
    """forecast::auto.arima on the pre-period with the trend as xreg (tests/results/
    r_auto_arima.R): the same order, and the same log-likelihood and AICc for it."""
    y, time, start, _, _ = _series(example)
    pre = ITSDesign(interruption=start).time_since(time) < 0
    X = pd.DataFrame({"const": 1.0, "time": np.arange(1, pre.sum() + 1, dtype=float)})
    order, seasonal, table = select_arima_order(y[pre], X, period=12)
    ref = AUTO.loc[example]
    assert order == (ref.p, ref.d, ref.q) and seasonal == (ref.P, ref.D, ref.Q, ref.period)
    assert table.at[0, "aicc"] == pytest.approx(ref.aicc, abs=1e-3)
    assert table.at[0, "loglik"] == pytest.approx(ref.loglik, abs=5e-4)


def test_fit_with_auto_order_reports_the_chosen_order():
    """The seat-belt example through the model's own option (its pre-period design is the
    trend and constant, as in R): auto.arima's order, log-likelihood and AICc."""
    y, time, start, _, _ = _series("seatbelts")
    # No month dummies: the pre-period terms are then the trend (and constant), as in R.
    design = ITSDesign(interruption=start, first_post_time=1, seasonality="none")
    res = SegmentedRegression(y, time=time, design=design).fit(errors="arima", order="auto")
    chosen = tuple(
        int(res.cov_details[k])
        for k in ("order_p", "order_d", "order_q", "seasonal_p", "seasonal_d", "seasonal_q", "seasonal_period")
    )
    ref = AUTO.loc["seatbelts"]
    assert chosen == (ref.p, ref.d, ref.q, ref.P, ref.D, ref.Q, ref.period)
    assert {"ar1", "ma3", "sar1"} <= set(res.cov_details) and res.converged
    assert res.cov_details["aicc_pre_period"] == pytest.approx(ref.aicc, abs=1e-3)
