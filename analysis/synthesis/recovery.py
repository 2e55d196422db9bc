"""Compare estimates with the known truth of a synthetic data set (coverage, error rates)."""

from __future__ import annotations

import numpy as np
import pandas as pd

TRUTH_MEASURES = ("level_change", "slope_change", "effect_end_absolute", "effect_end_relative", "effect_cumulative")


def recovery_table(effects: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """One row per estimated effect with its true value and whether the interval covers it.

    ``truth`` is the synthetic generator's ``truth.csv`` (one row per province x indicator
    with a column per measure, plus ``zero_effect`` and ``confounded``).
    """
    truth = truth.assign(province=truth["province"].astype(str))
    long = truth.melt(
        id_vars=["province", "indicator", "zero_effect", "confounded"],
        value_vars=[m for m in TRUTH_MEASURES if m in truth],
        var_name="measure",
        value_name="true_value",
    )
    merged = effects.assign(province=effects["province"].astype(str)).merge(
        long, on=["province", "indicator", "measure"], how="inner", validate="one_to_one"
    )
    merged["covered"] = (merged["ci_low"] <= merged["true_value"]) & (merged["true_value"] <= merged["ci_high"])
    merged["significant"] = merged["p_value"] < 0.05
    merged["error"] = merged["estimate"] - merged["true_value"]
    return merged


def coverage_summary(recovery: pd.DataFrame, *, include_confounded: bool = False) -> pd.DataFrame:
    """Per measure: number of series, interval coverage, the share of true-zero effects
    found significant (false-positive rate) and the share of non-zero effects found
    significant (power). Series marked confounded (a co-intervention the model does not
    include) are left out unless ``include_confounded``."""
    frame = recovery if include_confounded else recovery[~recovery["confounded"].astype(bool)]
    frame = frame[np.isfinite(frame["true_value"]) & np.isfinite(frame["estimate"])]
    zero = frame["zero_effect"].astype(bool)
    return pd.DataFrame(
        {
            "n": frame.groupby("measure").size(),
            "coverage": frame.groupby("measure")["covered"].mean(),
            "false_positive_rate": frame[zero].groupby("measure")["significant"].mean(),
            "power": frame[~zero].groupby("measure")["significant"].mean(),
            "median_abs_error": frame.groupby("measure")["error"].apply(lambda e: float(np.median(np.abs(e)))),
        }
    ).reset_index()
