"""The data-quality section: figure functions, display tables and the notebook that shows them."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import jupytext
import nbformat
import pandas as pd
import pytest

from analysis.data.quality import check_inputs
from analysis.report import quality
from analysis.report.figures import figure_png

REPO = Path(__file__).resolve().parents[2]
NOTEBOOK = REPO / "notebooks" / "data_quality.py"
MONTHS = [str(m) for m in pd.period_range("2021-01", "2024-12", freq="M")]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A run directory with the data-quality tables of a panel with a gap, a jump and a bad province."""
    base = tmp_path_factory.mktemp("quality")
    rows = []
    for province, indicator in (("安徽", 32), ("北京", 32), ("安徽", 9)):
        for k, month in enumerate(MONTHS):
            if province == "北京" and month == "2022-05":
                continue  # a gap: the series is excluded
            if indicator == 9:
                rows.append(f"{province},{indicator},{month},,120,{14 + (k % 3) * 0.1:.1f}")
            else:
                rows.append(f"{province},{indicator},{month},{250 if month == '2022-02' else 20 + k % 3},1000,")
    rows.append("火星,32,2023-01,3,1000,")
    path = base / "panel.csv"
    path.write_text("province,indicator,month,numerator,denominator,value\n" + "\n".join(rows) + "\n", encoding="utf-8")
    report = check_inputs(path)
    report.write_tables(base / "tables")
    return base


def test_completeness_marks_data_gaps_warnings_and_exclusions(run_dir):
    tables = quality.load_quality(run_dir)
    grid, codes, numbers, months = quality.completeness(tables.series)
    assert codes == ["110000", "340000"] and numbers == [9, 32] and len(months) == 48
    status = {name: k for k, name in enumerate(quality.STATUS)}
    beijing, anhui = 0, 1
    assert (grid[beijing, 1] == status["excluded"]).sum() == 47
    assert grid[beijing, 1, MONTHS.index("2022-05")] == status["gap"]
    assert grid[anhui, 1, MONTHS.index("2022-02")] == status["warning"]
    assert (grid[beijing, 0] == status["absent"]).all()  # Beijing gave no indicator 9
    assert (grid[anhui, 0] == status["present"]).all()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_figures_draw_with_every_glyph(run_dir, lang):
    tables = quality.load_quality(run_dir)
    for fig in (quality.completeness_figure(tables.series, lang=lang), quality.overview_figure(tables.series, lang=lang)):
        assert figure_png(fig)[:4] == b"\x89PNG"  # strict: a missing glyph raises


def test_display_tables(run_dir):
    tables = quality.load_quality(run_dir)
    errors = quality.problems_table(tables.problems, severity="error", lang="en")
    assert set(errors["Rule"]) == {"missing-months", "unknown-province"}
    warnings = quality.problems_table(tables.problems, severity="warning", lang="zh")
    assert list(warnings.columns)[:4] == ["规则", "省份", "指标", "月份"]
    assert set(warnings["规则"]) == {"implausible-jump"} and set(warnings["省份"]) == {"安徽"}
    accounting = quality.accounting_table(tables.accounting, lang="en")
    # 3 series x 48 months, less Beijing's gap, plus the row of an unknown province.
    assert accounting[["rows", "used", "excluded"]].values.tolist() == [[144, 96, 48]]
    assert quality.summary_html(tables, lang="en").startswith(
        "<p>144 input rows: 96 used, 0 merged, 48 excluded, 0 skipped. 3 series, 1 excluded for errors; 2 errors")


def test_an_empty_run_directory_reads_as_no_tables(tmp_path):
    tables = quality.load_quality(tmp_path)
    assert tables.empty
    assert quality.problems_table(tables.problems).empty and quality.accounting_table(tables.accounting).empty


def test_parameters_cell_and_imports_follow_the_other_notebooks():
    notebook = jupytext.read(NOTEBOOK)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert len(tagged) == 1 and first_code is tagged[0]
    values = {node.targets[0].id: ast.literal_eval(node.value) for node in ast.parse(tagged[0].source).body}
    assert values == {"run_dir": "reports", "lang": "zh"}
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("%"))
    modules = {node.module for node in ast.walk(ast.parse(code)) if isinstance(node, ast.ImportFrom)}
    assert modules <= {"analysis.report", "analysis.report.fonts", "IPython.display"}


@pytest.mark.e2e
def test_the_notebook_executes(run_dir, tmp_path, monkeypatch):
    import papermill

    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    source = tmp_path / "data_quality.ipynb"
    jupytext.write(jupytext.read(NOTEBOOK), source)
    output = tmp_path / "out.ipynb"
    papermill.execute_notebook(str(source), str(output), parameters={"run_dir": str(run_dir), "lang": "en"},
                               kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    cells = nbformat.read(output, as_version=4).cells
    outputs = [o for c in cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert len([o for o in outputs if "image/png" in o.get("data", {})]) == 2
    html = "\n".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "implausible-jump" in html and "missing-months" in html and "火星" in html
    assert all(word in html for word in ("used", "excluded"))
