"""Step Functions API actions moto 5.2 lacks or answers unlike AWS.

Added: StartSyncExecution (EXPRESS), TestState (INFO/DEBUG/TRACE), ValidateStateMachineDefinition (AWS's
diagnostics), RedriveExecution, Publish/List/DeleteStateMachineVersion. Answered as AWS does: DescribeExecution (output always JSON, redrive fields),
DescribeStateMachineForExecution (the definition the execution ran), StopExecution (immediate, with error and
cause), SendTaskFailure (keeps the cause). Definitions are checked by stepfunctions_definition.py.
"""

from __future__ import annotations

import copy
import datetime
import json
import threading
import uuid
from typing import Any

from securecart_lab.emulator import hooks
from securecart_lab.emulator.stepfunctions_definition import Diagnostic, diagnose, invalid_definition_message


def _error(code: str, message: str, status: int = 400):
    from moto.core.exceptions import AWSError

    return AWSError(message, exception_type=code, status=status)


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


# --- definitions -------------------------------------------------------------------------------------------------


def validate_definition(definition: str) -> None:
    """CreateStateMachine/UpdateStateMachine: AWS's InvalidDefinition with every ERROR diagnostic."""
    errors = [d for d in diagnose(definition) if d.severity == "ERROR"]
    if errors:
        raise _error("InvalidDefinition", invalid_definition_message(errors))


def _diagnostic_shape(diagnostic: Diagnostic) -> dict:
    shape = {"severity": diagnostic.severity, "code": diagnostic.code, "message": diagnostic.message}
    if diagnostic.location:
        shape["location"] = diagnostic.location
    return shape


# --- response actions ----------------------------------------------------------------------------------------------


def _execution(response, arn: str):
    return response.stepfunction_backend.describe_execution(arn)


def _redrive_fields(execution) -> dict:
    count = getattr(execution, "securecart_redrive_count", 0)
    fields: dict[str, Any] = {"redriveCount": count}
    if count:
        fields["redriveDate"] = execution.securecart_redrive_date
    status = str(execution.exec_status.value if hasattr(execution.exec_status, "value") else execution.exec_status)
    if status in ("FAILED", "ABORTED", "TIMED_OUT"):
        fields["redriveStatus"] = "REDRIVABLE"
    elif status == "SUCCEEDED":
        fields["redriveStatus"] = "NOT_REDRIVABLE"
        fields["redriveStatusReason"] = "Execution is SUCCEEDED and cannot be redriven"
    return fields


def describe_execution(self):
    from moto.core.responses import ActionResult

    execution = _execution(self, self._get_param("executionArn"))
    if not hasattr(execution, "to_describe_output"):  # plain moto (execution off)
        return hooks.original("sfn.response.describe_execution")(self)
    described = dict(execution.to_describe_output())
    if described.get("status") == "SUCCEEDED":
        described["output"] = _json(execution.output)
    if getattr(execution, "securecart_stop", None) is not None:
        described["stopDate"] = execution.securecart_stop
    if described.get("traceHeader") is None:
        described.pop("traceHeader", None)
    described.update(_redrive_fields(execution))
    return ActionResult({k: v for k, v in described.items() if v is not None})


def describe_state_machine_for_execution(self):
    from moto.core.responses import ActionResult

    execution = _execution(self, self._get_param("executionArn"))
    machine = execution.state_machine  # the copy taken when the execution started
    result = {
        "stateMachineArn": machine.arn, "name": machine.name, "definition": machine.definition,
        "roleArn": execution.role_arn, "updateDate": getattr(machine, "update_date", None) or machine.creation_date,
        "loggingConfiguration": getattr(machine, "loggingConfiguration", None) or {"level": "OFF",
                                                                                   "includeExecutionData": False},
        "tracingConfiguration": getattr(machine, "tracingConfiguration", None) or {"enabled": False},
    }
    return ActionResult(result)


