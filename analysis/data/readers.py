"""Reading submitted files into one table of entries, each traced to its file, sheet and row.

A file (CSV in UTF-8 with or without BOM, UTF-16 or GBK/GB18030; Excel ``.xlsx`` with any
number of sheets; Parquet) is read as text, cell by cell, so that nothing is coerced
before it is checked. Each sheet's header row is found and its columns are recognised by
name, in English or Chinese, in any order, with stray spaces and full-width characters
(``省份 / province``, ``分子（numerator）``). Three layouts are understood:

``long``
    one row per province x indicator x month with numerator, denominator and/or value
    columns;
``long`` with an item column
    one row per province x indicator x month x item (``项目``: 分子/分母/数值) with the
    amount in the value column;
``wide``
    one row per province x indicator (x item), one column per month.

The result is a table of *entries*: one per row of a long table, one per filled month
cell of a wide table, each with the items it supplies (numerator, denominator, value),
so that entries can later be merged into one observation per province x indicator x
month and every input row can be accounted for. Reading never modifies a file.
"""

from __future__ import annotations

import codecs
import hashlib
import csv
import datetime as dt
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.data.problems import Problem
from analysis.data.rules import problem
from analysis.data.values import fold, parse_month

#: Items an entry can supply, as bits of ``Entries.supplies``.
NUMERATOR, DENOMINATOR, VALUE = 1, 2, 4
ITEM_BITS = {"numerator": NUMERATOR, "denominator": DENOMINATOR, "value": VALUE}
ITEMS = tuple(ITEM_BITS)
#: Columns an entry carries as text.
TEXT_COLUMNS = ("province", "indicator", "indicator_name", "month", "numerator", "denominator", "value", "unit")

#: Header names of each column role, in English and Chinese (compared after :func:`header_key`).
COLUMN_ALIASES: dict[str, tuple[str, ...]] = {
    "province": ("province", "province code", "provinces", "region", "省份", "省", "省份名称", "省份代码", "省级单位",
                 "省区市", "省(区、市)", "地区"),
    "indicator": ("indicator", "indicator number", "indicator no", "indicator code", "indicator id", "指标",
                  "指标编号", "指标序号", "指标代码", "指标号"),
    "indicator_name": ("indicator name", "name of indicator", "指标名称", "指标名"),
    "month": ("month", "year month", "yearmonth", "date", "period", "月份", "年月", "统计月份", "月", "时间",
              "统计时间", "日期"),
    "numerator": ("numerator", "分子", "分子数", "分子值"),
    "denominator": ("denominator", "分母", "分母数", "分母值"),
    "value": ("value", "数值", "值", "指标值", "amount"),
    "unit": ("unit", "units", "单位", "计量单位", "指标单位"),
    "field": ("field", "item", "quantity", "项目", "数据项", "字段", "类别项"),
    # Informational columns of the template: recognised and not used.
    "dimension": ("dimension", "维度", "指标维度", "指标类别"),
    "note": ("note", "notes", "comment", "comments", "remark", "remarks", "备注", "说明"),
}
#: Values of an item column.
ITEM_ALIASES: dict[str, tuple[str, ...]] = {
    "numerator": ("numerator", "num", "分子"),
    "denominator": ("denominator", "den", "分母"),
    "value": ("value", "数值", "值", "指标值"),
}
#: Sheets of the submission template that hold reference tables, not data.
REFERENCE_SHEETS = ("填报说明", "说明", "instructions", "readme", "指标", "indicators", "省份", "provinces",
                    "填报说明instructions", "指标indicators", "省份provinces", "指标目录")

_SEPARATORS = re.compile(r"[/|\\\n()\[\]【】:：;；,，]+")
_SCRIPT_RUNS = re.compile(r"[\u3400-\u9fff、]+|[^\u3400-\u9fff、]+")
#: Longest text read as a column header (bilingual headers with a remark fit).
MAX_HEADER_LENGTH = 48
#: The header row is looked for among the first rows of a sheet (titles may precede it).
HEADER_SEARCH_ROWS = 30
SUFFIXES = {".csv": "csv", ".txt": "csv", ".tsv": "csv", ".xlsx": "excel", ".xlsm": "excel", ".parquet": "parquet"}


