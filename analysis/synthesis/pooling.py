"""Pooling of provincial effect estimates into one national estimate (meta-analysis).

Each indicator yields one effect estimate per province (for example a level change on the
log-odds scale) with its standard error. This module combines them by inverse-variance
weighting under a fixed-effect or a random-effects model, following the conventions of
R's ``metafor::rma.uni`` for an intercept-only model (Viechtbauer 2010, J Stat Softw
36(3)), so that results can be checked number for number against it.

Estimators of the between-province variance tau^2
-------------------------------------------------
``"fe"``
    Fixed (common) effect: tau^2 = 0, plain inverse-variance weights.
``"dl"``
    DerSimonian & Laird (1986) method of moments, truncated at 0.
``"reml"`` (default)
    Restricted maximum likelihood by Fisher scoring exactly as metafor runs it: start at the
    Hedges estimate, step-halving to stay >= 0, stop when the step is <= 1e-5, at most 100
    iterations, then metafor's check that tau^2 = 0 does not have a higher likelihood.
    Fisher scoring occasionally oscillates without converging (metafor then stops with an
    error); such groups get the root of the score equation by bisection instead.
``"ml"``
    Maximum likelihood, same algorithm with the ML score.
``"pm"``
    Paule & Mandel (1982): the tau^2 at which the generalised Q statistic equals k - 1
    (0 if Cochran's Q is already below k - 1). Solved to ~1e-12 here; metafor's ``uniroot``
    stops at a tolerance of about 1.2e-4, so its PM tau^2 can differ in the 4th decimal.

Inference for the pooled mean is a Wald z test by default. ``hksj=True`` gives the
Hartung-Knapp-Sidik-Jonkman (Knapp & Hartung 2003) method as metafor's ``test="knha"``:
the variance of the mean is multiplied by ``sum(w * (y - mu)**2) / (k - 1)`` (not truncated
at 1, metafor's default) and the t distribution with k - 1 degrees of freedom is used.
``hksj_floor=True`` floors that factor at 1, as metafor's ``test="adhoc"`` (Knapp & Hartung
2003; Röver, Knapp & Friede 2015, BMC Med Res Methodol 15:99): without the floor, when the
estimates agree more closely than their standard errors suggest, the adjusted interval is
narrower than the Wald one, and national placebo tests on the synthetic data rejected in
6.9% of cases at the 5% level (4.9% with the floor; ``docs/national_coverage.md``).
With 32 provinces and often marked heterogeneity, this is the recommended choice for the
national estimate (IntHout et al. 2014, BMC Med Res Methodol 14:25).

Equal weights
-------------
``weights="equal"`` estimates the mean of the province effects by their unweighted average
(tau^2 is still estimated by ``method``, for the heterogeneity statistics and the prediction
interval). Inverse-variance weights estimate that mean without bias only when a province's
true effect is unrelated to its standard error. Absolute effects of proportions and rates
break this: both the effect and its standard error grow with the province's level, so the
provinces with the largest effects get the least weight and the weighted mean is biased
towards zero (by -11 to -14% for indicator 26 in ``docs/national_coverage.md``). The
unweighted average is unbiased whatever the weights would have been, at some cost in
precision. Its variance is ``sum(se_i**2 + tau2) / k**2`` (that of an average of independent
estimates) or, with ``hksj``, the Knapp-Hartung estimator with the same weights,
``sum((y_i - mean)**2) / (k (k - 1))`` with t(k - 1): exactly the one-sample t interval,
which stays valid when the variances differ between provinces. ``hksj_floor`` takes the
larger of the two variances.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from typing import Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

__all__ = ["METHODS", "WEIGHTS", "PooledEstimate", "pool", "pool_frame", "pool_frame_mixed"]

Method = Literal["reml", "dl", "fe", "pm", "ml"]
Weights = Literal["inverse-variance", "equal"]

#: Estimators of tau^2 that :func:`pool` accepts.
METHODS: tuple[str, ...] = ("reml", "dl", "fe", "pm", "ml")
#: Weighting schemes of the pooled mean.
WEIGHTS: tuple[str, ...] = ("inverse-variance", "equal")

# metafor's control defaults for Fisher scoring (rma.uni: threshold, maxiter) and for the
# check of the likelihood at tau^2 = 0 (tol = .Machine$double.eps^0.25).
REML_THRESHOLD = 1e-5
REML_MAXITER = 100
LL0_TOL = np.finfo(float).eps ** 0.25


@dataclass(frozen=True, kw_only=True)
class PooledEstimate:
    """The pooled (national) estimate from one meta-analysis.

    Attributes
    ----------
    estimate : float
        Inverse-variance weighted mean, weights ``1 / (se_i**2 + tau2)``, or the unweighted
        mean with ``weights="equal"``.
    se : float
        Its standard error (Knapp-Hartung adjusted when ``hksj``).
    statistic : float
        ``estimate / se``: a z statistic, or t with ``k - 1`` df when ``hksj``.
    p_value : float
        Two-sided p-value for ``estimate = 0``.
    ci_low, ci_high : float
        Confidence interval for the mean effect at ``level``.
    pi_low, pi_high : float
        Prediction interval for the true effect in a new province, as metafor's
        ``predict()``: ``estimate -/+ crit * sqrt(se**2 + tau2)`` with ``crit`` the normal
        quantile, or the t(k - 1) quantile when ``hksj``. Equal to the confidence interval
        for ``method="fe"`` (tau2 = 0).
    tau2 : float
        Between-province variance of the true effects.
    tau2_se : float
        Standard error of ``tau2`` as metafor reports it: inverse Fisher information for REML
        and ML, the moment formula for DL, ``sqrt(2 k**2 / (k - 1)) / sum(w)`` for PM; NaN for FE.
    i2 : float
        Percent of total variability due to heterogeneity. For random-effects methods the
        Higgins & Thompson (2002) form ``100 * tau2 / (tau2 + s2)`` with the "typical"
        within-province variance ``s2 = (k - 1) * sum(w) / (sum(w)**2 - sum(w**2))``,
        ``w = 1 / se_i**2``, as metafor reports it (for DL this equals ``(Q - df) / Q``).
        For ``method="fe"``, ``max(0, 100 * (Q - df) / Q)``.
    h2 : float
        ``tau2 / s2 + 1`` (``Q / df`` for FE): total over sampling variability.
    q, q_df, q_p_value : float, int, float
        Cochran's Q with fixed-effect weights, its ``k - 1`` degrees of freedom and the
        chi-square p-value.
    k : int
        Number of provinces pooled.
    method : str
        Estimator of tau2 actually used (``"fe"`` when ``k == 1``).
    hksj : bool
        Whether the Knapp-Hartung adjustment was applied (never when ``k == 1``).
    weights : str
        ``"inverse-variance"`` or ``"equal"`` (see the module docstring).
    level : float
        Confidence level of ``ci_*`` and ``pi_*``, e.g. 0.95.

    Notes
    -----
    With a single province (``k == 1``) there is nothing to pool and no information about
    heterogeneity: the result is that province's estimate with its own Wald interval, and
    ``tau2``, ``tau2_se``, ``i2``, ``h2``, ``q_p_value`` and the prediction interval are NaN
    (metafor reports tau2 = 0 and I2 = 0, which would read as "no heterogeneity").
    """

    estimate: float
    se: float
    statistic: float
    p_value: float
    ci_low: float
    ci_high: float
    pi_low: float
    pi_high: float
    tau2: float
    tau2_se: float
    i2: float
    h2: float
    q: float
    q_df: int
    q_p_value: float
    k: int
    method: str
    hksj: bool
    weights: str
    level: float

    @property
    def tau(self) -> float:
        """Between-province standard deviation, ``sqrt(tau2)``."""
        return float(np.sqrt(self.tau2))

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy frame with every field as a column.

        Examples
        --------
        >>> pool([0.2, 0.4], [0.1, 0.1], method="fe").to_frame()[["estimate", "k"]]
           estimate  k
        0       0.3  2
        """
        return pd.DataFrame([asdict(self)], columns=_FIELDS)

    def _repr_html_(self) -> str:
        return self.to_frame()._repr_html_()


