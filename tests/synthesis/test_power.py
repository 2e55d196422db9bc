"""Power and minimum detectable effects: closed forms, Monte Carlo of the test itself, and
simulation of the whole default model with known effects.

References: the normal-theory MDE ``(z_{1-a/2} + z_power) se`` (e.g. Bloom 1995, Eval Rev
19:547-556); the power of a t test is a noncentral-t probability; both are checked by
direct simulation of the test statistic. The analytic MDE of a provincial series is then
checked against refits of the default model to data simulated from the fitted model with
the effect added (slow tests), and the national MDE against pooling simulated provincial
estimates exactly as the pipeline does.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats

from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.synthesis.national import national_effects
from analysis.synthesis.power import (
    fit_default_model,
    mde_from_se,
    mde_table,
    on_test_scale,
    pooled_mde,
    power_from_se,
    simulate_mde,
    simulate_national_power,
    simulate_pooled_power,
    simulate_series_power,
)


def test_normal_mde_is_the_textbook_formula():
    se = np.array([0.01, 0.1, 2.0])
    expected = (stats.norm.isf(0.025) + stats.norm.ppf(0.8)) * se
    np.testing.assert_allclose(mde_from_se(se), expected, rtol=1e-9)
    np.testing.assert_allclose(
        mde_from_se(se, alpha=0.01, power=0.9), (stats.norm.isf(0.005) + stats.norm.ppf(0.9)) * se, rtol=1e-9
    )


@pytest.mark.parametrize("df", [3.0, 9.5, 31.0, 200.0])
def test_t_mde_inverts_the_noncentral_t_power(df):
    mde = float(mde_from_se(0.2, df=df))
    crit = stats.t.isf(0.025, df)
    reference = optimize.brentq(lambda d: stats.nct.sf(crit, df, d / 0.2) - 0.8, 0.01, 10)
    assert mde == pytest.approx(reference, rel=1e-6)
    assert float(power_from_se(mde, 0.2, df=df)) == pytest.approx(0.8, abs=1e-6)
    assert mde > float(mde_from_se(0.2))  # fewer degrees of freedom need a larger effect


@pytest.mark.parametrize("df, effect", [(np.inf, 2.0), (6.0, 3.0), (20.0, 1.0), (20.0, 0.0)])
def test_power_matches_monte_carlo_of_the_t_test(df, effect):
    rng = np.random.default_rng(11)
    n, se = 400_000, 1.0
    estimate = rng.normal(effect, se, n)
    if np.isfinite(df):
        se_hat = se * np.sqrt(rng.chisquare(df, n) / df)
        crit = stats.t.isf(0.025, df)
    else:
        se_hat, crit = np.full(n, se), stats.norm.isf(0.025)
    side = 1.0 if effect >= 0 else -1.0
    mc = np.mean(side * estimate / se_hat > crit)
    assert float(power_from_se(effect, se, df=df)) == pytest.approx(mc, abs=4 * np.sqrt(mc * (1 - mc) / n) + 1e-4)


def _rows(log_ratio, se, df, *, df_column=60.0, measure="effect_end_relative"):
    crit = stats.t.ppf(0.975, df)
    p = 2 * stats.t.sf(np.abs(log_ratio) / se, df)
    if measure == "effect_end_relative":
        est, low, high = np.expm1(log_ratio), np.expm1(log_ratio - crit * se), np.expm1(log_ratio + crit * se)
    else:
        est, low, high = log_ratio, log_ratio - crit * se, log_ratio + crit * se
    se_table = (1 + est) * se if measure == "effect_end_relative" else se  # as the pipeline reports it
    return pd.DataFrame(
        {
            "measure": measure,
            "scale": "ratio - 1" if measure == "effect_end_relative" else "logit",
            "estimate": est,
            "se": se_table,
            "ci_low": low,
            "ci_high": high,
            "p_value": p,
            "df": df_column,
        }
    )


def test_test_scale_inputs_recover_se_and_satterthwaite_df():
    log_ratio = np.array([0.3, -0.05, 0.01, 0.2, -0.4])
    se = np.array([0.1, 0.04, 0.05, 0.02, 0.3])
    df = np.array([4.0, 9.0, 15.0, 30.0, 2.5])
    out = on_test_scale(_rows(log_ratio, se, df))
    np.testing.assert_allclose(out["test_estimate"], log_ratio, rtol=1e-12)
    np.testing.assert_allclose(out["test_df"], df, rtol=1e-6)
    np.testing.assert_allclose(out["test_se"], se, rtol=1e-6)
    linear = on_test_scale(_rows(log_ratio, se, df, measure="level_change"))
    np.testing.assert_allclose(linear["test_se"], se, rtol=1e-6)
    assert (linear["test_scale"] == "logit").all() and (out["test_scale"] == "log ratio").all()


def test_fit_default_model_is_the_pipelines_model():
    """fit_default_model rebuilds the model of analysis.evaluation.fit_panel.fit_series: same
    effects for a Gaussian, a binomial and a Poisson series (guards against drift)."""
    from analysis.evaluation.fit_panel import fit_series
    from analysis.evaluation.settings import EvaluationSettings

    data = generate(6, provinces=["340000"], indicators=[9, 12, 34])
    settings = EvaluationSettings()
    for _, series in data.panel.groupby("indicator"):
        rows, _, diagnostics, _ = fit_series(series, start=pd.Period("2023-08", "M"), settings=settings)
        res = fit_default_model(series, start="2023-08", settings=settings)
        _, relative = res.effect_at(settings.evaluation_month)
        row = next(r for r in rows if r["measure"] == "effect_end_relative")
        assert (row["estimate"], row["ci_low"], row["p_value"]) == pytest.approx(
            (relative.estimate, relative.ci_low, relative.p_value), rel=1e-12
        )
        assert diagnostics["phi"] == res.cov_details["phi"]


def test_table_of_the_real_pipeline_has_satterthwaite_df_below_the_df_column():
    data = generate(5, provinces=["110000"], indicators=[11, 12])
    res = fit_default_model(data.panel[data.panel["indicator"] == 11], start="2023-06")
    absolute, relative = res.effect_at("2025-09")
    row = pd.DataFrame([{**relative.as_dict(), "measure": "effect_end_relative", "df": res.df_resid}])
    # the delta-method se of log(ratio) is se(ratio - 1) / ratio
    recovered = on_test_scale(row)
    assert float(recovered["test_se"].iat[0]) == pytest.approx(relative.se / (1 + relative.estimate), rel=1e-6)
    assert float(recovered["test_df"].iat[0]) <= res.df_resid


def _consistent_effects(seed=3, k=32, indicators=(11, 32)):
    """An effects table whose df column is the df of its intervals (as the pipeline's would be
    with the contrast df): then mde_table's pooling inputs equal the pipeline's."""
    rng = np.random.default_rng(seed)
    frames = []
    for indicator in indicators:
        se = rng.uniform(0.03, 0.15, k)
        log_ratio = rng.normal(0.04, 0.05, k) + rng.normal(0, se)
        frame = _rows(log_ratio, se, np.full(k, 40.0), df_column=40.0)
        frames.append(frame.assign(province=[f"{11 + i}0000" for i in range(k)], indicator=indicator))
    return pd.concat(frames, ignore_index=True)


def test_mde_table_national_rows_equal_the_pipeline_pooling():
    effects = _consistent_effects()
    table = mde_table(effects)
    national = national_effects(effects)
    national = national[national["measure"] == "effect_end_relative"].set_index("indicator")
    mine = table[table["scope"] == "national"].set_index("indicator")
    np.testing.assert_allclose(mine["estimate"], national["estimate"], rtol=1e-9)
    np.testing.assert_allclose(mine["p_value"], national["p_value"], rtol=1e-9)
    np.testing.assert_allclose(mine["tau2"], national["tau2"], rtol=1e-9)
    assert (mine["k"] == 32).all() and (mine["test_df"] == 31).all()
    # the national MDE is pooled_mde of the provincial se's
    for indicator, row in mine.iterrows():
        se = on_test_scale(effects[effects["indicator"] == indicator])["test_se"]
        assert row["mde_test"] == pytest.approx(pooled_mde(se, tau2=row["tau2"]), rel=1e-3)


def test_mde_table_provincial_rows_and_directions():
    effects = _consistent_effects()
    table = mde_table(effects, power=0.9, alpha=0.01)
    prov = table[table["scope"] == "province"]
    assert len(prov) == 64 and prov["province"].notna().all()
    se = on_test_scale(effects)["test_se"].to_numpy()
    np.testing.assert_allclose(prov["mde_test"], np.round(mde_from_se(se, df=40.0, alpha=0.01, power=0.9), 4))
    up = table["indicator"] == 11  # up: the improvement is an increase
    assert (table.loc[up, "mde_improvement"] == table.loc[up, "mde_increase"]).all()
    assert (table.loc[~up, "mde_improvement"] == table.loc[~up, "mde_decrease"]).all()
    assert (table.loc[~up, "mde_improvement"] < 0).all()
    with pytest.raises(ValueError, match="no rows"):
        mde_table(effects, measure="slope_change")


def test_pooled_mde_gives_80_percent_power_when_pooling_simulated_provinces():
    rng = np.random.default_rng(8)
    se = rng.uniform(0.03, 0.2, 32)
    tau2 = 0.004
    mde = pooled_mde(se, tau2=tau2)
    out = simulate_pooled_power(mde, se=se, tau2=tau2, n_sim=3000, seed=9)
    assert out["power"] == pytest.approx(0.8, abs=0.04), out
    null = simulate_pooled_power(0.0, se=se, tau2=tau2, n_sim=3000, seed=10)
    assert null["rejection_rate"] == pytest.approx(0.05, abs=0.02), null
    fewer = pooled_mde(se, tau2=tau2, n_provinces=8)
    assert fewer > mde * 1.9  # about sqrt(32 / 8) = 2 times larger, more with t(7)


def test_series_power_simulation_runs_and_is_reproducible():
    data = generate(2, provinces=["340000"], indicators=[9])
    kwargs = dict(start="2023-08", effects=[0.0, -0.3], n_sim=6, seed=4)
    one = simulate_series_power(data.panel, **kwargs)
    two = simulate_series_power(data.panel, **kwargs)
    pd.testing.assert_frame_equal(one, two)
    # a 30% faster ambulance response is far beyond this series' MDE (about 10%)
    assert one.loc[1, "power"] >= 4 / 6 and one.loc[1, "mean_estimate"] == pytest.approx(-0.3, abs=0.05)
    assert one.loc[0, "mean_estimate"] == pytest.approx(0.0, abs=0.05)
    assert (one["n_sim"] + one["n_failed"] == 6).all()
    with pytest.raises(ValueError, match="shape"):
        simulate_series_power(data.panel, start="2023-08", shape="step")


@pytest.mark.slow
@pytest.mark.parametrize("indicator", [9, 12, 34])  # Gaussian, binomial, Poisson
def test_analytic_and_simulated_mde_against_refits_of_the_default_model(indicator):
    """Data drawn from the fitted model of a synthetic series with an effect added (in the
    direction of improvement), refitted with the default model.

    * A zero effect is significant in at most about 5% of replicates, or a little more when
      the series is strongly autocorrelated: for the Poisson series (phi 0.78) the rate is
      7.5% in 1,000 replicates (7.4% when phi is not truncated at 0), so with 200 replicates
      (Monte Carlo SE 1.9 points) up to 10% is accepted.
    * At the analytic MDE the power is 0.5-0.97: the analytic figure takes the observed
      series' standard error as if it were fixed, while the latent AR(1) standard errors vary
      between samples more than their degrees of freedom say, so it is only approximate in
      either direction (in 24 synthetic series it gave 0.51-0.77; for this Poisson series,
      whose observed interval is on the wide side, 0.92-0.96).
    * At :func:`simulate_mde`'s MDE the power, re-estimated with fresh random numbers, is
      0.8 (within 0.1; Monte Carlo SE 0.028 with 200 replicates).
    """
    data = generate(2023, provinces=["320000"], indicators=[indicator])
    series = data.panel
    start = data.plan_dates["start_month"].iat[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search = simulate_mde(series, start=start, n_sim=150, seed=indicator)
        analytic, simulated = search["analytic_mde"].iat[0], search["simulated_mde"].iat[0]
        check = simulate_series_power(
            series, start=start, effects=[0.0, analytic, simulated], n_sim=200, seed=1000 + indicator
        )
    null, at_analytic, at_simulated = check.iloc[0], check.iloc[1], check.iloc[2]
    assert at_analytic["analytic_power"] == pytest.approx(0.8, abs=0.01)
    assert null["rejection_rate"] <= 0.10, check
    assert 0.5 <= at_analytic["power"] <= 0.97, check
    assert at_simulated["power"] == pytest.approx(0.8, abs=0.1), (search, check)
    assert search["multiple"].is_monotonic_increasing and (search["power"] < 0.8).any()


@pytest.mark.slow
def test_analytic_national_mde_against_refits_of_every_province():
    """Stroke reperfusion (12), all 32 synthetic provinces: each replicate gives every
    province the national MDE of mde_table (plus N(0, tau2) heterogeneity on the log scale),
    draws its series from its fitted model, refits it and pools: the national estimate is
    significant in about 80% of 60 replicates (Monte Carlo SE 0.05; accepted 0.66-0.94)."""
    data = generate(2023, indicators=[12])
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    effects = fit_panel(data.panel, starts=starts, workers=2).effects
    row = mde_table(effects).query("scope == 'national'").iloc[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = simulate_national_power(
            data.panel, indicator=12, starts=starts, effect=row["mde_improvement"], tau2=row["tau2"], n_sim=60, seed=5
        )
    assert out["k"] == 32 and out["n_failed"] <= 20
    assert out["power"] == pytest.approx(0.8, abs=0.14), out
