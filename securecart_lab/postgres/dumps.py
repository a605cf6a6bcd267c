"""Database dumps kept in SECURECART_HOME: RDS snapshots (rds-snapshots/) and the final dumps the kit takes when a
DB instance is deleted without a snapshot (rds-final-dumps/), so no delete loses a learner's orders.

A dump holds customer data and is never overwritten: each gets a name of its own (the instance or snapshot id and
a timestamp, plus -2, -3... when that name is taken), created exclusively (O_EXCL) with mode 0600.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import BinaryIO

from securecart_lab.config import Settings

SNAPSHOTS = "rds-snapshots"
FINAL_DUMPS = "rds-final-dumps"


def snapshot_dir(settings: Settings) -> Path:
    return settings.home / SNAPSHOTS


def final_dump_dir(settings: Settings) -> Path:
    return settings.home / FINAL_DUMPS


def _private_dir(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    if folder.stat().st_uid == os.geteuid():
        folder.chmod(0o700)
    return folder


def _names(stem: str, suffix: str):
    stamp = time.strftime("%Y%m%d-%H%M%S")
    yield f"{stem}-{stamp}{suffix}"
    n = 2
    while True:
        yield f"{stem}-{stamp}-{n}{suffix}"
        n += 1


def create(folder: Path, stem: str, suffix: str = ".sql") -> tuple[Path, BinaryIO]:
    """A new file `folder/<stem>-<timestamp>[-n]<suffix>`, created exclusively with mode 0600, open for writing."""
    _private_dir(folder)
    for name in _names(stem, suffix):
        path = folder / name
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            continue
        return path, os.fdopen(fd, "wb")
    raise AssertionError("unreachable")


def new_folder(folder: Path, stem: str) -> Path:
    """A new, empty folder `folder/<stem>-<timestamp>[-n]` (mode 0700), for data kept as a whole data directory."""
    _private_dir(folder)
    for name in _names(stem, ""):
        path = folder / name
        try:
            path.mkdir(mode=0o700)
        except FileExistsError:
            continue
        return path
    raise AssertionError("unreachable")


def sidecar(dump: Path) -> Path:
    """The JSON file describing a dump (an RDS snapshot's metadata, so it outlives the emulator)."""
    return dump.with_suffix(".json")


def write_sidecar(dump: Path, data: dict) -> Path:
    path = sidecar(dump)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    return path


def listing(settings: Settings) -> set[Path]:
    """Every dump and snapshot kept now (compare two listings to see what an operation dumped)."""
    found: set[Path] = set()
    for folder in (snapshot_dir(settings), final_dump_dir(settings)):
        if folder.is_dir():
            found |= {path for path in folder.iterdir() if not path.name.startswith(".") and path.suffix != ".json"}
    return found
