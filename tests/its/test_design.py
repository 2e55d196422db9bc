import numpy as np
import pandas as pd
import pytest

from analysis.its.design import DesignError, ITSDesign


def months(a, b):
    return pd.period_range(a, b, freq="M")


def test_time_is_centred_on_interruption_and_level_slope_follow():
    d = ITSDesign(interruption="2023-06", seasonality="none", spring_festival=False, shocks=())
    X = d.matrix(months("2023-04", "2023-08"))
    assert X["time"].tolist() == [-2, -1, 0, 1, 2]
    assert X["level_change"].tolist() == [0, 0, 1, 1, 1]
    assert X["slope_change"].tolist() == [0, 0, 0, 1, 2]


def test_first_post_time_one_shifts_slope_counter():
    d = ITSDesign(interruption="2023-06", seasonality="none", spring_festival=False, shocks=(), first_post_time=1)
    X = d.matrix(months("2023-05", "2023-07"))
    assert X["slope_change"].tolist() == [0, 1, 2]


def test_month_dummies_and_fourier():
    idx = months("2020-01", "2020-12")
    X = ITSDesign(interruption="2020-06", spring_festival=False, shocks=()).matrix(idx)
    dummies = X.filter(like="month_")
    assert dummies.shape[1] == 11 and dummies.sum().eq(1).all()
    assert dummies.iloc[0].sum() == 0  # January is the reference
    F = ITSDesign(interruption="2020-06", seasonality="fourier:2", spring_festival=False, shocks=()).matrix(idx)
    assert [c for c in F.columns if c[:3] in ("sin", "cos")] == ["sin_1", "cos_1", "sin_2", "cos_2"]
    np.testing.assert_allclose(F["cos_1"].iloc[11], 1.0)


def test_bad_seasonality_is_rejected():
    with pytest.raises(ValueError, match="fourier:K"):
        ITSDesign(interruption="2020-06", seasonality="fourier:x")


def test_washin_months_are_flagged_and_shocks_inside_it_skipped():
    d = ITSDesign(interruption="2023-01", washin=2, shocks=("2022-12", "2023-01"))
    idx = months("2022-01", "2023-12")
    assert d.in_washin(idx).sum() == 2
    assert d.shock_columns(idx) == [pd.Period("2022-12", "M").ordinal]


def test_shock_dummy_marks_its_month():
    d = ITSDesign(interruption="2021-01", seasonality="none", spring_festival=False, shocks=("2020-02",))
    X = d.matrix(months("2020-01", "2020-04"))
    assert X["shock_2020-02"].tolist() == [0, 1, 0, 0]


def test_too_few_points_in_a_phase_is_an_error_naming_counts():
    d = ITSDesign(interruption="2020-03", seasonality="none", spring_festival=False, shocks=())
    with pytest.raises(DesignError, match="2 pre-interruption"):
        d.check_phases(months("2020-01", "2020-12"))
    assert d.check_phases(months("2019-12", "2020-12")) == (3, 10)


def test_counterfactual_switches_off_only_the_intervention():
    d = ITSDesign(interruption="2020-03", calendar="china")
    X = d.matrix(months("2019-01", "2020-12"))
    cf = d.counterfactual(X)
    assert (cf[["level_change", "slope_change"]] == 0).all().all()
    pd.testing.assert_frame_equal(
        cf.drop(columns=["level_change", "slope_change"]), X.drop(columns=["level_change", "slope_change"])
    )


def test_integer_time_with_period_gives_season_dummies_and_fourier():
    d = ITSDesign(interruption=25, seasonality="month", period=12)
    X = d.matrix(list(range(1, 37)))
    seasons = X.filter(like="season_")
    assert seasons.shape[1] == 11 and (seasons.sum(axis=1) <= 1).all()
    assert "spring_festival_days" not in X and not any(c.startswith("shock_") for c in X)
    F = ITSDesign(interruption=25, seasonality="fourier:1", period=12).matrix(list(range(1, 13)))
    np.testing.assert_allclose(F["cos_1"].iloc[11], 1.0)
    with pytest.raises(ValueError, match="needs period"):
        ITSDesign(interruption=25, seasonality="month").matrix([1, 2, 3])
    with pytest.raises(ValueError, match="monthly time"):
        ITSDesign(interruption=25, spring_festival=True).matrix([1, 2, 3])


def test_several_interruptions_each_add_level_and_slope():
    d = ITSDesign(interruptions=(4, 7), seasonality="none")
    X = d.matrix(list(range(1, 10)))
    assert X["level_change_2"].tolist() == [0, 0, 0, 0, 0, 0, 1, 1, 1]
    assert X["slope_change_2"].tolist() == [0, 0, 0, 0, 0, 0, 0, 1, 2]
    assert X["slope_change"].tolist() == [0, 0, 0, 0, 1, 2, 3, 4, 5]
    cf = d.counterfactual(X)
    assert (cf[["level_change", "slope_change", "level_change_2", "slope_change_2"]] == 0).all().all()
    with pytest.raises(DesignError, match="after the interruption at 7"):
        d.check_phases(list(range(1, 9)))
    with pytest.raises(ValueError, match="increasing"):
        ITSDesign(interruptions=(7, 4)).matrix([1, 2, 3])


def test_ramp_washin_builds_the_level_change_up():
    d = ITSDesign(interruption=5, washin=3, washin_mode="ramp", seasonality="none")
    X = d.matrix(list(range(1, 10)))
    np.testing.assert_allclose(X["level_change"], [0, 0, 0, 0, 1 / 3, 2 / 3, 1, 1, 1])
    assert d.fit_mask(list(range(1, 10))).all()
    excl = ITSDesign(interruption=5, washin=3, seasonality="none")
    assert excl.fit_mask(list(range(1, 10))).tolist() == [True] * 4 + [False] * 3 + [True] * 2


def test_excluded_points_are_left_out_and_labelled():
    d = ITSDesign(interruption="2020-06", exclude=("2020-02",), seasonality="none", spring_festival=False, shocks=())
    idx = months("2020-01", "2020-08")
    assert d.fit_mask(idx).tolist() == [True, False] + [True] * 6
    assert d.phase(idx).tolist()[:2] == ["pre", "excluded"]


def test_controlled_design_adds_group_interactions_and_switches_off_only_them():
    d = ITSDesign(interruption=3, seasonality="none")
    X = d.matrix([1, 2, 3, 4, 1, 2, 3, 4], group=np.array([1, 1, 1, 1, 0, 0, 0, 0]))
    assert {"group", "group_time", "group_level_change", "group_slope_change"} <= set(X.columns)
    assert X["group_level_change"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    cf = d.counterfactual(X)
    assert (cf[["group_level_change", "group_slope_change"]] == 0).all().all()
    pd.testing.assert_series_equal(cf["level_change"], X["level_change"])
