"""Memory the local engine's processes use: the emulator, its Lambda workers, app instances, PostgreSQL servers.

Memory is the proportional set size (a page shared by n processes counts 1/n in each), so the parts add up to what
the environment costs the machine; where the kernel does not say, the resident set size.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

LAMBDA_WORKER = "lambda_worker.py"
APP_INSTANCE = "securecart_lab.emulator.bridges.instance"


@dataclass(frozen=True)
class Usage:
    part: str
    processes: int
    mib: float

    def as_dict(self) -> dict:
        return asdict(self)


def _mib(processes: list[psutil.Process]) -> float:
    total = 0
    for process in processes:
        try:
            try:
                total += process.memory_full_info().pss
            except (psutil.AccessDenied, AttributeError):
                total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 2**20


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def local(emulator_pid: int | None, postgres_pid_files: list[Path]) -> list[Usage]:
    """The emulator's process tree split into the emulator, Lambda workers and app instances, then PostgreSQL
    (every server with a pid file: the primary and a lab's replicas)."""
    parts: dict[str, list[psutil.Process]] = {"emulator": [], "Lambda workers": [], "app instances": []}
    for index, process in enumerate(_tree(emulator_pid) if emulator_pid else []):
        command = _cmdline(process) if index else ""
        part = "Lambda workers" if LAMBDA_WORKER in command else "app instances" if APP_INSTANCE in command else "emulator"
        parts[part].append(process)
    servers: list[psutil.Process] = []
    for pid_file in postgres_pid_files:
        try:
            servers += _tree(int(pid_file.read_text().split("\n", 1)[0]))
        except (OSError, ValueError):
            continue
    parts["PostgreSQL"] = servers
    return [Usage(part, len(processes), round(_mib(processes), 1)) for part, processes in parts.items()]
