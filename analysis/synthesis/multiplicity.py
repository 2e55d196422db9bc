"""Adjusting p-values for the many tests of an evaluation (32 provinces x 31 indicators).

Two families of tests, two adjustments:

* **Exploratory screening** of every province x indicator result (992 tests per measure):
  the Benjamini-Hochberg (1995) step-up procedure, which controls the false discovery rate
  (the expected share of false findings among the findings) for independent or positively
  dependent p-values. Adjusted p-values are those of R's ``p.adjust(p, method = "BH")``:
  ``p_(i) * m / i`` sorted ascending, made monotone from the largest down and capped at 1.
* **Confirmatory claims** about a short list of primary indicators declared in advance
  (for example the national improvement targets: STEMI and stroke reperfusion, unplanned
  return to the operating room, perioperative mortality): Holm's (1979) step-down
  procedure, which controls the family-wise error rate under any dependence. Adjusted
  p-values are those of ``p.adjust(p, method = "holm")``.

As in R, missing p-values are left out of the count ``m`` and stay missing.

References
----------
Benjamini Y, Hochberg Y (1995). Controlling the false discovery rate: a practical and
powerful approach to multiple testing. J R Stat Soc B 57:289-300.
Holm S (1979). A simple sequentially rejective multiple test procedure. Scand J Stat
6:65-70.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

__all__ = ["adjust_pvalues", "benjamini_hochberg", "holm"]


def _as_pvalues(p: ArrayLike) -> np.ndarray:
    values = np.asarray(p, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"p-values must be one-dimensional, not of shape {values.shape}")
    finite = values[~np.isnan(values)]
    if np.any((finite < 0) | (finite > 1)):
        bad = finite[(finite < 0) | (finite > 1)][:5].tolist()
        raise ValueError(f"p-values must lie in [0, 1]; got {bad}")
    return values


def benjamini_hochberg(p: ArrayLike) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), as R's ``p.adjust(p, "BH")``.

    Parameters
    ----------
    p : array-like of float, shape (m,)
        Raw p-values in [0, 1]; NaN is allowed, stays NaN and is not counted in ``m``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order. Rejecting where the adjusted value is at
        most ``q`` is the BH procedure at false discovery rate ``q``.

    Examples
    --------
    >>> benjamini_hochberg([0.01, 0.04, 0.03, 0.20]).round(4).tolist()
    [0.04, 0.0533, 0.0533, 0.2]
    >>> benjamini_hochberg([0.02, float("nan"), 0.01]).tolist()
    [0.02, nan, 0.02]
    """
    values = _as_pvalues(p)
    out = np.full(values.shape, np.nan)
    keep = np.flatnonzero(~np.isnan(values))
    m = keep.size
    if m == 0:
        return out
    order = np.argsort(values[keep], kind="stable")[::-1]  # largest first
    ranks = np.arange(m, 0, -1)  # rank i of each sorted value, m down to 1
    adjusted = np.minimum.accumulate(values[keep][order] * m / ranks)
    out[keep[order]] = np.minimum(adjusted, 1.0)
    return out


