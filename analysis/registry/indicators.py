"""The 40 provincial monitoring indicators of the plan's annex.

The table itself lives in ``indicators.csv`` beside this module (one source of truth);
this module only reads it and offers look-ups.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

from analysis.registry._text import normalise_name

Direction = Literal["up", "down", "status"]
Measure = Literal["proportion", "rate", "mean", "status"]

#: Default outcome family per measure: counts over a denominator get a count model.
DEFAULT_FAMILY: dict[str, str] = {"proportion": "binomial", "rate": "poisson", "mean": "gaussian"}


@dataclass(frozen=True)
class Indicator:
    """One annex indicator.

    Attributes
    ----------
    number : int
        Annex number (1-40).
    direction : {"up", "down", "status"}
        The annex's direction of improvement (指标导向); ``status`` items are not time series.
    measure : {"proportion", "rate", "mean", "status"}
        How the monthly value is built from the data.
    unit : str
        Display unit, e.g. ``%``, ``‰``, ``per 1000 catheter-days``, ``minutes``.
    scale : float
        Multiplier from the model's natural scale (a probability or events per unit of
        exposure) to the display unit; 1 for ``mean`` indicators.
    """

    number: int
    dimension_zh: str
    dimension_en: str
    name_zh: str
    name_en: str
    direction: Direction
    measure: Measure
    unit: str
    scale: float
    numerator_zh: str
    numerator_en: str
    denominator_zh: str
    denominator_en: str

    @property
    def is_quantitative(self) -> bool:
        """Whether the indicator is a monthly series that can be modelled."""
        return self.measure != "status"

    @property
    def family(self) -> str | None:
        """Default outcome family: binomial, poisson or gaussian (None for status items)."""
        return DEFAULT_FAMILY.get(self.measure)

    def name(self, lang: str = "en") -> str:
        """Name in ``lang`` (``"zh"`` or ``"en"``)."""
        return self.name_zh if lang == "zh" else self.name_en

    def improvement_sign(self) -> int:
        """+1 when a larger value is an improvement, -1 when smaller is, 0 for status items."""
        return {"up": 1, "down": -1}.get(self.direction, 0)


@cache
def indicators() -> tuple[Indicator, ...]:
    """All 40 annex indicators, in annex order.

    Examples
    --------
    >>> len(indicators()), indicators()[31].name_en
    (40, 'Perioperative mortality')
    """
    text = resources.files(__package__).joinpath("indicators.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    out = []
    for row in rows:
        row = dict(row)
        number = int(row.pop("number"))
        scale = float(row.pop("scale") or "nan")
        out.append(Indicator(number=number, scale=scale, **row))  # type: ignore[arg-type]
    return tuple(out)


def quantitative_indicators() -> tuple[Indicator, ...]:
    """The 31 indicators (9-39) modelled as monthly series.

    Examples
    --------
    >>> [i.number for i in quantitative_indicators()][:3]
    [9, 10, 11]
    """
    return tuple(i for i in indicators() if i.is_quantitative)


@cache
def _lookup() -> dict[str, tuple[Indicator, ...]]:
    table: dict[str, list[Indicator]] = {}
    for ind in indicators():
        for key in {str(ind.number), normalise_name(ind.name_zh), normalise_name(ind.name_en)}:
            table.setdefault(key, []).append(ind)
    return {k: tuple(v) for k, v in table.items()}


def get_indicator(key: int | str) -> Indicator:
    """Find an indicator by annex number, Chinese name or English name.

    Matching is exact after normalisation (full-width folding, spaces, case); it never
    guesses. Raises ``KeyError`` naming the value when nothing or more than one matches.

    Examples
    --------
    >>> get_indicator("32").name_zh
    '围术期死亡率'
    >>> get_indicator("ICU  mortality").number
    29
    """
    if isinstance(key, (int,)) and not isinstance(key, bool):
        key = str(key)
    norm = normalise_name(str(key))
    if norm.endswith(".0") and norm[:-2].isdigit():
        norm = norm[:-2]
    found = _lookup().get(norm, ())
    if len(found) == 1:
        return found[0]
    if not found:
        raise KeyError(
            f"unknown indicator {key!r}: use the annex number (1-40), or the Chinese or English "
            "name exactly as in the annex (see analysis.registry.indicators())"
        )
    raise KeyError(f"ambiguous indicator {key!r}: matches annex numbers {[i.number for i in found]}")
