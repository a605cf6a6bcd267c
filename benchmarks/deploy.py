"""Deploy benchmark (lab 2's CloudFormation): a redeploy of an unchanged template, and a one-property update
(HealthCheckIntervalSeconds, an update in place), each the whole `deploy 2` path the CLI takes.

Runs the real local engine in a temporary SECURECART_HOME on free ports; prints medians of several runs.
Usage: python benchmarks/deploy.py [--runs 3]
Targets (2 cores): unchanged redeploy < 1 s, one-property update < 3 s.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from securecart_lab.config import Settings
from securecart_lab.engines.local import LocalEngine
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.registry import get_lab
from securecart_lab.ports import free_port


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="securecart-bench-", dir="/tmp"))
    home.chmod(0o755)
    settings = Settings(home=home / "home", workspace=home / "ws", emulator_port=free_port(), pg_port=free_port())
    engine = LocalEngine(settings)
    engine.up()
    lab = get_lab(2)
    ctx = LabContext(settings, engine, lab)
    folder = home / "template"
    folder.mkdir()
    template = (lab.solution_dir / "template.yaml").read_text()
    rows: dict[str, list[float]] = {"first deploy (create the stack)": [], "redeploy, unchanged template": [],
                                    "one-property update (health check interval)": []}
    try:
        (folder / "template.yaml").write_text(template)
        rows["first deploy (create the stack)"].append(_timed(lambda: lab.provisioner().deploy(ctx, folder)))
        for run in range(args.runs):
            rows["redeploy, unchanged template"].append(_timed(lambda: lab.provisioner().deploy(ctx, folder)))
            interval = 11 + run % 2
            (folder / "template.yaml").write_text(template.replace("HealthCheckIntervalSeconds: 10",
                                                                   f"HealthCheckIntervalSeconds: {interval}"))
            rows["one-property update (health check interval)"].append(
                _timed(lambda: lab.provisioner().deploy(ctx, folder)))
    finally:
        engine.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
    table = Table("Measure", "Median", "Min", "Max", "Runs", title="securecart-lab deploy 2 (local engine)")
    for name, values in rows.items():
        table.add_row(name, f"{statistics.median(values):.2f} s", f"{min(values):.2f} s", f"{max(values):.2f} s",
                      str(len(values)))
    Console().print(table)


if __name__ == "__main__":
    main()
