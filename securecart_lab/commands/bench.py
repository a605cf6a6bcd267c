"""bench: lab 3's read-scaling benchmark."""

from __future__ import annotations

from pathlib import Path

from rich.table import Table

from securecart_lab import readbench
from securecart_lab.commands.checks import writable_output
from securecart_lab.config import Settings
from securecart_lab.console import console, spinner
from securecart_lab.engines import get_engine
from securecart_lab.errors import LabError
from securecart_lab.labs.registry import get_lab


def bench(settings: Settings, lab: str, seconds: float, chart: Path) -> None:
    if get_lab(lab).number != 3:
        raise LabError(f"There is no benchmark for lab {lab}.", "Run: securecart-lab bench 3")
    writable_output(chart, "--chart")
    if settings.engine != "local":
        raise LabError(f"bench 3 needs the local engine (found {settings.engine}): it measures real replicas.",
                       "Run it with --engine local.")
    get_engine(settings).require_running()
    with spinner(f"Benchmarking: two phases of {seconds:g} s..."):
        result = readbench.run(settings, seconds)
    table = Table("Reads go to", "Searches/s", "p50 ms", "p95 ms", "Orders", "Errors", "Max replica lag ms",
                  title=f"{result.readers} searching + {result.writers} ordering clients, {seconds:g} s each")
    for phase in result.phases:
        table.add_row(phase.name, f"{phase.searches_per_second:.0f}", f"{phase.p50_ms:.1f}", f"{phase.p95_ms:.1f}",
                      str(phase.orders), str(phase.errors), f"{phase.max_lag_ms:.1f}")
    console.print(table)
    path = readbench.chart(result, chart)
    console.print(f"Chart: [cyan]{path}[/]  (writer {result.writer}, replica {result.replica})")
    console.print("On one machine the replica shares its CPUs with the primary: see the lab README on when replicas help.")
