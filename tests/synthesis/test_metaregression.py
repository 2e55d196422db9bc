"""Tests for analysis.synthesis.metaregression against published metafor output and closed forms.

Reference data: the BCG vaccine trials (Colditz et al. 1994, JAMA 271:698), metafor's
``dat.bcg``: log risk ratios and variances as ``escalc(measure="RR")`` computes them (the
13-row 2x2 table is imported from ``test_pooling``), with absolute latitude ``ablat``,
publication ``year`` and allocation ``alloc`` as printed in metafor's README.

Where each reference number comes from (metafor output rounded to 4 decimals unless said;
compared with an absolute tolerance of half a unit in the last printed digit):

* ``rma(yi, vi, mods = ~ ablat, data=dat, test="knha")``: metafor README
  (github.com/wviechtb/metafor, README.md): tau^2 0.0764 (SE 0.0591), I^2 68.39%, H^2 3.16,
  R^2 75.62%, QE(11) 30.7331 (p 0.0012), F(1, 11) 12.5905 (p 0.0046); intercept 0.2515
  (se 0.2839, t 0.8857, p 0.3948, CI -0.3735 to 0.8764), ablat -0.0291 (se 0.0082,
  t -3.5483, p 0.0046, CI -0.0472 to -0.0111).
* The same model with z tests, ``rma(yi, vi, mods = ~ ablat, data = dat)``: metafor output
  printed in the RoBMA vignette on Bayesian meta-analysis (github.com/fbartos/RoBMA,
  "Meta-Regression with a Continuous Moderator"): QM(1) 16.3571; intercept se 0.2491,
  z 1.0095, p 0.3127, CI -0.2368 to 0.7397; ablat se 0.0072, z -4.0444, CI -0.0432 to -0.0150.
* ``rma(yi, vi, mods = cbind(ablat, year), data=dat)`` (REML, z): metafor 4.8-0 output in the
  README of github.com/psicostat/criticalESvalue: tau^2 0.1108 (SE 0.0845), I^2 71.98%,
  H^2 3.57, R^2 64.63%, QE(10) 28.3251 (p 0.0016), QM(2) 12.2043 (p 0.0022); intercept
  -3.5455 (se 29.0959, CI -60.5724 to 53.4814), ablat -0.0280 (se 0.0102, z -2.7371,
  p 0.0062), year 0.0019 (se 0.0147, z 0.1299, p 0.8966). The same model's R^2 0.6463217 and
  I^2 0.719778 (as fractions, 7 digits) are in easystats/performance's
  ``tests/testthat/test-model_performance.rma.R``.
* ``mods = ~ ablat + alloc`` (categorical, reference "alternate"): metafor's
  ``tests/testthat/test_misc_anova.r``: joint test of the alloc dummies QM(2) 1.2850
  (p 0.5260), with test="knha" F 0.6007 (p 0.5690); contrasts ``L = (1, 10, 0, 0)``,
  ``(1, 30, 0, 0)``, ``(1, 50, 0, 0)`` z -> 0.0588, -1.7964, -3.1210.
* ML likelihood-ratio test of ``~ ablat`` against the intercept-only model: 9.9588
  (``test_misc_anova.r``).
* Berkey et al. (1995, Stat Med 14:395) with "smoothed" sampling variances, metafor's
  ``tests/testthat/test_analysis_example_berkey1995.r``: empirical Bayes (= Paule-Mandel,
  metafor's documentation) with ``mods = ~ I(ablat - 33.46)``: coefficients -0.6303 and
  -0.0268, se 0.1591 and 0.0110, tau^2 0.157 (3 decimals), R^2 41% (integer); fixed
  effect: coefficients -0.5949 and -0.0282, se 0.0696 and 0.0040.

Closed forms: without moderators every statistic equals :func:`pooling.pool`; DL and the
Knapp-Hartung factor are recomputed from their defining formulas; REML and ML maximise
their likelihoods (checked numerically); fixed-effect meta-regression is weighted least
squares (statsmodels WLS with the scale fixed at 1).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize, stats

from analysis.synthesis import metaregression
from analysis.synthesis.metaregression import (
    COEFFICIENT_COLUMNS,
    FIT_COLUMNS,
    meta_regression,
    meta_regression_frame,
)
from analysis.synthesis.pooling import pool
from tests.synthesis.test_pooling import BCG

PUBLISHED = 5e-4  # half a unit in the 4th decimal

ABLAT = [44, 55, 42, 52, 13, 44, 19, 13, 27, 42, 18, 33, 33]
YEAR = [1948, 1949, 1960, 1977, 1973, 1953, 1973, 1980, 1968, 1961, 1974, 1969, 1976]
ALLOC = ["random"] * 4 + ["alternate"] * 2 + ["random"] * 3 + ["systematic"] * 4


@pytest.fixture(scope="module")
def bcg() -> pd.DataFrame:
    tpos, tneg, cpos, cneg = BCG.T
    yi = np.log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return pd.DataFrame({"yi": yi, "vi": vi, "sei": np.sqrt(vi), "ablat": ABLAT, "year": YEAR, "alloc": ALLOC})


def _fit(frame, moderators, **options):
    return meta_regression(frame, estimate="yi", se="sei", moderators=moderators, **options)


# ---------------------------------------------------------------------------------------
# published metafor output


def test_ablat_knapp_hartung_matches_metafor_readme(bcg):
    res = _fit(bcg, ["ablat"])  # REML and knha are the defaults
    assert res.tau2 == pytest.approx(0.0764, abs=PUBLISHED)
    assert res.tau2_se == pytest.approx(0.0591, abs=PUBLISHED)
    assert res.i2 == pytest.approx(68.39, abs=5e-3)
    assert res.h2 == pytest.approx(3.16, abs=5e-3)
    assert res.r2 == pytest.approx(75.62, abs=5e-3)
    assert (res.qe, res.qe_df, res.qe_p_value) == pytest.approx((30.7331, 11, 0.0012), abs=PUBLISHED)
    assert (res.qm, res.qm_df, res.qm_p_value) == pytest.approx((12.5905, 1, 0.0046), abs=PUBLISHED)
    table = res.coefficients().set_index("term")
    expected = {
        "intercept": (0.2515, 0.2839, 0.8857, 0.3948, -0.3735, 0.8764),
        "ablat": (-0.0291, 0.0082, -3.5483, 0.0046, -0.0472, -0.0111),
    }
    for term, values in expected.items():
        row = table.loc[term, ["estimate", "se", "statistic", "p_value", "ci_low", "ci_high"]]
        assert row.to_numpy(dtype=float) == pytest.approx(values, abs=PUBLISHED), term
        assert table.loc[term, "df"] == 11


def test_ablat_z_test_matches_metafor(bcg):
    res = _fit(bcg, ["ablat"], knha=False)
    assert res.qm == pytest.approx(16.3571, abs=PUBLISHED)
    assert res.qm_p_value < 1e-4
    table = res.coefficients().set_index("term")
    assert table.loc["intercept", ["se", "statistic", "p_value", "ci_low", "ci_high"]].to_numpy(
        dtype=float
    ) == pytest.approx((0.2491, 1.0095, 0.3127, -0.2368, 0.7397), abs=PUBLISHED)
    assert table.loc["ablat", ["se", "statistic", "ci_low", "ci_high"]].to_numpy(dtype=float) == pytest.approx(
        (0.0072, -4.0444, -0.0432, -0.0150), abs=PUBLISHED
    )
    assert np.isinf(table["df"]).all()


def test_ablat_and_year_match_metafor(bcg):
    res = _fit(bcg, "ablat + year", knha=False)
    assert res.tau2 == pytest.approx(0.1108, abs=PUBLISHED)
    assert res.tau2_se == pytest.approx(0.0845, abs=PUBLISHED)
    assert res.i2 == pytest.approx(71.98, abs=5e-3)
    assert res.h2 == pytest.approx(3.57, abs=5e-3)
    assert res.r2 == pytest.approx(64.63, abs=5e-3)
    # easystats/performance stores the same R^2 and I^2 to 7 digits (as fractions)
    assert res.r2 / 100 == pytest.approx(0.6463217, abs=5e-7)
    assert res.i2 / 100 == pytest.approx(0.719778, abs=5e-6)
    assert (res.qe, res.qe_p_value) == pytest.approx((28.3251, 0.0016), abs=PUBLISHED)
    assert (res.qm, res.qm_df, res.qm_p_value) == pytest.approx((12.2043, 2, 0.0022), abs=PUBLISHED)
    table = res.coefficients().set_index("term")
    assert table["estimate"].to_numpy() == pytest.approx([-3.5455, -0.0280, 0.0019], abs=PUBLISHED)
    assert table["se"].to_numpy() == pytest.approx([29.0959, 0.0102, 0.0147], abs=PUBLISHED)
    assert table.loc[["ablat", "year"], "statistic"].to_numpy() == pytest.approx([-2.7371, 0.1299], abs=PUBLISHED)
    assert table.loc[["ablat", "year"], "p_value"].to_numpy() == pytest.approx([0.0062, 0.8966], abs=PUBLISHED)
    assert table.loc["intercept", ["ci_low", "ci_high"]].to_numpy(dtype=float) == pytest.approx(
        [-60.5724, 53.4814], abs=PUBLISHED
    )


def test_categorical_moderator_matches_metafor_anova(bcg):
    res = _fit(bcg, ["ablat", "alloc"], knha=False)
    assert res.references == {"alloc": "alternate"}  # R's default: first level alphabetically
    assert list(res.params.index) == ["intercept", "ablat", "alloc[random]", "alloc[systematic]"]
    tests = res.moderator_tests().set_index("moderator")
    assert tests.loc["alloc", "statistic"] == pytest.approx(1.2850, abs=PUBLISHED)
    assert tests.loc["alloc", "p_value"] == pytest.approx(0.5260, abs=PUBLISHED)
    assert tests.loc["alloc", "df"] == 2
    # linear contrasts L = (1, ablat, 0, 0) as in anova(res, L=...)
    L = np.array([[1, 10, 0, 0], [1, 30, 0, 0], [1, 50, 0, 0]], dtype=float)
    z = L @ res.params.to_numpy() / np.sqrt(np.einsum("ij,jk,ik->i", L, res.cov.to_numpy(), L))
    assert z == pytest.approx([0.0588, -1.7964, -3.1210], abs=PUBLISHED)

    knha = _fit(bcg, ["ablat", "alloc"]).moderator_tests().set_index("moderator")
    assert knha.loc["alloc", "statistic"] == pytest.approx(0.6007, abs=PUBLISHED)
    assert knha.loc["alloc", "p_value"] == pytest.approx(0.5690, abs=PUBLISHED)
    assert knha.loc["alloc", "df_resid"] == 9


def test_reference_level_can_be_chosen(bcg):
    default = _fit(bcg, ["alloc"], knha=False)
    other = _fit(bcg, ["alloc"], knha=False, reference={"alloc": "random"})
    assert other.references == {"alloc": "random"}
    assert list(other.params.index) == ["intercept", "alloc[alternate]", "alloc[systematic]"]
    # same model, different parametrisation: intercepts are the two reference groups' means
    assert other.params["intercept"] == pytest.approx(
        default.params["intercept"] + default.params["alloc[random]"], abs=1e-10
    )
    assert other.tau2 == pytest.approx(default.tau2, abs=1e-10)
    assert other.qm == pytest.approx(default.qm, rel=1e-8)


def test_ml_likelihood_ratio_matches_metafor(bcg):
    full = _fit(bcg, ["ablat"], method="ml", knha=False)
    null = _fit(bcg, [], method="ml", knha=False)
    assert 2 * (full.loglik - null.loglik) == pytest.approx(9.9588, abs=PUBLISHED)


def test_berkey_1995_smoothed_variances(bcg):
    # Berkey et al.'s smoothed sampling variances (one value for all trials)
    tpos, tneg, cpos, cneg = BCG.T
    smooth = np.sum(tneg / tpos) / (13 * (tneg + tpos)) + np.sum(cneg / cpos) / (13 * (cneg + cpos))
    frame = bcg.assign(sei=np.sqrt(smooth), centred=np.asarray(ABLAT) - 33.46)
    eb = _fit(frame, ["centred"], method="pm", knha=False)
    assert eb.params.to_numpy() == pytest.approx([-0.6303, -0.0268], abs=PUBLISHED)
    assert eb.std_errors.to_numpy() == pytest.approx([0.1591, 0.0110], abs=PUBLISHED)
    assert eb.tau2 == pytest.approx(0.157, abs=5e-4)
    assert round(eb.r2) == 41
    fe = _fit(frame, ["centred"], method="fe", knha=False)
    assert fe.params.to_numpy() == pytest.approx([-0.5949, -0.0282], abs=PUBLISHED)
    assert fe.std_errors.to_numpy() == pytest.approx([0.0696, 0.0040], abs=PUBLISHED)


# ---------------------------------------------------------------------------------------
# closed forms and independent implementations


@pytest.mark.filterwarnings("ignore:the Knapp-Hartung method is meant")
@pytest.mark.parametrize("method", ["reml", "ml", "dl", "pm", "fe"])
@pytest.mark.parametrize("knha", [False, True])
def test_no_moderators_equals_pool(bcg, method, knha):
    res = _fit(bcg, [], method=method, knha=knha)
    ref = pool(bcg["yi"], bcg["sei"], method=method, hksj=knha)
    row = res.coefficients().iloc[0]
    assert row["estimate"] == pytest.approx(ref.estimate, abs=1e-10)
    assert row["se"] == pytest.approx(ref.se, abs=1e-10)
    assert row["ci_low"] == pytest.approx(ref.ci_low, abs=1e-10)
    assert row["p_value"] == pytest.approx(ref.p_value, abs=1e-10)
    assert res.tau2 == pytest.approx(ref.tau2, abs=1e-10)
    assert res.tau2_se == pytest.approx(ref.tau2_se, abs=1e-10, nan_ok=True)
    assert res.i2 == pytest.approx(ref.i2, abs=1e-8)
    assert res.h2 == pytest.approx(ref.h2, abs=1e-8)
    assert res.qe == pytest.approx(ref.q, abs=1e-8)
    assert np.isnan(res.qm) and np.isnan(res.r2) and res.qm_df == 0


def test_fixed_effect_is_weighted_least_squares(bcg):
    X = sm.add_constant(bcg[["ablat", "year"]].to_numpy(float))
    wls = sm.WLS(bcg["yi"], X, weights=1 / bcg["vi"]).fit(cov_type="fixed scale", cov_kwds={"scale": 1.0})
    res = _fit(bcg, ["ablat", "year"], method="fe", knha=False)
    assert res.params.to_numpy() == pytest.approx(wls.params.to_numpy(), rel=1e-9)
    assert res.std_errors.to_numpy() == pytest.approx(wls.bse.to_numpy(), rel=1e-9)
    # QE is the weighted residual sum of squares
    assert res.qe == pytest.approx(float(np.sum(wls.resid**2 / bcg["vi"])), rel=1e-9)


def _closed_form(bcg, tau2, columns):
    """Weighted least squares at a given tau^2 and its Knapp-Hartung factor."""
    X = np.column_stack([np.ones(len(bcg)), bcg[columns].to_numpy(float)])
    y, v = bcg["yi"].to_numpy(), bcg["vi"].to_numpy()
    w = 1 / (v + tau2)
    vb = np.linalg.inv(X.T @ (X * w[:, None]))
    beta = vb @ X.T @ (w * y)
    s2 = np.sum(w * (y - X @ beta) ** 2) / (len(y) - X.shape[1])
    return X, y, v, beta, vb, s2


def test_dl_and_knapp_hartung_equal_their_formulas(bcg):
    X, y, v, *_ = _closed_form(bcg, 0.0, ["ablat"])
    w = 1 / v
    W = np.diag(w)
    P = W - W @ X @ np.linalg.inv(X.T @ W @ X) @ X.T @ W
    tau2_dl = max(0.0, (y @ P @ y - (len(y) - 2)) / np.trace(P))
    res = _fit(bcg, ["ablat"], method="dl", knha=True)
    assert res.tau2 == pytest.approx(tau2_dl, rel=1e-10)
    _, _, _, beta, vb, s2 = _closed_form(bcg, tau2_dl, ["ablat"])
    assert res.params.to_numpy() == pytest.approx(beta, rel=1e-10)
    assert res.std_errors.to_numpy() == pytest.approx(np.sqrt(s2 * np.diag(vb)), rel=1e-10)
    assert res.qm == pytest.approx(beta[1] ** 2 / (s2 * vb[1, 1]), rel=1e-10)  # F(1, k - p)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_likelihood_estimators_maximise_the_likelihood(bcg, method):
    X, y, v, *_ = _closed_form(bcg, 0.0, ["ablat", "year"])

    def negative(tau2):
        w = 1 / (v + tau2)
        vb = np.linalg.inv(X.T @ (X * w[:, None]))
        r = y - X @ (vb @ X.T @ (w * y))
        ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * np.sum(w * r**2)
        if method == "reml":
            ll -= 0.5 * np.linalg.slogdet(X.T @ (X * w[:, None]))[1]
        return -ll

    best = optimize.minimize_scalar(negative, bounds=(0, 5), method="bounded", options={"xatol": 1e-10}).x
    res = _fit(bcg, ["ablat", "year"], method=method, knha=False)
    # metafor's rule stops Fisher scoring once a step is <= 1e-5; ML scoring converges
    # linearly, so the remaining error can be a few times that, on a flat likelihood.
    assert res.tau2 == pytest.approx(best, abs=5e-5)
    assert negative(res.tau2) - negative(best) < 1e-6


def test_paule_mandel_solves_its_estimating_equation(bcg):
    res = _fit(bcg, ["ablat"], method="pm", knha=False)
    _, y, _, beta, _, s2 = _closed_form(bcg, res.tau2, ["ablat"])
    assert s2 == pytest.approx(1.0, abs=1e-9)  # y'Py / (k - p) = 1


@pytest.mark.filterwarnings("ignore:Fisher scoring did not converge")
def test_knapp_hartung_coverage_in_simulation():
    # Known truth: slope 0.5 on a moderator, tau = 0.3, 20 provinces, unequal variances.
    rng = np.random.default_rng(7)
    k, covered, reps = 20, 0, 400
    x = np.linspace(-1, 1, k)
    v = rng.uniform(0.01, 0.2, k)
    for _ in range(reps):
        y = 0.1 + 0.5 * x + rng.normal(0, 0.3, k) + rng.normal(0, np.sqrt(v))
        row = (
            meta_regression(pd.DataFrame({"y": y, "s": np.sqrt(v), "x": x}), estimate="y", se="s", moderators=["x"])
            .coefficients()
            .iloc[1]
        )
        covered += row["ci_low"] <= 0.5 <= row["ci_high"]
    # 95% nominal; binomial SE over 400 replicates is about 1.1 points
    assert 0.92 <= covered / reps <= 0.98


# ---------------------------------------------------------------------------------------
# interface


def test_tidy_outputs_have_fixed_columns(bcg):
    res = _fit(bcg, ["ablat", "alloc"])
    assert list(res.coefficients().columns) == COEFFICIENT_COLUMNS
    assert list(res.to_frame().columns) == FIT_COLUMNS
    assert "Mixed-Effects Model (k = 13" in res.summary()
    assert "alloc = 'alternate'" in res.summary()
    with pytest.raises(AttributeError):
        res.tau2 = 0.0  # read-only


def test_invalid_rows_are_named_or_dropped(bcg):
    frame = bcg.copy()
    frame.loc[3, "ablat"] = np.nan
    with pytest.raises(ValueError, match=r"row\(s\) \[3\]"):
        _fit(frame, ["ablat"])
    assert _fit(frame, ["ablat"], dropna=True).k == 12


@pytest.mark.parametrize(
    ("moderators", "options", "message"),
    [
        (["nope"], {}, "no column"),
        (["alloc"], {"reference": {"alloc": "none"}}, "not among its values"),
        (["ablat"], {"reference": {"ablat": 1}}, "numeric"),
        ("ablat * year", {}, "main effects"),
        (["ablat"], {"method": "bogus"}, "method must be one of"),
        (["ablat"], {"level": 95}, "0.95, not 95"),
    ],
)
def test_bad_input_is_rejected(bcg, moderators, options, message):
    with pytest.raises(ValueError, match=message):
        _fit(bcg, moderators, **options)


def test_rank_deficient_design_is_rejected(bcg):
    frame = bcg.assign(twice=2 * bcg["ablat"])
    with pytest.raises(ValueError, match="rank"):
        _fit(frame, ["ablat", "twice"])
    with pytest.raises(ValueError, match="k > p"):
        _fit(bcg.iloc[:2], ["ablat"])


def test_frame_version_reports_failures_and_fits_the_rest(bcg):
    good = bcg.assign(indicator=11)
    bad = bcg.iloc[:2].assign(indicator=12)  # too few provinces for two coefficients
    other = bcg.assign(indicator=13, yi=bcg["yi"] + 1)
    frame = pd.concat([good, bad, other], ignore_index=True)
    out = meta_regression_frame(frame, estimate="yi", se="sei", moderators=["ablat"], by="indicator")
    assert out.failures["indicator"].tolist() == [12]
    assert "k > p" in out.failures["message"].iat[0]
    assert out.fits["indicator"].tolist() == [11, 13]
    single = _fit(bcg, ["ablat"]).coefficients()
    got = out.coefficients[out.coefficients["indicator"] == 11].reset_index(drop=True)
    pd.testing.assert_frame_equal(got[COEFFICIENT_COLUMNS], single)
    shifted = out.coefficients[out.coefficients["indicator"] == 13].set_index("term")
    assert shifted.loc["intercept", "estimate"] == pytest.approx(single["estimate"].iat[0] + 1, abs=1e-8)


def test_doctests_pass():
    import doctest

    assert doctest.testmod(metaregression).failed == 0


def test_reference_p_values_use_t_with_k_minus_p_df(bcg):
    res = _fit(bcg, ["ablat"])
    row = res.coefficients().iloc[1]
    assert row["p_value"] == pytest.approx(2 * stats.t.sf(abs(row["statistic"]), 11), rel=1e-12)


def test_knha_must_be_boolean(bcg):
    with pytest.raises(TypeError, match="knha must be True or False"):
        _fit(bcg, ["ablat"], knha="yes")