def header_key(text: str) -> str:
    """Header text in the form aliases are compared in: folded, no spaces, ``_``, ``-``, ``.``."""
    return re.sub(r"[\s_\-.]+", "", fold(text)).casefold()


_COLUMN_KEYS = {header_key(alias): role for role, aliases in COLUMN_ALIASES.items() for alias in aliases}
_ITEM_KEYS = {header_key(alias): item for item, aliases in ITEM_ALIASES.items() for alias in aliases}
_REFERENCE_KEYS = {header_key(name) for name in REFERENCE_SHEETS}


def header_roles(text: str | None) -> set[str]:
    """Column roles a header names: the whole text, else each part of a bilingual header.

    Examples
    --------
    >>> header_roles("省份 / province"), header_roles("分子（numerator）"), header_roles("指标名称 indicator name")
    ({'province'}, {'numerator'}, {'indicator_name'})
    >>> sorted(header_roles("分子/分母"))
    ['denominator', 'numerator']
    """
    if text is None or len(text) > MAX_HEADER_LENGTH:
        return set()  # a sentence (instructions, a title) is not a column header
    whole = _COLUMN_KEYS.get(header_key(text))
    if whole:
        return {whole}
    roles = set()
    for piece in _SEPARATORS.split(fold(text)):
        role = _COLUMN_KEYS.get(header_key(piece))
        if role:
            roles.add(role)
            continue
        for run in _SCRIPT_RUNS.findall(piece):
            role = _COLUMN_KEYS.get(header_key(run))
            if role:
                roles.add(role)
    return roles


def item_role(text: str) -> str | None:
    """The item an item-column cell names (``numerator``, ``denominator``, ``value``)."""
    parts = _SEPARATORS.split(fold(text))
    pieces = [text, *parts, *(run for part in parts for run in _SCRIPT_RUNS.findall(part))]
    found = {_ITEM_KEYS[k] for k in map(header_key, pieces) if k in _ITEM_KEYS}
    return found.pop() if len(found) == 1 else None


def month_header(text: str | None) -> pd.Period | None:
    """The month a column header names (wide layout), or None."""
    if text is None:
        return None
    month, _ = parse_month(text)
    return month


