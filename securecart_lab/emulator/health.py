"""GET /_localstack/health and /_securecart/health: a LocalStack-shaped health document; GET /_securecart/processes
(processes.py): what runs for which resource."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from functools import lru_cache
from importlib.metadata import version
from typing import Any

from securecart_lab import __version__
from securecart_lab.emulator import extensions, processes
from securecart_lab.emulator.timescale import scale

PATHS = ("/_localstack/health", "/_securecart/health")
# New at every emulator start: records about the environment (lab 3's drill) name it, so one from before a restart
# or a crash is recognised as stale.
ENVIRONMENT_ID = uuid.uuid4().hex


@lru_cache(maxsize=1)
def _moto_version() -> str:
    return version("moto")


def health_document() -> dict[str, Any]:
    """As LocalStack's: a service is "running" once loaded (by its first request), "available" until then."""
    from securecart_lab.emulator import iam  # not at import: the first AWS answer does not need it

    loaded = extensions.loaded_services()
    return {
        "services": {name: "running" if name in loaded else "available"
                     for name in (*extensions.MOTO_PACKAGES, *extensions.KIT_SERVICES)},
        "extensions": extensions.installed(),
        "edition": "securecart-local",
        "version": __version__,
        "moto_version": _moto_version(),
        "time_scale": scale(),
        "iam": iam.setting(),
        "environment_id": ENVIRONMENT_ID,
    }


class HealthMiddleware:
    """Answers the health paths itself and passes every other request to moto."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path in (*PATHS, processes.PATH) and environ.get("REQUEST_METHOD") in ("GET", "HEAD"):
            body = json.dumps(health_document() if path in PATHS else processes.document()).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body] if environ["REQUEST_METHOD"] == "GET" else []
        return self.app(environ, start_response)
