"""Effects by event time (months since each province's own start) under staggered adoption.

Provinces issued their implementation plans in different months, so the same calendar
month is the third month of the plan in one province and the first in another. This module
lines the provinces up by **event time** ``k``, the number of months since the province's
own start (``k = 0`` is the start month), and asks how the effect evolves with ``k``:

1. :func:`event_time_effects`: for every province x indicator, the modelled effect of the
   plan at ``k = 0, 1, ..., K``: the fitted mean with the plan against the counterfactual
   of the same month (:meth:`analysis.its.results.ITSResults.effect_at`), absolute (display
   units) and relative (ratio - 1), with the engine's delta-method intervals and degrees of
   freedom.
2. :func:`pooled_event_time`: the national curve, one random-effects meta-analysis per
   indicator and event time (REML with the Hartung-Knapp-Sidik-Jonkman interval, relative
   effects pooled as log ratios, as :mod:`analysis.synthesis.national` pools the end-of-plan
   effects), with the number of provinces behind each point.
3. :func:`cohort_heterogeneity`: at a common event time, the pooled effect of each start
   cohort (provinces that started in the same month) and a test of equal cohort means, so
   that a reader can see whether early and late starters gained alike.

Why not a two-way fixed-effects regression
------------------------------------------
The textbook way to use staggered adoption is a regression of all provinces on province and
month fixed effects and a "treated" dummy (or leads and lags of it). With effects that
change with time since adoption, that estimator is a weighted average of every 2 x 2
comparison in the panel, including "forbidden" ones in which provinces that have already
started serve as controls for later starters; their evolving effects are then subtracted,
some weights are negative, and the coefficient can even take the wrong sign (Goodman-Bacon
2021, J Econometrics 225:254-277). Event-study leads and lags are contaminated the same way
by effects at other event times (Sun & Abraham 2021, J Econometrics 225:175-199). The remedy
is to estimate each adoption group's effects against units that are not (yet) treated and
only then aggregate (Callaway & Sant'Anna 2021, J Econometrics 225:200-230).

This design takes that route to its end: **each province is compared only with its own
pre-period counterfactual** (its pre-plan trend, season, Spring Festival and shock terms,
projected forward), so no other province, and in particular no already-treated one, ever
serves as a control. The national curve at event time ``k`` is then a weighted mean of the
provinces' own estimated effects at ``k`` with positive weights summing to one (inverse-variance
random-effects weights), so every province counts with the sign of its own effect. The
price is a different identifying assumption: instead of parallel trends across provinces,
each province's pre-period model must extrapolate correctly. Shocks common to all
provinces (e.g. the anti-corruption campaign from 2023-07) are not differenced out; because
provinces started in different months, such a shock falls at different event times in
different cohorts, one more reason to look at :func:`cohort_heterogeneity`.

What the curve means inside the wash-in
---------------------------------------
The default model (``washin_mode="exclude"``) leaves the wash-in months (``k < washin``)
out of the fit. Its effect there is the post-period level and slope change carried back to
those months, the effect *as if fully in place*; the data of those months do not inform it,
and it says nothing about how fast the plan took hold. With ``washin_mode="ramp"`` the level
change is assumed to build up linearly, ``(k + 1) / washin`` of it at event time ``k``, and
the wash-in months are fitted: the curve there is the assumed ramp, scaled by estimates.
Either way the rows carry ``phase == "washin"`` and the figure shades them.

Balanced window
---------------
A province that started in 2023-10 is observed for four fewer months than one that started
in 2023-06. If the national curve at each ``k`` pooled whichever provinces are observed,
its late part would rest on the early starters only, and a difference between early and
late starters would show up as a change over event time (a composition effect masquerading
as dynamics). By default :func:`pooled_event_time` therefore keeps only event times at which
every province is observed (a balanced panel of provinces); ``balanced=False`` shows the
rest with the number of provinces behind each point.

Examples
--------
>>> from analysis.data.synthetic import generate
>>> from analysis.evaluation.event_time import event_time_effects, fit_event_time_models
>>> data = generate(3, provinces=["110000", "340000", "440000"], indicators=[11])
>>> starts = dict(zip(data.plan_dates["province"], data.plan_dates["start_month"]))
>>> results, failures = fit_event_time_models(data.panel, starts=starts)
>>> table = event_time_effects(results, max_event_time=12)
>>> table.groupby("province")["event_time"].agg(["min", "max"]).to_numpy().tolist()
[[0, 12], [0, 12], [0, 12]]
>>> curve = pooled_event_time(table)
>>> relative = curve[curve["measure"] == "effect_relative"].reset_index(drop=True)
>>> relative[["event_time", "phase", "k_provinces"]].head(4)
   event_time   phase  k_provinces
0           0  washin            3
1           1  washin            3
2           2  washin            3
3           3    post            3
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.evaluation.event_time import EVENT_TIME_COLUMNS, MEASURES
from analysis.synthesis.national import equal_weight_rows
from analysis.synthesis.pooling import pool_frame_mixed

if TYPE_CHECKING:
    pass

__all__ = [
    "COHORT_COLUMNS",
    "COHORT_TEST_COLUMNS",
    "POOLED_COLUMNS",
    "CohortHeterogeneity",
    "cohort_heterogeneity",
    "pooled_event_time",
]

#: Columns of :func:`pooled_event_time`.
POOLED_COLUMNS = [
    "indicator",
    "measure",
    "event_time",
    "phase",
    "k_provinces",
    "n_provinces",
    "balanced",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "df",
    "pi_low",
    "pi_high",
    "tau2",
    "i2",
    "method",
    "hksj",
    "weights",
    "level",
    "scale",
]
#: Columns of :attr:`CohortHeterogeneity.cohorts`.
COHORT_COLUMNS = [
    "indicator",
    "measure",
    "event_time",
    "cohort",
    "k_provinces",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "df",
    "scale",
]
#: Columns of :attr:`CohortHeterogeneity.tests`.
COHORT_TEST_COLUMNS = [
    "indicator",
    "measure",
    "event_time",
    "n_cohorts",
    "k_provinces",
    "tau2",
    "q_between",
    "test",
    "statistic",
    "df_num",
    "df_den",
    "p_value",
    "method",
    "hksj",
]

_KEYS = ["indicator", "measure", "event_time"]


# ---------------------------------------------------------------------------------------
# National curve
# ---------------------------------------------------------------------------------------


def _on_pooling_scale(effects: pd.DataFrame) -> pd.DataFrame:
    """Usable rows with ``y`` and ``s`` on the pooling scale (log ratio for relative effects).

    ``effect_at`` reports the relative effect's standard error as ``ratio * se(log ratio)``,
    so the log-scale standard error is ``se / (1 + estimate)``, the same number that
    :func:`analysis.synthesis.national.pooling_inputs` recovers from the interval.
    """
    missing = [c for c in EVENT_TIME_COLUMNS if c not in effects.columns]
    if missing:
        raise ValueError(f"the event-time table has no column(s) {missing}")
    unknown = sorted(set(effects["measure"]) - set(MEASURES))
    if unknown:
        raise ValueError(f"unknown measure(s) {unknown}; expected {list(MEASURES)}")
    frame = effects.assign(province=effects["province"].astype(str), indicator=effects["indicator"].astype(int))
    relative = (frame["measure"] == "effect_relative").to_numpy()
    est = frame["estimate"].to_numpy(float)
    se = frame["se"].to_numpy(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        frame["y"] = np.where(relative, np.log1p(est), est)
        frame["s"] = np.where(relative, se / (1 + est), se)
    usable = np.isfinite(frame["y"]) & np.isfinite(frame["s"]) & (frame["s"] > 0)
    return frame[usable]


def _back_transform(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    relative = frame["measure"] == "effect_relative"
    for column in columns:
        frame.loc[relative, column] = np.expm1(frame.loc[relative, column])


def pooled_event_time(
    effects: pd.DataFrame,
    *,
    balanced: bool = True,
    method: str = "reml",
    hksj: bool = True,
    level: float = 0.95,
    hksj_floor: bool = False,
    absolute_counts: str = "equal",
) -> pd.DataFrame:
    """National event-time curve: one random-effects meta-analysis per indicator, measure and event time.

    Parameters
    ----------
    effects : pandas.DataFrame
        The table of :func:`event_time_effects`.
    balanced : bool
        Keep only event times at which every province of the indicator has an estimate
        (default): otherwise later event times rest on the early starters alone and a
        difference between early and late starters looks like a change over time.
        ``False`` keeps every event time, with ``k_provinces`` and ``balanced`` showing how
        many provinces stand behind each point.
    method, hksj, level, hksj_floor
        As for :func:`analysis.synthesis.pooling.pool`; the defaults are the national
        analysis's (REML, Hartung-Knapp-Sidik-Jonkman).
    absolute_counts : {"equal", "inverse-variance", "relative"}
        Weights of the absolute effects of proportions and rates, as in
        :func:`analysis.synthesis.national.national_effects` (default: unweighted mean;
        ``"relative"`` has no derived curve and pools them unweighted too).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`POOLED_COLUMNS`, sorted by indicator, measure and event time.
        ``k_provinces`` is the number of provinces pooled at that event time and
        ``n_provinces`` the number with an estimate at any event time. Relative effects are
        pooled as log ratios and back-transformed to ratio - 1 (``estimate``, intervals;
        ``se`` is then NaN and ``tau2`` stays on the log scale). ``df`` is that of the
        interval: ``k - 1`` with HKSJ, infinite for a Wald interval. At an event time with
        a single province there is nothing to pool, and the row is that province's own
        (its estimate, standard error, interval, p-value and degrees of freedom).

    Examples
    --------
    >>> table = pd.DataFrame({
    ...     "province": ["a", "b", "a", "b", "a"], "indicator": 9, "start_month": "2023-06",
    ...     "event_time": [0, 0, 1, 1, 2], "month": "", "phase": "post", "measure": "effect_absolute",
    ...     "estimate": [1.0, 2.0, 1.5, 2.5, 3.0], "se": 0.5, "ci_low": np.nan, "ci_high": np.nan,
    ...     "p_value": np.nan, "df": np.inf, "scale": "minutes"})
    >>> pooled_event_time(table)[["event_time", "estimate", "k_provinces"]]
       event_time  estimate  k_provinces
    0           0       1.5            2
    1           1       2.0            2
    >>> pooled_event_time(table, balanced=False)[["event_time", "k_provinces", "balanced"]]
       event_time  k_provinces  balanced
    0           0            2      True
    1           1            2      True
    2           2            1     False
    """
    frame = _on_pooling_scale(effects)
    if frame.empty:
        return pd.DataFrame(columns=POOLED_COLUMNS)
    equal = equal_weight_rows(frame, measure="effect_absolute", absolute_counts=absolute_counts)
    pooled = pool_frame_mixed(
        frame, equal=equal, by=_KEYS, estimate="y", se="s", method=method, hksj=hksj, level=level, hksj_floor=hksj_floor
    )
    pooled = pooled.rename(columns={"k": "k_provinces"})
    totals = frame.groupby(["indicator", "measure"])["province"].nunique().rename("n_provinces")
    pooled = pooled.join(totals, on=["indicator", "measure"])
    pooled["balanced"] = pooled["k_provinces"] == pooled["n_provinces"]
    phases = frame.groupby(_KEYS)["phase"].agg(lambda p: p.iat[0] if p.nunique() == 1 else "mixed")
    pooled = pooled.join(phases, on=_KEYS)
    scales = frame.groupby(["indicator", "measure"])["scale"].first()
    pooled = pooled.join(scales, on=["indicator", "measure"])
    pooled["df"] = np.where(pooled["hksj"], pooled["k_provinces"] - 1.0, np.inf)
    _back_transform(pooled, ["estimate", "ci_low", "ci_high", "pi_low", "pi_high"])
    pooled.loc[pooled["measure"] == "effect_relative", "se"] = np.nan  # a log-scale se does not describe ratio - 1

    single = pooled["k_provinces"] == 1
    if single.any():
        # Nothing to pool: report the province's own row, with the engine's t interval.
        columns = ["estimate", "se", "ci_low", "ci_high", "p_value", "df"]
        alone = frame[frame.groupby(_KEYS)["y"].transform("size") == 1]
        own = pooled.loc[single, _KEYS].merge(alone[_KEYS + columns], on=_KEYS, how="left", validate="one_to_one")
        pooled.loc[single, columns] = own[columns].to_numpy()
    if balanced:
        pooled = pooled[pooled["balanced"]]
    return pooled[POOLED_COLUMNS].sort_values(_KEYS, ignore_index=True)


# ---------------------------------------------------------------------------------------
# Start cohorts
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CohortHeterogeneity:
    """Pooled effects by start cohort and tests of equal cohort means.

    Attributes
    ----------
    cohorts : pandas.DataFrame
        Columns :data:`COHORT_COLUMNS`: one row per indicator x measure x event time x
        cohort with the cohort's pooled effect and interval.
    tests : pandas.DataFrame
        Columns :data:`COHORT_TEST_COLUMNS`: one row per indicator x measure x event time
        with the residual between-province variance ``tau2`` (pooling scale), the Wald
        statistic ``q_between`` for equal cohort means and the test actually used
        (``chi2`` on ``n_cohorts - 1`` df, or ``F`` on ``(n_cohorts - 1, k - n_cohorts)``
        df with the Knapp-Hartung scaling).
    """

    cohorts: pd.DataFrame
    tests: pd.DataFrame

    def _repr_html_(self) -> str:
        return self.tests._repr_html_()


@dataclass(frozen=True)
class _SubgroupFit:
    tau2: float
    means: np.ndarray
    se: np.ndarray
    crit: float
    df: float
    q_between: float
    statistic: float
    df_num: int
    df_den: float
    p_value: float
    test: str


def _subgroup_parts(
    y: np.ndarray, v: np.ndarray, g: np.ndarray, tau2: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Weights, total weight and weighted mean per subgroup, and residuals from those means."""
    w = 1.0 / (v + tau2)
    s1 = np.bincount(g, w)
    means = np.bincount(g, w * y) / s1
    resid = y - means[g]
    return w, s1, means, resid


