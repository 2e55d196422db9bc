"""Segmented regression for one monthly series: the model and its fit."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from analysis.its.covariance import FitContext, get_estimator
from analysis.its.design import ITSDesign
from analysis.its.families import get_family
from analysis.its.results import ITSResults


class ModelError(ValueError):
    """The model cannot be fitted to this series."""


class SegmentedRegression:
    """Interrupted time-series model: a GLM with level and slope change terms.

    Parameters
    ----------
    outcome : array-like
        Event counts (binomial, Poisson) or values (Gaussian), one per month.
    months : pandas.PeriodIndex or sequence of ``YYYY-MM``
        The months of ``outcome``; unique and increasing. Gaps are allowed (excluded
        periods); lags are counted in calendar months.
    design : ITSDesign
        The segmented-regression design.
    family : {"gaussian", "binomial", "poisson"}
        Outcome family with its canonical link (identity, logit, log).
    trials : array-like, optional
        Binomial denominators.
    exposure : array-like, optional
        Poisson exposure (the log offset), e.g. catheter-days.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> months = pd.period_range("2019-01", periods=60, freq="M")
    >>> design = ITSDesign(interruption="2022-01", seasonality="none", spring_festival=False, shocks=())
    >>> X = design.matrix(months)
    >>> y = 10 + 0.1 * X["time"] - 2 * X["level_change"] + rng.normal(0, 0.5, 60)
    >>> res = SegmentedRegression(y, months=months, design=design).fit(cov_type="model")
    >>> bool(abs(res.params["level_change"] - (-2)) < 0.6)  # true level change -2
    True
    """

    def __init__(
        self,
        outcome: np.ndarray | pd.Series,
        *,
        months: pd.PeriodIndex | list[str],
        design: ITSDesign,
        family: str = "gaussian",
        trials: np.ndarray | pd.Series | None = None,
        exposure: np.ndarray | pd.Series | None = None,
    ) -> None:
        self.months = pd.PeriodIndex(months, freq="M")
        self.outcome = np.asarray(outcome, dtype=float)
        self.design = design
        self.family = get_family(family)
        self.size = self._size(trials, exposure)
        self._validate()

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
        n = len(self.months)
        if self.outcome.shape != (n,) or (self.size is not None and self.size.shape != (n,)):
            raise ModelError("outcome, months and denominators must have the same length")
        if not self.months.is_monotonic_increasing or not self.months.is_unique:
            raise ModelError("months must be unique and increasing")
        if not np.all(np.isfinite(self.outcome)):
            raise ModelError("the outcome has missing or non-finite values")
        if self.size is not None:
            if not np.all(np.isfinite(self.size)) or np.any(self.size <= 0):
                raise ModelError("denominators must be finite and positive")
            if np.any(self.outcome < 0) or np.any(self.outcome != np.round(self.outcome)):
                raise ModelError("counts must be non-negative integers")
            if self.family.name == "binomial" and np.any(self.outcome > self.size):
                raise ModelError("the numerator exceeds the denominator")

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
        fit_mask = ~self.design.in_washin(self.months)
        months = self.months[fit_mask]
        n_pre, n_post = self.design.check_phases(months)
        X = self.design.matrix(months)
        X = X.loc[:, _estimable_columns(X)]
        y = self.outcome[fit_mask]
        size = None if self.size is None else self.size[fit_mask]
        result = self._glm(X, y, size)
        params = pd.Series(result.params, index=X.columns)
        eta = X.to_numpy() @ params.to_numpy()
        info = self.family.information(eta, size)
        mean = self.family.mean_counts(eta, size)
        slope = info if self.family.has_sampling_variance else np.ones_like(eta)
        context = FitContext(
            X=X.to_numpy(),
            weights=info,
            resid=(y - mean) / slope,
            time=np.asarray(months.asi8),
            sampling=self.family.has_sampling_variance,
        )
        cov = estimator.estimate(context)
        return ITSResults(
            params=params,
            cov=pd.DataFrame(cov.cov, index=X.columns, columns=X.columns),
            df_resid=cov.df,
            cov_type=cov.name,
            cov_details=dict(cov.details),
            family=self.family,
            design=self.design,
            months=self.months,
            fit_mask=fit_mask,
            outcome=self.outcome,
            size=self.size,
            n_pre=n_pre,
            n_post=n_post,
            converged=bool(result.converged),
            pearson_dispersion=float(np.sum(info * context.resid**2) / context.df_resid),
            residuals=pd.Series(context.resid * np.sqrt(info), index=months, name="pearson"),
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
        optional = col.startswith(("month_", "shock_", "spring_festival"))
        if optional and not np.any(X[col].to_numpy() != 0):
            continue
        keep.append(col)
    return keep
