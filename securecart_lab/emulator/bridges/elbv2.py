"""ALB -> a real local HTTP load balancer with real health checks.

Each load balancer gets a port on 127.0.0.1 when it is created, kept for its life; its DNSName becomes
`127.0.0.1:PORT`, so `http://<DNSName>/` reaches it (and `!GetAtt LoadBalancer.DNSName` in a template gives the
working address). The front end is waitress (a maintained HTTP/1.1 server: chunked bodies, 400 for malformed
requests, a real listen backlog, requests read whole before a worker thread takes them) serving a small WSGI proxy.
Idle connections, including half-sent requests, are closed after the load balancer's
`idle_timeout.timeout_seconds` attribute (60 s, as on AWS). The kit's Host/Origin guard applies (guard.py).

Requests go to the default action of its HTTP listener: `forward` spreads them round-robin over the target
group's healthy targets (instances mapped to their app processes' ports), or over all of them when none is healthy
(AWS's fail-open), `fixed-response` and `redirect` answer directly. Health checks really probe each target's
HealthCheckPath; intervals are HealthCheckIntervalSeconds x HEALTH_CHECK_SPEEDUP x the time scale (at least
MIN_INTERVAL), with the group's healthy/unhealthy thresholds. describe_target_health reports the result: initial,
healthy, unhealthy, unused or draining.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import waitress
from waitress.channel import HTTPChannel
from waitress.server import BaseWSGIServer
from waitress.task import WSGITask

from securecart_lab import config
from securecart_lab.emulator import bridges, guard, hooks
from securecart_lab.emulator.bridges import ec2 as ec2_bridge
from securecart_lab.emulator.timescale import scale

LOG = logging.getLogger(__name__)
HEALTH_CHECK_SPEEDUP = 0.1
MIN_INTERVAL = 0.25
UPSTREAM_TIMEOUT = 60.0
IDLE_TIMEOUT_ATTRIBUTE = "idle_timeout.timeout_seconds"
DEFAULT_IDLE_TIMEOUT = 60
# Bodies are read whole before they are forwarded: bounded, so one request cannot fill the memory (413 beyond).
MAX_BODY = 64 * 1024 * 1024
SERVER_OPTIONS = dict(threads=8, backlog=1024, connection_limit=1000, cleanup_interval=1,
                      channel_timeout=DEFAULT_IDLE_TIMEOUT, max_request_body_size=MAX_BODY, ident="awselb/2.0",
                      expose_tracebacks=False)
_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
                "transfer-encoding", "te", "trailer", "trailers", "upgrade"}


@dataclass
class TargetHealth:
    """A target's health as the checker sees it."""

    state: str = "initial"
    reason: str | None = "Elb.RegistrationInProgress"
    description: str | None = "Target registration is in progress"
    successes: int = 0
    failures: int = 0
    next_check: float = 0.0
    checking: bool = False


@dataclass
class LocalBalancer:
    arn: str
    server: BaseWSGIServer
    thread: threading.Thread
    counters: dict[str, itertools.count] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.effective_port


_lock = threading.RLock()
_balancers: dict[str, LocalBalancer] = {}
_health: dict[tuple[str, str], TargetHealth] = {}  # (target group arn, target id) -> health
_stop = threading.Event()


def _backend():
    return hooks.resolve("elbv2.backends")[config.ACCOUNT_ID][config.REGION]


def install() -> None:
    hooks.replace("elbv2.create_load_balancer", _create_load_balancer)
    hooks.replace("elbv2.delete_load_balancer", _delete_load_balancer)
    hooks.replace("elbv2.health_for", _health_for)
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)  # "Task queue depth is N" on every burst
    pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="alb-health")
    checker = threading.Thread(target=_check_forever, args=(pool,), name="alb-health", daemon=True)
    checker.start()

    def shutdown() -> None:
        _stop.set()
        checker.join(timeout=5)
        pool.shutdown(wait=False, cancel_futures=True)
        for arn in list(_balancers):
            _stop_balancer(arn)

    bridges.on_shutdown(shutdown)


