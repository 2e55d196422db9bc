"""In-time placebo tests: pretend the plan started earlier and look for an "effect".

For each series, the data before the province's real start are refitted with the default
model as if the plan had started ``offset`` months earlier (12 and 24 by default): same
wash-in, seasonality, Spring Festival and shock terms and covariance estimator, but only
pre-period months, so the real plan cannot leak in. Nothing happened at a placebo date, so
a well-calibrated analysis finds a significant placebo effect in about ``alpha`` of the
series. Many more rejections point to something the model misses in the pre-period: a
co-intervention (e.g. the staggered DRG/DIP payment reform), a change of definition or of
reporting, or a trend that is not linear on the link scale. Either way, the real estimate
of such a series deserves less trust.

Placebo effects are reported as the real ones: ``level_change`` and ``slope_change`` on the
link scale, and the relative effect (ratio - 1) in the last pre-period month, the placebo's
analogue of the end-of-plan effect.

Reference: Bernal JL, Cummins S, Gasparrini A (2017). Interrupted time series regression
for the evaluation of public health interventions: a tutorial. Int J Epidemiol 46:348-355
(placebo / "dummy" interruptions as a check of the ITS design).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd
from scipy import stats

from analysis.evaluation.model import fit_default_model
from analysis.evaluation.settings import EvaluationSettings
from analysis.registry import timeline

__all__ = ["PLACEBO_COLUMNS", "PLACEBO_MEASURES", "placebo_panel", "placebo_series", "rejection_rates", "series_flags"]

#: Effects estimated at each placebo date.
PLACEBO_MEASURES = ("level_change", "slope_change", "effect_end_relative")
#: Columns of the placebo table.
PLACEBO_COLUMNS = [
    "province",
    "indicator",
    "offset",
    "placebo_start",
    "real_start",
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
    "evaluation_month",
    "n_pre",
    "n_post",
    "family",
    "cov_type",
]


def _settings(settings: EvaluationSettings | None) -> EvaluationSettings:
    if settings is not None:
        return settings
    return EvaluationSettings()


def placebo_series(
    series: pd.DataFrame,
    *,
    start: pd.Period | str,
    settings: EvaluationSettings | None = None,
    offsets: Sequence[int] = (12, 24),
) -> pd.DataFrame:
    """Placebo effects of one series at interruptions ``offsets`` months before its real start.

    Parameters
    ----------
    series : pandas.DataFrame
        One province x indicator of a checked panel, sorted by month.
    start : pandas.Period or str
        The province's real plan start; only months before it are used.
    settings : EvaluationSettings, optional
        The pipeline's model choices (design options and covariance estimator).
    offsets : sequence of int
        How many months before the real start each placebo interruption is placed.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`PLACEBO_COLUMNS`; three rows (:data:`PLACEBO_MEASURES`) per offset.
        ``evaluation_month`` is the last pre-period month, where the relative effect is
        evaluated. An offset whose fit fails (e.g. too few points after the placebo date)
        raises; :func:`placebo_panel` records such failures instead.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> series = generate(5, provinces=["110000"], indicators=[9]).panel
    >>> out = placebo_series(series, start="2023-06")
    >>> out[["offset", "placebo_start", "evaluation_month", "n_post"]].drop_duplicates().values.tolist()
    [[12, '2022-06', '2023-05', 9], [24, '2021-06', '2023-05', 21]]
    """
    settings = _settings(settings)
    start = pd.Period(start, "M")
    months = pd.PeriodIndex(series["month"], freq="M")
    pre = series[np.asarray(months < start)]
    last_pre = start - 1
    rows = []
    for offset in offsets:
        if int(offset) < 1:
            raise ValueError(f"placebo offsets must be positive numbers of months, got {offset}")
        placebo = start - int(offset)
        design = settings.design(placebo)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_default_model(pre, start=placebo, settings=settings, design=design)
        _, relative = res.effect_at(last_pre, level=settings.level)
        contrasts = [
            res.coefficient("level_change", level=settings.level),
            res.coefficient("slope_change", level=settings.level),
            relative,
        ]
        for name, contrast in zip(PLACEBO_MEASURES, contrasts):
            rows.append(
                {
                    "province": str(series["province"].iat[0]),
                    "indicator": int(series["indicator"].iat[0]),
                    "offset": int(offset),
                    "placebo_start": str(placebo),
                    "real_start": str(start),
                    "measure": name,
                    "estimate": contrast.estimate,
                    "se": contrast.se,
                    "ci_low": contrast.ci_low,
                    "ci_high": contrast.ci_high,
                    "p_value": contrast.p_value,
                    "scale": contrast.scale,
                    "evaluation_month": str(last_pre),
                    "n_pre": res.n_pre,
                    "n_post": res.n_post,
                    "family": res.family.name,
                    "cov_type": res.cov_type,
                }
            )
    return pd.DataFrame(rows, columns=PLACEBO_COLUMNS)


def _placebo_group(args: tuple) -> tuple[list[pd.DataFrame], list[dict]]:
    panel, starts, settings, offsets = args
    frames, failures = [], []
    for (province, number), series in panel.groupby(["province", "indicator"], sort=True):
        for offset in offsets:
            try:
                frames.append(placebo_series(series, start=starts[province], settings=settings, offsets=(offset,)))
            except Exception as err:  # one failing fit must not stop the others: it is reported
                failures.append(
                    {
                        "province": province,
                        "indicator": int(number),
                        "offset": int(offset),
                        "error": type(err).__name__,
                        "message": str(err),
                    }
                )
    return frames, failures


def placebo_panel(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    offsets: Sequence[int] = (12, 24),
    workers: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Placebo tests for every series of a panel.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel (:func:`analysis.data.contract.read_panel`).
    starts : mapping
        Real plan start per province code (missing provinces: 2023-06).
    settings : EvaluationSettings, optional
        The pipeline's model choices.
    offsets : sequence of int
        Months before the real start at which placebo interruptions are placed.
    workers : int
        Worker processes (one task per province); each placebo costs one model fit.

    Returns
    -------
    placebo : pandas.DataFrame
        Columns :data:`PLACEBO_COLUMNS`, one row per series x offset x measure.
    failures : pandas.DataFrame
        ``province``, ``indicator``, ``offset``, ``error``, ``message`` of placebo fits that
        failed (the others go on).

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(5, provinces=["110000"], indicators=[9, 32])
    >>> placebo, failures = placebo_panel(data.panel, starts={"110000": pd.Period("2023-06", "M")})
    >>> len(placebo), len(failures)
    (12, 0)
    """
    settings = _settings(settings)
    data = panel.assign(province=panel["province"].astype(str))
    starts = {str(k): pd.Period(v, "M") for k, v in starts.items()}
    for code in data["province"].unique():
        starts.setdefault(code, timeline.IMPLEMENTATION_START)
    groups = [(g, starts, settings, tuple(offsets)) for _, g in data.groupby("province", sort=True)]
    workers = max(1, min(workers, len(groups), os.cpu_count() or 1))
    if workers == 1:
        parts = [_placebo_group(g) for g in groups]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_placebo_group, groups))
    frames = [f for part in parts for f in part[0]]
    placebo = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=PLACEBO_COLUMNS)
    failures = pd.DataFrame(
        [f for part in parts for f in part[1]], columns=["province", "indicator", "offset", "error", "message"]
    )
    return placebo, failures


