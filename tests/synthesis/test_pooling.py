"""Tests for analysis.synthesis.pooling against published metafor output and known truth.

Reference data: the BCG vaccine trials (Colditz et al. 1994, JAMA 271:698), metafor's
``dat.bcg``; log risk ratios and their variances as ``escalc(measure="RR")`` computes them.

Where each reference number comes from (all printed by R's metafor, rounded to 4 decimals
unless said otherwise; compared with an absolute tolerance of half a unit in the last digit):

* REML, z test: metafor README / Viechtbauer (2010, J Stat Softw 36(3)) output of
  ``rma(yi, vi, data=dat)``: estimate -0.7145, se 0.1798, z -3.9744, p < .0001,
  CI [-1.0669, -0.3622], tau^2 0.3132 (SE 0.1664), I^2 92.22%, H^2 12.86, Q(12) 152.2330.
* REML prediction: ``predict(rma(yi, vi, data=dat), transf=exp)`` printed by metafor 4.2-0:
  pred 0.4894, ci 0.3441-0.6962, pi 0.1546-1.5490 (log scale -1.8668 to 0.4376). The values
  -1.8699/0.4409 in the brief for this module could not be confirmed and are not used.
* REML with ``test="knha"``: metafor README (github.com/wviechtb/metafor): se 0.1808,
  t -3.9522 (df 12), p 0.0019, CI [-1.1084, -0.3206]; ``predict(..., transf=exp, digits=2)``
  gives pi 0.14-1.76 (2 decimals).
* DL and FE: metafor's test file ``test_misc_metan_vs_rma.uni_with_dat.bcg.r`` (values
  agreeing with Stata ``metan``): DL estimate -0.7141, CI [-1.0644, -0.3638], z -3.9952,
  tau^2 0.3088, I^2 92.1173, exp-scale 0.4896 [0.3449, 0.6950]; FE estimate -0.4303,
  CI [-0.5097, -0.3509], z -10.6247, Q 152.2330, exp-scale 0.6503 [0.6007, 0.7040].
* PM: metafor's ``test_misc_rma_uni.r`` gives tau^2 0.3181 for ``method="DLIT"``, the
  iterated DL estimator that converges to Paule-Mandel (comment in metafor's rma.uni.r). PM
  is also checked against statsmodels' independent implementation and its defining equation.
* ML: no published value was found; checked by maximising the likelihood numerically.
"""

from __future__ import annotations

import dataclasses
import doctest
import time
import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.synthesis import pooling
from analysis.synthesis.pooling import PooledEstimate, pool, pool_frame

PUBLISHED = 5e-4  # half a unit in the 4th decimal

BCG = np.array(
    [
        # tpos, tneg, cpos, cneg
        [4, 119, 11, 128],
        [6, 300, 29, 274],
        [3, 228, 11, 209],
        [62, 13536, 248, 12619],
        [33, 5036, 47, 5761],
        [180, 1361, 372, 1079],
        [8, 2537, 10, 619],
        [505, 87886, 499, 87892],
        [29, 7470, 45, 7232],
        [17, 1699, 65, 1600],
        [186, 50448, 141, 27197],
        [5, 2493, 3, 2338],
        [27, 16886, 29, 17825],
    ],
    dtype=float,
)


@pytest.fixture(scope="module")
def bcg() -> tuple[np.ndarray, np.ndarray]:
    """Log risk ratios and their sampling variances (metafor ``escalc(measure="RR")``)."""
    tpos, tneg, cpos, cneg = BCG.T
    yi = np.log((tpos / (tpos + tneg)) / (cpos / (cpos + cneg)))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    return yi, vi


def test_bcg_effect_sizes_match_escalc(bcg):
    # escalc output printed in metafor's README (4 decimals): guards the reference data.
    yi, vi = bcg
    assert yi[[0, 5, 7, 11]] == pytest.approx([-0.8893, -0.7861, 0.0120, 0.4459], abs=PUBLISHED)
    assert vi[[0, 5, 7, 11]] == pytest.approx([0.3256, 0.0069, 0.0040, 0.5325], abs=PUBLISHED)


# ---------------------------------------------------------------------------------------
# published metafor output


