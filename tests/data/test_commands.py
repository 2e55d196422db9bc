"""The data commands: ``validate``, ``template``, and ``run`` with several inputs or exclusion."""

from __future__ import annotations

import io
import json

import openpyxl
import pandas as pd
import pytest

from analysis.cli import main
from analysis.data.contract import sha256
from analysis.data.synthetic import generate, write


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    folder = tmp_path_factory.mktemp("synthetic")
    write(generate(3, provinces=["340000", "110000"], indicators=[11, 32]), folder)
    return folder


@pytest.fixture
def broken(tmp_path, synthetic):
    """The synthetic panel with one bad count in Beijing's indicator 11."""
    panel = pd.read_csv(synthetic / "panel.csv", dtype=str, keep_default_na=False)
    bad = panel.index[(panel["province"] == "110000") & (panel["indicator"] == "11")][10]
    panel.loc[bad, "numerator"] = "-5"
    path = tmp_path / "panel.csv"
    panel.to_csv(path, index=False)
    (tmp_path / "plan_dates.csv").write_bytes((synthetic / "plan_dates.csv").read_bytes())
    return path, int(bad) + 2


def test_validate_usable_data_exits_0(synthetic, capsys):
    assert main(["validate", str(synthetic)]) == 0
    assert capsys.readouterr().out.startswith("data usable: 0 error(s)")


def test_validate_reports_every_problem_and_exits_2(broken, capsys):
    path, row = broken
    assert main(["validate", str(path)]) == 2
    out = capsys.readouterr().out
    assert out.startswith("data NOT usable: 1 error(s)")
    assert f"{path}, row {row}, column 'numerator' (value '-5'): numerator must not be negative [negative-count]" in out


@pytest.mark.parametrize("fmt", ["json", "csv", "html"])
def test_validate_formats(broken, capsys, fmt):
    path, row = broken
    assert main(["validate", str(path), "--format", fmt]) == 2
    out = capsys.readouterr().out
    if fmt == "json":
        body = json.loads(out)
        assert body["problems"][0]["row"] == row and body["problems"][0]["rule"] == "negative-count"
        assert body["excluded_series"] == [{"province": "110000", "indicator": 11, "rules": "negative-count"}]
    elif fmt == "csv":
        frame = pd.read_csv(io.StringIO(out))
        assert frame[["row", "rule", "severity"]].values.tolist() == [[row, "negative-count", "error"]]
    else:
        assert out.startswith("<!DOCTYPE html>") and "negative-count" in out


def test_validate_writes_the_report_to_a_file(broken, tmp_path, capsys):
    path, _ = broken
    out = tmp_path / "report.json"
    assert main(["validate", str(path), "--format", "json", "--out", str(out)]) == 2
    assert json.loads(out.read_text(encoding="utf-8"))["summary"]["errors"] == 1
    assert str(out) in capsys.readouterr().out


def test_validate_several_files_and_a_missing_one(synthetic, tmp_path, capsys):
    panel = pd.read_csv(synthetic / "panel.csv", dtype=str, keep_default_na=False)
    first, second = tmp_path / "a.csv", tmp_path / "b.xlsx"
    panel[panel["province"] == "340000"].to_csv(first, index=False)
    panel[panel["province"] == "110000"].to_excel(second, index=False, sheet_name="北京")
    assert main(["validate", str(first), str(second), "--plan-dates", str(synthetic / "plan_dates.csv")]) == 0
    capsys.readouterr()
    assert main(["validate", str(first), str(tmp_path / "nothing.csv")]) == 2
    assert "nothing.csv: no such file [unreadable-file]" in capsys.readouterr().out


def test_validate_thresholds_are_options(tmp_path, capsys):
    months = pd.period_range("2023-01", "2024-06", freq="M").astype(str)
    text = "province,indicator,month,numerator,denominator\n" + "".join(f"安徽,32,{m},3,1000\n" for m in months)
    (tmp_path / "p.csv").write_text(text, encoding="utf-8")
    assert main(["validate", str(tmp_path / "p.csv")]) == 0
    assert "[few-points]" in capsys.readouterr().out
    assert main(["validate", str(tmp_path / "p.csv"), "--min-points", "6"]) == 2
    assert "[too-few-points]" in capsys.readouterr().out


