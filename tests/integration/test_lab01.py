"""Lab 1 end to end on the session's real engine: the starter fails what it should, the reference solution
passes every check, each typical mistake fails the check that names it, and a bad deploy changes nothing."""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.errors import WorkspaceFileError
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

pytestmark = pytest.mark.integration

LAB = get_lab(1)
STARTER_FAILS = {"payment-retry", "payment-declined-to-support", "parallel-fulfilment", "restock-on-low-inventory",
                 "execution-logs", "happy-path", "invalid-order-rejected", "least-privilege-role"}


@pytest.fixture(scope="module")
def lab1(settings, engine):
    service.start(settings, 1)
    yield settings
    service.solve(settings, 1)  # later modules find lab 1 deployed and correct


def _statuses(settings, only=None) -> dict[str, str]:
    report = service.check(settings, 1, only=only)
    return {o.id: o.status for o in report.outcomes}


def _variant(tmp: Path, mutate) -> Path:
    """A copy of the solution with `mutate(files)` applied to its parsed JSON files."""
    folder = Path(tempfile.mkdtemp(dir=tmp))
    files = {name: json.loads((LAB.solution_dir / name).read_text()) for name in LAB.workspace_files}
    mutate(files)
    for name, document in files.items():
        (folder / name).write_text(json.dumps(document, indent=2))
    return folder


def _machine_definition(lab_ctx) -> str:
    ctx = lab_ctx(1)
    return ctx.aws("stepfunctions").describe_state_machine(
        stateMachineArn=LAB.provisioner().state_machine_arn(ctx))["definition"]


def test_starter_passes_deployment_and_fails_the_steps_left_to_the_learner(lab1, cli):
    service.deploy(lab1, 1)
    statuses = _statuses(lab1)
    assert statuses["deployment"] == PASS
    assert statuses["order-event-starts-execution"] == PASS  # the starter's rules.json is the worked example
    assert {check for check, status in statuses.items() if status == FAIL} == STARTER_FAILS
    assert cli("check", "1", "--only", "deployment", "--only", "payment-retry").exit_code == 1


def _no_retry(files):
    del files["state_machine.asl.json"]["States"]["AuthorizePayment"]["Retry"]


def _retry_wrong_error(files):
    files["state_machine.asl.json"]["States"]["AuthorizePayment"]["Retry"][0]["ErrorEquals"] = ["States.Timeout"]


def _catch_swallows(files):
    # Declined payments are marked failed, but nobody in support hears about it.
    files["state_machine.asl.json"]["States"]["AuthorizePayment"]["Catch"][0]["Next"] = "MarkPaymentFailed"
    del files["state_machine.asl.json"]["States"]["SendToSupport"]


def _sequence_not_parallel(files):
    states = files["state_machine.asl.json"]["States"]
    branches = states.pop("FulfilOrder")["Branches"]
    reserve, notify = branches[0]["States"]["ReserveInventory"], branches[1]["States"]["NotifyCustomer"]
    for state in (reserve, notify):
        state.pop("End")
        state["ResultPath"] = None
    states["AuthorizePayment"]["Next"] = "ReserveInventory"
    states["ReserveInventory"] = {**reserve, "Next": "NotifyCustomer"}
    states["NotifyCustomer"] = {**notify, "Next": "MarkConfirmed"}


def _rule_wrong_detail_type(files):
    files["rules.json"][1]["EventPattern"]["detail-type"] = ["InventoryUpdated"]


def _role_without_sqs_send(files):
    statements = files["role_policy.json"]["Statement"]
    files["role_policy.json"]["Statement"] = [s for s in statements if s.get("Sid") != "EscalateToSupport"]


def _role_too_wide(files):
    statement = next(s for s in files["role_policy.json"]["Statement"] if s.get("Sid") == "RecordOrderStatus")
    statement["Resource"] = "*"


@pytest.mark.parametrize("mutate, fails, still_passes", [
    (_no_retry, "payment-retry", "happy-path"),
    (_retry_wrong_error, "payment-retry", "payment-declined-to-support"),
    (_catch_swallows, "payment-declined-to-support", "invalid-order-rejected"),
    (_sequence_not_parallel, "parallel-fulfilment", "happy-path"),
    (_rule_wrong_detail_type, "restock-on-low-inventory", "order-event-starts-execution"),
], ids=["no-retry", "retry-wrong-error", "catch-swallows", "sequence-not-parallel", "rule-wrong-detail-type"])
def test_each_mistake_fails_its_check(lab1, tmp_path, mutate, fails, still_passes):
    service.deploy(lab1, 1, source=_variant(tmp_path, mutate))
    assert _statuses(lab1, only={fails, still_passes}) == {fails: FAIL, still_passes: PASS}


