"""The checks behind :func:`analysis.data.quality.check_inputs`, one stage at a time.

Entries read from every sheet (:mod:`analysis.data.readers`) get their keys resolved
(province, indicator, month), are merged into one observation per province x indicator
x month (duplicates are reported), and the observations are checked: counts, values,
percentages, units and ranges; then each series (missing months, mixed units) and, for
an analysis, the points per phase, implausible jumps and level shifts at listed changes
of definition. Every problem is tagged with its scope, so that a series with an error
can be left out while every other series is kept exactly as it was read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import cache

import numpy as np
import pandas as pd

from analysis.data.problems import Problem
from analysis.data.readers import ITEM_BITS, ITEMS, Interpreted, empty_entries
from analysis.data.rules import problem
from analysis.data.values import MARKS, cell_text, parse_months, parse_numbers, unit_label, unit_scale
from analysis.registry import get_indicator, get_province, quantitative_indicators, timeline

#: Fewest fitted points per phase, and the recommended number: the same values as
#: ``analysis.its.design.MIN_POINTS_PER_PHASE`` and ``RECOMMENDED_POINTS_PER_PHASE`` (a test
#: keeps them equal). They are repeated because the data layer comes before the ITS engine
#: and must not import it (importing it loads statsmodels, over a second, for reading a file).
MIN_POINTS_PER_PHASE = 3
RECOMMENDED_POINTS_PER_PHASE = 8
#: Month ordinal of an entry whose month could not be read.
NO_MONTH = np.iinfo(np.int64).min
#: Robust z-scores: the MAD of a normal sample times this estimates its SD.
_MAD_TO_SD = 1.4826


@dataclass(frozen=True, kw_only=True)
class CheckSettings:
    """Thresholds of the checks (recorded in the manifest).

    Parameters
    ----------
    min_points : int
        Fewest fitted months before the plan start and after the wash-in; fewer is an
        error. Default :data:`~analysis.its.design.MIN_POINTS_PER_PHASE` (3, the Cochrane
        EPOC minimum for an interrupted time series); never below it.
    recommended_points : int
        Fewer fitted months than this in a phase is a warning. Default
        :data:`~analysis.its.design.RECOMMENDED_POINTS_PER_PHASE` (8).
    washin : int
        Months after the start left out of the fit (as the evaluation's setting), so that
        the post-period is counted as the model will see it.
    default_start : Period
        Plan start of provinces without one in the plan-dates table (2023-06).
    jump_z : float
        Robust z-score of a month-to-month change above which it is flagged.
    shift_z : float
        z-score of a level shift at a listed change of definition above which it is flagged.
    shift_window : int
        Months on each side of a listed change compared for a shift.
    analysis_checks : bool
        Whether to run the checks that concern the analysis rather than the data contract
        (points per phase, jumps, shifts at changes of definition).
    """

    min_points: int = MIN_POINTS_PER_PHASE
    recommended_points: int = RECOMMENDED_POINTS_PER_PHASE
    washin: int = 3
    default_start: pd.Period = timeline.IMPLEMENTATION_START
    jump_z: float = 6.0
    shift_z: float = 4.0
    shift_window: int = 6
    analysis_checks: bool = True

    def __post_init__(self) -> None:
        if self.min_points < MIN_POINTS_PER_PHASE:
            raise ValueError(f"min_points must be at least {MIN_POINTS_PER_PHASE} (fewer points per phase is not an "
                             f"interrupted time series), got {self.min_points}")
        if self.recommended_points < self.min_points:
            raise ValueError(f"recommended_points ({self.recommended_points}) must be at least min_points "
                             f"({self.min_points})")
        if self.washin < 0 or self.shift_window < 2 or self.jump_z <= 0 or self.shift_z <= 0:
            raise ValueError("washin must be >= 0, shift_window >= 2, jump_z and shift_z > 0")

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, pd.Period) else v for k, v in asdict(self).items()}


# -- the machinery --------------------------------------------------------------------------


class ProblemLog:
    """Collects problems, each tagged with its scope: a series, a row only, or blocking."""

    def __init__(self) -> None:
        self.items: list[tuple[Problem, str]] = []

    def add(self, p: Problem, scope: str) -> None:
        self.items.append((p, scope))

    def extend(self, ps: Iterable[Problem], scope: str) -> None:
        for p in ps:
            self.add(p, scope)


class Entries:
    """All entries of all sheets, with where each came from and its resolved keys."""

    def __init__(self, parts: list[tuple[int, Interpreted]], sheets: list) -> None:
        frames = []
        for sheet_id, part in parts:
            frame = part.entries.copy()
            frame["sheet_id"] = sheet_id
            frames.append(frame)
        self.frame = pd.concat(frames, ignore_index=True) if frames else empty_entries().assign(
            sheet_id=pd.Series(dtype="int64"))
        self.sheets = sheets  # sheet_id -> Sheet
        n = len(self.frame)
        self.province = np.full(n, None, dtype=object)
        self.indicator = np.full(n, -1, dtype=np.int64)
        self.month = np.full(n, NO_MONTH, dtype=np.int64)
        self.key_ok = np.zeros(n, dtype=bool)
        self.errors: dict[int, set[str]] = defaultdict(set)
        # Where each entry came from, as arrays: its sheet, line and (wide or item tables)
        # the header of the cell holding its amount.
        self.sheet_id = self.frame["sheet_id"].to_numpy().astype(np.int64)
        self.line = self.frame["line"].to_numpy().astype(np.int64)
        amount = self.frame["amount_column"].astype(object).to_numpy()
        self.amount_column = np.where(pd.isna(amount), None, amount)

    def __len__(self) -> int:
        return len(self.frame)

    def locate(self, entry: int, role: str | None) -> dict:
        """File, sheet, row and column header of an entry's cell for ``role``."""
        info = self.sheets[int(self.sheet_id[entry])]
        if role is None:
            column = None
        elif (role in ITEMS and info.layout != "long") or (role == "month" and info.layout == "wide"):
            column = self.amount_column[entry]
        else:
            column = info.columns.get(role, role)
        return {"file": info.file, "sheet": info.sheet, "row": int(self.line[entry]), "column": column}

    def series_of(self, entry: int) -> tuple[str | None, int | None, str | None]:
        ind = int(self.indicator[entry])
        month = self.month[entry]
        return (self.province[entry], ind if ind >= 0 else None,
                str(pd.Period(ordinal=int(month), freq="M")) if month != NO_MONTH else None)


class Checker:
    def __init__(self, settings: CheckSettings) -> None:
        self.settings = settings
        self.problems = ProblemLog()

    # -- emitting ---------------------------------------------------------------------------

    def entry_problem(self, entries: Entries, entry: int, role: str | None, rule: str, message: str,
                      value: str | None = None, fix: str | None = None) -> None:
        where = entries.locate(entry, role)
        province, indicator, month = entries.series_of(entry)
        p = problem(rule, where["file"], sheet=where["sheet"], row=where["row"], column=where["column"], value=value,
                    message=message, fix=fix, province=province, indicator=indicator, month=month)
        if p.severity == "error":
            entries.errors[entry].add(rule)
        self.problems.add(p, "series" if province is not None and indicator is not None else "row")

    def series_problem(self, entries: Entries, members: np.ndarray, province: str, indicator: int, rule: str,
                       message: str, *, column_role: str = "month", value: str | None = None) -> None:
        """A problem of a whole series, located in the file(s) and sheet(s) of its ``members``."""
        infos = [entries.sheets[int(s)] for s in pd.unique(entries.sheet_id[members])]
        files = list(dict.fromkeys(i.file for i in infos))
        names = list(dict.fromkeys(i.sheet for i in infos))
        column = column_role
        if len(infos) == 1:  # name the column as the sheet does (a wide sheet has no month column)
            column = None if column_role == "month" and infos[0].layout == "wide" else infos[0].columns.get(
                column_role, column_role)
        p = problem(rule, ", ".join(files) or "<no file>", sheet=names[0] if len(names) == 1 else None, column=column,
                    value=value, message=message, province=province, indicator=indicator)
        self.problems.add(p, "series")

    # -- keys -------------------------------------------------------------------------------

    def resolve_keys(self, entries: Entries) -> None:
        f = entries.frame
        if not len(f):
            return
        # Look-ups are per distinct value: a panel repeats each name thousands of times.
        codes, uniques = pd.factorize(f["province"])
        found = []
        for u in uniques:
            try:
                found.append((get_province(u).code, None))
            except KeyError as err:
                found.append((None, err.args[0]))
        prov = np.array([c for c, _ in found] + [None], dtype=object)[codes]
        prov_err = np.array([e for _, e in found] + ["the province is empty; give the code or the name"],
                            dtype=object)[codes]
        entries.province = prov
        ind_num, ind_rule, ind_msg = self._indicators(f["indicator"])
        name_num, name_rule, name_msg = self._indicators(f["indicator_name"])
        has_ind = f["indicator"].notna().to_numpy()
        has_name = f["indicator_name"].notna().to_numpy()
        number = np.where(has_ind, ind_num, np.where(has_name, name_num, -1))
        months, reasons = parse_months(f["month"])
        month_ord = np.where(months.isna().to_numpy(), NO_MONTH,
                             pd.PeriodIndex(months).asi8)
        entries.month = month_ord
        status_items = (number >= 0) & (measures(number) == "")
        entries.indicator = np.where(status_items, -1, number)
        ok = np.ones(len(f), dtype=bool)
        text = {c: _Column(f[c]) for c in ("province", "indicator", "indicator_name", "month")}
        for e in np.flatnonzero(prov == None):  # noqa: E711 (object array)
            self.entry_problem(entries, e, "province", "unknown-province", prov_err[e], text["province"][e])
            ok[e] = False
        for e in np.flatnonzero(has_ind & (ind_num < 0)):
            self.entry_problem(entries, e, "indicator", ind_rule[e], ind_msg[e], text["indicator"][e])
            ok[e] = False
        for e in np.flatnonzero(~has_ind & has_name & (name_num < 0)):
            self.entry_problem(entries, e, "indicator_name", name_rule[e], name_msg[e], text["indicator_name"][e])
            ok[e] = False
        for e in np.flatnonzero(~has_ind & ~has_name):
            self.entry_problem(entries, e, "indicator", "unknown-indicator",
                               "the indicator is empty; give the annex number", None)
            ok[e] = False
        mismatch = has_ind & has_name & (ind_num >= 0) & (name_num >= 0) & (ind_num != name_num)
        for e in np.flatnonzero(mismatch):
            self.entry_problem(entries, e, "indicator_name", "indicator-name-mismatch",
                               f"the name is indicator {name_num[e]} ({get_indicator(int(name_num[e])).name_zh}) but "
                               f"the number is {ind_num[e]} ({get_indicator(int(ind_num[e])).name_zh})",
                               text["indicator_name"][e])
            ok[e] = False
        for e in np.flatnonzero(status_items):
            ind = get_indicator(int(number[e]))
            self.entry_problem(entries, e, "indicator", "status-indicator",
                               f"indicator {ind.number} ({ind.name_en}) is a status item ('/' in the annex), "
                               "not a monthly series; remove these rows", text["indicator"][e])
            ok[e] = False
        bad_month = month_ord == NO_MONTH
        for e in np.flatnonzero(bad_month):
            reason = cell_text(reasons.iat[e])
            message = ("the month is empty; write YYYY-MM" if reason is None
                       else f"month must be written YYYY-MM (e.g. 2023-06): {reason}")
            self.entry_problem(entries, e, "month", "bad-month", message, text["month"][e])
            ok[e] = False
        # A table with months as columns and no item column gives values only: proportions
        # and rates need their counts.
        wide = f["wide_without_items"].to_numpy(dtype=bool)
        measure = measures(entries.indicator)
        counted_wide = wide & np.isin(measure, ["proportion", "rate"])
        if counted_wide.any():
            seen = set()
            for e in np.flatnonzero(counted_wide):
                key = (int(entries.sheet_id[e]), int(entries.line[e]))
                ok[e] = False
                entries.errors[e].add("wide-needs-field")
                if key in seen:
                    continue
                seen.add(key)
                ind = get_indicator(int(entries.indicator[e]))
                self.entry_problem(entries, e, "indicator", "wide-needs-field",
                                   f"indicator {ind.number} is a {ind.measure} and needs its numerator and denominator:"
                                   " give them on two rows marked in an item column (项目/field)",
                                   text["indicator"][e])
        ok &= f["supplies"].to_numpy() > 0
        entries.key_ok = ok & (prov != None) & (entries.indicator >= 0) & ~bad_month  # noqa: E711

    @staticmethod
    def _indicators(texts: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        codes, uniques = pd.factorize(texts)
        nums, rules, msgs = [], [], []
        for u in uniques:
            try:
                nums.append(get_indicator(u).number)
                rules.append(None)
                msgs.append(None)
            except KeyError as err:
                nums.append(-1)
                message = err.args[0]
                rules.append("ambiguous-indicator" if message.startswith("ambiguous") else "unknown-indicator")
                msgs.append(message)
        return (np.array(nums + [-1], dtype=np.int64)[codes], np.array(rules + [None], dtype=object)[codes],
                np.array(msgs + [None], dtype=object)[codes])


class _Column:
    """Cell text by position, converted only where a problem needs it."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series

    def __getitem__(self, position) -> str | None:
        return cell_text(self.series.iat[int(position)])


@cache
def by_number(attribute: str, missing) -> np.ndarray:
    """An attribute of the quantitative indicators as an array indexed by annex number."""
    lookup = {i.number: getattr(i, attribute) for i in quantitative_indicators()}
    return np.array([lookup.get(n, missing) for n in range(41)], dtype=object if isinstance(missing, str) else float)


def measures(numbers: np.ndarray) -> np.ndarray:
    """Measure of each annex number ('' for status items and unknown numbers)."""
    numbers = np.asarray(numbers, dtype=np.int64)
    return np.where(numbers >= 0, by_number("measure", "")[np.clip(numbers, 0, 40)], "")


@dataclass
class Observations:
    """One row per province x indicator x month: the entry supplying each item (-1: none)."""

    province: np.ndarray
    indicator: np.ndarray
    month: np.ndarray
    source: dict[str, np.ndarray]
    unit_source: np.ndarray
    anchor: np.ndarray  # the entry that locates the observation (its first)
    merged: np.ndarray  # built from more than one entry

    def __len__(self) -> int:
        return len(self.province)


def month_text(ordinal: int) -> str:
    return str(pd.Period(ordinal=int(ordinal), freq="M"))


def row_labels(entries: Entries, members: Sequence[int]) -> str:
    """Rows of ``members`` as people find them: ``rows 4, 5`` in one sheet, else each with
    its file and sheet."""
    sheets = {int(entries.sheet_id[e]) for e in members}
    if len(sheets) == 1:
        lines = [str(int(entries.line[e])) for e in members]
        return f"row{'s' if len(lines) > 1 else ''} {', '.join(lines)}"
    labels = []
    for e in members:
        info = entries.sheets[int(entries.sheet_id[e])]
        where = info.file + (f" [{info.sheet}]" if info.sheet else "")
        labels.append(f"{where} row {int(entries.line[e])}")
    return ", ".join(labels)


def merge_entries(entries: Entries, checker: Checker) -> Observations:
    """Merge entries into observations; report duplicates (a key given twice for one item)."""
    idx = np.flatnonzero(entries.key_ok)
    supplies = entries.frame["supplies"].to_numpy()[idx].astype(np.int64)
    keys = pd.DataFrame({"p": entries.province[idx], "i": entries.indicator[idx], "m": entries.month[idx],
                         "e": idx, "s": supplies})
    dup = keys.duplicated(["p", "i", "m"], keep=False).to_numpy()
    single = keys[~dup]
    parts = {"province": [single["p"].to_numpy()], "indicator": [single["i"].to_numpy()],
             "month": [single["m"].to_numpy()], "anchor": [single["e"].to_numpy()],
             "merged": [np.zeros(len(single), dtype=bool)]}
    sources = {item: [np.where(single["s"].to_numpy() & bit, single["e"].to_numpy(), -1)]
               for item, bit in ITEM_BITS.items()}
    if dup.any():
        multi = keys[dup].sort_values(["p", "i", "m", "e"], kind="stable")
        group = multi.groupby(["p", "i", "m"], sort=False).ngroup().to_numpy()
        overlap = np.zeros(group.max() + 1, dtype=bool)
        for bit in ITEM_BITS.values():
            has = (multi["s"].to_numpy() & bit) > 0
            overlap |= np.bincount(group, weights=has, minlength=len(overlap)) > 1
        clash = overlap[group]
        if clash.any():
            frame = entries.frame
            for _, members in multi[clash].groupby(["p", "i", "m"], sort=False)["e"]:
                members = members.to_numpy()
                prov, ind, mon = entries.province[members[0]], int(entries.indicator[members[0]]), \
                    month_text(entries.month[members[0]])
                same = len(frame.iloc[members][list(ITEMS)].astype(object).fillna("").drop_duplicates()) == 1
                message = (f"province {prov} indicator {ind} has {len(members)} rows for {mon} "
                           f"({row_labels(entries, members)}); keep one"
                           + (" (they give the same numbers)" if same else ""))
                for e in members:
                    checker.entry_problem(entries, int(e), "month", "duplicate-month", message, mon)
            # The clashing rows are still checked one by one (every problem is reported at
            # once); their series is excluded, so none of them reaches the panel.
            rows = multi[clash]
            parts["province"].append(rows["p"].to_numpy(dtype=object))
            parts["indicator"].append(rows["i"].to_numpy())
            parts["month"].append(rows["m"].to_numpy())
            parts["anchor"].append(rows["e"].to_numpy())
            parts["merged"].append(np.zeros(len(rows), dtype=bool))
            for item, bit in ITEM_BITS.items():
                sources[item].append(np.where(rows["s"].to_numpy() & bit, rows["e"].to_numpy(), -1))
        ok = multi[~clash]
        if len(ok):
            g = ok.groupby(["p", "i", "m"], sort=False)
            first = g.first()
            order = g.ngroup().to_numpy()
            parts["province"].append(first.index.get_level_values(0).to_numpy(dtype=object))
            parts["indicator"].append(first.index.get_level_values(1).to_numpy())
            parts["month"].append(first.index.get_level_values(2).to_numpy())
            parts["anchor"].append(first["e"].to_numpy())
            parts["merged"].append(np.ones(len(first), dtype=bool))
            for item, bit in ITEM_BITS.items():
                src = np.full(len(first), -1, dtype=np.int64)
                has = (ok["s"].to_numpy() & bit) > 0
                src[order[has]] = ok["e"].to_numpy()[has]
                sources[item].append(src)
    source = {item: np.concatenate(v).astype(np.int64) for item, v in sources.items()}
    unit_source = np.where(source["value"] >= 0, source["value"],
                           np.where(source["numerator"] >= 0, source["numerator"], source["denominator"]))
    return Observations(
        province=np.concatenate(parts["province"]).astype(object),
        indicator=np.concatenate(parts["indicator"]).astype(np.int64),
        month=np.concatenate(parts["month"]).astype(np.int64),
        source=source, unit_source=unit_source,
        anchor=np.concatenate(parts["anchor"]).astype(np.int64),
        merged=np.concatenate(parts["merged"]),
    )


def _item_text(entries: Entries, sources: np.ndarray, column: str) -> pd.Series:
    """The text of ``column`` in the entry each observation takes it from (NA where none)."""
    taken = entries.frame[column].iloc[np.maximum(sources, 0)].reset_index(drop=True)
    return taken.mask(pd.Series(sources < 0)) if (sources < 0).any() else taken


@dataclass
class Values:
    numerator: np.ndarray
    denominator: np.ndarray
    value: np.ndarray
    unit_scale: np.ndarray  # multiplier of the unit a given value is written in (NaN: no value)
    unit_label: np.ndarray
    bad: np.ndarray  # observation has a value error


def check_values(entries: Entries, obs: Observations, checker: Checker) -> Values:
    """Counts, values, percentages, units and ranges of every observation."""
    n = len(obs)
    measure = measures(obs.indicator)
    counted = np.isin(measure, ["proportion", "rate"])
    proportion = measure == "proportion"
    mean = measure == "mean"
    src = obs.source
    texts = {item: _item_text(entries, src[item], item) for item in ITEMS}
    unit_text = _item_text(entries, obs.unit_source, "unit")
    num = parse_numbers(texts["numerator"])
    den = parse_numbers(texts["denominator"])
    val = parse_numbers(texts["value"], decimals=True)
    bad = np.zeros(n, dtype=bool)
    raw = {item: _Column(texts[item]) for item in ITEMS}

    def emit(mask: np.ndarray, item: str, rule: str, message, *, role: str | None = None) -> None:
        for o in np.flatnonzero(mask):
            e = int(src[item][o]) if src[item][o] >= 0 else int(obs.anchor[o])
            text = message(o) if callable(message) else message
            checker.entry_problem(entries, e, role or item, rule, text, cell_text(raw[item][o]))
            bad[o] = True

    indicators = {i.number: i for i in quantitative_indicators()}
    present = {"numerator": texts["numerator"].notna().to_numpy(), "denominator": texts["denominator"].notna().to_numpy(),
               "value": texts["value"].notna().to_numpy()}
    valid = {"numerator": np.isfinite(num.value.to_numpy()), "denominator": np.isfinite(den.value.to_numpy()),
             "value": np.isfinite(val.value.to_numpy())}
    marks = {"numerator": num.mark.notna().to_numpy(), "denominator": den.mark.notna().to_numpy(),
             "value": val.mark.notna().to_numpy()}
    parsed = {"numerator": num, "denominator": den, "value": val}

    def hint(item: str, o: int) -> str:
        reason = parsed[item].reason.iat[o]
        return f" ({reason.split(' (', 1)[1]}" if isinstance(reason, str) and " (" in reason else ""

    # -- counts ---------------------------------------------------------------------------
    has_value = present["value"] & valid["value"]
    for item in ("numerator", "denominator"):
        needs = counted | (mean & present[item] & (item == "denominator"))
        text_ok = needs & present[item]
        missing = needs & ~present[item]
        # A value stands in for the numerator (with the denominator); without a denominator
        # it is reported once, as percent-needs-denominator.
        missing &= ~(has_value & counted & ~present["numerator"])
        emit(missing, item, "missing-count", f"{item} is empty; give the count (0 if there were none)")
        emit(text_ok & ~valid[item], item, "not-a-number", lambda o, item=item: f"{item} must be a whole number"
             + hint(item, o))
        emit(text_ok & valid[item] & marks[item], item, "percent-not-allowed",
             f"{item} is a count; a percentage is not")
        number = parsed[item].value.to_numpy()
        usable = text_ok & valid[item] & ~marks[item]
        emit(usable & (number < 0), item, "negative-count", f"{item} must not be negative")
        emit(usable & (number >= 0) & (number != np.floor(number)), item, "non-integer-count",
             f"{item} must be a whole number (a count), not a fraction")
    numerator = np.where(present["numerator"] & valid["numerator"] & ~marks["numerator"], num.value.to_numpy(), np.nan)
    denominator = np.where(present["denominator"] & valid["denominator"] & ~marks["denominator"],
                           den.value.to_numpy(), np.nan)
    numerator_ok = np.isfinite(numerator) & (numerator >= 0) & (numerator == np.floor(numerator))
    denominator_ok = np.isfinite(denominator) & (denominator >= 0) & (denominator == np.floor(denominator))

    # -- values ---------------------------------------------------------------------------
    emit(mean & ~present["value"], "value", "missing-value", "a mean indicator needs a numeric value")
    emit(present["value"] & ~valid["value"], "value", "not-a-number",
         lambda o: "value must be a number" + hint("value", o))
    value = val.value.to_numpy()
    mark = val.mark.astype(object).to_numpy()
    emit(has_value & marks["value"] & ~proportion, "value", "percent-not-allowed",
         lambda o: f"indicator {obs.indicator[o]} is a {measure[o]} in {indicators[obs.indicator[o]].unit}; "
                   "a percent or per-mille mark is allowed only for proportions")
    units = _Column(unit_text)
    scale_of_value = np.full(n, np.nan)
    label = np.full(n, None, dtype=object)
    for o in np.flatnonzero(has_value):
        ind = indicators[obs.indicator[o]]
        if isinstance(mark[o], str):
            scale_of_value[o], label[o] = MARKS[mark[o]], mark[o]
        elif units[o] is not None:
            found = unit_scale(units[o], ind)
            if found is None:
                e = int(obs.unit_source[o])
                checker.entry_problem(entries, e, "unit", "unit-mismatch",
                                      f"indicator {ind.number} ({ind.name_en}) is measured in {ind.unit}, not "
                                      f"{units[o]}", units[o])
                bad[o] = True
                continue
            scale_of_value[o], label[o] = found, unit_label(units[o])
        else:
            scale_of_value[o], label[o] = ind.scale, ind.unit
    ok_value = has_value & np.isfinite(scale_of_value) & ~(marks["value"] & ~proportion)
    share = value / np.where(np.isfinite(scale_of_value), scale_of_value, np.nan)
    out_of_range = np.zeros(n, dtype=bool)
    out_of_range |= ok_value & proportion & ((share < 0) | (share > 1))
    out_of_range |= ok_value & (measure == "rate") & (value < 0)
    for o in np.flatnonzero(ok_value & mean):
        low, inclusive = _MEAN_RANGE.get(indicators[obs.indicator[o]].unit, (0.0, True))
        out_of_range[o] = value[o] < low or (value[o] == low and not inclusive)
    emit(out_of_range, "value", "value-out-of-range",
         lambda o: _range_message(indicators[obs.indicator[o]], label[o]))
    # A value with its denominator stands for a count: recover it exactly or not at all.
    derive = counted & ~present["numerator"] & ok_value & ~out_of_range
    emit(derive & ~present["denominator"], "value", "percent-needs-denominator",
         "the value alone does not give the number of cases; give the denominator (or numerator and denominator)")
    derive &= denominator_ok
    half = 0.5 * 10.0 ** -val.decimals.to_numpy()
    low = (value - half) / scale_of_value * denominator
    high = (value + half) / scale_of_value * denominator
    k_low, k_high = np.ceil(low - 1e-9), np.floor(high + 1e-9)
    k_low = np.maximum(k_low, 0)
    exact = derive & (k_low == k_high)
    numerator = np.where(exact, k_low, numerator)
    numerator_ok = numerator_ok | exact
    emit(derive & (k_low > k_high), "value", "value-not-a-count",
         lambda o: f"{_fmt(value[o])}{_unit_suffix(label[o])} of {int(denominator[o])} is "
                   f"{value[o] / scale_of_value[o] * denominator[o]:.4g}, not a whole number of cases")
    emit(derive & (k_low < k_high), "value", "value-not-a-count",
         lambda o: f"{_fmt(value[o])}{_unit_suffix(label[o])} of {int(denominator[o])} could be any of "
                   f"{int(k_low[o])}-{int(k_high[o])} cases; give the numerator, or the value with more decimals")
    check = counted & present["numerator"] & numerator_ok & denominator_ok & ok_value & ~out_of_range & (denominator > 0)
    implied = numerator / np.where(denominator > 0, denominator, np.nan) * scale_of_value
    disagree = check & (np.abs(implied - value) > half * (1 + 1e-9) + 1e-12)
    emit(disagree, "value", "value-disagrees-with-counts",
         lambda o: f"the counts give {implied[o]:.{int(val.decimals.iat[o]) + 1}f}{_unit_suffix(label[o])} "
                   f"({int(numerator[o])} of {int(denominator[o])}), not {raw['value'][o]}")

    # -- counts against each other ----------------------------------------------------------
    both = counted & numerator_ok & denominator_ok
    zero = both & (denominator == 0)
    emit(zero & (numerator > 0), "denominator", "zero-denominator", "the denominator is 0 but the numerator is not")
    emit(zero & (numerator == 0), "denominator", "zero-denominator",
         "the denominator is 0: a month with no cases cannot be modelled; leave the month out of the series only by "
         "excluding it explicitly in the analysis")
    emit(mean & denominator_ok & (denominator == 0) & ok_value, "denominator", "zero-denominator",
         "the denominator (number of cases) is 0, so there is no mean to give")
    over = both & proportion & (numerator > denominator) & (denominator > 0)
    emit(over, "numerator", "numerator-exceeds-denominator",
         lambda o: f"the numerator is larger than the denominator ({cell_text(raw['denominator'][o]) or _fmt(denominator[o])})")
    return Values(numerator=np.where(counted, numerator, np.nan),
                   denominator=np.where(denominator_ok, denominator, np.nan),
                   value=np.where(mean & ok_value, value, np.nan),
                   unit_scale=np.where(ok_value, scale_of_value, np.nan), unit_label=label, bad=bad)


#: Lowest possible value of a mean indicator by unit, and whether it is possible itself.
_MEAN_RANGE = {"minutes": (0.0, True), "months": (0.0, True), "index": (0.0, False)}


def _range_message(ind, label) -> str:
    if ind.measure == "proportion":
        return f"a proportion must lie between 0 and {100 if label == '%' else 1000}{label or ind.unit}"
    if ind.measure == "rate":
        return "a rate cannot be negative"
    low, inclusive = _MEAN_RANGE.get(ind.unit, (0.0, True))
    unit = "" if ind.unit == "index" else f" {ind.unit}"
    return f"{ind.name_en} must be {'at least' if inclusive else 'above'} {low:g}{unit}"


def _fmt(x: float) -> str:
    return f"{x:.10g}"


def _unit_suffix(label) -> str:
    if label in ("%", "‰"):
        return label
    return f" {label}" if label else ""


# -- series ----------------------------------------------------------------------------------


def present_months(entries: Entries) -> pd.DataFrame:
    """Distinct months per series among entries with valid keys (with one entry per month)."""
    ok = np.flatnonzero(entries.key_ok)
    frame = pd.DataFrame({"province": entries.province[ok], "indicator": entries.indicator[ok],
                          "month": entries.month[ok], "entry": ok})
    return frame.drop_duplicates(["province", "indicator", "month"]).sort_values(
        ["province", "indicator", "month"], kind="stable").reset_index(drop=True)


def check_series(entries: Entries, obs: Observations, values: Values, months: pd.DataFrame,
                   checker: Checker, starts: dict[str, pd.Period]) -> None:
    settings = checker.settings

    def members_of(key: tuple) -> np.ndarray:
        return months.loc[(months["province"] == key[0]) & (months["indicator"] == key[1]), "entry"].to_numpy()

    if len(months):
        spans = months.groupby(["province", "indicator"], sort=False)["month"].agg(["min", "max", "count"])
        for (prov, ind), span in spans[spans["max"] - spans["min"] + 1 != spans["count"]].iterrows():
            have = set(months.loc[(months["province"] == prov) & (months["indicator"] == ind), "month"])
            gaps = [month_text(o) for o in range(int(span["min"]), int(span["max"])) if o not in have]
            checker.series_problem(entries, members_of((prov, ind)), prov, int(ind), "missing-months",
                                   f"province {prov} indicator {ind} has no rows for {', '.join(gaps[:12])}"
                                   f"{' ...' if len(gaps) > 12 else ''}; a series must have every month from its "
                                   "first to its last", value=", ".join(gaps[:12]) + (" ..." if len(gaps) > 12 else ""))
    # Mixed units: one series, values written in units of different scale.
    given = np.isfinite(values.unit_scale)
    if given.any():
        frame = pd.DataFrame({"p": obs.province[given], "i": obs.indicator[given], "scale": values.unit_scale[given],
                              "label": values.unit_label[given], "entry": obs.source["value"][given]})
        counts = frame.groupby(["p", "i"])["scale"].nunique()
        for (prov, ind) in counts[counts > 1].index:
            part = frame[(frame["p"] == prov) & (frame["i"] == ind)]
            pieces = [f"{g['label'].iat[0]} ({row_labels(entries, g['entry'].tolist()[:12])}"
                      f"{' ...' if len(g) > 12 else ''})" for _, g in part.groupby("scale", sort=True)]
            checker.series_problem(entries, part["entry"].to_numpy(), prov, int(ind), "mixed-units",
                                   f"province {prov} indicator {ind} mixes units: {' and '.join(pieces)}",
                                   column_role="value")
    if not settings.analysis_checks or not len(months):
        return
    # Points per phase, counted as the model fits them (the wash-in is left out).
    start = months["province"].map({p: s.ordinal for p, s in starts.items()}).fillna(
        settings.default_start.ordinal).to_numpy().astype(np.int64)
    pre = months["month"].to_numpy() < start
    post = months["month"].to_numpy() >= start + settings.washin
    phases = pd.DataFrame({"province": months["province"], "indicator": months["indicator"], "pre": pre,
                           "post": post}).groupby(["province", "indicator"], sort=False)[["pre", "post"]].sum()
    short = phases[phases.min(axis=1) < settings.recommended_points]
    for (prov, ind), row in short.iterrows():
        n_pre, n_post = int(row["pre"]), int(row["post"])
        low = min(n_pre, n_post)
        begin = starts.get(prov, settings.default_start)
        counts = (f"province {prov} indicator {ind} has {n_pre} month(s) before its plan start ({begin}) and "
                  f"{n_post} from the end of the {settings.washin}-month wash-in ({begin + settings.washin}) on")
        if low < settings.min_points:
            checker.series_problem(entries, members_of((prov, ind)), prov, int(ind), "too-few-points",
                                   f"{counts}: an interrupted time series needs at least {settings.min_points} in "
                                   "each phase", value=f"{n_pre} before, {n_post} after")
        else:
            checker.series_problem(entries, members_of((prov, ind)), prov, int(ind), "few-points",
                                   f"{counts}: fewer than the recommended {settings.recommended_points} in a phase; "
                                   "trend and slope-change estimates are unreliable",
                                   value=f"{n_pre} before, {n_post} after")


def display_values(obs: Observations, values: Values, keep: np.ndarray) -> pd.DataFrame:
    """Monthly values in display units for the observations in ``keep``, sorted by series."""
    scale = by_number("scale", np.nan)[np.clip(obs.indicator, 0, 40)]
    measure = measures(obs.indicator)
    with np.errstate(divide="ignore", invalid="ignore"):
        y = np.where(np.isfinite(values.value), values.value, values.numerator / values.denominator * scale)
        # The model's scale (logit, log, identity), where the noise of a series is about
        # constant over time; a half count keeps months with no events finite.
        num, den = values.numerator + 0.5, values.denominator
        eta = np.where(measure == "proportion", np.log(num / (den + 1 - num)),
                       np.where(measure == "rate", np.log(num / den), y))
        # Sampling variance of eta in the month (delta method), so that a change no larger
        # than the counts' own noise is never called implausible.
        sampling = np.where(measure == "proportion", 1 / num + 1 / (den + 1 - num),
                            np.where(measure == "rate", 1 / num, 0.0))
    frame = pd.DataFrame({"province": obs.province, "indicator": obs.indicator, "month": obs.month, "y": y, "eta": eta,
                          "sampling": sampling,
                          "entry": obs.anchor, "numerator_entry": obs.source["numerator"],
                          "value_entry": obs.source["value"]})[keep]
    return frame.sort_values(["province", "indicator", "month"], kind="stable").reset_index(drop=True)


def _robust_scale(d: pd.Series) -> float:
    d = d.dropna().to_numpy()
    if len(d) < 4:
        return np.nan
    centre = np.median(d)
    mad = _MAD_TO_SD * np.median(np.abs(d - centre))
    if mad > 0:
        return mad
    # More than half the changes are equal (a series of small counts): the mean absolute
    # deviation, scaled to an SD for normal data, still measures the rest.
    mean_abs = 1.2533 * np.mean(np.abs(d - centre))
    return mean_abs if mean_abs > 0 else np.nan


def check_jumps(entries: Entries, display: pd.DataFrame, checker: Checker, starts: dict[str, pd.Period],
                 changes: pd.DataFrame | None = None) -> None:
    """Month-to-month changes far from the series' typical change (robust z-score, on the
    model's scale), leaving out the changes that are explained: into and out of the
    nationwide shock months, from the plan start to the end of the wash-in (the plan's own
    effect), and at listed changes of definition (checked by :func:`check_shifts`)."""
    settings = checker.settings
    if display.empty:
        return
    keys = [display["province"], display["indicator"]]
    d = display["eta"].groupby(keys, sort=False).diff()
    step = display["month"].groupby(keys, sort=False).diff()
    month = display["month"].to_numpy()
    shocks = np.array([m.ordinal for m in timeline.COVID_SHOCK_MONTHS])
    start = display["province"].map({p: s.ordinal for p, s in starts.items()}).fillna(
        settings.default_start.ordinal).to_numpy().astype(np.int64)
    explained = np.isin(month, shocks) | np.isin(month - 1, shocks)
    explained |= (month >= start) & (month <= start + settings.washin)
    for change in (changes.itertuples() if changes is not None else ()):
        explained |= ((display["month"] == change.month.ordinal)
                      & (display["province"] == change.province if isinstance(change.province, str) else True)
                      & (display["indicator"] == change.indicator if not pd.isna(change.indicator) else True)
                      ).to_numpy()
    d = d.where((step == 1).to_numpy() & ~explained)
    grouped = d.groupby(keys, sort=False)
    centre = grouped.transform("median")
    deviation = (d - centre).abs()
    # The larger of two robust scales: the MAD collapses when more than half the changes
    # are (nearly) equal, as with small counts; the interquartile range less often.
    mad = _MAD_TO_SD * deviation.groupby(keys, sort=False).transform("median")
    iqr = (grouped.transform("quantile", 0.75) - grouped.transform("quantile", 0.25)) / 1.349
    count = grouped.transform("count")
    scale = np.maximum(mad, iqr).where(count >= 6)
    # ... and never below the sampling noise of the two months' counts.
    sampling = display["sampling"]
    floor = np.sqrt(sampling + sampling.groupby(keys, sort=False).shift())
    scale = np.maximum(scale, floor.fillna(0)).where(scale.notna())
    z = (d - centre) / scale.where(scale > 0)
    flagged = np.flatnonzero((z.abs() >= settings.jump_z).to_numpy())
    indicators = {i.number: i for i in quantitative_indicators()}
    for pos in flagged:
        row, prev = display.iloc[pos], display.iloc[pos - 1]
        ind = indicators[int(row["indicator"])]
        entry = int(row["value_entry"] if row["value_entry"] >= 0 else row["numerator_entry"]
                    if row["numerator_entry"] >= 0 else row["entry"])
        suffix = _unit_suffix(ind.unit)
        checker.entry_problem(entries, entry, None, "implausible-jump",
                              f"{ind.name_en} changes from {prev['y']:.4g}{suffix} in {month_text(prev['month'])} "
                              f"to {row['y']:.4g}{suffix} in {month_text(row['month'])} (robust z-score of the change "
                              f"{z.iat[pos]:.1f}; flagged from {settings.jump_z:g})", f"{row['y']:.4g}{suffix}")


def _theil_sen(months: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pairwise slopes (y_j - y_i) / (t_j - t_i), i < j, of one segment."""
    i, j = np.triu_indices(len(y), k=1)
    return (y[j] - y[i]) / (months[j] - months[i])


def check_shifts(entries: Entries, display: pd.DataFrame, changes: pd.DataFrame | None, checker: Checker) -> None:
    """Level shifts at listed changes of definition.

    The shift is the mean of the months from the change minus the mean of as many months
    before it, less the trend over that distance; the trend is the Theil-Sen slope of the
    pairs of months on the same side of the change (so the shift itself does not bend it),
    and the noise is estimated robustly from the month-to-month changes other than the one
    at the change. Both are robust to a few wrong months.
    """
    if changes is None or changes.empty or display.empty:
        return
    settings = checker.settings
    indicators = {i.number: i for i in quantitative_indicators()}
    for (prov, ind), series in display.groupby(["province", "indicator"], sort=False):
        listed = changes[(changes["province"].isna() | (changes["province"] == prov))
                         & (changes["indicator"].isna() | (changes["indicator"] == ind))]
        if listed.empty:
            continue
        months = series["month"].to_numpy()
        y = series["y"].to_numpy()
        d = np.diff(y)
        consecutive = np.diff(months) == 1
        for change in listed.itertuples():
            at = int(np.searchsorted(months, change.month.ordinal))
            k = min(settings.shift_window, at, len(months) - at)
            if k < 2 or not consecutive[at - k: at + k - 1].all():
                continue
            usable = np.flatnonzero(consecutive)
            sd_change = _robust_scale(pd.Series(d[usable[usable != at - 1]]))
            if not np.isfinite(sd_change):
                continue
            slope = float(np.median(np.concatenate([_theil_sen(months[:at], y[:at]),
                                                    _theil_sen(months[at:], y[at:])])))
            shift = y[at: at + k].mean() - y[at - k: at].mean() - slope * k
            # Month-to-month changes have twice the variance of the level noise.
            z = shift / (sd_change / np.sqrt(2) * np.sqrt(2 / k))
            if abs(z) < settings.shift_z:
                continue
            unit = indicators[int(ind)].unit
            note = f": {change.note}" if isinstance(change.note, str) and change.note else ""
            checker.entry_problem(entries, int(series["entry"].iat[at]), "month", "definition-change-shift",
                                  f"the series shifts by {shift:+.4g}{_unit_suffix(unit)} at {change.month} (z = "
                                  f"{z:.1f}), a month listed as a change of definition ({change.source}{note})",
                                  str(change.month))
