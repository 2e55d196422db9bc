"""Tests for analysis.synthesis.panel_model: known truth, closed forms and statsmodels.

References used:

* Simulation with known truth: a simple generator written here (independent of the
  package's design code) draws province-specific baselines, pre-trends, level and slope
  changes around known national means, month-of-year seasonality and AR(1) residuals, with
  each province's own start month and a 3-month wash-in; the national fixed effects must
  recover the means and the cluster-robust intervals must cover them at about the nominal
  rate (slow test, 60 replicates).
* The package's synthetic panel (``analysis.data.synthetic.generate``): the mean over
  provinces of the true level and slope changes (``truth``) must lie in the 95% intervals.
* Closed forms via statsmodels directly: with one province and a random intercept the GLS
  fixed effects equal OLS on that province's design (the random intercept lies in the
  column space of the constant); with no random effects the fit is pooled OLS and the
  cluster-robust covariance equals statsmodels' ``cov_type="cluster"`` up to its documented
  extra factor ``(N - 1) / (N - K)``.
"""

from __future__ import annotations

import doctest
import time

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.synthesis import panel_model
from analysis.synthesis.national import national_effects
from analysis.synthesis.panel_model import (
    COMPARISON_COLUMNS,
    EFFECT_COLUMNS,
    compare_with_meta,
    fit_panel_model,
    model_scale_outcome,
    panel_model_frame,
)

MEAN_INDICATOR = 33  # a "mean" indicator: modelled on the identity scale
STARTS = ("2023-06", "2023-07", "2023-08", "2023-09", "2023-10")
TRUTH = {"level_change": 0.30, "slope_change": 0.02}


def simulate(seed: int, *, provinces: int = 32, phi: float = 0.5, noise_sd: float = 0.25) -> tuple[pd.DataFrame, dict]:
    """Panel of one mean indicator with known national level (0.30) and slope (0.02/month) changes."""
    rng = np.random.default_rng(seed)
    months = pd.period_range("2019-01", "2025-12", freq="M")
    season = 0.2 * np.sin(2 * np.pi * np.asarray(months.month) / 12)
    frames, starts = [], {}
    for i in range(provinces):
        code = f"{110000 + 10000 * i}"
        start = pd.Period(STARTS[i % len(STARTS)], "M")
        starts[code] = start
        since = np.asarray([m.ordinal - start.ordinal for m in months], dtype=float)
        post = since >= 0
        a = 40 + rng.normal(0, 3)
        b = 0.05 + rng.normal(0, 0.01)
        level = TRUTH["level_change"] + rng.normal(0, 0.15)
        slope = TRUTH["slope_change"] + rng.normal(0, 0.01)
        innovations = rng.normal(0, noise_sd * np.sqrt(1 - phi**2), len(months))
        innovations[0] = rng.normal(0, noise_sd)
        noise = np.zeros(len(months))
        for t in range(len(months)):
            noise[t] = innovations[t] + (phi * noise[t - 1] if t else 0.0)
        value = a + b * since + post * (level + slope * since) + season + noise
        frames.append(
            pd.DataFrame(
                {
                    "province": code,
                    "indicator": MEAN_INDICATOR,
                    "month": months.strftime("%Y-%m"),
                    "numerator": pd.NA,
                    "denominator": pd.NA,
                    "value": value,
                }
            )
        )
    return pd.concat(frames, ignore_index=True), starts


def _starts(data) -> dict[str, pd.Period]:
    return {p: pd.Period(m, "M") for p, m in data.plan_dates.itertuples(index=False)}


# ---------------------------------------------------------------------------------------
# known truth


