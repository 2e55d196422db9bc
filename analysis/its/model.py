"""Segmented regression for one series (or a treated series stacked with controls)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.its.covariance import FitContext, get_estimator
from analysis.its.design import RECOMMENDED_POINTS_PER_PHASE, DesignData, ITSDesign
from analysis.its.estimability import ModelError, check_mle_exists, check_residual_variation
from analysis.its.families import (
    Family,
    ThetaWarning,
    get_family,
    negbin_loglik,
    overdispersion_score,
    poisson_loglik,
    theta_ml,
)
from analysis.its.results import ITSResults
from analysis.its.timeaxis import as_time_index, ordinals


class ShortSeriesWarning(UserWarning):
    """A phase has fewer points than recommended for a reliable ITS."""


@dataclass(frozen=True)
class _GLMFit:
    """Coefficients of a converged fit with the family at the fitted ``theta``."""

    params: pd.Series
    family: Family
    converged: bool
    details: dict[str, float]


class SegmentedRegression:
    """Interrupted time-series model: a GLM with level and slope change terms.

    Parameters
    ----------
    outcome : array-like
        Event counts (binomial, Poisson, negative binomial) or values (Gaussian), one per row.
    time : array-like
        Time of each row: months (``pandas.Period``, ``YYYY-MM``) or integers. Increasing
        within each series; gaps are allowed and lags are counted in time units.
    design : ITSDesign
        The segmented-regression design.
    family : {"gaussian", "binomial", "poisson", "negbin", "quasibinomial", "quasipoisson"} or Family
        Outcome family with its link (identity, logit, log, log). ``negbin`` is the NB2
        negative binomial with its shape ``theta`` estimated by maximum likelihood as
        ``MASS::glm.nb`` does (or fixed: ``families.negative_binomial(theta=...)``). The
        quasi families fit as binomial / Poisson and default to the Pearson-scaled
        covariance (``cov_type="quasi"``), as R's ``quasibinomial`` / ``quasipoisson``.
    trials : array-like, optional
        Binomial denominators.
    exposure : array-like, optional
        Poisson or negative binomial exposure (the log offset), e.g. catheter-days or
        appointments; pass ones for counts modelled without an offset.
    group : array-like, optional
        Controlled ITS: 1 for rows of the treated series, 0 for control rows (stacked).
    series : array-like, optional
        Series label of each row when several series are stacked (default: ``group``).
    covariates : DataFrame, optional
        Time-varying confounders (bed numbers, case mix, temperature, a concurrent
        programme), one row per row of the data and one numeric column per covariate. Each
        is a term of the model named after its column, in every family and error
        structure; it is not switched off in the counterfactual (it is assumed not to be
        affected by the intervention), so level and slope changes are adjusted for it.

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
        time: pd.Index | list | np.ndarray,
        family: str | Family = "gaussian",
        trials: np.ndarray | pd.Series | None = None,
        exposure: np.ndarray | pd.Series | None = None,
        group: np.ndarray | pd.Series | None = None,
        series: np.ndarray | pd.Series | None = None,
        covariates: pd.DataFrame | None = None,
    ) -> None:
        self.time = as_time_index(time)
        self.outcome = np.asarray(outcome, dtype=float)
        self.design = design
        try:
            self.family = get_family(family)
        except ValueError as err:
            raise ModelError(str(err)) from None
        self.size = self._size(trials, exposure)
        self.group = None if group is None else np.asarray(group, dtype=float)
        labels = series if series is not None else self.group
        self.series = np.zeros(len(self.time), dtype=int) if labels is None else pd.factorize(np.asarray(labels))[0]
        self._validate()
        self.covariates = check_covariates(covariates, self.time)

    def _size(self, trials, exposure) -> np.ndarray | None:
        name = self.family.name
        if name == "binomial":
            if trials is None or exposure is not None:
                raise ModelError("a binomial model needs trials (the denominator) and no exposure")
            return np.asarray(trials, dtype=float)
        if name in ("poisson", "negbin"):
            what = "a Poisson" if name == "poisson" else "a negative binomial"
            if exposure is None or trials is not None:
                raise ModelError(
                    f"{what} model needs an exposure (the denominator, a log offset; "
                    "ones for plain counts) and no trials"
                )
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
            warnings.warn(
                f"only {n_pre} pre- and {n_post} post-interruption points: estimates of slope "
                f"changes are unreliable with fewer than {RECOMMENDED_POINTS_PER_PHASE} per phase",
                ShortSeriesWarning,
                stacklevel=3,
            )
        # Every column is a function of its own row's time, so the fitted rows are a slice of
        # the matrix for all rows, which the results reuse for effects and predictions.
        X_all = self.design.matrix(self.time, group=self.group)
        if self.covariates is not None:
            clash = sorted(set(self.covariates.columns) & set(X_all.columns))
            if clash:
                raise ModelError(f"covariate name(s) {clash} are already terms of the design; rename the column(s)")
            X_all = pd.concat([X_all, self.covariates], axis=1)
        X = X_all.loc[fit_mask]
        X = X.loc[:, _estimable_columns(X)]
        _check_identified(X, covariates=[] if self.covariates is None else list(self.covariates.columns))
        size = None if self.size is None else self.size[fit_mask]
        return DesignData(X, self.outcome[fit_mask], size, time, self.series[fit_mask], fit_mask, n_pre, n_post, X_all)

    def fit(
        self,
        *,
        cov_type: str | None = None,
        lagged_residual: bool = False,
        errors: str | None = None,
        **cov_config: object,
    ) -> ITSResults:
        """Fit by maximum likelihood (IRLS) and estimate the covariance.

        Parameters
        ----------
        cov_type : {"latent-ar1", "newey-west", "model", "quasi"}, optional
            Covariance estimator (see :mod:`analysis.its.covariance`). Default: ``quasi``
            for the quasi families, ``latent-ar1`` otherwise.
        lagged_residual : bool
            Adjust for residual autocorrelation as Bryant et al. (Lancet Infect Dis 2022;
            R code in github.com/OliviaKBryant/antibiotic_prescribing_covid_ITS,
            ``ITS_analysis.R``): fit once, take that fit's deviance residuals, add them
            lagged by one fitted row as the covariate ``lagged_residual`` and refit. The
            first fitted row of each series has no lag and is left out of the refit (their
            ``dplyr::lag`` gives NA there and ``glm.nb`` drops it); across an excluded
            period the lag is the last fitted period's residual, as in their model without
            April 2020. The covariate is not an intervention term: the counterfactual keeps
            it, and predictions and effects are evaluated at ``lagged_residual = 0``.
        errors : {"prais-winsten", "cochrane-orcutt", "reml-ar", "arima"}, optional
            Gaussian models only: estimate the coefficients by regression with
            autocorrelated errors instead (see :mod:`analysis.its.autoregressive`); the
            options go in ``**cov_config`` (e.g. ``order=1``, ``df_method=...``).
        **cov_config
            Options of the estimator, e.g. ``lags=3`` for Newey-West.

        Notes
        -----
        For ``negbin`` the estimate of ``theta`` and its standard error are reported in
        ``cov_details`` (``theta``, ``theta_se``) and carried by ``results.family``; the
        ``model`` covariance is the GLM covariance at that ``theta`` with dispersion 1,
        as ``vcov()`` of R's ``glm.nb``.
        """
        if errors is not None:
            if cov_type is not None or lagged_residual:
                raise ModelError("errors= chooses the estimator; it does not combine with cov_type or lagged_residual")
            from analysis.its.autoregressive import fit_autoregressive

            return fit_autoregressive(self, method=errors, **cov_config)
        estimator = get_estimator(self.family.default_cov_type if cov_type is None else cov_type, **cov_config)
        data = self.design_data()
        fit = self._glm(data)
        if lagged_residual:
            first = fit.family
            eta = data.X.to_numpy() @ fit.params.to_numpy()
            residuals = first.deviance_residuals(data.y, first.mean_counts(eta, data.size), data.size)
            data = self.add_lagged_residual(data, residuals)
            fit = self._glm(data)
        X, y, size, family = data.X, data.y, data.size, fit.family
        params = fit.params
        eta = X.to_numpy() @ params.to_numpy()
        info = family.information(eta, size)
        mean = family.mean_counts(eta, size)
        context = FitContext(
            X=X.to_numpy(),
            weights=info,
            resid=(y - mean) / family.mean_derivative(eta, size),
            time=ordinals(data.time),
            sampling=family.has_sampling_variance,
            series=data.series,
        )
        cov = estimator.estimate(context)
        return ITSResults(
            params=params,
            cov=pd.DataFrame(cov.cov, index=X.columns, columns=X.columns),
            df_resid=cov.df,
            cov_type=cov.name,
            cov_details={**cov.details, **fit.details},
            family=family,
            design=self.design,
            time=self.time,
            fit_mask=data.fit_mask,
            outcome=self.outcome,
            size=self.size,
            group=self.group,
            n_pre=data.n_pre,
            n_post=data.n_post,
            converged=fit.converged,
            pearson_dispersion=float(np.sum(info * context.resid**2) / context.df_resid),
            residuals=pd.Series(context.resid * np.sqrt(info), index=data.time, name="pearson"),
            contrast_df=cov.df_function,
            fitted_X=X,
            all_rows=data.all_rows,
        )

    def add_lagged_residual(self, data: DesignData, residuals: np.ndarray) -> DesignData:
        """``data`` with the previous fitted row's residual as the covariate ``lagged_residual``.

        Lags are taken within each series over the fitted rows; the first fitted row of
        each series has none and is dropped (see :meth:`fit`, ``lagged_residual``).
        """
        residuals = np.asarray(residuals, dtype=float)
        if residuals.shape != data.y.shape:
            raise ModelError(f"{residuals.shape[0]} residuals for {data.y.shape[0]} fitted rows")
        if "lagged_residual" in data.X.columns:
            raise ModelError("the design already has a lagged_residual column")
        lagged = np.full(len(residuals), np.nan)
        for code in np.unique(data.series):
            rows = np.flatnonzero(data.series == code)  # in time order within a series
            lagged[rows[1:]] = residuals[rows[:-1]]
        keep = ~np.isnan(lagged)
        fit_mask = data.fit_mask.copy()
        fit_mask[np.flatnonzero(fit_mask)[~keep]] = False
        treated = np.ones(len(keep), dtype=bool) if self.group is None else self.group[data.fit_mask] == 1
        pre = self.design.time_since(data.time, 0) < 0
        return DesignData(
            X=data.X.assign(lagged_residual=lagged).loc[keep],
            y=data.y[keep],
            size=None if data.size is None else data.size[keep],
            time=data.time[keep],
            series=data.series[keep],
            fit_mask=fit_mask,
            n_pre=int(np.sum(keep & treated & pre)),
            n_post=int(np.sum(keep & treated & ~pre)),
            all_rows=data.all_rows,
        )

    def _glm(self, data: DesignData) -> _GLMFit:
        return fit_glm(data, self.family)