def test_reml_matches_metafor(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), method="reml")
    assert res.estimate == pytest.approx(-0.7145, abs=PUBLISHED)
    assert res.se == pytest.approx(0.1798, abs=PUBLISHED)
    assert res.statistic == pytest.approx(-3.9744, abs=PUBLISHED)
    assert res.p_value < 1e-4
    assert res.ci_low == pytest.approx(-1.0669, abs=PUBLISHED)
    assert res.ci_high == pytest.approx(-0.3622, abs=PUBLISHED)
    assert res.tau2 == pytest.approx(0.3132, abs=PUBLISHED)
    assert res.tau2_se == pytest.approx(0.1664, abs=PUBLISHED)
    assert res.i2 == pytest.approx(92.22, abs=5e-3)  # printed with 2 decimals
    assert res.h2 == pytest.approx(12.86, abs=5e-3)
    assert res.q == pytest.approx(152.2330, abs=PUBLISHED)
    assert res.q_df == 12
    assert res.q_p_value < 1e-4
    assert (res.k, res.method, res.hksj, res.level) == (13, "reml", False, 0.95)


def test_reml_prediction_interval_matches_metafor_predict(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi))
    assert np.exp(res.estimate) == pytest.approx(0.4894, abs=PUBLISHED)
    assert np.exp(res.ci_low) == pytest.approx(0.3441, abs=PUBLISHED)
    assert np.exp(res.ci_high) == pytest.approx(0.6962, abs=PUBLISHED)
    assert np.exp(res.pi_low) == pytest.approx(0.1546, abs=PUBLISHED)
    assert np.exp(res.pi_high) == pytest.approx(1.5490, abs=PUBLISHED)


def test_reml_knapp_hartung_matches_metafor(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), hksj=True)
    assert res.estimate == pytest.approx(-0.7145, abs=PUBLISHED)
    assert res.se == pytest.approx(0.1808, abs=PUBLISHED)
    assert res.statistic == pytest.approx(-3.9522, abs=PUBLISHED)
    assert res.p_value == pytest.approx(0.0019, abs=PUBLISHED)
    assert res.ci_low == pytest.approx(-1.1084, abs=PUBLISHED)
    assert res.ci_high == pytest.approx(-0.3206, abs=PUBLISHED)
    # predict() uses t(k - 1) for the prediction interval too (2 decimals published).
    assert np.exp(res.pi_low) == pytest.approx(0.14, abs=5e-3)
    assert np.exp(res.pi_high) == pytest.approx(1.76, abs=5e-3)
    assert res.tau2 == pytest.approx(0.3132, abs=PUBLISHED)
    assert res.hksj is True


def test_dl_matches_metafor_and_metan(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), method="dl")
    assert res.estimate == pytest.approx(-0.7141, abs=PUBLISHED)
    assert res.ci_low == pytest.approx(-1.0644, abs=PUBLISHED)
    assert res.ci_high == pytest.approx(-0.3638, abs=PUBLISHED)
    assert res.statistic == pytest.approx(-3.9952, abs=PUBLISHED)
    assert res.tau2 == pytest.approx(0.3088, abs=PUBLISHED)
    assert res.i2 == pytest.approx(92.1173, abs=PUBLISHED)
    assert np.exp([res.estimate, res.ci_low, res.ci_high]) == pytest.approx([0.4896, 0.3449, 0.6950], abs=PUBLISHED)


def test_fixed_effect_matches_metafor_and_metan(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), method="fe")
    assert res.estimate == pytest.approx(-0.4303, abs=PUBLISHED)
    assert res.se == pytest.approx(0.4303 / 10.6247, abs=PUBLISHED)  # estimate / published z
    assert res.ci_low == pytest.approx(-0.5097, abs=PUBLISHED)
    assert res.ci_high == pytest.approx(-0.3509, abs=PUBLISHED)
    assert res.statistic == pytest.approx(-10.6247, abs=PUBLISHED)
    assert res.q == pytest.approx(152.2330, abs=PUBLISHED)
    assert np.exp([res.estimate, res.ci_low, res.ci_high]) == pytest.approx([0.6503, 0.6007, 0.7040], abs=PUBLISHED)
    assert res.tau2 == 0.0
    assert np.isnan(res.tau2_se)
    assert (res.pi_low, res.pi_high) == (res.ci_low, res.ci_high)


def test_paule_mandel_matches_metafor_dlit(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), method="pm")
    assert res.tau2 == pytest.approx(0.3181, abs=PUBLISHED)


# ---------------------------------------------------------------------------------------
# independent computations


