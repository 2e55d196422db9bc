"""Plain-language findings and methods: the rules of verdict, strength of evidence and
consistency, the numbers in the sentences, both languages, and methods from the manifest."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.registry import timeline
from analysis.report import narrative
from analysis.report.tables import RunTables, load_run

# Indicator 30 (surgical complications) and 34 (CRBSI) are better lower; 12 (stroke
# reperfusion) and 37 (structured records) better higher; 21 is better higher too.
NATIONAL = [
    # indicator, estimate, ci_low, ci_high, pi_low, pi_high, p_value
    (30, -0.117, -0.143, -0.090, -0.213, -0.009, 1e-6),  # improvement, strong, consistent
    (34, -0.184, -0.257, -0.103, -0.495, 0.319, 0.02),  # improvement, moderate (p above 0.05/5)
    (12, -0.060, -0.100, -0.020, -0.200, 0.100, 0.004),  # deterioration (lower, but higher is better), strong
    (37, 0.030, -0.010, 0.070, -0.100, 0.150, 0.15),  # inconclusive
    (21, 0.050, 0.020, 0.080, 0.010, 0.090, 0.03),  # improvement, moderate, consistent
]


def _tables(
    tmp_path: Path,
    *,
    manifest: dict | None = None,
    national_extra: dict | None = None,
    synthetic: bool = False,
    failures: pd.DataFrame | None = None,
) -> RunTables:
    rows = []
    for number, est, lo, hi, pi_lo, pi_hi, p in NATIONAL:
        rows.append(
            {
                "indicator": number,
                "measure": "effect_end_relative",
                "estimate": est,
                "ci_low": lo,
                "ci_high": hi,
                "pi_low": pi_lo,
                "pi_high": pi_hi,
                "p_value": p,
                "k": 3,
                "i2": 60.0,
                "tau2": 0.01,
                "method": "reml",
                "hksj": True,
            }
        )
        rows.append(
            {
                "indicator": number,
                "measure": "effect_end_absolute",
                "estimate": est * 10,
                "ci_low": lo * 10,
                "ci_high": hi * 10,
                "pi_low": np.nan,
                "pi_high": np.nan,
                "p_value": p,
                "k": 3,
                "i2": 60.0,
                "tau2": 0.1,
                "method": "reml",
                "hksj": True,
            }
        )
    national = pd.DataFrame(rows)
    for column, values in (national_extra or {}).items():
        national[column] = values
    # Three provinces: 30 improves in two, deteriorates in none.
    effects = []
    for province, shift in (("110000", -0.05), ("120000", -0.04), ("130000", 0.0)):
        for number, est, *_ in NATIONAL:
            effects.append(
                {
                    "province": province,
                    "indicator": number,
                    "measure": "effect_end_relative",
                    "estimate": est + shift,
                    "ci_low": est + shift - 0.03,
                    "ci_high": est + shift + 0.03,
                    "p_value": 0.01,
                    "cov_type": "latent-ar1",
                    "window_end": "2025-09",
                }
            )
    effects = pd.DataFrame(effects)
    diagnostics = pd.DataFrame(
        [
            {
                "province": p,
                "indicator": n,
                "family": "binomial" if n != 34 else "poisson",
                "start_month": s,
                "converged": True,
            }
            for p, s in (("110000", "2023-06"), ("120000", "2023-08"), ("130000", "2023-10"))
            for n, *_ in NATIONAL
        ]
    )
    predictions = pd.DataFrame({"province": ["110000"] * 2, "indicator": [30, 30], "month": ["2019-01", "2025-12"]})
    failures = (
        failures
        if failures is not None
        else pd.DataFrame(columns=["province", "indicator", "stage", "error", "message"])
    )
    (tmp_path / "tables").mkdir(exist_ok=True)
    if synthetic:
        (tmp_path / "tables" / "recovery_summary.csv").write_text("measure,n\n", encoding="utf-8")
    return RunTables(tmp_path, effects, predictions, diagnostics, failures, national, manifest or {})


def test_findings_apply_the_stated_rules(tmp_path):
    findings = narrative.national_findings(_tables(tmp_path)).set_index("indicator")
    assert list(findings.index) == [12, 21, 30, 34, 37]  # annex order
    assert findings.loc[30, ["verdict", "certainty", "consistent"]].tolist() == ["improvement", "strong", True]
    assert findings.loc[34, ["verdict", "certainty", "consistent"]].tolist() == ["improvement", "moderate", False]
    assert findings.loc[12, ["verdict", "certainty"]].tolist() == ["deterioration", "strong"]
    assert findings.loc[37, ["verdict", "certainty", "consistent"]].tolist() == ["inconclusive", "none", False]
    assert findings.loc[21, ["verdict", "certainty", "consistent"]].tolist() == ["improvement", "moderate", True]
    # Bonferroni over the five pooled indicators when the run recorded no adjustment.
    assert findings["strong_threshold"].iloc[0] == pytest.approx(0.05 / 5)
    # Provinces: 30 at -0.167, -0.157 (improved) and -0.117 (improved): all three improved.
    assert findings.loc[30, ["provinces_improved", "provinces_deteriorated"]].tolist() == [3, 0]
    assert findings.loc[30, "absolute"] == pytest.approx(-1.17)


def test_an_adjusted_p_value_of_the_run_decides_strength(tmp_path):
    # As analysis.synthesis.multiplicity writes them: Holm for the primary indicators only
    # (30 and 34 here), Benjamini-Hochberg for all. Rows: 30, 34, 12, 37, 21 (relative, absolute).
    nan = np.nan
    tables = _tables(
        tmp_path,
        national_extra={
            "p_holm": [0.2, 0.2, 0.001, 0.001, nan, nan, nan, nan, nan, nan],
            "p_bh": [0.001, 0.001, 0.2, 0.2, 0.04, 0.04, 0.5, 0.5, 0.07, 0.07],
        },
    )
    findings = narrative.national_findings(tables).set_index("indicator")
    assert findings.loc[30, ["certainty", "p_strong_source"]].tolist() == ["moderate", "p_holm"]  # raw 1e-6
    assert findings.loc[34, ["certainty", "p_strong_source"]].tolist() == ["strong", "p_holm"]  # raw 0.02
    assert findings.loc[12, ["certainty", "p_strong_source"]].tolist() == ["strong", "p_bh"]
    assert findings.loc[21, ["certainty", "p_strong_source"]].tolist() == ["moderate", "p_bh"]
    assert findings["strong_threshold"].iloc[0] == pytest.approx(0.05)
    verdict = {s.key: s for s in narrative.methods_sections(tables, "en")}["verdict"]
    assert "p_holm → p_bh" in " ".join(verdict.paragraphs)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_sentences_carry_the_numbers_and_direction(tmp_path, lang):
    findings = narrative.national_findings(_tables(tmp_path)).set_index("indicator", drop=False)
    text = narrative.finding_sentence(findings.loc[30], lang)
    assert "11.7%" in text and "9.0%" in text and "14.3%" in text
    assert ("低" if lang == "zh" else "lower") in text
    assert narrative.certainty_label("strong", lang) in text
    assert "−21.3%" in text  # the prediction interval, with a typographic minus
    higher = narrative.finding_sentence(findings.loc[21], lang)
    assert ("高" if lang == "zh" else "higher") in higher
    unclear = narrative.finding_sentence(findings.loc[37], lang)
    assert ("无明确变化" if lang == "zh" else "no clear change") in unclear
    assert "+3.0%" in unclear


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_summary_counts_verdicts_by_dimension_in_both_languages(tmp_path, lang):
    s = narrative.summary(_tables(tmp_path), lang)
    numbers = [int(n) for n in re.findall(r"\d+", s.headline)]
    assert {5, 3, 1} <= set(numbers)  # 5 pooled, 3 improved (1 strong), 1 deteriorated, 1 inconclusive
    assert len(s.improvements) == 3 and len(s.deteriorations) == 1 and len(s.inconclusive) == 1
    assert s.improvements[0].startswith("手术并发症发生率" if lang == "zh" else "Surgical complication rate")
    assert len(s.dimensions) == 6  # the annex's six dimensions, status-only ones included
    status = s.dimensions[0]
    assert ("状态类" if lang == "zh" else "status items") in status
    campaign = [
        name
        for when, name_en, name_zh in timeline.CO_INTERVENTIONS
        if when == "2023-07"
        for name in ((name_zh,) if lang == "zh" else (name_en,))
    ]
    assert all(name in " ".join(s.caveats) for name in campaign)
    assert ("合成数据" if lang == "zh" else "synthetic") not in s.text()


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_synthetic_runs_and_failures_are_flagged(tmp_path, lang):
    failures = pd.DataFrame([{"province": "110000", "indicator": 9, "stage": "fit", "error": "E", "message": "m"}])
    tables = _tables(tmp_path, synthetic=True, failures=failures)
    s = narrative.summary(tables, lang)
    assert s.caveats[0] == narrative.synthetic_notice(tables, lang)
    assert any("1 " in c for c in s.caveats[1:])
    sentence = narrative.province_sentence(tables, "110000", lang)
    assert ("北京" if lang == "zh" else "Beijing") in sentence
    assert ("未能拟合" if lang == "zh" else "could not be fitted") in sentence


def test_summary_without_pooled_effects(tmp_path):
    tables = _tables(tmp_path)
    empty = RunTables(
        tables.run_dir,
        tables.effects,
        tables.predictions,
        tables.diagnostics,
        tables.failures,
        tables.national.iloc[0:0],
        {},
    )
    s = narrative.summary(empty, "en")
    assert "no pooled national effects" in s.headline
    assert s.improvements == []


MANIFEST = {
    "package": {"name": "plan-its", "version": "9.9.9"},
    "code_revision": {"commit": "abcdef0123456789", "dirty": True},
    "python": "3.11.7",
    "dependencies": {"statsmodels": "0.15.0", "numpy": "2.4.6"},
    "inputs": [{"role": "panel", "path": "/data/panel.csv", "sha256": "00" * 32}],
    "parameters": {
        "washin": 2,
        "seasonality": "fourier:3",
        "spring_festival": False,
        "shocks": ["2022-12"],
        "cov_type": "newey-west",
        "evaluation_month": "2025-06",
        "level": 0.9,
        "pooling_method": "dl",
        "pooling_hksj": False,
        "exclude_months": ["2020-04"],
    },
}


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_methods_follow_the_parameters_actually_used(tmp_path, lang):
    tables = _tables(tmp_path, manifest=MANIFEST)
    tables.effects["cov_type"] = "newey-west"
    sections = {s.key: s for s in narrative.methods_sections(tables, lang, report_versions={"typst": "0.15.2"})}
    assert list(sections) == ["data", "design", "family", "se", "pool", "verdict", "software", "other"]
    design = sections["design"].paragraphs[0]
    assert " 2 " in design  # wash-in
    assert ("2022年12月" if lang == "zh" else "2022-12") in design
    assert ("2020年1月" if lang == "zh" else "2020-01") not in design
    assert "3" in design and ("傅里叶" if lang == "zh" else "Fourier") in design
    assert ("未控制春节" if lang == "zh" else "not modelled") in design
    families = " ".join(sections["family"].items)
    assert "34" in families and "12" in families
    assert "Newey-West" in sections["se"].paragraphs[0]
    assert ("2025年6月" if lang == "zh" else "2025-06") in sections["se"].paragraphs[0]
    assert "90%" in sections["se"].paragraphs[0]
    assert "DerSimonian-Laird" in sections["pool"].paragraphs[0]
    assert "Bonferroni" in " ".join(sections["verdict"].paragraphs)
    assert "0.1 / 5" in " ".join(sections["verdict"].paragraphs)  # alpha from the level, five indicators
    software = sections["software"].paragraphs[0]
    assert "9.9.9" in software and "abcdef012345" in software and "0.15.2" in software
    assert sections["other"].items == ("exclude_months = ['2020-04']",)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_methods_say_how_absolute_effects_of_counts_were_pooled_and_corrected(tmp_path, lang):
    ways = ["random effects", "random effects, equal weights"] * len(NATIONAL)
    manifest = {
        **MANIFEST,
        "parameters": {**MANIFEST["parameters"], "bias_corrected_effects": True, "pooling_absolute_counts": "equal"},
    }
    tables = _tables(tmp_path, manifest=manifest, national_extra={"pooled_as": ways})
    sections = {s.key: s for s in narrative.methods_sections(tables, lang)}
    assert ("算术平均" if lang == "zh" else "unweighted mean") in sections["pool"].paragraphs[0]
    assert "exp(η − v/2)" in sections["se"].paragraphs[0]
    assert sections.get("other") is None or not any("bias_corrected" in item for item in sections["other"].items)
    plain = {s.key: s for s in narrative.methods_sections(_tables(tmp_path, manifest=MANIFEST), lang)}
    assert ("算术平均" if lang == "zh" else "unweighted mean") not in plain["pool"].paragraphs[0]
    assert "exp(η − v/2)" not in plain["se"].paragraphs[0]


def test_methods_record_a_multiple_testing_policy(tmp_path):
    manifest = {**MANIFEST, "parameters": {**MANIFEST["parameters"], "multiplicity": "holm"}}
    sections = {s.key: s for s in narrative.methods_sections(_tables(tmp_path, manifest=manifest), "en")}
    assert "multiplicity=holm" in " ".join(sections["verdict"].paragraphs)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_narrative_of_a_fitted_run(run_dir, spec, lang):
    tables = load_run(run_dir)
    s = narrative.summary(tables, lang)
    pooled = narrative.national_findings(tables)
    assert sorted(pooled["indicator"]) == spec["indicators"]
    assert len(s.improvements) + len(s.deteriorations) + len(s.inconclusive) == len(spec["indicators"])
    for code in spec["provinces"]:
        assert narrative.province_sentence(tables, code, lang)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_finding_sentence_gives_the_national_total_of_extra_events(lang):
    row = {
        "indicator": 31,
        "name_zh": "非计划重返手术室再手术率",
        "name_en": "Unplanned reoperation",
        "direction": "down",
        "unit": "%",
        "estimate": -0.12,
        "ci_low": -0.18,
        "ci_high": -0.06,
        "pi_low": -0.3,
        "pi_high": 0.05,
        "i2": 40.0,
        "k": 32,
        "absolute": -0.03,
        "absolute_low": -0.05,
        "absolute_high": -0.01,
        "cumulative": -1234.4,
        "cumulative_low": -2050.0,
        "cumulative_high": -418.6,
        "cumulative_k": 31,
        "verdict": "improvement",
        "certainty": "strong",
        "consistent": False,
        "provinces_improved": 12,
        "provinces_deteriorated": 1,
    }
    sentence = narrative.finding_sentence(row, lang)
    assert "−1,234" in sentence and "−2,050, −419" in sentence and "31" in sentence
    assert ("合计累计额外事件" if lang == "zh" else "extra events over the 31 provinces") in sentence
    without = narrative.finding_sentence({**row, "cumulative": np.nan}, lang)
    assert "1,234" not in without


def test_national_findings_carry_the_cumulative_total(tmp_path):
    extra = pd.DataFrame(
        [
            {
                "indicator": 34,
                "measure": "effect_cumulative",
                "estimate": -250.0,
                "ci_low": -400.0,
                "ci_high": -100.0,
                "p_value": 0.01,
                "k": 3,
                "method": "sum",
                "hksj": False,
            }
        ]
    )
    tables = _tables(tmp_path)
    tables = tables.__class__(
        tables.run_dir,
        tables.effects,
        tables.predictions,
        tables.diagnostics,
        tables.failures,
        pd.concat([tables.national, extra], ignore_index=True),
        tables.manifest,
    )
    findings = narrative.national_findings(tables).set_index("indicator")
    assert findings.loc[34, "cumulative"] == -250.0 and findings.loc[34, "cumulative_k"] == 3
    assert np.isnan(findings.loc[30, "cumulative"])
    sections = {s.key: s for s in narrative.methods_sections(tables, "en")}
    assert "SUM" not in sections["pool"].paragraphs[0].upper().split("REML")[0]  # the method of the meta-analyses
