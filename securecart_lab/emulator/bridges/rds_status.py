"""RDS instance status follows the real PostgreSQL servers, and a Multi-AZ instance fails over to its standby.

A monitor thread looks at every DB instance's server each MONITOR_SECONDS:
- A server that is down makes its instance `failed` (event "DB instance shutdown"); `available` again once it
  runs (event "DB instance restarted").
- A Multi-AZ instance whose primary server is down while its standby runs fails over as RDS does: the instance is
  `rebooting`, the standby is promoted and takes over the primary's port, so the endpoint does not change, and its
  AvailabilityZone and SecondaryAvailabilityZone swap; events
  in category `failover` ("Multi-AZ instance failover started" / "completed": RDS-EVENT-0013 / RDS-EVENT-0015).
  Then a new standby is built from the new primary (RDS-EVENT-0050 / RDS-EVENT-0051, category availability).
- A Multi-AZ instance whose standby is down gets a new one; its commits do not wait for a standby meanwhile.
- An instance whose data dir has a `<data dir>.halted` file beside it (lab 3's `chaos primary-down`: the whole
  instance is lost, both AZs) is neither failed over nor repaired; it stays `failed` while its server is down.

RebootDBInstance with ForceFailover=true fails a Multi-AZ instance over on purpose (the primary is stopped).
StopDBInstance and StartDBInstance stop and start the real servers.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import psycopg

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.emulator import bridges, hooks
from securecart_lab.emulator.bridges import rds
from securecart_lab.errors import LabError
from securecart_lab.postgres import instances

LOG = logging.getLogger(__name__)

MONITOR_SECONDS = 0.5
# Statuses the monitor sets; others (creating, deleting, stopped, modifying...) belong to the API calls.
MANAGED = {"available", "failed", "rebooting"}

EVENTS = {
    "DB_INSTANCE_SHUTDOWN": {"Categories": ["availability"], "Message": "DB instance shutdown"},
    "DB_INSTANCE_RESTARTED": {"Categories": ["availability"], "Message": "DB instance restarted"},
    "DB_INSTANCE_FAILOVER_STARTED": {"Categories": ["failover"], "Message": "Multi-AZ instance failover started."},
    "DB_INSTANCE_FAILOVER_COMPLETED": {"Categories": ["failover"], "Message": "Multi-AZ instance failover completed"},
    "DB_INSTANCE_STANDBY_STARTED": {"Categories": ["availability"],
                                   "Message": "Multi-AZ activation has started after a successful instance recovery."},
    "DB_INSTANCE_STANDBY_COMPLETED": {"Categories": ["availability"], "Message": "Multi-AZ reactivation completed."},
}

_stop = threading.Event()
_busy = threading.Lock()  # one monitor pass (or forced failover) at a time


def install() -> None:
    hooks.resolve("rds.event").EVENT_MAP.update(EVENTS)
    hooks.replace("rds.response.reboot_db_instance", _reboot_response)
    hooks.replace("rds.stop_db_instance", _stop_db_instance)
    hooks.replace("rds.start_db_instance", _start_db_instance)
    bridges.every(MONITOR_SECONDS, check_all, name="rds-status-monitor", what="RDS status monitor", stop=_stop)


def busy():
    """Held while the kit itself stops or restarts a server: the monitor waits."""
    return _busy


def halted_marker(datadir: Path) -> Path:
    return datadir.with_name(datadir.name + ".halted")


def _backend():
    return hooks.resolve("rds.backends")[config.ACCOUNT_ID][config.REGION]


def _event(database, kind: str) -> None:
    try:
        database.add_event(kind)
    except Exception:  # an event is a courtesy: never let it stop the monitor
        LOG.exception("could not record RDS event %s", kind)


def check_all() -> None:
    """One pass over every DB instance the kit runs."""
    if (Settings.from_env().pg_dir / ".stopping").exists():
        return  # `securecart-lab down` is stopping every server: nothing failed (engines/local.py)
    backend = _backend()
    with rds._lock:
        handles = list(rds.registry.values())
    with _busy:
        for handle in handles:
            database = backend.databases.get(handle.instance_id)
            if database is None or database.status not in MANAGED:
                continue
            try:
                _check(handle, database)
            except (LabError, psycopg.Error, OSError):
                LOG.exception("RDS %s: status check failed; retrying", handle.instance_id)


def _set(database, status: str) -> None:
    if database.status == status:
        return
    if status == "failed":
        _event(database, "DB_INSTANCE_SHUTDOWN")
    elif database.status == "failed" and status == "available":
        _event(database, "DB_INSTANCE_RESTARTED")
    LOG.info("RDS %s: %s -> %s", database.db_instance_identifier, database.status, status)
    database.status = status


def _check(handle: rds.DatabaseHandle, database) -> None:
    running = handle.server.is_up()
    if not handle.multi_az or halted_marker(handle.server.datadir).exists():
        _set(database, "available" if running else "failed")
        return
    settings = Settings.from_env()
    standby = instances.standby_server(settings, handle.instance_id)
    standby_running = standby is not None and standby.is_up()
    if running:
        _set(database, "available")
        if not standby_running:
            _rebuild_standby(settings, handle, database)
    elif standby_running:
        failover(settings, handle, database)
    else:
        _set(database, "failed")


def _rebuild_standby(settings: Settings, handle: rds.DatabaseHandle, database) -> None:
    _event(database, "DB_INSTANCE_STANDBY_STARTED")
    instances.set_synchronous(handle.server, None)
    instances.start_standby(settings, handle.instance_id, handle.server)
    _event(database, "DB_INSTANCE_STANDBY_COMPLETED")
    LOG.info("RDS %s: a new synchronous standby follows the primary", handle.instance_id)


def failover(settings: Settings, handle: rds.DatabaseHandle, database) -> None:
    """Promote the standby behind the same endpoint, then give the instance a new standby."""
    LOG.warning("RDS %s: the primary server is down; failing over to the standby", handle.instance_id)
    database.status = "rebooting"
    _event(database, "DB_INSTANCE_FAILOVER_STARTED")
    backend = _backend()
    slots = []
    for replica_id in list(getattr(database, "replicas", []) or []):
        replica = rds.lookup(replica_id)
        if replica is not None:
            slots.append(replica.server.slot_name)
    handle.server = instances.failover(settings, handle.instance_id, handle.server.port, slots)
    standby_zone = getattr(database, "secondary_availability_zone", None)
    if standby_zone:  # the instance now runs where its standby was, as RDS reports it after a failover
        database.availability_zone, database.secondary_availability_zone = standby_zone, database.availability_zone
    from securecart_lab.emulator.bridges import replicas

    for replica_id in list(getattr(database, "replicas", []) or []):
        threading.Thread(target=replicas.follow, args=(replica_id, handle.server), daemon=True,
                         name=f"follow-{replica_id}").start()
    _event(database, "DB_INSTANCE_FAILOVER_COMPLETED")
    database.status = "available"
    LOG.warning("RDS %s: failover complete; the former standby serves %s:%s", handle.instance_id, handle.server.host, handle.server.port)
    if handle.instance_id in backend.databases:
        _rebuild_standby(settings, handle, database)


def _reboot_response(self):
    """RebootDBInstance; ForceFailover=true on a Multi-AZ instance crashes its primary so that it fails over."""
    force = str(self.params.get("ForceFailover", "")).lower() == "true"
    instance_id = self.params.get("DBInstanceIdentifier")
    handle = rds.lookup(instance_id or "")
    database = self.backend.databases.get(instance_id or "")
    if force and database is not None:
        if not database.multi_az:
            raise hooks.resolve("rds.error")("InvalidParameterCombination",
                                             f"Cannot force a failover of DB instance {instance_id}: it is not Multi-AZ.")
        if database.status != "available":
            raise hooks.resolve("rds.error")("InvalidDBInstanceState", f"DB instance {instance_id} is not available.")
        if handle is not None:
            with _busy:
                handle.server.stop(mode="immediate")
                failover(Settings.from_env(), handle, database)
            return hooks.resolve("core.action_result")({"DBInstance": database})
    return hooks.original("rds.response.reboot_db_instance")(self)


def _stop_db_instance(self, db_instance_identifier: str, *args, **kwargs):
    """StopDBInstance stops the real servers (the standby too); `stopped` is left alone by the monitor."""
    database = hooks.original("rds.stop_db_instance")(self, db_instance_identifier, *args, **kwargs)
    handle = rds.lookup(db_instance_identifier)
    if handle is not None:
        with _busy:
            standby = instances.standby_server(Settings.from_env(), db_instance_identifier)
            if standby is not None and standby.pid() is not None:
                standby.stop(mode="fast")
            handle.server.stop(mode="fast")
    return database


def _start_db_instance(self, db_instance_identifier: str, *args, **kwargs):
    """StartDBInstance starts the real server again (the monitor then starts a Multi-AZ instance's standby)."""
    database = hooks.original("rds.start_db_instance")(self, db_instance_identifier, *args, **kwargs)
    handle = rds.lookup(db_instance_identifier)
    if handle is not None:
        with _busy:
            try:
                handle.server.start()
            except LabError as exc:
                database.status = "failed"
                raise hooks.resolve("rds.error")("InvalidDBInstanceState",
                                                 f"The instance's PostgreSQL server did not start: {exc.message}") from None
    return database


