"""Design matrices of segmented regression for monthly series.

Time is counted in months relative to the interruption, so that the intercept is the
pre-period trend's level at the interruption and ``level_change`` is the jump there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analysis.registry import timeline

#: Columns that carry the intervention; zeroing them gives the counterfactual.
INTERVENTION_COLUMNS = ("level_change", "slope_change")

#: Fewer points than this in a phase is not an interrupted time series.
MIN_POINTS_PER_PHASE = 3


class DesignError(ValueError):
    """The series cannot support the requested design (e.g. too few points in a phase)."""


def _as_period(month: str | pd.Period) -> pd.Period:
    return month if isinstance(month, pd.Period) else pd.Period(str(month), "M")


@dataclass(frozen=True, kw_only=True)
class ITSDesign:
    """Segmented-regression design for one interruption in a monthly series.

    Parameters
    ----------
    interruption : str or pandas.Period
        First post-interruption month (the plan's start in the province).
    washin : int
        Months from the interruption that are excluded from the fit while the effect
        builds up (a transition period). Time since the interruption is still counted
        from ``interruption``.
    seasonality : {"none", "month", "fourier:K"}
        Month-of-year dummies (reference January), K Fourier pairs, or none.
    spring_festival : bool
        Add the number of Spring Festival holiday days in the month as a regressor.
    shocks : tuple of months
        One indicator column per month (e.g. COVID-19 waves); months absent from the data
        or inside the wash-in are skipped. Equivalent to excluding those months from the
        mean model while keeping the series contiguous for the autocorrelation estimate.
    first_post_time : {0, 1}
        Value of time-since-interruption in the first post month. Stata ``itsa`` uses 0;
        many R tutorials use 1. With 1 the level change is measured one month before.
    slope_change : bool
        Whether to estimate a change in slope.

    Examples
    --------
    >>> d = ITSDesign(interruption="2023-06", seasonality="none", spring_festival=False, shocks=())
    >>> months = pd.period_range("2023-03", "2023-08", freq="M")
    >>> d.matrix(months)[["time", "level_change", "slope_change"]].to_numpy().tolist()
    [[-3.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [2.0, 1.0, 2.0]]
    """

    interruption: pd.Period | str
    washin: int = 0
    seasonality: str = "month"
    spring_festival: bool = True
    shocks: tuple[pd.Period | str, ...] = field(default=timeline.COVID_SHOCK_MONTHS)
    first_post_time: int = 0
    slope_change: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "interruption", _as_period(self.interruption))
        object.__setattr__(self, "shocks", tuple(_as_period(m) for m in self.shocks))
        if self.washin < 0:
            raise ValueError(f"washin must be >= 0 months, got {self.washin}")
        if self.first_post_time not in (0, 1):
            raise ValueError(f"first_post_time must be 0 or 1, got {self.first_post_time}")
        self._fourier_pairs()  # validates seasonality

    def _fourier_pairs(self) -> int:
        if self.seasonality in ("none", "month"):
            return 0
        kind, _, k = self.seasonality.partition(":")
        if kind != "fourier" or not k.isdigit() or not 1 <= int(k) <= 6:
            raise ValueError(
                f"seasonality must be 'none', 'month' or 'fourier:K' with K in 1..6, got {self.seasonality!r}"
            )
        return int(k)

    def months_since(self, months: pd.PeriodIndex) -> np.ndarray:
        """Months relative to the interruption (0 at the interruption)."""
        start = self.interruption.ordinal  # type: ignore[union-attr]
        return np.asarray(months.asi8, dtype=float) - start

    def in_washin(self, months: pd.PeriodIndex) -> np.ndarray:
        """Boolean mask of the wash-in months (excluded from fitting)."""
        rel = self.months_since(months)
        return (rel >= 0) & (rel < self.washin)

    def shock_columns(self, months: pd.PeriodIndex) -> list[pd.Period]:
        """Shock months that are present in ``months`` and not inside the wash-in."""
        present = set(months[~self.in_washin(months)])
        return [m for m in self.shocks if m in present]

    def matrix(self, months: pd.PeriodIndex, *, shock_columns: list[pd.Period] | None = None) -> pd.DataFrame:
        """Design matrix for ``months`` (any months: fitted, future or counterfactual).

        ``shock_columns`` fixes the shock dummies (pass the fitted design's list when
        predicting for other months so that columns line up).
        """
        months = pd.PeriodIndex(months, freq="M")
        rel = self.months_since(months)
        post = (rel >= 0).astype(float)
        cols: dict[str, np.ndarray] = {"const": np.ones(len(months)), "time": rel}
        cols["level_change"] = post
        if self.slope_change:
            cols["slope_change"] = np.where(post > 0, rel + self.first_post_time, 0.0)
        moy = np.asarray(months.month)
        if self.seasonality == "month":
            for m in range(2, 13):
                cols[f"month_{m:02d}"] = (moy == m).astype(float)
        for k in range(1, self._fourier_pairs() + 1):
            cols[f"sin_{k}"] = np.sin(2 * np.pi * k * moy / 12)
            cols[f"cos_{k}"] = np.cos(2 * np.pi * k * moy / 12)
        if self.spring_festival:
            cols["spring_festival_days"] = timeline.spring_festival_days(months).to_numpy(dtype=float)
        for shock in self.shock_columns(months) if shock_columns is None else shock_columns:
            cols[f"shock_{shock}"] = (months == shock).astype(float)
        return pd.DataFrame(cols, index=months)

    def counterfactual(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """The same rows with the intervention switched off."""
        cf = matrix.copy()
        for col in INTERVENTION_COLUMNS:
            if col in cf:
                cf[col] = 0.0
        return cf

    def check_phases(self, months: pd.PeriodIndex, *, minimum: int = MIN_POINTS_PER_PHASE) -> tuple[int, int]:
        """Count fitted pre and post points; raise ``DesignError`` below ``minimum``."""
        rel = self.months_since(pd.PeriodIndex(months, freq="M"))
        n_pre = int((rel < 0).sum())
        n_post = int((rel >= self.washin).sum())
        if n_pre < minimum or n_post < minimum:
            raise DesignError(
                f"{n_pre} pre-interruption and {n_post} post-interruption months (after a "
                f"{self.washin}-month wash-in) for an interruption at {self.interruption}: an "
                f"interrupted time series needs at least {minimum} in each phase"
            )
        return n_pre, n_post
