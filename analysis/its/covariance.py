"""Covariance estimators for the coefficients of a fitted ITS model.

Each estimator is a small class with an ``estimate(context)`` method, selected by name
(as in linearmodels). The context holds what any of them needs: the design, IRLS weights,
working residuals on the link scale and the month of each row.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np
from scipy import optimize, sparse
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
    #: (Satterthwaite); otherwise every contrast uses ``df``. A function with the attribute
    #: ``vectorized`` also takes a (p x m) matrix and returns the m values.
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


def _powers(base: float | np.ndarray, exponents: np.ndarray) -> np.ndarray:
    """``base ** exponents`` for non-negative integer exponents, as ``|base|^k`` with the sign
    of odd powers restored: numpy's power of a negative float is an order of magnitude
    slower than of a positive one, and this runs for every lag pair of every fit."""
    base = np.asarray(base, dtype=float)[..., None] if np.ndim(base) else float(base)
    magnitude = np.abs(base) ** exponents
    return np.where(exponents % 2 == 1, np.sign(base) * magnitude, magnitude)


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
    ``Sigma = diag(1/w) + sigma2 R(phi)``; intervals use ``t`` with Satterthwaite degrees
    of freedom for each contrast (see :meth:`_satterthwaite`).

    Parameters
    ----------
    phi_bounds : tuple of float
        Range searched for ``phi``, default -0.5 to 0.95. The lower end is below 0 on
        purpose: with no autocorrelation the estimate then scatters around 0 instead of
        being cut off there, which biased it upwards and made intervals conservative
        (``docs/coverage.md``). The uncertainty of a negative estimate is carried by the
        degrees of freedom. The range stops short of
        -1 and 1 because with sampling error dominating, the lag-one moment is mostly
        noise and estimates at the extremes give intervals that collapse or explode.
    positive_part : bool
        Compute the covariance and its degrees of freedom with ``max(phi, 0)`` (default).
        The estimate itself may be negative (``details["phi_estimate"]``); ``details["phi"]``
        is the value used. Monthly indicators are not negatively autocorrelated, but in
        short series with many columns (seasonality, shock months) the moment estimate of a
        positive ``phi`` often falls below 0, and a negative ``phi`` makes the variance of
        level and slope changes smaller and its Satterthwaite degrees of freedom larger at
        the same time: such fits gave p-values far too small (in a simulation of 31 + 21
        months with ``phi`` from 0.3 to 0.6, p < 1e-4 five times as often as it should).
        Truncating at 0, as the DerSimonian-Laird estimator truncates ``tau^2``, brings
        that tail to its nominal rate; when ``phi`` is truly 0 the intervals become somewhat
        conservative (``docs/coverage.md``).

    Notes
    -----
    When the lag-one moment cannot be matched inside ``phi_bounds`` (typically when the
    latent variance is small next to the sampling variance, as in proportions from small
    hospitals), ``phi`` is put on the nearest bound. The degrees of freedom then do not
    come from the delta method with ``phi`` held on the bound, which divides by a nearly
    zero excess variance and gives ``df`` near 1 (t quantile 12.7), but from the range of
    the contrast's variance over the values of ``phi`` that the lag-one moment does not
    reject at the 5% level (an Anderson-Rubin-type set; Stock and Wright 2000,
    Econometrica 68:1055-1096), read as a 95% interval for that variance.

    Examples
    --------
    A Gaussian series with AR(1) errors (``phi = 0.5``): the estimate is near the truth
    and the covariance is larger than the OLS one.

    >>> rng = np.random.default_rng(0)
    >>> n = 240
    >>> X = np.column_stack([np.ones(n), np.arange(n) / n])
    >>> u = np.zeros(n)
    >>> for t in range(1, n):
    ...     u[t] = 0.5 * u[t - 1] + rng.normal()
    >>> context = FitContext(X=X, weights=np.ones(n), resid=u - X @ np.linalg.lstsq(X, u, rcond=None)[0],
    ...                      time=np.arange(n), sampling=False)
    >>> estimate = LatentAR1().estimate(context)
    >>> bool(0.35 < estimate.details["phi"] < 0.65)
    True
    >>> bool(estimate.cov[1, 1] > ModelBased().estimate(context).cov[1, 1])
    True
    >>> bool(1 < estimate.df_function(np.array([0.0, 1.0])) <= n - 2)
    True
    """

    phi_bounds: tuple[float, float] = (-0.5, 0.95)
    positive_part: bool = True
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
            B = (M.T * A) @ M if A.ndim == 1 else M.T @ A @ M  # a vector stands for diag(A)
            # tr(B R(phi)) = sum_k phi^k b_k with b_k the sum of B over pairs k periods apart,
            # so each trial value of phi costs a polynomial evaluation, not a matrix product.
            by_lag = np.bincount(lag[same], weights=B[same], minlength=max_lag + 1)
            quadratic = float(e @ (A * e)) if A.ndim == 1 else float(e @ A @ e)
            return quadratic, by_lag, float(np.sum(np.diag(B) * s))

        # Weights for the quadratic forms: inverse total variance, from a first pass with phi = 0.
        omega = w if context.sampling else np.ones(n)
        q0, b0, c0 = moment(omega)
        sigma2_0 = max(0.0, (q0 - c0) / b0[0])
        omega = 1.0 / (s + sigma2_0) if context.sampling and sigma2_0 > 0 else omega
        q0, b0, c0 = moment(omega)
        adjacent = (lag == 1) * np.sqrt(np.outer(omega, omega)) / 2
        q1, b1, c1 = moment(adjacent)
        powers = np.arange(max_lag + 1)

        def sigma2(phi: float) -> float:
            return (q0 - c0) / float(b0 @ _powers(phi, powers))

        def excess(phi: float) -> float:
            return c1 + sigma2(phi) * float(b1 @ _powers(phi, powers)) - q1

        if q0 - c0 <= 0:
            phi, sig2 = 0.0, 0.0  # no variation beyond sampling error
        else:
            lo, hi = self.phi_bounds
            grid = np.linspace(lo, hi, 60)
            grid_powers = _powers(grid, powers)
            values = c1 + (q0 - c0) * (grid_powers @ b1) / (grid_powers @ b0) - q1
            change = np.flatnonzero(np.diff(np.sign(values)) != 0)
            if change.size:
                i = int(change[0])
                phi = float(optimize.brentq(excess, grid[i], grid[i + 1], xtol=1e-6))
            else:
                phi = float(grid[np.argmin(np.abs(values))])
            sig2 = max(0.0, sigma2(phi))
        phi_estimate = phi
        if self.positive_part and phi < 0:
            phi = 0.0  # see the class notes: the covariance and its df use max(phi, 0)
            sig2 = max(0.0, sigma2(phi))
        sigma = np.diag(s) + sig2 * np.where(same, _powers(phi, powers)[np.maximum(lag, 0)], 0.0)
        cov = bread @ (XtW @ sigma @ XtW.T) @ bread
        df_function = None
        if sig2 > 0:
            df_function = self._satterthwaite(
                M=M,
                sigma=sigma,
                A=(omega, adjacent),
                b=(b0, b1),
                phi=phi,
                sig2=sig2,
                s=s,
                lag=lag,
                same=same,
                powers=powers,
                weighted_design=XtW.T @ bread,
                df_resid=context.df_resid,
                excess=(q0 - c0, q1 - c1),
            )
        return CovarianceEstimate(
            cov,
            float(context.df_resid),
            self.name,
            {"phi": phi, "sigma2": sig2, "phi_estimate": phi_estimate},
            df_function,
        )

    def _satterthwaite(
        self,
        *,
        M: np.ndarray,
        sigma: np.ndarray,
        A: tuple[np.ndarray, np.ndarray],
        b: tuple[np.ndarray, np.ndarray],
        phi: float,
        sig2: float,
        s: np.ndarray,
        lag: np.ndarray,
        same: np.ndarray,
        powers: np.ndarray,
        weighted_design: np.ndarray,
        df_resid: int,
        excess: tuple[float, float],
    ) -> Callable[[np.ndarray], float] | None:
        """Satterthwaite degrees of freedom for a contrast ``g'beta``.

        The variance ``V = g'Cov g`` depends on (sigma2, phi), which are estimated from two
        quadratic forms of the residuals. Their sampling covariance (Gaussian quadratic
        forms: ``2 tr(A_i S_e A_j S_e)``) is carried to (sigma2, phi) and then to ``V`` by
        the delta method; ``df = 2 V^2 / Var(V)``. Ignoring the uncertainty in phi makes
        intervals too narrow in short, autocorrelated series.

        With ``phi`` on a bound the delta method does not apply. ``Var(V)`` is then taken
        from the range of ``V`` over the values of ``phi`` whose lag-one moment condition
        ``q1 - c1 - sigma2(phi) b1(phi) = 0`` is not rejected at the 5% level (its
        standardised square below 3.84, with ``sigma2(phi)`` matched to the lag-zero
        moment), treating that range as a 95% interval: ``Var(V) = (range / 3.92)^2``.
        """
        resid_cov = M @ sigma @ M.T
        P = [a[:, None] * resid_cov if a.ndim == 1 else a @ resid_cov for a in A]  # vector: diagonal
        cov_q = 2 * np.array([[np.sum(P[i] * P[j].T) for j in range(2)] for i in range(2)])
        dpow = np.zeros(len(powers))
        dpow[1:] = powers[1:] * _powers(phi, powers[:-1])
        phi_powers = _powers(phi, powers)
        t = [float(bk @ phi_powers) for bk in b]
        dt = [float(bk @ dpow) for bk in b]
        lo, hi = self.phi_bounds
        pairs = lag[same]
        plausible = None
        if lo < phi < hi:
            jac = np.array([[t[0], sig2 * dt[0]], [t[1], sig2 * dt[1]]])
            try:
                inv = np.linalg.inv(jac)
            except np.linalg.LinAlgError:
                return None
            cov_theta = inv @ cov_q @ inv.T
        else:
            grid = np.linspace(lo, hi, 60)
            grid_powers = _powers(grid, powers)
            t0, t1 = grid_powers @ b[0], grid_powers @ b[1]
            ratio = t1 / t0
            # variance of the lag-one condition with sigma2(phi) profiled from the lag-zero one
            condition_var = cov_q[1, 1] + ratio**2 * cov_q[0, 0] - 2 * ratio * cov_q[0, 1]
            not_rejected = (excess[1] - excess[0] * ratio) ** 2 <= 3.841 * condition_var
            not_rejected[np.argmin(np.abs(grid - phi))] = True
            plausible = (grid_powers[not_rejected], excess[0] / t0[not_rejected])

        # Sums over pairs of rows k periods apart, for many contrasts at once: a sparse
        # (lag x pair) indicator times the products of the pairs' weighted gradients.
        rows_i, rows_j = np.nonzero(same)
        by_lag = sparse.csr_matrix(
            (np.ones(len(pairs)), (pairs, np.arange(len(pairs)))), shape=(len(powers), len(pairs))
        )

        def df(gradient: np.ndarray) -> float | np.ndarray:
            """Degrees of freedom of one contrast (a vector) or of each column of a matrix."""
            G = np.asarray(gradient, dtype=float)
            H = weighted_design @ (G[:, None] if G.ndim == 1 else G)
            a = np.asarray(by_lag @ (H[rows_i] * H[rows_j]))
            c, dc = phi_powers @ a, dpow @ a
            sampling_part = np.einsum("im,i,im->m", H, s, H)
            variance = sampling_part + sig2 * c
            if plausible is None:
                grad = np.vstack([c, sig2 * dc])
                var_v = np.einsum("im,ij,jm->m", grad, cov_theta, grad)
            else:
                latent = sampling_part + plausible[1][:, None] * (plausible[0] @ a)
                spread = np.maximum(variance, latent.max(axis=0)) - np.minimum(variance, latent.min(axis=0))
                var_v = (spread / 3.92) ** 2
            with np.errstate(divide="ignore", invalid="ignore"):
                out = np.clip(2 * variance**2 / var_v, 1.0, float(df_resid))
            out = np.where(np.isfinite(var_v) & (var_v > 0), out, float(df_resid))
            return float(out[0]) if G.ndim == 1 else out

        df.vectorized = True  # type: ignore[attr-defined]  # takes a (p x m) matrix of gradients too
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
