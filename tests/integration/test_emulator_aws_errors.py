"""What moto does not implement answers an AWS error in the service's protocol, never an HTML 500; Step Functions
actions a learner reaches through the AWS CLI (after `securecart-lab env`) answer as on AWS."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
from botocore.exceptions import ClientError
from emulator_fixture import ROLE_ARN, client, ensure_role, running_emulator

from securecart_lab import config

pytestmark = pytest.mark.integration

needs_awscli = pytest.mark.skipif(importlib.util.find_spec("awscli") is None,
                                  reason="AWS CLI v1 (the 'test' extra) is not installed")


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(time_scale=0.01) as handle:
        ensure_role(handle)
        yield handle


def _code(call) -> tuple[str, str, int]:
    try:
        call()
    except ClientError as exc:
        return exc.response["Error"]["Code"], exc.response["Error"].get("Message", ""), \
            exc.response["ResponseMetadata"]["HTTPStatusCode"]
    raise AssertionError("the call succeeded")


@pytest.mark.parametrize("service, call", [
    ("stepfunctions", lambda c: c.get_activity_task(activityArn="arn:aws:states:us-east-1:123456789012:activity:a")),
    ("sqs", lambda c: c.list_message_move_tasks(SourceArn="arn:aws:sqs:us-east-1:123456789012:q")),
    ("iam", lambda c: c.change_password(OldPassword="a", NewPassword="b")),  # query protocol: XML error
    ("dynamodb", lambda c: c.describe_global_table(GlobalTableName="orders")),
    ("lambda", lambda c: c.get_runtime_management_config(FunctionName="f")),  # REST path moto has no route for
])
def test_unimplemented_actions_answer_unsupported_operation(emulator, service, call):
    code, message, status = _code(lambda: call(client(emulator, service)))
    assert (code, status) == ("UnsupportedOperation", 400), message
    assert "not supported by the securecart-lab emulator" in message


def test_an_unimplemented_action_is_json_not_html(emulator):
    request = urllib.request.Request(
        emulator.endpoint_url, data=b"{}", method="POST",
        headers={"X-Amz-Target": "AWSStepFunctions.GetActivityTask", "Content-Type": "application/x-amz-json-1.0",
                 "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/states/aws4_request, "
                                  "SignedHeaders=host, Signature=x"})
    try:
        urllib.request.urlopen(request, timeout=10)
    except urllib.error.HTTPError as exc:
        body = exc.read().decode()
        assert exc.code == 400 and "<html" not in body.lower(), body
        assert json.loads(body)["__type"] == "UnsupportedOperation"
    else:
        raise AssertionError("expected an error")


def _aws(emulator, *arguments: str) -> subprocess.CompletedProcess:
    """The AWS CLI with the environment `securecart-lab env` exports (no other AWS settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    env.update(config.aws_env(emulator.endpoint_url))
    return subprocess.run([sys.executable, "-m", "awscli", *arguments, "--output", "json"], env=env,
                          capture_output=True, text=True, timeout=120)


@needs_awscli
def test_the_aws_cli_reaches_test_state_despite_the_sync_host_prefix(emulator):
    state = {"Type": "Pass", "InputPath": "$.order", "Parameters": {"total.$": "$.total"}, "ResultPath": "$.checked",
             "Next": "Charge"}
    run = _aws(emulator, "stepfunctions", "test-state", "--definition", json.dumps(state), "--role-arn", ROLE_ARN,
               "--input", json.dumps({"order": {"total": 12}}), "--inspection-level", "DEBUG")
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "SUCCEEDED" and result["nextState"] == "Charge"
    assert json.loads(result["output"]) == {"order": {"total": 12}, "checked": {"total": 12}}
    assert json.loads(result["inspectionData"]["afterInputPath"]) == {"total": 12}


@needs_awscli
def test_the_aws_cli_validates_a_definition_with_aws_diagnostics(emulator):
    definition = {"StartAt": "Check", "States": {"Check": {"Type": "Pass", "Next": "Chrage"}, "Charge": {
        "Type": "Succeed"}}}
    run = _aws(emulator, "stepfunctions", "validate-state-machine-definition", "--definition", json.dumps(definition))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["result"] == "FAIL" and result["truncated"] is False
    assert result["diagnostics"] == [{"severity": "ERROR", "code": "MISSING_TRANSITION_TARGET",
                                      "message": "Missing 'Next' target: Chrage", "location": "/States/Check/Next"}]


@needs_awscli
def test_the_aws_cli_runs_an_express_workflow_synchronously(emulator):
    definition = {"StartAt": "Score", "States": {"Score": {"Type": "Pass", "Parameters": {
        "fraud.$": "States.MathAdd($.score, 0)"}, "End": True}}}
    arn = client(emulator, "stepfunctions").create_state_machine(
        name="fraud-check", definition=json.dumps(definition), roleArn=ROLE_ARN, type="EXPRESS")["stateMachineArn"]
    run = _aws(emulator, "stepfunctions", "start-sync-execution", "--state-machine-arn", arn, "--input",
               json.dumps({"score": 97}))
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == {"fraud": 97}


@needs_awscli
def test_the_aws_cli_gets_a_json_error_at_once_for_an_unsupported_action(emulator):
    started = time.monotonic()
    run = _aws(emulator, "stepfunctions", "get-activity-task", "--activity-arn",
               "arn:aws:states:us-east-1:123456789012:activity:none")
    assert run.returncode != 0
    assert "(UnsupportedOperation)" in run.stderr and "GetActivityTask" in run.stderr, run.stderr
    assert "reached max retries" not in run.stderr  # a 400 is not retried; the old HTML 500 was, four times
    assert time.monotonic() - started < 30


def _raw(emulator, target: str, body: bytes) -> tuple[int, dict]:
    """A JSON-protocol request as any client may send it (the SDKs validate theirs first)."""
    scope = {"AmazonSQS": "sqs", "DynamoDB_20120810": "dynamodb", "AWSEvents": "events", "Logs_20140328": "logs",
             "AWSStepFunctions": "states"}[target.partition(".")[0]]
    request = urllib.request.Request(
        emulator.endpoint_url, data=body, method="POST",
        headers={"X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
                 "Authorization": f"AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/{scope}/aws4_request, "
                                  "SignedHeaders=host, Signature=x"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.mark.parametrize("target, body, code", [
    ("AmazonSQS.SendMessage", b'{"QueueUrl": "http://127.0.0.1/123456789012/aws-errors-malformed", "MessageBody": 5}',
     "SerializationException"),
    ("AmazonSQS.ReceiveMessage", b'{"QueueUrl": "http://127.0.0.1/123456789012/aws-errors-malformed", "MaxNumberOfMessages": "ten"}',
     "SerializationException"),
    ("AmazonSQS.SendMessage", b"[1, 2]", "SerializationException"),
    ("AmazonSQS.SendMessage", b"not json", "SerializationException"),
    ("DynamoDB_20120810.GetItem", b'{"TableName": "aws-errors-malformed", "Key": "x"}', "SerializationException"),
    ("DynamoDB_20120810.PutItem", b'{"TableName": "aws-errors-malformed", "Item": {"orderId": "x"}}', "SerializationException"),
    ("DynamoDB_20120810.PutItem", b"not json", "SerializationException"),
    ("AWSEvents.PutEvents", b'{"Entries": "x"}', "SerializationException"),
    ("AWSEvents.PutEvents", b'{"Entries": [5]}', "SerializationException"),
    ("AWSStepFunctions.StartExecution", b'{"stateMachineArn": 5}', "SerializationException"),
    ("AWSStepFunctions.DescribeExecution", b"{}", "ValidationException"),
    ("AWSEvents.NoSuchAction", b"{}", "UnknownOperationException"),
    ("Logs_20140328.NoSuchAction", b"{}", "UnknownOperationException"),
])
def test_a_malformed_json_request_answers_aws_error_not_internal_failure(emulator, target, body, code):
    # The queue and table exist: only the request's shape is wrong.
    client(emulator, "sqs").create_queue(QueueName="aws-errors-malformed")
    dynamodb = client(emulator, "dynamodb")
    if "aws-errors-malformed" not in dynamodb.list_tables()["TableNames"]:
        dynamodb.create_table(TableName="aws-errors-malformed", KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                              BillingMode="PAY_PER_REQUEST")
    # Twice: a service's first request goes through moto's Flask app, later ones the direct path (direct.py).
    for _ in range(2):
        status, answer = _raw(emulator, target, body)
        assert (status, answer.get("__type")) == (400, code), answer
        assert "securecart-lab emulator failed" not in answer.get("message", ""), answer


def test_update_item_with_an_undefined_attribute_name_answers_validation_exception(emulator):
    dynamodb = client(emulator, "dynamodb")
    dynamodb.create_table(TableName="aws-errors-names", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    code, message, status = _code(lambda: dynamodb.update_item(
        TableName="aws-errors-names", Key={"id": {"S": "a"}}, UpdateExpression="SET #status = :s",
        ExpressionAttributeValues={":s": {"S": "CONFIRMED"}}))
    assert (code, status) == ("ValidationException", 400), message
    assert message == ("Invalid UpdateExpression: An expression attribute name used in the document path is not "
                       "defined; attribute name: #status")


def test_a_queue_attribute_aws_refuses_answers_invalid_attribute_value(emulator):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="aws-errors-attributes")["QueueUrl"]
    code, message, status = _code(lambda: sqs.set_queue_attributes(
        QueueUrl=url, Attributes={"VisibilityTimeout": "abc"}))
    assert (code, status, message) == ("InvalidAttributeValue", 400,
                                       "Invalid value for the parameter VisibilityTimeout.")
    code, _, _ = _code(lambda: sqs.create_queue(QueueName="aws-errors-bad", Attributes={"DelaySeconds": "soon"}))
    assert code == "InvalidAttributeValue"
    for name, value in (("VisibilityTimeout", "43201"), ("MessageRetentionPeriod", "59"),
                        ("ReceiveMessageWaitTimeSeconds", "21"), ("RedrivePolicy", "not json"),
                        ("RedrivePolicy", '["a list"]'), ("Policy", "{")):
        code, message, status = _code(lambda: sqs.set_queue_attributes(QueueUrl=url, Attributes={name: value}))
        assert (code, status, message) == ("InvalidAttributeValue", 400, f"Invalid value for the parameter {name}."), \
            (name, value)
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "43200"})  # AWS's limit, accepted
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"] == \
        {"VisibilityTimeout": "43200"}


def test_a_log_group_identifier_names_that_group(emulator):
    logs = client(emulator, "logs")
    for group in ("/aws-errors/first", "/aws-errors/second"):
        logs.create_log_group(logGroupName=group)
        logs.create_log_stream(logGroupName=group, logStreamName="s")
        logs.put_log_events(logGroupName=group, logStreamName="s",
                            logEvents=[{"timestamp": int(time.time() * 1000), "message": f"in {group}"}])
    first = next(g for g in logs.describe_log_groups(logGroupNamePrefix="/aws-errors/first")["logGroups"])
    # By ARN (describe-log-groups' "arn" without its ":*", which the identifier's pattern refuses, as AWS's does) and
    # by name: that group, not the last one created.
    for identifier in (first["arn"].removesuffix(":*"), "/aws-errors/first"):
        events = logs.get_log_events(logGroupIdentifier=identifier, logStreamName="s")["events"]
        assert [e["message"] for e in events] == ["in /aws-errors/first"], identifier
        assert [s["logStreamName"] for s in logs.describe_log_streams(logGroupIdentifier=identifier)["logStreams"]] \
            == ["s"]
    code, message, _ = _code(lambda: logs.get_log_events(
        logGroupIdentifier=first["arn"].removesuffix(":*").replace("first", "none"), logStreamName="s"))
    assert (code, message) == ("ResourceNotFoundException", "The specified log group does not exist.")
    code, message, _ = _code(lambda: logs.get_log_events(logGroupName="/aws-errors/first", logStreamName="nope"))
    assert (code, message) == ("ResourceNotFoundException", "The specified log stream does not exist.")


def test_receive_message_limits_and_fifo_names_answer_as_aws(emulator):
    sqs = client(emulator, "sqs")
    url = sqs.create_queue(QueueName="aws-errors-receive")["QueueUrl"]
    code, message, _ = _code(lambda: sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=20))
    assert (code, message) == ("InvalidParameterValue", "Value 20 for parameter MaxNumberOfMessages is invalid. "
                                                        "Reason: Must be between 1 and 10, if provided.")
    code, message, _ = _code(lambda: sqs.receive_message(QueueUrl=url, WaitTimeSeconds=30))
    assert (code, message) == ("InvalidParameterValue", "Value 30 for parameter WaitTimeSeconds is invalid. "
                                                        "Reason: Must be >= 0 and <= 20, if provided.")
    assert sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages") is None
    # A standard queue may not be named .fifo (it became one, which a FIFO producer then misused).
    code, _, _ = _code(lambda: sqs.create_queue(QueueName="aws-errors-orders.fifo"))
    assert code == "InvalidParameterValue"
    assert sqs.create_queue(QueueName="aws-errors-orders.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]


def test_a_key_of_the_wrong_type_or_missing_does_not_match_the_schema(emulator):
    dynamodb = client(emulator, "dynamodb")
    dynamodb.create_table(TableName="aws-errors-keys", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")
    dynamodb.put_item(TableName="aws-errors-keys", Item={"id": {"S": "1"}})
    for key in ({"id": {"N": "1"}}, {}, {"other": {"S": "1"}}):
        for call in (dynamodb.get_item, dynamodb.delete_item):
            code, message, _ = _code(lambda: call(TableName="aws-errors-keys", Key=key))
            assert (code, message) == ("ValidationException", "The provided key element does not match the schema"), \
                (call, key)
    assert dynamodb.get_item(TableName="aws-errors-keys", Key={"id": {"S": "1"}})["Item"] == {"id": {"S": "1"}}
