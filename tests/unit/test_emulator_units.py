"""Pure parts of the emulator's extensions: EventBridge input transformation, JSONata, time scale."""

from __future__ import annotations

import json

import pytest

from securecart_lab.emulator import events, timescale
from securecart_lab.emulator.stepfunctions import eval_jsonata

EVENT = events.aws_event({
    "id": "e-1", "detail-type": "OrderPlaced", "source": "securecart.orders", "account": "123456789012",
    "time": 0, "region": "us-east-1", "resources": [], "detail": {"order_id": "o-1", "total": 9.5, "tags": ["x"]},
})


def test_aws_event_formats_time_as_iso():
    assert EVENT["time"] == "1970-01-01T00:00:00Z"
    assert EVENT["version"] == "0"


def test_whole_event_by_default():
    assert json.loads(events.transform({}, EVENT)) == EVENT


def test_input_wins_over_everything():
    assert events.transform({"Input": '{"a": 1}', "InputPath": "$.detail"}, EVENT) == '{"a": 1}'


def test_input_path():
    assert json.loads(events.transform({"InputPath": "$.detail"}, EVENT)) == EVENT["detail"]


def test_input_transformer_quoted_and_bare_placeholders():
    target = {"InputTransformer": {
        "InputPathsMap": {"id": "$.detail.order_id", "total": "$.detail.total", "tags": "$.detail.tags"},
        "InputTemplate": '{"text": "order <id> costs <total>", "id": "<id>", "total": <total>, "tags": <tags>}'}}
    assert json.loads(events.transform(target, EVENT)) == {
        "text": "order o-1 costs 9.5", "id": "o-1", "total": 9.5, "tags": ["x"]}


def test_input_transformer_plain_text_template():
    target = {"InputTransformer": {"InputPathsMap": {"id": "$.detail.order_id"}, "InputTemplate": '"Order <id> placed"'}}
    assert json.loads(events.transform(target, EVENT)) == "Order o-1 placed"


def test_input_transformer_whole_event_placeholder():
    target = {"InputTransformer": {"InputTemplate": '{"event": <aws.events.event.json>}'}}
    assert json.loads(events.transform(target, EVENT)) == {"event": EVENT}


def test_jsonata_values_are_plain_json():
    assert eval_jsonata('($x := [1, 2, 3]; $x[$ > 1])') == [2, 3]
    assert eval_jsonata('{"a": 1 + 1}') == {"a": 2}
    assert eval_jsonata('($x := {"a": 1}; $x.b)') is None


def test_jsonata_aws_functions():
    assert len(eval_jsonata("$uuid()")) == 36
    assert eval_jsonata('$hash("abc", "SHA-256")').startswith("ba7816bf")


def test_jsonata_error_is_a_query_evaluation_error():
    from moto.stepfunctions.parser.asl.jsonata.jsonata import JSONataException

    with pytest.raises(JSONataException) as info:
        eval_jsonata("$notAFunction(1)")
    assert info.value.error == "States.QueryEvaluationError"


@pytest.mark.parametrize(("raw", "expected"), [(None, 1.0), ("0.01", 0.01), ("bad", 1.0), ("-2", 1.0)])
def test_time_scale(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv("SECURECART_TIME_SCALE", raising=False)
    else:
        monkeypatch.setenv("SECURECART_TIME_SCALE", raw)
    assert timescale.scale() == expected
    assert timescale.scaled(10) == pytest.approx(10 * expected)


def test_eventbridge_retry_backoff_grows_with_jitter_and_is_capped(monkeypatch):
    monkeypatch.setenv("SECURECART_TIME_SCALE", "1")
    for retry, (low, high) in enumerate([(0.5, 1), (1, 2), (2, 4), (4, 8)]):
        delays = [events._backoff(retry) for _ in range(50)]
        assert all(low <= d <= high for d in delays), (retry, delays)
        assert len(set(delays)) > 1  # jitter
    assert max(events._backoff(30) for _ in range(50)) <= 300
    monkeypatch.setenv("SECURECART_TIME_SCALE", "0.01")
    assert events._backoff(3) <= 0.08


@pytest.mark.parametrize("error_type, code, retriable", [
    ("ResourceNotFoundException", "NO_RESOURCE", False),
    ("StateMachineDoesNotExist", "NO_RESOURCE", False),
    ("AWS.SimpleQueueService.NonExistentQueue", "NO_RESOURCE", False),
    ("AccessDeniedException", "NO_PERMISSIONS", False),
    ("ThrottlingException", "THROTTLING", True),
    ("InvalidExecutionInput", "INVALID_JSON", False),
    ("InvalidParameterValue", "INVALID_PARAMETER", False),
])
def test_eventbridge_classifies_target_errors_as_aws_does(error_type, code, retriable):
    class ServiceError(Exception):
        pass

    error = ServiceError("boom")
    error.error_type, error.message, error.code = error_type, "boom", 400
    classified = events._classify(error)
    assert (classified.code, classified.retriable) == (code, retriable)
    internal = events._classify(RuntimeError("engine bug"))
    assert (internal.code, internal.retriable) == ("INTERNAL_ERROR", True)


@pytest.mark.parametrize("response, failed", [
    (b'{"batchItemFailures": []}', set()),
    (b'{"batchItemFailures": null}', set()),
    (b"{}", set()),
    (b"null", set()),
    (b'{"batchItemFailures": [{"itemIdentifier": "m-2"}]}', {"m-2"}),
    (b'{"batchItemFailures": [{"itemIdentifier": "m-9"}]}', None),  # not in the batch: the whole batch failed
    (b'{"batchItemFailures": [{"itemIdentifier": ""}]}', None),
    (b'{"batchItemFailures": [{"itemId": "m-1"}]}', None),
    (b"not json", None),
])
def test_batch_item_failures_follow_aws_rules(response, failed):
    from securecart_lab.emulator import event_sources

    assert event_sources._batch_item_failures(response, {"m-1", "m-2"}) == failed


def test_event_source_mapping_concurrency_follows_scaling_config():
    from types import SimpleNamespace

    from securecart_lab.emulator.event_sources import concurrency

    assert concurrency(SimpleNamespace(scaling_config=None)) == 2
    assert concurrency(SimpleNamespace(scaling_config={"MaximumConcurrency": 3})) == 3
    assert concurrency(SimpleNamespace(scaling_config={"MaximumConcurrency": 1000})) == 5