def fit_glm(data: DesignData, family: Family) -> _GLMFit:
    """Maximum-likelihood fit of ``family`` to the rows of ``data`` (the negative binomial
    ``theta`` by maximum likelihood when the family does not fix it)."""
    check_mle_exists(data.X, data.y, data.size, family, time=data.time)
    if family.name == "negbin" and family.theta is None:
        return _negbin_glm(data, family)
    result = _irls(data, family)
    details = {"theta": family.theta} if family.name == "negbin" else {}
    return _GLMFit(pd.Series(result.params, index=data.X.columns), family, True, details)


@dataclass(frozen=True)
class _IRLSResult:
    params: np.ndarray
    fittedvalues: np.ndarray  # expected outcome on the data scale (counts for count families)
    iterations: int


#: Convergence of IRLS: the largest change of a coefficient relative to its size, or the
#: change of the deviance relative to its size (R's criterion, with R's 1e-8 tightened).
_IRLS_TOLERANCE = 1e-10
_DEVIANCE_TOLERANCE = 1e-12
_IRLS_MAX_ITER = 100


def _irls(data: DesignData, family: Family, start: np.ndarray | None = None) -> _IRLSResult:
    """Maximum likelihood by iteratively reweighted least squares.

    Written out rather than calling ``statsmodels.GLM(...).fit()``: the evaluation fits a
    thousand small models, and statsmodels' model set-up and convergence bookkeeping cost
    about ten times the arithmetic. The iteration is the textbook one (McCullagh & Nelder
    1989, section 2.5): working response ``z = eta + (y - mu) / (dmu/deta)`` and weights
    ``(dmu/deta)^2 / Var(y)`` from :meth:`Family.information`, each step a weighted least
    squares fit solved by ``lstsq``; it stops when no coefficient changes by more than
    1e-10 of its size or the deviance by more than 1e-12 of its size (R and statsmodels
    use 1e-8 on the deviance), so the estimates agree with theirs (``tests/its/test_model.py`` compares with
    statsmodels for every family, the validation tests with R and Stata).
    """
    X = data.X.to_numpy(dtype=float)
    y = np.asarray(data.y, dtype=float)
    size = None if data.size is None else np.asarray(data.size, dtype=float)
    if start is not None:
        eta = X @ np.asarray(start, dtype=float)
    elif family.name == "gaussian":
        eta = y.copy()
    elif family.name == "binomial":
        p0 = (y + 0.5) / (size + 1.0)
        eta = np.log(p0 / (1 - p0))
    else:  # log link: a rate (counts per unit of exposure) or a mean count
        eta = np.log((y + 0.5) / (size if size is not None else 1.0))
    beta = np.full(X.shape[1], np.nan)
    deviance = np.inf
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        for iteration in range(1, _IRLS_MAX_ITER + 1):  # noqa: B007 (returned: the iterations taken)
            mean = family.mean_counts(eta, size)
            weight = family.information(eta, size)
            working = eta + (y - mean) / family.mean_derivative(eta, size)
            root = np.sqrt(weight)
            if not (np.all(np.isfinite(root)) and np.all(np.isfinite(working))):
                raise ModelError(
                    "the model cannot be estimated: the fit diverged (fitted values reached 0 "
                    "or the boundary; a phase may have no events)"
                )
            try:
                new = np.linalg.lstsq(X * root[:, None], working * root, rcond=None)[0]
            except np.linalg.LinAlgError as err:
                raise ModelError(f"the model cannot be estimated: {err}") from err
            change = np.max(np.abs(new - beta) / (np.abs(new) + 0.1)) if np.all(np.isfinite(beta)) else np.inf
            beta, eta = new, X @ new
            previous, deviance = (
                deviance,
                float(np.sum(family.deviance_residuals(y, family.mean_counts(eta, size), size) ** 2)),
            )
            # The deviance settles even when a coefficient drifts off to minus infinity (a
            # shock month with no events: its fitted count tends to 0), as in R and statsmodels.
            if (
                family.name == "gaussian"
                or change < _IRLS_TOLERANCE
                or abs(deviance - previous) / (abs(deviance) + 0.1) < _DEVIANCE_TOLERANCE
            ):
                break
        else:
            raise ModelError(f"the maximum-likelihood fit did not converge in {_IRLS_MAX_ITER} iterations")
    mean = family.mean_counts(eta, size)
    check_residual_variation(y, mean, family)
    return _IRLSResult(beta, mean, iteration)


