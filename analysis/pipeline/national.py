"""National pooling of provincial effects, one meta-analysis per indicator and measure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.synthesis.pooling import pool_frame

#: Measures pooled nationally and the scale on which they are pooled.
POOLED_MEASURES = ("level_change", "slope_change", "effect_end_absolute", "effect_end_relative")


def pooling_inputs(effects: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Provincial estimates on the pooling scale with their standard errors.

    Relative effects (ratio - 1) are pooled as log ratios, whose sampling distribution is
    closer to normal; their standard error is recovered from the log-scale interval.
    """
    frame = effects[effects["measure"].isin(POOLED_MEASURES)].copy()
    frame = frame[np.isfinite(frame["estimate"]) & np.isfinite(frame["se"]) & (frame["se"] > 0)]
    relative = frame["measure"] == "effect_end_relative"
    crit = np.where(np.isfinite(frame["df"]), stats.t.ppf(0.5 + level / 2, frame["df"].clip(lower=1)),
                    stats.norm.ppf(0.5 + level / 2))
    frame["pool_estimate"] = frame["estimate"]
    frame.loc[relative, "pool_estimate"] = np.log1p(frame.loc[relative, "estimate"])
    frame["pool_se"] = frame["se"]
    frame.loc[relative, "pool_se"] = ((np.log1p(frame.loc[relative, "ci_high"]) - np.log1p(frame.loc[relative, "ci_low"]))
                                      / (2 * crit[relative.to_numpy()]))
    return frame


def national_effects(effects: pd.DataFrame, *, method: str = "reml", hksj: bool = True,
                     level: float = 0.95, hksj_floor: bool = True) -> pd.DataFrame:
    """Random-effects national estimate per indicator and measure.

    Returns one row per indicator x measure with the pooled ``estimate``, ``ci_low``,
    ``ci_high``, ``p_value``, prediction interval (``pi_low``, ``pi_high``), ``tau2``,
    ``i2`` (percent) and ``k`` (provinces). Relative effects are back-transformed to
    ratio - 1 (``tau2`` stays on the log scale). With ``hksj`` the Knapp-Hartung factor is
    floored at 1 unless ``hksj_floor`` is false (see :mod:`analysis.synthesis.pooling`).
    """
    inputs = pooling_inputs(effects, level=level)
    if inputs.empty:
        return pd.DataFrame(columns=["indicator", "measure", "estimate", "ci_low", "ci_high", "p_value"])
    pooled = pool_frame(inputs, estimate="pool_estimate", se="pool_se", by=["indicator", "measure"],
                        method=method, hksj=hksj, level=level, hksj_floor=hksj_floor)
    relative = pooled["measure"] == "effect_end_relative"
    for col in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        pooled.loc[relative, col] = np.expm1(pooled.loc[relative, col])
    pooled.loc[relative, "se"] = np.nan  # a log-scale se does not describe ratio - 1
    scales = inputs.drop_duplicates(["indicator", "measure"]).set_index(["indicator", "measure"])["scale"]
    pooled["scale"] = [scales.get((i, m), "") for i, m in zip(pooled["indicator"], pooled["measure"])]
    return pooled
