"""The Chinese font is registered from mplfonts and a missing glyph is an error."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import matplotlib
import pytest
from matplotlib import font_manager
from matplotlib.figure import Figure

from analysis.report import fonts
from analysis.report.fonts import FontNotFoundError, MissingGlyphError, strict_glyphs, use_cjk_font


def test_use_cjk_font_registers_noto_sans_cjk():
    family = use_cjk_font()
    assert family == "Noto Sans CJK SC"
    assert matplotlib.rcParams["font.sans-serif"][:2] == [family, "DejaVu Sans"]
    found = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    assert Path(found).resolve() == fonts.cjk_font_path().resolve()
    assert "mplfonts" in Path(found).parts  # read from the package, not copied into matplotlib


def test_chinese_title_renders_without_missing_glyph_warning():
    use_cjk_font()
    fig = Figure(figsize=(4, 2))
    fig.suptitle("急性ST段抬高型心肌梗死再灌注治疗率 −8.2% ‰ （95% CI）")
    fig.add_subplot().set_xlabel("围术期死亡率（‰）")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning while drawing fails the test
        fig.savefig(buffer, format="png")
    assert buffer.getvalue()[:8] == b"\x89PNG\r\n\x1a\n"


def test_strict_glyphs_turns_a_missing_glyph_into_an_error():
    with matplotlib.rc_context({"font.family": ["sans-serif"], "font.sans-serif": ["DejaVu Sans"]}):
        fig = Figure(figsize=(3, 1))
        fig.text(0.1, 0.5, "改善")  # DejaVu Sans has no CJK glyphs
        with pytest.raises(MissingGlyphError, match="missing from font"):
            with strict_glyphs():
                fig.savefig(io.BytesIO(), format="png")


def test_missing_font_file_fails_loudly(monkeypatch):
    monkeypatch.setattr(fonts, "CJK_FONT_FILE", "NoSuchFont.otf")
    with pytest.raises(FontNotFoundError, match="NoSuchFont.otf"):
        use_cjk_font()


def test_missing_package_fails_loudly(monkeypatch):
    monkeypatch.setattr(fonts.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FontNotFoundError, match="mplfonts"):
        fonts.cjk_font_path()
