"""RDS read replicas -> real PostgreSQL streaming standbys (lab 3).

`create_db_instance_read_replica` (and AWS::RDS::DBInstance with SourceDBInstanceIdentifier) takes a base backup
of the server that holds the source instance and starts it as a streaming standby in SECURECART_HOME/postgres/<id>
on its own port. The replica is `creating` until the source's pg_stat_replication shows it streaming, then
`available`. `promote_read_replica` promotes the real server; `reboot_db_instance` restarts it;
`delete_db_instance` stops it and removes its data. After its source fails over, `follow` waits for the replica to
stream from the new primary, and rebuilds it only while it still is a standby of a source that runs: a promoted
replica is a writer of its own, and a source that is down (lab 3's drill) leaves its replica available and lagging,
as on RDS. A monitor thread publishes the real replay lag as the
CloudWatch metric AWS/RDS ReplicaLag every MONITOR_SECONDS.

Each DB instance is a server of its own (bridges/rds.py), so a replica copies exactly its source instance.
"""

from __future__ import annotations

import logging
import re
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from securecart_lab import config, postgres
from securecart_lab.config import Settings
from securecart_lab.emulator import bridges, hooks
from securecart_lab.emulator.bridges import rds
from securecart_lab.errors import LabError
from securecart_lab.ports import free_port
from securecart_lab.postgres import dumps

LOG = logging.getLogger(__name__)

MONITOR_SECONDS = 5.0
STREAMING_TIMEOUT = 60.0


_lock = threading.RLock()
_servers: dict[str, Any] = {}  # instance id -> PostgresServer, for every replica (promoted or not) this bridge started
_stop = threading.Event()
_instance_locks: dict[str, threading.Lock] = {}  # promotion, deletion and a follow thread's rebuild, one at a time


def _instance_lock(instance_id: str) -> threading.Lock:
    with _lock:
        return _instance_locks.setdefault(instance_id, threading.Lock())


def install() -> None:
    hooks.replace("rds.create_db_instance_read_replica", _create_read_replica)
    hooks.replace("rds.promote_read_replica", _promote_read_replica)
    hooks.replace("rds.reboot_db_instance", _reboot_db_instance)
    bridges.every(MONITOR_SECONDS, publish_lag, name="replica-lag-monitor", what="ReplicaLag monitor", stop=_stop)


def _rds_error(code: str, message: str) -> Exception:
    return hooks.resolve("rds.error")(code, message)


# --- real servers ----------------------------------------------------------------------------------------------

def _standby_of(datadir: Path, source_port: int) -> bool:
    """Is `datadir` a standby that streams from the server on `source_port`?"""
    try:
        auto_conf = (datadir / "postgresql.auto.conf").read_text()
    except OSError:
        return False
    return (datadir / "standby.signal").exists() and re.search(rf"\bport={source_port}\b", auto_conf) is not None


def start_replica(source_server, instance_id: str, settings: Settings | None = None):
    """A running streaming standby of `source_server` in settings.pg_dir/<instance_id>: reused when that folder
    already holds one (e.g. after an emulator restart), else a fresh base backup on a free port. A folder that
    holds anything else (a promoted replica) is kept aside as <id>.replaced-<time>, never deleted."""
    settings = settings or Settings.from_env()
    datadir = settings.pg_dir / instance_id
    if (datadir / "PG_VERSION").exists():
        existing = postgres.server_for(settings, datadir)
        if _standby_of(datadir, source_server.port):
            if existing.is_running():
                return existing
        else:
            if existing.is_running():
                existing.stop()
            aside = datadir.with_name(f"{instance_id}.replaced-{time.strftime('%Y%m%d-%H%M%S')}")
            datadir.rename(aside)
            LOG.warning("RDS %s: %s held another server; moved to %s", instance_id, datadir, aside)
    return source_server.create_replica(datadir, free_port(), settings.logs_dir / f"postgres-{instance_id}.log")


def _drop_slot_everywhere(slot: str, instance_id: str) -> None:
    """A replica that left (promoted or deleted) must not keep its slot on a source: the slot would hold WAL
    forever. Sources that are down now are cleaned when they come back (lab 3's chaos primary-up)."""
    with _lock:
        servers = [postgres.primary(Settings.from_env()), *_servers.values()]
    with rds._lock:
        servers += [handle.server for handle in rds.registry.values()]
    for other in {id(s): s for s in servers}.values():
        try:
            if other.is_running() and not other.is_in_recovery():
                other.drop_replication_slot(slot)
        except (LabError, psycopg.Error):
            LOG.warning("RDS %s: could not drop replication slot %s on %s", instance_id, slot, other)


