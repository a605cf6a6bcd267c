"""Where the kit's own content lives: the repository root in a checkout, or inside the installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

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