def stop_execution(self):
    """Immediate, as on AWS: the execution is ABORTED when the call returns, even in a Wait or a retry interval."""
    from moto.core.responses import ActionResult

    arn = self._get_param("executionArn")
    error, cause = self._get_param("error"), self._get_param("cause")
    execution = _execution(self, arn)
    status = execution.exec_status.value if hasattr(execution.exec_status, "value") else str(execution.exec_status)
    if getattr(execution.state_machine, "type", None) == "EXPRESS":
        raise _error("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
    stop_date = _now()
    if status != "RUNNING":
        return ActionResult({"stopDate": execution.stop_date or stop_date})
    abort(execution, stop_date, error, cause)
    return ActionResult({"stopDate": stop_date})


def abort(execution, stop_date: datetime.datetime, error: str | None, cause: str | None) -> None:
    from moto.stepfunctions.parser.api import ExecutionAbortedEventDetails, ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext

    env = execution.exec_worker.env
    details = ExecutionAbortedEventDetails()
    if error is not None:
        details["error"] = error
    if cause is not None:
        details["cause"] = cause
    execution.securecart_stop = stop_date
    execution.exec_status = ExecutionStatus.ABORTED
    execution.stop_date = stop_date
    execution.error, execution.cause = error, cause
    if env is None:
        return
    history = env.event_manager.get_event_history()
    last_id = history[-1]["id"] if history else 0
    env.event_manager.add_event(
        context=EventHistoryContext(previous_event_id=last_id),
        event_type=HistoryEventType.ExecutionAborted,
        event_details=EventDetails(executionAbortedEventDetails=details),
    )
    env.securecart_aborted = True
    env.set_stop(stop_date=stop_date, cause=cause, error=error)


def send_task_failure(self):
    from moto.core.responses import EmptyResult

    self.stepfunction_backend.send_task_failure(
        self._get_param("taskToken"), error=self._get_param("error"), cause=self._get_param("cause"))
    return EmptyResult()


def send_task_heartbeat(self):
    """AWS accepts a heartbeat for any open task token; moto only for tasks that set HeartbeatSeconds."""
    from moto.core.responses import EmptyResult
    from moto.stepfunctions.parser.api import InvalidToken

    token = self._get_param("taskToken")
    try:
        self.stepfunction_backend.send_task_heartbeat(token)
    except InvalidToken:
        for execution in self.stepfunction_backend._get_executions():
            env = getattr(execution.exec_worker, "env", None)
            if env is not None and token in getattr(env.callback_pool_manager, "_pool", {}):
                return EmptyResult()
        raise
    return EmptyResult()


def _state_machine(response, arn: str):
    from moto.stepfunctions.exceptions import StateMachineDoesNotExist

    try:
        return response.stepfunction_backend.describe_state_machine(arn)
    except StateMachineDoesNotExist:
        raise
    except Exception as exc:  # a malformed ARN
        raise _error("InvalidArn", f"Invalid Arn: '{arn}'") from exc


def start_sync_execution(self):
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.backend.execution import SyncExecution

    arn = self._get_param("stateMachineArn")
    machine = _state_machine(self, arn)
    if machine.type != "EXPRESS":
        raise _error("StateMachineTypeNotSupported", "This operation is not supported by this type of state machine")
    execution_input = self._get_param("input") or "{}"
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise _error("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from exc
    name = self._get_param("name") or str(uuid.uuid4())
    snapshot = copy.deepcopy(machine, {id(machine.executions): [], id(machine.backend): machine.backend})
    backend = self.stepfunction_backend
    execution = SyncExecution(
        name=name, sm_type=machine.type, role_arn=machine.roleArn,
        exec_arn=f"{machine.arn.replace(':stateMachine:', ':express:')}:{name}:{uuid.uuid4()}",
        account_id=backend.account_id, region_name=backend.region_name, state_machine=snapshot,
        start_date=_now(), cloud_watch_logging_session=None, input_data=execution_input,
        trace_header=self._get_param("traceHeader"), activity_store={},
    )
    execution.start()
    result = dict(execution.to_start_sync_execution_output())
    if result.get("status") == "SUCCEEDED":
        result["output"] = _json(execution.output)
    else:
        result.pop("output", None)
        result.pop("outputDetails", None)
    result["input"] = execution_input
    result.setdefault("billingDetails", {"billedMemoryUsedInMB": 64, "billedDurationInMilliseconds": 100})
    return ActionResult({k: v for k, v in result.items() if v is not None})


def test_state(self):
    from moto.core.responses import ActionResult
    from moto.stepfunctions.parser.api import InspectionLevel
    from moto.stepfunctions.parser.asl.eval.program_state import ProgramRunning
    from moto.stepfunctions.parser.asl.static_analyser.test_state.test_state_analyser import TestStateStaticAnalyser
    from moto.stepfunctions.parser.backend.state_machine import TestStateMachine
    from moto.stepfunctions.parser.backend.test_state.execution import TestStateExecution

    definition = self._get_param("definition")
    try:
        TestStateStaticAnalyser().analyse(definition)
    except Exception as exc:
        raise _error("InvalidDefinition", f"Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: {exc}'") from exc
    execution_input = self._get_param("input") or "{}"
    try:
        json.loads(execution_input)
    except ValueError as exc:
        raise _error("InvalidExecutionInput", f"Invalid State Machine Execution Input: '{exc}'") from exc
    backend = self.stepfunction_backend
    name = f"TestState-{uuid.uuid4()}"
    arn = f"arn:aws:states:{backend.region_name}:{backend.account_id}:stateMachine:{name}"
    role_arn = self._get_param("roleArn")
    machine = TestStateMachine(name=name, arn=arn, definition=definition, role_arn=role_arn)
    execution = TestStateExecution(
        name=name, role_arn=role_arn, exec_arn=arn.replace(":stateMachine:", ":execution:") + f":{name}",
        account_id=backend.account_id, region_name=backend.region_name, state_machine=machine, start_date=_now(),
        activity_store={}, input_data=execution_input,
    )
    try:
        execution.start()
    except RuntimeWarning:  # moto: a state with Next leaves the program running, which it reports as unsupported
        pass
    level = self._get_param("inspectionLevel") or "INFO"
    env = execution.exec_worker.env
    if isinstance(env.program_state(), ProgramRunning):
        execution.output = env.states.get_input()
        result = {"status": "SUCCEEDED", "nextState": env.next_state_name, "inspectionData": env.inspection_data}
    else:
        result = dict(execution.to_test_state_output(inspection_level=InspectionLevel(level)))
    if result.get("status") == "SUCCEEDED":
        result["output"] = _json(execution.output)
    if level == "INFO":
        result.pop("inspectionData", None)
    elif "inspectionData" in result:
        data = dict(result["inspectionData"])
        if level == "DEBUG":
            data.pop("request", None)
            data.pop("response", None)
        result["inspectionData"] = data
    return ActionResult({k: v for k, v in result.items() if v is not None})


def validate_state_machine_definition(self):
    from moto.core.responses import ActionResult

    definition = self._get_param("definition")
    machine_type = self._get_param("type") or "STANDARD"
    severity = self._get_param("severity") or "ERROR"
    max_results = self._get_param("maxResults") or 100
    diagnostics = diagnose(definition, machine_type)
    failed = any(d.severity == "ERROR" for d in diagnostics)
    if severity == "ERROR":
        diagnostics = [d for d in diagnostics if d.severity == "ERROR"]
    shown = diagnostics[:max_results]
    return ActionResult({"result": "FAIL" if failed else "OK",
                         "diagnostics": [_diagnostic_shape(d) for d in shown],
                         "truncated": len(shown) < len(diagnostics)})


def redrive_execution(self):
    from moto.core.responses import ActionResult

    arn = self._get_param("executionArn")
    execution = _execution(self, arn)
    status = execution.exec_status.value if hasattr(execution.exec_status, "value") else str(execution.exec_status)
    if status not in ("FAILED", "ABORTED", "TIMED_OUT"):
        raise _error("ExecutionNotRedrivable", f"Execution with arn {arn} has status {status} and cannot be redriven")
    date = _now()
    redrive(execution, date)
    return ActionResult({"redriveDate": date})


def _failed_state(execution) -> tuple[str, Any]:
    """The top-level state the execution stopped in, and that state's input."""
    definition = json.loads(execution.state_machine.definition)
    top_level = set(definition.get("States", {}))
    for event in reversed(execution.exec_worker.env.event_manager.get_event_history()):
        details = event.get("stateEnteredEventDetails")
        if details and details.get("name") in top_level:
            return details["name"], json.loads(details.get("input") or "null")
    return definition["StartAt"], execution.input_data


def redrive(execution, date: datetime.datetime) -> None:
    """Run the execution again from the state it failed in, with that state's input, continuing its history."""
    from moto.stepfunctions.parser.api import ExecutionRedrivenEventDetails, ExecutionStatus, HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.eval.event.event_manager import EventHistoryContext
    old_env = execution.exec_worker.env
    state_name, state_input = _failed_state(execution)
    definition = json.loads(execution.state_machine.definition)
    definition["StartAt"] = state_name
    count = getattr(execution, "securecart_redrive_count", 0) + 1
    worker = execution._get_start_execution_worker()

    def logic():
        from securecart_lab.emulator.stepfunctions import parse_program

        program = parse_program(json.dumps(definition))
        env = worker._get_evaluation_environment()
        env.event_manager = old_env.event_manager
        history = old_env.event_manager.get_event_history()
        env.event_history_context = EventHistoryContext(previous_event_id=history[-1]["id"] if history else 0)
        env.states.context_object.context_object_data["Execution"]["RedriveCount"] = count
        env.states.reset(state_input)
        worker.env = env
        env.event_manager.add_event(
            context=env.event_history_context, event_type=HistoryEventType.ExecutionRedriven,
            event_details=EventDetails(executionRedrivenEventDetails=ExecutionRedrivenEventDetails(redriveCount=count)),
        )
        program.eval(env)
        worker._execution_communication.terminated()

    execution.securecart_redrive_count = count
    execution.securecart_redrive_date = date
    execution.securecart_stop = None
    execution.error = execution.cause = execution.stop_date = None
    execution.exec_worker = worker
    execution.exec_status = ExecutionStatus.RUNNING
    threading.Thread(target=logic, name="sfn-redrive", daemon=True).start()


ACTIONS = {
    "sfn.response.describe_execution": describe_execution,
    "sfn.response.describe_state_machine_for_execution": describe_state_machine_for_execution,
    "sfn.response.stop_execution": stop_execution,
    "sfn.response.send_task_failure": send_task_failure,
    "sfn.response.send_task_heartbeat": send_task_heartbeat,
}
def _versioned(response, arn: str):
    machine = _state_machine(response, arn)
    if not hasattr(machine, "versions"):
        raise _error("ValidationException", f"Invalid Arn: '{arn}' is not a state machine ARN")
    return machine


def publish_state_machine_version(self):
    from moto.core.responses import ActionResult

    machine = _versioned(self, self._get_param("stateMachineArn"))
    revision = self._get_param("revisionId")
    latest = machine.latest_version
    if latest is not None and latest.definition == machine.definition and latest.roleArn == machine.roleArn:
        return ActionResult({"creationDate": latest.creation_date, "stateMachineVersionArn": latest.arn})
    if revision is not None and latest is not None and revision != str(latest.version):
        raise _error("ConflictException", f"Failed to publish the State Machine version for revision {revision}. "
                                          "The current State Machine revision is different.")
    machine.publish(self._get_param("description"))
    version = machine.latest_version
    return ActionResult({"creationDate": version.creation_date, "stateMachineVersionArn": version.arn})


def list_state_machine_versions(self):
    from moto.core.responses import ActionResult

    machine = _versioned(self, self._get_param("stateMachineArn"))
    versions = sorted(machine.versions.values(), key=lambda v: v.version, reverse=True)
    return ActionResult({"stateMachineVersions": [
        {"stateMachineVersionArn": v.arn, "creationDate": v.creation_date} for v in versions]})


def delete_state_machine_version(self):
    from moto.core.responses import EmptyResult

    arn = self._get_param("stateMachineVersionArn")
    source, _, number = arn.rpartition(":")
    if not number.isdigit():
        raise _error("ValidationException", f"Invalid Arn: '{arn}' is not a state machine version ARN")
    machine = _versioned(self, source)
    machine.versions.pop(int(number), None)
    if machine.latest_version is not None and machine.latest_version.version == int(number):
        machine.latest_version = max(machine.versions.values(), key=lambda v: v.version, default=None)
    return EmptyResult()


NEW_ACTIONS = {
    "publish_state_machine_version": publish_state_machine_version,
    "list_state_machine_versions": list_state_machine_versions,
    "delete_state_machine_version": delete_state_machine_version,
    "start_sync_execution": start_sync_execution,
    "test_state": test_state,
    "validate_state_machine_definition": validate_state_machine_definition,
    "redrive_execution": redrive_execution,
}


def install() -> None:
    for name, action in ACTIONS.items():
        hooks.replace(name, action)
    for name, action in NEW_ACTIONS.items():
        hooks.add("sfn.response", name, action)
