"""Verdicts, loading a run and the display tables."""

from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest

from analysis.registry import get_indicator
from analysis.report.tables import (
    classify,
    format_interval,
    load_run,
    national_table,
    provenance_table,
    province_effects_table,
    province_summary,
)


@pytest.mark.parametrize(
    ("ci", "direction", "verdict"),
    [
        ((0.02, 0.10), "up", "improvement"),
        ((0.02, 0.10), "down", "deterioration"),
        ((-0.10, -0.02), "up", "deterioration"),
        ((-0.10, -0.02), "down", "improvement"),
        ((-0.02, 0.10), "up", "inconclusive"),
        ((-0.02, 0.10), "down", "inconclusive"),
        ((0.0, 0.10), "up", "inconclusive"),  # touching zero does not exclude it
        ((-0.10, 0.0), "down", "inconclusive"),
        ((math.nan, 0.10), "up", "inconclusive"),
    ],
)
def test_classify(ci, direction, verdict):
    assert classify(sum(ci) / 2, *ci, direction) == verdict


def test_classify_rejects_status_direction():
    with pytest.raises(ValueError, match="direction"):
        classify(0.1, 0.0, 0.2, "status")


def test_format_interval_uses_a_typographic_minus():
    assert format_interval(-0.0823, -0.1214, -0.0401, percent=True) == "\u22128.2% (\u221212.1, \u22124.0)"
    assert format_interval(-0.0001, -0.02, 0.02, percent=True) == "0.0% (\u22122.0, 2.0)"


def test_load_run_round_trip(run_dir, fitted, spec):
    results, national = fitted
    run = load_run(run_dir)
    assert run.provinces == spec["provinces"]
    for frame in (run.effects, run.predictions, run.diagnostics, run.failures):
        assert frame["province"].map(type).eq(str).all()
        assert set(frame["province"]) <= set(spec["provinces"])
    pd.testing.assert_frame_equal(run.effects, results.effects, check_dtype=False)
    pd.testing.assert_frame_equal(run.predictions, results.predictions, check_dtype=False)
    pd.testing.assert_frame_equal(
        run.diagnostics.drop(columns="start_month"), results.diagnostics.drop(columns="start_month"), check_dtype=False
    )
    assert run.diagnostics["start_month"].tolist() == results.diagnostics["start_month"].tolist()
    assert len(run.national) == len(national)
    assert run.failures.iloc[-1].to_dict() == spec["failure"]
    assert run.manifest == spec["manifest"]
    assert run.start_month("340000") == "2023-08"


def test_load_run_optional_tables(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    for name in ("tables/failures.csv", "tables/national_effects.csv", "manifest.json"):
        (copy / name).unlink()
    run = load_run(copy)
    assert run.failures.empty and run.national.empty and run.manifest == {}
    (copy / "tables" / "effects.csv").unlink()
    with pytest.raises(FileNotFoundError, match="effects.csv"):
        load_run(copy)


@pytest.mark.parametrize(
    ("lang", "words"), [("zh", {"改善", "恶化", "不确定"}), ("en", {"improvement", "deterioration", "inconclusive"})]
)
def test_province_effects_table(run_dir, spec, lang, words):
    table = province_effects_table(load_run(run_dir), province="340000", lang=lang)
    assert table.iloc[:, 0].tolist() == spec["indicators"]
    assert set(table.iloc[:, -1]) <= words
    assert table.iloc[:, 4].str.contains("%").all()


def test_national_table_has_heterogeneity_columns(run_dir, spec):
    table = national_table(load_run(run_dir), lang="en")
    assert table["No."].tolist() == spec["indicators"]
    for column in (
        "Provinces k",
        "I² (%)",
        "τ² (log ratio)",
        "Relative effect, % [95% CI]",
        "Absolute effect [95% CI]",
        "Cumulative extra events, all provinces [95% CI]",
    ):
        assert column in table
    assert set(table["Provinces k"]) == {2}
    # the national total of extra events for proportions and rates, none for means
    kinds = {n: get_indicator(n).family for n in spec["indicators"]}
    totals = dict(zip(table["No."], table["Cumulative extra events, all provinces [95% CI]"]))
    assert all((totals[n] == "–") == (kinds[n] == "gaussian") for n in spec["indicators"]), totals


def test_province_summary_counts_verdicts(run_dir):
    summary = province_summary(load_run(run_dir)).set_index("province")
    assert summary.loc["340000", "fitted"] == 3 and summary.loc["540000", "failed"] == 1
    verdicts = summary[["improvement", "deterioration", "inconclusive"]].sum(axis=1)
    assert (verdicts == summary["fitted"]).all()


def test_provenance_table_tolerates_missing_and_unknown_keys(spec):
    table = provenance_table(spec["manifest"], lang="en")
    values = dict(zip(table["Item"], table["Value"]))
    assert values["Package"] == "plan-its 0.1.0"
    assert values["Code revision"].startswith("0123456789abcdef") and "uncommitted" in values["Code revision"]
    assert "sha256 " + "feedc0de" * 8 in values["Input (panel)"]
    assert "washin=3" in values["Parameters"]
    assert provenance_table({}, lang="zh").empty
    assert len(provenance_table({"something": 1}, lang="zh")) == 0
