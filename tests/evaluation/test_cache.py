"""The run cache: results are reused only when their inputs and the code are unchanged."""

import json

import pandas as pd
import pytest

from analysis.data.synthetic import generate, write
from analysis.evaluation import cache as cache_module
from analysis.evaluation.cache import ResultCache, digest, frame_digest
from analysis.pipeline.run import run_evaluation


def test_frame_digest_sees_values_names_and_types_but_not_the_index():
    frame = pd.DataFrame({"province": ["340000", "110000"], "value": [1.0, 2.0]})
    assert frame_digest(frame) == frame_digest(frame.set_axis([5, 9]))
    assert frame_digest(frame) != frame_digest(frame.assign(value=[1.0, 2.000001]))
    assert frame_digest(frame) != frame_digest(frame.rename(columns={"value": "rate"}))
    assert frame_digest(frame) != frame_digest(frame.astype({"value": "float32"}))
    assert frame_digest(frame) != frame_digest(frame.iloc[::-1])


def test_digest_separates_its_parts():
    assert digest("ab", "c") != digest("a", "bc")
    assert digest({"a": 1, "b": 2}) == digest({"b": 2, "a": 1})


def test_a_stale_or_damaged_entry_is_a_miss(tmp_path):
    store = ResultCache(tmp_path)
    store.put("fit", "340000", key="old", value=[1])
    assert store.get("fit", "340000", key="new") is None
    (tmp_path / "fit" / "340000.pkl").write_bytes(b"not a pickle")
    assert store.get("fit", "340000", key="old") is None
    store.put("fit", "340000", key="k", value=[2])
    assert ResultCache(tmp_path, enabled=False).get("fit", "340000", key="k") is None
    assert store.get("fit", "340000", key="k") == [2]


def test_the_code_fingerprint_covers_the_source_and_the_notebooks():
    files = {
        p.relative_to(cache_module._ROOT).as_posix()
        for pattern in cache_module._CODE_GLOBS
        for p in cache_module._ROOT.glob(pattern)
    }
    assert {
        "analysis/its/covariance.py",
        "notebooks/province.py",
        "analysis/registry/indicators.csv",
        "analysis/report/templates/report.typ",
    } <= files
    assert len(cache_module.code_fingerprint()) == 64


@pytest.mark.e2e
def test_a_change_to_one_province_recomputes_only_what_depends_on_it(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    write(generate(5, provinces=["340000", "540000"], indicators=[9]), data)
    quiet = {"workers": 2, "echo": lambda *_: None, "report_langs": ()}
    first = run_evaluation(data, out, **quiet)
    assert first.reused_fits == () and first.reused_pages == ()
    pages = {code: (out / "provinces" / f"{code}.html").read_bytes() for code in ("340000", "540000")}
    effects = pd.read_csv(out / "tables" / "effects.csv")

    second = run_evaluation(data, out, **quiet)
    assert set(second.reused_fits) == {"340000", "540000"}
    assert set(second.reused_pages) == {"national", "data_quality", "340000", "540000"}
    assert not first.reused_robustness and second.reused_robustness
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "effects.csv"), effects)

    panel = pd.read_csv(data / "panel.csv", dtype=str)
    row = panel.index[panel["province"] == "540000"][10]
    panel.loc[row, "value"] = str(float(panel.loc[row, "value"]) * 1.2)
    panel.to_csv(data / "panel.csv", index=False)
    third = run_evaluation(data, out, **quiet)
    assert third.reused_fits == ("340000",)
    assert third.reused_pages == ("340000",)
    assert not third.reused_robustness  # the robustness tables pool every province
    assert (out / "provinces" / "340000.html").read_bytes() == pages["340000"]
    assert (out / "provinces" / "540000.html").read_bytes() != pages["540000"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["cache"]["fits_computed"] == ["540000"]
    assert {p["label"]: p["reused"] for p in manifest["pages"]} == {
        "national": False,
        "data_quality": False,
        "340000": True,
        "540000": False,
    }

    # Without the cache everything is recomputed, and the results are the same.
    changed = pd.read_csv(out / "tables" / "effects.csv")
    fourth = run_evaluation(data, out, use_cache=False, tables_only=True, **quiet)
    assert fourth.reused_fits == ()
    pd.testing.assert_frame_equal(pd.read_csv(out / "tables" / "effects.csv"), changed)
