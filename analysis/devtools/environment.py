"""Generate ``environment.yml`` for conda users from ``pyproject.toml``.

``pyproject.toml`` is the single source of dependencies. The conda environment installs
the same exact pins through pip (several, such as mplfonts, are not on conda channels
under the same names), so both routes give the same versions.

Usage: ``python -m analysis.devtools.environment --write environment.yml`` (or ``--check``).
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEADER = "# Generated from pyproject.toml by `make environment`; do not edit by hand.\n"


def render(pyproject: Path = REPO / "pyproject.toml") -> str:
    """The environment.yml text for the dependencies declared in ``pyproject``."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    python = project["requires-python"].removeprefix(">=")
    pins = list(project["dependencies"]) + list(project.get("optional-dependencies", {}).get("test", []))
    lines = [
        HEADER,
        "name: plan-its\n",
        "channels:\n",
        "  - conda-forge\n",
        "dependencies:\n",
        f"  - python={python}\n",
        "  - pip\n",
        "  - pip:\n",
    ]
    lines += [f"      - {pin}\n" for pin in pins]
    lines += ["      - -e .\n"]
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path, help="write the file")
    group.add_argument("--check", type=Path, help="exit 1 if the file differs from pyproject.toml")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        args.write.write_text(text, encoding="utf-8")
        return 0
    current = args.check.read_text(encoding="utf-8") if args.check.is_file() else ""
    if current != text:
        print(f"{args.check} is out of date with pyproject.toml; run `make environment`", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
