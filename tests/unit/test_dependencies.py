"""Every dependency has an upper bound, and what is installed (what the tests ran on) is inside it."""

import tomllib
from importlib.metadata import version
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_every_dependency_is_bounded_and_installed_inside_its_range():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in deps:
        req = Requirement(line)
        assert any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier), f"{line}: no upper bound"
        assert req.specifier.contains(version(req.name), prereleases=True), f"{req.name} {version(req.name)} outside {line}"
