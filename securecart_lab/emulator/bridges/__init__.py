"""Data-plane bridges: plug-ins that make control-plane resources real (RDS -> PostgreSQL, ALB -> HTTP proxy...).

Each module named in BRIDGES has `install()`, called once, before the first request to a service it concerns
(see ../extensions.py). A bridge that starts processes or threads registers a stop callback with `on_shutdown()`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

LOG = logging.getLogger(__name__)

BRIDGES: tuple[str, ...] = ("cloudformation", "rds", "activities", "ec2", "elbv2", "replicas")

_shutdown_callbacks: list[Callable[[], None]] = []


def on_shutdown(callback: Callable[[], None]) -> None:
    """Run `callback` when the emulator stops (last registered, first run)."""
    _shutdown_callbacks.append(callback)


def every(seconds: float, work: Callable[[], None], *, name: str, what: str, stop: threading.Event) -> None:
    """Run `work` every `seconds` in a daemon thread `name` until `stop` is set; the emulator's shutdown sets it and
    waits for the thread. A failing pass is logged (as `what`) and the next one runs as usual."""

    def loop() -> None:
        while not stop.wait(seconds):
            try:
                work()
            except Exception:
                LOG.exception("%s failed; retrying", what)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()

    def shutdown() -> None:
        stop.set()
        thread.join(timeout=5)

    on_shutdown(shutdown)


def shutdown_all() -> None:
    """Run every registered stop callback; one failing does not stop the others."""
    while _shutdown_callbacks:
        callback = _shutdown_callbacks.pop()
        try:
            callback()
        except Exception:
            LOG.exception("bridge shutdown callback %r failed", callback)
