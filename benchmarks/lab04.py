"""Lab 4 benchmark: `start 4`, `deploy 4`, `check 4` and `ci --lab 4` as a learner runs them (new processes), then
payment bursts through the reference solution: orders placed through securecart-checkout at once, timed until every
one is charged (throughput, orders/s) and each order's latency from checkout (placedAtMs) to its charge (chargedAt).

Runs the real local engine in a temporary SECURECART_HOME on free ports.
Usage: python benchmarks/lab04.py [--bursts 200 500]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import time

from rich.console import Console
from rich.table import Table

from _harness import cli_runner, scratch, timed
from securecart_lab import paths
from securecart_lab.engines.local import LocalEngine
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.registry import get_lab


def burst(ctx, checks, size: int) -> dict:
    """Place `size` ordinary orders at once; seconds until all are charged, throughput, latency p50/p95 (s)."""
    orders = [checks._order(ctx, totalCents=1000 + n) for n in range(size)]
    ids = [o["orderId"] for o in orders]
    began = time.monotonic()
    checks._checkout(ctx, orders)
    placed_in = time.monotonic() - began
    deadline = began + 300
    while len(charges := checks._charges(ctx, ids)) < size and time.monotonic() < deadline:
        time.sleep(0.25)
    drained = time.monotonic() - began
    placed = {i: int(item["placedAtMs"]["N"]) for i, item in checks._items(ctx, "securecart-orders", "orderId", ids).items()}
    latencies = sorted((charges[i][0]["chargedAt"] - placed[i]) / 1000 for i in ids if i in charges and i in placed)
    return {"size": size, "charged": len(charges), "twice": sum(len(c) > 1 for c in charges.values()),
            "checkout": placed_in, "drained": drained, "rate": len(charges) / drained,
            "p50": statistics.median(latencies), "p95": latencies[max(0, int(len(latencies) * 0.95) - 1)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bursts", type=int, nargs="*", default=[200, 500])
    args = parser.parse_args()
    home, settings = scratch()
    cli = cli_runner(settings)
    engine = LocalEngine(settings)
    lab = get_lab(4)
    ctx = LabContext(settings, engine, lab)
    times: list[tuple[str, float]] = []

    try:
        times.append(("securecart-lab up", timed(lambda: cli("up"))))
        times.append(("securecart-lab start 4 --with-prereqs (lab 1's solution, then lab 4's starter)",
                      timed(lambda: cli("start", "4", "--with-prereqs"))))
        times.append(("securecart-lab deploy 4, unchanged starter", timed(lambda: cli("deploy", "4"))))
        for name in lab.workspace_files:
            shutil.copyfile(lab.solution_dir / name, ctx.workspace / name)
        times.append(("securecart-lab deploy 4, starter -> solution (in place)", timed(lambda: cli("deploy", "4"))))
        times.append(("securecart-lab check 4 (6 checks)", timed(lambda: cli("check", "4"))))
        times.append(("securecart-lab ci --lab 4 (engine up: start, solve, check)", timed(lambda: cli("ci", "--lab", "4", "--junit", str(home / "ci.xml")))))
        checks = paths.load_module(paths.checks_dir() / "lab04.py")
        results = [burst(ctx, checks, size) for size in args.bursts]
    finally:
        cli("down", "--purge", check=False)
        shutil.rmtree(home, ignore_errors=True)

    console = Console()
    table = Table("Command", "Seconds", title=f"Lab 4 commands ({os.cpu_count()} cores)")
    for name, seconds in times:
        table.add_row(name, f"{seconds:.1f}")
    console.print(table)
    table = Table("Orders", "Checkout (s)", "Drained (s)", "Orders/s", "p50 (s)", "p95 (s)", "Charged", "Twice",
                  title="Payment bursts (reference solution: BatchSize 10, 2 batches at once)")
    for r in results:
        table.add_row(str(r["size"]), f"{r['checkout']:.2f}", f"{r['drained']:.1f}", f"{r['rate']:.0f}", f"{r['p50']:.2f}",
                      f"{r['p95']:.2f}", str(r["charged"]), str(r["twice"]))
    console.print(table)


if __name__ == "__main__":
    main()
