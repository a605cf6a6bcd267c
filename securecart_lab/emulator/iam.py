"""IAM at run time: when a service acts on the learner's behalf, the role it acts as must allow the call.

Where AWS evaluates a role, the kit does too:
- a Step Functions execution calls SQS, SNS, DynamoDB, EventBridge, Lambda, Step Functions (nested executions)
  and the AWS SDK integrations with its role (or a Task's `Credentials.RoleArn`);
- an EventBridge target that names a `RoleArn` (a state machine) is started with that role; a Lambda target is
  invoked only if the function's resource policy lets `events.amazonaws.com` (for that rule) invoke it;
- Lambda handler code calls AWS with its execution role's temporary credentials (`AWS_SESSION_TOKEN` set, as on
  AWS), so `boto3` in a handler is limited to what the role allows.

Those callers sign their requests with temporary credentials of the role (moto's STS keeps them, so
`sts get-caller-identity` names the assumed role); the emulator evaluates the role's policies for every request
signed with such credentials, before moto handles it. Requests signed with any other key (the kit's admin keys:
the learner's CLI, boto3, the checks) are not evaluated. `SECURECART_IAM=off` turns evaluation off.

The evaluation is AWS's: an explicit Deny wins, then an Allow, else the request is implicitly denied; Action and
NotAction (case-insensitive, `*` and `?`), Resource and NotResource (ARNs, `*` and `?`), the common condition
operators (String*, Arn*, Numeric*, Date*, Bool, IpAddress, Null, with IfExists and ForAnyValue/ForAllValues),
inline and attached managed policies and the permissions boundary. moto's own evaluator
(moto/iam/access_control.py) is not used: it passes "*" as the resource for nearly every service, knows only
StringEquals, treats an Allow whose condition fails as a Deny, and lets a NotResource statement allow everything.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import os
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote

from securecart_lab.emulator import hooks

LOG = logging.getLogger(__name__)

OFF_VALUES = ("off", "0", "false", "no", "disabled")


def enabled() -> bool:
    """Whether the emulator evaluates roles (SECURECART_IAM, default on)."""
    return os.environ.get("SECURECART_IAM", "on").strip().lower() not in OFF_VALUES


def setting() -> str:
    return "enforced" if enabled() else "off"


# --- policy evaluation ------------------------------------------------------------------------------------------


ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "allow", "explicit-deny", "implicit-deny"


@dataclass(frozen=True)
class Decision:
    result: str
    policy: str | None = None  # the managed policy ARN of an explicit deny, when it came from one

    @property
    def allowed(self) -> bool:
        return self.result == ALLOW


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


@functools.lru_cache(maxsize=4096)
def _glob(pattern: str, ignore_case: bool) -> re.Pattern:
    # IAM wildcards: * any run of characters (colons and slashes too), ? one character; nothing else is special.
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL)


def matches(pattern: str, value: str, ignore_case: bool = False) -> bool:
    return isinstance(pattern, str) and _glob(pattern, ignore_case).match(value) is not None


def _action_matches(patterns: Any, action: str) -> bool:
    return any(matches(p, action, ignore_case=True) for p in _as_list(patterns))


def _resource_matches(patterns: Any, resource: str) -> bool:
    return any(matches(p, resource) for p in _as_list(patterns))


def _principal_matches(principal: Any, caller: dict[str, str]) -> bool:
    """A resource policy's Principal against the caller ({"Service": ...} or {"AWS": arn or account})."""
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    for kind, values in principal.items():
        for value in _as_list(values):
            if value == "*":
                return True
            if kind == "Service" and caller.get("Service") == value:
                return True
            if kind == "AWS" and caller.get("AWS") and (
                    value == caller["AWS"] or value in (caller.get("Account"), f"arn:aws:iam::{caller.get('Account')}:root")):
                return True
    return False


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _date(value: Any) -> float | None:
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value)
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return float(text)
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _ip_in(value: Any, network: Any) -> bool:
    try:
        return ipaddress.ip_address(str(value)) in ipaddress.ip_network(str(network), strict=False)
    except ValueError:
        return False


def _compare(base: str, actual: Any, expected: Any) -> bool:
    """One condition operator (without IfExists/For...Value and without its negation) on one pair of values."""
    if base == "StringEquals":
        return str(actual) == str(expected)
    if base == "StringEqualsIgnoreCase":
        return str(actual).lower() == str(expected).lower()
    if base in ("StringLike", "ArnLike"):
        return matches(str(expected), str(actual))
    if base == "ArnEquals":
        return str(actual) == str(expected)
    if base.startswith("Numeric"):
        a, e = _number(actual), _number(expected)
        return a is not None and e is not None and _ORDER[base[len("Numeric"):]](a, e)
    if base.startswith("Date"):
        a, e = _date(actual), _date(expected)
        return a is not None and e is not None and _ORDER[base[len("Date"):]](a, e)
    if base == "Bool":
        return str(actual).lower() == str(expected).lower()
    if base == "IpAddress":
        return _ip_in(actual, expected)
    if base == "BinaryEquals":
        return str(actual) == str(expected)
    raise KeyError(base)


