"""Multilevel interrupted time series: all provinces of one indicator in one model.

The second route to a national effect, beside the meta-analysis of per-province ITS fits
(:func:`analysis.synthesis.national.national_effects`). One linear mixed model is fitted to
the monthly series of every province on the model scale::

    y_it = (b0 + u0_i) + (b1 + u1_i) time_it + (L + uL_i) level_change_it
           + (S + uS_i) slope_change_it + season_t + c_sf SF_t + shocks_t + e_it

with the same design as the per-province fits (``EvaluationSettings.design(start_i)``: time
counted from each province's own start month, its wash-in months left out, level and slope
change columns as :class:`analysis.its.design.ITSDesign` builds them). The province
deviations ``u_i`` are normal with an unstructured (or diagonal) covariance, so baselines,
pre-trends and plan effects are partially pooled. ``L`` and ``S`` are the national (mean)
level and slope changes, the counterparts of the random-effects pooled estimates.

Scale
-----
Proportions are modelled as the empirical logit ``log((x + 0.5) / (n - x + 0.5))``, rates
as the log rate ``log((x + 0.5) / exposure)`` and means as the value, so coefficients are
on the per-province models' link scales (logit, log, identity). The 0.5 keeps months with
zero events finite; with small counts it pulls the logit towards 0 and the level and slope
changes slightly towards 0 as well (check rare indicators against the per-province GLMs).

Effect at the evaluation month
------------------------------
Each province is ``k_i = evaluation - start_i (+ first_post_time)`` months into the plan at
the evaluation month, so the national effect there is ``L + S * mean(k_i)``: the average of
the provinces' expected effects. It is reported on the model scale and, for log and logit
scales, as ``exp(.) - 1`` (a rate ratio for rates, an odds ratio for proportions: for common
outcomes the odds ratio is further from 1 than the risk ratio that the per-province fits
report, so only rates' relative effects are compared with the meta-analysis).

What the model does not do
--------------------------
* Residual autocorrelation within a province is not modelled: residuals are independent
  given the random effects. Monthly series are positively autocorrelated, so model-based
  standard errors of the fixed effects are too small, most of all for the slope change.
  The default ``cov_type="cluster"`` uses the cluster-robust (sandwich) covariance with the
  provinces as clusters, the GLS weights of the fitted model, a ``G / (G - 1)`` correction
  and t(G - 1) intervals (Liang & Zeger 1986; Cameron & Miller 2015, J Hum Resour 50:317),
  which stays valid whatever the within-province correlation. ``cov_type="model"`` gives
  MixedLM's own standard errors with normal intervals, for comparison.
* The residual variance is common to all provinces; sampling variance that differs
  between small and large provinces is not weighted for (cluster-robust SEs keep the
  inference honest; efficiency is lost).
* Seasonality, the Spring Festival and COVID-shock terms are national (fixed), whereas the
  per-province fits estimate them province by province.
* The DRG/DIP reform and other co-interventions are not modelled, as in the per-province fits.
* Nothing is modelled on the count scale (no overdispersion or binomial likelihood): this
  is a linear mixed model of a transformed outcome.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import statsmodels.api as sm
from statsmodels.regression.mixed_linear_model import MixedLMParams, MixedLMResults
from statsmodels.tools.sm_exceptions import ConvergenceWarning, SingularMatrixWarning

from analysis.evaluation.settings import EvaluationSettings
from analysis.its import effects
from analysis.registry import get_indicator

__all__ = [
    "COMPARISON_COLUMNS",
    "EFFECT_COLUMNS",
    "RANDOM_TERMS",
    "PanelModelResults",
    "PanelModelTable",
    "compare_with_meta",
    "fit_panel_model",
    "model_scale_outcome",
    "panel_model_frame",
]

#: Design columns that get a province-level random effect by default.
RANDOM_TERMS: tuple[str, ...] = ("const", "time", "level_change", "slope_change")
#: Columns of :meth:`PanelModelResults.effects`.
EFFECT_COLUMNS = [
    "indicator",
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
    "df",
    "cov_type",
    "n_provinces",
]
#: Columns of :func:`compare_with_meta`.
COMPARISON_COLUMNS = [
    "indicator",
    "measure",
    "scale",
    "panel_estimate",
    "panel_ci_low",
    "panel_ci_high",
    "meta_estimate",
    "meta_ci_low",
    "meta_ci_high",
    "difference",
    "n_provinces",
    "meta_k",
]

_LINK = {"proportion": "logit", "rate": "log", "mean": "identity"}
# Time-valued columns are fitted in years so that the random-effect variances are of
# similar size (MixedLM optimises a Cholesky factor; months make the slope variance ~1e-5
# of the intercept's and the optimiser stalls); results are reported per month.
_PER_YEAR = ("time", "slope_change")


def model_scale_outcome(series: pd.DataFrame, measure: str) -> np.ndarray:
    """Monthly outcome on the model scale: empirical logit, log rate or the value.

    Months without a usable value (missing, zero or negative denominator, numerator above
    the denominator) are NaN.

    Examples
    --------
    >>> frame = pd.DataFrame({"numerator": [0, 5, 10], "denominator": [10, 10, 10]})
    >>> model_scale_outcome(frame, "proportion").round(3).tolist()
    [-3.045, 0.0, 3.045]
    >>> model_scale_outcome(frame, "rate").round(3).tolist()
    [-2.996, -0.598, 0.049]
    """
    if measure == "mean":
        return pd.to_numeric(series["value"], errors="coerce").to_numpy(dtype=float)
    num = pd.to_numeric(series["numerator"], errors="coerce").to_numpy(dtype=float)
    den = pd.to_numeric(series["denominator"], errors="coerce").to_numpy(dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if measure == "proportion":
            ok = (den > 0) & (num >= 0) & (num <= den)
            y = np.log((num + 0.5) / (den - num + 0.5))
        elif measure == "rate":
            ok = (den > 0) & (num >= 0)
            y = np.log((num + 0.5) / den)
        else:
            raise ValueError(f"measure must be 'proportion', 'rate' or 'mean', not {measure!r}")
    return np.where(ok, y, np.nan)


@dataclass(frozen=True, eq=False)
class PanelModelResults:
    """A fitted multilevel ITS for one indicator (read-only).

    Attributes
    ----------
    indicator : int
    scale : str
        ``logit``, ``log`` or ``identity``.
    params : pandas.Series
        Fixed effects (national), per month for ``time`` and ``slope_change``.
    cov : pandas.DataFrame
        Their covariance (``cov_type``).
    cov_type : str
        ``cluster`` (by province) or ``model``.
    df : float
        Degrees of freedom of the t reference: ``n_provinces - 1`` for ``cluster``, inf
        (normal) for ``model``.
    random_cov : pandas.DataFrame
        Covariance of the province deviations (per month for time-valued terms).
    residual_sd : float
        Standard deviation of the month-level residual.
    months_to_evaluation : float
        Mean over provinces of the slope-change value at the evaluation month.
    evaluation_month : str
    n_provinces, n_obs : int
    converged : bool
    level : float
    provinces : tuple of str
    """

    indicator: int
    scale: str
    params: pd.Series
    cov: pd.DataFrame
    cov_type: str
    df: float
    random_cov: pd.DataFrame
    residual_sd: float
    months_to_evaluation: float
    evaluation_month: str
    n_provinces: int
    n_obs: int
    converged: bool
    level: float
    provinces: tuple[str, ...]

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the fixed effects (``cov_type``)."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index, name="se")

    def effects(self, *, level: float | None = None) -> pd.DataFrame:
        """National plan effects, one row per measure (columns :data:`EFFECT_COLUMNS`).

        ``level_change`` and ``slope_change`` (per month) on the model scale;
        ``effect_end_absolute`` for means (display units) or ``effect_end_link`` (logit or
        log scale) at the evaluation month; for log and logit scales also the ratio - 1 at
        the evaluation month, ``effect_end_relative`` (rate ratio) or
        ``effect_end_odds_ratio``.
        """
        level = self.level if level is None else level
        names = list(self.params.index)
        beta, cov = self.params.to_numpy(), self.cov.to_numpy()

        def gradient(**weights: float) -> np.ndarray:
            g = np.zeros(len(names))
            for name, weight in weights.items():
                g[names.index(name)] = weight
            return g

        rows = []
        for name in ("level_change", "slope_change"):
            g = gradient(**{name: 1.0})
            rows.append(effects.linear(name, float(g @ beta), g, cov, df=self.df, level=level, scale=self.scale))
        g = gradient(level_change=1.0, slope_change=self.months_to_evaluation)
        value = float(g @ beta)
        if self.scale == "identity":
            rows.append(
                effects.linear(
                    "effect_end_absolute",
                    value,
                    g,
                    cov,
                    df=self.df,
                    level=level,
                    scale=get_indicator(self.indicator).unit,
                )
            )
        else:
            rows.append(effects.linear("effect_end_link", value, g, cov, df=self.df, level=level, scale=self.scale))
            ratio = effects.ratio_minus_one("effect_end_relative", value, g, cov, df=self.df, level=level)
            if self.scale == "logit":
                ratio = replace(ratio, measure="effect_end_odds_ratio", scale="odds ratio - 1")
            else:
                ratio = replace(ratio, scale="rate ratio - 1")
            rows.append(ratio)
        table = effects.contrasts_frame(rows)
        table.insert(0, "indicator", self.indicator)
        table["cov_type"] = self.cov_type
        table["n_provinces"] = self.n_provinces
        return table[EFFECT_COLUMNS]

    def random_effects(self) -> pd.DataFrame:
        """Standard deviation of the province deviations, one row per random term.

        Columns: ``indicator``, ``term``, ``sd`` (per month for ``time`` and
        ``slope_change``), ``scale``; the last row, ``residual``, is the month-level SD.
        """
        sd = np.sqrt(np.clip(np.diag(self.random_cov.to_numpy()), 0, None))
        terms = [*self.random_cov.index, "residual"]
        return pd.DataFrame(
            {"indicator": self.indicator, "term": terms, "sd": [*sd, self.residual_sd], "scale": self.scale}
        )

    def _repr_html_(self) -> str:
        return self.effects()._repr_html_()


@dataclass(frozen=True)
class PanelModelTable:
    """Multilevel fits of many indicators: tidy tables, failures reported, not raised."""

    effects: pd.DataFrame
    random_effects: pd.DataFrame
    failures: pd.DataFrame


def fit_panel_model(
    panel: pd.DataFrame,
    *,
    indicator: int,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    random_terms: Sequence[str] = RANDOM_TERMS,
    re_cov: str = "unstructured",
    cov_type: str = "cluster",
    level: float | None = None,
) -> PanelModelResults:
    """Fit the multilevel ITS of one indicator over all provinces in ``panel``.

    Parameters
    ----------
    panel : pandas.DataFrame
        Canonical long panel (``province``, ``indicator``, ``month``, ``numerator``,
        ``denominator``, ``value``); other indicators are ignored.
    indicator : int
        Annex number; its registry measure sets the scale.
    starts : mapping
        Plan start month per province code.
    settings : EvaluationSettings, optional
        Wash-in, seasonality, shocks, evaluation month and level, as in the per-province fits.
    random_terms : sequence of str
        Design columns with a province random effect. An empty sequence fits pooled OLS
        (no partial pooling; still with cluster-robust standard errors).
    re_cov : {"unstructured", "diagonal"}
        Covariance of the random effects.
    cov_type : {"cluster", "model"}
        Cluster-robust by province (default; see the module docstring) or model-based.
    level : float, optional
        Confidence level (default: ``settings.level``).

    Returns
    -------
    PanelModelResults

    Raises
    ------
    ValueError
        If the indicator is not in ``panel``, a province has no start month, an option is
        invalid, or the stacked design is rank deficient.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(5, provinces=["110000", "120000", "130000", "140000", "150000"], indicators=[33])
    >>> starts = {p: pd.Period(m, "M") for p, m in data.plan_dates.itertuples(index=False)}
    >>> res = fit_panel_model(data.panel, indicator=33, starts=starts, random_terms=("const", "time"))
    >>> res.effects()["measure"].tolist()
    ['level_change', 'slope_change', 'effect_end_absolute']
    >>> res.n_provinces, res.cov_type, res.df
    (5, 'cluster', 4.0)
    """
    if settings is None:
        settings = EvaluationSettings()
    level = settings.level if level is None else level
    if re_cov not in ("unstructured", "diagonal"):
        raise ValueError(f"re_cov must be 'unstructured' or 'diagonal', not {re_cov!r}")
    if cov_type not in ("cluster", "model"):
        raise ValueError(f"cov_type must be 'cluster' or 'model', not {cov_type!r}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), not {level!r}")
    random_terms = list(random_terms)
    if cov_type == "model" and not random_terms:
        raise ValueError("cov_type='model' needs random effects; use 'cluster' for pooled OLS")
    number = int(indicator)
    measure = get_indicator(number).measure
    if measure not in _LINK:
        raise ValueError(f"indicator {number} is a status item, not a monthly series")

    X, y, groups, months_to_end = _stack(panel, number=number, measure=measure, starts=starts, settings=settings)
    unknown = [t for t in random_terms if t not in X.columns]
    if unknown:
        raise ValueError(f"random terms {unknown} are not design columns {list(X.columns)}")
    scale = np.array([12.0 if c in _PER_YEAR else 1.0 for c in X.columns])
    Xs = X / scale  # time-valued columns in years
    provinces = tuple(pd.unique(groups))
    n_groups = len(provinces)
    if cov_type == "cluster" and n_groups < 2:
        raise ValueError("cluster-robust standard errors need at least two provinces")

    if random_terms:
        Z = Xs[random_terms]
        model = sm.MixedLM(y, Xs, groups=groups, exog_re=Z)
        free = None
        if re_cov == "diagonal":
            free = MixedLMParams.from_components(np.ones(Xs.shape[1]), np.eye(len(random_terms)))
        fit = _fit_mixed(model, free=free)
        beta = fit.fe_params.to_numpy()
        psi = np.asarray(fit.cov_re)
        sigma2 = float(fit.scale)
        converged = bool(fit.converged)
        model_cov = np.asarray(fit.cov_params())[: Xs.shape[1], : Xs.shape[1]]
    else:
        fit = sm.OLS(y, Xs).fit()
        beta = fit.params.to_numpy()
        psi = np.zeros((0, 0))
        sigma2 = float(fit.scale)
        converged = True
        model_cov = np.asarray(fit.cov_params())

    if cov_type == "cluster":
        cov = _cluster_covariance(Xs.to_numpy(), y, groups, beta, Xs[random_terms].to_numpy(), psi, sigma2)
        df = float(n_groups - 1)
    else:
        cov, df = model_cov, np.inf

    # Back to per-month units: beta_month = beta_year / 12 for time-valued columns.
    params = pd.Series(beta / scale, index=X.columns, name="estimate")
    cov = pd.DataFrame(cov / np.outer(scale, scale), index=X.columns, columns=X.columns)
    z_scale = np.array([12.0 if c in _PER_YEAR else 1.0 for c in random_terms])
    random_cov = pd.DataFrame(
        psi / np.outer(z_scale, z_scale) if random_terms else psi, index=random_terms, columns=random_terms
    )
    return PanelModelResults(
        indicator=number,
        scale=_LINK[measure],
        params=params,
        cov=cov,
        cov_type=cov_type,
        df=df,
        random_cov=random_cov,
        residual_sd=float(np.sqrt(sigma2)),
        months_to_evaluation=float(np.mean(list(months_to_end.values()))),
        evaluation_month=str(settings.evaluation_month),
        n_provinces=n_groups,
        n_obs=int(len(y)),
        converged=converged,
        level=float(level),
        provinces=provinces,
    )


def panel_model_frame(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    indicators: Sequence[int] | None = None,
    **options,
) -> PanelModelTable:
    """Fit :func:`fit_panel_model` to each indicator; one failing indicator never stops the others.

    ``options`` are passed on (``random_terms``, ``re_cov``, ``cov_type``, ``level``).
    Returns the stacked ``effects`` and ``random_effects`` tables and ``failures``
    (``indicator``, ``error``, ``message``).
    """
    numbers = sorted(pd.unique(panel["indicator"]).tolist()) if indicators is None else list(indicators)
    effect_parts, random_parts, failures = [], [], []
    for number in numbers:
        try:
            res = fit_panel_model(panel, indicator=int(number), starts=starts, settings=settings, **options)
        except Exception as error:  # one failing indicator must not stop the others: it is reported
            failures.append({"indicator": int(number), "error": type(error).__name__, "message": str(error)})
            continue
        effect_parts.append(res.effects())
        random_parts.append(res.random_effects())
    return PanelModelTable(
        effects=pd.concat(effect_parts, ignore_index=True) if effect_parts else pd.DataFrame(columns=EFFECT_COLUMNS),
        random_effects=(
            pd.concat(random_parts, ignore_index=True)
            if random_parts
            else pd.DataFrame(columns=["indicator", "term", "sd", "scale"])
        ),
        failures=pd.DataFrame(failures, columns=["indicator", "error", "message"]),
    )


def compare_with_meta(panel_effects: pd.DataFrame, national: pd.DataFrame) -> pd.DataFrame:
    """Put the multilevel estimates beside the meta-analysis of per-province fits.

    Parameters
    ----------
    panel_effects : pandas.DataFrame
        :meth:`PanelModelResults.effects` (or ``PanelModelTable.effects``).
    national : pandas.DataFrame
        :func:`analysis.synthesis.national.national_effects` of the per-province effects.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COMPARISON_COLUMNS`, one row per indicator and measure estimated on
        the same scale by both routes: ``level_change`` and ``slope_change`` (model scale),
        ``effect_end_relative`` for rates (rate ratio - 1) and ``effect_end_absolute`` for
        means. ``difference`` is panel minus meta.
    """
    panel = panel_effects.rename(
        columns={"estimate": "panel_estimate", "ci_low": "panel_ci_low", "ci_high": "panel_ci_high"}
    )
    meta = national.rename(
        columns={"estimate": "meta_estimate", "ci_low": "meta_ci_low", "ci_high": "meta_ci_high", "k": "meta_k"}
    )
    merged = panel.merge(
        meta[["indicator", "measure", "meta_estimate", "meta_ci_low", "meta_ci_high", "meta_k"]],
        on=["indicator", "measure"],
        how="inner",
    )
    merged["difference"] = merged["panel_estimate"] - merged["meta_estimate"]
    return merged[COMPARISON_COLUMNS].sort_values(["indicator", "measure"], ignore_index=True)


# ---------------------------------------------------------------------------------------
# internals


def _stack(
    panel: pd.DataFrame, *, number: int, measure: str, starts: Mapping[str, pd.Period], settings: EvaluationSettings
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, float]]:
    """Stacked design (fitted rows of every province), outcome, province labels and ``k_i``."""
    rows = panel[panel["indicator"].astype(int) == number]
    if rows.empty:
        raise ValueError(f"indicator {number} has no rows in the panel")
    end = pd.Period(settings.evaluation_month, "M")
    parts, outcomes, labels, months_to_end = [], [], [], {}
    for province, series in rows.groupby("province", sort=True):
        if province not in starts:
            raise ValueError(f"no start month for province {province!r}")
        start = pd.Period(starts[province], "M")
        series = series.sort_values("month")
        months = pd.PeriodIndex(series["month"], freq="M")
        design = settings.design(start)
        keep = design.fit_mask(months)
        y = model_scale_outcome(series, measure)
        keep &= np.isfinite(y)
        matrix = design.matrix(months[keep])
        parts.append(matrix.reset_index(drop=True))
        outcomes.append(y[keep])
        labels.append(np.full(int(keep.sum()), province, dtype=object))
        # The slope-change column at the evaluation month, as the design would build it.
        months_to_end[province] = float(design.matrix(pd.PeriodIndex([end]))["slope_change"].iat[0])
    X = pd.concat(parts, ignore_index=True).fillna(0.0)
    # Columns absent from every fitted row (a shock month inside all wash-ins) carry nothing.
    X = X.loc[:, (X != 0).any(axis=0)]
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < X.shape[1]:
        raise ValueError(f"the stacked design has rank {rank} < {X.shape[1]} columns {list(X.columns)}")
    return X, np.concatenate(outcomes), np.concatenate(labels), months_to_end


def _fit_mixed(model: sm.MixedLM, *, free: MixedLMParams | None) -> MixedLMResults:
    """REML fit by L-BFGS, falling back on derivative-free Powell.

    statsmodels' analytic score inverts the random-effects covariance, so L-BFGS stops with
    a singular-matrix error when a variance reaches its boundary (0), which is a legitimate
    estimate when provinces hardly differ; Powell needs no score there.
    """
    fit = None
    for method in ("lbfgs", "powell"):
        with warnings.catch_warnings():
            # A random-effect variance at the boundary (0) is a legitimate estimate.
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("ignore", SingularMatrixWarning)
            warnings.filterwarnings("ignore", message=".*[Hh]essian.*")
            warnings.filterwarnings("ignore", message=".*boundary.*")
            try:
                candidate = model.fit(reml=True, method=method, free=free)
            except np.linalg.LinAlgError:
                continue
        fit = candidate
        if fit.converged:
            break
    if fit is None:
        raise ValueError(
            "the mixed model could not be fitted (singular random-effects covariance); "
            "try fewer random_terms or re_cov='diagonal'"
        )
    return fit


def _cluster_covariance(
    X: np.ndarray, y: np.ndarray, groups: np.ndarray, beta: np.ndarray, Z: np.ndarray, psi: np.ndarray, sigma2: float
) -> np.ndarray:
    """Cluster-robust covariance of the GLS fixed effects, clusters = provinces.

    ``A^-1 B A^-1 * G / (G - 1)`` with ``A = sum X_i' V_i^-1 X_i``,
    ``B = sum X_i' V_i^-1 r_i r_i' V_i^-1 X_i`` and ``V_i = Z_i psi Z_i' + sigma2 I`` the
    fitted marginal covariance (Liang & Zeger 1986). With no random effects this is the
    usual CR1-type sandwich of OLS (up to statsmodels' extra (N - 1)/(N - K) factor).
    """
    p = X.shape[1]
    A = np.zeros((p, p))
    B = np.zeros((p, p))
    resid = y - X @ beta
    labels, index = np.unique(groups, return_inverse=True)
    for g in range(len(labels)):
        rows = index == g
        Xi, ri = X[rows], resid[rows]
        V = sigma2 * np.eye(int(rows.sum()))
        if psi.size:
            Zi = Z[rows]
            V = V + Zi @ psi @ Zi.T
        Vinv_X = np.linalg.solve(V, Xi)
        A += Xi.T @ Vinv_X
        score = Vinv_X.T @ ri
        B += np.outer(score, score)
    A_inv = np.linalg.inv(A)
    G = len(labels)
    return G / (G - 1) * A_inv @ B @ A_inv
