"""Effect contrasts: quantiles, p-values and delta-method intervals against scipy.stats."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.its import effects


@pytest.mark.parametrize("df", [1.0, 2.5, 7.0, 30.0, 400.0, np.inf])
@pytest.mark.parametrize("level", [0.8, 0.95, 0.99])
def test_critical_values_match_scipy_stats(df, level):
    reference = stats.norm.ppf(0.5 + level / 2) if np.isinf(df) else stats.t.ppf(0.5 + level / 2, df)
    assert effects.critical_value(df, level) == pytest.approx(reference, rel=1e-10)


@pytest.mark.parametrize("df", [1.0, 3.3, 20.0, np.inf])
@pytest.mark.parametrize("z", [0.0, -0.7, 1.96, 4.5, -12.0])
def test_p_values_match_scipy_stats(df, z):
    reference = 2 * (stats.norm.sf(abs(z)) if np.isinf(df) else stats.t.sf(abs(z), df))
    assert effects._p_value(z, df) == pytest.approx(reference, rel=1e-10, abs=1e-300)
    assert np.isnan(effects._p_value(np.nan, df))


def test_linear_contrast_is_the_delta_method_with_a_t_interval():
    cov = np.array([[0.04, 0.01], [0.01, 0.09]])
    g = np.array([1.0, -2.0])
    c = effects.linear("x", 0.5, g, cov, df=12.0, level=0.95, scale="log")
    se = np.sqrt(g @ cov @ g)
    assert c.se == pytest.approx(se)
    assert (c.ci_low, c.ci_high) == pytest.approx(
        (0.5 - stats.t.ppf(0.975, 12) * se, 0.5 + stats.t.ppf(0.975, 12) * se)
    )
    assert c.p_value == pytest.approx(2 * stats.t.sf(0.5 / se, 12))


def test_relative_effect_interval_is_built_on_the_log_scale():
    c = effects.ratio_minus_one("r", np.log(1.2), np.array([1.0]), np.array([[0.01]]), df=np.inf, level=0.95)
    assert c.estimate == pytest.approx(0.2)
    assert (c.ci_low, c.ci_high) == pytest.approx(
        (1.2 * np.exp(-1.959964 * 0.1) - 1, 1.2 * np.exp(1.959964 * 0.1) - 1), rel=1e-6
    )
    assert c.se == pytest.approx(1.2 * 0.1)


def _fit(family, seed=0):
    from analysis.its import ITSDesign, SegmentedRegression
    from tests.conftest import ar1

    months = pd.period_range("2019-01", "2025-12", freq="M")
    design = ITSDesign(interruption="2023-06", washin=3, calendar="china")
    rng = np.random.default_rng(seed)
    X = design.matrix(months)
    eta = (
        -1.0
        + 0.004 * X["time"]
        + 0.15 * X["level_change"]
        + 0.01 * X["slope_change"]
        + ar1(rng, len(months), 0.5, 0.05)
    )
    n = rng.integers(800, 1600, len(months))
    if family == "gaussian":
        return SegmentedRegression(10 + eta.to_numpy(), time=months, design=design).fit(), months
    if family == "poisson":
        return SegmentedRegression(
            rng.poisson(n * np.exp(eta)), time=months, design=design, family="poisson", exposure=n
        ).fit(), months
    return SegmentedRegression(
        rng.binomial(n, 1 / (1 + np.exp(-eta))), time=months, design=design, family="binomial", trials=n
    ).fit(), months


@pytest.mark.parametrize("family", ["gaussian", "poisson", "binomial"])
def test_effects_at_equals_effect_at_month_by_month(family):
    res, months = _fit(family)
    when = months[months >= pd.Period("2023-06", "M")][::5]
    table = res.effects_at(when, unit_scale=100.0)
    assert list(table["month"][: len(when)]) == [str(m) for m in when]
    for month in when:
        for contrast in res.effect_at(month, unit_scale=100.0):
            row = table[(table["month"] == str(month)) & (table["measure"] == contrast.measure)].iloc[0]
            for field in ("estimate", "se", "ci_low", "ci_high", "p_value", "df"):
                assert row[field] == pytest.approx(getattr(contrast, field), rel=1e-9, abs=1e-12), (month, field)


def test_vectorised_degrees_of_freedom_equal_one_at_a_time():
    res, _ = _fit("binomial", seed=3)
    G = np.random.default_rng(0).normal(size=(len(res.params), 7))
    assert getattr(res.contrast_df, "vectorized", False)
    np.testing.assert_allclose(res.df_for_many(G), [res.df_for(G[:, j]) for j in range(7)], rtol=1e-12)


@pytest.mark.parametrize("df", [3.5, 40.0, np.inf])
def test_vectorised_contrasts_equal_the_scalar_ones(df):
    # effect_at and effects_at both use the vectorised contrasts; the scalar ones above are
    # checked against scipy.stats, and these must agree with them.
    rng = np.random.default_rng(5)
    A = rng.normal(size=(4, 4))
    cov = A @ A.T / 50
    G = rng.normal(size=(6, 4))
    values = rng.normal(0, 0.3, 6)
    many = effects.linear_many(values, G, cov, df=np.full(6, df), level=0.9)
    ratios = effects.ratio_minus_one_many(values, G, cov, df=np.full(6, df), level=0.9)
    for i in range(6):
        one = effects.linear("x", values[i], G[i], cov, df=df, level=0.9, scale="log")
        ratio = effects.ratio_minus_one("x", values[i], G[i], cov, df=df, level=0.9)
        for field in ("estimate", "se", "ci_low", "ci_high", "p_value", "df"):
            assert many[field][i] == pytest.approx(getattr(one, field), rel=1e-12)
            assert ratios[field][i] == pytest.approx(getattr(ratio, field), rel=1e-12)