_ORDER = {
    "Equals": lambda a, e: a == e, "LessThan": lambda a, e: a < e, "LessThanEquals": lambda a, e: a <= e,
    "GreaterThan": lambda a, e: a > e, "GreaterThanEquals": lambda a, e: a >= e,
}
_NEGATED = {
    "StringNotEquals": "StringEquals", "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike", "ArnNotEquals": "ArnEquals", "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals", "DateNotEquals": "DateEquals", "NotIpAddress": "IpAddress",
}


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, Any]) -> bool:
    """One operator/key pair of a Condition block, as AWS evaluates it."""
    qualifier = None
    if ":" in operator and operator.split(":", 1)[0] in ("ForAnyValue", "ForAllValues"):
        qualifier, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    operator = operator[: -len("IfExists")] if if_exists else operator
    present = {k.lower(): v for k, v in context.items()}
    actual = present.get(key.lower())
    expected_values = [str(v) if isinstance(v, bool) else v for v in _as_list(expected)]
    if operator == "Null":
        wanted = str(expected_values[0]).lower() == "true" if expected_values else True
        return (actual is None) == wanted
    if actual is None:
        if if_exists or qualifier == "ForAllValues":
            return True
        return operator in _NEGATED  # a negated operator on a missing key holds, a positive one does not
    negate = operator in _NEGATED
    base = _NEGATED.get(operator, operator)
    try:
        actual_values = _as_list(actual)

        def one(value: Any) -> bool:
            hit = any(_compare(base, value, e) for e in expected_values)
            return not hit if negate else hit

        if qualifier == "ForAllValues":
            return all(one(v) for v in actual_values)
        return any(one(v) for v in actual_values)
    except KeyError:
        LOG.warning("IAM condition operator %s is not supported; the condition does not hold", operator)
        return False


def _conditions_hold(conditions: Any, context: dict[str, Any]) -> bool:
    if not conditions:
        return True
    if not isinstance(conditions, dict):
        return False
    return all(_condition_holds(operator, key, expected, context)
               for operator, block in conditions.items() if isinstance(block, dict)
               for key, expected in block.items())


def statement_applies(statement: dict, action: str, resource: str, context: dict[str, Any],
                      caller: dict[str, str] | None = None) -> bool:
    """Whether a statement's Action/NotAction, Resource/NotResource, Principal (resource policies) and Condition
    all match the request."""
    if "NotAction" in statement:
        if _action_matches(statement["NotAction"], action):
            return False
    elif not _action_matches(statement.get("Action"), action):
        return False
    if "NotResource" in statement:
        if _resource_matches(statement["NotResource"], resource):
            return False
    elif "Resource" in statement:
        if not _resource_matches(statement["Resource"], resource):
            return False
    elif caller is None:  # an identity policy statement without Resource matches nothing
        return False
    if caller is not None:
        if "NotPrincipal" in statement:
            if _principal_matches(statement["NotPrincipal"], caller):
                return False
        elif not _principal_matches(statement.get("Principal"), caller):
            return False
    return _conditions_hold(statement.get("Condition"), context)


def evaluate(documents: list[tuple[dict, str | None]], action: str, resource: str, context: dict[str, Any],
             caller: dict[str, str] | None = None) -> Decision:
    """AWS's evaluation of one request against policies (each with the managed policy ARN it came from, or None):
    an explicit Deny wins, then an Allow, else an implicit deny."""
    allowed = False
    for document, source in documents:
        for statement in _as_list(document.get("Statement") if isinstance(document, dict) else None):
            if not isinstance(statement, dict) or not statement_applies(statement, action, resource, context, caller):
                continue
            if statement.get("Effect") == "Deny":
                return Decision(EXPLICIT_DENY, source)
            if statement.get("Effect") == "Allow":
                allowed = True
    return Decision(ALLOW if allowed else IMPLICIT_DENY)


def _document(text: Any) -> dict:
    if isinstance(text, dict):
        return text
    text = str(text)
    if text.lstrip().startswith("%7B"):
        text = unquote(text)
    try:
        document = json.loads(text)
    except ValueError:
        return {}
    return document if isinstance(document, dict) else {}


def _managed_document(policy) -> dict:
    version = next((v for v in getattr(policy, "versions", []) if getattr(v, "is_default", False)), None)
    return _document(version.document if version is not None else getattr(policy, "document", "{}"))


def _iam_backend(account: str):
    from moto.iam.models import iam_backends

    return iam_backends[account]["aws"]


def role_policies(role_arn: str, account: str) -> tuple[list[tuple[dict, str | None]], dict | None]:
    """The role's identity policies (inline, then attached managed ones) and its permissions boundary; no policies
    when the role does not exist (every call is then implicitly denied, as for a deleted role on AWS)."""
    backend = _iam_backend(account)
    try:
        role = backend.get_role_by_arn(role_arn)
    except Exception:
        return [], None
    documents: list[tuple[dict, str | None]] = [(_document(text), None) for text in list(role.policies.values())]
    documents += [(_managed_document(policy), arn) for arn, policy in list(role.managed_policies.items())]
    boundary = None
    boundary_arn = getattr(role, "permissions_boundary_arn", None)
    if boundary_arn:
        policy = backend.managed_policies.get(boundary_arn)
        boundary = _managed_document(policy) if policy is not None else {}
    return documents, boundary


