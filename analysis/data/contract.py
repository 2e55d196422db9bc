"""The data contract: reading and checking the long monthly panel and the plan-dates table.

The panel has one row per province x indicator x month with columns ``province`` (GB/T
2260 code, Chinese or English name), ``indicator`` (annex number or name), ``month``
(``YYYY-MM``), and ``numerator`` and ``denominator`` (counts) for proportion and rate
indicators, or ``value`` (with an optional ``denominator`` as the number of cases) for
mean indicators. Nothing is dropped, coerced or imputed: every problem is reported with
its file, row and column, and the whole list is raised at once.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import DataValidationError, Problem
from analysis.registry import get_indicator, get_province

PANEL_COLUMNS = ("province", "indicator", "month", "numerator", "denominator", "value")
REQUIRED_COLUMNS = ("province", "indicator", "month")
PANEL_FILE_NAMES = ("panel.csv", "panel.parquet")
PLAN_DATES_FILE_NAMES = ("plan_dates.csv",)


def sha256(path: str | Path) -> str:
    """Checksum of a file, recorded in the run manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def find_inputs(path: str | Path) -> tuple[Path, Path | None]:
    """Resolve a data path: a panel file, or a directory holding ``panel.csv`` (or
    ``.parquet``) and optionally ``plan_dates.csv`` (as ``analysis synth`` writes)."""
    path = Path(path)
    if path.is_file():
        sibling = path.parent / PLAN_DATES_FILE_NAMES[0]
        return path, sibling if sibling.is_file() else None
    if path.is_dir():
        for name in PANEL_FILE_NAMES:
            if (path / name).is_file():
                plan = path / PLAN_DATES_FILE_NAMES[0]
                return path / name, plan if plan.is_file() else None
        raise FileNotFoundError(f"{path}: no {' or '.join(PANEL_FILE_NAMES)} in this directory")
    raise FileNotFoundError(f"{path}: no such file or directory")


def _read_table(path: Path) -> pd.DataFrame:
    if path.suffix.lower() == ".parquet":
        frame = pd.read_parquet(path)
        return frame.astype({c: "string" for c in frame.columns})
    if path.suffix.lower() in (".csv", ".txt"):
        # Everything is read as text so that nothing is coerced before it is checked.
        return pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    raise ValueError(f"{path}: unsupported file type {path.suffix!r}; use .csv or .parquet")


def _parse_month(text: str) -> pd.Period | None:
    text = text.strip()
    for fmt in ("%Y-%m", "%Y/%m", "%Y%m"):
        try:
            return pd.Period(pd.to_datetime(text, format=fmt), "M")
        except (ValueError, TypeError):
            continue
    return None


