"""PDF typesetting with Typst: embedded CJK font, content never parsed as markup, loud
failures for a missing font or glyph."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from analysis.report import pdf
from analysis.report.fonts import FontNotFoundError

#: Text that would be markup if it were pasted into Typst source.
TRICKY = '#set page(paper: "a5") $x^2$ *bold* _it_ <label> @ref [link] // not a comment = heading'


def _content(**overrides) -> dict:
    content = {
        "title": "全面提升医疗质量行动计划（2023—2025年）效果评估",
        "subtitle": "Evaluation of the Action Plan",
        "author": "test",
        "header": "页眉 header",
        "lang": "zh",
        "region": "cn",
        "meta": [["数据", "panel.csv"]],
        "notice": None,
        "contents_title": "目录",
        "blocks": [
            {"kind": "heading", "level": 1, "text": "主要发现"},
            {"kind": "paragraph", "text": "围术期死亡率下降 −8.2%（95% CI −12.1, −4.0）。", "style": "lede"},
            {"kind": "paragraph", "text": TRICKY, "style": "body"},
            {"kind": "list", "items": ["改善 improvement", "恶化 deterioration"]},
            {"kind": "heading", "level": 2, "text": "表格 Tables"},
            {
                "kind": "table",
                "caption": "全国合并效应",
                "columns": ["指标", "相对效应", "判定"],
                "rows": [["30", "−11.7% (−14.3, −9.0)", "改善"], ["37", "+3.0% (−1.0, +7.0)", "不确定"]],
                "align": ["right", "left", "left"],
                "widths": ["auto", 1, "auto"],
                "size": 8,
                "tones": ["improvement", "inconclusive"],
                "tone_column": 2,
            },
            {"kind": "pagebreak"},
            {"kind": "heading", "level": 1, "text": "附录 Appendix"},
        ],
    }
    return {**content, **overrides}


def test_font_dir_holds_the_cjk_font():
    directory = pdf.font_dir()
    assert (directory / "NotoSansCJKsc-Regular.otf").is_file()


def test_template_is_package_data():
    assert pdf.template_path().name == "report.typ"
    assert "json(" in pdf.template_path().read_text(encoding="utf-8")


def test_compile_embeds_the_cjk_font_and_keeps_the_sources(tmp_path):
    info = pdf.compile_pdf(_content(), tmp_path / "out" / "report.pdf", root=tmp_path)
    data = info.path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert info.pages >= 3  # title page with contents, findings, appendix
    assert info.pages == pdf.pdf_page_count(data)
    assert b"NotoSansCJKsc" in data and b"/FontFile" in data
    assert info.source.is_file() and info.content.is_file()
    assert info.source.is_relative_to(tmp_path) and info.source.parent == tmp_path / "_build"


def test_content_is_data_not_markup(tmp_path):
    import typst

    info = pdf.compile_pdf(_content(), tmp_path / "report.pdf", root=tmp_path)
    headings = typst.query(
        str(info.source),
        "heading",
        field="body",
        root=str(tmp_path),
        font_paths=[str(pdf.font_dir())],
        ignore_system_fonts=True,
        sys_inputs={"content": info.content.name},
    )
    texts = [h.get("text") for h in __import__("json").loads(headings)]
    assert "主要发现" in texts and "附录 Appendix" in texts
    assert not any(t and t.startswith("heading") for t in texts)  # "= heading" in TRICKY stayed text
    if shutil.which("pdftotext"):
        text = subprocess.run(
            ["pdftotext", "-layout", str(info.path), "-"], capture_output=True, text=True, check=True
        ).stdout
        assert "$x^2$ *bold* _it_ <label>" in text
        assert "围术期死亡率" in text


def test_a_character_without_glyph_fails_before_compiling(tmp_path):
    content = _content(blocks=[{"kind": "paragraph", "text": "tofu \U0001f9c8", "style": "body"}])
    with pytest.raises(FontNotFoundError, match="U\\+1F9C8"):
        pdf.compile_pdf(content, tmp_path / "report.pdf", root=tmp_path)
    assert not (tmp_path / "report.pdf").exists()


def test_a_missing_font_fails_loudly(tmp_path, monkeypatch):
    def missing():
        raise FontNotFoundError("mplfonts is not installed")

    monkeypatch.setattr(pdf, "cjk_font_path", missing)
    with pytest.raises(FontNotFoundError, match="mplfonts"):
        pdf.compile_pdf(_content(), tmp_path / "report.pdf", root=tmp_path)


def test_a_font_directory_without_the_family_fails_loudly(tmp_path, monkeypatch):
    empty = tmp_path / "fonts"
    empty.mkdir()
    monkeypatch.setattr(pdf, "cjk_font_path", lambda: empty / "NotoSansCJKsc-Regular.otf")
    with pytest.raises(FontNotFoundError, match="Noto Sans CJK SC"):
        pdf.font_dir()


def test_build_dir_must_be_inside_root(tmp_path):
    with pytest.raises(ValueError, match="inside root"):
        pdf.compile_pdf(_content(), tmp_path / "r.pdf", root=tmp_path / "root", build_dir=tmp_path / "elsewhere")


def test_typst_errors_are_reported(tmp_path):
    content = _content(blocks=[{"kind": "figure", "path": "/missing.png", "caption": "x", "alt": "x", "width_mm": 50}])
    with pytest.raises(pdf.PdfBuildError, match="missing.png|not found|file"):
        pdf.compile_pdf(content, tmp_path / "report.pdf", root=tmp_path)


def test_typst_version_is_known():
    assert pdf.typst_version()[0].isdigit()
