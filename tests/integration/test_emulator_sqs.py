"""SQS through the kit's fast path (emulator/sqs.py) behaves as SQS: order, visibility, delays, deletes, FIFO rules."""

from __future__ import annotations

import hashlib
import time

import pytest
from botocore.exceptions import ClientError
from emulator_fixture import client, running_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


@pytest.fixture(scope="module")
def sqs(emulator):
    return client(emulator, "sqs")


def _queue(sqs, name: str, **attributes: str) -> str:
    return sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]


def _receive(sqs, url: str, count: int = 1, **extra) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=count, **extra).get("Messages", [])


def _counts(sqs, url: str) -> tuple[int, int, int]:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    return tuple(int(attributes[f"ApproximateNumberOfMessages{suffix}"]) for suffix in ("", "NotVisible", "Delayed"))


def test_a_full_queue_keeps_order_and_counts(sqs):
    url = _queue(sqs, "ordered", VisibilityTimeout="60")
    for i in range(600):
        sent = sqs.send_message(QueueUrl=url, MessageBody=f"order-{i}")
        assert sent["MD5OfMessageBody"] == hashlib.md5(f"order-{i}".encode()).hexdigest()
    assert _counts(sqs, url) == (600, 0, 0)
    bodies = []
    for _ in range(30):
        for message in _receive(sqs, url, 10):
            bodies.append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert bodies == [f"order-{i}" for i in range(300)]
    assert _counts(sqs, url) == (300, 0, 0)


def test_a_received_message_is_invisible_until_its_timeout(sqs):
    url = _queue(sqs, "visibility", VisibilityTimeout="1")
    sqs.send_message(QueueUrl=url, MessageBody="first")
    sqs.send_message(QueueUrl=url, MessageBody="second")
    first = _receive(sqs, url)[0]
    assert first["Body"] == "first"
    assert _counts(sqs, url) == (1, 1, 0)
    assert [m["Body"] for m in _receive(sqs, url, 10)] == ["second"]
    assert _receive(sqs, url, 10) == []
    time.sleep(1.2)
    again = _receive(sqs, url, 10, AttributeNames=["ApproximateReceiveCount"])
    assert sorted(m["Body"] for m in again) == ["first", "second"]
    assert {m["Attributes"]["ApproximateReceiveCount"] for m in again} == {"2"}


def test_change_visibility_to_zero_makes_a_message_visible_again(sqs):
    url = _queue(sqs, "change-visibility", VisibilityTimeout="300")
    sqs.send_message(QueueUrl=url, MessageBody="retry me")
    message = _receive(sqs, url)[0]
    assert _receive(sqs, url) == []
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    assert [m["Body"] for m in _receive(sqs, url)] == ["retry me"]


def test_delete_by_old_and_new_receipt_handles_and_twice(sqs):
    url = _queue(sqs, "deletes", VisibilityTimeout="0")
    for body in ("a", "b", "c"):
        sqs.send_message(QueueUrl=url, MessageBody=body)
    old = _receive(sqs, url)[0]
    new = _receive(sqs, url)[0]
    assert old["Body"] == new["Body"] == "a" and old["ReceiptHandle"] != new["ReceiptHandle"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=old["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=new["ReceiptHandle"])  # deleting again succeeds, as on AWS
    assert sorted(m["Body"] for m in _receive(sqs, url, 10)) == ["b", "c"]
    with pytest.raises(ClientError) as error:
        sqs.delete_message(QueueUrl=url, ReceiptHandle="not-a-receipt-handle")
    assert error.value.response["Error"]["Code"] == "ReceiptHandleIsInvalid"


def test_delayed_messages_and_attributes(sqs):
    url = _queue(sqs, "delays")
    sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=1)
    sent = sqs.send_message(QueueUrl=url, MessageBody="now", MessageAttributes={
        "kind": {"DataType": "String", "StringValue": "order"}})
    assert sent["MD5OfMessageAttributes"]
    assert _counts(sqs, url) == (1, 0, 1)
    now = _receive(sqs, url, 10, MessageAttributeNames=["All"])
    assert [m["Body"] for m in now] == ["now"] and now[0]["MessageAttributes"]["kind"]["StringValue"] == "order"
    time.sleep(1.2)
    assert [m["Body"] for m in _receive(sqs, url, 10)] == ["later"]
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=url, MessageBody="too late", DelaySeconds=901)
    assert error.value.response["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterValueException")


def test_queue_delay_seconds_applies_to_sends_without_one(sqs):
    url = _queue(sqs, "queue-delay", DelaySeconds="1")
    sqs.send_message(QueueUrl=url, MessageBody="delayed by the queue")
    assert _receive(sqs, url) == []
    assert _counts(sqs, url)[2] == 1


def test_too_large_a_message_is_refused(sqs):
    url = _queue(sqs, "small", MaximumMessageSize="1024")
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=url, MessageBody="x" * 1025)
    assert "Message must be shorter than 1024 bytes" in error.value.response["Error"]["Message"]


