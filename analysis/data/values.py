"""Reading the text of one cell: months, numbers, percentages and units.

Every parser is exact: it accepts the written forms listed in its docstring and returns
``None`` (with the reason) for anything else, never a guess. Cells are parsed once per
distinct text, since a panel repeats the same months and names thousands of times.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from analysis.registry import Indicator


def fold(text: str) -> str:
    """NFKC-fold (full-width digits, letters and punctuation to ASCII) and strip.

    Examples
    --------
    >>> fold(" ２０２３－０６ ")
    '2023-06'
    """
    return unicodedata.normalize("NFKC", str(text)).replace("\u2212", "-").strip()


def cell_text(value) -> str | None:
    """A cell's text, or None for an empty cell (NA, NaN, None).

    Examples
    --------
    >>> cell_text(pd.NA), cell_text("安徽")
    (None, '安徽')
    """
    return None if value is None or (not isinstance(value, str) and pd.isna(value)) else str(value)


# -- months ----------------------------------------------------------------------------------

_YM = re.compile(r"^(\d{4})\s*[-/]\s*(\d{1,2})$")
_YM_DOT = re.compile(r"^(\d{4})\.(\d{1,2})$")
_YYYYMM = re.compile(r"^(\d{4})(\d{2})$")
_YM_ZH = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月份?$")
_YMD = re.compile(r"^(\d{4})\s*[-/.]\s*(\d{1,2})\s*[-/.]\s*(\d{1,2})(?:[ T]0{1,2}:00(?::00(?:\.0+)?)?)?$")
_YMD_ZH = re.compile(r"^(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日$")
_SERIAL = re.compile(r"^\d{5}(\.0+)?$")

#: Years a month may fall in; anything else is a typing error.
YEAR_RANGE = (1990, 2100)


@lru_cache(maxsize=4096)
def parse_month(text: str) -> tuple[pd.Period | None, str | None]:
    """Parse a month; return ``(month, None)`` or ``(None, reason)``.

    Accepted: ``2023-06``, ``2023-6``, ``2023/6``, ``202306``, ``2023年6月``, ``2023.06``,
    and a date on the first day of the month (``2023-06-01``, ``2023/6/1``,
    ``2023年6月1日``, an Excel date cell), in full-width characters too.

    Examples
    --------
    >>> [str(parse_month(t)[0]) for t in ("2023-06", "2023/6", "202306", "2023年6月", "2023-06-01")]
    ['2023-06', '2023-06', '2023-06', '2023-06', '2023-06']
    >>> parse_month("2023.1")[1]
    'ambiguous: 2023.1 may be January or October (a number cell drops the trailing 0); write 2023-01 or 2023-10'
    """
    folded = fold(text)
    day = None
    if m := (_YM.match(folded) or _YYYYMM.match(folded) or _YM_ZH.match(folded)):
        year, month = int(m.group(1)), int(m.group(2))
    elif m := _YM_DOT.match(folded):
        if len(m.group(2)) == 1:
            return None, (f"ambiguous: {folded} may be January or October (a number cell drops the trailing 0); "
                          f"write {m.group(1)}-0{m.group(2)} or {m.group(1)}-{m.group(2)}0")
        year, month = int(m.group(1)), int(m.group(2))
    elif m := (_YMD.match(folded) or _YMD_ZH.match(folded)):
        year, month, day = int(m.group(1)), int(m.group(2)), int(m.group(3))
    elif _SERIAL.match(folded):
        return None, "looks like an Excel date serial number; format the cells as dates or write YYYY-MM"
    else:
        return None, "not a month; write YYYY-MM (e.g. 2023-06)"
    if not 1 <= month <= 12:
        return None, f"month {month} does not exist; write YYYY-MM with a month 01-12"
    if not YEAR_RANGE[0] <= year <= YEAR_RANGE[1]:
        return None, f"year {year} is outside {YEAR_RANGE[0]}-{YEAR_RANGE[1]}"
    if day is not None and day != 1:
        return None, (f"a date is read as a month only on the first day of the month; write "
                      f"{year}-{month:02d} (or {year}-{month:02d}-01)")
    return pd.Period(year=year, month=month, freq="M"), None


def parse_months(texts: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Vectorised :func:`parse_month`: ``(months as period[M] with NaT, reasons or NA)``."""
    months = pd.Series(pd.NaT, index=texts.index, dtype="period[M]")
    reasons = pd.Series(pd.NA, index=texts.index, dtype="string")
    present = texts.notna()
    if not present.any():
        return months, reasons
    codes, uniques = pd.factorize(texts[present])
    parsed = [parse_month(u) for u in uniques]
    ordinals = np.array([p.ordinal if p is not None else np.iinfo(np.int64).min for p, _ in parsed], dtype=np.int64)
    months[present] = pd.PeriodIndex.from_ordinals(ordinals[codes], freq="M")
    why = np.array([r for _, r in parsed], dtype=object)[codes]
    reasons[present] = pd.array(why, dtype="string")
    return months, reasons


