"""Speed benchmarks, reported as ratios measured within one run (machines are shared and noisy).

Usage: ``python benchmarks/run.py`` (or ``make benchmark``).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import statsmodels.api as sm

from analysis.data.contract import validate_panel
from analysis.data.synthetic import generate
from analysis.evaluation.fit_panel import fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.its import SegmentedRegression


def canonical(panel: pd.DataFrame) -> pd.DataFrame:
    """The generator's panel checked and canonicalised as a file would be."""
    return validate_panel(panel, source="synthetic panel")


def timed(func, *args, **kwargs) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def plain_statsmodels_loop(panel: pd.DataFrame, starts: dict) -> None:
    """The reference: one statsmodels GLM per series with the same design, nothing else
    (no covariance adjustment, effects, predictions or diagnostics)."""
    settings = EvaluationSettings()
    for (province, _number), series in panel.groupby(["province", "indicator"]):
        design = settings.design(starts[province])
        months = pd.PeriodIndex(series["month"])
        keep = design.fit_mask(months)
        X = design.matrix(months[keep]).to_numpy()
        measure = series["measure"].iat[0]
        if measure == "proportion":
            y, n = series["numerator"].to_numpy()[keep], series["denominator"].to_numpy()[keep]
            sm.GLM(np.column_stack([y, n - y]), X, family=sm.families.Binomial()).fit()
        elif measure == "rate":
            sm.GLM(
                series["numerator"].to_numpy()[keep],
                X,
                family=sm.families.Poisson(),
                exposure=series["denominator"].to_numpy()[keep],
            ).fit()
        else:
            sm.GLM(series["value"].to_numpy()[keep], X).fit()


def main() -> None:
    data = generate(2023)
    panel = canonical(data.panel)
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    cores = os.cpu_count() or 1
    plain = timed(plain_statsmodels_loop, panel, starts)
    serial = timed(fit_panel, panel, starts=starts, workers=1)
    parallel = timed(fit_panel, panel, starts=starts, workers=cores)
    print(
        f"992 series: plain statsmodels GLM loop {plain:.1f} s (1 process); package defaults with "
        f"effects, predictions and diagnostics: 1 worker {serial:.1f} s (x{serial / plain:.2f} of the plain "
        f"loop), {cores} workers {parallel:.1f} s (x{parallel / plain:.2f}; speed-up x{serial / parallel:.2f})"
    )

    series = panel[(panel["province"] == "440000") & (panel["indicator"] == 32)]
    design = EvaluationSettings().design(starts["440000"])
    model = SegmentedRegression(
        series["numerator"].to_numpy(),
        time=pd.PeriodIndex(series["month"]),
        design=design,
        family="binomial",
        trials=series["denominator"].to_numpy(),
    )
    reps = 50
    cost = {
        cov: timed(lambda c=cov: [model.fit(cov_type=c) for _ in range(reps)]) / reps
        for cov in ("model", "newey-west", "latent-ar1")
    }
    for cov, seconds in cost.items():
        print(
            f"one binomial fit with {cov:>10} covariance: {1000 * seconds:.1f} ms "
            f"(x{seconds / cost['model']:.2f} of model-based)"
        )


if __name__ == "__main__":
    main()