def _counts(frame: pd.DataFrame, column: str, rows: pd.Series, file: str, problems: list[Problem]) -> pd.Series:
    """Parse a count column on ``rows``: non-negative integers, no blanks."""
    raw = frame.loc[rows, column] if column in frame else pd.Series(pd.NA, index=frame.index[rows], dtype="string")
    numbers = pd.to_numeric(raw.str.strip(), errors="coerce").astype("float64")
    rules = (
        (raw.isna(), "missing-count", f"{column} is empty; give the count (0 if there were none)"),
        (raw.notna() & numbers.isna(), "not-a-number", f"{column} must be a whole number"),
        (numbers < 0, "negative-count", f"{column} must not be negative"),
        (numbers.notna() & (numbers != np.floor(numbers)), "non-integer-count",
         f"{column} must be a whole number (a count), not a fraction"),
    )
    for mask, rule, message in rules:
        for idx in raw.index[mask.fillna(False).to_numpy()]:
            value = None if pd.isna(raw[idx]) else str(raw[idx])
            problems.append(Problem(file, int(idx) + 2, column, value, rule, message))
    return numbers


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read and check a panel file in the data contract.

    Returns the canonical panel: ``province`` (code), ``indicator`` (int), ``month``
    (``pandas.Period``), ``numerator``, ``denominator`` (float counts or NaN), ``value``
    (float or NaN), ``source_row`` (line in the file), sorted by series and month.
    Raises :class:`DataValidationError` listing every problem found.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "panel.csv"
    >>> _ = p.write_text("province,indicator,month,numerator,denominator\\n安徽,32,2023-06,5,x\\n")
    >>> try:
    ...     read_panel(p)
    ... except DataValidationError as err:
    ...     print(err.problems[0].row, err.problems[0].column, err.problems[0].rule)
    2 denominator not-a-number
    """
    path = Path(path)
    return validate_panel(_read_table(path), source=str(path))


def validate_panel(frame: pd.DataFrame, *, source: str = "<data frame>") -> pd.DataFrame:
    """Check a panel already in memory and return it in canonical form (see :func:`read_panel`).

    Values are checked as text, exactly as if read from a file; ``source`` names the data
    in problem reports, and row numbers count a header line (row 2 is the first record).

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> panel = validate_panel(generate(1, provinces=["340000"], indicators=[32]).panel)
    >>> panel.loc[0, "province"], int(panel.loc[0, "indicator"]), panel.loc[0, "measure"], len(panel)
    ('340000', 32, 'proportion', 84)
    """
    file = source
    frame = frame.reset_index(drop=True).astype("string")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    problems: list[Problem] = []
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError([Problem(file, 1, c, None, "missing-column",
                                           f"the header has no '{c}' column; expected columns {list(PANEL_COLUMNS)}")
                                   for c in missing])
    unknown = [c for c in frame.columns if c not in PANEL_COLUMNS]
    problems += [Problem(file, 1, c, None, "unknown-column",
                         f"unexpected column; expected columns {list(PANEL_COLUMNS)}") for c in unknown]
    if frame.empty:
        raise DataValidationError([Problem(file, None, None, None, "empty", "the file has no data rows")])

    province = pd.Series(pd.NA, index=frame.index, dtype="string")
    indicator = pd.Series(pd.NA, index=frame.index, dtype="Int64")
    measure = pd.Series(pd.NA, index=frame.index, dtype="string")
    month = pd.Series(pd.NaT, index=frame.index, dtype="period[M]")
    # Look-ups are per distinct value: a panel repeats each name thousands of times.
    for value, rows in frame.groupby(frame["province"].fillna(""), sort=False).groups.items():
        try:
            province[rows] = get_province(value).code
        except KeyError as err:
            problems += [Problem(file, int(i) + 2, "province", value, "unknown-province", err.args[0]) for i in rows]
    for value, rows in frame.groupby(frame["indicator"].fillna(""), sort=False).groups.items():
        try:
            ind = get_indicator(value)
        except KeyError as err:
            problems += [Problem(file, int(i) + 2, "indicator", value, "unknown-indicator", err.args[0]) for i in rows]
            continue
        if not ind.is_quantitative:
            problems += [Problem(file, int(i) + 2, "indicator", value, "status-indicator",
                                 f"indicator {ind.number} ({ind.name_en}) is a status item ('/' in the annex), "
                                 "not a monthly series; remove these rows") for i in rows]
            continue
        indicator[rows] = ind.number
        measure[rows] = ind.measure
    for value, rows in frame.groupby(frame["month"].fillna(""), sort=False).groups.items():
        parsed = _parse_month(value)
        if parsed is None:
            problems += [Problem(file, int(i) + 2, "month", value, "bad-month",
                                 "month must be written YYYY-MM (e.g. 2023-06)") for i in rows]
        else:
            month[rows] = parsed

    counted = measure.isin(["proportion", "rate"]).fillna(False).to_numpy()
    averaged = (measure == "mean").fillna(False).to_numpy()
    numerator = _counts(frame, "numerator", pd.Series(counted, index=frame.index), file, problems)
    denominator_counts = _counts(frame, "denominator", pd.Series(counted, index=frame.index), file, problems)
    out = pd.DataFrame({
        "province": province, "indicator": indicator, "measure": measure, "month": month,
        "numerator": numerator.reindex(frame.index), "denominator": denominator_counts.reindex(frame.index),
        "value": np.nan, "source_row": frame.index.to_numpy() + 2,
    })
    if averaged.any():
        raw = frame.loc[averaged, "value"] if "value" in frame else pd.Series(pd.NA, index=frame.index[averaged], dtype="string")
        values = pd.to_numeric(raw.str.strip(), errors="coerce").astype("float64")
        for idx in raw.index[values.isna().to_numpy()]:
            problems.append(Problem(file, int(idx) + 2, "value", None if pd.isna(raw[idx]) else str(raw[idx]),
                                    "missing-value", "a mean indicator needs a numeric value"))
        out.loc[averaged, "value"] = values
        if "denominator" in frame:
            weights = frame.loc[averaged, "denominator"]
            given = weights.notna().to_numpy()
            if given.any():
                parsed = _counts(frame, "denominator", pd.Series(averaged & frame["denominator"].notna().to_numpy(),
                                                                  index=frame.index), file, problems)
                out.loc[parsed.index, "denominator"] = parsed

    num, den = out["numerator"], out["denominator"]
    for idx in out.index[(counted & (den == 0) & (num > 0)).to_numpy()]:
        problems.append(Problem(file, int(idx) + 2, "denominator", "0", "zero-denominator",
                                "the denominator is 0 but the numerator is not"))
    for idx in out.index[(counted & (den == 0) & (num == 0)).to_numpy()]:
        problems.append(Problem(file, int(idx) + 2, "denominator", "0", "zero-denominator",
                                "the denominator is 0: a month with no cases cannot be modelled; leave the month "
                                "out of the series only by excluding it explicitly in the analysis"))
    over = (measure == "proportion").fillna(False).to_numpy() & (num > den).to_numpy()
    for idx in out.index[over]:
        problems.append(Problem(file, int(idx) + 2, "numerator", str(frame.at[idx, "numerator"]),
                                "numerator-exceeds-denominator",
                                f"the numerator is larger than the denominator ({frame.at[idx, 'denominator']})"))

    keyed = out.dropna(subset=["province", "indicator", "month"])
    dup = keyed.duplicated(["province", "indicator", "month"], keep=False)
    for (prov, ind, mon), group in keyed[dup].groupby(["province", "indicator", "month"]):
        lines = ", ".join(map(str, group["source_row"]))
        for line in group["source_row"]:
            problems.append(Problem(file, int(line), "month", str(mon), "duplicate-month",
                                    f"province {prov} indicator {ind} has {len(group)} rows for {mon} (rows {lines}); keep one"))
    ordinal = pd.Series(pd.PeriodIndex(keyed["month"]).asi8, index=keyed.index)
    spans = ordinal.groupby([keyed["province"], keyed["indicator"]]).agg(["min", "max", "nunique"])
    for (prov, ind), span in spans[spans["max"] - spans["min"] + 1 != spans["nunique"]].iterrows():
        have = set(ordinal[(keyed["province"] == prov) & (keyed["indicator"] == ind)])
        gaps = [str(pd.Period(ordinal=o, freq="M")) for o in range(span["min"], span["max"]) if o not in have]
        problems.append(Problem(file, None, "month", None, "missing-months",
                                f"province {prov} indicator {ind} has no rows for {', '.join(gaps[:12])}"
                                f"{' ...' if len(gaps) > 12 else ''}; a series must have every month "
                                "from its first to its last"))
    if any(p.severity == "error" for p in problems):
        raise DataValidationError(problems)
    out["indicator"] = out["indicator"].astype(int)
    out["province"] = out["province"].astype(str)
    out["measure"] = out["measure"].astype(str)
    return out.sort_values(["province", "indicator", "month"], kind="stable").reset_index(drop=True)


def read_plan_dates(path: str | Path | None, provinces: list[str], *, default: pd.Period) -> dict[str, pd.Period]:
    """Each province's plan start month, from a ``province,start_month`` table.

    Provinces missing from the table (or all, without a table) get ``default``.
    """
    starts = {code: default for code in provinces}
    if path is None:
        return starts
    file = str(path)
    frame = pd.read_csv(path, dtype="string", keep_default_na=False, na_values=[""], encoding="utf-8-sig")
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    problems = [Problem(file, 1, c, None, "missing-column", f"the header has no '{c}' column")
                for c in ("province", "start_month") if c not in frame.columns]
    if problems:
        raise DataValidationError(problems)
    seen: dict[str, int] = {}
    for idx, row in frame.iterrows():
        line = int(idx) + 2
        try:
            code = get_province(row["province"]).code
        except KeyError as err:
            problems.append(Problem(file, line, "province", str(row["province"]), "unknown-province", err.args[0]))
            continue
        month = _parse_month(str(row["start_month"])) if pd.notna(row["start_month"]) else None
        if month is None:
            problems.append(Problem(file, line, "start_month", str(row["start_month"]), "bad-month",
                                    "start_month must be written YYYY-MM"))
            continue
        if code in seen:
            problems.append(Problem(file, line, "province", str(row["province"]), "duplicate-province",
                                    f"the province already has a start month on row {seen[code]}"))
            continue
        seen[code] = line
        starts[code] = month
    if problems:
        raise DataValidationError(problems)
    return starts
