"""Coverage of 95% intervals by covariance estimator: a simulation with known truth.

Monthly series 2019-01..2025-12, interruption 2023-06 with a 3-month wash-in, latent AR(1)
noise on the link scale (phi drawn from 0.3-0.6) plus binomial sampling error, and a Gaussian
variant. Prints the share of intervals that cover the true level change, slope change and
relative effect at 2025-09 for each estimator. Usage: ``python benchmarks/covariance_coverage.py [reps]``.
"""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
from scipy.special import expit

from analysis.its import ITSDesign, SegmentedRegression


def ar1(rng, n, phi, sd):
    u = np.empty(n)
    u[0] = rng.normal(0, sd / np.sqrt(1 - phi**2))
    for t in range(1, n):
        u[t] = phi * u[t - 1] + rng.normal(0, sd)
    return u


def study(family: str, size: tuple[int, int], reps: int, seed: int = 1) -> pd.DataFrame:
    months = pd.period_range("2019-01", "2025-12", freq="M")
    design = ITSDesign(interruption="2023-06", washin=3)
    X = design.matrix(months)
    level, slope = 0.08, 0.004
    eta = (
        -1.2
        + 0.003 * X["time"].to_numpy()
        + level * X["level_change"].to_numpy()
        + slope * X["slope_change"].to_numpy()
    )
    end = months.get_loc(pd.Period("2025-09", "M"))
    rows = []
    rng = np.random.default_rng(seed)
    for _ in range(reps):
        u = ar1(rng, len(months), rng.uniform(0.3, 0.6), 0.04)
        if family == "binomial":
            n = rng.integers(*size, len(months))
            y, kw, inv = rng.binomial(n, expit(eta + u)), {"trials": n}, expit
        else:
            y, kw, inv = 10 + eta + u, {}, (lambda e: e)
        shift = 0 if family == "binomial" else 10
        true_rel = inv(eta[end] + shift) / inv(eta[end] + shift - level - slope * 27) - 1
        for cov in ("latent-ar1", "newey-west", "quasi"):
            res = SegmentedRegression(y, months=months, design=design, family=family, **kw).fit(cov_type=cov)
            lc, sc = res.coefficient("level_change"), res.coefficient("slope_change")
            _, rel = res.effect_at("2025-09")
            rows.append(
                {
                    "cov_type": cov,
                    "level": lc.ci_low <= level <= lc.ci_high,
                    "slope": sc.ci_low <= slope <= sc.ci_high,
                    "relative": rel.ci_low <= true_rel <= rel.ci_high,
                }
            )
    return pd.DataFrame(rows).groupby("cov_type").mean()


def main() -> None:
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    for family, size in (("binomial", (800, 4000)), ("binomial", (50, 200)), ("gaussian", (0, 0))):
        print(f"\n{family} {size if family == 'binomial' else ''} ({reps} replicates): coverage of 95% intervals")
        print(study(family, size, reps).round(3).to_string())


if __name__ == "__main__":
    main()