def _negbin_glm(data: DesignData, base: Family, *, maxit: int = 25, epsilon: float = 1e-8) -> _GLMFit:
    """NB2 regression with ``theta`` by maximum likelihood, alternating as ``MASS::glm.nb``:
    a Poisson fit; ``theta.ml`` given its means; then, until the log-likelihood and
    ``theta`` settle (R's criterion and limits), IRLS for the coefficients at the current
    ``theta`` and ``theta.ml`` again. As in R, ``theta.ml`` is given the means of the
    previous step, one step behind the coefficients; at convergence the difference is
    below the tolerance, and the estimates agree with R's to it."""
    y = data.y
    poisson = get_family("poisson")
    result = _irls(data, poisson)
    mean = result.fittedvalues
    if overdispersion_score(y, mean) <= 0:
        # No overdispersion: the likelihood is maximised at theta = infinity, which Newton
        # steps on theta cannot reach. R's theta.ml iterates towards it until its limit (or
        # overshoots below zero), and where it stops depends on the last bits of the
        # arithmetic. The boundary is decided here from the sign of the profile score,
        # before any iteration, so the outcome is the same on every machine: the Poisson
        # fit, flagged as not converged.
        warnings.warn(
            "negative binomial fit: the counts show no overdispersion (sum((y - mu)^2 - y) <= 0 at "
            "the Poisson fit), so theta's maximum-likelihood estimate is infinite (theta.ml would "
            "reach its iteration limit); the Poisson fit is used",
            ThetaWarning,
            stacklevel=3,
        )
        details = {"theta": np.inf, "theta_se": np.nan, "loglik": poisson_loglik(y, mean)}
        return _GLMFit(pd.Series(result.params, index=data.X.columns), poisson, False, details)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ThetaWarning)
        theta, theta_se = theta_ml(y, mean, limit=maxit)
        family = base.with_theta(theta)
        d1 = np.sqrt(2 * max(1, data.X.shape[0] - data.X.shape[1]))
        loglik = negbin_loglik(y, mean, theta)
        loglik_old, change, iteration = loglik + 2 * d1, 1.0, 0
        while (iteration := iteration + 1) <= maxit and abs(loglik_old - loglik) / d1 + abs(change) > epsilon:
            result = _irls(data, family, start=result.params)
            previous = theta
            theta, theta_se = theta_ml(y, mean, limit=maxit)
            family = base.with_theta(theta)
            mean = result.fittedvalues
            change = previous - theta
            loglik_old, loglik = loglik, negbin_loglik(y, mean, theta)
    for warning in {str(w.message): w for w in caught}.values():
        warnings.warn(warning.message, warning.category, stacklevel=4)
    converged = iteration <= maxit and not any(issubclass(w.category, ThetaWarning) for w in caught)
    if iteration > maxit:
        warnings.warn(f"negative binomial fit: alternation limit of {maxit} reached", ThetaWarning, stacklevel=4)
    details = {"theta": theta, "theta_se": theta_se, "loglik": loglik}
    return _GLMFit(pd.Series(result.params, index=data.X.columns), family, converged, details)