class _Task(WSGITask):
    """Sends header names as the target wrote them. waitress capitalises them (X-Securecart-Instance); HTTP says
    case does not matter, but learners grep `curl -i` output for X-SecureCart-Instance, as on AWS."""

    def build_response_header(self) -> bytes:
        names = {name.lower(): name for name, _ in self.response_headers}
        lines = super().build_response_header().split(b"\r\n")
        for index, line in enumerate(lines[1:], start=1):
            name, colon, rest = line.partition(b":")
            original = names.get(name.decode("latin-1").lower())
            if colon and original:
                lines[index] = original.encode("latin-1") + colon + rest
        return b"\r\n".join(lines)


class _Channel(HTTPChannel):
    task_class = _Task


# --- load balancers --------------------------------------------------------------------------------------------

def _create_load_balancer(self, name, *args, **kwargs):
    lb = hooks.original("elbv2.create_load_balancer")(self, name, *args, **kwargs)
    server = waitress.create_server(_Proxy(lb.arn), host="127.0.0.1", port=0, **SERVER_OPTIONS)
    server.channel_class = _Channel
    thread = threading.Thread(target=server.run, name=f"alb-{name}", daemon=True)
    thread.start()
    balancer = LocalBalancer(lb.arn, server, thread)
    with _lock:
        _balancers[lb.arn] = balancer
    guard.add_kit_port(balancer.port)
    lb.dns_name = f"127.0.0.1:{balancer.port}"
    LOG.info("ELBv2 %s -> local load balancer http://%s", name, lb.dns_name)
    return lb


def _stop_balancer(arn: str) -> None:
    with _lock:
        lb = _balancers.pop(arn, None)
    if lb is None:
        return
    guard.remove_kit_port(lb.port)
    server = lb.server

    def close_all() -> None:  # runs on the server's loop thread: waitress's socket map is not thread-safe
        for dispatcher in list(server._map.values()):
            dispatcher.close()

    server.trigger.pull_trigger(close_all)
    lb.thread.join(timeout=5)
    server.task_dispatcher.shutdown(cancel_pending=True, timeout=5)


def _delete_load_balancer(self, arn: str) -> None:
    hooks.original("elbv2.delete_load_balancer")(self, arn)
    _stop_balancer(arn)


def _sync_idle_timeouts() -> None:
    """The load balancers' idle_timeout.timeout_seconds attribute, applied to their servers."""
    backend = _backend()
    with _lock:
        balancers = list(_balancers.values())
    for balancer in balancers:
        lb = backend.load_balancers.get(balancer.arn)
        raw = str((lb.attrs if lb else {}).get(IDLE_TIMEOUT_ATTRIBUTE) or DEFAULT_IDLE_TIMEOUT)
        balancer.server.adj.channel_timeout = int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_IDLE_TIMEOUT


def _listener(lb):
    listeners = sorted(lb.listeners.values(), key=lambda listener: int(listener.port or 0))
    for listener in listeners:
        if listener.protocol in ("HTTP", "HTTPS"):
            return listener
    return None


def _forward_target_group(action) -> str | None:
    data = action.data
    if data.get("TargetGroupArn"):
        return data["TargetGroupArn"]
    groups = (data.get("ForwardConfig") or {}).get("TargetGroups") or []
    return groups[0].get("TargetGroupArn") if groups else None


def target_state(tg_arn: str, target_id: str) -> str | None:
    """The health checker's view of a target ("initial", "healthy", "unhealthy"), None when it does not check it."""
    with _lock:
        health = _health.get((tg_arn, target_id))
        return health.state if health else None


def healthy_targets(target_group) -> list[tuple[str, int]]:
    """(target id, local port) of the group's healthy targets, in registration order."""
    return _targets(target_group, ("healthy",))


def routable_targets(target_group) -> list[tuple[str, int]]:
    """Where requests go: the healthy targets or, when none is healthy, every target with a running app (AWS's
    load balancers fail open rather than drop all traffic)."""
    return healthy_targets(target_group) or _targets(target_group, ("initial", "unhealthy"))


def _targets(target_group, states: tuple[str, ...]) -> list[tuple[str, int]]:
    found = []
    for target_id in list(target_group.targets):
        with _lock:
            health = _health.get((target_group.arn, target_id))
        port = ec2_bridge.app_port(target_id)
        if health is not None and health.state in states and port is not None:
            found.append((target_id, port))
    return found


