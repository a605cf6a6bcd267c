"""securecart_lab.trace: a history becomes a tree with branches, attempts, errors and durations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from rich.console import Console

from securecart_lab import trace
from securecart_lab.commands.trace import render

T0 = datetime(2025, 1, 1, tzinfo=timezone.utc)


def _history(*rows):
    """rows: (type, previousEventId, details) -> events with ids from 1 and 100 ms apart."""
    events = []
    for number, (kind, previous, details) in enumerate(rows, 1):
        event = {"id": number, "previousEventId": previous, "type": kind, "timestamp": T0 + timedelta(milliseconds=100 * number)}
        event.update(details)
        events.append(event)
    return events


def _entered(name):
    return {"stateEnteredEventDetails": {"name": name}}


def _exited(name):
    return {"stateExitedEventDetails": {"name": name}}


def _scheduled(function):
    return {"taskScheduledEventDetails": {"resourceType": "lambda", "resource": "invoke",
                                          "parameters": f'{{"FunctionName": "{function}"}}'}}


def _failed(error, message):
    return {"taskFailedEventDetails": {"error": error, "cause": f'{{"errorMessage": "{message}"}}'}}


HISTORY = _history(
    ("ExecutionStarted", 0, {}),                                   # 1
    ("TaskStateEntered", 0, _entered("Pay")),                      # 2
    ("TaskScheduled", 2, _scheduled("authorize-payment")),         # 3
    ("TaskStarted", 3, {}),                                        # 4
    ("TaskFailed", 4, _failed("PaymentGatewayTimeout", "slow")),   # 5
    ("TaskScheduled", 5, _scheduled("authorize-payment")),         # 6
    ("TaskStarted", 6, {}),                                        # 7
    ("TaskSucceeded", 7, {}),                                      # 8
    ("TaskStateExited", 8, _exited("Pay")),                        # 9
    ("ParallelStateEntered", 9, _entered("Fulfil")),               # 10
    ("ParallelStateStarted", 10, {}),                              # 11
    ("TaskStateEntered", 11, _entered("Notify")),                  # 12
    ("TaskStateEntered", 11, _entered("Reserve")),                 # 13
    ("TaskScheduled", 12, _scheduled("notify-customer")),          # 14
    ("TaskScheduled", 13, _scheduled("reserve-inventory")),        # 15
    ("TaskStateExited", 14, _exited("Notify")),                    # 16
    ("TaskStateExited", 15, _exited("Reserve")),                   # 17
    ("ParallelStateSucceeded", 17, {}),                            # 18
    ("ParallelStateExited", 17, _exited("Fulfil")),                # 19
    ("FailStateEntered", 19, _entered("Stop")),                    # 20
    ("ExecutionFailed", 20, {"executionFailedEventDetails": {"error": "Nope", "cause": "because"}}),  # 21
)


def test_states_branches_attempts_and_errors():
    result = trace.build(HISTORY)
    assert [s.name for s in result.states] == ["Pay", "Fulfil", "Stop"]
    pay, fulfil, stop = result.states
    assert (pay.attempts, pay.retries, pay.outcome) == (2, 1, "succeeded")
    assert pay.errors == ["PaymentGatewayTimeout: slow"]
    assert pay.resource == "lambda:invoke authorize-payment"
    assert abs(pay.seconds - 0.7) < 1e-6
    assert [[s.name for s in branch] for branch in fulfil.branches] == [["Notify"], ["Reserve"]]
    assert fulfil.outcome == "succeeded" and stop.outcome == "failed"
    assert (result.status, result.error) == ("FAILED", "Nope: because")
    assert abs(result.seconds - 2.0) < 1e-6


def test_a_caught_error_is_shown_as_caught():
    result = trace.build(_history(
        ("ExecutionStarted", 0, {}),
        ("TaskStateEntered", 0, _entered("Pay")),
        ("TaskScheduled", 2, _scheduled("authorize-payment")),
        ("TaskFailed", 3, _failed("PaymentDeclinedError", "declined")),
        ("TaskStateExited", 4, _exited("Pay")),
    ))
    assert result.states[0].outcome == "caught"
    assert result.status == "RUNNING" and result.seconds is None


def test_render_prints_the_tree():
    console = Console(width=200, record=True)
    console.print(render({"name": "ord-1"}, trace.build(HISTORY)))
    text = console.export_text()
    assert "ord-1  FAILED in 2.00 s" in text
    assert "2 attempts (1 retries)" in text and "attempt 1: PaymentGatewayTimeout: slow" in text
    assert "branch 2" in text and "Reserve" in text


def _record(number, kind, details=None, arn="arn:aws:states:us-east-1:123456789012:express:fraud:run-1:abc"):
    record = {"id": str(number), "previous_event_id": str(number - 1), "event_timestamp": str(1767225600000 + 50 * number),
              "type": kind, "execution_arn": arn}
    if details is not None:
        record["details"] = details
    return record


def test_an_express_workflows_log_records_become_its_history_and_tree():
    # Out of order, as a log query may return them; states entered and exited, a failed task, the failed execution.
    records = [
        _record(5, "TaskFailed", {"error": "States.TaskFailed", "cause": "AccessDenied: dynamodb:UpdateItem"}),
        _record(1, "ExecutionStarted", {"input": "{}"}),
        _record(2, "TaskStateEntered", {"name": "HoldOrder"}),
        _record(3, "TaskScheduled", {"resource": "updateItem", "resourceType": "dynamodb"}),
        _record(6, "ExecutionFailed", {"error": "States.TaskFailed", "cause": "AccessDenied: dynamodb:UpdateItem"}),
        _record(4, "TaskStarted", {"resource": "updateItem", "resourceType": "dynamodb"}),
    ]
    events = trace.history_from_log(records)
    assert [e["id"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert events[1]["stateEnteredEventDetails"] == {"name": "HoldOrder"}
    assert events[2]["taskScheduledEventDetails"]["resource"] == "updateItem"
    built = trace.build(events)
    assert built.status == "FAILED" and "dynamodb:UpdateItem" in built.error
    assert built.states[0].name == "HoldOrder" and built.states[0].resource == "dynamodb:updateItem"
    assert built.states[0].errors == ["States.TaskFailed: AccessDenied: dynamodb:UpdateItem"]


def test_an_express_workflow_without_full_logging_has_nothing_to_trace():
    group = "arn:aws:logs:us-east-1:123456789012:log-group:/aws/vendedlogs/states/fraud:*"
    destinations = [{"cloudWatchLogsLogGroup": {"logGroupArn": group}}]
    assert trace.log_group_of({"loggingConfiguration": {"level": "ALL", "destinations": destinations}}) \
        == "/aws/vendedlogs/states/fraud"
    assert trace.log_group_of({"loggingConfiguration": {"level": "ERROR", "destinations": destinations}}) is None
    assert trace.log_group_of({}) is None