def check_covariates(
    covariates: pd.DataFrame | pd.Series | None, time: pd.Index, *, row_numbers: Sequence[int] | None = None
) -> pd.DataFrame | None:
    """Covariates as a float frame on ``time``, or an error naming the column and rows.

    Refused: a length other than the data's; missing or non-numeric values (the rows are
    named, 1-based in the data's order or as ``row_numbers`` gives them, e.g. a file's
    lines: nothing is dropped or imputed); a constant column (it is collinear with the
    intercept).

    Examples
    --------
    >>> t = pd.period_range("2020-01", periods=4, freq="M")
    >>> check_covariates(pd.DataFrame({"beds": [10, 11, 12, 12]}), t)["beds"].tolist()
    [10.0, 11.0, 12.0, 12.0]
    >>> check_covariates(pd.DataFrame({"beds": [10, None, 12, "x"]}), t)
    Traceback (most recent call last):
    ...
    analysis.its.estimability.ModelError: covariate 'beds' has missing or non-numeric values in rows [2, 4]
    """
    if covariates is None:
        return None
    if isinstance(covariates, pd.Series):
        covariates = covariates.to_frame()
    if not isinstance(covariates, pd.DataFrame):
        raise ModelError("covariates must be a DataFrame with one named column per covariate")
    if len(covariates) != len(time):
        raise ModelError(f"covariates have {len(covariates)} rows, time has {len(time)}")
    columns = {}
    for name in covariates.columns:
        values = pd.to_numeric(covariates[name], errors="coerce").to_numpy(dtype=float)
        bad = np.flatnonzero(~np.isfinite(values))
        if len(bad):
            rows = np.arange(1, len(values) + 1) if row_numbers is None else np.asarray(row_numbers)
            raise ModelError(
                f"covariate {str(name)!r} has missing or non-numeric values in rows "
                f"{[int(i) for i in rows[bad[:10]]]}{' ...' if len(bad) > 10 else ''}"
            )
        if np.ptp(values) == 0:
            raise ModelError(
                f"covariate {str(name)!r} is constant ({values[0]:g}): it cannot be told apart "
                "from the intercept; leave it out"
            )
        columns[str(name)] = values
    return pd.DataFrame(columns, index=time)


