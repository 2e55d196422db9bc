"""Command line: ``python -m analysis {synth,validate,template,run,report,fit,pool} ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd

from analysis.evaluation.settings import ABSOLUTE_COUNTS, COV_TYPES, EvaluationSettings
from analysis.its.design import CALENDARS

#: The library's defaults, which the options below repeat as their defaults.
DEFAULTS = EvaluationSettings()


def _synth(args: argparse.Namespace) -> int:
    from analysis.data.synthetic import generate, write

    start = time.perf_counter()
    data = generate(args.seed, co_interventions=not args.no_co_interventions)
    paths = write(data, args.out)
    print(f"   synth: {time.perf_counter() - start:.1f} s, {len(data.panel)} rows -> {paths['panel']}")
    return 0


def _check_settings(args: argparse.Namespace):
    from analysis.data.quality import CheckSettings

    given = {"min_points": args.min_points, "recommended_points": args.recommended_points, "jump_z": args.jump_z}
    return CheckSettings(washin=args.washin, **{k: v for k, v in given.items() if v is not None})


def _validate(args: argparse.Namespace) -> int:
    from analysis.data.contract import resolve_inputs
    from analysis.data.quality import check_inputs

    try:
        # A missing or unreadable file is reported with the other problems.
        paths, plan, changes = resolve_inputs(args.paths, missing_ok=True)
        report = check_inputs(
            paths,
            plan_dates=args.plan_dates or plan,
            definition_changes=args.definition_changes or changes,
            settings=_check_settings(args),
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = report.render(args.format)
    if args.out is not None:
        args.out.write_text(text, encoding="utf-8")
        print(report.to_text(limit=0).splitlines()[0] + f"; report: {args.out}")
    else:
        sys.stdout.write(text)
    return 0 if report.usable else 2


def _template(args: argparse.Namespace) -> int:
    from analysis.data.template import write_template

    if args.out.exists() and not args.force:
        print(
            f"error: {args.out} exists; a filled-in template is never overwritten (use --force to replace it)",
            file=sys.stderr,
        )
        return 2
    try:
        path = write_template(args.out, layout=args.layout, province=args.province, start=args.start, end=args.end)
    except (KeyError, ValueError) as err:
        print(f"error: {err.args[0] if err.args else err}", file=sys.stderr)
        return 2
    print(f"template: {path}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from analysis.data.problems import DataValidationError
    from analysis.pipeline.run import run_evaluation
    from analysis.synthesis.controls import ComparisonsError

    try:
        settings = _settings(args, pooling_absolute_counts=args.absolute_counts)
        checks = _check_settings(args)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        summary = run_evaluation(
            args.data,
            args.out,
            plan_dates=args.plan_dates,
            settings=settings,
            workers=args.workers,
            tables_only=args.tables_only,
            lang=args.lang,
            progress=sys.stderr.isatty(),
            definition_changes=args.definition_changes,
            exclude_invalid=args.exclude_invalid,
            checks=checks,
            report_langs=args.report_langs,
            use_cache=not args.no_cache,
            robustness=args.robustness,
            comparisons=args.comparisons,
        )
    except DataValidationError as err:
        return _unusable(err)
    except (FileNotFoundError, ComparisonsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    total = time.perf_counter() - start
    n_fail = 0 if summary.failures is None else len(summary.failures)
    print(f"   total: {total:.1f} s; {summary.n_series} series, {n_fail} failed to fit")
    if n_fail:
        print(summary.failures.to_string(index=False), file=sys.stderr)
    bad = [s for s in summary.render_status if not s["ok"]]
    for status in bad:
        print(f"render failed for {status['label']}: {status['error']}", file=sys.stderr)
    if summary.coverage is not None:
        print("recovery against the synthetic truth:")
        print(summary.coverage.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if summary.reused_fits or summary.reused_pages:
        print(
            f"   cache: reused the fits of {len(summary.reused_fits)} province(s) and "
            f"{len(summary.reused_pages)} page(s) whose inputs and code are unchanged"
        )
    failed_reports = [r for r in summary.reports if not r["ok"]]
    for report in failed_reports:
        print(f"report ({report['lang']}) failed: {report['error']}", file=sys.stderr)
    if not args.tables_only:
        print(f"index: {summary.out_dir / 'index.html'}")
        for report in summary.reports:
            if report["ok"]:
                print(
                    f"report ({report['lang']}): "
                    + ", ".join(str(summary.out_dir / p) for p in report["paths"].values())
                )
    return 1 if bad or failed_reports else 0


def _langs(value: str) -> tuple[str, ...]:
    """Parse ``zh,en`` (or ``none``) into a tuple of report languages."""
    if value.strip().lower() == "none":
        return ()
    langs = tuple(dict.fromkeys(v.strip() for v in value.split(",") if v.strip()))
    unknown = [v for v in langs if v not in ("zh", "en")]
    if unknown or not langs:
        raise argparse.ArgumentTypeError(f"expected zh, en, zh,en or none, got {value!r}")
    return langs


def _report(args: argparse.Namespace) -> int:
    from analysis.report.build import build_report
    from analysis.report.fonts import FontNotFoundError
    from analysis.report.pdf import PdfBuildError

    formats = [f.strip() for f in args.formats.split(",") if f.strip()]
    try:
        result = build_report(
            args.from_dir, args.out, lang=args.lang, workers=args.workers, formats=formats, echo=print
        )
    except (FileNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except (FontNotFoundError, PdfBuildError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    for kind in ("html", "pdf", "xlsx"):
        if kind in result.paths:
            print(f"{kind:>10}: {result.paths[kind]}")
    return 0


def _pool(args: argparse.Namespace) -> int:
    from analysis.synthesis.pooling import pool_frame

    frame = pd.read_csv(args.file)
    pooled = pool_frame(
        frame,
        estimate=args.estimate,
        se=args.se,
        by=args.by,
        method=args.method,
        hksj=args.hksj or args.hksj_floor,
        hksj_floor=args.hksj_floor,
        level=args.level,
        weights=args.weights,
    )
    if args.json:
        for record in pooled.to_dict(orient="records"):
            print(json.dumps(record, ensure_ascii=False, default=float))
    else:
        print(pooled.to_string(index=False))
    return 0


def _unusable(err: Exception) -> int:
    """Data refused by the checks: the same report as ``validate`` prints; exit status 2."""
    report = getattr(err, "report", None)
    print(f"error: the input data are not usable\n{report.to_text() if report is not None else err}", file=sys.stderr)
    return 2


def _settings(args: argparse.Namespace, **extra):
    """The run's model settings from the options ``run`` and ``fit --province`` share."""
    return EvaluationSettings(
        washin=args.washin,
        cov_type=args.cov_type,
        seasonality=args.seasonality or DEFAULTS.seasonality,
        bias_corrected_effects=args.bias_corrected,
        **extra,
    )


