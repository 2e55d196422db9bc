"""Read-only results of a fitted ITS model: coefficients, effects, counterfactuals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.its import effects
from analysis.its.effects import Contrast
from analysis.its.timeaxis import TimeLike, as_ordinal, as_time_index, is_monthly, ordinals

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
    family: Family
    design: ITSDesign
    time: pd.Index
    fit_mask: np.ndarray
    outcome: np.ndarray
    size: np.ndarray | None
    group: np.ndarray | None
    n_pre: int
    n_post: int
    converged: bool
    pearson_dispersion: float
    residuals: pd.Series = field(repr=False)
    contrast_df: Callable[[np.ndarray], float] | None = field(default=None, repr=False)
    fitted_X: pd.DataFrame | None = field(default=None, repr=False)
    all_rows: pd.DataFrame | None = field(default=None, repr=False)

    def fitted_design(self) -> pd.DataFrame | None:
        """A copy of the design matrix of the fitted rows (None when not kept)."""
        return None if self.fitted_X is None else self.fitted_X.copy()

    def df_for(self, gradient: np.ndarray) -> float:
        """Degrees of freedom of the reference t distribution for the contrast ``gradient``."""
        return self.df_resid if self.contrast_df is None else self.contrast_df(np.asarray(gradient, float))

    def df_for_many(self, gradients: np.ndarray) -> np.ndarray:
        """:meth:`df_for` of each column of a (p x m) matrix of gradients."""
        G = np.asarray(gradients, float)
        if self.contrast_df is None:
            return np.full(G.shape[1], float(self.df_resid))
        if getattr(self.contrast_df, "vectorized", False):
            return np.asarray(self.contrast_df(G), dtype=float)
        return np.array([self.contrast_df(G[:, j]) for j in range(G.shape[1])], dtype=float)

    @property
    def months(self) -> pd.Index:
        """Alias of ``time`` for monthly series."""
        return self.time

    @property
    def controlled(self) -> bool:
        return self.group is not None

    # -- coefficients -------------------------------------------------------------
    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov)), index=self.params.index, name="std_error")

    def coefficient(self, name: str, *, level: float = 0.95) -> Contrast:
        """A coefficient as a contrast on the link scale (e.g. ``level_change``)."""
        gradient = (self.params.index == name).astype(float)
        if not gradient.any():
            raise KeyError(f"no coefficient {name!r}; have {list(self.params.index)}")
        return effects.linear(
            name,
            float(self.params[name]),
            gradient,
            self.cov.to_numpy(),
            df=self.df_for(gradient),
            level=level,
            scale=self.family.link,
        )

    def summary_frame(self, *, level: float = 0.95) -> pd.DataFrame:
        """Tidy coefficient table."""
        return effects.contrasts_frame([self.coefficient(n, level=level) for n in self.params.index])

    # -- predictions --------------------------------------------------------------
    def _rows(self, time: pd.Index, group: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Design rows with and without the intervention for ``time`` (the treated series
        in a controlled design unless ``group`` says otherwise)."""
        time = as_time_index(time)
        if group is None:
            cached = self._own_rows
            position = (
                [cached[2].get(o) for o in ordinals(time)] if is_monthly(time) == is_monthly(self.time) else [None]
            )
            if None not in position:
                return cached[0][position], cached[1][position]
        return self._build_rows(time, group)

    def _build_rows(self, time: pd.Index, group: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        shocks = [as_ordinal(c.removeprefix("shock_"), time) for c in self.params.index if c.startswith("shock_")]
        if self.controlled and group is None:
            group = np.ones(len(time))
        X = self.design.matrix(time, shock_columns=shocks, group=group)
        # The lagged residual is evaluated at 0 by definition; a covariate's value outside
        # the data is not known and must not be taken as 0.
        unknown = [c for c in self.params.index if c not in X.columns and c != "lagged_residual"]
        if unknown:
            raise ValueError(
                f"effects and predictions at {[str(t) for t in time[:3]]} need the covariate(s) "
                f"{unknown}, which the data do not give there; use periods of the data"
            )
        return self._with_and_without(X.reindex(columns=self.params.index, fill_value=0.0))

    def _with_and_without(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Rows with the intervention and the same rows with it switched off (as
        :meth:`ITSDesign.counterfactual`, on arrays)."""
        with_plan = X.to_numpy(dtype=float, copy=True)
        counterfactual = with_plan.copy()
        counterfactual[:, X.columns.get_indexer(self.design.intervention_names(X))] = 0.0
        return with_plan, counterfactual

    @cached_property
    def _own_rows(self) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
        """Rows for every period of the (treated) series, built once: effects, cumulative
        effects and predictions all draw on them."""
        own = self.time if self.group is None else self.time[self.group == 1]
        if self.all_rows is not None:
            X = self.all_rows if self.group is None else self.all_rows.loc[self.group == 1]
            with_plan, counterfactual = self._with_and_without(X.reindex(columns=self.params.index, fill_value=0.0))
        else:
            with_plan, counterfactual = self._build_rows(own, None)
        return with_plan, counterfactual, {int(o): i for i, o in enumerate(ordinals(own))}

    def _mean_and_gradient(self, rows: np.ndarray, unit_scale: float) -> tuple[np.ndarray, np.ndarray]:
        eta = rows @ self.params.to_numpy()
        mean = self.family.inverse(eta) * unit_scale
        grad = (self.family.inverse_derivative(eta) * unit_scale)[:, None] * rows
        return mean, grad

    def _unbiased_mean(self, rows: np.ndarray, unit_scale: float) -> np.ndarray:
        """Expected values of ``rows`` corrected for the curvature of the inverse link
        (:meth:`Family.unbiased_mean`); their gradients, which only enter the standard
        errors, are the plug-in ones of :meth:`_mean_and_gradient` (the correction is of
        smaller order)."""
        variance = np.einsum("ij,jk,ik->i", rows, self.cov.to_numpy(), rows)
        return self.family.unbiased_mean(rows @ self.params.to_numpy(), variance) * unit_scale

    def effect_at(
        self, when: TimeLike, *, unit_scale: float = 1.0, level: float = 0.95, bias_corrected: bool = False
    ) -> tuple[Contrast, Contrast]:
        """Absolute and relative effect of the intervention at time ``when``.

        The modelled expected value with the intervention against the counterfactual
        (the same period and calendar with level and slope changes switched off; in a
        controlled design, the treated series without its differences from the controls).

        The absolute effect is by default the plug-in difference of the two means, as other
        software reports it. On a log or logit scale that difference is biased: the
        counterfactual, extrapolated far from the pre-period, is estimated with a large
        variance ``v`` on the link scale, and ``exp`` of it over-estimates the level by about
        ``v / 2``. For rare outcomes 27 months after the start this overstated reductions by
        5-11% on the synthetic data (``docs/national_coverage.md``). ``bias_corrected=True``
        uses :meth:`~analysis.its.families.Family.unbiased_mean` for both means (standard
        errors unchanged). The relative effect is always the plug-in ratio: on the log scale,
        where it is estimated and pooled, it is linear in the parameters.
        """
        arrays = self.effect_arrays(
            self._as_index([when]), unit_scale=unit_scale, level=level, bias_corrected=bias_corrected
        )
        fields = ("estimate", "se", "ci_low", "ci_high", "p_value")
        a, r = arrays["absolute"], arrays["relative"]
        absolute = Contrast("effect_absolute", *(float(a[f][0]) for f in fields), "display", float(a["df"][0]))
        if np.isnan(r["estimate"][0]):  # a ratio of non-positive means has no log scale
            relative = Contrast("effect_relative", np.nan, np.nan, np.nan, np.nan, np.nan, "ratio - 1")
        else:
            relative = Contrast("effect_relative", *(float(r[f][0]) for f in fields), "ratio - 1", float(r["df"][0]))
        return absolute, relative

    def effects_at(
        self, when: pd.Index | list, *, unit_scale: float = 1.0, level: float = 0.95, bias_corrected: bool = False
    ) -> pd.DataFrame:
        """:meth:`effect_at` for many periods at once, as a tidy table.

        One row per period and measure (``effect_absolute`` for every period, then
        ``effect_relative``) with the columns of :class:`~analysis.its.effects.Contrast`
        and ``time`` (``month`` for monthly series); the numbers equal those of
        :meth:`effect_at` period by period, computed with one matrix product instead of a loop.
        """
        time = self._as_index(when)
        arrays = self.effect_arrays(time, unit_scale=unit_scale, level=level, bias_corrected=bias_corrected)
        key = "month" if is_monthly(time) else "time"
        labels = np.asarray(time.astype(str) if is_monthly(time) else time, dtype=object)
        n = len(time)
        return pd.DataFrame(
            {
                key: np.concatenate([labels, labels]),
                "measure": np.repeat(["effect_absolute", "effect_relative"], n),
                **{
                    name: np.concatenate([arrays["absolute"][name], arrays["relative"][name]])
                    for name in ("estimate", "se", "ci_low", "ci_high", "p_value")
                },
                "scale": np.repeat(["display", "ratio - 1"], n),
                "df": np.concatenate([arrays["absolute"]["df"], arrays["relative"]["df"]]),
            }
        )

    def effect_arrays(
        self, time: pd.Index, *, unit_scale: float = 1.0, level: float = 0.95, bias_corrected: bool = False
    ) -> dict[str, dict[str, np.ndarray]]:
        """The numbers of :meth:`effects_at` as arrays: ``{"absolute": {...}, "relative": {...}}``
        with ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``df`` per period."""
        with_plan, counterfactual = self._rows(time)
        cov = self.cov.to_numpy()
        m1, g1 = self._mean_and_gradient(with_plan, unit_scale)
        m0, g0 = self._mean_and_gradient(counterfactual, unit_scale)
        a1, a0 = (
            (self._unbiased_mean(with_plan, unit_scale), self._unbiased_mean(counterfactual, unit_scale))
            if bias_corrected
            else (m1, m0)
        )
        positive = (m1 > 0) & (m0 > 0)
        with np.errstate(divide="ignore", invalid="ignore"):
            g_log = np.where(positive[:, None], g1 / m1[:, None] - g0 / m0[:, None], 0.0)
            log_ratio = np.where(positive, np.log(m1 / m0), np.nan)
        g_abs = g1 - g0
        absolute = effects.linear_many(a1 - a0, g_abs, cov, df=self.df_for_many(g_abs.T), level=level)
        relative = effects.ratio_minus_one_many(log_ratio, g_log, cov, df=self.df_for_many(g_log.T), level=level)
        relative = {name: np.where(positive, values, np.nan) for name, values in relative.items()}
        return {"absolute": absolute, "relative": relative}

    def cumulative_effect(
        self, window: pd.Index | list, *, level: float = 0.95, bias_corrected: bool = False
    ) -> Contrast:
        """Expected extra events over the periods in ``window`` (negative: events averted).

        Uses the observed denominators of those periods (of the treated series), which
        must be in the data. Only for count families. ``bias_corrected`` as for
        :meth:`effect_at`.
        """
        if self.size is None:
            raise ValueError("a cumulative count effect needs a count family with denominators")
        window = self._as_index(window)
        sizes = self.size if self.group is None else self.size[self.group == 1]
        position = self._own_rows[2] if is_monthly(window) == is_monthly(self.time) else {}
        rows = [position.get(int(o)) for o in ordinals(window)]
        missing = [str(t) for t, r in zip(window, rows) if r is None]
        if missing:
            raise ValueError(f"no denominators for {missing}")
        size = np.asarray(sizes, dtype=float)[rows]
        with_plan, counterfactual = self._rows(window)
        m1, g1 = self._mean_and_gradient(with_plan, 1.0)
        m0, g0 = self._mean_and_gradient(counterfactual, 1.0)
        if bias_corrected:
            m1, m0 = self._unbiased_mean(with_plan, 1.0), self._unbiased_mean(counterfactual, 1.0)
        value = float(size @ (m1 - m0))
        gradient = size @ (g1 - g0)
        return effects.linear(
            "effect_cumulative",
            value,
            gradient,
            self.cov.to_numpy(),
            df=self.df_for(gradient),
            level=level,
            scale="count",
        )

    def predictions(
        self, time: pd.Index | list | None = None, *, unit_scale: float = 1.0, level: float = 0.95
    ) -> pd.DataFrame:
        """Fitted and counterfactual expected values with confidence bands, per period.

        Bands are computed on the link scale and transformed, so they respect the
        outcome's range. ``observed`` is the data on the display scale (NaN outside the
        data); ``phase`` is pre, washin, post or excluded. In a controlled design the rows
        are the treated series'.
        """
        own = self.time if self.group is None else self.time[self.group == 1]
        time = own if time is None else self._as_index(time)
        with_plan, counterfactual = self._rows(time)
        beta, cov = self.params.to_numpy(), self.cov.to_numpy()
        crit = effects.critical_value(self.df_resid, level)
        out: dict[str, object] = {
            "month" if is_monthly(time) else "time": time.astype(str) if is_monthly(time) else time
        }
        for name, rows in (("fitted", with_plan), ("counterfactual", counterfactual)):
            eta = rows @ beta
            se = np.sqrt(np.maximum(np.einsum("ij,jk,ik->i", rows, cov, rows), 0.0))  # rounding can give -1e-18
            with np.errstate(over="ignore"):  # a band may reach +inf on the log scale far from the data
                out[name] = self.family.inverse(eta) * unit_scale
                out[f"{name}_low"] = self.family.inverse(eta - crit * se) * unit_scale
                out[f"{name}_high"] = self.family.inverse(eta + crit * se) * unit_scale
        observed = self.observed(unit_scale=unit_scale)
        if self.group is not None:
            observed = observed[self.group == 1]
        out["observed"] = pd.Series(observed, index=own).reindex(time).to_numpy()
        out["phase"] = self.design.phase(time)
        return pd.DataFrame(out)

    def _as_index(self, values: pd.Index | list) -> pd.Index:
        index = as_time_index(values)
        if is_monthly(index) != is_monthly(self.time):
            raise ValueError("use the same kind of time (months or integers) as the data")
        return index

    def observed(self, *, unit_scale: float = 1.0) -> np.ndarray:
        """The data on the display scale (a proportion or rate times ``unit_scale``)."""
        values = self.outcome if self.size is None else self.outcome / self.size
        return values * unit_scale
