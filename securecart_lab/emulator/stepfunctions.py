"""Step Functions: close moto 5.2's execution gaps (names, JSONata, time scale, execution logs)."""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import re
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
    _install_aws_answers()


# --- definition size -------------------------------------------------------------------------------------------

# CreateStateMachine/UpdateStateMachine: "definition" has a maximum length of 1,048,576 (the API reference).
MAX_DEFINITION = 1_048_576


def _install_definition_limit() -> None:
    from moto.stepfunctions.exceptions import ValidationException

    from securecart_lab.emulator.stepfunctions_api import validate_definition

    def validate_with_limit(definition: str):
        if definition is not None and len(definition) > MAX_DEFINITION:
            raise ValidationException(
                "1 validation error detected: Value at 'definition' failed to satisfy constraint: "
                f"Member must have length less than or equal to {MAX_DEFINITION}")
        validate_definition(definition)

    hooks.replace("sfn.validate_definition", staticmethod(validate_with_limit))


# --- execution names -------------------------------------------------------------------------------------------


def _install_names() -> None:
    start_execution = hooks.original("sfn.start_execution")
    validate_name = hooks.resolve("sfn.validate_name")

    def start_execution_named(self, state_machine_arn, name=None, execution_input=None, trace_header=None):
        from moto.core.exceptions import AWSError

        if execution_input is not None:
            try:
                json.loads(execution_input)
            except ValueError as exc:
                raise AWSError(f"Invalid State Machine Execution Input: '{exc}'", "InvalidExecutionInput") from exc
        if name:
            validate_name(self, name)  # "bad name" or "a:b" was accepted, and broke the execution's ARN
        execution = start_execution(
            self, state_machine_arn, name=name or str(uuid.uuid4()), execution_input=execution_input,
            trace_header=trace_header,
        )
        if getattr(execution.state_machine, "type", None) == "EXPRESS" and ":express:" not in execution.exec_arn:
            # Express executions are named arn:...:express:<machine>:<name>:<id> on AWS.
            machine_arn = execution.state_machine.arn
            execution.exec_arn = execution.execution_arn = (
                f"{machine_arn.replace(':stateMachine:', ':express:')}:{execution.name}:{uuid.uuid4()}")
        return execution

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
    """A retry interval, which a StopExecution ends at once (the retrier's environment is set by `retrier`)."""
    env = getattr(_retrying, "env", None)
    if env is None:
        time.sleep(scaled(seconds))
        return
    _wait_interval(None, env, seconds)


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


# --- AWS's answers: errors, causes, the context object, stop, logs ---------------------------------------------------


def aws_timestamp(value: datetime.datetime) -> str:
    """2026-01-01T00:00:00.000Z, as the context object and Step Functions write times."""
    return value.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def _install_json_encoder() -> None:
    base = hooks.resolve("sfn.json_encoder")

    class CompactEncoder(base):
        def __init__(self, *args, **kwargs):
            if kwargs.get("separators") is None and kwargs.get("indent") is None:
                kwargs["separators"] = (",", ":")
            super().__init__(*args, **kwargs)

        def default(self, o):
            if isinstance(o, datetime.datetime):
                return aws_timestamp(o)
            return super().default(o)

    hooks.replace("sfn.json_encoder", CompactEncoder)


def _install_error_matching() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType

    evaluate = hooks.original("sfn.error_equals")
    states_all = StatesErrorName(typ=StatesErrorNameType.StatesALL)

    def error_equals(self, env) -> None:
        error_name = env.stack[-1]
        if (isinstance(error_name, StatesErrorName) and error_name.typ == StatesErrorNameType.StatesRuntime
                and states_all in self.error_names):
            env.stack.pop()
            env.stack.append(False)  # "A retry or catch on States.ALL won't catch States.Runtime errors."
            return
        evaluate(self, env)

    hooks.replace("sfn.error_equals", error_equals)


def _failure(env, error: str, cause: str | None, typ=None, event_type=None, details_key="taskFailedEventDetails"):
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName

    details = {"error": error}
    if cause is not None:
        details["cause"] = cause
    return FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=typ) if typ is not None else CustomErrorName(error),
        event_type=event_type or HistoryEventType.TaskFailed, event_details=EventDetails(**{details_key: details})))


