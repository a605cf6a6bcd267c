"""Deploy benchmark (lab 2's CloudFormation): a redeploy of an unchanged template, and a one-property update
(HealthCheckIntervalSeconds, an update in place), each as the learner runs it (`securecart-lab deploy 2`, a new
process: imports, AWS clients, the change set, the wait, the site summary) and as the provisioner's call alone.

Runs the real local engine in a temporary SECURECART_HOME on free ports; prints medians of several runs. Every
update is a template text the engine has not seen before (it lints each text once).
Usage: python benchmarks/deploy.py [--runs 3]
Targets (2 cores): unchanged redeploy < 1 s, one-property update < 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
from pathlib import Path

from rich.console import Console
from rich.table import Table

from _harness import cli_runner, scratch, timed
from securecart_lab.engines.local import LocalEngine
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.registry import get_lab

UNCHANGED, UPDATE = "redeploy, unchanged template", "one-property update (health check interval)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home, settings = scratch()
    cli = cli_runner(settings)
    engine = LocalEngine(settings)
    engine.up()
    lab = get_lab(2)
    ctx = LabContext(settings, engine, lab)
    template = (lab.solution_dir / "template.yaml").read_text()
    interval = iter(range(11, 1000))

    def write(path: Path) -> None:
        path.write_text(template.replace("HealthCheckIntervalSeconds: 10", f"HealthCheckIntervalSeconds: {next(interval)}"))

    rows: dict[tuple[str, str], list[float]] = {}
    try:
        cli("start", "2")
        workspace = ctx.workspace
        (workspace / "template.yaml").write_text(template)
        rows[("securecart-lab deploy 2", "first deploy of the solution")] = [timed(lambda: cli("deploy", "2"))]
        for _ in range(args.runs):
            rows.setdefault(("securecart-lab deploy 2", UNCHANGED), []).append(timed(lambda: cli("deploy", "2")))
            write(workspace / "template.yaml")
            rows.setdefault(("securecart-lab deploy 2", UPDATE), []).append(timed(lambda: cli("deploy", "2")))
        for _ in range(args.runs):
            rows.setdefault(("provisioner deploy() only", UNCHANGED), []).append(
                timed(lambda: lab.provisioner().deploy(ctx, workspace)))
            write(workspace / "template.yaml")
            rows.setdefault(("provisioner deploy() only", UPDATE), []).append(
                timed(lambda: lab.provisioner().deploy(ctx, workspace)))
    finally:
        engine.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
    table = Table("Path", "Measure", "Median", "Min", "Max", "Runs", title="lab 2 deploy (local engine)")
    for (path, name), values in rows.items():
        table.add_row(path, name, f"{statistics.median(values):.2f} s", f"{min(values):.2f} s",
                      f"{max(values):.2f} s", str(len(values)))
    Console().print(table)
    print(f"load average: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