# --- sessions: the temporary credentials a service uses for a role -----------------------------------------------


@dataclass(frozen=True)
class Session:
    role_arn: str
    session_name: str
    account: str
    access_key_id: str
    secret_access_key: str
    session_token: str

    @property
    def arn(self) -> str:
        """The caller as AWS names it in errors: arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION."""
        return f"arn:aws:sts::{self.account}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session_name}"


_sessions: dict[str, Session] = {}
_by_role: dict[tuple[str, str], Session] = {}
_lock = threading.Lock()
SESSION_SECONDS = 12 * 3600


def _account_of(role_arn: str, default: str) -> str:
    parts = role_arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4] else default


def session(role_arn: str, session_name: str | None = None, region: str = "us-east-1") -> Session:
    """Temporary credentials for the role (one set per role and session name, kept for the emulator's life; a
    service's session without a name gets a random one, as AWS's do), issued through moto's STS so that
    GetCallerIdentity with them names the assumed role."""
    from moto.sts.models import sts_backends

    from securecart_lab.config import ACCOUNT_ID

    with _lock:
        found = _by_role.get((role_arn, session_name))
        if found is not None:
            return found
        name = session_name or secrets.token_hex(16)  # a service's own session: one per role, named at random
        account = _account_of(role_arn, ACCOUNT_ID)
        assumed = sts_backends[account]["aws"].assume_role(
            region_name=region, role_session_name=name, role_arn=role_arn, policy="", duration=SESSION_SECONDS,
            external_id="")
        found = Session(role_arn, name, assumed.account_id, assumed.access_key_id, assumed.secret_access_key,
                        assumed.session_token)
        _sessions[found.access_key_id] = found
        _by_role[(role_arn, session_name)] = found
        return found


def session_for(access_key_id: str | None) -> Session | None:
    """The role session these credentials belong to: one the kit issued to a service, or one anybody made with
    sts:AssumeRole (a learner who assumes a role gets what the role allows, as on AWS)."""
    found = _sessions.get(access_key_id or "")
    if found is not None or not (access_key_id or "").startswith("ASIA"):
        return found
    from moto.sts.models import sts_backends

    for account in list(sts_backends.keys()):
        for assumed in list(sts_backends[account]["aws"].assumed_roles):
            if assumed.access_key_id == access_key_id:
                found = Session(assumed.role_arn, assumed.session_name, assumed.account_id, assumed.access_key_id,
                                assumed.secret_access_key, assumed.session_token)
                with _lock:
                    _sessions[access_key_id] = found
                return found
    return None


# --- what a request asks for ---------------------------------------------------------------------------------


# API operations whose IAM action has another name.
_ACTION_NAMES = {
    ("lambda", "Invoke"): "InvokeFunction", ("lambda", "InvokeAsync"): "InvokeFunction",
    ("lambda", "InvokeWithResponseStream"): "InvokeFunction",
    ("sqs", "SendMessageBatch"): "SendMessage", ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("sns", "PublishBatch"): "Publish",
    ("states", "StartSyncExecution"): "StartSyncExecution",
}
# Services whose error messages name the action in lower case (as AWS's do).
_LOWER_CASE_ACTIONS = {"sqs"}


def iam_action(service: str, operation: str) -> str:
    return f"{service}:{_ACTION_NAMES.get((service, operation), operation)}"


def _params(response) -> dict[str, Any]:
    parsed = getattr(response, "params", None)  # moto's parse of the request against the service model
    if isinstance(parsed, dict) and parsed:
        return parsed
    body = getattr(response, "body", None)
    if isinstance(body, dict):
        return body
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.lstrip().startswith("{"):
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                return parsed
        except ValueError:
            pass
    return {k: (v[0] if isinstance(v, list) and len(v) == 1 else v) for k, v in (response.querystring or {}).items()}


