"""Coverage study: how often do 95% intervals cover the truth, by estimator?

Series are simulated with known level change, slope change and end-of-period effect:
a linear predictor with trend and changes, month-of-year seasonality, and AR(1) noise on
the link scale (plus binomial or Poisson sampling for count families). Each replicate is
fitted with every estimator; the share of intervals containing the truth is the empirical
coverage. Run the full grid with ``python -m analysis.its.simulation --reps 400`` (it writes
``docs/coverage_table.md`` and ``docs/coverage.csv``, summarised in ``docs/coverage.md``); a
fast version runs in the test suite.
"""

from __future__ import annotations

import argparse
import itertools
import os
import warnings
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.its.design import ITSDesign
from analysis.its.model import SegmentedRegression, ShortSeriesWarning

#: Series lengths (pre, post) typical of the plan: short, medium and the plan's own.
LENGTHS = ((12, 12), (24, 24), (53, 28))
RHOS = (0.0, 0.3, 0.6)
FAMILIES = ("gaussian", "poisson", "binomial")
TRUE_LEVEL, TRUE_SLOPE = 0.10, 0.005


@dataclass(frozen=True)
class Scenario:
    family: str
    n_pre: int
    n_post: int
    rho: float


def _fit_with(method: str) -> Callable[[SegmentedRegression], object]:
    """Estimator by name: a covariance type of the GLM fit, or another fitting method."""
    kind, _, option = method.partition(":")
    if kind == "newey-west":
        return lambda m: m.fit(cov_type="newey-west", lags=int(option) if option else None)
    if kind in ("latent-ar1", "model", "quasi"):
        return lambda m: m.fit(cov_type=kind)
    if kind == "lagged-residual":
        return lambda m: m.fit(cov_type="quasi" if m.family.name != "gaussian" else "model", lagged_residual=True)
    from analysis.its import autoregressive

    options = {"df_method": option} if kind == "reml-ar" and option else {}
    return lambda m: autoregressive.fit_autoregressive(m, method=kind, **options)


def default_methods(family: str) -> list[str]:
    """Estimators compared for each family (those available in this installation)."""
    methods = (
        ["model", "quasi", "newey-west", "lagged-residual", "latent-ar1"]
        if family != "gaussian"
        else ["model", "newey-west", "latent-ar1"]
    )
    try:
        from analysis.its import autoregressive  # noqa: F401

        if family == "gaussian":
            methods += ["prais-winsten", "reml-ar:kenward-roger", "reml-ar:satterthwaite", "arima"]
    except ImportError:
        pass
    return methods


def simulate(scenario: Scenario, rng: np.random.Generator) -> tuple[np.ndarray, dict, pd.Index, ITSDesign, float]:
    """One series: outcome, model keyword arguments, time, design and the true relative
    effect at the last month."""
    n = scenario.n_pre + scenario.n_post
    months = pd.period_range("2019-01", periods=n, freq="M")
    # Fourier seasonality: month dummies are not identified with one year on each side.
    design = ITSDesign(interruption=months[scenario.n_pre], seasonality="fourier:1", spring_festival=False, shocks=())
    X = design.matrix(months)
    seasonal = 0.05 * np.sin(2 * np.pi * np.asarray(months.month) / 12)
    eta = (
        -1.5
        + 0.002 * X["time"].to_numpy()
        + seasonal
        + TRUE_LEVEL * X["level_change"].to_numpy()
        + TRUE_SLOPE * X["slope_change"].to_numpy()
    )
    sd = 0.05
    u = np.empty(n)
    u[0] = rng.normal(0, sd / np.sqrt(1 - scenario.rho**2))
    for t in range(1, n):
        u[t] = scenario.rho * u[t - 1] + rng.normal(0, sd)
    effect = TRUE_LEVEL + TRUE_SLOPE * (scenario.n_post - 1)
    if scenario.family == "binomial":
        trials = rng.integers(1500, 3000, n)
        y, kwargs = rng.binomial(trials, expit(eta + u)), {"trials": trials}
        true_rel = expit(eta[-1]) / expit(eta[-1] - effect) - 1
    elif scenario.family == "poisson":
        exposure = rng.integers(20_000, 40_000, n).astype(float)
        y, kwargs = rng.poisson(exposure * np.exp(eta + u)), {"exposure": exposure}
        true_rel = np.expm1(effect)
    else:
        y, kwargs = 10 + eta + u, {}
        true_rel = (10 + eta[-1]) / (10 + eta[-1] - effect) - 1
    return y.astype(float), kwargs, months, design, float(true_rel)


