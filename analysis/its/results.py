"""Read-only results of a fitted ITS model: coefficients, effects, counterfactuals."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.its import effects
from analysis.its.effects import Contrast

if TYPE_CHECKING:
    from analysis.its.design import ITSDesign
    from analysis.its.families import Family


@dataclass(frozen=True, kw_only=True, eq=False)
class ITSResults:
    """Results of :meth:`SegmentedRegression.fit`.

    ``params`` and ``cov`` are on the link scale. Effects on the display scale multiply
    the model's mean (a probability, or events per unit of exposure, or the value itself)
    by ``unit_scale`` (e.g. 100 for %, 1000 for per 1000 catheter-days).
    """

    params: pd.Series
    cov: pd.DataFrame
    df_resid: float
    cov_type: str
    cov_details: dict[str, float]
    family: "Family"
    design: "ITSDesign"
    months: pd.PeriodIndex
    fit_mask: np.ndarray
    outcome: np.ndarray
    size: np.ndarray | None
    n_pre: int
    n_post: int
    converged: bool
    pearson_dispersion: float
    residuals: pd.Series = field(repr=False)

    # -- coefficients -------------------------------------------------------------
    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov)), index=self.params.index, name="std_error")

    def coefficient(self, name: str, *, level: float = 0.95) -> Contrast:
        """A coefficient as a contrast on the link scale (e.g. ``level_change``)."""
        gradient = (self.params.index == name).astype(float)
        if not gradient.any():
            raise KeyError(f"no coefficient {name!r}; have {list(self.params.index)}")
        return effects.linear(name, float(self.params[name]), gradient, self.cov.to_numpy(),
                              df=self.df_resid, level=level, scale=self.family.link)

    def summary_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Tidy coefficient table."""
        return effects.contrasts_frame([self.coefficient(n, level=level) for n in self.params.index])

    # -- predictions --------------------------------------------------------------
    def _rows(self, months: pd.PeriodIndex) -> tuple[np.ndarray, np.ndarray]:
        shocks = [pd.Period(c.removeprefix("shock_"), "M") for c in self.params.index if c.startswith("shock_")]
        X = self.design.matrix(months, shock_columns=shocks)
        X = X.reindex(columns=self.params.index, fill_value=0.0)
        return X.to_numpy(), self.design.counterfactual(X).to_numpy()

    def _mean_and_gradient(self, rows: np.ndarray, unit_scale: float) -> tuple[np.ndarray, np.ndarray]:
        eta = rows @ self.params.to_numpy()
        mean = self.family.inverse(eta) * unit_scale
        grad = (self.family.inverse_derivative(eta) * unit_scale)[:, None] * rows
        return mean, grad

    def effect_at(self, month: str | pd.Period, *, unit_scale: float = 1.0, level: float = 0.95) -> tuple[Contrast, Contrast]:
        """Absolute and relative effect of the intervention in ``month``.

        The modelled expected value with the intervention against the counterfactual
        (the same month and calendar with level and slope change switched off).
        """
        month = pd.PeriodIndex([pd.Period(str(month), "M")])
        with_plan, counterfactual = self._rows(month)
        cov = self.cov.to_numpy()
        m1, g1 = self._mean_and_gradient(with_plan, unit_scale)
        m0, g0 = self._mean_and_gradient(counterfactual, unit_scale)
        absolute = effects.linear("effect_absolute", float(m1[0] - m0[0]), g1[0] - g0[0], cov,
                                  df=self.df_resid, level=level, scale="display")
        if m1[0] > 0 and m0[0] > 0:
            relative = effects.ratio_minus_one("effect_relative", float(np.log(m1[0] / m0[0])),
                                               g1[0] / m1[0] - g0[0] / m0[0], cov,
                                               df=self.df_resid, level=level)
        else:  # a ratio of non-positive means has no log scale
            relative = Contrast("effect_relative", np.nan, np.nan, np.nan, np.nan, np.nan, "ratio - 1")
        return absolute, relative

    def cumulative_effect(self, months: pd.PeriodIndex, *, level: float = 0.95) -> Contrast:
        """Expected extra events over ``months`` (e.g. negative: deaths averted).

        Uses the observed denominators of those months, which must be in the data.
        Only for count families.
        """
        if self.size is None:
            raise ValueError("a cumulative count effect needs a count family with denominators")
        months = pd.PeriodIndex(months, freq="M")
        missing = months.difference(self.months)
        if len(missing):
            raise ValueError(f"no denominators for months {list(map(str, missing))}")
        size = pd.Series(self.size, index=self.months).loc[months].to_numpy()
        with_plan, counterfactual = self._rows(months)
        m1, g1 = self._mean_and_gradient(with_plan, 1.0)
        m0, g0 = self._mean_and_gradient(counterfactual, 1.0)
        value = float(size @ (m1 - m0))
        gradient = size @ (g1 - g0)
        return effects.linear("effect_cumulative", value, gradient, self.cov.to_numpy(),
                              df=self.df_resid, level=level, scale="count")

    def predictions(self, months: pd.PeriodIndex | None = None, *, unit_scale: float = 1.0,
                    level: float = 0.95) -> pd.DataFrame:
        """Monthly fitted and counterfactual expected values with confidence bands.

        Bands are computed on the link scale and transformed, so they respect the
        outcome's range. ``observed`` is the data on the display scale (NaN for months
        outside the data); ``phase`` is pre, washin or post.
        """
        months = self.months if months is None else pd.PeriodIndex(months, freq="M")
        with_plan, counterfactual = self._rows(months)
        beta, cov = self.params.to_numpy(), self.cov.to_numpy()
        crit = effects._critical(self.df_resid, level)
        out = {"month": months.astype(str)}
        for name, rows in (("fitted", with_plan), ("counterfactual", counterfactual)):
            eta = rows @ beta
            se = np.sqrt(np.einsum("ij,jk,ik->i", rows, cov, rows))
            with np.errstate(over="ignore"):  # a band may reach +inf on the log scale far from the data
                out[name] = self.family.inverse(eta) * unit_scale
                out[f"{name}_low"] = self.family.inverse(eta - crit * se) * unit_scale
                out[f"{name}_high"] = self.family.inverse(eta + crit * se) * unit_scale
        observed = pd.Series(self.observed(unit_scale=unit_scale), index=self.months)
        out["observed"] = observed.reindex(months).to_numpy()
        rel = self.design.months_since(months)
        out["phase"] = np.where(rel < 0, "pre", np.where(rel < self.design.washin, "washin", "post"))
        return pd.DataFrame(out)

    def observed(self, *, unit_scale: float = 1.0) -> np.ndarray:
        """The data on the display scale (a proportion or rate times ``unit_scale``)."""
        values = self.outcome if self.size is None else self.outcome / self.size
        return values * unit_scale