def test_template_command_writes_and_never_overwrites(tmp_path, capsys):
    out = tmp_path / "template.xlsx"
    assert main(["template", "--out", str(out), "--layout", "wide", "--province", "Anhui"]) == 0
    assert openpyxl.load_workbook(out)["数据 Data"]["A2"].value == "340000"
    digest = sha256(out)
    assert main(["template", "--out", str(out)]) == 2
    assert "never overwritten" in capsys.readouterr().err and sha256(out) == digest
    assert main(["template", "--out", str(out), "--force", "--province", "火星"]) == 2
    assert "unknown province" in capsys.readouterr().err


def test_run_reads_several_files(synthetic, tmp_path, capsys):
    panel = pd.read_csv(synthetic / "panel.csv", dtype=str, keep_default_na=False)
    first, second = tmp_path / "anhui.csv", tmp_path / "beijing.parquet"
    panel[panel["province"] == "340000"].to_csv(first, index=False)
    panel[panel["province"] == "110000"].to_parquet(second, index=False)
    out = tmp_path / "out"
    assert main(["run", "--data", str(first), str(second), "--plan-dates", str(synthetic / "plan_dates.csv"),
                 "--out", str(out), "--tables-only", "--workers", "1"]) == 0
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    assert set(effects["province"]) == {"340000", "110000"}
    manifest = json.loads((out / "manifest.json").read_text())
    panels = [i for i in manifest["inputs"] if i["role"] == "panel"]
    assert [(i["path"], i["rows"]) for i in panels] == [(str(first), 168), (str(second), 168)]
    quality = manifest["data_quality"]
    assert quality["rows"] == {"total": 336, "used": 336, "merged": 0, "excluded": 0, "skipped": 0}
    assert [s["used"] for s in quality["sheets"]] == ["2-169", "2-169"]


def test_run_refuses_invalid_data_with_the_validate_report(broken, tmp_path, capsys):
    path, row = broken
    out = tmp_path / "out"
    assert main(["run", "--data", str(path), "--out", str(out), "--tables-only"]) == 2
    err = capsys.readouterr().err
    assert "data NOT usable: 1 error(s)" in err and f"row {row}, column 'numerator'" in err
    assert (out / "tables" / "data_quality.csv").is_file() and not (out / "manifest.json").exists()


def test_run_can_exclude_only_the_invalid_series(broken, synthetic, tmp_path, capsys):
    path, row = broken
    before = sha256(path)
    out = tmp_path / "out"
    assert main(["run", "--data", str(path), "--out", str(out), "--tables-only", "--exclude-invalid",
                 "--workers", "1"]) == 0
    assert sha256(path) == before
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    fitted = set(map(tuple, effects[["province", "indicator"]].drop_duplicates().values.tolist()))
    assert fitted == {("340000", 11), ("340000", 32), ("110000", 32)}
    manifest = json.loads((out / "manifest.json").read_text())
    quality = manifest["data_quality"]
    assert quality["exclude_invalid"] is True and quality["usable"] is False
    assert quality["excluded_series"] == [{"province": "110000", "indicator": 11, "rules": "negative-count"}]
    excluded = quality["sheets"][0]["excluded"]
    assert [e["rules"] for e in excluded] == ["negative-count"] and len(excluded) == 1
    assert quality["tables"]["tables/row_accounting.csv"] == sha256(out / "tables" / "row_accounting.csv")
    accounting = pd.read_csv(out / "tables" / "row_accounting.csv", dtype={"province": str})
    assert accounting.loc[accounting["row"] == row, "rules"].item() == "negative-count"
    assert (accounting["status"] == "excluded").sum() == 84
    series = pd.read_csv(out / "tables" / "series_quality.csv", dtype={"province": str})
    assert series.loc[series["status"] == "excluded", ["province", "indicator"]].values.tolist() == [["110000", 11]]
    # The other series are fitted exactly as from clean data. (Multiplicity-adjusted p-values
    # depend on the whole family of tests by definition, so they are compared separately.)
    clean = tmp_path / "clean"
    assert main(["run", "--data", str(synthetic), "--out", str(clean), "--tables-only", "--workers", "1"]) == 0
    reference = pd.read_csv(clean / "tables" / "effects.csv", dtype={"province": str})
    keep = reference[~((reference["province"] == "110000") & (reference["indicator"] == 11))]
    family_wise = ["p_bh", "p_holm"]
    pd.testing.assert_frame_equal(effects.drop(columns=family_wise).reset_index(drop=True),
                                  keep.drop(columns=family_wise).reset_index(drop=True))
    assert (effects["p_bh"].dropna() >= effects["p_value"][effects["p_bh"].notna()] - 1e-12).all()
