"""Lab 1 walked as a learner: files written from the README (own state names, own layout, not the reference
solution), then the mistakes a newcomer makes. Each mistake must fail the check that teaches it, with a message
that points at what the learner almost did; a broken file must be reported where the mistake is."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.errors import WorkspaceFileError
from securecart_lab.labs import service

pytestmark = pytest.mark.integration


def _lambda(function: str, **extra) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function, "Payload.$": "$"}, **extra}


def _status(value: str, then: str) -> dict:
    return {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem",
            "Parameters": {"TableName": "securecart-orders", "Key": {"orderId": {"S.$": "$.orderId"}},
                           "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
                           "ExpressionAttributeValues": {":s": {"S": value}}},
            "ResultPath": None, "Next": then}


# A learner's state machine, written from the README's steps with names of their own.
MACHINE = {
    "Comment": "my order workflow",
    "StartAt": "Check",
    "States": {
        "Check": _lambda("validate-order", ResultPath=None, Next="Charge", Catch=[
            {"ErrorEquals": ["InvalidOrderError"], "ResultPath": "$.error", "Next": "Reject"}]),
        "Reject": _status("REJECTED", "Rejected"),
        "Rejected": {"Type": "Fail", "Error": "InvalidOrder"},
        "Charge": _lambda("authorize-payment", ResultPath="$.payment", Next="Fulfil", Retry=[
            {"ErrorEquals": ["PaymentGatewayTimeout"], "IntervalSeconds": 1, "MaxAttempts": 3, "BackoffRate": 2.0}],
            Catch=[{"ErrorEquals": ["PaymentDeclinedError"], "ResultPath": "$.error", "Next": "TellSupport"}]),
        "TellSupport": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
                        "Parameters": {"QueueUrl": "${QueueUrl:securecart-support}",
                                       "MessageBody": {"reason": "PAYMENT_DECLINED", "orderId.$": "$.orderId",
                                                       "error.$": "$.error"}},
                        "ResultPath": None, "Next": "Declined"},
        "Declined": _status("PAYMENT_FAILED", "PaymentFailed"),
        "PaymentFailed": {"Type": "Fail", "Error": "PaymentDeclined"},
        "Fulfil": {"Type": "Parallel", "ResultPath": "$.fulfilment", "Next": "Confirm", "Branches": [
            {"StartAt": "Reserve", "States": {"Reserve": _lambda("reserve-inventory", End=True)}},
            {"StartAt": "Notify", "States": {"Notify": _lambda("notify-customer", End=True)}},
        ]},
        "Confirm": _status("CONFIRMED", "Done"),
        "Done": {"Type": "Succeed"},
    },
}
RULES = [
    {"Name": "orders-to-workflow", "EventBusName": "securecart",
     "EventPattern": {"source": ["securecart.orders"], "detail-type": ["OrderPlaced"]},
     "Targets": [{"Id": "wf", "Arn": "${StateMachineArn}", "RoleArn": "${EventsRoleArn}", "InputPath": "$.detail"}]},
    {"Name": "low-stock", "EventBusName": "securecart",
     "EventPattern": {"source": ["securecart.inventory"], "detail-type": ["InventoryLow"]},
     "Targets": [{"Id": "restock", "Arn": "${FunctionArn:restock}"}]},
]
POLICY = {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": "lambda:InvokeFunction", "Resource": [
        "${FunctionArn:validate-order}", "${FunctionArn:authorize-payment}", "${FunctionArn:reserve-inventory}",
        "${FunctionArn:notify-customer}"]},
    {"Effect": "Allow", "Action": "dynamodb:UpdateItem", "Resource": "${TableArn:securecart-orders}"},
    {"Effect": "Allow", "Action": "sqs:SendMessage", "Resource": "${QueueArn:securecart-support}"},
    {"Effect": "Allow", "Resource": "*", "Action": [
        "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
        "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups"]},
]}
LOGGING = {"level": "ALL", "includeExecutionData": True,
           "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": "${LogGroupArn}"}}]}


@pytest.fixture(scope="module")
def lab1(settings, engine):
    service.start(settings, 1)
    yield settings
    service.solve(settings, 1)  # later modules find lab 1 deployed and correct


def files(tmp_path: Path, mutate=None, raw: dict[str, str] | None = None) -> Path:
    documents = {"state_machine.asl.json": copy.deepcopy(MACHINE), "rules.json": copy.deepcopy(RULES),
                 "role_policy.json": copy.deepcopy(POLICY), "logging.json": copy.deepcopy(LOGGING)}
    if mutate:
        mutate(documents)
    folder = tmp_path / "lab01"
    folder.mkdir(exist_ok=True)
    for name, document in documents.items():
        (folder / name).write_text((raw or {}).get(name) or json.dumps(document, indent=2))
    return folder


def outcomes(settings, only):
    return {o.id: o for o in service.check(settings, 1, only=set(only)).outcomes}


def test_the_learners_own_solution_passes_every_check(lab1, tmp_path):
    service.deploy(lab1, 1, source=files(tmp_path))
    results = {o.id: o for o in service.check(lab1, 1).outcomes}
    assert {i: o.status for i, o in results.items()} == {i: PASS for i in results}, \
        {i: o.message for i, o in results.items() if o.status != PASS}


@pytest.mark.parametrize("errors", [["States.ALL"], ["PaymentGatewayTimeout", "States.TaskFailed"]],
                         ids=["States.ALL", "States.TaskFailed"])
def test_a_retry_that_retries_declined_cards_fails_payment_retry_and_says_why(lab1, tmp_path, errors):
    def retry_everything(docs):
        docs["state_machine.asl.json"]["States"]["Charge"]["Retry"][0]["ErrorEquals"] = errors

    service.deploy(lab1, 1, source=files(tmp_path, retry_everything))
    result = outcomes(lab1, ["payment-retry", "payment-declined-to-support"])
    assert result["payment-declined-to-support"].status == PASS  # the Catch still routes it, after 3 retries
    retry = result["payment-retry"]
    assert retry.status == FAIL
    assert "A declined card was charged 4 times" in retry.message
    assert "retrying a declined card just declines it again" in retry.message
    assert retry.expected == "1 attempt for tok_declined"
    assert f"the Retry matches {errors[-1]}" in retry.actual


def test_a_rule_with_a_misspelt_detail_type_is_pointed_at(lab1, tmp_path):
    def spaced(docs):
        docs["rules.json"][1]["EventPattern"]["detail-type"] = ["Inventory Low"]

    service.deploy(lab1, 1, source=files(tmp_path, spaced))
    result = outcomes(lab1, ["restock-on-low-inventory"])["restock-on-low-inventory"]
    assert result.status == FAIL
    assert result.actual == ('rule low-stock has "detail-type": ["Inventory Low"] (the event says "InventoryLow": '
                             "spelling matters, exactly)")


def test_a_rule_with_the_wrong_source_and_one_to_the_wrong_target_are_pointed_at(lab1, tmp_path):
    def wrong_source(docs):
        docs["rules.json"][1]["EventPattern"]["source"] = ["securecart.orders"]

    service.deploy(lab1, 1, source=files(tmp_path, wrong_source))
    result = outcomes(lab1, ["restock-on-low-inventory"])["restock-on-low-inventory"]
    assert result.status == FAIL
    assert 'rule low-stock has "source": ["securecart.orders"] (the event says "securecart.inventory")' in result.actual

    def wrong_target(docs):
        docs["rules.json"][1]["Targets"][0]["Arn"] = "${FunctionArn:notify-customer}"

    service.deploy(lab1, 1, source=files(tmp_path, wrong_target))
    result = outcomes(lab1, ["restock-on-low-inventory"])["restock-on-low-inventory"]
    assert result.status == FAIL
    assert result.actual.startswith("none; matching rules: low-stock -> arn:aws:lambda:")
    assert result.actual.endswith(":function:notify-customer")


def test_a_support_message_without_an_order_id_field_fails(lab1, tmp_path):
    def id_only_in_the_cause(docs):
        docs["state_machine.asl.json"]["States"]["TellSupport"]["Parameters"]["MessageBody"] = {
            "reason": "PAYMENT_DECLINED", "error.$": "$.error"}

    service.deploy(lab1, 1, source=files(tmp_path, id_only_in_the_cause))
    result = outcomes(lab1, ["payment-declined-to-support"])["payment-declined-to-support"]
    assert result.status == FAIL
    assert "The support message has no orderId field" in result.message
    assert result.actual == "fields: reason, error"


def test_an_unknown_log_group_placeholder_is_rejected_like_every_other(lab1, tmp_path):
    def nope(docs):
        docs["logging.json"]["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"] = "${LogGroupArn:nope}"

    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, nope))
    assert "placeholder ${LogGroupArn:nope} does not name anything that exists" in error.value.message
    assert error.value.path.name == "logging.json"


def test_a_misspelt_placeholder_names_the_one_meant(lab1, tmp_path):
    def misspelt(name, kind="FunctionArn"):
        def mutate(docs):
            docs["rules.json"][-1]["Targets"][0]["Arn"] = f"${{{kind}:{name}}}"
        return mutate

    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, misspelt("restok")))
    assert error.value.message.endswith("(FunctionArn:restok): did you mean ${FunctionArn:restock}?")
    assert {"restock", "authorize-payment"} <= set(error.value.hint.split("Functions: ")[1].split(". ")[0].split(", "))
    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, misspelt("restock", kind="FunctionARN")))
    assert error.value.message.endswith("did you mean ${FunctionArn:restock}?")
    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, misspelt("zzz-unlike-anything")))
    assert error.value.message.endswith("(FunctionArn:zzz-unlike-anything)") and "Functions: " in error.value.hint


def test_a_trailing_comma_is_reported_on_its_own_line(lab1, tmp_path):
    broken = '{\n  "level": "ALL",\n  "includeExecutionData": true,\n}\n'
    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, raw={"logging.json": broken}))
    assert error.value.line == 3
    assert "logging.json:3: invalid JSON at line 3, column 31: trailing comma" in error.value.message


def test_every_problem_of_a_definition_is_listed(lab1, tmp_path):
    def three_typos(docs):
        states = docs["state_machine.asl.json"]["States"]
        states["Charge"]["Next"] = "Fulfill"
        states["Reject"]["Next"] = "Rejectd"
        states["Confirm"]["Next"] = "Dne"

    with pytest.raises(WorkspaceFileError) as error:
        service.deploy(lab1, 1, source=files(tmp_path, three_typos))
    message = error.value.message
    assert "more problems:" in message  # the three typos, and the states they leave unreachable
    for typo in ("Fulfill", "Rejectd", "Dne"):
        assert f"is '{typo}'" in message
    assert message.count("state_machine.asl.json:") >= 3


def test_a_retry_for_a_misspelt_error_name_is_pointed_at(lab1, tmp_path):
    def typo(docs):
        docs["state_machine.asl.json"]["States"]["Charge"]["Retry"][0]["ErrorEquals"] = ["PaymentGatewayTimeOut"]

    service.deploy(lab1, 1, source=files(tmp_path, typo))
    result = outcomes(lab1, ["payment-retry"])["payment-retry"]
    assert result.status == FAIL
    assert result.actual.endswith("; the Retry names 'PaymentGatewayTimeOut', the function raises "
                                  "'PaymentGatewayTimeout' (error names are case-sensitive)")


def test_an_order_rule_that_targets_something_else_is_pointed_at(lab1, tmp_path):
    def to_a_function(docs):
        docs["rules.json"][0]["Targets"] = [{"Id": "oops", "Arn": "${FunctionArn:validate-order}"}]

    service.deploy(lab1, 1, source=files(tmp_path, to_a_function))
    result = outcomes(lab1, ["order-event-starts-execution"])["order-event-starts-execution"]
    assert result.status == FAIL
    assert result.actual.startswith("none; matching rules: orders-to-workflow -> arn:aws:lambda:")
    assert result.actual.endswith(":function:validate-order")


def test_an_order_rule_whose_input_path_selects_nothing_is_pointed_at(lab1, tmp_path):
    def misspelt_input_path(docs):
        docs["rules.json"][0]["Targets"][0]["InputPath"] = "$.details"

    service.deploy(lab1, 1, source=files(tmp_path, misspelt_input_path))
    result = outcomes(lab1, ["order-event-starts-execution"])["order-event-starts-execution"]
    assert result.status == FAIL
    assert "started" in result.message and "but not with the order as its input" in result.message, result.message
    assert result.expected == 'the order (the event\'s detail) as input: the target\'s "InputPath": "$.detail"'
    assert result.actual.startswith("input null; matching rules: orders-to-workflow -> arn:aws:states:"), result.actual
