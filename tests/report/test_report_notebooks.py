"""The report notebooks: parameters cell, imports, and an executed province notebook."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
PARAMETERS = {
    "province.py": {"run_dir": "reports", "province": "340000", "lang": "zh"},
    "national.py": {"run_dir": "reports", "lang": "zh"},
}


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_parameters_cell_declares_exactly_the_documented_parameters(name):
    notebook = jupytext.read(NOTEBOOKS / name)
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    first_code = next(c for c in notebook.cells if c.cell_type == "code")
    assert first_code is tagged[0]  # papermill injects its values right after this cell
    values = {}
    for node in ast.parse(tagged[0].source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1
        values[node.targets[0].id] = ast.literal_eval(node.value)
    assert values == PARAMETERS[name]


@pytest.mark.parametrize("name", sorted(PARAMETERS))
def test_notebooks_import_only_the_report_layer(name):
    notebook = jupytext.read(NOTEBOOKS / name)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    code = "\n".join(line for line in code.splitlines() if not line.lstrip().startswith("%"))
    modules = set()
    for node in ast.walk(ast.parse(code)):
        if isinstance(node, ast.ImportFrom):
            modules.add(node.module)
        elif isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
    assert {m for m in modules if m.startswith("analysis")} <= {"analysis.report", "analysis.report.fonts"}
    assert modules <= {"analysis.report", "analysis.report.fonts", "IPython.display"}


def _execute(name: str, run_dir: Path, out_dir: Path, parameters: dict, monkeypatch) -> nbformat.NotebookNode:
    import papermill

    # The kernel is a fresh process: make this checkout importable whether or not installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    source = out_dir / f"{Path(name).stem}.ipynb"
    jupytext.write(jupytext.read(NOTEBOOKS / name), source)
    output = out_dir / f"{Path(name).stem}.out.ipynb"
    papermill.execute_notebook(
        str(source),
        str(output),
        parameters={"run_dir": str(run_dir), **parameters},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(out_dir),
    )
    return nbformat.read(output, as_version=4)


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.e2e
def test_province_notebook_executes(run_dir, tmp_path, monkeypatch):
    notebook = _execute("province.py", run_dir, tmp_path, {"province": "540000", "lang": "en"}, monkeypatch)
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1
    html = "\n".join(o["data"].get("text/html", "") for o in outputs if "data" in o)
    assert "Tibet" in html
    assert "&lt;script&gt;" in html and "<script>" not in html  # the province's failure, escaped
    assert "feedc0de" * 8 in html  # provenance footer


@pytest.mark.e2e
def test_national_notebook_executes(run_dir, tmp_path, monkeypatch):
    notebook = _execute("national.py", run_dir, tmp_path, {"lang": "zh"}, monkeypatch)
    outputs = _outputs(notebook)
    assert not [o for o in outputs if o["output_type"] == "error"]
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1 + 3  # overview and one forest plot per indicator
