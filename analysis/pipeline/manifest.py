"""Run manifest: what produced a set of results (inputs, parameters, versions, code)."""

from __future__ import annotations

import datetime as dt
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path

from analysis.data.contract import sha256

#: Distributions whose versions are recorded (the package's direct dependencies).
RECORDED_DISTRIBUTIONS = (
    "plan-its",
    "numpy",
    "pandas",
    "scipy",
    "statsmodels",
    "matplotlib",
    "seaborn",
    "papermill",
    "jupytext",
    "nbconvert",
    "ipykernel",
    "pyarrow",
    "mplfonts",
)


def code_revision(path: Path | None = None) -> dict[str, object]:
    """Git commit of the package source and whether the work tree had local changes."""
    root = path or Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": "unknown", "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def dependency_versions() -> dict[str, str]:
    versions = {}
    for name in RECORDED_DISTRIBUTIONS:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def describe_file(path: Path, *, role: str, rows: int | None = None) -> dict[str, object]:
    entry: dict[str, object] = {"role": role, "path": str(path), "sha256": sha256(path), "bytes": path.stat().st_size}
    if rows is not None:
        entry["rows"] = rows
    return entry


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def write_manifest(path: Path, manifest: dict) -> Path:
    """Write the manifest as UTF-8 JSON (keys in insertion order)."""
    base = {
        "package": {"name": "plan-its", "version": dependency_versions().get("plan-its")},
        "code_revision": code_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "dependencies": dependency_versions(),
    }
    path.write_text(json.dumps({**base, **manifest}, ensure_ascii=False, indent=2, default=str), encoding="utf-8")
    return path
