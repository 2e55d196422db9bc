"""Acceptance checks of the national synthesis, by simulation with known truth.

Each replicate draws a synthetic panel (:func:`analysis.data.synthetic.generate`) with its own
seed, fits every province x indicator series with the pipeline's default model
(:func:`analysis.evaluation.fit_panel.fit_panel`), pools the provinces per indicator and
measure (:func:`analysis.synthesis.national.national_effects`: REML random effects with the
Hartung-Knapp-Sidik-Jonkman interval) and compares the result with the truth. Three checks:

1. **Coverage of the national intervals.** The estimand is the mean of the distribution the
   generator draws province effects from (the *superpopulation mean*, see
   :func:`superpopulation_means`), on the scale on which provinces are pooled (relative
   effects as log ratios). That is the parameter ``mu`` of the random-effects model
   ``y_p = mu + u_p + e_p`` whose interval HKSJ builds: its variance carries both the
   provinces' sampling error and the between-province spread ``tau^2``. The average of the
   32 provinces' own true effects (the *finite-population mean*) is reported too; an
   interval for ``mu`` covers it more often than nominal whenever ``tau^2`` is large
   relative to the provinces' standard errors, so it is not the target of a nominal check.
2. **In-time placebo tests** (:mod:`analysis.synthesis.placebo`): the pre-period refitted as
   if the plan had started 12 or 24 months early, where the truth is no change; provincial
   rejection rates, and the national pooled placebo effects, whose truth is exactly zero
   (the generator has no indicator whose national effect is zero, so this is where the
   national test's false-positive rate is measured).
3. **Multiplicity**: Benjamini-Hochberg at ``q`` across the province x indicator results of
   one measure in one replicate (true nulls: the series the generator gave no effect), and
   Holm across each province's primary indicators
   (:attr:`analysis.evaluation.settings.EvaluationSettings.primary_indicators`).

Indicators exposed to the DRG/DIP payment reform in the generator (a co-intervention the
model does not include) are fitted too but kept apart (``confounded``): they demonstrate the
bias an unmodelled co-intervention causes and are left out of the acceptance figures.

Run ``python -m analysis.studies.national_coverage --reps 100 --out docs/national_coverage.md``
for the report and its CSV files.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.data import synthetic
from analysis.data.contract import validate_panel
from analysis.evaluation.fit_panel import fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.synthesis.multiplicity import adjust_pvalues
from analysis.synthesis.national import POOLED_MEASURES, national_effects
from analysis.synthesis.placebo import placebo_panel, rejection_rates
from analysis.synthesis.recovery import recovery_table

__all__ = [
    "CONFOUNDED_INDICATORS",
    "DEFAULT_INDICATORS",
    "StudyTables",
    "coverage_by_indicator",
    "coverage_summary",
    "finite_population_means",
    "finite_totals",
    "holm_fwer",
    "multiplicity_summary",
    "national_coverage_study",
    "national_coverage_table",
    "placebo_national",
    "reference_means",
    "simulation_study",
    "superpopulation_means",
    "true_discoveries",
]

# The generator's effect distribution is read from its module-level parameters (the one
# source of those facts) rather than restated here, so the estimand follows any change to it.

#: Indicators whose series carry the generator's DRG/DIP payment-reform step.
CONFOUNDED_INDICATORS: tuple[int, ...] = synthetic.DRG_INDICATORS
#: A representative subset: the two Gaussian means and two Poisson rates that are not
#: confounded, the four primary indicators (proportions: two common, two rare outcomes), a
#: proportion near its ceiling (18) and one with strong COVID shocks (29).
DEFAULT_INDICATORS: tuple[int, ...] = (9, 11, 12, 18, 26, 29, 31, 32, 33, 34)
#: Reference seeds for the Monte Carlo part of the estimand start here, far from study seeds.
REFERENCE_SEED0 = 1_000_000

_LINEAR_MEASURES = ("level_change", "slope_change")


def _pooling_scale(measure: pd.Series, values: pd.Series | np.ndarray) -> np.ndarray:
    """Values on the scale :func:`national_effects` pools on (relative effects as log ratios)."""
    values = np.asarray(values, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(measure) == "effect_end_relative", np.log1p(values), values)


def _long_truth(truth: pd.DataFrame) -> pd.DataFrame:
    """The generator's truth as one row per province x indicator x pooled measure."""
    long = truth.assign(province=truth["province"].astype(str)).melt(
        id_vars=["province", "indicator", "zero_effect", "confounded"],
        value_vars=list(POOLED_MEASURES),
        var_name="measure",
        value_name="true_value",
    )
    long["true_pooled"] = _pooling_scale(long["measure"], long["true_value"])
    return long


def superpopulation_means(indicators: Iterable[int]) -> pd.DataFrame:
    """Closed-form national means of the level and slope changes the generator draws.

    The generator's own closed form (:func:`analysis.data.synthetic.mean_plan_effect`), the
    same in every province.

    Parameters
    ----------
    indicators : iterable of int
        Annex numbers 9-39.

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure`` (``level_change``, ``slope_change``) and ``true_mean``.

    Examples
    --------
    >>> superpopulation_means([9]).round(4)
       indicator       measure  true_mean
    0          9  level_change    -0.5473
    1          9  slope_change    -0.0163
    """
    rows = []
    for number in indicators:
        level, slope = synthetic.mean_plan_effect(int(number))
        rows += [
            {"indicator": int(number), "measure": "level_change", "true_mean": level},
            {"indicator": int(number), "measure": "slope_change", "true_mean": slope},
        ]
    return pd.DataFrame(rows, columns=["indicator", "measure", "true_mean"])


