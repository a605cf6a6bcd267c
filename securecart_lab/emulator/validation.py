"""A JSON request's body checked against the service's API model before moto sees it, as AWS checks it.

moto trusts the SDK to have sent well-typed parameters: a body that is not a JSON object, a string where a list
belongs (`"Entries": "x"`), a number where a string belongs, or a missing required parameter made it raise a
TypeError, KeyError or AttributeError, which answered as a 500 `InternalFailure` (that the AWS CLI retries up to 9
times). AWS answers those at once: `SerializationException` for a body or a value of the wrong JSON type,
`ValidationException` (SQS: `MissingParameter`) for a missing or too short parameter. The model is botocore's, the
one every SDK validates with; parameters it does not know (a newer SDK's) are left to the service, as AWS does.

The full check costs 60-130 microseconds a request, so it runs only when moto fails unexpectedly (what such a
request makes it do); before moto, only what is free: the action exists and the body is a JSON object.
"""

from __future__ import annotations

import functools
import json
from typing import Any

# botocore's names of the services direct.TARGETS serves
SERVICES = {"sqs": "sqs", "dynamodb": "dynamodb", "events": "events", "logs": "logs", "stepfunctions": "stepfunctions"}

_JSON_TYPES = {dict: "an object", list: "a list", str: "a string", bool: "a boolean", int: "a number",
               float: "a number", type(None): "null"}
_EXPECTED = {"structure": "an object", "map": "an object", "list": "a list", "string": "a string",
             "integer": "a number", "long": "a number", "double": "a number", "float": "a number",
             "boolean": "a boolean", "timestamp": "a timestamp", "blob": "a base64 string"}


class Invalid(Exception):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


@functools.cache
def _operations(service: str) -> dict[str, Any]:
    from botocore.loaders import create_loader
    from botocore.model import ServiceModel

    model = ServiceModel(create_loader().load_service_model(service, "service-2"), service)
    return {name: model.operation_model(name).input_shape for name in model.operation_names}


@functools.cache
def _validator():
    from botocore.validate import ParamValidator

    return ParamValidator()


def _found(value: Any) -> str:
    return _JSON_TYPES.get(type(value), type(value).__name__)


def _member(path: str) -> str:
    """botocore's "Key.orderId" as AWS names it in a message: "key.orderId"."""
    head, _, rest = path.partition(".")
    return head[:1].lower() + head[1:] + (f".{rest}" if rest else "")


def precheck(service: str, action: str, body: bytes) -> None:
    """Raise Invalid for an action the API lacks or a body that is not a JSON object (no parsing)."""
    if action not in _operations(SERVICES[service]):
        raise Invalid("UnknownOperationException", f"{action} is not an operation of {service}")
    if body and body.lstrip()[:1] != b"{":
        check(service, action, body)


def check(service: str, action: str, body: bytes) -> None:
    """Raise Invalid when `body` is not what `action` of `service` takes (an action the API lacks included)."""
    shapes = _operations(SERVICES[service])
    if action not in shapes:
        raise Invalid("UnknownOperationException", f"{action} is not an operation of {service}")
    try:
        params = json.loads(body) if body.strip() else {}
    except ValueError as exc:
        raise Invalid("SerializationException", f"The request body is not valid JSON: {exc}") from None
    if not isinstance(params, dict):
        raise Invalid("SerializationException",
                      f"The request body must be a JSON object, found {_found(params)}")
    shape = shapes[action]
    if shape is None:
        return
    report = _validator().validate(params, shape)
    problems = [error for error in report._errors if error[0] != "unknown field"]
    if not problems:
        return
    for kind, name, details in problems:
        if kind in ("invalid type", "invalid type for document"):
            expected = _shape_type(shape, name)
            raise Invalid("SerializationException",
                          f"Unexpected value for '{_path(name)}': expected {_EXPECTED.get(expected, expected)}, "
                          f"found {_found(details.get('param'))} ({json.dumps(details.get('param'), default=str)[:80]})")
    messages = []
    for kind, name, details in problems:
        if kind == "missing required field":
            required = details["required_name"]
            if service == "sqs":
                raise Invalid("MissingParameter", f"The request must contain the parameter {required}.")
            where = _member(f"{_path(name)}.{required}" if _path(name) else required)
            messages.append(f"Value null at '{where}' failed to satisfy constraint: Member must not be null")
        elif kind in ("invalid range", "invalid length"):
            what = "have length" if kind == "invalid length" else "have value"
            # botocore reports a string's or list's length as the value
            messages.append(f"Value '{details['param']}' at '{_member(_path(name))}' failed to satisfy constraint: Member must "
                            f"{what} greater than or equal to {details['min_allowed']}")
        else:
            messages.append(f"{kind} at '{_member(_path(name))}'")
    count = len(messages)
    code = "InvalidParameterValue" if service == "sqs" else "ValidationException"
    raise Invalid(code, f"{count} validation error{'s' if count > 1 else ''} detected: " + "; ".join(messages))


def _path(name: str) -> str:
    # botocore names the top level "input"
    return "" if name == "input" else name.removeprefix("input").lstrip(".")


def _shape_type(shape, name: str) -> str:
    """The model's type at botocore's report name (e.g. "input.Entries[0].Detail")."""
    for part in _path(name).replace("[", ".[").split("."):
        if not part:
            continue
        if part.startswith("["):
            shape = shape.member
        elif shape.type_name == "map":
            shape = shape.value
        elif " (key:" in part:
            return "string"
        else:
            shape = shape.members.get(part, shape)
    return shape.type_name