def test_fifo_deduplicates_and_keeps_group_order(sqs):
    url = _queue(sqs, "orders.fifo", FifoQueue="true", ContentBasedDeduplication="true", VisibilityTimeout="60")
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"a{i}", MessageGroupId="a")
        sqs.send_message(QueueUrl=url, MessageBody=f"b{i}", MessageGroupId="b")
    sqs.send_message(QueueUrl=url, MessageBody="a0", MessageGroupId="a")  # same content: deduplicated
    sqs.send_message(QueueUrl=url, MessageBody="explicit", MessageGroupId="a", MessageDeduplicationId="d1")
    sqs.send_message(QueueUrl=url, MessageBody="explicit again", MessageGroupId="a", MessageDeduplicationId="d1")
    first = _receive(sqs, url, 10)
    assert [m["Body"] for m in first] == ["a0", "b0", "a1", "b1", "a2", "b2", "explicit"]
    assert _receive(sqs, url, 10) == []  # both groups are in flight
    for message in first:
        sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert _counts(sqs, url) == (0, 0, 0)


def test_fifo_needs_a_group_and_a_deduplication_id(sqs):
    url = _queue(sqs, "strict.fifo", FifoQueue="true")
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=url, MessageBody="no group")
    assert error.value.response["Error"]["Code"] == "MissingParameter"
    with pytest.raises(ClientError) as error:
        sqs.send_message(QueueUrl=url, MessageBody="no dedup id", MessageGroupId="g")
    assert error.value.response["Error"]["Code"] in ("InvalidParameterValue", "InvalidParameterValueException")


def test_redrive_to_a_dead_letter_queue(sqs):
    dlq = _queue(sqs, "dead-letters")
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    url = _queue(sqs, "with-dlq", VisibilityTimeout="0",
                 RedrivePolicy=f'{{"deadLetterTargetArn": "{dlq_arn}", "maxReceiveCount": "2"}}')
    sqs.send_message(QueueUrl=url, MessageBody="poison")
    assert len(_receive(sqs, url)) == 1
    assert len(_receive(sqs, url)) == 1
    assert _receive(sqs, url) == []
    assert [m["Body"] for m in _receive(sqs, dlq)] == ["poison"]


def test_batches_go_through_the_same_path(sqs):
    url = _queue(sqs, "batches", VisibilityTimeout="60")
    sent = sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": str(i), "MessageBody": f"m{i}"} for i in range(10)])
    assert len(sent["Successful"]) == 10
    received = _receive(sqs, url, 10)
    assert [m["Body"] for m in received] == [f"m{i}" for i in range(10)]
    deleted = sqs.delete_message_batch(QueueUrl=url, Entries=[
        {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(received)])
    assert len(deleted["Successful"]) == 10
    assert _counts(sqs, url) == (0, 0, 0)


def test_fifo_group_order_holds_through_a_deep_queue(sqs):
    url = _queue(sqs, "deep.fifo", FifoQueue="true", VisibilityTimeout="60")
    for i in range(300):
        sqs.send_message(QueueUrl=url, MessageBody=f"{'ab'[i % 2]}{i // 2}", MessageGroupId="ab"[i % 2],
                         MessageDeduplicationId=f"id-{i}")
    # A repeated id is dropped while its message is still in the queue, even in flight.
    first = _receive(sqs, url, 1)
    assert [m["Body"] for m in first] == ["a0"]
    sqs.send_message(QueueUrl=url, MessageBody="repeat", MessageGroupId="a", MessageDeduplicationId="id-0")
    assert _counts(sqs, url) == (299, 1, 0)
    sqs.delete_message(QueueUrl=url, ReceiptHandle=first[0]["ReceiptHandle"])
    bodies = {"a": ["a0"], "b": []}
    while True:
        batch = _receive(sqs, url, 10)
        if not batch:
            break
        for message in batch:
            bodies[message["Body"][0]].append(message["Body"])
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    assert bodies == {"a": [f"a{i}" for i in range(150)], "b": [f"b{i}" for i in range(150)]}


def test_received_messages_carry_every_attribute_they_were_sent_with(sqs):
    # Responses are serialised with remembered field names (emulator/hotpath.py).
    url = _queue(sqs, "attributes-roundtrip")
    attributes = {"text": {"DataType": "String", "StringValue": "hello"},
                  "count": {"DataType": "Number", "StringValue": "42"},
                  "raw": {"DataType": "Binary", "BinaryValue": b"\x00\x01"}}
    sent = sqs.send_message(QueueUrl=url, MessageBody="body", MessageAttributes=attributes)
    message = sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"], MessageSystemAttributeNames=["All"],
                                  MaxNumberOfMessages=1)["Messages"][0]
    assert message["MessageId"] == sent["MessageId"]
    assert message["MD5OfBody"] == sent["MD5OfMessageBody"] == hashlib.md5(b"body").hexdigest()
    assert message["MD5OfMessageAttributes"] == sent["MD5OfMessageAttributes"]
    assert message["MessageAttributes"] == attributes
    assert message["Attributes"]["ApproximateReceiveCount"] == "1" and "SentTimestamp" in message["Attributes"]
    assert len(message["ReceiptHandle"]) > 100
    sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
