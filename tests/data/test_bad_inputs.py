"""The bad-input corpus: every malformed file gives exactly the expected problems.

Each case in ``tests/data/bad_inputs/`` is a data file (or a directory of files read
together) with its expected report in ``<case>.expected``: one line per problem, as
``str(Problem)`` prints it, in the report's order. Cases named ``analysis-*`` run the
analysis checks too (points per phase, jumps, shifts at changes of definition), with
``<case>.plan_dates.csv`` and ``<case>.changes.csv`` when present; the others check the
data contract only. ``python tests/data/bad_inputs/_make_corpus.py`` recreates the
binary files; ``REGENERATE_BAD_INPUTS=1 pytest tests/data/test_bad_inputs.py`` rewrites
the expected files (then read every change).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from analysis.data.quality import CheckSettings, check_inputs
from analysis.data.rules import RULES

#: Rules only the comparison-series table (comparison_series.csv) can break.
COMPARISON_SERIES_RULES = {"bad-series-name", "unknown-measure", "mixed-measure", "comparison-items"}

CORPUS = Path(__file__).resolve().parent / "bad_inputs"
DATA_SUFFIXES = {".csv", ".xlsx", ".xls", ".parquet", ".tsv"}


def _cases() -> list[str]:
    names = []
    for path in sorted(CORPUS.iterdir()):
        if path.name.startswith("_") or path.suffix == ".expected":
            continue
        if path.is_dir() or (path.suffix in DATA_SUFFIXES and ".plan_dates." not in path.name
                             and ".changes." not in path.name):
            names.append(path.name)
    return names


CASES = _cases()


def _run(name: str):
    path = Path(name)
    stem = path.name.split(".")[0]
    files = sorted(str(p) for p in path.iterdir()) if (CORPUS / path).is_dir() else [name]
    plan = Path(f"{stem}.plan_dates.csv")
    changes = Path(f"{stem}.changes.csv")
    settings = CheckSettings(analysis_checks=stem.startswith("analysis-"))
    return check_inputs(files, plan_dates=plan if (CORPUS / plan).is_file() else None,
                        definition_changes=changes if (CORPUS / changes).is_file() else None, settings=settings)


def _expected_path(name: str) -> Path:
    return CORPUS / f"{Path(name).name}.expected"


def test_the_corpus_has_at_least_thirty_cases():
    assert len(CASES) >= 30


@pytest.mark.parametrize("name", CASES)
def test_each_bad_input_gives_exactly_the_expected_problems(name, monkeypatch):
    monkeypatch.chdir(CORPUS)
    before = {p: p.read_bytes() for p in CORPUS.rglob("*") if p.is_file() and p.suffix != ".expected"}
    report = _run(name)
    lines = [str(p) for p in report.problems]
    expected = _expected_path(name)
    if os.environ.get("REGENERATE_BAD_INPUTS"):
        expected.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert lines, f"{name}: no problem reported"
    assert lines == expected.read_text(encoding="utf-8").splitlines()
    # Input files are never modified.
    assert all(p.read_bytes() == data for p, data in before.items())


def test_every_rule_is_exercised_by_the_corpus():
    found = set()
    for name in CASES:
        for line in _expected_path(name).read_text(encoding="utf-8").splitlines():
            found.update(re.findall(r" \[([a-z-]+)\](?:; fix: |$)", line)[-1:])
    # 'schema' guards the checks themselves, and no two annex names are alike, so no input
    # file can reach these two; test_quality.py tests them with a broken panel and a
    # registry given a duplicate name. The rules of the comparison-series table concern
    # another file (test_comparison_series.py).
    assert set(RULES) - found == {"schema", "ambiguous-indicator", *COMPARISON_SERIES_RULES}


def test_every_comparison_series_rule_is_exercised_by_its_tests():
    source = (Path(__file__).resolve().parent / "test_comparison_series.py").read_text(encoding="utf-8")
    assert all(f'"{rule}"' in source for rule in COMPARISON_SERIES_RULES)
