"""EventBridge rules in the embedded emulator deliver to Step Functions, Lambda, SNS and SQS."""

from __future__ import annotations

import json
import time

import pytest
from emulator_fixture import ROLE_ARN, client, create_function, ensure_role, running_emulator

pytestmark = pytest.mark.integration

RECORDER = '''
import boto3, json, os

def handler(event, context):
    boto3.client("sqs").send_message(QueueUrl=os.environ["QUEUE_URL"], MessageBody=json.dumps(event))
    return "recorded"
'''


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(time_scale=0.01) as handle:
        ensure_role(handle)
        client(handle, "events").create_event_bus(Name="securecart")
        yield handle


def _queue(handle, name: str) -> tuple[str, str]:
    sqs = client(handle, "sqs")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return url, arn


def _receive(handle, url: str, timeout: int = 5) -> list[dict]:
    messages = client(handle, "sqs").receive_message(QueueUrl=url, WaitTimeSeconds=timeout,
                                                      MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def _put(handle, detail_type: str, detail: dict, bus: str = "securecart") -> None:
    response = client(handle, "events").put_events(Entries=[{
        "Source": "securecart.orders", "DetailType": detail_type, "Detail": json.dumps(detail), "EventBusName": bus}])
    assert response["FailedEntryCount"] == 0


def _rule(handle, name: str, detail_type: str, targets: list[dict], bus: str = "securecart") -> None:
    events = client(handle, "events")
    events.put_rule(Name=name, EventBusName=bus,
                    EventPattern=json.dumps({"source": ["securecart.orders"], "detail-type": [detail_type]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=targets)


def test_rule_on_custom_bus_starts_a_state_machine(emulator):
    sfn = client(emulator, "stepfunctions")
    machine = sfn.create_state_machine(
        name="order-workflow", roleArn=ROLE_ARN,
        definition=json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    _rule(emulator, "start-workflow", "OrderPlaced", [{"Id": "sfn", "Arn": machine, "RoleArn": ROLE_ARN}])
    _put(emulator, "OrderPlaced", {"order_id": "o-1", "total": 42})
    _put(emulator, "OrderPlaced", {"order_id": "o-2", "total": 7})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        executions = sfn.list_executions(stateMachineArn=machine)["executions"]
        if len(executions) == 2 and all(e["status"] == "SUCCEEDED" for e in executions):
            break
        time.sleep(0.1)
    assert len(executions) == 2
    inputs = [json.loads(sfn.describe_execution(executionArn=e["executionArn"])["input"]) for e in executions]
    assert sorted(i["detail"]["order_id"] for i in inputs) == ["o-1", "o-2"]
    assert inputs[0]["source"] == "securecart.orders" and inputs[0]["detail-type"] == "OrderPlaced"
    assert isinstance(inputs[0]["time"], str) and inputs[0]["time"].endswith("Z")


def test_rule_invokes_lambda_asynchronously(emulator):
    url, _ = _queue(emulator, "lambda-recorded")
    arn = create_function(emulator, "recorder", RECORDER, Environment={"Variables": {"QUEUE_URL": url}})
    _rule(emulator, "to-lambda", "OrderShipped", [{"Id": "fn", "Arn": arn, "InputPath": "$.detail"}])
    _put(emulator, "OrderShipped", {"order_id": "o-3"})
    assert _receive(emulator, url) == [{"order_id": "o-3"}]


def test_rule_publishes_to_sns_which_fans_out_to_sqs(emulator):
    sns = client(emulator, "sns")
    topic = sns.create_topic(Name="order-notifications")["TopicArn"]
    url, queue_arn = _queue(emulator, "notifications")
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn, Attributes={"RawMessageDelivery": "true"})
    _rule(emulator, "to-sns", "OrderCancelled", [{"Id": "sns", "Arn": topic, "Input": json.dumps({"fixed": True})}])
    _put(emulator, "OrderCancelled", {"order_id": "o-4"})
    assert _receive(emulator, url) == [{"fixed": True}]


def test_rule_to_sqs_with_input_transformer(emulator):
    url, queue_arn = _queue(emulator, "transformed")
    _rule(emulator, "to-sqs", "PaymentFailed", [{
        "Id": "q", "Arn": queue_arn,
        "InputTransformer": {
            "InputPathsMap": {"order": "$.detail.order_id", "amount": "$.detail.amount", "items": "$.detail.items"},
            "InputTemplate": '{"message": "Payment failed for <order>", "order": "<order>", "amount": <amount>, '
                             '"items": <items>}'}}])
    _put(emulator, "PaymentFailed", {"order_id": "o-5", "amount": 12.5, "items": ["a", "b"]})
    assert _receive(emulator, url) == [
        {"message": "Payment failed for o-5", "order": "o-5", "amount": 12.5, "items": ["a", "b"]}]


def test_unmatched_events_are_not_delivered_and_default_bus_works(emulator):
    url, queue_arn = _queue(emulator, "default-bus")
    _rule(emulator, "default-rule", "OrderPlaced", [{"Id": "q", "Arn": queue_arn}], bus="default")
    _put(emulator, "SomethingElse", {"order_id": "o-6"}, bus="default")
    _put(emulator, "OrderPlaced", {"order_id": "o-7"}, bus="default")
    received = _receive(emulator, url)
    assert [event["detail"]["order_id"] for event in received] == ["o-7"]