def holm(p: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error rate), as R's ``p.adjust(p, "holm")``.

    Parameters
    ----------
    p : array-like of float, shape (m,)
        Raw p-values in [0, 1]; NaN is allowed, stays NaN and is not counted in ``m``.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values in the input order: ``max_{j <= i} min(1, (m - j + 1) p_(j))``
        for the i-th smallest.

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, 0.20]).round(4).tolist()
    [0.04, 0.09, 0.09, 0.2]
    """
    values = _as_pvalues(p)
    out = np.full(values.shape, np.nan)
    keep = np.flatnonzero(~np.isnan(values))
    m = keep.size
    if m == 0:
        return out
    order = np.argsort(values[keep], kind="stable")  # smallest first
    multipliers = np.arange(m, 0, -1)  # m, m - 1, ..., 1
    adjusted = np.maximum.accumulate(np.minimum(values[keep][order] * multipliers, 1.0))
    out[keep[order]] = adjusted
    return out


def _groups(table: pd.DataFrame, keys: Sequence[str]) -> Iterable[np.ndarray]:
    """Positional row indices of each group (NaN keys form their own groups)."""
    if not keys:
        yield np.arange(len(table))
        return
    codes = table.groupby(list(keys), sort=False, dropna=False).ngroup().to_numpy()
    for code in np.unique(codes):
        yield np.flatnonzero(codes == code)


def adjust_pvalues(
    table: pd.DataFrame,
    *,
    primary: Iterable[int],
    p_value: str = "p_value",
    bh_by: Sequence[str] | None = None,
    holm_by: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Add Benjamini-Hochberg (``p_bh``) and Holm (``p_holm``) adjusted p-values to a table.

    Works on the pipeline's provincial effects table (``effects.csv``) and on the national
    table (``national_effects.csv``).

    Parameters
    ----------
    table : pandas.DataFrame
        One row per test, with columns ``indicator``, ``measure`` and ``p_value`` (and
        ``province`` in a provincial table).
    primary : iterable of int
        Annex numbers of the primary indicators declared before looking at the results,
        e.g. ``(11, 12, 31, 32)``; ``()`` for none (``p_holm`` is then all NaN).
    p_value : str
        Column with the raw two-sided p-values.
    bh_by : sequence of str, optional
        Columns defining one BH family. Default ``["measure"]``: all province x indicator
        results of a measure form one family (e.g. the 992 end-of-plan relative effects);
        in the national table, all indicators of a measure.
    holm_by : sequence of str, optional
        Columns defining one Holm family among the primary rows. Default ``["measure"]`` in
        a table without a ``province`` column (the national claims) and
        ``["province", "measure"]`` with one (each province's claims about its primary
        indicators).

    Returns
    -------
    pandas.DataFrame
        A copy of ``table`` with two columns added (or replaced):

        ``p_bh``
            BH-adjusted p-value within the ``bh_by`` family (NaN where ``p_value`` is).
        ``p_holm``
            Holm-adjusted p-value within the ``holm_by`` family, for rows of primary
            indicators only; NaN for the other rows.

    Examples
    --------
    >>> national = pd.DataFrame({
    ...     "indicator": [11, 12, 31, 32, 33],
    ...     "measure": "effect_end_relative",
    ...     "p_value": [0.001, 0.02, 0.03, 0.5, 0.04],
    ... })
    >>> out = adjust_pvalues(national, primary=(11, 12, 31, 32))
    >>> out[["indicator", "p_bh", "p_holm"]].round(4)
       indicator   p_bh  p_holm
    0         11  0.005   0.004
    1         12  0.050   0.060
    2         31  0.050   0.060
    3         32  0.500   0.500
    4         33  0.050     NaN
    """
    required = [p_value, "indicator", "measure"]
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise ValueError(f"table has no column(s) {missing}")
    primary_set = {int(i) for i in primary}
    provincial = "province" in table.columns
    bh_keys = ["measure"] if bh_by is None else list(bh_by)
    holm_keys = (["province", "measure"] if provincial else ["measure"]) if holm_by is None else list(holm_by)
    for keys, name in ((bh_keys, "bh_by"), (holm_keys, "holm_by")):
        absent = [k for k in keys if k not in table.columns]
        if absent:
            raise ValueError(f"{name} names column(s) {absent} that the table does not have")

    out = table.copy()
    raw = pd.to_numeric(out[p_value], errors="coerce").to_numpy(dtype=float)
    p_bh = np.full(len(out), np.nan)
    for rows in _groups(out, bh_keys):
        p_bh[rows] = benjamini_hochberg(raw[rows])
    p_holm = np.full(len(out), np.nan)
    is_primary = out["indicator"].astype(int).isin(primary_set).to_numpy()
    if is_primary.any():
        subset = out.iloc[np.flatnonzero(is_primary)]
        positions = np.flatnonzero(is_primary)
        for rows in _groups(subset, holm_keys):
            p_holm[positions[rows]] = holm(raw[positions[rows]])
    out["p_bh"] = p_bh
    out["p_holm"] = p_holm
    return out
