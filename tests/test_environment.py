"""Dependencies have one source (pyproject.toml); environment.yml and the lock agree with it."""

import tomllib

from analysis.devtools import environment
from tests.conftest import REPO


def _pins() -> dict[str, str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = list(project["dependencies"]) + list(project["optional-dependencies"]["test"])
    out = {}
    for pin in pins:
        name, sep, version = pin.partition("==")
        assert sep, f"pyproject.toml: {pin!r} is not an exact pin (name==version)"
        out[name.lower()] = version
    return out


def test_environment_yml_is_generated_from_pyproject():
    assert (REPO / "environment.yml").read_text() == environment.render(), (
        "environment.yml differs from pyproject.toml; run `make environment`"
    )


def test_lock_contains_every_pinned_dependency_at_the_same_version():
    lock = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            lock[name.lower().replace("_", "-")] = version
    for name, version in _pins().items():
        assert lock.get(name) == version, f"requirements.lock has {name}=={lock.get(name)}, pyproject.toml {version}"


def test_check_mode_detects_a_stale_file(tmp_path):
    stale = tmp_path / "environment.yml"
    stale.write_text(environment.render().replace("numpy==", "numpy>="))
    assert environment.main(["--check", str(stale)]) == 1
    stale.write_text(environment.render())
    assert environment.main(["--check", str(stale)]) == 0