def _install_choice() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType

    evaluate = hooks.original("sfn.choice_eval")

    def choice(self, env) -> None:
        if self.default_state is None:
            for rule in self.choices_decl.rules:
                rule.eval(env)
                if env.stack.pop() is True:
                    break
            else:
                raise _failure(env, "States.NoChoiceMatched", "No Matches!", typ=StatesErrorNameType.StatesNoChoiceMatched)
        evaluate(self, env)

    hooks.replace("sfn.choice_eval", choice)


def _install_task_errors() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEventException
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.callback.callback import HeartbeatTimeoutError

    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str
    from moto.stepfunctions.parser.asl.utils.json_path import NoSuchJsonPathError

    evaluate_binding = hooks.original("sfn.payload_binding")

    def binding(self, env):
        try:
            return evaluate_binding(self, env)
        except NoSuchJsonPathError as exc:
            if not hasattr(exc, "securecart_field"):
                exc.securecart_field = f"{self.field}.$"
            raise

    hooks.replace("sfn.payload_binding", binding)

    def missing_path(env, ex: NoSuchJsonPathError):
        field = getattr(ex, "securecart_field", None) or env.next_field_name
        cause = (f"The JSONPath '{ex.json_path}' specified for the field '{field}' could not be found "
                 f"in the input '{to_json_str(ex.data)}'")
        return _failure(env, "States.Runtime", cause, typ=StatesErrorNameType.StatesRuntime).failure_event

    execute_from_error = hooks.original("sfn.execute_from_error")

    def runtime_errors(self, env, ex):
        if isinstance(ex, NoSuchJsonPathError):
            return missing_path(env, ex)
        return execute_from_error(self, env=env, ex=ex)

    hooks.replace("sfn.execute_from_error", runtime_errors)

    for name in ("sfn.dynamodb_from_error", "sfn.api_gateway_from_error"):
        from_error = hooks.original(name)

        def passing_failures(self, env, ex, _from_error=from_error):
            if isinstance(ex, FailureEventException):
                return ex.failure_event
            if isinstance(ex, NoSuchJsonPathError):
                return missing_path(env, ex)
            return _from_error(self, env=env, ex=ex)

        hooks.replace(name, passing_failures)

    callback_from_error = hooks.original("sfn.callback_from_error")

    def heartbeat_timeout(self, env, ex):
        if isinstance(ex, HeartbeatTimeoutError):
            return _failure(env, "States.HeartbeatTimeout", None, typ=StatesErrorNameType.StatesHeartbeatTimeout,
                            event_type=HistoryEventType.TaskTimedOut,
                            details_key="taskTimedOutEventDetails").failure_event
        return callback_from_error(self, env=env, ex=ex)

    hooks.replace("sfn.callback_from_error", heartbeat_timeout)


_retrying = threading.local()


def _install_interruptible_retry() -> None:
    evaluate = hooks.original("sfn.retrier_eval")

    def retrier(self, env) -> None:
        _retrying.env = env
        try:
            evaluate(self, env)
        finally:
            _retrying.env = None

    hooks.replace("sfn.retrier_eval", retrier)


def _install_context() -> None:
    build = hooks.original("sfn.evaluation_environment")

    def environment(self):
        env = build(self)
        execution = env.states.context_object.context_object_data["Execution"]
        if isinstance(execution.get("StartTime"), datetime.datetime):
            execution["StartTime"] = aws_timestamp(execution["StartTime"])
        execution.setdefault("RedriveCount", 0)
        return env

    hooks.replace("sfn.evaluation_environment", environment)


def _install_abort_once() -> None:
    from moto.stepfunctions.parser.api import HistoryEventType

    add_event = hooks.original("sfn.add_event")

    def add_event_once(self, context, event_type, *args, **kwargs):
        if event_type == HistoryEventType.ExecutionAborted and any(
                event["type"] == HistoryEventType.ExecutionAborted for event in self._history_event_list):
            return self._history_event_list[-1]["id"]
        return add_event(self, context, event_type, *args, **kwargs)

    hooks.replace("sfn.add_event", add_event_once)


