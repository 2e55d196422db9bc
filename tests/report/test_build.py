"""The ``report`` command: HTML, PDF and workbook from a run's tables, in both languages,
with the expected sections, tables and figures; optional tables; the figure cache."""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from analysis.cli import main
from analysis.registry import get_indicator, indicators
from analysis.report import build
from analysis.report.build import build_report, text
from analysis.report.pdf import font_dir, pdf_page_count
from analysis.report.tables import province_name

SECTIONS = [
    "summary",
    "summary_other",
    "methods",
    "national",
    "provinces",
    "robustness",
    "power",
    "data_quality",
    "forests",
    "reproducibility",
]
DIMENSIONS = list(dict.fromkeys((i.dimension_zh, i.dimension_en) for i in indicators()))


@pytest.fixture(scope="module")
def built(run_dir, tmp_path_factory):
    """The small run's report in both languages (zh through the process pool, en in-process)."""
    out = {}
    for lang, workers in (("zh", 2), ("en", 1)):
        directory = tmp_path_factory.mktemp(f"report-{lang}")
        out[lang] = build_report(run_dir, directory, lang=lang, workers=workers)
    return out


def _html(result) -> str:
    return result.paths["html"].read_text(encoding="utf-8")


def _expected_figures(spec) -> set[str]:
    dims = {
        i
        for i, (zh, _) in enumerate(DIMENSIONS, start=1)
        if any(get_indicator(n).dimension_zh == zh for n in spec["indicators"])
    }
    return (
        {f"overview-{d}" for d in dims}
        | {f"province-{p}" for p in spec["provinces"]}
        | {f"forest-{n}" for n in spec["indicators"]}
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_outputs_are_written(built, lang):
    result = built[lang]
    assert set(result.paths) == {"html", "pdf", "xlsx", "build"}
    for path in result.paths.values():
        assert path.is_file() and path.stat().st_size > 0
        assert path.name.startswith(f"report-{lang}")
    info = json.loads(result.paths["build"].read_text(encoding="utf-8"))
    assert info["lang"] == lang and info["timings"]["total"] > 0
    assert result.figures_drawn == len(result.document.figures) and result.figures_reused == 0


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_has_every_section_in_order(built, lang):
    page = _html(built[lang])
    positions = [page.find(f" {html.escape(text(key, lang))}</h2>") for key in SECTIONS]
    assert -1 not in positions, [key for key, p in zip(SECTIONS, positions) if p < 0]
    assert positions == sorted(positions)
    for zh, en in DIMENSIONS:  # national results by the annex's six dimensions
        assert f"{html.escape(zh if lang == 'zh' else en)}</h3>" in page
    other = "en" if lang == "zh" else "zh"
    assert html.escape(text("summary", other)) in page  # the summary in the other language too


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_html_tables_and_figures(built, spec, lang):
    result = built[lang]
    page = _html(result)
    keys = {
        "summary-counts",
        "provinces-summary",
        "failures",
        "diagnostics",
        "run",
        "inputs",
        "parameters",
        "versions",
        "tables-read",
    } | {f"province-{p}" for p in spec["provinces"]}
    for key in keys:
        assert f'<table class="dataframe" id="{key}">' in page, key
    figures = {f.key for f in result.document.figures}
    assert figures == _expected_figures(spec)
    sources = re.findall(r'<img src="([^"]+)"', page)
    assert len(sources) == len(figures)
    for source in sources:
        path = result.out_dir / source
        assert path.is_file() and path.read_bytes()[:4] == b"\x89PNG"
        assert source.startswith(f"figures/{lang}/")
    # National tables, one per dimension with pooled indicators, one row per indicator.
    for d, (zh, _) in enumerate(DIMENSIONS, start=1):
        numbers = [n for n in spec["indicators"] if get_indicator(n).dimension_zh == zh]
        table = re.search(rf'<table class="dataframe" id="national-{d}">.*?</table>', page, re.S)
        assert (table is not None) == bool(numbers)
        if table:
            assert table.group(0).count("<tr>") == 1 + len(numbers)
    for code in spec["provinces"]:
        assert province_name(code, lang) in page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_pdf_has_the_same_sections_tables_and_figures(built, lang):
    import typst

    result = built[lang]
    data = result.paths["pdf"].read_bytes()
    assert data.startswith(b"%PDF-") and b"NotoSansCJKsc" in data
    assert result.pdf_pages == pdf_page_count(data) >= 10
    source = result.out_dir / "_build" / f"report-{lang}.typ"

    def query(selector: str, field: str | None = None) -> list:
        return json.loads(
            typst.query(
                str(source),
                selector,
                field=field,
                root=str(result.out_dir),
                font_paths=[str(font_dir())],
                ignore_system_fonts=True,
                sys_inputs={"content": f"report-{lang}.json"},
            )
        )

    headings = [h.get("text") for h in query("heading.where(level: 1, outlined: true)", "body")]
    assert headings == [text(key, lang) for key in SECTIONS]
    document = result.document
    assert len(query("figure.where(kind: image)")) == len(document.figures)
    assert len(query("figure.where(kind: table)")) == sum(1 for t in document.tables if t.caption)
    assert len(query("table")) == len(document.tables) + 1  # and the title page's key/value table
    if shutil.which("pdftotext"):
        page_text = subprocess.run(
            ["pdftotext", str(result.paths["pdf"]), "-"], capture_output=True, text=True, check=True
        ).stdout
        for key in SECTIONS:
            assert text(key, lang).split("：")[0].split(":")[0] in page_text


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_methods_and_appendix_come_from_the_manifest(built, spec, lang):
    page = _html(built[lang])
    manifest = spec["manifest"]
    assert manifest["inputs"][0]["sha256"] in page
    assert manifest["code_revision"]["commit"] in page
    assert "a_future_key" not in page or "nested" in page  # unknown keys never break the page
    # Optional analyses that this run did not compute are named as such.
    for name in ("robustness", "power", "data_quality"):
        assert f"tables/{build.OPTIONAL_TABLES[name]}" in page
    # The failure message from the data is escaped in HTML and kept verbatim in the PDF's data.
    assert "&lt;script&gt;" in page and "<script>" not in page
    content = (built[lang].out_dir / "_build" / f"report-{lang}.json").read_text(encoding="utf-8")
    assert spec["failure"]["message"] in json.loads(content).__repr__()


def test_rebuild_reuses_figures_and_workbook(built, run_dir):
    first = built["zh"]
    again = build_report(run_dir, first.out_dir, lang="zh", workers=2)
    assert again.figures_drawn == 0 and again.figures_reused == len(first.document.figures)
    assert again.workbook_reused
    assert again.paths["pdf"].read_bytes()[:5] == b"%PDF-"


def test_changed_tables_redraw_only_what_changed(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    out = tmp_path / "out"
    first = build_report(run, out, lang="en", workers=1, formats=("html",))
    effects = pd.read_csv(run / "tables" / "effects.csv", dtype={"province": str})
    row = (
        (effects["province"] == "540000") & (effects["indicator"] == 9) & (effects["measure"] == "effect_end_relative")
    )
    effects.loc[row, "estimate"] += 0.01
    effects.to_csv(run / "tables" / "effects.csv", index=False)
    second = build_report(run, out, lang="en", workers=1, formats=("html",))
    # The province's panels and the indicator's forest show that row; nothing else does.
    assert second.figures_drawn == 2 and second.figures_reused == len(first.document.figures) - 2
    assert "xlsx" not in second.paths


def test_optional_tables_are_rendered_when_present(run_dir, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    rng = np.random.default_rng(0)
    pd.DataFrame(
        {
            "province": ["340000"] * 70,
            "indicator": [9] * 70,
            "scenario": [f"washin={k}" for k in range(70)],
            "measure": ["effect_end_relative"] * 70,
            "estimate": rng.normal(0, 0.1, 70),
            "p_value": rng.uniform(0, 1, 70),
        }
    ).to_csv(run / "tables" / "robustness.csv", index=False)
    pd.DataFrame({"indicator": [9, 11], "mde": [0.05, 0.08], "power": [0.8, 0.6]}).to_csv(
        run / "tables" / "power.csv", index=False
    )
    pd.DataFrame({"check": ["zero denominators"], "rows": [0]}).to_csv(run / "tables" / "data_quality.csv", index=False)
    result = build_report(run, tmp_path / "out", lang="en", workers=1, formats=("html", "pdf"))
    page = _html(result)
    robustness = re.search(r'<table class="dataframe" id="robustness">.*?</table>', page, re.S).group(0)
    assert robustness.count("<tr>") == 1 + build.MAX_ROWS
    assert "Anhui" in robustness and "Relative effect at 2025-09" in robustness
    assert f"first {build.MAX_ROWS} of 70 rows" in page
    assert '<table class="dataframe" id="power">' in page and '<table class="dataframe" id="data_quality">' in page
    assert "was not computed" not in page
    assert result.paths["pdf"].is_file()


def test_cli_report(run_dir, tmp_path, capsys):
    code = main(
        [
            "report",
            "--from",
            str(run_dir),
            "--out",
            str(tmp_path),
            "--lang",
            "en",
            "--workers",
            "1",
            "--formats",
            "html,xlsx",
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "report-en.html" in printed and "report-en.xlsx" in printed and "total" in printed
    assert (tmp_path / "report-en.html").is_file() and not (tmp_path / "report-en.pdf").exists()


def test_cli_report_on_a_directory_without_tables(tmp_path, capsys):
    assert main(["report", "--from", str(tmp_path / "nothing"), "--out", str(tmp_path / "out")]) == 2
    assert "error:" in capsys.readouterr().err


def test_unknown_format_is_refused(run_dir, tmp_path):
    with pytest.raises(ValueError, match="docx"):
        build_report(run_dir, tmp_path, formats=("docx",))


def test_an_empty_optional_table_is_a_note_and_the_pdf_builds(run_dir, tmp_path):
    # Clean data give a data-quality table with a header and no rows; Typst cannot lay out
    # a table without columns, so the report says the table is empty instead.
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    pd.DataFrame(columns=["file", "row", "column", "value", "rule", "message", "severity"]).to_csv(
        run / "tables" / "data_quality.csv", index=False
    )
    result = build_report(run, tmp_path / "out", lang="en", workers=1, formats=("html", "pdf"))
    page = _html(result)
    assert "(tables/data_quality.csv) has no rows" in page
    assert 'id="data_quality"' not in page
    assert result.paths["pdf"].is_file()


def test_event_time_curves_of_the_primary_indicators_are_in_the_report(run_dir, fitted, tmp_path):
    from analysis.synthesis.event_time import pooled_event_time

    results, _ = fitted
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    pooled_event_time(results.event_time).to_csv(run / "tables" / "event_time_national.csv", index=False)
    numbers = sorted(set(results.event_time["indicator"]))
    manifest = json.loads((run / "manifest.json").read_text())
    manifest["parameters"]["primary_indicators"] = [numbers[0], 999]
    (run / "manifest.json").write_text(json.dumps(manifest))
    result = build_report(run, tmp_path / "out", lang="en", workers=1, formats=("html", "pdf"))
    page = _html(result)
    assert "Effects by months since the start" in page
    assert f"event_time_{numbers[0]}.png" in page and f"event_time_{numbers[1]}.png" not in page
    assert (tmp_path / "out" / "figures" / "en" / f"event_time_{numbers[0]}.png").is_file()
    assert result.paths["pdf"].is_file()


@pytest.mark.parametrize(
    ("lang", "labels"), [("zh", ["指标", "对照序列", "合并方式"]), ("en", ["Indicator", "Comparison", "Pooled as"])]
)
def test_readable_table_labels_the_comparison_and_pooling_columns(lang, labels):
    from analysis.report.tables import readable_table

    frame = pd.DataFrame(
        {"indicator": [28], "comparison": ["28 in hospitals outside the first wave"], "pooled_as": ["random effects"]}
    )
    assert list(readable_table(frame, lang).columns) == labels