def _request_headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            name = key.replace("_", "-").title()
        else:
            continue
        if name.lower() not in _HOP_HEADERS:
            headers[name] = value
    return headers


class _Proxy:
    """The WSGI app behind a load balancer's waitress server: guard, listener's default action, forward."""

    def __init__(self, arn: str):
        self.arn = arn

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]

        def answer(status: str, body: bytes, content_type: str = "text/plain; charset=utf-8", extra=()) -> list[bytes]:
            start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body))), *extra])
            return [] if method == "HEAD" else [body]

        reason = guard.check(environ)
        if reason is not None:
            return answer("403 Forbidden", f"403 Forbidden: {reason}\n".encode())
        backend = _backend()
        lb = backend.load_balancers.get(self.arn)
        listener = _listener(lb) if lb else None
        if listener is None or not listener.default_actions:
            return answer("503 Service Unavailable", b"503 Service Unavailable: the load balancer has no HTTP listener.\n")
        action = listener.default_actions[0]
        if action.type == "fixed-response":
            cfg = action.data.get("FixedResponseConfig") or {}
            code = int(cfg.get("StatusCode", 200))
            return answer(f"{code} {http.client.responses.get(code, '')}".rstrip(), (cfg.get("MessageBody") or "").encode(),
                          cfg.get("ContentType") or "text/plain")
        path = environ.get("REQUEST_URI") or environ.get("PATH_INFO") or "/"
        if action.type == "redirect":
            cfg = action.data.get("RedirectConfig") or {}
            location = f"{cfg.get('Protocol', 'http').lower()}://{cfg.get('Host', environ.get('HTTP_HOST', ''))}{cfg.get('Path', path)}"
            status = "301 Moved Permanently" if cfg.get("StatusCode", "HTTP_301") == "HTTP_301" else "302 Found"
            return answer(status, b"", extra=[("Location", location)])
        target_group = backend.target_groups.get(_forward_target_group(action) or "")
        if target_group is None:
            return answer("503 Service Unavailable", b"503 Service Unavailable: the listener forwards to no target group.\n")
        targets = routable_targets(target_group)
        if not targets:
            return answer("503 Service Unavailable",
                          b"503 Service Unavailable: no healthy targets in " + target_group.name.encode() + b".\n")
        length = int(environ.get("CONTENT_LENGTH") or 0)  # waitress has validated it and de-chunked the body
        body = environ["wsgi.input"].read(length) if length else None
        headers = _request_headers(environ)
        client = environ.get("REMOTE_ADDR", "127.0.0.1")
        headers["X-Forwarded-For"] = f"{headers['X-Forwarded-For']}, {client}" if headers.get("X-Forwarded-For") else client
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-Port"] = str(environ.get("SERVER_PORT", ""))
        with _lock:
            balancer = _balancers.get(self.arn)
            counter = (balancer.counters if balancer else {}).setdefault(target_group.arn, itertools.count())
            start = next(counter)
        idempotent = method in ("GET", "HEAD", "OPTIONS")
        for attempt in range(len(targets)):
            target_id, port = targets[(start + attempt) % len(targets)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT)
            sent = False
            try:
                conn.connect()
                sent = True
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except socket.timeout:
                return answer("504 Gateway Time-out", b"504 Gateway Time-out\n")
            except (OSError, http.client.HTTPException):
                _mark_unreachable(target_group.arn, target_id)
                if sent and not idempotent:
                    return answer("502 Bad Gateway", b"502 Bad Gateway\n")
                continue
            finally:
                conn.close()
            out = [(name, value) for name, value in response.getheaders()
                   if name.lower() not in _HOP_HEADERS and name.lower() not in ("content-length", "server", "date")]
            length_header = response.getheader("Content-Length") if method == "HEAD" else None
            out.append(("Content-Length", length_header or str(len(payload))))
            start_response(f"{response.status} {response.reason}", out)
            return [] if method == "HEAD" else [payload]
        return answer("502 Bad Gateway", b"502 Bad Gateway\n")


# --- health checks ---------------------------------------------------------------------------------------------

def _interval(target_group) -> float:
    return max(MIN_INTERVAL, float(target_group.health_check_interval_seconds or 30) * HEALTH_CHECK_SPEEDUP * scale())


