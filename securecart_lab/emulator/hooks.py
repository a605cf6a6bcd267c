"""Every point where the kit reaches into moto, in one list.

Extensions patch moto only through `replace()`, naming a hook from `HOOKS`, so a moto upgrade that moves
or renames one of them fails in one place (and in tests/unit/test_emulator_hooks.py), not at run time.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

_SFN = "moto.stepfunctions.parser"
_SQS = "moto.sqs.models"
_CFN, _RDS, _EC2, _ASG, _ELB = (
    "moto.cloudformation", "moto.rds.models", "moto.ec2.models", "moto.autoscaling.models", "moto.elbv2.models",
)


@dataclass(frozen=True)
class Hook:
    name: str
    module: str
    attribute: str  # dotted path inside the module: "Class.method" or "name"
    why: str


HOOKS: dict[str, Hook] = {
    hook.name: hook
    for hook in (
        Hook("config", "moto.core.config", "default_user_config",
             "server mode reads execute_state_machine from this dict"),
        Hook("server.dispatcher", "moto.moto_server.werkzeug_app", "DomainDispatcherApplication",
             "the WSGI app routing requests to service backends"),
        Hook("server.backend_app", "moto.moto_server.werkzeug_app", "create_backend_app", "builds each service's app"),
        Hook("server.preserve_header_name", "moto.core.request", "should_preserve_original_header_name",
             "which header names keep their underscores (S3 metadata), as moto's own request handler does"),
        Hook("server.environ_key_for_header", "moto.core.request", "environ_key_for_header", "the environ key of a header"),
        Hook("server.preserved_header_names_key", "moto.core.request", "PRESERVED_HEADER_NAMES_ENVIRON_KEY",
             "where moto's Request finds the original header names"),
        Hook("server.moto_modules", "moto.backends", "list_of_moto_modules",
             "the dispatcher lists moto's package folder on every request; the kit lists it once (routing.py)"),
        Hook("server.backend_for_host", "moto.moto_server.werkzeug_app",
             "DomainDispatcherApplication.get_backend_for_host", "matches ~200 URL patterns per request; cached per Host"),
        Hook("responses.method_names", "moto.core.responses", "method_names_from_class",
             "inspect.getmembers of the response class on every request; imported by name; cached per class"),
        # Per-response costs (hotpath.py).
        Hook("serialize.picker", "moto.core.serialize", "XFormedAttributePicker",
             "the value picker every response serialiser uses"),
        Hook("serialize.serializer.get_value", "moto.core.serialize", "ResponseSerializer.get_value",
             "runs six alias providers and xform_name per field per response; the kit remembers their answer"),
        Hook("serialize.picker_context", "moto.core.serialize", "AttributePickerContext", "what the picker reads"),
        Hook("serialize.alias_providers", "moto.core.serialize", "DEFAULT_ALIAS_PROVIDERS",
             "the providers whose answers the kit remembers (a picker with others is left alone)"),
        Hook("serialize.missing", "moto.core.serialize", "MISSING", "get_value's 'no such attribute' marker"),
        Hook("serialize.get_value", "moto.core.serialize", "get_value", "reads a field of a result"),
        Hook("responses.request_id", "moto.core.responses", "gen_amzn_requestid_long",
             "52 random.choice calls per response; imported by name"),
        Hook("core.random", "moto.moto_api._internal", "mock_random", "moto's seedable random generator"),
        # What the emulator does not load at start (startup.py).
        Hook("core.load_service_model", "moto.core.utils", "_load_service_model",
             "a new botocore loader per model, which lists all ~450 services' folders to check the name is one"),
        Hook("core.create_loader", "moto.core.utils", "create_loader", "botocore's loader with moto's extras"),
        Hook("server.url_patterns", "moto.backend_index", "backend_url_patterns",
             "~180 (service, URL pattern) pairs the dispatcher matches a Host against, compiled at import (30 ms); "
             "the kit reads them from the module's source and compiles one when it could match"),
        Hook("server.global_cors", "moto.moto_server.werkzeug_app", "DISABLE_GLOBAL_CORS",
             "flask-cors on every backend app: its headers never leave the kit's Guard (which answers CORS itself)"),
        Hook("sfn.start_execution", f"{_SFN}.models", "StepFunctionsParserBackend.start_execution",
             "executions started without a name get a UUID name, as on AWS"),
        Hook("sfn.validate_name", "moto.stepfunctions.models", "StepFunctionBackend._validate_name",
             "AWS's name rules (no whitespace, brackets, wildcards, special characters; 80 at most), which the "
             "parser backend's StartExecution skips"),
        Hook("sfn.validate_definition", f"{_SFN}.models", "StepFunctionsParserBackend._validate_definition",
             "a definition over 1 MiB is refused with AWS's ValidationException before moto parses it; others get "
             "InvalidDefinition with AWS's diagnostic codes and locations (stepfunctions_definition.py)"),
        Hook("sfn.start_worker", f"{_SFN}.backend.execution", "Execution._get_start_execution_worker",
             "attach a CloudWatch Logs session when the state machine has a logging configuration"),
        Hook("sfn.logging_session", f"{_SFN}.asl.eval.event.logging", "CloudWatchLoggingSession",
             "base class of the kit's execution log writer"),
        Hook("sfn.logging_configuration", f"{_SFN}.asl.eval.event.logging", "CloudWatchLoggingConfiguration",
             "parses a state machine's loggingConfiguration"),
        Hook("sfn.jsonata", f"{_SFN}.asl.jsonata.jsonata", "eval_jsonata_expression", "moto leaves it unset"),
        Hook("sfn.jsonata.string_expression", f"{_SFN}.asl.component.common.string.string_expression",
             "eval_jsonata_expression", "imported by name"),
        Hook("sfn.jsonata.validations", f"{_SFN}.asl.jsonata.validations", "eval_jsonata_expression",
             "imported by name"),
        Hook("sfn.jsonata.intrinsics", f"{_SFN}.asl.component.intrinsic.jsonata", "_DECLARATION_BY_VARIABLE_REFERENCE",
             "moto declares $uuid and $hash as stubs returning 'not supported'; the kit implements them"),
        Hook("sfn.jsonata.declarations.states", f"{_SFN}.asl.eval.states", "encode_jsonata_variable_declarations",
             "moto quotes string variables without escaping them; imported by name"),
        Hook("sfn.jsonata.declarations.variables", f"{_SFN}.asl.eval.variable_store",
             "encode_jsonata_variable_declarations", "the same, for Assign variables"),
        Hook("sfn.jsonata.exception", f"{_SFN}.asl.jsonata.jsonata", "JSONataException",
             "the error type moto's interpreter expects from the evaluator"),
        Hook("sfn.wait_interval", f"{_SFN}.asl.component.state.wait.wait_function.wait_function",
             "WaitFunction._wait_interval", "Wait states honour SECURECART_TIME_SCALE"),
        Hook("sfn.retry_time", f"{_SFN}.asl.component.common.retry.retrier_decl", "time",
             "Retry intervals honour SECURECART_TIME_SCALE (the module calls time.sleep)"),
        # Step Functions as AWS answers it (stepfunctions.py, stepfunctions_api.py).
        Hook("sfn.response", "moto.stepfunctions.responses", "StepFunctionResponse",
             "actions moto lacks are added to it (hooks.add): StartSyncExecution, TestState, RedriveExecution, "
             "ValidateStateMachineDefinition, Publish/List/DeleteStateMachineVersion"),
        *(Hook(f"sfn.response.{action}", "moto.stepfunctions.responses", f"StepFunctionResponse.{action}", why)
          for action, why in (
              ("describe_execution", "output is always JSON (moto returns a string output raw); redrive fields"),
              ("describe_state_machine_for_execution", "the definition the execution ran, not the current one"),
              ("stop_execution", "immediate, with the request's error and cause"),
              ("send_task_failure", "moto drops the cause"),
              ("send_task_heartbeat", "AWS accepts a heartbeat for any open task token"))),
        Hook("sfn.json_encoder", f"{_SFN}.asl.utils.encoding", "_DateTimeEncoder",
             "AWS writes compact JSON (causes, history) and timestamps as 2026-01-01T00:00:00.000Z"),
        Hook("sfn.error_equals", f"{_SFN}.asl.component.common.error_name.error_equals_decl",
             "ErrorEqualsDecl._eval_body", "States.ALL does not match States.Runtime"),
        Hook("sfn.choice_eval", f"{_SFN}.asl.component.state.choice.state_choice", "StateChoice._eval_state",
             "no matching rule and no Default: States.NoChoiceMatched (moto raises a Python RuntimeError)"),
        Hook("sfn.execute_from_error", f"{_SFN}.asl.component.state.exec.execute_state", "ExecutionState._from_error",
             "a JSONPath missing from a task's Parameters: States.Runtime naming the field, as AWS words it"),
        Hook("sfn.payload_binding", f"{_SFN}.asl.component.common.payload.payloadvalue.payloadbinding.payload_binding",
             "PayloadBindingStringExpressionSimple._eval_val",
             "remembers which field a missing JSONPath was written in (the task's timeout evaluation overwrites it)"),
        Hook("sfn.result_writer_s3", f"{_SFN}.asl.component.state.exec.state_map.result_writer.resource_eval."
             "resource_eval_s3", "ResourceEvalS3._handle_put_object",
             "a Distributed Map's ResultWriter writes the child results (SUCCEEDED_0.json) the manifest lists"),
        Hook("sfn.aws_sdk_error_names",
             f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_aws_sdk", "_SERVICE_ERROR_NAMES",
             "aws-sdk task errors are named as AWS names them (S3.NoSuchBucketException, not s3.NoSuchBucketException)"),
        Hook("sfn.create_state_machine", f"{_SFN}.models", "StepFunctionsParserBackend.create_state_machine",
             "the same name with another definition, role or type is StateMachineAlreadyExists, as on AWS"),
        Hook("sfn.evaluation_entrypoint", f"{_SFN}.backend.execution_worker",
             "ExecutionWorker._get_evaluation_entrypoint",
             "moto's grammar lacks ItemBatcher: the kit parses the definition without it and batches the items itself"),
        Hook("sfn.item_reader_eval", f"{_SFN}.asl.component.state.exec.state_map.item_reader.item_reader_decl",
             "ItemReader._eval_body", "a Distributed Map's ItemBatcher groups what its ItemReader read"),
        # The field a JSONata expression was written in, for AWS's "specified for the field 'Arguments/Payload/id'".
        *(Hook(f"sfn.jsonata_field.{name}", module, attribute, "pushes its name on the JSONata field path")
          for name, module, attribute in (
              ("output", f"{_SFN}.asl.component.common.outputdecl", "Output._eval_body"),
              ("parargs", f"{_SFN}.asl.component.common.parargs", "Parargs._eval_body"),
              ("assign", f"{_SFN}.asl.component.common.assign.assign_decl", "AssignDecl._eval_body"),
              ("assign_binding", f"{_SFN}.asl.component.common.assign.assign_decl_binding",
               "AssignDeclBinding._eval_body"),
              ("binding", f"{_SFN}.asl.component.common.jsonata.jsonata_template_binding",
               "JSONataTemplateBinding._eval_body"))),
        Hook("sfn.jsonata_undefined", f"{_SFN}.asl.jsonata.validations", "_validate_null_output",
             "the QueryEvaluationError for an undefined result names the field, as AWS's does"),
        Hook("sfn.model_backends", "moto.stepfunctions.models", "stepfunctions_backends",
             "CloudFormation's AWS::StepFunctions::StateMachine creates in this dict; the API (execution on) reads the "
             "parser backends, so a stack's state machine was invisible and could not run"),
        Hook("sfn.parser_backends", f"{_SFN}.models", "stepfunctions_parser_backends", "the backends that execute"),
        Hook("sfn.create_from_cfn", "moto.stepfunctions.models", "StateMachine.create_from_cloudformation_json",
             "CloudFormation's state machine keeps Definition, DefinitionSubstitutions, StateMachineType and "
             "LoggingConfiguration (cloudformation/state_machines.py)"),
        Hook("sfn.update_state_machine", f"{_SFN}.models", "StepFunctionsParserBackend.update_state_machine",
             "a logging configuration is checked as at create"),
        Hook("sfn.json_path_definite", f"{_SFN}.asl.utils.json_path", "_is_singleton_array_access",
             "a definite path ($.items[0].id, $[1].x) selects one value, an indefinite one ($.a[*].b) a list; moto "
             "returns a list for any path through an array index"),
        Hook("sfn.choice_comparison", f"{_SFN}.asl.component.state.choice.comparison.comparison_variable",
             "ComparisonVariable._eval_body",
             "a comparison on a path missing from the input is States.Runtime (moto: no match)"),
        Hook("sfn.lambda_service_eval", f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_lambda",
             "StateTaskServiceLambda._eval_service_task",
             "lambda:invoke's result carries SdkHttpMetadata and SdkResponseMetadata, as on AWS"),
        Hook("sfn.dynamodb_from_error",
             f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
             "StateTaskServiceDynamoDB._from_error",
             "a States.Runtime raised while evaluating Parameters stays States.Runtime (moto: DynamoDB.AmazonDynamoDBException)"),
        Hook("sfn.api_gateway_from_error",
             f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_api_gateway",
             "StateTaskServiceApiGateway._from_error", "the same, for API Gateway tasks"),
        Hook("sfn.callback_from_error",
             f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_callback",
             "StateTaskServiceCallback._from_error",
             "a heartbeat timeout is States.HeartbeatTimeout (moto reports States.Timeout)"),
        Hook("sfn.retrier_eval", f"{_SFN}.asl.component.common.retry.retrier_decl", "RetrierDecl._eval_body",
             "the retry interval ends as soon as the execution is stopped"),
        Hook("sfn.evaluation_environment", f"{_SFN}.backend.execution_worker", "ExecutionWorker._get_evaluation_environment",
             "the context object: StartTime in AWS's format, RedriveCount"),
        Hook("sfn.add_event", f"{_SFN}.asl.eval.event.event_manager", "EventManager.add_event",
             "an execution is aborted once: StopExecution records ExecutionAborted itself, at once"),
        Hook("sfn.history_log", f"{_SFN}.asl.eval.event.event_manager", "EventManager._create_history_log",
             "execution log records: event_timestamp in epoch milliseconds (a string), as AWS writes them"),
        # Nested executions: the optimized states:startExecution integration (stepfunctions_nested.py).
        *(Hook(f"sfn.nested.{name}", f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service_sfn",
               f"StateTaskServiceSfn.{attribute}", why)
          for name, attribute, why in (
              ("normalise_parameters", "_normalise_parameters",
               "moto passes the Task's PascalCase parameters to botocore's camelCase model (KeyError 'StateMachineArn')"),
              ("eval_service_task", "_eval_service_task",
               "StartExecution's answer as AWS returns it: ExecutionArn, StartDate, SdkHttpMetadata"),
              ("sync_resolver", "_build_sync_resolver", ".sync: the child's description, PascalCase, AWS's failure"),
              ("sync2_resolver", "_build_sync2_resolver", ".sync:2: the same with Input and Output parsed"),
              ("eval_sync", "_eval_sync", "a .sync Task stopped or timed out stops its child"))),
        *(Hook(f"sfn.nested.aws_sdk_{name}", f"{_SFN}.asl.component.state.exec.state_task.service."
               "state_task_service_aws_sdk", f"StateTaskServiceAwsSdk._normalise_{name}",
               "aws-sdk:sfn (e.g. sendTaskSuccess from a child): PascalCase parameters and results, as AWS takes "
               "and returns them, for Step Functions' camelCase API")
          for name in ("parameters", "response")),
        Hook("sfn.backend", "moto.stepfunctions.responses", "get_backend",
             "the backend that runs executions, used by EventBridge targets"),
        Hook("lambda.invoke_lambda", "moto.awslambda.models", "LambdaFunction._invoke_lambda",
             "run handler code in local worker processes instead of Docker"),
        Hook("lambda.invoke", "moto.awslambda.models", "LambdaFunction.invoke",
             "Event invocations run in the background; handler errors are Unhandled"),
        Hook("lambda.backends", "moto.awslambda.models", "lambda_backends", "find functions by ARN"),
        Hook("lambda.create_function", "moto.awslambda.models", "LambdaBackend.create_function",
             "the first function starts the spare worker (API and CloudFormation both create through it)"),
        *(Hook(f"lambda.{verb}_event_source_mapping", "moto.awslambda.models",
               f"LambdaBackend.{verb}_event_source_mapping",
               "SQS event source mappings get a real poller (event_sources.py), started and stopped with the mapping")
          for verb in ("create", "update", "delete")),
        Hook("events.send_to_targets", "moto.events.models", "Rule.send_to_targets",
             "deliver to Step Functions, Lambda, SNS, SQS and API destinations with InputPath/Input/InputTransformer, "
             "RetryPolicy and DeadLetterConfig"),
        Hook("events.event_pattern", "moto.events.models", "EventPattern",
             "rules and archives match with the kit's full pattern language (event_patterns.py) and its validation"),
        Hook("events.response.test_event_pattern", "moto.events.responses", "EventsHandler.test_event_pattern",
             "moto's handler is `pass` (HTTP 200, empty body); the kit answers {\"Result\": ...} as AWS does"),
        Hook("events.invalid_pattern", "moto.events.exceptions", "InvalidEventPatternException",
             "AWS's error for a malformed pattern"),
        Hook("events.validation_error", "moto.events.exceptions", "ValidationException", "EventBridge's ValidationException"),
        Hook("events.send_to_archive", "moto.events.models", "Rule._send_to_events_archive",
             "moto's archive delivery"),
        Hook("events.template_parser", "moto.events.utils", "EventTemplateParser", "archive input template"),
        Hook("events.put_events", "moto.events.models", "EventsBackend.put_events",
             "every event put on a bus reaches the schema discoverers of that bus (schemas.py)"),
        # EventBridge Schemas, which moto lacks (schemas.py): a kit service built from moto's request machinery.
        Hook("core.base_response", "moto.core.responses", "BaseResponse",
             "the Schemas API parses requests and serialises answers with botocore's model through it"),
        Hook("server.request_class", "moto.moto_server.werkzeug_app", "BackendRequest",
             "the request class moto's backend apps use; the Schemas app uses it too"),
        Hook("events.bus", "moto.events.models", "EventBus",
             "a Ref to an AWS::Events::EventBus is its name, as on AWS (moto has no physical_resource_id: the object)"),
        Hook("events.bus.create_from_cfn", "moto.events.models", "EventBus.create_from_cloudformation_json",
             "AWS::Events::EventBus ignores its Policy property; the kit applies it (cross-account delivery needs it)"),
        Hook("events.bus_policy_statement", "moto.events.models", "EventBusPolicyStatement",
             "a statement of an event bus's resource policy (AWS::Events::EventBusPolicy, which moto lacks)"),
        Hook("logs.backends", "moto.logs.models", "logs_backends", "Lambda and execution logs"),
        Hook("sns.backends", "moto.sns.models", "sns_backends", "EventBridge -> SNS targets"),
        Hook("sqs.backends", "moto.sqs.models", "sqs_backends", "EventBridge -> SQS targets"),
        # APIs served by their handler class without Flask (direct.py).
        Hook("server.moto_request", "moto.core.request", "Request", "the request type moto's handlers act on"),
        Hook("sts.handler", "moto.sts.responses", "TokenResponse", "the class moto's STS route dispatches to"),
        Hook("sqs.handler", "moto.sqs.responses", "SQSResponse", "the class moto's SQS route dispatches to"),
        Hook("dynamodb.handler", "moto.dynamodb.responses", "DynamoHandler", "the class moto's DynamoDB route dispatches to"),
        Hook("events.handler", "moto.events.responses", "EventsHandler", "the class moto's EventBridge route dispatches to"),
        Hook("logs.handler", "moto.logs.responses", "LogsResponse", "the class moto's CloudWatch Logs route dispatches to"),
        Hook("events.backends", "moto.events.models", "events_backends", "EventBridge -> event bus targets"),
        # IAM at run time (iam.py).
        Hook("core.authorize_request", "moto.core.authorization",
             "ActionAuthenticatorMixin._authenticate_and_authorize_normal_action",
             "every request moto dispatches passes here; requests signed with a role session are evaluated"),
        Hook("core.authorize_s3_request", "moto.core.authorization",
             "ActionAuthenticatorMixin._authenticate_and_authorize_s3_action", "the same for S3, per bucket and key"),
        *(Hook(f"sfn.boto_client.{short}", f"{_SFN}.asl.{module}", "boto_client_for",
               "Task integrations call AWS with the execution's role (imported by name)")
          for short, module in (
              ("utils", "utils.boto_client"),  # for code that imports it when it runs (stepfunctions.py)
              ("lambda", "component.state.exec.state_task.lambda_eval_utils"),
              *((name, f"component.state.exec.state_task.service.state_task_service_{name}")
                for name in ("sqs", "sns", "dynamodb", "events", "sfn", "aws_sdk", "unsupported", "glue", "ecs",
                             "batch")),
              ("item_reader_s3", "component.state.exec.state_map.item_reader.eval.resource_eval_s3"),
              ("result_writer_s3", "component.state.exec.state_map.result_writer.resource_eval.resource_eval_s3"),
          )),
        Hook("sts.assume_role", "moto.sts.responses", "TokenResponse.assume_role",
             "a role of another account is assumed only if its trust policy allows the caller (moto: any role)"),
        Hook("iam.response", "moto.iam.responses", "IamResponse",
             "moto has no SimulatePrincipalPolicy nor SimulateCustomPolicy: the kit adds them"),
        Hook("sfn.service_task_from_error", f"{_SFN}.asl.component.state.exec.state_task.service.state_task_service",
             "StateTaskService._from_error", "a denied integration call fails the Task with AWS's error name"),
        Hook("sfn.lambda_task_from_error", f"{_SFN}.asl.component.state.exec.state_task.state_task_lambda",
             "StateTaskLambda._from_error", "the same for a Task whose Resource is a function ARN"),
        # SQS that stays fast as a queue fills (sqs.py).
        Hook("sqs.send_message", _SQS, "SQSBackend.send_message",
             "moto builds every queue attribute (three walks of the queue) to read ContentBasedDeduplication"),
        Hook("sqs.validate_message", _SQS, "SQSBackend._validate_message",
             "FIFO queues: builds every queue attribute twice to read ContentBasedDeduplication"),
        Hook("sqs.queue.add_message", _SQS, "Queue.add_message",
             "FIFO queues: builds every attribute, then compares the deduplication id with every queued message"),
        Hook("sqs.deduplication_interval", _SQS, "DEDUPLICATION_TIME_IN_SECONDS", "FIFO deduplication interval"),
        Hook("sqs.retention_check", _SQS, "SQSBackend.is_message_valid_based_on_retention_period",
             "moto builds every queue attribute three times per received message"),
        Hook("sqs.queue.messages", _SQS, "Queue.messages", "moto lists every visible message to receive one"),
        Hook("sqs.queue.delete_message", _SQS, "Queue.delete_message", "moto walks the queue twice per delete"),
        Hook("sqs.clock", _SQS, "unix_time_millis",
             "the clock message visibility is kept in, read per message; imported by name; the kit's is time.time()"),
        Hook("sqs.receipt_handle", _SQS, "generate_receipt_handle",
             "185 calls to random.choice per received message; imported by name"),
        Hook("sqs.message", _SQS, "Message", "a sent message"),
        Hook("sqs.random", _SQS, "random", "moto's seedable random, for message ids"),
        Hook("sqs.max_delay", _SQS, "MAXIMUM_MESSAGE_DELAY", "DelaySeconds limit"),
        Hook("sqs.invalid_parameter", "moto.sqs.exceptions", "InvalidParameterValue", "SQS parameter error"),
        Hook("sqs.receipt_handle_invalid", "moto.sqs.exceptions", "ReceiptHandleIsInvalid", "DeleteMessage error"),
        Hook("sqs.response.receive_message", "moto.sqs.responses", "SQSResponse.receive_message",
             "its errors for MaxNumberOfMessages and WaitTimeSeconds repeat themselves and give WaitTimeSeconds' limits "
             "backwards, HTML-escaped"),
        Hook("sqs.queue.set_attributes", _SQS, "Queue._set_attributes",
             "int() of a numeric attribute: VisibilityTimeout=abc raised ValueError (a 500)"),
        Hook("sqs.invalid_attribute_value", "moto.sqs.exceptions", "InvalidAttributeValue",
             "CreateQueue/SetQueueAttributes error for a bad value"),
        # CloudWatch Logs lookups (logs.py).
        Hook("logs.find_log_group", "moto.logs.models", "LogsBackend._find_log_group",
             "a logGroupIdentifier found the last group created, whatever it named"),
        Hook("logs.group.get_log_events", "moto.logs.models", "LogGroup.get_log_events",
             "a missing stream was reported as a missing group"),
        Hook("logs.invalid_parameter", "moto.logs.exceptions", "InvalidParameterException", "Logs parameter error"),
        Hook("logs.not_found", "moto.logs.exceptions", "ResourceNotFoundException", "Logs missing resource"),
        # DynamoDB Query that stays fast as a table fills (dynamodb.py).
        Hook("dynamodb.table.query", "moto.dynamodb.models.table", "Table.query",
             "sorts every item of the table by key per Query, to keep one partition's (or, for an index, to sort again)"),
        Hook("dynamodb.keys_value", "moto.dynamodb.models", "DynamoDBBackend.get_keys_value",
             "GetItem/DeleteItem's key: a key of the wrong type found nothing (an N for an S key), a missing one said "
             "'Validation Exception'"),
        Hook("dynamodb.key_mismatch", "moto.dynamodb.exceptions", "ProvidedKeyDoesNotExist",
             "'The provided key element does not match the schema'"),
        Hook("dynamodb.overlapping_paths", "moto.dynamodb.parsing.validators",
             "OverlappingPathsValidator.check_for_overlapping_paths",
             "reads ExpressionAttributeNames before they are checked: an undefined #name raised KeyError (a 500)"),
        Hook("dynamodb.name_not_defined", "moto.dynamodb.exceptions", "ExpressionAttributeNameNotDefined",
             "UpdateItem's error for an undefined #name"),
        # Lab 2 bridges (securecart_lab/emulator/bridges/): CloudFormation, RDS, EC2, Auto Scaling, ELBv2.
        Hook("cfn.clean_json", f"{_CFN}.parsing", "clean_json",
             "Fn::Sub splits ${Database.Endpoint.Address} at every dot; the kit resolves dotted attributes"),
        Hook("cfn.create_resource", f"{_CFN}.parsing", "parse_and_create_resource",
             "per-resource stack events and property fixes (DBInstance VPCSecurityGroups, Port)"),
        Hook("cfn.stack.create_resources", f"{_CFN}.models", "Stack.create_resources",
             "a resource that fails rolls the stack back (ROLLBACK_COMPLETE), as on AWS, instead of an API error"),
        Hook("cfn.event", f"{_CFN}.models", "Event", "stack events the kit records per resource"),
        Hook("cfn.backends", f"{_CFN}.models", "cloudformation_backends", "find a stack by id"),
        # The CloudFormation API (securecart_lab/emulator/cloudformation/): the kit's handlers answer these actions.
        *(Hook(f"cfn.response.{action}", f"{_CFN}.responses", f"CloudFormationResponse.{action}",
               "validated, change-set based, updated in place with rollback (emulator/cloudformation/api.py)")
          for action in ("validate_template", "create_stack", "update_stack", "create_change_set",
                         "describe_change_set", "list_change_sets", "delete_change_set", "execute_change_set",
                         "delete_stack")),
        Hook("cfn.response", f"{_CFN}.responses", "CloudFormationResponse",
             "moto has no DescribeEvents, ContinueUpdateRollback nor drift detection: the kit adds them"),
        Hook("cfn.resource_map", f"{_CFN}.parsing", "ResourceMap", "creates a template's resources lazily"),
        Hook("cfn.resource_map.delete", f"{_CFN}.parsing", "ResourceMap.delete",
             "a resource deleted by hand counts as deleted when its stack's failed create is rolled back"),
        Hook("cfn.stack", f"{_CFN}.models", "Stack", "a stack created by a CREATE change set; its DriftInformation"),
        Hook("cfn.stack.stack_resources", f"{_CFN}.models", "Stack.stack_resources",
             "moto's resource map creates a resource when read: describing a stack while it is created must not"),
        Hook("cfn.stack.outputs", f"{_CFN}.models", "Stack.outputs", "the same for outputs"),
        Hook("cfn.stack_id", f"{_CFN}.utils", "generate_stack_id", "stack ARNs as moto makes them"),
        Hook("cfn.change_set_id", f"{_CFN}.utils", "generate_changeset_id", "change set ARNs as moto makes them"),
        Hook("cfn.validate_change_set_name", f"{_CFN}.utils", "validate_create_change_set", "AWS's name rules"),
        Hook("cfn.validation_error", f"{_CFN}.exceptions", "ValidationError", "CloudFormation's ValidationError"),
        Hook("cfn.action_result", "moto.core.responses", "ActionResult", "a response moto serialises in AWS's shape"),
        Hook("cfn.empty_result", "moto.core.responses", "EmptyResult", "an empty response"),
        Hook("ec2.tagged_resource", f"{_EC2}.core", "TaggedEC2Resource",
             "EC2 resources a stack creates get the aws:cloudformation:* tags"),
        Hook("ec2.create_subnet_association", f"{_EC2}.subnets", "SubnetBackend.create_subnet_association",
             "AWS::EC2::SubnetRouteTableAssociation records the association but never associates the route table"),
        Hook("rds.create_db_instance", _RDS, "RDSBackend.create_db_instance", "a real PostgreSQL database"),
        Hook("rds.delete_db_instance", _RDS, "RDSBackend.delete_db_instance", "drop the database after a final dump"),
        Hook("rds.modify_db_subnet_group", _RDS, "RDSBackend.modify_db_subnet_group",
             "moto's drops the group from the backend; CloudFormation updates it in place"),
        Hook("rds.address", _RDS, "DBInstance.address", "report the real endpoint host"),
        Hook("rds.create_db_snapshot", _RDS, "RDSBackend.create_db_snapshot",
             "a snapshot is a real dump (also the final snapshot DeleteDBInstance takes)"),
        Hook("rds.delete_db_snapshot", _RDS, "RDSBackend.delete_db_snapshot", "delete the snapshot's dump"),
        Hook("rds.db_instance", _RDS, "DBInstance", "describes the instance a snapshot listed again after a restart was of"),
        Hook("rds.db_snapshot", _RDS, "DBSnapshot", "snapshots an earlier emulator took, listed again from their records"),
        Hook("rds.restore_db_instance_from_db_snapshot", _RDS, "RDSBackend.restore_db_instance_from_db_snapshot",
             "the new instance's database holds the snapshot's data"),
        Hook("cfn.delete_resource", f"{_CFN}.parsing", "ResourceMap._delete_resource",
             "DeletionPolicy: Retain keeps a resource an update removes; Snapshot snapshots a DB instance first"),
        Hook("rds.error", "moto.rds.exceptions", "RDSClientError", "errors returned by the RDS API"),
        Hook("ec2.run_instances", f"{_EC2}.instances", "InstanceBackend.run_instances",
             "instances whose user data starts the SecureCart app become app processes"),
        Hook("ec2.instance.start", f"{_EC2}.instances", "Instance.start", "start the app process again"),
        Hook("ec2.instance.stop", f"{_EC2}.instances", "Instance.stop", "stop the app process"),
        Hook("ec2.instance.terminate", f"{_EC2}.instances", "Instance.terminate", "end the app process"),
        Hook("ec2.backends", _EC2, "ec2_backends", "find instances"),
        Hook("ec2.launch_template.create_version", f"{_EC2}.launch_templates", "LaunchTemplate.create_version",
             "CreateLaunchTemplateVersion keeps UserData as a plain string, which moto's Auto Scaling then fails "
             "on (an HTML 500 at the next launch); the kit stores it as CreateLaunchTemplate does"),
        Hook("ec2.get_console_output", "moto.ec2.responses.general", "General.get_console_output",
             "moto answers a canned 2006 Xen boot log; the kit serves the instance's real log"),
        Hook("autoscaling.replace_instances", _ASG, "FakeAutoScalingGroup.replace_autoscaling_group_instances",
             "moto puts every instance in the group's first subnet; the kit balances them over the subnets"),
        Hook("autoscaling.backends", _ASG, "autoscaling_backends", "keep each group at its desired capacity"),
        Hook("autoscaling.terminate_instance", _ASG, "AutoScalingBackend.terminate_instance",
             "an instance in no group is AWS's ValidationError (moto: StopIteration, an HTTP 500)"),
        Hook("autoscaling.validation_error", "moto.autoscaling.exceptions", "ValidationError", "Auto Scaling's error"),
        Hook("autoscaling.set_desired_capacity", _ASG, "FakeAutoScalingGroup.set_desired_capacity",
             "record the terminations of a scale-in as scaling activities"),
        Hook("autoscaling.describe_scaling_activities", "moto.autoscaling.responses",
             "AutoScalingResponse.describe_scaling_activities",
             "moto answers an empty list; the kit reports its launches, terminations and failed launches"),
        Hook("core.action_result", "moto.core.responses", "ActionResult", "the result type moto's responses return"),
        Hook("ec2.state_reason", f"{_EC2}.instances", "StateReason", "why an instance was terminated"),
        Hook("elbv2.create_load_balancer", _ELB, "ELBv2Backend.create_load_balancer",
             "a local HTTP load balancer; DNSName becomes its 127.0.0.1:port"),
        Hook("elbv2.delete_load_balancer", _ELB, "ELBv2Backend.delete_load_balancer", "stop the local load balancer"),
        Hook("elbv2.health_for", _ELB, "FakeTargetGroup.health_for", "report real health check results"),
        Hook("elbv2.health_status", _ELB, "FakeHealthStatus", "the target health moto serialises"),
        Hook("elbv2.backends", _ELB, "elbv2_backends", "load balancers, listeners and target groups"),
        # Lab 3 bridge (bridges/replicas.py): read replicas and ReplicaLag.
        Hook("rds.create_db_instance_read_replica", _RDS, "RDSBackend.create_db_instance_read_replica",
             "a real streaming standby of the source's PostgreSQL server"),
        Hook("rds.promote_read_replica", _RDS, "RDSBackend.promote_read_replica",
             "promote the real standby; moto keeps the source link, the kit clears it"),
        Hook("rds.reboot_db_instance", _RDS, "RDSBackend.reboot_db_instance", "restart the instance's (or replica's) server"),
        Hook("rds.backends", _RDS, "rds_backends", "DB instances the lag monitor reports on"),
        # RDS status and Multi-AZ failover (bridges/rds_status.py).
        Hook("rds.event", _RDS, "Event", "the kit records availability and failover events (its EVENT_MAP)"),
        Hook("rds.response.reboot_db_instance", "moto.rds.responses", "RDSResponse.reboot_db_instance",
             "moto ignores ForceFailover; the kit fails a Multi-AZ instance over"),
        Hook("rds.stop_db_instance", _RDS, "RDSBackend.stop_db_instance", "stop the instance's real servers"),
        Hook("rds.start_db_instance", _RDS, "RDSBackend.start_db_instance", "start the instance's real server again"),
        Hook("cloudwatch.backends", "moto.cloudwatch.models", "cloudwatch_backends", "publish ReplicaLag"),
        # S3 static website hosting (s3website.py).
        Hook("cfn.model", "moto.core.common_models", "CloudFormationModel",
             "base of CloudFormation resource models: the kit adds AWS::S3::BucketPolicy, which moto lacks"),
        Hook("s3.bucket.create_from_cfn", "moto.s3.models", "FakeBucket.create_from_cloudformation_json",
             "AWS::S3::Bucket ignores WebsiteConfiguration; the kit stores it as PutBucketWebsite would"),
        Hook("s3.bucket.website_url", "moto.s3.models", "FakeBucket.website_url",
             "GetAtt WebsiteURL names the local website endpoint, as the ALB's DNSName names its local port"),
        Hook("s3.backends", "moto.s3.models", "s3_backends", "find a bucket and its objects by name"),
    )
}


class HookMissing(RuntimeError):
    """moto no longer has an attribute the kit patches: the pinned moto range is wrong."""


def _split(hook: Hook) -> tuple[Any, str]:
    try:
        owner: Any = importlib.import_module(hook.module)
    except ImportError as exc:
        raise HookMissing(f"hook {hook.name}: cannot import {hook.module}: {exc}") from exc
    *parents, leaf = hook.attribute.split(".")
    for part in parents:
        owner = getattr(owner, part, None)
        if owner is None:
            raise HookMissing(f"hook {hook.name}: {hook.module} has no {hook.attribute}")
    if not hasattr(owner, leaf):
        raise HookMissing(f"hook {hook.name}: {hook.module} has no {hook.attribute}")
    return owner, leaf


def resolve(name: str) -> Any:
    """The moto object a hook names (raises HookMissing if moto moved it)."""
    owner, leaf = _split(HOOKS[name])
    return getattr(owner, leaf)


_originals: dict[str, Any] = {}


def replace(name: str, new: Any) -> Any:
    """Patch the hook with `new`; return moto's original. Idempotent: patching twice keeps the first original."""
    owner, leaf = _split(HOOKS[name])
    original = _originals.setdefault(name, getattr(owner, leaf))
    setattr(owner, leaf, new)
    return original