def _reml_score(y: np.ndarray, v: np.ndarray, g: np.ndarray, tau2: float) -> float:
    """Twice the REML score for tau^2 with one mean per subgroup.

    With cohort dummies as moderators, ``P = W - W X (X'WX)^-1 X'W`` is block diagonal, so
    ``y'PPy = sum(w^2 r^2)`` (``r`` residuals from the cohort means) and
    ``tr(P) = sum(w) - sum_g sum_{i in g} w_i^2 / sum_{i in g} w_i``.
    """
    w, s1, _, resid = _subgroup_parts(y, v, g, tau2)
    trace = w.sum() - (np.bincount(g, w**2) / s1).sum()
    return float((w**2 * resid**2).sum() - trace)


def _reml_loglik(y: np.ndarray, v: np.ndarray, g: np.ndarray, tau2: float) -> float:
    w, s1, _, resid = _subgroup_parts(y, v, g, tau2)
    return float(-0.5 * np.log(v + tau2).sum() - 0.5 * np.log(s1).sum() - 0.5 * (w * resid**2).sum())


def _residual_tau2(y: np.ndarray, v: np.ndarray, g: np.ndarray) -> float:
    """REML estimate of the residual tau^2 of the mixed-effects model ``y ~ cohort``.

    The root of the REML score (0 when the score is not positive at 0), kept only if its
    restricted likelihood beats that of tau^2 = 0, as metafor checks.
    """
    if _reml_score(y, v, g, 0.0) <= 0:
        return 0.0
    high = max(float(np.var(y)), float(np.max(v)), 1e-8)
    for _ in range(200):
        if _reml_score(y, v, g, high) < 0:
            break
        high *= 2
    root = optimize.brentq(lambda t: _reml_score(y, v, g, t), 0.0, high, xtol=1e-12, rtol=1e-12)
    return root if _reml_loglik(y, v, g, root) >= _reml_loglik(y, v, g, 0.0) else 0.0


