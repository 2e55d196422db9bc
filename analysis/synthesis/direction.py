"""Effects read in the indicator's direction of improvement: improvement, deterioration or
inconclusive, for a whole table at once.

The rule is the report's (:func:`analysis.report.tables.classify`), restated here for tables
because the statistics tables are built before the report layer (and the package's
dependencies run one way: synthesis does not import report). An effect is an
**improvement** when its confidence interval excludes zero on the side the annex calls
better (above zero for ``up`` indicators, below for ``down``), a **deterioration** when it
excludes zero on the other side, and **inconclusive** otherwise, including a missing limit.
Zero means "no effect" on every scale the pipeline reports (a difference, ratio - 1, a logit
or log contrast), so the rule applies to every measure. An interval touching zero is
inconclusive.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.registry import get_indicator

__all__ = ["VERDICTS", "classify_effects", "improvement_sign"]

#: Verdicts in the order legends and tables list them (as ``analysis.report.tables.VERDICTS``).
VERDICTS = ("improvement", "deterioration", "inconclusive")


def improvement_sign(indicators: pd.Series | np.ndarray | list) -> np.ndarray:
    """+1 where a larger value is better (``up``), -1 where smaller is (``down``).

    Raises ``ValueError`` for status items, which have no direction.

    Examples
    --------
    >>> improvement_sign([11, 32]).tolist()
    [1, -1]
    """
    numbers = pd.Series(np.asarray(indicators)).astype(int)
    signs = {n: get_indicator(int(n)).improvement_sign() for n in numbers.unique()}
    status = sorted(n for n, s in signs.items() if s == 0)
    if status:
        raise ValueError(f"indicator(s) {status} are status items without a direction of improvement")
    return numbers.map(signs).to_numpy(dtype=int)


def classify_effects(
    table: pd.DataFrame,
    *,
    ci_low: str = "ci_low",
    ci_high: str = "ci_high",
    direction: str | None = None,
) -> pd.DataFrame:
    """Add the indicator's ``direction`` and the effect's ``verdict`` to a table of effects.

    Parameters
    ----------
    table : pandas.DataFrame
        Rows with an ``indicator`` column (annex number) and confidence limits, e.g. the
        pipeline's ``effects`` or ``national_effects`` table or a sensitivity table.
    ci_low, ci_high : str
        Columns with the confidence limits, on a scale where 0 means no effect.
    direction : str, optional
        A column holding ``"up"``/``"down"`` per row, to use instead of the registry
        (e.g. for outcomes not in the annex).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with ``direction`` (``"up"`` or ``"down"``) and ``verdict``
        (``"improvement"``, ``"deterioration"`` or ``"inconclusive"``) added or replaced.

    Raises
    ------
    ValueError
        If a row's indicator is a status item or a direction is neither up nor down.

    Examples
    --------
    >>> effects = pd.DataFrame({
    ...     "indicator": [32, 32, 11, 11],
    ...     "estimate": [-0.08, 0.05, 0.06, 0.02],
    ...     "ci_low": [-0.12, 0.01, 0.02, -0.01],
    ...     "ci_high": [-0.04, 0.09, 0.10, float("nan")],
    ... })
    >>> classify_effects(effects)[["indicator", "direction", "verdict"]]
       indicator direction        verdict
    0         32      down    improvement
    1         32      down  deterioration
    2         11        up    improvement
    3         11        up   inconclusive
    """
    missing = [
        c
        for c in (ci_low, ci_high, *([] if direction else ["indicator"]), *([direction] if direction else []))
        if c not in table.columns
    ]
    if missing:
        raise ValueError(f"table has no column(s) {missing}")
    out = table.copy()
    if direction is None:
        sign = improvement_sign(out["indicator"]) if len(out) else np.zeros(0, dtype=int)
    else:
        labels = out[direction].astype(str)
        bad = sorted(set(labels) - {"up", "down"})
        if bad:
            raise ValueError(f"direction must be 'up' or 'down', got {bad}")
        sign = np.where(labels == "up", 1, -1)
    low = pd.to_numeric(out[ci_low], errors="coerce").to_numpy(dtype=float) * sign
    high = pd.to_numeric(out[ci_high], errors="coerce").to_numpy(dtype=float) * sign
    # Flipping the sign of a down indicator swaps its limits.
    lower, upper = np.minimum(low, high), np.maximum(low, high)
    known = np.isfinite(low) & np.isfinite(high)
    verdict = np.where(
        known & (lower > 0), "improvement", np.where(known & (upper < 0), "deterioration", "inconclusive")
    )
    out["direction"] = np.where(sign > 0, "up", "down")
    out["verdict"] = verdict
    return out
