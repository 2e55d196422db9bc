"""The ITS model for one province x indicator series of a checked panel."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.data.covariates import COVARIATE_PREFIX
from analysis.its.design import ITSDesign
from analysis.its.model import ModelError, SegmentedRegression
from analysis.registry import get_indicator


def model_for_series(
    series: pd.DataFrame, *, design: ITSDesign, outcome: np.ndarray | None = None, group: np.ndarray | None = None
) -> SegmentedRegression:
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
    covariates = series_covariates(series)
    if family == "gaussian":
        y = series["value"].to_numpy(float) if outcome is None else np.asarray(outcome, float)
        return SegmentedRegression(y, time=months, design=design, group=group, covariates=covariates)
    y = series["numerator"].to_numpy(float) if outcome is None else np.asarray(outcome, float)
    size = series["denominator"].to_numpy(float)
    kwargs = {"trials": size} if family == "binomial" else {"exposure": size}
    return SegmentedRegression(
        y, time=months, design=design, family=family, group=group, covariates=covariates, **kwargs
    )


def series_covariates(series: pd.DataFrame) -> pd.DataFrame | None:
    """The covariates of one series from its ``covariate:NAME`` columns: those with a
    value in some month (a covariate with none is not part of this series' model).
    A covariate with values in some months and not in others is an error naming them."""
    columns = [c for c in series.columns if str(c).startswith(COVARIATE_PREFIX)]
    present = [c for c in columns if series[c].notna().any()]
    if not present:
        return None
    for column in present:
        missing = series.loc[series[column].isna(), "month"].astype(str).tolist()
        if missing:
            shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
            raise ModelError(
                f"covariate {column.removeprefix(COVARIATE_PREFIX)!r} has no value for {shown} "
                "(covariates.csv): give every month of the series, or none"
            )
    return pd.DataFrame({c.removeprefix(COVARIATE_PREFIX): series[c].to_numpy(float) for c in present})