def sha256(path: str | Path) -> str:
    """Checksum of a file, recorded in the run manifest."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- raw grids -------------------------------------------------------------------------------


@dataclass
class Grid:
    """The cells of one sheet as text (NA when empty), with each row's line number.

    ``header`` is given for tables whose columns are named outside the cells (Parquet,
    data frames); otherwise the header row is found among the cells.
    """

    file: str
    sheet: str | None
    cells: pd.DataFrame
    lines: np.ndarray
    header: list[str] | None = None
    damaged: set[int] = field(default_factory=set)  # lines with undecodable bytes
    encoding: str | None = None


def _clean(cells: pd.DataFrame) -> pd.DataFrame:
    """Strip every cell and turn empty text into NA."""
    out = {}
    for col in cells.columns:
        text = cells[col].astype("string").str.strip()
        out[col] = text.mask(text == "")
    return pd.DataFrame(out, index=cells.index)


def _decode(data: bytes) -> tuple[str, str, set[int]]:
    """Decode a text file: UTF-8 (BOM or not), UTF-16 with BOM, else GB18030 (a superset of
    GBK). A UTF-8 file with a few damaged bytes stays UTF-8 and its damaged lines are
    returned, so that only those rows are reported (decoding it all as GB18030 would turn
    every Chinese name into nonsense)."""
    if data.startswith(codecs.BOM_UTF16_LE) or data.startswith(codecs.BOM_UTF16_BE):
        try:
            return data.decode("utf-16"), "utf-16", set()
        except UnicodeDecodeError:
            pass
    bom = data.startswith(codecs.BOM_UTF8)
    body = data[3:] if bom else data
    try:
        return body.decode("utf-8"), "utf-8-sig" if bom else "utf-8", set()
    except UnicodeDecodeError:
        pass
    replaced = body.decode("utf-8", errors="replace")
    damage = replaced.count("\ufffd")
    readable = sum(1 for ch in replaced if ord(ch) > 127 and ch != "\ufffd")
    # Many well-formed multi-byte characters and a few damaged bytes: UTF-8 with damage.
    if not bom and readable < 10 * damage:
        try:
            return body.decode("gb18030"), "gb18030", set()
        except UnicodeDecodeError:
            pass
    starts = np.array([0] + [m.end() for m in re.finditer("\n", replaced)])
    positions = [m.start() for m in re.finditer("\ufffd", replaced)]
    return replaced, "utf-8 (damaged)", {int(np.searchsorted(starts, p, side="right")) for p in positions}


def _sniff_delimiter(text: str) -> str:
    """The delimiter used most in the first lines (titles above the header have none)."""
    lines = [line for line in text[:20000].splitlines() if line.strip()][:HEADER_SEARCH_ROWS]
    counts = {d: sum(line.count(d) for line in lines) for d in (",", "\t", ";", "|")}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def read_csv_grid(path: Path) -> tuple[list[Grid], list[Problem]]:
    text, encoding, damaged = _decode(path.read_bytes())
    delimiter = "\t" if path.suffix.lower() == ".tsv" else _sniff_delimiter(text)
    try:
        cells = pd.read_csv(io.StringIO(text), sep=delimiter, header=None, dtype=str, na_filter=False,
                            skip_blank_lines=False, engine="c")
    except pd.errors.EmptyDataError:
        cells = pd.DataFrame()
    except (pd.errors.ParserError, ValueError):
        # Lines of different lengths (titles above the header, extra fields): the csv
        # module reads any shape; values beyond the header are reported by interpret().
        rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
        width = max((len(r) for r in rows), default=0)
        cells = pd.DataFrame([r + [""] * (width - len(r)) for r in rows], dtype="string")
    cells.columns = range(cells.shape[1])
    lines, problems = _record_lines(text, delimiter, file=str(path))
    if len(lines) != len(cells):  # the parsers disagree on records: number them as lines
        lines = np.arange(1, len(cells) + 1)
    grid = Grid(str(path), None, _clean(cells), lines, damaged=damaged, encoding=encoding)
    return [grid], problems


def _record_lines(text: str, delimiter: str, *, file: str) -> tuple[np.ndarray, list[Problem]]:
    """The line on which each CSV record starts, and a problem for each record that runs
    over several lines (a quoted field with line breaks: in monthly data, an unclosed quote)."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    starts, problems, end = [], [], 0
    for record in reader:
        start, end = end + 1, reader.line_num
        starts.append(start)
        if end > start:
            field = next((f for f in record if "\n" in f or "\r" in f), "")
            problems.append(problem(
                "multiline-field", file, row=start, value=field[:60].replace("\r", "").replace("\n", "⏎"),
                message=f"a quoted field runs from line {start} to line {end}: the {end - start} line(s) after "
                        f"line {start} were read as part of one value"))
    return np.asarray(starts, dtype=np.int64), problems


