"""Controlled ITS against comparison series, province by province, pooled nationally.

A co-intervention that starts with the plan (the DRG/DIP payment reform, the anti-corruption
campaign) shifts a province's indicator whether or not the plan works, and a single-series
ITS attributes that shift to the plan. A comparison series exposed to the co-intervention
but not (or less) to the plan removes it: the treated series and its comparison are fitted
together (:class:`analysis.its.model.SegmentedRegression` with ``group``, the
multiple-group model of Stata's ``itsa``), and the plan's effect is the *difference* in
level and slope change between them (``group_level_change``, ``group_slope_change``),
with each series keeping its own baseline, trend, seasonality and autocorrelation (the
latent AR(1) covariance is estimated within each series). The provinces' differences are
then pooled as the uncontrolled effects are (:func:`analysis.synthesis.national.national_effects`).

Which series is a fair comparison is a substantive choice, so comparisons are data: a table
with ``indicator`` (the treated series) and ``comparison``: either another annex indicator of
the same province (its number) or a series outside the annex, named in
``comparison_series.csv`` (:mod:`analysis.data.comparison_series`: an indicator the plan
does not target, or the same indicator in hospitals less exposed to the plan). Either way the
comparison must have the treated indicator's measure, so that both are modelled on one scale.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.evaluation.settings import EvaluationSettings
from analysis.its.model import SegmentedRegression
from analysis.its.series import model_for_series
from analysis.registry import get_indicator
from analysis.synthesis.national import national_effects

__all__ = ["CONTROLLED_COLUMNS", "controlled_effects", "controlled_model", "national_controlled", "read_comparisons"]

#: Columns of :func:`controlled_effects` (the per-province table).
CONTROLLED_COLUMNS = [
    "province",
    "indicator",
    "comparison",
    "measure",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "p_value",
    "scale",
    "df",
    "family",
]


class ComparisonsError(ValueError):
    """A comparisons table that cannot be used; the message names the file, row and column."""


def read_comparisons(
    path: str | Path, *, series: pd.DataFrame | None = None, series_file: str | Path | None = None
) -> pd.DataFrame:
    """Read and check a comparisons table (``indicator``, ``comparison``).

    Parameters
    ----------
    path : str or pathlib.Path
        The comparisons table (CSV).
    series : pandas.DataFrame, optional
        The checked comparison series (:func:`analysis.data.comparison_series.read_comparison_series`),
        whose names ``comparison`` may give instead of an annex number.
    series_file : str or pathlib.Path, optional
        The file ``series`` was read from, named in messages.

    Returns
    -------
    pandas.DataFrame
        ``indicator`` (int) and ``comparison``: an int for an annex indicator, the series'
        name (str) for a comparison series.

    Raises
    ------
    ComparisonsError
        A ``ValueError`` naming the file, the row and what to fix: a missing column, an unknown indicator,
        an unknown comparison series, a series compared with itself, or a pair of
        different measures.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (folder / "comparisons.csv").write_text("indicator,comparison\\n28,CMI outside wave 1\\n11,12\\n")
    >>> series = pd.DataFrame({"series": ["CMI outside wave 1"], "measure": ["mean"]})
    >>> read_comparisons(folder / "comparisons.csv", series=series)["comparison"].tolist()
    ['CMI outside wave 1', 12]
    >>> try:
    ...     read_comparisons(folder / "comparisons.csv")
    ... except ValueError as err:
    ...     print(str(err).split(", ", 1)[1].split(" nor ")[0])
    row 2, column 'comparison': 'CMI outside wave 1' is neither an annex indicator number
    """
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = {"indicator", "comparison"} - set(frame.columns)
    if missing:
        raise ComparisonsError(
            f"{path}: missing column(s) {sorted(missing)}; the table needs 'indicator' and 'comparison'"
        )
    measures = {} if series is None else dict(zip(series["series"], series["measure"]))
    where = f"in {series_file}" if series_file is not None else "in comparison_series.csv"
    comparisons: list[int | str] = []
    for row, (a, b) in enumerate(zip(frame["indicator"], frame["comparison"]), start=2):
        try:
            treated = get_indicator(int(a))
        except (KeyError, ValueError):
            raise ComparisonsError(
                f"{path}, row {row}, column 'indicator': {a!r} is not an annex indicator "
                "number; give the treated indicator's number (9-39)"
            ) from None
        name = b.strip()
        if name.isdigit():
            try:
                comparison = get_indicator(int(name))
            except KeyError:
                raise ComparisonsError(
                    f"{path}, row {row}, column 'comparison': {b!r} is not an annex indicator number (9-39)"
                ) from None
            if treated.number == comparison.number:
                raise ComparisonsError(f"{path}, row {row}: indicator {a} is compared with itself")
            measure, label, key = comparison.measure, str(comparison.number), comparison.number
        elif name in measures:
            measure, label, key = measures[name], f"the comparison series {name!r}", name
        else:
            known = ", ".join(repr(n) for n in sorted(measures)[:10]) or "none"
            raise ComparisonsError(
                f"{path}, row {row}, column 'comparison': {b!r} is neither an annex indicator "
                f"number nor the name of a series {where} (series found: {known}); write the "
                "number of an annex indicator or the exact name of a comparison series"
            )
        if treated.measure != measure:
            raise ComparisonsError(
                f"{path}, row {row}: indicator {a} is a {treated.measure} and {label} a "
                f"{measure}; a comparison series must have the same measure"
            )
        comparisons.append(key)
    return pd.DataFrame(
        {"indicator": frame["indicator"].astype(int), "comparison": pd.Series(comparisons, dtype=object)}
    )


def controlled_model(treated: pd.DataFrame, comparison: pd.DataFrame, *, design) -> SegmentedRegression:
    """The two-group model of one treated series and its comparison (rows of a canonical panel).

    Both series must cover the same months (the comparison is an independent series of the
    same calendar, not a counterfactual for missing months).
    """
    treated, comparison = treated.sort_values("month"), comparison.sort_values("month")
    if list(treated["month"].astype(str)) != list(comparison["month"].astype(str)):
        raise ValueError("the treated and comparison series do not cover the same months")
    stacked = pd.concat([treated, comparison], ignore_index=True)
    group = np.r_[np.ones(len(treated)), np.zeros(len(comparison))]
    return model_for_series(stacked, design=design, group=group)


def controlled_effects(
    panel: pd.DataFrame,
    comparisons: pd.DataFrame,
    *,
    starts: Mapping[str, pd.Period],
    settings: EvaluationSettings | None = None,
    series: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan's effect on each treated series relative to its comparison, per province.

    Parameters
    ----------
    panel : pandas.DataFrame
        A checked long panel (:func:`analysis.data.contract.read_panel`).
    comparisons : pandas.DataFrame
        ``indicator`` and ``comparison`` columns (see :func:`read_comparisons`): an int
        comparison is an annex indicator of ``panel``, a str one a series of ``series``.
    starts : mapping
        Each province's plan start month.
    settings : EvaluationSettings, optional
        The evaluation's model choices (wash-in, seasonality, covariance, evaluation month).
    series : pandas.DataFrame, optional
        Checked comparison series outside the annex
        (:func:`analysis.data.comparison_series.read_comparison_series`).

    Returns
    -------
    effects : pandas.DataFrame
        Columns :data:`CONTROLLED_COLUMNS`; measures ``level_change`` and ``slope_change``
        (the differences between treated and comparison, on the link scale) and
        ``effect_end_absolute`` / ``effect_end_relative`` (the treated series against its
        counterfactual without those differences, at the evaluation month).
    failures : pandas.DataFrame
        ``province``, ``indicator``, ``comparison``, ``error``, ``message`` of pairs that could
        not be fitted; the others go on.

    Examples
    --------
    >>> from analysis.data.synthetic import generate
    >>> data = generate(3, provinces=["340000"], indicators=[11, 12])
    >>> pairs = pd.DataFrame({"indicator": [11], "comparison": [12]})
    >>> effects, failures = controlled_effects(data.panel, pairs, starts={"340000": pd.Period("2023-08", "M")})
    >>> sorted(effects["measure"]), len(failures)
    (['effect_end_absolute', 'effect_end_relative', 'level_change', 'slope_change'], 0)

    A comparison series outside the annex (here the synthetic CMI of hospitals outside the
    plan's first wave, which shares the DRG/DIP step but not the plan):

    >>> data = generate(3, provinces=["340000"], indicators=[28])
    >>> effects, _ = controlled_effects(data.panel, data.comparisons, starts={"340000": pd.Period("2023-08", "M")},
    ...                                 series=data.comparison_series)
    >>> effects["comparison"].iat[0]
    '28 in hospitals outside the first wave'
    """
    settings = settings or EvaluationSettings()
    end = pd.Period(settings.evaluation_month, "M")
    rows, failures = [], []
    indicators = {key: frame for key, frame in panel.groupby(["province", "indicator"], sort=True)}
    # comparisons by (province, annex number) or (province, series name): one lookup serves both
    candidates = (
        dict(indicators)
        if series is None
        else {
            **indicators,
            **{(str(province), str(name)): frame for (province, name), frame in series.groupby(["province", "series"])},
        }
    )
    for province in sorted({p for p, _ in indicators}):
        for pair in comparisons.itertuples(index=False):
            number, other = int(pair.indicator), pair.comparison
            other = other if isinstance(other, str) else int(other)
            where = {"province": str(province), "indicator": number, "comparison": other}
            try:
                treated = indicators.get((province, number))
                if treated is None:
                    raise ValueError(f"province {province} has no series for indicator {number}")
                comparison = candidates.get((province, other))
                if comparison is None:
                    missing = (
                        f"comparison series {other!r}" if isinstance(other, str) else f"series for indicator {other}"
                    )
                    raise ValueError(f"province {province} has no {missing}")
                model = controlled_model(treated, comparison, design=settings.design(pd.Period(starts[province], "M")))
                res = model.fit(cov_type=settings.cov_type)
            except Exception as err:  # one failing pair is reported; the others go on
                failures.append({**where, "error": type(err).__name__, "message": str(err)})
                continue
            indicator = get_indicator(number)
            base = {**where, "family": res.family.name, "df": res.df_resid}
            for term, measure in (("group_level_change", "level_change"), ("group_slope_change", "slope_change")):
                contrast = res.coefficient(term, level=settings.level)
                rows.append({**base, **contrast.as_dict(), "measure": measure})
            absolute, relative = res.effect_at(
                end, unit_scale=indicator.scale, level=settings.level, bias_corrected=settings.bias_corrected_effects
            )
            rows.append({**base, **absolute.as_dict(), "measure": "effect_end_absolute", "scale": indicator.unit})
            rows.append({**base, **relative.as_dict(), "measure": "effect_end_relative"})
    effects = pd.DataFrame(rows).reindex(columns=CONTROLLED_COLUMNS)
    return effects, pd.DataFrame(failures, columns=["province", "indicator", "comparison", "error", "message"])


def national_controlled(effects: pd.DataFrame, *, settings: EvaluationSettings | None = None) -> pd.DataFrame:
    """Pool the provinces' controlled effects per indicator, comparison and measure, as
    :func:`analysis.synthesis.national.national_effects` pools the uncontrolled ones.

    ``comparison`` keeps its values: annex numbers and names of comparison series (sorted
    as text when both occur).
    """
    settings = settings or EvaluationSettings()
    parts = []
    for comparison in sorted(pd.unique(effects["comparison"]), key=str):
        rows = effects[effects["comparison"] == comparison]
        pooled = national_effects(rows, **settings.pooling_options())
        parts.append(pooled.assign(comparison=[comparison] * len(pooled)))
    if not parts:
        return pd.DataFrame(columns=["indicator", "comparison", "measure", "estimate", "ci_low", "ci_high", "p_value"])
    table = pd.concat(parts, ignore_index=True)
    first = ["indicator", "comparison", "measure"]
    ordered = table.sort_values(
        first, key=lambda column: column.astype(str) if column.name == "comparison" else column, ignore_index=True
    )
    return ordered[first + [c for c in table.columns if c not in first]]
