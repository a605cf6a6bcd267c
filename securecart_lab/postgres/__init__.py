"""Real PostgreSQL for the labs: the SecureCart primary, its replicas, and the seed data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from securecart_lab import config, paths
from securecart_lab.config import Settings
from securecart_lab.errors import PostgresError
from securecart_lab.postgres.binaries import can_traverse, find_bindir, os_user, runnable_bindir

if TYPE_CHECKING:
    from securecart_lab.postgres.server import PostgresServer


def __getattr__(name: str):
    # psycopg is loaded with the server class, on first use: commands that only list dumps (deploy) or never touch
    # PostgreSQL stay fast to start.
    if name == "PostgresServer":
        from securecart_lab.postgres.server import PostgresServer

        return PostgresServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["PostgresServer", "bindir_for", "ensure_primary", "log_path_for", "primary", "server_for"]


def bindir_for(settings: Settings) -> Path:
    """PostgreSQL bin directory the server's OS user can run (copied under settings.service_dir if needed)."""
    user = os_user(settings.pg_os_user)
    bindir = find_bindir(settings.pg_bin)
    if user.is_current or can_traverse(bindir.resolve(), user):
        return bindir.resolve()
    from securecart_lab import service_user

    return runnable_bindir(bindir, user, service_user.folder(settings))


def primary(settings: Settings) -> PostgresServer:
    """The SecureCart primary: data in settings.pg_dir/primary, port settings.pg_port, log logs/postgres.log."""
    from securecart_lab.postgres.server import PostgresServer

    return PostgresServer(
        settings.pg_dir / "primary",
        settings.pg_port,
        bindir_for(settings),
        log_path_for(settings, "primary"),
        settings.pg_os_user,
        settings.host,
        superpassword=settings.superpassword,
    )


def log_path_for(settings: Settings, name: str) -> Path:
    """Log file of the server whose data dir is settings.pg_dir/name: logs/postgres.log for the primary,
    logs/postgres-<name>.log for the others (replicas)."""
    return settings.logs_dir / ("postgres.log" if name == "primary" else f"postgres-{name}.log")


def server_for(settings: Settings, datadir: Path, port: int | None = None) -> PostgresServer:
    """The server of an existing data dir (the primary, an RDS instance's, a replica's under settings.pg_dir). Its port is
    `port`, else the one in its pid file when it runs, else settings.pg_port for the primary."""
    datadir = Path(datadir)
    if port is None:
        try:
            port = int((datadir / "postmaster.pid").read_text().splitlines()[3])
        except (OSError, IndexError, ValueError):
            port = settings.pg_port
    from securecart_lab.postgres.instances import superuser_of
    from securecart_lab.postgres.server import PostgresServer

    return PostgresServer(datadir, port, bindir_for(settings), log_path_for(settings, datadir.name), settings.pg_os_user, settings.host,
                          superpassword=settings.superpassword, superuser=superuser_of(datadir))


def ensure_primary(settings: Settings) -> PostgresServer:
    """Initialise (first time), start, create the securecart database and role, load the seed. Idempotent."""
    from securecart_lab import service_user
    from securecart_lab.postgres import seed

    paths.private_dir(settings.home)
    service_user.migrate(settings)
    service_user.folder(settings, settings.pg_dir.name)
    server = primary(settings)
    if not server.is_running():
        server.init()
        server.start()
    try:
        server.create_database(config.DB_NAME, config.DB_USER, config.DB_PASSWORD)
    except PostgresError as exc:
        if not rotate_legacy_password(server):
            if "password authentication failed" in exc.message:
                from securecart_lab.credentials import SECRET_FILE

                raise PostgresError(f"PostgreSQL at {server.host}:{server.port} refuses the superuser password kept in {settings.home / SECRET_FILE}.",
                                    "Its data was made with another password file: `securecart-lab down --purge` deletes the data and starts afresh.") from None
            raise
        server.create_database(config.DB_NAME, config.DB_USER, config.DB_PASSWORD)
    with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
        seed.load(conn)
    return server


def rotate_legacy_password(server: PostgresServer) -> bool:
    """Installations made before the per-installation secret have the fixed public superuser password: change it
    to the secret (and in the connection settings of replicas made from this server). True when it did; False when
    the server refuses the legacy password too (or does not answer)."""
    from psycopg import sql

    from securecart_lab.credentials import LEGACY_SUPERPASSWORD
    from securecart_lab.postgres.server import PostgresServer

    legacy = PostgresServer(server.datadir, server.port, server.bindir, server.log_path, server.os_user, server.host,
                            superpassword=LEGACY_SUPERPASSWORD)
    try:
        conn = legacy.connect()
    except PostgresError:
        return False
    with conn:
        conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(config.PG_SUPERUSER), sql.Literal(server.superpassword)))
    for auto_conf in server.datadir.parent.glob("*/postgresql.auto.conf"):
        text = auto_conf.read_text()
        if f"password={LEGACY_SUPERPASSWORD}" in text:
            auto_conf.write_text(text.replace(f"password={LEGACY_SUPERPASSWORD}", f"password={server.superpassword}"))
    return True
