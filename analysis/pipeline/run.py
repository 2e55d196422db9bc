"""The whole evaluation: read and check data, fit every series, pool, write, render."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis.data.contract import resolve_inputs
from analysis.data.quality import CheckSettings, check_inputs
from analysis.pipeline.fit_panel import PanelResults, fit_panel
from analysis.pipeline.manifest import describe_file, now, write_manifest
from analysis.pipeline.national import national_effects
from analysis.pipeline.recovery import coverage_summary, recovery_table
from analysis.pipeline.render import NotebookJob, render_notebooks
from analysis.pipeline.settings import EvaluationSettings
from analysis.registry import timeline
from analysis.synthesis.direction import classify_effects
from analysis.synthesis.multiplicity import adjust_pvalues
from analysis.synthesis.power import mde_table
from analysis.synthesis.targets import assess_targets


@dataclass
class RunSummary:
    """What a run produced and how long each stage took (seconds)."""

    out_dir: Path
    timings: dict[str, float] = field(default_factory=dict)
    n_series: int = 0
    failures: pd.DataFrame | None = None
    render_status: list[dict] = field(default_factory=list)
    coverage: pd.DataFrame | None = None


class _Stopwatch:
    def __init__(self, timings: dict[str, float], echo) -> None:
        self.timings, self.echo = timings, echo

    def __call__(self, stage: str):
        watch = self

        class _Stage:
            def __enter__(self):
                self.start = time.perf_counter()

            def __exit__(self, *exc):
                watch.timings[stage] = round(time.perf_counter() - self.start, 3)
                if exc[0] is None:
                    watch.echo(f"{stage:>8}: {watch.timings[stage]:.1f} s")

        return _Stage()


def write_tables(results: PanelResults, national: pd.DataFrame, tables: Path) -> list[Path]:
    tables.mkdir(parents=True, exist_ok=True)
    written = []
    for name, frame in (("effects", results.effects), ("diagnostics", results.diagnostics),
                        ("failures", results.failures), ("national_effects", national)):
        path = tables / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    predictions = results.predictions
    predictions.to_parquet(tables / "predictions.parquet", index=False)
    predictions.to_csv(tables / "predictions.csv", index=False)
    return written + [tables / "predictions.parquet", tables / "predictions.csv"]


def run_evaluation(data: str | Path | list[str | Path], out_dir: str | Path, *, plan_dates: str | Path | None = None,
                   settings: EvaluationSettings | None = None, workers: int = 1, tables_only: bool = False,
                   lang: str = "zh", progress: bool = False, echo=print,
                   definition_changes: str | Path | None = None, exclude_invalid: bool = False,
                   checks: CheckSettings | None = None) -> RunSummary:
    """Run the evaluation on a panel and write tables, notebooks, HTML and a manifest.

    Parameters
    ----------
    data : path or list of paths
        Panel files (CSV, Excel, Parquet; long or wide, see :mod:`analysis.data.readers`),
        or a directory with ``panel.csv`` (and optionally ``plan_dates.csv``,
        ``definition_changes.csv`` and, for synthetic data, ``truth.csv``).
    out_dir : path
        Where ``tables/``, ``notebooks/``, ``provinces/``, ``index.html`` and
        ``manifest.json`` are written.
    plan_dates : path, optional
        Province start months; overrides a ``plan_dates.csv`` found beside the panel.
        Provinces not listed start in 2023-06 (the national implementation start).
    workers : int
        Processes for fitting and rendering (capped at the core count).
    tables_only : bool
        Stop after the tables and manifest (no notebooks).
    lang : {"zh", "en"}
        Language of the rendered notebooks and index.
    definition_changes : path, optional
        Changes of definition (``province, indicator, month[, note]``) checked for level shifts.
    exclude_invalid : bool
        Leave out only the series with errors instead of refusing the data; they are
        listed in ``tables/series_quality.csv`` and the manifest.
    checks : CheckSettings, optional
        Thresholds of the data checks (default: the evaluation's wash-in, 3 and 8 points).
    """
    settings = settings or EvaluationSettings()
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(out)
    stage = _Stopwatch(summary.timings, echo)
    started = now()
    with stage("read"):
        data_paths, found_plan, found_changes = resolve_inputs(data)
        panel_path = data_paths[0]
        plan_path = Path(plan_dates) if plan_dates is not None else found_plan
        changes_path = Path(definition_changes) if definition_changes is not None else found_changes
        checks = checks or CheckSettings(washin=settings.washin)
        quality = check_inputs(data_paths, plan_dates=plan_path, definition_changes=changes_path, settings=checks)
        # The data-quality tables are written even when the data are refused, to be inspected.
        quality_tables = quality.write_tables(out / "tables")
        panel = quality.usable_panel(exclude_invalid=exclude_invalid)
        starts = {**{code: checks.default_start for code in sorted(panel["province"].unique())}, **quality.starts}
    with stage("fit"):
        results = fit_panel(panel, starts=starts, settings=settings, workers=workers, progress=progress)
    summary.n_series = results.diagnostics.shape[0] + results.failures.shape[0]
    summary.failures = results.failures
    with stage("pool"):
        national = national_effects(results.effects, method=settings.pooling_method, hksj=settings.pooling_hksj,
                                    level=settings.level)
    with stage("synthesis"):
        # Multiplicity (BH across all results of a measure, Holm across the declared primary
        # indicators), verdicts by the annex's direction, detectable effects and targets.
        primary = settings.primary_indicators
        results = replace(results, effects=classify_effects(adjust_pvalues(results.effects, primary=primary)))
        national = classify_effects(adjust_pvalues(national, primary=primary))
        extra = {"power": mde_table(results.effects, diagnostics=results.diagnostics, level=settings.level),
                 "targets": assess_targets(panel, starts=starts, settings=settings, level=settings.level)}
    with stage("write"):
        written = write_tables(results, national, out / "tables")
        for name, frame in extra.items():
            frame.to_csv(out / "tables" / f"{name}.csv", index=False)
            written.append(out / "tables" / f"{name}.csv")
        truth_path = panel_path.parent / "truth.csv"
        if truth_path.is_file():
            recovery = recovery_table(results.effects, pd.read_csv(truth_path, dtype={"province": str}))
            summary.coverage = coverage_summary(recovery)
            recovery.to_csv(out / "tables" / "recovery.csv", index=False)
            summary.coverage.to_csv(out / "tables" / "recovery_summary.csv", index=False)
            written += [out / "tables" / "recovery.csv", out / "tables" / "recovery_summary.csv"]
    written += quality_tables
    # Every input row is accounted for: per file its data rows, and in data_quality which
    # rows were used, merged, excluded (with the rule) or skipped.
    rows_per_file = quality.accounting.groupby("file", sort=False).size()
    inputs = [describe_file(p, role="panel", rows=int(rows_per_file.get(str(p), 0))) for p in data_paths]
    if plan_path is not None:
        inputs.append(describe_file(Path(plan_path), role="plan_dates"))
    if changes_path is not None:
        inputs.append(describe_file(Path(changes_path), role="definition_changes"))
    manifest = {
        "inputs": inputs,
        "parameters": {**settings.as_dict(), "lang": lang, "workers": workers,
                       "plan_start_default": str(timeline.IMPLEMENTATION_START)},
        "started": started,
        "counts": {"series": summary.n_series, "fitted": int(results.diagnostics.shape[0]),
                   "failures": int(results.failures.shape[0]), "provinces": int(panel["province"].nunique())},
        "outputs": [{"path": str(p.relative_to(out))} for p in written],
        "data_quality": quality.manifest_entry(exclude_invalid=exclude_invalid, tables=out / "tables"),
    }
    write_manifest(out / "manifest.json", {**manifest, "timings_seconds": summary.timings})
    if not tables_only:
        with stage("render"):
            provinces = sorted(results.diagnostics["province"].unique()) if not results.diagnostics.empty else []
            jobs = [NotebookJob("national", {"run_dir": str(out), "lang": lang}, "notebooks/national.ipynb",
                                "national.html", "national"),
                    NotebookJob("data_quality", {"run_dir": str(out), "lang": lang}, "notebooks/data_quality.ipynb",
                                "data_quality.html", "data_quality")]
            jobs += [NotebookJob("province", {"run_dir": str(out), "province": code, "lang": lang},
                                 f"notebooks/province_{code}.ipynb", f"provinces/{code}.html", code)
                     for code in provinces]
            summary.render_status = render_notebooks(jobs, run_dir=out, workers=workers, progress=progress)
            from analysis.report.site import write_index

            ok = {status["label"] for status in summary.render_status if status["ok"]}
            pages = [{"kind": job.template, "province": job.parameters.get("province"), "html": job.html,
                      "ipynb": job.ipynb} for job in jobs if job.label in ok]
            write_index(out, pages=pages, lang=lang)
        failed = [s for s in summary.render_status if not s["ok"]]
        manifest["render_failures"] = failed
    manifest["finished"] = now()
    write_manifest(out / "manifest.json", {**manifest, "timings_seconds": summary.timings})
    return summary


def read_manifest(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
