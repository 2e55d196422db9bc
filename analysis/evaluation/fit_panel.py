"""Fit the ITS model to every province x indicator series of a panel.

Statistics are computed once, in-process (optionally across a pool of worker processes,
one task per province). A series that cannot be fitted is recorded in ``failures`` with
its error, and the others go on.
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from statsmodels.stats.stattools import durbin_watson

from analysis.evaluation.cache import ResultCache, code_fingerprint, digest
from analysis.evaluation.event_time import event_time_arrays, event_time_frame
from analysis.evaluation.settings import EvaluationSettings
from analysis.its.diagnostics import ljung_box_p_value
from analysis.its.series import model_for_series
from analysis.registry import get_indicator, get_province

EFFECT_COLUMNS = [
    "province",
    "indicator",
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
    "unit",
    "df",
    "window_start",
    "window_end",
    "family",
    "cov_type",
]


@dataclass(frozen=True)
class PanelResults:
    """Tidy tables of a panel fit: one row per effect, per month, per series, per failure.

    ``reused`` lists the provinces whose results came from the cache unchanged.
    """

    effects: pd.DataFrame
    predictions: pd.DataFrame
    diagnostics: pd.DataFrame
    failures: pd.DataFrame
    reused: tuple[str, ...] = field(default=())
    #: Effects by months since each province's start (see :mod:`analysis.synthesis.event_time`).
    event_time: pd.DataFrame = field(default_factory=pd.DataFrame)


def fit_series(
    series: pd.DataFrame, *, start: pd.Period, settings: EvaluationSettings
) -> tuple[list[dict], pd.DataFrame, dict, dict[str, np.ndarray]]:
    """Fit one series (rows of one province and indicator, sorted by month).

    Returns effect rows, the monthly predictions, a diagnostics row and the effects at each
    month from the start to the evaluation month (event times, for staggered starts; arrays
    by column, see :func:`analysis.synthesis.event_time.event_time_arrays`).
    """
    province, number = series["province"].iat[0], int(series["indicator"].iat[0])
    indicator = get_indicator(number)
    family = indicator.family
    months = pd.PeriodIndex(series["month"], freq="M")
    res = model_for_series(series, design=settings.design(start)).fit(cov_type=settings.cov_type)
    level = settings.level
    unit_scale = indicator.scale
    end = pd.Period(settings.evaluation_month, "M")
    first_post = start + settings.washin
    base = {"province": province, "indicator": number, "family": family, "cov_type": res.cov_type, "df": res.df_resid}
    rows = []
    for contrast in (res.coefficient("level_change", level=level), res.coefficient("slope_change", level=level)):
        rows.append(
            {
                **base,
                **contrast.as_dict(),
                "unit": res.family.link,
                "window_start": str(start),
                "window_end": str(start),
            }
        )
    corrected = settings.bias_corrected_effects
    absolute, relative = res.effect_at(end, unit_scale=unit_scale, level=level, bias_corrected=corrected)
    rows.append(
        {
            **base,
            **absolute.as_dict(),
            "measure": "effect_end_absolute",
            "scale": indicator.unit,
            "unit": indicator.unit,
            "window_start": str(end),
            "window_end": str(end),
        }
    )
    rows.append(
        {
            **base,
            **relative.as_dict(),
            "measure": "effect_end_relative",
            "unit": "ratio - 1",
            "window_start": str(end),
            "window_end": str(end),
        }
    )
    if res.size is not None and first_post <= end:
        window = pd.period_range(first_post, min(end, months[-1]), freq="M")
        cumulative = res.cumulative_effect(window, level=level, bias_corrected=corrected)
        rows.append(
            {
                **base,
                **cumulative.as_dict(),
                "measure": "effect_cumulative",
                "unit": "events",
                "window_start": str(window[0]),
                "window_end": str(window[-1]),
            }
        )
    fitted = res.predictions(unit_scale=unit_scale, level=level)
    # One frame built with its key columns first (inserting columns one at a time copies it).
    predictions = pd.DataFrame(
        {
            "province": np.full(len(fitted), province, dtype=object),
            "indicator": np.full(len(fitted), number),
            **{name: fitted[name].to_numpy() for name in fitted.columns},
        }
    )
    resid = res.residuals.to_numpy()
    lags = min(12, len(resid) // 4)
    diagnostics = {
        "province": province,
        "indicator": number,
        "family": family,
        "start_month": str(start),
        "n_months": len(months),
        "n_pre": res.n_pre,
        "n_post": res.n_post,
        "washin": settings.washin,
        "n_params": len(res.params),
        "phi": res.cov_details.get("phi", np.nan),
        "sigma2": res.cov_details.get("sigma2", np.nan),
        "pearson_dispersion": res.pearson_dispersion,
        "durbin_watson": float(durbin_watson(resid)),
        "ljung_box_p": ljung_box_p_value(resid, lags=lags),
        "converged": res.converged,
    }
    event_time = event_time_arrays(province, number, res, through=end, level=level, bias_corrected=corrected)
    return rows, predictions, diagnostics, event_time


def fit_one(
    panel: pd.DataFrame,
    *,
    starts: dict[str, pd.Period],
    province: str | int,
    indicator: int | str,
    settings: EvaluationSettings,
) -> list[dict]:
    """The effect rows of one series of a panel, fitted as :func:`fit_panel` fits it (the
    same rows in the same order, the same start month and settings, :func:`fit_series`).

    ``province`` is a code or a name (Chinese or English), ``indicator`` the annex number
    or a name. Raises ``ValueError`` naming what is available when the panel has no such
    series.
    """
    try:
        code = get_province(province).code
        number = get_indicator(indicator).number
    except KeyError as err:
        raise ValueError(err.args[0]) from None
    series = panel[(panel["province"] == code) & (panel["indicator"] == number)]
    if series.empty:
        present = sorted(panel.loc[panel["province"] == code, "indicator"].unique().tolist())
        where = (
            f"indicators present for {code}: {present}"
            if present
            else f"provinces present: {sorted(panel['province'].unique().tolist())}"
        )
        raise ValueError(f"the data have no rows for province {code} and indicator {number} ({where})")
    rows, *_ = fit_series(series, start=starts[code], settings=settings)
    return rows


def _fit_group(args: tuple[pd.DataFrame, dict[str, pd.Period], EvaluationSettings]) -> tuple:
    panel, starts, settings = args
    effects, predictions, diagnostics, failures, event_times = [], [], [], [], []
    for (province, number), series in panel.groupby(["province", "indicator"], sort=True):
        try:
            rows, pred, diag, event_time = fit_series(series, start=starts[province], settings=settings)
        except Exception as err:  # one failing series must not stop the others: it is reported
            failures.append(
                {
                    "province": province,
                    "indicator": int(number),
                    "stage": "fit",
                    "error": type(err).__name__,
                    "message": str(err),
                }
            )
            continue
        effects += rows
        predictions.append(pred)
        diagnostics.append(diag)
        event_times.append(event_time)
    return effects, predictions, diagnostics, failures, event_times


def province_key(series: pd.DataFrame, *, start: pd.Period, settings: EvaluationSettings) -> str:
    """Cache key of one province's fits: its rows, its start, the settings and the code."""
    return digest(code_fingerprint(), settings.as_dict(), str(start), series.reset_index(drop=True))


