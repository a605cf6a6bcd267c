"""The emulator process: moto's WSGI app with the kit's patches, served threaded until SIGTERM/SIGINT.

Start-up imports moto's routing only: each service's backend and the kit's extensions for it load on the first
request to that service (extensions.py)."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import threading

from securecart_lab.emulator import accounts, aws_errors, bridges, direct, extensions, guard, hooks, hotpath, routing, startup
from securecart_lab.emulator.health import HealthMiddleware
from securecart_lab.emulator.s3website import S3WebsiteMiddleware

LOG = logging.getLogger("securecart.emulator")


def install_extensions() -> None:
    """Apply every kit extension to moto now (the server installs each on its service's first request)."""
    extensions.install_all()


def _evaluate_role_sessions() -> None:
    """IAM evaluation (iam.py) applies to requests signed with a role session's temporary credentials (STS keys,
    ASIA...); iam.py loads and installs itself on the first such request. The kit's admin keys (every learner and
    check call) are never evaluated, so the first answer and every other request skip loading it."""

    def load_then(name: str):
        def authorize(self, *args, **kwargs) -> None:
            key = getattr(self, "access_key", None) if name == "authorize_request" else self.get_access_key()
            if (key or "").startswith("ASIA"):
                from securecart_lab.emulator import iam

                iam.install()
                getattr(iam, name)(self, *args, **kwargs)

        return authorize

    hooks.replace("core.authorize_request", load_then("authorize_request"))
    hooks.replace("core.authorize_s3_request", load_then("authorize_s3_request"))


class _Dispatcher:
    """moto's dispatcher (and with it Flask), built on the first request that needs it: what direct.py serves,
    the first answer (`sts get-caller-identity`) among it, never loads them."""

    def __init__(self):
        self._app = None
        self._lock = threading.Lock()

    def __call__(self, environ, start_response):
        if self._app is None:
            with self._lock:
                if self._app is None:
                    routing.install_dispatcher()
                    hotpath.install_dispatcher()
                    self._app = hooks.resolve("server.dispatcher")(extensions.backend_app)
        return self._app(environ, start_response)


def build_app(host: str, port: int):
    """The WSGI app the server runs: moto's dispatcher (extensions loaded per service), wrapped in the kit's
    middlewares, outermost first."""
    extensions.configure(host, port)
    routing.install()
    hotpath.install()
    startup.install()
    _evaluate_role_sessions()
    return guard.Guard(HealthMiddleware(S3WebsiteMiddleware(guard.NoCrossSite(accounts.Accounts(
        direct.Direct(aws_errors.Unhandled(_Dispatcher())))))), port)


MIN_THREADS = 32  # the pool grows when every thread is busy: a Lambda invoke can wait on calls back to the emulator


def _preserving_gateway(base):
    """cheroot's WSGI gateway, keeping the names of S3 metadata headers with underscores as moto's own request
    handler does (a WSGI environ cannot tell x-amz-meta-a_b from x-amz-meta-a-b). AWS lowercases metadata names."""
    preserve = hooks.resolve("server.preserve_header_name")
    key_for = hooks.resolve("server.environ_key_for_header")
    names_key = hooks.resolve("server.preserved_header_names_key")

    class Gateway(base):
        def get_environ(self):
            environ = super().get_environ()
            names: dict[str, str] = {}
            for raw, value in self.req.inheaders.items():
                name = raw.decode("latin-1").lower()
                if preserve(name):
                    key = key_for(name)
                    names.setdefault(key, name)
                    environ[key] = value.decode("latin-1")
            environ[names_key] = names
            return environ

    return Gateway


def _growing(app, server):
    """Add threads when none is idle, so a request that waits on another (Step Functions and Lambda call the
    emulator back while their own request is in flight) never waits for a free thread."""

    def grow_then_call(environ, start_response):
        if server.requests.idle <= 1:
            server.requests.grow(8)
        return app(environ, start_response)

    return grow_then_call


def _logged(app):
    def log_then_call(environ, start_response):
        def start(status, headers, exc_info=None):
            LOG.info("%s %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"), status.split(" ", 1)[0])
            return start_response(status, headers, exc_info)

        return app(environ, start)

    return log_then_call


LINGER = 0.005  # seconds a worker waits on its connection for the client's next request


def _lingering(base):
    """cheroot's connection, served again by the same worker when its next request arrives within LINGER: an SDK's
    loop, a Lambda handler's calls. cheroot hands a connection back to its connection loop after every request, and
    the next request then wakes that loop's thread and another worker: a fifth of the server's time per request."""
    import select

    class Connection(base):
        def communicate(self):
            keep = super().communicate()
            while keep and self.server.ready and (self.rfile.has_data() or _readable(self.socket)):
                keep = super().communicate()
            return keep

    def _readable(sock) -> bool:
        try:
            return bool(select.select([sock], [], [], LINGER)[0])
        except (OSError, ValueError):  # closed meanwhile: cheroot's loop deals with it
            return False

    return Connection


def make_server(host: str, port: int, app):
    """cheroot (a production WSGI server: keep-alive connections, a thread pool) on host:port; raises OSError when
    it cannot listen. werkzeug's development server closes every connection and starts a thread per request."""
    from cheroot import wsgi

    server = wsgi.Server((host, port), app, numthreads=MIN_THREADS, server_name=host, shutdown_timeout=1)
    server.gateway = _preserving_gateway(wsgi.Gateway_10)
    server.ConnectionClass = _lingering(server.ConnectionClass)
    server.wsgi_app = _growing(_logged(app) if os.environ.get("SECURECART_EMULATOR_VERBOSE") else app, server)
    server.prepare()
    return server


def _stop(server, host: str, port: int) -> None:
    """cheroot's stop waits for its connection loop, which looks for it between waits of up to half a second for a
    connection: connecting to the listening socket ends the wait at once."""
    stopping = threading.Thread(target=server.stop, name="stop", daemon=True)
    stopping.start()
    while stopping.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((host, port), timeout=0.2).close()
        stopping.join(0.02)


def serve(host: str, port: int) -> int:
    """Serve until SIGTERM/SIGINT; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # A state that fails is the workflow's business (Retry, Catch; the execution's history says why), yet moto's
    # parser logs each at ERROR with a repr of the whole state, kilobytes per failure, burying what the log is for.
    logging.getLogger("moto.stepfunctions.parser.asl.component.eval_component").setLevel(logging.CRITICAL)
    logging.getLogger("cfnlint").setLevel(logging.WARNING)  # "Run scan of template None" on every template
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop.set())
    app = build_app(host, port)
    try:
        server = make_server(host, port, app)
    except OSError as exc:
        print(f"securecart emulator cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr, flush=True)
        return 2
    threading.Thread(target=server.serve, name="http", daemon=True).start()
    print(f"securecart emulator ready on http://{host}:{port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
        LOG.info("stopping")
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        _stop(server, host, port)
        if "securecart_lab.emulator.lambda_runtime" in sys.modules:
            sys.modules["securecart_lab.emulator.lambda_runtime"].shutdown()
        bridges.shutdown_all()
    return 0
