"""Notebook rendering (analysis.pipeline.render): a failing notebook is reported, not raised."""

import pytest

from analysis.pipeline.render import NotebookJob, render_notebooks


@pytest.mark.e2e
def test_a_failing_notebook_is_reported_with_its_error(tmp_path):
    job = NotebookJob(
        template="province",
        parameters={"run_dir": str(tmp_path / "no-such-run"), "province": "340000", "lang": "en"},
        ipynb="notebooks/p.ipynb",
        html="p.html",
        label="province 340000",
    )
    [status] = render_notebooks([job], run_dir=tmp_path)
    assert status["label"] == "province 340000" and status["ok"] is False
    assert status["error"].startswith("PapermillExecutionError")
    assert not (tmp_path / "p.html").exists()