def _install_log_records() -> None:
    create = hooks.original("sfn.history_log")

    def history_log(*args, **kwargs):
        record = create(*args, **kwargs)
        stamp = record.get("event_timestamp")
        if isinstance(stamp, str):
            stamp = datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00"))
        if isinstance(stamp, datetime.datetime):
            record["event_timestamp"] = str(int(stamp.timestamp() * 1000))
        return record

    hooks.replace("sfn.history_log", staticmethod(history_log))


def _install_result_writer() -> None:
    def put_results(env, resource_runtime_part, state_credentials) -> None:
        from moto.stepfunctions.parser.asl.utils.boto_client import boto_client_for

        parameters = env.stack.pop()
        results = env.stack.pop()
        s3 = boto_client_for(service="s3", region=resource_runtime_part.region, state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all()[-1]
        run_id = record.map_run_arn.split(":")[-1]
        prefix = parameters.get("Prefix", "")
        if prefix and not prefix.endswith("/"):
            prefix += "/"
        bucket = parameters["Bucket"]
        now = aws_timestamp(datetime.datetime.now(tz=datetime.timezone.utc))
        children = [{
            "ExecutionArn": f"{record.map_run_arn.replace(':mapRun:', ':execution:')}:{index}",
            "Input": "", "InputDetails": {"Included": True}, "Name": str(index),
            "Output": json.dumps(result, separators=(",", ":")), "OutputDetails": {"Included": True},
            "RedriveCount": 0, "RedriveStatus": "NOT_REDRIVABLE",
            "RedriveStatusReason": "Execution is SUCCEEDED and cannot be redriven", "StartDate": now,
            "StateMachineArn": record.map_run_arn.rsplit("/", 1)[0].replace(":mapRun:", ":stateMachine:"),
            "Status": "SUCCEEDED", "StopDate": now,
        } for index, result in enumerate(results if isinstance(results, list) else [])]
        files = []
        if children:
            body = json.dumps(children).encode()
            key = f"{prefix}{run_id}/SUCCEEDED_0.json"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            files.append({"Key": key, "Size": len(body)})
        manifest = {"DestinationBucket": bucket, "MapRunArn": record.map_run_arn,
                    "ResultFiles": {"FAILED": [], "PENDING": [], "SUCCEEDED": files}}
        key = f"{prefix}{run_id}/manifest.json"
        s3.put_object(Bucket=bucket, Key=key, Body=json.dumps(manifest).encode())
        env.stack.append({"MapRunArn": record.map_run_arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}})

    hooks.replace("sfn.result_writer_s3", staticmethod(put_results))


# aws-sdk integrations name errors <Service>.<Exception>, the service as the AWS SDK for Java v2 names its client.
AWS_SDK_SERVICE_NAMES = {
    "s3": "S3", "sqs": "Sqs", "sns": "Sns", "lambda": "Lambda", "dynamodb": "DynamoDb", "sfn": "Sfn",
    "secretsmanager": "SecretsManager", "ssm": "Ssm", "ec2": "Ec2", "iam": "Iam", "kms": "Kms", "sts": "Sts",
    "eventbridge": "EventBridge", "cloudwatch": "CloudWatch", "cloudwatchlogs": "CloudWatchLogs", "rds": "Rds",
    "athena": "Athena", "glue": "Glue", "kinesis": "Kinesis", "firehose": "Firehose", "ecs": "Ecs", "ses": "Ses",
    "sesv2": "SesV2", "apigateway": "ApiGateway", "cloudformation": "CloudFormation", "xray": "XRay",
    "elasticloadbalancingv2": "ElasticLoadBalancingV2", "autoscaling": "AutoScaling", "ecr": "Ecr",
}


_INDEFINITE = re.compile(r"\*|\.\.|\[\?|\[[^\]]*[:,][^\]]*\]")


