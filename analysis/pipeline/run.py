"""The whole evaluation: read and check data, fit every series, pool, write, render."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import pandas as pd

from analysis.data.comparison_series import check_comparison_series
from analysis.data.contract import find_comparisons, find_covariates, resolve_inputs
from analysis.data.contract import sha256 as sha256_file
from analysis.data.covariates import attach_covariates, read_covariates
from analysis.data.problems import DataValidationError, problems_frame
from analysis.data.quality import CheckSettings, check_inputs
from analysis.evaluation.cache import ResultCache, code_fingerprint, digest
from analysis.evaluation.fit_panel import EFFECT_COLUMNS, PanelResults, fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.pipeline.manifest import describe_file, now, write_manifest
from analysis.pipeline.render import NotebookJob, render_notebooks
from analysis.pipeline.synthesis_tables import event_time_tables, meta_regression_tables, robustness_tables
from analysis.registry import timeline
from analysis.synthesis.controls import controlled_effects, national_controlled, read_comparisons
from analysis.synthesis.direction import classify_effects
from analysis.synthesis.multiplicity import adjust_pvalues
from analysis.synthesis.national import national_effects
from analysis.synthesis.power import mde_table
from analysis.synthesis.recovery import coverage_summary, recovery_table
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
    reused_fits: tuple[str, ...] = ()
    reused_pages: tuple[str, ...] = ()
    reused_robustness: bool = False
    reports: list[dict] = field(default_factory=list)


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
    for name, frame in (
        ("effects", results.effects),
        ("diagnostics", results.diagnostics),
        ("failures", results.failures),
        ("national_effects", national),
    ):
        path = tables / f"{name}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    predictions = results.predictions
    predictions.to_parquet(tables / "predictions.parquet", index=False)
    predictions.to_csv(tables / "predictions.csv", index=False)
    return written + [tables / "predictions.parquet", tables / "predictions.csv"]


@dataclass(frozen=True)
class EvaluationInputs:
    """The checked inputs of a run: the usable panel, each province's start month, the
    data-quality report and the files they came from."""

    panel: pd.DataFrame
    starts: dict[str, pd.Period]
    quality: object
    data_paths: list[Path]
    plan_path: Path | None
    changes_path: Path | None
    quality_tables: dict = field(default_factory=dict)
    covariates_path: Path | None = None


def read_inputs(
    data: str | Path | list[str | Path],
    *,
    plan_dates: str | Path | None = None,
    definition_changes: str | Path | None = None,
    checks: CheckSettings | None = None,
    exclude_invalid: bool = False,
    tables_dir: Path | None = None,
) -> EvaluationInputs:
    """Read and check a run's inputs exactly as :func:`run_evaluation` does (the same
    files found beside the panel, the same checks, the same start months), so that one
    series can be refitted with the run's data (``python -m analysis fit DATA --province
    P --indicator N``).

    Raises :class:`~analysis.data.problems.DataValidationError` when the data are not
    usable; ``tables_dir``, if given, receives the data-quality tables first.
    """
    data_paths, found_plan, found_changes = resolve_inputs(data)
    plan_path = Path(plan_dates) if plan_dates is not None else found_plan
    changes_path = Path(definition_changes) if definition_changes is not None else found_changes
    checks = checks or CheckSettings()
    quality = check_inputs(data_paths, plan_dates=plan_path, definition_changes=changes_path, settings=checks)
    # The data-quality tables are written even when the data are refused, to be inspected.
    tables = quality.write_tables(tables_dir) if tables_dir is not None else {}
    panel = quality.usable_panel(exclude_invalid=exclude_invalid)
    starts = {**{code: checks.default_start for code in sorted(panel["province"].unique())}, **quality.starts}
    covariates_path = find_covariates(data)
    if covariates_path is not None:
        table, problems = read_covariates(covariates_path)
        if table is None:
            raise DataValidationError(problems)
        panel = attach_covariates(panel, table)
    return EvaluationInputs(panel, starts, quality, list(data_paths), plan_path, changes_path, tables, covariates_path)


def run_evaluation(
    data: str | Path | list[str | Path],
    out_dir: str | Path,
    *,
    plan_dates: str | Path | None = None,
    settings: EvaluationSettings | None = None,
    workers: int = 1,
    tables_only: bool = False,
    lang: str = "zh",
    progress: bool = False,
    echo=print,
    definition_changes: str | Path | None = None,
    exclude_invalid: bool = False,
    checks: CheckSettings | None = None,
    report_langs: Sequence[str] = ("zh", "en"),
    use_cache: bool = True,
    robustness: bool = True,
    comparisons: str | Path | None = None,
) -> RunSummary:
    """Run the evaluation on a panel and write tables, notebooks, HTML and a manifest.

    Parameters
    ----------
    data : path or list of paths
        Panel files (CSV, Excel, Parquet; long or wide, see :mod:`analysis.data.readers`),
        or a directory with ``panel.csv`` (and optionally ``plan_dates.csv``,
        ``definition_changes.csv``, ``comparisons.csv`` with ``comparison_series.csv`` and,
        for synthetic data, ``truth.csv``).
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
    report_langs : sequence of {"zh", "en"}
        Languages of the end-of-plan report (HTML, PDF and Excel workbook in ``report/``,
        see :func:`analysis.report.build.build_report`); empty for none.
    use_cache : bool
        Reuse the fits of provinces whose rows are unchanged and the pages whose inputs are
        unchanged, from ``OUT/.cache`` (keys include a fingerprint of the code; see
        :mod:`analysis.evaluation.cache`). False recomputes everything (and refreshes the cache).
    robustness : bool
        Refit the panel for the robustness tables (wash-in 0/6, national start, without
        COVID months, Newey-West, leave-one-province-out), the in-time placebo tests and the
        multilevel panel model (:func:`analysis.pipeline.synthesis_tables.robustness_tables`;
        about 40 s for the full panel on 2 cores, reused from the cache while the panel,
        starts, settings and code are unchanged).
    comparisons : path, optional
        A table of ``indicator, comparison`` pairs: each indicator is also fitted as a
        controlled ITS against its comparison series in the same province, and the
        differences are pooled (:mod:`analysis.synthesis.controls`; tables
        ``controlled_effects``, ``controlled_national``, ``controlled_failures``). Without
        it, a ``comparisons.csv`` in the data directory is used. A comparison named by text
        is a series of ``comparison_series.csv`` (:mod:`analysis.data.comparison_series`),
        taken from beside the comparisons table or from the data directory. Both files
        are checked before anything is fitted, and their checksums go into the manifest.
        The controlled fits take about a second for the synthetic set and are not cached.
    """
    settings = settings or EvaluationSettings()
    if lang not in ("zh", "en"):
        raise ValueError(f"lang must be 'zh' or 'en', got {lang!r}")
    unknown = set(report_langs) - {"zh", "en"}
    if unknown:
        raise ValueError(f"report_langs must be 'zh' and/or 'en', got {sorted(unknown)}")
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    summary = RunSummary(out)
    cache = ResultCache(out / ".cache", enabled=use_cache)
    stage = _Stopwatch(summary.timings, echo)
    started = now()
    with stage("read"):
        checks = checks or CheckSettings(washin=settings.washin)
        inputs_read = read_inputs(
            data,
            plan_dates=plan_dates,
            definition_changes=definition_changes,
            checks=checks,
            exclude_invalid=exclude_invalid,
            tables_dir=out / "tables",
        )
        quality, panel, starts = inputs_read.quality, inputs_read.panel, inputs_read.starts
        quality_tables = inputs_read.quality_tables
        data_paths, plan_path, changes_path = inputs_read.data_paths, inputs_read.plan_path, inputs_read.changes_path
        panel_path = data_paths[0]
        pairs_path, series_path = find_comparisons(data, comparisons=comparisons)
        pairs = comparison_series = None
        if pairs_path is not None:
            if series_path is not None:
                comparison_series, problems = check_comparison_series(series_path)
                # Written whatever the outcome, like the panel's data-quality tables.
                problems_frame(problems).to_csv(out / "tables" / "comparison_quality.csv", index=False)
                if comparison_series is None:
                    raise DataValidationError(problems)
                if problems:
                    echo(
                        f"    note: {len(problems)} warning(s) in {series_path} "
                        f"({'; '.join(map(str, problems[:3]))}); see tables/comparison_quality.csv"
                    )
            pairs = read_comparisons(pairs_path, series=comparison_series, series_file=series_path)
        elif series_path is not None:
            echo(
                f"    note: {series_path} is not used: no comparisons.csv says which indicator each series is "
                "compared with"
            )
    with stage("fit"):
        results = fit_panel(panel, starts=starts, settings=settings, workers=workers, progress=progress, cache=cache)
    summary.reused_fits = results.reused
    summary.n_series = results.diagnostics.shape[0] + results.failures.shape[0]
    summary.failures = results.failures
    with stage("pool"):
        national = national_effects(results.effects, **settings.pooling_options())
    with stage("synthesis"):
        # Multiplicity (BH across all results of a measure, Holm across the declared primary
        # indicators), verdicts by the annex's direction, detectable effects and targets.
        primary = settings.primary_indicators
        results = replace(results, effects=classify_effects(adjust_pvalues(results.effects, primary=primary)))
        national = classify_effects(adjust_pvalues(national, primary=primary))
        extra = {
            "power": mde_table(results.effects, diagnostics=results.diagnostics, level=settings.level),
            "targets": assess_targets(panel, starts=starts, settings=settings, level=settings.level),
            **event_time_tables(results, settings=settings),
            **meta_regression_tables(results.effects, starts=starts, settings=settings),
        }
    if pairs is not None:
        with stage("controls"):
            controlled, controlled_failures = controlled_effects(
                panel, pairs, starts=starts, settings=settings, series=comparison_series
            )
            extra |= {
                "controlled_effects": controlled,
                "controlled_national": national_controlled(controlled, settings=settings),
                "controlled_failures": controlled_failures,
            }
    if robustness:
        with stage("robustness"):
            key = digest(
                code_fingerprint(),
                settings.as_dict(),
                {str(k): str(v) for k, v in starts.items()},
                panel.reset_index(drop=True),
            )
            tables = cache.get("robustness", "panel", key=key)
            summary.reused_robustness = tables is not None
            if tables is None:
                tables = robustness_tables(
                    panel, results, national=national, starts=starts, settings=settings, workers=workers
                )
                cache.put("robustness", "panel", key=key, value=tables)
            extra |= tables
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
    if inputs_read.covariates_path is not None:
        inputs.append(describe_file(inputs_read.covariates_path, role="covariates"))
    if pairs_path is not None:
        inputs.append(describe_file(Path(pairs_path), role="comparisons", rows=len(pairs)))
        if comparison_series is not None:
            inputs.append(describe_file(Path(series_path), role="comparison_series", rows=len(comparison_series)))
    manifest = {
        "inputs": inputs,
        "parameters": {
            **settings.as_dict(),
            "lang": lang,
            "workers": workers,
            "robustness": robustness,
            "plan_start_default": str(timeline.IMPLEMENTATION_START),
        },
        "started": started,
        "counts": {
            "series": summary.n_series,
            "fitted": int(results.diagnostics.shape[0]),
            "failures": int(results.failures.shape[0]),
            "provinces": int(panel["province"].nunique()),
        },
        "cache": {
            "code_fingerprint": code_fingerprint(),
            "enabled": use_cache,
            "fits_reused": list(results.reused),
            "robustness_reused": summary.reused_robustness,
            "fits_computed": sorted(set(map(str, panel["province"].unique())) - set(results.reused)),
        },
        "outputs": [{"path": str(p.relative_to(out))} for p in written],
        "data_quality": quality.manifest_entry(exclude_invalid=exclude_invalid, tables=out / "tables"),
    }
    write_manifest(out / "manifest.json", {**manifest, "timings_seconds": summary.timings})
    if not tables_only:
        with stage("render"):
            provinces = sorted(results.diagnostics["province"].unique()) if not results.diagnostics.empty else []
            jobs = [
                NotebookJob(
                    "national",
                    {"run_dir": str(out), "lang": lang},
                    "notebooks/national.ipynb",
                    "national.html",
                    "national",
                ),
                NotebookJob(
                    "data_quality",
                    {"run_dir": str(out), "lang": lang},
                    "notebooks/data_quality.ipynb",
                    "data_quality.html",
                    "data_quality",
                ),
            ]
            jobs += [
                NotebookJob(
                    "province",
                    {"run_dir": str(out), "province": code, "lang": lang},
                    f"notebooks/province_{code}.ipynb",
                    f"provinces/{code}.html",
                    code,
                )
                for code in provinces
            ]
            keys = page_keys(jobs, results, settings=settings, tables=out / "tables")
            fresh = [
                job
                for job in jobs
                if cache.get("page", job.label, key=keys[job.label]) is None
                or not ((out / job.html).is_file() and (out / job.ipynb).is_file())
            ]
            summary.reused_pages = tuple(job.label for job in jobs if job not in fresh)
            summary.render_status = [
                {"label": label, "ok": True, "error": None, "reused": True} for label in summary.reused_pages
            ] + render_notebooks(fresh, run_dir=out, workers=workers, progress=progress)
            for status in summary.render_status:
                if status["ok"] and not status.get("reused"):
                    cache.put("page", status["label"], key=keys[status["label"]], value=status["label"])
        failed = [s for s in summary.render_status if not s["ok"]]
        manifest["render_failures"] = failed
        manifest["pages"] = [
            {"label": job.label, "html": job.html, "key": keys[job.label], "reused": job.label in summary.reused_pages}
            for job in jobs
        ]
        if report_langs:
            with stage("report"):
                summary.reports = build_reports(out, langs=report_langs, workers=workers, echo=echo)
            manifest["reports"] = summary.reports
        from analysis.report.site import write_index

        ok = {status["label"] for status in summary.render_status if status["ok"]}
        pages = [
            {"kind": job.template, "province": job.parameters.get("province"), "html": job.html, "ipynb": job.ipynb}
            for job in jobs
            if job.label in ok
        ]
        pages += [{"kind": "report", "lang": r["lang"], **r["paths"]} for r in summary.reports if r["ok"]]
        write_index(out, pages=pages, lang=lang)
    manifest["finished"] = now()
    write_manifest(out / "manifest.json", {**manifest, "timings_seconds": summary.timings})
    return summary


def page_keys(
    jobs: Sequence[NotebookJob], results: PanelResults, *, settings: EvaluationSettings, tables: Path
) -> dict[str, str]:
    """Cache key of every page: the code, the notebook's parameters and what it shows.

    A province page shows only that province's fits (effects as fitted, predictions,
    diagnostics, failures; no quantity that depends on other provinces, such as adjusted
    p-values) and the run's parameters, so its key is built from those alone and a change
    to another province leaves it valid. Its provenance block then still names the run
    that rendered it (start time and input checksums), which is the run whose numbers it
    shows; the manifest lists each page's key and whether it was reused. The national and
    data-quality pages depend on every table.
    """
    everything = digest(*[p.name + ":" + sha256_file(p) for p in sorted(tables.glob("*")) if p.is_file()])

    def rows(frame: pd.DataFrame, code: str) -> pd.DataFrame:
        if frame.empty or "province" not in frame.columns:
            return frame
        return frame[frame["province"] == code].reset_index(drop=True)

    keys = {}
    for job in jobs:
        if job.template == "province":
            code = str(job.parameters["province"])
            keys[job.label] = digest(
                code_fingerprint(),
                job.template,
                job.parameters,
                settings.as_dict(),
                rows(results.effects[EFFECT_COLUMNS], code),
                rows(results.predictions, code),
                rows(results.diagnostics, code),
                rows(results.failures, code),
            )
        else:
            keys[job.label] = digest(code_fingerprint(), job.template, job.parameters, everything)
    return keys


def build_reports(out: Path, *, langs: Sequence[str], workers: int, echo=print) -> list[dict]:
    """The end-of-plan report of a run in each language, into ``out/report``.

    A language whose report fails is recorded (``ok`` false, ``error``) and the others go on.
    """
    from analysis.report.build import build_report

    built = []
    for lang in langs:
        try:
            report = build_report(out, out / "report", lang=lang, workers=workers)
        except Exception as err:  # reported in the manifest and by the command; other languages go on
            built.append({"lang": lang, "ok": False, "error": f"{type(err).__name__}: {err}"[:2000], "paths": {}})
            continue
        echo(
            f"  report: {lang} "
            + ", ".join(p.name for p in report.paths.values())
            + f" ({report.figures_drawn} figures drawn, {report.figures_reused} reused)"
        )
        built.append(
            {
                "lang": lang,
                "ok": True,
                "error": None,
                "paths": {kind: str(path.relative_to(out)) for kind, path in report.paths.items()},
                "pdf_pages": report.pdf_pages,
            }
        )
    return built


def read_manifest(out_dir: str | Path) -> dict:
    return json.loads((Path(out_dir) / "manifest.json").read_text(encoding="utf-8"))
