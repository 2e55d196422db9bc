"""Counterfactual-forecast interrupted time series (as CausalPy's ``InterruptedTimeSeries``
and Google's CausalImpact).

Segmented regression estimates the counterfactual and the effect jointly from all the data.
The forecast design instead fits trend and seasonality (and optional covariates such as
temperature) to the pre-interruption period only, forecasts the post-interruption period
from that fit, and takes the effect in each period as ``observed - forecast``. It makes no
assumption about the shape of the effect (a level change, a ramp, a transient spike), at
the price of extrapolating the pre-period model over the whole post-period.

Uncertainty has two sources, and both are kept:

* coefficient uncertainty, common to every forecast period (so the errors of the period
  forecasts are correlated and add up in a cumulative effect), and
* observation noise: the counterfactual outcome of a period is the forecast mean plus the
  noise that period would have had.

The effect ``observed - counterfactual outcome`` of a period or window is then predicted
with a *prediction* interval (coefficients and noise, the interval of CausalImpact and of
CausalPy's posterior predictive); ``interval="confidence"`` gives the narrower interval of
``observed - expected counterfactual`` (coefficients only).

How the intervals are computed
------------------------------
Gaussian outcomes: closed forms. The forecast mean of a row ``x`` is ``x'b`` with standard
error ``sqrt(x'Vx)``; a new observation adds the residual variance ``s^2``, so the
prediction interval is ``x'b +- t(df) sqrt(x'Vx + s^2)`` with ``df = n - p`` (the classical
OLS prediction interval; with ``cov_type="model"`` it is exactly statsmodels'
``get_prediction(...).summary_frame()["obs_ci_*"]``). A window of periods with design-row
sum ``g`` has ``Var(sum of effects) = g'Vg + 1' Sigma 1``: ``Sigma = s^2 I`` for independent
errors, ``sigma2 * phi^|t_i - t_j|`` under the latent AR(1) error model (``cov_type=
"latent-ar1"``), so that persistent noise widens cumulative intervals as it should.

Count outcomes (binomial, Poisson, negative binomial and the quasi families): simulation
(King, Tomz & Wittenberg 2000, "Making the most of statistical analyses", AJPS 44:347),
as CausalImpact summarises posterior draws. Coefficients are drawn from their estimated
sampling distribution (normal, or multivariate t with the covariance's degrees of
freedom), the expected counts follow from each draw, and a counterfactual count for every
period is drawn around them from the fitted error model:

* ``cov_type="model"``: binomial, Poisson or negative binomial sampling (at the fitted
  ``theta``);
* ``"quasi"`` and ``"newey-west"``: binomial and Poisson sampling inflated to the Pearson
  dispersion ``phi`` (beta-binomial with intra-class correlation ``(phi - 1) / (n - 1)``;
  gamma-Poisson with variance ``phi * mu``); no inflation when ``phi <= 1``;
* ``"latent-ar1"``: the error model of that estimator, a stationary AR(1) process on the
  link scale with the estimated ``phi`` and ``sigma2`` (correlated across periods), then
  the family's sampling.

Intervals are the equal-tailed quantiles of the draws; a window's cumulative interval comes
from the draws of its sum, so the correlation across periods is carried exactly. The
confidence band of the expected count is the link-scale interval transformed back, as in
:meth:`analysis.its.results.ITSResults.predictions`. Counts are on the data scale (events,
deaths, items), not rates.

Relative effects are ``sum(observed) / sum(counterfactual) - 1`` over a window (so the
relative cumulative and relative average effects are the same number); their interval is
the monotone transform of the counterfactual sum's interval, since the observed sum is
fixed. They are undefined (NaN) when the counterfactual interval reaches zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
import pandas as pd
from scipy import stats

from analysis.its.covariance import FitContext, get_estimator
from analysis.its.design import MIN_POINTS_PER_PHASE, RECOMMENDED_POINTS_PER_PHASE, DesignData, DesignError, ITSDesign
from analysis.its.effects import Contrast, critical_value
from analysis.its.families import Family
from analysis.its.model import ModelError, SegmentedRegression, ShortSeriesWarning, check_covariates, fit_glm
from analysis.its.timeaxis import TimeLike, as_ordinal, as_time_index, is_monthly, label, ordinals

INTERVALS = ("prediction", "confidence")


@dataclass(frozen=True)
class ForecastData:
    """Every row with its intervention-free design row; ``pre`` marks the rows fitted."""

    X: pd.DataFrame
    y: np.ndarray
    size: np.ndarray | None
    time: pd.Index
    pre: np.ndarray
    n_pre: int
    n_post: int


class ForecastITS:
    """Interrupted time series by counterfactual forecast from the pre-period.

    Parameters
    ----------
    outcome : array-like
        Values (Gaussian) or event counts (count families), one per row, in time order.
    time : array-like
        Months (``pandas.Period``, ``YYYY-MM``, dates) or integers, increasing.
    interruption : time value
        First post-interruption time. Rows before it are fitted; rows from it on are
        forecast.
    family : str or Family
        ``gaussian``, ``binomial``, ``poisson``, ``negbin``, ``quasibinomial`` or
        ``quasipoisson`` (see :mod:`analysis.its.families`).
    trials, exposure : array-like, optional
        Binomial denominators; Poisson / negative binomial exposure (log offset).
    seasonality, period, spring_festival, shocks, calendar
        Calendar terms, as in :class:`~analysis.its.design.ITSDesign` (same defaults:
        Spring Festival and shock months only with ``calendar="china"`` or when given).
        Shock months after the interruption cannot be estimated from the pre-period and
        are left out.
    covariates : DataFrame, optional
        Further regressors, one row per observation in the same order (e.g. mean
        temperature). The design assumes they are not affected by the intervention.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> months = pd.period_range("2015-01", periods=96, freq="M")
    >>> y = 50 + 0.2 * np.arange(96) + rng.normal(0, 2, 96)
    >>> y[72:] += 5  # an effect from 2021-01
    >>> its = ForecastITS(y, time=months, interruption="2021-01", seasonality="none",
    ...                   spring_festival=False, shocks=())
    >>> res = its.fit()
    >>> avg = res.average_effect()
    >>> bool(avg.ci_low < 5 < avg.ci_high)
    True
    >>> res.predictions().columns[:5].tolist()
    ['month', 'phase', 'observed', 'forecast', 'forecast_low']
    """

    def __init__(
        self,
        outcome: np.ndarray | pd.Series,
        *,
        time: pd.Index | list | np.ndarray,
        interruption: TimeLike,
        family: str | Family = "gaussian",
        trials: np.ndarray | pd.Series | None = None,
        exposure: np.ndarray | pd.Series | None = None,
        seasonality: str | None = None,
        period: int | None = None,
        spring_festival: bool | None = None,
        shocks: tuple[TimeLike, ...] | None = None,
        calendar: str = "none",
        covariates: pd.DataFrame | None = None,
    ) -> None:
        self.design = ITSDesign(
            interruption=interruption,
            seasonality=seasonality,
            period=period,
            spring_festival=spring_festival,
            shocks=shocks,
            calendar=calendar,
        )
        # The segmented-regression model checks outcome, time and denominators the same way.
        checked = SegmentedRegression(
            outcome, design=self.design, time=time, family=family, trials=trials, exposure=exposure
        )
        self.time, self.outcome, self.size, self.family = checked.time, checked.outcome, checked.size, checked.family
        self.covariates = check_covariates(covariates, self.time)

    def design_data(self) -> ForecastData:
        """Design rows of every period, with the columns estimable from the pre-period."""
        time = self.time
        pre = self.design.time_since(time) < 0
        n_pre, n_post = int(pre.sum()), int((~pre).sum())
        if n_pre < MIN_POINTS_PER_PHASE:
            raise DesignError(
                f"{n_pre} point(s) before the interruption: a forecast needs at least "
                f"{MIN_POINTS_PER_PHASE} (and more than its number of coefficients)"
            )
        if n_post < 1:
            raise DesignError("no points from the interruption on: there is nothing to forecast")
        if n_pre < RECOMMENDED_POINTS_PER_PHASE:
            warnings.warn(
                f"only {n_pre} pre-interruption points: a forecast from so short a period is "
                f"unreliable (fewer than {RECOMMENDED_POINTS_PER_PHASE})",
                ShortSeriesWarning,
                stacklevel=3,
            )
        X = self.design.matrix(time, shock_columns=self.design.shock_columns(time[pre]))
        X = X.drop(columns=self.design.intervention_names(X))
        # A calendar column never non-zero before the interruption cannot be estimated; if it is
        # non-zero afterwards (a month first seen in the post-period), that period cannot be forecast.
        unseen = [c for c in X.columns if c != "const" and not np.any(X.loc[pre, c].to_numpy() != 0)]
        blocked = [c for c in unseen if np.any(X.loc[~pre, c].to_numpy() != 0)]
        if blocked:
            raise DesignError(
                f"{', '.join(blocked)} never occur(s) before the interruption: its effect cannot be "
                "forecast (use a lower-order seasonality, e.g. seasonality='fourier:2')"
            )
        X = X.drop(columns=unseen)
        if self.covariates is not None:
            clash = set(self.covariates.columns) & set(X.columns)
            if clash:
                raise ModelError(f"covariate names clash with design columns: {sorted(clash)}")
            X = pd.concat([X, self.covariates], axis=1)
        X_pre = X.to_numpy()[pre]
        if np.linalg.matrix_rank(X_pre) < X.shape[1]:
            raise DesignError(
                f"the {X.shape[1]} design columns ({', '.join(X.columns)}) are collinear in the "
                f"{n_pre} pre-interruption points"
            )
        if n_pre <= X.shape[1]:
            raise DesignError(
                f"{n_pre} pre-interruption points for {X.shape[1]} coefficients: no residual degrees of freedom"
            )
        return ForecastData(X, self.outcome, self.size, time, pre, n_pre, n_post)

    def fit(
        self,
        *,
        cov_type: str | None = None,
        level: float = 0.95,
        n_draws: int = 4000,
        seed: int | None = 0,
        **cov_config: object,
    ) -> ForecastResults:
        """Fit the pre-period and forecast the post-period.

        Parameters
        ----------
        cov_type : {"model", "quasi", "newey-west", "latent-ar1"}, optional
            Covariance of the pre-period coefficients (:mod:`analysis.its.covariance`); it
            also selects the observation-noise model of the prediction intervals (see the
            module notes). Default: ``quasi`` for the quasi families, ``model`` otherwise
            (independent errors, as CausalPy's and CausalImpact's regressions); check the
            pre-period residuals with :func:`analysis.its.diagnostics.diagnose`.
        level : float
            Default coverage of the intervals reported by the results' methods.
        n_draws, seed : int
            Simulation size and random seed for count families (fixed by default so that
            results are reproducible); ignored for Gaussian outcomes.
        **cov_config
            Options of the covariance estimator, e.g. ``lags=3`` for Newey-West.
        """
        _check_level(level)
        if cov_type is None:
            cov_type = "quasi" if self.family.quasi else "model"
        estimator = get_estimator(cov_type, **cov_config)
        data = self.design_data()
        X_pre, y_pre = data.X.to_numpy()[data.pre], data.y[data.pre]
        size_pre = None if data.size is None else data.size[data.pre]
        params, family = _fit_glm(X_pre, y_pre, size_pre, self.family)
        eta = X_pre @ params
        info = family.information(eta, size_pre)
        resid = (y_pre - family.mean_counts(eta, size_pre)) / family.mean_derivative(eta, size_pre)
        context = FitContext(
            X=X_pre,
            weights=info,
            resid=resid,
            time=ordinals(data.time[data.pre]),
            sampling=family.has_sampling_variance,
        )
        cov = estimator.estimate(context)
        pearson = float(np.sum(info * resid**2) / context.df_resid)
        cov_name = "quasi" if cov_type == "quasi" else cov.name  # the Pearson-scaled model-based covariance
        noise = _noise_model(family, cov_name, dict(cov.details), pearson)
        results = ForecastResults(
            params=pd.Series(params, index=data.X.columns),
            cov=pd.DataFrame(cov.cov, index=data.X.columns, columns=data.X.columns),
            df_resid=float(cov.df),
            cov_type=cov_name,
            cov_details=dict(cov.details, **({"theta": family.theta} if family.theta is not None else {})),
            family=family,
            design=self.design,
            time=data.time,
            matrix=data.X,
            outcome=data.y,
            size=data.size,
            fit_mask=data.pre,
            n_pre=data.n_pre,
            n_post=data.n_post,
            pearson_dispersion=pearson,
            residuals=pd.Series(resid * np.sqrt(info), index=data.time[data.pre], name="pearson"),
            noise=noise,
            level=level,
            contrast_df=cov.df_function,
        )
        if family.has_sampling_variance:
            results._simulate(n_draws=n_draws, seed=seed)
        return results


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")


def _fit_glm(X: np.ndarray, y: np.ndarray, size: np.ndarray | None, family: Family) -> tuple[np.ndarray, Family]:
    """Maximum-likelihood coefficients of the pre-period fit and the family at the fitted
    ``theta`` (the same fit as :class:`SegmentedRegression`, negative binomial included)."""
    data = DesignData(
        X=pd.DataFrame(X),
        y=y,
        size=size,
        time=pd.RangeIndex(len(y)),
        series=np.zeros(len(y), int),
        fit_mask=np.ones(len(y), bool),
        n_pre=len(y),
        n_post=0,
    )
    try:
        fit = fit_glm(data, family)
    except ModelError as err:
        raise ModelError(f"the pre-period model cannot be estimated: {err}") from err
    if not fit.converged:
        raise ModelError(
            "the negative binomial fit of the pre-period did not converge (the data may show no "
            "overdispersion: try the Poisson family)"
        )
    return np.asarray(fit.params, dtype=float), fit.family


@dataclass(frozen=True)
class ObservationNoise:
    """The error model of a new observation around its expected value.

    ``kind``: ``iid`` (Gaussian, variance ``variance``), ``ar1`` (Gaussian, stationary
    AR(1) with marginal variance ``variance`` and lag-one correlation ``phi``), ``sampling``
    (binomial / Poisson / negative binomial sampling, inflated to ``dispersion`` when it
    exceeds 1) or ``latent-ar1`` (AR(1) on the link scale with ``variance`` and ``phi``,
    then the family's sampling).
    """

    kind: str
    variance: float = 0.0
    phi: float = 0.0
    dispersion: float = 1.0


def _noise_model(family: Family, cov_type: str, details: dict[str, float], pearson: float) -> ObservationNoise:
    if cov_type == "latent-ar1":
        kind = "ar1" if not family.has_sampling_variance else "latent-ar1"
        return ObservationNoise(kind, variance=float(details.get("sigma2", 0.0)), phi=float(details.get("phi", 0.0)))
    if not family.has_sampling_variance:
        return ObservationNoise("iid", variance=pearson)
    inflate = cov_type in ("quasi", "newey-west") and family.name != "negbin"
    return ObservationNoise("sampling", dispersion=max(1.0, pearson) if inflate else 1.0)


def _two_sided_p(z: float, df: float) -> float:
    if not np.isfinite(z):
        return float("nan") if np.isnan(z) else 0.0
    return float(2 * (stats.norm.sf(abs(z)) if not np.isfinite(df) else stats.t.sf(abs(z), df)))


def _simulated_p(draws: np.ndarray, observed: np.ndarray) -> np.ndarray:
    """Two-sided Monte Carlo p-value of each observed value against its column of draws,
    ``2 min(1 + #(draws >= y), 1 + #(draws <= y)) / (n + 1)``, capped at 1."""
    n = draws.shape[0]
    above = 1 + np.sum(draws >= observed, axis=0)
    below = 1 + np.sum(draws <= observed, axis=0)
    return np.minimum(1.0, 2 * np.minimum(above, below) / (n + 1))


def _relative_bounds(observed: float, low: float, high: float) -> tuple[float, float]:
    """Interval of ``observed / Y0 - 1`` from an interval of ``Y0`` (monotone in ``Y0 > 0``)."""
    if not (np.isfinite(low) and low > 0):
        return float("nan"), float("nan")
    ends = sorted([observed / high - 1, observed / low - 1])
    return float(ends[0]), float(ends[1])


@dataclass(frozen=True, kw_only=True, eq=False)
class ForecastResults:
    """Results of :meth:`ForecastITS.fit` (read-only).

    ``params`` and ``cov`` are the pre-period coefficients on the link scale;
    ``matrix`` is the design of every row; ``fit_mask`` marks the fitted (pre-period) rows
    and ``residuals`` are their Pearson residuals. ``noise`` is the observation-noise
    model of the prediction intervals. Methods take ``level`` (default: the fit's).
    """

    params: pd.Series
    cov: pd.DataFrame
    df_resid: float
    cov_type: str
    cov_details: Mapping[str, float]
    family: Family
    design: ITSDesign
    time: pd.Index
    matrix: pd.DataFrame = field(repr=False)
    outcome: np.ndarray = field(repr=False)
    size: np.ndarray | None = field(repr=False)
    fit_mask: np.ndarray = field(repr=False)
    n_pre: int
    n_post: int
    pearson_dispersion: float
    residuals: pd.Series = field(repr=False)
    noise: ObservationNoise
    level: float = 0.95
    contrast_df: Callable[[np.ndarray], float] | None = field(default=None, repr=False)
    _draws: np.ndarray | None = field(default=None, repr=False)
    _mean_draws: np.ndarray | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cov_details", MappingProxyType(dict(self.cov_details)))
        for name in ("outcome", "size", "fit_mask"):
            value = getattr(self, name)
            if value is not None:
                value = np.array(value, copy=True)
                value.flags.writeable = False
                object.__setattr__(self, name, value)

    # -- shared pieces ------------------------------------------------------------
    @property
    def post_mask(self) -> np.ndarray:
        return ~self.fit_mask

    @property
    def std_errors(self) -> pd.Series:
        return pd.Series(np.sqrt(np.diag(self.cov)), index=self.params.index, name="std_error")

    def fitted_design(self) -> pd.DataFrame:
        """Design matrix of the fitted (pre-period) rows."""
        return self.matrix.loc[self.fit_mask].copy()

    def df_for(self, gradient: np.ndarray) -> float:
        """Degrees of freedom of the reference t distribution for the contrast ``gradient``."""
        return self.df_resid if self.contrast_df is None else self.contrast_df(np.asarray(gradient, float))

    def _level(self, level: float | None) -> float:
        level = self.level if level is None else level
        _check_level(level)
        return level

    def _eta(self) -> np.ndarray:
        return self.matrix.to_numpy() @ self.params.to_numpy()

    def _expected(self) -> np.ndarray:
        """Expected outcome of every row without the intervention (counts for count families)."""
        return self.family.mean_counts(self._eta(), self.size)

    def _noise_cov(self, rows: np.ndarray) -> np.ndarray:
        """Covariance of the Gaussian observation noise of ``rows`` (indices)."""
        t = ordinals(self.time)[rows].astype(float)
        if self.noise.kind == "ar1":
            return self.noise.variance * self.noise.phi ** np.abs(t[:, None] - t[None, :])
        return self.noise.variance * np.eye(len(rows))

    def _time_column(self, rows: np.ndarray) -> dict[str, object]:
        time = self.time[rows]
        return {"month": time.astype(str)} if is_monthly(time) else {"time": np.asarray(time)}

    # -- simulation (count families) ------------------------------------------------
    def _simulate(self, *, n_draws: int, seed: int | None) -> None:
        if n_draws < 100:
            raise ValueError(f"n_draws must be at least 100, got {n_draws}")
        rng = np.random.default_rng(seed)
        p = len(self.params)
        z = rng.multivariate_normal(np.zeros(p), self.cov.to_numpy(), size=n_draws, method="cholesky")
        if np.isfinite(self.df_resid):  # multivariate t, matching the t intervals of the coefficients
            z = z * np.sqrt(self.df_resid / rng.chisquare(self.df_resid, size=n_draws))[:, None]
        eta = (self.params.to_numpy() + z) @ self.matrix.to_numpy().T
        size = self.size
        mean = self.family.mean_counts(eta, size)
        if self.noise.kind == "latent-ar1" and self.noise.variance > 0:
            t = ordinals(self.time).astype(float)
            corr = self.noise.phi ** np.abs(t[:, None] - t[None, :])
            chol = np.linalg.cholesky(self.noise.variance * corr + 1e-12 * np.eye(len(t)))
            eta = eta + rng.standard_normal(eta.shape) @ chol.T
        lam = self.family.mean_counts(eta, size)
        draws = self._sample_counts(rng, lam, size)
        for array in (draws, mean):
            array.flags.writeable = False
        object.__setattr__(self, "_draws", draws)
        object.__setattr__(self, "_mean_draws", mean)

    def _sample_counts(self, rng: np.random.Generator, lam: np.ndarray, size: np.ndarray) -> np.ndarray:
        phi = self.noise.dispersion
        name = self.family.name
        if name == "binomial":
            trials = np.broadcast_to(np.round(size).astype(np.int64), lam.shape)
            prob = np.clip(lam / size, 0.0, 1.0)
            if phi > 1:
                # Beta-binomial: Var = n p (1-p) (1 + (n-1) rho) = phi n p (1-p).
                rho = np.clip((phi - 1) / np.maximum(trials - 1, 1), 1e-12, 1 - 1e-9)
                a, b = prob * (1 - rho) / rho, (1 - prob) * (1 - rho) / rho
                prob = rng.beta(np.maximum(a, 1e-12), np.maximum(b, 1e-12))
            return rng.binomial(trials, prob).astype(float)
        if name == "negbin":
            theta = self.family.theta
            return rng.poisson(lam * rng.gamma(theta, 1.0 / theta, size=lam.shape)).astype(float)
        if phi > 1:
            # Gamma-Poisson with shape lam / (phi - 1): Var = lam + lam (phi - 1) = phi lam.
            shape = lam / (phi - 1)
            return rng.poisson(rng.gamma(shape, 1.0 / np.maximum(shape, 1e-300)) * lam).astype(float)
        return rng.poisson(lam).astype(float)

    # -- per-period output ----------------------------------------------------------
    def predictions(self, *, level: float | None = None) -> pd.DataFrame:
        """Every period: observed, forecast with its confidence band, prediction interval.

        ``forecast`` is the expected outcome without the intervention: the in-sample fit for
        ``pre`` rows, the forecast for ``post`` rows. ``forecast_low/high`` is the
        confidence band of that mean; ``prediction_low/high`` the interval for the outcome
        itself (mean plus observation noise). ``effect`` is ``observed - forecast`` with its
        prediction interval, for post rows only.
        """
        level = self._level(level)
        rows = np.arange(len(self.time))
        X = self.matrix.to_numpy()
        eta = X @ self.params.to_numpy()
        se = np.sqrt(np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X))
        if self.contrast_df is None:
            crit = critical_value(self.df_resid, level)
        else:  # degrees of freedom that depend on the contrast (Satterthwaite, latent AR(1))
            crit = np.array([critical_value(self.df_for(x), level) for x in X])
        out: dict[str, object] = self._time_column(rows)
        out["phase"] = np.where(self.fit_mask, "pre", "post")
        out["observed"] = np.asarray(self.outcome, dtype=float)
        with np.errstate(over="ignore"):
            out["forecast"] = self.family.mean_counts(eta, self.size)
            out["forecast_low"] = self.family.mean_counts(eta - crit * se, self.size)
            out["forecast_high"] = self.family.mean_counts(eta + crit * se, self.size)
        low, high = self._prediction_bounds(rows, level)
        out["prediction_low"], out["prediction_high"] = low, high
        effect = self.effect(level=level)
        for name in ("effect", "effect_low", "effect_high"):
            column = np.full(len(rows), np.nan)
            column[self.post_mask] = effect[name].to_numpy()
            out[name] = column
        return pd.DataFrame(out)

    def _prediction_bounds(self, rows: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
        """Prediction interval of the counterfactual outcome of each row."""
        if self._draws is not None:
            q = np.quantile(self._draws[:, rows], [0.5 - level / 2, 0.5 + level / 2], axis=0)
            return q[0], q[1]
        X = self.matrix.to_numpy()[rows]
        var = np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X) + self.noise.variance
        mean = X @ self.params.to_numpy()
        half = critical_value(self.df_resid, level) * np.sqrt(var)
        return mean - half, mean + half

    def effect(self, *, level: float | None = None, interval: str = "prediction") -> pd.DataFrame:
        """Effect in each post-interruption period: ``observed - forecast`` with its interval,
        standard error, two-sided p-value and the relative effect ``observed / forecast - 1``
        (with the interval transformed from that of the counterfactual outcome)."""
        level = self._level(level)
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
        rows = np.flatnonzero(self.post_mask)
        observed = np.asarray(self.outcome, float)[rows]
        expected = self._expected()[rows]
        effect = observed - expected
        if self._draws is None:  # Gaussian: closed forms
            X = self.matrix.to_numpy()[rows]
            var = np.einsum("ij,jk,ik->i", X, self.cov.to_numpy(), X)
            if interval == "prediction":
                var = var + self.noise.variance
                df = np.full(len(rows), self.df_resid)
            else:
                df = np.array([self.df_for(x) for x in X])
            se = np.sqrt(var)
            crit = np.array([critical_value(d, level) for d in df])
            p = np.array([_two_sided_p(z, d) for z, d in zip(effect / se, df)])
            cf_low, cf_high = expected - crit * se, expected + crit * se
        else:  # count families: quantiles of the simulated counterfactual outcomes (or means)
            draws = (self._draws if interval == "prediction" else self._mean_draws)[:, rows]
            cf_low, cf_high = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2], axis=0)
            se = np.std(draws, axis=0, ddof=1)
            p = _simulated_p(draws, observed)
        out: dict[str, object] = self._time_column(rows)
        out.update(
            observed=observed,
            forecast=expected,
            effect=effect,
            se=se,
            effect_low=observed - cf_high,
            effect_high=observed - cf_low,
            p_value=p,
        )
        with np.errstate(divide="ignore", invalid="ignore"):
            out["relative"] = np.where(expected > 0, observed / expected - 1, np.nan)
        bounds = np.array([_relative_bounds(o, lo, hi) for o, lo, hi in zip(observed, cf_low, cf_high)])
        out["relative_low"], out["relative_high"] = bounds[:, 0], bounds[:, 1]
        return pd.DataFrame(out)

    # -- windows ----------------------------------------------------------------------
    def _window_rows(self, window: slice | pd.Index | list | None) -> np.ndarray:
        """Row indices of a window of post-interruption periods: all of them (``None``), a
        ``slice(start, end)`` of times (inclusive), or a list of times."""
        post = np.flatnonzero(self.post_mask)
        o = ordinals(self.time)
        if window is None:
            return post
        if isinstance(window, slice):
            if window.step is not None:
                raise ValueError("a window slice takes no step")
            lo = -np.inf if window.start is None else as_ordinal(window.start, self.time)
            hi = np.inf if window.stop is None else as_ordinal(window.stop, self.time)
            rows = post[(o[post] >= lo) & (o[post] <= hi)]
            if rows.size == 0:
                raise ValueError(f"no post-interruption periods in the window {window.start}..{window.stop}")
            return rows
        wanted = as_time_index(window)
        if is_monthly(wanted) != is_monthly(self.time):
            raise ValueError("use the same kind of time (months or integers) as the data")
        position = {v: i for i, v in enumerate(o)}
        rows = []
        for value in ordinals(wanted):
            if value not in position:
                raise ValueError(f"{label(value, self.time)} is not a period of the data")
            if self.fit_mask[position[value]]:
                raise ValueError("a window must lie after the interruption (the fitted period has no effect)")
            rows.append(position[value])
        if len(set(rows)) != len(rows):
            raise ValueError("a window lists a period twice")
        return np.array(sorted(rows), dtype=int)

    def _window_stats(self, rows: np.ndarray, interval: str, level: float) -> dict[str, float]:
        """Sum over ``rows`` of ``observed - counterfactual`` with its interval, and the
        interval of the counterfactual sum itself."""
        if interval not in INTERVALS:
            raise ValueError(f"interval must be one of {INTERVALS}, got {interval!r}")
        observed = float(np.sum(np.asarray(self.outcome, float)[rows]))
        expected = float(np.sum(self._expected()[rows]))
        estimate = observed - expected
        if self._draws is not None:
            draws = (self._draws if interval == "prediction" else self._mean_draws)[:, rows].sum(axis=1)
            lo, hi = np.quantile(draws, [0.5 - level / 2, 0.5 + level / 2])
            p = _simulated_p(draws[:, None], np.array([observed]))[0]
            return {
                "observed": observed,
                "counterfactual": expected,
                "estimate": estimate,
                "se": float(np.std(draws, ddof=1)),
                "ci_low": observed - hi,
                "ci_high": observed - lo,
                "p_value": float(p),
                "counterfactual_low": float(lo),
                "counterfactual_high": float(hi),
            }
        g = self.matrix.to_numpy()[rows].sum(axis=0)
        var = float(g @ self.cov.to_numpy() @ g)
        if interval == "prediction":
            var += float(np.sum(self._noise_cov(rows)))
            df = self.df_resid
        else:
            df = self.df_for(g)
        se = float(np.sqrt(max(var, 0.0)))
        crit = critical_value(df, level)
        return {
            "observed": observed,
            "counterfactual": expected,
            "estimate": estimate,
            "se": se,
            "ci_low": estimate - crit * se,
            "ci_high": estimate + crit * se,
            "p_value": _two_sided_p(estimate / se if se > 0 else np.nan, df),
            "counterfactual_low": expected - crit * se,
            "counterfactual_high": expected + crit * se,
        }

    def _contrast(self, window, *, interval: str, relative: bool, level: float | None, per_period: bool) -> Contrast:
        level = self._level(level)
        rows = self._window_rows(window)
        s = self._window_stats(rows, interval, level)
        scale = "count" if self.family.has_sampling_variance else "outcome"
        if relative:
            low, high = _relative_bounds(s["observed"], s["counterfactual_low"], s["counterfactual_high"])
            cf = s["counterfactual"]
            estimate = s["observed"] / cf - 1 if cf > 0 else float("nan")
            se = s["observed"] / cf**2 * s["se"] if cf > 0 else float("nan")
            return Contrast("effect_relative", float(estimate), float(se), low, high, s["p_value"], "ratio - 1")
        k = len(rows) if per_period else 1
        name = "effect_average" if per_period else "effect_cumulative"
        return Contrast(name, s["estimate"] / k, s["se"] / k, s["ci_low"] / k, s["ci_high"] / k, s["p_value"], scale)

    def cumulative_effect(
        self,
        window: slice | pd.Index | list | None = None,
        *,
        interval: str = "prediction",
        relative: bool = False,
        level: float | None = None,
    ) -> Contrast:
        """Sum of ``observed - counterfactual`` over a window of post-interruption periods.

        ``window``: ``None`` (the whole post-period), ``slice(start, end)`` (inclusive) or a
        list of times. ``interval="prediction"`` (default) covers coefficient uncertainty,
        correlated across the periods, and each period's observation noise: the interval
        of the realised effect. ``"confidence"`` covers the coefficients only (the effect
        against the expected counterfactual). ``relative=True`` gives
        ``sum(observed) / sum(counterfactual) - 1``.
        """
        return self._contrast(window, interval=interval, relative=relative, level=level, per_period=False)

    def average_effect(
        self,
        window: slice | pd.Index | list | None = None,
        *,
        interval: str = "prediction",
        relative: bool = False,
        level: float | None = None,
    ) -> Contrast:
        """Mean effect per period over a window (the cumulative effect divided by the number
        of periods; the relative version equals the relative cumulative effect)."""
        return self._contrast(window, interval=interval, relative=relative, level=level, per_period=True)

    def to_frame(self, window: slice | pd.Index | list | None = None, *, level: float | None = None) -> pd.DataFrame:
        """Tidy summary of a window: cumulative, average and relative effect, each with its
        prediction and confidence interval (one row per measure and interval)."""
        level = self._level(level)
        rows = self._window_rows(window)
        records = []
        for interval in INTERVALS:
            for contrast in (
                self.cumulative_effect(window, interval=interval, level=level),
                self.average_effect(window, interval=interval, level=level),
                self.cumulative_effect(window, interval=interval, relative=True, level=level),
            ):
                records.append({**contrast.as_dict(), "interval": interval})
        frame = pd.DataFrame(records)
        names = self.time[rows].astype(str)
        frame["start"], frame["end"], frame["n_periods"], frame["level"] = names[0], names[-1], len(rows), level
        return frame[
            [
                "measure",
                "interval",
                "estimate",
                "se",
                "ci_low",
                "ci_high",
                "p_value",
                "scale",
                "start",
                "end",
                "n_periods",
                "level",
            ]
        ]
