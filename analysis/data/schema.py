"""The canonical long panel as a pandera schema: what every later stage may rely on.

The checks in :mod:`analysis.data.quality` produce this panel; the schema states its
guarantees in one place and is checked on every panel that leaves the data layer, so a
gap in the row checks shows up as a ``schema`` problem instead of a wrong estimate.
"""

from __future__ import annotations

from functools import cache

import numpy as np
import pandas as pd

from analysis.registry import provinces, quantitative_indicators

#: Columns of the canonical panel, in order.
CANONICAL_COLUMNS = ["province", "indicator", "measure", "month", "numerator", "denominator", "value",
                     "source_row", "source_file", "source_sheet"]


@cache
def panel_schema():
    """The pandera :class:`~pandera.api.pandas.container.DataFrameSchema` of the canonical panel.

    One row per province x indicator x month; counts are non-negative whole numbers, the
    numerator of a proportion is at most its denominator, proportion and rate rows have
    both counts with a positive denominator, and mean rows have a value.

    Examples
    --------
    >>> import pandas as pd
    >>> row = {"province": "340000", "indicator": 32, "measure": "proportion", "month": pd.Period("2023-06", "M"),
    ...        "numerator": 3.0, "denominator": 1000.0, "value": float("nan"), "source_row": 2,
    ...        "source_file": "panel.csv", "source_sheet": None}
    >>> len(panel_schema().validate(pd.DataFrame([row])))
    1
    """
    import pandera.pandas as pa

    codes = [p.code for p in provinces()]
    numbers = [i.number for i in quantitative_indicators()]
    counted = ("proportion", "rate")

    def whole(s: pd.Series) -> pd.Series:
        return s.isna() | (s == np.floor(s))

    def counts_present(df: pd.DataFrame) -> pd.Series:
        needs = df["measure"].isin(counted)
        return ~needs | (df["numerator"].notna() & df["denominator"].notna() & (df["denominator"] > 0))

    def proportion_bounded(df: pd.DataFrame) -> pd.Series:
        return (df["measure"] != "proportion") | (df["numerator"] <= df["denominator"])

    def value_present(df: pd.DataFrame) -> pd.Series:
        return (df["measure"] != "mean") | df["value"].notna()

    def measure_matches(df: pd.DataFrame) -> pd.Series:
        expected = {i.number: i.measure for i in quantitative_indicators()}
        return df["indicator"].map(expected) == df["measure"]

    return pa.DataFrameSchema(
        {
            "province": pa.Column(str, pa.Check.isin(codes)),
            "indicator": pa.Column(np.int64, pa.Check.isin(numbers)),
            "measure": pa.Column(str, pa.Check.isin(["proportion", "rate", "mean"])),
            "month": pa.Column(pd.PeriodDtype("M")),
            "numerator": pa.Column(np.float64, [pa.Check.ge(0), pa.Check(whole, name="whole_number")], nullable=True),
            "denominator": pa.Column(np.float64, [pa.Check.ge(0), pa.Check(whole, name="whole_number")],
                                     nullable=True),
            "value": pa.Column(np.float64, nullable=True),
            "source_row": pa.Column(np.int64),
            "source_file": pa.Column(str),
            "source_sheet": pa.Column(str, nullable=True),
        },
        checks=[
            pa.Check(counts_present, name="counts_present"),
            pa.Check(proportion_bounded, name="numerator_at_most_denominator"),
            pa.Check(value_present, name="value_present"),
            pa.Check(measure_matches, name="measure_of_indicator"),
        ],
        unique=["province", "indicator", "month"],
        strict=True,
        ordered=True,
        name="canonical panel",
    )


def schema_failures(panel: pd.DataFrame) -> list[str]:
    """Why ``panel`` fails the schema (one line per failed check), or an empty list."""
    import pandera.errors

    try:
        panel_schema().validate(panel, lazy=True)
    except pandera.errors.SchemaErrors as err:
        cases = err.failure_cases
        lines = []
        for (column, check), group in cases.groupby(["column", "check"], dropna=False, sort=False):
            examples = ", ".join(map(str, group["failure_case"].head(3).tolist()))
            lines.append(f"{'table' if pd.isna(column) else column}: {check} fails ({len(group)} case(s), e.g. {examples})")
        return lines
    return []
