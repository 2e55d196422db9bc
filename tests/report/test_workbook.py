"""The Excel workbook: one sheet per run table with exactly its rows, README and manifest."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from openpyxl import load_workbook

from analysis.report.workbook import read_table, run_table_files, sheet_name, write_workbook


def _rows(sheet) -> list[tuple]:
    return list(sheet.iter_rows(values_only=True))


@pytest.fixture(scope="module")
def workbook(run_dir, tmp_path_factory):
    findings = pd.DataFrame({"indicator": [9], "sentence_zh": ["句子"], "sentence_en": ["sentence"]})
    path = write_workbook(run_dir, tmp_path_factory.mktemp("wb") / "tables.xlsx", lang="en", findings=findings)
    book = load_workbook(path, read_only=True)
    yield book
    book.close()


def test_every_table_has_a_sheet_with_all_its_rows(workbook, run_dir):
    files = run_table_files(run_dir)
    assert "predictions" in files and files["predictions"].suffix == ".parquet"  # Parquet-only tables count too
    assert workbook.sheetnames == ["README", "findings", *files, "manifest"]
    for stem, path in files.items():
        frame = read_table(path)
        rows = _rows(workbook[stem])
        assert list(rows[0]) == list(frame.columns)
        assert len(rows) - 1 == len(frame), stem


def test_csv_row_counts_match_the_files(workbook, run_dir):
    for path in sorted((run_dir / "tables").glob("*.csv")):
        with open(path, encoding="utf-8") as handle:
            lines = sum(1 for _ in handle)
        assert len(_rows(workbook[path.stem])) == lines  # header + records


def test_values_are_kept_as_written(workbook, run_dir, spec):
    effects = _rows(workbook["effects"])
    header = effects[0]
    provinces = {row[header.index("province")] for row in effects[1:]}
    assert provinces == set(spec["provinces"])  # codes stay text
    failures = _rows(workbook["failures"])
    message = failures[1][failures[0].index("message")]
    assert message == spec["failure"]["message"]  # not escaped, not altered
    national = _rows(workbook["national_effects"])
    k = national[0].index("k")
    assert all(isinstance(row[k], int | float) for row in national[1:])


def test_readme_lists_sheets_with_row_counts(workbook, run_dir):
    rows = _rows(workbook["README"])
    listing = {row[0]: row for row in rows[4:] if row and row[0]}
    for stem, path in run_table_files(run_dir).items():
        assert listing[stem][1] == f"tables/{path.name}"
        assert listing[stem][2] == len(read_table(path))
    assert listing["findings"][2] == 1
    assert "Sheet" in rows[3]


def test_manifest_is_flattened(workbook, spec):
    rows = dict(_rows(workbook["manifest"])[1:])
    assert rows["code_revision.commit"] == spec["manifest"]["code_revision"]["commit"]
    assert rows["inputs[0].sha256"] == spec["manifest"]["inputs"][0]["sha256"]
    assert rows["parameters.washin"] == 3


def test_chinese_readme(run_dir, tmp_path):
    book = load_workbook(write_workbook(run_dir, tmp_path / "zh.xlsx", lang="zh"), read_only=True)
    rows = _rows(book["README"])
    assert rows[0][0].startswith("全面提升医疗质量行动计划")
    assert "工作表" in rows[3]
    assert "findings" not in book.sheetnames
    book.close()


def test_a_run_without_tables_is_an_error(tmp_path):
    (tmp_path / "tables").mkdir()
    with pytest.raises(FileNotFoundError):
        write_workbook(tmp_path, tmp_path / "x.xlsx")


def test_extra_tables_and_long_names(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    pd.DataFrame({"a": [1, 2], "b": [float("nan"), 0.5]}).to_csv(
        copy / "tables" / ("robustness_" + "x" * 40 + ".csv"), index=False
    )
    book = load_workbook(write_workbook(copy, tmp_path / "x.xlsx"), read_only=True)
    long = [name for name in book.sheetnames if name.startswith("robustness_")]
    assert len(long) == 1 and len(long[0]) == 31
    rows = [row + (None,) * (2 - len(row)) for row in _rows(book[long[0]])]  # empty trailing cells are not stored
    assert rows == [("a", "b"), (1, None), (2, 0.5)]
    book.close()


def test_sheet_names_are_unique_and_valid():
    taken = {"effects"}
    assert sheet_name("Effects", taken) == "Effects~2"
    assert sheet_name("a:b/c") == "a_b_c"
