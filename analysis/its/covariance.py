"""Covariance estimators for the coefficients of a fitted ITS model.

Each estimator is a small class with an ``estimate(context)`` method, selected by name
(as in linearmodels). The context holds what any of them needs: the design, IRLS weights,
working residuals on the link scale and the month of each row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Mapping, Protocol

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
    #: Degrees of freedom for a contrast with this gradient, when they depend on it
    #: (Satterthwaite); otherwise every contrast uses ``df``.
    df_function: Callable[[np.ndarray], float] | None = None


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
    Stacked series (controlled ITS) contribute their own autocovariance sums;
    ``across_series=True`` instead treats the stacked rows as one sequence, as Stata's
    ``itsa`` does for its multiple-group model (``newey, force``), so that its published
    results can be reproduced.
    """

    lags: int | None = None
    small_sample: bool = False
    across_series: bool = False
    name: ClassVar[str] = "newey-west"

    def estimate(self, context: FitContext) -> CovarianceEstimate:
        lags = newey_west_lags(context.nobs) if self.lags is None else self.lags
        scores = context.X * (context.weights * context.resid)[:, None]
        # statsmodels' S_hac_simple is the Bartlett-weighted sum of score autocovariances;
        # stacked series contribute their own sums, as Stata's newey does for panel data.
        codes = np.zeros(context.nobs, dtype=int) if self.across_series else context.series_codes()
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
        df_function = None
        if sig2 > 0:
            df_function = self._satterthwaite(
                M=M, sigma=sigma, A=(np.diag(omega), adjacent), b=(b0, b1), phi=phi, sig2=sig2, s=s,
                lag=lag, same=same, powers=powers, weighted_design=XtW.T @ bread, df_resid=context.df_resid)
        return CovarianceEstimate(cov, float(context.df_resid), self.name, {"phi": phi, "sigma2": sig2},
                                  df_function)

    def _satterthwaite(self, *, M, sigma, A, b, phi, sig2, s, lag, same, powers, weighted_design, df_resid):
        """Satterthwaite degrees of freedom for a contrast ``g'beta``.

        The variance ``V = g'Cov g`` depends on (sigma2, phi), which are estimated from two
        quadratic forms of the residuals. Their sampling covariance (Gaussian quadratic
        forms: ``2 tr(A_i S_e A_j S_e)``) is carried to (sigma2, phi) and then to ``V`` by
        the delta method; ``df = 2 V^2 / Var(V)``. Ignoring the uncertainty in phi makes
        intervals too narrow in short, autocorrelated series.
        """
        resid_cov = M @ sigma @ M.T
        P = [a @ resid_cov for a in A]
        cov_q = 2 * np.array([[np.sum(P[i] * P[j].T) for j in range(2)] for i in range(2)])
        dpow = np.zeros(len(powers))
        dpow[1:] = powers[1:] * phi ** (powers[1:] - 1)
        t = [float(bk @ phi**powers) for bk in b]
        dt = [float(bk @ dpow) for bk in b]
        lo, hi = self.phi_bounds
        if lo < phi < hi:
            jac = np.array([[t[0], sig2 * dt[0]], [t[1], sig2 * dt[1]]])
            try:
                inv = np.linalg.inv(jac)
            except np.linalg.LinAlgError:
                return None
            cov_theta = inv @ cov_q @ inv.T
        else:  # phi on a bound is held there: only sigma2 varies
            cov_theta = np.array([[cov_q[0, 0] / t[0] ** 2, 0.0], [0.0, 0.0]])
        pairs = lag[same]

        def df(gradient: np.ndarray) -> float:
            h = weighted_design @ gradient
            a = np.bincount(pairs, weights=np.outer(h, h)[same], minlength=len(powers))
            c, dc = float(a @ phi**powers), float(a @ dpow)
            variance = float(h @ (s * h)) + sig2 * c
            grad = np.array([c, sig2 * dc])
            var_v = float(grad @ cov_theta @ grad)
            if not np.isfinite(var_v) or var_v <= 0:
                return float(df_resid)
            return float(min(df_resid, max(1.0, 2 * variance**2 / var_v)))

        return df


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
    NeweyWest(lags=3, small_sample=True, across_series=False)
    """
    if name == "quasi":
        return ModelBased(scale="pearson")
    try:
        cls = ESTIMATORS[name]
    except KeyError:
        raise ValueError(f"unknown covariance {name!r}; choose one of {sorted([*ESTIMATORS, 'quasi'])}") from None
    return cls(**config)