def _subgroup_fit(
    y: np.ndarray, v: np.ndarray, g: np.ndarray, *, method: str, hksj: bool, level: float
) -> _SubgroupFit:
    """Mixed-effects subgroup analysis with a common residual tau^2 (metafor's
    ``rma(y, v, mods = ~ factor(g), method = "REML")``, ``test = "knha"`` when ``hksj``).

    A common tau^2 borrows strength across cohorts: a cohort of one or two provinces cannot
    estimate its own, and a cohort with tau^2 = 0 by default would get too much weight and
    inflate the test.
    """
    k, n_groups = len(y), int(g.max()) + 1
    residual_df = k - n_groups
    tau2 = 0.0 if method == "fe" or residual_df < 1 else _residual_tau2(y, v, g)
    w, s1, means, resid = _subgroup_parts(y, v, g, tau2)
    grand = (s1 * means).sum() / s1.sum()
    q_between = float((s1 * (means - grand) ** 2).sum())
    df_num = n_groups - 1
    tail = (1 - level) / 2
    if hksj:
        scale = float((w * resid**2).sum() / residual_df) if residual_df >= 1 else np.nan
        se = np.sqrt(scale / s1)
        crit = float(stats.t.isf(tail, residual_df)) if residual_df >= 1 else np.nan
        statistic = q_between / df_num / scale if df_num >= 1 and residual_df >= 1 else np.nan
        p_value = float(stats.f.sf(statistic, df_num, residual_df)) if np.isfinite(statistic) else np.nan
        return _SubgroupFit(
            tau2, means, se, crit, float(residual_df), q_between, statistic, df_num, float(residual_df), p_value, "F"
        )
    se = np.sqrt(1.0 / s1)
    valid = df_num >= 1 and (method == "fe" or residual_df >= 1)
    p_value = float(stats.chi2.sf(q_between, df_num)) if valid else np.nan
    return _SubgroupFit(
        tau2,
        means,
        se,
        float(stats.norm.isf(tail)),
        np.inf,
        q_between,
        q_between if valid else np.nan,
        df_num,
        np.nan,
        p_value,
        "chi2",
    )


