"""SQS that stays fast as a queue fills.

moto 5.2 recomputes every queue attribute, including three counts that walk the whole queue reading the clock
per message, to read one of them: on each SendMessage (ContentBasedDeduplication, twice more for a FIFO queue's
validation and once more when it adds the message) and three times per received message (the retention check reads
MessageRetentionPeriod); a FIFO queue also compares each new message's deduplication id with every message in the
queue; ReceiveMessage lists every visible message to return one; DeleteMessage walks the queue twice. So a queue of
5,000 messages answered several times slower than an empty one; and each receipt handle took 185 calls to
random.choice, and every clock reading built two datetimes. The kit reads the one attribute it needs, remembers when each deduplication id was last accepted (the
queue is walked only when a message repeats a recent id), walks the queue lazily with one clock reading, and deletes
by position. A queue attribute AWS refuses (`VisibilityTimeout=abc` or `99999`, a RedrivePolicy that is not JSON) answers AWS's
InvalidAttributeValue, where moto raised (a 500) or accepted it; a standard queue named `.fifo` is refused; and
ReceiveMessage's limits are stated as AWS states them.
"""

from __future__ import annotations

import hashlib
import json
import string
import time
from collections.abc import Iterator
from typing import Any
from types import SimpleNamespace

from securecart_lab.emulator import hooks

_moto = SimpleNamespace()  # moto's objects the patches use, resolved through hooks at install


class VisibleMessages:
    """The queue's visible, undelayed messages, in order, computed as they are walked (moto builds the whole list).

    Iterating walks a snapshot of the queue's list: deletes replace the list rather than change it."""

    __slots__ = ("_queue",)

    def __init__(self, queue) -> None:
        self._queue = queue

    def __iter__(self) -> Iterator:
        now = _moto.clock()
        for message in self._queue._messages:
            if now > message.visible_at and not now < message.delayed_until:
                yield message

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _messages(self) -> VisibleMessages:
    return VisibleMessages(self)


def _delete_message(self, receipt_handle: str) -> None:
    if receipt_handle in self.deleted_messages:
        return  # deleting twice succeeds, as on AWS
    messages = self._messages
    for index, message in enumerate(messages):
        if message.receipt_handle == receipt_handle or receipt_handle in message._old_receipt_handles:
            break
    else:
        raise _moto.ReceiptHandleIsInvalid()
    self.pending_messages.discard(message)
    self.deleted_messages.update(message.all_receipt_handles)
    self._messages = messages[:index] + messages[index + 1:]


def _retention_ok(self, queue_name: str, message) -> bool:
    queue = self.get_queue(queue_name)
    return queue.message_retention_period + message.sent_timestamp / 1000 > _moto.clock() / 1000


class _QueueView:
    """A queue as moto's code that only reads its settings sees it, without the attribute walk (see the module doc)."""

    __slots__ = ("_queue",)

    def __init__(self, queue) -> None:
        self._queue = queue

    @property
    def attributes(self) -> dict[str, str]:
        # _validate_message reads only this attribute.
        return {"ContentBasedDeduplication": "true" if self._queue.content_based_deduplication else "false"}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


class _UncheckedQueue(_QueueView):
    """A FIFO queue for moto's add_message once the kit has checked deduplication: appends, notifies, feeds Lambda."""

    __slots__ = ()
    fifo_queue = False


def _validate_message(original):
    def validate_message(self, queue, message_body, delay_seconds, deduplication_id=None, group_id=None,
                         validate_group_id=True):
        return original(self, _QueueView(queue), message_body, delay_seconds, deduplication_id, group_id,
                        validate_group_id)

    return validate_message


def _latest_by_deduplication_id(queue) -> dict[str, int]:
    """When each deduplication id was last accepted in this queue (sent_timestamp, ms)."""
    latest = queue.__dict__.get("_securecart_deduplication")
    if latest is None:
        latest = queue.__dict__["_securecart_deduplication"] = {}
    return latest


def _is_duplicate(queue, message) -> bool:
    """moto's rule: a FIFO message is dropped when a message still in the queue has its deduplication id and was
    sent less than the deduplication interval before. Only an id accepted within the interval can match."""
    window_ms = _moto.DEDUPLICATION_TIME_IN_SECONDS * 1000
    dedup_id, sent = message.deduplication_id, message.sent_timestamp
    latest = _latest_by_deduplication_id(queue)
    last = latest.get(dedup_id)
    if last is not None and sent - last < window_ms:
        if any(m.deduplication_id == dedup_id and sent - m.sent_timestamp < window_ms for m in queue._messages):
            return True
    if len(latest) > 1024 and dedup_id not in latest:
        for key in [key for key, when in latest.items() if sent - when >= window_ms]:
            del latest[key]
    latest[dedup_id] = sent
    return False


def _add_message(original):
    def add_message(self, message) -> None:
        if self.fifo_queue and (self.content_based_deduplication or message.deduplication_id):
            if _is_duplicate(self, message):
                return
            return original(_UncheckedQueue(self), message)
        return original(self, message)

    return add_message


