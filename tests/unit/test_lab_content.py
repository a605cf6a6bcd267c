"""Lab content is linted: valid manifests, unique check ids, steps reference real checks, starter and
solution hold the same files, every check has a hint. (That the starter fails and the solution passes is
proven per lab by the integration tests, against the real engine.)"""

import ast

import pytest

from securecart_lab import paths
from securecart_lab.checking import load_checks
from securecart_lab.labs.registry import all_labs

LABS = all_labs()


def test_the_labs_are_there_in_order():
    assert [lab.number for lab in LABS] == [1, 2, 3, 4]


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_manifest_and_folders(lab):
    assert lab.title and lab.summary and lab.objectives and lab.services
    assert lab.estimated_minutes > 0
    assert lab.readme.exists() and len(lab.readme.read_text()) > 1000, "the README teaches; it is not a stub"
    for name in lab.workspace_files:
        assert (lab.starter_dir / name).is_file(), f"starter/{name}"
        assert (lab.solution_dir / name).is_file(), f"solution/{name}"
        assert (lab.starter_dir / name).read_bytes() != (lab.solution_dir / name).read_bytes(), f"{name}: starter == solution"
    for required in lab.requires:
        assert required < lab.number


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_provisioning_module_has_the_contract_functions(lab):
    tree = ast.parse((lab.path / "provision.py").read_text())
    functions = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert {"provision", "deploy"} <= functions


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_checks_exist_and_steps_reference_them(lab):
    checks = load_checks(lab.checks_file(paths.checks_dir()))
    assert len(checks) >= 3
    ids = {c.id for c in checks}
    for chk in checks:
        assert chk.hint.strip() and chk.title.strip() and chk.points > 0
    referenced = {cid for step in lab.steps for cid in step.checks}
    assert referenced <= ids, f"steps reference unknown checks: {referenced - ids}"
    assert lab.steps, "a lab has steps"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_lab_commands_work_with_aws_cli_v1_too(lab):
    # pip install awscli gives v1, which has no --cli-binary-format: fileb:// payloads work in both.
    for path in [lab.readme, lab.path / "provision.py"]:
        assert "--cli-binary-format" not in path.read_text(), path
    # v1 has no "aws logs tail" either; a note may mention it as v2's.
    commands = [line.strip() for line in lab.readme.read_text().splitlines() if line.strip().startswith("aws logs tail")]
    assert not commands, commands


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_staged_hints_are_text_and_belong_to_steps_with_checks(lab):
    for step in lab.steps:
        assert all(isinstance(h, str) and len(h) > 20 for h in step.hints), step.title
        assert not step.hints or step.checks, f"{step.title}: hints for a step nothing checks"


@pytest.mark.parametrize("lab", LABS, ids=lambda lab: lab.key)
def test_the_manifest_names_the_stacks_and_functions_provision_creates(lab):
    """lab.toml [resources] is what `status` attributes processes to labs by: it must say what provision.py makes."""
    from securecart_lab.config import ACCOUNT_ID, SECURITY_ACCOUNT_ID

    module = lab.provisioner()
    stacks = {(ACCOUNT_ID, getattr(module, "STACK", None)), (SECURITY_ACCOUNT_ID, getattr(module, "SECURITY_STACK", None))}
    assert set(lab.stacks) == {(account, name) for account, name in stacks if name}
    assert set(lab.functions) == {(ACCOUNT_ID, name) for name in getattr(module, "FUNCTIONS", {})}


def test_a_manifest_resource_in_an_account_the_kit_does_not_have_is_refused(tmp_path):
    from securecart_lab.errors import LabError
    from securecart_lab.labs.model import load_lab

    folder = tmp_path / "09-example"
    folder.mkdir()
    manifest = (LABS[3].path / "lab.toml").read_text().replace('"security:securecart-lab04-security"',
                                                                '"audit:securecart-lab04-security"')
    (folder / "lab.toml").write_text(manifest.replace("id = 4", "id = 9"))
    with pytest.raises(LabError, match="audit:securecart-lab04-security.*Unknown account 'audit'"):
        load_lab(folder)
    (folder / "lab.toml").write_text(manifest.replace("id = 4", "id = 9").replace('"audit:', '"security:'))
    assert load_lab(folder).stacks[1] == ("222222222222", "securecart-lab04-security")