def test_recovers_known_national_effects():
    panel, starts = simulate(1)
    res = fit_panel_model(panel, indicator=MEAN_INDICATOR, starts=starts)
    table = res.effects().set_index("measure")
    for name, truth in TRUTH.items():
        row = table.loc[name]
        assert abs(row["estimate"] - truth) < 3 * row["se"], name
        assert row["ci_low"] <= truth <= row["ci_high"], name
    # the effect at the evaluation month is L + S * mean months into the plan (2025-09)
    k_bar = np.mean([pd.Period("2025-09", "M").ordinal - s.ordinal for s in starts.values()])
    assert res.months_to_evaluation == pytest.approx(k_bar)
    end = table.loc["effect_end_absolute", "estimate"]
    assert end == pytest.approx(table.loc["level_change", "estimate"] + k_bar * table.loc["slope_change", "estimate"])
    # random-effect SDs of the plan effects near the generating values (0.15 and 0.01)
    sd = res.random_effects().set_index("term")["sd"]
    assert 0.05 < sd["level_change"] < 0.3
    assert 0.004 < sd["slope_change"] < 0.02
    assert sd["const"] == pytest.approx(3, rel=0.4)


@pytest.mark.parametrize("indicator", [11, 34, 33])
def test_synthetic_panel_truth_is_inside_the_intervals(indicator):
    data = generate(3, indicators=[indicator])
    res = fit_panel_model(data.panel, indicator=indicator, starts=_starts(data))
    table = res.effects().set_index("measure")
    for name in ("level_change", "slope_change"):
        truth = data.truth[name].mean()  # the national mean of the provinces' true effects
        assert table.loc[name, "ci_low"] <= truth <= table.loc[name, "ci_high"], name
    assert res.scale == {11: "logit", 34: "log", 33: "identity"}[indicator]


@pytest.mark.slow
def test_cluster_intervals_cover_at_about_the_nominal_rate():
    reps, hits = 60, {name: 0 for name in TRUTH}
    started = time.perf_counter()
    for seed in range(reps):
        panel, starts = simulate(100 + seed, provinces=24)
        table = (
            fit_panel_model(
                panel, indicator=MEAN_INDICATOR, starts=starts, random_terms=("const", "time", "level_change")
            )
            .effects()
            .set_index("measure")
        )
        for name, truth in TRUTH.items():
            hits[name] += table.loc[name, "ci_low"] <= truth <= table.loc[name, "ci_high"]
    # 95% nominal; with 60 replicates the binomial SE is about 2.8 points
    for name, count in hits.items():
        assert 0.85 <= count / reps <= 1.0, (name, count)
    assert time.perf_counter() - started < 60


# ---------------------------------------------------------------------------------------
# closed forms via statsmodels


def test_single_province_with_random_intercept_is_ols():
    data = generate(2, provinces=["340000"], indicators=[11])
    starts = _starts(data)
    res = fit_panel_model(data.panel, indicator=11, starts=starts, random_terms=("const",), cov_type="model")
    series = data.panel.sort_values("month")
    months = pd.PeriodIndex(series["month"], freq="M")
    design = EvaluationSettings().design(starts["340000"])
    keep = design.fit_mask(months)
    x = series["numerator"].to_numpy(float)[keep]
    n = series["denominator"].to_numpy(float)[keep]
    y = np.log((x + 0.5) / (n - x + 0.5))
    ols = sm.OLS(y, design.matrix(months)[keep]).fit()
    assert res.params.to_numpy() == pytest.approx(ols.params[res.params.index].to_numpy(), rel=1e-6, abs=1e-9)


def test_without_random_effects_cluster_covariance_is_statsmodels():
    panel, starts = simulate(4, provinces=10)
    res = fit_panel_model(panel, indicator=MEAN_INDICATOR, starts=starts, random_terms=())
    settings = EvaluationSettings()
    parts, ys, groups = [], [], []
    for code, series in panel.groupby("province", sort=True):
        months = pd.PeriodIndex(series["month"], freq="M")
        design = settings.design(starts[code])
        keep = design.fit_mask(months)
        parts.append(design.matrix(months)[keep].reset_index(drop=True))
        ys.append(series["value"].to_numpy()[keep])
        groups += [code] * int(keep.sum())
    X = pd.concat(parts, ignore_index=True).fillna(0.0)[res.params.index]
    ols = sm.OLS(np.concatenate(ys), X).fit(cov_type="cluster", cov_kwds={"groups": pd.factorize(pd.Series(groups))[0]})
    assert res.params.to_numpy() == pytest.approx(ols.params.to_numpy(), rel=1e-8)
    n, p = X.shape
    assert res.cov.to_numpy() * (n - 1) / (n - p) == pytest.approx(ols.cov_params().to_numpy(), rel=1e-6, abs=1e-14)
    assert res.df == 9


