"""Turn a Step Functions execution history (GetExecutionHistory events) into a tree of state runs:
what ran, inside which Parallel branch or Map iteration, for how long, with how many attempts and which errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

_SCHEDULED = ("TaskScheduled", "LambdaFunctionScheduled", "ActivityScheduled")
_FAILED = ("TaskFailed", "TaskTimedOut", "LambdaFunctionFailed", "LambdaFunctionTimedOut", "LambdaFunctionStartFailed",
           "TaskSubmitFailed", "TaskStartFailed", "ActivityFailed", "ActivityTimedOut")
_FORKS = ("ParallelStateStarted", "MapIterationStarted")


@dataclass
class StateRun:
    """One state's run: entered, (maybe) exited, its task attempts and errors, and any nested branches."""

    name: str
    type: str  # Task, Parallel, Map, Choice, Pass, Wait, Succeed, Fail
    entered: datetime
    exited: datetime | None = None
    attempts: int = 0
    errors: list[str] = field(default_factory=list)
    branches: list[list["StateRun"]] = field(default_factory=list)
    resource: str | None = None  # e.g. "lambda:invoke validate-order"
    container: list | None = field(default=None, repr=False)

    @property
    def seconds(self) -> float | None:
        return None if self.exited is None else (self.exited - self.entered).total_seconds()

    @property
    def retries(self) -> int:
        return max(0, self.attempts - 1)

    @property
    def outcome(self) -> str:
        """succeeded, caught (failed but handled), failed, or running."""
        if self.type == "Fail":
            return "failed"
        if self.exited is None:
            return "failed" if self.errors else "running"
        failed_attempts = len(self.errors)
        return "caught" if self.attempts and failed_attempts >= self.attempts else "succeeded"


@dataclass
class ExecutionTrace:
    states: list[StateRun]
    status: str
    started: datetime | None
    stopped: datetime | None
    error: str | None = None

    @property
    def seconds(self) -> float | None:
        if self.started is None or self.stopped is None:
            return None
        return (self.stopped - self.started).total_seconds()


def _error_text(details: dict) -> str:
    error, cause = details.get("error") or "Error", details.get("cause") or ""
    try:
        cause = json.loads(cause).get("errorMessage", cause)
    except (ValueError, AttributeError):
        pass
    return f"{error}: {cause}" if cause else error


def _resource(details: dict) -> str | None:
    resource = f"{details.get('resourceType', '')}:{details.get('resource', '')}".strip(":")
    try:
        function = json.loads(details.get("parameters") or "{}").get("FunctionName")
    except ValueError:
        function = None
    if isinstance(function, str):
        resource += f" {function.rsplit(':function:', 1)[-1]}"
    return resource or None


def history(sfn, execution_arn: str) -> list[dict]:
    """Every event of an execution (GetExecutionHistory, all pages)."""
    events, token = [], None
    while True:
        page = sfn.get_execution_history(executionArn=execution_arn, maxResults=1000, **({"nextToken": token} if token else {}))
        events += page["events"]
        token = page.get("nextToken")
        if not token:
            return events


