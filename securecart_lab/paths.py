"""Where the kit's own content lives: the repository root in a checkout, or inside the installed wheel."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def content_root() -> Path:
    bundled = _PACKAGE / "_content"
    if (bundled / "labs").is_dir():
        return bundled
    return _PACKAGE.parent


def labs_dir() -> Path:
    return content_root() / "labs"


def checks_dir() -> Path:
    return content_root() / "checks"


def seed_dir() -> Path:
    return content_root() / "seed"


def compose_file() -> Path:
    return content_root() / "docker-compose.yml"
