"""The data contract: reading and checking the long monthly panel and the plan-dates table.

The panel has one row per province x indicator x month with columns ``province`` (GB/T
2260 code, Chinese or English name), ``indicator`` (annex number or name), ``month``
(``YYYY-MM`` and the other forms of :func:`analysis.data.values.parse_month`), and
``numerator`` and ``denominator`` (counts) for proportion and rate indicators, or
``value`` (with an optional ``denominator`` as the number of cases) for mean indicators.
Column names may be English or Chinese, in any order; files may be CSV (UTF-8, GBK),
Excel or Parquet, long or wide (see :mod:`analysis.data.readers`). Nothing is dropped,
coerced or imputed: every problem is reported with its file, sheet, row and column, and
the whole list is raised at once.

Two optional tables beside the panel set up a controlled ITS: ``comparisons.csv``
(``indicator``, ``comparison``; :func:`analysis.synthesis.controls.read_comparisons`) and
``comparison_series.csv``, series outside the annex in the panel's long format with a
``series`` name and a declared ``measure`` (:mod:`analysis.data.comparison_series`); see
:func:`find_comparisons`. A third, ``covariates.csv``, gives time-varying covariates that
the models adjust for (:mod:`analysis.data.covariates`, :func:`find_covariates`).

This module keeps the package's original entry points; :func:`analysis.data.quality.check_inputs`
gives the full report (warnings, row accounting, series table, analysis checks).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from analysis.data.problems import DataValidationError, Problem  # noqa: F401 (re-exported)
from analysis.data.quality import CheckSettings, check_frame, check_inputs, read_plan_table
from analysis.data.readers import sha256  # noqa: F401 (re-exported: the manifest's checksum)

PANEL_COLUMNS = ("province", "indicator", "month", "numerator", "denominator", "value")
REQUIRED_COLUMNS = ("province", "indicator", "month")
PANEL_FILE_NAMES = ("panel.csv", "panel.parquet", "panel.xlsx")
PLAN_DATES_FILE_NAMES = ("plan_dates.csv", "plan_dates.xlsx")
DEFINITION_CHANGES_FILE_NAMES = ("definition_changes.csv", "definition_changes.xlsx")
#: The controlled ITS's tables (:mod:`analysis.synthesis.controls`, :mod:`analysis.data.comparison_series`).
COMPARISONS_FILE_NAMES = ("comparisons.csv",)
COMPARISON_SERIES_FILE_NAMES = ("comparison_series.csv", "comparison_series.xlsx")
#: Time-varying covariates of the series (:mod:`analysis.data.covariates`).
COVARIATES_FILE_NAMES = ("covariates.csv", "covariates.xlsx")

#: The contract's own checks only: points per phase, jumps and shifts concern an analysis.
CONTRACT_ONLY = CheckSettings(analysis_checks=False)


def _sibling(folder: Path, names: Sequence[str]) -> Path | None:
    return next((folder / n for n in names if (folder / n).is_file()), None)


def find_inputs(path: str | Path) -> tuple[Path, Path | None]:
    """Resolve a data path: a panel file, or a directory holding ``panel.csv`` (or
    ``.parquet``, ``.xlsx``) and optionally ``plan_dates.csv`` (as ``analysis synth`` writes)."""
    path = Path(path)
    if path.is_file():
        return path, _sibling(path.parent, PLAN_DATES_FILE_NAMES)
    if path.is_dir():
        panel = _sibling(path, PANEL_FILE_NAMES)
        if panel is not None:
            return panel, _sibling(path, PLAN_DATES_FILE_NAMES)
        raise FileNotFoundError(f"{path}: no {' or '.join(PANEL_FILE_NAMES)} in this directory")
    raise FileNotFoundError(f"{path}: no such file or directory")


def resolve_inputs(paths: str | Path | Sequence[str | Path], *, missing_ok: bool = False
                   ) -> tuple[list[Path], Path | None, Path | None]:
    """Data files, plan-dates table and definition-changes table for one or many paths.

    Each path is a data file or a directory (see :func:`find_inputs`). A plan-dates or
    definition-changes table is taken from the first directory (or the first file's
    directory) that has one. Raises ``FileNotFoundError`` for a missing path, unless
    ``missing_ok`` (the path is then kept, to be reported with the other problems).
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    files, plan, changes = [], None, None
    for path in map(Path, paths):
        if missing_ok and not path.exists():
            files.append(path)
            continue
        panel, found = find_inputs(path)
        files.append(panel)
        folder = path if path.is_dir() else path.parent
        plan = plan or found
        changes = changes or _sibling(folder, DEFINITION_CHANGES_FILE_NAMES)
    return files, plan, changes


def find_comparisons(paths: str | Path | Sequence[str | Path], *, comparisons: str | Path | None = None
                     ) -> tuple[Path | None, Path | None]:
    """The comparisons table and the comparison-series table of a run, if any.

    ``comparisons`` (a path given explicitly) is used when given; otherwise
    ``comparisons.csv`` from the first data directory (or data file's directory) that has
    one. ``comparison_series.csv`` (or ``.xlsx``) is taken from beside the comparisons
    table, else from the first data directory that has one.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "comparisons.csv").write_text("indicator,comparison\\n11,12\\n")
    >>> [p.name if p else None for p in find_comparisons(folder)]
    ['comparisons.csv', None]
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    folders = [path if path.is_dir() else path.parent for path in map(Path, paths)]
    pairs = Path(comparisons) if comparisons is not None else next(
        (found for folder in folders if (found := _sibling(folder, COMPARISONS_FILE_NAMES))), None)
    beside = [pairs.parent] if pairs is not None else []
    found = (_sibling(folder, COMPARISON_SERIES_FILE_NAMES) for folder in (*beside, *folders))
    series = next((path for path in found if path is not None), None)
    return pairs, series


def find_covariates(paths: str | Path | Sequence[str | Path]) -> Path | None:
    """``covariates.csv`` (or ``.xlsx``) from the first data directory (or data file's
    directory) that has one (see :mod:`analysis.data.covariates`)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    folders = [path if path.is_dir() else path.parent for path in map(Path, paths)]
    return next((found for folder in folders if (found := _sibling(folder, COVARIATES_FILE_NAMES))), None)


def read_panel(path: str | Path) -> pd.DataFrame:
    """Read and check a panel file in the data contract.

    Returns the canonical panel: ``province`` (code), ``indicator`` (int), ``measure``,
    ``month`` (``pandas.Period``), ``numerator``, ``denominator`` (float counts or NaN),
    ``value`` (float or NaN), ``source_row`` (line in the file), ``source_file``,
    ``source_sheet``, sorted by series and month (see :func:`analysis.data.schema.panel_schema`).
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
    return check_inputs([Path(path)], settings=CONTRACT_ONLY).usable_panel()


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
    return check_frame(frame, source=source, settings=CONTRACT_ONLY).usable_panel()


def read_plan_dates(path: str | Path | None, provinces: list[str], *, default: pd.Period) -> dict[str, pd.Period]:
    """Each province's plan start month, from a ``province,start_month`` table.

    Provinces missing from the table (or all, without a table) get ``default``. Raises
    :class:`DataValidationError` listing every problem of the table.
    """
    starts = {code: default for code in provinces}
    if path is None:
        return starts
    found, problems = read_plan_table(path)
    if problems:
        raise DataValidationError(problems)
    return {**starts, **found}
