"""Step Functions in the embedded emulator executes workflows as AWS does (with a time scale of 0.01)."""

from __future__ import annotations

import json
import threading
import time
import urllib.request

import pytest
from emulator_fixture import ROLE_ARN, client, create_function, ensure_role, running_emulator, wait_execution

pytestmark = pytest.mark.integration

PAYMENT = '''
import json

class PaymentGatewayTimeout(Exception):
    pass

def handler(event, context):
    if event.get("fail"):
        raise PaymentGatewayTimeout("gateway took too long")
    return {"charged": event.get("amount", 0), "order_id": event.get("order_id")}
'''


@pytest.fixture(scope="module")
def emulator():
    with running_emulator(time_scale=0.01) as handle:
        ensure_role(handle)
        create_function(handle, "payment", PAYMENT)
        yield handle


def _machine(handle, name: str, definition: dict, **extra) -> str:
    return client(handle, "stepfunctions").create_state_machine(
        name=name, definition=json.dumps(definition), roleArn=ROLE_ARN, **extra)["stateMachineArn"]


def _run(handle, machine_arn: str, execution_input: dict | None = None, timeout: float = 20.0) -> dict:
    sfn = client(handle, "stepfunctions")
    arn = sfn.start_execution(stateMachineArn=machine_arn, input=json.dumps(execution_input or {}))["executionArn"]
    return wait_execution(handle, arn, timeout)


def _history(handle, execution_arn: str) -> list[dict]:
    return client(handle, "stepfunctions").get_execution_history(executionArn=execution_arn)["events"]


# Seconds a step may run late on a loaded machine; the waits checked below are 100 times longer at time scale 1.
SLACK = 0.8


def _between(history: list[dict], entered: str, exited: str) -> list[float]:
    """Seconds from each `entered` event to the `exited` event that follows it."""
    spans, began = [], None
    for event in history:
        if event["type"] == entered:
            began = event["timestamp"]
        elif event["type"] == exited and began is not None:
            spans.append((event["timestamp"] - began).total_seconds())
            began = None
    return spans


def _retry_waits(history: list[dict]) -> list[float]:
    """Seconds from each failed attempt of a Task to the next attempt's scheduling."""
    return _between(history, "TaskFailed", "TaskScheduled") + _between(history, "LambdaFunctionFailed", "LambdaFunctionScheduled")


def _function_arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:{name}"


@pytest.mark.parametrize("resource", ["integration", "bare"])
def test_custom_lambda_error_is_retried_then_caught(emulator, resource):
    if resource == "bare":
        task = {"Resource": _function_arn("payment")}
    else:
        task = {"Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "payment", "Payload.$": "$"}}
    definition = {"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", **task,
                   "Retry": [{"ErrorEquals": ["PaymentGatewayTimeout"], "IntervalSeconds": 2, "MaxAttempts": 2,
                              "BackoffRate": 2.0}],
                   "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Failed"}],
                   "End": True},
        "Failed": {"Type": "Pass", "End": True}}}
    result = _run(emulator, _machine(emulator, f"retry-{resource}", definition), {"fail": True})
    assert result["status"] == "SUCCEEDED"
    output = json.loads(result["output"])
    assert output["error"]["Error"] == "PaymentGatewayTimeout"
    assert "gateway took too long" in output["error"]["Cause"]
    history = _history(emulator, result["executionArn"])
    assert len([e for e in history if e["type"] in ("TaskFailed", "LambdaFunctionFailed")]) == 3
    # The retry intervals (2 s, then 4 s) run at the time scale 0.01: each failure is followed by the next attempt
    # within a second, not after 2 or 4 (timed from the execution's own events, so a slow invoke does not count).
    assert all(0 <= wait < 1 for wait in _retry_waits(history)), _retry_waits(history)


def test_a_failed_execution_is_not_an_error_in_the_emulator_log(emulator):
    definition = {"StartAt": "Charge", "States": {
        "Charge": {"Type": "Task", "Resource": _function_arn("payment"), "Next": "Done"},
        "Done": {"Type": "Fail", "Error": "PaymentDeclined"}}}
    machine = _machine(emulator, "fails-quietly", definition)
    assert _run(emulator, machine, {"fail": True})["status"] == "FAILED"
    assert _run(emulator, machine, {})["status"] == "FAILED"
    # The execution's history says why; moto logged each failure at ERROR with a repr of the whole state, kilobytes
    # each, in the log `securecart-lab logs emulator` shows.
    assert "FailureEventException" not in emulator.log()