_FIELDS: list[str] = [f.name for f in fields(PooledEstimate)]
# Fields that _fit returns as one number per group.
_NUMERIC: list[str] = [name for name in _FIELDS if name not in ("method", "hksj", "weights", "level")]


def pool(
    estimates: ArrayLike,
    se: ArrayLike,
    *,
    method: Method = "reml",
    hksj: bool = False,
    level: float = 0.95,
    hksj_floor: bool = False,
    weights: Weights = "inverse-variance",
) -> PooledEstimate:
    """Pool effect estimates by inverse-variance (or equal) weighting.

    Parameters
    ----------
    estimates : array-like of float, shape (k,)
        One effect estimate per province, all on the same (additive) scale.
    se : array-like of float, shape (k,)
        Their standard errors; finite and positive.
    method : {"reml", "dl", "fe", "pm", "ml"}
        Estimator of the between-province variance; see the module docstring.
    hksj : bool
        Use the Hartung-Knapp-Sidik-Jonkman adjusted standard error and t(k - 1) reference
        distribution (metafor ``test="knha"``) instead of the Wald z.
    level : float
        Confidence level in (0, 1).
    hksj_floor : bool
        With ``hksj``, floor the Knapp-Hartung factor at 1 (metafor ``test="adhoc"``), so
        the interval is never narrower than the Wald one with t(k - 1).
    weights : {"inverse-variance", "equal"}
        Weights of the pooled mean; ``"equal"`` when effects grow with their standard
        errors (see the module docstring).

    Returns
    -------
    PooledEstimate

    Raises
    ------
    ValueError
        If the lengths differ, ``k == 0``, an estimate is not finite or a standard error is
        not finite and positive (the message names the positions and values), or an option
        is invalid.

    See Also
    --------
    pool_frame : one pooled estimate per group of a long frame.

    Examples
    --------
    Four provinces with a common effect of about 0.3:

    >>> res = pool([0.21, 0.35, 0.28, 0.44], [0.10, 0.12, 0.08, 0.15])
    >>> round(res.estimate, 3), round(res.tau2, 3)
    (0.293, 0.0)
    >>> res = pool([0.21, 0.35, 0.28, 0.44], [0.10, 0.12, 0.08, 0.15], hksj=True)
    >>> [round(x, 3) for x in (res.ci_low, res.ci_high)]
    [0.162, 0.425]

    With equal weights and ``hksj`` the interval is the one-sample t interval:

    >>> res = pool([0.21, 0.35, 0.28, 0.44], [0.10, 0.12, 0.08, 0.15], hksj=True, weights="equal")
    >>> [round(x, 3) for x in (res.estimate, res.ci_low, res.ci_high)]
    [0.32, 0.164, 0.476]
    """
    check_pooling_options(method=method, hksj=hksj, level=level, weights=weights)
    y = _as_vector(estimates, "estimates")
    s = _as_vector(se, "se")
    if y.size != s.size:
        raise ValueError(f"estimates and se differ in length ({y.size} and {s.size})")
    if y.size == 0:
        raise ValueError("nothing to pool: k must be at least 1")
    bad_y = ~np.isfinite(y)
    if bad_y.any():
        raise ValueError("estimates must be finite; " + _describe(np.flatnonzero(bad_y), y[bad_y], name="estimates"))
    bad_s = ~(np.isfinite(s) & (s > 0))
    if bad_s.any():
        raise ValueError("se must be finite and positive; " + _describe(np.flatnonzero(bad_s), s[bad_s], name="se"))

    mask = np.ones((1, y.size), dtype=bool)
    fit = _fit(
        y[None, :], (s**2)[None, :], mask, method=method, hksj=hksj, level=level, hksj_floor=hksj_floor, weights=weights
    )
    if fit["tau2_reset"][0]:
        warnings.warn(LL0_MESSAGE, RuntimeWarning, stacklevel=2)
    return _result(fit, 0, level=level)


