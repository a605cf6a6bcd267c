"""The APIs the kit's traffic is made of, answered by moto's handler class without Flask around it: the JSON APIs
of SQS, DynamoDB, EventBridge, CloudWatch Logs and Step Functions, and STS.

moto serves every request through a Flask app: an app and a request context, URL routing, werkzeug reading the
body and parsing it as a form, rebuilding the URL four ways, then a Response object. For the data-plane calls that
a learner's code and the burst checks make thousands of times (SendMessage, ReceiveMessage, DeleteMessage, PutItem,
GetItem, Query, PutEvents, PutLogEvents, DescribeExecution ...) that machinery cost more than the operation itself;
and building moto's dispatcher and a service's Flask app (Flask and Jinja loaded) was a sixth of the emulator's
start before its first answer (`sts get-caller-identity`).

A POST to "/" whose X-Amz-Target names one of these JSON APIs, or a form POST signed for STS (as every SDK sends
them), goes straight to the handler class moto's route would call, with a request whose body is read once: the same
parameter parsing, IAM authorisation, backend call, errors and serialisation, after the kit's extensions for the
service are installed (extensions.ensure, as before the service's first request). Anything else goes through
moto's dispatcher as before.
"""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from securecart_lab.emulator import aws_errors, extensions, hooks, validation

# X-Amz-Target prefix -> (moto service, the hook naming its handler class)
TARGETS: dict[str, tuple[str, str]] = {
    "AmazonSQS": ("sqs", "sqs.handler"),
    "DynamoDB_20120810": ("dynamodb", "dynamodb.handler"),
    "AWSEvents": ("events", "events.handler"),
    "Logs_20140328": ("logs", "logs.handler"),
    "AWSStepFunctions": ("stepfunctions", "sfn.response"),
}
# Query-protocol APIs (a form body, the service named by the signature's credential scope)
FORM_SERVICES: dict[str, tuple[str, str]] = {
    "sts": ("sts", "sts.handler"),
}
_FORM = "application/x-www-form-urlencoded"
_SIGNED_FOR = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")


def _classes() -> tuple[type, type, type]:
    """The request and response classes the handlers get (moto's and werkzeug's, as its Flask route would use)."""
    from botocore.exceptions import ClientError
    from werkzeug.datastructures import ImmutableMultiDict
    from werkzeug.wrappers import Response as WerkzeugResponse

    empty = ImmutableMultiDict()

    class DirectRequest(hooks.resolve("server.moto_request")):
        # werkzeug computes these from the stream and the environ on first access, for every request; a POST to "/"
        # has no files or query, its body is read once, and a form body is parsed once.
        from_wsgi_server = True  # what moto's Flask request class says: the server sets Date
        form = files = args = values = empty
        data = raw_url = b""
        raw_path = "/"
        content_encoding = None

        def __init__(self, environ: dict[str, Any], body: bytes):
            environ["wsgi.input"] = io.BytesIO(body)  # for anything that reads the stream itself
            super().__init__(environ)
            self.raw_url = f"{environ.get('wsgi.url_scheme', 'http')}://{environ.get('HTTP_HOST', '')}/"
            if (environ.get("CONTENT_TYPE") or "").startswith(_FORM):
                # As werkzeug: a form's fields in form and values, its data empty.
                self.form = self.values = ImmutableMultiDict(
                    parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
            else:
                self.data = body

    class Response(WerkzeugResponse):
        default_mimetype = "text/html"  # Flask's, which moto's route answers with when a handler names none

    return DirectRequest, Response, ClientError


class Direct:
    """WSGI middleware in front of moto's dispatcher: serves the requests of TARGETS and FORM_SERVICES with the
    service's handler class directly (see the module doc)."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app
        self._lock = threading.Lock()
        self._handlers: dict[str, type] = {}  # services whose extensions are installed -> their handler class
        self._request_class = self._response_class = self._client_error = None

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and _plain(environ):
            target = environ.get("HTTP_X_AMZ_TARGET")
            if target:
                found = TARGETS.get(target.partition(".")[0])
            elif (environ.get("CONTENT_TYPE") or "").startswith(_FORM):
                signed = _SIGNED_FOR.search(environ.get("HTTP_AUTHORIZATION") or "")
                found = FORM_SERVICES.get(signed.group(1)) if signed else None
            else:
                found = None
            if found is not None:
                return self._serve(found, environ, start_response)
        return self.app(environ, start_response)

    def _handler(self, found: tuple[str, str]) -> type:
        service, hook = found
        handler = self._handlers.get(service)
        if handler is None:
            with self._lock:
                if self._request_class is None:
                    self._request_class, self._response_class, self._client_error = _classes()
                extensions.ensure(service)  # what moto's dispatcher has done before a service's first request
                handler = self._handlers[service] = hooks.resolve(hook)
        return handler

    def _serve(self, found: tuple[str, str], environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ["CONTENT_LENGTH"]))
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            try:  # what costs nothing before moto: the action exists, the body is a JSON object (validation.py)
                validation.precheck(found[0], target.partition(".")[2], body)
            except validation.Invalid as invalid:
                return aws_errors.json_error(invalid.code, invalid.message)(environ, start_response)
        handler = self._handler(found)()
        request = self._request_class(environ, body)
        try:
            handler.setup_class(request)
            result = handler.call_action()
        except Exception as exc:
            if isinstance(exc, self._client_error):  # as moto's route answers a botocore error
                response = self._response_class(exc.response["Error"]["Message"], status=400)
            else:  # what the kit's error handler on moto's apps answers (a malformed request: AWS's refusal)
                response = aws_errors.answer(found[0], request, exc)
        else:
            status, headers, content = result if len(result) == 3 else (200, {}, result)
            response = self._response_class(response=content, status=status, headers=headers)
        return response(environ, start_response)


def _plain(environ: dict[str, Any]) -> bool:
    """A POST to "/" with its length given and an unencoded body: what the handlers are served here for."""
    return (environ.get("PATH_INFO") in ("/", "") and not environ.get("QUERY_STRING")
            and not environ.get("HTTP_CONTENT_ENCODING") and (environ.get("CONTENT_LENGTH") or "").isdigit())
