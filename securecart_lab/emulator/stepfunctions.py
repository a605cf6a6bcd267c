"""Step Functions: close moto 5.2's execution gaps (names, JSONata, time scale, execution logs)."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
import uuid
from types import SimpleNamespace
from typing import Any

import jsonata

from securecart_lab.emulator import hooks
from securecart_lab.emulator.timescale import scaled

LOG = logging.getLogger(__name__)


def install() -> None:
    """Turn execution on and apply every Step Functions patch."""
    hooks.resolve("config")["stepfunctions"] = {"execute_state_machine": True}
    _install_names()
    _install_definition_limit()
    _install_jsonata()
    _install_time_scale()
    _install_logging()


# --- definition size -------------------------------------------------------------------------------------------

# CreateStateMachine/UpdateStateMachine: "definition" has a maximum length of 1,048,576 (the API reference).
MAX_DEFINITION = 1_048_576


def _install_definition_limit() -> None:
    from moto.stepfunctions.exceptions import ValidationException

    validate = hooks.original("sfn.validate_definition")

    def validate_with_limit(definition: str):
        if definition is not None and len(definition) > MAX_DEFINITION:
            raise ValidationException(
                "1 validation error detected: Value at 'definition' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_DEFINITION}")
        return validate(definition=definition)

    hooks.replace("sfn.validate_definition", staticmethod(validate_with_limit))


# --- execution names -------------------------------------------------------------------------------------------


def _install_names() -> None:
    start_execution = hooks.original("sfn.start_execution")

    def start_execution_named(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        return start_execution(
            self, state_machine_arn, name=name or str(uuid.uuid4()), execution_input=execution_input,
            trace_header=trace_header,
        )

    hooks.replace("sfn.start_execution", start_execution_named)


# --- JSONata ---------------------------------------------------------------------------------------------------


def _hash(value: str, algorithm: str = "SHA-256") -> str:
    return hashlib.new(algorithm.replace("-", "").lower(), str(value).encode()).hexdigest()


def eval_jsonata(expression: str) -> Any:
    """Evaluate a JSONata expression with jsonata-python; results are plain JSON values."""
    error_type = hooks.resolve("sfn.jsonata.exception")
    try:
        compiled = jsonata.Jsonata(expression)
        compiled.register_lambda("uuid", lambda: str(uuid.uuid4()))
        compiled.register_lambda("hash", _hash)
        result = compiled.evaluate(None)
    except Exception as exc:  # jsonata raises JException and Python errors alike
        raise error_type("States.QueryEvaluationError", str(exc)) from exc
    return json.loads(json.dumps(result)) if result is not None else None


def encode_declarations(bindings: dict[str, Any]) -> str:
    """`$name:=value;` for each binding, every value as JSON (moto leaves quotes in strings unescaped)."""
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    return "".join(f"{name}:={to_json_str(value, separators=(',', ':'))};" for name, value in bindings.items())


def _install_jsonata() -> None:
    for name in ("sfn.jsonata", "sfn.jsonata.string_expression", "sfn.jsonata.validations"):
        hooks.replace(name, eval_jsonata)
    for name in ("sfn.jsonata.declarations.states", "sfn.jsonata.declarations.variables"):
        hooks.replace(name, encode_declarations)
    stubs = hooks.resolve("sfn.jsonata.intrinsics")
    for name in ("$uuid", "$hash"):
        stubs.pop(name, None)


# --- time scale ------------------------------------------------------------------------------------------------


def _wait_interval(self, env, wait_seconds) -> None:
    deadline = time.monotonic() + scaled(wait_seconds)
    while env.is_running():
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        env.program_state_event.wait(remaining)


def _retry_sleep(seconds: float) -> None:
    time.sleep(scaled(seconds))


def _install_time_scale() -> None:
    hooks.replace("sfn.wait_interval", _wait_interval)
    hooks.replace("sfn.retry_time", SimpleNamespace(sleep=_retry_sleep, time=time.time))


# --- execution logs --------------------------------------------------------------------------------------------


def _logging_session_class():
    base = hooks.resolve("sfn.logging_session")

    class ExecutionLogWriter(base):
        """Writes history events to the log group named in the state machine's loggingConfiguration.

        moto's own session passes its history records where the logs backend expects {timestamp, message}
        and never creates the stream, so the kit writes the events itself.
        """

        _lock = threading.Lock()

        def publish_history_log(self, history_log) -> None:
            from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

            config = self.configuration
            message = {"timestamp": int(time.time() * 1000), "message": to_json_str(history_log)}
            try:
                backend = hooks.resolve("logs.backends")[config.log_account_id][config.log_region]
                with self._lock:
                    backend.ensure_log_group(config.log_group_name)
                    group = backend.groups[config.log_group_name]
                    if config.log_stream_name not in group.streams:
                        backend.create_log_stream(config.log_group_name, config.log_stream_name)
                    backend.put_log_events(config.log_group_name, config.log_stream_name, [message])
            except Exception as exc:  # logging must never fail an execution
                LOG.warning("execution log for %s not written: %s", self.execution_arn, exc)

    return ExecutionLogWriter


def _install_logging() -> None:
    start_worker = hooks.original("sfn.start_worker")
    configuration_type = hooks.resolve("sfn.logging_configuration")
    writer = _logging_session_class()

    def start_worker_with_logs(self):
        logging_config = getattr(self.state_machine, "loggingConfiguration", None) or {}
        if self._cloud_watch_logging_session is None and logging_config.get("level", "OFF") != "OFF":
            config = configuration_type.from_logging_configuration(
                state_machine_arn=self.state_machine.arn,
                logging_configuration={"includeExecutionData": False, **logging_config},
            )
            if config is not None:
                config.log_stream_name = f"states/{self.state_machine.name}/{self.name}"
                self._cloud_watch_logging_session = writer(execution_arn=self.exec_arn, configuration=config)
        return start_worker(self)

    hooks.replace("sfn.start_worker", start_worker_with_logs)