def pool_frame(
    frame: pd.DataFrame,
    *,
    estimate: str,
    se: str,
    by: str | Sequence[str] | None = None,
    method: Method = "reml",
    hksj: bool = False,
    level: float = 0.95,
    hksj_floor: bool = False,
    weights: Weights = "inverse-variance",
) -> pd.DataFrame:
    """Pool the rows of a long frame, one meta-analysis per group.

    All groups are fitted together with vectorised array code, so a thousand groups of 32
    provinces take a few milliseconds more than one.

    Parameters
    ----------
    frame : pandas.DataFrame
        One row per province (and group), e.g. the tidy output of the per-province models.
    estimate, se : str
        Columns holding the effect estimates and their standard errors.
    by : str or sequence of str, optional
        Grouping columns, e.g. ``"indicator"`` or ``["indicator", "effect"]``. ``None``
        pools all rows together.
    method, hksj, level, hksj_floor, weights
        As for :func:`pool`.

    Returns
    -------
    pandas.DataFrame
        One row per group, sorted by the group keys: the ``by`` columns followed by the
        fields of :class:`PooledEstimate`. A group with a single row is reported as that
        row's estimate with ``method="fe"`` and NaN heterogeneity (see
        :class:`PooledEstimate`).

    Raises
    ------
    ValueError
        If a column is missing, a group key is missing, or a group has a non-finite or
        non-numeric estimate or a standard error that is not finite and positive; the
        message names the group and the offending rows (index labels) and values.

    Examples
    --------
    >>> frame = pd.DataFrame({
    ...     "indicator": ["a", "a", "a", "b", "b"],
    ...     "level_change": [0.21, 0.35, 0.28, -0.10, 0.05],
    ...     "level_change_se": [0.10, 0.12, 0.08, 0.05, 0.07],
    ... })
    >>> out = pool_frame(frame, estimate="level_change", se="level_change_se", by="indicator")
    >>> out[["indicator", "k", "estimate", "tau2"]].round(3)
      indicator  k  estimate   tau2
    0         a  3     0.273  0.000
    1         b  2    -0.033  0.008
    """
    check_pooling_options(method=method, hksj=hksj, level=level, weights=weights)
    if not isinstance(frame, pd.DataFrame):
        raise TypeError(f"frame must be a pandas DataFrame, not {type(frame).__name__}")
    keys = [] if by is None else ([by] if isinstance(by, str) else list(by))
    missing = [c for c in [estimate, se, *keys] if c not in frame.columns]
    if missing:
        raise ValueError(f"frame has no column(s) {missing}")
    clash = sorted(set(keys) & set(_FIELDS))
    if clash:
        raise ValueError(f"grouping column(s) {clash} would clash with result columns; rename them")
    if keys:
        no_key = frame[keys].isna().any(axis=1).to_numpy()
        if no_key.any():
            rows = list(frame.index[no_key][:10])
            raise ValueError(f"missing group key(s) in {keys} at row(s) {rows}")

    y_all = pd.to_numeric(frame[estimate], errors="coerce").to_numpy(dtype=float)
    s_all = pd.to_numeric(frame[se], errors="coerce").to_numpy(dtype=float)

    if keys:
        grouped = frame.groupby(keys, sort=True, observed=True)
        codes = grouped.ngroup().to_numpy()
        position = grouped.cumcount().to_numpy()
        key_frame = grouped.size().index.to_frame(index=False)
    else:
        codes = np.zeros(len(frame), dtype=int)
        position = np.arange(len(frame))
        key_frame = pd.DataFrame(index=range(1 if len(frame) else 0))
    n_groups = len(key_frame)
    if n_groups == 0:
        if keys:
            return pd.DataFrame(columns=[*keys, *_FIELDS])
        raise ValueError("nothing to pool: frame has no rows")

    bad = ~np.isfinite(y_all) | ~(np.isfinite(s_all) & (s_all > 0))
    if bad.any():
        group = codes[np.flatnonzero(bad)[0]]
        rows = np.flatnonzero(bad & (codes == group))
        label = _group_label(key_frame, keys, group)
        parts = []
        for column, _values, invalid in (
            (estimate, y_all, ~np.isfinite(y_all)),
            (se, s_all, ~(np.isfinite(s_all) & (s_all > 0))),
        ):
            these = rows[invalid[rows]]
            if these.size:
                original = frame[column].to_numpy()[these]
                parts.append(f"{column!r} " + _describe(frame.index[these], original, name=None))
        raise ValueError(
            f"invalid input in group {label}: estimates must be finite and standard errors "
            f"finite and positive; " + "; ".join(parts)
        )

    width = int(position.max()) + 1
    # Padding cells carry zero weight (mask False); v = 1 keeps the arithmetic finite.
    y = np.zeros((n_groups, width))
    v = np.ones((n_groups, width))
    mask = np.zeros((n_groups, width), dtype=bool)
    y[codes, position] = y_all
    v[codes, position] = s_all**2
    mask[codes, position] = True

    fit = _fit(y, v, mask, method=method, hksj=hksj, level=level, hksj_floor=hksj_floor, weights=weights)
    if fit["tau2_reset"].any():
        names = [_group_label(key_frame, keys, g) for g in np.flatnonzero(fit["tau2_reset"])[:10]]
        warnings.warn(f"{LL0_MESSAGE} Group(s): {names}", RuntimeWarning, stacklevel=2)

    columns = {name: fit[name] for name in _NUMERIC}
    columns["method"] = np.where(fit["k"] == 1, "fe", method)
    columns["hksj"] = np.where(fit["k"] == 1, False, hksj)
    columns["weights"] = np.full(n_groups, weights)
    columns["level"] = np.full(n_groups, level)
    result = pd.DataFrame(columns)[_FIELDS]
    result["k"] = result["k"].astype(int)
    result["q_df"] = result["q_df"].astype(int)
    result["hksj"] = result["hksj"].astype(bool)
    return pd.concat([key_frame.reset_index(drop=True), result], axis=1)


