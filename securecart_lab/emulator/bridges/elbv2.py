"""ALB -> a real local HTTP load balancer with real health checks.

Each load balancer gets a port on 127.0.0.1 when it is created; its DNSName becomes `127.0.0.1:PORT`, so
`http://<DNSName>/` reaches it (and `!GetAtt LoadBalancer.DNSName` in a template gives the working address).
Requests go to the default action of its HTTP listener: `forward` spreads them round-robin over the target
group's healthy targets (instances mapped to their app processes' ports), `fixed-response` and `redirect` answer
directly. Health checks really probe each target's HealthCheckPath; intervals are HealthCheckIntervalSeconds
x HEALTH_CHECK_SPEEDUP x the time scale (at least MIN_INTERVAL), with the group's healthy/unhealthy thresholds.
describe_target_health reports the result: initial, healthy, unhealthy, unused or draining.
"""

from __future__ import annotations

import http.client
import itertools
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from securecart_lab import config
from securecart_lab.emulator import bridges, hooks
from securecart_lab.emulator.bridges import ec2 as ec2_bridge
from securecart_lab.emulator.timescale import scale

LOG = logging.getLogger(__name__)
HEALTH_CHECK_SPEEDUP = 0.1
MIN_INTERVAL = 0.25
UPSTREAM_TIMEOUT = 60.0
_HOP_HEADERS = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


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
    server: ThreadingHTTPServer
    thread: threading.Thread
    counters: dict[str, itertools.count] = field(default_factory=dict)

    @property
    def port(self) -> int:
        return self.server.server_address[1]


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


# --- load balancers --------------------------------------------------------------------------------------------

def _create_load_balancer(self, name, *args, **kwargs):
    lb = hooks.original("elbv2.create_load_balancer")(self, name, *args, **kwargs)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    server.load_balancer_arn = lb.arn
    thread = threading.Thread(target=server.serve_forever, name=f"alb-{name}", daemon=True)
    thread.start()
    with _lock:
        _balancers[lb.arn] = LocalBalancer(lb.arn, server, thread)
    lb.dns_name = f"127.0.0.1:{server.server_address[1]}"
    LOG.info("ELBv2 %s -> local load balancer http://%s", name, lb.dns_name)
    return lb


def _stop_balancer(arn: str) -> None:
    with _lock:
        lb = _balancers.pop(arn, None)
    if lb is not None:
        lb.server.shutdown()
        lb.server.server_close()


def _delete_load_balancer(self, arn: str) -> None:
    hooks.original("elbv2.delete_load_balancer")(self, arn)
    _stop_balancer(arn)


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


def healthy_targets(target_group) -> list[tuple[str, int]]:
    """(target id, local port) of the group's healthy targets, in registration order."""
    found = []
    for target_id in list(target_group.targets):
        with _lock:
            health = _health.get((target_group.arn, target_id))
        port = ec2_bridge.app_port(target_id)
        if health is not None and health.state == "healthy" and port is not None:
            found.append((target_id, port))
    return found


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "awselb/2.0"
    sys_version = ""

    def log_message(self, format, *args) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def _answer(self, status: int, body: bytes, content_type: str = "text/plain; charset=utf-8", extra=()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        backend = _backend()
        lb = backend.load_balancers.get(self.server.load_balancer_arn)
        listener = _listener(lb) if lb else None
        if listener is None or not listener.default_actions:
            return self._answer(503, b"503 Service Unavailable: the load balancer has no HTTP listener.\n")
        action = listener.default_actions[0]
        if action.type == "fixed-response":
            cfg = action.data.get("FixedResponseConfig") or {}
            return self._answer(int(cfg.get("StatusCode", 200)), (cfg.get("MessageBody") or "").encode(),
                                cfg.get("ContentType") or "text/plain")
        if action.type == "redirect":
            cfg = action.data.get("RedirectConfig") or {}
            location = f"{cfg.get('Protocol', 'http').lower()}://{cfg.get('Host', self.headers.get('Host', ''))}{cfg.get('Path', self.path)}"
            return self._answer(301 if cfg.get("StatusCode", "HTTP_301") == "HTTP_301" else 302, b"", extra=[("Location", location)])
        target_group = backend.target_groups.get(_forward_target_group(action) or "")
        if target_group is None:
            return self._answer(503, b"503 Service Unavailable: the listener forwards to no target group.\n")
        self._forward(target_group, body)

    def _forward(self, target_group, body: bytes | None) -> None:
        targets = healthy_targets(target_group)
        if not targets:
            return self._answer(503, b"503 Service Unavailable: no healthy targets in " + target_group.name.encode() + b".\n")
        with _lock:
            counter = self.server_counters().setdefault(target_group.arn, itertools.count())
            start = next(counter)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_HEADERS}
        headers["X-Forwarded-For"] = self.client_address[0]
        headers["X-Forwarded-Proto"] = "http"
        headers["X-Forwarded-Port"] = str(self.server.server_address[1])
        idempotent = self.command in ("GET", "HEAD", "OPTIONS")
        for attempt in range(len(targets)):
            target_id, port = targets[(start + attempt) % len(targets)]
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=UPSTREAM_TIMEOUT)
            sent = False
            try:
                conn.connect()
                sent = True
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except socket.timeout:
                conn.close()
                return self._answer(504, b"504 Gateway Time-out\n")
            except OSError:
                conn.close()
                _mark_unreachable(target_group.arn, target_id)
                if sent and not idempotent:
                    return self._answer(502, b"502 Bad Gateway\n")
                continue
            conn.close()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() not in _HOP_HEADERS and name.lower() not in ("content-length", "server", "date"):
                    self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
            return
        self._answer(502, b"502 Bad Gateway\n")

    def server_counters(self) -> dict:
        with _lock:
            lb = _balancers.get(self.server.load_balancer_arn)
        return lb.counters if lb else {}

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle


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