def _excel_text(value, number_format: str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return str(value).upper()
    if isinstance(value, (int, float)):
        if number_format and "%" in number_format and isinstance(value, (int, float)):
            return f"{value * 100:.12g}%"
        if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d") if value.time() == dt.time() else value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def read_excel_grids(path: Path) -> tuple[list[Grid], list[Problem]]:
    import openpyxl

    file = str(path)
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as err:  # a damaged workbook is a problem of the file, reported, not raised
        return [], [problem("unreadable-file", file, message=f"cannot open the workbook ({type(err).__name__}: {err})")]
    grids = []
    try:
        for sheet in book.worksheets:
            if not hasattr(sheet, "iter_rows"):
                continue
            rows = [[_excel_text(c.value, getattr(c, "number_format", None)) for c in row]
                    for row in sheet.iter_rows(min_row=1, min_col=1)]
            width = max((len(r) for r in rows), default=0)
            cells = pd.DataFrame([r + [None] * (width - len(r)) for r in rows], columns=range(width), dtype="string")
            grids.append(Grid(file, sheet.title, _clean(cells), np.arange(1, len(rows) + 1)))
    finally:
        book.close()
    return grids, []


def frame_grid(frame: pd.DataFrame, *, source: str, sheet: str | None = None) -> Grid:
    """A table already in memory (or read from Parquet): columns named, rows numbered as in a
    file whose header is line 1 (the first record is row 2)."""
    frame = frame.reset_index(drop=True)
    header = [str(c) for c in frame.columns]
    cells = frame.astype("string")
    cells.columns = range(cells.shape[1])
    return Grid(source, sheet, _clean(cells), np.arange(2, len(frame) + 2), header=header)


def read_grids(path: str | Path) -> tuple[list[Grid], list[Problem]]:
    """Read every sheet of a file as text. Problems of the file itself (type, encoding,
    a damaged workbook) are returned, not raised."""
    path = Path(path)
    file = str(path)
    kind = SUFFIXES.get(path.suffix.lower())
    if not path.is_file():
        return [], [problem("unreadable-file", file, message="no such file")]
    if kind is None:
        fix = "save the workbook as .xlsx" if path.suffix.lower() == ".xls" else None
        return [], [problem("unsupported-file-type", file, fix=fix,
                            message=f"cannot read {path.suffix or 'files without a suffix'!r} files")]
    if kind == "csv":
        return read_csv_grid(path)
    if kind == "excel":
        return read_excel_grids(path)
    try:
        frame = pd.read_parquet(path)
    except Exception as err:
        return [], [problem("unreadable-file", file, message=f"cannot read the Parquet file ({type(err).__name__}: {err})")]
    return [frame_grid(frame, source=file)], []


# -- interpreting a sheet --------------------------------------------------------------------


@dataclass(frozen=True)
class Sheet:
    """How a sheet was understood: its layout, header line and the header of each column role."""

    file: str
    sheet: str | None
    layout: str  # "long", "long-items" or "wide"
    header_line: int | None
    columns: dict[str, str]  # role -> header text as written
    encoding: str | None = None


@dataclass
class Interpreted:
    """One sheet's entries, its rows (for the accounting) and the problems found reading it.

    ``entry_problems`` are located by entry position and turned into problems once the
    entries' province and indicator are known (so that each names its series).
    """

    sheet: Sheet | None
    entries: pd.DataFrame
    rows: pd.DataFrame  # line, kind: data / blank / repeated-header
    problems: list[Problem]
    entry_problems: list[dict]


def _unread(grid: Grid, start: int) -> pd.DataFrame:
    """Rows of a sheet that could not be read (from position ``start``), for the accounting."""
    filled = grid.cells.iloc[start:].notna().any(axis=1).to_numpy()
    return pd.DataFrame({"line": np.asarray(grid.lines[start:], dtype=np.int64)[filled], "kind": "unread"})


def _letter(j: int) -> str:
    name = ""
    j += 1
    while j:
        j, rem = divmod(j - 1, 26)
        name = chr(65 + rem) + name
    return name


def _classify(header: list[str | None]) -> tuple[dict[int, set[str]], dict[int, pd.Period]]:
    """Column roles and month columns of a header row (a month, e.g. 2023年8月, is never a role)."""
    months = {j: m for j, h in enumerate(header) if (m := month_header(h)) is not None}
    roles = {j: set() if j in months else header_roles(h) for j, h in enumerate(header)}
    return roles, months


def _is_header(roles: dict[int, set[str]], months: dict[int, pd.Period]) -> bool:
    found = set().union(*roles.values()) if roles else set()
    return "province" in found and bool(found & {"indicator", "indicator_name"}) and ("month" in found or bool(months))


def _find_header(grid: Grid) -> int | None:
    """Position (in ``grid.cells``) of the header row: the first row naming province,
    indicator and month (or months as columns); failing that, the first naming two
    contract columns (its missing columns are then reported)."""
    fallback = None
    for i in range(min(len(grid.cells), HEADER_SEARCH_ROWS)):
        header = [None if pd.isna(v) else str(v) for v in grid.cells.iloc[i].tolist()]
        roles, months = _classify(header)
        if _is_header(roles, months):
            return i
        named = set().union(*roles.values()) & {"province", "indicator", "indicator_name", "month", "numerator",
                                                  "denominator", "value", "field"}
        if fallback is None and len(named) >= 2:
            fallback = i
    return fallback


def empty_entries() -> pd.DataFrame:
    frame = pd.DataFrame({c: pd.Series(dtype="string") for c in TEXT_COLUMNS})
    frame["line"] = pd.Series(dtype="int64")
    frame["supplies"] = pd.Series(dtype="int8")
    frame["amount_column"] = pd.Series(dtype="string")
    frame["wide_without_items"] = pd.Series(dtype="bool")
    return frame


_EXPECTED = "['province', 'indicator', 'month', 'numerator', 'denominator', 'value']"
_DAMAGED = "the row has bytes that are neither UTF-8 nor GBK/GB18030 text (shown as \ufffd)"
_UNKNOWN_ITEM = "the item must be 分子/numerator, 分母/denominator or 数值/value"


def _resolve_items(texts: pd.Series) -> np.ndarray:
    """Item bit of each item-column cell (0 where the cell names no item)."""
    codes, uniques = pd.factorize(texts)
    bits = np.array([ITEM_BITS.get(item_role(u), 0) for u in uniques] + [0], dtype=np.int8)
    return bits[codes]


def interpret(grid: Grid) -> Interpreted:
    """Find the header, the layout and the entries of one sheet."""
    file, sheet_name = grid.file, grid.sheet
    where = {"sheet": sheet_name}
    none = Interpreted(None, empty_entries(), _unread(grid, 0), [], [])
    reference = sheet_name is not None and header_key(sheet_name) in _REFERENCE_KEYS
    if grid.cells.empty or grid.cells.isna().all().all():
        if sheet_name is not None:
            return none  # an empty worksheet holds nothing to account for
        none.problems.append(problem("empty", file, **where, message="the file has no data rows"))
        return none
    if grid.header is not None:
        header = list(grid.header)
        body, lines, header_line = grid.cells, grid.lines, 1
    else:
        at = _find_header(grid)
        if at is None or (reference and not _is_header(*_classify(
                [None if pd.isna(v) else str(v) for v in grid.cells.iloc[at].tolist()]))):
            if reference:
                return Interpreted(None, none.entries, _unread(grid, len(grid.cells)), [], [])
            none.problems.append(problem("no-header", file, **where, message=(
                f"no header row naming province, indicator and month in the first {HEADER_SEARCH_ROWS} rows")))
            return none
        header = [None if pd.isna(v) else str(v) for v in grid.cells.iloc[at].tolist()]
        body, lines, header_line = grid.cells.iloc[at + 1:], grid.lines[at + 1:], int(grid.lines[at])
    body = body.reset_index(drop=True)
    lines = np.asarray(lines, dtype=np.int64)

    # -- columns --------------------------------------------------------------------------
    problems: list[Problem] = []
    roles, months = _classify(header)
    labels = {j: (h if h is not None else _letter(j)) for j, h in enumerate(header)}
    columns: dict[str, int] = {}
    for j, found in roles.items():
        if len(found) > 1:
            problems.append(problem("ambiguous-column", file, **where, row=header_line, column=labels[j],
                                    message=f"the header names several columns: {sorted(found)}"))
        elif found:
            (role,) = found
            if role in columns:
                problems.append(problem("duplicate-column", file, **where, row=header_line, column=labels[j],
                                        message=f"a second {role} column (the first is '{labels[columns[role]]}')"))
            else:
                columns[role] = j
    wide = "month" not in columns and bool(months)
    month_columns: dict[int, pd.Period] = {}
    if wide:
        first: dict[pd.Period, int] = {}
        for j, month in months.items():
            if month in first:
                problems.append(problem("duplicate-column", file, **where, row=header_line, column=labels[j],
                                        message=f"a second column for {month} (the first is '{labels[first[month]]}')"))
            else:
                first[month] = j
                month_columns[j] = month
        for role in ("numerator", "denominator", "value"):
            if role in columns:
                problems.append(problem("unknown-column", file, **where, row=header_line, column=labels[columns[role]],
                                        message="a table with months as columns takes its amounts from the month "
                                                "columns; this column is ignored"))
    nameless_data: list[int] = []
    for j, h in enumerate(header):
        if roles[j] or j in month_columns:
            continue
        if h is None:
            if body[j].notna().any():
                nameless_data.append(j)
            continue
        message = ("a month as a column header next to a month column; it is ignored" if j in months and not wide
                   else "not a column of the data contract; it is ignored")
        problems.append(problem("unknown-column", file, **where, row=header_line, column=labels[j], message=message))
    for role in ("province", "indicator", "month"):
        if not (role in columns or (role == "indicator" and "indicator_name" in columns) or (role == "month" and wide)):
            problems.append(problem("missing-column", file, **where, row=header_line, column=role, message=(
                f"the header has no '{role}' column; expected columns {_EXPECTED}")))
    items = "field" in columns
    if not wide and not items and not ({"numerator", "denominator", "value"} & set(columns)):
        problems.append(problem("missing-column", file, **where, row=header_line, column=None, message=(
            f"the header has no numerator, denominator or value column; expected columns {_EXPECTED}")))
    if not wide and items and "value" not in columns:
        problems.append(problem("missing-column", file, **where, row=header_line, column="value", message=(
            "a table with an item column (项目/field) needs a value column (数值/value) for the amounts")))
    layout = "wide" if wide else "long-items" if items else "long"
    names = {role: labels[j] for role, j in columns.items()}
    info = Sheet(file, sheet_name, layout, header_line, names, grid.encoding)
    if any(p.severity == "error" for p in problems):
        return Interpreted(info, none.entries, _unread(grid, len(grid.cells) - len(body)), problems, [])
    if body.empty:
        problems.append(problem("empty", file, **where, message="the sheet has no data rows" if sheet_name
                                else "the file has no data rows"))
        return Interpreted(info, none.entries, _unread(grid, len(grid.cells)), problems, [])

    # -- rows -----------------------------------------------------------------------------
    na = pd.Series(pd.NA, index=body.index, dtype="string")
    text = {role: body[columns[role]] if role in columns else na
            for role in ("province", "indicator", "indicator_name", "month", "unit", "field", *ITEMS)}
    codes, uniques = pd.factorize(text["province"])
    repeated = np.array([bool(header_roles(u) & {"province"}) for u in uniques] + [False])[codes]
    if wide:
        blank = body[list(month_columns)].isna().all(axis=1).to_numpy().copy()
    elif items:
        blank = text["value"].isna().to_numpy().copy()
    else:
        blank = np.logical_and.reduce([text[r].isna().to_numpy() for r in ITEMS])
    # A row with something in a column the contract does not know is not blank: it is read
    # (and its missing amounts are reported) rather than skipped.
    unknown = [j for j in range(len(header)) if not roles[j] and j not in month_columns]
    if unknown:
        blank &= body[unknown].isna().all(axis=1).to_numpy()
    blank &= ~repeated
    data = ~blank & ~repeated
    rows = pd.DataFrame({"line": lines, "kind": np.where(repeated, "repeated-header", np.where(blank, "blank", "data"))})
    if repeated.any():
        problems.append(problem("repeated-header", file, **where, row=int(lines[repeated][0]), message=(
            f"a header row repeated inside the data ({_rows(lines[repeated])}); it is skipped")))
    if blank.any():
        problems.append(problem("blank-rows", file, **where, message=(
            f"{int(blank.sum())} row(s) have no numerator, denominator or value and are skipped: "
            f"{_rows(lines[blank])}")))

    # -- entries --------------------------------------------------------------------------
    entry_problems: list[dict] = []
    if not wide:
        frame = pd.DataFrame({c: text[c][data] for c in TEXT_COLUMNS}).reset_index(drop=True)
        frame["line"] = lines[data]
        frame["amount_column"] = pd.Series(pd.NA, index=frame.index, dtype="string")
        frame["wide_without_items"] = False
        if items:
            bits = _resolve_items(text["field"][data])
            amount = frame["value"]
            for name, bit in ITEM_BITS.items():
                frame[name] = amount.where(bits == bit, pd.NA)
            frame["supplies"] = bits
            frame["amount_column"] = names["value"]
            item_text = text["field"][data].reset_index(drop=True)
            for pos in np.flatnonzero(bits == 0):
                entry_problems.append({"index": int(pos), "role": "field", "rule": "unknown-field",
                                       "value": None if pd.isna(item_text[pos]) else str(item_text[pos]),
                                       "message": _UNKNOWN_ITEM})
        else:
            frame["supplies"] = np.int8(NUMERATOR | DENOMINATOR | VALUE)
        row_of_entry = np.flatnonzero(data)
    else:
        bits = _resolve_items(text["field"]) if items else np.full(len(body), VALUE, dtype=np.int8)
        parts = []
        for j, month in month_columns.items():
            take = np.flatnonzero(body[j].notna().to_numpy() & data)
            if not len(take):
                continue
            part = pd.DataFrame({c: text[c].iloc[take].to_numpy() for c in ("province", "indicator",
                                                                           "indicator_name", "unit")})
            part["month"] = str(month)
            part["_amount"] = body[j].iloc[take].to_numpy()
            part["_bits"] = bits[take]
            part["_row"] = take
            part["amount_column"] = labels[j]
            parts.append(part)
        if not parts:
            return Interpreted(info, none.entries, rows, problems, [])
        frame = pd.concat(parts, ignore_index=True).sort_values(["_row"], kind="stable").reset_index(drop=True)
        for name, bit in ITEM_BITS.items():
            frame[name] = frame["_amount"].where(frame["_bits"] == bit, pd.NA)
        frame["supplies"] = frame["_bits"].astype(np.int8)
        frame["line"] = lines[frame["_row"].to_numpy()]
        frame["wide_without_items"] = not items
        row_of_entry = frame["_row"].to_numpy()
        for row in np.unique(row_of_entry[frame["supplies"].to_numpy() == 0]):
            item_text = text["field"].iloc[row]
            first_entry = int(np.flatnonzero(row_of_entry == row)[0])
            entry_problems.append({"index": first_entry, "role": "field", "rule": "unknown-field",
                                   "value": None if pd.isna(item_text) else str(item_text),
                                   "message": _UNKNOWN_ITEM})
        frame = frame.drop(columns=["_amount", "_bits", "_row"])
    for col in TEXT_COLUMNS:
        frame[col] = frame[col].astype("string")
    frame["amount_column"] = frame["amount_column"].astype("string")
    if nameless_data:
        # Values beyond the named columns: in a CSV file usually a row shifted by an
        # unquoted comma (1,234), so the row's other values cannot be trusted either.
        extra = body[nameless_data].notna().any(axis=1).to_numpy()
        for pos in np.flatnonzero(extra[row_of_entry]):
            row = row_of_entry[pos]
            cols = [labels[j] for j in nameless_data if pd.notna(body.at[row, j])]
            entry_problems.append({"index": int(pos), "role": None, "rule": "ragged-row",
                                   "value": ", ".join(str(body.at[row, j]) for j in nameless_data
                                                      if pd.notna(body.at[row, j])),
                                   "message": f"values in column(s) {', '.join(cols)}, which have no header "
                                              "(a number with an unquoted thousands separator shifts the row)"})
    if grid.damaged:
        damaged = sorted(grid.damaged)
        for pos in np.flatnonzero(np.isin(frame["line"].to_numpy(), damaged)):
            entry_problems.append({"index": int(pos), "role": None, "rule": "encoding", "value": None,
                                   "message": _DAMAGED})
        for at in sorted(set(damaged) - set(frame["line"].tolist())):
            problems.append(problem("encoding", file, **where, row=at, message=_DAMAGED))
    return Interpreted(info, frame[[*TEXT_COLUMNS, "line", "supplies", "amount_column", "wide_without_items"]],
                       rows, problems, entry_problems)


def _rows(lines: pd.Series | np.ndarray) -> str:
    """``row 4`` or ``rows 2-40, 45``."""
    return f"row{'s' if len(lines) > 1 else ''} {row_ranges(lines)}"


def row_ranges(lines: pd.Series | np.ndarray, limit: int = 12) -> str:
    """Line numbers as compact ranges: ``2-40, 45, 50-52``."""
    values = sorted(int(v) for v in np.asarray(lines))
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and v == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    text = [f"{a}-{b}" if b > a else f"{a}" for a, b in runs[:limit]]
    return ", ".join(text) + (" ..." if len(runs) > limit else "")
