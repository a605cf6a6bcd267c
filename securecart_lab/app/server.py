"""Serving the app with werkzeug's threaded WSGI server until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import socket
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from securecart_lab.app.config import AppConfig
from securecart_lab.app.web import create_app
from securecart_lab.errors import PortInUse

access_log = logging.getLogger("securecart.app.access")


class _RequestHandler(WSGIRequestHandler):
    """Plain one-line access logs (werkzeug's colour codes make log files hard to read)."""

    def log_request(self, code="-", size="-") -> None:
        access_log.info("%s %s %s %s", self.address_string(), self.command, getattr(self, "path", "-"), code)


def serve(config: AppConfig) -> None:
    """Serve until SIGTERM/SIGINT, then stop accepting, let the server loop end and close the pools."""
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s {config.instance_id} %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # The pool logs every reconnect attempt; our own line when a target goes down is enough.
    logging.getLogger("psycopg.pool").setLevel(logging.ERROR)
    app = create_app(config)
    # Bound here rather than by werkzeug, which prints and exits on a busy port instead of raising.
    try:
        family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
        listener = socket.create_server((config.host, config.port), family=family)
    except OSError as error:
        raise PortInUse(
            f"Cannot listen on {config.host}:{config.port}: {error.strerror}.",
            "Set PORT to a free port.",
        ) from error
    with listener:
        server = make_server(
            config.host, config.port, app, threaded=True, request_handler=_RequestHandler, fd=listener.fileno()
        )

    def stop(signum, frame):
        # shutdown() waits for serve_forever() to return, so it cannot run on the thread serving.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(
        f"SecureCart app {config.instance_id} listening on http://{config.host}:{server.port}",
        flush=True,
    )
    try:
        server.serve_forever(poll_interval=0.1)
    finally:
        server.server_close()
        app.extensions["securecart_db"].close()
        print(f"SecureCart app {config.instance_id} stopped", flush=True)
