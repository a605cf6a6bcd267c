"""Grading benchmark: `securecart-lab grade` over N copies of lab 1's reference solution with J = 1, 2, 4 at once.

Reports submissions per minute and the peak memory of everything the grade ran (the grade process, its grading
processes, their emulators, Lambda workers and PostgreSQL servers), sampled every 0.5 s.
Usage: python benchmarks/grade.py [--copies 4] [--jobs 1 2 4] [--time-scale 0.1]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from securecart_lab.grading.runner import processes_of
from securecart_lab.ports import free_port

ROOT = Path(__file__).resolve().parents[1]


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        tree.setdefault(ppid, []).append(int(entry))
    return tree


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _footprint(top: int, roots: set[Path]) -> float:
    """RSS of `top`, its descendants, and the detached PostgreSQL servers under the grade's temporary folders."""
    tree = _children()
    seen, todo = set(), [top]
    while todo:
        pid = todo.pop()
        if pid not in seen:
            seen.add(pid)
            todo += tree.get(pid, [])
    for root in roots:
        seen.update(processes_of(root))
        todo = list(seen)
        while todo:  # PostgreSQL's own children (checkpointer, walwriter, ...)
            for child in tree.get(todo.pop(), []):
                if child not in seen:
                    seen.add(child)
                    todo.append(child)
    return sum(_rss_mb(pid) for pid in seen)


def run(copies: int, jobs: int, time_scale: float, work: Path) -> tuple[float, float, str]:
    klass = work / f"class-{jobs}"
    for i in range(copies):
        shutil.copytree(ROOT / "labs" / "01-order-workflow" / "solution", klass / f"learner{i + 1:02d}" / "lab01")
    env = {**os.environ, "SECURECART_HOME": str(work / "home"), "SECURECART_TIME_SCALE": str(time_scale),
           "SECURECART_EMULATOR_PORT": str(free_port()), "SECURECART_PG_PORT": str(free_port())}
    before = set(Path("/tmp").glob("securecart-grade-*"))
    began = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "securecart_lab", "grade", str(klass), "--lab", "1", "--jobs",
                             str(jobs), "--out", str(work / f"grades-{jobs}")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    peak = 0.0
    while proc.poll() is None:
        roots = set(Path("/tmp").glob("securecart-grade-*")) - before
        peak = max(peak, _footprint(proc.pid, roots))
        time.sleep(0.5)
    seconds = time.perf_counter() - began
    rows = (work / f"grades-{jobs}" / "gradebook.csv").read_text().splitlines()[1:]
    statuses = sorted({row.split(",")[-3] for row in rows})
    return seconds, peak, ",".join(statuses)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--jobs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--time-scale", type=float, default=0.1)
    args = parser.parse_args()
    console = Console()
    table = Table("Jobs", "Submissions", "Seconds", "Submissions/min", "Peak memory (MB)", "Statuses",
                  title=f"grade: {args.copies} copies of lab 1's solution, time scale {args.time_scale:g}, "
                        f"{os.cpu_count()} cores")
    work = Path(tempfile.mkdtemp(prefix="securecart-bench-grade-", dir="/tmp"))
    try:
        for jobs in args.jobs:
            seconds, peak, statuses = run(args.copies, jobs, args.time_scale, work)
            table.add_row(str(jobs), str(args.copies), f"{seconds:.0f}", f"{60 * args.copies / seconds:.1f}",
                          f"{peak:.0f}", statuses)
            console.print(f"jobs={jobs}: {seconds:.0f} s, peak {peak:.0f} MB, {statuses}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    console.print(table)


if __name__ == "__main__":
    main()