_added: dict[tuple[str, str], Any] = {}


def add(name: str, attribute: str, value: Any) -> None:
    """Give the object a hook names an attribute moto lacks (an API action moto does not implement). Refuses if moto
    has it already: a moto upgrade that implements it must be checked against the kit's version."""
    owner = resolve(name)
    current = getattr(owner, attribute, None)
    if current is not None and _added.get((name, attribute)) is not current:
        raise HookMissing(f"hook {name}: moto now has {attribute}; re-check the kit's version against it")
    setattr(owner, attribute, value)
    _added[(name, attribute)] = value


def original(name: str) -> Any:
    """moto's own object behind a hook, whether or not it has been replaced."""
    return _originals.get(name) or resolve(name)


# What the emulator does not load at start (startup.defer_imports, before moto is first imported), each checked by
# tests/unit/test_emulator_hooks.py.
# moto's package __init__ modules import its mock machinery (moto.core.models: boto3's stubber, responses, requests,
# unittest.mock), which server mode never uses: these packages are registered without running their __init__, and
# each name it defines resolves on first use.
def _attribute(module: str, path: str) -> Callable[[], Any]:
    return lambda: functools.reduce(getattr, path.split("."), importlib.import_module(module))


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


LAZY_PACKAGES: dict[str, dict[str, Callable[[], Any]]] = {
    "moto": {
        "mock_aws": _attribute("moto.core.decorator", "mock_aws"),
        "__title__": lambda: "moto",
        "__version__": _moto_version,
    },
    "moto.core": {
        "DEFAULT_ACCOUNT_ID": _attribute("moto.core.models", "DEFAULT_ACCOUNT_ID"),
        "patch_client": _attribute("moto.core.models", "patch_client"),
        "patch_resource": _attribute("moto.core.models", "patch_resource"),
        "ActionAuthenticatorMixin": _attribute("moto.core.authorization", "ActionAuthenticatorMixin"),
        "enable_iam_authentication": _attribute("moto.core.authorization", "enable_iam_authentication"),
        "disable_iam_authentication": _attribute("moto.core.authorization", "disable_iam_authentication"),
        "set_initial_no_auth_action_count": _attribute(
            "moto.core.authorization", "ActionAuthenticatorMixin.set_initial_no_auth_action_count"),
    },
}
# Names moto's modules import from these packages as they load (`from moto.core import DEFAULT_ACCOUNT_ID`): set at
# once, or the first import would load what the deferral avoids.
EAGER_PACKAGE_NAMES: dict[str, dict[str, Any]] = {"moto.core": {"DEFAULT_ACCOUNT_ID": "123456789012"}}

# Modules moto imports as it loads but uses in a few actions only: each is imported on first use instead.
DEFERRED_MODULES: dict[str, str] = {
    "cryptography.x509": "moto.iam.models (which STS's first answer loads) parses certificates with it in "
                         "UploadServerCertificate alone; 40 % of the first answer's time",
}
