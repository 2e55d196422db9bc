"""The 32 reporting units of the plan: 31 provincial-level divisions and the XPCC.

Codes are GB/T 2260; the Xinjiang Production and Construction Corps has no GB/T 2260 code
and is given 660000 by convention. The table lives in ``provinces.csv`` beside this module.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib import resources

from analysis.registry._text import normalise_name


@dataclass(frozen=True)
class Province:
    """One reporting unit: GB/T 2260 code with full and short Chinese and English names."""

    code: str
    name_zh: str
    short_zh: str
    name_en: str

    def name(self, lang: str = "en") -> str:
        """Name in ``lang`` (``"zh"`` gives the short Chinese name)."""
        return self.short_zh if lang == "zh" else self.name_en


@cache
def provinces() -> tuple[Province, ...]:
    """All 32 reporting units, ordered by code.

    Examples
    --------
    >>> len(provinces()), provinces()[0].name_en
    (32, 'Beijing')
    """
    text = resources.files(__package__).joinpath("provinces.csv").read_text(encoding="utf-8")
    return tuple(Province(**row) for row in csv.DictReader(text.splitlines()))


@cache
def _lookup() -> dict[str, Province]:
    table: dict[str, Province] = {}
    for p in provinces():
        for key in (p.code, p.name_zh, p.short_zh, p.name_en):
            table[normalise_name(key)] = p
    return table


def get_province(key: int | str) -> Province:
    """Find a province by code, full or short Chinese name, or English name.

    Raises ``KeyError`` naming the value and the accepted forms when nothing matches.

    Examples
    --------
    >>> get_province("安徽省").code
    '340000'
    >>> get_province(340000).name_en
    'Anhui'
    >>> get_province(" inner mongolia").short_zh
    '内蒙古'
    """
    norm = normalise_name(str(key))
    if norm.endswith(".0") and norm[:-2].isdigit():
        norm = norm[:-2]
    try:
        return _lookup()[norm]
    except KeyError:
        raise KeyError(
            f"unknown province {key!r}: use the GB/T 2260 code (e.g. 340000), the full or short "
            "Chinese name (安徽省 / 安徽) or the English name (Anhui); 660000 is the XPCC"
        ) from None
