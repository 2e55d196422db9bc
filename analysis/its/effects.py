"""Effect contrasts with delta-method intervals.

Every effect is a smooth function of the coefficients, ``f(beta)``; its standard error is
``sqrt(g' V g)`` with ``g`` the gradient of ``f`` (the delta method), and its interval uses
the ``t`` distribution with the covariance estimator's degrees of freedom (normal when
those are infinite). Ratios are handled on the log scale, where the delta method is more
accurate, and transformed back.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import special


@dataclass(frozen=True)
class Contrast:
    """One estimated effect with its interval.

    ``scale`` names the scale of ``estimate`` (``logit``, ``log``, ``identity`` for model
    coefficients; ``ratio - 1`` for relative effects; a display unit or ``count`` otherwise).
    """

    measure: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    scale: str
    #: Degrees of freedom of the t reference (inf: normal).
    df: float = float("inf")

    def as_dict(self) -> dict[str, float | str]:
        return asdict(self)


# The t and normal quantiles and tail areas come from scipy.special's ufuncs, which
# scipy.stats.t wraps: called once per effect for a thousand series, the wrapper's
# argument checking costs more than the computation.
def critical_value(df: float | np.ndarray, level: float = 0.95) -> float | np.ndarray:
    """Two-sided critical value of the t distribution with ``df`` degrees of freedom (the
    normal where ``df`` is infinite), for a scalar or an array of ``df``: the package's one
    implementation of it.

    Examples
    --------
    >>> round(critical_value(float("inf"), 0.95), 4), round(critical_value(10.0, 0.95), 4)
    (1.96, 2.2281)
    >>> critical_value(np.array([10.0, np.inf]), 0.9).round(4).tolist()
    [1.8125, 1.6449]
    """
    q = 0.5 + level / 2
    df = np.asarray(df, dtype=float)
    finite = np.isfinite(df)
    value = np.where(finite, special.stdtrit(np.where(finite, df, 1.0), q), special.ndtri(q))
    return float(value) if value.ndim == 0 else value


def _p_value(z: float, df: float) -> float:
    """Two-sided p-value of ``z`` against t(``df``) (normal when ``df`` is infinite)."""
    if not np.isfinite(z):
        return float("nan")
    return float(2 * (special.ndtr(-abs(z)) if not np.isfinite(df) else special.stdtr(df, -abs(z))))


def linear(
    measure: str, value: float, gradient: np.ndarray, cov: np.ndarray, *, df: float, level: float, scale: str
) -> Contrast:
    """Contrast ``value`` with gradient ``gradient``: symmetric interval, test of zero."""
    se = float(np.sqrt(max(gradient @ cov @ gradient, 0.0)))
    crit = critical_value(df, level)
    z = value / se if se > 0 else np.inf * np.sign(value) if value else np.nan
    return Contrast(measure, value, se, value - crit * se, value + crit * se, _p_value(z, df), scale, float(df))


def ratio_minus_one(
    measure: str, log_ratio: float, gradient: np.ndarray, cov: np.ndarray, *, df: float, level: float
) -> Contrast:
    """Relative effect ``exp(log_ratio) - 1`` with the interval built on the log scale.

    ``se`` is the delta-method standard error of the relative effect itself.
    """
    on_log = linear(measure, log_ratio, gradient, cov, df=df, level=level, scale="log")
    with np.errstate(over="ignore"):  # an unbounded upper limit is +inf, not an error
        ratio = float(np.exp(log_ratio))
        low, high = float(np.expm1(on_log.ci_low)), float(np.expm1(on_log.ci_high))
    return Contrast(
        measure,
        ratio - 1,
        ratio * on_log.se,
        low,
        high,
        on_log.p_value,
        "ratio - 1",
        on_log.df,
    )


def contrasts_frame(contrasts: list[Contrast]) -> pd.DataFrame:
    """Tidy table, one row per contrast."""
    return pd.DataFrame([c.as_dict() for c in contrasts])


def linear_many(
    values: np.ndarray, gradients: np.ndarray, cov: np.ndarray, *, df: np.ndarray, level: float
) -> dict[str, np.ndarray]:
    """:func:`linear` for many contrasts: ``values`` (m), ``gradients`` (m x p), ``df`` (m).

    Returns arrays ``estimate``, ``se``, ``ci_low``, ``ci_high``, ``p_value``, ``df``.
    """
    se = np.sqrt(np.maximum(np.einsum("mi,ij,mj->m", gradients, cov, gradients), 0.0))
    return linear_from_se(values, se, df=df, level=level)


def linear_from_se(values: np.ndarray, se: np.ndarray, *, df: np.ndarray, level: float) -> dict[str, np.ndarray]:
    """Intervals and two-sided tests of many estimates from their standard errors, with
    t(``df``) quantiles (normal where ``df`` is infinite); the arrays of :func:`linear_many`.

    Examples
    --------
    >>> out = linear_from_se(np.array([2.0]), np.array([1.0]), df=np.array([np.inf]), level=0.95)
    >>> [round(float(out[k][0]), 3) for k in ("ci_low", "ci_high", "p_value")]
    [0.04, 3.96, 0.046]
    """
    values, se = np.asarray(values, float), np.asarray(se, float)
    df = np.broadcast_to(np.asarray(df, float), values.shape)
    finite = np.isfinite(df)
    q = 0.5 + level / 2
    crit = np.where(finite, special.stdtrit(np.where(finite, df, 1.0), q), special.ndtri(q))
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(se > 0, values / se, np.where(values != 0, np.inf * np.sign(values), np.nan))
    tail = np.where(finite, special.stdtr(np.where(finite, df, 1.0), -np.abs(z)), special.ndtr(-np.abs(z)))
    return {
        "estimate": values,
        "se": se,
        "ci_low": values - crit * se,
        "ci_high": values + crit * se,
        "p_value": np.where(np.isfinite(z), 2 * tail, np.nan),
        "df": np.array(df),
    }


def ratio_minus_one_many(
    log_ratios: np.ndarray, gradients: np.ndarray, cov: np.ndarray, *, df: np.ndarray, level: float
) -> dict[str, np.ndarray]:
    """:func:`ratio_minus_one` for many contrasts (log ratios, their gradients and df)."""
    on_log = linear_many(log_ratios, gradients, cov, df=df, level=level)
    with np.errstate(over="ignore"):
        ratio = np.exp(on_log["estimate"])
        return {
            "estimate": ratio - 1,
            "se": ratio * on_log["se"],
            "ci_low": np.expm1(on_log["ci_low"]),
            "ci_high": np.expm1(on_log["ci_high"]),
            "p_value": on_log["p_value"],
            "df": on_log["df"],
        }
