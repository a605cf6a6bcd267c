"""Whatever moto lets escape answers as an AWS error in the service's protocol, never as an HTML 500.

moto raises NotImplementedError for actions and features it lacks; Flask would turn that (or any other bug) into
an HTML page, which the AWS CLI retries four times and then reports as a bare "500". The kit answers
`UnsupportedOperation` (400, the action named) or `InternalFailure` (500) in the shape the client parses: JSON for
JSON protocols, XML for query and REST-XML ones.
"""

from __future__ import annotations

import json
import logging
import uuid
from xml.sax.saxutils import escape

LOG = logging.getLogger(__name__)

REST_XML = {"s3", "route53", "cloudfront"}


def _action(request) -> str:
    target = request.headers.get("X-Amz-Target", "")
    if target:
        return target.rsplit(".", 1)[-1]
    action = request.values.get("Action") if request.method in ("GET", "POST") else None
    return action or f"{request.method} {request.path}"


def _json(service: str, request) -> bool:
    """Whether the request's protocol answers errors in JSON (else XML)."""
    return bool(request.headers.get("X-Amz-Target") or "json" in request.headers.get("Content-Type", "") or (
        service not in REST_XML and not request.values.get("Action") and service != "ec2"))


def json_error(code: str, message: str, status: int = 400):
    """An error in the JSON protocols' shape, as a WSGI response."""
    from werkzeug.wrappers import Response

    body = json.dumps({"__type": code, "message": message, "Message": message})
    return Response(body, status=status, content_type="application/x-amz-json-1.1",
                    headers={"x-amzn-RequestId": str(uuid.uuid4()), "x-amzn-ErrorType": code})


def error_response(service: str, request, code: str, message: str, status: int):
    from werkzeug.wrappers import Response

    if _json(service, request):
        return json_error(code, message, status)
    request_id = str(uuid.uuid4())
    headers = {"x-amzn-RequestId": request_id, "x-amzn-ErrorType": code}
    if service == "ec2":
        body = (f"<Response><Errors><Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"</Errors><RequestID>{request_id}</RequestID></Response>")
    elif service in REST_XML:
        body = (f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
                f"<RequestId>{request_id}</RequestId></Error>")
    else:
        body = (f"<ErrorResponse><Error><Type>{'Sender' if status < 500 else 'Receiver'}</Type>"
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>")
    return Response(body, status=status, headers=headers, content_type="text/xml")


def answer(service: str, request, exc: Exception):
    """The answer to an exception moto let escape while serving `request`: an HTTP error as werkzeug renders it, an
    operation or feature moto lacks as UnsupportedOperation, anything else as InternalFailure."""
    from botocore.model import OperationNotFoundError
    from werkzeug.exceptions import HTTPException

    action = _action(request)
    if isinstance(exc, OperationNotFoundError):  # an action the service's API does not have at all
        if _json(service, request):
            return json_error("UnknownOperationException", f"{action} is not an operation of {service}")
        return error_response(service, request, "InvalidAction",
                              f"Could not find operation {action} for version {request.values.get('Version', '')}", 400)
    if isinstance(exc, HTTPException):
        if exc is getattr(request, "routing_exception", None) and exc.code in (404, 405):
            # No moto route for this REST path: an operation moto lacks (Flask would answer an HTML 404).
            return error_response(
                service, request, "UnsupportedOperation",
                f"{request.method} {request.path} is not supported by the securecart-lab emulator ({service}): "
                "no such operation", 400)
        return exc
    if isinstance(exc, NotImplementedError):
        LOG.info("%s %s is not supported by the emulator: %s", service, action, exc)
        return error_response(
            service, request, "UnsupportedOperation",
            f"{action} is not supported by the securecart-lab emulator ({service}): {exc or 'not implemented'}",
            400)
    invalid = _malformed(service, request, action)
    if invalid is not None:
        return error_response(service, request, invalid.code, invalid.message, 400)
    LOG.exception("%s %s failed inside the emulator", service, action)
    return error_response(service, request, "InternalFailure",
                          f"The securecart-lab emulator failed to process {action}: {type(exc).__name__}: {exc}",
                          500)


def _malformed(service: str, request, action: str):
    """What the API model says is wrong with a JSON request moto failed on (validation.py), or None."""
    from securecart_lab.emulator import validation

    if service not in validation.SERVICES or not request.headers.get("X-Amz-Target"):
        return None
    try:
        validation.check(service, action, request.get_data())
    except validation.Invalid as invalid:
        return invalid
    return None


def install(app, service: str) -> None:
    """Register the handler on one moto backend app (extensions.backend_app builds them)."""
    from flask import request

    app.register_error_handler(Exception, lambda exc: answer(service, request, exc))


class Unhandled:
    """WSGI middleware around moto's dispatcher: an exception that escapes it before any Flask app runs (moto could
    not tell which service a request is for, e.g. a credential scope naming no service) answers InternalFailure in
    the request's protocol, where the HTTP server would answer an empty 500."""

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        try:
            return self.app(environ, start_response)
        except Exception as exc:  # noqa: BLE001 - the last place to answer in AWS's shape
            from securecart_lab.emulator import guard

            LOG.exception("a request failed in moto's dispatcher")
            return guard.refuse(environ, start_response, status="500 Internal Server Error",
                                codes=("InternalFailure", "InternalFailure", "InternalError"),
                                message=f"The securecart-lab emulator could not serve this request: "
                                        f"{type(exc).__name__}: {exc}")