def reference_means(
    *,
    indicators: Sequence[int],
    provinces: Sequence[str] | None = None,
    seeds: Iterable[int] = range(REFERENCE_SEED0, REFERENCE_SEED0 + 200),
) -> pd.DataFrame:
    """The national estimand of every pooled measure, on the pooling scale.

    Level and slope changes take their closed form (:func:`superpopulation_means`). The
    end-of-plan effects depend non-linearly on each province's baseline level, trend, start
    month and wash-in, so their mean is computed by Monte Carlo: the average true effect
    over independent generator draws (``seeds``) and the provinces, with its standard error.
    Only the truth is drawn (the panel is one month long), which costs a fraction of a second
    per seed. The Monte Carlo mean of the level and slope changes is returned too
    (``mc_mean``), as a check of the closed form.

    Parameters
    ----------
    indicators : sequence of int
        Annex numbers.
    provinces : sequence of str, optional
        Province codes (default: all 32); the mean is over these provinces' distributions.
    seeds : iterable of int
        Generator seeds for the Monte Carlo mean; keep them apart from the study's seeds.

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure``, ``true_mean`` (the estimand), ``mc_mean``, ``mc_se``,
        ``n_draws`` and ``method`` (``closed form`` or ``monte carlo``).

    Examples
    --------
    >>> ref = reference_means(indicators=[32], seeds=range(5))
    >>> ref[["measure", "method", "n_draws"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['effect_end_absolute', 'monte carlo', 160], ['effect_end_relative', 'monte carlo', 160],
     ['level_change', 'closed form', 160], ['slope_change', 'closed form', 160]]
    """
    month = str(synthetic.EVALUATION_MONTH)
    frames = [
        synthetic.generate(seed, start=month, end=month, provinces=provinces, indicators=list(indicators)).truth
        for seed in seeds
    ]
    if not frames:
        raise ValueError("reference_means needs at least one seed")
    long = _long_truth(pd.concat(frames, ignore_index=True))
    out = (
        long.groupby(["indicator", "measure"], sort=True)["true_pooled"]
        .agg(mc_mean="mean", mc_sd="std", n_draws="size")
        .reset_index()
    )
    out["mc_se"] = out.pop("mc_sd") / np.sqrt(out["n_draws"])
    closed = superpopulation_means(indicators).rename(columns={"true_mean": "closed"})
    out = out.merge(closed, on=["indicator", "measure"], how="left")
    out["method"] = np.where(out["closed"].notna(), "closed form", "monte carlo")
    out["true_mean"] = out["closed"].fillna(out["mc_mean"])
    return out[["indicator", "measure", "true_mean", "mc_mean", "mc_se", "n_draws", "method"]]


def finite_population_means(truth: pd.DataFrame) -> pd.DataFrame:
    """Average of the provinces' own true effects per indicator and measure (pooling scale).

    Parameters
    ----------
    truth : pandas.DataFrame
        The generator's ``truth`` table.

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure``, ``truth_finite`` and ``confounded``.

    Examples
    --------
    >>> truth = pd.DataFrame({"province": ["1", "2"], "indicator": 11, "zero_effect": [False, True],
    ...     "confounded": False, "level_change": [0.2, 0.0], "slope_change": [0.01, 0.0],
    ...     "effect_end_absolute": [3.0, 0.0], "effect_end_relative": [np.e - 1, 0.0]})
    >>> finite_population_means(truth)[["measure", "truth_finite"]].values.tolist()
    [['effect_end_absolute', 1.5], ['effect_end_relative', 0.5], ['level_change', 0.1], ['slope_change', 0.005]]
    """
    long = _long_truth(truth)
    return (
        long.groupby(["indicator", "measure"], sort=True)
        .agg(truth_finite=("true_pooled", "mean"), confounded=("confounded", "any"))
        .reset_index()
    )


def finite_totals(truth: pd.DataFrame) -> pd.DataFrame:
    """Sum of the provinces' own true cumulative effects per indicator: the estimand of the
    national totals (:func:`analysis.synthesis.national.national_totals`), a property of these
    provinces, so it is both ``true_mean`` and ``truth_finite``.

    Examples
    --------
    >>> truth = pd.DataFrame({"province": ["1", "2", "1"], "indicator": [31, 31, 9], "confounded": False,
    ...     "effect_cumulative": [-12.0, -3.0, np.nan]})
    >>> finite_totals(truth)[["indicator", "measure", "true_mean"]].values.tolist()
    [[31, 'effect_cumulative', -15.0]]
    """
    rows = truth[np.isfinite(truth["effect_cumulative"].astype(float))]
    out = (
        rows.groupby("indicator", sort=True)
        .agg(true_mean=("effect_cumulative", "sum"), confounded=("confounded", "any"))
        .reset_index()
    )
    return out.assign(measure="effect_cumulative", truth_finite=out["true_mean"])[
        ["indicator", "measure", "true_mean", "truth_finite", "confounded"]
    ]


def national_coverage_table(
    national: pd.DataFrame, *, reference: pd.DataFrame, finite: pd.DataFrame, alpha: float = 0.05
) -> pd.DataFrame:
    """Compare national estimates with the estimand, on the pooling scale.

    Parameters
    ----------
    national : pandas.DataFrame
        Output of :func:`national_effects` (relative effects as ratio - 1).
    reference : pandas.DataFrame
        ``indicator``, ``measure``, ``true_mean`` (:func:`reference_means`).
    finite : pandas.DataFrame
        ``indicator``, ``measure``, ``truth_finite``, ``confounded``
        (:func:`finite_population_means`).
    alpha : float
        Level of the national test behind ``significant``.

    Returns
    -------
    pandas.DataFrame
        One row per indicator x measure: ``confounded``, ``k``, ``truth`` (the
        superpopulation mean), ``truth_finite``, ``estimate``, ``ci_low``, ``ci_high`` (relative
        effects as log ratios), ``p_value``, ``covered``, ``covered_finite``, ``error``
        (estimate - truth), ``standardised_error`` (error over the interval's half-width:
        covered exactly when its absolute value is at most 1) and ``significant``.

    Examples
    --------
    >>> national = pd.DataFrame({"indicator": 9, "measure": ["level_change", "effect_end_relative"],
    ...     "estimate": [-0.5, -0.05], "ci_low": [-0.8, -0.1], "ci_high": [-0.2, 0.0], "p_value": [0.01, 0.06],
    ...     "k": 32})
    >>> reference = pd.DataFrame({"indicator": 9, "measure": ["level_change", "effect_end_relative"],
    ...     "true_mean": [-0.9, -0.04]})
    >>> finite = reference.rename(columns={"true_mean": "truth_finite"}).assign(confounded=False)
    >>> national_coverage_table(national, reference=reference, finite=finite)[
    ...     ["measure", "covered", "standardised_error"]].round(3).values.tolist()
    [['effect_end_relative', True, -0.214], ['level_change', False, 1.333]]
    """
    keys = ["indicator", "measure"]
    frame = national[[*keys, "k", "estimate", "ci_low", "ci_high", "p_value"]].copy()
    for column in ("estimate", "ci_low", "ci_high"):
        frame[column] = _pooling_scale(frame["measure"], frame[column])
    frame = frame.merge(
        reference[[*keys, "true_mean"]].rename(columns={"true_mean": "truth"}),
        on=keys,
        how="inner",
        validate="one_to_one",
    )
    frame = frame.merge(finite[[*keys, "truth_finite", "confounded"]], on=keys, how="left", validate="one_to_one")
    frame["confounded"] = frame["confounded"].fillna(False).astype(bool)
    frame["covered"] = (frame["ci_low"] <= frame["truth"]) & (frame["truth"] <= frame["ci_high"])
    frame["covered_finite"] = (frame["ci_low"] <= frame["truth_finite"]) & (frame["truth_finite"] <= frame["ci_high"])
    frame["error"] = frame["estimate"] - frame["truth"]
    # On the pooling scale the interval is symmetric about the estimate.
    frame["standardised_error"] = frame["error"] / ((frame["ci_high"] - frame["ci_low"]) / 2)
    frame["significant"] = frame["p_value"] < alpha
    columns = [
        *keys,
        "confounded",
        "k",
        "truth",
        "truth_finite",
        "estimate",
        "ci_low",
        "ci_high",
        "p_value",
        "covered",
        "covered_finite",
        "error",
        "standardised_error",
        "significant",
    ]
    return frame[columns].sort_values(keys, ignore_index=True)


