"""Step Functions scenarios with the outputs, error names and causes AWS documents (or has been recorded giving).

Each scenario is a definition, an input and what AWS answers. `run` scenarios drive the API themselves
(StopExecution, RedriveExecution, TestState, ...) and assert on what they get.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

MISSING = object()
ACCOUNT, REGION = "123456789012", "us-east-1"
ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/securecart-test"
BUCKET, TABLE, QUEUE = "sfn-conformance", "SfnConformance", "sfn-conformance"
CALLBACK_QUEUE = "sfn-conformance-callbacks"


@dataclass
class Scenario:
    feature: str
    name: str
    definition: dict | None = None
    input: Any = field(default_factory=dict)
    status: str = "SUCCEEDED"
    output: Any = MISSING
    error: str | None = None
    cause: str | None = None
    check: Callable[[Any, dict, list[dict]], None] | None = None  # (ctx, described, history)
    express: bool = False
    run: Callable[[Any], None] | None = None  # drives the API itself
    gap: str | None = None  # a known difference from AWS: the scenario runs as a strict xfail (counted as failed)

    @property
    def id(self) -> str:
        return f"{self.feature}/{self.name}"


SCENARIOS: list[Scenario] = []


def scenario(feature: str, name: str, **kwargs) -> None:
    SCENARIOS.append(Scenario(feature, name, **kwargs))


def pass_state(**fields) -> dict:
    return {"StartAt": "P", "States": {"P": {"Type": "Pass", **fields, "End": True}}}


def lambda_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


def intrinsic(expression: str, input: Any, output: Any = MISSING, **kwargs) -> dict:
    return {"definition": pass_state(Parameters={"r.$": expression}), "input": input,
            **({"output": {"r": output}} if output is not MISSING else {}), **kwargs}


def types(history: list[dict]) -> list[str]:
    return [event["type"] for event in history]


# --- input and output processing (JSONPath) ---------------------------------------------------------------------

scenario("jsonpath", "parameters-resultpath-outputpath",
         definition=pass_state(Parameters={"total.$": "$.order.total", "fixed": "x"}, ResultPath="$.out",
                               OutputPath="$.out"),
         input={"order": {"total": 5}}, output={"total": 5, "fixed": "x"})
scenario("jsonpath", "result-with-null-resultpath-keeps-input",
         definition=pass_state(Result={"ignored": True}, ResultPath=None), input={"a": 1}, output={"a": 1})
scenario("jsonpath", "inputpath", definition=pass_state(InputPath="$.order"), input={"order": {"id": 7}},
         output={"id": 7})
scenario("jsonpath", "resultpath-creates-nested-fields",
         definition=pass_state(Result="done", ResultPath="$.a.b.c"), input={"x": 1},
         output={"x": 1, "a": {"b": {"c": "done"}}})
scenario("jsonpath", "missing-parameter-path-is-states-runtime",
         definition=pass_state(Parameters={"x.$": "$.missing"}), input={"a": 1}, status="FAILED",
         error="States.Runtime",
         cause="An error occurred while executing the state 'P' (entered at the event id #2). The JSONPath "
               "'$.missing' specified for the field 'x.$' could not be found in the input '{\"a\":1}'")
scenario("jsonpath", "missing-inputpath-is-states-runtime",
         definition=pass_state(InputPath="$.missing"), input={"a": 1}, status="FAILED", error="States.Runtime",
         cause="An error occurred while executing the state 'P' (entered at the event id #2). Invalid path "
               "'$.missing' : No results for path: $['missing']")
scenario("jsonpath", "missing-outputpath-is-states-runtime",
         definition=pass_state(OutputPath="$.nope"), input={"a": 1}, status="FAILED", error="States.Runtime",
         cause="An error occurred while executing the state 'P' (entered at the event id #2). Invalid path "
               "'$.nope' : No results for path: $['nope']")
scenario("jsonpath", "array-index-selects-one-value", definition=pass_state(Parameters={
    "first.$": "$.items[0].id", "all.$": "$.items[*].id", "one.$": "$.single[*].id"}),
    input={"items": [{"id": "a"}, {"id": "b"}], "single": [{"id": "s"}]},
    output={"first": "a", "all": ["a", "b"], "one": ["s"]})
scenario("jsonpath", "task-resultselector",
         definition={"StartAt": "T", "States": {"T": {
             "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
             "ResultSelector": {"echoed.$": "$.Payload.n", "code.$": "$.StatusCode"}, "ResultPath": "$.r",
             "End": True}}},
         input={"n": 3}, output={"n": 3, "r": {"echoed": 3, "code": 200}})
scenario("jsonpath", "bare-lambda-arn-returns-the-payload",
         definition={"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": lambda_arn("echo"), "End": True}}},
         input={"n": 4}, output={"n": 4})

# --- intrinsic functions (the developer guide's examples) ----------------------------------------------------------

scenario("intrinsics", "format", **intrinsic("States.Format('Hello, my name is {}.', $.name)", {"name": "Arnav"},
                                             "Hello, my name is Arnav."))
scenario("intrinsics", "string-to-json", **intrinsic("States.StringToJson($.s)", {"s": "{\"number\": 20}"},
                                                     {"number": 20}))
scenario("intrinsics", "json-to-string", **intrinsic("States.JsonToString($.o)", {"o": {"a": 1, "b": [1, 2]}},
                                                     "{\"a\":1,\"b\":[1,2]}"))
scenario("intrinsics", "array", **intrinsic("States.Array('Foo', 2020, $.x, 5)", {"x": True},
                                            ["Foo", 2020, True, 5]))
scenario("intrinsics", "array-partition", **intrinsic("States.ArrayPartition($.xs, 4)", {"xs": [1, 2, 3, 4, 5, 6, 7, 8, 9]},
                                                      [[1, 2, 3, 4], [5, 6, 7, 8], [9]]))
scenario("intrinsics", "array-contains", **intrinsic("States.ArrayContains($.xs, $.v)", {"xs": [1, 2, 3], "v": 2}, True))
scenario("intrinsics", "array-range", **intrinsic("States.ArrayRange(1, 9, 2)", {}, [1, 3, 5, 7, 9]))
scenario("intrinsics", "array-get-item", **intrinsic("States.ArrayGetItem($.xs, 5)", {"xs": [1, 2, 3, 4, 5, 6, 7, 8, 9]}, 6))
scenario("intrinsics", "array-length", **intrinsic("States.ArrayLength($.xs)", {"xs": [1, 2, 3, 4, 5]}, 5))
scenario("intrinsics", "array-unique", **intrinsic("States.ArrayUnique($.xs)", {"xs": [1, 2, 3, 3, 3, 3, 3, 3, 4]},
                                                   [1, 2, 3, 4]))
scenario("intrinsics", "base64-encode", **intrinsic("States.Base64Encode($.s)", {"s": "Data to encode"},
                                                    "RGF0YSB0byBlbmNvZGU="))
scenario("intrinsics", "base64-decode", **intrinsic("States.Base64Decode($.s)", {"s": "RGF0YSB0byBlbmNvZGU="},
                                                    "Data to encode"))
scenario("intrinsics", "hash-sha1", **intrinsic("States.Hash($.data, 'SHA-1')", {"data": "input data"},
                                                hashlib.sha1(b"input data").hexdigest()))
scenario("intrinsics", "json-merge-shallow", **intrinsic(
    "States.JsonMerge($.a, $.b, false)", {"a": {"a": {"a1": 1, "a2": 2}, "b": 2}, "b": {"a": {"a3": 1, "a4": 2}, "c": 3}},
    {"a": {"a3": 1, "a4": 2}, "b": 2, "c": 3}))
scenario("intrinsics", "math-add", **intrinsic("States.MathAdd($.n, -1)", {"n": 111}, 110))
scenario("intrinsics", "string-split", **intrinsic("States.StringSplit($.s, ',')", {"s": "1,2,3,4,5"},
                                                   ["1", "2", "3", "4", "5"]))
scenario("intrinsics", "nested-calls", **intrinsic("States.Format('{} items', States.ArrayLength($.xs))",
                                                   {"xs": [1, 2, 3]}, "3 items"))


def _uuid_check(ctx, described, history):
    value = json.loads(described["output"])["r"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", value), value


def _random_check(ctx, described, history):
    value = json.loads(described["output"])["r"]
    assert isinstance(value, int) and 1 <= value <= 999, value


scenario("intrinsics", "uuid", **intrinsic("States.UUID()", {}, check=_uuid_check))
scenario("intrinsics", "math-random", **intrinsic("States.MathRandom(1, 999)", {}, check=_random_check))

# --- Choice --------------------------------------------------------------------------------------------------------


def choice(rules: list[dict], default: bool = True) -> dict:
    states = {"C": {"Type": "Choice", "Choices": [{**rule, "Next": f"R{i}"} for i, rule in enumerate(rules)]}}
    for i in range(len(rules)):
        states[f"R{i}"] = {"Type": "Pass", "Result": f"rule {i}", "End": True}
    if default:
        states["C"]["Default"] = "D"
        states["D"] = {"Type": "Pass", "Result": "default", "End": True}
    return {"StartAt": "C", "States": states}


scenario("choice", "numeric-greater-than", definition=choice([{"Variable": "$.n", "NumericGreaterThan": 10}]),
         input={"n": 11}, output="rule 0")
scenario("choice", "and-string-boolean", definition=choice([
    {"And": [{"Variable": "$.type", "StringEquals": "Private"}, {"Variable": "$.vip", "BooleanEquals": True}]}]),
    input={"type": "Private", "vip": True}, output="rule 0")
scenario("choice", "not-is-present", definition=choice([{"Not": {"Variable": "$.coupon", "IsPresent": True}}]),
         input={}, output="rule 0")
scenario("choice", "string-matches", definition=choice([{"Variable": "$.file", "StringMatches": "*.csv"}]),
         input={"file": "orders.csv"}, output="rule 0")
scenario("choice", "numeric-equals-path", definition=choice([{"Variable": "$.a", "NumericEqualsPath": "$.b"}]),
         input={"a": 3, "b": 3}, output="rule 0")
scenario("choice", "timestamp-less-than", definition=choice(
    [{"Variable": "$.at", "TimestampLessThan": "2026-01-01T00:00:00Z"}]), input={"at": "2025-06-01T12:00:00Z"},
    output="rule 0")
scenario("choice", "or-first-match-wins", definition=choice([
    {"Or": [{"Variable": "$.n", "NumericLessThan": 0}, {"Variable": "$.n", "NumericGreaterThan": 100}]},
    {"Variable": "$.n", "NumericGreaterThanEquals": 0}]), input={"n": 5}, output="rule 1")
scenario("choice", "default", definition=choice([{"Variable": "$.n", "NumericEquals": 1}]), input={"n": 2},
         output="default")
scenario("choice", "no-match-is-states-nochoicematched",
         definition=choice([{"Variable": "$.n", "NumericEquals": 1}], default=False), input={"n": 2},
         status="FAILED", error="States.NoChoiceMatched", cause="No Matches!")

# --- errors: Fail, Retry, Catch --------------------------------------------------------------------------------------

REJECT_CATCH = {"StartAt": "Charge", "States": {
    "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "reject", "Payload.$": "$"},
               "Catch": [{"ErrorEquals": ["OrderRejected"], "ResultPath": "$.error", "Next": "Rejected"}],
               "End": True},
    "Rejected": {"Type": "Pass", "End": True}}}


def _lambda_cause_check(ctx, described, history):
    error = json.loads(described["output"])["error"]
    assert error["Error"] == "OrderRejected"
    cause = json.loads(error["Cause"])
    assert cause["errorType"] == "OrderRejected" and cause["errorMessage"] == "card declined", cause
    assert cause["stackTrace"] and all(line.startswith('  File "/var/task/') for line in cause["stackTrace"]), cause


scenario("errors", "fail-state", definition={"StartAt": "F", "States": {
    "F": {"Type": "Fail", "Error": "OrderInvalid", "Cause": "The order has no items"}}},
    status="FAILED", error="OrderInvalid", cause="The order has no items")
scenario("errors", "fail-state-errorpath-causepath", definition={"StartAt": "F", "States": {
    "F": {"Type": "Fail", "ErrorPath": "$.e", "CausePath": "States.Format('order {} rejected', $.id)"}}},
    input={"e": "Rejected", "id": 7}, status="FAILED", error="Rejected", cause="order 7 rejected")
scenario("errors", "catch-custom-lambda-error", definition=REJECT_CATCH, input={"id": 1}, check=_lambda_cause_check)
scenario("errors", "catch-states-taskfailed", definition={"StartAt": "Charge", "States": {
    "Charge": {**REJECT_CATCH["States"]["Charge"],
               "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Rejected"}]},
    "Rejected": {"Type": "Pass", "OutputPath": "$.error.Error", "End": True}}}, output="OrderRejected")
scenario("errors", "catch-default-resultpath-replaces-input", definition={"StartAt": "Charge", "States": {
    "Charge": {**REJECT_CATCH["States"]["Charge"],
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Rejected"}]},
    "Rejected": {"Type": "Pass", "Parameters": {"keys.$": "States.Array($.Error)"}, "End": True}}},
    output={"keys": ["OrderRejected"]})


def _three_failures(ctx, described, history):
    assert types(history).count("TaskFailed") == 3, types(history)


scenario("errors", "retry-then-fail", definition={"StartAt": "Charge", "States": {
    "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "reject", "Payload.$": "$"},
               "Retry": [{"ErrorEquals": ["OrderRejected"], "IntervalSeconds": 1, "MaxAttempts": 2,
                          "BackoffRate": 2}], "End": True}}},
    status="FAILED", error="OrderRejected", check=_three_failures)
scenario("errors", "states-all-does-not-catch-states-runtime", definition={"StartAt": "Charge", "States": {
    "Charge": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
               "Parameters": {"FunctionName": "echo", "Payload.$": "$.missing"},
               "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
    "Caught": {"Type": "Pass", "End": True}}},
    status="FAILED", error="States.Runtime",
    cause="An error occurred while executing the state 'Charge' (entered at the event id #2). The JSONPath "
          "'$.missing' specified for the field 'Payload.$' could not be found in the input '{}'")
scenario("errors", "dynamodb-missing-path-is-states-runtime", definition={"StartAt": "Save", "States": {
    "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
             "Parameters": {"TableName": TABLE, "Item": {"pk": {"S.$": "$.orderId"}}},
             "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
    "Caught": {"Type": "Pass", "End": True}}},
    input={"id": "o-1"}, status="FAILED", error="States.Runtime",
    cause="An error occurred while executing the state 'Save' (entered at the event id #2). The JSONPath "
          "'$.orderId' specified for the field 'S.$' could not be found in the input '{\"id\":\"o-1\"}'")
scenario("errors", "sqs-missing-path-is-states-runtime", definition={"StartAt": "Send", "States": {
    "Send": {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage",
             "Parameters": {"QueueUrl": "http://unused", "MessageBody.$": "$.body"},
             "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], "End": True},
    "Caught": {"Type": "Pass", "End": True}}},
    input={}, status="FAILED", error="States.Runtime",
    cause="An error occurred while executing the state 'Send' (entered at the event id #2). The JSONPath "
          "'$.body' specified for the field 'MessageBody.$' could not be found in the input '{}'")
scenario("errors", "dynamodb-put-and-get", definition={"StartAt": "Save", "States": {
    "Save": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:putItem",
             "Parameters": {"TableName": TABLE, "Item": {"pk": {"S.$": "$.id"}, "total": {"N": "12"}}},
             "ResultPath": None, "Next": "Load"},
    "Load": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
             "Parameters": {"TableName": TABLE, "Key": {"pk": {"S.$": "$.id"}}},
             "ResultSelector": {"total.$": "$.Item.total.N"}, "End": True}}},
    input={"id": "saved-1"}, output={"total": "12"})
scenario("errors", "dynamodb-missing-table-error-name", definition={"StartAt": "Load", "States": {
    "Load": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
             "Parameters": {"TableName": "NoSuchTable", "Key": {"pk": {"S": "x"}}},
             "Catch": [{"ErrorEquals": ["DynamoDB.ResourceNotFoundException"], "ResultPath": "$.e", "Next": "C"}],
             "End": True},
    "C": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}},
    output="DynamoDB.ResourceNotFoundException")
scenario("errors", "aws-sdk-error-name", definition={"StartAt": "Get", "States": {
    "Get": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:s3:getObject",
            "Parameters": {"Bucket": "no-such-bucket-here", "Key": "k"},
            "Catch": [{"ErrorEquals": ["S3.NoSuchBucketException"], "ResultPath": "$.e", "Next": "C"}], "End": True},
    "C": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}}, output="S3.NoSuchBucketException")
scenario("errors", "lambda-trace-shows-var-task", definition={"StartAt": "Charge", "States": {
    "Charge": {"Type": "Task", "Resource": lambda_arn("reject"), "End": True}}},
    status="FAILED", error="OrderRejected",
    check=lambda ctx, d, h: _lambda_cause_check(ctx, {"output": json.dumps(
        {"error": {"Error": d["error"], "Cause": d["cause"]}})}, h))

# --- Map, Distributed Map ----------------------------------------------------------------------------------------

scenario("map", "inline-item-selector-context", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemsPath": "$.items",
    "ItemSelector": {"index.$": "$$.Map.Item.Index", "value.$": "$$.Map.Item.Value", "tax.$": "$.tax"},
    "ItemProcessor": {"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "I",
                      "States": {"I": {"Type": "Pass", "End": True}}},
    "End": True}}},
    input={"items": ["a", "b"], "tax": 0.2},
    output=[{"index": 0, "value": "a", "tax": 0.2}, {"index": 1, "value": "b", "tax": 0.2}])
scenario("map", "legacy-iterator-parameters", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemsPath": "$.items", "MaxConcurrency": 1, "Parameters": {"n.$": "$$.Map.Item.Value"},
    "Iterator": {"StartAt": "I", "States": {"I": {"Type": "Pass", "OutputPath": "$.n", "End": True}}},
    "ResultPath": "$.out", "End": True}}},
    input={"items": [3, 2, 1]}, output={"items": [3, 2, 1], "out": [3, 2, 1]})
scenario("map", "empty-array", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
    "End": True}}}, input=[], output=[])
scenario("map", "failed-iteration-fails-the-map", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Fail", "Error": "ItemRejected", "Cause": "bad item"}}}, "End": True}}},
    input=[1], status="FAILED", error="ItemRejected", cause="bad item")
scenario("map", "catch-on-map", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Fail", "Error": "ItemRejected", "Cause": "bad item"}}},
    "Catch": [{"ErrorEquals": ["ItemRejected"], "Next": "C"}], "End": True},
    "C": {"Type": "Pass", "End": True}}},
    input=[1], output={"Error": "ItemRejected", "Cause": "bad item"})
scenario("map", "jsonata-items", definition={"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": {
    "Type": "Map", "Items": "{% $states.input.xs %}",
    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "Output": "{% $states.input * 2 %}",
                                                       "End": True}}}, "End": True}}},
    input={"xs": [1, 2, 3]}, output=[2, 4, 6])


def _distributed(**fields) -> dict:
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": BUCKET, "Key": "items.json"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
        **fields, "End": True}}}


scenario("map", "distributed-item-reader-s3-json", definition=_distributed(),
         output=[{"sku": "A"}, {"sku": "B"}, {"sku": "C"}])
scenario("map", "distributed-item-batcher", definition=_distributed(ItemBatcher={"MaxItemsPerBatch": 2, "BatchInput": {"run": "r1"}}),
    output=[{"Items": [{"sku": "A"}, {"sku": "B"}], "BatchInput": {"run": "r1"}},
            {"Items": [{"sku": "C"}], "BatchInput": {"run": "r1"}}])


def _result_writer_check(ctx, described, history):
    output = json.loads(described["output"])
    assert output["MapRunArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:mapRun:"), output
    details = output["ResultWriterDetails"]
    assert details["Bucket"] == BUCKET and re.fullmatch(r"results/[0-9a-f-]{36}/manifest\.json", details["Key"]), details
    manifest = json.loads(ctx.s3.get_object(Bucket=BUCKET, Key=details["Key"])["Body"].read())
    assert manifest["ResultFiles"]["SUCCEEDED"], manifest


scenario("map", "distributed-result-writer", definition=_distributed(
    ResultWriter={"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": BUCKET, "Prefix": "results"}}),
    check=_result_writer_check)

# --- Parallel ----------------------------------------------------------------------------------------------------

scenario("parallel", "branches-in-order", definition={"StartAt": "P", "States": {"P": {
    "Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": "a", "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "InputPath": "$.n", "End": True}}}],
    "End": True}}}, input={"n": 1}, output=["a", 1])
scenario("parallel", "failed-branch-fails-the-state", definition={"StartAt": "P", "States": {"P": {
    "Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Fail", "Error": "BranchFailed", "Cause": "no stock"}}}],
    "End": True}}}, status="FAILED", error="BranchFailed", cause="no stock")

# --- the context object --------------------------------------------------------------------------------------------


def _context_check(ctx, described, history):
    output = json.loads(described["output"])
    assert output == {
        "id": described["executionArn"], "name": described["name"], "input": {"k": "v"},
        "machine": "conformance-context-object-fields", "state": "P", "role": ROLE_ARN, "redrives": 0,
    }, output


scenario("context", "object-fields", definition=pass_state(Parameters={
    "id.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "input.$": "$$.Execution.Input",
    "machine.$": "$$.StateMachine.Name", "state.$": "$$.State.Name", "role.$": "$$.Execution.RoleArn",
    "redrives.$": "$$.Execution.RedriveCount"}), input={"k": "v"}, check=_context_check)
scenario("context", "map-item-index", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemSelector": {"i.$": "$$.Map.Item.Index"},
    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "OutputPath": "$.i", "End": True}}},
    "End": True}}}, input=["x", "y", "z"], output=[0, 1, 2])


def _retry_count_check(ctx, described, history):
    assert json.loads(described["output"]) == {"attempts": 0}


def _start_time_check(ctx, described, history):
    value = json.loads(described["output"])["t"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", value), value


scenario("context", "start-time-is-iso", definition=pass_state(Parameters={"t.$": "$$.Execution.StartTime"}),
         check=_start_time_check)
scenario("context", "state-retry-count", definition={"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "echo", "Payload": {"attempts.$": "$$.State.RetryCount"}}, "OutputPath": "$.Payload",
    "End": True}}}, check=_retry_count_check)

# --- JSONata -------------------------------------------------------------------------------------------------------

scenario("jsonata", "pass-output", definition={"QueryLanguage": "JSONata", **pass_state(
    Output="{% $states.input.a + 1 %}")}, input={"a": 1}, output=2)
scenario("jsonata", "task-arguments-and-result", definition={"QueryLanguage": "JSONata", "StartAt": "T", "States": {
    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Arguments": {"FunctionName": "echo", "Payload": {"order": "{% $states.input.id %}"}},
          "Output": "{% $states.result.Payload %}", "End": True}}}, input={"id": "o-9"}, output={"order": "o-9"})
scenario("jsonata", "choice-condition", definition={"QueryLanguage": "JSONata", "StartAt": "C", "States": {
    "C": {"Type": "Choice", "Choices": [{"Condition": "{% $states.input.n > 5 %}", "Next": "Big"}], "Default": "Small"},
    "Big": {"Type": "Pass", "Output": "big", "End": True}, "Small": {"Type": "Pass", "Output": "small", "End": True}}},
    input={"n": 6}, output="big")
scenario("jsonata", "fail-error-cause", definition={"QueryLanguage": "JSONata", "StartAt": "F", "States": {
    "F": {"Type": "Fail", "Error": "{% 'Invalid' & $states.input.what %}", "Cause": "{% 'order ' & $states.input.id %}"}}},
    input={"what": "Order", "id": "7"}, status="FAILED", error="InvalidOrder", cause="order 7")
scenario("jsonata", "context-execution-name", definition={"QueryLanguage": "JSONata", **pass_state(
    Output="{% $states.context.State.Name %}")}, output="P")
scenario("jsonata", "catch-error-output", definition={"QueryLanguage": "JSONata", "StartAt": "T", "States": {
    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Arguments": {"FunctionName": "reject", "Payload": {}},
          "Catch": [{"ErrorEquals": ["States.ALL"], "Output": "{% $states.errorOutput.Error %}", "Next": "C"}],
          "End": True},
    "C": {"Type": "Pass", "End": True}}}, output="OrderRejected")
scenario("jsonata", "undefined-output-is-query-evaluation-error", definition={"QueryLanguage": "JSONata", **pass_state(
    Output="{% $states.input.nope %}")}, input={"a": 1}, status="FAILED", error="States.QueryEvaluationError",
    cause="An error occurred while executing the state 'P' (entered at the event id #2). The JSONata expression "
          "'$states.input.nope' specified for the field 'Output' returned nothing (undefined).")
scenario("jsonata", "undefined-argument-names-the-field", definition={"QueryLanguage": "JSONata", "StartAt": "T",
                                                                      "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Arguments": {"FunctionName": "echo", "Payload": {"orderId": "{% $states.input.order.id %}"}}, "End": True}}},
    input={"order": {}}, status="FAILED", error="States.QueryEvaluationError",
    cause="An error occurred while executing the state 'T' (entered at the event id #2). The JSONata expression "
          "'$states.input.order.id' specified for the field 'Arguments/Payload/orderId' returned nothing (undefined).")
scenario("jsonata", "functions", definition={"QueryLanguage": "JSONata", **pass_state(
    Output="{% {'sum': $sum($states.input.xs), 'upper': $uppercase('abc'), 'joined': $join(['a','b'], '-')} %}")},
    input={"xs": [1, 2, 3]}, output={"sum": 6, "upper": "ABC", "joined": "a-b"})

# --- Assign and variables ------------------------------------------------------------------------------------------

scenario("assign", "jsonpath-assign-then-reference", definition={"StartAt": "A", "States": {
    "A": {"Type": "Pass", "Assign": {"total.$": "$.a", "label": "fixed"}, "Next": "B"},
    "B": {"Type": "Pass", "Parameters": {"t.$": "$total", "l.$": "$label"}, "End": True}}},
    input={"a": 1}, output={"t": 1, "l": "fixed"})
scenario("assign", "jsonata-assign", definition={"QueryLanguage": "JSONata", "StartAt": "A", "States": {
    "A": {"Type": "Pass", "Assign": {"x": "{% $states.input.a * 2 %}"}, "Next": "B"},
    "B": {"Type": "Pass", "Output": "{% $x + 1 %}", "End": True}}}, input={"a": 4}, output=9)
scenario("assign", "variables-visible-in-map", definition={"QueryLanguage": "JSONata", "StartAt": "A", "States": {
    "A": {"Type": "Pass", "Assign": {"rate": 10}, "Next": "M"},
    "M": {"Type": "Map", "Items": "{% $states.input %}", "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Pass", "Output": "{% $states.input * $rate %}", "End": True}}}, "End": True}}},
    input=[1, 2], output=[10, 20])
scenario("assign", "assign-in-catch", definition={"QueryLanguage": "JSONata", "StartAt": "T", "States": {
    "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
          "Arguments": {"FunctionName": "reject", "Payload": {}},
          "Catch": [{"ErrorEquals": ["States.ALL"], "Assign": {"failedWith": "{% $states.errorOutput.Error %}"},
                     "Next": "C"}], "End": True},
    "C": {"Type": "Pass", "Output": "{% $failedWith %}", "End": True}}}, output="OrderRejected")
scenario("assign", "assign-sees-input-not-next-assignments", definition={"QueryLanguage": "JSONata", "StartAt": "A",
                                                                         "States": {
    "A": {"Type": "Pass", "Assign": {"x": 1}, "Next": "B"},
    "B": {"Type": "Pass", "Assign": {"x": 2, "y": "{% $x %}"}, "Next": "C"},
    "C": {"Type": "Pass", "Output": "{% [$x, $y] %}", "End": True}}}, output=[2, 1])

# --- history events --------------------------------------------------------------------------------------------------


def _linear_history(ctx, described, history):
    assert types(history) == ["ExecutionStarted", "PassStateEntered", "PassStateExited", "SucceedStateEntered",
                              "SucceedStateExited", "ExecutionSucceeded"], types(history)
    assert [e["id"] for e in history] == [1, 2, 3, 4, 5, 6]
    assert [e["previousEventId"] for e in history] == [0, 0, 2, 3, 4, 5], history
    assert history[0]["executionStartedEventDetails"]["roleArn"] == ROLE_ARN
    assert json.loads(history[-1]["executionSucceededEventDetails"]["output"]) == {"a": 1}


scenario("history", "pass-succeed", definition={"StartAt": "P", "States": {
    "P": {"Type": "Pass", "Next": "S"}, "S": {"Type": "Succeed"}}}, input={"a": 1}, check=_linear_history)


def _task_history(ctx, described, history):
    assert types(history) == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskSucceeded",
                              "TaskStateExited", "ExecutionSucceeded"], types(history)
    scheduled = history[2]["taskScheduledEventDetails"]
    assert (scheduled["resourceType"], scheduled["resource"], scheduled["region"]) == ("lambda", "invoke", REGION)


scenario("history", "lambda-task", definition={"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "echo", "Payload": {}},
    "End": True}}}, check=_task_history)


def _failed_history(ctx, described, history):
    assert types(history) == ["ExecutionStarted", "FailStateEntered", "ExecutionFailed"], types(history)
    assert history[-1]["executionFailedEventDetails"] == {"error": "E", "cause": "C"}


scenario("history", "fail", definition={"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "E", "Cause": "C"}}},
         status="FAILED", error="E", cause="C", check=_failed_history)

# --- timeouts and heartbeats ---------------------------------------------------------------------------------------


def _callback_task(queue: str = QUEUE, **fields) -> dict:
    return {"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
        "Parameters": {"QueueUrl": f"http://sqs.{REGION}.localhost/{ACCOUNT}/{queue}",
                       "MessageBody": {"token.$": "$$.Task.Token"}}, **fields}}}


def _timeout_catch(**fields) -> dict:
    definition = _callback_task(**fields, Catch=[{"ErrorEquals": ["States.Timeout"], "Next": "C"}], End=True)
    definition["States"]["C"] = {"Type": "Pass", "OutputPath": "$.Error", "End": True}
    return definition


scenario("timeouts", "task-timeout", definition=_callback_task(TimeoutSeconds=1, End=True), status="FAILED",
         error="States.Timeout")
scenario("timeouts", "heartbeat-timeout", definition=_callback_task(TimeoutSeconds=30, HeartbeatSeconds=1, End=True),
         status="FAILED", error="States.HeartbeatTimeout")
scenario("timeouts", "catch-states-timeout", definition=_timeout_catch(TimeoutSeconds=1), output="States.Timeout")
scenario("timeouts", "execution-timeout", definition={"TimeoutSeconds": 1, "StartAt": "W", "States": {
    "W": {"Type": "Wait", "Seconds": 36000, "End": True}}}, status="TIMED_OUT")


# --- API scenarios (they drive the API themselves) ------------------------------------------------------------------

def _expect_client_error(call, code: str, message: str | None = None):
    from botocore.exceptions import ClientError

    try:
        call()
    except ClientError as exc:
        error = exc.response["Error"]
        assert error["Code"] == code, error
        if message is not None:
            assert error["Message"] == message, error
        return error
    raise AssertionError(f"expected {code}")


def _sync_succeeds(ctx):
    arn = ctx.machine("sync-ok", pass_state(Parameters={"n.$": "States.MathAdd($.n, 1)"}), express=True)
    result = ctx.sfn_sync.start_sync_execution(stateMachineArn=arn, input=json.dumps({"n": 1}))
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"]) == {"n": 2}
    assert result["executionArn"].startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:conformance-sync-ok:")
    assert result["stopDate"] >= result["startDate"]


def _sync_fails(ctx):
    arn = ctx.machine("sync-fail", {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "Fraud", "Cause": "score 97"}}},
                      express=True)
    result = ctx.sfn_sync.start_sync_execution(stateMachineArn=arn, input="{}")
    assert (result["status"], result["error"], result["cause"]) == ("FAILED", "Fraud", "score 97"), result
    assert "output" not in result


def _sync_refuses_standard(ctx):
    arn = ctx.machine("sync-standard", pass_state())
    _expect_client_error(lambda: ctx.sfn_sync.start_sync_execution(stateMachineArn=arn, input="{}"),
                         "StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")


scenario("express", "start-sync-execution-succeeds", run=_sync_succeeds)
scenario("express", "start-sync-execution-fails", run=_sync_fails)
scenario("express", "start-sync-execution-refuses-standard", run=_sync_refuses_standard)


def _stop_during_retry_wait(ctx):
    definition = {"StartAt": "Charge", "States": {"Charge": {
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "reject", "Payload": {}},
        "Retry": [{"ErrorEquals": ["States.ALL"], "IntervalSeconds": 3600, "MaxAttempts": 2}], "End": True}}}
    arn = ctx.start(ctx.machine("stop", definition))
    ctx.wait_history(arn, "TaskFailed")
    started = time.monotonic()
    stopped = ctx.sfn.stop_execution(executionArn=arn, error="Operator.Cancelled", cause="customer cancelled")
    assert "stopDate" in stopped, stopped
    described = ctx.wait(arn, timeout=5)
    assert time.monotonic() - started < 3, "the stop waited for the retry interval"
    assert described["status"] == "ABORTED", described
    assert (described.get("error"), described.get("cause")) == ("Operator.Cancelled", "customer cancelled"), described
    history = ctx.sfn.get_execution_history(executionArn=arn)["events"]
    aborted = history[-1]
    assert aborted["type"] == "ExecutionAborted", types(history)
    assert aborted["executionAbortedEventDetails"] == {"error": "Operator.Cancelled", "cause": "customer cancelled"}
    assert aborted["previousEventId"] == history[-2]["id"], history[-2:]


def _stop_returns_stop_date(ctx):
    arn = ctx.start(ctx.machine("stop-plain", {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 36000,
                                                                                "End": True}}}))
    stopped = ctx.sfn.stop_execution(executionArn=arn)
    described = ctx.wait(arn, timeout=5)
    assert described["status"] == "ABORTED" and described["stopDate"] == stopped["stopDate"], (stopped, described)


def _redrive(ctx):
    key = f"redrive-{time.time_ns()}"
    definition = {"StartAt": "Prepare", "States": {
        "Prepare": {"Type": "Pass", "Result": "prepared", "ResultPath": "$.step", "Next": "Load"},
        "Load": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:getItem",
                 "Parameters": {"TableName": TABLE, "Key": {"pk": {"S.$": "$.key"}}},
                 "ResultSelector": {"total.$": "$.Item.total.N"}, "ResultPath": "$.loaded", "Next": "Done"},
        "Done": {"Type": "Pass", "Parameters": {"total.$": "$.loaded.total", "redrives.$": "$$.Execution.RedriveCount"},
                 "End": True}}}
    arn = ctx.start(ctx.machine("redrive", definition), {"key": key})
    assert ctx.wait(arn)["status"] == "FAILED"
    ctx.ddb.put_item(TableName=TABLE, Item={"pk": {"S": key}, "total": {"N": "42"}})
    redriven = ctx.sfn.redrive_execution(executionArn=arn)
    assert "redriveDate" in redriven, redriven
    described = ctx.wait(arn)
    assert described["status"] == "SUCCEEDED", described
    assert json.loads(described["output"]) == {"total": "42", "redrives": 1}
    assert described["redriveCount"] == 1, described
    history = ctx.sfn.get_execution_history(executionArn=arn)["events"]
    assert "ExecutionRedriven" in types(history), types(history)
    assert types(history).count("PassStateEntered") == 2, "redrive restarts from the failed state, not the start"
    _expect_client_error(lambda: ctx.sfn.redrive_execution(executionArn=arn), "ExecutionNotRedrivable")


def _describe_for_execution(ctx):
    definition = pass_state()
    machine = ctx.machine("for-execution", definition)
    arn = ctx.start(machine)
    ctx.wait(arn)
    ctx.sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(pass_state(Result=1)))
    described = ctx.sfn.describe_state_machine_for_execution(executionArn=arn)
    assert described["stateMachineArn"] == machine and described["name"] == "conformance-for-execution"
    assert json.loads(described["definition"]) == definition, "the definition the execution ran, not the updated one"
    assert described["roleArn"] == ROLE_ARN and "updateDate" in described, described


def _validate_ok(ctx):
    result = ctx.sfn.validate_state_machine_definition(definition=json.dumps(pass_state()), type="STANDARD")
    assert result["result"] == "OK" and result["diagnostics"] == [], result


def _validate_fails(ctx):
    definition = {"StartAt": "Missing", "States": {"P": {"Type": "Pass", "End": True}}}
    result = ctx.sfn.validate_state_machine_definition(definition=json.dumps(definition))
    assert result["result"] == "FAIL", result
    (diagnostic,) = [d for d in result["diagnostics"] if d["code"] == "MISSING_TRANSITION_TARGET"]
    assert diagnostic["severity"] == "ERROR" and diagnostic["location"] == "/StartAt", diagnostic
    assert "Missing" in diagnostic["message"], diagnostic


def _validate_bad_json(ctx):
    result = ctx.sfn.validate_state_machine_definition(definition="{not json")
    assert result["result"] == "FAIL", result
    assert [d["code"] for d in result["diagnostics"]] == ["INVALID_JSON_DESCRIPTION"], result


def _create_rejects_invalid_definition(ctx):
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Next": "Nowhere"}}}
    error = _expect_client_error(lambda: ctx.sfn.create_state_machine(
        name="conformance-invalid", definition=json.dumps(definition), roleArn=ROLE_ARN), "InvalidDefinition")
    assert "MISSING_TRANSITION_TARGET" in error["Message"] and "/States/P/Next" in error["Message"], error


def _test_state_info(ctx):
    state = {"Type": "Pass", "Parameters": {"n.$": "States.MathAdd($.n, 1)"}, "ResultPath": "$.r", "Next": "X"}
    result = ctx.sfn_sync.test_state(definition=json.dumps(state), roleArn=ROLE_ARN, input=json.dumps({"n": 1}))
    assert result["status"] == "SUCCEEDED" and result["nextState"] == "X", result
    assert json.loads(result["output"]) == {"n": 1, "r": {"n": 2}}
    assert "inspectionData" not in result, result


def _test_state_debug(ctx):
    state = {"Type": "Pass", "InputPath": "$.order", "Parameters": {"id.$": "$.id"}, "ResultPath": "$.r", "End": True}
    result = ctx.sfn_sync.test_state(definition=json.dumps(state), roleArn=ROLE_ARN,
                                     input=json.dumps({"order": {"id": 5}}), inspectionLevel="DEBUG")
    data = result["inspectionData"]
    assert json.loads(data["input"]) == {"order": {"id": 5}}
    assert json.loads(data["afterInputPath"]) == {"id": 5}
    assert json.loads(data["afterParameters"]) == {"id": 5}
    # ResultPath merges into the state's raw input, not what InputPath selected.
    assert json.loads(data["afterResultPath"]) == {"order": {"id": 5}, "r": {"id": 5}}
    assert json.loads(result["output"]) == {"order": {"id": 5}, "r": {"id": 5}}


def _test_state_trace(ctx):
    state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "echo", "Payload.$": "$"}, "End": True}
    result = ctx.sfn_sync.test_state(definition=json.dumps(state), roleArn=ROLE_ARN,
                                     input=json.dumps({"a": 1}), inspectionLevel="TRACE")
    assert result["status"] == "SUCCEEDED", result
    assert json.loads(result["output"])["Payload"] == {"a": 1}
    assert json.loads(result["inspectionData"]["result"])["Payload"] == {"a": 1}


def _test_state_failure(ctx):
    state = {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
             "Parameters": {"FunctionName": "reject", "Payload": {}}, "End": True}
    result = ctx.sfn_sync.test_state(definition=json.dumps(state), roleArn=ROLE_ARN, input="{}")
    assert (result["status"], result["error"]) == ("FAILED", "OrderRejected"), result
    assert json.loads(result["cause"])["errorMessage"] == "card declined"


def _send_task_failure_cause(ctx):
    definition = _callback_task(CALLBACK_QUEUE, Catch=[{"ErrorEquals": ["States.ALL"], "Next": "C"}], End=True)
    definition["States"]["C"] = {"Type": "Pass", "End": True}
    arn = ctx.start(ctx.machine("task-failure", definition))
    token = ctx.next_token()
    ctx.sfn.send_task_failure(taskToken=token, error="Payment.Declined", cause="insufficient funds")
    described = ctx.wait(arn)
    assert json.loads(described["output"]) == {"Error": "Payment.Declined", "Cause": "insufficient funds"}, described


def _unsupported_is_json(ctx):
    error = _expect_client_error(lambda: ctx.sfn.get_activity_task(
        activityArn=f"arn:aws:states:{REGION}:{ACCOUNT}:activity:none"), "UnsupportedOperation")
    assert "GetActivityTask" in error["Message"], error


scenario("api", "stop-execution-during-retry-wait", run=_stop_during_retry_wait)
scenario("api", "stop-execution-returns-stop-date", run=_stop_returns_stop_date)
scenario("redrive", "redrive-failed-execution", run=_redrive)
scenario("api", "describe-state-machine-for-execution", run=_describe_for_execution)
scenario("validation", "validate-ok", run=_validate_ok)
scenario("validation", "validate-missing-transition", run=_validate_fails)
scenario("validation", "validate-invalid-json", run=_validate_bad_json)
scenario("validation", "create-rejects-invalid-definition", run=_create_rejects_invalid_definition)
scenario("test-state", "info", run=_test_state_info)
scenario("test-state", "debug", run=_test_state_debug)
scenario("test-state", "trace-lambda", run=_test_state_trace)
scenario("test-state", "failure", run=_test_state_failure)
scenario("callbacks", "send-task-failure-keeps-cause", run=_send_task_failure_cause)
scenario("api", "unsupported-operation-is-a-json-error", run=_unsupported_is_json)


def _versions(ctx):
    machine = ctx.machine("versions", pass_state(Result=1))
    first = ctx.sfn.publish_state_machine_version(stateMachineArn=machine, description="v1")
    assert first["stateMachineVersionArn"] == f"{machine}:1"
    ctx.sfn.update_state_machine(stateMachineArn=machine, definition=json.dumps(pass_state(Result=2)))
    second = ctx.sfn.publish_state_machine_version(stateMachineArn=machine)
    assert second["stateMachineVersionArn"] == f"{machine}:2"
    listed = ctx.sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [f"{machine}:2", f"{machine}:1"]
    described = ctx.sfn.describe_state_machine(stateMachineArn=f"{machine}:1")
    assert json.loads(described["definition"]) == pass_state(Result=1)
    ctx.sfn.delete_state_machine_version(stateMachineVersionArn=f"{machine}:1")
    listed = ctx.sfn.list_state_machine_versions(stateMachineArn=machine)["stateMachineVersions"]
    assert [v["stateMachineVersionArn"] for v in listed] == [f"{machine}:2"]


scenario("api", "publish-list-delete-versions", run=_versions)


# --- more of what learners write ---------------------------------------------------------------------------------------

scenario("choice", "is-type-operators", definition=choice([
    {"And": [{"Variable": "$.n", "IsNumeric": True}, {"Variable": "$.s", "IsString": True},
             {"Variable": "$.b", "IsBoolean": True}, {"Variable": "$.z", "IsNull": True},
             {"Variable": "$.t", "IsTimestamp": True}]}]),
    input={"n": 1, "s": "x", "b": False, "z": None, "t": "2026-01-01T00:00:00Z"}, output="rule 0")
scenario("choice", "string-comparisons", definition=choice([
    {"And": [{"Variable": "$.a", "StringLessThan": "b"}, {"Variable": "$.a", "StringEqualsPath": "$.same"},
             {"Variable": "$.n", "NumericLessThanEqualsPath": "$.max"}]}]),
    input={"a": "a", "same": "a", "n": 3, "max": 3}, output="rule 0")
scenario("choice", "missing-variable-is-states-runtime", definition=choice(
    [{"Variable": "$.missing", "StringEquals": "x"}]), input={"a": 1}, status="FAILED", error="States.Runtime",
    cause="An error occurred while executing the state 'C' (entered at the event id #2). Invalid path '$.missing': "
          "The choice state's condition path references an invalid value.")


def _choice_history(ctx, described, history):
    assert types(history) == ["ExecutionStarted", "ChoiceStateEntered", "ChoiceStateExited", "PassStateEntered",
                              "PassStateExited", "ExecutionSucceeded"], types(history)


scenario("history", "choice", definition=choice([{"Variable": "$.n", "NumericEquals": 1}]), input={"n": 1},
         check=_choice_history)


def _map_history(ctx, described, history):
    kinds = types(history)
    assert kinds[:3] == ["ExecutionStarted", "MapStateEntered", "MapStateStarted"], kinds
    assert kinds.count("MapIterationStarted") == 2 and kinds.count("MapIterationSucceeded") == 2, kinds
    assert kinds[-3:] == ["MapStateSucceeded", "MapStateExited", "ExecutionSucceeded"], kinds
    assert history[2]["mapStateStartedEventDetails"] == {"length": 2}


scenario("history", "map", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}},
    "End": True}}}, input=[1, 2], check=_map_history)


def _catch_history(ctx, described, history):
    kinds = types(history)
    assert kinds == ["ExecutionStarted", "TaskStateEntered", "TaskScheduled", "TaskStarted", "TaskFailed",
                     "TaskStateExited", "PassStateEntered", "PassStateExited", "ExecutionSucceeded"], kinds
    failed = history[4]["taskFailedEventDetails"]
    assert (failed["error"], failed["resourceType"], failed["resource"]) == ("OrderRejected", "lambda", "invoke")


scenario("history", "caught-task-failure", definition=REJECT_CATCH, check=_catch_history)


def _runtime_history(ctx, described, history):
    assert history[-1]["type"] == "ExecutionFailed"
    assert history[-1]["executionFailedEventDetails"]["error"] == "States.Runtime"


scenario("history", "runtime-error", definition=pass_state(Parameters={"x.$": "$.missing"}), status="FAILED",
         error="States.Runtime", check=_runtime_history)


def _wait_history(ctx, described, history):
    assert types(history) == ["ExecutionStarted", "WaitStateEntered", "WaitStateExited", "ExecutionSucceeded"]


scenario("history", "wait", definition={"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 1, "End": True}}},
         input={"k": 1}, output={"k": 1}, check=_wait_history)

scenario("errors", "first-matching-catcher-wins", definition={"StartAt": "Charge", "States": {
    "Charge": {**REJECT_CATCH["States"]["Charge"], "Catch": [
        {"ErrorEquals": ["Other", "OrderRejected"], "Next": "First"},
        {"ErrorEquals": ["States.ALL"], "Next": "Second"}]},
    "First": {"Type": "Pass", "Result": "first", "End": True},
    "Second": {"Type": "Pass", "Result": "second", "End": True}}}, output="first")
scenario("errors", "retry-max-attempts-zero", definition={"StartAt": "Charge", "States": {"Charge": {
    **REJECT_CATCH["States"]["Charge"], "Catch": [],
    "Retry": [{"ErrorEquals": ["OrderRejected"], "MaxAttempts": 0}]}}}, status="FAILED", error="OrderRejected",
    check=lambda ctx, d, h: None if types(h).count("TaskFailed") == 1 else (_ for _ in ()).throw(
        AssertionError(types(h))))
scenario("errors", "unknown-lambda-function", definition={"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
    "Parameters": {"FunctionName": "no-such-function", "Payload": {}},
    "Catch": [{"ErrorEquals": ["Lambda.ResourceNotFoundException"], "ResultPath": "$.e", "Next": "C"}],
    "End": True}, "C": {"Type": "Pass", "OutputPath": "$.e.Error", "End": True}}},
    output="Lambda.ResourceNotFoundException")


def _lambda_output_shape(ctx, described, history):
    output = json.loads(described["output"])
    assert set(output) == {"ExecutedVersion", "Payload", "SdkHttpMetadata", "SdkResponseMetadata", "StatusCode"}, output
    assert output["Payload"] == {"a": 1} and output["StatusCode"] == 200 and output["ExecutedVersion"] == "$LATEST"
    assert output["SdkHttpMetadata"]["HttpStatusCode"] == 200 and output["SdkResponseMetadata"]["RequestId"]


scenario("errors", "lambda-invoke-output-shape", definition={"StartAt": "T", "States": {"T": {
    "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "Parameters": {"FunctionName": "echo", "Payload.$": "$"},
    "End": True}}}, input={"a": 1}, check=_lambda_output_shape)

scenario("map", "max-concurrency-one-keeps-order", definition={"StartAt": "M", "States": {"M": {
    "Type": "Map", "MaxConcurrency": 1, "ItemProcessor": {"StartAt": "I", "States": {
        "I": {"Type": "Pass", "Parameters": {"v.$": "$", "i.$": "$$.Map.Item.Index"}, "End": True}}},
    "ResultSelector": {"count.$": "States.ArrayLength($)", "items.$": "$"}, "End": True}}},
    input=["a", "b", "c"], output={"count": 3, "items": [{"v": "a", "i": 0}, {"v": "b", "i": 1}, {"v": "c", "i": 2}]})
scenario("parallel", "catch-and-result-selector", definition={"StartAt": "P", "States": {"P": {
    "Type": "Parallel", "Branches": [
        {"StartAt": "A", "States": {"A": {"Type": "Pass", "Result": {"x": 1}, "End": True}}},
        {"StartAt": "B", "States": {"B": {"Type": "Pass", "Result": {"y": 2}, "End": True}}}],
    "ResultSelector": {"x.$": "$[0].x", "y.$": "$[1].y"}, "End": True}}}, output={"x": 1, "y": 2})

scenario("jsonata", "assign-and-output-see-the-same-input", definition={"QueryLanguage": "JSONata", "StartAt": "A",
                                                                        "States": {
    "A": {"Type": "Pass", "Assign": {"before": "{% $states.input.n %}"}, "Output": {"n": "{% $states.input.n + 1 %}"},
          "Next": "B"},
    "B": {"Type": "Pass", "Output": "{% [$before, $states.input.n] %}", "End": True}}}, input={"n": 1}, output=[1, 2])
scenario("jsonata", "map-item-selector", definition={"QueryLanguage": "JSONata", "StartAt": "M", "States": {"M": {
    "Type": "Map", "Items": "{% $states.input.orders %}",
    "ItemSelector": {"id": "{% $states.context.Map.Item.Value.id %}", "at": "{% $states.context.Map.Item.Index %}"},
    "ItemProcessor": {"StartAt": "I", "States": {"I": {"Type": "Pass", "End": True}}}, "End": True}}},
    input={"orders": [{"id": "a"}, {"id": "b"}]}, output=[{"id": "a", "at": 0}, {"id": "b", "at": 1}])
scenario("jsonata", "wait-seconds-expression", definition={"QueryLanguage": "JSONata", "StartAt": "W", "States": {
    "W": {"Type": "Wait", "Seconds": "{% $states.input.delay %}", "Next": "P"},
    "P": {"Type": "Pass", "Output": "{% $states.input.delay %}", "End": True}}}, input={"delay": 1}, output=1)

scenario("timeouts", "timeout-seconds-path", definition=_callback_task(TimeoutSecondsPath="$.timeout", End=True),
         input={"timeout": 1}, status="FAILED", error="States.Timeout")
scenario("timeouts", "wait-timestamp-in-the-past", definition={"StartAt": "W", "States": {
    "W": {"Type": "Wait", "TimestampPath": "$.at", "End": True}}}, input={"at": "2020-01-01T00:00:00Z"},
    output={"at": "2020-01-01T00:00:00Z"})


def _send_task_success(ctx):
    definition = _callback_task(CALLBACK_QUEUE, ResultPath="$.approval", End=True)
    arn = ctx.start(ctx.machine("task-success", definition), {"order": 1})
    token = ctx.next_token()
    ctx.sfn.send_task_heartbeat(taskToken=token)
    ctx.sfn.send_task_success(taskToken=token, output=json.dumps({"approved": True}))
    described = ctx.wait(arn)
    assert json.loads(described["output"]) == {"order": 1, "approval": {"approved": True}}, described
    _expect_client_error(lambda: ctx.sfn.send_task_success(taskToken="not-a-token", output="{}"), "InvalidToken")


scenario("callbacks", "send-task-success-and-heartbeat", run=_send_task_success)


def _api_errors(ctx):
    missing = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:conformance-none"
    _expect_client_error(lambda: ctx.sfn.start_execution(stateMachineArn=missing), "StateMachineDoesNotExist",
                         f"State Machine Does Not Exist: '{missing}'")
    _expect_client_error(lambda: ctx.sfn.describe_execution(
        executionArn=f"arn:aws:states:{REGION}:{ACCOUNT}:execution:conformance-none:x"), "ExecutionDoesNotExist")
    machine = ctx.machine("api-errors", pass_state())
    _expect_client_error(lambda: ctx.sfn.start_execution(stateMachineArn=machine, input="{bad"),
                         "InvalidExecutionInput")
    ctx.sfn.start_execution(stateMachineArn=machine, name="once", input="{}")
    _expect_client_error(lambda: ctx.sfn.start_execution(stateMachineArn=machine, name="once", input='{"a":1}'),
                         "ExecutionAlreadyExists")
    _expect_client_error(lambda: ctx.sfn.create_state_machine(
        name="conformance-api-errors", definition=json.dumps(pass_state(Result=9)), roleArn=ROLE_ARN),
        "StateMachineAlreadyExists")


scenario("api", "errors-learners-meet", run=_api_errors)


def _logging_needs_a_destination(ctx):
    _expect_client_error(lambda: ctx.sfn.create_state_machine(
        name="conformance-logging", definition=json.dumps(pass_state()), roleArn=ROLE_ARN,
        loggingConfiguration={"level": "ALL", "includeExecutionData": True}), "InvalidLoggingConfiguration",
        "Invalid Logging Configuration: Must specify exactly one Log Destination if logging level is not OFF.")


scenario("validation", "logging-needs-a-destination", run=_logging_needs_a_destination)


def _express_arn(ctx):
    arn = ctx.machine("express-async", pass_state(), express=True)
    execution = ctx.sfn.start_execution(stateMachineArn=arn, input="{}")["executionArn"]
    assert execution.startswith(f"arn:aws:states:{REGION}:{ACCOUNT}:express:conformance-express-async:"), execution


scenario("express", "async-execution-arn", run=_express_arn)


def _redrive_not_failed(ctx):
    arn = ctx.start(ctx.machine("redrive-ok", pass_state()))
    assert ctx.wait(arn)["status"] == "SUCCEEDED"
    _expect_client_error(lambda: ctx.sfn.redrive_execution(executionArn=arn), "ExecutionNotRedrivable")
    described = ctx.sfn.describe_execution(executionArn=arn)
    assert (described["redriveCount"], described["redriveStatus"]) == (0, "NOT_REDRIVABLE"), described


scenario("redrive", "succeeded-is-not-redrivable", run=_redrive_not_failed)


# --- nested executions: the optimized states:startExecution integration ----------------------------------------------
# (the developer guide's "Start a new AWS Step Functions state machine from a running execution"; the shapes of
# .sync, .sync:2 and of a failed child as AWS records them)

CHILD_MACHINES: dict[str, dict] = {  # created by the suite before any scenario starts
    "child-echo": {"StartAt": "P", "States": {"P": {"Type": "Pass", "Parameters": {"got.$": "$"}, "End": True}}},
    "child-fails": {"StartAt": "F", "States": {"F": {"Type": "Fail", "Error": "OrderRejected",
                                                       "Cause": "card declined"}}},
    "child-waits": {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 360000, "End": True}}},
    "child-reports": {"StartAt": "Report", "States": {"Report": {
        "Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sfn:sendTaskSuccess",
        "Parameters": {"TaskToken.$": "$.token", "Output": "{\"reported\":true}"}, "End": True}}},
}


def child_arn(name: str) -> str:
    return f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:conformance-{name}"


def child_executions(name: str) -> str:
    return child_arn(name).replace(":stateMachine:", ":execution:") + ":"


def start_child(child: str, suffix: str = "", state: dict | None = None, **parameters) -> dict:
    task = {"Type": "Task", "Resource": f"arn:aws:states:::states:startExecution{suffix}",
            "Parameters": {"StateMachineArn": child_arn(child), **parameters}, **(state or {"End": True})}
    return {"StartAt": "Start", "States": {"Start": task}}


STARTED_BY = {"AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID.$": "$$.Execution.Id"}
SYNC_KEYS = {"ExecutionArn", "Input", "InputDetails", "Name", "Output", "OutputDetails", "StartDate",
             "StateMachineArn", "Status", "StopDate"}


def _task_event(history: list[dict], event_type: str) -> dict:
    key = event_type[0].lower() + event_type[1:] + "EventDetails"
    return next(event[key] for event in history if event["type"] == event_type)


def _started_child(ctx, described, history):
    output = json.loads(described["output"])
    assert set(output) == {"ExecutionArn", "StartDate", "SdkHttpMetadata", "SdkResponseMetadata"}, output
    assert output["ExecutionArn"].startswith(child_executions("child-echo")), output
    assert isinstance(output["StartDate"], int) and output["StartDate"] > 1_600_000_000_000, output
    assert output["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert output["SdkResponseMetadata"]["RequestId"] == output["SdkHttpMetadata"]["HttpHeaders"]["x-amzn-RequestId"]
    assert "TaskSubmitted" not in types(history), types(history)
    scheduled = _task_event(history, "TaskScheduled")
    assert (scheduled["resource"], scheduled["resourceType"]) == ("startExecution", "states"), scheduled
    child = ctx.wait(output["ExecutionArn"])
    assert child["status"] == "SUCCEEDED", child
    # The child shows the execution that started it (the console's "Started by" link reads this field).
    assert json.loads(child["input"]) == {"orderId": "ord-7",
                                          "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": described["executionArn"]}
    child_history = ctx.sfn.get_execution_history(executionArn=output["ExecutionArn"])["events"]
    assert json.loads(child_history[0]["executionStartedEventDetails"]["input"])[
        "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID"] == described["executionArn"]


def _sync_output(parse: bool, name: str | None = None):
    def check(ctx, described, history):
        output = json.loads(described["output"])
        assert set(output) == SYNC_KEYS, output
        child_input = {"orderId": "ord-7", "AWS_STEP_FUNCTIONS_STARTED_BY_EXECUTION_ID": described["executionArn"]}
        if parse:
            assert output["Input"] == child_input and output["Output"] == {"got": child_input}, output
        else:
            assert isinstance(output["Output"], str) and isinstance(output["Input"], str), output
            assert json.loads(output["Input"]) == child_input and json.loads(output["Output"]) == {"got": child_input}
        assert output["InputDetails"] == output["OutputDetails"] == {"Included": True}, output
        assert output["Status"] == "SUCCEEDED" and output["StateMachineArn"] == child_arn("child-echo"), output
        assert output["StartDate"] <= output["StopDate"] and isinstance(output["StopDate"], int), output
        if name is not None:
            assert output["Name"] == name and output["ExecutionArn"] == child_executions("child-echo") + name, output
        assert types(history)[2:6] == ["TaskScheduled", "TaskStarted", "TaskSubmitted", "TaskSucceeded"], types(history)
        submitted = json.loads(_task_event(history, "TaskSubmitted")["output"])
        assert submitted["ExecutionArn"] == output["ExecutionArn"] and "SdkHttpMetadata" in submitted, submitted
        resource = _task_event(history, "TaskSucceeded")["resource"]
        assert resource == ("startExecution.sync:2" if parse else "startExecution.sync"), resource

    return check


def _child_failure(parse: bool):
    def check(ctx, described, history):
        cause = json.loads(described["cause"])
        assert set(cause) == SYNC_KEYS - {"Output", "OutputDetails"} | {"Error", "Cause"}, cause
        assert (cause["Error"], cause["Cause"], cause["Status"]) == ("OrderRejected", "card declined", "FAILED"), cause
        assert cause["StateMachineArn"] == child_arn("child-fails"), cause
        assert (cause["Input"] if parse else json.loads(cause["Input"])) == {"orderId": "ord-7"}, cause
        failed = _task_event(history, "TaskFailed")
        assert failed["error"] == "States.TaskFailed" and json.loads(failed["cause"]) == cause, failed
        assert failed["resource"] == ("startExecution.sync:2" if parse else "startExecution.sync"), failed

    return check


def _caught_child_failure(ctx, described, history):
    output = json.loads(described["output"])
    assert output["orderId"] == "ord-7" and output["failure"]["Error"] == "States.TaskFailed", output
    assert json.loads(output["failure"]["Cause"])["Error"] == "OrderRejected", output


def _missing_child(ctx, described, history):
    cause = described["cause"]
    assert cause.startswith(f"State Machine Does Not Exist: '{child_arn('child-missing')}' (Service: AWSStepFunctions; "
                            "Status Code: 400; Error Code: StateMachineDoesNotExist; Request ID: "), cause
    assert cause.endswith("; Proxy: null)"), cause


def _wait_child_status(ctx, child: str, status: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        executions = ctx.sfn.list_executions(stateMachineArn=child_arn(child))["executions"]
        if executions and all(execution["status"] == status for execution in executions):
            return executions[0]
        assert time.monotonic() < deadline, f"{child}: expected every execution {status}, found {executions}"
        time.sleep(0.05)


def _timed_out_task_stops_child(ctx, described, history):
    assert _task_event(history, "TaskTimedOut")["resource"] == "startExecution.sync"
    _wait_child_status(ctx, "child-waits", "ABORTED")


def _stopping_the_parent_stops_a_sync_child(ctx):
    machine = ctx.machine("nested-stop", start_child("child-echo-waits", ".sync"))
    parent = ctx.start(machine)
    history = ctx.wait_history(parent, "TaskSubmitted")
    child = json.loads(_task_event(history, "TaskSubmitted")["output"])["ExecutionArn"]
    assert ctx.sfn.describe_execution(executionArn=child)["status"] == "RUNNING"
    ctx.sfn.stop_execution(executionArn=parent, error="Operator.Cancelled")
    deadline = time.monotonic() + 10
    while (status := ctx.sfn.describe_execution(executionArn=child)["status"]) == "RUNNING":
        assert time.monotonic() < deadline, "the .sync child kept running after its parent was stopped"
        time.sleep(0.05)
    assert status == "ABORTED", status
    assert ctx.wait(parent)["status"] == "ABORTED"


CHILD_MACHINES["child-echo-waits"] = CHILD_MACHINES["child-waits"]

scenario("nested", "start-execution-returns-arn-and-start-date",
         definition=start_child("child-echo", Input={"orderId": "ord-7", **STARTED_BY}), check=_started_child)
scenario("nested", "sync-returns-the-child-output-as-a-string",
         definition=start_child("child-echo", ".sync", Name="sync-child", Input={"orderId": "ord-7", **STARTED_BY}),
         check=_sync_output(parse=False, name="sync-child"))
scenario("nested", "sync2-returns-the-child-output-as-json",
         definition=start_child("child-echo", ".sync:2", Input={"orderId": "ord-7", **STARTED_BY}),
         check=_sync_output(parse=True))
scenario("nested", "sync-child-failure-is-states-task-failed",
         definition=start_child("child-fails", ".sync", Input={"orderId": "ord-7"}), status="FAILED",
         error="States.TaskFailed", check=_child_failure(parse=False))
scenario("nested", "sync2-child-failure-is-states-task-failed",
         definition=start_child("child-fails", ".sync:2", Input={"orderId": "ord-7"}), status="FAILED",
         error="States.TaskFailed", check=_child_failure(parse=True))
scenario("nested", "catch-a-failed-child", definition={"StartAt": "Start", "States": {
    "Start": start_child("child-fails", ".sync", state={
        "Catch": [{"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.failure", "Next": "Refund"}], "Next": "Done"},
        **{"Input.$": "$"})["States"]["Start"],
    "Refund": {"Type": "Pass", "End": True}, "Done": {"Type": "Succeed"}}},
    input={"orderId": "ord-7"}, check=_caught_child_failure)
scenario("nested", "missing-child-state-machine", definition=start_child("child-missing"), status="FAILED",
         error="StepFunctions.StateMachineDoesNotExistException", check=_missing_child)
scenario("nested", "task-timeout-stops-the-sync-child",
         definition=start_child("child-waits", ".sync", state={"TimeoutSeconds": 1, "End": True}), status="FAILED",
         error="States.Timeout", check=_timed_out_task_stops_child)
scenario("nested", "wait-for-task-token-child-reports-back",
         definition=start_child("child-reports", ".waitForTaskToken", Input={"token.$": "$$.Task.Token"}),
         output={"reported": True})
scenario("nested", "jsonata-arguments-sync2", definition={"QueryLanguage": "JSONata", "StartAt": "Start", "States": {
    "Start": {"Type": "Task", "Resource": "arn:aws:states:::states:startExecution.sync:2",
              "Arguments": {"StateMachineArn": child_arn("child-echo"), "Input": {"n": "{% $states.input.n + 1 %}"}},
              "Output": "{% $states.result.Output.got %}", "End": True}}}, input={"n": 1}, output={"n": 2})
scenario("nested", "stopping-the-parent-stops-a-sync-child", run=_stopping_the_parent_stops_a_sync_child)
