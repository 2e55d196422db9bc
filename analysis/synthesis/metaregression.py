"""Mixed-effects meta-regression of provincial effect estimates on province characteristics.

Why do provinces differ in how much an indicator moved? This module regresses the
per-province effect estimates ``y_i`` (with sampling variances ``v_i = se_i**2``) on
moderators such as region, baseline level or the month the provincial plan started::

    y_i = x_i' beta + u_i + e_i,    u_i ~ N(0, tau^2),    e_i ~ N(0, v_i)

following R's ``metafor::rma.uni(yi, vi, mods = ~ ..., method=..., test=...)`` (Viechtbauer
2010, J Stat Softw 36(3)) so that results can be checked number for number against it. With
no moderators it is exactly :func:`analysis.synthesis.pooling.pool`, whose conventions it
shares: the same estimators of the (residual) between-province variance tau^2 (``"reml"``
by default, ``"ml"``, ``"dl"``, ``"pm"``, ``"fe"``; see the pooling module), metafor's
Fisher scoring with step halving and its check of the likelihood at tau^2 = 0.

Inference
---------
``knha=True`` (default) is metafor's ``test="knha"`` (Knapp & Hartung 2003): the covariance
of the coefficients is multiplied by ``s2 = y'Py / (k - p)``, the weighted residual mean
square, coefficients are tested with t(k - p) and the moderators jointly with
F(m, k - p). With ``knha=False`` tests are Wald z and the joint test chi-square(m) (QM).
With 32 provinces and a handful of moderators the Knapp-Hartung version keeps the type I
error near nominal; the z test is too liberal when k is small (Viechtbauer et al. 2015,
Res Synth Methods 6:169).

Heterogeneity statistics
------------------------
``qe``: test of residual heterogeneity, ``y' P_FE y`` with fixed-effect weights ``1/v_i``,
chi-square with k - p df. ``i2``/``h2``: residual I^2 and H^2 with the "typical" sampling
variance ``(k - p) / tr(P_FE)`` as metafor computes them. ``r2``: metafor's pseudo-R^2, the
share of the random-effects model's tau^2 accounted for by the moderators,
``max(0, (tau2_RE - tau2) / tau2_RE)`` in percent, tau2_RE from an intercept-only fit with
the same method.

Moderators
----------
Numeric columns enter as they are. Text, categorical and boolean columns are dummy coded
against a reference level: the first category of a pandas Categorical, otherwise the
smallest value (R's default), unless ``reference={"region": "east"}`` names it. Columns are
named ``region[west]``. Joint tests per moderator (all dummies of a factor together, as
``anova(res, btt="region")`` in metafor) are in :meth:`MetaRegressionResults.moderator_tests`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import optimize, stats

from analysis.its.effects import critical_value
from analysis.synthesis.pooling import (
    LL0_MESSAGE,
    LL0_TOL,
    REML_MAXITER,
    REML_THRESHOLD,
    Method,
    check_pooling_options,
    plain_number,
    pool,
)

__all__ = [
    "COEFFICIENT_COLUMNS",
    "FIT_COLUMNS",
    "MetaRegressionResults",
    "MetaRegressionTable",
    "meta_regression",
    "meta_regression_frame",
]

INTERCEPT = "intercept"

#: Columns of :meth:`MetaRegressionResults.coefficients`.
COEFFICIENT_COLUMNS = ["term", "estimate", "se", "statistic", "df", "p_value", "ci_low", "ci_high"]
#: Columns of :meth:`MetaRegressionResults.to_frame`.
FIT_COLUMNS = [
    "k", "p", "method", "knha", "level", "tau2", "tau2_se", "i2", "h2", "r2",
    "qe", "qe_df", "qe_p_value", "qm", "qm_df", "qm_df_resid", "qm_p_value", "loglik",
]  # fmt: skip


@dataclass(frozen=True, kw_only=True, eq=False)
class MetaRegressionResults:
    """A fitted mixed-effects meta-regression (read-only).

    Attributes
    ----------
    params : pandas.Series
        Coefficients, indexed by term (``intercept`` first, then moderator columns).
    cov : pandas.DataFrame
        Their covariance (Knapp-Hartung scaled when ``knha``).
    tau2, tau2_se : float
        Residual between-province variance and its standard error (NaN for ``"fe"``).
    i2, h2 : float
        Residual I^2 (percent) and H^2.
    r2 : float
        Pseudo-R^2 in percent: the share of the random-effects tau^2 explained by the
        moderators, truncated at 0. NaN for ``method="fe"``, without an intercept or
        moderators, or when the random-effects tau^2 is 0.
    qe, qe_df, qe_p_value : float, int, float
        Test of residual heterogeneity (chi-square with ``k - p`` df).
    qm, qm_df, qm_p_value : float, int, float
        Joint test of all coefficients but the intercept: chi-square(qm_df) when not
        ``knha``, otherwise an F statistic with (qm_df, k - p) df. NaN without moderators.
    loglik : float
        Restricted log-likelihood for ``method="reml"``, log-likelihood otherwise (as metafor).
    k, p : int
        Provinces and coefficients.
    method : str
    knha : bool
    level : float
    references : dict
        Reference level of each dummy-coded moderator.
    terms : dict
        Model-matrix columns of each moderator (one per non-reference level of a factor).
    """

    params: pd.Series
    cov: pd.DataFrame
    tau2: float
    tau2_se: float
    i2: float
    h2: float
    r2: float
    qe: float
    qe_df: int
    qe_p_value: float
    qm: float
    qm_df: int
    qm_p_value: float
    loglik: float
    k: int
    p: int
    method: str
    knha: bool
    level: float
    references: dict[str, object] = field(default_factory=dict)
    terms: dict[str, list[str]] = field(default_factory=dict)

    @property
    def df_resid(self) -> float:
        """Degrees of freedom of the t and F references (``k - p``), inf for z tests."""
        return float(self.k - self.p) if self.knha else np.inf

    @property
    def std_errors(self) -> pd.Series:
        """Standard errors of the coefficients."""
        return pd.Series(np.sqrt(np.diag(self.cov.to_numpy())), index=self.params.index, name="se")

    @property
    def tau(self) -> float:
        """Residual between-province standard deviation."""
        return float(np.sqrt(self.tau2))

    def coefficients(self) -> pd.DataFrame:
        """Tidy table, one row per term.

        Columns: ``term``, ``estimate``, ``se``, ``statistic`` (z, or t when ``knha``),
        ``df`` (``k - p`` for t, inf for z), ``p_value``, ``ci_low``, ``ci_high``.

        Examples
        --------
        >>> frame = pd.DataFrame({"y": [0.1, 0.3, 0.2, 0.5, 0.4], "se": [0.1] * 5,
        ...                       "x": [0.0, 1.0, 1.0, 2.0, 2.0]})
        >>> res = meta_regression(frame, estimate="y", se="se", moderators=["x"], method="fe",
        ...                       knha=False)
        >>> res.coefficients()[["term", "estimate"]].round(3)
                term  estimate
        0  intercept     0.086
        1          x     0.179
        """
        estimate = self.params.to_numpy()
        se = self.std_errors.to_numpy()
        df = self.df_resid
        with np.errstate(divide="ignore", invalid="ignore"):
            statistic = estimate / se
        crit = critical_value(df, self.level)
        return pd.DataFrame(
            {
                "term": list(self.params.index),
                "estimate": estimate,
                "se": se,
                "statistic": statistic,
                "df": df,
                "p_value": _two_sided(statistic, df),
                "ci_low": estimate - crit * se,
                "ci_high": estimate + crit * se,
            },
            columns=COEFFICIENT_COLUMNS,
        )

    def moderator_tests(self) -> pd.DataFrame:
        """Joint test of each moderator's coefficients (all dummies of a factor together).

        Columns: ``moderator``, ``terms`` (comma-separated), ``df``, ``df_resid`` (inf for
        chi-square), ``statistic`` (chi-square, or F when ``knha``), ``p_value``.
        """
        rows = [{"moderator": name, "terms": ", ".join(cols), **self._wald(cols)} for name, cols in self.terms.items()]
        return pd.DataFrame(rows, columns=["moderator", "terms", "df", "df_resid", "statistic", "p_value"])

    def _wald(self, columns: list[str]) -> dict[str, float]:
        b = self.params[columns].to_numpy()
        vb = self.cov.loc[columns, columns].to_numpy()
        m = len(columns)
        chi2 = float(b @ np.linalg.solve(vb, b))
        if self.knha:
            f = chi2 / m
            return {
                "df": m,
                "df_resid": float(self.k - self.p),
                "statistic": f,
                "p_value": float(stats.f.sf(f, m, self.k - self.p)),
            }
        return {"df": m, "df_resid": np.inf, "statistic": chi2, "p_value": float(stats.chi2.sf(chi2, m))}

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy frame of the fit statistics (columns :data:`FIT_COLUMNS`)."""
        row = {name: getattr(self, name) for name in FIT_COLUMNS if name != "qm_df_resid"}
        row["qm_df_resid"] = self.df_resid if self.qm_df else np.nan
        return pd.DataFrame([row], columns=FIT_COLUMNS)

    def summary(self) -> str:
        """Plain-text report laid out like metafor's printout."""
        kind = "Mixed-Effects Model" if self.qm_df else "Random-Effects Model"
        lines = [f"{kind} (k = {self.k}; tau^2 estimator: {self.method.upper()})", ""]
        if self.method != "fe":
            lines += [
                f"tau^2 (residual heterogeneity): {self.tau2:.4f} (SE = {self.tau2_se:.4f})",
                f"I^2: {self.i2:.2f}%   H^2: {self.h2:.2f}   R^2: {self.r2:.2f}%",
            ]
        lines.append(f"QE(df = {self.qe_df}) = {self.qe:.4f}, p = {self.qe_p_value:.4g}")
        if self.qm_df:
            test = f"F(df1 = {self.qm_df}, df2 = {self.k - self.p})" if self.knha else f"QM(df = {self.qm_df})"
            lines.append(f"{test} = {self.qm:.4f}, p = {self.qm_p_value:.4g}")
        if self.references:
            lines.append("Reference levels: " + ", ".join(f"{k} = {v!r}" for k, v in self.references.items()))
        lines += ["", self.coefficients().to_string(index=False, float_format=lambda x: f"{x:.4f}")]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        return self.coefficients()._repr_html_()