def test_executions_without_name_get_uuid_names(emulator):
    definition = {"StartAt": "Name", "States": {
        "Name": {"Type": "Pass", "Parameters": {"name.$": "$$.Execution.Name"}, "End": True}}}
    machine = _machine(emulator, "names", definition)
    sfn = client(emulator, "stepfunctions")
    arns = [sfn.start_execution(stateMachineArn=machine)["executionArn"] for _ in range(2)]
    names = []
    for arn in arns:
        result = wait_execution(emulator, arn)
        assert result["status"] == "SUCCEEDED"
        assert json.loads(result["output"]) == {"name": result["name"]}
        assert arn.endswith(":" + result["name"]) and len(result["name"]) == 36
        names.append(result["name"])
    assert names[0] != names[1]
    # A name AWS refuses is refused (it was accepted, "a:b" making an ARN with one field too many).
    for name in ("bad name", "order:1", "a/b", "x" * 81):
        with pytest.raises(sfn.exceptions.ClientError) as refused:
            sfn.start_execution(stateMachineArn=machine, name=name)
        assert refused.value.response["Error"]["Code"] == ("ValidationException" if len(name) > 80 else "InvalidName"), name
    assert sfn.start_execution(stateMachineArn=machine, name="ord-1_ok.2")["executionArn"].endswith(":ord-1_ok.2")


def test_jsonata_pass_assign_output_and_lambda_task(emulator):
    definition = {"QueryLanguage": "JSONata", "StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Assign": {"total": "{% $sum($states.input.items.price) %}",
                                                "customer": "{% $states.input.customer %}",
                                                "note": "{% 'said \"hi\"' %}"},
                    "Output": {"count": "{% $count($states.input.items) %}"}, "Next": "Charge"},
        "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Arguments": {"FunctionName": "payment", "Payload": {"amount": "{% $total %}", "order_id": "o-9"}},
                   "Output": {"charged": "{% $states.result.Payload.charged %}", "count": "{% $states.input.count %}",
                              "customer": "{% $customer %}", "execution": "{% $states.context.Execution.Name %}",
                              "note": "{% $note %}", "id": "{% $uuid() %}"},
                   "End": True}}}
    items = [{"price": 10}, {"price": 32.5}]
    result = _run(emulator, _machine(emulator, "jsonata", definition), {"items": items, "customer": "ada"})
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert len(output.pop("id")) == 36
    assert output == {"charged": 42.5, "count": 2, "customer": "ada", "execution": result["name"], "note": 'said "hi"'}


def test_jsonata_wait_for_task_token_from_lambda_choice_and_map(emulator):
    create_function(emulator, "approver", '''
import boto3, json

def handler(event, context):
    boto3.client("stepfunctions").send_task_success(taskToken=event["token"], output=json.dumps({"approved": event["order"]}))
''')
    definition = {"QueryLanguage": "JSONata", "StartAt": "Approve", "States": {
        "Approve": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Arguments": {"FunctionName": "approver",
                                  "Payload": {"token": "{% $states.context.Task.Token %}", "order": "{% $states.input.order %}"}},
                    "Assign": {"approved": "{% $states.result.approved %}"}, "Next": "Route"},
        "Route": {"Type": "Choice", "Choices": [{"Condition": "{% $approved = 'o-1' %}", "Next": "Double"}],
                  "Default": "Rejected"},
        "Double": {"Type": "Map", "Items": "{% [1, 2, 3] %}", "End": True,
                   "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Times2", "States": {
                       "Times2": {"Type": "Pass", "Output": "{% $states.input * 2 %}", "End": True}}}},
        "Rejected": {"Type": "Fail", "Error": "NotApproved"}}}
    machine = _machine(emulator, "jsonata-token", definition)
    approved = _run(emulator, machine, {"order": "o-1"})
    assert approved["status"] == "SUCCEEDED", approved
    assert json.loads(approved["output"]) == [2, 4, 6]
    rejected = _run(emulator, machine, {"order": "o-2"})
    assert rejected["status"] == "FAILED" and rejected["error"] == "NotApproved"


