"""The one Rich console everything prints through."""

from __future__ import annotations

import contextlib
import os
import sys

from rich.console import Console

# Logs and CI output are read in wide windows: don't wrap tables at 80 columns there.
_width = None if sys.stdout.isatty() else 120
console = Console(highlight=False, soft_wrap=True, width=_width)
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=_width)


@contextlib.contextmanager
def spinner(message: str):
    """A spinner for waits; silent when output is not a terminal (CI logs stay clean)."""
    if console.is_terminal and not os.environ.get("CI"):
        with console.status(message):
            yield
    else:
        yield


def is_interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()