def _weighted_mean(yi, vi, tau2):
    w = 1 / (vi + tau2)
    return np.sum(w * yi) / np.sum(w), w


def test_dl_equals_closed_form(bcg):
    yi, vi = bcg
    w = 1 / vi
    mu_fe = np.sum(w * yi) / np.sum(w)
    q = np.sum(w * (yi - mu_fe) ** 2)
    tau2 = max(0.0, (q - 12) / (np.sum(w) - np.sum(w**2) / np.sum(w)))
    mu, w_re = _weighted_mean(yi, vi, tau2)
    res = pool(yi, np.sqrt(vi), method="dl")
    assert res.q == pytest.approx(q, rel=1e-12)
    assert res.tau2 == pytest.approx(tau2, rel=1e-12)
    assert res.estimate == pytest.approx(mu, rel=1e-12)
    assert res.se == pytest.approx(np.sqrt(1 / np.sum(w_re)), rel=1e-12)


@pytest.mark.parametrize("method", ["reml", "dl", "pm", "ml"])
def test_knapp_hartung_equals_closed_form(bcg, method):
    """HKSJ SE = sqrt(sum w (y - mu)^2 / ((k - 1) sum w)), w = 1/(v + tau2), with t(k - 1)."""
    yi, vi = bcg
    tau2 = pool(yi, np.sqrt(vi), method=method).tau2
    mu, w = _weighted_mean(yi, vi, tau2)
    se = np.sqrt(np.sum(w * (yi - mu) ** 2) / (12 * np.sum(w)))
    crit = stats.t.ppf(0.975, 12)
    res = pool(yi, np.sqrt(vi), method=method, hksj=True)
    assert res.se == pytest.approx(se, rel=1e-10)
    assert res.ci_low == pytest.approx(mu - crit * se, rel=1e-10)
    assert res.pi_high == pytest.approx(mu + crit * np.sqrt(se**2 + tau2), rel=1e-10)
    assert res.p_value == pytest.approx(2 * stats.t.sf(abs(mu / se), 12), rel=1e-8)


@pytest.mark.parametrize("method", ["reml", "ml"])
def test_likelihood_estimators_maximise_the_likelihood(bcg, method):
    """tau2 agrees with a direct numerical maximisation of the (restricted) log-likelihood."""
    yi, vi = bcg

    def negative_ll(tau2):
        mu, w = _weighted_mean(yi, vi, tau2)
        ll = -0.5 * np.sum(np.log(vi + tau2)) - 0.5 * np.sum(w * (yi - mu) ** 2)
        if method == "reml":
            ll -= 0.5 * np.log(np.sum(w))
        return -ll

    best = optimize.minimize_scalar(negative_ll, bounds=(0, 5), method="bounded", options={"xatol": 1e-10})
    res = pool(yi, np.sqrt(vi), method=method)
    # Fisher scoring stops once a step is <= 1e-5 (metafor's threshold).
    assert res.tau2 == pytest.approx(best.x, abs=1e-5)
    assert res.estimate == pytest.approx(_weighted_mean(yi, vi, best.x)[0], abs=1e-5)


def test_paule_mandel_solves_its_estimating_equation(bcg):
    yi, vi = bcg

    def generalised_q(tau2):
        mu, w = _weighted_mean(yi, vi, tau2)
        return np.sum(w * (yi - mu) ** 2)

    root = optimize.brentq(lambda t: generalised_q(t) - 12, 0, 10, xtol=1e-14)
    assert pool(yi, np.sqrt(vi), method="pm").tau2 == pytest.approx(root, rel=1e-9)


@pytest.mark.parametrize(("method", "method_re"), [("dl", "dl"), ("pm", "pm")])
def test_agrees_with_statsmodels(bcg, method, method_re):
    from statsmodels.stats.meta_analysis import combine_effects

    yi, vi = bcg
    other = combine_effects(yi, vi, method_re=method_re)
    res = pool(yi, np.sqrt(vi), method=method)
    hk = pool(yi, np.sqrt(vi), method=method, hksj=True)
    assert res.tau2 == pytest.approx(other.tau2, rel=1e-6)
    assert res.estimate == pytest.approx(other.mean_effect_re, rel=1e-6)
    assert res.se == pytest.approx(other.sd_eff_w_re, rel=1e-6)
    assert hk.se == pytest.approx(other.sd_eff_w_re_hksj, rel=1e-6)


