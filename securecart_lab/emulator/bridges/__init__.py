"""Data-plane bridges: plug-ins that make control-plane resources real (RDS -> PostgreSQL, ALB -> HTTP proxy...).

Each module named in BRIDGES has `install()`, called once, before the first request to a service it concerns
(see ../extensions.py). A bridge that starts processes or threads registers a stop callback with `on_shutdown()`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

LOG = logging.getLogger(__name__)

BRIDGES: tuple[str, ...] = ("cloudformation", "rds", "activities", "ec2", "elbv2", "replicas")

_shutdown_callbacks: list[Callable[[], None]] = []


def on_shutdown(callback: Callable[[], None]) -> None:
    """Run `callback` when the emulator stops (last registered, first run)."""
    _shutdown_callbacks.append(callback)


def shutdown_all() -> None:
    """Run every registered stop callback; one failing does not stop the others."""
    while _shutdown_callbacks:
        callback = _shutdown_callbacks.pop()
        try:
            callback()
        except Exception:
            LOG.exception("bridge shutdown callback %r failed", callback)
