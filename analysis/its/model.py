"""Segmented regression for one series (or a treated series stacked with controls)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from analysis.its.covariance import FitContext, get_estimator
from analysis.its.design import RECOMMENDED_POINTS_PER_PHASE, ITSDesign
from analysis.its.families import get_family
from analysis.its.results import ITSResults
from analysis.its.timeaxis import as_time_index, ordinals


class ModelError(ValueError):
    """The model cannot be fitted to this series."""


class ShortSeriesWarning(UserWarning):
    """A phase has fewer points than recommended for a reliable ITS."""


@dataclass(frozen=True)
class DesignData:
    """The rows a model is fitted to, with their design matrix.

    Estimators other than the GLM fit (e.g. regression with ARMA errors) start from here.
    """

    X: pd.DataFrame
    y: np.ndarray
    size: np.ndarray | None
    time: pd.Index
    series: np.ndarray
    fit_mask: np.ndarray
    n_pre: int
    n_post: int


class SegmentedRegression:
    """Interrupted time-series model: a GLM with level and slope change terms.

    Parameters
    ----------
    outcome : array-like
        Event counts (binomial, Poisson) or values (Gaussian), one per row.
    time : array-like
        Time of each row: months (``pandas.Period``, ``YYYY-MM``) or integers. Increasing
        within each series; gaps are allowed and lags are counted in time units.
    design : ITSDesign
        The segmented-regression design.
    family : {"gaussian", "binomial", "poisson"}
        Outcome family with its canonical link (identity, logit, log).
    trials : array-like, optional
        Binomial denominators.
    exposure : array-like, optional
        Poisson exposure (the log offset), e.g. catheter-days.
    group : array-like, optional
        Controlled ITS: 1 for rows of the treated series, 0 for control rows (stacked).
    series : array-like, optional
        Series label of each row when several series are stacked (default: ``group``).
    months : array-like, optional
        Deprecated alias of ``time``.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> months = pd.period_range("2019-01", periods=60, freq="M")
    >>> design = ITSDesign(interruption="2022-01", seasonality="none", spring_festival=False, shocks=())
    >>> X = design.matrix(months)
    >>> y = 10 + 0.1 * X["time"] - 2 * X["level_change"] + rng.normal(0, 0.5, 60)
    >>> res = SegmentedRegression(y, time=months, design=design).fit(cov_type="model")
    >>> bool(abs(res.params["level_change"] - (-2)) < 0.6)  # true level change -2
    True
    """

    def __init__(
        self,
        outcome: np.ndarray | pd.Series,
        *,
        design: ITSDesign,
        time: pd.Index | list | np.ndarray | None = None,
        months: pd.Index | list | None = None,
        family: str = "gaussian",
        trials: np.ndarray | pd.Series | None = None,
        exposure: np.ndarray | pd.Series | None = None,
        group: np.ndarray | pd.Series | None = None,
        series: np.ndarray | pd.Series | None = None,
    ) -> None:
        if (time is None) == (months is None):
            raise ModelError("give the time of each row as time=")
        self.time = as_time_index(time if time is not None else months)
        self.outcome = np.asarray(outcome, dtype=float)
        self.design = design
        self.family = get_family(family)
        self.size = self._size(trials, exposure)
        self.group = None if group is None else np.asarray(group, dtype=float)
        labels = series if series is not None else self.group
        self.series = np.zeros(len(self.time), dtype=int) if labels is None else pd.factorize(np.asarray(labels))[0]
        self._validate()

    @property
    def months(self) -> pd.Index:
        return self.time

    def _size(self, trials, exposure) -> np.ndarray | None:
        name = self.family.name
        if name == "binomial":
            if trials is None or exposure is not None:
                raise ModelError("a binomial model needs trials (the denominator) and no exposure")
            return np.asarray(trials, dtype=float)
        if name == "poisson":
            if exposure is None or trials is not None:
                raise ModelError("a Poisson model needs an exposure (the denominator) and no trials")
            return np.asarray(exposure, dtype=float)
        if trials is not None or exposure is not None:
            raise ModelError("a Gaussian model takes neither trials nor exposure")
        return None

    def _validate(self) -> None:
        n = len(self.time)
        for name, values in (("outcome", self.outcome), ("denominator", self.size), ("group", self.group)):
            if values is not None and values.shape != (n,):
                raise ModelError(f"{name} has {values.shape[0]} rows, time has {n}")
        o = ordinals(self.time)
        for code in np.unique(self.series):
            t = o[self.series == code]
            if np.any(np.diff(t) <= 0):
                raise ModelError("time must be unique and increasing within each series")
        if not np.all(np.isfinite(self.outcome)):
            raise ModelError("the outcome has missing or non-finite values")
        if self.size is not None:
            if not np.all(np.isfinite(self.size)) or np.any(self.size <= 0):
                raise ModelError("denominators must be finite and positive")
            if np.any(self.outcome < 0) or np.any(self.outcome != np.round(self.outcome)):
                raise ModelError("counts must be non-negative integers")
            if self.family.name == "binomial" and np.any(self.outcome > self.size):
                raise ModelError("the numerator exceeds the denominator")

    def design_data(self) -> DesignData:
        """The fitted rows and their design matrix (checks the phases first)."""
        fit_mask = self.design.fit_mask(self.time)
        time = self.time[fit_mask]
        treated = fit_mask if self.group is None else fit_mask & (self.group == 1)
        n_pre, n_post = self.design.check_phases(self.time[treated])
        if min(n_pre, n_post) < RECOMMENDED_POINTS_PER_PHASE:
            warnings.warn(f"only {n_pre} pre- and {n_post} post-interruption points: estimates of slope "
                          f"changes are unreliable with fewer than {RECOMMENDED_POINTS_PER_PHASE} per phase",
                          ShortSeriesWarning, stacklevel=3)
        group = None if self.group is None else self.group[fit_mask]
        X = self.design.matrix(time, group=group)
        X = X.loc[:, _estimable_columns(X)]
        size = None if self.size is None else self.size[fit_mask]
        return DesignData(X, self.outcome[fit_mask], size, time, self.series[fit_mask], fit_mask, n_pre, n_post)

    def fit(self, *, cov_type: str = "latent-ar1", **cov_config: object) -> ITSResults:
        """Fit by maximum likelihood (IRLS) and estimate the covariance.

        Parameters
        ----------
        cov_type : {"latent-ar1", "newey-west", "model", "quasi"}
            Covariance estimator (see :mod:`analysis.its.covariance`).
        **cov_config
            Options of the estimator, e.g. ``lags=3`` for Newey-West.
        """
        estimator = get_estimator(cov_type, **cov_config)
        data = self.design_data()
        X, y, size = data.X, data.y, data.size
        result = self._glm(X, y, size)
        params = pd.Series(result.params, index=X.columns)
        eta = X.to_numpy() @ params.to_numpy()
        info = self.family.information(eta, size)
        mean = self.family.mean_counts(eta, size)
        slope = info if self.family.has_sampling_variance else np.ones_like(eta)
        context = FitContext(X=X.to_numpy(), weights=info, resid=(y - mean) / slope, time=ordinals(data.time),
                             sampling=self.family.has_sampling_variance, series=data.series)
        cov = estimator.estimate(context)
        return ITSResults(
            params=params,
            cov=pd.DataFrame(cov.cov, index=X.columns, columns=X.columns),
            df_resid=cov.df,
            cov_type=cov.name,
            cov_details=dict(cov.details),
            family=self.family,
            design=self.design,
            time=self.time,
            fit_mask=data.fit_mask,
            outcome=self.outcome,
            size=self.size,
            group=self.group,
            n_pre=data.n_pre,
            n_post=data.n_post,
            converged=bool(result.converged),
            pearson_dispersion=float(np.sum(info * context.resid**2) / context.df_resid),
            residuals=pd.Series(context.resid * np.sqrt(info), index=data.time, name="pearson"),
        )

    def _glm(self, X: pd.DataFrame, y: np.ndarray, size: np.ndarray | None):
        family = self.family.statsmodels_family()
        if self.family.name == "binomial":
            endog, kwargs = np.column_stack([y, size - y]), {}
        elif self.family.name == "poisson":
            endog, kwargs = y, {"exposure": size}
        else:
            endog, kwargs = y, {}
        with warnings.catch_warnings():
            warnings.simplefilter("error", PerfectSeparationWarning)
            warnings.simplefilter("ignore", ConvergenceWarning)
            try:
                result = sm.GLM(endog, X.to_numpy(), family=family, **kwargs).fit(maxiter=100)
            except (PerfectSeparationWarning, np.linalg.LinAlgError) as err:
                raise ModelError(f"the model cannot be estimated: {err}") from err
        if not result.converged:
            raise ModelError("the maximum-likelihood fit did not converge in 100 iterations")
        return result


def _estimable_columns(X: pd.DataFrame) -> list[str]:
    """Drop calendar columns that are constant zero in the fitted rows (e.g. a month
    absent from a short series); intervention and trend columns are always kept."""
    keep = []
    for col in X.columns:
        optional = col.startswith(("month_", "season_", "shock_", "spring_festival"))
        if optional and not np.any(X[col].to_numpy() != 0):
            continue
        keep.append(col)
    return keep