def _fit_evaluation_series(args: argparse.Namespace) -> int:
    """``fit DATA --province P --indicator N``: one series of the run's data, fitted with
    the run's settings by the run's own code (:func:`analysis.evaluation.fit_panel.fit_one`)."""
    from analysis.data.problems import DataValidationError
    from analysis.data.quality import CheckSettings
    from analysis.evaluation.fit_panel import fit_one
    from analysis.pipeline.run import read_inputs

    if args.province is None or args.indicator is None:
        print("error: give both --province and --indicator to refit a series of the evaluation's data", file=sys.stderr)
        return 2
    plain = [
        name
        for name in (
            "outcome",
            "intervention",
            "time",
            "family",
            "offset",
            "trials",
            "errors",
            "group",
            "by",
            "covariate",
        )
        if getattr(args, name) not in (None, False)
    ]
    if plain:
        print(
            f"error: --{plain[0].replace('_', '-')} is an option for plain files; with --province and "
            "--indicator the series is fitted with the run's settings",
            file=sys.stderr,
        )
        return 2
    try:
        settings = _settings(args)
        inputs = read_inputs([args.file], plan_dates=args.plan_dates, checks=CheckSettings(washin=settings.washin))
        rows = fit_one(
            inputs.panel, starts=inputs.starts, province=args.province, indicator=args.indicator, settings=settings
        )
    except DataValidationError as err:
        return _unusable(err)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    first = rows[0]
    keep = ("estimate", "se", "ci_low", "ci_high", "p_value", "df", "unit", "window_start", "window_end")
    record = {
        "province": first["province"],
        "indicator": first["indicator"],
        "family": first["family"],
        "cov_type": first["cov_type"],
        "start_month": rows[0]["window_start"],
        "settings": settings.as_dict(),
        "terms": [{"term": r["measure"], **{k: r[k] for k in keep if k in r}} for r in rows],
    }
    if args.json:
        print(json.dumps(record, ensure_ascii=False, default=float))
    else:
        print(", ".join(f"{k}={record[k]}" for k in ("province", "indicator", "family", "cov_type", "start_month")))
        print(pd.DataFrame(record["terms"]).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from analysis.its.command import CommandError, FitOptions, fit_file, parse_interventions

    if args.province is not None or args.indicator is not None:
        return _fit_evaluation_series(args)
    if args.outcome is None or not args.intervention:
        print(
            "error: a plain file needs --outcome and --intervention (or give --province and --indicator to "
            "refit a series of the evaluation's data)",
            file=sys.stderr,
        )
        return 2
    try:
        frame = pd.read_csv(args.file, encoding="utf-8-sig")
        options = FitOptions(
            outcome=args.outcome,
            interventions=parse_interventions(args.intervention),
            time=args.time,
            family=args.family,
            offset=args.offset,
            trials=args.trials,
            errors=args.errors,
            lags=args.lags,
            stata_newey=args.stata_newey,
            seasonality=args.seasonality or "none",
            slope_change=not args.no_slope_change,
            first_post_time=args.first_post_time,
            lagged_residual=args.lagged_residual,
            exclude=tuple(args.exclude or ()),
            group=args.group,
            treated=args.treated,
            design=args.design,
            covariates=tuple(args.covariate or ()),
            arima_order=args.arima_order,
            seasonal_order=args.seasonal_order,
            spring_festival=args.spring_festival,
            shocks=tuple(args.shock or ()),
            calendar=args.calendar,
        )
        records = fit_file(frame, options, by=args.by, source=str(args.file))
    except (CommandError, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for rec in records:
        if args.json:
            print(json.dumps(rec, ensure_ascii=False, default=float))
            continue
        head = {k: v for k, v in rec.items() if k != "terms"}
        print(", ".join(f"{k}={v}" for k, v in head.items()))
        if "terms" in rec:
            print(pd.DataFrame(rec["terms"]).to_string(index=False, float_format=lambda v: f"{v:.6g}"))
    return 1 if any("error" in rec for rec in records) else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    synth = sub.add_parser("synth", help="write the synthetic data set with its known truth")
    synth.add_argument("--out", required=True, type=Path, help="output directory")
    synth.add_argument("--seed", type=int, default=2023)
    synth.add_argument(
        "--no-co-interventions",
        action="store_true",
        help="leave out the DRG/DIP step that confounds indicators 14, 28 and 38",
    )
    synth.set_defaults(func=_synth)

    def add_check_options(command: argparse.ArgumentParser) -> None:
        command.add_argument(
            "--definition-changes",
            type=Path,
            default=None,
            help="CSV or Excel with province,indicator,month[,note] of changes of definition",
        )
        command.add_argument(
            "--min-points",
            type=int,
            default=None,
            help="fewest fitted months before the start and after the wash-in (default and lowest: 3)",
        )
        command.add_argument(
            "--recommended-points",
            type=int,
            default=None,
            help="fewer fitted months in a phase than this is a warning (default 8)",
        )
        command.add_argument(
            "--jump-z",
            type=float,
            default=None,
            help="robust z-score of a month-to-month change flagged as implausible (default 6)",
        )

    validate = sub.add_parser("validate", help="check data files and report every problem (exit 0 if usable)")
    validate.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="CSV, Excel or Parquet files (long or wide), or directories with panel.csv",
    )
    validate.add_argument("--plan-dates", type=Path, default=None, help="CSV with province,start_month")
    validate.add_argument("--format", choices=["text", "json", "csv", "html"], default="text")
    validate.add_argument("--out", type=Path, default=None, help="write the report here instead of printing it")
    validate.add_argument(
        "--washin", type=int, default=DEFAULTS.washin, help="months after the start left out of the fit"
    )
    add_check_options(validate)
    validate.set_defaults(func=_validate)

    template = sub.add_parser("template", help="write the Excel submission template")
    template.add_argument("--out", required=True, type=Path, help="the .xlsx file to write")
    template.add_argument(
        "--layout",
        choices=["long", "dimension", "wide"],
        default="long",
        help="one long sheet, one long sheet per dimension, or months as columns",
    )
    template.add_argument("--province", default=None, help="fill in the province (code or name)")
    template.add_argument("--start", default="2019-01", help="first month (YYYY-MM)")
    template.add_argument("--end", default="2025-12", help="last month (YYYY-MM)")
    template.add_argument("--force", action="store_true", help="replace an existing file")
    template.set_defaults(func=_template)

    run = sub.add_parser("run", help="fit every province x indicator, pool, write tables and the report")
    run.add_argument(
        "--data",
        required=True,
        nargs="+",
        type=Path,
        metavar="PATH",
        help="panel files (CSV, Excel, Parquet; long or wide) or a directory (see README: data contract)",
    )
    run.add_argument(
        "--exclude-invalid",
        action="store_true",
        help="leave out only the province x indicator series with errors (listed in the report and "
        "manifest) instead of refusing the data",
    )
    add_check_options(run)
    run.add_argument("--out", required=True, type=Path)
    run.add_argument("--plan-dates", type=Path, default=None, help="CSV with province,start_month")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    run.add_argument("--tables-only", action="store_true", help="write tables and manifest, no notebooks")
    run.add_argument("--lang", choices=["zh", "en"], default="zh", help="language of the notebooks and index")
    run.add_argument(
        "--report-langs",
        default="zh,en",
        type=_langs,
        metavar="zh,en",
        help="languages of the end-of-plan report (HTML, PDF, Excel in OUT/report); 'none' for none",
    )
    run.add_argument(
        "--comparisons",
        type=Path,
        default=None,
        metavar="CSV",
        help="indicator,comparison pairs: also fit each indicator as a controlled ITS against its "
        "comparison series and pool the differences (default: comparisons.csv in the data "
        "directory, if any; comparison names not numbers are series of comparison_series.csv)",
    )
    run.add_argument(
        "--no-robustness",
        dest="robustness",
        action="store_false",
        help="skip the refits for the robustness, placebo and multilevel-model tables (about 40 s)",
    )
    run.add_argument(
        "--no-cache",
        action="store_true",
        help="recompute every fit and page instead of reusing unchanged ones from OUT/.cache",
    )
    run.add_argument("--washin", type=int, default=DEFAULTS.washin, help="months after the start excluded from the fit")
    run.add_argument("--cov-type", default=DEFAULTS.cov_type, choices=list(COV_TYPES))
    run.add_argument("--seasonality", default=DEFAULTS.seasonality, help="none, month or fourier:K")
    run.add_argument(
        "--absolute-counts",
        default=DEFAULTS.pooling_absolute_counts,
        choices=list(ABSOLUTE_COUNTS),
        help="how national absolute effects of proportions and rates are pooled (default: unweighted "
        "mean of the provinces; see analysis.synthesis.national.national_effects)",
    )
    run.add_argument(
        "--bias-corrected",
        action="store_true",
        help="correct absolute and cumulative effects of proportions and rates for the bias of the "
        "back-transformed counterfactual (ITSResults.effect_at)",
    )
    run.set_defaults(func=_run)

    fit = sub.add_parser(
        "fit",
        help="fit one interrupted time-series model to a table, or refit one series of "
        "the evaluation's data with the run's settings (--province, --indicator)",
    )
    fit.add_argument(
        "file", type=Path, help="a table, or with --province/--indicator the run's data (file or directory)"
    )
    fit.add_argument(
        "--province",
        default=None,
        help="refit this province's series of the evaluation's data (code, Chinese or English name)",
    )
    fit.add_argument("--indicator", default=None, help="with --province: the annex number of the indicator")
    fit.add_argument(
        "--washin",
        type=int,
        default=DEFAULTS.washin,
        help="with --province: months after the start excluded from the fit, as run --washin",
    )
    fit.add_argument(
        "--cov-type",
        default=DEFAULTS.cov_type,
        choices=list(COV_TYPES),
        help="with --province: the covariance estimator, as run --cov-type",
    )
    fit.add_argument(
        "--plan-dates",
        type=Path,
        default=None,
        help="with --province: CSV with province,start_month, as run --plan-dates",
    )
    fit.add_argument(
        "--bias-corrected",
        action="store_true",
        help="with --province: bias-corrected absolute and cumulative effects, as run --bias-corrected",
    )
    fit.add_argument("--outcome", default=None, help="the outcome column (plain files)")
    fit.add_argument("--time", default=None, help="time column: integers or months (default: 'time')")
    fit.add_argument(
        "--intervention",
        action="append",
        default=None,
        help="first post-interruption time (repeat for several interruptions)",
    )
    fit.add_argument(
        "--family", default=None, choices=["gaussian", "poisson", "quasipoisson", "negbin", "binomial", "quasibinomial"]
    )
    fit.add_argument("--offset", default=None, help="denominator column used as a log offset (rates)")
    fit.add_argument("--trials", default=None, help="binomial denominator column (proportions)")
    fit.add_argument(
        "--errors",
        default=None,
        choices=["independent", "ols", "newey-west", "latent-ar1", "prais-winsten", "reml-ar1", "arima"],
    )
    fit.add_argument("--lags", type=int, default=None, help="Newey-West lag (default: floor(4 (n/100)^(2/9)))")
    fit.add_argument(
        "--stata-newey",
        action="store_true",
        help="Newey-West as Stata's newey/itsa: n/(n-k) scaling; stacked series as one sequence",
    )
    fit.add_argument(
        "--seasonality",
        default=None,
        help="none, month or fourier:K (default: none for plain files, month with --province)",
    )
    fit.add_argument("--no-slope-change", action="store_true")
    fit.add_argument("--first-post-time", type=int, choices=[0, 1], default=0)
    fit.add_argument("--lagged-residual", action="store_true")
    fit.add_argument("--exclude", nargs="+", default=None, help="time values left out of the fit")
    fit.add_argument("--group", default=None, help="unit column for a controlled ITS")
    fit.add_argument("--treated", default=None, help="the treated unit's value of --group")
    fit.add_argument("--design", choices=["segmented", "forecast"], default="segmented")
    fit.add_argument("--by", default=None, help="fit each group of this column separately")
    fit.add_argument(
        "--covariate",
        action="append",
        default=None,
        metavar="COLUMN",
        help="a time-varying confounder adjusted for (repeat for several); reported as a term named after its column",
    )
    fit.add_argument(
        "--arima-order",
        default="1,0,0",
        metavar="p,d,q",
        help="with --errors arima: the ARIMA order of the errors (default 1,0,0), or 'auto': "
        "chosen by AICc on the pre-period as forecast::auto.arima (p, q <= 3; P, Q <= 1 "
        "for monthly data)",
    )
    fit.add_argument(
        "--seasonal-order",
        default="0,0,0,0",
        metavar="P,D,Q,s",
        help="with --errors arima: the seasonal order and period, e.g. 0,1,1,12 (default none)",
    )
    fit.add_argument(
        "--calendar",
        choices=list(CALENDARS),
        default="none",
        help="china: Spring Festival days and the nationwide COVID-19 shock months, as the "
        "evaluation's run uses them (monthly data)",
    )
    fit.add_argument(
        "--spring-festival",
        action="store_true",
        help="Spring Festival holiday days in the month as a regressor (monthly data)",
    )
    fit.add_argument(
        "--shock",
        action="append",
        default=None,
        metavar="YYYY-MM",
        help="a one-period shock dummy (repeat for several), e.g. --shock 2022-12 --shock 2023-01",
    )
    fit.add_argument("--json", action="store_true")
    fit.set_defaults(func=_fit)

    report = sub.add_parser("report", help="end-of-plan report (HTML, PDF, Excel) from the tables of an earlier run")
    report.add_argument(
        "--from",
        dest="from_dir",
        required=True,
        type=Path,
        metavar="RUN_DIR",
        help="run directory written by 'run' (tables/, manifest.json)",
    )
    report.add_argument("--out", required=True, type=Path, help="output directory (may be the run directory)")
    report.add_argument("--lang", choices=["zh", "en"], default="zh")
    report.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="processes drawing figures and writing the workbook"
    )
    report.add_argument("--formats", default="html,pdf,xlsx", help="comma-separated subset of html,pdf,xlsx")
    report.set_defaults(func=_report)

    pool = sub.add_parser("pool", help="random-effects meta-analysis of one estimate per row")
    pool.add_argument("file", type=Path)
    pool.add_argument("--estimate", required=True)
    pool.add_argument("--se", required=True)
    pool.add_argument("--by", action="append", default=None)
    pool.add_argument("--method", choices=["reml", "dl", "fe", "pm", "ml"], default="reml")
    pool.add_argument("--hksj", action="store_true")
    pool.add_argument(
        "--hksj-floor",
        action="store_true",
        help="HKSJ with its factor floored at 1 (metafor test='adhoc'); implies --hksj",
    )
    pool.add_argument(
        "--weights",
        choices=["inverse-variance", "equal"],
        default="inverse-variance",
        help="'equal' averages the units unweighted (for effects that grow with their SE)",
    )
    pool.add_argument("--level", type=float, default=0.95)
    pool.add_argument("--json", action="store_true")
    pool.set_defaults(func=_pool)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