def resources(service: str, operation: str, params: dict[str, Any], path: str, region: str, account: str) -> list[str]:
    """The ARNs a request acts on, as IAM sees them ("*" for actions without resource-level permissions)."""
    arn = f"arn:aws:{service}:{region}:{account}:"

    def qualify(value: Any, prefix: str) -> str | None:
        if not isinstance(value, str) or not value:
            return None
        return value if value.startswith("arn:") else arn + prefix + value

    found: list[str | None] = []
    if service == "sqs":
        url = params.get("QueueUrl")
        name = url.rstrip("/").rsplit("/", 1)[-1] if isinstance(url, str) else params.get("QueueName")
        found.append(arn + name if isinstance(name, str) and name else None)
    elif service == "sns":
        topic = params.get("TopicArn") or params.get("TargetArn") or params.get("ResourceArn")
        found.append(topic or (qualify(params.get("Name"), "") if operation == "CreateTopic" else None))
    elif service == "dynamodb":
        if isinstance(params.get("RequestItems"), dict):
            found += [qualify(name, "table/") for name in params["RequestItems"]]
        elif isinstance(params.get("TransactItems"), list):
            for item in params["TransactItems"]:
                for inner in (item or {}).values():
                    found.append(qualify((inner or {}).get("TableName"), "table/"))
        else:
            table = qualify(params.get("TableName") or params.get("ResourceArn"), "table/")
            if table and params.get("IndexName") and operation in ("Query", "Scan"):
                table += f"/index/{params['IndexName']}"
            found.append(table)
    elif service == "lambda":
        match = re.search(r"/functions/([^/]+)", path)
        name = unquote(match.group(1)) if match else params.get("FunctionName")
        if isinstance(name, str) and name:
            if not name.startswith("arn:"):
                name, _, qualifier = name.partition(":")
                name = arn + "function:" + name + (f":{qualifier}" if qualifier else "")
            qualifier = params.get("Qualifier")
            if isinstance(qualifier, str) and qualifier and name.count(":") == 6:
                name += f":{qualifier}"
            found.append(name)
    elif service == "states":
        found.append(params.get("stateMachineArn") or params.get("executionArn") or params.get("activityArn")
                     or params.get("resourceArn") or params.get("mapRunArn")
                     or (arn + "stateMachine:" + params["name"] if operation == "CreateStateMachine"
                         and isinstance(params.get("name"), str) else None))
    elif service == "events":
        if operation == "PutEvents":
            for entry in params.get("Entries") or []:
                bus = (entry or {}).get("EventBusName") or "default"
                found.append(bus if bus.startswith("arn:") else arn + f"event-bus/{bus}")
        elif params.get("Rule") or (params.get("Name") and "Rule" in operation):
            bus = params.get("EventBusName") or "default"
            rule = params.get("Rule") or params.get("Name")
            found.append(arn + ("rule/" if bus == "default" else f"rule/{bus}/") + rule)
        elif params.get("EventBusName") or (params.get("Name") and "EventBus" in operation):
            bus = params.get("EventBusName") or params.get("Name")
            found.append(bus if bus.startswith("arn:") else arn + f"event-bus/{bus}")
    elif service == "logs":
        group = params.get("logGroupName")
        if isinstance(group, str):
            stream = params.get("logStreamName")
            found.append(arn + f"log-group:{group}" + (f":log-stream:{stream}" if isinstance(stream, str) else ""))
    return [r for r in found if r] or ["*"]


def context_keys(session: Session, region: str) -> dict[str, Any]:
    now = time.time()
    return {
        "aws:PrincipalArn": session.role_arn,
        "aws:PrincipalAccount": session.account,
        "aws:PrincipalType": "AssumedRole",
        "aws:userid": f"AROA:{session.session_name}",
        "aws:RequestedRegion": region,
        "aws:SourceIp": "127.0.0.1",
        "aws:SecureTransport": "false",
        "aws:CurrentTime": datetime.fromtimestamp(now, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "aws:EpochTime": str(int(now)),
    }


def authorize(session: Session, action: str, resource: str, region: str) -> Decision:
    documents, boundary = role_policies(session.role_arn, session.account)
    context = context_keys(session, region)
    decision = evaluate(documents, action, resource, context)
    if decision.allowed and boundary is not None:
        bounded = evaluate([(boundary, None)], action, resource, context)
        if not bounded.allowed:
            return Decision(bounded.result if bounded.result == EXPLICIT_DENY else "boundary", bounded.policy)
    return decision


def denial_message(caller_arn: str, action: str, resource: str, decision: Decision) -> str:
    service = action.split(":", 1)[0]
    shown = action.lower() if service in _LOWER_CASE_ACTIONS else action
    if service == "s3":
        resource = f'"{resource}"'  # S3 quotes the resource in its message
    base = f"User: {caller_arn} is not authorized to perform: {shown} on resource: {resource}"
    if decision.result == EXPLICIT_DENY:
        return base + " with an explicit deny in an identity-based policy" + (f": {decision.policy}" if decision.policy else "")
    if decision.result == "boundary":
        return base + " because no permissions boundary allows the " + shown + " action"
    return base + f" because no identity-based policy allows the {shown} action"


# --- the emulator side: evaluate requests signed with a role's temporary credentials --------------------------


# Each service's error for a denied call: (code, HTTP status, body style).
_ERRORS = {
    "sqs": ("AccessDenied", 403, "json"),
    "sns": ("AuthorizationError", 403, "xml"),
    "dynamodb": ("AccessDeniedException", 400, "json"),
    "lambda": ("AccessDeniedException", 403, "json"),
    "states": ("AccessDeniedException", 400, "json"),
    "events": ("AccessDeniedException", 400, "json"),
    "logs": ("AccessDeniedException", 400, "json"),
}


def _access_denied(service: str, message: str, form_encoded: bool):
    from werkzeug.exceptions import HTTPException

    code, status, style = _ERRORS.get(service, ("AccessDenied", 403, "xml"))
    if form_encoded:  # the query protocol (AWS CLI v1, older SDKs) answers XML whatever the service
        style = "xml"
    error = HTTPException()
    error.code = status
    if style == "json":
        error.description = json.dumps({"__type": code, "message": message, "Message": message})
    else:
        from xml.sax.saxutils import escape

        error.description = (f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escape(message)}"
                             f"</Message></Error><RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>")
    return error