def fit_panel(
    panel: pd.DataFrame,
    *,
    starts: dict[str, pd.Period],
    settings: EvaluationSettings | None = None,
    workers: int = 1,
    progress: bool = False,
    cache: ResultCache | None = None,
) -> PanelResults:
    """Fit every series of a canonical panel (see :func:`analysis.data.contract.read_panel`).

    Parameters
    ----------
    panel : DataFrame
        The checked long panel.
    starts : dict
        Plan start month per province code.
    settings : EvaluationSettings, optional
        Model choices; defaults when omitted.
    workers : int
        Worker processes (one task per province); 1 fits in this process.
    progress : bool
        Show a progress bar on standard error.
    cache : ResultCache, optional
        Reuse a province's results when its rows, start month, the settings and the code
        are unchanged (see :func:`province_key`); new results are stored in it.
    """
    settings = settings or EvaluationSettings()
    provinces = {str(code): g for code, g in panel.groupby("province", sort=True)}
    keys = (
        {code: province_key(g, start=starts[code], settings=settings) for code, g in provinces.items()}
        if cache is not None
        else {}
    )
    found = {code: cache.get("fit", code, key=keys[code]) for code in provinces} if cache is not None else {}
    reused = tuple(code for code, part in found.items() if part is not None)
    todo = [code for code in provinces if code not in reused]
    groups = [(provinces[code], starts, settings) for code in todo]
    workers = max(1, min(workers, len(groups) or 1, os.cpu_count() or 1))
    from tqdm.auto import tqdm

    bar = tqdm(total=len(groups), desc="fit", unit="province", disable=not progress)
    computed = []
    if workers == 1:
        for group in groups:
            computed.append(_fit_group(group))
            bar.update()
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for part in pool.map(_fit_group, groups):
                computed.append(part)
                bar.update()
    bar.close()
    by_code = {**{code: found[code] for code in reused}, **dict(zip(todo, computed))}
    if cache is not None:
        for code, part in zip(todo, computed):
            cache.put("fit", code, key=keys[code], value=part)
    parts = [by_code[code] for code in provinces]
    effects = pd.DataFrame([row for part in parts for row in part[0]], columns=EFFECT_COLUMNS)
    preds = [frame for part in parts for frame in part[1]]
    predictions = pd.concat(preds, ignore_index=True) if preds else pd.DataFrame()
    diagnostics = pd.DataFrame([row for part in parts for row in part[2]])
    failures = pd.DataFrame(
        [row for part in parts for row in part[3]], columns=["province", "indicator", "stage", "error", "message"]
    )
    event_time = event_time_frame([arrays for part in parts for arrays in part[4]])
    return PanelResults(effects, predictions, diagnostics, failures, reused=reused, event_time=event_time)
