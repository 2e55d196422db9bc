"""The national synthesis tables of a run, beyond the pooled effects.

Every table is computed from the fitted panel (nothing is refitted) except the robustness
tables, which refit the panel under other analysis choices (about 40 s for the full panel on
2 cores; ``python -m analysis run --no-robustness`` skips them).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from analysis.evaluation.fit_panel import PanelResults
from analysis.evaluation.settings import EvaluationSettings
from analysis.registry import timeline
from analysis.synthesis.event_time import cohort_heterogeneity, pooled_event_time
from analysis.synthesis.metaregression import meta_regression_frame
from analysis.synthesis.national import pooling_inputs

#: Event times (months since each province's start) at which start cohorts are compared.
COHORT_EVENT_TIMES = (6, 12, 24)

#: The six administrative regions of China by the first digit of the GB/T 2260 code.
REGIONS = {"1": "north", "2": "northeast", "3": "east", "4": "central-south", "5": "southwest", "6": "northwest"}


def province_characteristics(starts: Mapping[str, pd.Period]) -> pd.DataFrame:
    """Province moderators for meta-regression: region and months of delay after 2023-06.

    Examples
    --------
    >>> province_characteristics({"340000": pd.Period("2023-08", "M")}).iloc[0].to_dict()
    {'province': '340000', 'region': 'east', 'start_delay': 2}
    """
    rows = [
        {
            "province": str(code),
            "region": REGIONS[str(code)[0]],
            "start_delay": int((pd.Period(start, "M") - timeline.IMPLEMENTATION_START).n),
        }
        for code, start in sorted(starts.items())
    ]
    return pd.DataFrame(rows, columns=["province", "region", "start_delay"])


def meta_regression_tables(
    effects: pd.DataFrame, *, starts: Mapping[str, pd.Period], settings: EvaluationSettings
) -> dict[str, pd.DataFrame]:
    """Meta-regression of the provinces' relative effects at the evaluation month on
    region and start delay (log ratio scale; REML with Knapp-Hartung tests)."""
    inputs = pooling_inputs(effects, level=settings.level)
    inputs = inputs[inputs["measure"] == "effect_end_relative"]
    frame = inputs.merge(province_characteristics(starts), on="province", how="left")
    table = meta_regression_frame(
        frame,
        estimate="pool_estimate",
        se="pool_se",
        moderators=["region", "start_delay"],
        by=["indicator", "measure"],
        method=settings.pooling_method,
        knha=settings.pooling_hksj,
        level=settings.level,
        reference={"region": "east"},
    )
    return {
        "meta_regression": table.coefficients,
        "meta_regression_fits": table.fits,
        "meta_regression_failures": table.failures,
    }


def event_time_tables(results: PanelResults, *, settings: EvaluationSettings) -> dict[str, pd.DataFrame]:
    """National event-time curves (balanced window) and the start-cohort comparison."""
    curves = results.event_time
    if curves.empty:
        return {"event_time": curves}
    national = pooled_event_time(curves, balanced=True, **settings.pooling_options())
    available = [k for k in COHORT_EVENT_TIMES if k in set(curves["event_time"])]
    tables = {"event_time": curves, "event_time_national": national}
    if available:
        cohorts = cohort_heterogeneity(
            curves,
            event_time=available,
            method=settings.pooling_method,
            hksj=settings.pooling_hksj,
            level=settings.level,
        )
        tables |= {"cohort_effects": cohorts.cohorts, "cohort_tests": cohorts.tests}
    return tables


def robustness_tables(
    panel: pd.DataFrame,
    results: PanelResults,
    *,
    national: pd.DataFrame,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings,
    workers: int = 1,
) -> dict[str, pd.DataFrame]:
    """Sensitivity to the analysis choices, placebo tests and the multilevel panel model
    (compared with ``national``, the run's pooled effects).

    These refit the panel (each variant, each placebo start, one mixed model per
    indicator); the run caches them.
    """
    from analysis.synthesis.panel_model import compare_with_meta, panel_model_frame
    from analysis.synthesis.placebo import placebo_panel, rejection_rates
    from analysis.synthesis.sensitivity import sensitivity_analysis

    sensitivity = sensitivity_analysis(
        panel, starts=starts, settings=settings, baseline_effects=results.effects, workers=workers
    )
    placebo, placebo_failures = placebo_panel(panel, starts=starts, settings=settings, workers=workers)
    panel_models = panel_model_frame(panel, starts=starts, settings=settings)
    failures = pd.concat(
        [
            sensitivity.failures.assign(stage="sensitivity"),
            placebo_failures.assign(stage="placebo"),
            panel_models.failures.assign(stage="panel_model"),
        ],
        ignore_index=True,
    )
    return {
        "robustness": sensitivity.summary,
        "robustness_variants": sensitivity.variants,
        "leave_one_out": sensitivity.leave_one_out,
        "placebo": placebo,
        "placebo_rates": rejection_rates(placebo),
        "panel_model": panel_models.effects,
        "panel_model_random_effects": panel_models.random_effects,
        "panel_vs_meta": compare_with_meta(panel_models.effects, national),
        "robustness_failures": failures,
    }