# -- numbers ---------------------------------------------------------------------------------

_NUMBER = re.compile(r"^[+-]?(?:\d{1,3}(?:,\d{3})+|\d+)?(?:\.\d+)?(?:[eE][+-]?\d+)?$")
#: Percent-like marks a value may carry, with their scale.
MARKS = {"%": 100.0, "‰": 1000.0}


@dataclass(frozen=True)
class Number:
    """A parsed number: value, its percent mark (``%``, ``‰`` or None), decimals written."""

    value: float
    mark: str | None
    decimals: int


@lru_cache(maxsize=65536)
def parse_number(text: str) -> tuple[Number | None, str | None]:
    """Parse a number as people write it; return ``(Number, None)`` or ``(None, reason)``.

    Accepted: thousands separators in groups of three (``1,234``), full-width digits and
    punctuation, surrounding spaces, a sign, decimals, an exponent (as some exports
    write large numbers) and a trailing ``%`` or ``‰``. A decimal comma is rejected
    (``1,5`` could mean 1.5 or 15).

    Examples
    --------
    >>> parse_number("１２,３４５")[0].value, parse_number("35.2%")[0]
    (12345.0, Number(value=35.2, mark='%', decimals=1))
    >>> parse_number("1,5")[1]
    "not a number: 1,5 (thousands separators must group three digits; write decimals with '.')"
    """
    folded = fold(text).replace("\u00a0", "").replace(" ", "")
    mark = None
    if folded[-1:] in MARKS:
        mark, folded = folded[-1], folded[:-1]
    if not folded or not _NUMBER.match(folded) or not any(ch.isdigit() for ch in folded):
        hint = (" (thousands separators must group three digits; write decimals with '.')" if "," in folded else "")
        return None, f"not a number: {fold(text)}{hint}"
    value = float(folded.replace(",", ""))
    if not np.isfinite(value):
        return None, f"not a number: {fold(text)}"
    mantissa = folded.split("e")[0].split("E")[0]
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return Number(value, mark, decimals), None


@dataclass(frozen=True)
class ParsedNumbers:
    """A column of parsed numbers: ``value`` (float, NaN where empty or invalid),
    ``mark`` (``%``/``‰`` or NA), ``decimals`` (digits after the point), ``reason`` (why a
    non-empty cell is not a number, else NA)."""

    value: pd.Series
    mark: pd.Series
    decimals: pd.Series
    reason: pd.Series


