"""The teaching notebooks: structure (exercise and solution, synthetic data, the package's
APIs) and execution top to bottom with papermill, each within a minute."""

from __future__ import annotations

import ast
import os
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

REPO = Path(__file__).resolve().parents[2]
TEACHING = REPO / "notebooks" / "teaching"
NOTEBOOKS = sorted(TEACHING.glob("[0-9][0-9]_*.py"))
#: What each notebook must teach with: the package APIs named in its brief.
REQUIRED_NAMES = {
    "01_its_from_scratch.py": {"generate", "ITSDesign", "SegmentedRegression"},
    "02_autocorrelation.py": {"generate", "compare_methods", "diagnose", "run_scenario"},
    "03_counts_and_rates.py": {"generate", "SegmentedRegression", "compare_methods", "diagnose", "timeline"},
    "04_threats_to_validity.py": {"generate", "SegmentedRegression", "ITSDesign", "fit_panel"},
    "05_provinces_to_nation.py": {"generate", "pool", "fit_panel", "national_effects"},
}
TIME_LIMIT_SECONDS = 60


def _code(notebook) -> str:
    source = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("%"))


def test_there_are_at_least_five_numbered_notebooks():
    assert [p.name for p in NOTEBOOKS] == sorted(REQUIRED_NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    notebook = jupytext.read(path)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    cells = notebook.cells
    assert cells[0].cell_type == "markdown" and cells[0].source.startswith("# ")
    headings = [(i, c.source.splitlines()[0]) for i, c in enumerate(cells) if c.cell_type == "markdown"]
    exercise = [i for i, h in headings if h.strip() == "## Exercise"]
    solution = [i for i, h in headings if h.strip() == "### Solution"]
    assert len(exercise) == 1 and len(solution) == 1 and exercise[0] < solution[0]
    # A cell for the student's own attempt between the exercise and the solution, and code in the solution.
    assert any(c.cell_type == "code" for c in cells[exercise[0] : solution[0]])
    assert any(c.cell_type == "code" and c.source.strip() for c in cells[solution[0] + 1 :])

    tree = ast.parse(_code(notebook))
    names = {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
        if (node.module or "").startswith("analysis")
    }
    assert REQUIRED_NAMES[path.name] <= names
    calls = {
        node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", None)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
    }
    # Self-contained: synthetic data generated in the notebook, nothing read from disk.
    assert "generate" in calls
    assert not calls & {"read_csv", "read_parquet", "read_excel", "open", "load_run"}


def _outputs(notebook) -> list[dict]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.e2e
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom_within_a_minute(path, tmp_path, monkeypatch):
    import papermill

    # The kernel is a fresh process: make this checkout importable whether or not installed.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    source = tmp_path / f"{path.stem}.ipynb"
    jupytext.write(jupytext.read(path), source)
    output = tmp_path / f"{path.stem}.out.ipynb"
    start = time.perf_counter()
    papermill.execute_notebook(str(source), str(output), kernel_name="python3", progress_bar=False, cwd=str(tmp_path))
    seconds = time.perf_counter() - start
    outputs = _outputs(nbformat.read(output, as_version=4))
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert not [o["text"] for o in outputs if o["output_type"] == "stream" and o["name"] == "stderr"]
    assert [o for o in outputs if "image/png" in o.get("data", {})], "a teaching notebook shows figures"
    assert seconds < TIME_LIMIT_SECONDS, f"{path.name} took {seconds:.0f} s"