def test_i2_uses_typical_within_variance(bcg):
    yi, vi = bcg
    w = 1 / vi
    s2 = 12 * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2))
    for method in ("reml", "ml", "pm"):
        res = pool(yi, np.sqrt(vi), method=method)
        assert res.i2 == pytest.approx(100 * res.tau2 / (res.tau2 + s2), rel=1e-12)
        assert res.h2 == pytest.approx(res.tau2 / s2 + 1, rel=1e-12)
    fe = pool(yi, np.sqrt(vi), method="fe")
    assert fe.i2 == pytest.approx(100 * (fe.q - 12) / fe.q, rel=1e-12)


# Two samples from the simulation below (rounded to 4 decimals) with awkward likelihoods.
OSCILLATING = (
    [0.1382, 0.2591, 0.315, -0.1228, 0.2711, 0.4718, 0.2332, -0.3698, 0.3942, 0.2986],
    [0.3681, 0.2147, 0.2919, 0.3868, 0.3316, 0.0784, 0.2729, 0.3988, 0.2432, 0.3288],
)
BIMODAL = (
    [0.5611, 0.0926, 0.2598, 0.4108, 0.8229, 0.2785, -0.3688, 0.2863, -0.0475, 0.4284],
    [0.1412, 0.3077, 0.2517, 0.1453, 0.3293, 0.0716, 0.2745, 0.0728, 0.2097, 0.3681],
)


def _negative_reml(yi, vi):
    def objective(tau2):
        mu, w = _weighted_mean(yi, vi, tau2)
        return 0.5 * (np.sum(np.log(vi + tau2)) + np.log(np.sum(w)) + np.sum(w * (yi - mu) ** 2))

    return objective


def test_reml_when_fisher_scoring_oscillates():
    """Plain Fisher scoring (metafor's algorithm) does not converge here; the REML maximum is still found."""
    yi, sei = np.array(OSCILLATING[0]), np.array(OSCILLATING[1])
    vi = sei**2
    tau2, steps = max(0.0, yi.var(ddof=1) - vi.mean()), []
    for _ in range(101):
        w = 1 / (vi + tau2)
        s1, s2, s3 = w.sum(), (w**2).sum(), (w**3).sum()
        mu = np.sum(w * yi) / s1
        step = (np.sum(w**2 * (yi - mu) ** 2) - (s1 - s2 / s1)) / (s2 - 2 * s3 / s1 + (s2 / s1) ** 2)
        tau2 = max(tau2 + step, 0.0)
        steps.append(abs(step))
    assert min(steps[-10:]) > 1e-5  # still oscillating after 100 iterations

    best = optimize.minimize_scalar(_negative_reml(yi, vi), bounds=(0, 1), method="bounded", options={"xatol": 1e-12})
    assert pool(yi, sei).tau2 == pytest.approx(best.x, abs=1e-7)


def test_tau2_set_to_zero_when_likelihood_is_higher_there():
    """metafor's ll0check: a local REML maximum below the likelihood at tau2 = 0 is replaced by 0."""
    yi, sei = np.array(BIMODAL[0]), np.array(BIMODAL[1])
    objective = _negative_reml(yi, sei**2)
    local = optimize.minimize_scalar(objective, bounds=(0.001, 0.05), method="bounded")
    assert local.x > 0.005 and objective(0.0) < local.fun  # an interior local maximum, lower than at 0
    with pytest.warns(RuntimeWarning, match="local maximum"):
        res = pool(yi, sei)
    assert res.tau2 == 0.0
    assert res.estimate == pytest.approx(pool(yi, sei, method="fe").estimate, rel=1e-12)


@pytest.mark.parametrize("method", ["reml", "dl", "pm", "ml"])
def test_homogeneous_estimates_give_zero_tau2(method):
    # Q = 0.5 < k - 1: every estimator truncates tau2 at 0 and the RE fit is the FE fit.
    y, se = [0.10, 0.12, 0.09, 0.11], [0.1, 0.1, 0.1, 0.1]
    res = pool(y, se, method=method)
    fe = pool(y, se, method="fe")
    assert res.tau2 == 0.0
    assert res.i2 == 0.0
    assert res.estimate == pytest.approx(fe.estimate)
    assert res.se == pytest.approx(fe.se)


def test_level_changes_interval_width(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), level=0.9)
    crit = stats.norm.ppf(0.95)
    assert res.ci_high - res.estimate == pytest.approx(crit * res.se, rel=1e-12)
    assert res.level == 0.9