def pool_frame_mixed(frame: pd.DataFrame, *, equal: ArrayLike, by: str | Sequence[str], **options) -> pd.DataFrame:
    """:func:`pool_frame` with equal weights for the groups of the rows marked ``equal`` and
    inverse-variance weights for the others (the ``weights`` column says which).

    ``equal`` is a boolean per row and must be constant within each group; the result is
    sorted by the ``by`` columns. Other keyword options go to :func:`pool_frame`.

    Examples
    --------
    >>> frame = pd.DataFrame({"g": ["a", "a", "b", "b"], "y": [1.0, 3.0, 1.0, 3.0], "s": [1.0, 2.0, 1.0, 2.0]})
    >>> out = pool_frame_mixed(frame, equal=frame["g"] == "b", by="g", estimate="y", se="s", method="fe")
    >>> out[["g", "estimate", "weights"]]
       g  estimate           weights
    0  a       1.4  inverse-variance
    1  b       2.0             equal
    """
    keys = [by] if isinstance(by, str) else list(by)
    equal = np.asarray(equal, dtype=bool)
    if equal.shape != (len(frame),):
        raise ValueError(f"equal must hold one boolean per row ({len(frame)}), not shape {equal.shape}")
    mixed = pd.Series(equal, index=frame.index).groupby([frame[k] for k in keys]).nunique() > 1
    if mixed.any():
        raise ValueError(f"equal differs within group(s) {list(mixed.index[mixed])[:10]}")
    parts = [pool_frame(frame[~equal], by=keys, **options)]
    if equal.any():
        parts.append(pool_frame(frame[equal], by=keys, weights="equal", **options))
    parts = [part for part in parts if len(part)] or parts[:1]
    return pd.concat(parts, ignore_index=True).sort_values(keys, ignore_index=True)