def parse_numbers(texts: pd.Series, *, decimals: bool = False) -> ParsedNumbers:
    """Vectorised :func:`parse_number`. Plain numbers take a fast path; only texts it
    rejects (separators, full-width digits, percent marks, junk) are parsed one by one.

    ``decimals=True`` also counts the decimals written (needed to know how precisely a
    percentage was given).
    """
    index = texts.index
    fast = pd.to_numeric(texts, errors="coerce").astype("float64")
    present = texts.notna().to_numpy()
    value = fast.to_numpy(copy=True)
    mark = np.full(len(texts), None, dtype=object)
    reason = np.full(len(texts), None, dtype=object)
    slow = present & ~np.isfinite(value)
    if decimals:
        digits = np.zeros(len(texts), dtype=np.int64)
        plain = present & ~slow
        if plain.any():
            tail = texts[plain].str.extract(r"\.(\d+)", expand=False).str.len().fillna(0)
            digits[plain] = tail.astype("int64").to_numpy()
    if slow.any():
        codes, uniques = pd.factorize(texts[slow])
        parsed = [parse_number(u) for u in uniques]
        value[slow] = np.array([n.value if n else np.nan for n, _ in parsed])[codes]
        mark[slow] = np.array([n.mark if n else None for n, _ in parsed], dtype=object)[codes]
        reason[slow] = np.array([r for _, r in parsed], dtype=object)[codes]
        if decimals:
            digits[slow] = np.array([n.decimals if n else 0 for n, _ in parsed])[codes]
    value[~present] = np.nan
    return ParsedNumbers(
        value=pd.Series(value, index=index, dtype="float64"),
        mark=pd.Series(pd.array(mark, dtype="string"), index=index),
        decimals=pd.Series(digits if decimals else np.zeros(len(texts), dtype=np.int64), index=index),
        reason=pd.Series(pd.array(reason, dtype="string"), index=index),
    )


# -- units -----------------------------------------------------------------------------------

#: Written units and the multiplier from a proportion or events per unit of exposure.
_UNIT_SCALES = {
    "%": 100.0, "percent": 100.0, "百分比": 100.0, "百分率": 100.0,
    "‰": 1000.0, "permille": 1000.0, "千分比": 1000.0, "千分率": 1000.0,
    "per100discharges": 100.0, "每百出院人次": 100.0, "例次/百出院人次": 100.0, "per100": 100.0,
    "per1000catheter-days": 1000.0, "per1000catheterdays": 1000.0, "每千导管日": 1000.0,
    "例/千导管日": 1000.0, "‰(每千导管日)": 1000.0, "per1000": 1000.0,
}
#: Units of ``mean`` indicators in Chinese and English.
_MEAN_UNITS = {"minutes": {"minutes", "minute", "min", "分钟", "分"}, "months": {"months", "month", "月"},
               "index": {"index", "指数", "", "无", "-"}}

#: Chinese display unit of each registry unit, for templates and reports.
UNIT_ZH = {"%": "%", "‰": "‰", "per 100 discharges": "例次/百出院人次",
           "per 1000 catheter-days": "例/千导管日", "minutes": "分钟", "months": "月", "index": "指数"}


def normalise_unit(text: str) -> str:
    """Unit text in a canonical form for comparison (folded, no spaces, lower case)."""
    return "".join(fold(text).split()).casefold()


def unit_scale(text: str, indicator: Indicator) -> float | None:
    """Multiplier of a written unit for ``indicator``, or None if the unit does not fit it.

    Proportions accept ``%`` and ``‰`` (either converts exactly); rates accept their
    own unit (in English or Chinese) and the mark of the same scale; mean indicators
    accept only their own unit (no conversion is guessed).

    Examples
    --------
    >>> from analysis.registry import get_indicator
    >>> unit_scale("‰", get_indicator(29)), unit_scale("例/千导管日", get_indicator(34)), unit_scale("%", get_indicator(9))
    (1000.0, 1000.0, None)
    """
    norm = normalise_unit(text)
    if indicator.measure == "mean":
        return 1.0 if norm in _MEAN_UNITS.get(indicator.unit, {normalise_unit(indicator.unit)}) else None
    if indicator.measure == "proportion":
        scale = _UNIT_SCALES.get(norm)
        return scale if norm in ("%", "‰", "percent", "permille", "百分比", "百分率", "千分比", "千分率") else None
    if indicator.measure == "rate":
        if norm == normalise_unit(indicator.unit) or norm == normalise_unit(UNIT_ZH.get(indicator.unit, "")):
            return indicator.scale
        scale = _UNIT_SCALES.get(norm)
        return scale if scale == indicator.scale else None
    return None


def unit_label(text: str) -> str:
    """The unit as a short label for messages: ``%``, ``‰`` or the folded text."""
    norm = normalise_unit(text)
    return {"percent": "%", "百分比": "%", "百分率": "%", "permille": "‰", "千分比": "‰", "千分率": "‰"}.get(
        norm, fold(text))
