"""Lambda event source mappings for SQS, run for real (moto stores them, and invokes one message at a time while
SendMessage waits).

Pollers per enabled mapping (`concurrency()` batches in flight), with AWS's semantics:
- it receives up to BatchSize messages (10 per receive), waiting up to MaximumBatchingWindowInSeconds to fill a batch,
  with the queue's visibility timeout, and invokes the function synchronously with the event AWS sends
  (`Records` of messageId, receiptHandle, body, attributes, messageAttributes, md5OfBody, eventSource,
  eventSourceARN, awsRegion);
- on success it deletes the batch; on a function error (or timeout) it deletes nothing: the messages come back when
  their visibility timeout ends, and the queue's redrive policy moves a message to its dead-letter queue after
  maxReceiveCount receives;
- with `FunctionResponseTypes: ["ReportBatchItemFailures"]` it deletes all but the `batchItemFailures`
  (`itemIdentifier` = messageId); a response naming an unknown or empty identifier fails the whole batch, as on AWS;
- Enable/Disable/Update/Delete start and stop the poller (CloudFormation goes through the same calls).
An idle poller sleeps on the queue's condition (woken by a new message) or until the next in-flight message becomes
visible again, at most 20 s: no busy polling. Each mapping runs `concurrency()` batches at once.
"""

from __future__ import annotations

import base64
import json
import logging
import threading
import time
from typing import Any

from securecart_lab.emulator import hooks, lambda_runtime

LOG = logging.getLogger(__name__)

_IDLE_WAIT = 20.0  # seconds, like a long poll
_MISSING_QUEUE_WAIT = 5.0


_DEFAULT_CONCURRENCY, _MAX_CONCURRENCY = 2, 5
_receive_locks: dict[str, threading.Lock] = {}


def concurrency(mapping) -> int:
    """Batches in flight at once: ScalingConfig.MaximumConcurrency, else 2 (AWS starts 5 pollers and scales up;
    locally each concurrent batch holds a worker process, so at most 5). Two are enough for what concurrency shows:
    a message whose visibility timeout ends while its batch still runs is delivered again."""
    wanted = (mapping.scaling_config or {}).get("MaximumConcurrency") or _DEFAULT_CONCURRENCY
    return max(1, min(int(wanted), _MAX_CONCURRENCY))


