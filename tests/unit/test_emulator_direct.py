"""direct.py: STS and the JSON APIs of SQS, DynamoDB, EventBridge, CloudWatch Logs and Step Functions are served
without Flask (it is not even loaded for the first answer), and answer exactly as moto's route does (status,
headers, body; errors included).

The emulator's WSGI app (server.build_app, every middleware and extension) runs in a child process, driven by
werkzeug's test client. moto's route is reached with the same request, its body gzip-compressed (direct.py leaves
those to moto, which decompresses them); Flask's entry point is counted to tell which way each request went."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

BOTH_WAYS = r'''
import gzip, json, os, sys
os.environ["MOTO_PORT"] = "4566"
from werkzeug.test import Client
from securecart_lab.emulator import server

client = Client(server.build_app("127.0.0.1", 4566))
AUTH = "AWS4-HMAC-SHA256 Credential={}/20261130/us-east-1/{}/aws4_request, SignedHeaders=host, Signature=0"
VARYING = {"x-amzn-requestid", "x-amz-crc32", "date", "content-length"}
flask_calls = [0]

def count_flask():
    import flask
    if getattr(flask.Flask.__call__, "counted", False):
        return
    original = flask.Flask.__call__
    def counted(self, environ, start_response):
        flask_calls[0] += 1
        return original(self, environ, start_response)
    counted.counted = True
    flask.Flask.__call__ = counted

def call(target, body, service, zipped=False, key="test"):
    if target is None:  # a query-protocol (form) request
        data, content_type, headers = body.encode(), "application/x-www-form-urlencoded; charset=utf-8", {}
    else:
        data, content_type, headers = json.dumps(body).encode(), "application/x-amz-json-1.0", {"X-Amz-Target": target}
    if zipped:
        data = gzip.compress(data)
        headers["Content-Encoding"] = "gzip"
    before, loaded = flask_calls[0], "flask" in sys.modules
    response = client.post("/", data=data, headers={
        "Host": "127.0.0.1:4566", "Content-Type": content_type, "Authorization": AUTH.format(key, service), **headers})
    if "flask" in sys.modules:
        count_flask()
    kept = sorted((k.lower(), v) for k, v in response.headers.items() if k.lower() not in VARYING)
    body = response.get_data()
    if target is None:  # XML answers carry their request id in the body
        import re
        body = re.sub(rb"<RequestId>[^<]*</RequestId>", b"", body)
    return (response.status, kept, body), flask_calls[0] > before or ("flask" in sys.modules and not loaded)

# The first answer, and every call of the hot path, without Flask.
(identity, _) = call(None, "Action=GetCallerIdentity&Version=2011-06-15", "sts")
assert identity[0].startswith("200") and b"<Account>123456789012</Account>" in identity[2], identity
(identity, _) = call(None, "Action=GetCallerIdentity&Version=2011-06-15", "sts", key="222222222222")
assert b"<Account>222222222222</Account>" in identity[2], identity  # the account a 12-digit key names
(created, _) = call("AmazonSQS.CreateQueue", {"QueueName": "q"}, "sqs")
url = json.loads(created[2])["QueueUrl"]
(sent, _) = call("AmazonSQS.SendMessage", {"QueueUrl": url, "MessageBody": "hello"}, "sqs")
assert json.loads(sent[2])["MD5OfMessageBody"] == "5d41402abc4b2a76b9719d911017c592", sent
(received, _) = call("AmazonSQS.ReceiveMessage", {"QueueUrl": url, "MaxNumberOfMessages": 1}, "sqs")
message = json.loads(received[2])["Messages"][0]
assert message["Body"] == "hello", received
(deleted, _) = call("AmazonSQS.DeleteMessage", {"QueueUrl": url, "ReceiptHandle": message["ReceiptHandle"]}, "sqs")
assert deleted[0].startswith("200"), deleted
table = {"TableName": "t", "BillingMode": "PAY_PER_REQUEST",
         "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
         "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}]}
assert call("DynamoDB_20120810.CreateTable", table, "dynamodb")[0][0].startswith("200")
for sk in ("a", "b", "c"):
    (put, _) = call("DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}, "sk": {"S": sk}}}, "dynamodb")
    assert put[0].startswith("200"), put
(got, _) = call("DynamoDB_20120810.GetItem", {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "b"}}}, "dynamodb")
assert json.loads(got[2]) == {"Item": {"pk": {"S": "p"}, "sk": {"S": "b"}}}, got
query = {"TableName": "t", "KeyConditionExpression": "pk = :p AND sk = :s",
         "ExpressionAttributeValues": {":p": {"S": "p"}, ":s": {"S": "b"}}}
(found, _) = call("DynamoDB_20120810.Query", query, "dynamodb")
assert json.loads(found[2]) == {"Items": [{"pk": {"S": "p"}, "sk": {"S": "b"}}], "Count": 1, "ScannedCount": 1}, found
(sent, _) = call("AWSEvents.PutEvents", {"Entries": [{"Source": "s", "DetailType": "d", "Detail": "{}"}]}, "events")
assert json.loads(sent[2])["FailedEntryCount"] == 0, sent
assert "flask" not in sys.modules and "jinja2" not in sys.modules, "Flask was loaded"

# The same requests both ways: served directly, and through moto's route (gzip-compressed): the same answer.
cases = [
    (None, "Action=GetCallerIdentity&Version=2011-06-15", "sts", "200"),
    (None, "Action=NoSuchAction&Version=2011-06-15", "sts", "400"),  # not an operation of the API
    ("AmazonSQS.GetQueueUrl", {"QueueName": "missing"}, "sqs", "400"),
    ("AmazonSQS.DeleteMessage", {"QueueUrl": url, "ReceiptHandle": "made-up"}, "sqs", "400"),
    ("AmazonSQS.GetQueueAttributes", {"QueueUrl": url, "AttributeNames": ["VisibilityTimeout"]}, "sqs", "200"),
    ("AmazonSQS.NoSuchAction", {}, "sqs", "400"),  # not an operation of the API
    ("AmazonSQS.CreateQueue", "not an object", "sqs", "400"),
    ("DynamoDB_20120810.DescribeTable", {"TableName": "missing"}, "dynamodb", "400"),
    ("DynamoDB_20120810.GetItem", {"TableName": "t", "Key": {"pk": {"S": "p"}, "sk": {"S": "c"}}}, "dynamodb", "200"),
    ("DynamoDB_20120810.PutItem", {"TableName": "t", "Item": {"pk": {"S": "p"}}}, "dynamodb", "400"),
    ("AWSEvents.DescribeRule", {"Name": "missing"}, "events", "400"),
    ("Logs_20140328.GetLogEvents", {"logGroupName": "missing", "logStreamName": "s"}, "logs", "400"),
    ("AWSStepFunctions.DescribeStateMachine",
     {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:missing"}, "states", "400"),
]
for target, body, service, status in cases:
    (direct, via_flask) = call(target, body, service)
    assert not via_flask, target
    (routed, via_flask) = call(target, body, service, zipped=True)
    assert via_flask, target
    assert direct == routed, (target, direct, routed)
    assert direct[0].startswith(status), (target, direct)

(unknown, _) = call("AmazonSQS.NoSuchAction", {}, "sqs")
assert json.loads(unknown[2])["__type"] == "UnknownOperationException", unknown
(unknown, _) = call(None, "Action=NoSuchAction&Version=2011-06-15", "sts")
assert b"<Code>InvalidAction</Code>" in unknown[2] and unknown[0].startswith("400"), unknown
print("identical")
'''


def test_direct_answers_are_moto_routes_answers_without_flask():
    result = subprocess.run([sys.executable, "-c", BOTH_WAYS], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("identical")


UNSERVED = BOTH_WAYS.split("# The first answer, and every call")[0] + r'''
# A credential scope naming no service, on a request only moto's dispatcher serves: it fails before any app exists;
# the answer is InternalFailure in the request's protocol (was an empty 500).
response = client.post("/", data=b"Action=DescribeRegions&Version=2016-11-15", headers={
    "Host": "127.0.0.1:4566", "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "Authorization": AUTH.format("test", "nosuchservice")})
assert response.status.startswith("500") and b"<Code>InternalFailure</Code>" in response.get_data(), response.get_data()
# An Authorization header without a credential scope (moto read it by position: an IndexError, a 500).
response = client.post("/", data=b"{}", headers={
    "Host": "127.0.0.1:4566", "X-Amz-Target": "Logs_20140328.DescribeLogGroups",
    "Content-Type": "application/x-amz-json-1.1", "Authorization": "AWS4-HMAC-SHA256 Signature=x"})
assert response.status.startswith("400") and json.loads(response.get_data())["__type"] == "IncompleteSignatureException"
# The logs API still answers.
(answer, via) = call("Logs_20140328.DescribeLogGroups", {}, "logs")
assert answer[0].startswith("200") and not via, answer
print("answered")
'''


def test_a_request_moto_cannot_route_answers_in_aws_shape():
    result = subprocess.run([sys.executable, "-c", UNSERVED], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip().endswith("answered")
