import pandas as pd
import pytest

from analysis.registry import timeline


def test_spring_festival_days_follow_the_moving_holiday():
    months = pd.period_range("2019-01", "2025-12", freq="M")
    days = timeline.spring_festival_days(months)
    # 7 holiday days from the eve each year, split between January and February as the date moves
    assert days.groupby(months.year).sum().eq(7).all()
    assert days[pd.Period("2023-01", "M")] == 7 and days[pd.Period("2023-02", "M")] == 0  # 2023-01-22
    assert days[pd.Period("2024-02", "M")] == 7  # 2024-02-10
    assert (days[pd.Period("2020-01", "M")], days[pd.Period("2020-02", "M")]) == (7, 0)  # 2020-01-25: eve 01-24..01-30
    assert (days[pd.Period("2025-01", "M")], days[pd.Period("2025-02", "M")]) == (4, 3)  # 2025-01-29: eve 01-28..02-03
    assert days[~days.index.month.isin([1, 2])].eq(0).all()


def test_unknown_year_is_an_error():
    with pytest.raises(ValueError, match="2040"):
        timeline.spring_festival_days(pd.period_range("2040-01", "2040-02", freq="M"))


def test_plan_phases():
    assert str(timeline.IMPLEMENTATION_START) == "2023-06" and str(timeline.IMPLEMENTATION_END) == "2025-09"
    assert timeline.PLAN_ISSUED.isoformat() == "2023-05-26"
    assert [str(m) for m in timeline.COVID_SHOCK_MONTHS] == ["2020-01", "2020-02", "2020-03", "2022-12", "2023-01"]
