"""Policy timeline, calendar effects and known disruptions (see the plan, 国卫医政发〔2023〕12号).

Months are ``pandas.Period`` objects with monthly frequency throughout the package.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

import pandas as pd

PLAN_ISSUED = dt.date(2023, 5, 26)
LAUNCH = (pd.Period("2023-05", "M"), pd.Period("2023-06", "M"))
#: First month of the implementation phase: the national default intervention month.
IMPLEMENTATION_START = pd.Period("2023-06", "M")
#: Last month of implementation: where the end-of-plan effect is evaluated.
IMPLEMENTATION_END = pd.Period("2025-09", "M")
EVALUATION = (pd.Period("2025-10", "M"), pd.Period("2025-12", "M"))

#: Spring Festival (正月初一) dates; the holiday moves between late January and mid February.
SPRING_FESTIVAL: dict[int, dt.date] = {
    2015: dt.date(2015, 2, 19),
    2016: dt.date(2016, 2, 8),
    2017: dt.date(2017, 1, 28),
    2018: dt.date(2018, 2, 16),
    2019: dt.date(2019, 2, 5),
    2020: dt.date(2020, 1, 25),
    2021: dt.date(2021, 2, 12),
    2022: dt.date(2022, 2, 1),
    2023: dt.date(2023, 1, 22),
    2024: dt.date(2024, 2, 10),
    2025: dt.date(2025, 1, 29),
    2026: dt.date(2026, 2, 17),
    2027: dt.date(2027, 2, 6),
}
#: Length of the official holiday counted from the eve (除夕) onwards.
SPRING_FESTIVAL_HOLIDAY_DAYS = 7

#: Nationwide COVID-19 shocks: the first wave and the exit wave just before the plan.
COVID_SHOCK_MONTHS: tuple[pd.Period, ...] = tuple(
    pd.Period(m, "M") for m in ("2020-01", "2020-02", "2020-03", "2022-12", "2023-01")
)

#: Co-interventions that overlap the plan (confounders of a simple before/after).
CO_INTERVENTIONS: tuple[tuple[str, str, str], ...] = (
    ("2021-09", "Public Hospital High-Quality Development Promotion Action", "公立医院高质量发展促进行动"),
    ("2023-07", "National campaign against corruption in the medical sector", "全国医药领域腐败问题集中整治"),
    ("2023-07", "DRG/DIP payment reform extended", "DRG/DIP支付方式改革扩面"),
)


def spring_festival_days(months: pd.PeriodIndex) -> pd.Series:
    """Days of the Spring Festival holiday falling in each month (0-7).

    A fixed February dummy cannot capture a holiday that moves between months, so the
    package uses the number of holiday days in the month as a calendar regressor.

    Examples
    --------
    >>> idx = pd.period_range("2023-01", "2023-02", freq="M")
    >>> spring_festival_days(idx).tolist()
    [7, 0]
    >>> spring_festival_days(pd.period_range("2025-01", "2025-02", freq="M")).tolist()
    [4, 3]
    """
    unknown = sorted(set(months.year) - set(SPRING_FESTIVAL))
    if unknown:
        raise ValueError(f"no Spring Festival date registered for {unknown[0]}")
    table = _spring_festival_table()
    counts = [table.get((y, m), 0) for y, m in zip(months.year, months.month)]
    return pd.Series(counts, index=months, name="spring_festival_days")


@cache
def _spring_festival_table() -> dict[tuple[int, int], int]:
    """Holiday days per (year, month), computed once from :data:`SPRING_FESTIVAL`."""
    table: dict[tuple[int, int], int] = {}
    for day in SPRING_FESTIVAL.values():
        eve = day - dt.timedelta(days=1)
        for offset in range(SPRING_FESTIVAL_HOLIDAY_DAYS):
            date = eve + dt.timedelta(days=offset)
            table[(date.year, date.month)] = table.get((date.year, date.month), 0) + 1
    return table