def _outcomes(settings, *check_ids: str) -> dict:
    return {o.id: o for o in service.check(settings, 1, only=set(check_ids)).outcomes}


def test_a_role_without_sqs_send_message_stops_send_to_support_with_aws_error(lab1, tmp_path):
    """The role is enforced: SendToSupport fails as on AWS, the declined order never reaches support, and the
    least-privilege check names the denied call."""
    service.deploy(lab1, 1, source=_variant(tmp_path, _role_without_sqs_send))
    outcomes = _outcomes(lab1, "payment-declined-to-support", "least-privilege-role", "happy-path")
    declined, role = outcomes["payment-declined-to-support"], outcomes["least-privilege-role"]
    assert outcomes["happy-path"].status == PASS  # the path that sends nothing to support still runs
    assert declined.status == FAIL and "SQS.AmazonSQSException" in declined.actual
    # The denial's action and resource are shown whole (a cut at 160 characters left "sqs:sendmessage on )").
    assert "sqs:sendmessage on resource: arn:aws:sqs:us-east-1:123456789012:securecart-support" in declined.actual
    assert "Request ID" not in declined.actual
    assert role.status == FAIL
    assert "sqs:sendmessage on arn:aws:sqs:us-east-1:123456789012:securecart-support (SQS.AmazonSQSException)" \
        in role.actual
    assert role.expected == "every path runs"


def test_a_role_allowing_more_than_the_workflow_uses_fails_least_privilege(lab1, tmp_path):
    service.deploy(lab1, 1, source=_variant(tmp_path, _role_too_wide))
    outcomes = _outcomes(lab1, "least-privilege-role", "invalid-order-rejected")
    role = outcomes["least-privilege-role"]
    assert outcomes["invalid-order-rejected"].status == PASS
    assert role.status == FAIL and "allows more than the workflow uses" in role.message
    assert "dynamodb:UpdateItem on arn:aws:dynamodb:us-east-1:123456789012:table/securecart-inventory" in role.actual


def test_malformed_json_names_file_and_line_and_changes_nothing(lab1, lab_ctx, tmp_path):
    service.solve(lab1, 1)
    before = _machine_definition(lab_ctx)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name in LAB.workspace_files:
        shutil.copy(LAB.solution_dir / name, folder / name)
    text = (folder / "state_machine.asl.json").read_text()
    broken = text.replace('"Next": "FulfilOrder"', '"Next": "FulfilOrder",,', 1)
    (folder / "state_machine.asl.json").write_text(broken)
    line = broken[:broken.index(",,")].count("\n") + 1
    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=folder)
    assert error.value.line == line
    assert f"state_machine.asl.json:{line}: invalid JSON at line {line}, column" in error.value.message
    assert _machine_definition(lab_ctx) == before


@pytest.mark.parametrize("old, new, message", [
    ('"Next": "MarkConfirmed"', '"Next": "MarkConfirmd"', "Next of state 'FulfilOrder' is 'MarkConfirmd'"),
    ('"StartAt": "ValidateOrder"', '"StartAt": "Validate"', "StartAt names 'Validate'"),
    ('"FunctionName": "authorize-payment"', '"FunctionName": "authorise-payment"', "'authorise-payment', which does not exist"),
    ('"IntervalSeconds": 1', '"IntervalSeconds": 0.5', "IntervalSeconds of state 'AuthorizePayment' must be a whole number"),
    ('"${QueueUrl:securecart-support}"', '"${QueueUrl:securecart-helpdesk}"', "placeholder ${QueueUrl:securecart-helpdesk}"),
], ids=["missing-next", "bad-start", "unknown-function", "bad-interval", "unknown-placeholder"])
def test_invalid_definition_names_the_line_and_changes_nothing(lab1, lab_ctx, tmp_path, old, new, message):
    before = _machine_definition(lab_ctx)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    for name in LAB.workspace_files:
        shutil.copy(LAB.solution_dir / name, folder / name)
    text = (folder / "state_machine.asl.json").read_text()
    assert old in text
    broken = text.replace(old, new, 1)
    (folder / "state_machine.asl.json").write_text(broken)
    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=folder)
    assert message in error.value.message
    assert error.value.line == broken[:broken.index(new)].count("\n") + 1
    assert _machine_definition(lab_ctx) == before


def test_solution_passes_every_check(lab1, cli):
    service.solve(lab1, 1)
    statuses = _statuses(lab1)
    assert set(statuses.values()) == {PASS}, statuses
    assert cli("check", "1").exit_code == 0