def _signing_service(headers) -> str | None:
    authorization = headers.get("Authorization") or ""
    match = re.search(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/", authorization)
    return match.group(1) if match else None


def authorize_request(self, resource: str = "*") -> None:
    """Replaces moto's request authorization (off unless INITIAL_NO_AUTH_ACTION_COUNT is set): a request signed with
    a role session's credentials is evaluated against the role's policies; any other request passes, as before."""
    if not enabled():
        return
    found = session_for(getattr(self, "access_key", None))
    if found is None:
        return
    service = _signing_service(self.headers)
    operation = self._get_action()
    if not service or not operation or (service, operation) == ("sts", "GetCallerIdentity"):
        return
    action = iam_action(service, operation)
    region = getattr(self, "region", None) or "us-east-1"
    params = _params(self)
    for arn in resources(service, operation, params, getattr(self, "path", "") or "", region, found.account):
        decision = authorize(found, action, arn, region)
        if not decision.allowed:
            message = denial_message(found.arn, action, arn, decision)
            LOG.info("IAM: %s", message)
            form = "x-www-form-urlencoded" in (self.headers.get("Content-Type") or "")
            raise _access_denied(service, message, form)


def authorize_s3_request(self, bucket_name: str | None = None, key_name: str | None = None) -> None:
    """The same for S3, whose handlers authorize per bucket and key (moto names the IAM action in data["Action"])."""
    if not enabled():
        return
    found = session_for(self.get_access_key())
    if found is None:
        return
    operation = (getattr(self, "data", None) or {}).get("Action") or "ListAllMyBuckets"
    action = f"s3:{operation[0] if isinstance(operation, list) else operation}"
    path = f"{bucket_name}/{key_name}" if bucket_name and key_name else (bucket_name or "*")
    resource = f"arn:aws:s3:::{path}" if path != "*" else "*"
    region = getattr(self, "region", None) or "us-east-1"
    decision = authorize(found, action, resource, region)
    if not decision.allowed:
        from moto.s3.exceptions import S3AccessDeniedError

        message = denial_message(found.arn, action, resource, decision)
        LOG.info("IAM: %s", message)
        error = S3AccessDeniedError()
        error.message = message
        error.args = (message,)
        raise error


# --- Step Functions: integrations call with the execution's role -----------------------------------------------


# What a denied call makes a Task fail with on AWS: the integration's error name and the "(Service: ...)" part
# of the cause.
SFN_ERRORS = {
    "sqs": ("SQS.AmazonSQSException", "AmazonSQS"),
    "sns": ("SNS.AuthorizationErrorException", "AmazonSNS"),
    "dynamodb": ("DynamoDB.AmazonDynamoDBException", "AmazonDynamoDBv2"),
    "lambda": ("Lambda.AWSLambdaException", "AWSLambda"),
    "events": ("EventBridge.AmazonEventBridgeException", "AmazonEventBridge"),
    "stepfunctions": ("StepFunctions.AWSStepFunctionsException", "AWSStepFunctions"),
}


class IntegrationAccessDenied(Exception):
    """A Task's call was denied: carries the error name and cause the Task fails with."""

    def __init__(self, error: str, cause: str):
        super().__init__(cause)
        self.error = error
        self.cause = cause


def _sdk_error_name(service: str) -> str:
    """aws-sdk integrations: "<Service>.<Service>Exception" (an unmodelled error in the AWS SDK for Java v2)."""
    name = {"dynamodb": "DynamoDb", "stepfunctions": "Sfn", "sqs": "Sqs", "sns": "Sns", "lambda": "Lambda",
            "events": "EventBridge", "s3": "S3"}.get(service, service[:1].upper() + service[1:])
    return f"{name}.{name}Exception"


def _raise_denied(aws_sdk: bool):
    def on_response(http_response=None, parsed=None, model=None, **_):
        error = (parsed or {}).get("Error") or {}
        message = error.get("Message") or ""
        if not (" is not authorized to perform: " in message and ":assumed-role/" in message):
            return
        service = model.service_model.service_name if model is not None else ""
        error_name, label = SFN_ERRORS.get(service, (None, model.service_model.service_id if model else service))
        if aws_sdk or error_name is None:
            error_name = _sdk_error_name(service)
        request_id = ((parsed or {}).get("ResponseMetadata") or {}).get("RequestId") or str(uuid.uuid4())
        status = getattr(http_response, "status_code", 403)
        cause = (f"{message} (Service: {label}; Status Code: {status}; Error Code: {error.get('Code')}; "
                 f"Request ID: {request_id}; Proxy: null)")
        raise IntegrationAccessDenied(error_name, cause)

    return on_response


def _role_client(original, aws_sdk: bool):
    def boto_client_for(region: str, service: str, state_credentials: Any = None):
        from securecart_lab.config import ACCOUNT_ID, SECRET_KEY, access_key_for

        role_arn = getattr(state_credentials, "role_arn", None)
        account = _account_of(role_arn or "", ACCOUNT_ID)
        if not role_arn or (not enabled() and account == ACCOUNT_ID):
            return original(region, service, state_credentials)
        import boto3
        from botocore.config import Config

        if enabled():
            creds = session(role_arn, region=region)
            keys = (creds.access_key_id, creds.secret_access_key, creds.session_token)
        else:  # not evaluated, but still in the role's account (the admin keys act in SecureCart's)
            keys = (access_key_for(account), SECRET_KEY, None)
        client = boto3.client(
            service_name=service, region_name=region, endpoint_url=f"http://localhost:{_moto_port()}",
            aws_access_key_id=keys[0], aws_secret_access_key=keys[1], aws_session_token=keys[2],
            config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                          connect_timeout=_TIMEOUT, read_timeout=_TIMEOUT),
        )
        if enabled():
            client.meta.events.register("after-call", _raise_denied(aws_sdk))
        return client

    return boto_client_for