def _send_message(self, queue_name: str, message_body: str, message_attributes=None, delay_seconds=None,
                  deduplication_id=None, group_id=None, system_attributes=None, validate_group_id: bool = True):
    """moto's send_message, reading ContentBasedDeduplication without building the queue's attributes."""
    queue = self.get_queue(queue_name)
    self._validate_message(queue, message_body=message_body, delay_seconds=int(delay_seconds or 0),
                           deduplication_id=deduplication_id, group_id=group_id, validate_group_id=validate_group_id)
    delay = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
    message = _moto.Message(str(_moto.random.uuid4()), message_body, system_attributes)
    if queue.fifo_queue and queue.content_based_deduplication:
        message.deduplication_id = hashlib.sha256(message_body.encode("utf-8")).hexdigest()
    if deduplication_id is not None:
        message.deduplication_id = deduplication_id
        message.sequence_number = "".join(_moto.random.choices(string.digits, k=20))
    if group_id is not None:
        message.group_id = group_id
    if message_attributes:
        message.message_attributes = message_attributes
    if delay > _moto.MAXIMUM_MESSAGE_DELAY:
        raise _moto.InvalidParameterValue(
            f"Value {delay} for parameter DelaySeconds is invalid. Reason: DelaySeconds must be >= 0 and <= 900.")
    message.mark_sent(delay_seconds=delay)
    queue.add_message(message)
    return message


def _clock_ms() -> float:
    """moto's unix_time_millis (builds two datetimes per call; read per message in ReceiveMessage's walk)."""
    return time.time() * 1000.0


def _receipt_handle() -> str:
    return "".join(_moto.random.choices(string.ascii_lowercase, k=185))


# AWS's limits of the numeric attributes (MaximumMessageSize: up to 1 MiB since August 2025)
_RANGES = {"DelaySeconds": (0, 900), "KmsDataKeyReusePeriodSeconds": (60, 86400),
           "MaximumMessageSize": (1024, 1048576), "MessageRetentionPeriod": (60, 1209600),
           "ReceiveMessageWaitTimeSeconds": (0, 20), "VisibilityTimeout": (0, 43200)}
_JSON_ATTRIBUTES = ("Policy", "RedrivePolicy", "RedriveAllowPolicy")


def _set_attributes(original):
    """moto int()s the numeric attributes (ValueError: a 500) without AWS's limits, and json.loads the policies
    (JSONDecodeError: a 500): AWS answers InvalidAttributeValue for each."""
    invalid = hooks.resolve("sqs.invalid_attribute_value")

    def set_attributes(self, attributes, *args, **kwargs):
        fifo = attributes.get("FifoQueue")
        if fifo is not None and str(fifo).lower() != "true" and getattr(self, "name", "").endswith(".fifo"):
            # AWS: a standard queue's name cannot end in .fifo (moto made a standard queue "orders.fifo")
            raise _moto.InvalidParameterValue(
                "Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
        for name, (low, high) in _RANGES.items():
            value = attributes.get(name)
            if value is None:
                continue
            text = str(value).strip()
            if not text.lstrip("-").isdigit() or not low <= int(text) <= high:
                raise invalid(name)
        for name in _JSON_ATTRIBUTES:
            value = attributes.get(name)
            if isinstance(value, str) and value:
                try:
                    if not isinstance(json.loads(value), dict):
                        raise invalid(name)
                except ValueError:
                    raise invalid(name) from None
        return original(self, attributes, *args, **kwargs)

    return set_attributes


def _receive_message(original):
    """moto's errors read "An error occurred (InvalidParameterValue) when calling the ReceiveMessage operation: An
    error occurred (...) ... must be &lt;= 0 and &gt;= 20": AWS's say the value and the limits once."""
    limits = {"MaxNumberOfMessages": (1, 10, "Must be between 1 and 10, if provided."),
              "WaitTimeSeconds": (0, 20, "Must be >= 0 and <= 20, if provided.")}

    def receive_message(self):
        for name, (low, high, reason) in limits.items():
            value = self._get_param(name)
            if value is None or isinstance(value, bool):
                continue
            try:
                number = int(value)
            except (TypeError, ValueError):
                continue  # not a number: a malformed request (validation.py answers it)
            if not low <= number <= high:
                raise _moto.InvalidParameterValue(
                    f"Value {value} for parameter {name} is invalid. Reason: {reason}")
        return original(self)

    return receive_message


def install() -> None:
    hooks.replace("sqs.response.receive_message", _receive_message(hooks.original("sqs.response.receive_message")))
    hooks.replace("sqs.queue.set_attributes", _set_attributes(hooks.original("sqs.queue.set_attributes")))
    _moto.clock = _clock_ms
    _moto.Message = hooks.resolve("sqs.message")
    _moto.random = hooks.resolve("sqs.random")
    _moto.MAXIMUM_MESSAGE_DELAY = hooks.resolve("sqs.max_delay")
    _moto.InvalidParameterValue = hooks.resolve("sqs.invalid_parameter")
    _moto.ReceiptHandleIsInvalid = hooks.resolve("sqs.receipt_handle_invalid")
    _moto.DEDUPLICATION_TIME_IN_SECONDS = hooks.resolve("sqs.deduplication_interval")
    hooks.replace("sqs.clock", _clock_ms)
    hooks.replace("sqs.queue.messages", property(_messages))
    hooks.replace("sqs.queue.delete_message", _delete_message)
    hooks.replace("sqs.retention_check", _retention_ok)
    hooks.replace("sqs.receipt_handle", _receipt_handle)
    hooks.replace("sqs.send_message", _send_message)
    hooks.replace("sqs.validate_message", _validate_message(hooks.original("sqs.validate_message")))
    hooks.replace("sqs.queue.add_message", _add_message(hooks.original("sqs.queue.add_message")))
