"""Whether a model can be estimated from a series at all: checks made on the data and the
design (not on where an iteration stopped), so that every machine reaches the same verdict.

- :func:`check_mle_exists`: separation, a phase without events (or with only events) that
  sends a coefficient to infinity;
- :func:`check_residual_variation`: a series the model reproduces exactly (constant or
  exactly linear), which leaves nothing to estimate the uncertainty from.

Both raise :class:`ModelError` with a message that says what to change.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.optimize import linprog

from analysis.its.families import Family


class ModelError(ValueError):
    """The model cannot be fitted to this series."""


#: Calendar columns whose coefficient may run off to minus infinity: a shock month or a
#: calendar month with no events is then fitted exactly (as R's glm and statsmodels do),
#: and the other coefficients are unaffected.
_ABSORBING_COLUMNS = ("shock_", "month_")


def check_mle_exists(
    X: pd.DataFrame, y: np.ndarray, size: np.ndarray | None, family: Family, *, time: pd.Index | None = None
) -> None:
    """Refuse data whose maximum-likelihood estimate does not exist (separation).

    A log-link count model has no finite maximum when some direction ``b`` of the
    coefficients keeps ``x'b = 0`` in every row with events and ``x'b <= 0`` (not all 0)
    in rows without: the likelihood keeps rising along ``b`` (a phase with no events).
    A logit model likewise with ``x'b >= 0`` in rows where every trial is an event. Such a
    direction is found by a linear programme (Konis 2007, as R's ``detectseparation``),
    which depends only on the data's zero pattern and the design, not on where IRLS
    stopped, so the decision is the same on every machine. Directions made of
    ``shock_``/``month_`` columns alone are allowed (that month is fitted exactly; the
    other estimates are finite). Gaussian models, and count data without zeros (or
    full cells), cannot be separated and are not checked.

    Raises
    ------
    ModelError
        Naming the periods fitted at the boundary and the terms that run off.
    """
    if family.name == "gaussian":
        return
    y = np.asarray(y, dtype=float)
    low = y == 0
    high = (y == np.asarray(size, dtype=float)) if family.name == "binomial" else np.zeros(len(y), bool)
    if not (low.any() or high.any()):
        return
    A = X.to_numpy(dtype=float)
    sign = np.where(low, 1.0, np.where(high, -1.0, 0.0))  # sign * x'b <= 0 at a boundary row
    free = ~(low | high)
    absorbing = X.columns.str.startswith(_ABSORBING_COLUMNS)

    def boundary_gain(columns: np.ndarray) -> tuple[float, np.ndarray]:
        """max sum over boundary rows of -sign * x'b with |b| <= 1 over ``columns``."""
        sub = A[:, columns]
        if sub.shape[1] == 0:
            return 0.0, np.zeros(0)
        result = linprog(
            c=(sign[:, None] * sub).sum(axis=0),
            A_ub=sign[~free, None] * sub[~free] if (~free).any() else None,
            b_ub=np.zeros(int((~free).sum())) if (~free).any() else None,
            A_eq=sub[free] if free.any() else None,
            b_eq=np.zeros(int(free.sum())) if free.any() else None,
            bounds=[(-1.0, 1.0)] * sub.shape[1],
            method="highs",
        )
        if result.status != 0:  # pragma: no cover - the programme is bounded and feasible (b = 0)
            return 0.0, np.zeros(sub.shape[1])
        return -float(result.fun), result.x

    # Scaled to the design: the gain is 0 exactly without separation, and of the order of
    # the design's entries with it; 1e-7 of them separates the two for any realistic design.
    tol = 1e-7 * max(1.0, float(np.abs(A).max()))
    gain, direction = boundary_gain(np.ones(A.shape[1], dtype=bool))
    if gain <= tol or boundary_gain(absorbing)[0] >= gain - tol:
        return
    moved = np.abs(A @ direction) > tol
    where = (
        [str(t) for t in np.asarray(time)[moved & ~free]]
        if time is not None
        else [int(i) for i in np.flatnonzero(moved & ~free)]
    )
    terms = [c for c, b in zip(X.columns, direction) if abs(b) > 1e-9 and not c.startswith(_ABSORBING_COLUMNS)]
    what = "no events" if family.name != "binomial" else "no events, or only events,"
    periods = ", ".join(where) if len(where) <= 6 else f"{len(where)} periods from {where[0]} to {where[-1]}"
    raise ModelError(
        f"the model cannot be estimated: the maximum-likelihood estimate does not exist "
        f"(separation): {periods} have {what} in a way the terms {terms} can "
        f"fit exactly, so those estimates run off to infinity. Shorten or drop the phase without "
        f"events, pool the series with others, or use a different model for it"
    )


def check_residual_variation(y: np.ndarray, fitted: np.ndarray, family: Family) -> None:
    """Refuse a fit that reproduces every value: a constant series, an exactly linear one,
    or counts the design fits exactly. Nothing is left to estimate the variation from, and
    the standard errors would be zero (or 0/0) whatever the data's real uncertainty.

    The thresholds are far from both sides: an exact fit leaves residuals at rounding level
    (relative size about 1e-15), real data at least about 1e-4.
    """
    y, fitted = np.asarray(y, dtype=float), np.asarray(fitted, dtype=float)
    if family.name == "gaussian":
        exact = np.sum((y - fitted) ** 2) <= 1e-20 * max(float(np.sum(y**2)), np.finfo(float).tiny)
    else:
        # statsmodels' test of perfect separation: the model reproduces every count.
        exact = np.allclose(fitted, y, rtol=0, atol=1e-8)
    if exact:
        raise ModelError(
            "the model cannot be estimated: the fit reproduces every value exactly (a constant or "
            "exactly linear series, or counts the design fits perfectly), so there is no residual "
            "variation to estimate standard errors from; check that the series is real data"
        )
