"""Does the national conclusion survive other reasonable analysis choices?

For each indicator, the national pooled effect (by default the relative effect at 2025-09)
is re-estimated under alternative choices, each a full refit of every province x
indicator series with the pipeline's :func:`analysis.evaluation.fit_panel.fit_panel` and
pooled with :func:`analysis.synthesis.national.national_effects`:

``default``
    The main analysis (provincial start months, the settings' wash-in, COVID-19 shock
    dummies, latent AR(1) covariance).
``washin_0``, ``washin_6``
    No wash-in, and a 6-month wash-in, instead of the default 3 months: how fast the plan
    was expected to act.
``national_start``
    Every province starts in 2023-06 (the national implementation start) instead of its own
    plan's month.
``shocks_ignored``
    The COVID-19 shock months are kept without their dummies: does modelling the shocks
    matter?
``shocks_excluded`` (not run by default)
    The shock months are left out of the fit instead of being modelled by one dummy each.
    For a GLM this is *exactly* the default analysis: a dummy for a single month makes
    the fitted mean equal the observation there (its score equation), so the month adds
    nothing to the other coefficients' estimating equations, to the residual moments of the
    latent AR(1) covariance (its residual is zero and its row of the residual projection
    vanishes) or to the sandwich; and lags are counted in calendar months either way. It
    differs only where a dummy cannot be estimated properly (e.g. a month without any event
    of a rare outcome, whose dummy runs off to minus infinity). Hence the informative
    contrast is ``shocks_ignored``.
``newey_west``
    Newey-West (Bartlett HAC) standard errors instead of the latent AR(1) sandwich: the same
    point estimates, other intervals.

and, without refitting, **leave-one-province-out**: the default pooled estimate with each
province left out in turn (the range shows whether one province drives the result).

The conclusion compared is the verdict of :func:`analysis.synthesis.direction.classify_effects`
(improvement, deterioration or inconclusive at the settings' confidence level): it holds
when every variant and every leave-one-out estimate gives the default's verdict.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace

import numpy as np
import pandas as pd

from analysis.evaluation.fit_panel import fit_panel
from analysis.evaluation.settings import EvaluationSettings
from analysis.its.design import ITSDesign
from analysis.registry import timeline
from analysis.synthesis.direction import classify_effects
from analysis.synthesis.national import equal_weight_rows, national_effects, pooling_inputs
from analysis.synthesis.pooling import pool_frame_mixed

__all__ = [
    "DEFAULT_VARIANTS",
    "VARIANTS",
    "SensitivityResults",
    "ShockExclusionSettings",
    "leave_one_out",
    "sensitivity_analysis",
    "sensitivity_summary",
    "variant_inputs",
]

#: Analysis variants and what each changes.
VARIANTS: dict[str, str] = {
    "default": "main analysis: provincial starts, settings' wash-in, COVID-19 shock dummies, latent AR(1)",
    "washin_0": "no wash-in",
    "washin_6": "6-month wash-in",
    "national_start": "common national start 2023-06 for every province",
    "shocks_excluded": "COVID-19 shock months excluded from the fit instead of modelled by dummies",
    "shocks_ignored": "COVID-19 shock months kept without dummies",
    "newey_west": "Newey-West standard errors instead of the latent AR(1) sandwich",
}
#: Variants run unless told otherwise.
DEFAULT_VARIANTS: tuple[str, ...] = (
    "default",
    "washin_0",
    "washin_6",
    "national_start",
    "shocks_ignored",
    "newey_west",
)


@dataclass(frozen=True, kw_only=True)
class ShockExclusionSettings(EvaluationSettings):
    """Evaluation settings whose design also leaves the months in ``exclude`` out of the fit.

    Examples
    --------
    >>> s = ShockExclusionSettings(shocks=(), exclude=("2020-02",))
    >>> s.design(pd.Period("2023-06", "M")).exclude
    ('2020-02',)
    """

    exclude: tuple[str, ...] = field(default=())

    def design(self, start: pd.Period) -> ITSDesign:
        base = super().design(start)
        return replace(base, interruption=None, exclude=tuple(base.exclude) + tuple(self.exclude))


def variant_inputs(
    name: str, settings: EvaluationSettings, starts: Mapping[str, pd.Period]
) -> tuple[EvaluationSettings, dict[str, pd.Period]]:
    """Settings and start months of analysis variant ``name`` (see :data:`VARIANTS`).

    Examples
    --------
    >>> s, starts = variant_inputs("national_start", EvaluationSettings(), {"340000": pd.Period("2023-08", "M")})
    >>> str(starts["340000"]), s.washin
    ('2023-06', 3)
    >>> variant_inputs("newey_west", EvaluationSettings(), {})[0].cov_type
    'newey-west'
    """
    starts = dict(starts)
    if name == "default":
        return settings, starts
    if name == "washin_0":
        return replace(settings, washin=0), starts
    if name == "washin_6":
        return replace(settings, washin=6), starts
    if name == "national_start":
        return settings, {code: timeline.IMPLEMENTATION_START for code in starts}
    if name in ("shocks_excluded", "shocks_ignored"):
        values = {f.name: getattr(settings, f.name) for f in fields(EvaluationSettings)}
        months = tuple(str(m) for m in settings.shocks)
        values["shocks"] = ()
        exclude = months if name == "shocks_excluded" else ()
        return ShockExclusionSettings(**values, exclude=exclude), starts
    if name == "newey_west":
        return replace(settings, cov_type="newey-west"), starts
    raise ValueError(f"unknown variant {name!r}; choose from {list(VARIANTS)}")


@dataclass(frozen=True)
class SensitivityResults:
    """Tables of a sensitivity analysis (see :func:`sensitivity_analysis`).

    Attributes
    ----------
    variants : pandas.DataFrame
        One row per indicator x variant: ``variant``, ``description``, the national pooled
        ``estimate``, ``ci_low``, ``ci_high``, ``p_value``, ``tau2``, ``k``, ``direction``,
        ``verdict``, ``fit_seconds`` (time to refit the panel; 0 when reused).
    leave_one_out : pandas.DataFrame
        One row per indicator x left-out province (``left_out``): the pooled ``estimate``,
        ``ci_low``, ``ci_high``, ``p_value``, ``k``, ``verdict``.
    summary : pandas.DataFrame
        One row per indicator, see :func:`sensitivity_summary`.
    failures : pandas.DataFrame
        Series that could not be fitted in a variant (``variant``, ``province``,
        ``indicator``, ``stage``, ``error``, ``message``).
    """

    variants: pd.DataFrame
    leave_one_out: pd.DataFrame
    summary: pd.DataFrame
    failures: pd.DataFrame


_POOLED_COLUMNS = ["indicator", "measure", "estimate", "ci_low", "ci_high", "p_value", "tau2", "k"]


def leave_one_out(
    effects: pd.DataFrame,
    *,
    measure: str = "effect_end_relative",
    method: str = "reml",
    hksj: bool = True,
    level: float = 0.95,
    hksj_floor: bool = True,
    absolute_counts: str = "equal",
) -> pd.DataFrame:
    """The national pooled estimate with each province left out in turn.

    Pools exactly as :func:`analysis.synthesis.national.national_effects` (same inputs and
    scale; relative effects on the log scale, back-transformed), all left-out sets at once.

    Parameters
    ----------
    effects : pandas.DataFrame
        The pipeline's provincial effects table.
    measure : str
        Which effect to pool.
    method, hksj, level, hksj_floor, absolute_counts
        Pooling options. ``absolute_counts`` as for ``national_effects``; ``"relative"``
        has no derived estimate here and pools absolute effects with equal weights, as the
        default does.

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure``, ``left_out`` (province code), ``estimate``, ``ci_low``,
        ``ci_high``, ``p_value``, ``tau2``, ``k``, ``direction``, ``verdict``.

    Examples
    --------
    >>> effects = pd.DataFrame({"province": ["a", "b", "c"], "indicator": 32, "measure": "level_change",
    ...     "estimate": [-0.1, -0.2, 0.3], "se": 0.05, "ci_low": [-0.2, -0.3, 0.2], "ci_high": [0.0, -0.1, 0.4],
    ...     "p_value": 0.05, "df": np.inf, "scale": "logit"})
    >>> out = leave_one_out(effects, measure="level_change", method="fe", hksj=False)
    >>> out[["left_out", "estimate"]].round(3).values.tolist()
    [['a', 0.05], ['b', 0.1], ['c', -0.15]]
    """
    inputs = pooling_inputs(effects[effects["measure"] == measure], level=level)
    inputs = inputs.assign(province=inputs["province"].astype(str))
    provinces = sorted(inputs["province"].unique())
    frame = pd.concat(
        [inputs[inputs["province"] != code].assign(left_out=code) for code in provinces], ignore_index=True
    )
    if frame.empty:
        return pd.DataFrame(columns=["indicator", "measure", "left_out", *_POOLED_COLUMNS[2:], "direction", "verdict"])
    equal = equal_weight_rows(frame, measure="effect_end_absolute", absolute_counts=absolute_counts)
    pooled = pool_frame_mixed(
        frame,
        equal=equal,
        by=["indicator", "measure", "left_out"],
        estimate="pool_estimate",
        se="pool_se",
        method=method,
        hksj=hksj,
        level=level,
        hksj_floor=hksj_floor,
    )
    if measure == "effect_end_relative":
        for col in ("estimate", "ci_low", "ci_high"):
            pooled[col] = np.expm1(pooled[col])
    out = pooled[["indicator", "measure", "left_out", "estimate", "ci_low", "ci_high", "p_value", "tau2", "k"]]
    return classify_effects(out.reset_index(drop=True))


def sensitivity_summary(variants: pd.DataFrame, loo: pd.DataFrame) -> pd.DataFrame:
    """One row per indicator: the default conclusion and whether every alternative agrees.

    Parameters
    ----------
    variants : pandas.DataFrame
        :attr:`SensitivityResults.variants` (must include the ``default`` variant).
    loo : pandas.DataFrame
        :attr:`SensitivityResults.leave_one_out` (may be empty).

    Returns
    -------
    pandas.DataFrame
        ``indicator``, ``measure``, ``direction``, ``estimate``, ``ci_low``, ``ci_high``,
        ``p_value``, ``verdict`` (the default analysis); ``variant_min``, ``variant_max``
        (range of the estimates over all variants, the default included); ``n_variants``;
        ``variants_disagreeing`` (comma-separated names whose verdict differs, empty when
        none); ``loo_min``, ``loo_max`` (range of the leave-one-out estimates);
        ``loo_disagreeing`` (provinces whose omission changes the verdict);
        ``conclusion_robust`` (True when nothing disagrees).

    Examples
    --------
    >>> variants = pd.DataFrame({"indicator": 11, "measure": "effect_end_relative",
    ...     "variant": ["default", "washin_0"], "estimate": [0.05, 0.03], "ci_low": [0.01, -0.01],
    ...     "ci_high": [0.09, 0.07], "p_value": [0.01, 0.2], "direction": "up",
    ...     "verdict": ["improvement", "inconclusive"]})
    >>> loo = pd.DataFrame(columns=["indicator", "measure", "left_out", "estimate", "verdict"])
    >>> sensitivity_summary(variants, loo)[["verdict", "variants_disagreeing", "conclusion_robust"]].values.tolist()
    [['improvement', 'washin_0', False]]
    """
    keys = ["indicator", "measure"]
    default = variants[variants["variant"] == "default"]
    if default.empty:
        raise ValueError("the variants table needs the 'default' variant")
    out = default[[*keys, "direction", "estimate", "ci_low", "ci_high", "p_value", "verdict"]].copy()
    reference = out.set_index(keys)["verdict"]
    stats_by = variants.groupby(keys)["estimate"].agg(variant_min="min", variant_max="max", n_variants="size")
    others = variants[variants["variant"] != "default"]

    def disagreeing(frame: pd.DataFrame, label: str) -> pd.Series:
        verdict = frame.set_index(keys).index.map(reference.to_dict())
        differs = frame[np.asarray(frame["verdict"].to_numpy() != np.asarray(verdict, dtype=object))]
        return differs.groupby(keys)[label].agg(lambda names: ", ".join(map(str, names)))

    out = out.merge(stats_by.reset_index(), on=keys, how="left")
    out = out.merge(disagreeing(others, "variant").rename("variants_disagreeing").reset_index(), on=keys, how="left")
    if len(loo):
        loo_range = loo.groupby(keys)["estimate"].agg(loo_min="min", loo_max="max").reset_index()
        out = out.merge(loo_range, on=keys, how="left")
        out = out.merge(disagreeing(loo, "left_out").rename("loo_disagreeing").reset_index(), on=keys, how="left")
    else:
        out["loo_min"], out["loo_max"], out["loo_disagreeing"] = np.nan, np.nan, ""
    out[["variants_disagreeing", "loo_disagreeing"]] = out[["variants_disagreeing", "loo_disagreeing"]].fillna("")
    out["conclusion_robust"] = (out["variants_disagreeing"] == "") & (out["loo_disagreeing"] == "")
    return out.sort_values(keys).reset_index(drop=True)


def sensitivity_analysis(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    measure: str = "effect_end_relative",
    baseline_effects: pd.DataFrame | None = None,
    workers: int = 1,
    progress: bool = False,
) -> SensitivityResults:
    """Robustness of the national pooled effects to the analysis choices, per indicator.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel (:func:`analysis.data.contract.read_panel`).
    starts : mapping
        Each province's plan start month (provinces not listed: 2023-06).
    settings : EvaluationSettings, optional
        The main analysis' settings (default settings when omitted); variants change one
        choice each.
    variants : sequence of str
        Names from :data:`VARIANTS`; ``default`` is always run (or reused).
    measure : str
        The effect whose pooled estimate is compared.
    baseline_effects : pandas.DataFrame, optional
        The main run's effects table, reused as the ``default`` variant instead of refitting
        (it must come from ``settings`` and ``starts``).
    workers : int
        Worker processes for each refit (:func:`analysis.evaluation.fit_panel.fit_panel`).
    progress : bool
        Show progress bars.

    Returns
    -------
    SensitivityResults

    Notes
    -----
    Each variant refits every series once: about the cost of the main fit per variant (the
    leave-one-out estimates only re-pool). Series that fail in a variant are left out of
    that variant's pooling and listed in ``failures``.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(3, provinces=["110000", "340000", "540000"], indicators=[12])
    >>> starts = {r.province: pd.Period(r.start_month, "M") for r in data.plan_dates.itertuples()}
    >>> res = sensitivity_analysis(data.panel, starts=starts, variants=["default", "newey_west"])
    >>> res.variants["variant"].tolist()
    ['default', 'newey_west']
    >>> sorted(res.leave_one_out["left_out"])
    ['110000', '340000', '540000']
    >>> list(res.summary.columns[-3:])
    ['loo_max', 'loo_disagreeing', 'conclusion_robust']
    """
    settings = settings or EvaluationSettings()
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        raise ValueError(f"unknown variant(s) {unknown}; choose from {list(VARIANTS)}")
    names = ["default", *[v for v in dict.fromkeys(variants) if v != "default"]]
    data = panel.assign(province=panel["province"].astype(str))
    starts = {str(k): pd.Period(v, "M") for k, v in starts.items()}
    for code in data["province"].unique():
        starts.setdefault(code, timeline.IMPLEMENTATION_START)

    pooled_parts, failure_parts = [], []
    default_effects = None
    for name in names:
        variant_settings, variant_starts = variant_inputs(name, settings, starts)
        began = time.perf_counter()
        if name == "default" and baseline_effects is not None:
            effects, seconds = baseline_effects, 0.0
        else:
            fitted = fit_panel(
                data, starts=variant_starts, settings=variant_settings, workers=workers, progress=progress
            )
            effects, seconds = fitted.effects, time.perf_counter() - began
            failure_parts.append(fitted.failures.assign(variant=name))
        effects = effects[effects["measure"] == measure]
        if name == "default":
            default_effects = effects
        national = national_effects(effects, **settings.pooling_options())
        national = national[national["measure"] == measure]
        pooled_parts.append(
            national[_POOLED_COLUMNS].assign(variant=name, description=VARIANTS[name], fit_seconds=round(seconds, 1))
        )
    table = classify_effects(pd.concat(pooled_parts, ignore_index=True))
    order = {name: i for i, name in enumerate(names)}
    table = table.sort_values(["indicator", "variant"], key=lambda s: s.map(order) if s.name == "variant" else s)
    table = table[
        [
            "indicator",
            "measure",
            "variant",
            "description",
            "estimate",
            "ci_low",
            "ci_high",
            "p_value",
            "tau2",
            "k",
            "direction",
            "verdict",
            "fit_seconds",
        ]
    ].reset_index(drop=True)
    loo = leave_one_out(
        default_effects,
        measure=measure,
        method=settings.pooling_method,
        absolute_counts=settings.pooling_absolute_counts,
        hksj_floor=settings.pooling_hksj_floor,
        hksj=settings.pooling_hksj,
        level=settings.level,
    )
    failures = (
        pd.concat(failure_parts, ignore_index=True)
        if failure_parts
        else pd.DataFrame(columns=["province", "indicator", "stage", "error", "message", "variant"])
    )
    failures = failures[["variant", *[c for c in failures.columns if c != "variant"]]]
    return SensitivityResults(
        variants=table, leave_one_out=loo, summary=sensitivity_summary(table, loo), failures=failures
    )