_TIMEOUT = 99999


def _moto_port() -> str:
    from moto.settings import moto_server_port

    return moto_server_port()


def _failure_event(env, error: str, cause: str, resource: str | None, resource_type: str | None):
    from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
    from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
    from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
    from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

    details = {"error": error, "cause": cause}
    if resource:
        details.update(resource=resource, resourceType=resource_type)
    return FailureEvent(env=env, error_name=CustomErrorName(error), event_type=HistoryEventType.TaskFailed,
                        event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(**details)))


def _service_from_error(original):
    def _from_error(self, env, ex):
        if isinstance(ex, IntegrationAccessDenied):
            return _failure_event(env, ex.error, ex.cause, self._get_sfn_resource(), self._get_sfn_resource_type())
        return original(self, env, ex)

    return _from_error


def _lambda_from_error(original):
    def _from_error(self, env, ex):
        if isinstance(ex, IntegrationAccessDenied):
            return _failure_event(env, ex.error, ex.cause, None, None)
        return original(self, env, ex)

    return _from_error


# Modules of moto's Step Functions interpreter that imported boto_client_for by name.
SFN_CLIENT_HOOKS = tuple(name for name in hooks.HOOKS if name.startswith("sfn.boto_client."))


def install_stepfunctions() -> None:
    """Task integrations call AWS with the execution's role; a denied call fails the Task with AWS's error."""
    for name in SFN_CLIENT_HOOKS:
        hooks.replace(name, _role_client(hooks.original(name), aws_sdk=name.endswith(".aws_sdk")))
    hooks.replace("sfn.service_task_from_error", _service_from_error(hooks.original("sfn.service_task_from_error")))
    hooks.replace("sfn.lambda_task_from_error", _lambda_from_error(hooks.original("sfn.lambda_task_from_error")))


# --- EventBridge targets -----------------------------------------------------------------------------------------


class TargetAccessDenied(Exception):
    """EventBridge could not deliver to a target: its role or the function's resource policy does not allow it."""


def authorize_target(rule, target: dict[str, Any], account: str, region: str) -> None:
    """Raise TargetAccessDenied when AWS would not deliver: a target with a RoleArn needs the role to allow the call
    (states:StartExecution, or the target service's action); a Lambda target without a role needs the function's
    resource policy to let events.amazonaws.com invoke it for this rule."""
    if not enabled():
        return
    arn = target["Arn"]
    service = arn.split(":")[2] if arn.count(":") >= 2 else ""
    rule_arn = getattr(rule, "arn", None) or ""
    action = {"states": "states:StartExecution", "lambda": "lambda:InvokeFunction", "sqs": "sqs:SendMessage",
              "sns": "sns:Publish"}.get(service)
    if service == "events":
        action = ("events:InvokeApiDestination" if ":api-destination/" in arn
                  else "events:PutEvents" if ":event-bus/" in arn else None)
    if action is None:
        return
    role_arn = target.get("RoleArn")
    if role_arn:
        creds = session(role_arn, region=region)
        decision = authorize(creds, action, arn, region)
        if not decision.allowed:
            raise TargetAccessDenied(denial_message(creds.arn, action, arn, decision))
        return
    if service == "states":
        raise TargetAccessDenied(f"Target {arn} of rule {rule_arn} has no RoleArn: EventBridge needs a role to start a "
                           "state machine")
    if service == "lambda":
        _function_policy_allows(arn, rule_arn, account, region)