# ---------------------------------------------------------------------------------------
# internals

LL0_MESSAGE = (
    "Fisher scoring may have stopped at a local maximum: the likelihood is higher at "
    "tau^2 = 0, so tau^2 was set to 0 (as metafor does)."
)


def check_pooling_options(*, method: str, hksj: bool, level: float, weights: str = "inverse-variance") -> None:
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, not {method!r}")
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, not {weights!r}")
    if not isinstance(hksj, (bool, np.bool_)):
        raise TypeError(f"hksj must be True or False, not {hksj!r}")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        hint = " (write 0.95, not 95)" if isinstance(level, (int, float)) and 1 < level < 100 else ""
        raise ValueError(f"level must be in (0, 1), not {level!r}{hint}")


def _as_vector(values: ArrayLike, name: str) -> np.ndarray:
    try:
        array = np.atleast_1d(np.asarray(values, dtype=float))
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not of shape {array.shape}")
    return array


def _describe(labels: Sequence, values: Sequence, *, name: str | None, limit: int = 10) -> str:
    """``"se[2] = 0.0, se[5] = nan"`` or ``"at row 'x' = nan"`` for error messages."""
    items = []
    for label, value in list(zip(labels, values))[:limit]:
        where = f"{name}[{plain_number(label)}]" if name else f"at row {plain_number(label)!r}"
        items.append(f"{where} = {plain_number(value)!r}")
    more = len(labels) - limit
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")


def plain_number(value: object) -> object:
    """NumPy scalars as Python ones, so messages read ``nan`` rather than ``np.float64(nan)``."""
    return value.item() if isinstance(value, np.generic) else value


def _group_label(key_frame: pd.DataFrame, keys: list[str], group: int) -> str:
    if not keys:
        return "(all rows)"
    row = key_frame.iloc[group]
    return ", ".join(f"{k}={plain_number(row[k])!r}" for k in keys)


def _result(fit: dict[str, np.ndarray], g: int, *, level: float) -> PooledEstimate:
    single = fit["k"][g] == 1
    values = {name: float(fit[name][g]) for name in _NUMERIC}
    values["k"] = int(fit["k"][g])
    values["q_df"] = int(fit["q_df"][g])
    values["method"] = "fe" if single else fit["method"]
    values["hksj"] = False if single else bool(fit["hksj"])
    values["weights"] = str(fit["weights"])
    values["level"] = float(level)
    return PooledEstimate(**values)


