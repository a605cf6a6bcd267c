"""RDS -> real PostgreSQL. A postgres DB instance is a real database and master user on the kit's primary
server; describe_db_instances reports the real endpoint (127.0.0.1 and the server's port). Deleting the instance
dumps the database into SECURECART_HOME/rds-final-dumps/ and then drops it.

`registry` maps a DB instance identifier to the server that holds it, so other bridges (lab 3's read replicas,
on their own servers and ports) can add theirs with `register()`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql

from securecart_lab import config, postgres, shellenv
from securecart_lab.config import Settings
from securecart_lab.emulator import hooks
from securecart_lab.errors import LabError
from securecart_lab.postgres import seed

LOG = logging.getLogger(__name__)


@dataclass
class DatabaseHandle:
    """Where a DB instance really lives. `on_delete(handle, dump_dir)` runs when the instance is deleted."""

    instance_id: str
    server: Any  # securecart_lab.postgres.PostgresServer
    dbname: str
    master_user: str
    on_delete: Callable[["DatabaseHandle", Path], None] | None = None

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port


_lock = threading.RLock()
registry: dict[str, DatabaseHandle] = {}


def register(handle: DatabaseHandle) -> None:
    """Record where a DB instance lives (replaces any earlier entry)."""
    with _lock:
        registry[handle.instance_id] = handle


def lookup(instance_id: str) -> DatabaseHandle | None:
    with _lock:
        return registry.get(instance_id)


def unregister(instance_id: str) -> DatabaseHandle | None:
    with _lock:
        return registry.pop(instance_id, None)


def dump_dir(settings: Settings | None = None) -> Path:
    """Where final dumps of deleted DB instances go."""
    return (settings or Settings.from_env()).home / "rds-final-dumps"


def install() -> None:
    hooks.replace("rds.create_db_instance", _create_db_instance)
    hooks.replace("rds.delete_db_instance", _delete_db_instance)
    original_address = hooks.original("rds.address")

    def address(self) -> str:
        handle = lookup(self.db_instance_identifier)
        return handle.host if handle else original_address.fget(self)

    hooks.replace("rds.address", property(address))


def _rds_error(code: str, message: str) -> Exception:
    return hooks.resolve("rds.error")(code, message)


def _create_db_instance(self, db_kwargs: dict[str, Any]):
    engine = (db_kwargs.get("engine") or "").lower()
    if engine != "postgres" or db_kwargs.get("db_cluster_identifier"):
        return hooks.original("rds.create_db_instance")(self, db_kwargs)
    master = db_kwargs.get("master_username") or ""
    password = db_kwargs.get("master_user_password") or ""
    dbname = db_kwargs.get("db_name") or db_kwargs["db_instance_identifier"]
    _validate(db_kwargs["db_instance_identifier"], dbname, master, password)
    database = hooks.original("rds.create_db_instance")(self, db_kwargs)
    instance_id = database.db_instance_identifier
    try:
        server = create_real_database(dbname, master, password)
    except (LabError, psycopg.Error) as exc:
        self.databases.pop(instance_id, None)
        message = exc.message if isinstance(exc, LabError) else str(exc).strip()
        raise _rds_error("InvalidParameterValue", f"The kit could not create the database on PostgreSQL: {message}") from None
    database.port = server.port
    register(DatabaseHandle(instance_id, server, dbname, master))
    _remember_login(dbname, master, password)
    LOG.info("RDS %s -> PostgreSQL database %s on %s:%s", instance_id, dbname, server.host, server.port)
    return database


def _remember_login(dbname: str, master: str, password: str) -> None:
    """The master login in the kit's password file, so `securecart-lab psql` and psql after `env` log in as on AWS
    (any port: read replicas share their source's logins)."""
    try:
        shellenv.add_pgpass_entry(Settings.from_env(), "*", "*", dbname, master, password)
    except OSError as exc:
        LOG.warning("could not record the login of %s in the password file: %s", dbname, exc)


# The kit's own roles and databases live on the same server: an RDS instance must not take them over.
RESERVED_USERS = {config.PG_SUPERUSER, config.DB_USER}
RESERVED_DATABASES = {config.DB_NAME, "postgres", "template0", "template1"}


def _validate(instance_id: str, dbname: str, master: str, password: str) -> None:
    if master.lower() in RESERVED_USERS:
        raise _rds_error("InvalidParameterValue",
                         f"MasterUsername {master} is reserved by the kit's PostgreSQL server; choose another, e.g. securecart_admin.")
    if not master or len(password) < 8:
        raise _rds_error("InvalidParameterValue",
                         "A postgres DB instance needs a MasterUsername and a MasterUserPassword of 8 or more characters.")
    if dbname.lower() in RESERVED_DATABASES:
        raise _rds_error("InvalidParameterValue",
                         f"DBName {dbname} is the kit's own database on this PostgreSQL server; choose another, e.g. storefront.")
    with _lock:
        for other in registry.values():
            if other.dbname == dbname and other.instance_id != instance_id and other.server.port == Settings.from_env().pg_port:
                raise _rds_error("InvalidParameterValue",
                                 f"DBName {dbname} is already used by DB instance {other.instance_id} on this server; choose another.")


def create_real_database(dbname: str, master: str, password: str):
    """Create (or reuse) database `dbname` owned by `master` on the primary, loaded with the SecureCart seed."""
    server = postgres.primary(Settings.from_env())
    if not server.is_running():
        raise LabError(f"the primary PostgreSQL server on port {server.port} is not running.", 'Run "securecart-lab up".')
    with server.connect() as conn:
        if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (master,)).fetchone():
            conn.execute(sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(master), sql.Literal(password)))
    server.create_database(dbname, master, password)
    with server.connect(dbname) as conn:  # kept from an earlier instance with another master user: hand it over
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (dbname,)).fetchone()[0]
        if owner != master:
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(master)))
            for (table,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall():
                conn.execute(sql.SQL("ALTER TABLE public.{} OWNER TO {}").format(sql.Identifier(table), sql.Identifier(master)))
    with server.connect(dbname, master, password) as conn:
        seed.load(conn)
    return server


def _delete_db_instance(self, db_instance_identifier: str, *args, **kwargs):
    database = hooks.original("rds.delete_db_instance")(self, db_instance_identifier, *args, **kwargs)
    handle = unregister(db_instance_identifier)
    if handle is not None:
        target = dump_dir()
        try:
            if handle.on_delete is not None:
                handle.on_delete(handle, target)
            else:
                dump = target / f"{handle.instance_id}-{time.strftime('%Y%m%d-%H%M%S')}.sql"
                handle.server.drop_database(handle.dbname, dump_to=dump)
                LOG.info("RDS %s deleted: database %s dumped to %s and dropped", handle.instance_id, handle.dbname, dump)
        except (LabError, psycopg.Error):
            LOG.exception("RDS %s: could not drop database %s", handle.instance_id, handle.dbname)
    return database
