"""SQS -> Lambda event source mappings run for real: batches, visibility, deletes, partial batch failures, redrive."""

from __future__ import annotations

import hashlib
import json
import time

import pytest
from emulator_fixture import client, create_function, running_emulator, wait_for

pytestmark = pytest.mark.integration

# Records each message it processes on the output queue (one SendMessageBatch per batch); reports "poison" as a
# batch item failure, and raises on "explode" (failing the whole batch).
CONSUMER = '''
import boto3, json, os

sqs = boto3.client("sqs")


def handler(event, context):
    records = event["Records"]
    if any(r["body"] == "explode" for r in records):
        raise RuntimeError("cannot process this batch")
    good = [r for r in records if r["body"] != "poison"]
    for start in range(0, len(good), 10):
        sqs.send_message_batch(QueueUrl=os.environ["OUT"], Entries=[
            {"Id": str(i), "MessageBody": json.dumps({"body": r["body"], "size": len(records), "record": r})}
            for i, r in enumerate(good[start:start + 10])])
    return {"batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in records if r["body"] == "poison"]}
'''


SLOW = """
import boto3, json, os, time

sqs = boto3.client("sqs")


def handler(event, context):
    for r in event["Records"]:
        sqs.send_message(QueueUrl=os.environ["OUT"], MessageBody=json.dumps(
            {"body": r["body"], "count": r["attributes"]["ApproximateReceiveCount"]}))
    time.sleep(2)
"""


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


def _queue(handle, name: str, **attributes) -> tuple[str, str]:
    sqs = client(handle, "sqs")
    url = sqs.create_queue(QueueName=name, Attributes={k: str(v) for k, v in attributes.items()})["QueueUrl"]
    return url, sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


def _consumer(handle, name: str, out_url: str) -> str:
    return create_function(handle, name, CONSUMER, Timeout=10, Environment={"Variables": {"OUT": out_url}})


def _map_then_shorten(handle, url: str, arn: str, function: str, visibility: int, bodies: list[str], **mapping) -> None:
    """Map the queue, give it a visibility timeout shorter than the function's (AWS refuses the mapping while it is
    shorter; lowering it afterwards is allowed) so failed messages come back within the test's patience, then send
    `bodies` and start polling: the first batch holds them all."""
    sqs, lam = client(handle, "sqs"), client(handle, "lambda")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    uuid = lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, Enabled=False, **mapping)["UUID"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": str(visibility)})
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(bodies)])
    lam.update_event_source_mapping(UUID=uuid, Enabled=True)


def _drain(handle, url: str, expected: int, timeout: float = 60) -> list[dict]:
    sqs = client(handle, "sqs")
    found: list[dict] = []
    deadline = time.monotonic() + timeout
    while len(found) < expected and time.monotonic() < deadline:
        # Received messages stay invisible for the rest of the test: no need to delete them.
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                           VisibilityTimeout=600).get("Messages", []):
            found.append(json.loads(message["Body"]))
    return found


def _counts(handle, url: str) -> tuple[int, int]:
    attributes = client(handle, "sqs").get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_a_burst_drains_in_batches_with_none_lost(emulator):
    sqs, lam = client(emulator, "sqs"), client(emulator, "lambda")
    source, source_arn = _queue(emulator, "payments", VisibilityTimeout=30)
    out, _ = _queue(emulator, "payments-done")
    function = _consumer(emulator, "charge", out)
    mapping = lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=function, BatchSize=10,
                                              Enabled=False)["UUID"]
    total = 300
    for start in range(0, total, 10):
        sqs.send_message_batch(QueueUrl=source, Entries=[
            {"Id": str(i), "MessageBody": f"order-{i}",
             "MessageAttributes": {"kind": {"DataType": "String", "StringValue": "payment"}}}
            for i in range(start, start + 10)])
    started = time.monotonic()
    lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    wait_for(lambda: _counts(emulator, source) == (0, 0), timeout=120, what="the source queue to drain")  # (0, 0): deleted
    elapsed = time.monotonic() - started
    print(f"\nESM drained {total} messages in {elapsed:.2f} s: {total / elapsed:.0f} messages/s")
    processed = _drain(emulator, out, total)
    bodies = sorted(p["body"] for p in processed)
    assert bodies == sorted(f"order-{i}" for i in range(total))  # none lost, none twice
    assert max(p["size"] for p in processed) == 10
    record = processed[0]["record"]
    assert set(record) == {"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
                           "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion"}
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"] == source_arn
    assert record["awsRegion"] == "us-east-1"
    assert record["md5OfBody"] == hashlib.md5(record["body"].encode()).hexdigest()
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert record["messageAttributes"] == {"kind": {
        "stringValue": "payment", "stringListValues": [], "binaryListValues": [], "dataType": "String"}}


def test_a_poison_message_reaches_the_dlq_while_the_rest_of_its_batch_succeeds(emulator):
    sqs = client(emulator, "sqs")
    dlq, dlq_arn = _queue(emulator, "refunds-dlq")
    source, source_arn = _queue(emulator, "refunds", VisibilityTimeout=1, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    out, _ = _queue(emulator, "refunds-done")
    function = _consumer(emulator, "refund", out)
    _map_then_shorten(emulator, source, source_arn, function, 5, ["r-1", "r-2", "poison", "r-3", "r-4"], BatchSize=10,
                      MaximumBatchingWindowInSeconds=1, FunctionResponseTypes=["ReportBatchItemFailures"])
    [dead] = wait_for(lambda: sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1, AttributeNames=["All"]).get(
        "Messages"), timeout=30, what="the poison message in the DLQ")
    assert dead["Body"] == "poison"
    processed = _drain(emulator, out, 4)
    assert sorted(p["body"] for p in processed) == ["r-1", "r-2", "r-3", "r-4"]  # each once
    assert {p["size"] for p in processed} == {5}  # one batch
    assert _counts(emulator, source) == (0, 0)


