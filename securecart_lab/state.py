"""Progress per lab, in a small versioned JSON file under SECURECART_HOME."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from pathlib import Path

from securecart_lab import paths
from securecart_lab.errors import StateVersionError

VERSION = 1


def write_atomic(path: Path, text: str) -> None:
    """Replace `path` with `text` in one step: a unique temporary file beside it, then a rename. Parallel writers
    never share a temporary file; a reader sees the old file or the new one, never half of one. Mode 0600 (mkstemp's)."""
    paths.private_dir(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


class State:
    def __init__(self, path: Path):
        self.path = path
        self.data = {"format_version": VERSION, "labs": {}}
        self._read()

    def _read(self) -> None:
        path = self.path
        if not path.exists():
            return
        try:
            loaded = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, RecursionError):
            loaded = None  # a damaged progress file is not worth failing over; it is rebuilt
        if isinstance(loaded, dict):
            version = loaded.get("format_version", 0)
            if isinstance(version, int) and version > VERSION:
                raise StateVersionError(
                    f"{path} was written by a newer securecart-lab (format {version}, this one reads {VERSION}).",
                    "Upgrade securecart-lab: pip install -U securecart-lab",
                )
            if not isinstance(loaded.get("labs"), dict):
                loaded["labs"] = {}
            self.data = {"format_version": VERSION, "labs": {}}
            self.data.update(loaded)

    def lab(self, number: int) -> dict:
        return self.data["labs"].setdefault(str(number), {})

    def record(self, number: int, **fields) -> None:
        """Update one lab's entry: re-read under a lock first, so concurrent writers do not lose each other's fields."""
        paths.private_dir(self.path.parent)
        with paths.open_private(self.path.with_name(self.path.name + ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self._read()
            entry = self.lab(number)
            entry.update(fields)
            for name in [k for k, v in entry.items() if v is None]:
                del entry[name]
            self.save()

    def record_check(self, number: int, passed: int, total: int, earned: int, points: int, **extra) -> None:
        self.record(
            number,
            last_check={"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "passed": passed, "total": total, "earned": earned,
                        "points": points, **extra},
        )

    def save(self) -> None:
        write_atomic(self.path, json.dumps(self.data, indent=2))


def load(where) -> State:
    """The progress file of a Settings (`settings.state_path`), or of a home folder (`<home>/state.json`)."""
    path = getattr(where, "state_path", None) or Path(where) / "state.json"
    return State(path)
