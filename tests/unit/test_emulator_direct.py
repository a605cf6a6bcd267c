"""direct.py: the JSON APIs of SQS, DynamoDB, EventBridge, CloudWatch Logs and Step Functions, served without Flask after each service's first request, answer
exactly as moto's route does (status, headers, body; errors included), and Flask is really bypassed.

The emulator's WSGI app (server.build_app, every middleware and extension) runs in a child process, driven by
werkzeug's test client; Flask's entry point is counted there, to tell which way each request went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BOTH_WAYS = r'''
import gzip, json, os
os.environ["MOTO_PORT"] = "4566"
import flask
from werkzeug.test import Client
from securecart_lab.emulator import server

calls = {"flask": 0}
flask_call = flask.Flask.__call__
def counted(self, environ, start_response):
    calls["flask"] += 1
    return flask_call(self, environ, start_response)
flask.Flask.__call__ = counted

client = Client(server.build_app("127.0.0.1", 4566))
AUTH = "AWS4-HMAC-SHA256 Credential=test/20261130/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
VARYING = {"x-amzn-requestid", "x-amz-crc32", "date"}

def call(target, body, service, **headers):
    data = json.dumps(body).encode()
    if headers.pop("gzip", False):
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    before = calls["flask"]
    response = client.post("/", data=data, headers={
        "Host": "127.0.0.1:4566", "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.0",
        "Authorization": AUTH.format(service), **headers})
    kept = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() not in VARYING)
    return (response.status, kept, response.get_data()), calls["flask"] > before

def same_twice(target, body, service, expect_status):
    (first, via_flask) = call(target, body, service)
    (second, via_flask_again) = call(target, body, service)
    assert first == second, (target, first, second)
    assert first[0].startswith(expect_status), (target, first)
    return first, via_flask, via_flask_again

# The first request to each service goes through moto's dispatcher (it builds the app, the kit installs its
# extensions); every later one is served directly. Errors answer alike both ways.
answer, via_flask, again = same_twice("AmazonSQS.GetQueueUrl", {"QueueName": "missing"}, "sqs", "400")
assert via_flask and not again, (via_flask, again)
assert json.loads(answer[2])["__type"].endswith("QueueDoesNotExist"), answer
answer, via_flask, again = same_twice("DynamoDB_20120810.DescribeTable", {"TableName": "missing"}, "dynamodb", "400")
assert via_flask and not again
assert "ResourceNotFoundException" in json.loads(answer[2])["__type"], answer

for target, body, service, code in (
        ("AWSEvents.DescribeRule", {"Name": "missing"}, "events", "ResourceNotFoundException"),
        ("Logs_20140328.GetLogEvents", {"logGroupName": "missing", "logStreamName": "s"}, "logs", "ResourceNotFoundException"),
        ("AWSStepFunctions.DescribeStateMachine", {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:missing"},
         "states", "StateMachineDoesNotExist")):
    answer, via_flask, again = same_twice(target, body, service, "400")
    assert via_flask and not again and code in json.loads(answer[2])["__type"], (target, answer)
(sent, via) = call("AWSEvents.PutEvents", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}, "events")
assert json.loads(sent[2])["FailedEntryCount"] == 0 and not via, sent

# An action the API does not have: AWS's UnknownOperationException, not a 500.
answer, _, again = same_twice("AmazonSQS.NoSuchAction", {}, "sqs", "400")
assert not again and json.loads(answer[2])["__type"] == "UnknownOperationException", answer
# Malformed JSON: moto's own answer, the same both ways.
(first, _), (second, _) = (call("AmazonSQS.CreateQueue", "not an object", "sqs") for _ in range(2))
assert first == second, (first, second)

# The hot path, each served directly, each answer what moto's route gave.
(created, via) = call("AmazonSQS.CreateQueue", {"QueueName": "q"}, "sqs")
assert created[0].startswith("200") and not via, created
url = json.loads(created[2])["QueueUrl"]
(sent, via) = call("AmazonSQS.SendMessage", {"QueueUrl": url, "MessageBody": "hello"}, "sqs")
assert sent[0].startswith("200") and not via
assert json.loads(sent[2])["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592"
(received, via) = call("AmazonSQS.ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 1}, "sqs")
message = json.loads(received[2])["Messages"][0]
assert message["Body"] == "hello" and not via
(deleted, via) = call("AmazonSQS.DeleteMessage", {"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}, "sqs")
assert deleted[0].startswith("200") and not via, deleted
(bad, via) = call("AmazonSQS.DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "made-up"}, "sqs")
assert bad[0].startswith("400") and b"ReceiptHandleIsInvalid" in bad[2] and not via, bad

# A compressed body is left to moto's route, which decompresses it.
(compressed, via) = call("AmazonSQS.SendMessage", {"QueueUrl": url, "MessageBody": "zipped"}, "sqs", gzip=True)
assert compressed[0].startswith("200") and via, compressed

table = {"TableName": "t", "BillingMode": "PAY_PER_REQUEST",
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}
assert call("DynamoDB_20120810.CreateTable", table, "dynamodb")[0][0].startswith("200")
for sk in ("a", "b", "c"):
    (put, via) = call("DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}}}, "dynamodb")
    assert put[0].startswith("200") and not via, put
(got, via) = call("DynamoDB_20120810.GetItem", {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}}}, "dynamodb")
assert json.loads(got[2]) == {"Item": {"pk": {"S": "p"}, "sk": {"S": "b"}}} and not via, got
query = {"TableName": "t", "KeyConditionExpression": "pk = :p AND sk = :s",
         "ExpressionAttributeValues": {":p": {"S": "p"}, ":s": {"S": "b"}}}
(found, via) = call("DynamoDB_20120810.Query", query, "dynamodb")
assert json.loads(found[2]) == {"Items": [{"pk": {"S": "p"}, "sk": {"S": "b"}}], "Count": 1, "ScannedCount": 1}, found
(wrong, via) = call("DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}}}, "dynamodb")
assert wrong[0].startswith("400") and b"ValidationException" in wrong[2] and not via, wrong
print("identical")
'''


def test_direct_answers_are_moto_routes_answers_without_flask():
    result = subprocess.run([sys.executable, "-c", BOTH_WAYS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("identical")


UNSERVED_FIRST = BOTH_WAYS.split("# The first request to each service")[0] + r'''
def scoped(target, body, scope):
    response = client.post("/", data=json.dumps(body).encode(), headers={
        "Host": "127.0.0.1:4566", "X-Amz-Target": target, "Content-Type": "application/x-amz-json-1.1",
        "Authorization": scope})
    return response.status, response.get_data()

# A credential scope naming no service: moto's dispatcher fails before any app exists (was an empty 500).
status, body = scoped("Logs_20140328.DescribeLogGroups", {}, AUTH.format("nosuchservice"))
assert status.startswith("500") and json.loads(body)["__type"] == "InternalFailure", (status, body)
# The logs app was not built then: the next request builds it (through Flask), the one after is served directly.
(answer, via) = call("Logs_20140328.DescribeLogGroups", {}, "logs")
assert answer[0].startswith("200") and via, answer
(answer, via) = call("Logs_20140328.DescribeLogGroups", {}, "logs")
assert answer[0].startswith("200") and not via, answer
# An Authorization header without a credential scope (moto read it by position: an IndexError, a 500).
status, body = scoped("Logs_20140328.DescribeLogGroups", {}, "AWS4-HMAC-SHA256 Signature=x")
assert status.startswith("400") and json.loads(body)["__type"] == "IncompleteSignatureException", (status, body)
print("answered")
'''


def test_a_request_moto_cannot_route_answers_json_and_leaves_the_service_unserved():
    result = subprocess.run([sys.executable, "-c", UNSERVED_FIRST], cwd=ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("answered")
