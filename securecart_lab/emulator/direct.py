"""The JSON APIs of SQS, DynamoDB, EventBridge, CloudWatch Logs and Step Functions answered by moto's handler
without Flask around it.

moto serves every request through a Flask app: an app and a request context, URL routing, werkzeug reading the
body and parsing it as a form, rebuilding the URL four ways, then a Response object. For the data-plane calls that
a learner's code and the burst checks make thousands of times (SendMessage, ReceiveMessage, DeleteMessage, PutItem,
GetItem, Query, PutEvents, PutLogEvents, DescribeExecution ...) that machinery cost more than the operation itself.

A request whose X-Amz-Target names one of these APIs (a plain JSON POST to "/", as every SDK sends) goes straight
to the handler class Flask would have called, with a request whose body is read once: the same parameter parsing,
IAM authorisation, backend call, errors and serialisation as moto's route. Anything else, and the first request to
each service (which builds the service's app and installs the kit's extensions for it), goes through moto's
dispatcher as before.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any

from securecart_lab.emulator import aws_errors, hooks, validation

# X-Amz-Target prefix -> (moto service, the hook naming its handler class)
TARGETS: dict[str, tuple[str, str]] = {
    "AmazonSQS": ("sqs", "sqs.handler"),
    "DynamoDB_20120810": ("dynamodb", "dynamodb.handler"),
    "AWSEvents": ("events", "events.handler"),
    "Logs_20140328": ("logs", "logs.handler"),
    "AWSStepFunctions": ("stepfunctions", "sfn.response"),
}


def _request_class():
    """moto's request class (BackendRequest: moto's Request and Flask's), its body given rather than parsed."""
    from werkzeug.datastructures import ImmutableMultiDict

    base = hooks.resolve("server.request_class")
    empty = ImmutableMultiDict()

    class DirectRequest(base):
        # werkzeug computes these from the stream and the environ on first access, for every request; a JSON POST
        # to "/" has no form, files or query, and its body is already read.
        form = files = args = values = empty
        data = raw_url = b""
        raw_path = "/"
        content_encoding = None

        def __init__(self, environ: dict[str, Any], body: bytes):
            environ["wsgi.input"] = io.BytesIO(body)  # for anything that reads the stream itself
            super().__init__(environ)
            self.data = body
            self.raw_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}/"

    return DirectRequest


class Direct:
    """WSGI middleware in front of moto's dispatcher: serves TARGETS' requests with the service's handler class
    directly, once moto's dispatcher has served that service once (see the module doc)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self._handlers: dict[str, type] = {}
        self._request_class: type | None = None
        self._response_class: type | None = None
        self._client_error: type | None = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target and environ.get("REQUEST_METHOD") == "POST":
            prefix, _, action = target.partition(".")
            found = TARGETS.get(prefix)
            if found is not None and _plain(environ):
                body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
                try:
                    validation.precheck(found[0], action, body)
                except validation.Invalid as invalid:
                    return _error(invalid, start_response)
                if found[0] in self._handlers:
                    return self._serve(found[0], body, environ, start_response)
                environ["wsgi.input"] = io.BytesIO(body)
            if found is not None and found[0] not in self._handlers:
                return self._first(found, environ, start_response)
        return self.app(environ, start_response)

    def _first(self, found: tuple[str, str], environ, start_response) -> Iterable[bytes]:
        """moto's dispatcher builds the service's app (and the kit installs its extensions); later requests are
        served directly."""
        result = self.app(environ, start_response)
        if environ.get(aws_errors.UNHANDLED):
            return result  # moto's dispatcher failed before building the service's app: not served yet
        service, hook = found
        if self._request_class is None:
            from botocore.exceptions import ClientError
            from flask import Response

            self._request_class, self._response_class, self._client_error = _request_class(), Response, ClientError
        self._handlers[service] = hooks.resolve(hook)
        return result

    def _serve(self, service: str, body: bytes, environ: dict[str, Any],
               start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = self._request_class(environ, body)
        handler = self._handlers[service]()
        try:
            handler.setup_class(request)
            result = handler.call_action()
        except Exception as exc:
            if isinstance(exc, self._client_error):  # as moto's route answers a botocore error
                response = self._response_class(exc.response["Error"]["Message"], status=400)
            else:  # what Flask's error handler would have answered
                if not isinstance(exc, NotImplementedError):
                    try:
                        validation.check(service, environ["HTTP_X_AMZ_TARGET"].partition(".")[2], body)
                    except validation.Invalid as invalid:  # a malformed request, which AWS refuses
                        return _error(invalid, start_response)
                response = aws_errors.answer(service, request, exc)
        else:
            status, headers, content = result if len(result) == 3 else (200, {}, result)
            response = self._response_class(response=content, status=status, headers=headers)
        return response(environ, start_response)


def _error(invalid: validation.Invalid, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """A request the API model refuses, answered in the JSON protocol's error shape (what aws_errors answers, without
    a Flask request to build it from)."""
    import json
    import uuid

    body = json.dumps({"__type": invalid.code, "message": invalid.message, "Message": invalid.message}).encode()
    start_response("400 Bad Request", [
        ("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body))),
        ("x-amzn-RequestId", str(uuid.uuid4())), ("x-amzn-ErrorType", invalid.code)])
    return [body]


def _plain(environ: dict[str, Any]) -> bool:
    """A JSON POST to "/" with its length given and an unencoded body: what the handler is served here for."""
    return (environ.get("PATH_INFO") in ("/", "") and not environ.get("QUERY_STRING")
            and not environ.get("HTTP_CONTENT_ENCODING") and (environ.get("CONTENT_LENGTH") or "").isdigit())
