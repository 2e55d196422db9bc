"""In-time placebo tests: use only pre-period data, detect a real pre-period change, and
reject at about the nominal rate on synthetic data where nothing happened before the start."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.data.synthetic import generate
from analysis.synthesis.placebo import PLACEBO_COLUMNS, placebo_panel, placebo_series, rejection_rates, series_flags


@pytest.fixture(scope="module")
def response_time():
    data = generate(11, provinces=["320000"], indicators=[9])
    start = pd.Period(data.plan_dates["start_month"].iat[0], "M")
    return data.panel, start


def test_placebo_fits_use_only_months_before_the_real_start(response_time):
    series, start = response_time
    out = placebo_series(series, start=start)
    assert list(out.columns) == PLACEBO_COLUMNS and len(out) == 6
    months_before = int((pd.PeriodIndex(series["month"], freq="M") < start).sum())
    assert (out["n_pre"] + out["n_post"] <= months_before - 3).all()  # wash-in excluded too
    assert (out["evaluation_month"] == str(start - 1)).all()
    # whatever happens after the start cannot change a placebo result
    after = pd.PeriodIndex(series["month"], freq="M") >= start
    changed = series.assign(value=np.where(after, series["value"] * 3, series["value"]))
    pd.testing.assert_frame_equal(placebo_series(changed, start=start), out)


def test_a_real_change_before_the_start_is_detected(response_time):
    series, start = response_time
    months = pd.PeriodIndex(series["month"], freq="M")
    stepped = series.assign(
        value=np.where((months >= start - 12) & (months < start), series["value"] - 4.0, series["value"])
    )
    out = placebo_series(stepped, start=start, offsets=(12,)).set_index("measure")
    assert out.loc["level_change", "p_value"] < 0.05
    assert out.loc["level_change", "ci_low"] <= -4.0 <= out.loc["level_change", "ci_high"]
    assert out.loc["effect_end_relative", "ci_high"] < 0


def test_panel_records_failures_and_goes_on():
    data = generate(2, provinces=["340000", "110000"], indicators=[12])
    starts = {"340000": pd.Period("2023-08", "M"), "110000": pd.Period("2019-09", "M")}  # too early for placebos
    placebo, failures = placebo_panel(data.panel, starts=starts, offsets=(12,), workers=2)
    assert set(placebo["province"]) == {"340000"} and len(placebo) == 3
    assert failures[["province", "indicator", "offset"]].values.tolist() == [["110000", 12, 12]]


def test_rejection_rate_interval_is_clopper_pearson():
    rng = np.random.default_rng(1)
    placebo = pd.DataFrame(
        {"measure": "level_change", "offset": np.repeat([12, 24], 150), "p_value": rng.uniform(size=300) ** 1.5}
    )
    out = rejection_rates(placebo)
    for row in out.itertuples():
        k, n = int(row.rejected), int(row.n)
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        assert (row.rate_low, row.rate_high) == pytest.approx((ci.low, ci.high), abs=1e-10)
        assert row.rate == k / n


def test_series_flags_count_rejections():
    placebo = pd.DataFrame(
        {
            "province": "1",
            "indicator": [9, 9, 10, 10],
            "measure": "effect_end_relative",
            "p_value": [0.2, 0.001, 0.3, np.nan],
        }
    )
    out = series_flags(placebo)
    assert out[["n_placebos", "n_rejected", "flagged"]].values.tolist() == [[2, 1, True], [1, 0, False]]


@pytest.mark.slow
def test_placebo_tests_reject_at_the_nominal_rate_on_the_synthetic_panel():
    """All 32 provinces x 31 indicators, placebos 12 and 24 months before each province's
    start, pre-period data only. Nothing happens at a placebo date, so among the ~900 series
    without the DRG/DIP co-intervention each placebo effect is significant at 5% in about 5%
    of series (accepted: 1.5-8.5%; binomial SE about 0.7 points). The series with the DRG/DIP
    step, a real pre-period change the model does not include, reject more often overall."""
    data = generate(2023)
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    placebo, failures = placebo_panel(data.panel, starts=starts, workers=2)
    assert failures.empty, failures
    confounded = data.truth.loc[data.truth["confounded"], ["province", "indicator"]].assign(confounded=True)
    placebo = placebo.merge(confounded, on=["province", "indicator"], how="left")
    placebo["confounded"] = placebo["confounded"].astype("boolean").fillna(False).astype(bool)
    clean = rejection_rates(placebo[~placebo["confounded"]])
    assert (clean["n"] > 850).all()
    assert clean["rate"].between(0.015, 0.085).all(), clean
    overall_clean = (placebo.loc[~placebo["confounded"], "p_value"] < 0.05).mean()
    overall_confounded = (placebo.loc[placebo["confounded"], "p_value"] < 0.05).mean()
    assert overall_clean == pytest.approx(0.05, abs=0.02)
    assert overall_confounded > overall_clean