def _check_identified(X: pd.DataFrame, *, covariates: list[str] = ()) -> None:
    """Refuse a design whose columns are linearly dependent, naming a remedy."""
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < X.shape[1] and covariates:
        others = X.drop(columns=list(covariates))
        if np.linalg.matrix_rank(others.to_numpy()) == others.shape[1]:
            raise ModelError(
                f"the covariate(s) {list(covariates)} are collinear with the design (a linear "
                "combination of the trend, the intervention terms, the calendar terms or each "
                "other): the coefficients are not identified; leave out or replace the covariate"
            )
    if rank < X.shape[1]:
        hint = (
            " (month dummies are not identified with the trend and the changes when each phase is "
            "about a year long: use seasonality='fourier:K' or 'none')"
            if any(c.startswith(("month_", "season_")) for c in X.columns)
            else ""
        )
        raise ModelError(
            f"the design has {X.shape[1]} columns but rank {rank}: the coefficients are not identified{hint}"
        )


def _estimable_columns(X: pd.DataFrame) -> list[str]:
    """Drop calendar columns that are constant zero in the fitted rows (e.g. a month
    absent from a short series); intervention and trend columns are always kept."""
    nonzero = np.any(X.to_numpy() != 0, axis=0)
    optional = X.columns.str.startswith(("month_", "season_", "shock_", "spring_festival"))
    return list(X.columns[nonzero | ~optional])