def test_trace_shows_the_latest_execution_as_a_tree(lab1, lab_ctx, cli):
    service.solve(lab1, 1)
    service.check(lab1, 1, only={"payment-retry"})
    # payment-retry runs a flaky card, then a declined one (which must be tried once): trace the flaky one.
    ctx = lab_ctx(1)
    sfn = ctx.aws("stepfunctions")
    executions = sfn.list_executions(stateMachineArn=LAB.provisioner().state_machine_arn(ctx), maxResults=5)["executions"]
    flaky = next(e["name"] for e in executions
                 if "tok_flaky_2" in sfn.describe_execution(executionArn=e["executionArn"])["input"])
    result = cli("trace", "1", "--limit", "3", "--execution", flaky)
    assert result.exit_code == 0, result.output
    assert "Recent executions" in result.output
    assert "AuthorizePayment" in result.output and "3 attempts (2 retries)" in result.output
    assert "PaymentGatewayTimeout" in result.output


def test_trace_without_a_deployed_state_machine_says_what_to_run(lab1, lab_ctx, cli):
    ctx = lab_ctx(1)
    sfn = ctx.aws("stepfunctions")
    sfn.delete_state_machine(stateMachineArn=LAB.provisioner().state_machine_arn(ctx))
    try:
        result = cli("trace", "1")
        assert result.exit_code == 1
        assert "not deployed" in result.output and "securecart-lab start 1" in result.output
    finally:
        service.solve(lab1, 1)


def test_provision_again_changes_nothing_and_is_fast(lab1, lab_ctx):
    ctx = lab_ctx(1)
    before = ctx.aws("lambda").get_function(FunctionName="restock")["Configuration"]
    started = time.monotonic()
    LAB.provisioner().provision(ctx)
    assert time.monotonic() - started < 2
    after = ctx.aws("lambda").get_function(FunctionName="restock")["Configuration"]
    assert (after["CodeSha256"], after["LastModified"]) == (before["CodeSha256"], before["LastModified"])
    stock = ctx.aws("dynamodb").get_item(TableName="securecart-inventory", Key={"sku": {"S": "SC-ELEC-0001"}})["Item"]
    assert int(stock["stock"]["N"]) > 0


def _deployed(lab_ctx) -> dict:
    ctx = lab_ctx(1)
    events = ctx.aws("events")
    rules = {r["Name"]: (r["EventPattern"], [t["Arn"] for t in events.list_targets_by_rule(
        Rule=r["Name"], EventBusName="securecart")["Targets"]]) for r in events.list_rules(EventBusName="securecart")["Rules"]}
    policy = ctx.aws("iam").get_role_policy(RoleName="securecart-order-processing-role",
                                            PolicyName="securecart-order-processing")["PolicyDocument"]
    return {"definition": _machine_definition(lab_ctx), "policy": policy, "rules": rules}


def test_an_invalid_logging_config_is_refused_before_anything_changes(lab1, lab_ctx, tmp_path):
    service.solve(lab1, 1)
    before = _deployed(lab_ctx)

    def mutate(files):
        files["logging.json"] = {"level": "OFF", "bogusKey": 1}
        files["role_policy.json"]["Statement"].append({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})

    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=_variant(tmp_path, mutate))
    assert error.value.path.name == "logging.json"
    assert 'Unknown parameter in loggingConfiguration: "bogusKey"' in error.value.message
    assert _deployed(lab_ctx) == before


def test_a_failure_while_applying_rolls_everything_back(lab1, lab_ctx, tmp_path):
    service.solve(lab1, 1)
    before = _deployed(lab_ctx)

    def mutate(files):
        files["role_policy.json"]["Statement"].append({"Effect": "Allow", "Action": "sqs:*", "Resource": "*"})
        files["state_machine.asl.json"]["Comment"] = "changed"
        files["rules.json"].append({"Name": "to-nowhere", "EventPattern": {"source": ["x"]},
                                    "Targets": [{"Id": "gone", "Arn": "arn:aws:lambda:us-east-1:123456789012:function:gone"}]})

    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=_variant(tmp_path, mutate))
    assert error.value.path.name == "rules.json" and "Nothing was changed" in error.value.hint
    assert _deployed(lab_ctx) == before


def test_a_definition_over_1_mib_is_refused_before_sending(lab1, lab_ctx, tmp_path):
    service.solve(lab1, 1)
    before = _deployed(lab_ctx)

    def mutate(files):
        files["state_machine.asl.json"]["Comment"] = "x" * 1_100_000

    with pytest.raises(WorkspaceFileError, match="Step Functions accepts at most 1,048,576"):
        service.deploy(lab1, 1, source=_variant(tmp_path, mutate))
    assert _deployed(lab_ctx) == before
