"""Parameters of an evaluation run (recorded in the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from analysis.its.design import ITSDesign
from analysis.registry import get_indicator, timeline

#: Covariance estimators of the series' models (:mod:`analysis.its.covariance`; ``quasi`` is
#: the Pearson-scaled model covariance).
COV_TYPES = ("latent-ar1", "newey-west", "quasi", "model")
#: Estimators of the between-province variance (:data:`analysis.synthesis.pooling.Method`).
POOLING_METHODS = ("reml", "dl", "fe", "pm", "ml")
#: How end-of-plan absolute effects of proportions and rates are pooled
#: (:func:`analysis.synthesis.national.national_effects`).
ABSOLUTE_COUNTS = ("equal", "inverse-variance", "relative")


@dataclass(frozen=True, kw_only=True)
class EvaluationSettings:
    """Model and reporting choices applied to every province x indicator series.

    Defaults: a 3-month wash-in after each province's start (provincial plans were
    issued one to four months after the national plan and effects build up); month-of-year
    dummies plus Spring Festival days; one dummy per nationwide COVID-19 shock month; the
    latent AR(1) covariance (see :class:`analysis.its.covariance.LatentAR1`); effects at
    2025-09, the last month of implementation.
    """

    washin: int = 3
    seasonality: str = "month"
    spring_festival: bool = True
    shocks: tuple[str, ...] = field(default=tuple(str(m) for m in timeline.COVID_SHOCK_MONTHS))
    first_post_time: int = 0
    cov_type: str = "latent-ar1"
    evaluation_month: str = str(timeline.IMPLEMENTATION_END)
    level: float = 0.95
    #: Absolute and cumulative effects of proportions and rates corrected for the bias of the
    #: back-transformed counterfactual (:meth:`analysis.its.results.ITSResults.effect_at`). Off
    #: by default: the correction is only as good as the variance it uses, and it over-corrected
    #: perioperative mortality (32) on the synthetic data (docs/national_coverage.md).
    bias_corrected_effects: bool = False
    pooling_method: str = "reml"
    pooling_hksj: bool = True
    #: Knapp-Hartung factor floored at 1 (metafor ``test="adhoc"``): the plain factor made
    #: national placebo tests reject 6.9% at the 5% level (docs/national_coverage.md).
    pooling_hksj_floor: bool = True
    #: End-of-plan absolute effects of proportions and rates pooled as an unweighted mean
    #: (see :func:`analysis.synthesis.national.national_effects`): their standard errors grow
    #: with the province's level, and inverse-variance weights underestimated them.
    pooling_absolute_counts: str = "equal"
    #: Indicators declared primary before any result is seen (Holm adjustment across them):
    #: the national quality-and-safety improvement targets among the annex indicators
    #: (STEMI and stroke reperfusion, unplanned return to the operating room, perioperative
    #: mortality; see the domain calibration notes, section 3).
    primary_indicators: tuple[int, ...] = (11, 12, 31, 32)

    def __post_init__(self) -> None:
        """Refuse an unknown choice or a value out of range, naming the valid ones (a typo
        must stop the run, not turn every series into a failure)."""
        for name, choices in (
            ("cov_type", COV_TYPES),
            ("pooling_method", POOLING_METHODS),
            ("pooling_absolute_counts", ABSOLUTE_COUNTS),
            ("first_post_time", (0, 1)),
        ):
            if getattr(self, name) not in choices:
                raise ValueError(f"{name} must be one of {list(choices)}, got {getattr(self, name)!r}")
        if not isinstance(self.washin, int) or self.washin < 0:
            raise ValueError(f"washin must be a whole number of months >= 0, got {self.washin!r}")
        if not 0 < self.level < 1:
            raise ValueError(f"level must be between 0 and 1 (e.g. 0.95), got {self.level!r}")
        for name, months in (("evaluation_month", (self.evaluation_month,)), ("shocks", self.shocks)):
            for month in months:
                try:
                    pd.Period(str(month), "M")
                except ValueError:
                    raise ValueError(f"{name} must be months written YYYY-MM, got {month!r}") from None
        try:
            ITSDesign(interruption="2023-06", seasonality=self.seasonality)
        except ValueError as err:
            raise ValueError(f"seasonality: {err}") from None
        for number in self.primary_indicators:
            try:
                get_indicator(number)
            except KeyError as err:
                raise ValueError(f"primary_indicators: {err.args[0]}") from None

    def design(self, start: pd.Period) -> ITSDesign:
        """The ITS design for a series whose plan started in ``start``."""
        return ITSDesign(
            interruption=start,
            washin=self.washin,
            seasonality=self.seasonality,
            spring_festival=self.spring_festival,
            shocks=tuple(self.shocks),
            first_post_time=self.first_post_time,
        )

    def pooling_options(self) -> dict:
        """Keyword options of :func:`analysis.synthesis.national.national_effects`."""
        return {
            "method": self.pooling_method,
            "hksj": self.pooling_hksj,
            "hksj_floor": self.pooling_hksj_floor,
            "level": self.level,
            "absolute_counts": self.pooling_absolute_counts,
        }

    def as_dict(self) -> dict:
        return asdict(self)
