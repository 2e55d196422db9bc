import csv

import pytest

from analysis.registry import get_indicator, indicators, quantitative_indicators
from tests.conftest import SHARED


def test_forty_indicators_thirty_one_quantitative():
    assert [i.number for i in indicators()] == list(range(1, 41))
    assert [i.number for i in quantitative_indicators()] == list(range(9, 40))


def test_registry_agrees_with_the_annex_reference_table():
    path = SHARED / "domain" / "indicators.csv"
    if not path.is_file():
        pytest.skip("shared domain reference not available")
    for row in csv.DictReader(path.open(encoding="utf-8")):
        ind = get_indicator(int(row["number"]))
        for field in ("dimension_zh", "dimension_en", "name_zh", "name_en", "direction", "measure", "unit"):
            assert getattr(ind, field) == row[field], (row["number"], field)


def test_every_quantitative_indicator_has_family_scale_and_definitions():
    for ind in quantitative_indicators():
        assert ind.family in {"binomial", "poisson", "gaussian"}
        assert ind.scale > 0 and ind.numerator_zh and ind.denominator_en
        assert ind.improvement_sign() in (1, -1)
    assert get_indicator(31).scale == 1000 and get_indicator(31).unit == "‰"
    assert get_indicator(34).family == "poisson" and get_indicator(9).family == "gaussian"
    assert get_indicator(1).family is None and get_indicator(1).improvement_sign() == 0


@pytest.mark.parametrize(
    "key", [32, "32", "32.0", "围术期死亡率", "Perioperative mortality", " perioperative  MORTALITY ", "３２"]
)
def test_lookup_by_number_or_exact_name(key):
    assert get_indicator(key).number == 32


def test_unknown_indicator_is_not_guessed():
    with pytest.raises(KeyError, match="unknown indicator 'Perioperative mortalty'"):
        get_indicator("Perioperative mortalty")