# ---------------------------------------------------------------------------------------
# simulation with known truth


def test_reml_hksj_coverage_in_simulation():
    """2000 meta-analyses of k=10 with tau2 = 0.05: the 95% CI should cover the true mean.

    Standard errors vary moderately (0.1-0.3); with very unequal ones (e.g. 0.05-0.4) HKSJ
    is known to undercover somewhat (about 0.93 here), a property of the method. The Monte
    Carlo SE of a coverage near 0.95 is about 0.005.
    """
    rng = np.random.default_rng(20230526)
    reps, k, mean, tau2 = 2000, 10, 0.3, 0.05
    se = rng.uniform(0.1, 0.3, size=(reps, k))
    theta = rng.normal(mean, np.sqrt(tau2), size=(reps, k))
    y = rng.normal(theta, se)
    frame = pd.DataFrame({"rep": np.repeat(np.arange(reps), k), "y": y.ravel(), "se": se.ravel()})
    start = time.perf_counter()
    with warnings.catch_warnings():
        # A few samples have a bimodal likelihood with its maximum at 0 (metafor's ll0check).
        warnings.simplefilter("ignore", RuntimeWarning)
        out = pool_frame(frame, estimate="y", se="se", by="rep", method="reml", hksj=True)
        wald = pool_frame(frame, estimate="y", se="se", by="rep", method="reml")
    elapsed = time.perf_counter() - start
    assert len(out) == reps
    covered = (out["ci_low"] <= mean) & (mean <= out["ci_high"])
    assert 0.93 <= covered.mean() <= 0.97
    # The Wald z interval ignores the uncertainty in tau2 and undercovers with k = 10.
    assert ((wald["ci_low"] <= mean) & (mean <= wald["ci_high"])).mean() < 0.94
    assert elapsed < 5


def test_hksj_with_equal_standard_errors_is_the_t_interval():
    """With equal weights the HKSJ interval is the classical t interval for the mean of y."""
    y = np.array([0.12, 0.55, -0.20, 0.31, 0.08, 0.47])
    res = pool(y, np.full(y.size, 0.2), hksj=True, level=0.9)
    half = stats.t.ppf(0.95, y.size - 1) * y.std(ddof=1) / np.sqrt(y.size)
    assert res.estimate == pytest.approx(y.mean(), rel=1e-12)
    assert (res.ci_low, res.ci_high) == pytest.approx((y.mean() - half, y.mean() + half), rel=1e-12)


# ---------------------------------------------------------------------------------------
# a single province


def test_single_estimate_is_returned_with_its_own_interval():
    res = pool([0.3], [0.1], method="reml", hksj=True)
    assert res.estimate == 0.3
    assert res.se == 0.1
    assert res.ci_low == pytest.approx(0.3 - stats.norm.ppf(0.975) * 0.1)
    assert (res.k, res.q, res.q_df, res.method, res.hksj) == (1, 0.0, 0, "fe", False)
    for name in ("tau2", "tau2_se", "i2", "h2", "q_p_value", "pi_low", "pi_high"):
        assert np.isnan(getattr(res, name)), name


def test_scalar_input_is_one_estimate():
    assert pool(0.3, 0.1).estimate == 0.3


# ---------------------------------------------------------------------------------------
# input validation


def test_lengths_must_match():
    with pytest.raises(ValueError, match=r"differ in length \(3 and 2\)"):
        pool([1, 2, 3], [1, 1])


def test_empty_input_is_rejected():
    with pytest.raises(ValueError, match="k must be at least 1"):
        pool([], [])


def test_non_finite_estimates_are_named():
    with pytest.raises(ValueError, match=r"estimates\[1\] = nan, estimates\[3\] = inf"):
        pool([0.1, np.nan, 0.2, np.inf], [0.1] * 4)


@pytest.mark.parametrize("bad", [0.0, -0.1, np.nan, np.inf])
def test_standard_errors_must_be_finite_and_positive(bad):
    with pytest.raises(ValueError, match=rf"se\[2\] = {bad!r}"):
        pool([0.1, 0.2, 0.3], [0.1, 0.1, bad])