def test_retry_backoff_and_timestamp_wait_follow_the_time_scale(emulator):
    import datetime

    definition = {"StartAt": "Until", "States": {
        "Until": {"Type": "Wait", "TimestampPath": "$.at", "Next": "Missing"},
        "Missing": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "nope"},
                    "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 30, "MaxAttempts": 3,
                               "BackoffRate": 10, "MaxDelaySeconds": 100}], "End": True}}}
    at = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=100)
    result = _run(emulator, _machine(emulator, "backoff", definition), {"at": at.strftime("%Y-%m-%dT%H:%M:%SZ")})
    assert result["status"] == "FAILED" and result["error"] == "Lambda.ResourceNotFoundException"
    history = _history(emulator, result["executionArn"])
    attempts = [e for e in history if e["type"] == "TaskFailed"]
    assert len(attempts) == 4
    # ~100 s wait + retries after 30, min(300, 100) and min(3000, 100) s, all times 0.01, timed from the execution's
    # own events (a loaded machine adds to each step, never takes away).
    waited = _between(history, "WaitStateEntered", "WaitStateExited")
    assert 0.9 < waited[0] < 1.1 + SLACK, waited
    retries = _retry_waits(history)
    assert len(retries) == 3 and all(
        expected - 0.05 < w < expected + SLACK for w, expected in zip(retries, (0.3, 1.0, 1.0))), retries


def test_choice_parallel_and_map(emulator):
    definition = {"StartAt": "Fanout", "States": {
        "Fanout": {"Type": "Parallel", "ResultPath": "$.branches", "Next": "Each", "Branches": [
            {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": True}}},
            {"StartAt": "B", "States": {"B": {"Type": "Task", "Resource": _function_arn("payment"),
                                              "Parameters": {"amount": 5}, "OutputPath": "$.charged", "End": True}}}]},
        "Each": {"Type": "Map", "ItemsPath": "$.orders", "ResultPath": "$.results", "Next": "Big?",
                 "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Charge", "States": {
                     "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                                "Parameters": {"FunctionName": "payment", "Payload.$": "$"},
                                "OutputPath": "$.Payload.charged", "End": True}}}},
        "Big?": {"Type": "Choice", "Choices": [{"Variable": "$.results[0]", "NumericGreaterThan": 100, "Next": "Big"}],
                 "Default": "Small"},
        "Big": {"Type": "Pass", "Result": "big", "ResultPath": "$.size", "End": True},
        "Small": {"Type": "Pass", "Result": "small", "ResultPath": "$.size", "End": True}}}
    result = _run(emulator, _machine(emulator, "fanout", definition),
                  {"orders": [{"amount": 150}, {"amount": 20}]})
    assert result["status"] == "SUCCEEDED", result
    output = json.loads(result["output"])
    assert output["branches"] == ["a", 5]
    assert output["results"] == [150, 20]
    assert output["size"] == "big"


def test_wait_states_follow_the_time_scale(emulator):
    definition = {"StartAt": "Long", "States": {
        "Long": {"Type": "Wait", "Seconds": 100, "Next": "FromInput"},
        "FromInput": {"Type": "Wait", "SecondsPath": "$.delay", "End": True}}}
    result = _run(emulator, _machine(emulator, "waits", definition), {"delay": 60})
    assert result["status"] == "SUCCEEDED"
    waited = _between(_history(emulator, result["executionArn"]), "WaitStateEntered", "WaitStateExited")
    assert len(waited) == 2 and 0.95 < waited[0] < 1 + SLACK and 0.55 < waited[1] < 0.6 + SLACK, waited


def test_wait_for_task_token_success_and_failure(emulator):
    sqs = client(emulator, "sqs")
    sfn = client(emulator, "stepfunctions")
    queue_url = sqs.create_queue(QueueName="approvals")["QueueUrl"]
    definition = {"StartAt": "Approve", "States": {
        "Approve": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                    "Parameters": {"QueueUrl": queue_url,
                                   "MessageBody": {"token.$": "$$.Task.Token", "order.$": "$.order"}},
                    "End": True}}}
    machine = _machine(emulator, "approval", definition)
    outcomes = {}
    for order in ("ok", "rejected"):
        arn = sfn.start_execution(stateMachineArn=machine, input=json.dumps({"order": order}))["executionArn"]
        message = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=5)["Messages"][0]
        body = json.loads(message["Body"])
        assert body["order"] == order
        if order == "ok":
            sfn.send_task_success(taskToken=body["token"], output=json.dumps({"approved": True}))
        else:
            sfn.send_task_failure(taskToken=body["token"], error="Rejected", cause="out of stock")
        outcomes[order] = wait_execution(emulator, arn)
    assert outcomes["ok"]["status"] == "SUCCEEDED"
    assert json.loads(outcomes["ok"]["output"]) == {"approved": True}
    assert outcomes["rejected"]["status"] == "FAILED" and outcomes["rejected"]["error"] == "Rejected"


