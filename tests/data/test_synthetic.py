"""Tests of the synthetic panel generator: the data contract, reproducibility and the truth."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from analysis.data.synthetic import EVALUATION_MONTH, SyntheticData, generate, write
from analysis.registry import get_indicator, timeline

SMALL = ["540000", "630000", "640000", "460000", "660000"]  # Tibet, Qinghai, Ningxia, Hainan, XPCC
PANEL_COLUMNS = ["province", "indicator", "month", "numerator", "denominator", "value"]
TRUTH_COLUMNS = [
    "province", "indicator", "measure", "start_month", "washin_months", "level_change",
    "slope_change", "phi", "sigma", "zero_effect", "wrong_direction", "confounded",
    "effect_end_absolute", "effect_end_relative", "effect_cumulative",
]  # fmt: skip
MONTHLY_COLUMNS = [
    "province", "indicator", "month", "eta_counterfactual", "eta_with_plan",
    "expected_counterfactual", "expected_with_plan", "plan_effect_eta", "drg_eta",
]  # fmt: skip


@pytest.fixture(scope="module")
def full() -> SyntheticData:
    return generate()


@pytest.fixture(scope="module")
def small() -> SyntheticData:
    return generate(seed=11, provinces=["440000", "540000", "340000"], indicators=[9, 14, 28, 32, 34, 35])


def test_full_panel_shape_columns_and_dtypes(full: SyntheticData) -> None:
    panel = full.panel
    assert panel.shape == (32 * 31 * 84, 6)
    assert list(panel.columns) == PANEL_COLUMNS
    assert str(panel["numerator"].dtype) == "Int64"
    assert str(panel["denominator"].dtype) == "Int64"
    assert panel["value"].dtype == np.float64
    assert pd.api.types.is_integer_dtype(panel["indicator"])
    assert set(panel["indicator"]) == set(range(9, 40))
    assert panel["province"].map(type).eq(str).all() and panel["province"].str.fullmatch(r"\d{6}").all()
    assert panel["month"].iloc[0] == "2019-01" and panel["month"].iloc[-1] == "2025-12"
    assert not panel.duplicated(["province", "indicator", "month"]).any()
    assert list(full.truth.columns[: len(TRUTH_COLUMNS)]) == TRUTH_COLUMNS
    assert len(full.truth) == 32 * 31
    assert list(full.truth_monthly.columns) == MONTHLY_COLUMNS
    assert len(full.truth_monthly) == len(panel)
    assert list(full.plan_dates.columns) == ["province", "start_month"]
    assert len(full.plan_dates) == 32


def test_measure_specific_columns(full: SyntheticData) -> None:
    measure = full.panel["indicator"].map(lambda n: get_indicator(int(n)).measure)
    counts = full.panel[measure != "mean"]
    means = full.panel[measure == "mean"]
    assert counts["numerator"].notna().all() and counts["value"].isna().all()
    assert means["numerator"].isna().all() and means["value"].notna().all()
    assert (means["value"] > 0).all()
    assert np.allclose(means["value"], means["value"].round(3))


def test_counts_are_valid(full: SyntheticData) -> None:
    panel = full.panel
    measure = panel["indicator"].map(lambda n: get_indicator(int(n)).measure)
    assert panel["denominator"].notna().all() and (panel["denominator"] >= 1).all()
    counts = panel[measure != "mean"]
    assert (counts["numerator"] >= 0).all()
    proportions = panel[measure == "proportion"]
    assert (proportions["numerator"] <= proportions["denominator"]).all()


def test_deterministic_for_a_seed_and_different_across_seeds() -> None:
    options = dict(provinces=["340000", "630000"], indicators=[11, 26, 33])
    first, again, other = generate(5, **options), generate(5, **options), generate(6, **options)
    for name in ("panel", "plan_dates", "truth", "truth_monthly"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(again, name))
    assert not first.panel["denominator"].equals(other.panel["denominator"])
    assert not first.truth["level_change"].equals(other.truth["level_change"])


def test_restricting_the_panel_keeps_the_other_series(full: SyntheticData) -> None:
    part = generate(provinces=["650000", "110000"], indicators=[35, 12, 28])
    keys = ["province", "indicator", "month"]
    for name in ("panel", "truth_monthly"):
        sub = getattr(part, name)
        whole = getattr(full, name).merge(sub[keys], on=keys)
        pd.testing.assert_frame_equal(whole, sub.reset_index(drop=True))
    truth = full.truth.merge(part.truth[["province", "indicator"]], on=["province", "indicator"])
    pd.testing.assert_frame_equal(truth, part.truth)
    dates = full.plan_dates[full.plan_dates["province"].isin(["650000", "110000"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(dates, part.plan_dates)


def test_plan_dates(full: SyntheticData) -> None:
    dates = full.plan_dates.set_index("province")["start_month"]
    assert dates["340000"] == "2023-08"
    assert dates.between("2023-06", "2023-10").all()
    assert (full.truth["start_month"] == full.truth["province"].map(dates)).all()
    assert full.truth.groupby("province")["washin_months"].nunique().eq(1).all()
    assert set(full.truth["washin_months"]) <= {1, 2, 3}


def test_plan_term_matches_truth_parameters(small: SyntheticData) -> None:
    monthly = small.truth_monthly.merge(small.truth, on=["province", "indicator"])
    months = pd.PeriodIndex(monthly["month"], freq="M")
    since = (months.asi8 - pd.PeriodIndex(monthly["start_month"], freq="M").asi8).astype(float)
    ramp = np.clip((since + 1) / monthly["washin_months"], 0, 1)
    expected = np.where(since >= 0, ramp * (monthly["level_change"] + monthly["slope_change"] * since), 0.0)
    np.testing.assert_allclose(monthly["plan_effect_eta"], expected, rtol=0, atol=1e-12)
    assert (monthly.loc[since < 0, "plan_effect_eta"] == 0).all()
    np.testing.assert_allclose(
        monthly["eta_with_plan"] - monthly["eta_counterfactual"], monthly["plan_effect_eta"], atol=1e-12
    )


def test_end_effects_recomputed_from_truth_monthly(full: SyntheticData) -> None:
    at_end = full.truth_monthly[full.truth_monthly["month"] == str(EVALUATION_MONTH)]
    merged = full.truth.merge(at_end, on=["province", "indicator"], validate="one_to_one")
    absolute = merged["expected_with_plan"] - merged["expected_counterfactual"]
    relative = merged["expected_with_plan"] / merged["expected_counterfactual"] - 1
    np.testing.assert_allclose(merged["effect_end_absolute"], absolute, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(merged["effect_end_relative"], relative, rtol=1e-9, atol=1e-12)
    # the inverse link in display units, from the linear predictor
    props = merged[merged["measure"] == "proportion"]
    scale = props["indicator"].map(lambda n: get_indicator(int(n)).scale)
    np.testing.assert_allclose(props["expected_with_plan"], scale * expit(props["eta_with_plan"]), rtol=1e-12)
    # effects point the improvement way unless the series is flagged
    sign = merged["indicator"].map(lambda n: get_indicator(int(n)).improvement_sign())
    observed = np.sign(merged["effect_end_absolute"])
    assert (observed[merged["zero_effect"]] == 0).all()
    assert (observed[merged["wrong_direction"]] == -sign[merged["wrong_direction"]]).all()
    right = ~merged["zero_effect"] & ~merged["wrong_direction"]
    assert (observed[right] == sign[right]).all()


def test_cumulative_effect_uses_realised_denominators(small: SyntheticData) -> None:
    monthly = small.truth_monthly.merge(small.panel, on=["province", "indicator", "month"])
    for row in small.truth.itertuples():
        if row.measure == "mean":
            assert np.isnan(row.effect_cumulative)
            continue
        first = str(pd.Period(row.start_month, "M") + 3)
        window = monthly[
            (monthly["province"] == row.province)
            & (monthly["indicator"] == row.indicator)
            & monthly["month"].between(first, str(EVALUATION_MONTH))
        ]
        scale = get_indicator(row.indicator).scale
        extra = (window["expected_with_plan"] - window["expected_counterfactual"]) / scale
        assert row.effect_cumulative == pytest.approx(float((window["denominator"] * extra).sum()), rel=1e-9)


def test_fractions_of_null_and_wrong_direction_effects(full: SyntheticData) -> None:
    truth = full.truth
    assert abs(truth["zero_effect"].mean() - 0.15) < 0.04
    assert abs(truth["wrong_direction"].mean() - 0.08) < 0.03
    assert not (truth["zero_effect"] & truth["wrong_direction"]).any()
    zero = truth[truth["zero_effect"]]
    assert (zero[["level_change", "slope_change", "effect_end_absolute"]] == 0).all().all()


def test_relative_effects_are_realistic(full: SyntheticData) -> None:
    effects = full.truth.loc[~full.truth["zero_effect"], "effect_end_relative"].abs()
    assert effects.between(0.03, 0.20).mean() > 0.5
    assert effects.median() == pytest.approx(0.07, abs=0.04)


def test_drg_co_intervention(full: SyntheticData) -> None:
    affected = full.truth["indicator"].isin([14, 28, 38])
    assert full.truth.loc[affected, "confounded"].all() and not full.truth.loc[~affected, "confounded"].any()
    drg = full.truth_monthly.groupby(["province", "indicator"])["drg_eta"]
    assert (drg.max().abs() + drg.min().abs()).loc[:, [14, 28, 38]].gt(0).all()
    assert (full.truth_monthly.loc[~full.truth_monthly["indicator"].isin([14, 28, 38]), "drg_eta"] == 0).all()
    off = generate(provinces=["340000", "110000"], indicators=[14, 28, 32], co_interventions=False)
    assert not off.truth["confounded"].any() and (off.truth_monthly["drg_eta"] == 0).all()
    on = full.truth.merge(off.truth[["province", "indicator"]], on=["province", "indicator"])
    # the plan itself does not depend on the co-intervention switch
    np.testing.assert_array_equal(on["level_change"], off.truth["level_change"])
    np.testing.assert_array_equal(on["slope_change"], off.truth["slope_change"])


def test_covid_shocks_only_in_shock_months(small: SyntheticData) -> None:
    # ICU-like mortality: the exit-wave months sit clearly above the neighbouring months.
    monthly = small.truth_monthly.set_index(["province", "indicator", "month"])["eta_counterfactual"]
    for province in ["440000", "540000", "340000"]:
        eta = monthly.loc[(province, 32)]
        assert eta["2022-12"] - (eta["2022-10"] + eta["2023-03"]) / 2 > 0.2
        assert abs(eta["2021-12"] - (eta["2021-10"] + eta["2022-03"]) / 2) < 0.1


def test_observed_series_follow_the_truth(full: SyntheticData) -> None:
    merged = full.panel.merge(full.truth_monthly, on=["province", "indicator", "month"])
    merged = merged[merged["province"] == "440000"]  # Guangdong: large counts
    measure = merged["indicator"].map(lambda n: get_indicator(int(n)).measure)
    num = merged["numerator"].astype(float)
    den = merged["denominator"].astype(float)
    props = measure == "proportion"
    gap = np.log(num[props] / (den[props] - num[props])) - merged.loc[props, "eta_with_plan"]
    assert gap.abs().mean() < 0.1
    assert abs(gap.mean()) < 0.03
    rates = measure == "rate"
    gap = np.log(num[rates] / den[rates]) - merged.loc[rates, "eta_with_plan"]
    assert gap.abs().mean() < 0.15 and abs(gap.mean()) < 0.05
    means = measure == "mean"
    relative = merged.loc[means, "value"] / merged.loc[means, "eta_with_plan"] - 1
    assert relative.abs().mean() < 0.06 and abs(relative.mean()) < 0.02


def test_denominators_have_realistic_sizes(full: SyntheticData) -> None:
    median = full.panel.groupby(["indicator", "province"])["denominator"].median().astype(float)
    assert median.loc[18].min() > 100_000  # prescriptions: huge everywhere
    assert median.loc[10, "540000"] < 100  # cardiac-arrest attempts: small in Tibet
    assert median.loc[10, "440000"] > 10 * median.loc[10, "540000"]
    hospitals = full.panel[full.panel["indicator"] == 13].groupby("province")["denominator"]
    assert hospitals.median().between(100, 2_500).all()
    assert ((hospitals.max() - hospitals.min()) / hospitals.median()).max() < 0.15  # nearly constant


def test_spring_festival_lowers_elective_surgery(full: SyntheticData) -> None:
    months = pd.period_range("2019-01", "2025-12", freq="M")
    sf_days = timeline.spring_festival_days(months)
    elective = full.panel[full.panel["indicator"] == 14].pivot(index="month", columns="province", values="denominator")
    ratios = []
    for year in (2019, 2021, 2024, 2025):  # years without COVID or lockdowns in Jan-May
        days = sf_days[sf_days.index.year == year]
        peak = days.idxmax()
        ratios.append(elective.loc[str(peak)].astype(float) / elective.loc[str(peak + 2)].astype(float))
    ratios = pd.concat(ratios)
    assert (ratios < 0.9).all()
    assert ratios.mean() < 0.8


def test_rare_events_have_zero_months_in_small_provinces() -> None:
    data = generate(provinces=SMALL + ["440000"], indicators=[35, 32])
    zeros = data.panel.assign(zero=data.panel["numerator"] == 0).groupby(["indicator", "province"])["zero"].sum()
    assert zeros.loc[35, "540000"] > 0
    assert zeros.loc[35].loc[SMALL].sum() >= 10
    assert zeros.loc[35, "440000"] == 0 and zeros.loc[32, "440000"] == 0


def test_panels_that_stop_early_keep_the_truth() -> None:
    short = generate(start="2021-01", end="2024-06", provinces=["340000"], indicators=[32, 9])
    assert short.panel["month"].min() == "2021-01" and short.panel["month"].max() == "2024-06"
    assert len(short.panel) == 2 * 42
    long = generate(provinces=["340000"], indicators=[32, 9])
    cols = ["level_change", "slope_change", "effect_end_absolute", "effect_end_relative"]
    pd.testing.assert_frame_equal(short.truth[cols], long.truth[cols])
    assert short.truth["effect_cumulative"].isna().all()


def test_invalid_options() -> None:
    with pytest.raises(ValueError, match="status"):
        generate(indicators=[1])
    with pytest.raises(KeyError):
        generate(provinces=["999999"])
    with pytest.raises(ValueError, match="before"):
        generate(start="2024-01", end="2023-01")


def test_write_round_trip(small: SyntheticData, tmp_path) -> None:
    paths = write(small, tmp_path / "synthetic")
    assert {p.name for p in paths.values()} == {
        "panel.csv", "plan_dates.csv", "truth.csv", "truth_monthly.csv", "README.md", "comparison_series.csv",
        "comparisons.csv", "comparison_truth.csv",
    }  # fmt: skip
    readme = paths["readme"].read_text(encoding="utf-8")
    assert "seed=11" in readme and "`comparison_series.csv` | 504 |" in readme and "(14, 28)" in readme
    for name in ("panel", "plan_dates", "truth", "truth_monthly", "comparison_series", "comparisons",
                 "comparison_truth"):
        frame = getattr(small, name)
        back = pd.read_csv(
            paths[name],
            encoding="utf-8",
            dtype={"province": str, "month": str, "start_month": str, "drg_month": str},
        )
        assert list(back.columns) == list(frame.columns)
        expected = frame.astype({c: float for c in ("numerator", "denominator") if c in frame})
        back = back.astype({c: float for c in ("numerator", "denominator") if c in back})
        pd.testing.assert_frame_equal(back, expected, check_dtype=False, check_exact=False, rtol=1e-12)


# -- comparison series ------------------------------------------------------------------------

#: SHA-256 of the tables ``write(generate(2023), ...)`` wrote before the comparison series were
#: added (2023 is the Makefile's SEED): the comparison series draw from new random streams, so
#: every existing table stays byte-identical.
SEED_2023_DIGESTS = {
    "panel.csv": "0c1f77b9f088143c4633478abadc2bcac94aa6ec14e75506f7017ea65c0f0b80",
    "plan_dates.csv": "f1e883e3a7e52fce9374e29b203e00b9506b9ffce6b4ab8a2394e1a6c3e60b8c",
    "truth.csv": "90c7f955bc76a75561655bf9f290ddc3f6a514e536ef16fa9ec6d5b4898c4195",
    "truth_monthly.csv": "0750c1e5809f2115f2a6390b47dd5ee7c5436ca8343343b7cb1119f96a4bdcd6",
}


def test_comparison_series_leave_every_existing_table_unchanged(full: SyntheticData, tmp_path) -> None:
    from analysis.data.contract import sha256

    write(full, tmp_path)
    assert {name: sha256(tmp_path / name) for name in SEED_2023_DIGESTS} == SEED_2023_DIGESTS
    assert (tmp_path / "comparison_series.csv").is_file()


def test_one_comparison_series_per_province_and_drg_affected_indicator(full: SyntheticData) -> None:
    pairs = full.comparisons
    assert pairs["indicator"].tolist() == [14, 28, 38]
    assert pairs["comparison"].tolist() == [f"{n} in hospitals outside the first wave" for n in (14, 28, 38)]
    assert len(full.comparison_series) == 32 * 3 * 84 and len(full.comparison_truth) == 32 * 3
    measures = full.comparison_series.groupby("series")["measure"].unique().map(tuple).to_dict()
    assert measures == {name: (get_indicator(n).measure,) for n, name in zip(pairs["indicator"], pairs["comparison"])}
    assert generate(provinces=["340000"], indicators=[9, 32]).comparison_series.empty


def test_comparison_series_share_the_drg_step_and_have_no_plan_effect(full: SyntheticData) -> None:
    truth = full.comparison_truth.merge(full.truth, on=["province", "indicator"], suffixes=("", "_treated"))
    assert len(truth) == 96 and (truth["level_change"] == 0).all() and (truth["slope_change"] == 0).all()
    assert (truth["drg_month"] == truth["drg_month_treated"]).all() and truth["drg_month"].notna().all()
    np.testing.assert_array_equal(truth["drg_step"], truth["drg_step_treated"])
    assert (truth["drg_step"] > 0).all() and (truth["level_change_treated"] != 0).any()
    # The mean indicator (28, CMI) is observed without sampling noise: the comparison is the
    # treated series' predictor without the plan, its own offsets, and AR(1) noise only.
    cmi = full.comparison_series[full.comparison_series["series"] == "28 in hospitals outside the first wave"]
    monthly = full.truth_monthly[full.truth_monthly["indicator"] == 28]
    merged = cmi.merge(monthly, on=["province", "month"]).merge(truth[truth["indicator"] == 28], on="province")
    t = pd.PeriodIndex(merged["month"], freq="M").asi8 - pd.Period("2021-01", "M").ordinal
    offsets = (merged["baseline_eta"] - merged["baseline_eta_treated"]
               + (merged["pre_trend"] - merged["pre_trend_treated"]) * t)
    residual = merged["value"] - merged["eta_counterfactual"] - offsets
    assert abs(residual.mean()) < 0.002 and residual.std() < 2 * merged["sigma"].max() / np.sqrt(1 - 0.6**2)
    after = pd.PeriodIndex(merged["month"], freq="M") >= pd.PeriodIndex(merged["start_month"], freq="M")
    # no plan effect: the residual does not move at the plan start, while the treated series
    # moves by its level change there (about 0.006 on average, a fraction of the DRG/DIP step)
    assert abs(residual[after].mean() - residual[~after].mean()) < 0.002
    step = (merged["eta_with_plan"] - merged["eta_counterfactual"])[after].mean()
    assert step > 0.004
