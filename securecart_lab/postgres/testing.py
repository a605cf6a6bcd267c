"""Helpers for tests that need a throwaway real PostgreSQL server."""

from __future__ import annotations

import secrets
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from securecart_lab.config import Settings
from securecart_lab.ports import free_port
from securecart_lab.postgres import bindir_for
from securecart_lab.postgres.server import PostgresServer


def temp_dir() -> Path:
    """A new directory under /tmp that the server's unprivileged OS user can traverse."""
    path = Path(tempfile.mkdtemp(prefix="securecart-pg-", dir="/tmp"))
    path.chmod(0o755)
    return path


def remove_home(home: Path) -> None:
    """Delete a test's SECURECART_HOME and, as root, the service user's folder beside it."""
    home = Path(home)
    shutil.rmtree(Settings.from_env(home=home).service_dir, ignore_errors=True)
    shutil.rmtree(home, ignore_errors=True)


@contextmanager
def temp_server(settings: Settings | None = None) -> Iterator[PostgresServer]:
    """An initialised, started server in a temp dir on a free port; stopped and deleted afterwards."""
    root = temp_dir()
    settings = settings or Settings.from_env(home=root)
    server = PostgresServer(root / "data", free_port(), bindir_for(settings), root / "postgres.log", settings.pg_os_user,
                            superpassword=secrets.token_urlsafe(16))
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.stop(mode="immediate")
        remove_home(root)
