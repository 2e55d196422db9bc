"""The plan's effect at each event time of each series (months since its province's start).

Per-series curves, from fitted models: :func:`event_time_effects` (a table for many
fits), :func:`event_time_arrays` and :func:`event_time_frame` (the same rows collected as
arrays while a panel is fitted), and :func:`fit_event_time_models` (the evaluation's
default model for every series of a panel, results kept). Pooling the curves across
provinces is :mod:`analysis.synthesis.event_time`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.evaluation.model import fit_default_model
from analysis.its.timeaxis import TimeLike, is_monthly
from analysis.registry import get_indicator

if TYPE_CHECKING:
    from analysis.evaluation.settings import EvaluationSettings
    from analysis.its.results import ITSResults

#: Measures of the event-time table: the effect in display units and relative to the counterfactual.
MEASURES = ("effect_absolute", "effect_relative")
#: Columns of :func:`event_time_effects`.
EVENT_TIME_COLUMNS = [
    "province",
    "indicator",
    "start_month",
    "event_time",
    "month",
    "phase",
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "df",
    "scale",
]


def fit_event_time_models(
    panel: pd.DataFrame,
    *,
    starts: Mapping[str, TimeLike],
    settings: EvaluationSettings | None = None,
) -> tuple[dict[tuple[str, int], ITSResults], pd.DataFrame]:
    """Fit the pipeline's model to every series of a panel and keep the results objects.

    The model is :func:`analysis.synthesis.power.fit_default_model`, the same as the
    pipeline's :func:`analysis.evaluation.fit_panel.fit_series`. A series that cannot be
    fitted is recorded in ``failures`` and the others go on.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel (:func:`analysis.data.contract.read_panel`).
    starts : mapping
        Plan start month per province code; every province of ``panel`` needs one.
    settings : EvaluationSettings, optional
        Model choices; the pipeline's defaults when omitted.

    Returns
    -------
    results : dict
        ``{(province, indicator): ITSResults}``.
    failures : pandas.DataFrame
        ``province``, ``indicator``, ``error``, ``message`` of the series that failed.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(1, provinces=["340000"], indicators=[9, 32])
    >>> results, failures = fit_event_time_models(data.panel, starts={"340000": "2023-08"})
    >>> sorted(results), len(failures)
    ([('340000', 9), ('340000', 32)], 0)
    """
    data = panel.assign(province=panel["province"].astype(str))
    known = {str(k): pd.Period(str(v), "M") for k, v in starts.items()}
    missing = sorted(set(data["province"]) - set(known))
    if missing:
        raise ValueError(f"no plan start for province(s) {missing[:10]}")
    results: dict[tuple[str, int], ITSResults] = {}
    failures = []
    for (province, number), series in data.groupby(["province", "indicator"], sort=True):
        try:
            results[(province, int(number))] = fit_default_model(series, start=known[province], settings=settings)
        except Exception as err:  # one failing series must not stop the others: it is reported
            failures.append(
                {"province": province, "indicator": int(number), "error": type(err).__name__, "message": str(err)}
            )
    return results, pd.DataFrame(failures, columns=["province", "indicator", "error", "message"])


def _start_of(res: ITSResults) -> pd.Period:
    start = res.design.interruption
    return start.asfreq("M") if isinstance(start, pd.Period) else pd.Period(str(start), "M")


def event_time_effects(
    results: Mapping[tuple[str, int], ITSResults],
    *,
    max_event_time: int | None = None,
    through: TimeLike | None = None,
    level: float = 0.95,
) -> pd.DataFrame:
    """The modelled effect of the plan at each event time of each series.

    For a series whose plan started in month ``S``, event time ``k`` is month ``S + k``
    (``k = 0`` is the start month). Effects are computed for every month of the series'
    data from ``S`` on, by :meth:`~analysis.its.results.ITSResults.effect_at`: the fitted
    mean with the plan against the counterfactual of the same month, in display units
    (the indicator's scale, e.g. percent) and as ratio - 1, each with its delta-method
    interval on the ``t`` distribution with the covariance estimator's degrees of freedom.

    Parameters
    ----------
    results : mapping
        ``{(province, indicator): ITSResults}`` of monthly series, e.g. from
        :func:`fit_event_time_models`. The start month is each fit's own interruption.
    max_event_time : int, optional
        Last event time ``K`` reported; default: as far as each series' data go.
    through : month, optional
        Last calendar month reported (e.g. ``"2025-09"``, the end of implementation).
    level : float
        Confidence level of the intervals.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`EVENT_TIME_COLUMNS`, one row per series x event time x measure
        (``effect_absolute``, ``effect_relative``), sorted by province, indicator, measure
        and event time. ``phase`` is ``washin`` for event times inside the wash-in (see the
        module notes on what the effect means there) and ``post`` after it; ``scale`` is the
        indicator's display unit or ``ratio - 1``.

    Notes
    -----
    The work is one call of :meth:`~analysis.its.results.ITSResults.effects_at` per
    series (all months at once); no model is refitted.

    Examples
    --------
    A series with little noise and a known level and slope change: the effect at event
    time ``k`` is ``level_change + k * slope_change`` (identity link).

    >>> from analysis.its.design import ITSDesign
    >>> from analysis.its.model import SegmentedRegression
    >>> months = pd.period_range("2021-01", "2024-12", freq="M")
    >>> k = np.arange(len(months)) - 30
    >>> noise = 0.01 * np.random.default_rng(1).standard_normal(len(months))
    >>> y = 10 + 0.1 * k + np.where(k >= 0, 2.0 + 0.5 * k, 0.0) + noise
    >>> design = ITSDesign(interruption=months[30], seasonality="none", spring_festival=False, shocks=())
    >>> res = SegmentedRegression(y, time=months, design=design).fit(cov_type="model")
    >>> table = event_time_effects({("340000", 9): res}, max_event_time=2)
    >>> table.loc[table["measure"] == "effect_absolute", ["event_time", "month", "estimate"]].round(1)
       event_time    month  estimate
    0           0  2023-07       2.0
    1           1  2023-08       2.5
    2           2  2023-09       3.0
    """
    through_month = None if through is None else pd.Period(str(through), "M")
    rows = [
        event_time_arrays(
            str(key[0]), int(key[1]), results[key], through=through_month, max_event_time=max_event_time, level=level
        )
        for key in sorted(results, key=lambda k: (str(k[0]), int(k[1])))
    ]
    return event_time_frame(rows)


def event_time_arrays(
    province: str,
    indicator: int,
    res: ITSResults,
    *,
    through: TimeLike | None = None,
    max_event_time: int | None = None,
    level: float = 0.95,
    bias_corrected: bool = False,
) -> dict[str, np.ndarray]:
    """The rows of :func:`event_time_effects` for one series, as arrays by column (cheap to
    collect for a thousand series and turn into one frame with :func:`event_time_frame`)."""
    if not is_monthly(res.time):
        raise ValueError(f"series {province} x {indicator} has integer time; event times need months")
    spec = get_indicator(int(indicator))
    start = _start_of(res)
    own = res.time if res.group is None else res.time[res.group == 1]
    months = own[own >= start]
    if through is not None:
        months = months[months <= pd.Period(str(through), "M")]
    event_times = (np.asarray(months.asi8) - start.ordinal).astype(int)
    if max_event_time is not None:
        keep = event_times <= max_event_time
        months, event_times = months[keep], event_times[keep]
    n = len(months)
    if n == 0:
        return {name: np.array([], dtype=object) for name in EVENT_TIME_COLUMNS}
    arrays = res.effect_arrays(months, unit_scale=spec.scale, level=level, bias_corrected=bias_corrected)
    labels = np.asarray(months.astype(str), dtype=object)
    phases = np.asarray(res.design.phase(months), dtype=object)
    part = {
        "province": np.full(2 * n, str(province), dtype=object),
        "indicator": np.full(2 * n, int(indicator)),
        "start_month": np.full(2 * n, str(start), dtype=object),
        "event_time": np.concatenate([event_times, event_times]),
        "month": np.concatenate([labels, labels]),
        "phase": np.concatenate([phases, phases]),
        "measure": np.repeat(np.array(MEASURES, dtype=object), n),
    }
    for name in ("estimate", "se", "ci_low", "ci_high", "p_value", "df"):
        part[name] = np.concatenate([arrays["absolute"][name], arrays["relative"][name]])
    part["scale"] = np.repeat(np.array([spec.unit, "ratio - 1"], dtype=object), n)
    return part


def event_time_frame(parts: Sequence[Mapping[str, np.ndarray]]) -> pd.DataFrame:
    """One table (columns :data:`EVENT_TIME_COLUMNS`) from :func:`event_time_arrays` parts, in their order."""
    parts = [part for part in parts if len(part["event_time"])]
    if not parts:
        return pd.DataFrame(columns=EVENT_TIME_COLUMNS)
    table = pd.DataFrame({name: np.concatenate([part[name] for part in parts]) for name in EVENT_TIME_COLUMNS})
    table["event_time"] = table["event_time"].astype(int)
    table["indicator"] = table["indicator"].astype(int)
    # Built in order: series sorted by province and indicator, then measure, then event time.
    return table
