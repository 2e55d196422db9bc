"""Data problems: where they are, which rule they break and how to fix them."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import pandas as pd


@dataclass(frozen=True)
class Problem:
    """One problem in an input file.

    ``row`` is the line number in the file as a person sees it in an editor or
    spreadsheet (the header is line 1), or None for problems of the whole file.
    """

    file: str
    row: int | None
    column: str | None
    value: str | None
    rule: str
    message: str
    severity: str = "error"

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        value = f" (value {self.value!r})" if self.value is not None else ""
        return f"{where}{value}: {self.message} [{self.rule}]"


class DataValidationError(ValueError):
    """Input data break the data contract; ``problems`` lists every problem found."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        errors = [p for p in self.problems if p.severity == "error"]
        shown = "\n".join(f"  - {p}" for p in errors[:50])
        more = f"\n  ... and {len(errors) - 50} more" if len(errors) > 50 else ""
        super().__init__(f"{len(errors)} problem(s) in the input data:\n{shown}{more}")

    def to_frame(self) -> pd.DataFrame:
        """All problems as a tidy table."""
        return pd.DataFrame([asdict(p) for p in self.problems])
