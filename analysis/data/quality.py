"""Checking submitted data: every rule, every problem at once, every input row accounted for.

:func:`check_inputs` reads one or many files (see :mod:`analysis.data.readers`), merges
their entries into one observation per province x indicator x month, checks them
against the rules of :mod:`analysis.data.rules` and returns a :class:`QualityReport`:
the problems (errors block, warnings do not), the canonical panel of the series without
errors, one row per input row saying what became of it, and one row per series.

Checks, in order: reading (file type, encoding, header, columns); keys (province,
indicator, status items, month); merging (duplicates); values (counts, percentages,
units, ranges); series (missing months, mixed units); and, for an analysis, the points
before and after each province's plan start, implausible jumps and level shifts at
listed changes of definition.
"""

from __future__ import annotations

import html
import io
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.checks import (
    MIN_POINTS_PER_PHASE,
    NO_MONTH,
    RECOMMENDED_POINTS_PER_PHASE,
    Checker,
    CheckSettings,
    Entries,
    Observations,
    Values,
    check_jumps,
    check_series,
    check_shifts,
    check_values,
    display_values,
    measures,
    merge_entries,
    month_text,
    present_months,
)
from analysis.data.problems import DataValidationError, Problem, problems_frame
from analysis.data.readers import ITEMS, Grid, Sheet, row_ranges, frame_grid, interpret, read_grids, sha256
from analysis.data.rules import problem
from analysis.data.schema import CANONICAL_COLUMNS, schema_failures
from analysis.data.side_tables import read_definition_changes, read_plan_table
from analysis.registry import get_province

__all__ = ["MIN_POINTS_PER_PHASE", "RECOMMENDED_POINTS_PER_PHASE", "CheckSettings", "QualityReport", "Source",
           "check_frame", "check_inputs", "read_definition_changes", "read_plan_table"]

# -- the report ------------------------------------------------------------------------------

#: Merged rows listed with their partners in the manifest (beyond, see row_accounting.csv).
MANIFEST_MERGE_GROUPS = 2000
ACCOUNTING_COLUMNS = ["file", "sheet", "row", "status", "province", "indicator", "months", "observations",
                      "merged_with", "rules"]
SERIES_COLUMNS = ["province", "indicator", "status", "first_month", "last_month", "n_months", "start_month", "n_pre",
                  "n_post", "missing_months", "warning_months", "errors", "warnings"]


@dataclass(frozen=True)
class Source:
    """One sheet read: file, sheet, layout and encoding (CSV), and its number of data rows."""

    file: str
    sheet: str | None
    layout: str | None
    encoding: str | None
    rows: int