def _matches(status: int, matcher: dict | None) -> bool:
    codes = (matcher or {}).get("HttpCode") or "200"
    for part in str(codes).split(","):
        low, _, high = part.strip().partition("-")
        if low.isdigit() and int(low) <= status <= int(high or low):
            return True
    return False


def _mark_unreachable(tg_arn: str, target_id: str) -> None:
    with _lock:
        health = _health.get((tg_arn, target_id))
        if health is not None and health.state == "healthy":
            health.state, health.failures, health.successes = "unhealthy", 0, 0
            health.reason, health.description = "Target.FailedHealthChecks", "Connection refused"


def _probe(target_group, target_id: str) -> tuple[bool, str, str]:
    port = ec2_bridge.app_port(target_id)
    if port is None:
        return False, "Target.FailedHealthChecks", "The target has no running app process"
    path = target_group.health_check_path or "/"
    # Response timeouts are not shortened below 2 s by the time scale: a loaded machine is slow, not broken.
    timeout = max(2.0, min(float(target_group.health_check_timeout_seconds or 5) * scale(), 5.0))
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "ELB-HealthChecker/2.0"})
        status = conn.getresponse().status
    except socket.timeout:
        return False, "Target.Timeout", "Request timed out"
    except OSError as exc:
        return False, "Target.FailedHealthChecks", f"Health checks failed: {exc.strerror or exc}"
    finally:
        conn.close()
    if _matches(status, getattr(target_group, "matcher", None)):
        return True, "", ""
    return False, "Target.ResponseCodeMismatch", f"Health checks failed with these codes: [{status}]"


def _record(target_group, target_id: str, ok: bool, reason: str, description: str) -> None:
    with _lock:
        health = _health.get((target_group.arn, target_id))
        if health is None:
            return
        health.checking = False
        health.next_check = time.monotonic() + _interval(target_group)
        if ok:
            health.successes, health.failures = health.successes + 1, 0
            if health.state != "healthy" and health.successes >= int(target_group.healthy_threshold_count or 5):
                health.state, health.reason, health.description = "healthy", None, None
        else:
            health.failures, health.successes = health.failures + 1, 0
            if health.state == "unhealthy" or health.failures >= int(target_group.unhealthy_threshold_count or 2):
                health.state, health.reason, health.description = "unhealthy", reason, description


def check_once(pool: ThreadPoolExecutor) -> None:
    """Start every health check that is due, and forget targets that left their groups."""
    backend = _backend()
    now = time.monotonic()
    current = set()
    for target_group in list(backend.target_groups.values()):
        if not target_group.health_check_enabled:
            continue
        for target_id in list(target_group.targets):
            key = (target_group.arn, target_id)
            current.add(key)
            with _lock:
                health = _health.setdefault(key, TargetHealth())
                if health.checking or health.next_check > now:
                    continue
                health.checking = True

            def run(tg=target_group, tid=target_id):
                try:
                    _record(tg, tid, *_probe(tg, tid))
                except Exception:
                    LOG.exception("health check of %s failed", tid)
                    _record(tg, tid, False, "Target.FailedHealthChecks", "Health check error")

            pool.submit(run)
    with _lock:
        for key in [k for k in _health if k not in current]:
            del _health[key]


def _check_forever(pool: ThreadPoolExecutor) -> None:
    while not _stop.wait(0.05):
        try:
            check_once(pool)
            _sync_idle_timeouts()
        except RuntimeError:
            return  # the pool was shut down
        except Exception:
            LOG.exception("health checker failed; retrying")


def _health_for(self, target, ec2_backend):
    status = hooks.original("elbv2.health_for")(self, target, ec2_backend)
    registered = self.targets.get(target["Id"])
    if registered is None or status.status != "healthy":
        return status  # moto's answer for unregistered, terminated, stopped targets
    if not self.load_balancer_arns:
        return hooks.resolve("elbv2.health_status")(registered["Id"], registered["Port"], self.health_check_port, "unused",
                                                    "Target.NotInUse", "Target group is not configured to receive traffic from the load balancer")
    with _lock:
        health = _health.get((self.arn, target["Id"])) or TargetHealth()
        state, reason, description = health.state, health.reason, health.description
    return hooks.resolve("elbv2.health_status")(registered["Id"], registered["Port"], self.health_check_port, state, reason, description)
