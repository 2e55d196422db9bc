"""Speed benchmarks, reported as ratios measured within one run (machines are shared and noisy).

Usage: ``python benchmarks/run.py`` (or ``make benchmark``).
"""

from __future__ import annotations

import os
import time

import pandas as pd

from analysis.data.contract import validate_panel
from analysis.data.synthetic import generate
from analysis.its import SegmentedRegression
from analysis.pipeline.fit_panel import fit_panel
from analysis.pipeline.settings import EvaluationSettings


def canonical(panel: pd.DataFrame) -> pd.DataFrame:
    """The generator's panel checked and canonicalised as a file would be."""
    return validate_panel(panel, source="synthetic panel")


def timed(func, *args, **kwargs) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def main() -> None:
    data = generate(2023)
    panel = canonical(data.panel)
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    cores = os.cpu_count() or 1
    serial = timed(fit_panel, panel, starts=starts, workers=1)
    parallel = timed(fit_panel, panel, starts=starts, workers=cores)
    print(f"full panel (992 series): 1 worker {serial:.1f} s, {cores} workers {parallel:.1f} s, "
          f"speed-up x{serial / parallel:.2f}")

    series = panel[(panel["province"] == "440000") & (panel["indicator"] == 32)]
    design = EvaluationSettings().design(starts["440000"])
    model = SegmentedRegression(series["numerator"].to_numpy(), months=pd.PeriodIndex(series["month"]),
                                design=design, family="binomial", trials=series["denominator"].to_numpy())
    reps = 50
    cost = {cov: timed(lambda c=cov: [model.fit(cov_type=c) for _ in range(reps)]) / reps
            for cov in ("model", "newey-west", "latent-ar1")}
    for cov, seconds in cost.items():
        print(f"one binomial fit with {cov:>10} covariance: {1000 * seconds:.1f} ms "
              f"(x{seconds / cost['model']:.2f} of model-based)")


if __name__ == "__main__":
    main()
