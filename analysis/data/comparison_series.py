"""Comparison series outside the annex: ``comparison_series.csv`` beside the panel.

A controlled ITS needs a comparison series that the co-interventions reach but the plan does
not (or less): an indicator the plan does not target, or the same indicator in hospitals
less exposed to the plan. Such series are not annex indicators, so they have their own
table, in the long format and units of the panel, with a free-text ``series`` name instead
of an annex number and the ``measure`` declared per series:

``province``
    GB/T 2260 code or name, as in the panel.
``series``
    The series' name (not a number: ``comparisons.csv`` names annex indicators by number).
``measure``
    ``proportion``, ``rate`` or ``mean``: the measure of the indicator it is compared with,
    so that both are modelled on one scale (binomial logit, Poisson log, Gaussian identity).
``month``
    ``YYYY-MM`` and the other forms of :func:`analysis.data.values.parse_month`.
``numerator``, ``denominator``
    Whole counts, for proportions and rates (``value`` empty).
``value``
    The monthly mean for means, in the unit of the indicator it is compared with
    (``denominator`` may give the number of cases; ``numerator`` empty).

Every problem is reported at once with the file, row, column, value, rule and fix
(:class:`analysis.data.problems.DataValidationError`, a ``ValueError``); nothing is
dropped, coerced or imputed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import DataValidationError, Problem
from analysis.data.readers import COLUMN_ALIASES
from analysis.data.rules import problem
from analysis.data.side_tables import side_table
from analysis.data.values import cell_text, fold, parse_months, parse_numbers
from analysis.registry import get_province

__all__ = ["COMPARISON_SERIES_COLUMNS", "MEASURES", "check_comparison_series", "read_comparison_series"]

#: Measures a comparison series may declare.
MEASURES = ("proportion", "rate", "mean")
#: Columns of the checked table returned by :func:`read_comparison_series`.
COMPARISON_SERIES_COLUMNS = ["province", "series", "measure", "month", "numerator", "denominator", "value",
                             "source_row", "source_file"]

_ALIASES = {
    **{role: COLUMN_ALIASES[role] for role in ("province", "month", "numerator", "denominator", "value")},
    "series": ("series", "series name", "comparison series", "comparison", "比较序列", "对照序列", "序列", "序列名称"),
    "measure": ("measure", "measure type", "指标类型", "度量", "类型"),
    "note": COLUMN_ALIASES["note"],
}
_MEASURE_NAMES = {"proportion": "proportion", "比例": "proportion", "rate": "rate", "率": "rate", "mean": "mean",
                  "均值": "mean", "平均值": "mean"}


def read_comparison_series(path: str | Path) -> pd.DataFrame:
    """Read and check a table of comparison series.

    Parameters
    ----------
    path : str or pathlib.Path
        A CSV (UTF-8 or GBK) or Excel file with the columns of this module's description.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_SERIES_COLUMNS`: ``province`` (code), ``series``,
        ``measure``, ``month`` (``pandas.Period``), ``numerator``, ``denominator``,
        ``value`` (float or NaN), ``source_row`` (line in the file), ``source_file``;
        sorted by series, province and month.

    Raises
    ------
    DataValidationError
        A ``ValueError`` listing every problem with its file, row, column, value, rule and fix.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "comparison_series.csv"
    >>> _ = p.write_text("province,series,measure,month,numerator,denominator\\n"
    ...                  "安徽,day surgery outside wave 1,proportion,2023-06,120,800\\n"
    ...                  "安徽,day surgery outside wave 1,proportion,2023-07,125,790\\n")
    >>> table = read_comparison_series(p)
    >>> table.loc[0, "province"], table.loc[0, "series"], str(table.loc[1, "month"]), float(table.loc[1, "numerator"])
    ('340000', 'day surgery outside wave 1', '2023-07', 125.0)
    >>> _ = p.write_text("province,series,measure,month,numerator,denominator\\n安徽,14,share,2023-06,1,8\\n")
    >>> try:
    ...     read_comparison_series(p)
    ... except ValueError as err:
    ...     print(sorted((q.row, q.column, q.rule) for q in err.problems))
    [(2, 'measure', 'unknown-measure'), (2, 'series', 'bad-series-name')]
    """
    checked, problems = check_comparison_series(path)
    if checked is None:
        raise DataValidationError(problems)
    return checked


def check_comparison_series(path: str | Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """Check a table of comparison series and return it with every problem found.

    Returns the checked table as :func:`read_comparison_series` does, or ``None`` when
    there is an error, and the problems (errors and warnings, such as a column outside the
    contract that is ignored), sorted by row.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "comparison_series.csv"
    >>> _ = p.write_text("province,series,measure,month,numerator,denominator,checked_by\\n"
    ...                  "安徽,day surgery outside wave 1,proportion,2023-06,120,800,x\\n")
    >>> table, problems = check_comparison_series(p)
    >>> len(table), [(q.column, q.rule, q.severity) for q in problems]
    (1, [('checked_by', 'unknown-column', 'warning')])
    """
    table, problems = side_table(path, ("province", "series", "measure", "month"),
                                 ("numerator", "denominator", "value", "note"), aliases=_ALIASES)
    if table is None:
        return None, problems
    checked, row_problems = _check_rows(table)
    problems = sorted([*problems, *row_problems, *_check_series(checked, table)],
                      key=lambda p: (p.row is None, p.row or 0))
    if any(p.is_error for p in problems):
        return None, problems
    return checked.reindex(columns=COMPARISON_SERIES_COLUMNS).sort_values(
        ["series", "province", "month"], ignore_index=True), problems


def _check_rows(table: pd.DataFrame) -> tuple[pd.DataFrame, list[Problem]]:
    """Keys and amounts of every row; the rows as the checked table (problems listed)."""
    problems: list[Problem] = []

    def report(rule: str, at: int, column: str | None, message: str, value=None) -> None:
        problems.append(problem(rule, str(table["file"].iat[at]), sheet=table["sheet"].iat[at],
                                row=int(table["line"].iat[at]), column=column, value=cell_text(value),
                                message=message))

    codes = []
    for at, text in enumerate(table["province"]):
        try:
            codes.append(get_province("" if pd.isna(text) else text).code)
        except KeyError as err:
            codes.append(None)
            report("unknown-province", at, "province", err.args[0], text)
    names = pd.Series([None if pd.isna(t) else fold(t) for t in table["series"]], dtype=object)
    for at, name in enumerate(names):
        if not name:
            report("bad-series-name", at, "series", "the series name is empty")
        elif name.isdigit():
            report("bad-series-name", at, "series", f"'{name}' is a number; a comparison series is named by text "
                   "(an annex indicator is compared by its number in comparisons.csv, not given here)", name)
    measures = pd.Series([None if pd.isna(t) else _MEASURE_NAMES.get(fold(t).casefold()) for t in table["measure"]],
                         dtype=object)
    for at in np.flatnonzero(measures.isna().to_numpy()):
        report("unknown-measure", int(at), "measure", "the measure must be proportion, rate or mean",
               table["measure"].iat[at])
    months, reasons = parse_months(table["month"])
    for at in np.flatnonzero(months.isna().to_numpy()):
        reason = cell_text(reasons.iat[at])
        report("bad-month", int(at), "month", "the month is empty; write YYYY-MM" if reason is None
               else f"month must be written YYYY-MM (e.g. 2023-06): {reason}", table["month"].iat[at])
    amounts = {item: parse_numbers(table[item], decimals=item == "value") for item in
               ("numerator", "denominator", "value")}
    for item, parsed in amounts.items():
        for at in np.flatnonzero(parsed.reason.notna().to_numpy()):
            report("not-a-number", int(at), item, f"{item} must be a number", table[item].iat[at])
        for at in np.flatnonzero(parsed.mark.notna().to_numpy()):
            report("percent-not-allowed", int(at), item, "a comparison series gives counts (proportions, rates) or "
                   "a mean in the unit of its indicator, without a percent or per-mille mark", table[item].iat[at])
    given = {item: table[item].notna().to_numpy() for item in amounts}
    value = {item: parsed.value.where(parsed.mark.isna()).to_numpy() for item, parsed in amounts.items()}
    counted = measures.isin(["proportion", "rate"]).to_numpy()
    mean = (measures == "mean").to_numpy()
    for at in np.flatnonzero(counted & given["value"]):
        report("comparison-items", int(at), "value", f"a {measures.iat[at]} series gives numerator and denominator; "
               "leave the value empty", table["value"].iat[at])
    for at in np.flatnonzero(mean & given["numerator"]):
        report("comparison-items", int(at), "numerator", "a mean series gives its value (and optionally the "
               "denominator as the number of cases); leave the numerator empty", table["numerator"].iat[at])
    for item in ("numerator", "denominator"):
        for at in np.flatnonzero(counted & ~given[item]):
            report("missing-count", int(at), item, f"{item} is empty; give the count (0 if there were none)")
    for at in np.flatnonzero(mean & ~given["value"]):
        report("missing-value", int(at), "value", "the value is empty; give the monthly mean")
    for item in ("numerator", "denominator"):
        x = value[item]
        with np.errstate(invalid="ignore"):
            for at in np.flatnonzero(x < 0):
                report("negative-count", int(at), item, f"{item} must not be negative", table[item].iat[at])
            for at in np.flatnonzero((x >= 0) & (x != np.floor(x))):
                report("non-integer-count", int(at), item, f"{item} must be a whole number", table[item].iat[at])
    numerator, denominator = value["numerator"], value["denominator"]
    with np.errstate(invalid="ignore"):
        for at in np.flatnonzero(denominator == 0):
            report("zero-denominator", int(at), "denominator", "the denominator is 0: a month with no cases cannot "
                   "be modelled", table["denominator"].iat[at])
        for at in np.flatnonzero((measures == "proportion").to_numpy() & (numerator > denominator) & (denominator > 0)):
            report("numerator-exceeds-denominator", int(at), "numerator", "the numerator is larger than the "
                   f"denominator ({cell_text(table['denominator'].iat[at])})", table["numerator"].iat[at])
    checked = pd.DataFrame({
        "province": pd.Series(codes, dtype=object), "series": names, "measure": measures, "month": months,
        "numerator": np.where(counted, numerator, np.nan), "denominator": denominator,
        "value": np.where(mean, value["value"], np.nan),
        "source_row": table["line"].to_numpy(np.int64), "source_file": table["file"].astype(str).to_numpy(),
    })
    return checked, problems


def _check_series(checked: pd.DataFrame, table: pd.DataFrame) -> list[Problem]:
    """One measure per series, one row per province x series x month, no gaps in a series."""
    problems: list[Problem] = []
    file, sheet = str(table["file"].iat[0]), table["sheet"].iat[0]
    named = checked.dropna(subset=["series", "measure"])
    for name, rows in named.groupby("series", sort=True):
        kinds = rows.groupby("measure", sort=True)["source_row"].min()
        if len(kinds) > 1:
            first = ", ".join(f"{m} (first on row {r})" for m, r in kinds.items())
            problems.append(problem("mixed-measure", file, sheet=sheet, row=int(kinds.max()), column="measure",
                                    value=name, message=f"the series '{name}' has several measures: {first}"))
    keyed = checked.dropna(subset=["province", "series"])
    keyed = keyed[keyed["month"].notna()]
    twice = keyed[keyed.duplicated(["province", "series", "month"], keep=False)]
    for (province, name, month), rows in twice.groupby(["province", "series", "month"], sort=True):
        lines = ", ".join(map(str, rows["source_row"]))
        for row in rows["source_row"]:
            problems.append(problem("duplicate-month", file, sheet=sheet, row=int(row), column="month",
                                    value=str(month), province=province, month=str(month),
                                    message=f"province {province} series '{name}' has {len(rows)} rows for {month} "
                                            f"(rows {lines}); keep one"))
    for (province, name), rows in keyed.groupby(["province", "series"], sort=True):
        ordinals = np.unique(pd.PeriodIndex(rows["month"], freq="M").asi8)
        gaps = sorted(set(range(int(ordinals[0]), int(ordinals[-1]) + 1)) - set(ordinals.tolist()))
        if gaps:
            shown = ", ".join(str(pd.Period(ordinal=o, freq="M")) for o in gaps[:12]) + (" ..." if len(gaps) > 12
                                                                                        else "")
            problems.append(problem("missing-months", file, sheet=sheet, column="month", value=shown,
                                    province=province,
                                    message=f"province {province} series '{name}' has no rows for {shown}; a "
                                            "series must have every month from its first to its last"))
    return problems
