"""Targets table, projections and the probability of meeting a target.

Checks: the registry's table holds Anhui's published targets (timeline.md); problems in a
user's table are all reported; the probability is the closed form of the documented normal
(t) approximation on the link scale; and on synthetic data with a known truth the projected
intervals cover the true expected value in 2025-12 at about the nominal rate, so that
``p_meet`` for a target equal to the truth is uniform (calibrated).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.special import logit

from analysis.data.synthetic import generate
from analysis.synthesis.targets import (
    PROJECTION_COLUMNS,
    TARGET_COLUMNS,
    assess_targets,
    load_targets,
    project,
    target_attainment,
)


def test_registry_holds_anhuis_targets():
    targets = load_targets()
    assert list(targets.columns) == TARGET_COLUMNS
    anhui = targets[targets["province"] == "340000"].set_index("indicator")
    assert anhui.loc[11, ["comparison", "target", "unit"]].tolist() == [">=", 80.0, "%"]
    assert anhui.loc[12, ["comparison", "target", "unit"]].tolist() == [">=", 45.0, "%"]
    assert anhui.loc[31, ["comparison", "target", "unit"]].tolist() == ["<=", 1.8, "‰"]
    assert (anhui["target_month"] == "2025-12").all()
    assert anhui.loc[31, "scope"] == "tertiary hospitals"
    assert anhui["source"].str.contains("2023-08-23").all()


def test_every_problem_in_a_targets_file_is_reported(tmp_path):
    bad = pd.DataFrame(
        [
            {"province": "Atlantis", "indicator": 11, "comparison": ">=", "target": 80, "unit": "%"},
            {"province": "安徽", "indicator": 32, "comparison": ">=", "target": 1.0, "unit": "‰"},
            {"province": "Anhui", "indicator": 12, "comparison": ">=", "target": 45, "unit": "‰"},
            {"province": "340000", "indicator": 3, "comparison": ">=", "target": 1, "unit": ""},
            {"province": "340000", "indicator": 11, "comparison": "=>", "target": 120, "unit": "%"},
        ]
    ).assign(target_month=["2025-12", "2025-12", "2025-12", "2025-12", "Dec 2025x"], scope="", source="", note="")
    path = tmp_path / "targets.csv"
    bad.to_csv(path, index=False)
    with pytest.raises(ValueError) as err:
        load_targets(path)
    message = str(err.value)
    for fragment in (
        "row 2, column 'province'",
        "row 3, column 'comparison'",
        "should be <=",
        "row 4, column 'unit'",
        "row 5, column 'indicator'",
        "status item",
        "row 6, column 'comparison'",
        "row 6, column 'target'",
        "row 6, column 'target_month'",
    ):
        assert fragment in message, (fragment, message)
    ok = pd.DataFrame(
        [
            {
                "province": "Anhui",
                "indicator": 12,
                "comparison": ">=",
                "target": 45,
                "unit": "%",
                "target_month": "2025-12",
                "scope": "",
                "source": "",
                "note": "",
            }
        ]
        * 2
    )
    ok.to_csv(path, index=False)
    with pytest.raises(ValueError, match="second target"):
        load_targets(path)


def _projection(eta, se, *, link="logit", indicator=12, df=50.0, sigma2=0.0, sampling=0.0):
    inverse = {"logit": lambda x: 1 / (1 + np.exp(-x)), "log": np.exp}[link]
    scale = 100.0 if indicator == 12 else 1000.0
    crit = stats.t.ppf(0.975, df)
    return pd.DataFrame(
        {
            "province": ["340000"],
            "indicator": [indicator],
            "month": ["2025-12"],
            "unit": ["%" if indicator == 12 else "‰"],
            "projected": [inverse(eta) * scale],
            "ci_low": [inverse(eta - crit * se) * scale],
            "ci_high": [inverse(eta + crit * se) * scale],
            "pi_low": [np.nan],
            "pi_high": [np.nan],
            "link": [link],
            "eta": [eta],
            "se_link": [se],
            "df": [df],
            "sigma2": [sigma2],
            "sampling_var": [sampling],
            "last_data_month": ["2025-09"],
            "extrapolated": [True],
        }
    )


def test_probability_is_the_t_approximation_on_the_link_scale():
    projection = _projection(logit(0.5), 0.2)
    low = projection["ci_low"].iat[0]
    targets = load_targets().assign(target=lambda t: np.where(t["indicator"] == 12, low, t["target"]))
    out = target_attainment(projection, targets)
    assert out["p_meet"].iat[0] == pytest.approx(0.975, abs=1e-9)  # target at the lower limit
    assert bool(out["projected_meets"].iat[0])
    # an explicit value: P(eta >= logit(0.45)) with eta ~ logit(0.5) + 0.2 t(50)
    out = target_attainment(projection)
    z = (logit(0.5) - logit(0.45)) / 0.2
    assert out["p_meet"].iat[0] == pytest.approx(stats.t.cdf(z, 50), rel=1e-12)
    # the observed month adds sigma2 and the sampling variance
    noisy = target_attainment(_projection(logit(0.5), 0.2, sigma2=0.03, sampling=0.01))
    assert noisy["p_meet_observed"].iat[0] == pytest.approx(stats.t.cdf(z * 0.2 / np.sqrt(0.08), 50), rel=1e-12)


def test_a_lower_is_better_target_mirrors():
    eta = np.log(1.5 / 1000)
    out = target_attainment(_projection(eta, 0.1, link="log", indicator=31))
    z = (np.log(1.8 / 1000) - eta) / 0.1  # target 1.8 permille, projection 1.5
    assert out["p_meet"].iat[0] == pytest.approx(stats.t.cdf(z, 50), rel=1e-12)
    assert bool(out["projected_meets"].iat[0])


def test_projection_month_must_match_the_target():
    with pytest.raises(ValueError, match="target month"):
        target_attainment(_projection(0.0, 0.1).assign(month="2025-09"))


def test_projection_beyond_the_data_is_an_extrapolation_with_a_wider_interval():
    data = generate(4, provinces=["340000"], indicators=[12])
    starts = {"340000": pd.Period("2023-08", "M")}
    inside = project(data.panel, starts=starts)
    short = data.panel[pd.PeriodIndex(data.panel["month"], freq="M") <= pd.Period("2025-09", "M")]
    beyond = project(short, starts=starts)
    assert list(inside.columns) == PROJECTION_COLUMNS
    assert not inside["extrapolated"].iat[0] and beyond["extrapolated"].iat[0]
    assert beyond["last_data_month"].iat[0] == "2025-09"
    assert beyond["se_link"].iat[0] > 0.9 * inside["se_link"].iat[0]
    assert beyond["pi_low"].iat[0] < beyond["ci_low"].iat[0] < beyond["ci_high"].iat[0] < beyond["pi_high"].iat[0]


def test_assess_targets_only_projects_series_with_targets():
    data = generate(4, provinces=["340000", "110000"], indicators=[11, 12, 13])
    out = assess_targets(data.panel, starts={})
    assert out[["province", "indicator"]].values.tolist() == [["340000", 11], ["340000", 12]]
    empty = assess_targets(data.panel[data.panel["province"] == "110000"], starts={})
    assert empty.empty and "p_meet" in empty.columns


def test_projected_intervals_cover_the_known_truth_and_p_meet_is_calibrated():
    """Synthetic panel, 8 provinces x 31 indicators (series not confounded by the DRG/DIP
    step): the 95% interval of the projected 2025-12 value covers the true expected value
    (noise-free, with the plan) in 88-99% of series, and with the target set at the truth,
    p_meet falls below 0.025 or above 0.975 about as often as the interval misses."""
    provinces = ["110000", "320000", "340000", "420000", "440000", "510000", "540000", "650000"]
    data = generate(2023, provinces=provinces)
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    projections = project(data.panel, starts=starts, workers=2)
    monthly = data.truth_monthly
    truth = monthly[monthly["month"] == "2025-12"][["province", "indicator", "expected_with_plan"]]
    clean = data.truth.loc[~data.truth["confounded"], ["province", "indicator"]]
    merged = projections.merge(truth, on=["province", "indicator"]).merge(clean, on=["province", "indicator"])
    assert len(merged) > 220
    covered = (merged["ci_low"] <= merged["expected_with_plan"]) & (merged["expected_with_plan"] <= merged["ci_high"])
    assert 0.88 <= covered.mean() <= 0.99, covered.mean()
    # targets at the truth, in the direction of improvement
    from analysis.registry import get_indicator

    targets = merged[["province", "indicator"]].copy()
    targets["comparison"] = [">=" if get_indicator(int(i)).direction == "up" else "<=" for i in targets["indicator"]]
    targets["target"] = merged["expected_with_plan"].to_numpy()
    targets["unit"] = [get_indicator(int(i)).unit for i in targets["indicator"]]
    targets = targets.assign(target_month="2025-12", scope="", source="", note="")
    attainment = target_attainment(projections, targets)
    extreme = (attainment["p_meet"] < 0.025) | (attainment["p_meet"] > 0.975)
    assert extreme.mean() == pytest.approx(1 - covered.mean(), abs=0.01)
    assert 0.35 <= attainment["p_meet"].mean() <= 0.65