def _check_logging(config) -> None:
    from moto.core.exceptions import AWSError

    if not config:
        return
    level = config.get("level", "OFF")
    destinations = config.get("destinations") or []
    if level != "OFF" and len(destinations) != 1:
        raise AWSError("Invalid Logging Configuration: Must specify exactly one Log Destination if logging level is "
                       "not OFF.", "InvalidLoggingConfiguration")


def _install_create_conflicts() -> None:
    create = hooks.original("sfn.create_state_machine")

    def create_state_machine(self, name, definition, roleArn, *args, **kwargs):
        from moto.core.exceptions import AWSError

        _check_logging(kwargs.get("loggingConfiguration"))
        existing = next((m for m in self.state_machines if m.name == name), None)
        machine_type = kwargs.get("sm_type") or "STANDARD"
        if existing is not None and (existing.definition, existing.roleArn, existing.type) != (
                definition, roleArn, machine_type):
            raise AWSError(f"State Machine Already Exists: '{existing.arn}'", "StateMachineAlreadyExists")
        return create(self, name, definition, roleArn, *args, **kwargs)

    hooks.replace("sfn.create_state_machine", create_state_machine)
    update = hooks.original("sfn.update_state_machine")

    def update_state_machine(self, arn, *args, **kwargs):
        _check_logging(kwargs.get("logging_configuration"))
        return update(self, arn, *args, **kwargs)

    hooks.replace("sfn.update_state_machine", update_state_machine)


