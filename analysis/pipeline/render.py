"""Render the presentation notebooks with papermill, in parallel, then to HTML.

Notebooks live in ``notebooks/`` as jupytext percent scripts; they are converted to
``.ipynb`` once per run, their declared parameters are checked (papermill only warns about
unknown ones; a misspelled parameter is an error here), executed one per process, and
exported to HTML without code cells for readers.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"


class NotebookParameterError(ValueError):
    """A notebook was given a parameter it does not declare."""


@dataclass(frozen=True)
class NotebookJob:
    """One notebook execution: template name, parameters and output paths (relative to the run)."""

    template: str
    parameters: dict
    ipynb: str
    html: str
    label: str


def prepare_template(name: str, build_dir: Path) -> Path:
    """Convert ``notebooks/NAME.py`` to an ``.ipynb`` in ``build_dir``."""
    import jupytext

    source = NOTEBOOK_DIR / f"{name}.py"
    if not source.is_file():
        raise FileNotFoundError(f"no notebook template {source}")
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    build_dir.mkdir(parents=True, exist_ok=True)
    target = build_dir / f"{name}.ipynb"
    jupytext.write(notebook, target, fmt="ipynb")
    return target


def check_parameters(template: Path, parameters: dict) -> None:
    """Raise :class:`NotebookParameterError` for parameters the notebook does not declare."""
    import papermill

    declared = set(papermill.inspect_notebook(str(template)))
    unknown = sorted(set(parameters) - declared)
    if unknown:
        raise NotebookParameterError(
            f"{template.name}: unknown parameter(s) {unknown}; the notebook declares {sorted(declared)}"
        )


def _execute(job: NotebookJob, template: Path, run_dir: Path) -> dict:
    import nbformat
    import papermill
    from nbconvert import HTMLExporter

    out_ipynb = run_dir / job.ipynb
    out_ipynb.parent.mkdir(parents=True, exist_ok=True)
    try:
        # The kernel's log level is raised so that its routine start-up warnings, and the
        # "KeyboardInterrupt caught in kernel" it logs when the client interrupts it on
        # shutdown, do not reach the console; errors in cells still fail the notebook.
        papermill.execute_notebook(
            str(template),
            str(out_ipynb),
            parameters=job.parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(run_dir),
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
        exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
        body, _ = exporter.from_notebook_node(nbformat.read(out_ipynb, as_version=4))
        out_html = run_dir / job.html
        out_html.parent.mkdir(parents=True, exist_ok=True)
        out_html.write_text(body, encoding="utf-8")
        return {"label": job.label, "ok": True, "error": None}
    except Exception as err:  # a failing notebook is reported, the others go on
        return {"label": job.label, "ok": False, "error": f"{type(err).__name__}: {err}"[:2000]}


def render_notebooks(jobs: list[NotebookJob], *, run_dir: Path, workers: int = 1, progress: bool = False) -> list[dict]:
    """Execute ``jobs`` with at most ``workers`` processes (capped at the core count).

    Returns one status dict per job (``label``, ``ok``, ``error``).
    """
    build = run_dir / "notebooks" / "_templates"
    templates = {name: prepare_template(name, build) for name in sorted({j.template for j in jobs})}
    for job in jobs:
        check_parameters(templates[job.template], job.parameters)
    workers = max(1, min(workers, os.cpu_count() or 1, len(jobs) or 1))
    from tqdm.auto import tqdm

    results = []
    with (
        ProcessPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(jobs), desc="render", unit="notebook", disable=not progress) as bar,
    ):
        futures = [pool.submit(_execute, job, templates[job.template], run_dir) for job in jobs]
        for future in as_completed(futures):
            results.append(future.result())
            bar.update()
    return results
