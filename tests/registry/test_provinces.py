import csv

import pytest

from analysis.registry import get_province, provinces
from tests.conftest import SHARED


def test_thirty_two_units_with_unique_codes():
    codes = [p.code for p in provinces()]
    assert len(codes) == 32 == len(set(codes)) and "660000" in codes


def test_registry_agrees_with_reference():
    path = SHARED / "domain" / "provinces.csv"
    if not path.is_file():
        pytest.skip("shared domain reference not available")
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert [(p.code, p.name_zh, p.short_zh, p.name_en) for p in provinces()] == [
        (r["code"], r["name_zh"], r["short_zh"], r["name_en"]) for r in rows
    ]


@pytest.mark.parametrize("key", ["340000", 340000, "安徽省", "安徽", "Anhui", "ANHUI ", "３４００００"])
def test_every_name_form_resolves(key):
    assert get_province(key).code == "340000"


def test_xpcc_and_similar_names_are_distinct():
    assert get_province("兵团").code == "660000"
    assert get_province("新疆").code == "650000"
    assert get_province("Shanxi").code == "140000" and get_province("Shaanxi").code == "610000"


def test_unknown_province_names_the_accepted_forms():
    with pytest.raises(KeyError, match="GB/T 2260 code"):
        get_province("Atlantis")
