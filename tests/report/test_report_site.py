"""The run's index page: links, escaping, self-containment."""

from __future__ import annotations

import re
import shutil

import pytest

from analysis.report.site import heading_html, table_html, write_index


@pytest.fixture
def index_run(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)  # write_index writes into the run; keep the shared one clean
    return copy


def _pages(provinces):
    pages = [{"kind": "national", "province": None, "html": "national.html", "ipynb": "notebooks/national.ipynb"}]
    pages += [
        {
            "kind": "province",
            "province": code,
            "html": f"provinces/{code}.html",
            "ipynb": f"notebooks/province_{code}.ipynb",
        }
        for code in provinces
    ]
    return pages


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_index_links_every_province_and_table(index_run, spec, lang):
    path = write_index(index_run, pages=_pages(spec["provinces"]), lang=lang)
    assert path == index_run / "index.html"
    page = path.read_text(encoding="utf-8")
    assert "全面提升医疗质量行动计划" in page
    assert "Action Plan for Comprehensive Improvement of Medical Quality" in page
    assert 'href="national.html"' in page
    for code in spec["provinces"]:
        assert f'href="provinces/{code}.html"' in page
        assert f'href="notebooks/province_{code}.ipynb"' in page
    for name in ("effects.csv", "predictions.parquet", "diagnostics.csv", "failures.csv", "national_effects.csv"):
        assert f'href="tables/{name}"' in page
    assert ("安徽" if lang == "zh" else "Anhui") in page
    assert "feedc0de" * 8 in page  # input checksum in the provenance block


def test_index_escapes_text(index_run, spec):
    pages = _pages(spec["provinces"])
    pages[1]["html"] = 'provinces/a"b<c>.html'
    page = write_index(index_run, pages=pages, lang="en").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt; &amp; co" in page  # the failure message
    assert 'a"b<c>' not in page


def test_index_is_self_contained(index_run, spec):
    page = write_index(index_run, pages=_pages(spec["provinces"]), lang="zh").read_text(encoding="utf-8")
    assert "<style>" in page
    assert not re.search(r"<(link|script|img)\b", page)
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)


def test_html_helpers_escape():
    assert heading_html("<b>", level=3) == "<h3>&lt;b&gt;</h3>"
    import pandas as pd

    assert "&amp;" in table_html(pd.DataFrame({"x&y": ["1"]}))
