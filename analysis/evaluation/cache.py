"""A cache of per-province results keyed on their inputs and on the code.

Rerunning the evaluation after a change to one province should refit that province's
series and re-render only the pages that show them. Each cached item is stored with a
key: the SHA-256 of everything its result depends on, that is the data it reads (as
bytes of a canonical representation), the parameters, and a fingerprint of the package
source, the notebook templates and the package data. A changed key means recompute;
nothing is ever reused on a guess (no timestamps).

The cache lives in ``RUN_DIR/.cache`` and can be deleted at any time.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd

__all__ = ["ResultCache", "code_fingerprint", "digest", "frame_digest"]

_ROOT = Path(__file__).resolve().parents[2]
#: Files whose content defines what the evaluation computes and shows.
_CODE_GLOBS = ("analysis/**/*.py", "analysis/**/*.csv", "analysis/**/*.typ", "notebooks/**/*.py")


@cache
def code_fingerprint() -> str:
    """SHA-256 over the package source, its data files and the notebook templates.

    Any edit to any of them changes the fingerprint and so invalidates every cached
    result; the package version is included for installations without the source tree.
    """
    from importlib import metadata

    h = hashlib.sha256()
    try:
        h.update(metadata.version("plan-its").encode())
    except metadata.PackageNotFoundError:
        h.update(b"unknown")
    files = sorted({p for pattern in _CODE_GLOBS for p in _ROOT.glob(pattern) if p.is_file()})
    for path in files:
        h.update(str(path.relative_to(_ROOT)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def frame_digest(frame: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's column names, dtypes and values (not its index).

    Examples
    --------
    >>> a = pd.DataFrame({"x": [1, 2]})
    >>> frame_digest(a) == frame_digest(a.copy()), frame_digest(a) == frame_digest(a.assign(x=[1, 3]))
    (True, False)
    """
    h = hashlib.sha256()
    h.update(json.dumps([[str(c), str(t)] for c, t in frame.dtypes.items()]).encode())
    h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()


def digest(*parts: Any) -> str:
    """SHA-256 of several parts: DataFrames by :func:`frame_digest`, the rest as JSON.

    Examples
    --------
    >>> digest({"washin": 3}, "340000") == digest({"washin": 3}, "340000")
    True
    >>> digest({"washin": 3}) == digest({"washin": 6})
    False
    """
    h = hashlib.sha256()
    for part in parts:
        if isinstance(part, pd.DataFrame):
            h.update(frame_digest(part).encode())
        else:
            h.update(json.dumps(part, sort_keys=True, default=str, ensure_ascii=False).encode())
        h.update(b"\x1e")
    return h.hexdigest()


class ResultCache:
    """Results stored under ``root/<kind>/<name>.pkl`` together with the key they belong to.

    Parameters
    ----------
    root : path
        Directory of the cache (created on first write).
    enabled : bool
        When false, nothing is read (every lookup misses) but results are still written,
        so the next run can use them.

    Examples
    --------
    >>> import tempfile
    >>> store = ResultCache(tempfile.mkdtemp())
    >>> store.get("fit", "340000", key="k1") is None
    True
    >>> store.put("fit", "340000", key="k1", value={"rows": 3})
    >>> store.get("fit", "340000", key="k1"), store.get("fit", "340000", key="k2")
    ({'rows': 3}, None)
    """

    def __init__(self, root: str | Path, *, enabled: bool = True) -> None:
        self.root = Path(root)
        self.enabled = enabled

    def _path(self, kind: str, name: str) -> Path:
        return self.root / kind / f"{name}.pkl"

    def get(self, kind: str, name: str, *, key: str) -> Any | None:
        """The value stored for ``name`` if it was stored with ``key``, else ``None``."""
        path = self._path(kind, name)
        if not self.enabled or not path.is_file():
            return None
        try:
            with path.open("rb") as handle:
                stored_key, value = pickle.load(handle)
        except Exception:  # a truncated or foreign file is a miss, and is overwritten later
            return None
        return value if stored_key == key else None

    def put(self, kind: str, name: str, *, key: str, value: Any) -> None:
        """Store ``value`` for ``name`` under ``key`` (atomically: a crash leaves no half file)."""
        path = self._path(kind, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".tmp")
        with partial.open("wb") as handle:
            pickle.dump((key, value), handle, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)
