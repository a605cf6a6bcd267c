"""Who may drive the kit's local servers: loopback Host names only, CORS only for the origins the kit serves.

Every server binds 127.0.0.1, but a web page the learner visits can still reach it: by cross-origin requests (a
"simple" POST needs no preflight) or by DNS rebinding (an attacker's name resolving to 127.0.0.1, so the browser
sends `Host: rebind.evil.example:4566`). The emulator runs whatever the AWS API is asked to run, so both are
refused here, before a request reaches moto, the load balancers or the app, with AWS's error shape:

- `Host` must be a loopback name (127.0.0.1 and the rest of 127/8, ::1, localhost, *.localhost), any port,
  optionally with botocore's `sync-` host prefix. A missing Host (not a browser) passes.
- A request carrying an `Origin` is refused unless the origin is one the kit serves: a loopback name on the
  emulator's port (the S3 website endpoint) or on a load balancer's port, the request's own origin, or one listed
  in SECURECART_ALLOWED_ORIGINS (comma-separated). Refused requests never reach moto, so no CORS allowance leaks.
- A browser request sent from another site without an Origin (an <img>, a link, a form GET: `Sec-Fetch-Site`
  cross-site or same-site) may read S3 website pages and health, never call the API (`NoCrossSite`).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

ALLOWED_ORIGINS_ENV = "SECURECART_ALLOWED_ORIGINS"
_CROSS_SITE = "securecart.cross_site"
_REST_JSON_PATH = re.compile(r"^/\d{4}-\d{2}-\d{2}/")  # Lambda's REST-JSON API: /2015-03-31/functions ...

_lock = threading.Lock()
_kit_ports: set[int] = set()  # the emulator's port and every load balancer's


def add_kit_port(port: int) -> None:
    """A port the kit serves pages from (the emulator, a load balancer): its loopback origins become allowed."""
    with _lock:
        _kit_ports.add(int(port))


def remove_kit_port(port: int) -> None:
    with _lock:
        _kit_ports.discard(int(port))


def split_host(value: str) -> tuple[str, int | None]:
    """('name', port or None) of a Host header or an origin's netloc; ('', None) when malformed."""
    value = value.strip().lower()
    if value.startswith("["):
        name, bracket, rest = value[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            return "", None
        port_text = rest[1:]
    else:
        name, colon, port_text = value.rpartition(":")
        if not colon:
            name, port_text = value, ""
    if port_text and not (port_text.isdigit() and int(port_text) < 65536):
        return "", None
    return name, int(port_text) if port_text else None


def loopback_name(name: str) -> bool:
    """127.0.0.0/8, ::1 and localhost names: what only this machine can answer to."""
    name = name.rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_allowed(host: str | None) -> bool:
    if host is None:
        return True
    name, _ = split_host(host)
    # botocore prefixes some operations' host (StepFunctions StartSyncExecution, TestState: "sync-").
    return loopback_name(name) or (name.startswith("sync-") and loopback_name(name[len("sync-"):]))


def extra_origins() -> set[str]:
    raw = os.environ.get(ALLOWED_ORIGINS_ENV, "")
    return {_normal(part) for part in raw.split(",") if part.strip()}


def _normal(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def origin_allowed(origin: str, host: str | None = None, ports: Iterable[int] = ()) -> bool:
    """Whether a browser page at `origin` may call a server reached with `host` (its Host header)."""
    origin = _normal(origin)
    if origin in extra_origins():
        return True
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https") or parts.path or parts.query:
        return False
    name, port = split_host(parts.netloc)
    if not loopback_name(name):
        return False
    port = port or (443 if parts.scheme == "https" else 80)
    if host is not None and host_allowed(host):
        own_name, own_port = split_host(host)
        if (own_name, own_port or 80) == (name, port):
            return True  # same origin
    with _lock:
        kit = set(_kit_ports)
    return port in kit or port in set(ports)


def check(environ: dict[str, Any], ports: Iterable[int] = ()) -> str | None:
    """Why this request must be refused, or None."""
    host = environ.get("HTTP_HOST")
    if not host_allowed(host):
        return (f"Host {host!r} is not a name of this machine: the kit's servers answer only loopback names "
                "(127.0.0.1, localhost). DNS rebinding is refused.")
    origin = environ.get("HTTP_ORIGIN")
    if origin is not None and not origin_allowed(origin, host, ports):
        return (f"Cross-origin request from {origin} refused: the kit accepts browser requests only from the origins "
                f"it serves (its S3 website and load balancers on 127.0.0.1/localhost). Add an origin with "
                f"{ALLOWED_ORIGINS_ENV}.")
    return None


def cross_site(environ: dict[str, Any]) -> bool:
    """A browser request from another site's page that carries no allowed Origin (checked already)."""
    return environ.get("HTTP_SEC_FETCH_SITE") in ("cross-site", "same-site") and not environ.get("HTTP_ORIGIN")


def refuse(environ: dict[str, Any], start_response: Callable[..., Any], message: str,
           status: str = "403 Forbidden",
           codes: tuple[str, str, str] = ("AccessDeniedException", "AccessDenied", "AccessDenied")) -> list[bytes]:
    """An AWS-shaped error (AccessDenied unless `codes` says otherwise: the JSON protocols' code, the Query
    protocol's, S3's): JSON for JSON protocols, the Query protocol's ErrorResponse, else S3's Error."""
    json_code, query_code, s3_code = codes
    request_id = str(uuid.uuid4())
    content_type = environ.get("CONTENT_TYPE") or ""
    path = environ.get("PATH_INFO") or ""
    if environ.get("HTTP_X_AMZ_TARGET") or "json" in content_type or _REST_JSON_PATH.match(path):
        body = json.dumps({"__type": json_code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-ErrorType", json_code)]
    elif "Action=" in (environ.get("QUERY_STRING") or "") or content_type.startswith("application/x-www-form-urlencoded"):
        body = (f'<ErrorResponse><Error><Type>Sender</Type><Code>{query_code}</Code><Message>{_xml(message)}</Message>'
                f"</Error><RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{s3_code}</Code><Message>{_xml(message)}'
                f"</Message><RequestId>{request_id}</RequestId></Error>").encode()
        headers = [("Content-Type", "application/xml")]
    start_response(status, [*headers, ("x-amzn-RequestId", request_id), ("Content-Length", str(len(body)))])
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else []


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def cors_headers(origin: str, environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The CORS allowance for an allowed origin; with the preflight's answers when it is one."""
    headers = [("Access-Control-Allow-Origin", origin), ("Vary", "Origin"), ("Access-Control-Expose-Headers", EXPOSED)]
    if environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
        headers += [("Access-Control-Allow-Methods", "GET, HEAD, PUT, POST, DELETE, PATCH, OPTIONS"),
                    ("Access-Control-Allow-Headers", environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS") or "*"),
                    ("Access-Control-Max-Age", "600")]
    return headers


EXPOSED = ", ".join(("ETag", "Location", "x-amz-request-id", "x-amz-id-2", "x-amz-version-id", "x-amz-delete-marker",
                     "x-amzn-RequestId", "x-amzn-ErrorType", "Content-Length", "Content-Type", "Date"))


class Guard:
    """WSGI middleware in front of the emulator: refuses foreign Host names and origins (see the module doc), and
    answers CORS itself: moto's own allowance (flask-cors: any origin) never reaches a browser."""

    def __init__(self, app: Callable[..., Iterable[bytes]], port: int | None = None):
        self.app = app
        if port is not None:
            add_kit_port(port)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        reason = check(environ)
        if reason is not None:
            return refuse(environ, start_response, reason)
        origin = environ.get("HTTP_ORIGIN")
        allowance = cors_headers(origin, environ) if origin is not None else []
        if origin is not None and environ.get("REQUEST_METHOD") == "OPTIONS" and environ.get("HTTP_ACCESS_CONTROL_REQUEST_METHOD"):
            start_response("200 OK", [*allowance, ("Content-Length", "0")])
            return []
        environ[_CROSS_SITE] = cross_site(environ)

        def respond(status: str, headers: list[tuple[str, str]], exc_info=None):
            kept = [(name, value) for name, value in headers if not name.lower().startswith("access-control-")]
            return start_response(status, [*kept, *allowance], exc_info)

        return self.app(environ, respond)


class NoCrossSite:
    """In front of moto's API (after the S3 website and health answered what they serve): a page on another site
    may link to a website, but may not call the API, not even with a plain GET."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get(_CROSS_SITE):
            return refuse(environ, start_response,
                          "A page on another site may not call the AWS API of the kit's emulator.")
        return self.app(environ, start_response)
