"""Lab 4 as a learner walks it: the mistakes a first learner made, each answered with AWS's words or a check that
names the cause, and the engine restart a learner does between sessions."""

from __future__ import annotations

import shutil

import pytest

from securecart_lab import state
from securecart_lab.checking import FAIL
from securecart_lab.errors import DeployError, LabError
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

pytestmark = pytest.mark.integration

LAB = get_lab(4)
SOLUTION = (LAB.solution_dir / "template.yaml").read_text()
LAB1_MACHINE = "securecart-order-processing"


def _outcome(settings, check_id: str):
    return {o.id: o for o in service.check(settings, 4, only={check_id}).outcomes}[check_id]


def _lose_lab_1(settings, aws, deployed_from: str) -> None:
    """What down/up does to lab 1: the new engine has none of it (its state machine is gone), and the progress record
    says lab 1 was deployed (from `deployed_from`) into an engine that is no longer running."""
    state.load(settings).record(1, deployed_from=deployed_from, deployed_environment="an-engine-stopped-since")
    sfn = aws("stepfunctions")
    arn = next(m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"] if m["name"] == LAB1_MACHINE)
    sfn.delete_state_machine(stateMachineArn=arn)
    assert not service.is_deployed(service.context(settings, get_lab(1)))


def _engine_id(settings) -> str:
    return service.context(settings, LAB).engine.environment_id()


def _lab_1_machines(aws) -> list[str]:
    return [m["name"] for m in aws("stepfunctions").list_state_machines()["stateMachines"] if m["name"] == LAB1_MACHINE]


def test_start_4_after_a_restart_deploys_the_reference_lab_1_again_without_asking(lab4, aws):
    # The learner ran "start 4 --with-prereqs" before (lab 1 from the reference solution); after down/up the check
    # says "run start 4", which must work. (What lab 1 was deployed from is set here: another test module run
    # earlier on the same engine may have deployed it from the workspace.)
    _lose_lab_1(lab4, aws, service.SOLUTION)
    result = service.start(lab4, 4)
    assert result.prerequisites == [1] and result.restored == []
    assert _lab_1_machines(aws) == [LAB1_MACHINE]
    assert state.load(lab4).lab(1)["deployed_environment"] != "an-engine-stopped-since"


def test_lab_1_removed_from_a_running_engine_is_not_deployed_again_without_asking(lab4, aws):
    _lose_lab_1(lab4, aws, service.SOLUTION)
    state.load(lab4).record(1, deployed_environment=_engine_id(lab4))  # removed from this engine, not lost
    try:
        with pytest.raises(LabError) as raised:
            service.start(lab4, 4)
        assert "--with-prereqs" in raised.value.hint
    finally:
        service.start(lab4, 4, with_prereqs=True)
    assert _lab_1_machines(aws) == [LAB1_MACHINE]


def test_start_4_after_a_restart_deploys_the_learners_own_lab_1_again(lab4, aws):
    lab1 = get_lab(1)
    folder = lab4.workspace / "lab01"
    existed = folder.exists()
    before = dict(state.load(lab4).lab(1))
    if not existed:
        shutil.copytree(lab1.solution_dir, folder)
    try:
        _lose_lab_1(lab4, aws, service.WORKSPACE)
        result = service.start(lab4, 4)
        assert result.restored == [1] and result.prerequisites == []
        assert _lab_1_machines(aws) == [LAB1_MACHINE]
    finally:
        state.load(lab4).record(1, **before)
        if not existed:
            shutil.rmtree(folder, ignore_errors=True)
        if not _lab_1_machines(aws):
            service.start(lab4, 4, with_prereqs=True)


def test_a_refused_rule_update_reads_in_awss_words(lab4, variant):
    service.deploy(lab4, 4, source=LAB.solution_dir)  # the fraud rule exists: the bad pattern is an update
    with pytest.raises(DeployError) as raised:
        service.deploy(lab4, 4, source=variant({'[{numeric: [">=", 100000]}]': '[{numeric: [">=", "100000"]}]'}))
    message = raised.value.message
    assert "InvalidEventPatternException: Event pattern is not valid. Reason: Value of >= must be numeric" in message
    assert "when calling the" not in message, message


def test_a_range_written_as_a_list_of_values_fails_fraud_routing_and_says_so(lab4, variant):
    service.deploy(lab4, 4, source=variant({'totalCents: [{numeric: [">=", 100000]}]': 'totalCents: [">=", 100000]'}))
    outcome = _outcome(lab4, "fraud-routing")
    assert outcome.status == FAIL
    assert "the one with a total of $1,000 or more" in outcome.message
    assert 'detail.totalCents: [">=", 100000]: a list of exact values' in outcome.message, outcome.message
    assert '[{"numeric": [">=", 100000]}]' in outcome.message


def test_a_rule_role_that_cannot_start_the_workflow_fails_fraud_routing_and_says_so(lab4, variant):
    service.deploy(lab4, 4, source=variant({"Action: states:StartExecution": "Action: states:StartSyncExecution"}))
    outcome = _outcome(lab4, "fraud-routing")
    assert outcome.status == FAIL
    assert "EventBridge could not start the workflow" in outcome.message, outcome.message
    assert "FailedInvocations rose by 3" in outcome.message and "states:StartExecution" in outcome.message


def test_a_template_cloudformation_rejects_changes_neither_account(lab4, variant, engine):
    service.deploy(lab4, 4, source=LAB.solution_dir)
    log_group = "/securecart/learner-added"
    folder = variant(
        template={"\nResources:\n": "\nResources:\n  Broken:\n    Type: AWS::SQS::Queue\n    Properties:\n"
                                    "      VisibilityTimout: 5\n"},
        security={"\nResources:\n": f"\nResources:\n  LearnerLog:\n    Type: AWS::Logs::LogGroup\n    Properties:\n"
                                    f"      LogGroupName: {log_group}\n"})
    with pytest.raises(DeployError) as raised:
        service.deploy(lab4, 4, source=folder)
    assert "template.yaml" in raised.value.message and "nothing was changed" in raised.value.message
    assert "VisibilityTimout" in raised.value.message, raised.value.message
    # security.yaml is deployed first: it was applied although template.yaml was refused (the log group existed)
    from securecart_lab import aws as aws_clients
    from securecart_lab.config import SECURITY_ACCOUNT_ID

    security_logs = aws_clients.client("logs", engine.endpoint_url, SECURITY_ACCOUNT_ID)
    assert security_logs.describe_log_groups(logGroupNamePrefix=log_group)["logGroups"] == []
