"""The time axis of a series: calendar months or plain integers (e.g. years, period numbers).

Monthly data are ``pandas.Period`` months; other data use integer time (1989, or 37). All
arithmetic is done on integer ordinals, so both kinds share one code path.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

TimeLike = int | str | pd.Period


def as_time_index(values: pd.Index | Sequence | np.ndarray) -> pd.Index:
    """Monthly ``PeriodIndex`` for months (``Period``, ``YYYY-MM`` strings, dates) or an
    integer ``Index`` for integer time.

    Examples
    --------
    >>> as_time_index(["2023-05", "2023-06"]).freqstr
    'M'
    >>> list(as_time_index([1988, 1989]))
    [1988, 1989]
    """
    if isinstance(values, pd.PeriodIndex):
        return values.asfreq("M") if values.freqstr != "M" else values
    if isinstance(values, (list, tuple)) and values and all(isinstance(v, pd.Period) for v in values):
        # Periods given one by one (an evaluation month, a window): no parsing needed.
        return pd.PeriodIndex([v.asfreq("M") for v in values], freq="M")
    array = np.asarray(values)
    if array.dtype.kind in "iu":
        return pd.Index(array.astype(np.int64))
    if array.dtype.kind == "f":
        if np.all(np.isfinite(array)) and np.all(array == np.round(array)):
            return pd.Index(array.astype(np.int64))
        raise ValueError("time values must be whole numbers or months")
    try:
        return pd.PeriodIndex(pd.Series(values).astype(str).map(lambda v: pd.Period(v, "M")), freq="M")
    except (ValueError, TypeError) as err:
        raise ValueError(f"time values must be integers or months (YYYY-MM): {err}") from None


def is_monthly(index: pd.Index) -> bool:
    return isinstance(index, pd.PeriodIndex)


def ordinals(index: pd.Index) -> np.ndarray:
    """Integer position of each time value (month ordinals for monthly time)."""
    return np.asarray(index.asi8 if is_monthly(index) else index, dtype=np.int64)


def as_ordinal(value: TimeLike, index: pd.Index) -> int:
    """One time value (an interruption, an excluded point) on the ordinal scale of ``index``."""
    if is_monthly(index):
        period = value if isinstance(value, pd.Period) else pd.Period(str(value), "M")
        return int(period.asfreq("M").ordinal)
    if isinstance(value, pd.Period):
        raise ValueError(f"the series has integer time; {value} is a month")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"the series has integer time; {value!r} is not an integer") from None
    if number != round(number):
        raise ValueError(f"the series has integer time; {value!r} is not an integer")
    return int(number)


def label(ordinal: int, index: pd.Index) -> str:
    """Human-readable form of an ordinal (``2023-06`` or ``1989``)."""
    return str(pd.Period(ordinal=int(ordinal), freq="M")) if is_monthly(index) else str(int(ordinal))
