"""Command line: ``python -m analysis {synth,run,fit,pool} ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import pandas as pd


def _synth(args: argparse.Namespace) -> int:
    from analysis.data.synthetic import generate, write

    start = time.perf_counter()
    data = generate(args.seed, co_interventions=not args.no_co_interventions)
    paths = write(data, args.out)
    print(f"   synth: {time.perf_counter() - start:.1f} s, {len(data.panel)} rows -> {paths['panel']}")
    return 0


def _run(args: argparse.Namespace) -> int:
    from analysis.data.problems import DataValidationError
    from analysis.pipeline.run import run_evaluation
    from analysis.pipeline.settings import EvaluationSettings

    settings = EvaluationSettings(washin=args.washin, cov_type=args.cov_type, seasonality=args.seasonality)
    start = time.perf_counter()
    try:
        summary = run_evaluation(args.data, args.out, plan_dates=args.plan_dates, settings=settings,
                                 workers=args.workers, tables_only=args.tables_only, lang=args.lang,
                                 progress=sys.stderr.isatty())
    except DataValidationError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
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
    if not args.tables_only:
        print(f"report: {summary.out_dir / 'index.html'}")
    return 1 if bad else 0


def _pool(args: argparse.Namespace) -> int:
    from analysis.synthesis.pooling import pool_frame

    frame = pd.read_csv(args.file)
    pooled = pool_frame(frame, estimate=args.estimate, se=args.se, by=args.by, method=args.method,
                        hksj=args.hksj, level=args.level)
    if args.json:
        for record in pooled.to_dict(orient="records"):
            print(json.dumps(record, ensure_ascii=False, default=float))
    else:
        print(pooled.to_string(index=False))
    return 0


def _fit(args: argparse.Namespace) -> int:
    from analysis.its.command import CommandError, FitOptions, fit_file, parse_interventions

    try:
        frame = pd.read_csv(args.file, encoding="utf-8-sig")
        options = FitOptions(
            outcome=args.outcome, interventions=parse_interventions(args.intervention), time=args.time,
            family=args.family, offset=args.offset, trials=args.trials, errors=args.errors, lags=args.lags, stata_newey=args.stata_newey,
            seasonality=args.seasonality, slope_change=not args.no_slope_change,
            first_post_time=args.first_post_time, lagged_residual=args.lagged_residual,
            exclude=tuple(args.exclude or ()), group=args.group, treated=args.treated, design=args.design,
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
    synth.add_argument("--no-co-interventions", action="store_true",
                       help="leave out the DRG/DIP step that confounds indicators 14, 28 and 38")
    synth.set_defaults(func=_synth)

    run = sub.add_parser("run", help="fit every province x indicator, pool, write tables and the report")
    run.add_argument("--data", required=True, type=Path, help="panel file or directory (see README: data contract)")
    run.add_argument("--out", required=True, type=Path)
    run.add_argument("--plan-dates", type=Path, default=None, help="CSV with province,start_month")
    run.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    run.add_argument("--tables-only", action="store_true", help="write tables and manifest, no notebooks")
    run.add_argument("--lang", choices=["zh", "en"], default="zh")
    run.add_argument("--washin", type=int, default=3, help="months after the start excluded from the fit")
    run.add_argument("--cov-type", default="latent-ar1", choices=["latent-ar1", "newey-west", "quasi", "model"])
    run.add_argument("--seasonality", default="month", help="none, month or fourier:K")
    run.set_defaults(func=_run)

    fit = sub.add_parser("fit", help="fit one interrupted time-series model to a table")
    fit.add_argument("file", type=Path)
    fit.add_argument("--outcome", required=True)
    fit.add_argument("--time", default=None, help="time column: integers or months (default: 'time')")
    fit.add_argument("--intervention", action="append", required=True,
                     help="first post-interruption time (repeat for several interruptions)")
    fit.add_argument("--family", default=None,
                     choices=["gaussian", "poisson", "quasipoisson", "negbin", "binomial", "quasibinomial"])
    fit.add_argument("--offset", default=None, help="denominator column used as a log offset (rates)")
    fit.add_argument("--trials", default=None, help="binomial denominator column (proportions)")
    fit.add_argument("--errors", default=None,
                     choices=["independent", "ols", "newey-west", "latent-ar1", "prais-winsten", "reml-ar1", "arima"])
    fit.add_argument("--lags", type=int, default=None, help="Newey-West lag (default: floor(4 (n/100)^(2/9)))")
    fit.add_argument("--stata-newey", action="store_true", help="Newey-West as Stata's newey/itsa: n/(n-k) scaling; stacked series as one sequence")
    fit.add_argument("--seasonality", default="none", help="none, month or fourier:K")
    fit.add_argument("--no-slope-change", action="store_true")
    fit.add_argument("--first-post-time", type=int, choices=[0, 1], default=0)
    fit.add_argument("--lagged-residual", action="store_true")
    fit.add_argument("--exclude", nargs="+", default=None, help="time values left out of the fit")
    fit.add_argument("--group", default=None, help="unit column for a controlled ITS")
    fit.add_argument("--treated", default=None, help="the treated unit's value of --group")
    fit.add_argument("--design", choices=["segmented", "forecast"], default="segmented")
    fit.add_argument("--by", default=None, help="fit each group of this column separately")
    fit.add_argument("--json", action="store_true")
    fit.set_defaults(func=_fit)

    pool = sub.add_parser("pool", help="random-effects meta-analysis of one estimate per row")
    pool.add_argument("file", type=Path)
    pool.add_argument("--estimate", required=True)
    pool.add_argument("--se", required=True)
    pool.add_argument("--by", action="append", default=None)
    pool.add_argument("--method", choices=["reml", "dl", "fe", "pm", "ml"], default="reml")
    pool.add_argument("--hksj", action="store_true")
    pool.add_argument("--level", type=float, default=0.95)
    pool.add_argument("--json", action="store_true")
    pool.set_defaults(func=_pool)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)
