"""End to end: synthetic data -> fit -> pool -> tables -> notebooks -> HTML, on a small set."""

import json

import pandas as pd
import pytest

from analysis.data.contract import sha256
from analysis.data.synthetic import generate, write
from analysis.pipeline.render import NotebookJob, NotebookParameterError, check_parameters, prepare_template
from analysis.pipeline.run import run_evaluation

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    base = tmp_path_factory.mktemp("e2e")
    data = base / "data"
    write(generate(11, provinces=["340000", "540000"], indicators=[9, 12, 32, 34]), data)
    out = base / "reports"
    summary = run_evaluation(data, out, workers=2, lang="zh", echo=lambda *_: None)
    return data, out, summary


def test_every_stage_writes_its_output(run):
    data, out, summary = run
    assert all(s["ok"] for s in summary.render_status), summary.render_status
    for path in (
        "index.html",
        "national.html",
        "data_quality.html",
        "provinces/340000.html",
        "provinces/540000.html",
        "notebooks/province_340000.ipynb",
        "notebooks/national.ipynb",
        "tables/effects.csv",
        "tables/predictions.csv",
        "tables/diagnostics.csv",
        "tables/national_effects.csv",
        "tables/failures.csv",
        "tables/recovery_summary.csv",
        "tables/power.csv",
        "tables/targets.csv",
        "manifest.json",
        "report/report-zh.html",
        "report/report-zh.pdf",
        "report/report-zh.xlsx",
        "report/report-en.html",
        "report/report-en.pdf",
        "report/report-en.xlsx",
    ):
        assert (out / path).is_file(), path
    assert set(summary.timings) == {"read", "fit", "pool", "synthesis", "robustness", "write", "render", "report"}
    for name in (
        "robustness",
        "leave_one_out",
        "placebo",
        "placebo_rates",
        "panel_model",
        "panel_vs_meta",
        "event_time",
        "event_time_national",
        "cohort_tests",
        "meta_regression",
    ):
        assert (out / "tables" / f"{name}.csv").is_file(), name
    assert [r["lang"] for r in summary.reports if r["ok"]] == ["zh", "en"]


def test_effects_table_has_the_documented_columns_and_measures(run):
    _, out, _ = run
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    assert {"province", "indicator", "measure", "estimate", "ci_low", "ci_high", "p_value", "scale"} <= set(
        effects.columns
    )
    assert set(effects["measure"]) == {
        "level_change",
        "slope_change",
        "effect_end_absolute",
        "effect_end_relative",
        "effect_cumulative",
    }
    assert len(effects.groupby(["province", "indicator"])) == 8
    assert (effects["ci_low"] <= effects["estimate"]).all() and (effects["estimate"] <= effects["ci_high"]).all()


def test_manifest_traces_inputs_parameters_versions_and_revision(run):
    data, out, _ = run
    manifest = json.loads((out / "manifest.json").read_text())
    panel = next(i for i in manifest["inputs"] if i["role"] == "panel")
    assert panel["sha256"] == sha256(data / "panel.csv") and panel["rows"] == 2 * 4 * 84
    assert manifest["parameters"]["lang"] == "zh" and manifest["parameters"]["evaluation_month"] == "2025-09"
    assert manifest["dependencies"]["statsmodels"] != "not installed"
    assert "commit" in manifest["code_revision"] and manifest["finished"] >= manifest["started"]
    assert manifest["counts"] == {"series": 8, "fitted": 8, "failures": 0, "provinces": 2}


def test_index_links_every_page_and_pages_show_chinese_figures(run):
    _, out, _ = run
    index = (out / "index.html").read_text(encoding="utf-8")
    for href in (
        "national.html",
        "data_quality.html",
        "provinces/340000.html",
        "provinces/540000.html",
        "notebooks/province_340000.ipynb",
        "report/report-zh.pdf",
        "report/report-en.html",
        "report/report-en.xlsx",
    ):
        assert href in index
    page = (out / "provinces" / "340000.html").read_text(encoding="utf-8")
    assert "data:image/png;base64" in page and "安徽" in page
    assert "Traceback" not in page


def test_a_misspelled_notebook_parameter_is_an_error(tmp_path):
    template = prepare_template("province", tmp_path)
    check_parameters(template, {"run_dir": "x", "province": "340000", "lang": "zh"})
    with pytest.raises(NotebookParameterError, match=r"unknown parameter\(s\) \['provnce'\]"):
        check_parameters(template, {"run_dir": "x", "provnce": "340000"})
    assert NotebookJob("province", {}, "a", "b", "c").template == "province"


def test_effects_carry_adjusted_p_values_and_verdicts(run):
    _, out, _ = run
    effects = pd.read_csv(out / "tables" / "effects.csv", dtype={"province": str})
    national = pd.read_csv(out / "tables" / "national_effects.csv")
    for table in (effects, national):
        assert {"p_bh", "p_holm", "verdict"} <= set(table.columns)
        assert (table["p_bh"].dropna() >= table.loc[table["p_bh"].notna(), "p_value"] - 1e-12).all()
    # Holm only across the declared primary indicators (12 and 32 in this small set)
    assert set(effects.loc[effects["p_holm"].notna(), "indicator"]) <= {11, 12, 31, 32}
    assert set(effects["verdict"].dropna()) <= {"improvement", "deterioration", "inconclusive"}