@dataclass(frozen=True, eq=False)
class QualityReport:
    """What the checks found (read-only).

    Attributes
    ----------
    problems : tuple of Problem
        Every problem, errors and warnings, in file, sheet and row order.
    panel : DataFrame
        The canonical panel (see :func:`analysis.data.schema.panel_schema`) of the series
        without errors.
    accounting : DataFrame
        One row per input row: ``status`` is ``used``, ``merged`` (an item merged with the
        rows in ``merged_with`` into one observation), ``excluded`` (with the ``rules``
        that excluded it) or ``skipped`` (blank or repeated header rows).
    series : DataFrame
        One row per province x indicator found: ``status`` (``ok``, ``warning``,
        ``excluded``), months, points per phase, missing months and months with warnings.
    blocking : tuple of Problem
        Errors that no series can be blamed for (a file that cannot be read, a missing
        column, a bad plan-dates table): data with these are never used.
    """

    problems: tuple[Problem, ...]
    panel: pd.DataFrame
    accounting: pd.DataFrame
    series: pd.DataFrame
    blocking: tuple[Problem, ...]
    sources: tuple[Source, ...]
    starts: dict[str, pd.Period]
    settings: CheckSettings
    definition_changes: pd.DataFrame | None = None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def usable(self) -> bool:
        """True when there are no errors: the data can be analysed as they are."""
        return not self.errors

    @property
    def excluded_series(self) -> pd.DataFrame:
        """Series with errors (``province``, ``indicator``, ``rules``)."""
        bad = self.series[self.series["status"] == "excluded"]
        return bad[["province", "indicator", "errors"]].rename(columns={"errors": "rules"}).reset_index(drop=True)

    def usable_panel(self, *, exclude_invalid: bool = False) -> pd.DataFrame:
        """The panel to analyse.

        Without ``exclude_invalid`` any error raises :class:`DataValidationError` with every
        problem. With it, only the series with errors are left out (they are listed in
        :attr:`excluded_series` and in the accounting); errors that no series can be blamed
        for (:attr:`blocking`) still raise, as does data in which nothing is left.
        """
        if self.errors and (not exclude_invalid or self.blocking or self.panel.empty):
            err = DataValidationError(self.problems)
            err.report = self  # so that a caller can print the full report
            raise err
        return self.panel

    def to_frame(self) -> pd.DataFrame:
        """Problems as a tidy table (columns :data:`analysis.data.problems.PROBLEM_COLUMNS`)."""
        return problems_frame(self.problems)

    def summary(self) -> dict:
        counts = self.accounting["status"].value_counts()
        by_rule = pd.Series([p.rule for p in self.problems], dtype=object).value_counts()
        return {
            "usable": self.usable,
            "errors": len(self.errors),
            "warnings": len(self.warnings),
            "rows": {"total": int(len(self.accounting)),
                     **{s: int(counts.get(s, 0)) for s in ("used", "merged", "excluded", "skipped")}},
            "series": {"total": int(len(self.series)),
                       "usable": int((self.series["status"] != "excluded").sum()),
                       "excluded": int((self.series["status"] == "excluded").sum())},
            "by_rule": {str(k): int(v) for k, v in by_rule.items()},
        }

    # -- formats ------------------------------------------------------------------------------

    def to_text(self, *, limit: int | None = None) -> str:
        """A plain-text report: a summary line, then errors and warnings."""
        s = self.summary()
        verdict = "usable" if s["usable"] else "NOT usable"
        lines = [f"data {verdict}: {s['errors']} error(s), {s['warnings']} warning(s); "
                 f"{s['rows']['total']} input row(s): {s['rows']['used']} used, {s['rows']['merged']} merged, "
                 f"{s['rows']['excluded']} excluded, {s['rows']['skipped']} skipped; "
                 f"{s['series']['usable']} of {s['series']['total']} series usable"]
        for severity, found in (("errors", self.errors), ("warnings", self.warnings)):
            if found:
                lines.append(f"{severity}:")
                shown = found if limit is None else found[:limit]
                lines += [f"  - {p}" for p in shown]
                if len(shown) < len(found):
                    lines.append(f"  ... and {len(found) - len(shown)} more")
        return "\n".join(lines) + "\n"

    def to_json(self) -> str:
        """The report as JSON: ``summary``, ``problems``, ``excluded_series``, ``sources``."""
        frame = self.to_frame().astype(object).where(lambda f: f.notna(), None)
        body = {
            "summary": self.summary(),
            "settings": self.settings.as_dict(),
            "sources": [asdict(s) for s in self.sources],
            "problems": frame.to_dict(orient="records"),
            "excluded_series": self.excluded_series.to_dict(orient="records"),
        }
        return json.dumps(body, ensure_ascii=False, indent=2, default=_json_default)

    def to_csv(self) -> str:
        """The problems as CSV (one row per problem)."""
        buffer = io.StringIO()
        self.to_frame().to_csv(buffer, index=False)
        return buffer.getvalue()

    def to_html(self) -> str:
        """A self-contained HTML page: summary, problems (escaped) and excluded series."""
        s = self.summary()
        table = self.to_frame()[["severity", "rule", "file", "sheet", "row", "column", "value", "message", "fix"]]
        rows = "\n".join(
            "<tr class='{}'>{}</tr>".format(
                html.escape(str(r.severity)),
                "".join(f"<td>{html.escape('' if pd.isna(v) else str(v))}</td>" for v in r))
            for r in table.itertuples(index=False))
        head = "".join(f"<th>{html.escape(c)}</th>" for c in table.columns)
        excluded = self.excluded_series
        ex_rows = "".join(f"<tr><td>{html.escape(str(r.province))}</td><td>{r.indicator}</td>"
                          f"<td>{html.escape(str(r.rules))}</td></tr>" for r in excluded.itertuples())
        verdict = "usable" if s["usable"] else "NOT usable"
        return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Data check: {verdict}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;
