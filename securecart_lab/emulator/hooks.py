"""Every point where the kit reaches into moto, in one list.

Extensions patch moto only through `replace()`, naming a hook from `HOOKS`, so a moto upgrade that moves
or renames one of them fails in one place (and in tests/unit/test_emulator_hooks.py), not at run time.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

_SFN = "moto.stepfunctions.parser"


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
        Hook("server.request_handler", "moto.moto_server.werkzeug_app", "MotoRequestHandler", "keeps header names"),
        Hook("sfn.start_execution", f"{_SFN}.models", "StepFunctionsParserBackend.start_execution",
             "executions started without a name get a UUID name, as on AWS"),
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
        Hook("sfn.backend", "moto.stepfunctions.responses", "get_backend",
             "the backend that runs executions, used by EventBridge targets"),
        Hook("lambda.invoke_lambda", "moto.awslambda.models", "LambdaFunction._invoke_lambda",
             "run handler code in local worker processes instead of Docker"),
        Hook("lambda.invoke", "moto.awslambda.models", "LambdaFunction.invoke",
             "Event invocations run in the background; handler errors are Unhandled"),
        Hook("lambda.backends", "moto.awslambda.models", "lambda_backends", "find functions by ARN"),
        Hook("events.send_to_targets", "moto.events.models", "Rule.send_to_targets",
             "deliver to Step Functions, Lambda, SNS and SQS with InputPath/Input/InputTransformer"),
        Hook("events.send_to_logs", "moto.events.models", "Rule._send_to_cw_log_group", "moto's logs delivery"),
        Hook("events.send_to_archive", "moto.events.models", "Rule._send_to_events_archive",
             "moto's archive delivery"),
        Hook("events.template_parser", "moto.events.utils", "EventTemplateParser", "archive input template"),
        Hook("logs.backends", "moto.logs.models", "logs_backends", "Lambda and execution logs"),
        Hook("sns.backends", "moto.sns.models", "sns_backends", "EventBridge -> SNS targets"),
        Hook("sqs.backends", "moto.sqs.models", "sqs_backends", "EventBridge -> SQS targets"),
        Hook("events.backends", "moto.events.models", "events_backends", "EventBridge -> event bus targets"),
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


def original(name: str) -> Any:
    """moto's own object behind a hook, whether or not it has been replaced."""
    return _originals.get(name) or resolve(name)
