"""Regression with autocorrelated errors for Gaussian ITS models.

The GLM fit in :mod:`analysis.its.model` estimates the coefficients by least squares and
corrects only their covariance for autocorrelation. The estimators here model the errors
instead and estimate the coefficients by generalised least squares:

``prais-winsten`` / ``cochrane-orcutt``
    Feasible GLS with AR(1) errors, iterated to convergence as Stata's ``prais`` (or one
    step with ``twostep=True``). ``rho`` is the regression of each residual on the one
    before it (Stata's default ``rhotype(regress)``). Prais-Winsten keeps the first
    observation, scaled by ``sqrt(1 - rho^2)``; Cochrane-Orcutt drops it. Covariance and
    ``t`` reference: the OLS results of the transformed regression, ``s^2 (X*'X*)^{-1}``
    with ``N - p`` degrees of freedom (``N`` rows in that regression), as Stata reports.
``reml-ar``
    GLS with stationary AR(p) errors (``order`` 1 to 3) whose parameters and variance are
    estimated by restricted maximum likelihood, as R's
    ``nlme::gls(..., correlation = corARMA(p = order), method = "REML")``. Small-sample
    degrees of freedom for each contrast by Satterthwaite's approximation, or the
    Kenward-Roger (1997) adjusted covariance with its degrees of freedom, or ``n - p``.
``arima``
    Regression with ARIMA(p,d,q)(P,D,Q,s) errors by exact maximum likelihood (statsmodels
    ``SARIMAX`` with the design matrix as ``exog``); normal reference distribution.

Gaps in time (excluded points or wash-in periods) are handled exactly rather than by
joining the rows on either side: GLS uses the AR correlation at the actual time lag
(``rho^g`` for AR(1)), and ARIMA models see the missing periods as missing values of the
Kalman filter. For ``prais-winsten`` and ``cochrane-orcutt`` the row after a gap of ``g``
periods is transformed as ``(y_t - rho^g y_{t-g}) sqrt((1 - rho^2) / (1 - rho^(2g)))``
(the exact GLS transformation, ``gaps="exact"``, the default); ``gaps="restart"`` treats it
as the start of a new series (scaled by ``sqrt(1 - rho^2)``, or dropped by
Cochrane-Orcutt), which is what Stata's ``prais`` does ("computations for rho restarted at
each gap"). Either way ``rho`` is estimated from pairs of consecutive periods only. With
no gaps both choices coincide with Stata.

Degrees of freedom of ``reml-ar``
---------------------------------
With small samples the variance of a contrast ``c'beta`` is itself uncertain, and how
much depends on the contrast, so each contrast has its own degrees of freedom
(:func:`contrast_df`). When :class:`~analysis.its.results.ITSResults` accepts a
``contrast_df`` function, the results get one, so ``coefficient``, ``effect_at`` and
``cumulative_effect`` each use the degrees of freedom of their own contrast. ``df_resid``
is then the value for everything else (prediction bands), and without that hook it is
used for every contrast: it is the degrees of freedom of the contrast that matters most in
an ITS, the intervention effect at the last fitted period (level change plus slope change
times the periods since the interruption, i.e. the difference between the fitted and
counterfactual rows at that time). ``df_at`` chooses another evaluation time, or ``"min"``
the smallest of the degrees of freedom of the level changes, slope changes and that effect
(the conservative single value). :func:`contrast_df` gives the degrees of freedom of any
contrast.

Examples
--------
>>> import numpy as np, pandas as pd
>>> from analysis.its import ITSDesign, SegmentedRegression
>>> rng = np.random.default_rng(3)
>>> years = np.arange(1960, 2020)
>>> design = ITSDesign(interruption=1990)
>>> X = design.matrix(years)
>>> u = np.zeros(len(years))
>>> for t in range(1, len(years)):
...     u[t] = 0.5 * u[t - 1] + rng.normal()
>>> y = 50 + 0.2 * X["time"] - 3 * X["level_change"] + u
>>> model = SegmentedRegression(y.to_numpy(), time=years, design=design)
>>> res = fit_autoregressive(model, method="prais-winsten")
>>> res.cov_type, bool(0.2 < res.cov_details["rho"] < 0.8)
('prais-winsten', True)
>>> res = fit_autoregressive(model, method="reml-ar", df_method="kenward-roger")
>>> bool(abs(res.params["level_change"] + 3) < 2), res.df_resid < len(years) - 4
(True, True)
"""

from __future__ import annotations

import warnings
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Protocol

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from analysis.its.design import DesignData, ITSDesign
from analysis.its.estimability import check_residual_variation
from analysis.its.families import Family
from analysis.its.results import ITSResults
from analysis.its.timeaxis import TimeLike, as_ordinal, as_time_index, is_monthly, ordinals


class SingleSeriesModel(Protocol):
    """What the error models read from a model (a :class:`~analysis.its.model.SegmentedRegression`
    of one Gaussian series), named here so that this module needs nothing from the model's."""

    design: ITSDesign
    family: Family
    group: np.ndarray | None
    series: np.ndarray

    def design_data(self) -> DesignData: ...


METHODS = ("prais-winsten", "cochrane-orcutt", "reml-ar", "arima")
DF_METHODS = ("satterthwaite", "kenward-roger", "residual")
#: Partial autocorrelations are kept inside this bound so that R stays well conditioned.
PACF_BOUND = 0.995


class AutoregressiveFitError(ValueError):
    """The model cannot be fitted with autocorrelated errors (wrong family, several series,
    unknown option, failed optimisation)."""


# ---------------------------------------------------------------------------------------
# AR(p) correlation structure
# ---------------------------------------------------------------------------------------
def ar_from_pacf(pacf: np.ndarray) -> np.ndarray:
    """AR coefficients from partial autocorrelations (Durbin-Levinson recursion); every
    ``pacf`` in (-1, 1) gives a stationary process, so optimising over it is unconstrained
    apart from the box (Barndorff-Nielsen and Schou 1973; Monahan 1984).

    Examples
    --------
    >>> ar_from_pacf(np.array([0.5])).tolist()
    [0.5]
    >>> np.round(ar_from_pacf(np.array([0.5, 0.2])), 6).tolist()
    [0.4, 0.2]
    """
    phi = np.zeros(0)
    for k, r in enumerate(np.asarray(pacf, dtype=float)):
        phi = np.append(phi - r * phi[::-1], r) if k else np.array([r])
    return phi


def pacf_from_ar(phi: np.ndarray) -> np.ndarray:
    """Inverse of :func:`ar_from_pacf` (reverse Durbin-Levinson); NaN if not stationary."""
    phi = np.asarray(phi, dtype=float).copy()
    p = len(phi)
    pacf = np.zeros(p)
    for k in range(p, 0, -1):
        r = phi[k - 1]
        pacf[k - 1] = r
        if abs(r) >= 1:
            return np.full(p, np.nan)
        phi = (phi[: k - 1] + r * phi[: k - 1][::-1]) / (1 - r**2)
    return pacf


def ar_autocorrelation(phi: np.ndarray, max_lag: int) -> np.ndarray:
    """Autocorrelations ``rho(0..max_lag)`` of a stationary AR(p) process.

    ``rho(1..p)`` solve the Yule-Walker equations ``rho(k) = sum_j phi_j rho(|k - j|)``;
    later lags follow the recursion ``rho(h) = sum_j phi_j rho(h - j)``.

    Examples
    --------
    >>> np.round(ar_autocorrelation(np.array([0.5]), 3), 6).tolist()
    [1.0, 0.5, 0.25, 0.125]
    """
    phi = np.asarray(phi, dtype=float)
    p = len(phi)
    rho = np.zeros(max(max_lag, p) + 1)
    rho[0] = 1.0
    if p:
        A = np.eye(p)
        b = np.zeros(p)
        for k in range(1, p + 1):
            for j in range(1, p + 1):
                lag = abs(k - j)
                if lag == 0:
                    b[k - 1] += phi[j - 1]
                else:
                    A[k - 1, lag - 1] -= phi[j - 1]
        rho[1 : p + 1] = np.linalg.solve(A, b)
        for h in range(p + 1, len(rho)):
            rho[h] = phi @ rho[h - p : h][::-1]
    return rho[: max_lag + 1]