padding:2px 6px;text-align:left;vertical-align:top}}tr.error td:first-child{{color:#D55E00;font-weight:bold}}
tr.warning td:first-child{{color:#8a6d00}}</style></head><body>
<h1>Data check: {verdict}</h1>
<p>{s['errors']} error(s), {s['warnings']} warning(s). Input rows: {s['rows']['total']} ({s['rows']['used']} used,
{s['rows']['merged']} merged, {s['rows']['excluded']} excluded, {s['rows']['skipped']} skipped).
Series: {s['series']['usable']} of {s['series']['total']} usable.</p>
<h2>Problems</h2>
<table><thead><tr>{head}</tr></thead><tbody>
{rows}
</tbody></table>
<h2>Series with errors</h2>
<table><thead><tr><th>province</th><th>indicator</th><th>rules</th></tr></thead><tbody>{ex_rows}</tbody></table>
</body></html>
"""

    def render(self, fmt: str) -> str:
        """The report in ``fmt``: ``text``, ``json``, ``csv`` or ``html``."""
        try:
            return {"text": self.to_text, "json": self.to_json, "csv": self.to_csv, "html": self.to_html}[fmt]()
        except KeyError:
            raise ValueError(f"format must be text, json, csv or html, got {fmt!r}") from None

    # -- run outputs --------------------------------------------------------------------------

    def write_tables(self, tables: str | Path) -> list[Path]:
        """Write ``data_quality.csv`` (problems), ``row_accounting.csv`` and ``series_quality.csv``."""
        tables = Path(tables)
        tables.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (("data_quality", self.to_frame()), ("row_accounting", self.accounting),
                            ("series_quality", self.series)):
            path = tables / f"{name}.csv"
            frame.to_csv(path, index=False)
            written.append(path)
        return written

    def manifest_entry(self, *, exclude_invalid: bool = False, tables: str | Path | None = None) -> dict:
        """Row accounting for the manifest.

        Per sheet: the rows used, merged (with the rows each was merged with, up to
        :data:`MANIFEST_MERGE_GROUPS` groups; all of them are in ``row_accounting.csv``),
        excluded (with the rules) and skipped, as compact row ranges; then the excluded
        series and the settings. With ``tables`` (the directory :meth:`write_tables`
        wrote), the tables' SHA-256 checksums tie the manifest to the full accounting.
        """
        sheets = []
        acc = self.accounting
        for (file, sheet), group in acc.groupby(["file", acc["sheet"].fillna("")], sort=False, dropna=False):
            entry: dict = {"file": file, "sheet": sheet or None, "rows": int(len(group))}
            for status in ("used", "merged"):
                rows = group.loc[group["status"] == status, "row"].dropna()
                entry[status] = row_ranges(rows, limit=10**9) if len(rows) else ""
            merged = group[group["status"] == "merged"]
            if 0 < len(merged) <= MANIFEST_MERGE_GROUPS:
                entry["merged_with"] = {str(row): partners for row, partners in zip(merged["row"], merged["merged_with"])}
            for status in ("excluded", "skipped"):
                part = group[group["status"] == status]
                entry[status] = [{"rows": row_ranges(g["row"].dropna(), limit=10**9) if g["row"].notna().any() else "",
                                  "rules": rules}
                                 for rules, g in part.groupby("rules", sort=True)]
            sheets.append(entry)
        names = ["data_quality.csv", "row_accounting.csv", "series_quality.csv"]
        listed = {f"tables/{n}": (sha256(Path(tables) / n) if tables is not None and (Path(tables) / n).is_file()
                                  else None) for n in names}
        return {
            **self.summary(),
            "exclude_invalid": exclude_invalid,
            "settings": self.settings.as_dict(),
            "sheets": sheets,
            "excluded_series": self.excluded_series.to_dict(orient="records"),
            "tables": listed,
        }


def _json_default(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    return str(value)


# -- putting it together ---------------------------------------------------------------------


def check_inputs(paths: str | Path | Sequence[str | Path], *, plan_dates: str | Path | dict | None = None,
                 definition_changes: str | Path | None = None, settings: CheckSettings | None = None
                 ) -> QualityReport:
    """Read and check one or many data files; see :class:`QualityReport`.

    Parameters
    ----------
    paths : path or sequence of paths
        CSV, Excel (every sheet) or Parquet files, in long or wide layout. Files are only read.
    plan_dates : path or dict, optional
        Each province's plan start (``province, start_month`` table, or a dict of code to
        month); provinces not listed start at ``settings.default_start``.
    definition_changes : path, optional
        A ``province, indicator, month[, note]`` table of changes of definition.
    settings : CheckSettings, optional
        Thresholds; defaults when omitted.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "panel.csv"
    >>> _ = p.write_text("省份,指标,月份,分子,分母\\n安徽,32,2023年6月,5,-1\\n", encoding="utf-8")
    >>> report = check_inputs(p, settings=CheckSettings(analysis_checks=False))
    >>> report.usable, [(e.row, e.column, e.rule) for e in report.errors]
    (False, [(2, '分母', 'negative-count')])
    """
    if isinstance(paths, (str, Path)):
        paths = [paths]
    grids: list[Grid] = []
    unreadable: list[tuple[str, list[Problem]]] = []
    for path in paths:
        found, problems = read_grids(path)
        grids += found
        if problems:
            unreadable.append((str(path), problems))
    return _check(grids, unreadable, plan_dates=plan_dates, definition_changes=definition_changes,
                  settings=settings or CheckSettings())


def check_frame(frame: pd.DataFrame, *, source: str = "<data frame>", plan_dates: str | Path | dict | None = None,
                definition_changes: str | Path | None = None, settings: CheckSettings | None = None) -> QualityReport:
    """Check a table already in memory exactly as a file (rows numbered from 2, as below a header)."""
    return _check([frame_grid(frame, source=source)], [], plan_dates=plan_dates,
                  definition_changes=definition_changes, settings=settings or CheckSettings())


def _check(grids: list[Grid], unreadable: list[tuple[str, list[Problem]]], *, plan_dates, definition_changes,
           settings: CheckSettings) -> QualityReport:
    checker = Checker(settings)
    sheets, parts, sources, unread_rows = [], [], [], []
    for file, problems in unreadable:
        checker.problems.extend(problems, "blocking")
        unread_rows.append({"file": file, "sheet": None, "row": None, "status": "excluded",
                            "rules": ";".join(sorted({p.rule for p in problems}))})
    for grid in grids:
        part = interpret(grid)
        errors = {p.rule for p in part.problems if p.severity == "error"}
        for p in part.problems:
            checker.problems.add(p, "blocking" if p.severity == "error" else "file")
        if part.sheet is None and not errors and part.entries.empty:
            continue  # an empty or reference sheet
        sheet_id = len(sheets)
        sheets.append(part.sheet or _placeholder(grid))
        parts.append((sheet_id, part))
        sources.append(Source(grid.file, grid.sheet, part.sheet.layout if part.sheet else None, grid.encoding,
                              int((part.rows["kind"] != "blank").sum()) if len(part.rows) else 0))
        if errors:
            for line in part.rows["line"]:
                unread_rows.append({"file": grid.file, "sheet": grid.sheet, "row": int(line), "status": "excluded",
                                    "rules": ";".join(sorted(errors))})
    entries = Entries(parts, sheets)
    starts: dict[str, pd.Period] = {}
    if isinstance(plan_dates, dict):
        starts = {get_province(k).code: pd.Period(v, "M") for k, v in plan_dates.items()}
    elif plan_dates is not None:
        starts, problems = read_plan_table(plan_dates)
        checker.problems.extend(problems, "blocking")
    changes = None
    if definition_changes is not None:
        changes, problems = read_definition_changes(definition_changes)
        checker.problems.extend(problems, "blocking")
    checker.resolve_keys(entries)
    # Problems found while reading rows are located by position; emitted now that the
    # entries' keys are known, each names its series.
    offset = 0
    for _, part in parts:
        for item in part.entry_problems:
            checker.entry_problem(entries, offset + item["index"], item["role"], item["rule"], item["message"],
                                  item["value"])
        offset += len(part.entries)
    obs = merge_entries(entries, checker)
    values = check_values(entries, obs, checker)
    months = present_months(entries)
    check_series(entries, obs, values, months, checker, starts)
    bad_series: dict[tuple, set[str]] = defaultdict(set)
    for p, scope in checker.problems.items:
        if p.severity == "error" and scope == "series":
            bad_series[(p.province, p.indicator)].add(p.rule)
    clean = ~values.bad
    if bad_series:
        clean &= ~pd.MultiIndex.from_arrays([obs.province, obs.indicator]).isin(list(bad_series))
    if settings.analysis_checks:
        display = display_values(obs, values, clean)
        check_jumps(entries, display, checker, starts, changes)
        check_shifts(entries, display, changes, checker)
    panel = _panel(entries, obs, values, clean)
    if len(panel):
        for line in schema_failures(panel):
            checker.problems.add(problem("schema", ", ".join(dict.fromkeys(panel["source_file"])),
                                         message=f"the checked panel breaks its schema: {line}"), "blocking")
    if not len(entries) and not any(p.severity == "error" for p, _ in checker.problems.items):
        checker.problems.add(problem("empty", ", ".join(dict.fromkeys(g.file for g in grids)) or "<no input>",
                                     message="no data rows in any of the inputs"), "summary")
    items = checker.problems.items
    places = {}
    for g in grids:  # a problem of a whole file comes before those of its sheets
        places.setdefault((g.file, None), len(places))
        places.setdefault((g.file, g.sheet), len(places))
    order = sorted(range(len(items)), key=lambda k: _sort_key(items[k], places))
    problems = tuple(items[k][0] for k in order)
    blocking = tuple(p for p, scope in items if scope in ("blocking", "summary") and p.severity == "error")
    accounting = _accounting(entries, obs, parts, bad_series, unread_rows)
    series = _series_table(months, problems, bad_series, starts, settings)
    return QualityReport(problems=problems, panel=panel, accounting=accounting, series=series, blocking=blocking,
                         sources=tuple(sources), starts=starts, settings=settings, definition_changes=changes)


def _placeholder(grid: Grid) -> Sheet:
    return Sheet(grid.file, grid.sheet, "unread", None, {}, grid.encoding)


def _sort_key(item: tuple[Problem, str], places: dict) -> tuple:
    """Problems in reading order: file and sheet as given, problems of a whole sheet first,
    then by row, then those of whole series."""
    p, scope = item
    rank = 0 if scope in ("blocking", "file") else 1 if p.row is not None else 2
    place = places.get((p.file, p.sheet), places.get((p.file, None), len(places)))
    if scope == "summary":  # a conclusion about all the inputs comes last
        place = len(places) + 1
    return (place, p.file, rank, p.row if p.row is not None else 0, p.province or "", p.indicator or 0,
            p.column or "", p.rule)


def _panel(entries: Entries, obs: Observations, values: Values, keep: np.ndarray) -> pd.DataFrame:
    measure = measures(obs.indicator)
    anchor = obs.anchor[keep]
    sheet_ids = entries.sheet_id[anchor] if len(anchor) else np.zeros(0, dtype=np.int64)
    files = np.array([s.file for s in entries.sheets], dtype=object)
    names = np.array([s.sheet for s in entries.sheets], dtype=object)
    panel = pd.DataFrame({
        "province": pd.Series(obs.province[keep], dtype=str),
        "indicator": obs.indicator[keep].astype(np.int64),
        "measure": pd.Series(measure[keep], dtype=str),
        "month": pd.PeriodIndex.from_ordinals(obs.month[keep], freq="M"),
        "numerator": values.numerator[keep].astype(np.float64),
        "denominator": values.denominator[keep].astype(np.float64),
        "value": values.value[keep].astype(np.float64),
        "source_row": entries.line[anchor].astype(np.int64) if len(anchor) else np.zeros(0, dtype=np.int64),
        "source_file": pd.Series(files[sheet_ids] if len(anchor) else [], dtype=str),
        "source_sheet": pd.Series(names[sheet_ids] if len(anchor) else [], dtype=str),
    }, columns=CANONICAL_COLUMNS)
    return panel.sort_values(["province", "indicator", "month"], kind="stable").reset_index(drop=True)


def _accounting(entries: Entries, obs: Observations, parts, bad_series: dict, unread_rows: list[dict]
                ) -> pd.DataFrame:
    """One row per input row: what became of it."""
    n = len(entries)
    frames = []
    if n:
        series_bad = (pd.MultiIndex.from_arrays([entries.province, entries.indicator]).isin(list(bad_series))
                      if bad_series else np.zeros(n, dtype=bool))
        own = np.full(n, "", dtype=object)
        for e, rules in entries.errors.items():
            own[e] = ";".join(sorted(rules))
        excluded = (own != "") | ~entries.key_ok | series_bad
        merged_entry = np.zeros(n, dtype=bool)
        partners: dict[int, set[str]] = defaultdict(set)
        if obs.merged.any():
            m = np.flatnonzero(obs.merged)
            pairs = pd.DataFrame({"obs": np.tile(m, 3), "entry": np.concatenate([obs.source[i][m] for i in ITEMS])})
            pairs = pairs[pairs["entry"] >= 0].drop_duplicates()
            merged_entry[pairs["entry"].to_numpy()] = True
            both = pairs.merge(pairs, on="obs", suffixes=("", "_other"))
            both = both[both["entry"] != both["entry_other"]]
            label = _entry_labels(entries)
            mine, theirs = both["entry"].to_numpy(), both["entry_other"].to_numpy()
            # A partner in the same sheet is named by its row alone.
            same = entries.sheet_id[mine] == entries.sheet_id[theirs]
            short = np.array([f"row {int(line)}" for line in entries.line[theirs]], dtype=object)
            both = both.assign(row=entries.sheet_id[mine] * 10**9 + entries.line[mine],
                               other=np.where(same, short, label[theirs]))
            for row, others in both.groupby("row")["other"]:
                partners[int(row)] = set(others)
        status = np.where(excluded, "excluded", np.where(merged_entry, "merged", "used"))
        rules = np.where(excluded, own, "")
        for e in np.flatnonzero(excluded & (own == "") & series_bad):
            rules[e] = ";".join(sorted(bad_series[(entries.province[e], int(entries.indicator[e]))]))
        month_label = np.where(entries.month != NO_MONTH,
                              pd.PeriodIndex.from_ordinals(np.where(entries.month != NO_MONTH, entries.month, 0),
                                                           freq="M").astype(str),
                              entries.frame["month"].astype(object))
        frame = pd.DataFrame({
            "sheet_id": entries.sheet_id, "line": entries.line, "status": status, "rules": rules,
            "province": np.where(entries.province == None, entries.frame["province"].astype(object),  # noqa: E711
                                 entries.province),
            "indicator": np.where(entries.indicator >= 0, entries.indicator.astype(object),
                                  entries.frame["indicator"].astype(object)),
            "months": month_label, "observations": 1,
            "_month": entries.month,
        })
        key = entries.sheet_id.astype(np.int64) * 10**9 + entries.line
        if not pd.Series(key).duplicated().any():
            agg = frame
        else:
            # Several entries per row (a row of a wide table): the row is excluded if any of
            # its entries is, merged if any is merged, and spans its first to last month.
            rank = frame["status"].map({"excluded": 0, "merged": 1, "used": 2}).to_numpy()
            g = frame.assign(_rank=rank, _key=key).groupby("_key", sort=False)
            agg = g.agg(sheet_id=("sheet_id", "first"), line=("line", "first"), _rank=("_rank", "min"),
                        province=("province", "first"), indicator=("indicator", "first"),
                        observations=("status", "size"), first=("_month", "min"), last=("_month", "max"),
                        months=("months", "first"))
            agg["status"] = agg["_rank"].map({0: "excluded", 1: "merged", 2: "used"})
            span = (agg["first"] != agg["last"]) & (agg["first"] != NO_MONTH)
            agg.loc[span, "months"] = [f"{month_text(a)}..{month_text(b)}"
                                       for a, b in zip(agg.loc[span, "first"], agg.loc[span, "last"])]
            ruled = frame.assign(_key=key)[frame["rules"] != ""]
            joined = ruled.groupby("_key", sort=False)["rules"].agg(
                lambda r: ";".join(sorted({x for v in r for x in v.split(";") if x})))
            agg["rules"] = joined.reindex(agg.index).fillna("").to_numpy()
            agg = agg.reset_index(drop=True)
        agg = agg.copy()
        agg["merged_with"] = ""
        if partners:
            agg_key = agg["sheet_id"].to_numpy().astype(np.int64) * 10**9 + agg["line"].to_numpy()
            agg["merged_with"] = [", ".join(sorted(partners[int(k)], key=_natural)) if int(k) in partners else ""
                                  for k in agg_key]
        frames.append(agg.drop(columns=[c for c in ("_month", "_rank", "first", "last") if c in agg]))
    for sheet_id, part in parts:
        skipped = part.rows[part.rows["kind"].isin(["blank", "repeated-header"])]
        if len(skipped):
            frames.append(pd.DataFrame({"sheet_id": sheet_id, "line": skipped["line"].to_numpy(), "status": "skipped",
                                        "rules": np.where(skipped["kind"] == "blank", "blank-rows", "repeated-header"),
                                        "observations": 0, "merged_with": ""}))
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["sheet_id", "line"])
    if len(out):
        sheet_id = out["sheet_id"].to_numpy().astype(np.int64)
        out["file"] = np.array([s.file for s in entries.sheets], dtype=object)[sheet_id]
        out["sheet"] = np.array([s.sheet for s in entries.sheets], dtype=object)[sheet_id]
        out["row"] = out["line"].astype("Int64")
        out = out.sort_values(["sheet_id", "line"], kind="stable")
    unread = pd.DataFrame(unread_rows, columns=["file", "sheet", "row", "status", "rules"])
    unread["observations"] = 0
    unread["merged_with"] = ""
    out = pd.concat([out.reindex(columns=ACCOUNTING_COLUMNS), unread.reindex(columns=ACCOUNTING_COLUMNS)],
                    ignore_index=True)
    out["row"] = out["row"].astype("Int64")
    out["observations"] = out["observations"].fillna(0).astype(int)
    out[["merged_with", "rules"]] = out[["merged_with", "rules"]].fillna("")
    return out.reset_index(drop=True)


def _natural(label: str):
    digits = "".join(ch for ch in label.split()[-1] if ch.isdigit())
    return (label.rsplit(" ", 1)[0] if " " in label else "", int(digits) if digits else 0)


def _entry_labels(entries: Entries) -> np.ndarray:
    """Row labels for ``merged_with``: ``file [sheet] row N``."""
    labels = []
    for s, line in zip(entries.sheet_id, entries.line):
        info = entries.sheets[int(s)]
        labels.append(f"{info.file}{f' [{info.sheet}]' if info.sheet else ''} row {int(line)}")
    return np.array(labels, dtype=object)


def _series_table(months: pd.DataFrame, problems: tuple[Problem, ...], bad_series: dict,
                  starts: dict[str, pd.Period], settings: CheckSettings) -> pd.DataFrame:
    if months.empty:
        return pd.DataFrame(columns=SERIES_COLUMNS)
    errors: dict[tuple, set] = defaultdict(set)
    warns: dict[tuple, set] = defaultdict(set)
    warn_months: dict[tuple, set] = defaultdict(set)
    for p in problems:
        if p.province is None or p.indicator is None:
            continue
        key = (p.province, int(p.indicator))
        (errors if p.severity == "error" else warns)[key].add(p.rule)
        if p.severity == "warning" and p.month:
            warn_months[key].add(p.month)
    start = months["province"].map({p: s.ordinal for p, s in starts.items()}).fillna(
        settings.default_start.ordinal).to_numpy().astype(np.int64)
    table = months.assign(pre=months["month"].to_numpy() < start,
                          post=months["month"].to_numpy() >= start + settings.washin).groupby(
        ["province", "indicator"], sort=True).agg(first=("month", "min"), last=("month", "max"),
                                                  n_months=("month", "size"), n_pre=("pre", "sum"),
                                                  n_post=("post", "sum")).reset_index()
    keys = list(zip(table["province"], table["indicator"].astype(int)))
    table["status"] = ["excluded" if k in bad_series else "warning" if warns.get(k) else "ok" for k in keys]
    table["first_month"] = [month_text(o) for o in table["first"]]
    table["last_month"] = [month_text(o) for o in table["last"]]
    table["start_month"] = [str(starts.get(p, settings.default_start)) for p in table["province"]]
    gaps = table["last"] - table["first"] + 1 != table["n_months"]
    table["missing_months"] = ""
    for k in np.flatnonzero(gaps.to_numpy()):
        have = set(months.loc[(months["province"] == table["province"].iat[k])
                              & (months["indicator"] == table["indicator"].iat[k]), "month"])
        table.loc[table.index[k], "missing_months"] = ";".join(
            month_text(o) for o in range(int(table["first"].iat[k]), int(table["last"].iat[k]) + 1) if o not in have)
    table["warning_months"] = [";".join(sorted(warn_months.get(k, ()))) for k in keys]
    table["errors"] = [";".join(sorted(errors.get(k, ()))) for k in keys]
    table["warnings"] = [";".join(sorted(warns.get(k, ()))) for k in keys]
    table["indicator"] = table["indicator"].astype(int)
    return table[SERIES_COLUMNS]
