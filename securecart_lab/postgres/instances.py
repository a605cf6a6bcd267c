"""RDS DB instances as PostgreSQL servers. On AWS a DB instance is a database server with its own endpoint; here
each instance is a PostgreSQL server of its own too: data dir SECURECART_HOME/postgres/<instance id>, its own
port, its superuser rdsadmin (the learner's master user is an ordinary role, as on RDS). Two instances may then
hold databases of the same name, which CloudFormation needs when it replaces an instance that keeps its DBName.

A new instance's data dir is a copy of a template initialised once per installation (`.template`): a copy takes
a fraction of initdb's time. `securecart-rds.json` in the data dir says which instance it is (database, master
user, port), so that an emulator started later finds the instance's data again (see `orphans`).

A Multi-AZ instance has a synchronous standby server (`<id>~standby`, a streaming standby named in the primary's
synchronous_standby_names): a commit is on both servers before it is confirmed. `failover` promotes the standby
and starts it on the primary's port, so the endpoint stays the same.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path

from securecart_lab import config, paths
from securecart_lab.config import Settings
from securecart_lab.errors import PostgresError
from securecart_lab.ports import free_port
from securecart_lab.postgres.server import PostgresServer

META = "securecart-rds.json"
TEMPLATE = ".template"
STANDBY = "~standby"
SYNC_TIMEOUT = 15.0

_template_lock = threading.Lock()


def read_meta(datadir: Path) -> dict | None:
    try:
        return json.loads((Path(datadir) / META).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def superuser_of(datadir: Path) -> str:
    """rdsadmin for an RDS instance's server (and its replicas and standby, which copy its files), else the
    kit's own superuser (the primary)."""
    return config.RDS_SUPERUSER if (Path(datadir) / META).exists() else config.PG_SUPERUSER


def _server(settings: Settings, datadir: Path, port: int, log_name: str) -> PostgresServer:
    from securecart_lab.postgres import bindir_for

    return PostgresServer(datadir, port, bindir_for(settings), settings.logs_dir / f"postgres-{log_name}.log",
                          settings.pg_os_user, settings.host, superpassword=settings.superpassword,
                          superuser=config.RDS_SUPERUSER)


def write_meta(server: PostgresServer, **meta) -> None:
    """Record what the data dir is; readable by the server's OS user (pg_basebackup copies it)."""
    path = server.datadir / META
    paths.write_private(path, json.dumps(meta, indent=2))
    if not server.user.is_current:
        os.chown(path, server.user.uid, server.user.gid)


def _template(settings: Settings) -> PostgresServer:
    """The initialised (never started) data dir new instances copy."""
    server = _server(settings, settings.pg_dir / TEMPLATE, 0, "template")
    with _template_lock:
        if not (server.datadir / "PG_VERSION").exists():
            shutil.rmtree(server.datadir, ignore_errors=True)  # an interrupted init
            server.init()
    return server


def datadir_of(settings: Settings, instance_id: str) -> Path:
    return settings.pg_dir / instance_id


def server(settings: Settings, instance_id: str, port: int | None = None) -> PostgresServer:
    """The server of instance `instance_id`: on `port`, else the port it runs on or last ran on."""
    datadir = datadir_of(settings, instance_id)
    if port is None:
        port = _port_of(datadir)
    return _server(settings, datadir, port or 0, instance_id)


def _port_of(datadir: Path) -> int | None:
    try:
        return int((datadir / "postmaster.pid").read_text().splitlines()[3])
    except (OSError, IndexError, ValueError):
        return (read_meta(datadir) or {}).get("port")


def _free(port: int | None) -> int:
    if port:
        import socket

        with socket.socket() as probe:
            # as PostgreSQL binds: connections the stopped server closed linger in TIME_WAIT on this port for a minute
            # and would make a plain bind refuse a port the server can take again at once
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                pass
    return free_port()