def _lags(time: np.ndarray) -> np.ndarray:
    return np.abs(time[:, None] - time[None, :])


def ar_whitening(phi: np.ndarray, time: np.ndarray) -> tuple[np.ndarray, float]:
    """Lower-triangular ``W`` with ``W R W' = I`` and ``log|R|``, for the correlation
    matrix ``R`` of a stationary AR(p) process observed at ``time``.

    Uses the factorisation of the likelihood into the first ``p`` values and the
    conditional distributions of each later value given the ``p`` before it, so ``W`` is
    banded and no n x n factorisation is needed. With gaps this is exact for AR(1) (a gap
    of ``g`` has correlation ``phi^g``, by the Markov property); for higher orders with gaps
    ``R`` is factorised directly.

    Examples
    --------
    >>> t = np.array([0, 1, 2, 5, 6])
    >>> R = ar_autocorrelation(np.array([0.6]), 6)[_lags(t)]
    >>> W, logdet = ar_whitening(np.array([0.6]), t)
    >>> bool(np.allclose(W @ R @ W.T, np.eye(5))), bool(np.isclose(logdet, np.linalg.slogdet(R)[1]))
    (True, True)
    """
    phi = np.asarray(phi, dtype=float)
    time = np.asarray(time, dtype=np.int64)
    n, p = len(time), len(phi)
    gaps = np.diff(time)
    W = np.zeros((n, n))
    if p == 1:
        a = phi[0] ** gaps.astype(float)
        scale = 1 / np.sqrt(1 - a**2)
        W[0, 0] = 1.0
        idx = np.arange(1, n)
        W[idx, idx] = scale
        W[idx, idx - 1] = -a * scale
        return W, float(np.sum(np.log1p(-(a**2))))
    if np.all(gaps == 1) and n > p:
        rho = ar_autocorrelation(phi, p)
        Lp = np.linalg.cholesky(linalg.toeplitz(rho[:p]))
        v = 1 - phi @ rho[1:]
        W[:p, :p] = np.linalg.inv(Lp)
        idx = np.arange(p, n)
        W[idx, idx] = 1 / np.sqrt(v)
        for j, coefficient in enumerate(phi, start=1):
            W[idx, idx - j] = -coefficient / np.sqrt(v)
        return W, float(2 * np.sum(np.log(np.diag(Lp))) + (n - p) * np.log(v))
    R = ar_autocorrelation(phi, int(time[-1] - time[0]))[_lags(time)]
    L = np.linalg.cholesky(R)
    return linalg.solve_triangular(L, np.eye(n), lower=True), float(2 * np.sum(np.log(np.diag(L))))


# ---------------------------------------------------------------------------------------
# Prais-Winsten and Cochrane-Orcutt
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AR1FGLSFit:
    """Result of :func:`prais_winsten` on arrays.

    ``used`` marks the rows of the transformed regression (all rows for Prais-Winsten;
    Cochrane-Orcutt drops the first, and with ``gaps="restart"`` the first after each gap).
    ``resid_transformed`` are that regression's residuals (estimates of the AR(1)
    innovations, scaled at restarts).
    """

    params: np.ndarray
    cov: np.ndarray
    rho: float
    sigma2: float
    df_resid: float
    nobs: int
    iterations: int
    converged: bool
    used: np.ndarray
    resid_transformed: np.ndarray
    rho_history: tuple[float, ...] = ()


def regression_rho(resid: np.ndarray, time: np.ndarray) -> float:
    """Stata's ``rhotype(regress)``: the no-constant regression of ``e_t`` on ``e_{t-1}``
    over pairs of consecutive periods (pairs across a gap are skipped)."""
    consecutive = np.diff(time) == 1
    now, before = resid[1:][consecutive], resid[:-1][consecutive]
    denom = float(before @ before)
    if denom <= 0:
        raise AutoregressiveFitError("no pairs of consecutive periods to estimate rho from")
    return float(now @ before) / denom


def ar1_transform(
    values: np.ndarray, time: np.ndarray, rho: float, *, corc: bool, gaps: str
) -> tuple[np.ndarray, np.ndarray]:
    """Apply the AR(1) GLS transformation to the rows of ``values``; returns the
    transformed rows and the mask of rows kept."""
    values = np.asarray(values, dtype=float)
    out = np.empty_like(values)
    keep = np.ones(len(values), dtype=bool)
    start_scale = np.sqrt(1 - rho**2)
    gap = np.diff(time)
    out[0] = start_scale * values[0]
    keep[0] = not corc
    for i in range(1, len(values)):
        g = int(gap[i - 1])
        if g == 1:
            out[i] = values[i] - rho * values[i - 1]
        elif gaps == "restart":
            out[i] = start_scale * values[i]
            keep[i] = not corc
        else:  # exact: the conditional distribution of u_t given u_{t-g}
            rg = rho**g
            scale = np.sqrt((1 - rho**2) / (1 - rg**2)) if abs(rg) < 1 else 1.0
            out[i] = (values[i] - rg * values[i - 1]) * scale
    return out[keep], keep


