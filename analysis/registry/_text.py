"""Normalisation of names typed by people (full-width characters, stray spaces, case)."""

from __future__ import annotations

import unicodedata


def normalise_name(text: str) -> str:
    """Return ``text`` in a canonical form for exact (never fuzzy) matching.

    NFKC folds full-width letters and digits to ASCII; white space is removed and
    Latin letters are lower-cased.

    Examples
    --------
    >>> normalise_name(" Ｉnner  Mongolia ")
    'innermongolia'
    """
    folded = unicodedata.normalize("NFKC", str(text))
    return "".join(folded.split()).casefold()