# ---------------------------------------------------------------------------------------
# comparison with the meta-analysis and interface


def test_comparison_with_meta_analysis_of_province_fits():
    data = generate(3, indicators=[34])
    starts = _starts(data)
    per_province = fit_panel(data.panel, starts=starts)
    national = national_effects(per_province.effects)
    res = fit_panel_model(data.panel, indicator=34, starts=starts)
    table = compare_with_meta(res.effects(), national)
    assert list(table.columns) == COMPARISON_COLUMNS
    assert table["measure"].tolist() == ["effect_end_relative", "level_change", "slope_change"]
    # two routes to the same national effect: close relative to their uncertainty
    width = table["meta_ci_high"] - table["meta_ci_low"]
    assert (table["difference"].abs() < width / 2).all()
    # the meta-analysis pools the provinces whose own fit gave a usable estimate
    usable = per_province.effects.query("measure == 'level_change' and se > 0")["province"].nunique()
    assert table.set_index("measure").loc["level_change", "meta_k"] == usable
    assert (table["n_provinces"] == 32).all()


def test_model_scale_outcome_definitions():
    frame = pd.DataFrame({"numerator": [3, 0, 12], "denominator": [10, 5, 10], "value": [1.5, 2.0, np.nan]})
    logit = model_scale_outcome(frame, "proportion")
    assert logit[:2] == pytest.approx([np.log(3.5 / 7.5), np.log(0.5 / 5.5)])
    assert np.isnan(logit[2])  # more events than trials
    assert model_scale_outcome(frame, "rate") == pytest.approx(np.log((np.array([3, 0, 12]) + 0.5) / [10, 5, 10]))
    assert model_scale_outcome(frame, "mean")[:2].tolist() == [1.5, 2.0]


def test_effect_table_columns_and_speed():
    data = generate(3, indicators=[11])
    started = time.perf_counter()
    res = fit_panel_model(data.panel, indicator=11, starts=_starts(data))
    elapsed = time.perf_counter() - started
    table = res.effects()
    assert list(table.columns) == EFFECT_COLUMNS
    assert table["measure"].tolist() == ["level_change", "slope_change", "effect_end_link", "effect_end_odds_ratio"]
    odds = table.set_index("measure").loc["effect_end_odds_ratio"]
    link = table.set_index("measure").loc["effect_end_link"]
    assert odds["estimate"] == pytest.approx(np.expm1(link["estimate"]))
    assert odds["ci_low"] == pytest.approx(np.expm1(link["ci_low"]))
    assert res.n_provinces == 32 and res.df == 31 and res.converged
    assert elapsed < 5  # about 1 s on one core
    with pytest.raises(AttributeError):
        res.df = 3  # read-only


def test_frame_version_reports_failures():
    data = generate(3, provinces=["110000", "120000", "130000", "140000"], indicators=[33, 34])
    out = panel_model_frame(data.panel, starts=_starts(data), indicators=[33, 34, 12], random_terms=("const",))
    assert sorted(out.effects["indicator"].unique()) == [33, 34]
    assert out.failures["indicator"].tolist() == [12]
    assert "no rows" in out.failures["message"].iat[0]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"re_cov": "full"}, "re_cov"),
        ({"cov_type": "hc3"}, "cov_type"),
        ({"random_terms": ("nope",)}, "not design"),
        ({"level": 95}, "level"),
    ],
)
def test_bad_options_are_rejected(options, message):
    panel, starts = simulate(5, provinces=3)
    with pytest.raises(ValueError, match=message):
        fit_panel_model(panel, indicator=MEAN_INDICATOR, starts=starts, **options)


def test_missing_start_month_is_named():
    panel, starts = simulate(5, provinces=3)
    starts.pop(next(iter(starts)))
    with pytest.raises(ValueError, match="no start month for province '110000'"):
        fit_panel_model(panel, indicator=MEAN_INDICATOR, starts=starts)


def test_doctests_pass():
    assert doctest.testmod(panel_model).failed == 0