def prais_winsten(
    y: np.ndarray,
    X: np.ndarray,
    time: np.ndarray,
    *,
    corc: bool = False,
    twostep: bool = False,
    gaps: str = "exact",
    tol: float = 1e-6,
    max_iter: int = 100,
    rho: float | None = None,
) -> AR1FGLSFit:
    """Prais-Winsten (or, with ``corc=True``, Cochrane-Orcutt) feasible GLS.

    Follows Stata's ``prais``: start from OLS; in each iteration estimate ``rho`` from the
    residuals ``y - X b`` of the current coefficients, then refit OLS to the transformed
    data; stop when ``rho`` changes by at most ``tol`` (or after one iteration with
    ``twostep``). ``rho`` given: a single transformed fit at that value (no estimation).
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=np.int64)
    if gaps not in ("exact", "restart"):
        raise AutoregressiveFitError(f"gaps must be 'exact' or 'restart', got {gaps!r}")
    if np.any(np.diff(time) <= 0):
        raise AutoregressiveFitError("time must be increasing")

    def transformed_ols(r: float):
        Xs, keep = ar1_transform(X, time, r, corc=corc, gaps=gaps)
        ys, _ = ar1_transform(y, time, r, corc=corc, gaps=gaps)
        beta, *_ = np.linalg.lstsq(Xs, ys, rcond=None)
        return beta, Xs, ys, keep

    if rho is not None:
        beta, Xs, ys, keep = transformed_ols(float(rho))
        history, iterations, converged = (float(rho),), 0, True
        rho_value = float(rho)
    else:
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        rho_value, last, iterations = 0.0, 2.0, 0
        history: tuple[float, ...] = ()
        limit = 1 if twostep else max_iter
        while iterations < limit and abs(rho_value - last) > tol:
            last = rho_value
            rho_value = regression_rho(y - X @ beta, time)
            if not abs(rho_value) < 1:
                raise AutoregressiveFitError(f"estimated rho = {rho_value:.4f} is not inside (-1, 1)")
            beta, Xs, ys, keep = transformed_ols(rho_value)
            history += (rho_value,)
            iterations += 1
        converged = twostep or abs(rho_value - last) <= tol
        if not converged:
            warnings.warn(f"rho did not converge in {max_iter} iterations", RuntimeWarning, stacklevel=2)
    resid = ys - Xs @ beta
    nobs, k = Xs.shape
    df = nobs - k
    if df <= 0:
        raise AutoregressiveFitError(f"{nobs} rows and {k} coefficients leave no residual degrees of freedom")
    sigma2 = float(resid @ resid) / df
    cov = sigma2 * np.linalg.inv(Xs.T @ Xs)
    return AR1FGLSFit(
        beta, cov, float(rho_value), sigma2, float(df), nobs, iterations, bool(converged), keep, resid, history
    )


# ---------------------------------------------------------------------------------------
# REML with AR(p) errors
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class REMLARFit:
    """GLS with AR(p) errors fitted by REML, with what small-sample inference needs.

    Variance parameters ``theta = (phi_1, ..., phi_p, sigma2)``: the AR coefficients and
    the marginal variance of the errors (nlme's residual variance), so that
    ``Sigma = sigma2 R(phi)`` with ``R_ij = rho(|t_i - t_j|)``.
    """

    y: np.ndarray
    X: np.ndarray
    time: np.ndarray
    names: tuple[str, ...]
    ar: np.ndarray
    sigma2: float
    params: np.ndarray
    cov: np.ndarray
    reml_loglik: float
    converged: bool
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    @property
    def order(self) -> int:
        return len(self.ar)

    @property
    def nobs(self) -> int:
        return self.X.shape[0]

    @property
    def df_residual(self) -> float:
        return float(self.X.shape[0] - self.X.shape[1])

    @property
    def theta(self) -> np.ndarray:
        return np.append(self.ar, self.sigma2)

    @property
    def innovation_variance(self) -> float:
        """``sigma2 (1 - sum_j phi_j rho(j))``: the white-noise variance of the AR process."""
        rho = ar_autocorrelation(self.ar, self.order)
        return float(self.sigma2 * (1 - self.ar @ rho[1:]))

    # -- derivatives of Sigma with respect to theta ------------------------------------
    def _sigma_derivatives(self) -> tuple[np.ndarray, list[np.ndarray], dict[tuple[int, int], np.ndarray]]:
        if "sigma" not in self._cache:
            lags = _lags(self.time)
            max_lag = int(lags.max())
            p = self.order
            R = ar_autocorrelation(self.ar, max_lag)[lags]
            # Central differences of the autocorrelation function in phi: cheap (a vector of
            # lags), and accurate to ~1e-8 with these steps.
            h1, h2 = 1e-5, 1e-4
            dR, d2R = [], {}

            def acf(phi):
                return ar_autocorrelation(phi, max_lag)

            for a in range(p):
                e = np.zeros(p)
                e[a] = h1
                dR.append(((acf(self.ar + e) - acf(self.ar - e)) / (2 * h1))[lags])
            for a in range(p):
                for b in range(a, p):
                    ea, eb = np.zeros(p), np.zeros(p)
                    ea[a], eb[b] = h2, h2
                    second = (
                        acf(self.ar + ea + eb)
                        - acf(self.ar + ea - eb)
                        - acf(self.ar - ea + eb)
                        + acf(self.ar - ea - eb)
                    ) / (4 * h2 * h2)
                    d2R[(a, b)] = d2R[(b, a)] = second[lags]
            s2 = self.sigma2
            Sigma = s2 * R
            first = [s2 * d for d in dR] + [R]
            second_derivs: dict[tuple[int, int], np.ndarray] = {}
            n_theta = p + 1
            for a in range(n_theta):
                for b in range(n_theta):
                    if a < p and b < p:
                        second_derivs[(a, b)] = s2 * d2R[(a, b)]
                    elif a < p:
                        second_derivs[(a, b)] = dR[a]
                    elif b < p:
                        second_derivs[(a, b)] = dR[b]
                    else:
                        second_derivs[(a, b)] = np.zeros_like(R)
            self._cache["sigma"] = (Sigma, first, second_derivs)
        return self._cache["sigma"]

    def _pieces(self) -> dict:
        """Sigma^-1, Phi, P_i, Q_ij, R_ij and the REML projection of Kenward and Roger (1997)."""
        if "pieces" not in self._cache:
            Sigma, dS, d2S = self._sigma_derivatives()
            X = self.X
            W, _ = ar_whitening(self.ar, self.time)
            Si = W.T @ W / self.sigma2
            SiX = Si @ X
            Phi = np.linalg.inv(X.T @ SiX)
            proj = Si - SiX @ Phi @ SiX.T  # P = Sigma^-1 - Sigma^-1 X Phi X' Sigma^-1
            m = len(dS)
            P = [-(SiX.T @ dS[i] @ SiX) for i in range(m)]
            Q = {(i, j): SiX.T @ dS[i] @ Si @ dS[j] @ SiX for i in range(m) for j in range(m)}
            Rij = {(i, j): SiX.T @ d2S[(i, j)] @ SiX for i in range(m) for j in range(m)}
            self._cache["pieces"] = {"Si": Si, "Phi": Phi, "proj": proj, "dS": dS, "d2S": d2S, "P": P, "Q": Q, "R": Rij}
        return self._cache["pieces"]

    def expected_information(self) -> np.ndarray:
        """REML expected information ``I_ij = tr(P Sigma_i P Sigma_j) / 2``."""
        pc = self._pieces()
        A = [pc["proj"] @ d for d in pc["dS"]]
        m = len(A)
        return np.array([[0.5 * np.sum(A[i] * A[j].T) for j in range(m)] for i in range(m)])

    def observed_information(self) -> np.ndarray:
        """Minus the Hessian of the REML log-likelihood in ``theta`` at the estimate."""
        pc = self._pieces()
        proj, dS, d2S = pc["proj"], pc["dS"], pc["d2S"]
        Py = proj @ self.y
        A = [proj @ d for d in dS]
        m = len(dS)
        info = np.empty((m, m))
        for i in range(m):
            for j in range(m):
                info[i, j] = (
                    0.5 * np.sum(proj * d2S[(i, j)].T)
                    - 0.5 * np.sum(A[i] * A[j].T)
                    + Py @ dS[i] @ proj @ dS[j] @ Py
                    - 0.5 * Py @ d2S[(i, j)] @ Py
                )
        return info

    def _variance_covariance(self, information: str) -> np.ndarray:
        key = f"W_{information}"
        if key not in self._cache:
            info = self.expected_information() if information == "expected" else self.observed_information()
            try:
                W = np.linalg.inv(info)
            except np.linalg.LinAlgError:
                W = np.full_like(info, np.nan)
            if not np.all(np.isfinite(W)) or np.any(np.linalg.eigvalsh((W + W.T) / 2) <= 0):
                warnings.warn(
                    f"the {information} REML information is not positive definite (an AR "
                    "parameter at its bound?); degrees of freedom fall back to n - p",
                    RuntimeWarning,
                    stacklevel=3,
                )
                W = np.full_like(info, np.nan)
            self._cache[key] = W
        return self._cache[key]

    def kenward_roger_cov(self, *, second_order: bool = True, information: str = "expected") -> np.ndarray:
        """Kenward-Roger adjusted covariance
        ``Phi_A = Phi + 2 Phi [sum_ij W_ij (Q_ij - P_i Phi P_j - R_ij / 4)] Phi``
        with ``W`` the inverse expected information (Kenward and Roger 1997, eq. 5).

        ``R_ij`` (second derivatives of Sigma) makes the adjustment depend on how the
        variance parameters are written; here ``theta = (phi_1..phi_p, sigma2)``.
        ``second_order=False`` drops it: the "linear" Kenward-Roger approximation (SAS
        ``ddfm=kr(firstorder)``, mmrm's ``Kenward-Roger-Linear``).
        """
        key = ("kr_cov", second_order, information)
        if key not in self._cache:
            pc = self._pieces()
            W = self._variance_covariance(information)
            Phi = pc["Phi"]
            if not np.all(np.isfinite(W)):
                self._cache[key] = Phi
            else:
                m = len(pc["P"])
                curvature = 0.25 if second_order else 0.0
                inner = sum(
                    W[i, j] * (pc["Q"][(i, j)] - pc["P"][i] @ Phi @ pc["P"][j] - curvature * pc["R"][(i, j)])
                    for i in range(m)
                    for j in range(m)
                )
                adjusted = Phi + 2 * Phi @ inner @ Phi
                self._cache[key] = (adjusted + adjusted.T) / 2
        return self._cache[key]

    def contrast_df(
        self, gradient: np.ndarray, *, df_method: str = "satterthwaite", information: str | None = None
    ) -> float:
        """Degrees of freedom of the contrast ``gradient' beta``.

        Satterthwaite: ``2 v^2 / (g' W g)`` with ``v = c' Phi c``, ``g_i = dv/dtheta_i`` and
        ``W`` the inverse information (observed by default, as lmerTest). Kenward-Roger: for
        a single contrast their ``m`` reduces to the same formula with the expected
        information (and the test uses the adjusted covariance). Residual: ``n - p``.
        """
        if df_method not in DF_METHODS:
            raise AutoregressiveFitError(f"df_method must be one of {DF_METHODS}, got {df_method!r}")
        if df_method == "residual":
            return self.df_residual
        information = information or ("expected" if df_method == "kenward-roger" else "observed")
        if information not in ("expected", "observed"):
            raise AutoregressiveFitError(f"information must be 'expected' or 'observed', got {information!r}")
        c = np.asarray(gradient, dtype=float)
        pc = self._pieces()
        Phi = pc["Phi"]
        W = self._variance_covariance(information)
        if not np.all(np.isfinite(W)):
            return self.df_residual
        v = float(c @ Phi @ c)
        Phic = Phi @ c
        g = np.array([-(Phic @ Pi @ Phic) for Pi in pc["P"]])  # d(c'Phi c) = -c'Phi P_i Phi c
        denominator = float(g @ W @ g)
        if v <= 0:
            return self.df_residual
        # Below one degree of freedom the t reference is degenerate (a near unit-root AR fit
        # makes the variance almost unidentified); 1 is the conservative floor.
        return max(1.0, float(2 * v**2 / denominator)) if denominator > 0 else float("inf")


def _reml_profile(phi: np.ndarray, y: np.ndarray, X: np.ndarray, time: np.ndarray) -> tuple[float, np.ndarray, float]:
    """Minus twice the REML log-likelihood profiled over sigma2 (constants dropped), the
    GLS coefficients and sigma2 at ``phi``."""
    n, k = X.shape
    try:
        W, logdet_R = ar_whitening(phi, time)
    except np.linalg.LinAlgError:
        return np.inf, np.full(k, np.nan), np.nan
    Xw, yw = W @ X, W @ y
    XtX = Xw.T @ Xw
    beta = np.linalg.solve(XtX, Xw.T @ yw)
    r = yw - Xw @ beta
    sigma2 = float(r @ r) / (n - k)
    _, logdet_xtx = np.linalg.slogdet(XtX)
    value = (n - k) * np.log(sigma2) + logdet_R + logdet_xtx
    return float(value), beta, sigma2


def reml_ar(
    y: np.ndarray, X: np.ndarray, time: np.ndarray, *, order: int = 1, names: tuple[str, ...] | None = None
) -> REMLARFit:
    """Fit ``y = X beta + u`` with stationary AR(``order``) errors by REML.

    The REML criterion is profiled over the variance and maximised over the partial
    autocorrelations (bounded by :data:`PACF_BOUND`): for AR(1) by a grid followed by
    Brent's method, for higher orders by Nelder-Mead from the Yule-Walker estimates of the
    OLS residuals.
    """
    y = np.asarray(y, dtype=float)
    X = np.asarray(X, dtype=float)
    time = np.asarray(time, dtype=np.int64)
    if order not in (1, 2, 3):
        raise AutoregressiveFitError(f"order must be 1, 2 or 3, got {order!r}")
    n, k = X.shape
    if n - k <= order:
        raise AutoregressiveFitError(f"{n} rows and {k} coefficients are too few for AR({order}) errors")

    def objective(pacf: np.ndarray) -> float:
        return _reml_profile(ar_from_pacf(pacf), y, X, time)[0]

    converged = True
    if order == 1:
        grid = np.linspace(-0.98, 0.98, 50)
        values = np.array([objective(np.array([g])) for g in grid])
        i = int(np.argmin(values))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        lo, hi = (-PACF_BOUND if i == 0 else lo), (PACF_BOUND if i == len(grid) - 1 else hi)
        found = optimize.minimize_scalar(
            lambda r: objective(np.array([r])), bounds=(lo, hi), method="bounded", options={"xatol": 1e-9}
        )
        pacf = np.array([found.x])
        converged = bool(found.success)
    else:
        beta_ols, *_ = np.linalg.lstsq(X, y, rcond=None)
        e = y - X @ beta_ols
        acov = np.array([e[: n - h] @ e[h:] for h in range(order + 1)]) / n
        start_ar = linalg.solve_toeplitz(acov[:order], acov[1 : order + 1])
        start = np.clip(pacf_from_ar(start_ar), -0.9, 0.9)
        start = np.nan_to_num(start)
        z0 = np.arctanh(start / PACF_BOUND)
        found = optimize.minimize(
            lambda z: objective(PACF_BOUND * np.tanh(z)),
            z0,
            method="Nelder-Mead",
            options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 4000},
        )
        pacf = PACF_BOUND * np.tanh(found.x)
        converged = bool(found.success)
    if np.any(np.abs(pacf) > PACF_BOUND - 1e-4):
        warnings.warn(
            f"REML estimate of the AR parameters is at the stationarity bound (pacf = {np.round(pacf, 4)})",
            RuntimeWarning,
            stacklevel=2,
        )
    ar = ar_from_pacf(pacf)
    _, beta, sigma2 = _reml_profile(ar, y, X, time)
    W, logdet_R = ar_whitening(ar, time)
    Xw = W @ X
    cov = sigma2 * np.linalg.inv(Xw.T @ Xw)
    _, logdet_xtx = np.linalg.slogdet(Xw.T @ Xw)
    reml_loglik = -0.5 * ((n - k) * np.log(2 * np.pi * sigma2) + logdet_R + logdet_xtx + (n - k))
    names = tuple(names) if names is not None else tuple(f"x{i}" for i in range(k))
    return REMLARFit(y, X, time, names, ar, sigma2, beta, cov, float(reml_loglik), converged)


# ---------------------------------------------------------------------------------------
# Regression with ARIMA errors
# ---------------------------------------------------------------------------------------
def _shock_ordinals(names: list[str], time: pd.Index) -> list[int]:
    """Ordinals of the fitted model's shock columns, so that new design rows line up."""
    return [as_ordinal(c.removeprefix("shock_"), time) for c in names if c.startswith("shock_")]


def _full_time_axis(time: pd.Index) -> pd.Index:
    if is_monthly(time):
        return pd.period_range(time[0], time[-1], freq="M")
    return pd.Index(np.arange(int(time[0]), int(time[-1]) + 1, dtype=np.int64))


def parse_order(value: str | Sequence[int], *, seasonal: bool = False) -> tuple[int, ...]:
    """An ARIMA order ``(p, d, q)`` or seasonal order ``(P, D, Q, s)`` from a tuple or a
    text such as ``"2,1,0"``; raises :class:`AutoregressiveFitError` saying what is wrong.

    Examples
    --------
    >>> parse_order("2,1,0")
    (2, 1, 0)
    >>> parse_order("0,1,1,12", seasonal=True)
    (0, 1, 1, 12)
    """
    what = "seasonal order P,D,Q,s" if seasonal else "ARIMA order p,d,q"
    parts = [p.strip() for p in value.split(",")] if isinstance(value, str) else list(value)
    try:
        numbers = tuple(int(p) for p in parts)
    except (TypeError, ValueError):
        raise AutoregressiveFitError(f"the {what} must be whole numbers, got {value!r}") from None
    if len(numbers) != (4 if seasonal else 3):
        raise AutoregressiveFitError(f"the {what} has {4 if seasonal else 3} numbers, got {value!r}")
    if any(n < 0 for n in numbers):
        raise AutoregressiveFitError(f"the {what} cannot be negative, got {value!r}")
    if seasonal and any(numbers[:3]) and numbers[3] < 2:
        raise AutoregressiveFitError(f"a seasonal model needs a period s of at least 2 (12 for months), got {value!r}")
    if numbers[1] > 2:
        raise AutoregressiveFitError(f"differencing of order {numbers[1]} is not supported (0, 1 or 2), got {value!r}")
    return numbers


def r_arma_name(name: str, period: int = 1) -> str:
    """R's name of a statsmodels ARMA parameter: ``ar.L1`` -> ``ar1``, ``ma.S.L12`` -> ``sma1``
    (seasonal lags are multiples of ``period``; R numbers them 1, 2, ...).

    Examples
    --------
    >>> [r_arma_name(n, 12) for n in ("ar.L2", "ma.L1", "ar.S.L24", "ma.S.L12")]
    ['ar2', 'ma1', 'sar2', 'sma1']
    """
    kind, *rest = name.split(".")
    if rest[0] == "S":
        return f"s{kind}{int(rest[1][1:]) // period}"
    return f"{kind}{int(rest[0][1:])}"


def _polynomials(params: np.ndarray, order: tuple[int, int, int], seasonal: tuple[int, int, int, int]):
    """AR and MA lag polynomials (coefficients of B^0, B^1, ...) of a multiplicative
    seasonal ARMA model, in R's sign convention: ``(1 - phi B)(1 - Phi B^s) e = (1 + theta B)(1 + Theta B^s) u``."""
    p, q, P, Q, s = order[0], order[2], seasonal[0], seasonal[2], seasonal[3]
    ar, ma, sar, sma = np.split(np.asarray(params, float), np.cumsum([p, q, P]))
    seasonal_ar = np.zeros(P * s + 1)
    seasonal_ar[0] = 1.0
    seasonal_ar[s::s] = -sar
    seasonal_ma = np.zeros(Q * s + 1)
    seasonal_ma[0] = 1.0
    seasonal_ma[s::s] = sma
    return np.polymul(np.r_[1.0, -ar][::-1], seasonal_ar[::-1])[::-1], np.polymul(
        np.r_[1.0, ma][::-1], seasonal_ma[::-1]
    )[::-1]


def _identified_after_differencing(X: np.ndarray, d: int, D: int, s: int) -> np.ndarray:
    """Columns that differencing does not turn into zeros (the constant, and the trend for
    d = 2 or d = 1 with D = 1, are absorbed by it, as R's arima drops the mean)."""
    if not (d or D):
        return np.ones(X.shape[1], dtype=bool)
    return np.abs(_difference(X, d, D, s)).max(axis=0) > 1e-10


def _difference(values: np.ndarray, d: int, D: int, s: int) -> np.ndarray:
    """``(1 - B)^d (1 - B^s)^D`` applied down the rows of a vector or matrix."""
    for _ in range(d):
        values = np.diff(values, axis=0)
    for _ in range(D):
        values = values[s:] - values[:-s]
    return values


@dataclass(frozen=True)
class _DifferencedRegression:
    """The least-squares regression of the differenced series on the differenced
    regressors: R's first step for both the CSS start and ``parscale``."""

    y: np.ndarray
    X: np.ndarray
    observed: np.ndarray
    beta: np.ndarray
    #: Standard errors of ``beta`` (1 where undefined): R's ``parscale`` is 10 times these.
    scale: np.ndarray


def _differenced_regression(
    y: np.ndarray, X: np.ndarray, order: tuple[int, int, int], seasonal: tuple[int, int, int, int]
) -> _DifferencedRegression:
    d, D, s = order[1], seasonal[1], seasonal[3]
    y, X = _difference(y.astype(float), d, D, s), _difference(X.astype(float), d, D, s)
    ok = np.isfinite(y)
    k = X.shape[1]
    beta = np.linalg.lstsq(X[ok], y[ok], rcond=None)[0] if k else np.zeros(0)
    scale = np.ones(k)
    if k and ok.sum() > k:
        resid = y[ok] - X[ok] @ beta
        sigma2 = resid @ resid / (ok.sum() - k)
        se = np.sqrt(sigma2 * np.diag(np.linalg.pinv(X[ok].T @ X[ok])))
        scale = np.where(np.isfinite(se) & (se > 0), se, 1.0)
    return _DifferencedRegression(y, X, ok, beta, scale)


def _css_start(
    regression: _DifferencedRegression, order: tuple[int, int, int], seasonal: tuple[int, int, int, int]
) -> np.ndarray | None:
    """Conditional-sum-of-squares estimates, R's starting values for exact maximum
    likelihood (``arima(method = "CSS-ML")``): from the regression on the differenced
    series by least squares, innovations by the ARMA recursion started at zero, their sum of
    squares minimised over the ARMA and regression coefficients together. Returns the
    parameters in statsmodels' order (regression, AR, MA, seasonal AR, seasonal MA), or
    None where the CSS fit is not stationary and invertible (R then stops; here the other
    starts are tried)."""
    from scipy.optimize import least_squares
    from scipy.signal import lfilter

    diffed_y, diffed_X, ok, k = regression.y, regression.X, regression.observed, regression.X.shape[1]
    n_arma = order[0] + order[2] + seasonal[0] + seasonal[2]
    n_cond = order[0] + seasonal[0] * seasonal[3]

    def innovations(theta: np.ndarray) -> np.ndarray:
        ar, ma = _polynomials(theta[k:], order, seasonal)
        w = np.where(ok, diffed_y - diffed_X @ theta[:k], 0.0)
        return lfilter(ar, ma, w)[n_cond:][ok[n_cond:]]

    start = np.r_[regression.beta, np.zeros(n_arma)]
    if n_arma == 0:
        return start
    try:
        fit = least_squares(innovations, start, method="lm", x_scale="jac")
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - degenerate data
        return None
    ar, ma = _polynomials(fit.x[k:], order, seasonal)
    if np.any(np.abs(np.roots(ar[::-1])) <= 1.0) or np.any(np.abs(np.roots(ma[::-1])) <= 1.0):
        return None
    return fit.x


@dataclass(frozen=True)
class _ArimaMaximum:
    fitted: object  # statsmodels results at the maximum (regressors rescaled)
    estimates: np.ndarray  # regression coefficients (original scale), then ARMA parameters
    covariance: np.ndarray
    converged: bool
    param_names: list[str]
    nobs: int

    @property
    def loglik(self) -> float:
        return float(self.fitted.llf)

    def aicc(self) -> float:
        """R's AICc (``forecast::Arima``): the innovation variance counts as a parameter and
        ``n`` is the number of observations after differencing."""
        k = len(self.estimates) + 1
        return float(-2 * self.loglik + 2 * k + 2 * k * (k + 1) / (self.nobs - k - 1))


def _maximise_arima(
    endog: np.ndarray,
    exog: np.ndarray,
    order: tuple[int, int, int],
    seasonal_order: tuple[int, int, int, int],
    *,
    cov: str = "approx",
    maxiter: int = 200,
    thorough: bool = True,
) -> _ArimaMaximum:
    """Exact maximum likelihood of a regression with ARIMA errors (see :func:`_arima`).
    ``thorough=False`` (order search) starts from the CSS estimates alone and skips the
    polishing step and the covariance."""
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    k = exog.shape[1]
    regression = _differenced_regression(endog, exog, order, seasonal_order)
    css = _css_start(regression, order, seasonal_order)
    # Regressors rescaled so that their coefficients are of order one, as R's parscale
    # does: otherwise a step change in the thousands and an AR coefficient below one share
    # one quasi-Newton step, and the optimisers crawl.
    scale = regression.scale
    sarimax = SARIMAX(
        endog,
        exog=exog * scale,
        order=order,
        seasonal_order=seasonal_order,
        trend="n",
        enforce_stationarity=True,
        enforce_invertibility=True,
        concentrate_scale=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # optimiser chatter; convergence is reported below
        n_arma = len(sarimax.start_params) - k
        default = np.asarray(sarimax.start_params, dtype=float)
        starts = [default, np.r_[default[:k], np.zeros(n_arma)]]
        if css is not None:
            starts.insert(0, np.r_[css[:k] / scale, css[k:]])
        if not thorough:
            starts = starts[:1]
        rough = []
        for start in (x for x in starts if np.all(np.isfinite(x))):
            try:
                rough.append(
                    sarimax.fit(start_params=start, disp=False, maxiter=maxiter, method="lbfgs", cov_type="none")
                )
            except (ValueError, np.linalg.LinAlgError):
                continue
        if not rough:
            raise AutoregressiveFitError(
                f"the ARIMA{order}x{seasonal_order} likelihood could not be maximised from any start"
            )
        best = max(rough, key=lambda r: r.llf)
        polished = best
        if thorough:
            polished = sarimax.fit(
                start_params=best.params, disp=False, maxiter=maxiter, method="bfgs", gtol=1e-8, cov_type="none"
            )
            if polished.llf < best.llf:  # pragma: no cover - BFGS does not leave a better point
                polished = best
        fitted = sarimax.smooth(polished.params, cov_type=cov if thorough else "none")
    retvals = polished.mle_retvals or {}
    # BFGS ends on "precision loss" when its finite-difference gradient is down to noise.
    # That is a maximum if the Newton step from there would raise the log-likelihood by
    # less than 1e-6 (the objective is minus the mean log-likelihood; Hinv its inverse
    # Hessian as BFGS built it).
    gradient, inverse_hessian = retvals.get("gopt"), retvals.get("Hinv")
    converged = bool(retvals.get("converged", False))
    if not converged and gradient is not None and inverse_hessian is not None:
        gain = 0.5 * float(gradient @ inverse_hessian @ gradient) * sarimax.nobs
        converged = 0 <= gain < 1e-6
    unscale = np.r_[scale, np.ones(n_arma)]
    estimates = np.asarray(fitted.params) * unscale
    covariance = (
        np.asarray(fitted.cov_params()) * np.outer(unscale, unscale)
        if thorough
        else np.full((len(unscale), len(unscale)), np.nan)
    )
    d, D, s = order[1], seasonal_order[1], seasonal_order[3]
    nobs = int(np.isfinite(endog).sum()) - d - D * s
    return _ArimaMaximum(fitted, estimates, covariance, converged, list(sarimax.param_names), nobs)


def select_arima_order(
    y: np.ndarray,
    X: pd.DataFrame,
    *,
    period: int | None = None,
    max_p: int = 3,
    max_q: int = 3,
    max_seasonal_p: int = 1,
    max_seasonal_q: int = 1,
    max_order: int = 5,
) -> tuple[tuple[int, int, int], tuple[int, int, int, int], pd.DataFrame]:
    """The ARIMA order of the errors chosen as ``forecast::auto.arima(y, xreg = X,
    stepwise = FALSE, approximation = FALSE)`` chooses it.

    Differencing: ``d`` by KPSS tests (5% level, R's short lag ``trunc(4 (n/100)^0.25)``)
    on the residuals of the regression on ``X``, as ``ndiffs``; ``D`` (with a seasonal
    ``period``) when the seasonal strength of an STL decomposition of those residuals
    exceeds 0.64, as ``nsdiffs``; then, as auto.arima, each is reduced while differencing
    would turn a regressor other than the constant into a constant (so a design with a
    linear trend is not differenced). Then every ``p <= max_p``, ``q <= max_q``,
    ``P <= max_seasonal_p``, ``Q <= max_seasonal_q`` with ``p + q + P + Q <= max_order``
    is fitted by exact maximum likelihood and the smallest AICc wins.

    Returns the order, the seasonal order and the table of candidates (order, log-likelihood,
    AICc), best first.
    """
    from statsmodels.tsa.seasonal import STL
    from statsmodels.tsa.stattools import kpss

    y = np.asarray(y, dtype=float)
    A = X.to_numpy(dtype=float)
    constant = np.all(A == A[:1], axis=0)
    resid = y - A @ np.linalg.lstsq(A, y, rcond=None)[0]
    seasonal = period is not None and period >= 2 and len(y) >= 2 * period + 1
    D = 0
    if seasonal:
        parts = STL(resid, period=period, seasonal=10 * len(resid) + 1, robust=False).fit()
        strength = 1 - np.var(parts.resid) / np.var(parts.resid + parts.seasonal)
        D = int(strength > 0.64)
    series, d = resid if not D else resid[period:] - resid[:-period], 0
    while d < 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # p-value outside the table's range
            p_value = kpss(series, regression="c", nlags=int(4 * (len(series) / 100) ** 0.25))[1]
        if p_value >= 0.05:
            break
        d, series = d + 1, np.diff(series)
    others = ~constant
    while D and np.any(np.ptp(_difference(A[:, others], 0, D, period), axis=0) == 0):
        D -= 1
    while d and np.any(np.ptp(_difference(A[:, others], d, D, period or 1), axis=0) == 0):
        d -= 1
    s = period if seasonal else 0
    exog = A[:, _identified_after_differencing(A, d, D, s or 1)]
    rows = []
    for p in range(max_p + 1):
        for q in range(max_q + 1):
            for P in range(max_seasonal_p + 1 if s else 1):
                for Q in range(max_seasonal_q + 1 if s else 1):
                    if p + q + P + Q > max_order:
                        continue
                    order, seasonal_order = (p, d, q), (P, D, Q, s)
                    try:
                        found = _maximise_arima(y, exog, order, seasonal_order, thorough=False)
                    except AutoregressiveFitError:
                        continue
                    # As auto.arima: a model with an AR or MA root within 1.01 of the unit circle
                    # is not chosen (nearly non-stationary or non-invertible).
                    ar, ma = _polynomials(found.estimates[exog.shape[1] :], order, seasonal_order)
                    roots = [np.abs(np.roots(np.trim_zeros(poly, "b")[::-1])) for poly in (ar, ma)]
                    near_unit = any(len(r) and r.min() < 1.01 for r in roots)
                    rows.append(
                        {
                            "order": order,
                            "seasonal_order": seasonal_order,
                            "loglik": found.loglik,
                            "aicc": np.inf if near_unit else found.aicc(),
                        }
                    )
    if not rows:
        raise AutoregressiveFitError("no ARIMA order could be fitted to the pre-period")
    table = pd.DataFrame(rows).sort_values("aicc", kind="stable").reset_index(drop=True)
    return table.at[0, "order"], table.at[0, "seasonal_order"], table


def _arima(
    model: SingleSeriesModel,
    data: DesignData,
    *,
    order=(1, 0, 0),
    seasonal_order=(0, 0, 0, 0),
    cov="approx",
    maxiter=200,
):
    """Regression with ARIMA errors by exact maximum likelihood, as R's ``stats::arima``.

    What makes the estimates R's (checked in ``tests/its/test_arima_r.py``):

    - the innovation variance is concentrated out of the likelihood (``concentrate_scale``),
      as R does, so the prior variance of the differenced states (1e6) is a multiple of
      the innovation variance, R's ``kappa``: diffuse whatever the scale of the data;
    - several starts, R's conditional-sum-of-squares estimates among them, each
      maximised by L-BFGS and then polished by BFGS to a tight gradient; the highest
      likelihood wins, and convergence is the polishing step's;
    - standard errors from the inverse numerical Hessian of the log-likelihood.

    With differencing (d + D > 0) the constant (and for d = 2, or d = 1 with D = 1, the
    pre-period trend) is absorbed by the differencing and dropped, as R drops the mean;
    ``details["absorbed"]`` names the dropped columns.
    """
    X = data.X
    chosen = None
    if isinstance(order, str) and order.strip() == "auto":
        # Chosen on the pre-period, with the pre-period's own terms (trend, calendar).
        pre = model.design.time_since(data.time, 0) < 0
        columns = [c for c in X.columns if c not in model.design.intervention_names(X) and X.loc[pre, c].any()]
        period = (
            int(seasonal_order[3])
            if not isinstance(seasonal_order, str) and seasonal_order[3]
            else (12 if is_monthly(data.time) else None)
        )
        order, seasonal_order, chosen = select_arima_order(data.y[pre], X.loc[pre, columns], period=period)
    order, seasonal_order = parse_order(order), parse_order(seasonal_order, seasonal=True)
    full = _full_time_axis(data.time)
    shocks = _shock_ordinals(list(X.columns), full)
    exog = model.design.matrix(full, shock_columns=shocks).reindex(columns=X.columns, fill_value=0.0)
    exog.loc[data.time] = X.to_numpy()  # the fitted rows exactly as in the design data
    endog = pd.Series(np.nan, index=full)
    endog.loc[data.time] = data.y
    d, D, s = order[1], seasonal_order[1], seasonal_order[3]
    absorbed: list[str] = []
    if d or D:
        identified = _identified_after_differencing(exog.to_numpy(), d, D, s)
        absorbed = [c for c, keep in zip(exog.columns, identified) if not keep]
        exog = exog.loc[:, identified]
    found = _maximise_arima(endog.to_numpy(), exog.to_numpy(), order, seasonal_order, cov=cov, maxiter=maxiter)
    k, fitted, estimates, covariance, converged = (
        exog.shape[1],
        found.fitted,
        found.estimates,
        found.covariance,
        found.converged,
    )
    names = list(exog.columns)
    params = pd.Series(estimates[:k], index=names)
    cov_matrix = covariance[:k, :k]
    details = {}
    n_params = len(fitted.params) + 1  # the concentrated innovation variance counts, as in R's AIC
    details.update(sigma2=float(fitted.scale), loglik=float(fitted.llf), aic=float(-2 * fitted.llf + 2 * n_params))
    if not converged:
        warnings.warn(
            f"the ARIMA{order}x{seasonal_order} likelihood maximisation did not converge in {maxiter} "
            "iterations; results.converged is False",
            RuntimeWarning,
            stacklevel=3,
        )
    arma = {
        r_arma_name(name, s): (float(value), float(se))
        for name, value, se in zip(found.param_names[k:], estimates[k:], np.sqrt(np.diag(covariance))[k:])
    }
    if absorbed:
        warnings.warn(
            f"differencing leaves {absorbed} unidentified; they are dropped (fitted values are "
            "then relative to an unknown level, effects are not affected)",
            RuntimeWarning,
            stacklevel=3,
        )
    innovations = pd.Series(np.asarray(fitted.resid), index=full).loc[data.time]
    if chosen is not None:
        details.update(
            order_p=order[0],
            order_d=order[1],
            order_q=order[2],
            seasonal_p=seasonal_order[0],
            seasonal_d=seasonal_order[1],
            seasonal_q=seasonal_order[2],
            seasonal_period=seasonal_order[3],
            aicc_pre_period=float(chosen.at[0, "aicc"]),
        )
    return params, cov_matrix, details, converged, innovations.to_numpy(), arma, absorbed


# ---------------------------------------------------------------------------------------
# The ITS interface
# ---------------------------------------------------------------------------------------
#: The REML fit behind each ``reml-ar`` result, with its df_method and information, so that
#: :func:`contrast_df` can compute per-contrast degrees of freedom from the results alone
#: (ITSResults is frozen and its cov_details hold numbers only).
_REML_FITS: weakref.WeakKeyDictionary[ITSResults, tuple[REMLARFit, str, str | None]] = weakref.WeakKeyDictionary()

#: Whether ITSResults accepts a per-contrast degrees-of-freedom function (``contrast_df``).
_RESULTS_TAKE_CONTRAST_DF = "contrast_df" in {f.name for f in fields(ITSResults)}

_OPTIONS = {
    "prais-winsten": {"twostep", "gaps", "tol", "max_iter"},
    "cochrane-orcutt": {"twostep", "gaps", "tol", "max_iter"},
    "reml-ar": {"order", "df_method", "df_at", "information", "kenward_roger"},
    "arima": {"order", "seasonal_order", "cov", "maxiter"},
}


def fit_autoregressive(model: SingleSeriesModel, *, method: str, **options: object) -> ITSResults:
    """Fit a Gaussian single-series ITS model with autocorrelated errors.

    Parameters
    ----------
    model : SegmentedRegression
        A Gaussian model of one series (no ``group``, one ``series``).
    method : {"prais-winsten", "cochrane-orcutt", "reml-ar", "arima"}
        See the module documentation.
    **options
        ``prais-winsten``, ``cochrane-orcutt``: ``twostep=False``, ``gaps="exact"`` (or
        ``"restart"`` as Stata), ``tol=1e-6``, ``max_iter=100``.
        ``reml-ar``: ``order=1`` (1-3), ``df_method="satterthwaite"`` (or
        ``"kenward-roger"``, ``"residual"``), ``df_at=None`` (the last fitted period; a time
        value, or ``"min"``), ``information=None`` (``"expected"`` or ``"observed"``;
        default observed for Satterthwaite, as lmerTest, and expected for Kenward-Roger, as
        their paper), ``kenward_roger="1997"`` (or ``"linear"``: without the
        second-derivative term, see :meth:`REMLARFit.kenward_roger_cov`).
        ``arima``: ``order=(1, 0, 0)`` (or ``"auto"``: chosen on the pre-period by
        :func:`select_arima_order`, reported in ``cov_details`` as ``order_p``..),
        ``seasonal_order=(0, 0, 0, 0)``, ``cov="approx"``
        (statsmodels ``cov_type``: the inverse numerical Hessian of the log-likelihood, as
        R's ``arima``; ``"oim"``, ``"opg"``, ``"robust"`` also work), ``maxiter=200``.

    Returns
    -------
    ITSResults
        ``cov_type`` is the method name; ``cov_details`` holds the error-process estimates
        (``rho``/``phi``, ``ar1``.., ``sigma2`` = marginal error variance,
        ``sigma2_innovation``, and method-specific entries); ``residuals`` are the
        estimated innovations (whitened residuals) of the fitted rows used.
    """
    if method not in METHODS:
        raise AutoregressiveFitError(f"unknown method {method!r}; choose one of {list(METHODS)}")
    unknown = set(options) - _OPTIONS[method]
    if unknown:
        raise AutoregressiveFitError(
            f"unknown option(s) {sorted(unknown)} for {method}; available: {sorted(_OPTIONS[method])}"
        )
    if model.family.name != "gaussian":
        raise AutoregressiveFitError(
            f"{method} models Gaussian errors; the model's family is {model.family.name!r} "
            "(use cov_type='latent-ar1' or 'newey-west' with SegmentedRegression.fit)"
        )
    if model.group is not None or len(np.unique(model.series)) > 1:
        raise AutoregressiveFitError(f"{method} fits a single series; this model stacks several (controlled ITS)")
    data = model.design_data()
    X, y, time = data.X, data.y, ordinals(data.time)
    check_residual_variation(y, X.to_numpy() @ np.linalg.lstsq(X.to_numpy(), y, rcond=None)[0], model.family)
    names = list(X.columns)
    converged = True
    if method in ("prais-winsten", "cochrane-orcutt"):
        fit = prais_winsten(
            y,
            X.to_numpy(),
            time,
            corc=method == "cochrane-orcutt",
            twostep=bool(options.get("twostep", False)),
            gaps=str(options.get("gaps", "exact")),
            tol=float(options.get("tol", 1e-6)),
            max_iter=int(options.get("max_iter", 100)),
        )
        params, cov, df = fit.params, fit.cov, fit.df_resid
        details = {
            "rho": fit.rho,
            "phi": fit.rho,
            "sigma2": fit.sigma2 / (1 - fit.rho**2),
            "sigma2_innovation": fit.sigma2,
            "iterations": float(fit.iterations),
            "nobs": float(fit.nobs),
        }
        converged = fit.converged
        resid = pd.Series(fit.resid_transformed, index=data.time[fit.used], name="innovation")
        dispersion = fit.sigma2
        reml = None
    elif method == "reml-ar":
        df_method = str(options.get("df_method", "satterthwaite"))
        if df_method not in DF_METHODS:
            raise AutoregressiveFitError(f"df_method must be one of {list(DF_METHODS)}, got {df_method!r}")
        information = options.get("information")
        if information not in (None, "expected", "observed"):
            raise AutoregressiveFitError(f"information must be 'expected' or 'observed', got {information!r}")
        variant = str(options.get("kenward_roger", "1997"))
        if variant not in ("1997", "linear"):
            raise AutoregressiveFitError(f"kenward_roger must be '1997' or 'linear', got {variant!r}")
        reml = reml_ar(y, X.to_numpy(), time, order=int(options.get("order", 1)), names=tuple(names))
        params = reml.params
        if df_method == "kenward-roger":
            cov = reml.kenward_roger_cov(second_order=variant == "1997", information=information or "expected")
        else:
            cov = reml.cov
        gradients = _df_gradients(model, data, names, options.get("df_at"))
        df = min(reml.contrast_df(g, df_method=df_method, information=information) for g in gradients)
        rho = ar_autocorrelation(reml.ar, 1)[1]
        details = {
            "phi": float(rho),
            "sigma2": reml.sigma2,
            "sigma2_innovation": reml.innovation_variance,
            "reml_loglik": reml.reml_loglik,
            "df_residual": reml.df_residual,
        }
        details.update({f"ar{i + 1}": float(a) for i, a in enumerate(reml.ar)})
        converged = reml.converged
        # Innovations: the residuals whitened (variance sigma2), rescaled to the innovation variance.
        W, _ = ar_whitening(reml.ar, time)
        white = W @ (y - X.to_numpy() @ params)
        resid = pd.Series(white * np.sqrt(reml.innovation_variance / reml.sigma2), index=data.time, name="innovation")
        dispersion = reml.innovation_variance
    else:
        params_s, cov, details, converged, innovations, arma, absorbed = _arima(
            model,
            data,
            order=options.get("order", (1, 0, 0)),
            seasonal_order=options.get("seasonal_order", (0, 0, 0, 0)),
            cov=str(options.get("cov", "approx")),
            maxiter=int(options.get("maxiter", 200)),
        )
        names = list(params_s.index)
        params, df = params_s.to_numpy(), np.inf
        for name, (value, se) in arma.items():
            details[name], details[f"{name}_se"] = value, se
        if "ar1" in arma:
            details["phi"] = arma["ar1"][0]
        details["sigma2_innovation"] = details["sigma2"]
        resid = pd.Series(innovations, index=data.time, name="innovation")
        dispersion = float(details.get("sigma2", np.nan))
        reml = None
    extra = {}
    if reml is not None and _RESULTS_TAKE_CONTRAST_DF:
        # Per-contrast degrees of freedom for coefficient(), effect_at() and
        # cumulative_effect(); df_resid (above) remains the value for everything else.
        fitted_reml, fitted_method, fitted_information = reml, df_method, information
        extra["contrast_df"] = lambda g: fitted_reml.contrast_df(
            g, df_method=fitted_method, information=fitted_information
        )
    results = ITSResults(
        **extra,
        params=pd.Series(params, index=names),
        cov=pd.DataFrame(cov, index=names, columns=names),
        df_resid=float(df),
        cov_type=method,
        cov_details={k: float(v) for k, v in details.items()},
        family=model.family,
        design=model.design,
        time=model.time,
        fit_mask=data.fit_mask,
        outcome=model.outcome,
        size=None,
        group=None,
        n_pre=data.n_pre,
        n_post=data.n_post,
        converged=bool(converged),
        pearson_dispersion=float(dispersion),
        residuals=resid,
    )
    if reml is not None:
        _REML_FITS[results] = (reml, df_method, information)
    return results


def _effect_gradient(model: SingleSeriesModel, data: DesignData, names: list[str], when: pd.Index) -> np.ndarray:
    """``x(t) - x_cf(t)``: the gradient of the effect at ``when`` (identity link)."""
    shocks = _shock_ordinals(names, data.time)
    rows = model.design.matrix(when, shock_columns=shocks).reindex(columns=names, fill_value=0.0)
    return (rows.to_numpy() - model.design.counterfactual(rows).to_numpy())[0]


def _df_gradients(
    model: SingleSeriesModel, data: DesignData, names: list[str], df_at: TimeLike | str | None
) -> list[np.ndarray]:
    """Contrasts whose degrees of freedom set the results' single ``df`` (see module docs)."""
    if df_at is None or df_at == "min":
        when = data.time[-1:]
    else:
        when = as_time_index([df_at])
        if is_monthly(when) != is_monthly(data.time):
            raise AutoregressiveFitError("df_at must be the same kind of time (month or integer) as the data")
    gradients = [_effect_gradient(model, data, names, when)]
    if df_at == "min":
        intervention = model.design.intervention_names(data.X)
        gradients += [(np.array(names) == n).astype(float) for n in intervention]
    return gradients


def contrast_df(
    results_or_fit: ITSResults | REMLARFit,
    gradient: np.ndarray | pd.Series | Mapping[str, float],
    *,
    df_method: str | None = None,
    information: str | None = None,
) -> float:
    """Degrees of freedom for the contrast ``gradient' beta``.

    ``results_or_fit`` is the result of :func:`fit_autoregressive` (or any
    :class:`ITSResults`) or a :class:`REMLARFit`. For ``reml-ar`` results the degrees of
    freedom depend on the contrast and on ``df_method`` (default: the one the results were
    fitted with, found in ``cov_details``; Satterthwaite for a bare :class:`REMLARFit`). For
    every other estimator they do not depend on the contrast and the results' ``df_resid``
    is returned. ``gradient`` is an array in the order of the coefficients, or a Series /
    mapping from coefficient names to weights (missing names weigh 0).

    Examples
    --------
    >>> import numpy as np
    >>> from analysis.its import ITSDesign, SegmentedRegression
    >>> rng = np.random.default_rng(0)
    >>> years = np.arange(1970, 2010)
    >>> y = 10 - 0.1 * (years >= 1990) + rng.normal(0, 0.3, len(years))
    >>> res = fit_autoregressive(SegmentedRegression(y, time=years, design=ITSDesign(interruption=1990)),
    ...                          method="reml-ar")
    >>> bool(contrast_df(res, {"level_change": 1.0}) > 0)
    True
    """
    if isinstance(results_or_fit, REMLARFit):
        fit, names, method = results_or_fit, list(results_or_fit.names), df_method or "satterthwaite"
    else:
        stored = _REML_FITS.get(results_or_fit)
        if stored is None:
            return float(results_or_fit.df_resid)
        fit, fitted_method, fitted_information = stored
        names = list(results_or_fit.params.index)
        method = df_method or fitted_method
        if information is None and method == fitted_method:
            information = fitted_information
    if isinstance(gradient, (pd.Series, Mapping)):
        weights = dict(gradient)
        unknown = set(weights) - set(names)
        if unknown:
            raise KeyError(f"no coefficient(s) {sorted(unknown)}; have {names}")
        c = np.array([float(weights.get(n, 0.0)) for n in names])
    else:
        c = np.asarray(gradient, dtype=float)
        if c.shape != (len(names),):
            raise ValueError(f"gradient has shape {c.shape}; the model has {len(names)} coefficients")
    return fit.contrast_df(c, df_method=method, information=information)