def _fit(
    y: np.ndarray,
    v: np.ndarray,
    mask: np.ndarray,
    *,
    method: str,
    hksj: bool,
    level: float,
    hksj_floor: bool = False,
    weights: str = "inverse-variance",
) -> dict[str, np.ndarray]:
    """Fit G intercept-only meta-analyses at once.

    ``y`` and ``v`` (sampling variances) have shape (G, K); cells where ``mask`` is False are
    padding and get zero weight. Inputs are assumed valid.
    """
    m = mask.astype(float)
    k = m.sum(axis=1)
    df = k - 1
    multi = k >= 2

    # Cochran's Q and the typical within-province variance use fixed-effect weights.
    w_fe = m / v
    sw_fe = w_fe.sum(axis=1)
    sw2_fe = (w_fe**2).sum(axis=1)
    mu_fe = (w_fe * y).sum(axis=1) / sw_fe
    q = np.maximum(0.0, (w_fe * (y - mu_fe[:, None]) ** 2).sum(axis=1))
    with np.errstate(divide="ignore", invalid="ignore"):
        tr_p_fe = sw_fe - sw2_fe / sw_fe
        typical_v = df / tr_p_fe

    tau2_reset = np.zeros(len(k), dtype=bool)
    if method == "fe":
        tau2 = np.zeros(len(k))
    elif method == "dl":
        with np.errstate(divide="ignore", invalid="ignore"):
            tau2 = np.where(multi, np.maximum(0.0, (q - df) / tr_p_fe), 0.0)
    elif method == "pm":
        tau2 = _paule_mandel(y, v, m, k=k, q=q)
    else:
        tau2, tau2_reset = _fisher_scoring(y, v, m, k=k, reml=method == "reml")

    w = m / (v + tau2[:, None])
    sw = w.sum(axis=1)
    sw2 = (w**2).sum(axis=1)
    if weights == "equal":
        mu = (m * y).sum(axis=1) / k
        var_mu = (m * (v + tau2[:, None])).sum(axis=1) / k**2
    else:
        mu = (w * y).sum(axis=1) / sw
        var_mu = 1.0 / sw

    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "fe":
            tau2_se = np.full(len(k), np.nan)
        elif method == "dl":
            # metafor: Var of the moment estimator, P built with fixed-effect weights.
            sum_pp = sw2_fe - 2 * (w_fe**3).sum(axis=1) / sw_fe + (sw2_fe / sw_fe) ** 2
            tau2_se = np.sqrt(2 * df + 4 * tau2 * tr_p_fe + 2 * tau2**2 * sum_pp) / tr_p_fe
        elif method == "pm":
            tau2_se = np.sqrt(2 * k**2 / df) / sw
        elif method == "ml":
            tau2_se = np.sqrt(2 / sw2)
        else:
            sum_pp = sw2 - 2 * (w**3).sum(axis=1) / sw + (sw2 / sw) ** 2
            tau2_se = np.sqrt(2 / sum_pp)

    use_t = hksj & multi
    if hksj:
        if method == "fe" and use_t.any():
            warnings.warn(
                "the Knapp-Hartung method is meant for random-effects models, not method='fe'",
                UserWarning,
                stacklevel=3,
            )
        if weights == "equal":
            # Knapp & Hartung's estimator with the weights used, sum(w (y - mu)^2) /
            # ((k - 1) sum(w)) with w = 1 / k: the one-sample t variance of the mean.
            with np.errstate(divide="ignore", invalid="ignore"):
                var_kh = (m * (y - mu[:, None]) ** 2).sum(axis=1) / (df * k)
            var_kh = np.maximum(var_kh, var_mu) if hksj_floor else var_kh
            var_mu = np.where(use_t, var_kh, var_mu)
        else:
            rss = (w * (y - mu[:, None]) ** 2).sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                # metafor sets the factor to 0 when all estimates coincide (RSS at machine zero).
                s2w = np.where(rss <= np.finfo(float).eps, 0.0, rss / df)
            if hksj_floor:
                s2w = np.maximum(s2w, 1.0)
            var_mu = np.where(use_t, s2w * var_mu, var_mu)

    se = np.sqrt(var_mu)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = mu / se
    tail = (1 - level) / 2
    t_df = np.where(use_t, df, 1.0)
    crit = np.where(use_t, stats.t.isf(tail, t_df), stats.norm.isf(tail))
    p_value = np.where(use_t, 2 * stats.t.sf(np.abs(statistic), t_df), 2 * stats.norm.sf(np.abs(statistic)))
    pi_half = crit * np.sqrt(var_mu + tau2)

    with np.errstate(divide="ignore", invalid="ignore"):
        if method == "fe":
            i2 = np.where(q > 0, np.maximum(0.0, 100 * (q - df) / q), 0.0)
            h2 = q / df
        else:
            i2 = 100 * tau2 / (typical_v + tau2)
            h2 = tau2 / typical_v + 1
    q_p = stats.chi2.sf(q, np.maximum(df, 1))

    nan = np.where(multi, 1.0, np.nan)  # NaN where nothing about heterogeneity is known
    return {
        "estimate": mu,
        "se": se,
        "statistic": statistic,
        "p_value": p_value,
        "ci_low": mu - crit * se,
        "ci_high": mu + crit * se,
        "pi_low": (mu - pi_half) * nan,
        "pi_high": (mu + pi_half) * nan,
        "tau2": tau2 * nan,
        "tau2_se": tau2_se * nan,
        "i2": i2 * nan,
        "h2": h2 * nan,
        "q": q,
        "q_df": df.astype(int),
        "q_p_value": q_p * nan,
        "k": k.astype(int),
        "tau2_reset": tau2_reset,
        "method": method,
        "hksj": hksj,
        "weights": weights,
    }


