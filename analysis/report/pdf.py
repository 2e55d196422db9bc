"""The report as PDF, typeset by Typst (the ``typst`` wheel from PyPI; no TeX, no browser).

The layout is ``templates/report.typ``; the content is a JSON document of blocks (see
:func:`analysis.report.build.ReportDocument.to_typst`) that the template reads as data,
so nothing from a run is ever interpreted as Typst markup.

Fonts: the only font given to Typst is Noto Sans CJK SC from the ``mplfonts`` package
(the same file the figures use), and system fonts are ignored, so the PDF looks the same
on every machine and embeds the font it uses. Every character of the content is checked
against the font's character map before compiling, and the compiled PDF must embed the
font: a missing font or glyph is an error, never a box in the output.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from analysis.report.fonts import CJK_FAMILY, FontNotFoundError, cjk_font_path

__all__ = [
    "PdfBuildError",
    "PdfInfo",
    "check_glyphs",
    "compile_pdf",
    "font_dir",
    "pdf_page_count",
    "template_path",
    "typst_version",
]

#: Template file inside the package (package data: ``analysis/report/templates/*.typ``).
TEMPLATE = "report.typ"
#: PostScript name prefix of the embedded font, as it appears in the PDF's font objects.
_PDF_FONT_NAME = b"NotoSansCJKsc"


class PdfBuildError(RuntimeError):
    """Typst failed, warned, or produced a PDF without the CJK font."""


@dataclass(frozen=True)
class PdfInfo:
    """What :func:`compile_pdf` wrote."""

    path: Path
    pages: int
    bytes: int
    source: Path
    content: Path


def typst_version() -> str:
    """Version of the installed ``typst`` Python package (which embeds the compiler)."""
    from importlib import metadata

    try:
        return metadata.version("typst")
    except metadata.PackageNotFoundError:
        return "not installed"


def font_dir() -> Path:
    """Directory of ``mplfonts``' fonts, checked to hold Noto Sans CJK SC for Typst.

    Raises
    ------
    FontNotFoundError
        If the font file is missing or Typst does not find the family in that directory.
    """
    path = cjk_font_path().parent
    _check_typst_family(str(path))
    return path


@cache
def _check_typst_family(directory: str) -> None:
    import typst

    families = typst.Fonts(include_system_fonts=False, include_embedded_fonts=False, font_paths=[directory]).families()
    if CJK_FAMILY not in families:
        raise FontNotFoundError(
            f"Typst finds no {CJK_FAMILY!r} in {directory} (it finds {sorted(families)}); "
            "reinstall mplfonts (make setup)"
        )


def template_path() -> Path:
    """The Typst template shipped with the package."""
    path = Path(str(resources.files("analysis.report") / "templates" / TEMPLATE))
    if not path.is_file():
        raise FileNotFoundError(
            f"the report template {path} is missing: the package data "
            "'analysis/report/templates/*.typ' was not installed"
        )
    return path


@cache
def _cmap(path: str) -> frozenset[int]:
    from fontTools.ttLib import TTFont

    font = TTFont(path, lazy=True)
    try:
        return frozenset(font.getBestCmap())
    finally:
        font.close()


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _strings(item)


def check_glyphs(texts: Iterable[str]) -> None:
    """Raise :class:`FontNotFoundError` if a character has no glyph in Noto Sans CJK SC.

    Whitespace and control characters are not drawn and are not checked.

    Examples
    --------
    >>> check_glyphs(["围术期死亡率 −8.2% (95% CI)"])
    >>> check_glyphs(["\\U0001F600"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    analysis.report.fonts.FontNotFoundError: Noto Sans CJK SC has no glyph for ...(U+1F600)...
    """
    covered = _cmap(str(cjk_font_path()))
    missing = sorted(
        {ch for text in texts for ch in text if not ch.isspace() and ord(ch) >= 0x20 and ord(ch) not in covered}
    )
    if missing:
        listed = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing[:20])
        raise FontNotFoundError(
            f"{CJK_FAMILY} has no glyph for {listed}; the PDF would show boxes. "
            "Replace these characters in the report text."
        )


def pdf_page_count(pdf: bytes) -> int:
    """Number of pages of a PDF written by Typst (its page objects are not compressed).

    Examples
    --------
    >>> pdf_page_count(b"1 0 obj << /Type /Page /Parent 2 0 R >> 3 0 obj << /Type /Pages >>")
    1
    """
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


def compile_pdf(
    content: dict[str, Any], out_path: str | Path, *, root: str | Path, build_dir: str | Path | None = None
) -> PdfInfo:
    """Typeset ``content`` with the report template and write the PDF to ``out_path``.

    Parameters
    ----------
    content : dict
        The report as data: ``title``, ``subtitle``, ``author``, ``header``, ``lang``,
        ``region``, ``font``, ``meta`` (label, value pairs for the title page), ``notice``,
        ``contents_title`` and ``blocks`` (headings, paragraphs, lists, tables, figures).
        Figure paths are absolute within ``root`` (``/figures/zh/x.png``).
    out_path : path
        The PDF to write.
    root : path
        Typst's project root: every file the document reads must be inside it.
    build_dir : path, optional
        Where the template copy and the content JSON are written (inside ``root``);
        default ``root/_build``. They are kept, so the PDF can be rebuilt with the Typst
        command line: ``typst compile --root ROOT --font-path FONTS --ignore-system-fonts``.

    Raises
    ------
    FontNotFoundError
        If the CJK font is missing, Typst cannot find it, or the content has a character
        the font lacks.
    PdfBuildError
        If Typst reports an error or a warning, or the PDF does not embed the font.
    """
    import typst

    root = Path(root).resolve()
    build = Path(build_dir).resolve() if build_dir is not None else root / "_build"
    if not build.is_relative_to(root):
        raise ValueError(f"build_dir {build} must be inside root {root}")
    fonts = font_dir()
    content = {**content, "font": CJK_FAMILY}
    check_glyphs(_strings(content))
    build.mkdir(parents=True, exist_ok=True)
    stem = Path(out_path).stem
    source = build / f"{stem}.typ"
    data = build / f"{stem}.json"
    shutil.copyfile(template_path(), source)
    data.write_text(json.dumps(content, ensure_ascii=False, indent=1), encoding="utf-8")
    try:
        pdf, warnings = typst.compile_with_warnings(
            str(source),
            root=str(root),
            font_paths=[str(fonts)],
            ignore_system_fonts=True,
            sys_inputs={"content": data.name},
        )
    except typst.TypstError as err:
        raise PdfBuildError(f"Typst could not compile {source}: {err}") from err
    if warnings:
        raise PdfBuildError(f"Typst warned while compiling {source}: " + "; ".join(map(str, warnings)))
    if _PDF_FONT_NAME not in pdf:
        raise PdfBuildError(f"the PDF does not embed {CJK_FAMILY}; its text would not display as intended")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pdf)
    return PdfInfo(out, pdf_page_count(pdf), len(pdf), source, data)
