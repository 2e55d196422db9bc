"""The package's structure: no module imports another module's private names (the layer and
circle contracts are import-linter's, run by ``make test``; see pyproject.toml)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "analysis"


def test_no_module_imports_a_private_name_of_another():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("analysis"):
                offences += [
                    f"{path.relative_to(PACKAGE.parent)}:{node.lineno} {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_") and not alias.name.startswith("__")
                ]
    assert not offences, "private names imported across modules:\n" + "\n".join(offences)
