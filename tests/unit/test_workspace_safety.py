"""The workspace is the learner's: links out of it are refused, malformed files get one line naming them,
and solve backs up edits in labNN/solution/ (no engine needed: every refusal comes before the engine is asked)."""

from __future__ import annotations

import json

import pytest

from securecart_lab.labs import workspace
from securecart_lab.labs.registry import all_labs, get_lab


@pytest.fixture
def lab1(isolated_settings):
    lab = get_lab(1)
    workspace.copy_starter(isolated_settings.workspace, lab)
    return workspace.lab_dir(isolated_settings.workspace, lab)


def _secret(tmp_path):
    secret = tmp_path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text('{"secret": true}')
    return secret


def test_deploy_does_not_read_through_a_link_out_of_the_workspace(cli, isolated_settings, lab1, tmp_path):
    secret = _secret(tmp_path)
    (lab1 / "rules.json").unlink()
    (lab1 / "rules.json").symlink_to(secret)
    result = cli("deploy", "1")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {lab1 / 'rules.json'}: is a link to {secret}, outside {lab1}")
    assert '"secret": true' not in result.output


def test_reset_does_not_overwrite_the_target_of_a_link(cli, isolated_settings, lab1, tmp_path):
    secret = _secret(tmp_path)
    (lab1 / "logging.json").unlink()
    (lab1 / "logging.json").symlink_to(secret)
    result = cli("reset", "1")
    assert result.exit_code == 1 and "outside" in result.output
    assert secret.read_text() == '{"secret": true}'
    assert not (lab1 / ".backups").exists()


def test_start_does_not_create_files_through_a_dangling_link(cli, isolated_settings, tmp_path):
    target = tmp_path / "elsewhere" / "state_machine.asl.json"
    target.parent.mkdir()
    folder = isolated_settings.workspace / "lab01"
    folder.mkdir(parents=True)
    (folder / "state_machine.asl.json").symlink_to(target)
    result = cli("start", "1")
    assert result.exit_code == 1 and "outside" in result.output
    assert not target.exists()
    assert not (isolated_settings.home / "run").exists()  # refused before the engine started


def test_a_lab_folder_linking_out_is_refused(cli, isolated_settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    isolated_settings.workspace.mkdir(parents=True)
    (isolated_settings.workspace / "lab01").symlink_to(elsewhere)
    result = cli("reset", "1")
    assert result.exit_code == 1 and "outside" in result.output
    assert list(elsewhere.iterdir()) == []


def test_links_inside_the_workspace_are_fine(isolated_settings, lab1):
    (lab1 / "drafts").mkdir()
    (lab1 / "drafts" / "rules.json").write_text((lab1 / "rules.json").read_text())
    (lab1 / "rules.json").unlink()
    (lab1 / "rules.json").symlink_to(lab1 / "drafts" / "rules.json")
    workspace.check_files(lab1, get_lab(1))


MALFORMED = {
    "binary garbage": (b"\x00\xff\xfe\x80garbage", "is not UTF-8 text"),
    "a UTF-8 BOM": (b'\xef\xbb\xbf{"level": "OFF"}', "byte order mark"),
    "100k-deep nesting": (b"[" * 100_000 + b"]" * 100_000, "nested 100,000 levels deep"),
    "more than 2 MiB": (b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}', "larger than 2,097,152 bytes"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_files_get_one_line_naming_them(cli, isolated_settings, lab1, case):
    data, expected = MALFORMED[case]
    name = "logging.json" if case != "100k-deep nesting" else "rules.json"
    (lab1 / name).write_bytes(data)
    result = cli("deploy", "1")
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert result.exit_code == 1
    assert lines[0].startswith(f"Error: {lab1 / name}") and expected in lines[0], result.output
    assert "Unexpected" not in result.output and "Traceback" not in result.output
    assert len(lines) == 2


def test_a_folder_where_a_file_belongs_is_named(cli, isolated_settings, lab1):
    (lab1 / "rules.json").unlink()
    (lab1 / "rules.json").mkdir()
    result = cli("deploy", "1")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {lab1 / 'rules.json'}: is a folder; a file was expected here")


@pytest.mark.parametrize("lab", [lab.number for lab in all_labs()])
def test_every_lab_file_is_checked_before_deploying(cli, isolated_settings, lab):
    obj = get_lab(lab)
    workspace.copy_starter(isolated_settings.workspace, obj)
    folder = workspace.lab_dir(isolated_settings.workspace, obj)
    for name in obj.workspace_files:
        good = (folder / name).read_bytes()
        (folder / name).write_bytes(b"\xff\xfe binary")
        result = cli("deploy", str(lab))
        assert result.exit_code == 1 and f"{folder / name}:1: is not UTF-8 text" in result.output, result.output
        (folder / name).write_bytes(good)


def test_solve_backs_up_edits_in_the_solution_copy(isolated_settings, lab1):
    lab = get_lab(1)
    copy, saved = workspace.save_solution_copy(isolated_settings.workspace, lab)
    assert saved is None and (copy / "rules.json").read_bytes() == (lab.solution_dir / "rules.json").read_bytes()
    (copy / "rules.json").write_text('["my notes"]')
    copy, saved = workspace.save_solution_copy(isolated_settings.workspace, lab)
    assert json.loads((saved / "solution" / "rules.json").read_text()) == ["my notes"]
    assert (copy / "rules.json").read_bytes() == (lab.solution_dir / "rules.json").read_bytes()
    _, again = workspace.save_solution_copy(isolated_settings.workspace, lab)
    assert again is None  # nothing edited since: no new backup


def test_backups_never_collide(isolated_settings, lab1):
    lab = get_lab(1)
    folders = {workspace.backup(isolated_settings.workspace, lab) for _ in range(5)}
    assert len(folders) == 5 and all(f.is_dir() for f in folders)
