"""Time-varying covariates of the evaluation's series: ``covariates.csv`` beside the panel.

One row per province and month (and, optionally, indicator) with one numeric column per
covariate, named as the model term it becomes::

    province,month,indicator,beds,case_mix
    340000,2019-01,,51234,1.02
    340000,2019-01,28,,1.05

A row whose ``indicator`` is empty (or the column is absent) applies to every indicator; a
row naming an indicator gives that indicator's own values and takes precedence. Blank
cells are allowed in the file: only a series whose model needs a value it lacks fails, with
its months named (:func:`analysis.its.series.model_for_series`), and the other series go
on. Every covariate with a value for a series is adjusted for in that series' model; a
covariate with no value at all for a series is not part of its model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import Problem
from analysis.data.rules import problem
from analysis.data.side_tables import side_table
from analysis.data.values import cell_text, parse_month, parse_number
from analysis.registry import get_indicator, get_province

#: Prefix of the covariate columns attached to the panel (the model term is the rest).
COVARIATE_PREFIX = "covariate:"
_KEYS = ("province", "month", "indicator")


def read_covariates(path: str | Path) -> tuple[pd.DataFrame | None, list[Problem]]:
    """The covariate table with ``province`` (code), ``month`` (``YYYY-MM``), ``indicator``
    (number or NA) and one float column per covariate (NaN where blank), or None and the
    problems (file, row and column of each).

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "covariates.csv"
    >>> _ = path.write_text("省份,月份,beds\\n安徽,2019-01,51234\\n安徽,2019-02,x\\n", encoding="utf-8")
    >>> table, problems = read_covariates(path)
    >>> table is None, problems[0].row, problems[0].column, problems[0].rule
    (True, 3, 'beds', 'not-a-number')
    """
    table, problems = side_table(path, ("province", "month"), ("indicator",), named_columns=True)
    if table is None:
        return None, problems
    names = [c for c in table.columns if c not in (*_KEYS, "line", "file", "sheet")]
    if not names:
        return None, [problem("missing-column", str(path), column="covariate",
                              message="the table has no covariate column besides province, month and indicator")]
    rows, seen = [], {}
    for row in table.to_dict("records"):
        where = {"sheet": row["sheet"], "row": int(row["line"])}
        try:
            code = get_province("" if pd.isna(row["province"]) else row["province"]).code
        except KeyError as err:
            problems.append(problem("unknown-province", row["file"], **where, column="province",
                                    value=cell_text(row["province"]), message=err.args[0]))
            continue
        month, _ = parse_month(row["month"]) if pd.notna(row["month"]) else (None, None)
        if month is None:
            problems.append(problem("bad-month", row["file"], **where, column="month", value=cell_text(row["month"]),
                                    message="month must be written YYYY-MM"))
            continue
        number = pd.NA
        if pd.notna(row["indicator"]) and str(row["indicator"]).strip():
            try:
                number = get_indicator(row["indicator"]).number
            except KeyError as err:
                problems.append(problem("unknown-indicator", row["file"], **where, column="indicator",
                                        value=cell_text(row["indicator"]), message=err.args[0]))
                continue
        values = {}
        for name in names:
            text = row[name]
            if pd.isna(text) or not str(text).strip():
                values[name] = np.nan
                continue
            number_value, _ = parse_number(str(text))
            if number_value is None:
                problems.append(problem("not-a-number", row["file"], **where, column=name, value=cell_text(text),
                                        message=f"covariate {name!r} must be a number"))
                continue
            values[name] = float(number_value.value)
        key = (code, str(month), None if pd.isna(number) else int(number))
        if key in seen:
            problems.append(problem("duplicate-month", row["file"], **where, column="month", value=str(month),
                                    message=f"this province, month and indicator already have covariates on row "
                                            f"{seen[key]}"))
            continue
        seen[key] = int(row["line"])
        rows.append({"province": code, "month": str(month), "indicator": number, **values})
    if any(p.severity == "error" for p in problems):
        return None, problems
    frame = pd.DataFrame(rows)
    frame["indicator"] = frame["indicator"].astype("Int64")
    return frame, problems


def attach_covariates(panel: pd.DataFrame, covariates: pd.DataFrame) -> pd.DataFrame:
    """The panel with one ``covariate:NAME`` column per covariate: the indicator's own row
    where the table has one, else the row for all indicators, else NaN.

    Examples
    --------
    >>> panel = pd.DataFrame({"province": ["340000"] * 2, "indicator": [28, 32], "month": ["2019-01"] * 2})
    >>> table = pd.DataFrame({"province": ["340000"] * 2, "month": ["2019-01"] * 2,
    ...                       "indicator": pd.array([pd.NA, 28], dtype="Int64"), "beds": [100.0, 120.0]})
    >>> attach_covariates(panel, table)["covariate:beds"].tolist()
    [120.0, 100.0]
    """
    names = [c for c in covariates.columns if c not in _KEYS]
    if isinstance(panel["month"].dtype, pd.PeriodDtype):
        covariates = covariates.assign(month=pd.PeriodIndex(covariates["month"], freq="M"))
    general = covariates[covariates["indicator"].isna()].drop(columns="indicator")
    specific = covariates[covariates["indicator"].notna()].astype({"indicator": "int64"})
    out = panel.merge(general, on=["province", "month"], how="left")
    if not specific.empty:
        own = panel[["province", "indicator", "month"]].merge(specific, on=["province", "indicator", "month"],
                                                              how="left")
        for name in names:
            out[name] = own[name].to_numpy() if name not in out else np.where(
                own[name].notna().to_numpy(), own[name].to_numpy(), out[name].to_numpy())
    out.index = panel.index
    return out.rename(columns={name: COVARIATE_PREFIX + name for name in names})
