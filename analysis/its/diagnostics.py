"""Residual and model diagnostics of a fitted ITS model.

One function per diagnostic, each returning a tidy DataFrame, and :func:`diagnose`, which
runs them all and lists the problems found in plain language. They take the results of
:meth:`analysis.its.model.SegmentedRegression.fit` or of
:meth:`analysis.its.forecast.ForecastITS.fit` (the pre-period fit of a forecast).

Residuals are Pearson residuals ``(y - mu) / sqrt(Var(y))`` (raw residuals for Gaussian
models). Lags count fitted rows, as R's ``acf`` on model residuals does: a gap left by an
excluded wash-in is bridged. Stacked series (controlled ITS) are analysed series by series
(a series is a run of rows of one group in increasing time), and lagged residuals in the
Breusch-Godfrey regression never cross from one series to the next.

References
----------
* Ljung & Box (1978), Biometrika 65:297-303; Durbin & Watson (1950, 1951), Biometrika.
* Breusch (1978), Australian Economic Papers 17:334-355; Godfrey (1978), Econometrica
  46:1293-1301; Greene, Econometric Analysis, section on testing for autocorrelation.
* Cameron & Trivedi (1990), J Econometrics 46:347-364; Regression Analysis of Count Data
  (2nd ed. 2013), section 3.4: the auxiliary regression test for overdispersion.
* Cook (1977), Technometrics 19:15-18; for GLMs, Williams (1987), Appl Stat 36:181-191.
* Bernal, Cummins & Gasparrini (2017), Int J Epidemiol 46:348-355, on checking residual
  autocorrelation and overdispersion in ITS.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.stats.diagnostic import acorr_ljungbox
from statsmodels.stats.stattools import durbin_watson as _durbin_watson
from statsmodels.tsa.stattools import acf, pacf

from analysis.its.design import MIN_POINTS_PER_PHASE, RECOMMENDED_POINTS_PER_PHASE
from analysis.its.effects import critical_value
from analysis.its.forecast import ForecastResults
from analysis.its.timeaxis import as_ordinal, is_monthly, label, ordinals

#: Influence threshold on Cook's distance, as a multiple of 1/n (the usual 4/n rule).
COOKS_MULTIPLE = 4.0


@dataclass(frozen=True)
class _Fitted:
    """What the diagnostics need from a fit, for the fitted rows."""

    pearson: np.ndarray
    time: pd.Index
    series: np.ndarray  # series label of each row
    X: np.ndarray | None  # None when the design cannot be rebuilt (see _design)
    design_note: str
    y: np.ndarray
    size: np.ndarray | None
    eta: np.ndarray | None
    weights: np.ndarray | None
    n_params: int


def _design(results) -> tuple[np.ndarray | None, str]:
    """The design matrix of the fitted rows, in the order of ``results.params``: the one
    the results carry (``fitted_design()``), or else rebuilt from the design."""
    carried = results.fitted_design() if hasattr(results, "fitted_design") else None
    if carried is not None:
        return carried[results.params.index].to_numpy(dtype=float), ""
    time = results.time[results.fit_mask]
    shocks = [as_ordinal(c.removeprefix("shock_"), time) for c in results.params.index if c.startswith("shock_")]
    group = None if results.group is None else np.asarray(results.group)[results.fit_mask]
    matrix = results.design.matrix(time, shock_columns=shocks, group=group)
    missing = [c for c in results.params.index if c not in matrix.columns]
    if missing:
        return None, (
            f"the fitted design has column(s) {', '.join(missing)} that cannot be rebuilt from the "
            "results, so leverage, Cook's distance and the Breusch-Godfrey test are not computed"
        )
    return matrix[results.params.index].to_numpy(), ""


def _series_labels(time: pd.Index, group: np.ndarray | None) -> np.ndarray:
    """Label of each fitted row's series: a run of one group in increasing time."""
    t = ordinals(time)
    g = np.zeros(len(t)) if group is None else np.asarray(group, float)
    new = np.r_[True, (np.diff(t) <= 0) | (np.diff(g) != 0)]
    code = np.cumsum(new) - 1
    base = np.where(g == 1, "treated", "control") if group is not None else np.full(len(t), "series", dtype=object)
    labels = np.empty(len(t), dtype=object)
    for b in np.unique(base):
        codes = np.unique(code[base == b])
        for k, c in enumerate(codes):
            labels[code == c] = b if len(codes) == 1 else f"{b}_{k + 1}"
    return labels