def test_non_numeric_input_is_rejected():
    with pytest.raises(ValueError, match="estimates must be numeric"):
        pool(["a", "b"], [0.1, 0.1])


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"method": "hedges"}, "method must be one of"),
        ({"level": 95}, r"write 0\.95"),
        ({"level": 1.0}, "level must be in"),
        ({"weights": "sample-size"}, "weights must be one of"),
    ],
)
def test_options_are_checked(options, message):
    with pytest.raises(ValueError, match=message):
        pool([0.1, 0.2], [0.1, 0.1], **options)


def test_knapp_hartung_with_fixed_effect_warns():
    with pytest.warns(UserWarning, match="random-effects"):
        pool([0.1, 0.5, 0.2], [0.1, 0.1, 0.1], method="fe", hksj=True)


# ---------------------------------------------------------------------------------------
# pool_frame


@pytest.fixture
def long_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    rows = []
    for indicator, k in (("readmission", 6), ("mortality", 5), ("infection", 1), ("wait", 3)):
        for effect in ("level_change", "slope_change"):
            for province in range(k):
                rows.append(
                    {
                        "indicator": indicator,
                        "effect": effect,
                        "province": province,
                        "value": rng.normal(0.2, 0.3),
                        "std_error": rng.uniform(0.05, 0.3),
                    }
                )
    return pd.DataFrame(rows).sample(frac=1.0, random_state=3)  # order must not matter


@pytest.mark.parametrize("method", ["reml", "dl", "fe", "pm", "ml"])
@pytest.mark.parametrize("hksj", [False, True])
def test_pool_frame_equals_separate_pool_calls(long_frame, method, hksj):
    with pytest.warns(UserWarning) if (hksj and method == "fe") else _no_warning():
        out = pool_frame(
            long_frame, estimate="value", se="std_error", by=["indicator", "effect"], method=method, hksj=hksj
        )
    assert list(out.columns[:2]) == ["indicator", "effect"]
    assert list(out.columns[2:]) == [f.name for f in dataclasses.fields(PooledEstimate)]
    assert len(out) == 8
    assert out[["indicator", "effect"]].equals(out[["indicator", "effect"]].sort_values(["indicator", "effect"]))
    for row in out.itertuples(index=False):
        part = long_frame[(long_frame["indicator"] == row.indicator) & (long_frame["effect"] == row.effect)]
        with pytest.warns(UserWarning) if (hksj and method == "fe" and len(part) > 1) else _no_warning():
            expected = pool(part["value"], part["std_error"], method=method, hksj=hksj).to_frame().iloc[0]
        got = pd.Series(row._asdict())[expected.index]
        for name, value in expected.items():
            if isinstance(value, float):
                assert got[name] == pytest.approx(value, rel=1e-12, abs=1e-14, nan_ok=True), name
            else:
                assert got[name] == value, name


def test_pool_frame_singleton_group_gets_a_row(long_frame):
    out = pool_frame(long_frame, estimate="value", se="std_error", by=["indicator", "effect"])
    single = out[out["indicator"] == "infection"]
    assert len(single) == 2
    assert (single["k"] == 1).all() and (single["method"] == "fe").all()
    assert single["tau2"].isna().all()


def test_pool_frame_without_by_pools_everything(bcg):
    yi, vi = bcg
    out = pool_frame(pd.DataFrame({"y": yi, "se": np.sqrt(vi)}), estimate="y", se="se")
    assert len(out) == 1
    assert out.loc[0, "estimate"] == pytest.approx(pool(yi, np.sqrt(vi)).estimate, rel=1e-14)


def test_pool_frame_names_the_group_and_row_with_invalid_input(long_frame):
    frame = long_frame.copy()
    target = frame.index[(frame["indicator"] == "mortality") & (frame["effect"] == "slope_change")][2]
    frame.loc[target, "std_error"] = -0.2
    with pytest.raises(ValueError, match=rf"indicator='mortality', effect='slope_change'.*at row {target} = -0\.2"):
        pool_frame(frame, estimate="value", se="std_error", by=["indicator", "effect"])


def test_pool_frame_reports_non_numeric_values():
    frame = pd.DataFrame({"g": ["a", "a"], "y": ["0.1", "oops"], "se": [0.1, 0.1]}, index=["x1", "x2"])
    with pytest.raises(ValueError, match=r"g='a'.*'y' at row 'x2' = 'oops'"):
        pool_frame(frame, estimate="y", se="se", by="g")


