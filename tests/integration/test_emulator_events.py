"""EventBridge rules in the embedded emulator deliver to Step Functions, Lambda, SNS and SQS."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

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
    # As on AWS, the function's resource policy must let EventBridge invoke it for this rule.
    rule_arn = client(emulator, "events").describe_rule(Name="to-lambda", EventBusName="securecart")["Arn"]
    client(emulator, "lambda").add_permission(FunctionName="recorder", StatementId="events", Action="lambda:InvokeFunction",
                                              Principal="events.amazonaws.com", SourceArn=rule_arn)
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


# --- the pattern language: TestEventPattern, PutRule and delivery share one matcher ----------------------------------

FRAUD_PATTERN = {
    "source": ["securecart.orders"],
    "detail": {
        "$or": [{"total": [{"numeric": [">=", 500]}]}, {"country": [{"anything-but": ["FR", "DE"]}]}],
        "cardOrigin": [{"exists": True}],
        "customerEmail": [{"suffix": {"equals-ignore-case": "@example.com"}}],
    },
}
ORDERS = [
    {"orderId": "big", "total": 500, "country": "FR", "cardOrigin": "domestic", "customerEmail": "a@EXAMPLE.com"},
    {"orderId": "abroad", "total": 10, "country": "US", "cardOrigin": "foreign", "customerEmail": "b@example.com"},
    {"orderId": "small", "total": 499.99, "country": "FR", "cardOrigin": "domestic", "customerEmail": "c@example.com"},
    {"orderId": "no-card", "total": 900, "country": "US", "customerEmail": "d@example.com"},
    {"orderId": "other-mail", "total": 900, "country": "US", "cardOrigin": "x", "customerEmail": "e@example.org"},
]


def _full_event(detail: dict) -> dict:
    return {"version": "0", "id": "e-1", "detail-type": "OrderPlaced", "source": "securecart.orders",
            "account": "123456789012", "time": "2026-11-30T10:00:00Z", "region": "us-east-1", "resources": [],
            "detail": detail}


def test_test_event_pattern_answers_result_and_aws_errors(emulator):
    events = client(emulator, "events")
    answer = events.test_event_pattern(EventPattern=json.dumps(FRAUD_PATTERN), Event=json.dumps(_full_event(ORDERS[0])))
    assert answer["Result"] is True
    assert events.test_event_pattern(EventPattern=json.dumps(FRAUD_PATTERN),
                                     Event=json.dumps(_full_event(ORDERS[2])))["Result"] is False
    with pytest.raises(events.exceptions.InvalidEventPatternException) as raised:
        events.test_event_pattern(EventPattern='{"detail": {"total": [{"numeric": [">", 0, ">", 9]}]}}',
                                  Event=json.dumps(_full_event(ORDERS[0])))
    assert raised.value.response["Error"]["Message"] == \
        "Event pattern is not valid. Reason: Bad numeric range operator: >"
    with pytest.raises(events.exceptions.ClientError) as raised:
        events.test_event_pattern(EventPattern=json.dumps(FRAUD_PATTERN), Event=json.dumps({"detail": {}}))
    assert raised.value.response["Error"] == {"Code": "ValidationException", "Message": "Parameter Event is not valid."}


def test_put_rule_refuses_a_malformed_pattern_and_keeps_the_rule(emulator):
    events = client(emulator, "events")
    events.put_rule(Name="kept", EventBusName="securecart", EventPattern='{"source": ["securecart.orders"]}')
    with pytest.raises(events.exceptions.InvalidEventPatternException) as raised:
        events.put_rule(Name="kept", EventBusName="securecart", EventPattern='{"source": "securecart.orders"}')
    assert raised.value.response["Error"]["Message"] == \
        'Event pattern is not valid. Reason: "source" must be an object or an array'
    described = events.describe_rule(Name="kept", EventBusName="securecart")
    assert json.loads(described["EventPattern"]) == {"source": ["securecart.orders"]}


def test_delivery_matches_exactly_what_test_event_pattern_says(emulator):
    events = client(emulator, "events")
    url, queue_arn = _queue(emulator, "fraud-checks")
    events.put_rule(Name="fraud", EventBusName="securecart", EventPattern=json.dumps(FRAUD_PATTERN))
    events.put_targets(Rule="fraud", EventBusName="securecart",
                       Targets=[{"Id": "q", "Arn": queue_arn, "InputPath": "$.detail.orderId"}])
    expected = {order["orderId"] for order in ORDERS if events.test_event_pattern(
        EventPattern=json.dumps(FRAUD_PATTERN), Event=json.dumps(_full_event(order)))["Result"]}
    assert expected == {"big", "abroad"}
    for order in ORDERS:
        _put(emulator, "OrderPlaced", order)
    delivered = []
    deadline = time.monotonic() + 10
    while len(delivered) < len(expected) and time.monotonic() < deadline:
        delivered += _receive(emulator, url, timeout=1)
    assert sorted(delivered) == sorted(expected)
    assert _receive(emulator, url, timeout=0) == []


def test_a_disabled_rule_delivers_nothing(emulator):
    events = client(emulator, "events")
    url, queue_arn = _queue(emulator, "disabled-rule")
    _rule(emulator, "switched-off", "OrderReturned", [{"Id": "q", "Arn": queue_arn}])
    events.disable_rule(Name="switched-off", EventBusName="securecart")
    _put(emulator, "OrderReturned", {"order_id": "o-8"})
    assert _receive(emulator, url, timeout=1) == []
    events.enable_rule(Name="switched-off", EventBusName="securecart")
    _put(emulator, "OrderReturned", {"order_id": "o-9"})
    assert [event["detail"]["order_id"] for event in _receive(emulator, url)] == ["o-9"]


# --- failed deliveries: retries, dead-letter queue, FailedInvocations -------------------------------------------------

def _dead_letters(handle, url: str, count: int, timeout: float = 10) -> list[dict]:
    sqs = client(handle, "sqs")
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < count and time.monotonic() < deadline:
        found += sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1, MaxNumberOfMessages=10,
                                     MessageAttributeNames=["All"]).get("Messages", [])
    return found


def _attributes(message: dict) -> dict:
    return {name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()}


def _metric_sum(handle, rule: str, name: str) -> float:
    from datetime import datetime, timedelta, timezone

    now = datetime.now(timezone.utc)
    points = client(handle, "cloudwatch").get_metric_statistics(
        Namespace="AWS/Events", MetricName=name, Dimensions=[{"Name": "RuleName", "Value": rule}],
        StartTime=now - timedelta(minutes=10), EndTime=now + timedelta(minutes=1), Period=60, Statistics=["Sum"],
    )["Datapoints"]
    return sum(point["Sum"] for point in points)


def test_a_target_that_does_not_exist_goes_to_the_dlq_at_once(emulator):
    dlq_url, dlq_arn = _queue(emulator, "orders-dlq")
    sfn_missing = "arn:aws:states:us-east-1:123456789012:stateMachine:not-deployed-yet"
    _rule(emulator, "to-missing", "OrderHeld", [{
        "Id": "sfn", "Arn": sfn_missing, "RoleArn": ROLE_ARN, "InputPath": "$.detail",
        "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 60},
        "DeadLetterConfig": {"Arn": dlq_arn}}])
    _put(emulator, "OrderHeld", {"order_id": "o-10"})
    [message] = _dead_letters(emulator, dlq_url, 1)
    attributes = _attributes(message)
    assert attributes["ERROR_CODE"] == "NO_RESOURCE" and attributes["RETRY_ATTEMPTS"] == "0"
    assert "EXHAUSTED_RETRY_CONDITION" not in attributes
    assert attributes["RULE_ARN"].endswith(":rule/securecart/to-missing") and attributes["TARGET_ARN"] == sfn_missing
    assert "not-deployed-yet" in attributes["ERROR_MESSAGE"]
    body = json.loads(message["Body"])
    assert body["detail"] == {"order_id": "o-10"} and body["detail-type"] == "OrderHeld"
    assert _metric_sum(emulator, "to-missing", "FailedInvocations") == 1
    assert _metric_sum(emulator, "to-missing", "InvocationsSentToDLQ") == 1


class _FlakyEndpoint:
    """A real HTTP endpoint (an API destination) answering 503 to the first `failures` requests, then 200."""

    def __init__(self, failures: int):
        import http.server
        import threading

        endpoint = self
        self.failures, self.calls, self.bodies = failures, [], []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                endpoint.calls.append(time.monotonic())
                endpoint.bodies.append(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                self.send_response(503 if len(endpoint.calls) <= endpoint.failures else 200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/orders"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _api_destination(handle, name: str, url: str) -> str:
    events = client(handle, "events")
    connection = events.create_connection(Name=f"{name}-conn", AuthorizationType="API_KEY", AuthParameters={
        "ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "secret"}})["ConnectionArn"]
    return events.create_api_destination(Name=name, ConnectionArn=connection, InvocationEndpoint=url,
                                         HttpMethod="POST")["ApiDestinationArn"]


def test_a_failing_target_is_retried_with_backoff_then_dead_lettered(emulator):
    endpoint = _FlakyEndpoint(failures=100)
    try:
        dlq_url, dlq_arn = _queue(emulator, "webhook-dlq")
        destination = _api_destination(emulator, "always-down", endpoint.url)
        _rule(emulator, "to-webhook", "OrderPaid", [{
            "Id": "hook", "Arn": destination, "RoleArn": ROLE_ARN,
            "RetryPolicy": {"MaximumRetryAttempts": 2, "MaximumEventAgeInSeconds": 3600},
            "DeadLetterConfig": {"Arn": dlq_arn}}])
        _put(emulator, "OrderPaid", {"order_id": "o-11"})
        [message] = _dead_letters(emulator, dlq_url, 1)
        attributes = _attributes(message)
        assert attributes["ERROR_CODE"] == "ERROR_FROM_TARGET" and "503" in attributes["ERROR_MESSAGE"]
        assert attributes["RETRY_ATTEMPTS"] == "2" and attributes["EXHAUSTED_RETRY_CONDITION"] == "MaximumRetryAttempts"
        assert len(endpoint.calls) == 3  # the first attempt and two retries
        assert json.loads(message["Body"])["detail"] == {"order_id": "o-11"}
        assert _metric_sum(emulator, "to-webhook", "FailedInvocations") == 1
    finally:
        endpoint.close()


def test_a_target_that_recovers_gets_the_event_once_and_nothing_is_dead_lettered(emulator):
    endpoint = _FlakyEndpoint(failures=2)
    try:
        dlq_url, dlq_arn = _queue(emulator, "recovering-dlq")
        destination = _api_destination(emulator, "recovering", endpoint.url)
        _rule(emulator, "to-recovering", "OrderPacked", [{
            "Id": "hook", "Arn": destination, "InputPath": "$.detail", "RoleArn": ROLE_ARN,
            "RetryPolicy": {"MaximumRetryAttempts": 5}, "DeadLetterConfig": {"Arn": dlq_arn}}])
        _put(emulator, "OrderPacked", {"order_id": "o-12"})
        deadline = time.monotonic() + 10
        while len(endpoint.calls) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(endpoint.calls) == 3 and json.loads(endpoint.bodies[-1]) == {"order_id": "o-12"}
        assert endpoint.calls[2] > endpoint.calls[1] > endpoint.calls[0]
        assert _dead_letters(emulator, dlq_url, 1, timeout=1) == []
        assert _metric_sum(emulator, "to-recovering", "FailedInvocations") == 0
    finally:
        endpoint.close()


@pytest.mark.skipif(shutil.which("aws") is None, reason="the AWS CLI is not installed")
def test_lab1_readme_test_event_pattern_walk_with_the_aws_cli(emulator, tmp_path):
    readme = (Path(__file__).resolve().parents[2] / "labs" / "01-order-workflow" / "README.md").read_text()
    [block] = [b for b in re.findall(r"```bash\n(.*?)```", readme, re.S) if "test-event-pattern" in b]
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ENDPOINT_URL": emulator.endpoint_url}
    env.pop("AWS_PROFILE", None)

    def run(script: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "-euc", script], cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=120)

    walked = run(block)
    assert walked.returncode == 0, walked.stderr
    assert json.loads(walked.stdout) == {"Result": True}
    other = run(block.replace('"InventoryLow"]', '"InventoryHigh"]'))
    assert json.loads(other.stdout) == {"Result": False}, other.stderr
    malformed = run(block.replace('["securecart.inventory"]', '"securecart.inventory"'))
    assert malformed.returncode != 0
    assert "InvalidEventPatternException" in malformed.stderr
    assert 'Reason: "source" must be an object or an array' in malformed.stderr
