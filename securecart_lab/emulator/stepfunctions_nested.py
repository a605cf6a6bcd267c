"""Step Functions: nested executions, the optimized `arn:aws:states:::states:startExecution` integration.

moto passes the Task's PascalCase Parameters (StateMachineArn, Input, Name) to botocore's camelCase model and reads
the camelCase answer as if it were PascalCase, so every startExecution task failed with States.Runtime. The kit
calls StartExecution (and, for `.sync`/`.sync:2`, DescribeExecution until the child ends) with the execution's role,
and answers in AWS's shape:

- request-response: `{ExecutionArn, StartDate, SdkHttpMetadata, SdkResponseMetadata}`;
- `.sync`: the child's description, PascalCase, `Input` and `Output` as JSON strings; `.sync:2`: parsed JSON;
- a child that does not succeed fails the Task with `States.TaskFailed`, the cause being that description
  (with the child's `Error` and `Cause`);
- a `.sync` Task that is stopped or times out stops its child (which is why AWS's policy for .sync includes
  `states:StopExecution`).
"""

from __future__ import annotations

import datetime
import functools
import json
import logging
import uuid
from typing import Any

from securecart_lab.emulator import hooks

LOG = logging.getLogger(__name__)

# The optimized integration's parameters and the API's members.
PARAMETERS = {"StateMachineArn": "stateMachineArn", "Input": "input", "Name": "name", "TraceHeader": "traceHeader"}
# DescribeExecution members a .sync Task returns, as AWS names them there.
DESCRIBED = {
    "cause": "Cause", "error": "Error", "executionArn": "ExecutionArn", "input": "Input", "inputDetails": "InputDetails",
    "name": "Name", "output": "Output", "outputDetails": "OutputDetails", "startDate": "StartDate",
    "stateMachineArn": "StateMachineArn", "status": "Status", "stopDate": "StopDate",
}


def epoch_millis(value: Any) -> Any:
    """Dates in the integration's results are epoch milliseconds, as the AWS SDK for Java writes them."""
    if isinstance(value, datetime.datetime):
        return int(value.timestamp() * 1000)
    return value


def _client(resource_runtime_part, state_credentials):
    boto_client_for = hooks.resolve("sfn.boto_client.sfn")  # the IAM wrapper when IAM is on
    return boto_client_for(region=resource_runtime_part.region, service="stepfunctions",
                           state_credentials=state_credentials)


def _sdk_metadata(response: dict) -> dict:
    metadata = response.get("ResponseMetadata") or {}
    request_id = metadata.get("RequestId") or str(uuid.uuid4())
    received = metadata.get("HTTPHeaders") or {}
    headers = {"x-amzn-RequestId": request_id, "connection": "keep-alive",
               "Content-Length": received.get("content-length"), "Date": received.get("date"),
               "Content-Type": "application/x-amz-json-1.0"}
    headers = {name: value for name, value in headers.items() if value is not None}
    return {
        "SdkHttpMetadata": {"AllHttpHeaders": {k: [v] for k, v in headers.items()}, "HttpHeaders": headers,
                            "HttpStatusCode": metadata.get("HTTPStatusCode", 200)},
        "SdkResponseMetadata": {"RequestId": request_id},
    }


def start_output(response: dict) -> dict:
    """StartExecution's answer as the Task returns it."""
    return {"ExecutionArn": response["executionArn"], "StartDate": epoch_millis(response["startDate"]),
            **_sdk_metadata(response)}


def described_output(described: dict, parse_json: bool) -> dict:
    """DescribeExecution's answer as a .sync (strings) or .sync:2 (parsed JSON) Task returns it."""
    result: dict[str, Any] = {}
    for member, name in sorted(DESCRIBED.items(), key=lambda item: item[1]):
        if described.get(member) is None:
            continue
        value = described[member]
        if member in ("inputDetails", "outputDetails") and isinstance(value, dict):
            value = {"Included": value.get("included", True)}
        elif member in ("input", "output") and parse_json and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        result[name] = epoch_millis(value)
    return result


def _child_failed(self, env, result: dict):
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
        FailureEvent,
        FailureEventException,
    )
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
    from moto.stepfunctions.parser.asl.utils.encoding import to_json_str

    return FailureEventException(FailureEvent(
        env=env, error_name=StatesErrorName(typ=StatesErrorNameType.StatesTaskFailed),
        event_type=HistoryEventType.TaskFailed,
        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
            error="States.TaskFailed", cause=to_json_str(result), resource=self._get_sfn_resource(),
            resourceType=self._get_sfn_resource_type()))))


