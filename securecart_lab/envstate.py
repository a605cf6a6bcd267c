"""Records about the running environment, kept in SECURECART_HOME/environment/ (e.g. lab 3's failover drill).

The emulator keeps its state in memory, so a record is only true for the emulator process that was running when it
was written: each names that environment's id (new at every emulator start, in its health answer). After `down` and
`up`, or a crash, a record from before is stale: `load` ignores it. `down --purge` deletes them all.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from securecart_lab.config import Settings

FOLDER = "environment"
# Written by earlier versions straight into SECURECART_HOME; purge removes them too.
LEGACY_FILES = ("lab03-primary-down.json",)


def folder(settings: Settings) -> Path:
    return settings.home / FOLDER


def current_id(settings: Settings) -> str | None:
    from securecart_lab.engines import get_engine

    return get_engine(settings).environment_id()


def save(settings: Settings, name: str, data: dict, environment: str | None) -> Path:
    """Write record `name` for `environment` (atomically, 0600)."""
    target = folder(settings)
    target.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = target / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=target, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump({"environment": environment, "data": data}, out, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load(settings: Settings, name: str, environment: str | None) -> dict | None:
    """Record `name` when `environment` wrote it; None when there is none, it is unreadable, or it is stale."""
    try:
        record = json.loads((folder(settings) / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("environment") != environment or not isinstance(record.get("data"), dict):
        return None
    return record["data"]


def remove(settings: Settings, name: str) -> None:
    (folder(settings) / f"{name}.json").unlink(missing_ok=True)


def purge(settings: Settings) -> None:
    """Delete every environment record."""
    shutil.rmtree(folder(settings), ignore_errors=True)
    for legacy in LEGACY_FILES:
        (settings.home / legacy).unlink(missing_ok=True)