def _recover_df(placebo: pd.DataFrame, *, level: float) -> np.ndarray:
    """Degrees of freedom of each placebo interval, recovered from its width.

    The placebo table does not record the t reference's df, which pooling needs to turn a
    relative effect's log-scale interval back into a standard error. Its interval is
    ``log_ratio +/- t_{df} se_log`` with ``se_log = se / (1 + estimate)`` (delta method), so
    the critical value, and hence df, follows exactly.
    """
    relative = (placebo["measure"] == "effect_end_relative").to_numpy()
    se_log = np.where(relative, placebo["se"] / (1 + placebo["estimate"]), placebo["se"])
    low, high = placebo["ci_low"].to_numpy(float), placebo["ci_high"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        width = np.where(relative, np.log1p(high) - np.log1p(low), high - low)
        crit = width / (2 * se_log)
    q = 0.5 + level / 2
    z = stats.norm.ppf(q)
    df = np.full(len(placebo), np.inf)
    for i, c in enumerate(crit):
        if not np.isfinite(c):
            df[i] = np.nan
        elif c > z * (1 + 1e-9):
            df[i] = optimize.brentq(lambda d, c=c: stats.t.ppf(q, d) - c, 0.05, 1e8, xtol=1e-10)
    return df


def placebo_national(placebo: pd.DataFrame, *, settings: EvaluationSettings | None = None) -> pd.DataFrame:
    """Pool provincial placebo effects nationally, per offset: the national test under a true null.

    Parameters
    ----------
    placebo : pandas.DataFrame
        Output of :func:`analysis.synthesis.placebo.placebo_panel`.
    settings : EvaluationSettings, optional
        Pooling method, HKSJ and level.

    Returns
    -------
    pandas.DataFrame
        :func:`national_effects` columns plus ``offset``; the truth of every row is 0.
    """
    settings = settings or EvaluationSettings()
    frame = placebo.assign(df=_recover_df(placebo, level=settings.level))
    parts = []
    for offset, rows in frame.groupby("offset", sort=True):
        pooled = national_effects(rows, **settings.pooling_options())
        parts.append(pooled.assign(offset=int(offset)))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


# ---------------------------------------------------------------------------------------
# Error rates of the provincial tests
# ---------------------------------------------------------------------------------------


def true_discoveries(
    tests: pd.DataFrame, *, q: float = 0.05, by: Sequence[str] = ("replicate", "measure")
) -> pd.DataFrame:
    """Benjamini-Hochberg discoveries and their false discovery proportion per family.

    Parameters
    ----------
    tests : pandas.DataFrame
        One row per test: the ``by`` columns, ``indicator``, ``p_value``, ``null`` (the true
        effect is zero), and optionally ``estimate`` and ``true_value`` (a discovery of a
        non-null whose estimate has the wrong sign is then counted as a directional error).
    q : float
        Target false discovery rate.
    by : sequence of str
        Columns defining one BH family.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``m`` (tests), ``m0`` (true nulls), ``discoveries``,
        ``false_discoveries``, ``sign_errors``, ``fdp`` (false over discoveries, 0 without
        discoveries), ``directional_fdp`` (false or wrong-signed over discoveries) and
        ``power`` (share of non-null tests discovered).

    Examples
    --------
    >>> tests = pd.DataFrame({"replicate": 1, "measure": "level_change", "indicator": 9,
    ...     "p_value": [0.001, 0.002, 0.03, 0.5], "null": [False, True, False, True]})
    >>> out = true_discoveries(tests)  # BH compares the sorted p-values with 0.0125, 0.025, 0.0375, 0.05
    >>> out[["m", "m0", "discoveries", "false_discoveries"]].values.tolist(), round(float(out["fdp"].iat[0]), 3)
    ([[4, 2, 3, 1]], 0.333)
    """
    by = list(by)
    frame = adjust_pvalues(tests, primary=(), bh_by=by)
    frame["discovered"] = frame["p_bh"] <= q
    frame["null"] = frame["null"].astype(bool)
    if {"estimate", "true_value"} <= set(frame.columns):
        wrong = ~frame["null"] & (np.sign(frame["estimate"]) != np.sign(frame["true_value"]))
    else:
        wrong = pd.Series(False, index=frame.index)
    frame["false"] = frame["discovered"] & frame["null"]
    frame["sign_error"] = frame["discovered"] & wrong
    frame["true_hit"] = frame["discovered"] & ~frame["null"]
    valid = frame[frame["p_value"].notna()]
    out = (
        valid.groupby(by, sort=True)
        .agg(
            m=("p_value", "size"),
            m0=("null", "sum"),
            discoveries=("discovered", "sum"),
            false_discoveries=("false", "sum"),
            sign_errors=("sign_error", "sum"),
            true_hits=("true_hit", "sum"),
        )
        .reset_index()
    )
    counts = ["m", "m0", "discoveries", "false_discoveries", "sign_errors", "true_hits"]
    out[counts] = out[counts].astype(int)
    found = out["discoveries"].clip(lower=1)
    out["fdp"] = out["false_discoveries"] / found
    out["directional_fdp"] = (out["false_discoveries"] + out["sign_errors"]) / found
    with np.errstate(invalid="ignore", divide="ignore"):
        out["power"] = out.pop("true_hits") / (out["m"] - out["m0"])
    return out


def holm_fwer(
    tests: pd.DataFrame,
    *,
    primary: Iterable[int],
    alpha: float = 0.05,
    family: Sequence[str] = ("replicate", "province", "measure"),
) -> pd.DataFrame:
    """Holm's procedure over the primary indicators: was any true null rejected?

    Parameters
    ----------
    tests : pandas.DataFrame
        ``indicator``, ``p_value``, ``null`` and the ``family`` columns.
    primary : iterable of int
        Primary indicators (one Holm family per ``family`` group among them).
    alpha : float
        Family-wise error rate targeted.
    family : sequence of str
        Columns defining one family.

    Returns
    -------
    pandas.DataFrame
        One row per family holding at least one true null: the ``family`` columns, ``m``,
        ``m0`` and ``any_false_rejection``; its mean is the family-wise error rate.

    Examples
    --------
    >>> tests = pd.DataFrame({"replicate": 1, "province": "1", "measure": "level_change",
    ...     "indicator": [11, 12, 31, 32], "p_value": [0.001, 0.011, 0.2, 0.9],
    ...     "null": [False, True, False, False]})
    >>> holm_fwer(tests, primary=(11, 12, 31, 32))[["m", "m0", "any_false_rejection"]].values.tolist()
    [[4, 1, True]]
    """
    family = list(family)
    primary = tuple(int(i) for i in primary)
    chosen = tests[tests["indicator"].astype(int).isin(primary) & tests["p_value"].notna()]
    frame = adjust_pvalues(chosen, primary=primary, holm_by=family)
    frame["null"] = frame["null"].astype(bool)
    frame["false_rejection"] = frame["null"] & (frame["p_holm"] <= alpha)
    out = (
        frame.groupby(family, sort=True)
        .agg(m=("p_value", "size"), m0=("null", "sum"), any_false_rejection=("false_rejection", "any"))
        .reset_index()
    )
    return out[out["m0"] > 0].reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# The study
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyTables:
    """Tidy tables of a simulation study, one row per replicate x unit.

    Attributes
    ----------
    national : pandas.DataFrame
        :func:`national_coverage_table` rows with ``replicate`` and ``seed``.
    provincial : pandas.DataFrame
        :func:`analysis.synthesis.recovery.recovery_table` rows (pooled measures) with
        ``replicate``.
    placebo : pandas.DataFrame
        Provincial placebo effects with ``replicate`` and ``confounded`` (empty without
        placebo replicates).
    placebo_national : pandas.DataFrame
        National pooled placebo effects as :func:`national_coverage_table` rows (truth 0)
        with ``replicate`` and ``offset``.
    reference : pandas.DataFrame
        The estimand (:func:`reference_means`).
    failures : pandas.DataFrame
        Series whose fit or placebo fit failed: ``replicate``, ``stage``, ``province``,
        ``indicator``, ``error``, ``message``.
    timing : pandas.DataFrame
        ``replicate``, ``seed``, ``fit_seconds``, ``placebo_seconds``.
    """

    national: pd.DataFrame
    provincial: pd.DataFrame
    placebo: pd.DataFrame
    placebo_national: pd.DataFrame
    reference: pd.DataFrame
    failures: pd.DataFrame
    timing: pd.DataFrame


def _replicate(
    seed: int,
    *,
    provinces: Sequence[str] | None,
    indicators: Sequence[int],
    settings: EvaluationSettings,
    reference: pd.DataFrame,
    placebo: bool,
    offsets: Sequence[int],
    workers: int,
) -> dict[str, pd.DataFrame | float]:
    data = synthetic.generate(seed, provinces=provinces, indicators=indicators)
    panel = validate_panel(data.panel, source=f"synthetic panel (seed {seed})")
    starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    tick = time.perf_counter()
    fitted = fit_panel(panel, starts=starts, settings=settings, workers=workers)
    fit_seconds = time.perf_counter() - tick
    national = national_effects(fitted.effects, **settings.pooling_options())
    finite = finite_population_means(data.truth)
    totals = finite_totals(data.truth)
    reference = pd.concat([reference, totals[["indicator", "measure", "true_mean"]]], ignore_index=True)
    finite = pd.concat([finite, totals[["indicator", "measure", "truth_finite", "confounded"]]], ignore_index=True)
    out: dict[str, pd.DataFrame | float] = {
        "national": national_coverage_table(national, reference=reference, finite=finite, alpha=1 - settings.level),
        "provincial": recovery_table(fitted.effects[fitted.effects["measure"].isin(POOLED_MEASURES)], data.truth),
        "failures": fitted.failures.assign(stage="fit"),
        "fit_seconds": fit_seconds,
        "placebo_seconds": 0.0,
    }
    if placebo:
        tick = time.perf_counter()
        table, failures = placebo_panel(panel, starts=starts, settings=settings, offsets=offsets, workers=workers)
        out["placebo_seconds"] = time.perf_counter() - tick
        confounded = data.truth.assign(province=data.truth["province"].astype(str))[
            ["province", "indicator", "confounded"]
        ]
        out["placebo"] = table.merge(confounded, on=["province", "indicator"], how="left")
        zero = finite.assign(truth_finite=0.0)
        pooled = placebo_national(table, settings=settings)
        parts = [
            national_coverage_table(
                rows,
                reference=zero.rename(columns={"truth_finite": "true_mean"}),
                finite=zero,
                alpha=1 - settings.level,
            ).assign(offset=int(offset))
            for offset, rows in pooled.groupby("offset", sort=True)
        ]
        out["placebo_national"] = pd.concat(parts, ignore_index=True)
        out["failures"] = pd.concat([out["failures"], failures.assign(stage="placebo")], ignore_index=True)
    return out


def simulation_study(
    *,
    seeds: Sequence[int],
    placebo_seeds: Sequence[int] | None = None,
    provinces: Sequence[str] | None = None,
    indicators: Sequence[int] | None = None,
    settings: EvaluationSettings | None = None,
    offsets: Sequence[int] = (12, 24),
    reference_seeds: Sequence[int] | None = None,
    workers: int = 1,
    progress: bool = False,
) -> StudyTables:
    """Run the national coverage, placebo and multiplicity checks over replicates.

    Parameters
    ----------
    seeds : sequence of int
        One generator seed per replicate.
    placebo_seeds : sequence of int, optional
        The replicates (a subset of ``seeds``) that also run placebo tests; default all.
    provinces : sequence of str, optional
        Province codes; default all 32.
    indicators : sequence of int, optional
        Annex numbers; default :data:`DEFAULT_INDICATORS` plus :data:`CONFOUNDED_INDICATORS`.
    settings : EvaluationSettings, optional
        The pipeline's model and pooling choices.
    offsets : sequence of int
        Placebo offsets in months before each province's start.
    reference_seeds : sequence of int, optional
        Seeds for the Monte Carlo part of the estimand (default 200 seeds from
        :data:`REFERENCE_SEED0`); must not overlap ``seeds``.
    workers : int
        Worker processes for the fits of one replicate.
    progress : bool
        Print one line per replicate.

    Returns
    -------
    StudyTables

    Examples
    --------
    >>> north = ["110000", "120000", "130000", "140000", "150000", "210000"]
    >>> tables = simulation_study(seeds=[1], provinces=north, indicators=[9],
    ...                           reference_seeds=range(REFERENCE_SEED0, REFERENCE_SEED0 + 3))
    >>> tables.national[["measure", "k"]].values.tolist()  # doctest: +NORMALIZE_WHITESPACE
    [['effect_end_absolute', 6], ['effect_end_relative', 6], ['level_change', 6], ['slope_change', 6]]
    >>> sorted(tables.placebo["offset"].unique().tolist()), len(tables.placebo_national)
    ([12, 24], 6)
    """
    settings = settings or EvaluationSettings()
    indicators = sorted({*DEFAULT_INDICATORS, *CONFOUNDED_INDICATORS} if indicators is None else set(indicators))
    seeds = [int(s) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError("seeds must be distinct: a repeated seed repeats a replicate")
    placebo_set = set(seeds if placebo_seeds is None else (int(s) for s in placebo_seeds))
    if not placebo_set <= set(seeds):
        raise ValueError("placebo_seeds must be a subset of seeds")
    if reference_seeds is None:
        reference_seeds = range(REFERENCE_SEED0, REFERENCE_SEED0 + 200)
    if set(reference_seeds) & set(seeds):
        raise ValueError("reference_seeds overlap the study seeds: the estimand must not reuse the replicates")
    reference = reference_means(indicators=indicators, provinces=provinces, seeds=reference_seeds)
    collected: dict[str, list[pd.DataFrame]] = {
        k: [] for k in ("national", "provincial", "placebo", "placebo_national", "failures")
    }
    timing = []
    for replicate, seed in enumerate(seeds):
        out = _replicate(
            seed,
            provinces=provinces,
            indicators=indicators,
            settings=settings,
            reference=reference,
            placebo=seed in placebo_set,
            offsets=offsets,
            workers=workers,
        )
        for name in collected:
            if name in out:
                collected[name].append(out[name].assign(replicate=replicate, seed=seed))
        timing.append(
            {
                "replicate": replicate,
                "seed": seed,
                "fit_seconds": out["fit_seconds"],
                "placebo_seconds": out["placebo_seconds"],
            }
        )
        if progress:
            print(
                f"replicate {replicate + 1}/{len(seeds)} (seed {seed}): fit {out['fit_seconds']:.1f} s, "
                f"placebo {out['placebo_seconds']:.1f} s",
                flush=True,
            )

    def stack(name: str) -> pd.DataFrame:
        frames = [f for f in collected[name] if not f.empty]
        if not frames:
            return pd.DataFrame()
        table = pd.concat(frames, ignore_index=True)
        return table[["replicate", "seed", *[c for c in table.columns if c not in ("replicate", "seed")]]]

    return StudyTables(
        national=stack("national"),
        provincial=stack("provincial"),
        placebo=stack("placebo"),
        placebo_national=stack("placebo_national"),
        reference=reference,
        failures=stack("failures"),
        timing=pd.DataFrame(timing),
    )


def national_coverage_study(
    *,
    seeds: Sequence[int],
    provinces: Sequence[str] | None = None,
    indicators: Sequence[int] | None = None,
    settings: EvaluationSettings | None = None,
    workers: int = 1,
    reference_seeds: Sequence[int] | None = None,
) -> pd.DataFrame:
    """National estimates against the estimand, one row per replicate x indicator x measure.

    The coverage part of :func:`simulation_study` alone (no placebo tests).

    Parameters
    ----------
    seeds : sequence of int
        One generator seed per replicate.
    provinces, indicators, settings, workers, reference_seeds
        As for :func:`simulation_study`.

    Returns
    -------
    pandas.DataFrame
        ``replicate``, ``seed`` and the columns of :func:`national_coverage_table`.

    Examples
    --------
    >>> south = ["440000", "450000", "460000", "500000", "510000"]
    >>> table = national_coverage_study(seeds=[7, 8], provinces=south, indicators=[9],
    ...                                 reference_seeds=range(REFERENCE_SEED0, REFERENCE_SEED0 + 3))
    >>> table.groupby("replicate").size().tolist(), bool(table["covered"].isin([True, False]).all())
    ([4, 4], True)
    """
    return simulation_study(
        seeds=seeds,
        placebo_seeds=(),
        provinces=provinces,
        indicators=indicators,
        settings=settings,
        workers=workers,
        reference_seeds=reference_seeds,
    ).national


# ---------------------------------------------------------------------------------------
# Summaries
# ---------------------------------------------------------------------------------------


def _clustered_se(frame: pd.DataFrame, column: str, cluster: str = "replicate") -> float:
    """Monte Carlo SE of a mean when rows of one replicate are dependent.

    Indicators of one replicate share each province's implementation strength (the
    generator's province effect), so the replicate, not the row, is the independent unit:
    ratio-estimator SE from the replicate totals.
    """
    if cluster not in frame or frame[cluster].nunique() < 2:
        p = frame[column].mean()
        return float(np.sqrt(p * (1 - p) / len(frame))) if len(frame) else np.nan
    totals = frame.groupby(cluster)[column].agg(["sum", "size"])
    mean = totals["sum"].sum() / totals["size"].sum()
    g = len(totals)
    resid = totals["sum"] - mean * totals["size"]
    return float(np.sqrt(g / (g - 1) * (resid**2).sum()) / totals["size"].sum())


def coverage_by_indicator(national: pd.DataFrame) -> pd.DataFrame:
    """Coverage, bias and interval width per indicator and measure.

    Parameters
    ----------
    national : pandas.DataFrame
        Rows of :func:`national_coverage_table` over replicates.

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure``, ``confounded``, ``n``, ``truth``, ``coverage``, ``mc_se``
        (binomial), ``coverage_finite``, ``mean_bias``, ``relative_bias`` (over ``|truth|``),
        ``rmse``, ``mean_ci_width`` (all on the pooling scale) and ``significant`` (share).

    Examples
    --------
    >>> national = pd.DataFrame({"indicator": 9, "measure": "level_change", "confounded": False,
    ...     "truth": -1.0, "estimate": [-1.2, -0.9], "ci_low": [-1.5, -1.2], "ci_high": [-0.9, -0.6],
    ...     "covered": True, "covered_finite": True, "significant": True})
    >>> coverage_by_indicator(national)[["n", "coverage", "mean_bias", "mean_ci_width"]].round(3).values.tolist()
    [[2.0, 1.0, -0.05, 0.6]]
    """
    frame = national.assign(
        error=national["estimate"] - national["truth"], width=national["ci_high"] - national["ci_low"]
    )
    out = (
        frame.groupby(["indicator", "measure"], sort=True)
        .agg(
            confounded=("confounded", "any"),
            n=("covered", "size"),
            truth=("truth", "mean"),
            coverage=("covered", "mean"),
            coverage_finite=("covered_finite", "mean"),
            mean_bias=("error", "mean"),
            rmse=("error", lambda e: float(np.sqrt(np.mean(e**2)))),
            mean_ci_width=("width", "mean"),
            significant=("significant", "mean"),
        )
        .reset_index()
    )
    out["mc_se"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["n"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["relative_bias"] = out["mean_bias"] / out["truth"].abs()
    return out[
        [
            "indicator",
            "measure",
            "confounded",
            "n",
            "truth",
            "coverage",
            "mc_se",
            "coverage_finite",
            "mean_bias",
            "relative_bias",
            "rmse",
            "mean_ci_width",
            "significant",
        ]
    ]


def coverage_summary(national: pd.DataFrame, *, by: Sequence[str] = ("measure",), level: float = 0.95) -> pd.DataFrame:
    """Coverage with its Monte Carlo SE per measure and overall (``measure == "all"``).

    Parameters
    ----------
    national : pandas.DataFrame
        Rows of :func:`national_coverage_table` over replicates (``replicate`` column used for
        the clustered Monte Carlo SE when present).
    by : sequence of str
        Grouping columns besides the overall row (the first one gets the label ``all``).
    level : float
        Nominal coverage, for ``z_vs_nominal`` = (coverage - level) / mc_se.

    Returns
    -------
    pandas.DataFrame
        ``by`` columns, ``n``, ``coverage``, ``mc_se``, ``z_vs_nominal``, ``coverage_finite``,
        ``mean_standardised_bias`` (mean error over half-width: about 0 when unbiased),
        ``false_positive_rate`` (share significant among rows whose truth is exactly 0; NaN
        when there are none) and ``share_significant``.

    Examples
    --------
    >>> national = pd.DataFrame({"replicate": [0, 0, 1, 1], "measure": "level_change", "truth": 0.0,
    ...     "covered": [True, True, True, False], "covered_finite": True,
    ...     "standardised_error": [0.1, -0.3, 0.5, 1.2], "significant": [False, False, False, True]})
    >>> coverage_summary(national)[["measure", "n", "coverage", "false_positive_rate"]].values.tolist()
    [['level_change', 4, 0.75, 0.25], ['all', 4, 0.75, 0.25]]
    """
    by = list(by)

    def one(frame: pd.DataFrame) -> dict[str, float]:
        zero = frame["truth"] == 0
        coverage = float(frame["covered"].mean())
        mc_se = _clustered_se(frame.assign(covered=frame["covered"].astype(float)), "covered")
        return {
            "n": len(frame),
            "coverage": coverage,
            "mc_se": mc_se,
            "z_vs_nominal": (coverage - level) / mc_se if mc_se > 0 else np.nan,
            "coverage_finite": float(frame["covered_finite"].mean()),
            "mean_standardised_bias": float(frame["standardised_error"].mean()),
            "false_positive_rate": float(frame.loc[zero, "significant"].mean()) if zero.any() else np.nan,
            "share_significant": float(frame["significant"].mean()),
        }

    rows = [
        {**dict(zip(by, key if isinstance(key, tuple) else (key,))), **one(group)}
        for key, group in national.groupby(by, sort=True)
    ]
    rows.append({**{k: "all" if i == 0 else "" for i, k in enumerate(by)}, **one(national)})
    return pd.DataFrame(rows)


def multiplicity_summary(
    discoveries: pd.DataFrame, fwer: pd.DataFrame | None = None, *, by: Sequence[str] = ("measure",)
) -> pd.DataFrame:
    """False discovery rate (mean FDP over replicates) and Holm's family-wise error rate.

    Parameters
    ----------
    discoveries : pandas.DataFrame
        Output of :func:`true_discoveries`, one row per replicate x family.
    fwer : pandas.DataFrame, optional
        Output of :func:`holm_fwer`.
    by : sequence of str
        Columns to summarise by.

    Returns
    -------
    pandas.DataFrame
        ``by``, ``replicates``, ``mean_m``, ``mean_m0``, ``mean_discoveries``, ``fdr``,
        ``fdr_mc_se``, ``directional_fdr``, ``p_any_false`` (share of families with at least one
        false discovery), ``power``, and with ``fwer``: ``holm_families``, ``holm_fwer``,
        ``holm_fwer_mc_se``.

    Examples
    --------
    >>> d = pd.DataFrame({"measure": "level_change", "m": 10, "m0": 2, "discoveries": [4, 5],
    ...     "false_discoveries": [0, 1], "fdp": [0.0, 0.2], "directional_fdp": [0.0, 0.2], "power": [0.5, 0.5]})
    >>> multiplicity_summary(d)[["fdr", "p_any_false"]].values.tolist()
    [[0.1, 0.5]]
    """
    by = list(by)
    out = (
        discoveries.groupby(by, sort=True)
        .agg(
            replicates=("fdp", "size"),
            mean_m=("m", "mean"),
            mean_m0=("m0", "mean"),
            mean_discoveries=("discoveries", "mean"),
            fdr=("fdp", "mean"),
            fdr_sd=("fdp", "std"),
            directional_fdr=("directional_fdp", "mean"),
            p_any_false=("false_discoveries", lambda v: float((v > 0).mean())),
            power=("power", "mean"),
        )
        .reset_index()
    )
    out["fdr_mc_se"] = out.pop("fdr_sd") / np.sqrt(out["replicates"])
    if fwer is not None and not fwer.empty:
        families = (
            fwer.groupby(by, sort=True)
            .agg(holm_families=("any_false_rejection", "size"), holm_fwer=("any_false_rejection", "mean"))
            .reset_index()
        )
        families["holm_fwer_mc_se"] = np.sqrt(
            families["holm_fwer"] * (1 - families["holm_fwer"]) / families["holm_families"]
        )
        out = out.merge(families, on=by, how="left")
    return out


def _provincial_tests(provincial: pd.DataFrame) -> pd.DataFrame:
    """Unconfounded provincial results as tests with a known null."""
    frame = provincial[~provincial["confounded"].astype(bool)]
    return frame.assign(null=frame["zero_effect"].astype(bool))


def _placebo_tests(placebo: pd.DataFrame) -> pd.DataFrame:
    """Unconfounded provincial placebo results: every one a true null."""
    frame = placebo[~placebo["confounded"].astype(bool)]
    return frame.assign(null=True)


# ---------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------

_INTERPRETATION = re.compile(r"<!-- interpretation -->.*?<!-- /interpretation -->", re.DOTALL)


def _markdown(frame: pd.DataFrame, *, digits: int = 3) -> str:
    def cell(value: object) -> str:
        if isinstance(value, (bool, np.bool_)):
            return "yes" if value else "no"
        if isinstance(value, (float, np.floating)):
            return "" if np.isnan(value) else f"{value:.{digits}f}"
        return str(value)

    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join(lines)


def report_tables(
    tables: StudyTables, *, settings: EvaluationSettings | None = None, q: float = 0.05
) -> dict[str, pd.DataFrame]:
    """Every summary table of a study, by name (the CLI writes each as CSV and markdown).

    Parameters
    ----------
    tables : StudyTables
        Output of :func:`simulation_study`.
    settings : EvaluationSettings, optional
        For the primary indicators and the level.
    q : float
        False discovery rate targeted by Benjamini-Hochberg.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``coverage`` (per measure, unconfounded), ``coverage_confounded``,
        ``coverage_by_indicator``, ``placebo_rejection``, ``placebo_national``,
        ``multiplicity`` (provincial BH and Holm), ``multiplicity_placebo`` (complete null),
        ``provincial_coverage`` and ``reference``.
    """
    settings = settings or EvaluationSettings()
    alpha = 1 - settings.level
    national = tables.national
    clean, confounded = national[~national["confounded"]], national[national["confounded"]]
    out = {
        "coverage": coverage_summary(clean, level=settings.level),
        "coverage_confounded": coverage_summary(confounded, level=settings.level)
        if len(confounded)
        else pd.DataFrame(),
        "coverage_by_indicator": coverage_by_indicator(national),
        "reference": tables.reference,
    }
    provincial = tables.provincial
    tests = _provincial_tests(provincial)
    out["multiplicity"] = multiplicity_summary(
        true_discoveries(tests, q=q), holm_fwer(tests, primary=settings.primary_indicators, alpha=alpha)
    )
    prov = provincial[~provincial["confounded"].astype(bool)]
    zero = prov["zero_effect"].astype(bool)
    out["provincial_coverage"] = pd.DataFrame(
        {
            "n": prov.groupby("measure").size(),
            "coverage": prov.groupby("measure")["covered"].mean(),
            "false_positive_rate": prov[zero].groupby("measure")["significant"].mean(),
            "power": prov[~zero].groupby("measure")["significant"].mean(),
        }
    ).reset_index()
    if not tables.placebo.empty:
        placebo = tables.placebo
        out["placebo_rejection"] = rejection_rates(placebo, alpha=alpha, by=("confounded", "measure", "offset"))
        out["placebo_national"] = pd.concat(
            [
                coverage_summary(
                    tables.placebo_national[tables.placebo_national["confounded"] == flag],
                    by=("measure", "offset"),
                    level=settings.level,
                ).assign(confounded=flag)
                for flag in (False, True)
                if (tables.placebo_national["confounded"] == flag).any()
            ],
            ignore_index=True,
        )
        placebo_tests = _placebo_tests(placebo)
        out["multiplicity_placebo"] = multiplicity_summary(
            true_discoveries(placebo_tests, q=q, by=("replicate", "offset", "measure")),
            holm_fwer(
                placebo_tests,
                primary=settings.primary_indicators,
                alpha=alpha,
                family=("replicate", "offset", "province", "measure"),
            ),
            by=("measure", "offset"),
        )
    return out


def write_report(
    tables: StudyTables, out: str | Path, *, settings: EvaluationSettings | None = None, q: float = 0.05
) -> dict[str, Path]:
    """Write the markdown report and one CSV per table next to it.

    Text between ``<!-- interpretation -->`` and ``<!-- /interpretation -->`` in an existing
    report is kept, so a written interpretation survives re-running the study.

    Parameters
    ----------
    tables : StudyTables
        Output of :func:`simulation_study`.
    out : str or pathlib.Path
        Markdown file; CSVs are written as ``<stem>_<table>.csv`` in the same directory.
    settings : EvaluationSettings, optional
        As for :func:`report_tables`.
    q : float
        Benjamini-Hochberg target.

    Returns
    -------
    dict of str to pathlib.Path
        ``report`` and one entry per CSV.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summaries = report_tables(tables, settings=settings, q=q)
    paths: dict[str, Path] = {}
    for name, frame in {**summaries, "national": tables.national}.items():
        paths[name] = out.with_name(f"{out.stem}_{name}.csv")
        frame.to_csv(paths[name], index=False)
    kept = "<!-- interpretation -->\n\n(Write the interpretation here.)\n\n<!-- /interpretation -->"
    if out.exists():
        found = _INTERPRETATION.search(out.read_text(encoding="utf-8"))
        kept = found.group(0) if found else kept
    national = tables.national
    timing = tables.timing
    indicators = sorted(national["indicator"].unique())
    confounded = sorted(national.loc[national["confounded"], "indicator"].unique())
    sections = [
        "# National synthesis: coverage, placebo and multiplicity checks by simulation",
        "",
        f"Generated by `python -m analysis.studies.national_coverage --reps {timing['replicate'].nunique()}"
        f"{' --bias-corrected' if settings is not None and settings.bias_corrected_effects else ''}` "
        f"(seeds {timing['seed'].min()}-{timing['seed'].max()}; indicators {', '.join(map(str, indicators))}, "
        f"of which {', '.join(map(str, confounded)) or 'none'} carry the DRG/DIP step and are reported apart; "
        f"{national['k'].max()} provinces; placebo tests in "
        f"{tables.placebo['replicate'].nunique() if len(tables.placebo) else 0} "
        f"replicates). Fitting took {timing['fit_seconds'].sum() / 60:.1f} min and the placebo "
        f"refits {timing['placebo_seconds'].sum() / 60:.1f} min on one worker. Module: "
        "`analysis/studies/national_coverage.py`; CSV files next to this one.",
        "",
        kept,
        "",
        "## National interval coverage (not confounded)",
        "",
        "Estimand: the superpopulation mean of the province effects on the pooling scale (relative "
        "effects as log ratios). `mc_se` is clustered by replicate; `coverage_finite` is coverage of "
        "the average of the provinces' own true effects. `effect_cumulative` is the national total of "
        "the cumulative effects (extra events summed over the provinces), whose estimand is the sum "
        "of the provinces' own true cumulative effects in each replicate.",
        "",
        _markdown(summaries["coverage"]),
        "",
        "## DRG/DIP-confounded indicators (demonstration of confounding bias)",
        "",
        _markdown(summaries["coverage_confounded"]) if len(summaries["coverage_confounded"]) else "(none run)",
        "",
        "## Coverage by indicator and measure",
        "",
        _markdown(summaries["coverage_by_indicator"], digits=4),
        "",
        "## Provincial intervals (for comparison)",
        "",
        _markdown(summaries["provincial_coverage"]),
        "",
    ]
    if "placebo_rejection" in summaries:
        sections += [
            "## Placebo tests",
            "",
            f"Provincial placebo rejection rates at alpha = {1 - (settings or EvaluationSettings()).level:.2f} "
            "(Clopper-Pearson interval; rows of one replicate are dependent, so the interval is too narrow):",
            "",
            _markdown(summaries["placebo_rejection"]),
            "",
            "National pooled placebo effects (truth 0): `false_positive_rate` is the national test's size.",
            "",
            _markdown(summaries["placebo_national"]),
            "",
        ]
    sections += [
        "## Multiplicity",
        "",
        f"Benjamini-Hochberg at q = {q} across the province x indicator results of one measure in one "
        "replicate (true nulls: series generated with no effect; confounded indicators left out); Holm "
        "across each province's primary indicators, over families holding at least one true null.",
        "",
        _markdown(summaries["multiplicity"]),
        "",
    ]
    if "multiplicity_placebo" in summaries:
        sections += [
            "Placebo results (every test a true null, so FDR = the chance of any discovery):",
            "",
            _markdown(summaries["multiplicity_placebo"]),
            "",
        ]
    if not tables.failures.empty:
        sections += [
            "## Failed fits",
            "",
            _markdown(tables.failures.groupby(["stage", "indicator"]).size().rename("n").reset_index()),
            "",
        ]
    out.write_text("\n".join(sections), encoding="utf-8")
    paths["report"] = out
    return paths


def save_tables(tables: StudyTables, directory: str | Path) -> None:
    """Write every table of a study as Parquet, so the report can be rebuilt without refitting."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for name in StudyTables.__dataclass_fields__:
        getattr(tables, name).to_parquet(directory / f"{name}.parquet", index=False)


def load_tables(directory: str | Path) -> StudyTables:
    """Read the tables written by :func:`save_tables`."""
    directory = Path(directory)
    return StudyTables(
        **{name: pd.read_parquet(directory / f"{name}.parquet") for name in StudyTables.__dataclass_fields__}
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: run the study and write the report."""
    parser = argparse.ArgumentParser(
        prog="python -m analysis.studies.national_coverage", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--reps", type=int, default=20, help="replicates (one generator seed each)")
    parser.add_argument("--seed0", type=int, default=1, help="first seed; replicates use seed0 .. seed0 + reps - 1")
    parser.add_argument(
        "--placebo-every", type=int, default=1, help="run placebo tests in every n-th replicate (1: all)"
    )
    parser.add_argument(
        "--indicators",
        type=int,
        nargs="+",
        default=None,
        help="annex numbers (default: the representative subset plus the DRG-confounded ones)",
    )
    parser.add_argument(
        "--reference-seeds", type=int, default=200, help="generator draws for the Monte Carlo part of the estimand"
    )
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", default="docs/national_coverage.md")
    parser.add_argument(
        "--raw",
        default=None,
        help="directory for the replicate-level tables (Parquet); with --from-raw, read them instead of simulating",
    )
    parser.add_argument("--from-raw", action="store_true", help="rebuild the report from --raw without refitting")
    parser.add_argument(
        "--bias-corrected",
        action="store_true",
        help="bias-corrected absolute and cumulative effects (EvaluationSettings.bias_corrected_effects)",
    )
    args = parser.parse_args(argv)
    settings = EvaluationSettings(bias_corrected_effects=args.bias_corrected)
    if args.from_raw:
        if args.raw is None:
            parser.error("--from-raw needs --raw")
        tables = load_tables(args.raw)
    else:
        seeds = list(range(args.seed0, args.seed0 + args.reps))
        tables = simulation_study(
            seeds=seeds,
            placebo_seeds=seeds[:: max(1, args.placebo_every)],
            indicators=args.indicators,
            workers=args.workers,
            progress=True,
            settings=settings,
            reference_seeds=range(REFERENCE_SEED0, REFERENCE_SEED0 + args.reference_seeds),
        )
        if args.raw is not None:
            save_tables(tables, args.raw)
    paths = write_report(tables, args.out, settings=settings)
    print(f"wrote {paths['report']} and {len(paths) - 1} CSV files")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