def test_pool_frame_checks_columns_and_keys(long_frame):
    with pytest.raises(ValueError, match=r"no column\(s\) \['nope'\]"):
        pool_frame(long_frame, estimate="value", se="std_error", by="nope")
    frame = long_frame.copy()
    frame.loc[frame.index[0], "indicator"] = None
    with pytest.raises(ValueError, match="missing group key"):
        pool_frame(frame, estimate="value", se="std_error", by="indicator")
    with pytest.raises(ValueError, match="clash"):
        pool_frame(long_frame.rename(columns={"effect": "k"}), estimate="value", se="std_error", by="k")


def test_pool_frame_of_empty_frame_with_groups_is_empty():
    out = pool_frame(pd.DataFrame({"g": [], "y": [], "se": []}), estimate="y", se="se", by="g")
    assert out.empty and "estimate" in out.columns


def test_pool_frame_is_fast_for_many_groups():
    """REML + HKSJ for 1,000 indicators x 32 provinces, all groups fitted together."""
    rng = np.random.default_rng(1)
    groups, k = 1000, 32
    se = rng.uniform(0.05, 0.3, size=(groups, k))
    y = rng.normal(rng.normal(0.2, np.sqrt(0.05), size=(groups, k)), se)
    frame = pd.DataFrame({"g": np.repeat(np.arange(groups), k), "y": y.ravel(), "se": se.ravel()})
    start = time.perf_counter()
    out = pool_frame(frame, estimate="y", se="se", by="g", hksj=True)
    assert time.perf_counter() - start < 2
    assert len(out) == groups and out["estimate"].notna().all()


# ---------------------------------------------------------------------------------------
# result object


def test_result_is_read_only_and_tidy(bcg):
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi))
    with pytest.raises(dataclasses.FrozenInstanceError):
        res.estimate = 0.0  # type: ignore[misc]
    frame = res.to_frame()
    assert frame.shape == (1, len(dataclasses.fields(PooledEstimate)))
    assert frame.loc[0, "tau2"] == res.tau2
    assert res.tau == pytest.approx(np.sqrt(res.tau2))
    assert "<table" in res._repr_html_()


def test_docstring_examples_run():
    failures, tried = doctest.testmod(pooling, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert tried > 0
    assert failures == 0


class _no_warning:
    """Context manager that turns any warning inside it into a test failure."""

    def __enter__(self):
        self._catcher = warnings.catch_warnings()
        self._catcher.__enter__()
        warnings.simplefilter("error")

    def __exit__(self, *exc):
        return self._catcher.__exit__(*exc)


def test_hksj_floor_never_narrows_the_wald_interval(bcg):
    """metafor's test="adhoc": the Knapp-Hartung factor q floored at 1, t(k - 1) reference.
    Closed form: se = max(se_knha, se_wald) with the same tau^2 and estimate."""
    from scipy import stats

    yi, vi = bcg
    rng = np.random.default_rng(3)
    homogeneous_y = 0.2 + rng.normal(0, 0.02, 12)  # estimates agree far better than their SEs: q < 1
    for y, s in ((yi, np.sqrt(vi)), (homogeneous_y, np.full(12, 0.2))):
        wald, knha = pool(y, s, hksj=False), pool(y, s, hksj=True)
        floored = pool(y, s, hksj=True, hksj_floor=True)
        k = len(y)
        assert floored.estimate == pytest.approx(wald.estimate) and floored.tau2 == pytest.approx(wald.tau2)
        assert floored.se == pytest.approx(max(wald.se, knha.se))
        half = stats.t.ppf(0.975, k - 1) * floored.se
        assert (floored.ci_low, floored.ci_high) == pytest.approx((floored.estimate - half, floored.estimate + half))
        assert floored.p_value == pytest.approx(2 * stats.t.sf(abs(floored.estimate / floored.se), k - 1))
    assert knha.se < wald.se  # the homogeneous case is the one the floor changes


# ---------------------------------------------------------------------------------------
# equal weights


def test_equal_weights_with_hksj_is_the_one_sample_t_test(bcg):
    """Reference: scipy's one-sample t test of the estimates (independent of this module)."""
    yi, vi = bcg
    res = pool(yi, np.sqrt(vi), hksj=True, weights="equal", level=0.9)
    test = stats.ttest_1samp(yi, 0.0)
    ci = test.confidence_interval(confidence_level=0.9)
    assert res.estimate == pytest.approx(yi.mean(), rel=1e-12)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), rel=1e-12)
    assert res.p_value == pytest.approx(test.pvalue, rel=1e-10)
    assert res.weights == "equal" and res.k == len(yi)
    # heterogeneity does not depend on how the mean is weighted
    weighted = pool(yi, np.sqrt(vi), hksj=True)
    assert (res.tau2, res.i2, res.q) == pytest.approx((weighted.tau2, weighted.i2, weighted.q))


