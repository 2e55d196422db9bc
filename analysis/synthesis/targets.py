"""Will a province meet its own end-of-plan targets? Projections to the target month.

Provincial implementation plans set numeric targets (Anhui: STEMI reperfusion >= 80%,
stroke reperfusion >= 45%, unplanned return to the operating room <= 1.8 permille, by
end-2025). Targets are data, not code: they live in ``analysis/registry/targets.csv``
(one row per province x indicator: ``comparison`` ``>=`` or ``<=``, ``target`` in the
indicator's display unit, ``target_month``, the ``scope`` the target refers to, its
``source`` and a ``note``); users add rows for other provinces there or pass their own
table.

The projection is the fitted model's expected value in the target month with the plan's
level and slope changes continued (:meth:`analysis.its.ITSResults.predictions`), with its
confidence interval. The probability of meeting the target is computed on the link scale
(logit for proportions, log for rates, identity for means), where the estimate
``eta_hat`` is approximately ``t``-distributed around the true ``eta`` with the model's
standard error and residual degrees of freedom (the same approximation as the interval):

``p_meet = P(eta >= link(target))`` ``= F_t((eta_hat - link(target)) / se)`` for ``>=``
targets (and the mirror image for ``<=``).

It is a confidence-distribution probability: the share of the confidence distribution of
the expected value that lies on the target's side (a flat-prior posterior probability,
about). It describes the expected value, not one month's observed value;
``p_meet_observed`` adds the month-to-month variation (the latent AR(1) variance
``sigma2``) and the binomial or Poisson sampling variance for the month's denominator (the
observed one when the month is in the data, else the mean of the last 12 months) to the
variance on the link scale. Both assume the fitted trends continue: past the data, they
are extrapolations.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import stats
from scipy.special import expit, logit

from analysis.evaluation.model import fit_default_model
from analysis.evaluation.settings import EvaluationSettings
from analysis.its.effects import critical_value
from analysis.registry import get_indicator, get_province, timeline

if TYPE_CHECKING:
    from analysis.its import ITSResults

__all__ = [
    "PROJECTION_COLUMNS",
    "TARGET_COLUMNS",
    "assess_targets",
    "load_targets",
    "project",
    "project_results",
    "target_attainment",
]

#: Columns of ``analysis/registry/targets.csv``.
TARGET_COLUMNS = ["province", "indicator", "comparison", "target", "unit", "target_month", "scope", "source", "note"]
#: Columns of :func:`project`.
PROJECTION_COLUMNS = [
    "province",
    "indicator",
    "month",
    "unit",
    "projected",
    "ci_low",
    "ci_high",
    "pi_low",
    "pi_high",
    "link",
    "eta",
    "se_link",
    "df",
    "sigma2",
    "sampling_var",
    "last_data_month",
    "extrapolated",
]

_LINK = {"logit": (logit, expit), "log": (np.log, np.exp), "identity": (lambda x: x, lambda x: x)}


def load_targets(path: str | Path | None = None) -> pd.DataFrame:
    """Read and check a targets table (default: the registry's ``targets.csv``).

    Parameters
    ----------
    path : str or pathlib.Path, optional
        A CSV with the columns of :data:`TARGET_COLUMNS`; the package's own table when
        omitted.

    Returns
    -------
    pandas.DataFrame
        The targets with ``province`` as GB/T code (names are accepted in the file),
        ``indicator`` as int, ``target`` as float and ``target_month`` as ``YYYY-MM``.

    Raises
    ------
    ValueError
        Listing every problem at once (file row, column, value, rule): unknown province
        or indicator, a status indicator, a comparison other than ``>=``/``<=`` or against
        the indicator's direction of improvement, a unit other than the registry's, a
        target outside the unit's range, a bad month, a duplicate province x indicator.

    Examples
    --------
    >>> targets = load_targets()
    >>> targets[["province", "indicator", "comparison", "target", "unit"]].values.tolist()
    [['340000', 11, '>=', 80.0, '%'], ['340000', 12, '>=', 45.0, '%'], ['340000', 31, '<=', 1.8, '‰']]
    """
    if path is None:
        text = resources.files("analysis.registry").joinpath("targets.csv").read_text(encoding="utf-8-sig")
        from io import StringIO

        raw = pd.read_csv(StringIO(text), dtype=str, keep_default_na=False)
        source = "analysis/registry/targets.csv"
    else:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
        source = str(path)
    missing = [c for c in TARGET_COLUMNS if c not in raw.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; expected {TARGET_COLUMNS}")
    problems: list[str] = []
    rows = []
    for i, row in raw.iterrows():
        line = i + 2  # the header is line 1

        def problem(column: str, rule: str, line: int = line, row: pd.Series = row) -> None:
            problems.append(f"{source}, row {line}, column {column!r}, value {row[column]!r}: {rule}")

        record = dict(row)
        try:
            record["province"] = get_province(row["province"].strip()).code
        except KeyError as err:
            problem("province", str(err).strip("'\""))
        indicator = None
        try:
            indicator = get_indicator(row["indicator"].strip())
            record["indicator"] = indicator.number
            if not indicator.is_quantitative:
                problem("indicator", "a status item has no numeric target")
                indicator = None
        except KeyError as err:
            problem("indicator", str(err).strip("'\""))
        comparison = row["comparison"].strip()
        if comparison not in (">=", "<="):
            problem("comparison", "must be '>=' or '<='")
        elif indicator is not None and comparison != {"up": ">=", "down": "<="}[indicator.direction]:
            problem(
                "comparison",
                f"indicator {indicator.number} improves {indicator.direction}wards; "
                f"its target should be {'>=' if indicator.direction == 'up' else '<='}",
            )
        try:
            record["target"] = float(row["target"])
            if not np.isfinite(record["target"]):
                raise ValueError
        except ValueError:
            problem("target", "must be a number in the indicator's display unit")
            record["target"] = np.nan
        if indicator is not None:
            if row["unit"].strip() != indicator.unit:
                problem(
                    "unit",
                    f"indicator {indicator.number} is reported in {indicator.unit!r}; give the target in that unit",
                )
            elif np.isfinite(record["target"]):
                top = indicator.scale if indicator.measure == "proportion" else np.inf
                if not 0 < record["target"] < top:
                    problem("target", f"must lie strictly between 0 and {top} {indicator.unit}")
        try:
            record["target_month"] = str(pd.Period(row["target_month"].strip(), "M"))
        except (ValueError, TypeError):
            problem("target_month", "must be a month, YYYY-MM")
        rows.append(record)
    table = pd.DataFrame(rows, columns=TARGET_COLUMNS)
    if not problems:
        duplicated = table.duplicated(["province", "indicator"], keep=False)
        for i in np.flatnonzero(duplicated.to_numpy()):
            problems.append(
                f"{source}, row {i + 2}: a second target for province {table['province'].iat[i]} and "
                f"indicator {table['indicator'].iat[i]}; keep one row per province x indicator"
            )
    if problems:
        raise ValueError("invalid targets table:\n" + "\n".join(problems))
    table["indicator"] = table["indicator"].astype(int)
    table["target"] = table["target"].astype(float)
    return table


def project_results(res: ITSResults, *, month: str | pd.Period, indicator: int, level: float = 0.95) -> dict:
    """Projection of one fitted model to ``month`` (one row of :func:`project`, without keys).

    Parameters
    ----------
    res : ITSResults
        A fitted model of an annex indicator.
    month : str or pandas.Period
        The month to project to (inside or after the data).
    indicator : int
        Its annex number (for the display unit).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    dict
        The columns of :data:`PROJECTION_COLUMNS` except ``province`` and ``indicator``.
    """
    info = get_indicator(indicator)
    month = pd.Period(month, "M")
    scale = info.scale
    prediction = res.predictions([month], unit_scale=scale, level=level).iloc[0]
    forward, inverse = _LINK[res.family.link]
    df = float(res.df_resid)
    crit = critical_value(df, level)
    # The band is eta -/+ crit * se mapped through the inverse link: map it back.
    eta = float(forward(prediction["fitted"] / scale))
    se = float((forward(prediction["fitted_high"] / scale) - forward(prediction["fitted_low"] / scale)) / (2 * crit))
    sigma2 = float(res.cov_details.get("sigma2", np.nan))
    # Sampling variance of the month's observed value on the link scale (counts only).
    sampling = 0.0
    if res.size is not None:
        months = pd.PeriodIndex(res.time, freq="M")
        where = np.flatnonzero(months == month)
        size = float(res.size[where[0]]) if where.size else float(np.mean(res.size[-12:]))
        mean = float(inverse(eta))
        sampling = 1.0 / (size * mean * (1 - mean)) if res.family.link == "logit" else 1.0 / (size * mean)
    sd_observed = np.sqrt(se**2 + np.nan_to_num(sigma2) + sampling) if np.isfinite(sigma2) else np.nan
    last = pd.Period(res.time[-1], "M")
    return {
        "month": str(month),
        "unit": info.unit,
        "projected": float(prediction["fitted"]),
        "ci_low": float(prediction["fitted_low"]),
        "ci_high": float(prediction["fitted_high"]),
        "pi_low": float(inverse(eta - crit * sd_observed) * scale),
        "pi_high": float(inverse(eta + crit * sd_observed) * scale),
        "link": res.family.link,
        "eta": eta,
        "se_link": se,
        "df": df,
        "sigma2": sigma2,
        "sampling_var": sampling,
        "last_data_month": str(last),
        "extrapolated": bool(month > last),
    }


def _project_group(args: tuple) -> tuple[list[dict], list[dict]]:
    panel, starts, settings, month, level = args
    rows, failures = [], []
    for (province, number), series in panel.groupby(["province", "indicator"], sort=True):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                res = fit_default_model(series, start=starts[province], settings=settings)
            rows.append(
                {
                    "province": province,
                    "indicator": int(number),
                    **project_results(res, month=month, indicator=int(number), level=level),
                }
            )
        except Exception as err:  # one failing series must not stop the others: it is reported
            failures.append(
                {
                    "province": province,
                    "indicator": int(number),
                    "stage": "project",
                    "error": type(err).__name__,
                    "message": str(err),
                }
            )
    return rows, failures


def project(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    month: str | pd.Period = timeline.EVALUATION[1],
    series: Iterable[tuple[str, int]] | None = None,
    level: float = 0.95,
    workers: int = 1,
) -> pd.DataFrame:
    """Projected value of each series in ``month`` with confidence and prediction intervals.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel (:func:`analysis.data.contract.read_panel`).
    starts : mapping
        Plan start month per province code.
    settings : EvaluationSettings, optional
        The pipeline's model choices (default settings when omitted).
    month : str or pandas.Period
        Month to project to; default 2025-12, the end of the evaluation phase.
    series : iterable of (province, indicator), optional
        Only these series (e.g. those with a target); default all.
    level : float
        Confidence level.
    workers : int
        Worker processes (one task per province).

    Returns
    -------
    pandas.DataFrame
        One row per series, columns :data:`PROJECTION_COLUMNS`:

        ``projected``, ``ci_low``, ``ci_high``
            Expected value in ``month`` in the display unit, with the plan's changes
            continued, and its confidence interval.
        ``pi_low``, ``pi_high``
            Interval for the month's observed value (adds ``sigma2`` and ``sampling_var``).
        ``link``, ``eta``, ``se_link``, ``df``
            The projection on the link scale with its standard error and degrees of freedom.
        ``sigma2``, ``sampling_var``
            Latent AR(1) variance and the sampling variance for the month's denominator, on
            the link scale.
        ``last_data_month``, ``extrapolated``
            Last month of data, and whether ``month`` lies beyond it.

        Series that cannot be fitted are left out (a warning names them).

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(1, provinces=["340000"], indicators=[12], end="2025-09")
    >>> out = project(data.panel, starts={"340000": pd.Period("2023-08", "M")})
    >>> out[["month", "unit", "extrapolated"]].values.tolist()
    [['2025-12', '%', True]]
    >>> bool(out["ci_low"].iat[0] < out["projected"].iat[0] < out["ci_high"].iat[0])
    True
    """
    settings = settings or EvaluationSettings()
    month = pd.Period(month, "M")
    data = panel.assign(province=panel["province"].astype(str))
    if series is not None:
        wanted = pd.DataFrame(list(series), columns=["province", "indicator"])
        wanted = wanted.astype({"province": str, "indicator": int})
        data = data.merge(wanted, on=["province", "indicator"], how="inner")
    starts = {str(k): pd.Period(v, "M") for k, v in starts.items()}
    for code in data["province"].unique():
        starts.setdefault(code, timeline.IMPLEMENTATION_START)
    groups = [(g, starts, settings, month, level) for _, g in data.groupby("province", sort=True)]
    workers = max(1, min(workers, len(groups), os.cpu_count() or 1))
    if workers == 1:
        parts = [_project_group(g) for g in groups]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_project_group, groups))
    failures = [f for part in parts for f in part[1]]
    if failures:
        names = ", ".join(f"{f['province']}/{f['indicator']} ({f['error']})" for f in failures[:10])
        warnings.warn(f"{len(failures)} series could not be projected: {names}", RuntimeWarning, stacklevel=2)
    return pd.DataFrame([r for part in parts for r in part[0]], columns=PROJECTION_COLUMNS)


def target_attainment(projections: pd.DataFrame, targets: pd.DataFrame | None = None) -> pd.DataFrame:
    """Probability that each projected series meets its target.

    Parameters
    ----------
    projections : pandas.DataFrame
        Output of :func:`project`, at the targets' month.
    targets : pandas.DataFrame, optional
        Output of :func:`load_targets`; the registry's table when omitted.

    Returns
    -------
    pandas.DataFrame
        One row per target with a projection: ``province``, ``indicator``, ``comparison``,
        ``target``, ``unit``, ``target_month``, ``projected``, ``ci_low``, ``ci_high``,
        ``projected_meets`` (the projection itself is on the target's side),
        ``p_meet`` (probability that the expected value meets the target, see the module
        notes), ``pi_low``, ``pi_high``, ``p_meet_observed`` (probability that the month's
        observed value does), ``extrapolated``, ``scope``, ``source``, ``note``.

    Raises
    ------
    ValueError
        If a projection is for another month than its target's.

    Examples
    --------
    >>> projections = pd.DataFrame({"province": ["340000"], "indicator": [12], "month": ["2025-12"],
    ...     "unit": ["%"], "projected": [45.0], "ci_low": [40.0], "ci_high": [50.0], "pi_low": [35.0],
    ...     "pi_high": [55.0], "link": ["logit"], "eta": [logit(0.45)], "se_link": [0.1], "df": [np.inf],
    ...     "sigma2": [0.01], "sampling_var": [0.0], "last_data_month": ["2025-12"], "extrapolated": [False]})
    >>> out = target_attainment(projections)
    >>> float(out["p_meet"].iat[0])  # projected exactly at the target
    0.5
    """
    targets = load_targets() if targets is None else targets
    left = projections.assign(
        province=projections["province"].astype(str), indicator=projections["indicator"].astype(int)
    )
    right = targets.assign(province=targets["province"].astype(str), indicator=targets["indicator"].astype(int))
    merged = left.merge(right.drop(columns=["unit"]), on=["province", "indicator"], how="inner")
    wrong_month = merged["month"].astype(str) != merged["target_month"].astype(str)
    if wrong_month.any():
        bad = merged.loc[wrong_month, ["province", "indicator", "month", "target_month"]].values.tolist()[:5]
        raise ValueError(f"projections are not at the target month (province, indicator, projected, target): {bad}")
    scale = np.array([get_indicator(int(i)).scale for i in merged["indicator"]], dtype=float)
    target_eta = np.array([_LINK[link][0](t / s) for link, t, s in zip(merged["link"], merged["target"], scale)])
    sign = np.where(merged["comparison"] == ">=", 1.0, -1.0)
    eta, se, df = merged["eta"].to_numpy(float), merged["se_link"].to_numpy(float), merged["df"].to_numpy(float)
    z = sign * (eta - target_eta) / se
    finite_df = np.where(np.isfinite(df), df, 1.0)
    merged["p_meet"] = np.where(np.isfinite(df), stats.t.cdf(z, finite_df), stats.norm.cdf(z))
    sd_observed = np.sqrt(se**2 + merged["sigma2"].to_numpy(float) + merged["sampling_var"].to_numpy(float))
    z_obs = sign * (eta - target_eta) / sd_observed
    merged["p_meet_observed"] = np.where(np.isfinite(df), stats.t.cdf(z_obs, finite_df), stats.norm.cdf(z_obs))
    projected = merged["projected"].to_numpy(float)
    merged["projected_meets"] = np.where(sign > 0, projected >= merged["target"], projected <= merged["target"])
    columns = [
        "province",
        "indicator",
        "comparison",
        "target",
        "unit",
        "target_month",
        "projected",
        "ci_low",
        "ci_high",
        "projected_meets",
        "p_meet",
        "pi_low",
        "pi_high",
        "p_meet_observed",
        "extrapolated",
        "scope",
        "source",
        "note",
    ]
    return merged[columns].reset_index(drop=True)


def assess_targets(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    targets: pd.DataFrame | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """Project every series of ``panel`` that has a target to its target month and assess it.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel.
    starts : mapping
        Plan start month per province code.
    settings : EvaluationSettings, optional
        The pipeline's model choices.
    targets : pandas.DataFrame, optional
        Output of :func:`load_targets`; the registry's table when omitted.
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        As :func:`target_attainment`; empty (with its columns) when no target's series is
        in the panel.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(1, provinces=["340000"], indicators=[11, 12, 31])
    >>> out = assess_targets(data.panel, starts={"340000": pd.Period("2023-08", "M")})
    >>> out[["indicator", "comparison", "target"]].values.tolist()
    [[11, '>=', 80.0], [12, '>=', 45.0], [31, '<=', 1.8]]
    >>> bool(out["p_meet"].between(0, 1).all())
    True
    """
    targets = load_targets() if targets is None else targets
    present = panel[["province", "indicator"]].astype({"province": str, "indicator": int}).drop_duplicates()
    wanted = targets.merge(present, on=["province", "indicator"], how="inner")
    parts = []
    for month, group in wanted.groupby("target_month", sort=True):
        keys = list(zip(group["province"], group["indicator"]))
        projections = project(panel, starts=starts, settings=settings, month=month, series=keys, level=level)
        parts.append(target_attainment(projections, targets))
    if not parts:
        return target_attainment(pd.DataFrame(columns=PROJECTION_COLUMNS), targets)
    return pd.concat(parts, ignore_index=True).sort_values(["province", "indicator"]).reset_index(drop=True)
