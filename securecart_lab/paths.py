"""Where the kit's own content lives: the repository root in a checkout, or inside the installed wheel."""

from __future__ import annotations

import importlib.util
import os
import sys
import zlib
from pathlib import Path
from types import ModuleType

_PACKAGE = Path(__file__).resolve().parent


def content_root() -> Path:
    """The kit's own content: labs/, checks/, seed/, docker-compose.yml."""
    bundled = _PACKAGE / "_content"
    if (bundled / "labs").is_dir():
        return bundled
    return _PACKAGE.parent


def course_root() -> Path:
    """Where labs/ and checks/ come from: SECURECART_CONTENT (for lab authors) or the kit's own."""
    override = os.environ.get("SECURECART_CONTENT")
    return Path(override) if override else content_root()


def labs_dir() -> Path:
    return course_root() / "labs"


def checks_dir() -> Path:
    return course_root() / "checks"


def seed_dir() -> Path:
    return content_root() / "seed"


def compose_file() -> Path:
    return content_root() / "docker-compose.yml"


def load_module(path: Path, fresh: bool = False) -> ModuleType:
    """Import a lab's or a checks file by path, once (or again when `fresh`). Keyed by path: two courses
    (the kit's, a test fixture's) may both have a lab 1."""
    path = path.resolve()
    name = f"securecart_{path.parent.name}_{path.stem}_{zlib.crc32(str(path).encode()):08x}".replace("-", "_")
    if name in sys.modules and not fresh:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        from securecart_lab.errors import LabError

        raise LabError(f"Cannot load {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module
