"""Finding labs by number."""

from __future__ import annotations

import functools
from pathlib import Path

from securecart_lab import paths
from securecart_lab.errors import UnknownLab
from securecart_lab.labs.model import Lab, load_lab


@functools.lru_cache(maxsize=4)
def _labs(root: Path) -> tuple[Lab, ...]:
    if not root.is_dir():
        return ()
    folders = sorted(p for p in root.iterdir() if p.is_dir() and (p / "lab.toml").exists())
    return tuple(load_lab(p) for p in folders)


def all_labs() -> tuple[Lab, ...]:
    return _labs(paths.labs_dir())


def get_lab(number: int | str) -> Lab:
    labs = {lab.number: lab for lab in all_labs()}
    valid = ", ".join(str(n) for n in sorted(labs)) or "none"
    try:
        wanted = int(str(number).strip().lstrip("lab").lstrip("0") or "0")
    except ValueError:
        wanted = -1
    if wanted not in labs:
        raise UnknownLab(f"There is no lab {number}: valid labs are {valid}.", 'Run "securecart-lab list" to see them.')
    return labs[wanted]