def create(settings: Settings, instance_id: str, dbname: str, master: str) -> PostgresServer:
    """A new, started server for the instance: a copy of the template on a free port."""
    template = _template(settings)
    datadir = datadir_of(settings, instance_id)
    if datadir.exists():  # data an earlier instance of that name left (never deleted): kept aside
        earlier = _server(settings, datadir, _port_of(datadir) or 0, instance_id)
        if earlier.pid() is not None:
            earlier.stop(mode="fast")
        remove_standby(settings, instance_id)
        datadir.rename(datadir.with_name(f"{instance_id}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
    subprocess.run(["cp", "-a", str(template.datadir), str(datadir)], check=True, capture_output=True)
    new = _server(settings, datadir, free_port(), instance_id)
    write_meta(new, instance=instance_id, dbname=dbname, master_user=master, port=new.port)
    new.start()
    return new


def reuse(settings: Settings, datadir: Path, instance_id: str, dbname: str, master: str) -> PostgresServer:
    """Start an instance's server again from data an earlier instance left (an emulator restart), under
    `instance_id`, on its former port when free. Its standby, if any, is rebuilt later."""
    meta = read_meta(datadir) or {}
    old = _server(settings, datadir, _port_of(datadir) or 0, datadir.name)
    if old.pid() is not None:
        old.stop(mode="fast")
    remove_standby(settings, datadir.name)
    target = datadir_of(settings, instance_id)
    if datadir != target:
        if target.exists():
            target.rename(target.with_name(f"{instance_id}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"))
        datadir.rename(target)
    server_ = _server(settings, target, _free(meta.get("port")), instance_id)
    (target / "standby.signal").unlink(missing_ok=True)
    write_meta(server_, instance=instance_id, dbname=dbname, master_user=master, port=server_.port)
    server_.start()
    with server_.connect() as conn:  # a Multi-AZ instance's primary waits for its standby: not until it is back
        conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        conn.execute("SELECT pg_reload_conf()")
    return server_


def orphans(settings: Settings, dbname: str, taken: set[str]) -> list[Path]:
    """Data dirs of instances no DB instance in `taken` holds whose database is `dbname`, newest first: what an
    earlier emulator's instance left (its identifier may have been generated, e.g. by CloudFormation)."""
    found = []
    for meta_path in settings.pg_dir.glob(f"*/{META}"):
        datadir = meta_path.parent
        meta = read_meta(datadir) or {}
        if (meta.get("instance") == datadir.name and datadir.name not in taken and meta.get("dbname") == dbname
                and not (datadir / "standby.signal").exists()):
            found.append(datadir)
    return sorted(found, key=lambda d: (d / META).stat().st_mtime, reverse=True)


def remove(settings: Settings, instance_id: str) -> None:
    """Stop the instance's servers (and its standby) and delete their data."""
    remove_standby(settings, instance_id)
    primary = server(settings, instance_id)
    if primary.pid() is not None:
        primary.stop(mode="fast")
    shutil.rmtree(primary.datadir, ignore_errors=True)


def add_master(server_: PostgresServer, master: str, password: str) -> None:
    """The master user: an ordinary role that may create databases and roles (RDS's rds_superuser, roughly)."""
    from psycopg import sql

    with server_.connect() as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (master,)).fetchone()
        verb = "ALTER" if exists else "CREATE"
        conn.execute(sql.SQL(verb + " ROLE {} LOGIN CREATEDB CREATEROLE PASSWORD {}").format(
            sql.Identifier(master), sql.Literal(password)))


# --- Multi-AZ ----------------------------------------------------------------------------------------------------

def standby_server(settings: Settings, instance_id: str) -> PostgresServer | None:
    datadir = settings.pg_dir / f"{instance_id}{STANDBY}"
    if not (datadir / "PG_VERSION").exists():
        return None
    return _server(settings, datadir, _port_of(datadir) or 0, f"{instance_id}{STANDBY}")


def remove_standby(settings: Settings, instance_id: str) -> None:
    datadir = settings.pg_dir / f"{instance_id}{STANDBY}"
    standby = standby_server(settings, instance_id)
    if standby is not None and standby.pid() is not None:
        standby.stop(mode="immediate")
    shutil.rmtree(datadir, ignore_errors=True)


def set_synchronous(primary: PostgresServer, standby: PostgresServer | None) -> None:
    """Commits on `primary` wait for `standby` (None: for nobody)."""
    from psycopg import sql

    with primary.connect() as conn:
        if standby is None:
            conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
        else:
            conn.execute(sql.SQL("ALTER SYSTEM SET synchronous_standby_names = {}").format(
                sql.Literal(f'"{standby.slot_name}"')))
        conn.execute("SELECT pg_reload_conf()")


def start_standby(settings: Settings, instance_id: str, primary: PostgresServer) -> PostgresServer:
    """The instance's synchronous standby, running and confirmed `sync` by the primary: the existing one when it
    still follows the primary, else a new base backup. Commits do not wait for it until it streams."""
    standby = standby_server(settings, instance_id)
    if standby is not None:
        auto_conf = (standby.datadir / "postgresql.auto.conf").read_text() if (standby.datadir / "postgresql.auto.conf").exists() else ""
        if not (standby.datadir / "standby.signal").exists() or f"port={primary.port}" not in auto_conf:
            remove_standby(settings, instance_id)
            standby = None
    if standby is None:
        set_synchronous(primary, None)
        datadir = settings.pg_dir / f"{instance_id}{STANDBY}"
        standby = primary.create_replica(datadir, free_port(), settings.logs_dir / f"postgres-{instance_id}{STANDBY}.log")
    elif not standby.is_running():
        standby.port = _free(standby.port)
        standby.start()
    deadline = time.monotonic() + SYNC_TIMEOUT
    while time.monotonic() < deadline:
        if any(r["application_name"] == standby.slot_name and r["state"] == "streaming" for r in primary.replication_status()):
            break
        time.sleep(0.05)
    else:
        raise PostgresError(f"The standby of {instance_id} did not start streaming within {SYNC_TIMEOUT:.0f} s.",
                            f"See {standby.log_path}.")
    set_synchronous(primary, standby)
    return standby


def failover(settings: Settings, instance_id: str, port: int, slots: list[str]) -> PostgresServer:
    """The primary is gone: promote the standby and start it on the primary's port (the endpoint stays), with the
    replication slots of the instance's read replicas (`slots`) so they follow it. The old primary's data is
    deleted, as RDS replaces the failed host. Returns the new primary; it has no standby yet."""
    standby = standby_server(settings, instance_id)
    if standby is None or not standby.is_running():
        raise PostgresError(f"{instance_id} has no running standby to fail over to.")
    if standby.is_in_recovery():  # not when an interrupted failover already promoted it
        standby.promote()
    set_synchronous(standby, None)
    with standby.connect() as conn:  # reserved now, so the restart below keeps the WAL the replicas still need
        for slot in slots:
            if not conn.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,)).fetchone():
                conn.execute("SELECT pg_create_physical_replication_slot(%s, true)", (slot,))
    standby.stop(mode="fast")
    old = server(settings, instance_id, port)
    if old.pid() is not None:
        old.stop(mode="immediate")
    failed = old.datadir.with_name(f"{instance_id}~failed")
    shutil.rmtree(failed, ignore_errors=True)
    old.datadir.rename(failed)
    standby.datadir.rename(old.datadir)
    shutil.rmtree(failed, ignore_errors=True)
    new = server(settings, instance_id, port)
    new.start()
    return new
