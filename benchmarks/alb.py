"""ALB benchmark: requests/s and p50/p95 latency of GET /api/products through lab 2's load balancer with 1, 2 and 4
app instances behind it (the lab's reference solution, its Auto Scaling group resized between runs), for each
number of concurrent keep-alive clients (8 and 20 by default), then a burst of new connections opened at once
(a small listen backlog shows here as SYN retries: a second or more).

Runs the real local engine in a temporary SECURECART_HOME on free ports, on loopback.
Usage: python benchmarks/alb.py [--seconds 5] [--concurrency 8,20] [--burst 50]

Measured on 2 shared cores under a load average of 11-14 (so only the shape is telling), 20 clients, back to back:
  instances   before: http.server, backlog 5       after: waitress
  1           165 req/s, p50 90 ms, p95 273 ms     228 req/s, p50 74 ms, p95 178 ms
  2           216 req/s, p50 60 ms, p95 244 ms     178 req/s, p50 105 ms, p95 197 ms
  4           159 req/s, p50 105 ms, p95 243 ms    164 req/s, p50 118 ms, p95 205 ms
  burst of 50 new connections: p95 1456 ms before (SYN retries), 230 ms after.
"""

from __future__ import annotations

import argparse
import http.client
import os
import socket
import statistics
import tempfile
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from securecart_lab.config import Settings
from securecart_lab.engines.local import LocalEngine
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.registry import get_lab
from securecart_lab.ports import free_port

GROUP = "securecart-app"
PATH = "/api/products"


def _load(host: str, port: int, seconds: float, concurrency: int) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    stop_at = time.perf_counter() + seconds

    def worker():
        conn = http.client.HTTPConnection(host, port, timeout=10)
        mine = []
        while time.perf_counter() < stop_at:
            started = time.perf_counter()
            try:
                conn.request("GET", PATH)
                response = conn.getresponse()
                response.read()
                ok = response.status == 200
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection(host, port, timeout=10)
                ok = False
            if ok:
                mine.append(time.perf_counter() - started)
            else:
                with lock:
                    errors[0] += 1
        conn.close()
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def _burst(host: str, port: int, connections: int) -> tuple[list[float], int]:
    """Open `connections` connections at once, one GET each; (latencies from connect to the full answer, errors)."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    barrier = threading.Barrier(connections)

    def one():
        barrier.wait()
        started = time.perf_counter()
        try:
            with socket.create_connection((host, port), timeout=10) as sock:
                sock.sendall(f"GET {PATH}?limit=1 HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n".encode())
                answer = b"".join(iter(lambda: sock.recv(65536), b""))
            ok = answer.startswith(b"HTTP/1.1 200")
        except OSError:
            ok = False
        with lock:
            if ok:
                latencies.append(time.perf_counter() - started)
            else:
                errors[0] += 1

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors[0]


def _resize(ctx: LabContext, size: int) -> None:
    autoscaling, elbv2 = ctx.aws("autoscaling"), ctx.aws("elbv2")
    autoscaling.update_auto_scaling_group(AutoScalingGroupName=GROUP, MinSize=1, MaxSize=4, DesiredCapacity=size)
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]
    members = {i["InstanceId"] for i in group["Instances"]}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        healthy = {d["Target"]["Id"] for arn in group["TargetGroupARNs"]
                   for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]
                   if d["TargetHealth"]["State"] == "healthy"}
        if len(members) == size and healthy >= members:
            return
        time.sleep(0.2)
    raise RuntimeError(f"the group did not reach {size} healthy instances")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", default="8,20", help="comma-separated numbers of concurrent clients")
    parser.add_argument("--burst", type=int, default=50, help="new connections opened at once (0: skip)")
    args = parser.parse_args()
    concurrencies = [int(part) for part in args.concurrency.split(",") if part.strip()]

    home = Path(tempfile.mkdtemp(prefix="securecart-bench-", dir="/tmp"))
    home.chmod(0o755)
    os.environ.update(SECURECART_HOME=str(home / "home"), SECURECART_WORKSPACE=str(home / "ws"),
                      SECURECART_EMULATOR_PORT=str(free_port()), SECURECART_PG_PORT=str(free_port()))
    settings = Settings.from_env()
    engine = LocalEngine(settings)
    console = Console()
    table = Table(title=f"GET {PATH} through the ALB ({args.seconds:g} s each)")
    for column in ("instances", "clients", "requests/s", "p50 ms", "p95 ms", "errors"):
        table.add_column(column, justify="right")
    try:
        engine.up()
        ctx = LabContext(settings=settings, engine=engine, lab=get_lab(2))
        started = time.perf_counter()
        ctx.lab.provisioner().deploy(ctx, ctx.lab.solution_dir)
        console.print(f"deployed lab 2's solution in {time.perf_counter() - started:.1f} s")
        host, port = ctx.lab.provisioner().site_url(ctx).removeprefix("http://").split(":")
        for size in (1, 2, 4):
            _resize(ctx, size)
            for clients in concurrencies:
                _load(host, int(port), 1.0, clients)  # warm-up
                latencies, errors = _load(host, int(port), args.seconds, clients)
                cuts = statistics.quantiles(latencies, n=100)
                table.add_row(str(size), str(clients), f"{len(latencies) / args.seconds:.0f}", f"{cuts[49] * 1000:.1f}",
                              f"{cuts[94] * 1000:.1f}", str(errors))
        console.print(table)
        if args.burst:
            latencies, errors = _burst(host, int(port), args.burst)
            cuts = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [float("nan")] * 99
            console.print(f"burst of {args.burst} new connections (4 instances): p50 {cuts[49] * 1000:.0f} ms, "
                          f"p95 {cuts[94] * 1000:.0f} ms, max {max(latencies, default=0) * 1000:.0f} ms, {errors} errors")
    finally:
        engine.down(purge=True)


if __name__ == "__main__":
    main()
