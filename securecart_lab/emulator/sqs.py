"""SQS that stays fast as a queue fills.

moto 5.2 recomputes every queue attribute, including three counts that walk the whole queue reading the clock
per message, on each SendMessage (one lookup of ContentBasedDeduplication) and three times per received message
(the retention check reads MessageRetentionPeriod); ReceiveMessage lists every visible message to return one;
DeleteMessage walks the queue twice. So a queue of 5,000 messages answered several times slower than an empty
one; and each receipt handle took 185 calls to random.choice. The kit reads the one attribute it needs, walks the queue lazily with one clock reading, and deletes by
position. FIFO sends keep moto's path (group and deduplication rules).
"""

from __future__ import annotations

import string
from collections.abc import Iterator
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


def _send_message(original):
    def send_message(self, queue_name: str, message_body: str, message_attributes=None, delay_seconds=None,
                     deduplication_id=None, group_id=None, system_attributes=None, validate_group_id: bool = True):
        queue = self.get_queue(queue_name)
        if queue.fifo_queue or queue.content_based_deduplication or deduplication_id is not None:
            return original(self, queue_name, message_body, message_attributes, delay_seconds, deduplication_id,
                            group_id, system_attributes, validate_group_id)
        # moto's send_message for a standard queue, without building the queue's attributes.
        self._validate_message(queue, message_body=message_body, delay_seconds=int(delay_seconds or 0),
                               group_id=group_id, validate_group_id=validate_group_id)
        delay = int(delay_seconds) if delay_seconds is not None else queue.delay_seconds
        message = _moto.Message(str(_moto.random.uuid4()), message_body, system_attributes)
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

    return send_message


def _receipt_handle() -> str:
    return "".join(_moto.random.choices(string.ascii_lowercase, k=185))


def install() -> None:
    _moto.clock = hooks.resolve("sqs.clock")
    _moto.Message = hooks.resolve("sqs.message")
    _moto.random = hooks.resolve("sqs.random")
    _moto.MAXIMUM_MESSAGE_DELAY = hooks.resolve("sqs.max_delay")
    _moto.InvalidParameterValue = hooks.resolve("sqs.invalid_parameter")
    _moto.ReceiptHandleIsInvalid = hooks.resolve("sqs.receipt_handle_invalid")
    hooks.replace("sqs.queue.messages", property(_messages))
    hooks.replace("sqs.queue.delete_message", _delete_message)
    hooks.replace("sqs.retention_check", _retention_ok)
    hooks.replace("sqs.receipt_handle", _receipt_handle)
    hooks.replace("sqs.send_message", _send_message(hooks.original("sqs.send_message")))
