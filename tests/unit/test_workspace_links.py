"""What a lab's README links must exist where the learner reads it: in their workspace, after start; and the README
there follows the kit's (an upgraded kit) without ever overwriting the learner's edits."""

import dataclasses
import re
import shutil

import pytest

from securecart_lab.labs import workspace
from securecart_lab.labs.registry import all_labs

LINK = re.compile(r"\]\(([^)#\s]+)\)")


@pytest.mark.parametrize("lab", all_labs(), ids=lambda lab: lab.key)
def test_every_relative_link_of_the_workspace_readme_resolves(lab, tmp_path):
    root = tmp_path / "ws"
    root.mkdir()
    readme = workspace.copy_instructions(root, lab).path
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


def _lab_with_readme(tmp_path, text: str):
    """Lab 1 as the kit ships it, but with a README of the given text (the kit's README changing between starts)."""
    lab = next(l for l in all_labs() if l.number == 1)
    folder = tmp_path / "kit" / lab.key
    if not folder.exists():
        shutil.copytree(lab.path, folder)
    (folder / "README.md").write_text(text)
    return dataclasses.replace(lab, path=folder)


def test_an_unedited_readme_follows_the_kit_and_an_edited_one_is_kept(tmp_path):
    root = tmp_path / "ws"
    first = workspace.copy_instructions(root, _lab_with_readme(tmp_path, "# v1\n"))
    assert first.path.read_text() == "# v1\n" and not first.refreshed and first.newer is None

    # The kit is upgraded: the learner's untouched copy becomes the new README.
    second = workspace.copy_instructions(root, _lab_with_readme(tmp_path, "# v2\n"), first.written_sha256)
    assert second.refreshed and second.path.read_text() == "# v2\n"

    # The learner writes notes in it, then the kit changes again: their copy stays, the new one goes beside it.
    second.path.write_text("# v2\nmy notes\n")
    third = workspace.copy_instructions(root, _lab_with_readme(tmp_path, "# v3\n"), second.written_sha256)
    assert not third.refreshed and third.path.read_text() == "# v2\nmy notes\n"
    assert third.newer == root / "lab01" / workspace.KIT_README and third.newer.read_text() == "# v3\n"
    assert third.written_sha256 == second.written_sha256  # what the kit wrote there is still v2

    # Edited, and the kit has not changed since its copy: nothing written beside it.
    (root / "lab01" / workspace.KIT_README).unlink()
    again = workspace.copy_instructions(root, _lab_with_readme(tmp_path, "# v2\n"), second.written_sha256)
    assert again.newer is None and not again.refreshed and not (root / "lab01" / workspace.KIT_README).exists()
