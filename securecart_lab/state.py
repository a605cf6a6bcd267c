"""Progress per lab, in a small versioned JSON file under SECURECART_HOME."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from securecart_lab.errors import StateVersionError

VERSION = 1


class State:
    def __init__(self, path: Path):
        self.path = path
        self.data = {"format_version": VERSION, "labs": {}}
        if path.exists():
            try:
                loaded = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                loaded = None  # a damaged progress file is not worth failing over; it is rebuilt
            if isinstance(loaded, dict):
                version = loaded.get("format_version", 0)
                if isinstance(version, int) and version > VERSION:
                    raise StateVersionError(
                        f"{path} was written by a newer securecart-lab (format {version}, this one reads {VERSION}).",
                        "Upgrade securecart-lab: pip install -U securecart-lab",
                    )
                self.data.update(loaded)

    def lab(self, number: int) -> dict:
        return self.data["labs"].setdefault(str(number), {})

    def record(self, number: int, **fields) -> None:
        self.lab(number).update(fields)
        self.save()

    def record_check(self, number: int, passed: int, total: int, earned: int, points: int) -> None:
        self.record(
            number,
            last_check={"at": time.strftime("%Y-%m-%dT%H:%M:%S"), "passed": passed, "total": total, "earned": earned, "points": points},
        )

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=2), encoding="utf-8")
        os.replace(tmp, self.path)


def load(home: Path) -> State:
    return State(home / "state.json")
