"""Method comparison: the same series fitted with several estimators, side by side.

Published reviews found that ITS methods often disagree on significance; a user should see
at once whether a conclusion depends on the estimator.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd

from analysis.its.model import SegmentedRegression

#: Estimators compared by default: (label, fit options).
GAUSSIAN_METHODS: tuple[tuple[str, dict], ...] = (
    ("ols", {"cov_type": "model"}),
    ("newey-west", {"cov_type": "newey-west"}),
    ("latent-ar1", {"cov_type": "latent-ar1"}),
    ("prais-winsten", {"errors": "prais-winsten"}),
    ("reml-ar1", {"errors": "reml-ar"}),
    ("arima(1,0,0)", {"errors": "arima"}),
)
COUNT_METHODS: tuple[tuple[str, dict], ...] = (
    ("independent", {"cov_type": "model"}),
    ("quasi", {"cov_type": "quasi"}),
    ("newey-west", {"cov_type": "newey-west"}),
    ("lagged-residual", {"cov_type": "model", "lagged_residual": True}),
    ("latent-ar1", {"cov_type": "latent-ar1"}),
)


def compare_methods(
    model: SegmentedRegression,
    *,
    methods: Sequence[tuple[str, dict]] | None = None,
    at: object | None = None,
    unit_scale: float = 1.0,
    level: float = 0.95,
) -> pd.DataFrame:
    """Fit ``model`` with each estimator; one row per estimator and quantity.

    Quantities: ``level_change`` and ``slope_change`` (model scale) and, when ``at`` is
    given, ``effect_absolute`` and ``effect_relative`` at that time. A method that fails is
    reported in the ``error`` column, and the others go on.

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.its import ITSDesign
    >>> t = np.arange(1, 61)
    >>> y = 10 + 0.1 * t - 2 * (t >= 31) + np.random.default_rng(0).normal(0, 1, 60)
    >>> m = SegmentedRegression(y, time=t, design=ITSDesign(interruption=31))
    >>> table = compare_methods(m)
    >>> sorted(table["method"].unique())[:3]
    ['arima(1,0,0)', 'latent-ar1', 'newey-west']
    """
    if methods is None:
        methods = GAUSSIAN_METHODS if model.family.name == "gaussian" else COUNT_METHODS
    rows = []
    for label, options in methods:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = model.fit(**options)
            contrasts = [res.coefficient("level_change", level=level)]
            if "slope_change" in res.params:
                contrasts.append(res.coefficient("slope_change", level=level))
            if at is not None:
                contrasts += list(res.effect_at(at, unit_scale=unit_scale, level=level))
            for c in contrasts:
                rows.append(
                    {
                        "method": label,
                        "quantity": c.measure,
                        "estimate": c.estimate,
                        "se": c.se,
                        "ci_low": c.ci_low,
                        "ci_high": c.ci_high,
                        "p_value": c.p_value,
                        "significant": bool(c.p_value < 1 - level),
                        "error": None,
                    }
                )
        except Exception as err:  # reported, not fatal: the point is to compare
            rows.append(
                {
                    "method": label,
                    "quantity": None,
                    "estimate": None,
                    "se": None,
                    "ci_low": None,
                    "ci_high": None,
                    "p_value": None,
                    "significant": None,
                    "error": f"{type(err).__name__}: {err}",
                }
            )
    return pd.DataFrame(rows)


def side_by_side(table: pd.DataFrame, *, value: str = "p_value") -> pd.DataFrame:
    """One row per quantity, one column per method (e.g. p-values side by side)."""
    ok = table[table["error"].isna()]
    return ok.pivot(index="quantity", columns="method", values=value)


def conclusion_depends_on_method(table: pd.DataFrame) -> pd.Series:
    """Per quantity: True when the estimators disagree on significance."""
    ok = table[table["error"].isna()]
    return ok.groupby("quantity")["significant"].agg(lambda s: s.nunique() > 1)
