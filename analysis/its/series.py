"""The ITS model for one province x indicator series of a checked panel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.its.design import ITSDesign
from analysis.its.model import SegmentedRegression
from analysis.registry import get_indicator


def model_for_series(series: pd.DataFrame, *, design: ITSDesign, outcome: np.ndarray | None = None,
                     group: np.ndarray | None = None) -> SegmentedRegression:
    """The segmented regression for one series of a canonical panel.

    The family follows the indicator's measure in the registry (of the first row): means
    are Gaussian on ``value``; proportions binomial and rates Poisson on ``numerator`` over
    ``denominator``. ``outcome`` replaces the observed values or numerators (e.g. by
    simulated ones). ``group`` (1 treated, 0 comparison, per row) makes it the two-group
    model of stacked series (see :mod:`analysis.synthesis.controls`).

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> panel = generate(1, provinces=["340000"], indicators=[34]).panel
    >>> model_for_series(panel, design=ITSDesign(interruption="2023-08")).family.name
    'poisson'
    """
    family = get_indicator(int(series["indicator"].iat[0])).family
    months = pd.PeriodIndex(series["month"], freq="M")
    if family == "gaussian":
        y = series["value"].to_numpy(float) if outcome is None else np.asarray(outcome, float)
        return SegmentedRegression(y, time=months, design=design, group=group)
    y = series["numerator"].to_numpy(float) if outcome is None else np.asarray(outcome, float)
    size = series["denominator"].to_numpy(float)
    kwargs = {"trials": size} if family == "binomial" else {"exposure": size}
    return SegmentedRegression(y, time=months, design=design, family=family, group=group, **kwargs)