def _fitted(results) -> _Fitted:
    pearson = results.residuals.to_numpy(dtype=float)
    time = results.time[results.fit_mask]
    group = getattr(results, "group", None)
    series = _series_labels(time, None if group is None else np.asarray(group)[results.fit_mask])
    X, note = _design(results)
    y = np.asarray(results.outcome, float)[results.fit_mask]
    size = None if results.size is None else np.asarray(results.size, float)[results.fit_mask]
    eta = weights = None
    if X is not None:
        eta = X @ results.params.to_numpy()
        weights = results.family.information(eta, size)
    return _Fitted(pearson, time, series, X, note, y, size, eta, weights, len(results.params))


def _time_labels(time: pd.Index) -> np.ndarray:
    return np.asarray(time.astype(str)) if is_monthly(time) else np.asarray(time)


def default_max_lag(n: int) -> int:
    """``min(24, n // 4)``, at least 1: long enough for a yearly lag in monthly series of
    four years or more, short enough for the autocorrelation estimates to mean something."""
    return max(1, min(24, n // 4))


# -- autocorrelation ----------------------------------------------------------------------
def residual_autocorrelation(
    results, *, max_lag: int | None = None, level: float = 0.95, _fit: _Fitted | None = None
) -> pd.DataFrame:
    """ACF and PACF of the Pearson residuals by series, lags 1..``max_lag``.

    ``bound`` is the white-noise band ``z / sqrt(n)``; ``acf_bartlett`` is the band of
    Bartlett's formula (the ACF band of statsmodels and R), which widens with the lag as
    earlier autocorrelations accumulate. PACF (Yule-Walker on autocovariances with ``n - k``
    denominators) stops at ``n // 2 - 1``.
    """
    fit = _fitted(results) if _fit is None else _fit
    z = critical_value(np.inf, level)
    frames = []
    for name in pd.unique(fit.series):
        x = fit.pearson[fit.series == name]
        n = len(x)
        k = default_max_lag(n) if max_lag is None else int(max_lag)
        k = min(k, n - 1)
        if k < 1:
            continue
        result = acf(x, nlags=k, fft=False, alpha=1 - level, result_object=True)
        values, confint = result.acf, result.confint
        k_pacf = min(k, n // 2 - 1)
        partial = np.full(k + 1, np.nan)
        if k_pacf >= 1:
            partial[: k_pacf + 1] = pacf(x, nlags=k_pacf, method="ywadjusted", result_object=True).pacf
        lags = np.arange(1, k + 1)
        frames.append(
            pd.DataFrame(
                {
                    "series": name,
                    "lag": lags,
                    "acf": values[1:],
                    "pacf": partial[1:],
                    "bound": z / np.sqrt(n),
                    "acf_bartlett": (confint[1:, 1] - values[1:]),
                    "n": n,
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["series", "lag", "acf", "pacf", "bound", "acf_bartlett", "n"])
    )


def ljung_box(
    results,
    *,
    lags: list[int] | tuple[int, ...] | None = None,
    model_df: int = 0,
    n_sim: int = 1000,
    seed: int | None = 0,
    _fit: _Fitted | None = None,
) -> pd.DataFrame:
    """Ljung-Box portmanteau test of the Pearson residuals by series.

    ``Q(h) = n (n + 2) sum_{k<=h} r_k^2 / (n - k)`` (statsmodels' ``acorr_ljungbox``),
    referred to chi-square with ``h - model_df`` degrees of freedom (``p_value``).
    ``model_df`` is the number of ARMA parameters estimated for the errors (0 here: the
    mean model's regressors are not ARMA terms; pass ``p + q`` for the residuals of a
    regression with ARMA(p, q) errors). Default lags: 1 to :func:`default_max_lag`.

    The residuals of a regression are not white noise even when its errors are: they are
    ``M e`` with ``M`` the residual-maker of the design, and month dummies, for one, make
    the residuals of each calendar month sum to zero, which biases ``r_12`` negative. The
    chi-square reference then rejects too often in series of ITS length (about 9% and 13%
    at lags 1 and 12 for a nominal 5%, in 93 monthly points with month dummies).
    ``p_value_design`` is therefore a Monte Carlo p-value (``n_sim`` draws, Dwass-Barnard
    ``(1 + #{Q* >= Q}) / (n_sim + 1)``) from the null distribution of ``Q`` for residuals
    ``M z`` of the fitted design (IRLS-weighted for count families) with independent
    errors ``z``. ``Q`` does not depend on the error variance, so for Gaussian models this is
    an exact test (Dufour et al. 1998, Econometrics Journal 1:154-173, for Monte Carlo tests
    on regression residuals); for count families it is exact to the order of the usual
    GLM approximations. NaN when the design cannot be rebuilt.
    """
    fit = _fitted(results) if _fit is None else _fit
    null = None
    if fit.X is not None and n_sim:
        weighted = fit.X * np.sqrt(fit.weights)[:, None]
        q, _ = np.linalg.qr(weighted)
        z = np.random.default_rng(seed).standard_normal((len(fit.pearson), int(n_sim)))
        null = z - q @ (q.T @ z)  # M z
    frames = []
    for name in pd.unique(fit.series):
        rows = fit.series == name
        x = fit.pearson[rows]
        n = len(x)
        use = list(range(1, default_max_lag(n) + 1)) if lags is None else [int(h) for h in lags]
        use = [h for h in use if model_df < h < n]
        if not use:
            continue
        out = acorr_ljungbox(x, lags=use, model_df=model_df, return_df=True)
        statistic = out["lb_stat"].to_numpy()
        design_p = np.full(len(use), np.nan)
        if null is not None:
            simulated = _ljung_box_q(null[rows], max(use))[np.array(use) - 1]
            design_p = (1 + np.sum(simulated >= statistic[:, None] * (1 - 1e-12), axis=1)) / (null.shape[1] + 1)
        frames.append(
            pd.DataFrame(
                {
                    "series": name,
                    "lag": use,
                    "statistic": statistic,
                    "df": np.array(use) - model_df,
                    "p_value": out["lb_pvalue"].to_numpy(),
                    "p_value_design": design_p,
                    "n": n,
                }
            )
        )
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["series", "lag", "statistic", "df", "p_value", "p_value_design", "n"])
    )


def ljung_box_p_value(resid: np.ndarray, *, lags: int) -> float:
    """P-value of the Ljung-Box test of no autocorrelation up to ``lags`` for one series.

    The statistic of :func:`ljung_box` (statsmodels' ``acorr_ljungbox``) without its table
    handling, for a thousand short series in the pipeline.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> 0 <= ljung_box_p_value(rng.normal(size=80), lags=12) <= 1
    True
    """
    q = _ljung_box_q(np.asarray(resid, dtype=float)[:, None], lags)[-1, 0]
    return float(stats.chi2.sf(q, lags))


def _ljung_box_q(e: np.ndarray, max_lag: int) -> np.ndarray:
    """``Q(1..max_lag)`` of each column of ``e`` (rows are time), shape (max_lag, columns)."""
    n = e.shape[0]
    d = e - e.mean(axis=0)
    denominator = np.sum(d**2, axis=0)
    r = np.array([np.sum(d[:-k] * d[k:], axis=0) for k in range(1, max_lag + 1)]) / denominator
    weights = (n * (n + 2) / (n - np.arange(1, max_lag + 1)))[:, None]
    return np.cumsum(weights * r**2, axis=0)


def durbin_watson(results, *, _fit: _Fitted | None = None) -> pd.DataFrame:
    """Durbin-Watson statistic ``sum (e_t - e_{t-1})^2 / sum e_t^2`` by series, with the
    lag-one autocorrelation it implies, ``1 - DW / 2`` (about 2 for white noise; below 2 for
    positive autocorrelation). Use the Breusch-Godfrey test for a p-value."""
    fit = _fitted(results) if _fit is None else _fit
    rows = []
    for name in pd.unique(fit.series):
        x = fit.pearson[fit.series == name]
        dw = float(_durbin_watson(x))
        rows.append({"series": name, "statistic": dw, "implied_rho": 1 - dw / 2, "n": len(x)})
    return pd.DataFrame(rows)


def breusch_godfrey(
    results, *, orders: tuple[int, ...] | list[int] = (1,), _fit: _Fitted | None = None
) -> pd.DataFrame:
    """Breusch-Godfrey LM test for serial correlation of order ``p`` (each of ``orders``).

    Auxiliary regression of the residuals on the fitted design and their own ``p`` lags
    (zero before the start of each series, as statsmodels' ``acorr_breusch_godfrey``):
    ``LM = n R^2`` against chi-square(``p``), and the F test of the lag coefficients. For a
    Gaussian model this is exactly statsmodels' test on the equivalent OLS fit. For count
    families it is the same regression on the IRLS scale (Pearson residuals on the
    weighted design ``W^(1/2) X``, to which they are orthogonal at the maximum likelihood
    estimate), with ``R^2`` uncentred. In series of ITS length the F version keeps its
    nominal size better than ``n R^2`` (which over-rejects when the design has many
    columns); prefer ``f_p_value``.
    """
    fit = _fitted(results) if _fit is None else _fit
    if fit.X is None:
        raise ValueError(fit.design_note)
    r = fit.pearson
    Z0 = fit.X * np.sqrt(fit.weights)[:, None]
    n = len(r)
    tss = float(r @ r)
    rows = []
    for p in orders:
        p = int(p)
        if p < 1:
            raise ValueError(f"orders must be positive, got {p}")
        lagged = np.zeros((n, p))
        for name in pd.unique(fit.series):
            idx = np.flatnonzero(fit.series == name)
            for j in range(1, p + 1):
                lagged[idx[j:], j - 1] = r[idx[:-j]]
        Z = np.column_stack([Z0, lagged])
        coef, *_ = np.linalg.lstsq(Z, r, rcond=None)
        rss = float(np.sum((r - Z @ coef) ** 2))
        df_denominator = n - np.linalg.matrix_rank(Z)
        lm = n * (1 - rss / tss)
        f = ((tss - rss) / p) / (rss / df_denominator)
        rows.append(
            {
                "order": p,
                "lm": lm,
                "lm_p_value": float(stats.chi2.sf(lm, p)),
                "f": f,
                "f_p_value": float(stats.f.sf(f, p, df_denominator)),
                "df": p,
                "df_denominator": df_denominator,
                "n": n,
            }
        )
    return pd.DataFrame(rows)


# -- overdispersion -----------------------------------------------------------------------
def overdispersion(results, *, _fit: _Fitted | None = None) -> pd.DataFrame:
    """Overdispersion tests of a count model (an empty frame for Gaussian models).

    * ``pearson``: ``X^2 = sum r_i^2`` against chi-square(``n - p``); ``estimate`` is the
      dispersion ``X^2 / (n - p)`` (1 if the binomial / Poisson / negative binomial variance
      is right). One-sided p-value, for overdispersion.
    * ``cameron_trivedi_nb2`` and ``cameron_trivedi_nb1`` (Poisson only): the auxiliary OLS
      regression without intercept of ``((y - mu)^2 - y) / mu`` on ``mu`` (alternative
      ``Var = mu + alpha mu^2``) or on 1 (``Var = (1 + alpha) mu``); ``estimate`` is
      ``alpha``, ``statistic`` its t ratio, referred to the standard normal (one-sided,
      ``alpha > 0``).
    """
    columns = ["test", "statistic", "df", "p_value", "estimate", "alternative"]
    if not results.family.has_sampling_variance:
        return pd.DataFrame(columns=columns)
    fit = _fitted(results) if _fit is None else _fit
    r = fit.pearson
    df = len(r) - fit.n_params
    x2 = float(r @ r)
    rows = [
        {
            "test": "pearson",
            "statistic": x2,
            "df": df,
            "p_value": float(stats.chi2.sf(x2, df)),
            "estimate": x2 / df,
            "alternative": "Var(y) = phi * V(mu), phi > 1",
        }
    ]
    if results.family.name == "poisson":
        if fit.eta is None:
            raise ValueError(fit.design_note)
        mu = results.family.mean_counts(fit.eta, fit.size)
        z = ((fit.y - mu) ** 2 - fit.y) / mu
        for name, regressor, alternative in (
            ("cameron_trivedi_nb2", mu, "Var(y) = mu + alpha mu^2"),
            ("cameron_trivedi_nb1", np.ones_like(mu), "Var(y) = (1 + alpha) mu"),
        ):
            alpha = float(regressor @ z / (regressor @ regressor))
            s2 = float(np.sum((z - alpha * regressor) ** 2) / (len(z) - 1))
            t = alpha / np.sqrt(s2 / (regressor @ regressor))
            rows.append(
                {
                    "test": name,
                    "statistic": t,
                    "df": np.nan,
                    "p_value": float(stats.norm.sf(t)),
                    "estimate": alpha,
                    "alternative": alternative,
                }
            )
    return pd.DataFrame(rows, columns=columns)


# -- influence ------------------------------------------------------------------------------
def influence(results, *, scale: float | None = None, _fit: _Fitted | None = None) -> pd.DataFrame:
    """Leverage and Cook's distance of each fitted row.

    Leverage is the diagonal of the hat matrix ``W^(1/2) X (X'WX)^-1 X' W^(1/2)`` (the OLS
    hat matrix for Gaussian models). Cook's distance is ``r^2 h / (scale p (1 - h)^2)``
    with ``r`` the Pearson residual, as statsmodels' ``OLSInfluence`` and
    ``GLMInfluence``. ``scale`` defaults to the scale of the model-based covariance (the
    residual variance for Gaussian models, 1 for count models, the Pearson dispersion for
    ``quasi``) and to the Pearson dispersion for the other covariances, which admit extra
    variation. Rows with Cook's distance above ``4 / n`` are flagged. Rows with leverage one
    (a month with its own shock dummy) have no defined influence: NaN, not flagged.
    """
    fit = _fitted(results) if _fit is None else _fit
    if fit.X is None:
        raise ValueError(fit.design_note)
    if scale is None:
        scale = float(results.cov_details.get("scale", results.pearson_dispersion))
    weighted = fit.X * np.sqrt(fit.weights)[:, None]
    q, _ = np.linalg.qr(weighted)
    h = np.sum(q**2, axis=1)
    r = fit.pearson
    p, n = fit.n_params, len(r)
    # A row with leverage one (e.g. a month with its own shock dummy) is fitted exactly by its
    # own coefficient: its residual is zero by construction and its influence undefined.
    own = h > 1 - 1e-8
    with np.errstate(divide="ignore", invalid="ignore"):
        cooks = np.where(own, np.nan, r**2 * h / (scale * p * (1 - h) ** 2))
        studentized = np.where(own, np.nan, r / np.sqrt(scale * (1 - h)))
    time_column = "month" if is_monthly(fit.time) else "time"
    return pd.DataFrame(
        {
            time_column: _time_labels(fit.time),
            "series": fit.series,
            "leverage": h,
            "cooks_distance": cooks,
            "pearson_residual": r,
            "studentized_residual": studentized,
            "flagged": np.nan_to_num(cooks, nan=0.0) > COOKS_MULTIPLE / n,
        }
    )


# -- phases -----------------------------------------------------------------------------------
def phase_sizes(results) -> pd.DataFrame:
    """Points in each phase: before the (first) interruption and after each one (fitted rows
    of the treated series; for a forecast, the fitted pre-period and the forecast period).
    ``status`` is ``error`` below :data:`~analysis.its.design.MIN_POINTS_PER_PHASE`,
    ``warning`` below :data:`~analysis.its.design.RECOMMENDED_POINTS_PER_PHASE`."""
    group = getattr(results, "group", None)
    if isinstance(results, ForecastResults):  # the post-period is forecast, not fitted
        counts = {"pre": int(np.sum(results.fit_mask)), "post": int(np.sum(results.post_mask))}
        starts = {"pre": None, "post": results.design.starts(results.time)[0]}
        time = results.time
    else:
        keep = results.fit_mask if group is None else results.fit_mask & (np.asarray(group) == 1)
        time = results.time[keep]
        o = ordinals(time)
        starts_ = results.design.starts(results.time)
        bounds = [-np.inf, *starts_.tolist(), np.inf]
        names = ["pre"] + (["post"] if len(starts_) == 1 else [f"post_{k + 1}" for k in range(len(starts_))])
        counts = {nm: int(((o >= lo) & (o < hi)).sum()) for nm, lo, hi in zip(names, bounds[:-1], bounds[1:])}
        starts = dict(zip(names, [None, *starts_.tolist()]))
    rows = []
    for phase, n in counts.items():
        status = "error" if n < MIN_POINTS_PER_PHASE else "warning" if n < RECOMMENDED_POINTS_PER_PHASE else "ok"
        start = starts[phase]
        rows.append(
            {"phase": phase, "starts": None if start is None else label(start, time), "n_points": n, "status": status}
        )
    return pd.DataFrame(rows)


# -- all together -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Diagnostics:
    """All diagnostics of one fit (read-only). ``problems()`` lists what needs attention;
    ``summary()`` says it in plain language; ``to_frame()`` is the tidy table of tests."""

    autocorrelation: pd.DataFrame = field(repr=False)
    ljung_box: pd.DataFrame = field(repr=False)
    durbin_watson: pd.DataFrame = field(repr=False)
    breusch_godfrey: pd.DataFrame = field(repr=False)
    overdispersion: pd.DataFrame = field(repr=False)
    influence: pd.DataFrame = field(repr=False)
    phases: pd.DataFrame = field(repr=False)
    alpha: float
    cov_type: str
    family: str
    summary_lags: tuple[int, ...]
    #: Whether the covariance allows for autocorrelated errors / extra-sampling variation.
    autocorrelation_aware: bool = False
    extra_variation_aware: bool = False
    notes: tuple[str, ...] = ()

    def problems(self) -> pd.DataFrame:
        """One row per problem: ``diagnostic``, ``severity`` (error, warning, note), ``message``."""
        rows: list[dict[str, str]] = []
        alpha = self.alpha
        for row in self.phases.itertuples():
            if row.status == "error":
                rows.append(
                    {
                        "diagnostic": "phase_sizes",
                        "severity": "error",
                        "message": f"only {row.n_points} point(s) in the {row.phase} phase: an interrupted time "
                        f"series needs at least {MIN_POINTS_PER_PHASE} in each phase",
                    }
                )
            elif row.status == "warning":
                rows.append(
                    {
                        "diagnostic": "phase_sizes",
                        "severity": "warning",
                        "message": f"only {row.n_points} points in the {row.phase} phase (fewer than "
                        f"{RECOMMENDED_POINTS_PER_PHASE}): trend and slope-change estimates are "
                        "unreliable",
                    }
                )
        lb = self.ljung_box[self.ljung_box["lag"].isin(self.summary_lags)] if len(self.ljung_box) else self.ljung_box
        if len(lb):
            # Bonferroni over the summary lags and the series; the design-based p-value where
            # there is one (see ljung_box), the chi-square one otherwise.
            p = lb["p_value_design"].fillna(lb["p_value"]).to_numpy()
            adjusted = np.minimum(1.0, p * len(lb))
            hits = lb.assign(adjusted=adjusted, p=p).query("adjusted < @alpha").sort_values("lag", kind="stable")
            if len(hits):
                hit = hits.iloc[0]
                where = "" if hit["series"] == "series" else f" in the {hit['series']} series"
                lag = int(hit["lag"])
                span = "at lag 1" if lag == 1 else f"over lags 1-{lag}"
                aware = self.autocorrelation_aware
                advice = (
                    f"the covariance ({self.cov_type!r}) already allows for it; check that its lag structure "
                    "is adequate"
                    if aware
                    else "use an autocorrelation-aware covariance (cov_type='latent-ar1' or 'newey-west')"
                )
                rows.append(
                    {
                        "diagnostic": "autocorrelation",
                        "severity": "note" if aware else "warning",
                        "message": f"residual autocorrelation {span}{where} (Ljung-Box "
                        f"p={_format_p(hit['p'])}): {advice}",
                    }
                )
        pearson = self.overdispersion[self.overdispersion["test"] == "pearson"]
        if len(pearson) and pearson["p_value"].iloc[0] < alpha:
            ratio, p = pearson["estimate"].iloc[0], pearson["p_value"].iloc[0]
            allowed = self.extra_variation_aware
            advice = (
                f"the covariance ({self.cov_type!r}) allows for extra variation"
                if allowed
                else "use cov_type='quasi' or 'latent-ar1' (or the negative binomial family)"
            )
            rows.append(
                {
                    "diagnostic": "overdispersion",
                    "severity": "note" if allowed else "warning",
                    "message": f"overdispersion (Pearson chi2/df = {ratio:.2f}, p={_format_p(p)}): {advice}",
                }
            )
        if len(self.influence) and self.influence["flagged"].any():
            n = len(self.influence)
            top = self.influence[self.influence["flagged"]].nlargest(5, "cooks_distance")
            time_column = self.influence.columns[0]
            listed = ", ".join(f"{t} ({d:.2f})" for t, d in zip(top[time_column], top["cooks_distance"]))
            more = int(self.influence["flagged"].sum()) - len(top)
            rows.append(
                {
                    "diagnostic": "influence",
                    "severity": "note",
                    "message": f"influential points (Cook's distance > 4/n = {COOKS_MULTIPLE / n:.3f}): {listed}"
                    + (f" and {more} more" if more > 0 else "")
                    + ": check them for data errors and refit without them as a sensitivity analysis",
                }
            )
        for note in self.notes:
            rows.append({"diagnostic": "design", "severity": "note", "message": note})
        return pd.DataFrame(rows, columns=["diagnostic", "severity", "message"])

    def summary(self) -> str:
        """The problems found, one per line, most severe first."""
        problems = self.problems()
        if problems.empty:
            return "No problems found."
        order = {"error": 0, "warning": 1, "note": 2}
        problems = problems.sort_values("severity", key=lambda s: s.map(order), kind="stable")
        return "\n".join(f"- [{p.severity}] {p.message}" for p in problems.itertuples())

    def to_frame(self) -> pd.DataFrame:
        """Tidy table of the tests: ``diagnostic``, ``series``, ``lag`` (or order),
        ``statistic``, ``df``, ``p_value``, ``estimate`` and ``flagged`` (p below ``alpha``;
        for influence, the number of flagged rows is the statistic)."""
        records: list[dict[str, object]] = []
        for row in self.ljung_box.itertuples():
            records.append(
                {
                    "diagnostic": "ljung_box",
                    "series": row.series,
                    "lag": row.lag,
                    "statistic": row.statistic,
                    "df": row.df,
                    "p_value": row.p_value,
                    "estimate": np.nan,
                }
            )
            records.append(
                {
                    "diagnostic": "ljung_box_design",
                    "series": row.series,
                    "lag": row.lag,
                    "statistic": row.statistic,
                    "df": np.nan,
                    "p_value": row.p_value_design,
                    "estimate": np.nan,
                }
            )
        for row in self.durbin_watson.itertuples():
            records.append(
                {
                    "diagnostic": "durbin_watson",
                    "series": row.series,
                    "lag": 1,
                    "statistic": row.statistic,
                    "df": np.nan,
                    "p_value": np.nan,
                    "estimate": row.implied_rho,
                }
            )
        for row in self.breusch_godfrey.itertuples():
            records.append(
                {
                    "diagnostic": "breusch_godfrey",
                    "series": "all",
                    "lag": row.order,
                    "statistic": row.lm,
                    "df": row.df,
                    "p_value": row.lm_p_value,
                    "estimate": np.nan,
                }
            )
            records.append(
                {
                    "diagnostic": "breusch_godfrey_f",
                    "series": "all",
                    "lag": row.order,
                    "statistic": row.f,
                    "df": row.df,
                    "p_value": row.f_p_value,
                    "estimate": np.nan,
                }
            )
        for row in self.overdispersion.itertuples():
            records.append(
                {
                    "diagnostic": row.test,
                    "series": "all",
                    "lag": np.nan,
                    "statistic": row.statistic,
                    "df": row.df,
                    "p_value": row.p_value,
                    "estimate": row.estimate,
                }
            )
        if len(self.influence):
            records.append(
                {
                    "diagnostic": "influence",
                    "series": "all",
                    "lag": np.nan,
                    "statistic": float(self.influence["flagged"].sum()),
                    "df": np.nan,
                    "p_value": np.nan,
                    "estimate": float(self.influence["cooks_distance"].max()),
                }
            )
        for row in self.phases.itertuples():
            records.append(
                {
                    "diagnostic": f"phase_{row.phase}",
                    "series": "treated" if row.phase != "pre" else "all",
                    "lag": np.nan,
                    "statistic": float(row.n_points),
                    "df": np.nan,
                    "p_value": np.nan,
                    "estimate": np.nan,
                }
            )
        frame = pd.DataFrame(records, columns=["diagnostic", "series", "lag", "statistic", "df", "p_value", "estimate"])
        frame["flagged"] = frame["p_value"] < self.alpha
        return frame


def _format_p(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def diagnose(
    results,
    *,
    max_lag: int | None = None,
    lb_lags: tuple[int, ...] | None = None,
    bg_orders: tuple[int, ...] = (1,),
    alpha: float = 0.05,
    n_sim: int = 1000,
    seed: int | None = 0,
) -> Diagnostics:
    """Run every diagnostic on a fitted ITS model.

    The plain-language summary judges residual autocorrelation by the Ljung-Box test at
    lag 1 and at the seasonal lag (12 for monthly series with at least 48 fitted points),
    with the design-based p-values of :func:`ljung_box`, Bonferroni-adjusted over those lags
    and the series, so that residuals of independent errors are flagged at most ``alpha``
    of the time; the full tables hold every lag and the chi-square p-values too.

    Examples
    --------
    >>> from analysis.its import ITSDesign, SegmentedRegression
    >>> rng = np.random.default_rng(2)
    >>> months = pd.period_range("2016-01", periods=96, freq="M")
    >>> design = ITSDesign(interruption="2021-01", seasonality="none", spring_festival=False, shocks=())
    >>> y = 10 + 0.05 * design.matrix(months)["time"] + rng.normal(0, 1, 96)
    >>> res = SegmentedRegression(y, time=months, design=design).fit(cov_type="model")
    >>> d = diagnose(res)
    >>> d.phases[["phase", "n_points"]].to_numpy().tolist()
    [['pre', 60], ['post', 36]]
    >>> bool(d.ljung_box.query("lag == 1")["p_value_design"].iloc[0] > 0.05)  # independent errors
    True
    """
    fit = _fitted(results)
    n = len(fit.pearson)
    notes: list[str] = []
    if fit.X is None:
        notes.append(fit.design_note)
    monthly = is_monthly(fit.time)
    summary_lags = (1, 12) if monthly and n >= 48 else (1,)
    lags = lb_lags
    if lags is None:
        lags = tuple(range(1, default_max_lag(n) + 1))
        lags = tuple(sorted(set(lags) | set(h for h in summary_lags if h < n)))
    bg = (
        breusch_godfrey(results, orders=bg_orders, _fit=fit)
        if fit.X is not None
        else pd.DataFrame(columns=["order", "lm", "lm_p_value", "f", "f_p_value", "df", "df_denominator", "n"])
    )
    infl = (
        influence(results, _fit=fit)
        if fit.X is not None
        else pd.DataFrame(columns=["time", "cooks_distance", "flagged"])
    )
    if results.family.has_sampling_variance and results.family.name == "poisson" and fit.X is None:
        over = pd.DataFrame(columns=["test", "statistic", "df", "p_value", "estimate", "alternative"])
    else:
        over = overdispersion(results, _fit=fit)
    # ITS results name the Pearson-scaled model-based covariance "model" (with its scale in
    # cov_details); the forecast names it "quasi".
    cov_type = str(results.cov_type)
    scale = results.cov_details.get("scale")
    pearson_scaled = cov_type == "quasi" or (
        cov_type == "model" and scale is not None and scale != 1.0 and results.family.has_sampling_variance
    )
    return Diagnostics(
        autocorrelation=residual_autocorrelation(results, max_lag=max_lag, _fit=fit),
        ljung_box=ljung_box(results, lags=lags, n_sim=n_sim, seed=seed, _fit=fit),
        durbin_watson=durbin_watson(results, _fit=fit),
        breusch_godfrey=bg,
        overdispersion=over,
        influence=infl,
        phases=phase_sizes(results),
        alpha=alpha,
        cov_type="quasi" if pearson_scaled else cov_type,
        family=getattr(results.family, "label", results.family.name),
        summary_lags=summary_lags,
        autocorrelation_aware=cov_type not in ("model", "quasi"),
        extra_variation_aware=pearson_scaled or cov_type not in ("model", "quasi"),
        notes=tuple(notes),
    )
