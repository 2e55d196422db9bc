"""Command line: ``python -m analysis {synth,run,pool} ...``."""

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
