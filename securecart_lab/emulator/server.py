"""The emulator process: moto's WSGI app with the kit's patches, served threaded until SIGTERM/SIGINT.

Start-up imports moto's routing only: each service's backend and the kit's extensions for it load on the first
request to that service (extensions.py)."""

from __future__ import annotations

import logging
import os
import signal
import sys

from securecart_lab.emulator import bridges, extensions, guard, hooks
from securecart_lab.emulator.health import HealthMiddleware
from securecart_lab.emulator.s3website import S3WebsiteMiddleware

LOG = logging.getLogger("securecart.emulator")


class _Stop(Exception):
    pass


def install_extensions() -> None:
    """Apply every kit extension to moto now (the server installs each on its service's first request)."""
    extensions.install_all()


def build_app(host: str, port: int):
    """The WSGI app the server runs: moto's dispatcher (extensions loaded per service), wrapped in the kit's
    middlewares, outermost first."""
    extensions.configure(host, port)
    moto_app = hooks.resolve("server.dispatcher")(extensions.backend_app)
    return guard.Guard(HealthMiddleware(S3WebsiteMiddleware(guard.NoCrossSite(moto_app))), port)


def _stop_on_signal(server) -> None:
    """SIGTERM/SIGINT make serve_forever raise _Stop between requests. The handler itself only sets a flag:
    raising from it could land in the main thread while it starts a request thread, where socketserver
    swallows the exception and the server never stops."""
    signals: list[int] = []

    def check() -> None:
        if signals:
            raise _Stop()

    server.service_actions = check
    signal.signal(signal.SIGTERM, lambda signum, frame: signals.append(signum))
    signal.signal(signal.SIGINT, lambda signum, frame: signals.append(signum))


def serve(host: str, port: int) -> int:
    """Serve until a stop signal; returns the exit code."""
    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not os.environ.get("SECURECART_EMULATOR_VERBOSE"):
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app = build_app(host, port)
    try:
        server = make_server(host, port, app, threaded=True, request_handler=hooks.resolve("server.request_handler"))
    except OSError as exc:
        print(f"securecart emulator cannot listen on {host}:{port}: {exc.strerror}", file=sys.stderr, flush=True)
        return 2
    _stop_on_signal(server)
    print(f"securecart emulator ready on http://{host}:{port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except _Stop:
        LOG.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        server.server_close()
        if "securecart_lab.emulator.lambda_runtime" in sys.modules:
            sys.modules["securecart_lab.emulator.lambda_runtime"].shutdown()
        bridges.shutdown_all()
    return 0
