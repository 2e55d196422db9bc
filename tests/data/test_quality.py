"""The checks and their report: rules, analysis checks, row accounting, exclusion, formats."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.data.contract import sha256, validate_panel
from analysis.data.problems import DataValidationError, Problem
from analysis.data.quality import (
    MIN_POINTS_PER_PHASE,
    RECOMMENDED_POINTS_PER_PHASE,
    CheckSettings,
    check_frame,
    check_inputs,
    read_definition_changes,
)
from analysis.data.rules import RULES, rules_table
from analysis.data.schema import panel_schema, schema_failures
from analysis.data.synthetic import generate, write

HEADER = "province,indicator,month,numerator,denominator,value\n"
MONTHS = [str(m) for m in pd.period_range("2021-01", "2024-12", freq="M")]


def series_rows(province="安徽", indicator=32, months=MONTHS, numerators=None, denominator=1000) -> str:
    numerators = numerators or [20 + (k * 7) % 5 for k in range(len(months))]
    return "".join(f"{province},{indicator},{m},{n},{denominator},\n" for m, n in zip(months, numerators))


def write_csv(tmp_path: Path, text: str, name="panel.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the catalogue ---------------------------------------------------------------------------


def test_every_rule_has_a_name_severity_what_it_checks_and_a_fix():
    table = rules_table()
    assert list(table.columns) == ["name", "severity", "checks", "fix"]
    assert table["name"].is_unique and set(table["severity"]) == {"error", "warning"}
    assert table[["checks", "fix"]].map(len).min().min() > 10
    assert {r for r, rule in RULES.items() if rule.severity == "warning"} == {
        "unknown-column", "blank-rows", "repeated-header", "few-points", "implausible-jump", "definition-change-shift"}


def test_phase_thresholds_are_the_its_engines():
    from analysis.its.design import MIN_POINTS_PER_PHASE as engine_min
    from analysis.its.design import RECOMMENDED_POINTS_PER_PHASE as engine_recommended

    assert (MIN_POINTS_PER_PHASE, RECOMMENDED_POINTS_PER_PHASE) == (engine_min, engine_recommended)
    with pytest.raises(ValueError, match="at least 3"):
        CheckSettings(min_points=2)
    with pytest.raises(ValueError, match="recommended_points"):
        CheckSettings(min_points=6, recommended_points=5)


def test_problem_str_is_readable_with_and_without_a_sheet():
    p = Problem("a.csv", 3, "分子", "-1", "negative-count", "numerator must not be negative")
    assert str(p) == "a.csv, row 3, column '分子' (value '-1'): numerator must not be negative [negative-count]"
    q = Problem("a.xlsx", None, None, None, "empty", "the sheet has no data rows", sheet="数据", fix="fill it in")
    assert str(q) == "a.xlsx, sheet '数据': the sheet has no data rows [empty]; fix: fill it in"


# -- analysis checks -------------------------------------------------------------------------


def test_points_per_phase_count_as_the_model_fits_them(tmp_path):
    # 2023-01..2024-06 around a 2023-08 start: 7 before; a 3-month wash-in leaves 8 after.
    months = [str(m) for m in pd.period_range("2023-01", "2024-06", freq="M")]
    path = write_csv(tmp_path, HEADER + series_rows(months=months))
    plan = write_csv(tmp_path, "province,start_month\n安徽,2023-08\n", "plan_dates.csv")
    report = check_inputs(path, plan_dates=plan)
    assert [(p.rule, p.value) for p in report.problems] == [("few-points", "7 before, 8 after")]
    strict = check_inputs(path, plan_dates=plan, settings=CheckSettings(min_points=8))
    assert [(p.rule, p.severity) for p in strict.problems] == [("too-few-points", "error")]
    loose = check_inputs(path, plan_dates=plan, settings=CheckSettings(washin=4))
    assert [(p.rule, p.value) for p in loose.problems] == [("few-points", "7 before, 7 after")]
    series = report.series.iloc[0]
    assert (series["start_month"], series["n_pre"], series["n_post"], series["status"]) == ("2023-08", 7, 8, "warning")


def test_an_unknown_column_of_the_plan_dates_is_reported_not_dropped(tmp_path):
    months = [str(m) for m in pd.period_range("2022-01", "2024-06", freq="M")]
    path = write_csv(tmp_path, HEADER + series_rows(months=months))
    plan = write_csv(tmp_path, "province,start_month,文件号\n安徽,2023-08,皖卫医〔2023〕12号\n", "plan_dates.csv")
    report = check_inputs(path, plan_dates=plan)
    unknown = [p for p in report.problems if p.rule == "unknown-column"]
    assert [(p.column, p.row, p.severity, p.file) for p in unknown] == [("文件号", 1, "warning", str(plan))]
    assert report.usable and str(report.starts["340000"]) == "2023-08"


def test_too_few_points_is_an_error_that_blocks(tmp_path):
    months = [str(m) for m in pd.period_range("2023-04", "2024-06", freq="M")]
    report = check_inputs(write_csv(tmp_path, HEADER + series_rows(months=months)))
    assert [p.rule for p in report.errors] == ["too-few-points"] and not report.usable
    assert "2 month(s) before its plan start (2023-06)" in report.errors[0].message


def test_implausible_jumps_are_warnings_with_the_month(tmp_path):
    numerators = [20 + (k * 7) % 5 for k in range(len(MONTHS))]
    numerators[30] = 250  # 2023-07 ... inside the wash-in: the plan's own change is not flagged
    numerators[20] = 250  # 2022-09: flagged going up and coming back
    report = check_inputs(write_csv(tmp_path, HEADER + series_rows(numerators=numerators)))
    jumps = [(p.month, p.row, p.severity) for p in report.problems if p.rule == "implausible-jump"]
    assert jumps == [("2022-09", 22, "warning"), ("2022-10", 23, "warning")]
    assert report.usable and len(report.panel) == len(MONTHS)
    assert report.series["warning_months"].iat[0] == "2022-09;2022-10"


def test_covid_shock_months_are_not_jumps(tmp_path):
    numerators = [20 + (k * 7) % 5 for k in range(len(MONTHS))]
    numerators[MONTHS.index("2022-12")] = 250
    report = check_inputs(write_csv(tmp_path, HEADER + series_rows(numerators=numerators)))
    assert not [p for p in report.problems if p.rule == "implausible-jump"]


def test_a_shift_at_a_listed_change_of_definition_is_flagged(tmp_path):
    shifted = [20 + (k * 7) % 5 + (30 if m >= "2022-03" else 0) for k, m in enumerate(MONTHS)]
    steady = [20 + (k * 7) % 5 for k in range(len(MONTHS))]
    path = write_csv(tmp_path, HEADER + series_rows(numerators=shifted) + series_rows(indicator=31, numerators=steady)
                     + series_rows(province="北京", numerators=shifted))
    changes = write_csv(tmp_path, "province,indicator,month,note\n安徽,32,2022-03,new definition\n,31,2022-03,\n",
                        "changes.csv")
    report = check_inputs(path, definition_changes=changes)
    shifts = [(p.province, p.indicator, p.month) for p in report.problems if p.rule == "definition-change-shift"]
    assert shifts == [("340000", 32, "2022-03")]  # not 31 (no shift), not Beijing (not listed)
    # A listed change explains the step: it is not also called an implausible jump.
    jumps = {(p.province, p.month) for p in report.problems if p.rule == "implausible-jump"}
    assert ("340000", "2022-03") not in jumps
    frame, problems = read_definition_changes(changes)
    assert problems == [] and frame["province"].isna().tolist() == [False, True]


# -- accounting and exclusion ----------------------------------------------------------------


def test_every_input_row_is_accounted_for(tmp_path):
    text = (HEADER + series_rows() + series_rows(indicator=31)
            + "火星,32,2023-01,3,1000,\n"  # no series to blame: only this row
            + "安徽,31,2023-01,3,1000,\n"  # a duplicate: series 31 is excluded
            + ",,,,,\n")
    report = check_inputs(write_csv(tmp_path, text))
    acc = report.accounting
    n_rows = len(text.splitlines()) - 1
    assert len(acc) == n_rows and acc["row"].tolist() == list(range(2, n_rows + 2))
    counts = acc["status"].value_counts().to_dict()
    assert counts == {"used": 48, "excluded": 50, "skipped": 1}
    excluded = acc[acc["status"] == "excluded"]
    assert set(excluded["rules"]) == {"unknown-province", "duplicate-month"}
    assert excluded.loc[excluded["province"] == "火星", "rules"].tolist() == ["unknown-province"]
    assert report.excluded_series.to_dict(orient="records") == [
        {"province": "340000", "indicator": 31, "rules": "duplicate-month"}]


def test_exclusion_keeps_only_the_good_series_and_never_changes_them(tmp_path):
    good = HEADER + series_rows() + series_rows(province="北京")
    bad = good + series_rows(indicator=31).replace(",2022-05,22,", ",2022-05,-22,")
    clean = check_inputs(write_csv(tmp_path, good, "good.csv"))
    report = check_inputs(write_csv(tmp_path, bad, "bad.csv"))
    with pytest.raises(DataValidationError) as info:
        report.usable_panel()
    assert info.value.report is report
    kept = report.usable_panel(exclude_invalid=True)
    pd.testing.assert_frame_equal(kept.drop(columns="source_file"), clean.panel.drop(columns="source_file"))
    assert report.excluded_series[["province", "indicator"]].values.tolist() == [["340000", 31]]


def test_the_manifest_names_merged_rows_and_their_partners(tmp_path):
    text = ("省份,指标,项目," + ",".join(MONTHS) + "\n安徽,32,分子," + ",".join("3" for _ in MONTHS)
            + "\n安徽,32,分母," + ",".join("1000" for _ in MONTHS) + "\n")
    report = check_inputs(write_csv(tmp_path, text))
    entry = report.manifest_entry(tables=None)
    sheet = entry["sheets"][0]
    assert (sheet["used"], sheet["merged"], sheet["merged_with"]) == ("", "2-3", {"2": "row 3", "3": "row 2"})
    report.write_tables(tmp_path / "tables")
    tables = report.manifest_entry(tables=tmp_path / "tables")["tables"]
    assert tables["tables/row_accounting.csv"] == sha256(tmp_path / "tables" / "row_accounting.csv")


def test_blocking_errors_refuse_even_with_exclusion(tmp_path):
    good = write_csv(tmp_path, HEADER + series_rows(), "good.csv")
    broken = write_csv(tmp_path, "province,month,numerator\n安徽,2023-01,3\n", "broken.csv")
    report = check_inputs([good, broken])
    assert [p.rule for p in report.blocking] == ["missing-column"]
    with pytest.raises(DataValidationError):
        report.usable_panel(exclude_invalid=True)
    unread = report.accounting[report.accounting["file"] == str(broken)]
    assert unread[["row", "status", "rules"]].values.tolist() == [[2, "excluded", "missing-column"]]


def test_an_unreadable_file_is_accounted_for(tmp_path):
    report = check_inputs([tmp_path / "missing.csv"])
    assert [p.rule for p in report.problems] == ["unreadable-file"]
    assert report.accounting[["file", "status", "rules"]].values.tolist() == [
        [str(tmp_path / "missing.csv"), "excluded", "unreadable-file"]]


def test_nothing_to_read_is_an_error(tmp_path):
    report = check_inputs(write_csv(tmp_path, HEADER + "安徽,32,2023-01,,,\n"))
    assert [p.rule for p in report.problems] == ["blank-rows", "empty"]


# -- formats ---------------------------------------------------------------------------------


@pytest.fixture
def bad_report(tmp_path):
    text = HEADER + series_rows() + "火星,32,2023-01,3,1000,\n安徽,32,2024-12,<b>x</b>,1000,\n"
    return check_inputs(write_csv(tmp_path, text))


def test_text_report_lists_every_problem_with_where_and_how_to_fix(bad_report):
    text = bad_report.to_text()
    assert text.startswith("data NOT usable: 4 error(s), 0 warning(s); 50 input row(s)")
    assert "row 50, column 'province' (value '火星')" in text and "fix: " in text


def test_json_report(bad_report):
    body = json.loads(bad_report.to_json())
    assert body["summary"]["usable"] is False and body["summary"]["errors"] == 4
    assert body["summary"]["rows"] == {"total": 50, "used": 0, "merged": 0, "excluded": 50, "skipped": 0}
    first = body["problems"][0]
    assert set(first) >= {"file", "sheet", "row", "column", "value", "rule", "message", "fix", "severity"}
    assert body["excluded_series"] == [{"province": "340000", "indicator": 32,
                                        "rules": "duplicate-month;not-a-number"}]


def test_csv_report(bad_report):
    import io

    frame = pd.read_csv(io.StringIO(bad_report.to_csv()))
    # A duplicated row is still checked itself: every problem at once.
    assert frame[["row", "rule"]].values.tolist() == [[49, "duplicate-month"], [50, "unknown-province"],
                                                      [51, "duplicate-month"], [51, "not-a-number"]]


def test_html_report_escapes_values(bad_report):
    page = bad_report.to_html()
    assert "<b>x</b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page
    assert page.startswith("<!DOCTYPE html>") and "NOT usable" in page


# -- the schema ------------------------------------------------------------------------------


def test_the_canonical_panel_satisfies_its_schema():
    panel = validate_panel(generate(3, provinces=["340000", "540000"], indicators=[9, 26, 32]).panel)
    assert schema_failures(panel) == []
    assert list(panel_schema().columns) == list(panel.columns)


@pytest.mark.parametrize("breakage, check", [
    (lambda p: p.assign(numerator=p["numerator"] + 0.5), "whole_number"),
    (lambda p: p.assign(numerator=p["denominator"] + 1), "numerator_at_most_denominator"),
    (lambda p: pd.concat([p, p.iloc[:1]], ignore_index=True), "unique"),
    (lambda p: p.assign(province="999999"), "isin"),
    (lambda p: p.assign(denominator=0.0), "counts_present"),
])
def test_the_schema_catches_a_broken_panel(breakage, check):
    panel = validate_panel(generate(3, provinces=["340000"], indicators=[32]).panel)
    failures = schema_failures(breakage(panel))
    assert failures and any(check in line for line in failures), failures


def test_a_schema_failure_is_reported_as_a_blocking_problem(tmp_path, monkeypatch):
    import analysis.data.quality as quality

    monkeypatch.setattr(quality, "schema_failures", lambda panel: ["numerator: whole_number fails (1 case(s), e.g. 0.5)"])
    report = check_inputs(write_csv(tmp_path, HEADER + series_rows()))
    assert [p.rule for p in report.blocking] == ["schema"] and not report.usable


# -- files are read only, and quickly --------------------------------------------------------


def test_input_files_are_never_modified(tmp_path):
    path = write_csv(tmp_path, HEADER + series_rows() + "火星,32,2023-01,3,1000,\n")
    digest, mtime = sha256(path), path.stat().st_mtime_ns
    check_inputs(path).to_text()
    assert sha256(path) == digest and path.stat().st_mtime_ns == mtime


def test_the_synthetic_panel_reads_and_checks_in_about_a_second(tmp_path):
    paths = write(generate(2023), tmp_path)
    check_inputs(paths["panel"], plan_dates=paths["plan_dates"])  # warm caches (imports, look-ups)
    start = time.perf_counter()
    report = check_inputs(paths["panel"], plan_dates=paths["plan_dates"])
    elapsed = time.perf_counter() - start
    assert report.usable and len(report.panel) == 83_328 and report.warnings == []
    assert (report.accounting["status"] == "used").all()
    # About 0.7 s on one core; generous for a loaded CI machine.
    assert elapsed < 3.0, elapsed


def test_check_frame_numbers_rows_as_a_file():
    frame = pd.DataFrame({"province": ["安徽", "火星"], "indicator": [32, 32], "month": ["2023-01", "2023-02"],
                          "numerator": [3, 3], "denominator": [1000, 1000]})
    report = check_frame(frame, source="in memory", settings=CheckSettings(analysis_checks=False))
    assert [(p.file, p.row, p.rule) for p in report.errors] == [("in memory", 3, "unknown-province")]
    assert np.isnan(report.panel["value"]).all()