def rejection_rates(
    placebo: pd.DataFrame,
    *,
    alpha: float = 0.05,
    by: Sequence[str] = ("measure", "offset"),
    level: float = 0.95,
) -> pd.DataFrame:
    """Share of placebo tests that reject, with a Clopper-Pearson interval.

    Parameters
    ----------
    placebo : pandas.DataFrame
        Output of :func:`placebo_panel` (optionally filtered, e.g. to series not exposed to
        a known co-intervention).
    alpha : float
        Significance level of each placebo test.
    by : sequence of str
        Grouping columns.
    level : float
        Confidence level of the interval for the rejection rate.

    Returns
    -------
    pandas.DataFrame
        The ``by`` columns, ``n`` (tests with a p-value), ``rejected``, ``rate``,
        ``rate_low``, ``rate_high`` and ``alpha``. A rate well above ``alpha`` (interval
        excluding it) signals pre-period changes the model does not capture.

    Examples
    --------
    >>> placebo = pd.DataFrame({"measure": "level_change", "offset": 12, "p_value": [0.01, 0.3, 0.6, 0.8]})
    >>> rejection_rates(placebo)[["n", "rejected", "rate"]].values.tolist()
    [[4.0, 1.0, 0.25]]
    """
    frame = placebo[np.isfinite(pd.to_numeric(placebo["p_value"], errors="coerce"))]
    grouped = frame.groupby(list(by), sort=True)
    out = grouped["p_value"].agg(n="size", rejected=lambda p: int((p < alpha).sum())).reset_index()
    n, k = out["n"].to_numpy(float), out["rejected"].to_numpy(float)
    tail = (1 - level) / 2
    with np.errstate(invalid="ignore"):
        out["rate"] = k / n
        out["rate_low"] = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        out["rate_high"] = np.where(k < n, stats.beta.ppf(1 - tail, k + 1, n - k), 1.0)
    out["alpha"] = alpha
    return out


def series_flags(placebo: pd.DataFrame, *, alpha: float = 0.05, measure: str = "effect_end_relative") -> pd.DataFrame:
    """Per series: how many placebo tests of ``measure`` reject.

    Parameters
    ----------
    placebo : pandas.DataFrame
        Output of :func:`placebo_panel`.
    alpha : float
        Significance level.
    measure : str
        Which placebo effect to look at.

    Returns
    -------
    pandas.DataFrame
        ``province``, ``indicator``, ``n_placebos``, ``n_rejected``, ``min_p_value`` and
        ``flagged`` (at least one placebo rejects: read that series' real effect with care).

    Examples
    --------
    >>> placebo = pd.DataFrame({"province": "340000", "indicator": [11, 11, 12, 12],
    ...     "measure": "effect_end_relative", "p_value": [0.01, 0.4, 0.3, 0.6]})
    >>> series_flags(placebo)[["indicator", "n_rejected", "flagged"]].values.tolist()
    [[11, 1, True], [12, 0, False]]
    """
    frame = placebo[placebo["measure"] == measure]
    out = (
        frame.groupby(["province", "indicator"], sort=True)["p_value"]
        .agg(n_placebos="count", n_rejected=lambda p: int((p < alpha).sum()), min_p_value="min")
        .reset_index()
    )
    out["flagged"] = out["n_rejected"] > 0
    return out