def _fisher_scoring(
    y: np.ndarray, v: np.ndarray, m: np.ndarray, *, k: np.ndarray, reml: bool
) -> tuple[np.ndarray, np.ndarray]:
    """REML or ML tau^2 by metafor's Fisher scoring, vectorised over groups.

    Returns tau^2 and a flag for the groups where it was reset to 0 by metafor's check of
    the likelihood at 0. Fisher scoring can oscillate instead of converging (metafor then
    stops with an error and suggests a step adjustment); for those groups the score equation
    is solved by bisection instead, which finds the same maximum to full precision.
    """
    groups = len(k)
    multi = k >= 2
    with np.errstate(divide="ignore", invalid="ignore"):
        y_bar = (m * y).sum(axis=1) / k
        # Hedges' (1983) moment estimator: metafor's starting value.
        hedges = (m * (y - y_bar[:, None]) ** 2).sum(axis=1) / (k - 1) - (m * v).sum(axis=1) / k
    tau2 = np.where(multi, np.maximum(0.0, hedges), 0.0)
    active = multi.copy()
    failed = np.zeros(groups, dtype=bool)
    iteration = 0
    while active.any():
        iteration += 1
        rows = np.flatnonzero(active)
        t = tau2[rows]
        step = _fisher_step(y[rows], v[rows], m[rows], t, reml=reml)
        # metafor halves the step until tau^2 stays >= 0; from tau^2 = 0 a negative step
        # halves down to zero, so set it there directly instead of halving ~1075 times.
        step = np.where((t == 0) & (step < 0), 0.0, step)
        below = t + step < 0
        while below.any():
            step = np.where(below, step / 2, step)
            below = t + step < 0
        tau2[rows] = t + step
        still = np.abs(step) > REML_THRESHOLD
        if iteration > REML_MAXITER:
            failed[rows[still]] = True
            break
        active[rows[~still]] = False
    if failed.any():
        tau2[failed] = _score_root(y[failed], v[failed], m[failed], reml=reml)

    # metafor's ll0check: if the (restricted) likelihood is higher at tau^2 = 0 than at the
    # estimate, the algorithm stopped at a local maximum; use 0.
    check = multi & (tau2 > REML_THRESHOLD)
    tau2_reset = np.zeros(groups, dtype=bool)
    if check.any():
        ll_at = lambda t: _log_likelihood(y[check], v[check], m[check], t, reml=reml)  # noqa: E731
        worse = ll_at(np.zeros(check.sum())) - ll_at(tau2[check]) > LL0_TOL
        index = np.flatnonzero(check)[worse]
        tau2[index] = 0.0
        tau2_reset[index] = True
    return tau2, tau2_reset