class Poller:
    def __init__(self, mapping) -> None:
        self.mapping = mapping
        self.concurrency = concurrency(mapping)
        self._stopped = threading.Event()
        self._queue = None
        self.threads = [threading.Thread(target=self._run, name=f"esm-{mapping.uuid[:8]}-{index}", daemon=True)
                        for index in range(self.concurrency)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def stop(self) -> None:
        self._stopped.set()
        queue = self._queue
        if queue is not None:
            with queue._messages_lock:
                queue._messages_lock.notify_all()

    # --- the loop ---

    def _backend(self):
        mapping = self.mapping
        return hooks.resolve("sqs.backends")[mapping.account_id][mapping.region]

    def _find_queue(self):
        for queue in list(self._backend().queues.values()):
            if queue.queue_arn == self.mapping.event_source_arn:
                return queue
        return None

    def _run(self) -> None:
        while not self._stopped.is_set():
            queue = self._find_queue()
            self._queue = queue
            if queue is None:
                self._stopped.wait(_MISSING_QUEUE_WAIT)
                continue
            try:
                newest = _newest(queue)
                batch = self._collect(queue)
                if batch:
                    self._process(queue, batch)
                else:
                    self._idle(queue, newest)
            except Exception:  # noqa: BLE001 - a poller never dies of one bad batch
                LOG.exception("event source mapping %s: polling %s failed", self.mapping.uuid, queue.name)
                self._stopped.wait(1.0)

    def _receive(self, queue, count: int) -> list:
        visibility = queue.visibility_timeout if queue.visibility_timeout is not None else 30
        with _receive_locks.setdefault(queue.queue_arn, threading.Lock()):  # one receive at a time, as SQS is atomic
            return self._backend().receive_message(queue.name, count, 0, int(visibility), ["All"])

    def _collect(self, queue) -> list:
        size = int(self.mapping.batch_size or 10)
        window = float(self.mapping.max_batch_window or 0)
        deadline = time.monotonic() + window
        batch: list = []
        while not self._stopped.is_set():
            newest = _newest(queue)
            batch += self._receive(queue, min(10, size - len(batch)))
            remaining = deadline - time.monotonic()
            if len(batch) >= size or remaining <= 0:
                break
            with queue._messages_lock:
                if _newest(queue) is newest:
                    queue._messages_lock.wait(remaining)
        return batch

    def _idle(self, queue, newest) -> None:
        with queue._messages_lock:
            if self._stopped.is_set() or _newest(queue) is not newest:
                return
            queue._messages_lock.wait(_next_visible(queue))

    def _process(self, queue, batch: list) -> None:
        mapping = self.mapping
        event = {"Records": [_record(message, mapping.event_source_arn, mapping.region) for message in batch]}
        try:
            function = hooks.resolve("lambda.backends")[mapping.account_id][mapping.region].get_function(
                mapping.function_arn)
        except Exception as exc:  # noqa: BLE001 - a deleted function: the messages come back, as on AWS
            LOG.warning("event source mapping %s: function %s not found: %s", mapping.uuid, mapping.function_arn, exc)
            return
        result = lambda_runtime.invoke(function, json.dumps(event))
        if result.errored:
            LOG.info("event source mapping %s: %s failed on a batch of %d; the messages return after the visibility "
                     "timeout", mapping.uuid, function.function_name, len(batch))
            return
        failed: set[str] = set()
        if "ReportBatchItemFailures" in (mapping.function_response_types or []):
            reported = _batch_item_failures(result.payload, {message.id for message in batch})
            if reported is None:
                LOG.info("event source mapping %s: invalid batchItemFailures from %s; the whole batch failed",
                         mapping.uuid, function.function_name)
                return
            failed = reported
        backend = self._backend()
        for message in batch:
            if message.id not in failed:
                try:
                    backend.delete_message(queue.name, message.receipt_handle)
                except Exception as exc:  # noqa: BLE001 - already gone (the queue was purged or deleted)
                    LOG.debug("event source mapping %s: delete failed: %s", mapping.uuid, exc)


def _newest(queue):
    messages = queue._messages
    return messages[-1] if messages else None


def _next_visible(queue) -> float:
    """Seconds until the next in-flight or delayed message can be received (at most _IDLE_WAIT)."""
    now = hooks.resolve("sqs.clock")()
    upcoming = [max(m.visible_at, m.delayed_until) for m in list(queue._messages)
                if m.visible_at > now or m.delayed_until > now]
    if not upcoming:
        return _IDLE_WAIT
    return min(_IDLE_WAIT, max(0.01, (min(upcoming) - now) / 1000 + 0.01))


def _batch_item_failures(payload: bytes, ids: set[str]) -> set[str] | None:
    """The message ids the function reported as failed; None when the response fails the whole batch."""
    try:
        response = json.loads(payload or b"null")
    except ValueError:
        return None
    if response is None or response == "":
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return None
        failed.add(identifier)
    return failed


def _attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda's SQS event spells it."""
    def get(*names: str) -> Any:
        return next((value[name] for name in names if value.get(name) is not None), None)

    record: dict[str, Any] = {
        "stringListValues": [], "binaryListValues": [], "dataType": get("DataType", "data_type")}
    string_value = get("StringValue", "string_value")
    binary_value = get("BinaryValue", "binary_value")
    if string_value is not None:
        record["stringValue"] = string_value
    if binary_value is not None:
        record["binaryValue"] = binary_value if isinstance(binary_value, str) else base64.b64encode(
            binary_value).decode()
    return record


def _record(message, queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "SentTimestamp": str(message.sent_timestamp),
        "SenderId": str(message.sender_id),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if queue_arn.endswith(".fifo"):
        attributes.update({"SequenceNumber": str(message.sequence_number), "MessageGroupId": message.group_id,
                           "MessageDeduplicationId": message.deduplication_id})
    record = {
        "messageId": message.id,
        "receiptHandle": message.receipt_handle,
        "body": message.body,
        "attributes": attributes,
        "messageAttributes": {name: _attribute(value) for name, value in (message.message_attributes or {}).items()},
        "md5OfBody": message.body_md5,
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.message_attributes:
        record["md5OfMessageAttributes"] = message.attribute_md5
    return record


# --- pollers follow the mappings -------------------------------------------------------------------------------------

_pollers: dict[str, Poller] = {}
_lock = threading.Lock()


def _sync(mapping) -> None:
    """Run a poller for the mapping exactly when it is an enabled SQS mapping."""
    wanted = mapping is not None and bool(mapping.enabled) and mapping.event_source_arn.split(":")[2] == "sqs"
    with _lock:
        current = _pollers.get(mapping.uuid) if mapping is not None else None
        if current is not None and (not wanted or current.mapping is not mapping
                                    or current.concurrency != concurrency(mapping)):
            current.stop()
            del _pollers[mapping.uuid]
            current = None
        if wanted and current is None:
            poller = _pollers[mapping.uuid] = Poller(mapping)
            poller.start()


def _detach_from_queue(backend, mapping) -> None:
    """moto invokes a mapping's function from SendMessage itself: the poller does it instead."""
    sqs = hooks.resolve("sqs.backends")[backend.account_id][backend.region_name]
    for queue in list(sqs.queues.values()):
        if queue.lambda_event_source_mappings.get(mapping.function_arn) is mapping:
            del queue.lambda_event_source_mappings[mapping.function_arn]


def _refuse_a_short_visibility_timeout(backend, spec) -> None:
    """AWS refuses to map an SQS queue whose visibility timeout is shorter than the function's timeout: a batch
    still running would be delivered again. (Lowering either afterwards is allowed, and causes just that.)"""
    arn = str(spec.get("EventSourceArn") or "")
    if arn.split(":")[2:3] != ["sqs"]:
        return
    from moto.awslambda.exceptions import InvalidParameterValueException

    try:
        function = backend.get_function(spec["FunctionName"])
        queue = next(q for q in hooks.resolve("sqs.backends")[backend.account_id][backend.region_name].queues.values()
                     if q.queue_arn == arn)
    except Exception:  # noqa: BLE001 - moto's own call says what is missing
        return
    visibility = int(queue.visibility_timeout if queue.visibility_timeout is not None else 30)
    timeout = int(getattr(function, "timeout", 3) or 3)
    if visibility < timeout:
        raise InvalidParameterValueException(
            f"Queue visibility timeout: {visibility} seconds is less than Function timeout: {timeout} seconds")


def _create(original):
    def create_event_source_mapping(self, spec):
        _refuse_a_short_visibility_timeout(self, spec)
        mapping = original(self, spec)
        _detach_from_queue(self, mapping)
        _sync(mapping)
        return mapping

    return create_event_source_mapping


def _update(original):
    def update_event_source_mapping(self, uuid, spec):
        mapping = original(self, uuid, spec)
        if mapping is not None:
            _sync(mapping)
        return mapping

    return update_event_source_mapping


def _delete(original):
    def delete_event_source_mapping(self, uuid):
        mapping = original(self, uuid)
        with _lock:
            poller = _pollers.pop(uuid, None)
        if poller is not None:
            poller.stop()
        return mapping

    return delete_event_source_mapping


def install() -> None:
    hooks.replace("lambda.create_event_source_mapping", _create(hooks.original("lambda.create_event_source_mapping")))
    hooks.replace("lambda.update_event_source_mapping", _update(hooks.original("lambda.update_event_source_mapping")))
    hooks.replace("lambda.delete_event_source_mapping", _delete(hooks.original("lambda.delete_event_source_mapping")))


def shutdown() -> None:
    """Stop every poller (before the Lambda workers stop, so none starts a new one)."""
    with _lock:
        pollers = list(_pollers.values())
        _pollers.clear()
    for poller in pollers:
        poller.stop()
    for poller in pollers:
        for thread in poller.threads:
            thread.join(timeout=2)