def test_equal_weights_wald_variance_and_floor_closed_form(bcg):
    """Without HKSJ: var = sum(v + tau2) / k^2 and a z interval; the floor takes the larger
    of that and the empirical variance, with t(k - 1)."""
    yi, vi = bcg
    k = len(yi)
    wald = pool(yi, np.sqrt(vi), weights="equal")
    model_var = np.sum(vi + wald.tau2) / k**2
    assert wald.se == pytest.approx(np.sqrt(model_var), rel=1e-12)
    z = stats.norm.ppf(0.975)
    assert (wald.ci_low, wald.ci_high) == pytest.approx((yi.mean() - z * wald.se, yi.mean() + z * wald.se))
    assert (wald.pi_low, wald.pi_high) == pytest.approx(
        (yi.mean() - z * np.sqrt(model_var + wald.tau2), yi.mean() + z * np.sqrt(model_var + wald.tau2))
    )
    empirical_var = yi.var(ddof=1) / k
    rng = np.random.default_rng(5)
    homogeneous = 0.2 + rng.normal(0, 0.02, 12)  # empirical variance far below the model's
    for y, s in ((yi, np.sqrt(vi)), (homogeneous, np.full(12, 0.2))):
        floored = pool(y, s, hksj=True, hksj_floor=True, weights="equal")
        plain = pool(y, s, hksj=True, weights="equal")
        model = pool(y, s, weights="equal")
        assert floored.se == pytest.approx(max(plain.se, model.se), rel=1e-12)
    assert plain.se < model.se  # the homogeneous case is the one the floor changes
    assert empirical_var > model_var  # BCG: heterogeneity beyond tau2's share of the model


def test_equal_weights_are_unbiased_when_effects_grow_with_their_standard_errors():
    """Known truth: province effects proportional to their level, standard errors too (as
    absolute effects of rates). Inverse-variance weights favour the small effects and are
    biased towards zero; equal weights estimate the mean effect and cover it at ~95%
    (Monte Carlo SE of a coverage near 0.95 with 2000 replicates: 0.005)."""
    rng = np.random.default_rng(26)
    reps, k = 2000, 32
    level = rng.lognormal(0.0, 0.5, size=(reps, k))  # province baseline, mean exp(0.125)
    theta = -0.2 * level * rng.lognormal(0.0, 0.3, size=(reps, k)) / np.exp(0.045)
    se = 0.15 * level
    y = rng.normal(theta, se)
    mean = -0.2 * np.exp(0.125)
    frame = pd.DataFrame({"rep": np.repeat(np.arange(reps), k), "y": y.ravel(), "se": se.ravel()})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        equal = pool_frame(frame, estimate="y", se="se", by="rep", hksj=True, hksj_floor=True, weights="equal")
        inverse = pool_frame(frame, estimate="y", se="se", by="rep", hksj=True, hksj_floor=True)
    assert abs(equal["estimate"].mean() / mean - 1) < 0.01
    assert inverse["estimate"].mean() / mean - 1 < -0.1  # towards zero
    covered = (equal["ci_low"] <= mean) & (mean <= equal["ci_high"])
    assert 0.935 <= covered.mean() <= 0.965
    assert ((inverse["ci_low"] <= mean) & (mean <= inverse["ci_high"])).mean() < 0.85
    assert set(equal["weights"]) == {"equal"} and set(inverse["weights"]) == {"inverse-variance"}


def test_pool_frame_with_equal_weights_equals_separate_pool_calls(long_frame):
    out = pool_frame(
        long_frame, estimate="value", se="std_error", by=["indicator", "effect"], hksj=True, weights="equal"
    ).set_index(["indicator", "effect"])
    for (indicator, effect), rows in long_frame.groupby(["indicator", "effect"]):
        one = pool(rows["value"], rows["std_error"], hksj=True, weights="equal")
        got = out.loc[(indicator, effect)]
        assert got["estimate"] == pytest.approx(one.estimate, rel=1e-12)
        assert got["se"] == pytest.approx(one.se, rel=1e-12)
        assert got["weights"] == "equal"
