"""Real PostgreSQL for the labs: the SecureCart primary, its replicas, and the seed data."""

from __future__ import annotations

import os
from pathlib import Path

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.postgres import seed
from securecart_lab.postgres.binaries import find_bindir, os_user, runnable_bindir
from securecart_lab.postgres.server import PostgresServer

__all__ = ["PostgresServer", "bindir_for", "ensure_primary", "log_path_for", "primary", "server_for"]


def bindir_for(settings: Settings) -> Path:
    """PostgreSQL bin directory the server's OS user can run (copied under settings.home if needed)."""
    return runnable_bindir(find_bindir(settings.pg_bin), os_user(settings.pg_os_user), settings.home)


def primary(settings: Settings) -> PostgresServer:
    """The SecureCart primary: data in settings.pg_dir/primary, port settings.pg_port, log logs/postgres.log."""
    return PostgresServer(
        settings.pg_dir / "primary",
        settings.pg_port,
        bindir_for(settings),
        log_path_for(settings, "primary"),
        settings.pg_os_user,
        settings.host,
    )


def log_path_for(settings: Settings, name: str) -> Path:
    """Log file of the server whose data dir is settings.pg_dir/name: logs/postgres.log for the primary,
    logs/postgres-<name>.log for the others (replicas)."""
    return settings.logs_dir / ("postgres.log" if name == "primary" else f"postgres-{name}.log")


def server_for(settings: Settings, datadir: Path, port: int | None = None) -> PostgresServer:
    """The server of an existing data dir (the primary or a replica under settings.pg_dir). Its port is
    `port`, else the one in its pid file when it runs, else settings.pg_port for the primary."""
    datadir = Path(datadir)
    if port is None:
        try:
            port = int((datadir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            port = settings.pg_port
    return PostgresServer(datadir, port, bindir_for(settings), log_path_for(settings, datadir.name), settings.pg_os_user, settings.host)


def ensure_primary(settings: Settings) -> PostgresServer:
    """Initialise (first time), start, create the securecart database and role, load the seed. Idempotent."""
    server = primary(settings)
    if not server.is_running():
        settings.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            settings.home.chmod(0o755)  # the server's OS user must traverse it
        server.init()
        server.start()
    server.create_database(config.DB_NAME, config.DB_USER, config.DB_PASSWORD)
    with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
        seed.load(conn)
    return server
