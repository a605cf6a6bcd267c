"""What a lab's README links must exist where the learner reads it: in their workspace, after start."""

import re

import pytest

from securecart_lab.labs import workspace
from securecart_lab.labs.registry import all_labs

LINK = re.compile(r"\]\(([^)#\s]+)\)")


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.key)
def test_every_relative_link_of_the_workspace_readme_resolves(lab, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    readme = workspace.copy_instructions(root, lab)
    workspace.copy_starter(root, lab)
    workspace.copy_references(root, lab)
    links = [l for l in LINK.findall(readme.read_text()) if "://" not in l and not l.startswith("mailto:")]
    missing = [l for l in links if not (readme.parent / l).exists()]
    assert not missing, f"{lab.key}/README.md links what the workspace lacks: {missing}"


def test_lab1_references_are_read_only_copies_and_follow_the_kit(tmp_path):
    lab = next(l for l in all_labs() if l.number == 1)
    root = tmp_path / "ws"
    root.mkdir()
    written = workspace.copy_references(root, lab)
    names = sorted(p.relative_to(root / lab.key / "reference").as_posix() for p in written)
    assert "functions/authorize_payment.py" in names and "events/OrderPlaced.schema.json" in names
    copy = root / lab.key / "reference" / "functions" / "authorize_payment.py"
    assert copy.stat().st_mode & 0o222 == 0
    assert copy.read_text() == (lab.path / "functions" / "authorize_payment.py").read_text()
    assert workspace.copy_references(root, lab) == []  # unchanged: nothing rewritten