def test_a_function_error_returns_the_whole_batch(emulator):
    sqs = client(emulator, "sqs")
    dlq, dlq_arn = _queue(emulator, "invoices-dlq")
    source, source_arn = _queue(emulator, "invoices", VisibilityTimeout=1, RedrivePolicy=json.dumps(
        {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 2}))
    out, _ = _queue(emulator, "invoices-done")
    function = _consumer(emulator, "invoice", out)
    _map_then_shorten(emulator, source, source_arn, function, 5, ["i-1", "explode", "i-2"], BatchSize=10,
                      MaximumBatchingWindowInSeconds=1)
    dead: list = []
    deadline = time.monotonic() + 30
    while len(dead) < 3 and time.monotonic() < deadline:
        dead += sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
    assert sorted(m["Body"] for m in dead) == ["explode", "i-1", "i-2"]
    assert _drain(emulator, out, 1, timeout=1) == []


def test_disable_enable_and_delete_stop_and_start_the_poller(emulator):
    sqs, lam = client(emulator, "sqs"), client(emulator, "lambda")
    source, source_arn = _queue(emulator, "refills")
    out, _ = _queue(emulator, "refills-done")
    function = _consumer(emulator, "refill", out)
    mapping = lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=function, Enabled=False)["UUID"]
    sqs.send_message(QueueUrl=source, MessageBody="while-disabled")
    time.sleep(1)
    assert _counts(emulator, source) == (1, 0)  # nobody polls a disabled mapping
    lam.update_event_source_mapping(UUID=mapping, Enabled=True)
    assert [p["body"] for p in _drain(emulator, out, 1)] == ["while-disabled"]
    lam.update_event_source_mapping(UUID=mapping, Enabled=False)
    sqs.send_message(QueueUrl=source, MessageBody="disabled-again")
    time.sleep(1)
    assert _counts(emulator, source) == (1, 0)
    lam.update_event_source_mapping(UUID=mapping, Enabled=True, BatchSize=5)
    assert [p["body"] for p in _drain(emulator, out, 1)] == ["disabled-again"]
    lam.delete_event_source_mapping(UUID=mapping)
    sqs.send_message(QueueUrl=source, MessageBody="after-delete")
    time.sleep(1)
    assert _counts(emulator, source) == (1, 0)


def test_idle_pollers_do_not_spin(emulator):
    lam = client(emulator, "lambda")
    out, _ = _queue(emulator, "quiet-done")
    function = _consumer(emulator, "quiet", out)
    for index in range(3):
        _, arn = _queue(emulator, f"quiet-{index}")
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function)
    time.sleep(0.5)

    def cpu_seconds() -> float:
        fields = open(f"/proc/{emulator.process.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / 100  # utime + stime, in clock ticks of 1/100 s

    before = cpu_seconds()
    time.sleep(3)
    assert cpu_seconds() - before < 0.3  # a spinning poller would burn the whole 3 s


def test_a_visibility_timeout_shorter_than_the_function_delivers_the_message_again(emulator):
    sqs, lam = client(emulator, "sqs"), client(emulator, "lambda")
    source, source_arn = _queue(emulator, "captures", VisibilityTimeout=1)
    out, _ = _queue(emulator, "captures-done")
    function = create_function(emulator, "capture", SLOW, Timeout=10, Environment={"Variables": {"OUT": out}})
    # As on AWS, a mapping is refused when the queue's visibility timeout is shorter than the function's timeout...
    with pytest.raises(lam.exceptions.InvalidParameterValueException,
                       match="Queue visibility timeout: 1 seconds is less than Function timeout: 10 seconds"):
        lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=function, BatchSize=1)
    # ...but nothing stops the queue's timeout being lowered later: then a batch still running is delivered again.
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"VisibilityTimeout": "10"})
    lam.create_event_source_mapping(EventSourceArn=source_arn, FunctionName=function, BatchSize=1)
    sqs.set_queue_attributes(QueueUrl=source, Attributes={"VisibilityTimeout": "1"})
    sqs.send_message(QueueUrl=source, MessageBody="charge-once")
    deliveries = _drain(emulator, out, 2, timeout=30)
    assert sorted((d["body"], d["count"]) for d in deliveries[:2]) == [("charge-once", "1"), ("charge-once", "2")]


def test_a_mapping_created_by_cloudformation_polls_too(emulator):
    sqs = client(emulator, "sqs")
    source, source_arn = _queue(emulator, "from-stack")
    out, _ = _queue(emulator, "from-stack-done")
    function = _consumer(emulator, "from-stack", out)
    template = {"Resources": {"Mapping": {"Type": "AWS::Lambda::EventSourceMapping", "Properties": {
        "FunctionName": function, "EventSourceArn": source_arn, "BatchSize": 5}}}}
    cfn = client(emulator, "cloudformation")
    cfn.create_stack(StackName="esm-stack", TemplateBody=json.dumps(template))
    wait_for(lambda: cfn.describe_stacks(StackName="esm-stack")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE",
             timeout=60, what="the stack")
    sqs.send_message(QueueUrl=source, MessageBody="via-stack")
    assert [p["body"] for p in _drain(emulator, out, 1)] == ["via-stack"]
