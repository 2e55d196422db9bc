"""A Chinese font for matplotlib that fails loudly instead of drawing empty boxes.

Matplotlib's default font (DejaVu Sans) has no CJK glyphs: without a CJK font every
Chinese character is drawn as a box (tofu) with only a warning. The report therefore
registers Noto Sans CJK SC, shipped as package data by ``mplfonts``, directly from that
package's directory, and never calls ``mplfonts``' installers, which write into
matplotlib's own data directory.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import warnings
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import matplotlib
from matplotlib import font_manager

__all__ = [
    "CJK_FAMILY",
    "FontNotFoundError",
    "MissingGlyphError",
    "cjk_font_path",
    "strict_glyphs",
    "use_cjk_font",
]

#: Family name of the registered font.
CJK_FAMILY = "Noto Sans CJK SC"
#: File of the font inside the ``mplfonts`` package data.
CJK_FONT_FILE = "NotoSansCJKsc-Regular.otf"
#: Matplotlib's wording (``matplotlib._text_helpers.warn_on_missing_glyph``).
_MISSING_GLYPH = re.compile(r"Glyph \d+ .* missing from font")


class FontNotFoundError(RuntimeError):
    """The CJK font file is missing or matplotlib does not resolve its family to it."""


class MissingGlyphError(RuntimeError):
    """A character of a figure's text has no glyph in any configured font."""


def cjk_font_path() -> Path:
    """Path of Noto Sans CJK SC in the installed ``mplfonts`` package.

    The package directory is found from its import spec, so ``mplfonts`` itself is not
    imported (nothing of it runs).

    Raises
    ------
    FontNotFoundError
        If ``mplfonts`` is not installed or the font file is not in it.

    Examples
    --------
    >>> cjk_font_path().name
    'NotoSansCJKsc-Regular.otf'
    """
    spec = importlib.util.find_spec("mplfonts")
    if spec is None or not spec.submodule_search_locations:
        raise FontNotFoundError(
            "the Chinese font comes from the 'mplfonts' package, which is not installed in this "
            "environment; install the locked requirements (make setup)"
        )
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "fonts" / CJK_FONT_FILE
        if path.is_file():
            return path
    raise FontNotFoundError(
        f"{CJK_FONT_FILE} not found in mplfonts/fonts under {list(spec.submodule_search_locations)}; "
        "reinstall mplfonts (make setup)"
    )


@cache
def _register(path: Path) -> str:
    # addfont appends to the font list each time; register each file once per process.
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def use_cjk_font() -> str:
    """Register Noto Sans CJK SC and make it matplotlib's sans-serif font.

    The CJK font comes first so that Latin, digits and Chinese share one design (it has
    Latin glyphs and the Unicode minus sign, so ``axes.unicode_minus`` stays on); DejaVu
    Sans follows as a per-glyph fallback for anything it lacks.

    Returns
    -------
    str
        The registered family name, ``"Noto Sans CJK SC"``.

    Raises
    ------
    FontNotFoundError
        If the font file is missing or matplotlib resolves the family to another file.

    Examples
    --------
    >>> use_cjk_font()
    'Noto Sans CJK SC'
    >>> import matplotlib
    >>> matplotlib.rcParams["font.sans-serif"][0]
    'Noto Sans CJK SC'
    """
    path = cjk_font_path()
    family = _register(path)
    rc = matplotlib.rcParams
    rest = [f for f in rc["font.sans-serif"] if f not in (family, "DejaVu Sans")]
    rc["font.family"] = ["sans-serif"]
    rc["font.sans-serif"] = [family, "DejaVu Sans", *rest]
    rc["axes.unicode_minus"] = True
    found = font_manager.findfont(font_manager.FontProperties(family=family), fallback_to_default=False)
    if Path(found).resolve() != path.resolve():
        raise FontNotFoundError(f"matplotlib resolves {family!r} to {found}, not to {path}")
    return family


@contextlib.contextmanager
def strict_glyphs() -> Iterator[None]:
    """Raise :class:`MissingGlyphError` when text drawn inside the block lacks a glyph.

    Matplotlib only warns (and draws a box) when no configured font has a character.
    Text is laid out when a figure is drawn or saved, so wrap the drawing, not the
    figure's construction.

    Examples
    --------
    >>> import io
    >>> from matplotlib.figure import Figure
    >>> _ = use_cjk_font()
    >>> fig = Figure()
    >>> _ = fig.suptitle("围术期死亡率")
    >>> with strict_glyphs():
    ...     fig.savefig(io.BytesIO(), format="png")
    """
    with warnings.catch_warnings():
        # catch_warnings resets the once-per-location registry, so every miss is seen.
        warnings.filterwarnings("error", message=_MISSING_GLYPH.pattern)
        try:
            yield
        except Warning as err:
            if _MISSING_GLYPH.search(str(err)):
                raise MissingGlyphError(
                    f"{err} Call analysis.report.fonts.use_cjk_font() before drawing Chinese text."
                ) from err
            raise