@dataclass(frozen=True)
class MetaRegressionTable:
    """Meta-regressions of many groups: tidy tables, failures reported, not raised.

    Attributes
    ----------
    coefficients : pandas.DataFrame
        The ``by`` columns followed by :data:`COEFFICIENT_COLUMNS`, one row per group x term.
    fits : pandas.DataFrame
        The ``by`` columns followed by :data:`FIT_COLUMNS`, one row per fitted group.
    failures : pandas.DataFrame
        The ``by`` columns, ``error`` (exception type) and ``message``, one row per group
        that could not be fitted.
    """

    coefficients: pd.DataFrame
    fits: pd.DataFrame
    failures: pd.DataFrame


def meta_regression(
    frame: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    moderators: Sequence[str] | str = (),
    method: Method = "reml",
    knha: bool = True,
    level: float = 0.95,
    reference: Mapping[str, object] | None = None,
    intercept: bool = True,
    dropna: bool = False,
) -> MetaRegressionResults:
    """Fit a mixed-effects meta-regression (metafor ``rma(yi, vi, mods = ~ ...)``).

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per province: the estimate, its standard error and the moderators.
    estimate, se : str
        Columns of the effect estimates and their standard errors.
    moderators : sequence of str, or str
        Moderator columns, or a formula-like string of main effects such as
        ``"region + baseline"``. Empty: the random-effects model of :func:`pool`.
    method : {"reml", "ml", "dl", "pm", "fe"}
        Estimator of the residual between-province variance (see module docstring).
    knha : bool
        Knapp-Hartung t and F tests (metafor ``test="knha"``); otherwise z and chi-square.
    level : float
        Confidence level of the coefficient intervals.
    reference : mapping, optional
        Reference level per categorical moderator (default: first category / smallest value).
    intercept : bool
        Include an intercept.
    dropna : bool
        Drop rows with a missing estimate, standard error or moderator instead of raising.

    Returns
    -------
    MetaRegressionResults

    Raises
    ------
    ValueError
        On missing columns, invalid values (named by row), an unknown reference level, a
        rank-deficient model matrix (e.g. a region with no province), or ``k <= p``.

    Examples
    --------
    Effects that grow with a province's baseline, with little residual heterogeneity:

    >>> frame = pd.DataFrame({
    ...     "level_change": [0.05, 0.12, 0.20, 0.26, 0.33, 0.41],
    ...     "se": [0.04, 0.05, 0.04, 0.06, 0.05, 0.04],
    ...     "baseline": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
    ...     "region": ["east", "west", "east", "west", "east", "west"],
    ... })
    >>> res = meta_regression(frame, estimate="level_change", se="se",
    ...                       moderators=["baseline", "region"])
    >>> res.coefficients()[["term", "estimate", "df"]].round(3)
               term  estimate   df
    0     intercept    -0.020  3.0
    1      baseline     0.715  3.0
    2  region[west]    -0.001  3.0
    >>> res.references, round(res.tau2, 4)
    ({'region': 'east'}, 0.0)
    """
    _check(method=method, knha=knha, level=level)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, not {type(frame).__name__}")
    if knha and method == "fe":
        warnings.warn(
            "the Knapp-Hartung method is meant for random-effects models, not method='fe'", UserWarning, stacklevel=2
        )
    names = _moderator_names(moderators)
    y, v, X, references, terms = _prepare(
        frame, estimate=estimate, se=se, moderators=names, reference=reference, intercept=intercept, dropna=dropna
    )
    fit = _fit(y, v, X.to_numpy(), method=method, knha=knha)
    if fit["tau2_reset"]:
        warnings.warn(LL0_MESSAGE, RuntimeWarning, stacklevel=2)
    if fit["tau2_bisection"]:
        warnings.warn(
            "Fisher scoring did not converge; tau^2 is the root of the score equation", RuntimeWarning, stacklevel=2
        )

    moderators_in = [c for c in X.columns if c != INTERCEPT]
    r2 = np.nan
    if method != "fe" and intercept and moderators_in:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the RE fit's own tau^2 = 0 notice
            tau2_re = pool(y, np.sqrt(v), method=method).tau2
        if tau2_re > 0:
            r2 = max(0.0, 100 * (tau2_re - fit["tau2"]) / tau2_re)

    params = pd.Series(fit["beta"], index=X.columns, name="estimate")
    cov = pd.DataFrame(fit["vb"], index=X.columns, columns=X.columns)
    if moderators_in:
        qm_cols = moderators_in
        b = params[qm_cols].to_numpy()
        qm = float(b @ np.linalg.solve(cov.loc[qm_cols, qm_cols].to_numpy(), b))
        m = len(qm_cols)
        if knha:
            qm /= m
            qm_p = float(stats.f.sf(qm, m, fit["k"] - fit["p"]))
        else:
            qm_p = float(stats.chi2.sf(qm, m))
    else:
        qm, m, qm_p = np.nan, 0, np.nan

    return MetaRegressionResults(
        params=params,
        cov=cov,
        tau2=fit["tau2"],
        tau2_se=fit["tau2_se"],
        i2=fit["i2"],
        h2=fit["h2"],
        r2=float(r2),
        qe=fit["qe"],
        qe_df=fit["k"] - fit["p"],
        qe_p_value=float(stats.chi2.sf(fit["qe"], fit["k"] - fit["p"])),
        qm=qm,
        qm_df=m,
        qm_p_value=qm_p,
        loglik=fit["loglik"],
        k=fit["k"],
        p=fit["p"],
        method=method,
        knha=bool(knha),
        level=float(level),
        references=references,
        terms=terms,
    )