def authorize_bus(rule, target: dict[str, Any], bus, event: dict[str, Any], region: str) -> None:
    """Raise TargetAccessDenied unless the event bus of another account lets the rule's account put this event:
    its resource policy (PutPermission, AWS::Events::EventBusPolicy, the bus's Policy) must allow events:PutEvents
    to the rule's account (or its role, when the target names one). A permission granted through the organization
    (aws:PrincipalOrgID) needs a RoleArn on the target, as on AWS."""
    if not enabled():
        return
    from securecart_lab.config import ORGANIZATION_ID

    source = rule.account_id
    role_arn = target.get("RoleArn")
    principal_arn = role_arn or f"arn:aws:iam::{source}:root"
    policy = _document(bus.policy) if getattr(bus, "policy", None) else {}
    for statement in _as_list(policy.get("Statement")):
        # moto writes PutPermission's Principal "*" as arn:aws:iam::*:root; AWS writes "*".
        if isinstance(statement, dict) and statement.get("Principal") == {"AWS": "arn:aws:iam::*:root"}:
            statement["Principal"] = "*"
    context = {
        "aws:PrincipalAccount": source, "aws:PrincipalArn": principal_arn, "aws:PrincipalOrgID": ORGANIZATION_ID,
        "aws:SourceAccount": source, "aws:SourceArn": getattr(rule, "arn", ""), "aws:RequestedRegion": region,
        "events:source": event.get("source"), "events:detail-type": event.get("detail-type"),
    }
    caller = {"AWS": principal_arn, "Account": source}
    decision = evaluate([(policy, None)], "events:PutEvents", bus.arn, context, caller=caller)
    if not decision.allowed:
        why = "with an explicit deny in a resource-based policy" if decision.result == EXPLICIT_DENY else (
            "because no resource-based policy allows the events:PutEvents action" if policy
            else "because the event bus has no resource-based policy")
        raise TargetAccessDenied(f"User: {principal_arn} is not authorized to perform: events:PutEvents on resource: "
                                 f"{bus.arn} {why}")
    if not role_arn:
        without_org = {k: v for k, v in context.items() if k != "aws:PrincipalOrgID"}
        if not evaluate([(policy, None)], "events:PutEvents", bus.arn, without_org, caller=caller).allowed:
            raise TargetAccessDenied(f"Event bus {bus.arn} allows account {source} through its organization "
                                     f"({ORGANIZATION_ID}) only: the rule's target must name a RoleArn that may "
                                     "events:PutEvents on it")


LOG_DELIVERY_SERVICES = ("events.amazonaws.com", "delivery.logs.amazonaws.com")


def authorize_log_delivery(rule, group_arn: str, stream: str, policies: list[Any], region: str) -> None:
    """Raise TargetAccessDenied unless a CloudWatch Logs resource policy of the log group's account lets EventBridge
    (events.amazonaws.com or delivery.logs.amazonaws.com) logs:CreateLogStream and logs:PutLogEvents in the group,
    as AWS requires for a log group target (the console adds such a policy for you; the API and CloudFormation
    do not)."""
    if not enabled():
        return
    documents = [(_document(getattr(policy, "policy_document", "")), None) for policy in policies]
    resource = f"{group_arn}:log-stream:{stream}"
    context = {"aws:SourceArn": getattr(rule, "arn", ""), "aws:SourceAccount": rule.account_id,
               "aws:RequestedRegion": region}
    for action in ("logs:CreateLogStream", "logs:PutLogEvents"):
        if not any(evaluate(documents, action, resource, context, caller={"Service": service}).allowed
                   for service in LOG_DELIVERY_SERVICES):
            raise TargetAccessDenied(
                f"events.amazonaws.com is not authorized to perform: {action} on resource: {resource} because no "
                "CloudWatch Logs resource policy allows it (logs put-resource-policy, or AWS::Logs::ResourcePolicy, "
                f"with Principal {{\"Service\": \"events.amazonaws.com\"}} and Resource {group_arn}:*)")


def _function_policy_allows(function_arn: str, rule_arn: str, account: str, region: str) -> None:
    backends = hooks.resolve("lambda.backends")[account][region]
    try:
        fn = backends.get_function(function_arn)
    except Exception:
        raise TargetAccessDenied(f"Function not found: {function_arn}") from None
    policy = getattr(fn, "policy", None)
    statements = list(getattr(policy, "statements", None) or []) if policy is not None else []
    context = {"aws:SourceArn": rule_arn, "aws:SourceAccount": account, "aws:PrincipalServiceName": "events.amazonaws.com"}
    decision = evaluate([({"Statement": statements}, None)], "lambda:InvokeFunction", fn.function_arn, context,
                        caller={"Service": "events.amazonaws.com"})
    if not decision.allowed:
        raise TargetAccessDenied(f"events.amazonaws.com is not authorized to perform: lambda:InvokeFunction on resource: "
                           f"{fn.function_arn}: its resource-based policy does not allow rule {rule_arn} (add a "
                           "permission with lambda add-permission --principal events.amazonaws.com --source-arn RULE)")


# --- Lambda: handler code runs with the execution role's credentials --------------------------------------------


def function_credentials(fn) -> dict[str, str] | None:
    """AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN of the function's execution role (session
    named after the function, as on AWS), or None when IAM is off."""
    role_arn = getattr(fn, "role", None)
    if not enabled() or not isinstance(role_arn, str) or not role_arn:
        return None
    creds = session(role_arn, session_name=fn.function_name, region=getattr(fn, "region", None) or "us-east-1")
    return {"AWS_ACCESS_KEY_ID": creds.access_key_id, "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
            "AWS_SESSION_TOKEN": creds.session_token}


# --- IAM's policy simulator (moto has none): SimulatePrincipalPolicy and SimulateCustomPolicy -------------------


_DECISIONS = {ALLOW: "allowed", EXPLICIT_DENY: "explicitDeny", IMPLICIT_DENY: "implicitDeny", "boundary": "implicitDeny"}


