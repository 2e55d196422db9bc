"""National pooling of provincial effects, one meta-analysis per indicator and measure."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.evaluation.settings import ABSOLUTE_COUNTS
from analysis.its.effects import critical_value, linear_from_se
from analysis.registry import get_indicator
from analysis.synthesis.pooling import pool_frame_mixed

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
    crit = critical_value(frame["df"].clip(lower=1).to_numpy(dtype=float), level)
    frame["pool_estimate"] = frame["estimate"]
    frame.loc[relative, "pool_estimate"] = np.log1p(frame.loc[relative, "estimate"])
    frame["pool_se"] = frame["se"]
    frame.loc[relative, "pool_se"] = (
        np.log1p(frame.loc[relative, "ci_high"]) - np.log1p(frame.loc[relative, "ci_low"])
    ) / (2 * crit[relative.to_numpy()])
    return frame


#: How :func:`national_effects` pools the end-of-plan absolute effects of count indicators.

#: ``pooled_as`` of each way of pooling a row.
POOLED_AS = {
    "inverse-variance": "random effects",
    "equal": "random effects, equal weights",
    "relative": "relative x mean counterfactual",
    "sum": "sum of provinces",
}

#: Measures that are added up over the provinces rather than averaged (:func:`national_totals`).
SUMMED_MEASURES = ("effect_cumulative",)


def national_effects(
    effects: pd.DataFrame,
    *,
    method: str = "reml",
    hksj: bool = True,
    level: float = 0.95,
    hksj_floor: bool = True,
    absolute_counts: str = "equal",
    totals: bool = True,
) -> pd.DataFrame:
    """Random-effects national estimate per indicator and measure.

    Returns one row per indicator x measure with the pooled ``estimate``, ``ci_low``,
    ``ci_high``, ``p_value``, prediction interval (``pi_low``, ``pi_high``), ``tau2``,
    ``i2`` (percent) and ``k`` (provinces). Relative effects are back-transformed to
    ratio - 1 (``tau2`` stays on the log scale). With ``hksj`` the Knapp-Hartung factor is
    floored at 1 unless ``hksj_floor`` is false (see :mod:`analysis.synthesis.pooling`).
    ``pooled_as`` says how each row was obtained (the values of :data:`POOLED_AS`), and
    ``df`` is the degrees of freedom of the interval (``k - 1`` with HKSJ, infinite for a
    Wald interval).

    With ``totals`` the cumulative effects (extra events, negative: events averted) are
    added up over the provinces as well (:func:`national_totals`): a national count, not a
    mean, pooled as ``sum of provinces``.

    ``absolute_counts`` chooses how the end-of-plan *absolute* effect of indicators modelled
    on the log or logit scale (proportions and rates) is pooled; everything else, and the
    absolute effects of means, is pooled with inverse-variance weights:

    ``"equal"`` (default)
        The unweighted mean of the provinces' absolute effects with the Knapp-Hartung
        (one-sample t) interval (``pool(..., weights="equal")``). A province's absolute
        effect is its counterfactual level times its relative effect, and its standard
        error grows with that level (binomial and Poisson variances grow with the rate), so
        inverse-variance weights give the provinces with the largest effects the least
        weight. In the simulation study (``docs/national_coverage.md``) that biased the
        pooled absolute effect of indicator 26 by -11 to -14% (coverage 85-91%); the
        unweighted mean is unbiased for the mean province effect.
    ``"inverse-variance"``
        As every other measure.
    ``"relative"``
        The pooled relative effect applied to the provinces' mean counterfactual level
        (:func:`absolute_at_mean_counterfactual`); it estimates a slightly different
        quantity (the mean level times the typical relative effect) and overstated the
        reductions of the rare outcomes 31 and 34 in the simulation study.
    """
    inputs = pooling_inputs(effects, level=level)
    summed = national_totals(effects, level=level) if totals else pd.DataFrame()
    if inputs.empty:
        if len(summed):
            return summed
        return pd.DataFrame(columns=["indicator", "measure", "estimate", "ci_low", "ci_high", "p_value"])
    equal = equal_weight_rows(inputs, measure="effect_end_absolute", absolute_counts=absolute_counts, derives=True)
    pooled = pool_frame_mixed(
        inputs,
        equal=equal,
        by=["indicator", "measure"],
        estimate="pool_estimate",
        se="pool_se",
        method=method,
        hksj=hksj,
        level=level,
        hksj_floor=hksj_floor,
    )
    pooled["pooled_as"] = pooled["weights"].map(POOLED_AS)
    relative = pooled["measure"] == "effect_end_relative"
    for col in ("estimate", "ci_low", "ci_high", "pi_low", "pi_high"):
        pooled.loc[relative, col] = np.expm1(pooled.loc[relative, col])
    pooled.loc[relative, "se"] = np.nan  # a log-scale se does not describe ratio - 1
    scales = inputs.drop_duplicates(["indicator", "measure"]).set_index(["indicator", "measure"])["scale"]
    pooled["scale"] = [scales.get((i, m), "") for i, m in zip(pooled["indicator"], pooled["measure"])]
    pooled["df"] = np.where(pooled["hksj"], pooled["k"] - 1.0, np.inf)
    pooled = pooled[[c for c in pooled.columns if c != "pooled_as"] + ["pooled_as"]]
    if absolute_counts == "relative":
        pooled = absolute_at_mean_counterfactual(pooled, effects, level=level)
    if len(summed):
        pooled = pd.concat(
            [pooled, summed[[c for c in pooled.columns if c in summed.columns]]], ignore_index=True
        ).sort_values(["indicator", "measure"], ignore_index=True)
    return pooled


def national_totals(effects: pd.DataFrame, *, level: float = 0.95) -> pd.DataFrame:
    """Provincial effects that are counts (:data:`SUMMED_MEASURES`) added up nationally.

    The cumulative effect of a province is the number of extra events (negative: events
    averted) in its own population, so the national effect is their sum over the provinces,
    not an average: ``estimate = sum(e_i)``, ``se = sqrt(sum(se_i**2))`` (provinces are
    fitted independently), and the interval uses t with the Welch-Satterthwaite degrees of
    freedom ``se**4 / sum(se_i**4 / df_i)`` (a normal quantile when every ``df_i`` is
    infinite; a row without a ``df`` counts as infinite, as a Wald interval would). The
    interval is for the total of these ``k`` provinces (the estimand is their own extra
    events, so there is no between-province variance to add); provinces without an estimate
    are not in it, and ``k`` says how many are.

    Returns
    -------
    pandas.DataFrame
        One row per indicator and measure, with the columns of :func:`national_effects`:
        ``estimate``, ``se``, ``statistic``, ``p_value``, ``ci_low``, ``ci_high``, ``df``,
        ``k``, ``method`` = ``"sum"``, ``weights`` = ``"none"``, ``hksj`` False, ``level``,
        ``scale`` and ``pooled_as`` = ``"sum of provinces"``; heterogeneity columns are NaN.

    Examples
    --------
    Two provinces whose t intervals rest on 9 and 19 degrees of freedom (Welch df
    ``2500**2 / (30**4 / 9 + 40**4 / 19) = 27.8``):

    >>> effects = pd.DataFrame({"province": ["a", "b"], "indicator": 31, "measure": "effect_cumulative",
    ...     "estimate": [-120.0, -80.0], "se": [30.0, 40.0], "df": [9.0, 19.0], "scale": "count"})
    >>> row = national_totals(effects).iloc[0]
    >>> [round(float(row[c]), 2) for c in ("estimate", "se", "df", "ci_low", "ci_high")]
    [-200.0, 50.0, 27.81, -302.45, -97.55]
    """
    rows = effects[effects["measure"].isin(SUMMED_MEASURES)]
    rows = rows[np.isfinite(rows["estimate"]) & np.isfinite(rows["se"]) & (rows["se"] > 0)]
    if rows.empty:
        return pd.DataFrame()
    df_i = rows["df"].astype(float) if "df" in rows.columns else pd.Series(np.inf, index=rows.index)
    parts = rows.assign(variance=rows["se"] ** 2, share=rows["se"] ** 4 / df_i.where(df_i > 0, np.nan))
    grouped = parts.groupby(["indicator", "measure"], sort=True)
    out = grouped.agg(
        estimate=("estimate", "sum"), variance=("variance", "sum"), share=("share", "sum"), k=("estimate", "size")
    ).reset_index()
    out["se"] = np.sqrt(out["variance"])
    with np.errstate(divide="ignore"):
        out["df"] = np.where(out["share"] > 0, out["variance"] ** 2 / out["share"], np.inf)
    out["statistic"] = out["estimate"] / out["se"]
    tested = linear_from_se(out["estimate"].to_numpy(), out["se"].to_numpy(), df=out["df"].to_numpy(), level=level)
    out["p_value"], out["ci_low"], out["ci_high"] = tested["p_value"], tested["ci_low"], tested["ci_high"]
    for column in ("pi_low", "pi_high", "tau2", "tau2_se", "i2", "h2", "q", "q_p_value"):
        out[column] = np.nan
    out["q_df"] = out["k"] - 1
    scales = (
        rows.groupby(["indicator", "measure"])["scale"].first() if "scale" in rows.columns else pd.Series(dtype=object)
    )
    out["scale"] = [scales.get((i, m), "") for i, m in zip(out["indicator"], out["measure"])]
    out = out.assign(method="sum", hksj=False, weights="none", level=level, pooled_as=POOLED_AS["sum"])
    return out.drop(columns=["variance", "share"])


def equal_weight_rows(rows: pd.DataFrame, *, measure: str, absolute_counts: str, derives: bool = False) -> np.ndarray:
    """Rows pooled with equal weights under ``absolute_counts`` (see :func:`national_effects`):
    the absolute effects (``measure``) of count indicators when it is ``"equal"``.

    ``"relative"`` derives the national absolute effect from the pooled relative one, which
    only :func:`national_effects` does (``derives=True``: nothing is pooled with equal
    weights there). Poolings that have no derived estimate (event-time curves,
    leave-one-out) pool those rows with equal weights under ``"relative"``, as by default.

    Examples
    --------
    >>> rows = pd.DataFrame({"indicator": [9, 26, 26], "family": ["gaussian", "poisson", "poisson"],
    ...                      "measure": ["effect_end_absolute", "effect_end_absolute", "level_change"]})
    >>> equal_weight_rows(rows, measure="effect_end_absolute", absolute_counts="equal").tolist()
    [False, True, False]
    >>> equal_weight_rows(rows, measure="effect_end_absolute", absolute_counts="inverse-variance").tolist()
    [False, False, False]
    >>> equal_weight_rows(rows, measure="effect_end_absolute", absolute_counts="relative", derives=True).tolist()
    [False, False, False]
    """
    if absolute_counts not in ABSOLUTE_COUNTS:
        raise ValueError(f"absolute_counts must be one of {ABSOLUTE_COUNTS}, not {absolute_counts!r}")
    if absolute_counts == "inverse-variance" or (absolute_counts == "relative" and derives) or rows.empty:
        return np.zeros(len(rows), dtype=bool)
    return ((rows["measure"] == measure) & is_count_family(rows)).to_numpy()


def is_count_family(rows: pd.DataFrame) -> pd.Series:
    """True for rows of indicators modelled on the log or logit scale: the ``family``
    column when the table has one, else the annex indicator's family.

    Examples
    --------
    >>> is_count_family(pd.DataFrame({"indicator": [9, 26, 32]})).tolist()  # a mean, a rate, a proportion
    [False, True, True]
    """
    family = (
        rows["family"].astype(str)
        if "family" in rows.columns
        else rows["indicator"].map(lambda number: get_indicator(int(number)).family)
    )
    return family != "gaussian"


def absolute_at_mean_counterfactual(
    pooled: pd.DataFrame, effects: pd.DataFrame, *, level: float = 0.95
) -> pd.DataFrame:
    """Replace the pooled end-of-plan absolute effects of count indicators by the pooled
    relative effect applied to the provinces' mean counterfactual level.

    For proportions and rates a province's absolute effect is its counterfactual level times
    its relative effect, and the standard error of the absolute effect grows with that level
    (binomial and Poisson variances grow with the rate). Inverse-variance weights then give
    the provinces with the largest absolute effects the least weight, and the pooled absolute
    effect is biased towards zero: in the simulation study (``docs/national_coverage.md``)
    by -14% for adverse-event reports (indicator 26), whose 95% interval covered the truth
    in 85% of replicates. The usual remedy in meta-analysis is to pool on the relative
    scale and express the result as an absolute effect at a stated baseline (Cochrane
    Handbook, chapter 15.4.4; GRADE), which is what this does, with the mean of the
    provinces' counterfactual levels at the evaluation month as the baseline:

    ``estimate = c * r``, ``c`` the mean counterfactual, ``r`` the pooled relative effect
    (ratio - 1). Each side of the interval is ``c`` times the distance of the relative
    effect's limit from ``r``, combined in quadrature with ``t * |r| * sd(c) / sqrt(k)``, the
    uncertainty of ``c`` as an estimate of the mean level. The p-value is the relative
    effect's (both test the same null), and the prediction interval is ``c`` times the
    relative one; ``tau2``, ``i2`` and ``q`` are those of the relative effect (log scale).

    A province's counterfactual is recovered from its two end-of-plan rows as
    ``absolute / relative``; this is exact, both being computed from the same fitted and
    counterfactual means (``m1 - m0`` and ``m1 / m0 - 1``).

    Examples
    --------
    Four provinces with counterfactual levels 10, 20, 30 and 20 (mean 20, SD 8.16) and the
    same 10% reduction; the pooled relative effect is -0.10 (-0.15 to -0.05):

    >>> effects = pd.DataFrame({
    ...     "province": np.repeat(["a", "b", "c", "d"], 2), "indicator": 26, "family": "poisson",
    ...     "measure": ["effect_end_absolute", "effect_end_relative"] * 4,
    ...     "estimate": [-1.0, -0.1, -2.0, -0.1, -3.0, -0.1, -2.0, -0.1]})
    >>> pooled = pd.DataFrame({
    ...     "indicator": [26, 26], "measure": ["effect_end_absolute", "effect_end_relative"],
    ...     "estimate": [-1.5, -0.1], "ci_low": [-2.0, -0.15], "ci_high": [-1.0, -0.05],
    ...     "p_value": [0.01, 0.002], "pi_low": [-4.0, -0.2], "pi_high": [1.0, 0.0],
    ...     "se": [0.2, np.nan], "pooled_as": "random effects"})
    >>> row = absolute_at_mean_counterfactual(pooled, effects).iloc[0]
    >>> [round(float(row[c]), 3) for c in ("estimate", "ci_low", "ci_high", "p_value")]
    [-2.0, -3.64, -0.36, 0.002]

    (``-2 -/+ hypot(20 * 0.05, t(3) * 0.1 * 8.165 / 2)``.)
    >>> row["pooled_as"]
    'relative x mean counterfactual'
    """
    pooled = pooled.copy()
    end = effects[effects["measure"].isin(["effect_end_absolute", "effect_end_relative"])]
    end = end[is_count_family(end)]
    if end.empty:
        return pooled
    wide = end.pivot_table(index=["indicator", "province"], columns="measure", values="estimate", aggfunc="first")
    if not {"effect_end_absolute", "effect_end_relative"} <= set(wide.columns):
        return pooled
    with np.errstate(divide="ignore", invalid="ignore"):
        counterfactual = wide["effect_end_absolute"] / wide["effect_end_relative"]
    counterfactual = counterfactual[np.isfinite(counterfactual) & (counterfactual > 0)]
    summary = counterfactual.groupby(level="indicator").agg(["mean", "std", "size"])
    key = list(zip(pooled["indicator"], pooled["measure"]))
    position = {k: i for i, k in enumerate(key)}
    for indicator, (mean, sd, k) in summary.iterrows():
        a, r = position.get((indicator, "effect_end_absolute")), position.get((indicator, "effect_end_relative"))
        if a is None or r is None or k < 2:
            continue
        rel = pooled.iloc[r]
        estimate = mean * rel["estimate"]
        spread = stats.t.ppf(0.5 + level / 2, k - 1) * abs(rel["estimate"]) * sd / np.sqrt(k)
        row = {
            "estimate": estimate,
            "se": np.nan,
            "ci_low": estimate - np.hypot(mean * (rel["estimate"] - rel["ci_low"]), spread),
            "ci_high": estimate + np.hypot(mean * (rel["ci_high"] - rel["estimate"]), spread),
            "pi_low": mean * rel["pi_low"],
            "pi_high": mean * rel["pi_high"],
            "pooled_as": POOLED_AS["relative"],
        }
        for column in pooled.columns:
            if column in row:
                pooled.iloc[a, pooled.columns.get_loc(column)] = row[column]
            elif column not in ("indicator", "measure", "scale"):
                pooled.iloc[a, pooled.columns.get_loc(column)] = rel[column]
    return pooled
