"""Design matrices of segmented regression.

Time is counted relative to each interruption, so the intercept is the pre-period trend's
level at the (first) interruption and ``level_change`` is the jump there. Time may be
calendar months (with month-of-year seasonality, the moving Spring Festival and shock
months) or integers (years, period numbers: seasonality then needs ``period``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.its.timeaxis import TimeLike, as_ordinal, as_time_index, is_monthly, label, ordinals
from analysis.registry import timeline

#: Fewer points than this in a phase is not an interrupted time series.
MIN_POINTS_PER_PHASE = 3
#: Fewer than this in a phase is legal but weak; the model warns.
RECOMMENDED_POINTS_PER_PHASE = 8


#: Calendars whose terms a design can default to (see ``ITSDesign.calendar``).
CALENDARS = ("none", "china")


class DesignError(ValueError):
    """The series cannot support the requested design (e.g. too few points in a phase)."""


#: Design matrices built recently, by (design, kind of time, ordinals, shock columns).
_MATRICES: dict[tuple, pd.DataFrame] = {}
_MATRIX_CACHE_SIZE = 64


def intervention_columns(k: int, *, controlled: bool = False) -> tuple[str, str]:
    """Level and slope column names of interruption ``k`` (0-based)."""
    suffix = "" if k == 0 else f"_{k + 1}"
    prefix = "group_" if controlled else ""
    return f"{prefix}level_change{suffix}", f"{prefix}slope_change{suffix}"


@dataclass(frozen=True, kw_only=True)
class ITSDesign:
    """Segmented-regression design with one or more interruptions.

    Parameters
    ----------
    interruption : time value, optional
        First post-interruption time (a month such as ``"2023-06"``, or an integer such as
        1989). Shorthand for ``interruptions=(interruption,)``.
    interruptions : tuple of time values
        Several interruptions, each adding its own level and slope change
        (``level_change``, ``slope_change``, ``level_change_2``, ...), each relative to the
        segment before it.
    washin : int
        Transition periods after each interruption while the effect builds up.
    washin_mode : {"exclude", "ramp"}
        ``exclude`` leaves the wash-in out of the fit; ``ramp`` keeps it and lets the level
        change build up linearly over the wash-in (``min(1, (t - T + 1) / washin)``).
    exclude : tuple of time values
        Further time points left out of the fit (e.g. a known data problem).
    seasonality : {"none", "month", "fourier:K"}, optional
        Season dummies (reference: first season), K Fourier pairs, or none. Default:
        ``month`` for monthly time, ``none`` for integer time.
    period : int, optional
        Season length for integer time (12 for monthly data numbered 1, 2, ...).
    spring_festival : bool, optional
        Spring Festival holiday days in the month as a regressor (monthly time only).
        Default: as ``calendar`` says (off unless ``calendar="china"``).
    shocks : tuple of time values, optional
        One indicator column per listed time (e.g. COVID-19 months); those absent from the
        data or inside an excluded wash-in are skipped. Default: as ``calendar`` says
        (none unless ``calendar="china"``).
    calendar : {"none", "china"}
        Calendar terms that ``spring_festival`` and ``shocks`` default to. ``"none"``
        (default): none, so that any monthly series can be fitted. ``"china"``: the terms the
        evaluation uses for Chinese hospital data, Spring Festival days
        (:func:`analysis.registry.timeline.spring_festival_days`, registered for
        2015-2030) and one dummy per nationwide COVID-19 shock month
        (``timeline.COVID_SHOCK_MONTHS``); monthly time only.
    first_post_time : {0, 1}
        Time-since-interruption in the first post period: Stata ``itsa`` uses 0; many R
        tutorials use 1 (the level change is then measured one period earlier).
    slope_change : bool
        Whether to estimate changes in slope.

    Examples
    --------
    >>> d = ITSDesign(interruption="2023-06", seasonality="none", spring_festival=False, shocks=())
    >>> months = pd.period_range("2023-03", "2023-08", freq="M")
    >>> d.matrix(months)[["time", "level_change", "slope_change"]].to_numpy().tolist()
    [[-3.0, 0.0, 0.0], [-2.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [2.0, 1.0, 2.0]]
    >>> ITSDesign(interruption=1989).matrix([1987, 1988, 1989, 1990]).columns.tolist()
    ['const', 'time', 'level_change', 'slope_change']
    """

    interruption: TimeLike | None = None
    interruptions: tuple[TimeLike, ...] = ()
    washin: int = 0
    washin_mode: str = "exclude"
    exclude: tuple[TimeLike, ...] = ()
    seasonality: str | None = None
    period: int | None = None
    spring_festival: bool | None = None
    shocks: tuple[TimeLike, ...] | None = None
    first_post_time: int = 0
    slope_change: bool = True
    calendar: str = "none"

    def __post_init__(self) -> None:
        if self.calendar not in CALENDARS:
            raise ValueError(f"calendar must be one of {list(CALENDARS)}, got {self.calendar!r}")
        if self.interruption is not None and self.interruptions:
            raise ValueError("give either interruption or interruptions, not both")
        points = (self.interruption,) if self.interruption is not None else tuple(self.interruptions)
        if not points:
            raise ValueError("a design needs at least one interruption")
        object.__setattr__(self, "interruptions", points)
        object.__setattr__(self, "interruption", points[0])
        if self.washin < 0:
            raise ValueError(f"washin must be >= 0, got {self.washin}")
        if self.washin_mode not in ("exclude", "ramp"):
            raise ValueError(f"washin_mode must be 'exclude' or 'ramp', got {self.washin_mode!r}")
        if self.first_post_time not in (0, 1):
            raise ValueError(f"first_post_time must be 0 or 1, got {self.first_post_time}")
        if self.shocks is not None:
            object.__setattr__(self, "shocks", tuple(self.shocks))
        object.__setattr__(self, "exclude", tuple(self.exclude))
        if self.seasonality is not None:
            self._fourier_pairs(self.seasonality)

    # -- resolved options -----------------------------------------------------------
    @staticmethod
    def _fourier_pairs(seasonality: str) -> int:
        if seasonality in ("none", "month"):
            return 0
        kind, _, k = seasonality.partition(":")
        if kind != "fourier" or not k.isdigit() or not 1 <= int(k) <= 6:
            raise ValueError(f"seasonality must be 'none', 'month' or 'fourier:K' with K in 1..6, got {seasonality!r}")
        return int(k)

    def _seasonality(self, time: pd.Index) -> str:
        return self.seasonality or ("month" if is_monthly(time) else "none")

    def _period(self, time: pd.Index) -> int | None:
        return 12 if is_monthly(time) and self.period is None else self.period

    def _shocks(self, time: pd.Index) -> tuple[TimeLike, ...]:
        if self.shocks is None:
            return timeline.COVID_SHOCK_MONTHS if self.calendar == "china" and is_monthly(time) else ()
        return self.shocks

    def _spring_festival(self, time: pd.Index) -> bool:
        if self.spring_festival is None:
            return self.calendar == "china" and is_monthly(time)
        if self.spring_festival and not is_monthly(time):
            raise ValueError("the Spring Festival regressor needs monthly time")
        return self.spring_festival

    def starts(self, time: pd.Index) -> np.ndarray:
        """Ordinals of the interruptions, checked to be increasing."""
        values = np.array([as_ordinal(p, time) for p in self.interruptions], dtype=np.int64)
        if np.any(np.diff(values) <= 0):
            raise ValueError("interruptions must be in increasing order")
        return values

    # -- row classification -----------------------------------------------------------
    def time_since(self, time: pd.Index | list, k: int = 0) -> np.ndarray:
        """Periods relative to interruption ``k`` (0 at the interruption)."""
        time = as_time_index(time)
        return (ordinals(time) - self.starts(time)[k]).astype(float)

    def months_since(self, time: pd.Index | list) -> np.ndarray:
        """Alias of :meth:`time_since` for the first interruption."""
        return self.time_since(time, 0)

    def in_washin(self, time: pd.Index | list) -> np.ndarray:
        """Rows inside a wash-in (after any interruption)."""
        time = as_time_index(time)
        mask = np.zeros(len(time), dtype=bool)
        for k in range(len(self.interruptions)):
            rel = self.time_since(time, k)
            mask |= (rel >= 0) & (rel < self.washin)
        return mask

    def fit_mask(self, time: pd.Index | list) -> np.ndarray:
        """Rows used for fitting: all but excluded wash-ins and excluded points."""
        time = as_time_index(time)
        keep = np.ones(len(time), dtype=bool)
        if self.washin_mode == "exclude":
            keep &= ~self.in_washin(time)
        if self.exclude:
            dropped = {as_ordinal(p, time) for p in self.exclude}
            keep &= ~np.isin(ordinals(time), list(dropped))
        return keep

    def phase(self, time: pd.Index | list) -> np.ndarray:
        """``pre``, ``washin`` or ``post`` relative to the first interruption; ``excluded``
        for excluded points."""
        time = as_time_index(time)
        rel = self.time_since(time, 0)
        out = np.where(rel < 0, "pre", np.where(self.in_washin(time), "washin", "post")).astype(object)
        if self.exclude:
            out[np.isin(ordinals(time), [as_ordinal(p, time) for p in self.exclude])] = "excluded"
        return out

    def shock_columns(self, time: pd.Index | list) -> list[int]:
        """Ordinals of shock points present among the fitted rows."""
        time = as_time_index(time)
        present = set(ordinals(time)[self.fit_mask(time)].tolist())
        return [o for o in (as_ordinal(s, time) for s in self._shocks(time)) if o in present]

    # -- the matrix -------------------------------------------------------------------
    def matrix(
        self, time: pd.Index | list, *, shock_columns: list[int] | None = None, group: np.ndarray | None = None
    ) -> pd.DataFrame:
        """Design matrix for ``time`` (any rows: fitted, future or counterfactual).

        ``shock_columns`` fixes the shock dummies (pass a fitted model's list when
        predicting other rows so that columns line up). ``group`` (1 = treated, 0 = control)
        stacks a controlled ITS: the treated series gets its own intercept, trend and
        changes (``group``, ``group_time``, ``group_level_change``, ...), whose level and
        slope terms are the differences in level and slope change.
        """
        time = as_time_index(time)
        if group is None:
            # A panel fits many series on the same months with the same design (every
            # indicator of a province): the matrix is built once and copied.
            key = (
                self,
                is_monthly(time),
                ordinals(time).tobytes(),
                None if shock_columns is None else tuple(shock_columns),
            )
            try:
                cached = _MATRICES.get(key)
            except TypeError:  # a design holding unhashable values (e.g. a list) is not cached
                return self._matrix(time, shock_columns=shock_columns, group=None)
            if cached is None:
                cached = _MATRICES[key] = self._matrix(time, shock_columns=shock_columns, group=None)
                while len(_MATRICES) > _MATRIX_CACHE_SIZE:
                    _MATRICES.pop(next(iter(_MATRICES)))
            return cached.copy()
        return self._matrix(time, shock_columns=shock_columns, group=group)

    def _matrix(self, time: pd.Index, *, shock_columns: list[int] | None, group: np.ndarray | None) -> pd.DataFrame:
        o = ordinals(time)
        starts = self.starts(time)
        rel0 = (o - starts[0]).astype(float)
        cols: dict[str, np.ndarray] = {"const": np.ones(len(time)), "time": rel0}
        changes: dict[str, np.ndarray] = {}
        for k, start in enumerate(starts):
            rel = (o - start).astype(float)
            post = rel >= 0
            level, slope = intervention_columns(k)
            if self.washin_mode == "ramp" and self.washin > 0:
                changes[level] = np.where(post, np.minimum(1.0, (rel + 1) / self.washin), 0.0)
            else:
                changes[level] = post.astype(float)
            if self.slope_change:
                changes[slope] = np.where(post, rel + self.first_post_time, 0.0)
        cols.update(changes)
        if group is not None:
            g = np.asarray(group, dtype=float)
            if g.shape != (len(time),) or not np.isin(g, (0.0, 1.0)).all():
                raise ValueError("group must be 0 (control) or 1 (treated) for every row")
            cols["group"] = g
            cols["group_time"] = g * rel0
            for name, values in changes.items():
                cols[f"group_{name}"] = g * values
        seasonality = self._seasonality(time)
        period = self._period(time)
        if seasonality != "none" and period is None:
            raise ValueError("seasonality with integer time needs period (e.g. 12 for monthly data)")
        # Position in the season: the calendar month (1-12) for monthly time, t mod period for
        # integer time (Fourier terms and dummies span the same space whatever the phase).
        position = np.asarray(time.month) if is_monthly(time) else np.mod(o, period) if period else None
        if seasonality == "month":
            prefix, first = ("month", 1) if is_monthly(time) else ("season", 0)
            for s in range(first + 1, first + period):
                cols[f"{prefix}_{s:02d}"] = (position == s).astype(float)
        for k in range(1, self._fourier_pairs(seasonality) + 1):
            cols[f"sin_{k}"] = np.sin(2 * np.pi * k * position / period)
            cols[f"cos_{k}"] = np.cos(2 * np.pi * k * position / period)
        if self._spring_festival(time):
            cols["spring_festival_days"] = timeline.spring_festival_days(time).to_numpy(dtype=float)
        for shock in self.shock_columns(time) if shock_columns is None else shock_columns:
            cols[f"shock_{label(shock, time)}"] = (o == shock).astype(float)
        # One float block: much faster than a frame built column by column.
        return pd.DataFrame(np.column_stack(list(cols.values())), index=time, columns=list(cols))

    def intervention_names(self, matrix: pd.DataFrame) -> list[str]:
        """Columns switched off in the counterfactual: the treated-specific changes in a
        controlled design, all level and slope changes otherwise."""
        controlled = "group" in matrix.columns
        names = [
            name for k in range(len(self.interruptions)) for name in intervention_columns(k, controlled=controlled)
        ]
        return [n for n in names if n in matrix.columns]

    def counterfactual(self, matrix: pd.DataFrame) -> pd.DataFrame:
        """The same rows with the intervention switched off."""
        cf = matrix.copy()
        cf[self.intervention_names(matrix)] = 0.0
        return cf

    def check_phases(self, time: pd.Index | list, *, minimum: int = MIN_POINTS_PER_PHASE) -> tuple[int, int]:
        """Count fitted points before the first interruption and in each later segment;
        raise :class:`DesignError` below ``minimum``. Returns (pre, post) counts, post
        counting everything fitted after the first interruption."""
        time = as_time_index(time)
        keep = self.fit_mask(time)
        o = ordinals(time)[keep]
        starts = self.starts(time)
        bounds = [-np.inf, *starts.tolist(), np.inf]
        counts = [int(((o >= lo) & (o < hi)).sum()) for lo, hi in zip(bounds[:-1], bounds[1:])]
        names = ["before the first interruption"] + [f"after the interruption at {label(s, time)}" for s in starts]
        for count, name in zip(counts, names):
            if count < minimum:
                raise DesignError(
                    f"{count} fitted point(s) {name} ({counts[0]} pre-interruption and "
                    f"{sum(counts[1:])} post-interruption in all, after a {self.washin}-period wash-in): "
                    f"an interrupted time series needs at least {minimum} in each phase"
                )
        return counts[0], int(sum(counts[1:]))


@dataclass(frozen=True)
class DesignData:
    """The rows a model is fitted to, with their design matrix.

    Estimators other than the GLM fit (e.g. regression with ARMA errors) start from here.
    """

    X: pd.DataFrame
    y: np.ndarray
    size: np.ndarray | None
    time: pd.Index
    series: np.ndarray
    fit_mask: np.ndarray
    n_pre: int
    n_post: int
    #: Design matrix of every row of the data (fitted or not), before unused columns are dropped.
    all_rows: pd.DataFrame | None = None