def build(events: list[dict]) -> ExecutionTrace:
    """The tree for one execution's history events (as boto3 returns them, oldest first)."""
    top: list[StateRun] = []
    by_event: dict[int, StateRun] = {}  # event id -> the run it belongs to
    forks: dict[int, StateRun] = {}  # ParallelStateStarted / MapIterationStarted id -> Parallel/Map run
    open_runs: list[StateRun] = []
    status, started, stopped, error = "RUNNING", None, None, None

    for event in events:
        kind, event_id, previous = event["type"], event["id"], event.get("previousEventId", 0)
        when = event["timestamp"]
        if kind == "ExecutionStarted":
            started = when
        elif kind.startswith("Execution") and kind != "ExecutionStarted":
            status, stopped = kind.removeprefix("Execution").upper(), when
            details = event.get("executionFailedEventDetails") or event.get("executionTimedOutEventDetails") \
                or event.get("executionAbortedEventDetails") or {}
            error = _error_text(details) if details else None
        elif kind.endswith("StateEntered"):
            run = StateRun(name=event["stateEnteredEventDetails"]["name"], type=kind.removesuffix("StateEntered"),
                           entered=when)
            if previous in forks:
                parent = forks[previous]
                container: list[StateRun] = []
                parent.branches.append(container)
            elif previous in by_event:
                container = by_event[previous].container
            else:
                container = top
            run.container = container
            container.append(run)
            open_runs.append(run)
            by_event[event_id] = run
        elif kind.endswith("StateExited"):
            name = event["stateExitedEventDetails"]["name"]
            run = next((r for r in reversed(open_runs) if r.name == name), None)
            if run is not None:
                run.exited = when
                open_runs.remove(run)
                by_event[event_id] = run
        elif kind in _FORKS:
            owner = by_event.get(previous) or next((r for r in reversed(open_runs) if r.type in ("Parallel", "Map")), None)
            if owner is not None:
                forks[event_id] = owner
                by_event[event_id] = owner
        else:
            run = by_event.get(previous)
            if run is None:
                continue
            by_event[event_id] = run
            if kind in _SCHEDULED:
                run.attempts += 1
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                run.resource = run.resource or _resource(details)
            elif kind in _FAILED:
                details = next((v for k, v in event.items() if k.endswith("EventDetails")), {})
                run.errors.append(_error_text(details))
    for run in _walk(top):
        run.container = None
    return ExecutionTrace(states=top, status=status, started=started, stopped=stopped, error=error)


def _walk(runs: list[StateRun]):
    for run in runs:
        yield run
        for branch in run.branches:
            yield from _walk(branch)


# --- EXPRESS workflows: no execution history, the log is the history -------------------------------------------------


def log_group_of(machine: dict) -> str | None:
    """The log group an EXPRESS state machine logs its executions to (DescribeStateMachine's loggingConfiguration),
    or None when it logs nothing (or not everything: a trace needs level ALL)."""
    logging = machine.get("loggingConfiguration") or {}
    for destination in logging.get("destinations") or []:
        arn = (destination.get("cloudWatchLogsLogGroup") or {}).get("logGroupArn", "")
        if ":log-group:" in arn and logging.get("level") == "ALL":
            return arn.split(":log-group:", 1)[1].removesuffix(":*")
    return None


def _details_key(kind: str) -> str:
    for suffix in ("StateEntered", "StateExited"):
        if kind.endswith(suffix):
            return f"state{suffix.removeprefix('State')}EventDetails"
    return f"{kind[:1].lower()}{kind[1:]}EventDetails"


def history_from_log(records: list[dict]) -> list[dict]:
    """An execution's log records (Step Functions' log format: id, previous_event_id, event_timestamp, type,
    details) as GetExecutionHistory events, oldest first."""
    events = []
    for record in records:
        kind = record["type"]
        event = {"id": int(record["id"]), "previousEventId": int(record.get("previous_event_id") or 0), "type": kind,
                 "timestamp": datetime.fromtimestamp(int(record["event_timestamp"]) / 1000).astimezone()}
        if record.get("details"):
            event[_details_key(kind)] = record["details"]
        events.append(event)
    return sorted(events, key=lambda e: e["id"])


def express_executions(logs, group: str) -> tuple[list[dict], dict[str, list[dict]]]:
    """Executions found in an EXPRESS state machine's log group, newest first, in ListExecutions' shape, and each
    one's history events."""
    records: dict[str, list[dict]] = {}
    for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group):
        for event in page["events"]:
            try:
                record = json.loads(event["message"])
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("execution_arn") and record.get("type"):
                records.setdefault(record["execution_arn"], []).append(record)
    executions, histories = [], {}
    for arn, found in records.items():
        events = history_from_log(found)
        histories[arn] = events
        trace = build(events)
        execution = {"executionArn": arn, "name": arn.split(":")[-1] if ":execution:" in arn else arn.split(":")[-2],
                     "status": trace.status, "startDate": trace.started or events[0]["timestamp"]}
        if trace.stopped:
            execution["stopDate"] = trace.stopped
        executions.append(execution)
    executions.sort(key=lambda e: e["startDate"], reverse=True)
    return executions, histories
