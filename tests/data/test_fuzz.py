"""Fuzzing the reader: corrupted files are reported, never crash, never change other series.

Three properties, each on a small valid panel (2 provinces x 2 indicators x 24 months):

1. Arbitrary byte corruption (replace, insert or delete a few bytes anywhere) never raises:
   every series the corruption did not touch is either unchanged in the result or
   reported (excluded with a problem naming it, or the whole input refused).
2. Harmless rewritings (names for codes, other month forms, spaces, full-width digits,
   thousands separators, column order, Chinese headers, GBK, row order) are accepted
   and give exactly the original panel.
3. A malformed edit of one row is reported at that row, and excluding the invalid series
   leaves every other series exactly as it was.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analysis.data.quality import CheckSettings, check_inputs
from analysis.data.synthetic import generate
from analysis.registry import get_indicator, get_province

CONTRACT = CheckSettings(analysis_checks=False)
KEYS = ["province", "indicator", "month", "numerator", "denominator", "value"]
COLUMNS = ["province", "indicator", "month", "numerator", "denominator", "value"]


def _base() -> pd.DataFrame:
    panel = generate(8, provinces=["340000", "110000"], indicators=[9, 32], start="2022-01", end="2023-12").panel
    out = panel.astype(object).where(panel.notna(), "")
    out["province"] = out["province"].map(lambda c: get_province(c).short_zh)  # multibyte text to corrupt
    return out.reset_index(drop=True)


BASE = _base()
HEADER = ",".join(COLUMNS)


def _text(frame: pd.DataFrame, header: str = HEADER) -> str:
    return header + "\n" + "".join(",".join(str(v) for v in row) + "\n" for row in frame.itertuples(index=False))


def _check(data: bytes, name: str = "panel.csv"):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        return check_inputs(path, settings=CONTRACT)


REFERENCE = _check(_text(BASE).encode("utf-8")).panel[KEYS]


def _series(frame: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    return {key: g.reset_index(drop=True) for key, g in frame[KEYS].groupby(["province", "indicator"])}


def _line_series(line: str) -> tuple | None:
    parts = line.split(",")
    try:
        return get_province(parts[0]).code, get_indicator(parts[1]).number
    except (KeyError, IndexError):
        return None


# -- 1. arbitrary corruption -----------------------------------------------------------------


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(position=st.floats(0, 1), delete=st.integers(0, 6), insert=st.binary(min_size=0, max_size=6))
def test_random_corruption_never_crashes_and_never_changes_other_series(position, delete, insert):
    original = _text(BASE).encode("utf-8")
    at = int(position * (len(original) - 1))
    corrupted = original[:at] + insert + original[at + delete:]
    report = _check(corrupted)  # must not raise
    old_lines = original.decode("utf-8").split("\n")
    first = original[:at].count(b"\n")  # 0-based line of the corruption in both texts
    last_old = original[:at + delete].count(b"\n")
    last_new = corrupted[:at + len(insert)].count(b"\n")
    touched = {s for s in map(_line_series, old_lines[first:last_old + 1]) if s}
    rows = report.panel
    new_lines = set(range(first + 1, last_new + 2))  # as 1-based rows of the corrupted file
    touched |= set(map(tuple, rows.loc[rows["source_row"].isin(new_lines), ["province", "indicator"]].values.tolist()))
    named = {(p.province, p.indicator) for p in report.problems}
    result = _series(rows)
    if first == 0:
        # The header was hit: every series is touched, and any change must be reported.
        assert result == {} or all(_same(result.get(k), v) for k, v in _series(REFERENCE).items()) \
            or report.problems, "a changed header went unreported"
        return
    for key, expected in _series(REFERENCE).items():
        if key in touched:
            continue
        if key in result:
            pd.testing.assert_frame_equal(result[key], expected)
        else:
            assert key in named or report.blocking, f"series {key} vanished without a problem"


def _same(a: pd.DataFrame | None, b: pd.DataFrame) -> bool:
    return a is not None and a.equals(b)


# -- 2. harmless rewritings ------------------------------------------------------------------

MONTH_FORMS = [lambda p: f"{p.year}-{p.month:02d}", lambda p: f"{p.year}/{p.month}", lambda p: f"{p.year}{p.month:02d}",
               lambda p: f"{p.year}年{p.month}月", lambda p: f"{p.year}-{p.month:02d}-01", lambda p: f"{p.year}.{p.month:02d}"]
HEADERS = {"en": COLUMNS, "zh": ["省份", "指标", "月份", "分子", "分母", "数值"],
           "both": ["省份 / province", "指标 / indicator", "月份 / month", "分子（numerator）", "分母 / denominator",
                    "数值 value"]}
FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")


def _number(text: str, rng: random.Random) -> str:
    if not text:
        return text
    choice = rng.randrange(4)
    if choice == 1:
        return text.translate(FULL_WIDTH)
    if choice == 2 and "." not in text and len(text) > 3:
        return f'"{int(text):,}"'
    if choice == 3:
        return f"  {text} "
    return text


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), header=st.sampled_from(sorted(HEADERS)),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gbk"]), shuffle=st.booleans())
def test_harmless_rewritings_are_accepted_unchanged(seed, header, encoding, shuffle):
    rng = random.Random(seed)
    order = list(range(6))
    rng.shuffle(order)
    lines = [",".join(HEADERS[header][j] for j in order)]
    for row in BASE.itertuples(index=False):
        province = get_province(row.province)
        indicator = get_indicator(row.indicator)
        month = pd.Period(row.month, "M")
        cells = [rng.choice([province.code, province.name_zh, province.short_zh, province.name_en]),
                 rng.choice([str(indicator.number), indicator.name_zh, indicator.name_en]),
                 rng.choice(MONTH_FORMS)(month), _number(str(row.numerator), rng),
                 _number(str(row.denominator), rng), str(row.value)]
        lines.append(",".join(cells[j] for j in order))
    body = lines[1:]
    if shuffle:
        rng.shuffle(body)
    text = "\n".join([lines[0], *body]) + "\n"
    report = _check(text.encode(encoding))
    assert report.usable, report.to_text(limit=5)
    pd.testing.assert_frame_equal(report.panel[KEYS], REFERENCE)


# -- 3. malformed edits ----------------------------------------------------------------------

EDITS = {
    "negative": (3, lambda v: f"-{v or 1}", "negative-count"),
    "fraction": (4, lambda v: f"{v}.5", "non-integer-count"),
    "letters": (3, lambda v: "12a", "not-a-number"),
    "empty count": (4, lambda v: "", "missing-count"),
    "zero denominator": (4, lambda v: "0", "zero-denominator"),
    "month": (2, lambda v: "2023-13", "bad-month"),
    "province": (0, lambda v: "火星", "unknown-province"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(row=st.integers(0, len(BASE) - 1), edit=st.sampled_from(sorted(EDITS) + ["duplicate", "gap"]))
def test_a_malformed_row_is_reported_there_and_excluding_it_keeps_the_rest(row, edit):
    frame = BASE.copy()
    key = (get_province(frame.at[row, "province"]).code, int(frame.at[row, "indicator"]))
    if edit == "duplicate":
        frame = pd.concat([frame.iloc[:row + 1], frame.iloc[row:]], ignore_index=True)
        rule, line = "duplicate-month", row + 3
    elif edit == "gap":
        series = frame.index[(frame["province"] == frame.at[row, "province"])
                             & (frame["indicator"] == frame.at[row, "indicator"])]
        row = series[len(series) // 2]  # a month inside the series
        frame = frame.drop(index=row).reset_index(drop=True)
        rule, line = "missing-months", None
    else:
        column, change, rule = EDITS[edit]
        if column in (3, 4) and get_indicator(frame.at[row, "indicator"]).measure == "mean":
            column, rule = 5, {"negative-count": "value-out-of-range", "non-integer-count": None,
                               "not-a-number": "not-a-number", "missing-count": "missing-value",
                               "zero-denominator": None}[rule]
            if rule is None:
                return  # a fraction or zero is a possible mean response time
        frame.iat[row, column] = change(str(frame.iat[row, column]))
        line = row + 2
    report = _check(_text(frame).encode("utf-8"))
    assert not report.usable
    hits = [p for p in report.errors if p.rule == rule]
    assert hits, report.to_text(limit=5)
    if line is not None:
        assert any(p.row == line for p in hits)
    kept = _series(report.usable_panel(exclude_invalid=True))
    expected = _series(REFERENCE)
    if edit != "province":
        assert key not in kept
    for other, series in expected.items():
        if other != key:
            pd.testing.assert_frame_equal(kept[other], series)