def test_service_integrations(emulator):
    sqs, sns, ddb, events = (client(emulator, s) for s in ("sqs", "sns", "dynamodb", "events"))
    queue_url = sqs.create_queue(QueueName="integrations")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = sns.create_topic(Name="order-events")["TopicArn"]
    ddb.create_table(TableName="Orders", KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST")
    events_queue = sqs.create_queue(QueueName="integration-events")["QueueUrl"]
    events_queue_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="from-sfn", EventPattern=json.dumps({"source": ["securecart.orders"]}))
    events.put_targets(Rule="from-sfn", Targets=[{"Id": "q", "Arn": events_queue_arn}])
    definition = {"StartAt": "Put", "States": {
        "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem", "ResultPath": None, "Next": "Update",
                "Parameters": {"TableName": "Orders", "Item": {"id": {"S.$": "$.id"}, "status": {"S": "NEW"}}}},
        "Update": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:updateItem", "ResultPath": None,
                   "Next": "Get", "Parameters": {
                       "TableName": "Orders", "Key": {"id": {"S.$": "$.id"}},
                       "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "status"},
                       "ExpressionAttributeValues": {":s": {"S": "PAID"}}}},
        "Get": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem", "ResultPath": "$.item", "Next": "Send",
                "Parameters": {"TableName": "Orders", "Key": {"id": {"S.$": "$.id"}}}},
        "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage", "ResultPath": None, "Next": "Notify",
                 "Parameters": {"QueueUrl": queue_url, "MessageBody.$": "$.item.Item.status.S"}},
        "Notify": {"Type": "Task", "Resource": "arn:aws:states:::sns:publish", "ResultPath": None, "Next": "Emit",
                   "Parameters": {"TopicArn": topic_arn, "Message": "paid"}},
        "Emit": {"Type": "Task", "Resource": "arn:aws:states:::events:putEvents", "ResultPath": None, "End": True,
                 "Parameters": {"Entries": [{"Source": "securecart.orders", "DetailType": "OrderPaid",
                                             "Detail": {"id.$": "$.id"}}]}}}}
    result = _run(emulator, _machine(emulator, "integrations", definition), {"id": "o-42"})
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["item"]["Item"]["status"] == {"S": "PAID"}
    assert sqs.receive_message(QueueUrl=queue_url)["Messages"][0]["Body"] == "PAID"
    event = json.loads(sqs.receive_message(QueueUrl=events_queue, WaitTimeSeconds=2)["Messages"][0]["Body"])
    assert event["detail"] == {"id": "o-42"} and event["detail-type"] == "OrderPaid"
    assert queue_arn


def test_execution_logs_reach_the_configured_log_group(emulator):
    logs = client(emulator, "logs")
    logs.create_log_group(logGroupName="/aws/vendedlogs/states/orders")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/orders:*"
    machine = _machine(emulator, "logged", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                       loggingConfiguration={"level": "ALL", "includeExecutionData": True,
                                             "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}]})
    result = _run(emulator, machine)
    assert result["status"] == "SUCCEEDED"
    events = logs.filter_log_events(logGroupName="/aws/vendedlogs/states/orders")["events"]
    types = [json.loads(e["message"])["type"] for e in events]
    assert types[0] == "ExecutionStarted" and types[-1] == "ExecutionSucceeded"


def test_execution_log_records_use_aws_field_types(emulator):
    # AWS writes id, previous_event_id and event_timestamp as strings, the timestamp in epoch milliseconds:
    # {"id":"1","type":"ExecutionStarted","details":{...},"previous_event_id":"0","event_timestamp":"1598022413431",...}
    logs = client(emulator, "logs")
    logs.create_log_group(logGroupName="/aws/vendedlogs/states/typed")
    group_arn = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/typed:*"
    machine = _machine(emulator, "logged-typed", {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
                       loggingConfiguration={"level": "ALL", "includeExecutionData": True,
                                             "destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": group_arn}}]})
    before = int(time.time() * 1000)
    result = _run(emulator, machine)
    events = logs.filter_log_events(logGroupName="/aws/vendedlogs/states/typed")["events"]
    records = [json.loads(e["message"]) for e in events]
    assert records and records[0]["type"] == "ExecutionStarted"
    for record in records:
        assert isinstance(record["id"], str) and isinstance(record["previous_event_id"], str), record
        stamp = record["event_timestamp"]
        assert isinstance(stamp, str) and stamp.isdigit(), record
        assert before - 5000 <= int(stamp) <= int(time.time() * 1000) + 5000, record
        assert record["execution_arn"] == result["executionArn"]


