"""The SecureCart web application: storefront, product API and order API on PostgreSQL, events to EventBridge.

Run it with `python -m securecart_lab.app`, configured by environment (see AppConfig.from_env)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

__all__ = ["AppConfig", "Endpoint", "create_app", "serve", "static_dir"]
# Imported on first use: `deploy 2` needs only static_dir, and Flask and psycopg take a second to import.
_LAZY = {"AppConfig": "config", "Endpoint": "config", "serve": "server", "create_app": "web"}


def static_dir() -> Path:
    """The storefront's files (index.html, config.js, app.js, style.css), e.g. to upload to an S3 website bucket."""
    return Path(__file__).resolve().parent / "static"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"securecart_lab.app.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