def parse_program(definition: str):
    """moto's program for a definition, with each Map state's ItemBatcher attached to its ItemReader."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    from securecart_lab.emulator.stepfunctions_definition import without_batchers

    stripped, batchers = without_batchers(definition)
    program = AmazonStateLanguageParser.parse(stripped)[0]
    if batchers:
        seen: set[int] = set()

        def attach(component) -> None:
            if id(component) in seen or not hasattr(component, "__dict__"):
                return
            seen.add(id(component))
            reader = getattr(component, "item_reader", None)
            if reader is not None and getattr(component, "name", None) in batchers:
                reader.securecart_batcher = batchers[component.name]
            for value in vars(component).values():
                for item in (value.values() if isinstance(value, dict) else value if isinstance(value, list) else [value]):
                    if hasattr(item, "__dict__") and type(item).__module__.startswith("moto.stepfunctions"):
                        attach(item)

        attach(program)
    return program


def _batches(batcher: dict, items: list, state_input) -> list:
    from moto.stepfunctions.parser.asl.utils.json_path import extract_json

    size = batcher.get("MaxItemsPerBatch")
    if size is None and "MaxItemsPerBatchPath" in batcher:
        size = extract_json(batcher["MaxItemsPerBatchPath"], state_input)
    size = int(size or len(items) or 1)
    batch_input = None
    if "BatchInput" in batcher:
        batch_input = {
            (key[:-2] if key.endswith(".$") else key): (extract_json(value, state_input) if key.endswith(".$")
                                                         else value)
            for key, value in batcher["BatchInput"].items()}
    batches = []
    for start in range(0, len(items), size):
        batch = {"Items": items[start:start + size]}
        if batch_input is not None:
            batch["BatchInput"] = batch_input
        batches.append(batch)
    return batches


def _install_item_batcher() -> None:
    def entrypoint(self):
        return parse_program(self._evaluation_details.state_machine_details.definition)

    hooks.replace("sfn.evaluation_entrypoint", entrypoint)
    read = hooks.original("sfn.item_reader_eval")

    def read_then_batch(self, env) -> None:
        read(self, env)
        batcher = getattr(self, "securecart_batcher", None)
        if batcher is not None and isinstance(env.stack[-1], list):
            env.stack.append(_batches(batcher, env.stack.pop(), env.states.get_input()))

    hooks.replace("sfn.item_reader_eval", read_then_batch)


_fields = threading.local()


def _install_jsonata_fields() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.api import HistoryEventType

    def naming(hook: str, name_of) -> None:
        evaluate = hooks.original(hook)

        def evaluate_named(self, env):
            path = getattr(_fields, "path", None)
            if path is None:
                path = _fields.path = []
            name = name_of(self)
            if name is not None:
                path.append(name)
            try:
                return evaluate(self, env)
            finally:
                if name is not None:
                    path.pop()

        hooks.replace(hook, evaluate_named)

    naming("sfn.jsonata_field.output", lambda self: "Output")
    naming("sfn.jsonata_field.parargs",
           lambda self: "Arguments" if type(self).__name__.startswith("Arguments") else "Parameters")
    naming("sfn.jsonata_field.assign", lambda self: "Assign")
    naming("sfn.jsonata_field.assign_binding", lambda self: getattr(self.binding, "identifier", None))
    naming("sfn.jsonata_field.binding", lambda self: self.identifier)
    validate = hooks.original("sfn.jsonata_undefined")

    def undefined(env, expression: str, rich_jsonata_expression: str) -> None:
        path = getattr(_fields, "path", None)
        if not path:
            return validate(env, expression, rich_jsonata_expression)
        if eval_jsonata(f"$exists({rich_jsonata_expression})"):
            return None
        raise _failure(env, "States.QueryEvaluationError",
                       f"The JSONata expression '{expression}' specified for the field '{'/'.join(path)}' returned "
                       "nothing (undefined).", typ=StatesErrorNameType.StatesQueryEvaluationError,
                       event_type=HistoryEventType.EvaluationFailed, details_key="evaluationFailedEventDetails")

    hooks.replace("sfn.jsonata_undefined", undefined)


def _install_json_paths() -> None:
    hooks.replace("sfn.json_path_definite", lambda path: not _INDEFINITE.search(path))


def _install_choice_paths() -> None:
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.component.state.choice.comparison.variable import NoSuchVariable

    compare = hooks.original("sfn.choice_comparison")

    def comparison(self, env) -> None:
        operator = str(getattr(self.comparison_function, "operator_type", ""))
        if operator.rsplit(".", 1)[-1].startswith("Is"):
            return compare(self, env)
        self.variable.eval(env)
        if isinstance(env.stack[-1], NoSuchVariable):
            path = self.variable.string_sampler.literal_value
            raise _failure(env, "States.Runtime",
                           f"Invalid path '{path}': The choice state's condition path references an invalid value.",
                           typ=StatesErrorNameType.StatesRuntime)
        self.comparison_function.eval(env)

    hooks.replace("sfn.choice_comparison", comparison)


def _install_lambda_result() -> None:
    evaluate = hooks.original("sfn.lambda_service_eval")

    def lambda_task(self, env, *args, **kwargs):
        evaluate(self, env, *args, **kwargs)
        result = env.stack[-1] if env.stack else None
        if isinstance(result, dict) and "StatusCode" in result and "SdkHttpMetadata" not in result:
            request_id = str(uuid.uuid4())
            headers = {"Connection": "keep-alive", "Content-Type": "application/json", "X-Amz-Executed-Version":
                       result.get("ExecutedVersion", "$LATEST"), "x-amzn-Remapped-Content-Length": "0",
                       "x-amzn-RequestId": request_id}
            result["SdkHttpMetadata"] = {"AllHttpHeaders": {k: [v] for k, v in headers.items()}, "HttpHeaders": headers,
                                         "HttpStatusCode": result["StatusCode"]}
            result["SdkResponseMetadata"] = {"RequestId": request_id}

    hooks.replace("sfn.lambda_service_eval", lambda_task)


def _install_aws_answers() -> None:
    from securecart_lab.emulator import stepfunctions_api, stepfunctions_nested

    _install_json_encoder()
    _install_error_matching()
    _install_choice()
    _install_task_errors()
    _install_interruptible_retry()
    _install_context()
    _install_abort_once()
    _install_log_records()
    _install_result_writer()
    hooks.replace("sfn.model_backends", hooks.resolve("sfn.parser_backends"))
    _install_json_paths()
    _install_jsonata_fields()
    _install_item_batcher()
    _install_create_conflicts()
    _install_choice_paths()
    _install_lambda_result()
    hooks.resolve("sfn.aws_sdk_error_names").update(AWS_SDK_SERVICE_NAMES)
    stepfunctions_api.install()
    stepfunctions_nested.install()