def meta_regression_frame(
    frame: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    moderators: Sequence[str] | str = (),
    by: str | Sequence[str] = ("indicator", "measure"),
    method: Method = "reml",
    knha: bool = True,
    level: float = 0.95,
    reference: Mapping[str, object] | None = None,
    intercept: bool = True,
    dropna: bool = False,
) -> MetaRegressionTable:
    """One meta-regression per group; a group that cannot be fitted is reported, not raised.

    Parameters
    ----------
    frame : pandas.DataFrame
        Long frame, one row per province and group (e.g. ``effects`` of the panel fit joined
        with province characteristics).
    by : str or sequence of str
        Grouping columns, e.g. ``["indicator", "measure"]``.
    estimate, se, moderators, method, knha, level, reference, intercept, dropna
        As for :func:`meta_regression`, applied to every group.

    Returns
    -------
    MetaRegressionTable
        ``coefficients``, ``fits`` and ``failures``; groups in sorted key order.

    Examples
    --------
    >>> frame = pd.DataFrame({
    ...     "indicator": [11] * 4 + [12] * 4,
    ...     "estimate": [0.10, 0.20, 0.30, 0.40, 0.1, 0.1, 0.1, 0.1],
    ...     "se": [0.05] * 8,
    ...     "late": [0, 0, 1, 1, 0, 0, 0, 0],
    ... })
    >>> out = meta_regression_frame(frame, estimate="estimate", se="se", moderators=["late"],
    ...                             by="indicator", method="fe", knha=False)
    >>> out.coefficients[["indicator", "term", "estimate"]].round(2)
       indicator       term  estimate
    0         11  intercept      0.15
    1         11       late      0.20
    >>> out.failures[["indicator", "error"]]
       indicator       error
    0         12  ValueError
    """
    _check(method=method, knha=knha, level=level)
    keys = [by] if isinstance(by, str) else list(by)
    missing = [c for c in keys if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no grouping column(s) {missing}")
    clash = sorted(set(keys) & set(COEFFICIENT_COLUMNS + FIT_COLUMNS))
    if clash:
        raise ValueError(f"grouping column(s) {clash} would clash with result columns; rename them")
    coefficient_parts, fit_parts, failures = [], [], []
    for key, group in frame.groupby(keys, sort=True, observed=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        labels = dict(zip(keys, key))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                res = meta_regression(
                    group,
                    estimate=estimate,
                    se=se,
                    moderators=moderators,
                    method=method,
                    knha=knha,
                    level=level,
                    reference=reference,
                    intercept=intercept,
                    dropna=dropna,
                )
        except Exception as error:  # one failing group must not stop the others: it is reported
            failures.append({**labels, "error": type(error).__name__, "message": str(error)})
            continue
        coefficient_parts.append(res.coefficients().assign(**labels))
        fit_parts.append(res.to_frame().assign(**labels))

    def stack(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
        if not parts:
            return pd.DataFrame(columns=[*keys, *columns])
        return pd.concat(parts, ignore_index=True)[[*keys, *columns]]

    return MetaRegressionTable(
        coefficients=stack(coefficient_parts, COEFFICIENT_COLUMNS),
        fits=stack(fit_parts, FIT_COLUMNS),
        failures=pd.DataFrame(failures, columns=[*keys, "error", "message"]),
    )


# ---------------------------------------------------------------------------------------
# internals


def _check(*, method: str, knha: bool, level: float) -> None:
    if not isinstance(knha, (bool, np.bool_)):
        raise TypeError(f"knha must be True or False, not {knha!r}")
    check_pooling_options(method=method, hksj=knha, level=level)


def _moderator_names(moderators: Sequence[str] | str) -> list[str]:
    if isinstance(moderators, str):
        # A formula-like string of main effects: "~ a + b" or "a + b".
        text = moderators.strip().removeprefix("~")
        names = [part.strip() for part in text.split("+")]
        if any(not n or any(ch in n for ch in "*:()^-~") for n in names):
            raise ValueError(
                f"moderators {moderators!r}: only main effects joined by '+' are supported "
                "(build interactions or transformations as columns first)"
            )
        return names
    names = list(moderators)
    if len(set(names)) != len(names):
        raise ValueError(f"moderators listed twice: {names}")
    return names


def _prepare(
    frame: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    moderators: list[str],
    reference: Mapping[str, object] | None,
    intercept: bool,
    dropna: bool,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, dict[str, object], dict[str, list[str]]]:
    """Outcome, sampling variances, model matrix, reference levels and terms per moderator."""
    missing = [c for c in [estimate, se, *moderators] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}")
    reference = dict(reference or {})
    unknown = sorted(set(reference) - set(moderators))
    if unknown:
        raise ValueError(f"reference given for {unknown}, which are not moderators")

    y_all = pd.to_numeric(frame[estimate], errors="coerce").to_numpy(dtype=float)
    s_all = pd.to_numeric(frame[se], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y_all) | ~(np.isfinite(s_all) & (s_all > 0))
    for name in moderators:
        bad |= frame[name].isna().to_numpy()
    if bad.any():
        if not dropna:
            rows = frame.index[bad]
            raise ValueError(
                "estimates must be finite, standard errors finite and positive and moderators "
                f"present; invalid at row(s) {[plain_number(r) for r in rows[:10]]}"
                + (f" and {len(rows) - 10} more" if len(rows) > 10 else "")
                + " (pass dropna=True to leave them out)"
            )
        frame = frame.loc[~bad]
        y_all, s_all = y_all[~bad], s_all[~bad]

    columns: dict[str, np.ndarray] = {}
    if intercept:
        columns[INTERCEPT] = np.ones(len(frame))
    references: dict[str, object] = {}
    terms: dict[str, list[str]] = {}
    for name in moderators:
        values = frame[name]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            if name in reference:
                raise ValueError(f"moderator {name!r} is numeric; a reference level needs a categorical one")
            columns[name] = values.to_numpy(dtype=float)
            terms[name] = [name]
            continue
        if isinstance(values.dtype, pd.CategoricalDtype):
            levels = [lv for lv in values.cat.categories if (values == lv).any()]
        else:
            levels = sorted(values.unique().tolist())
        ref = reference.get(name, levels[0] if levels else None)
        if ref not in levels:
            raise ValueError(f"reference level {ref!r} of {name!r} is not among its values {levels}")
        references[name] = plain_number(ref)
        dummies = []
        for level in levels:
            if level == ref:
                continue
            column = f"{name}[{plain_number(level)}]"
            columns[column] = (values == level).to_numpy(dtype=float)
            dummies.append(column)
        terms[name] = dummies
    terms = {name: cols for name, cols in terms.items() if cols}
    X = pd.DataFrame(columns, index=frame.index)
    if X.shape[1] == 0:
        raise ValueError("the model has no coefficients: add an intercept or moderators")
    k, p = X.shape
    if k <= p:
        raise ValueError(f"{k} province(s) for {p} coefficient(s): a meta-regression needs k > p")
    rank = np.linalg.matrix_rank(X.to_numpy())
    if rank < p:
        raise ValueError(
            f"the model matrix has rank {rank} < {p} columns {list(X.columns)}: a moderator is "
            "constant or collinear with others (e.g. a level that no province or every province has)"
        )
    return y_all, s_all**2, X, references, terms


def _two_sided(statistic: np.ndarray, df: float) -> np.ndarray:
    a = np.abs(statistic)
    return 2 * (stats.norm.sf(a) if not np.isfinite(df) else stats.t.sf(a, df))


def _projection(w: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(X'WX)^-1`` and ``P = W - W X (X'WX)^-1 X' W`` for weights ``w``."""
    wx = X * w[:, None]
    inv = np.linalg.inv(X.T @ wx)
    return inv, np.diag(w) - wx @ inv @ wx.T


def _score_step(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, *, reml: bool) -> float:
    """metafor's Fisher scoring step for tau^2 (rma.uni): score over expected information."""
    w = 1 / (v + tau2)
    _, P = _projection(w, X)
    Py = P @ y
    ypp_y = float(Py @ Py)
    if reml:
        return (ypp_y - np.trace(P)) / float(np.sum(P * P.T))
    return (ypp_y - w.sum()) / float(np.sum(w**2))


def _log_likelihood(y: np.ndarray, v: np.ndarray, X: np.ndarray, tau2: float, *, reml: bool) -> float:
    """Log-likelihood as metafor reports it (restricted: with ``log|X'X|`` and ``k - p``)."""
    k, p = X.shape
    w = 1 / (v + tau2)
    inv, P = _projection(w, X)
    rss = float(y @ P @ y)
    ll = -0.5 * np.sum(np.log(v + tau2)) - 0.5 * rss
    if reml:
        ll += -0.5 * (k - p) * np.log(2 * np.pi) + 0.5 * np.linalg.slogdet(X.T @ X)[1]
        ll -= 0.5 * np.linalg.slogdet(X.T @ (X * w[:, None]))[1]
        return float(ll)
    return float(ll - 0.5 * k * np.log(2 * np.pi))


def _fisher_scoring(y: np.ndarray, v: np.ndarray, X: np.ndarray, *, reml: bool) -> tuple[float, bool, bool]:
    """REML/ML tau^2 exactly as metafor iterates it; returns (tau2, reset to 0, bisection used)."""
    k, p = X.shape
    # Hedges-type starting value from the OLS residuals (metafor's default start).
    H = X @ np.linalg.pinv(X)
    resid = y - H @ y
    tau2 = max(0.0, (float(resid @ resid) - float(np.sum(v * (1 - np.diag(H))))) / (k - p))
    bisection = False
    for _ in range(REML_MAXITER + 1):
        step = _score_step(y, v, X, tau2, reml=reml)
        if tau2 == 0 and step < 0:
            step = 0.0  # halving from 0 ends at 0
        while tau2 + step < 0:
            step /= 2
        tau2 += step
        if abs(step) <= REML_THRESHOLD:
            break
    else:
        tau2, bisection = _score_root(y, v, X, reml=reml), True
    reset = False
    if tau2 > REML_THRESHOLD:
        if _log_likelihood(y, v, X, 0.0, reml=reml) - _log_likelihood(y, v, X, tau2, reml=reml) > LL0_TOL:
            tau2, reset = 0.0, True
    return tau2, reset, bisection


def _score_root(y: np.ndarray, v: np.ndarray, X: np.ndarray, *, reml: bool) -> float:
    """Root of the REML/ML score in tau^2 >= 0 (0 when the score is not positive at 0)."""
    score = lambda t: _score_step(y, v, X, t, reml=reml)  # noqa: E731 (same sign as the score)
    if score(0.0) <= 0:
        return 0.0
    hi = max(float(np.var(y)), 1e-8)
    while score(hi) > 0:
        hi *= 2
    return float(optimize.brentq(score, 0.0, hi, xtol=1e-14, rtol=1e-12))


def _paule_mandel(y: np.ndarray, v: np.ndarray, X: np.ndarray) -> float:
    """tau^2 at which the generalised Q, ``y'Py``, equals ``k - p`` (0 if below already)."""
    k, p = X.shape
    q = lambda t: float(y @ _projection(1 / (v + t), X)[1] @ y) - (k - p)  # noqa: E731
    if q(0.0) <= 0:
        return 0.0
    hi = max(float(np.var(y)), 1e-8)
    while q(hi) > 0:
        hi *= 2
    return float(optimize.brentq(q, 0.0, hi, xtol=1e-14, rtol=1e-12))


def _fit(y: np.ndarray, v: np.ndarray, X: np.ndarray, *, method: str, knha: bool) -> dict:
    k, p = X.shape
    df = k - p
    # Residual heterogeneity and the typical sampling variance use fixed-effect weights.
    w_fe = 1 / v
    _, P_fe = _projection(w_fe, X)
    qe = max(0.0, float(y @ P_fe @ y))
    tr_p_fe = float(np.trace(P_fe))
    typical_v = df / tr_p_fe

    reset = bisection = False
    if method == "fe":
        tau2 = 0.0
    elif method == "dl":
        tau2 = max(0.0, (qe - df) / tr_p_fe)
    elif method == "pm":
        tau2 = _paule_mandel(y, v, X)
    else:
        tau2, reset, bisection = _fisher_scoring(y, v, X, reml=method == "reml")

    w = 1 / (v + tau2)
    inv, P = _projection(w, X)
    beta = inv @ (X.T @ (w * y))
    vb = inv
    if knha:
        rss = float(y @ P @ y)
        # metafor sets the factor to 0 when the residuals vanish (RSS at machine zero).
        vb = (0.0 if rss <= np.finfo(float).eps else rss / df) * vb

    if method == "fe":
        tau2_se = np.nan
        i2 = max(0.0, 100 * (qe - df) / qe) if qe > 0 else 0.0
        h2 = qe / df
    else:
        if method == "dl":
            tau2_se = np.sqrt(2 * df + 4 * tau2 * tr_p_fe + 2 * tau2**2 * float(np.sum(P_fe * P_fe.T))) / tr_p_fe
        elif method == "pm":
            tau2_se = np.sqrt(2 * k**2 / df) / w.sum()
        elif method == "ml":
            tau2_se = np.sqrt(2 / np.sum(w**2))
        else:
            tau2_se = np.sqrt(2 / float(np.sum(P * P.T)))
        i2 = 100 * tau2 / (typical_v + tau2)
        h2 = tau2 / typical_v + 1
    return {
        "beta": beta,
        "vb": vb,
        "tau2": float(tau2),
        "tau2_se": float(tau2_se),
        "i2": float(i2),
        "h2": float(h2),
        "qe": qe,
        "k": int(k),
        "p": int(p),
        "loglik": _log_likelihood(y, v, X, tau2, reml=method == "reml"),
        "tau2_reset": reset,
        "tau2_bisection": bisection,
    }
