"""The emulator process: moto's WSGI app with the kit's patches, served threaded until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import os
import signal
import sys

from securecart_lab.emulator import bridges, hooks, s3website
from securecart_lab.emulator.health import HealthMiddleware

LOG = logging.getLogger("securecart.emulator")


class _Stop(Exception):
    pass


def install_extensions() -> None:
    """Apply every kit extension to moto, then the data-plane bridges."""
    from securecart_lab.emulator import events, lambda_runtime, stepfunctions

    stepfunctions.install()
    lambda_runtime.install()
    events.install()
    bridges.install_all()


def _raise_stop(signum, frame) -> None:
    raise _Stop()


def serve(host: str, port: int) -> int:
    """Serve until a stop signal; returns the exit code."""
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not os.environ.get("SECURECART_EMULATOR_VERBOSE"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    install_extensions()
    s3website.install(host, port)
    dispatcher = hooks.resolve("server.dispatcher")(hooks.resolve("server.backend_app"))
    app = HealthMiddleware(s3website.S3WebsiteMiddleware(dispatcher))
    try:
        server = make_server(host, port, app, threaded=True, request_handler=hooks.resolve("server.request_handler"))
    except OSError as exc:
        print(f"securecart emulator cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr, flush=True)
        return 2
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    print(f"securecart emulator ready on http://{host}:{port}", flush=True)
    try:
        server.serve_forever()
    except _Stop:
        LOG.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.server_close()
        from securecart_lab.emulator import lambda_runtime

        lambda_runtime.shutdown()
        bridges.shutdown_all()
    return 0