def _remove_replica(handle: rds.DatabaseHandle, dump_dir: Path) -> None:
    """on_delete for replicas: stop the server, drop its slot on the source, delete its data. A promoted replica
    holds data of its own: its folder is moved to dump_dir instead, as a final snapshot."""
    with _instance_lock(handle.instance_id):
        server = handle.server
        promoted = server.is_running() and not server.is_in_recovery()
        server.stop(mode="fast")
    with _lock:
        _servers.pop(handle.instance_id, None)
        _instance_locks.pop(handle.instance_id, None)
    _drop_slot_everywhere(server.slot_name, handle.instance_id)
    if promoted:
        kept = dumps.new_folder(dump_dir, handle.instance_id) / "data"
        shutil.move(str(server.datadir), kept)
        LOG.info("RDS %s deleted: server stopped, its data kept in %s", handle.instance_id, kept)
    else:
        shutil.rmtree(server.datadir, ignore_errors=True)
        LOG.info("RDS %s deleted: replica server stopped and %s removed", handle.instance_id, server.datadir)


def _follows(replica_id: str, handle: rds.DatabaseHandle, source_server) -> bool:
    """Is `handle` still the instance's replica, a standby of `source_server` (not promoted, not deleted)?
    Read from its files, so it holds while the replica's server is down."""
    return rds.lookup(replica_id) is handle and _standby_of(handle.server.datadir, source_server.port)


def _source_runs(source_server) -> bool:
    try:
        return source_server.is_running() and not source_server.is_in_recovery()
    except (LabError, psycopg.Error):
        return False


def _left_alone(replica_id: str) -> None:
    LOG.info("RDS %s: promoted or deleted since its source failed over; it follows nothing any more", replica_id)


def follow(replica_id: str, source_server, timeout: float = 20.0) -> None:
    """After its source failed over (bridges/rds_status.py), a replica streams from the new primary on the same port
    once its WAL receiver retries. One that cannot follow the new timeline (it had received WAL the standby had not)
    is rebuilt from the new primary, on its own port again, so its endpoint stays. Nothing is rebuilt once the
    replica was promoted or deleted, or while the source is down: the replica keeps serving reads, lagging."""
    handle = rds.lookup(replica_id)
    if handle is None:
        return
    slot = handle.server.slot_name
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not _stop.is_set():
        if not _follows(replica_id, handle, source_server):
            _left_alone(replica_id)
            return
        try:
            if any(r["application_name"] == slot and r["state"] == "streaming" for r in source_server.replication_status()):
                return
        except (LabError, psycopg.Error):
            pass
        time.sleep(0.2)
    with _instance_lock(replica_id):  # a promotion or deletion either happened before this or waits for it
        if _stop.is_set():
            return
        if not _follows(replica_id, handle, source_server):
            _left_alone(replica_id)
            return
        if not _source_runs(source_server):
            LOG.warning("RDS %s: its source's server on port %s is down; the replica keeps serving reads, lagging, "
                        "until it is back", replica_id, source_server.port)
            return
        LOG.warning("RDS %s: the replica does not follow its source's new primary; rebuilding it", replica_id)
        old = handle.server
        try:
            if old.pid() is not None:
                old.stop(mode="immediate")
            shutil.rmtree(old.datadir, ignore_errors=True)
            source_server.drop_replication_slot(slot)
            new = source_server.create_replica(old.datadir, old.port, old.log_path)
        except (LabError, psycopg.Error, OSError):
            LOG.exception("RDS %s: could not rebuild the replica from its source on port %s; see %s",
                          replica_id, source_server.port, old.log_path)
            return
        handle.server = new
        with _lock:
            _servers[replica_id] = new


def _await_streaming(database, replica, source_server) -> None:
    deadline = time.monotonic() + STREAMING_TIMEOUT
    while time.monotonic() < deadline and not _stop.is_set():
        try:
            if any(r["application_name"] == replica.slot_name and r["state"] == "streaming"
                   for r in source_server.replication_status()):
                database.status = "available"
                LOG.info("RDS %s: replica streaming from port %s", database.db_instance_identifier, source_server.port)
                return
        except (LabError, psycopg.Error):
            pass
        time.sleep(0.1)
    database.status = "failed"
    LOG.error("RDS %s: the replica did not start streaming within %.0f s; see %s",
              database.db_instance_identifier, STREAMING_TIMEOUT, replica.log_path)


# --- moto patches ----------------------------------------------------------------------------------------------

