"""Data problems: where they are, which rule they break and how to fix them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import pandas as pd

#: Severities: errors make the data unusable, warnings are shown and do not block.
SEVERITIES = ("error", "warning")


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    ``row`` is the line number in the file as a person sees it in an editor or
    spreadsheet (the header is line 1 of a CSV file), or None for problems of the whole
    file or of a whole series. ``column`` is the column's header as written in the file
    (for a table with months as columns, the month's header). ``sheet`` names the
    worksheet of an Excel workbook. ``fix`` says how to mend the data. ``province``,
    ``indicator`` and ``month`` name the series (and month) a problem belongs to, where
    they could be read, so that a problem can be traced to the series it affects.

    Examples
    --------
    >>> p = Problem("panel.xlsx", 5, "分子", "-3", "negative-count", "numerator must not be negative",
    ...             sheet="数据", fix="give the count of cases, 0 or more")
    >>> print(p)
    panel.xlsx, sheet '数据', row 5, column '分子' (value '-3'): numerator must not be negative [negative-count]; fix: give the count of cases, 0 or more
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    message: str
    severity: str = "error"
    sheet: str | None = None
    fix: str | None = None
    province: str | None = None
    indicator: int | None = None
    month: str | None = None

    def __str__(self) -> str:
        where = self.file
        if self.sheet is not None:
            where += f", sheet '{self.sheet}'"
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        value = f" (value {self.value!r})" if self.value is not None else ""
        fix = f"; fix: {self.fix}" if self.fix else ""
        return f"{where}{value}: {self.message} [{self.rule}]{fix}"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"


#: Columns of :meth:`DataValidationError.to_frame` and of a run's ``tables/data_quality.csv``.
PROBLEM_COLUMNS = ["file", "row", "column", "value", "rule", "message", "severity", "sheet", "fix",
                   "province", "indicator", "month"]


def problems_frame(problems: Iterable[Problem]) -> pd.DataFrame:
    """Problems as a tidy table with the columns :data:`PROBLEM_COLUMNS`."""
    frame = pd.DataFrame([asdict(p) for p in problems], columns=PROBLEM_COLUMNS)
    frame["row"] = frame["row"].astype("Int64")
    frame["indicator"] = frame["indicator"].astype("Int64")
    return frame


class DataValidationError(ValueError):
    """Input data break the data contract; ``problems`` lists every problem found
    (warnings too; only errors are counted in the message)."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        shown = "\n".join(f"  - {p}" for p in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problem(s) in the input data:\n{shown}{more}")

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    def to_frame(self) -> pd.DataFrame:
        """All problems as a tidy table (columns :data:`PROBLEM_COLUMNS`)."""
        return problems_frame(self.problems)