def _resolver(parse_json: bool):
    def build(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        client = _client(resource_runtime_part, state_credentials)
        execution_arn = env.stack.pop()["ExecutionArn"]

        def resolve():
            described = client.describe_execution(executionArn=execution_arn)
            if described["status"] == "RUNNING":
                return None
            result = described_output(described, parse_json)
            if described["status"] == "SUCCEEDED":
                return result
            raise _child_failed(self, env, result)

        resolve.securecart_child = (client, execution_arn)
        return resolve

    return build


def _install_parameters() -> None:
    normalise = hooks.original("sfn.nested.normalise_parameters")

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        normalise(self, parameters, boto_service_name, service_action_name)  # moto writes Input as a JSON string
        if service_action_name is None and self._get_boto_service_action() == "start_execution":
            for key in [key for key in parameters if key in PARAMETERS]:
                parameters[PARAMETERS[key]] = parameters.pop(key)

    hooks.replace("sfn.nested.normalise_parameters", normalise_parameters)


def _install_start() -> None:
    evaluate = hooks.original("sfn.nested.eval_service_task")

    def eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
        if self._get_boto_service_action() != "start_execution":
            return evaluate(self, env, resource_runtime_part, normalised_parameters, state_credentials)
        response = _client(resource_runtime_part, state_credentials).start_execution(**normalised_parameters)
        env.stack.append(start_output(response))

    hooks.replace("sfn.nested.eval_service_task", eval_service_task)


def _install_sync() -> None:
    hooks.replace("sfn.nested.sync_resolver", _resolver(parse_json=False))
    hooks.replace("sfn.nested.sync2_resolver", _resolver(parse_json=True))
    wait = hooks.original("sfn.nested.eval_sync")

    def eval_sync(self, env, sync_resolver, timeout_seconds, callback_endpoint, heartbeat_endpoint):
        outcome = wait(self, env=env, sync_resolver=sync_resolver, timeout_seconds=timeout_seconds,
                       callback_endpoint=callback_endpoint, heartbeat_endpoint=heartbeat_endpoint)
        child = getattr(sync_resolver, "securecart_child", None)
        if child is not None and not env.is_running():
            client, execution_arn = child  # the Task was stopped or timed out: so is the child, as on AWS
            try:
                if client.describe_execution(executionArn=execution_arn)["status"] == "RUNNING":
                    client.stop_execution(executionArn=execution_arn)
            except Exception as exc:  # best effort, as AWS's
                LOG.info("child execution %s not stopped: %s", execution_arn, exc)
        return outcome

    hooks.replace("sfn.nested.eval_sync", eval_sync)


@functools.lru_cache(maxsize=None)
def _operation(action: str):
    import botocore.session

    model = botocore.session.get_session().get_service_model("stepfunctions")
    return model.operation_model(action[:1].upper() + action[1:])


def _install_aws_sdk() -> None:
    """aws-sdk:sfn:* (a child calling sendTaskSuccess with its parent's token): Step Functions' own API is the one
    camelCase API the labs reach through aws-sdk, so its PascalCase parameters and results are mapped on its model."""
    normalise = hooks.original("sfn.nested.aws_sdk_parameters")
    denormalise = hooks.original("sfn.nested.aws_sdk_response")

    def is_sfn(self) -> bool:
        return self.resource.api_name == "sfn"

    def normalise_parameters(self, parameters, boto_service_name=None, service_action_name=None):
        if is_sfn(self) and isinstance(parameters, dict):
            self._to_boto_request(parameters, _operation(service_action_name or self.resource.api_action).input_shape)
            return
        normalise(self, parameters, boto_service_name, service_action_name)

    def normalise_response(self, response, boto_service_name=None, service_action_name=None):
        if is_sfn(self) and isinstance(response, dict):
            self._from_boto_response(response, _operation(service_action_name or self.resource.api_action).output_shape)
            return
        denormalise(self, response, boto_service_name, service_action_name)

    hooks.replace("sfn.nested.aws_sdk_parameters", normalise_parameters)
    hooks.replace("sfn.nested.aws_sdk_response", normalise_response)


def install() -> None:
    _install_parameters()
    _install_start()
    _install_sync()
    _install_aws_sdk()