def run_scenario(scenario: Scenario, *, reps: int, methods: list[str] | None = None, seed: int = 0) -> pd.DataFrame:
    """Coverage of each estimator in one scenario (``reps`` replicates)."""
    methods = methods or default_methods(scenario.family)
    fitters = {m: _fit_with(m) for m in methods}
    rng = np.random.default_rng(
        [seed, scenario.n_pre, scenario.n_post, int(scenario.rho * 10), FAMILIES.index(scenario.family)]
    )
    hits = {m: [] for m in methods}
    for _ in range(reps):
        y, kwargs, months, design, true_rel = simulate(scenario, rng)
        model = SegmentedRegression(y, time=months, design=design, family=scenario.family, **kwargs)
        for method, fit in fitters.items():
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ShortSeriesWarning)
                    res = fit(model)
                lc, sc = res.coefficient("level_change"), res.coefficient("slope_change")
                _, rel = res.effect_at(months[-1])
                hits[method].append(
                    (
                        lc.ci_low <= TRUE_LEVEL <= lc.ci_high,
                        sc.ci_low <= TRUE_SLOPE <= sc.ci_high,
                        rel.ci_low <= true_rel <= rel.ci_high,
                        False,
                    )
                )
            except Exception:  # a failed fit counts as a miss, and is reported
                hits[method].append((False, False, False, True))
    rows = []
    for method, values in hits.items():
        a = np.array(values, dtype=float)
        rows.append(
            {
                "family": scenario.family,
                "n_pre": scenario.n_pre,
                "n_post": scenario.n_post,
                "rho": scenario.rho,
                "method": method,
                "reps": reps,
                "level_change": a[:, 0].mean(),
                "slope_change": a[:, 1].mean(),
                "effect_end_relative": a[:, 2].mean(),
                "failed": a[:, 3].mean(),
            }
        )
    return pd.DataFrame(rows)


def _run(args: tuple[Scenario, int, int, list[str] | None]) -> pd.DataFrame:
    scenario, reps, seed, methods = args
    if methods is not None:
        methods = [m for m in methods if m in default_methods(scenario.family)] or None
    return run_scenario(scenario, reps=reps, seed=seed, methods=methods)


def coverage_grid(
    *,
    reps: int,
    families=FAMILIES,
    lengths=LENGTHS,
    rhos=RHOS,
    seed: int = 0,
    workers: int = 1,
    methods: list[str] | None = None,
) -> pd.DataFrame:
    """The whole grid: every family x length x rho x estimator (or only ``methods``)."""
    scenarios = [Scenario(f, a, b, r) for f, (a, b), r in itertools.product(families, lengths, rhos)]
    jobs = [(s, reps, seed, methods) for s in scenarios]
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_run, jobs))
    else:
        parts = [_run(job) for job in jobs]
    return pd.concat(parts, ignore_index=True)


def markdown(table: pd.DataFrame) -> str:
    """The grid as a Markdown table, one row per scenario and estimator."""
    lines = [
        "| family | pre+post | rho | estimator | level change | slope change | relative effect | failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in table.itertuples():
        lines.append(
            f"| {row.family} | {row.n_pre}+{row.n_post} | {row.rho:.1f} | {row.method} | "
            f"{row.level_change:.3f} | {row.slope_change:.3f} | {row.effect_end_relative:.3f} | {row.failed:.3f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="coverage study of ITS interval estimators")
    parser.add_argument("--reps", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--out", type=Path, default=Path("docs/coverage_table.md"))
    parser.add_argument("--csv", type=Path, default=Path("docs/coverage.csv"))
    parser.add_argument("--methods", default=None, help="comma-separated estimators (default: all)")
    args = parser.parse_args(argv)
    methods = args.methods.split(",") if args.methods else None
    table = coverage_grid(reps=args.reps, seed=args.seed, workers=args.workers, methods=methods)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.csv, index=False)
    args.out.write_text(
        f"Replicates per scenario: {args.reps}; seed {args.seed}.\n\n{markdown(table)}\n", encoding="utf-8"
    )
    print(markdown(table))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