def cohort_heterogeneity(
    effects: pd.DataFrame,
    *,
    event_time: int | Sequence[int],
    cohort_of: Mapping[str, str] | None = None,
    method: str = "reml",
    hksj: bool = True,
    level: float = 0.95,
) -> CohortHeterogeneity:
    """Do early and late starters differ? Pooled effects by start cohort at common event times.

    A subgroup meta-analysis per indicator, measure and event time: the provinces'
    estimates (log ratios for relative effects) are modelled as a mean per cohort plus a
    between-province random effect with one residual variance ``tau2`` common to all
    cohorts (estimated by REML), and equal cohort means are tested by the Wald statistic
    ``q_between = sum_g W_g (mu_g - mu)^2`` (``W_g`` the cohort's total weight, ``mu``
    their weighted mean). With ``hksj`` the variances are scaled by the weighted residual
    mean square and the test is ``F(G - 1, k - G)`` (metafor's ``test = "knha"``);
    otherwise ``chi2(G - 1)``.

    Parameters
    ----------
    effects : pandas.DataFrame
        The table of :func:`event_time_effects`.
    event_time : int or sequence of int
        Common event time(s) at which cohorts are compared; provinces not observed there
        are left out.
    cohort_of : mapping, optional
        Cohort label per province; default the province's start month (``start_month``).
    method : {"reml", "fe"}
        ``fe`` fixes ``tau2`` at 0 (then ``q_between`` is the classic between-groups Q).
    hksj : bool
        Knapp-Hartung scaling and t / F reference distributions.
    level : float
        Confidence level of the cohort intervals.

    Returns
    -------
    CohortHeterogeneity
        ``cohorts`` and ``tests`` tables. Relative effects are back-transformed to
        ratio - 1 (``se`` NaN). The test is NaN with a single cohort. When every cohort
        has a single province there is no residual variation: ``tau2`` cannot be
        estimated, and the test and the Knapp-Hartung intervals are NaN (unless
        ``method="fe"`` without ``hksj``).

    Examples
    --------
    Two cohorts of three provinces whose effects differ by 1:

    >>> table = pd.DataFrame({
    ...     "province": list("abcdef"), "indicator": 9, "start_month": ["2023-06"] * 3 + ["2023-09"] * 3,
    ...     "event_time": 6, "month": "", "phase": "post", "measure": "effect_absolute",
    ...     "estimate": [1.0, 1.2, 0.8, 2.1, 1.9, 2.0], "se": 0.2, "ci_low": np.nan, "ci_high": np.nan,
    ...     "p_value": np.nan, "df": np.inf, "scale": "minutes"})
    >>> out = cohort_heterogeneity(table, event_time=6)
    >>> out.cohorts[["cohort", "k_provinces", "estimate"]].round(3)
        cohort  k_provinces  estimate
    0  2023-06            3       1.0
    1  2023-09            3       2.0
    >>> out.tests[["n_cohorts", "test", "df_num", "df_den"]]
       n_cohorts test  df_num  df_den
    0          2    F       1     4.0
    >>> bool(out.tests["p_value"].iat[0] < 0.01)
    True
    """
    if method not in ("reml", "fe"):
        raise ValueError(f"method must be 'reml' or 'fe', not {method!r}")
    times = [int(event_time)] if np.ndim(event_time) == 0 else [int(k) for k in event_time]
    frame = _on_pooling_scale(effects)
    frame = frame[frame["event_time"].isin(times)]
    if cohort_of is None:
        frame = frame.assign(cohort=frame["start_month"].astype(str))
    else:
        labels = {str(k): str(v) for k, v in cohort_of.items()}
        missing = sorted(set(frame["province"]) - set(labels))
        if missing:
            raise ValueError(f"no cohort for province(s) {missing[:10]}")
        frame = frame.assign(cohort=frame["province"].map(labels))
    cohort_rows, test_rows = [], []
    for (number, measure, k), group in frame.groupby(_KEYS, sort=True):
        codes, names = pd.factorize(group["cohort"], sort=True)
        fit = _subgroup_fit(
            group["y"].to_numpy(float), group["s"].to_numpy(float) ** 2, codes, method=method, hksj=hksj, level=level
        )
        counts = np.bincount(codes)
        key = {"indicator": int(number), "measure": measure, "event_time": int(k)}
        scale = group["scale"].iat[0]
        for c, name in enumerate(names):
            cohort_rows.append(
                {
                    **key,
                    "cohort": name,
                    "k_provinces": int(counts[c]),
                    "estimate": fit.means[c],
                    "se": fit.se[c],
                    "ci_low": fit.means[c] - fit.crit * fit.se[c],
                    "ci_high": fit.means[c] + fit.crit * fit.se[c],
                    "df": fit.df,
                    "scale": scale,
                }
            )
        test_rows.append(
            {
                **key,
                "n_cohorts": len(names),
                "k_provinces": len(group),
                "tau2": fit.tau2,
                "q_between": fit.q_between,
                "test": fit.test,
                "statistic": fit.statistic,
                "df_num": fit.df_num,
                "df_den": fit.df_den,
                "p_value": fit.p_value,
                "method": method,
                "hksj": hksj,
            }
        )
    cohorts = pd.DataFrame(cohort_rows, columns=COHORT_COLUMNS)
    _back_transform(cohorts, ["estimate", "ci_low", "ci_high"])
    cohorts.loc[cohorts["measure"] == "effect_relative", "se"] = np.nan
    return CohortHeterogeneity(cohorts=cohorts, tests=pd.DataFrame(test_rows, columns=COHORT_TEST_COLUMNS))