def _create_read_replica(self, db_kwargs: dict[str, Any]):
    original = hooks.original("rds.create_db_instance_read_replica")
    source_id = db_kwargs.get("source_db_instance_identifier") or ""
    source = rds.lookup(source_id.rsplit(":", 1)[-1])
    if source is None:
        return original(self, db_kwargs)
    replica_id = db_kwargs.get("db_instance_identifier") or ""
    if replica_id in self.databases:
        raise _rds_error("DBInstanceAlreadyExists", f"DB instance {replica_id} already exists.")
    if replica_id.lower() == "primary":
        raise _rds_error("InvalidParameterValue", "The identifier 'primary' is reserved by the kit; choose another.")
    if not source.server.is_running():
        raise _rds_error("InvalidDBInstanceState",
                         f"The source DB instance {source_id} is not available: its PostgreSQL server is down.")
    if db_kwargs.get("multi_az"):
        raise _rds_error("InvalidParameterCombination", "The kit's read replicas are single-AZ: leave MultiAZ out.")
    database = original(self, db_kwargs)
    # moto copies the source, Multi-AZ included; a replica is single-AZ unless asked (AWS's default)
    database.multi_az = False
    vars(database).pop("secondary_availability_zone", None)
    try:
        server = start_replica(source.server, replica_id)
    except (LabError, psycopg.Error, OSError) as exc:
        self.databases.pop(replica_id, None)
        primary = self.databases.get(source.instance_id)
        if primary is not None and replica_id in primary.replicas:
            primary.replicas.remove(replica_id)
        message = exc.message if isinstance(exc, LabError) else str(exc).strip()
        raise _rds_error("InvalidParameterValue", f"The kit could not start the replica's PostgreSQL server: {message}") from None
    database.port = server.port
    database.db_name = source.dbname
    database.status = "creating"
    with _lock:
        _servers[replica_id] = server
    rds.register(rds.DatabaseHandle(replica_id, server, source.dbname, source.master_user, on_delete=_remove_replica))
    threading.Thread(target=_await_streaming, args=(database, server, source.server), daemon=True,
                     name=f"replica-{replica_id}").start()
    LOG.info("RDS %s -> PostgreSQL standby of %s on %s:%s", replica_id, source_id, server.host, server.port)
    return database


def _promote_read_replica(self, db_kwargs: dict[str, Any]):
    instance_id = db_kwargs.get("db_instance_identifier") or ""
    database = self.describe_db_instances(instance_id)[0]
    if not database.is_replica:
        raise _rds_error("InvalidDBInstanceState", f"DB instance {instance_id} is not a read replica.")
    with _instance_lock(instance_id):  # a follow thread (bridges/rds_status.py's failover) rebuilds no writer
        handle = rds.lookup(instance_id)
        if handle is not None:
            try:
                handle.server.promote()
            except LabError as exc:
                raise _rds_error("InvalidDBInstanceState", f"The replica's PostgreSQL server could not be promoted: {exc.message}") from None
            _drop_slot_everywhere(handle.server.slot_name, instance_id)
        source = self.databases.get(database.source_db_instance_identifier or "")
        if source is not None and instance_id in source.replicas:
            source.remove_replica(database)
        promoted = hooks.original("rds.promote_read_replica")(self, db_kwargs)
        promoted.source_db_instance_identifier = None
        promoted.status = "available"
    LOG.info("RDS %s promoted: a standalone, writable instance", instance_id)
    return promoted


def _reboot_db_instance(self, db_instance_identifier: str):
    database = hooks.original("rds.reboot_db_instance")(self, db_instance_identifier)
    with _lock:
        server = _servers.get(db_instance_identifier)
    handle = rds.lookup(db_instance_identifier)
    if server is None and handle is not None:
        server = handle.server  # a DB instance's own server (a forced failover has already happened)
    if server is not None:
        from securecart_lab.emulator.bridges import rds_status

        try:
            with rds_status.busy():  # a restart is no failure: no failover while the server is down for it
                server.restart()
        except LabError as exc:
            raise _rds_error("InvalidDBInstanceState", f"The instance's PostgreSQL server did not restart: {exc.message}") from None
    return database


# --- ReplicaLag --------------------------------------------------------------------------------------------------

def publish_lag() -> dict[str, float]:
    """Measure each running replica's replay lag and publish it as AWS/RDS ReplicaLag. Returns what it published."""
    backend = hooks.resolve("rds.backends")[config.ACCOUNT_ID][config.REGION]
    published: dict[str, float] = {}
    with _lock:
        servers = dict(_servers)
    for instance_id, server in servers.items():
        database = backend.databases.get(instance_id)
        if database is None or not database.is_replica or not server.is_running():
            continue
        try:
            published[instance_id] = server.replay_lag_seconds()
        except (LabError, psycopg.Error):
            continue
    if published:
        cloudwatch = hooks.resolve("cloudwatch.backends")[config.ACCOUNT_ID][config.REGION]
        cloudwatch.put_metric_data("AWS/RDS", [
            {"MetricName": "ReplicaLag", "Value": lag, "Unit": "Seconds",
             "Dimensions": [{"Name": "DBInstanceIdentifier", "Value": instance_id}]}
            for instance_id, lag in published.items()
        ])
    return published


