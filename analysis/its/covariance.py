"""Covariance estimators for the coefficients of a fitted ITS model.

Each estimator is a small class with an ``estimate(context)`` method, selected by name
(as in linearmodels). The context holds what any of them needs: the design, IRLS weights,
working residuals on the link scale and the month of each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Mapping, Protocol

import numpy as np
from scipy import optimize
from statsmodels.stats.sandwich_covariance import S_hac_simple


@dataclass(frozen=True)
class FitContext:
    """Quantities of a converged fit that covariance estimators use.

    Attributes
    ----------
    X : ndarray (n, p)
        Design matrix of the fitted rows.
    weights : ndarray (n,)
        IRLS weights ``(dmu/deta)^2 / Var(y)``: ``n p (1 - p)`` (binomial), ``mu``
        (Poisson), 1 (Gaussian).
    resid : ndarray (n,)
        Working residuals on the link scale, ``(y - mu) / (dmu/deta)``.
    time : ndarray (n,)
        Time ordinal of each row, so that lags across excluded periods are right.
    sampling : bool
        Whether ``1 / weights`` is a known sampling variance (count families).
    series : ndarray (n,), optional
        Series code of each row when several series are stacked (controlled ITS); errors
        are correlated only within a series. Rows of a series are in time order.
    """

    X: np.ndarray
    weights: np.ndarray
    resid: np.ndarray
    time: np.ndarray
    sampling: bool
    series: np.ndarray | None = None

    def series_codes(self) -> np.ndarray:
        return np.zeros(self.nobs, dtype=int) if self.series is None else np.asarray(self.series)

    def lags(self) -> np.ndarray:
        """|t_i - t_j| within a series, -1 between series."""
        codes = self.series_codes()
        lag = np.abs(self.time[:, None] - self.time[None, :])
        return np.where(codes[:, None] == codes[None, :], lag, -1)

    @property
    def nobs(self) -> int:
        return self.X.shape[0]

    @property
    def df_resid(self) -> int:
        return self.X.shape[0] - self.X.shape[1]

    def bread(self) -> np.ndarray:
        """``(X' W X)^{-1}``."""
        return np.linalg.inv(self.X.T @ (self.X * self.weights[:, None]))


@dataclass(frozen=True)
class CovarianceEstimate:
    """A coefficient covariance matrix with the reference distribution's degrees of freedom."""

    cov: np.ndarray
    df: float
    name: str
    details: Mapping[str, float] = field(default_factory=dict)


class CovarianceEstimator(Protocol):
    name: ClassVar[str]

    def estimate(self, context: FitContext) -> CovarianceEstimate: ...


@dataclass(frozen=True)
class ModelBased:
    """Classical GLM covariance ``scale * (X'WX)^{-1}``.

    ``scale="fixed"`` uses 1 for count families (pure binomial or Poisson variation) and
    the residual variance for Gaussian models (OLS); ``scale="pearson"`` gives the
    quasi-likelihood covariance with the Pearson dispersion.
    """

    scale: str = "fixed"
    name: ClassVar[str] = "model"

    def estimate(self, context: FitContext) -> CovarianceEstimate:
        pearson = float(np.sum(context.weights * context.resid**2) / context.df_resid)
        if self.scale == "pearson" or not context.sampling:
            scale, df = pearson, float(context.df_resid)
        elif self.scale == "fixed":
            scale, df = 1.0, np.inf
        else:
            raise ValueError(f"scale must be 'fixed' or 'pearson', got {self.scale!r}")
        return CovarianceEstimate(scale * context.bread(), df, self.name, {"scale": scale})


def newey_west_lags(nobs: int) -> int:
    """The usual rule ``floor(4 (n/100)^(2/9))`` (Newey and West 1994)."""
    return int(np.floor(4 * (nobs / 100) ** (2 / 9)))


@dataclass(frozen=True)
class NeweyWest:
    """Newey-West (Bartlett-kernel HAC) sandwich on the estimating-equation scores.

    ``small_sample=True`` multiplies by ``n / (n - p)`` as Stata's ``newey`` does.
    """

    lags: int | None = None
    small_sample: bool = False
    name: ClassVar[str] = "newey-west"

    def estimate(self, context: FitContext) -> CovarianceEstimate:
        lags = newey_west_lags(context.nobs) if self.lags is None else self.lags
        scores = context.X * (context.weights * context.resid)[:, None]
        # statsmodels' S_hac_simple is the Bartlett-weighted sum of score autocovariances;
        # stacked series contribute their own sums, as Stata's newey does for panel data.
        codes = context.series_codes()
        meat = sum(S_hac_simple(scores[codes == c], nlags=lags) for c in np.unique(codes))
        bread = context.bread()
        cov = bread @ meat @ bread
        if self.small_sample:
            cov = cov * context.nobs / context.df_resid
        return CovarianceEstimate(cov, float(context.df_resid), self.name, {"lags": float(lags)})


@dataclass(frozen=True)
class LatentAR1:
    """Sandwich covariance under a latent AR(1) process on the link scale.

    The working response is ``eta + u + e``: ``u`` a stationary AR(1) process with variance
    ``sigma2`` and lag-one correlation ``phi`` (extra variation that persists from month to
    month), ``e`` the binomial or Poisson sampling error with known variance ``1/w``
    (absent for Gaussian models). This is the model of Zeger (1988, Biometrika 75:621-629)
    for time series of counts, with ``phi`` and ``sigma2`` estimated by the method of
    moments. Residuals of a regression on about 20 columns are shrunk and less correlated
    than the errors, which biases the usual moment estimates towards zero and the
    intervals towards under-coverage; the moments here are therefore matched to their
    expectations under the fitted projection, ``E[e'Ae] = tr(M'AM Sigma)``.

    The coefficient covariance is ``B X'W Sigma W X B`` with ``B = (X'WX)^{-1}`` and
    ``Sigma = diag(1/w) + sigma2 R(phi)``; intervals use ``t`` with ``n - p`` degrees of
    freedom.

    ``phi`` is kept in ``phi_bounds`` (default 0 to 0.95). When sampling error dominates,
    the lag-one moment is mostly noise and unbounded estimates wander to implausible
    negative values (too narrow intervals) or to the unit root (intervals that explode);
    negative month-to-month correlation of a latent quality process is not plausible, and
    0 is the conservative end of that range.
    """

    phi_bounds: tuple[float, float] = (0.0, 0.95)
    name: ClassVar[str] = "latent-ar1"

    def estimate(self, context: FitContext) -> CovarianceEstimate:
        X, w, e = context.X, context.weights, context.resid
        n = context.nobs
        bread = context.bread()
        XtW = X.T * w
        M = np.eye(n) - X @ bread @ XtW  # e = M (u + sampling error) to first order
        s = 1.0 / w if context.sampling else np.zeros(n)
        lag = context.lags()
        same = lag >= 0
        max_lag = int(lag.max())

        def moment(A: np.ndarray) -> tuple[float, np.ndarray, float]:
            B = M.T @ A @ M
            # tr(B R(phi)) = sum_k phi^k b_k with b_k the sum of B over pairs k periods apart,
            # so each trial value of phi costs a polynomial evaluation, not a matrix product.
            by_lag = np.bincount(lag[same], weights=B[same], minlength=max_lag + 1)
            return float(e @ A @ e), by_lag, float(np.sum(np.diag(B) * s))

        # Weights for the quadratic forms: inverse total variance, from a first pass with phi = 0.
        omega = w if context.sampling else np.ones(n)
        q0, b0, c0 = moment(np.diag(omega))
        sigma2_0 = max(0.0, (q0 - c0) / b0[0])
        omega = 1.0 / (s + sigma2_0) if context.sampling and sigma2_0 > 0 else omega
        q0, b0, c0 = moment(np.diag(omega))
        adjacent = (lag == 1) * np.sqrt(np.outer(omega, omega)) / 2
        q1, b1, c1 = moment(adjacent)
        powers = np.arange(max_lag + 1)

        def sigma2(phi: float) -> float:
            return (q0 - c0) / float(b0 @ phi**powers)

        def excess(phi: float) -> float:
            return c1 + sigma2(phi) * float(b1 @ phi**powers) - q1

        if q0 - c0 <= 0:
            phi, sig2 = 0.0, 0.0  # no variation beyond sampling error
        else:
            lo, hi = self.phi_bounds
            grid = np.linspace(lo, hi, 60)
            values = np.array([excess(g) for g in grid])
            change = np.flatnonzero(np.diff(np.sign(values)) != 0)
            if change.size:
                i = int(change[0])
                phi = float(optimize.brentq(excess, grid[i], grid[i + 1], xtol=1e-6))
            else:
                phi = float(grid[np.argmin(np.abs(values))])
            sig2 = max(0.0, sigma2(phi))
        sigma = np.diag(s) + sig2 * np.where(same, phi ** np.maximum(lag, 0).astype(float), 0.0)
        cov = bread @ (XtW @ sigma @ XtW.T) @ bread
        return CovarianceEstimate(cov, float(context.df_resid), self.name, {"phi": phi, "sigma2": sig2})


ESTIMATORS: dict[str, type] = {
    "model": ModelBased,
    "newey-west": NeweyWest,
    "latent-ar1": LatentAR1,
}


def get_estimator(name: str, **config: object) -> CovarianceEstimator:
    """Build a covariance estimator by name with its options.

    Examples
    --------
    >>> get_estimator("newey-west", lags=3, small_sample=True)
    NeweyWest(lags=3, small_sample=True)
    """
    if name == "quasi":
        return ModelBased(scale="pearson")
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown covariance {name!r}; choose one of {sorted([*ESTIMATORS, 'quasi'])}") from None
    return cls(**config)
