"""The evaluation's default model of one series: the one model the run, power, placebo,
targets and event-time analyses fit (family from the registry, design and covariance from
the settings)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.evaluation.settings import EvaluationSettings
from analysis.its.series import model_for_series

if TYPE_CHECKING:
    from analysis.its.results import ITSResults


def _default_settings(settings: EvaluationSettings | None) -> EvaluationSettings:
    return EvaluationSettings() if settings is None else settings


def fit_default_model(
    series: pd.DataFrame,
    *,
    start: pd.Period | str,
    settings: EvaluationSettings | None = None,
    outcome: np.ndarray | None = None,
    design=None,
) -> ITSResults:
    """Fit the pipeline's model to one series and return the full results object.

    The same model as :func:`analysis.evaluation.fit_panel.fit_series` (family from the
    registry, design and covariance from ``settings``), for analyses that need more than
    the effects table: predictions at other months, refits to simulated outcomes.

    Parameters
    ----------
    series : pandas.DataFrame
        Rows of one province x indicator of a checked panel (``indicator``, ``month``,
        ``numerator``/``denominator`` or ``value``), sorted by month.
    start : pandas.Period or str
        The province's plan start.
    settings : EvaluationSettings, optional
        Model choices; the pipeline's defaults when omitted.
    outcome : array, optional
        Replace the observed outcome (numerators, or values for means), e.g. by a simulated one.
    design : ITSDesign, optional
        Use this design instead of ``settings.design(start)`` (e.g. a placebo interruption).

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(1, provinces=["340000"], indicators=[32])
    >>> res = fit_default_model(data.panel, start="2023-08")
    >>> res.cov_type, res.n_pre  # 2019-01..2023-07
    ('latent-ar1', 55)
    """
    settings = _default_settings(settings)
    design = settings.design(pd.Period(start, "M")) if design is None else design
    model = model_for_series(series, design=design, outcome=outcome)
    return model.fit(cov_type=settings.cov_type)