def _principal_policies(source_arn: str) -> tuple[list[tuple[dict, str | None]], dict | None]:
    from securecart_lab.config import ACCOUNT_ID

    account = source_arn.split(":")[4] if source_arn.count(":") >= 5 and source_arn.split(":")[4] else ACCOUNT_ID
    if ":role/" in source_arn:
        return role_policies(source_arn, account)
    if ":user/" in source_arn:
        backend = _iam_backend(account)
        try:
            user = backend.get_user(source_arn.rsplit("/", 1)[-1])
        except Exception:
            return [], None
        documents = [(_document(text), None) for text in list(user.policies.values())]
        documents += [(_managed_document(policy), arn) for arn, policy in list(user.managed_policies.items())]
        return documents, None
    return [], None


def _simulation_context(entries: Any) -> dict[str, Any]:
    context: dict[str, Any] = {}
    for entry in entries or []:
        name, values = entry.get("ContextKeyName"), entry.get("ContextKeyValues") or []
        if name:
            context[name] = values if str(entry.get("ContextKeyType", "")).endswith("List") else (values[0] if values else None)
    return context


def simulate(documents: list[tuple[dict, str | None]], boundary: dict | None, actions: list[str],
             resources_: list[str], context: dict[str, Any]) -> list[dict[str, Any]]:
    results = []
    for action in actions:
        for resource in resources_ or ["*"]:
            decision = evaluate(documents, action, resource, context)
            if decision.allowed and boundary is not None and not evaluate([(boundary, None)], action, resource, context).allowed:
                decision = Decision("boundary")
            results.append({"EvalActionName": action, "EvalResourceName": resource,
                            "EvalDecision": _DECISIONS[decision.result], "MatchedStatements": [],
                            "MissingContextValues": []})
    return results


def _simulate_principal_policy(self):
    from moto.core.responses import ActionResult

    documents, boundary = _principal_policies(self._get_param("PolicySourceArn") or "")
    extra = [(_document(text), None) for text in self._get_param("PolicyInputList") or []]
    results = simulate(documents + extra, boundary, self._get_param("ActionNames") or [],
                       self._get_param("ResourceArns") or ["*"], _simulation_context(self._get_param("ContextEntries")))
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def _simulate_custom_policy(self):
    from moto.core.responses import ActionResult

    documents = [(_document(text), None) for text in self._get_param("PolicyInputList") or []]
    results = simulate(documents, None, self._get_param("ActionNames") or [], self._get_param("ResourceArns") or ["*"],
                       _simulation_context(self._get_param("ContextEntries")))
    return ActionResult({"EvaluationResults": results, "IsTruncated": False})


def install_simulator() -> None:
    """moto answers SimulatePrincipalPolicy and SimulateCustomPolicy with NotImplemented; the kit answers them with
    the evaluator the emulator enforces."""
    response = hooks.resolve("iam.response")
    response.simulate_principal_policy = _simulate_principal_policy
    response.simulate_custom_policy = _simulate_custom_policy


# --- STS: assuming a role of another account --------------------------------------------------------------------


def _caller_arn(access_key: str | None, account: str) -> str:
    found = session_for(access_key)
    return found.arn if found is not None else f"arn:aws:iam::{account}:root"


def trust_allows(role_arn: str, caller_arn: str, caller_account: str) -> bool:
    """Whether the role's trust policy lets this caller sts:AssumeRole (the role must exist)."""
    try:
        role = _iam_backend(_account_of(role_arn, caller_account)).get_role_by_arn(role_arn)
    except Exception:
        return False
    principal_arn = caller_arn
    found = re.match(r"arn:aws:sts::(\d{12}):assumed-role/([^/]+)/", caller_arn)
    if found:  # a role session is named by its role in trust policies
        principal_arn = f"arn:aws:iam::{found.group(1)}:role/{found.group(2)}"
    context = {"aws:PrincipalAccount": caller_account, "aws:PrincipalArn": principal_arn}
    caller = {"AWS": principal_arn, "Account": caller_account}
    return evaluate([(_document(role.assume_role_policy_document), None)], "sts:AssumeRole", role_arn, context,
                    caller=caller).allowed


def _assume_role(original):
    def assume_role(self):
        """A role of another account is assumed only if its trust policy allows the caller, as on AWS. Within one
        account the kit does not evaluate trust policies (README: "IAM at run time")."""
        role_arn = self._get_param("RoleArn") or ""
        caller_account = self.current_account
        if enabled() and _account_of(role_arn, caller_account) != caller_account:
            caller_arn = _caller_arn(self.get_access_key(), caller_account)
            if not trust_allows(role_arn, caller_arn, caller_account):
                message = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
                LOG.info("IAM: %s", message)
                raise _access_denied("sts", message, True)
        return original(self)

    return assume_role


def install_sts() -> None:
    hooks.replace("sts.assume_role", _assume_role(hooks.original("sts.assume_role")))


def install() -> None:
    """Evaluate requests signed with role sessions (the other pieces install with their services)."""
    hooks.replace("core.authorize_request", authorize_request)
    hooks.replace("core.authorize_s3_request", authorize_s3_request)
