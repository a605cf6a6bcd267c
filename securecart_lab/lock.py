"""One lock per environment (per SECURECART_HOME) for the commands that change it, so a `check` never scores a
half-finished `deploy` and two deploys never interleave. An flock: released by the kernel when its holder exits."""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from pathlib import Path

from securecart_lab import paths
from securecart_lab.config import Settings
from securecart_lab.errors import LabError


class EnvironmentBusy(LabError):
    pass


_held: dict[Path, int] = {}  # home -> depth, so a command that runs another in-process does not wait on itself
_guard = threading.Lock()


def lock_path(settings: Settings) -> Path:
    return settings.home / "environment.lock"


def holder(settings: Settings) -> tuple[int, str] | None:
    """(pid, command) of whoever holds the lock, as it wrote itself down; None when unknown."""
    try:
        pid, _, command = lock_path(settings).read_text().partition(" ")
        return int(pid), command.strip() or "command"
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def environment(settings: Settings, command: str, wait: bool = False):
    home = settings.home.resolve()
    with _guard:
        depth = _held.get(home, 0)
        if depth:
            _held[home] = depth + 1
    if depth:
        try:
            yield
        finally:
            with _guard:
                _held[home] -= 1
        return
    try:
        paths.private_dir(settings.home)
        fd = os.open(lock_path(settings), os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:  # the first thing every changing command does: a home it cannot use is said here
        raise LabError(f"SECURECART_HOME {settings.home} cannot be written: {exc.strerror}.",
                       "Set SECURECART_HOME to a folder you can write to, or fix that folder's permissions.")
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, other = holder(settings) or (None, "command")
            who = f"another securecart-lab {other} is running" + (f" (pid {pid})" if pid else "")
            if not wait:
                raise EnvironmentBusy(f"{who[0].upper()}{who[1:]} on this environment ({settings.home}).",
                                      f"Wait for it to finish, or add --wait to run \"{command}\" right after it.")
            from securecart_lab.console import err_console

            err_console.print(f"[dim]Waiting: {who}...[/]")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {command}\n".encode(), 0)
        with _guard:
            _held[home] = 1
        try:
            yield
        finally:
            with _guard:
                _held.pop(home, None)
    finally:
        os.close(fd)