def test_ten_state_execution_latency(emulator):
    states = {f"S{i}": {"Type": "Pass", "Result": i, "ResultPath": f"$.s{i}", "Next": f"S{i + 1}"} for i in range(9)}
    states["S9"] = {"Type": "Task", "Resource": _function_arn("payment"), "End": True}
    machine = _machine(emulator, "ten", {"StartAt": "S0", "States": states})
    _run(emulator, machine)
    started = time.perf_counter()
    result = _run(emulator, machine, {"amount": 3})
    elapsed = time.perf_counter() - started
    assert result["status"] == "SUCCEEDED"
    print(f"10-state execution: {elapsed * 1000:.0f} ms")
    assert elapsed < 3


def test_health_endpoint(emulator):
    for path in ("/_localstack/health", "/_securecart/health"):
        with urllib.request.urlopen(emulator.endpoint_url + path, timeout=5) as response:
            document = json.load(response)
        assert document["edition"] == "securecart-local"
        assert document["moto_version"].startswith("5.2.")
        assert document["time_scale"] == 0.01
        for service in ("s3", "sqs", "sns", "dynamodb", "lambda", "stepfunctions", "events", "logs", "iam", "sts",
                        "cloudwatch", "rds", "ec2", "elbv2", "autoscaling", "cloudformation", "ssm"):
            assert document["services"][service] in ("running", "available")  # running once loaded
        assert document["services"]["stepfunctions"] == "running" and "stepfunctions" in document["extensions"]


def test_concurrent_executions(emulator):
    machine = _machine(emulator, "concurrent", {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 20, "End": True}}})
    results = []
    threads = [threading.Thread(target=lambda: results.append(_run(emulator, machine))) for _ in range(5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [r["status"] for r in results] == ["SUCCEEDED"] * 5


def test_a_definition_over_1_mib_is_refused_as_aws_does(emulator):
    from botocore.exceptions import ClientError

    sfn = client(emulator, "stepfunctions")
    small = {"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}
    arn = _machine(emulator, "size-limit", small)
    huge = json.dumps({**small, "Comment": "x" * 1_048_576})
    began = time.monotonic()
    for call in (lambda: sfn.create_state_machine(name="too-big", definition=huge, roleArn=ROLE_ARN),
                 lambda: sfn.update_state_machine(stateMachineArn=arn, definition=huge)):
        with pytest.raises(ClientError) as error:
            call()
        assert error.value.response["Error"]["Code"] == "ValidationException"
        assert "Member must have length less than or equal to 1048576" in error.value.response["Error"]["Message"]
    assert time.monotonic() - began < 10
    assert json.loads(sfn.describe_state_machine(stateMachineArn=arn)["definition"]) == small
    exactly = json.dumps({**small, "Comment": ""})
    exactly = json.dumps({**small, "Comment": "x" * (1_048_576 - len(exactly))})
    assert len(exactly) == 1_048_576
    sfn.update_state_machine(stateMachineArn=arn, definition=exactly)  # at the limit is fine


def test_a_state_machine_from_cloudformation_is_listed_and_runs(emulator):
    template = {"Resources": {"Flow": {"Type": "AWS::StepFunctions::StateMachine", "Properties": {
        "StateMachineName": "from-stack", "RoleArn": ROLE_ARN,
        "DefinitionString": json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": "ran",
                                                                         "End": True}}})}}}}
    cfn = client(emulator, "cloudformation")
    cfn.create_stack(StackName="sfn-stack", TemplateBody=json.dumps(template))
    deadline = time.monotonic() + 60
    while (status := cfn.describe_stacks(StackName="sfn-stack")["Stacks"][0]["StackStatus"]).endswith("IN_PROGRESS"):
        assert time.monotonic() < deadline, status
        time.sleep(0.2)
    assert status == "CREATE_COMPLETE"
    arn = cfn.describe_stack_resource(StackName="sfn-stack", LogicalResourceId="Flow")["StackResourceDetail"][
        "PhysicalResourceId"]
    listed = [m["stateMachineArn"] for m in client(emulator, "stepfunctions").list_state_machines()["stateMachines"]]
    assert arn in listed
    result = _run(emulator, arn)
    assert result["status"] == "SUCCEEDED" and json.loads(result["output"]) == "ran"