def _fisher_step(y: np.ndarray, v: np.ndarray, m: np.ndarray, tau2: np.ndarray, *, reml: bool) -> np.ndarray:
    """Score over expected information for tau^2, one value per group.

    For the intercept-only model ``P = W - w w' / sum(w)``, so the traces and quadratic forms
    metafor computes with matrices reduce to sums: ``y'PPy = sum(w**2 (y - mu)**2)``,
    ``tr(P) = S1 - S2/S1`` and ``tr(PP) = S2 - 2 S3/S1 + (S2/S1)**2`` with ``Sj = sum(w**j)``.
    The sign of the step is the sign of the score.
    """
    w = m / (v + tau2[:, None])
    s1 = w.sum(axis=1)
    s2 = (w**2).sum(axis=1)
    mu = (w * y).sum(axis=1) / s1
    ypp_y = (w**2 * (y - mu[:, None]) ** 2).sum(axis=1)
    if reml:
        return (ypp_y - (s1 - s2 / s1)) / (s2 - 2 * (w**3).sum(axis=1) / s1 + (s2 / s1) ** 2)
    return (ypp_y - s1) / s2


def _score_root(y: np.ndarray, v: np.ndarray, m: np.ndarray, *, reml: bool) -> np.ndarray:
    """Root of the REML/ML score in tau^2 >= 0 by bisection (0 if the score is <= 0 at 0)."""
    lo = np.zeros(len(y))
    positive_at_zero = _fisher_step(y, v, m, lo, reml=reml) > 0
    # The score turns negative once tau^2 clearly exceeds the spread of the estimates;
    # start there and double until it does.
    y_bar = (m * y).sum(axis=1) / m.sum(axis=1)
    hi = np.maximum((m * (y - y_bar[:, None]) ** 2).sum(axis=1), 1e-8)
    for _ in range(200):
        up = _fisher_step(y, v, m, hi, reml=reml) > 0
        if not (up & positive_at_zero).any():
            break
        hi = np.where(up, 2 * hi, hi)
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if not ((mid > lo) & (mid < hi)).any():
            break
        up = _fisher_step(y, v, m, mid, reml=reml) > 0
        lo = np.where(up, mid, lo)
        hi = np.where(up, hi, mid)
    return np.where(positive_at_zero, 0.5 * (lo + hi), 0.0)


def _log_likelihood(y: np.ndarray, v: np.ndarray, m: np.ndarray, tau2: np.ndarray, *, reml: bool) -> np.ndarray:
    """(Restricted) log-likelihood up to a constant that does not depend on tau^2."""
    w = m / (v + tau2[:, None])
    sw = w.sum(axis=1)
    mu = (w * y).sum(axis=1) / sw
    rss = (w * (y - mu[:, None]) ** 2).sum(axis=1)
    ll = -0.5 * (m * np.log(v + tau2[:, None])).sum(axis=1) - 0.5 * rss
    if reml:
        ll -= 0.5 * np.log(sw)
    return ll


def _paule_mandel(y: np.ndarray, v: np.ndarray, m: np.ndarray, *, k: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Paule-Mandel tau^2: root of ``Q(tau2) = k - 1`` by safeguarded Newton, vectorised.

    ``Q(tau2)`` decreases in tau2 with derivative ``-sum(w**2 (y - mu)**2)``. The root is
    bracketed by 0 (where Q is Cochran's Q > k - 1) and the sample variance of the estimates:
    ``Q(t) <= sum((y - y_bar)**2) / t``, which is below k - 1 there.
    """
    tau2 = np.zeros(len(k))
    need = (k >= 2) & (q > k - 1)
    if not need.any():
        return tau2
    y, v, m, k = y[need], v[need], m[need], k[need]
    y_bar = (m * y).sum(axis=1) / k
    lo = np.zeros(len(k))
    hi = (m * (y - y_bar[:, None]) ** 2).sum(axis=1) / (k - 1)
    t = lo.copy()
    for _ in range(200):
        w = m / (v + t[:, None])
        mu = (w * y).sum(axis=1) / w.sum(axis=1)
        r2 = (y - mu[:, None]) ** 2
        f = (w * r2).sum(axis=1) - (k - 1)
        slope = -(w**2 * r2).sum(axis=1)
        lo = np.where(f > 0, t, lo)
        hi = np.where(f < 0, t, hi)
        newton = t - f / slope
        inside = (newton > lo) & (newton < hi)
        t_new = np.where(f == 0, t, np.where(inside, newton, 0.5 * (lo + hi)))
        done = np.abs(t_new - t) <= 1e-13 * np.maximum(1.0, t)
        t = t_new
        if done.all():
            break
    tau2[need] = t
    return tau2
