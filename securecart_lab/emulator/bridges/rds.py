"""RDS -> real PostgreSQL. A postgres DB instance is a PostgreSQL server of its own (securecart_lab.postgres.instances:
its own data dir and port, superuser rdsadmin) holding database DBName owned by the master user;
describe_db_instances reports the real endpoint (127.0.0.1 and the server's port). `MultiAZ: true` adds a real
synchronous standby server (bridges/rds_status.py fails over to it behind the same endpoint).

An instance created after an emulator restart finds its data again: its own data dir when it has the same
identifier, else the data dir an earlier instance with the same DBName left (CloudFormation generates a new
identifier per stack creation), else, from installations where instances were databases on the kit's shared
server, that database (moved to the new server; its dump stays in SECURECART_HOME/rds-final-dumps/).

Snapshots are real too: CreateDBSnapshot (and DeleteDBInstance with FinalDBSnapshotIdentifier, and a stack that
deletes a DB instance whose DeletionPolicy is Snapshot, AWS's default for DB instances) dumps the database into
SECURECART_HOME/rds-snapshots/; RestoreDBInstanceFromDBSnapshot loads that dump into the new instance's database.
An instance deleted without a snapshot is dumped anyway, into SECURECART_HOME/rds-final-dumps/: on a learner's
laptop no delete loses their orders. Dumps are never overwritten (see securecart_lab.postgres.dumps).

`registry` maps a DB instance identifier to the server that holds it, so other bridges (lab 3's read replicas,
on their own servers and ports) can add theirs with `register()`.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import psycopg
from psycopg import sql

from securecart_lab import config, postgres, shellenv
from securecart_lab.config import Settings
from securecart_lab.emulator import hooks
from securecart_lab.errors import LabError
from securecart_lab.postgres import dumps, instances, seed

LOG = logging.getLogger(__name__)


@dataclass
class DatabaseHandle:
    """Where a DB instance really lives. `on_delete(handle, dump_dir)` runs when the instance is deleted."""

    instance_id: str
    server: Any  # securecart_lab.postgres.PostgresServer
    dbname: str
    master_user: str
    on_delete: Callable[["DatabaseHandle", Path], None] | None = None
    fresh: bool = False  # the database was created new with the instance (not reused, not restored)
    multi_az: bool = False  # a synchronous standby server follows `server` (instances.standby_server)

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
    """Where final dumps of DB instances deleted without a snapshot go."""
    return dumps.final_dump_dir(settings or Settings.from_env())


@dataclass(frozen=True)
class SnapshotData:
    """The real data behind a DB snapshot: a dump of `dbname`, whose owner was `master_user`."""

    path: Path
    dbname: str
    master_user: str


_snapshots: dict[str, SnapshotData] = {}  # snapshot id -> its dump
_restoring = threading.local()  # .snapshot: the SnapshotData a RestoreDBInstanceFromDBSnapshot is loading
_discarding = threading.local()  # .instance: the DB instance a failed stack create is rolling back


def snapshot_data(snapshot_id: str) -> SnapshotData | None:
    with _lock:
        return _snapshots.get(snapshot_id.lower())


def install() -> None:
    hooks.replace("rds.create_db_instance", _create_db_instance)
    hooks.replace("rds.delete_db_instance", _delete_db_instance)
    hooks.replace("rds.create_db_snapshot", _create_db_snapshot)
    hooks.replace("rds.delete_db_snapshot", _delete_db_snapshot)
    hooks.replace("rds.restore_db_instance_from_db_snapshot", _restore_db_instance_from_db_snapshot)
    hooks.replace("cfn.delete_resource", _delete_stack_resource)
    hooks.replace("rds.modify_db_subnet_group", _modify_db_subnet_group)
    from securecart_lab.emulator.bridges import rds_status

    rds_status.install()
    try:
        _reload_snapshots()
    except Exception:  # never keep the emulator from starting: the dumps stay on disk either way
        LOG.exception("could not list the RDS snapshots kept in %s", dumps.snapshot_dir(Settings.from_env()))
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
    _validate(dbname, master, password)
    database = hooks.original("rds.create_db_instance")(self, db_kwargs)
    instance_id = database.db_instance_identifier
    multi_az = bool(database.multi_az)
    settings = Settings.from_env()
    try:
        server, fresh = create_real_database(instance_id, dbname, master, password, restore=getattr(_restoring, "snapshot", None))
    except (LabError, psycopg.Error, OSError, subprocess.CalledProcessError) as exc:
        self.databases.pop(instance_id, None)
        raise _rds_error("InvalidParameterValue", f"The kit could not create the instance's PostgreSQL server: {_reason(exc)}") from None
    if multi_az:
        try:
            instances.start_standby(settings, instance_id, server)
        except (LabError, psycopg.Error, OSError) as exc:
            self.databases.pop(instance_id, None)
            _discard(settings, instance_id, server, fresh)
            raise _rds_error("InvalidParameterValue", f"The kit could not start the Multi-AZ standby server: {_reason(exc)}") from None
        database.secondary_availability_zone = secondary_zone(database.availability_zone)
    database.port = server.port
    register(DatabaseHandle(instance_id, server, dbname, master, fresh=fresh, multi_az=multi_az))
    _remember_login(dbname, master, password)
    LOG.info("RDS %s -> PostgreSQL server %s:%s, database %s%s", instance_id, server.host, server.port, dbname,
             " (Multi-AZ: with a synchronous standby)" if multi_az else "")
    return database


def secondary_zone(zone: str) -> str:
    """The standby's Availability Zone: another one of the Region."""
    zone = zone or f"{config.REGION}a"
    return zone[:-1] + ("b" if zone[-1] != "b" else "a")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, LabError):
        return exc.message
    if isinstance(exc, subprocess.CalledProcessError):
        return (exc.stderr or b"").decode(errors="replace").strip() or str(exc)
    return str(exc).strip()


def _discard(settings: Settings, instance_id: str, server, fresh: bool) -> None:
    """Undo a create that failed half way: a new server goes; one holding earlier data only stops."""
    try:
        if fresh:
            instances.remove(settings, instance_id)
        else:
            instances.remove_standby(settings, instance_id)
            server.stop(mode="fast")
    except (LabError, OSError):
        LOG.exception("RDS %s: could not clean up after a failed create", instance_id)


def _remember_login(dbname: str, master: str, password: str) -> None:
    """The master login in the kit's password file, so `securecart-lab psql` and psql after `env` log in as on AWS
    (any port: read replicas share their source's logins)."""
    try:
        shellenv.add_pgpass_entry(Settings.from_env(), "*", "*", dbname, master, password)
    except OSError as exc:
        LOG.warning("could not record the login of %s in the password file: %s", dbname, exc)


# As on RDS: rdsadmin is the engine's own superuser; template databases cannot be an instance's database.
RESERVED_USERS = {config.RDS_SUPERUSER}
RESERVED_DATABASES = {"template0", "template1", config.RDS_SUPERUSER}


def _validate(dbname: str, master: str, password: str) -> None:
    if master.lower() in RESERVED_USERS:
        raise _rds_error("InvalidParameterValue",
                         f"MasterUsername {master} cannot be used as it is a reserved word used by the engine")
    if not master or len(password) < 8:
        raise _rds_error("InvalidParameterValue",
                         "A postgres DB instance needs a MasterUsername and a MasterUserPassword of 8 or more characters.")
    if dbname.lower() in RESERVED_DATABASES:
        raise _rds_error("InvalidParameterValue", f"DBName {dbname} cannot be used as it is a reserved word used by the engine")


def create_real_database(instance_id: str, dbname: str, master: str, password: str, restore: SnapshotData | None = None):
    """The instance's PostgreSQL server, started, with database `dbname` owned by `master`: a new server holding the
    SecureCart seed, or the snapshot's dump when restoring, or the data an earlier instance left (see the module
    docstring). Returns the server and whether it is a new one holding only the seed."""
    settings = Settings.from_env()
    if restore is not None:
        server = instances.create(settings, instance_id, dbname, master)
        instances.add_master(server, master, password)
        _load_dump(server, dbname, master, restore.path, restore.master_user)
        return server, False
    with _lock:
        taken = set(registry)
    earlier = instances.datadir_of(settings, instance_id)
    found = [earlier] if (instances.read_meta(earlier) or {}).get("instance") == instance_id and instance_id not in taken else []
    found = found or instances.orphans(settings, dbname, taken)
    if found:
        server = instances.reuse(settings, found[0], instance_id, dbname, master)
        instances.add_master(server, master, password)
        server.create_database(dbname, master, password)
        _hand_over(server, dbname, master)
        with server.connect(dbname, master, password) as conn:
            seed.load(conn)
        LOG.info("RDS %s: the data %s kept (database %s) is the instance's again", instance_id, found[0], dbname)
        return server, False
    server = instances.create(settings, instance_id, dbname, master)
    instances.add_master(server, master, password)
    legacy = _legacy_database(settings, dbname)
    if legacy is not None:
        path, owner = legacy
        _load_dump(server, dbname, master, path, owner)
        postgres.primary(settings).drop_database(dbname)
        LOG.warning("RDS %s: database %s moved from the kit's shared server to the instance's own (dump kept in %s)",
                    instance_id, dbname, path)
        return server, False
    server.create_database(dbname, master, password)
    with server.connect(dbname, master, password) as conn:
        seed.load(conn)
    return server, True


def _hand_over(server, dbname: str, master: str) -> None:
    """A database kept from an earlier instance with another master user: the new master owns it."""
    with server.connect(dbname) as conn:
        owner = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (dbname,)).fetchone()[0]
        if owner != master:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(owner), sql.Identifier(master)))
            conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(sql.Identifier(dbname), sql.Identifier(master)))


def _load_dump(server, dbname: str, master: str, path: Path, owner: str) -> None:
    """A new database `dbname` holding a plain pg_dump whose objects `owner` owned, handed to `master`."""
    with server.connect() as conn:
        if owner != master and not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone():
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)))
    server.create_empty_database(dbname, master)
    server.restore(dbname, path)
    if owner != master:
        with server.connect(dbname) as conn:
            conn.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(sql.Identifier(owner), sql.Identifier(master)))
            conn.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(owner)))
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(owner)))


def _legacy_database(settings: Settings, dbname: str) -> tuple[Path, str] | None:
    """Before instances had servers of their own, their databases lived on the kit's shared server: a database
    `dbname` left there is dumped (the dump is kept). Returns the dump and its owner, None when there is none."""
    if dbname in (config.DB_NAME, "postgres"):
        return None
    primary = postgres.primary(settings)
    if not primary.is_running():
        return None
    with primary.connect() as conn:
        row = conn.execute("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (dbname,)).fetchone()
    if row is None:
        return None
    return dump_database(primary, dbname, dump_dir(settings), dbname), row[0]


def dump_database(server, dbname: str, folder: Path, stem: str) -> Path:
    """pg_dump `dbname` into a new file of its own in `folder` (never overwriting one); removed if the dump fails."""
    path, out = dumps.create(folder, stem)
    try:
        with out:
            server.dump(dbname, out)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def _delete_db_instance(self, db_instance_identifier: str, *args, **kwargs):
    final_snapshot = kwargs.get("final_db_snapshot_identifier", args[0] if args else None)
    skip_final = kwargs.get("skip_final_snapshot", args[1] if len(args) > 1 else False)
    database = hooks.original("rds.delete_db_instance")(self, db_instance_identifier, *args, **kwargs)
    handle = unregister(db_instance_identifier)
    if handle is not None:
        snapshot = snapshot_data(final_snapshot) if final_snapshot and not skip_final else None
        target = dump_dir()
        try:
            if handle.on_delete is not None:
                handle.on_delete(handle, target)
            else:
                _remove_instance(handle, target, snapshot is not None)
        except (LabError, psycopg.Error, OSError):
            LOG.exception("RDS %s: could not remove its PostgreSQL server", handle.instance_id)
    return database


def _remove_instance(handle: DatabaseHandle, target: Path, snapshotted: bool) -> None:
    """Stop the instance's servers and delete their data, dumped first into `target` unless a final snapshot
    holds it or it is the seed-only database of a create being rolled back. Data that cannot be dumped (a server
    that will not start) is moved to `target` as it is."""
    settings = Settings.from_env()
    discarded = handle.fresh and getattr(_discarding, "instance", None) == handle.instance_id
    if not snapshotted and not discarded:
        try:
            handle.server.start()
            dump = dump_database(handle.server, handle.dbname, target, handle.instance_id)
            LOG.info("RDS %s deleted: database %s dumped to %s", handle.instance_id, handle.dbname, dump)
        except (LabError, psycopg.Error, OSError):
            LOG.exception("RDS %s: could not dump database %s; keeping its data dir", handle.instance_id, handle.dbname)
            instances.remove_standby(settings, handle.instance_id)
            if handle.server.pid() is not None:
                handle.server.stop(mode="fast")
            kept = dumps.new_folder(target, handle.instance_id) / "data"
            shutil.move(str(handle.server.datadir), kept)
            return
    instances.remove(settings, handle.instance_id)


# --- snapshots ---------------------------------------------------------------------------------------------------

def _create_db_snapshot(self, db_instance_identifier: str, db_snapshot_identifier: str, *args, **kwargs):
    snapshot = hooks.original("rds.create_db_snapshot")(self, db_instance_identifier, db_snapshot_identifier, *args, **kwargs)
    handle = lookup(db_instance_identifier)
    # moto takes an "automated" snapshot as it creates an instance, before the real database exists: nothing to dump.
    if handle is None or snapshot.snapshot_type == "automated":
        return snapshot
    snapshot_id = snapshot.db_snapshot_identifier
    stopped = not handle.server.is_running()
    try:
        # RDS snapshots an instance's storage whatever its engine is doing (a stopped instance, or one whose server
        # is between a crash and its restart): start the server for the dump, and leave it as it was.
        handle.server.start()
        path = dump_database(handle.server, handle.dbname, dumps.snapshot_dir(Settings.from_env()), snapshot_id)
        if stopped:
            handle.server.stop(mode="fast")
    except (LabError, psycopg.Error, OSError) as exc:
        self.database_snapshots.pop(snapshot_id, None)
        message = exc.message if isinstance(exc, LabError) else str(exc).strip()
        raise _rds_error("InvalidDBInstanceState",
                         f"DB instance {db_instance_identifier} could not be snapshotted (pg_dump failed): {message}") from None
    try:
        dumps.write_sidecar(path, _snapshot_record(snapshot, handle))
    except (OSError, TypeError, ValueError):
        LOG.exception("RDS snapshot %s: could not record it beside its dump; it will not be listed after a restart", snapshot_id)
    with _lock:
        _snapshots[snapshot_id] = SnapshotData(path, handle.dbname, handle.master_user)
    LOG.info("RDS snapshot %s of %s: database %s dumped to %s", snapshot_id, db_instance_identifier, handle.dbname, path)
    return snapshot


# What a snapshot needs to be listed and restored by a later emulator (its memory starts empty).
_INSTANCE_FIELDS = ("db_instance_identifier", "engine", "engine_version", "db_instance_class", "allocated_storage",
                    "db_name", "master_username", "master_user_password", "port")


def _snapshot_record(snapshot, handle: DatabaseHandle) -> dict:
    return {
        "snapshot_id": snapshot.db_snapshot_identifier,
        "snapshot_type": snapshot.snapshot_type,
        "created": snapshot.created.isoformat(),
        "dbname": handle.dbname,
        "master_user": handle.master_user,
        # moto's DBInstance keeps some fields behind properties (the password's refuses to answer): read its state
        "instance": {name: vars(snapshot.database).get(name, vars(snapshot.database).get(f"_{name}")) for name in _INSTANCE_FIELDS},
    }


def _reload_snapshots() -> None:
    """List again the snapshots an earlier emulator took: their dumps and records are in SECURECART_HOME."""
    from datetime import datetime

    folder = dumps.snapshot_dir(Settings.from_env())
    if not folder.is_dir():
        return
    backend = hooks.resolve("rds.backends")[config.ACCOUNT_ID][config.REGION]
    for record_path in sorted(folder.glob("*.json")):
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            dump = record_path.with_suffix(".sql")
            snapshot_id = record["snapshot_id"]
            if not dump.exists() or snapshot_id in backend.database_snapshots:
                continue
            instance = {k: v for k, v in record["instance"].items() if k in _INSTANCE_FIELDS and v is not None}
            database = hooks.resolve("rds.db_instance")(backend, **instance)
            snapshot = hooks.resolve("rds.db_snapshot")(backend, database, snapshot_id, record.get("snapshot_type", "manual"))
            snapshot.created = datetime.fromisoformat(record["created"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            LOG.warning("RDS snapshot record %s is unreadable (%s); its dump stays where it is", record_path, exc)
            continue
        backend.database_snapshots[snapshot_id] = snapshot
        with _lock:
            _snapshots[snapshot_id] = SnapshotData(dump, record["dbname"], record["master_user"])
        LOG.info("RDS snapshot %s listed again from %s", snapshot_id, dump)


def _delete_db_snapshot(self, db_snapshot_identifier: str, *args, **kwargs):
    snapshot = hooks.original("rds.delete_db_snapshot")(self, db_snapshot_identifier, *args, **kwargs)
    with _lock:
        data = _snapshots.pop(snapshot.db_snapshot_identifier, None)
    if data is not None:
        data.path.unlink(missing_ok=True)
        dumps.sidecar(data.path).unlink(missing_ok=True)
        LOG.info("RDS snapshot %s deleted with its dump %s", snapshot.db_snapshot_identifier, data.path)
    return snapshot


def _restore_db_instance_from_db_snapshot(self, from_snapshot_id: str, overrides: dict[str, Any]):
    data = snapshot_data(from_snapshot_id.rsplit(":", 1)[-1])
    if data is not None and not data.path.exists():
        raise _rds_error("InvalidDBSnapshotState", f"The dump behind DB snapshot {from_snapshot_id} is gone ({data.path}).")
    _restoring.snapshot = data
    try:
        return hooks.original("rds.restore_db_instance_from_db_snapshot")(self, from_snapshot_id, overrides)
    finally:
        _restoring.snapshot = None


# --- CloudFormation DeletionPolicy -------------------------------------------------------------------------------

def deletion_policy(resource_json: dict) -> str:
    """A resource's DeletionPolicy; AWS's default is Snapshot for a DB instance outside a cluster, else Delete."""
    policy = resource_json.get("DeletionPolicy")
    if isinstance(policy, str):
        return policy
    props = resource_json.get("Properties") or {}
    if resource_json.get("Type") == "AWS::RDS::DBInstance" and not props.get("DBClusterIdentifier"):
        return "Snapshot"
    return "Delete"


def final_snapshot_id(stack_name: str, logical_id: str) -> str:
    """A snapshot name like CloudFormation's: <stack>-<logical id>-<random>, lower case."""
    name = re.sub(r"[^a-z0-9]+", "-", f"{stack_name}-{logical_id}".lower()).strip("-")
    return f"{name}-snapshot-{uuid.uuid4().hex[:12]}"


def _delete_stack_resource(self, parsed_resource: Any, resource_json: dict) -> None:
    """A stack deletes a resource (stack delete, a resource removed by an update, a rollback): honour DeletionPolicy.
    Retain keeps it (moto's stack delete skips it, its update does not); Snapshot deletes a DB instance with a final
    snapshot. A read replica has no snapshot of its own on AWS: it is deleted as it is."""
    policy = deletion_policy(resource_json)
    logical_id = getattr(parsed_resource, "logical_resource_id", None) or "resource"
    if policy == "Retain" or (policy == "RetainExceptOnCreate" and not _rolling_back(self)):
        LOG.info("stack resource %s kept (DeletionPolicy %s)", logical_id, policy)
        return
    instance_id = getattr(parsed_resource, "db_instance_identifier", None)
    if resource_json.get("Type") == "AWS::RDS::DBInstance" and isinstance(instance_id, str):
        handle = lookup(instance_id)
        if _rolling_back(self) and handle is not None and handle.fresh:
            # Made by the create that failed, holding only the seed: a snapshot or dump of it would only sit beside
            # (and be mistaken for) the one of the database the deploy replaced.
            _discarding.instance = instance_id
            try:
                hooks.original("cfn.delete_resource")(self, parsed_resource, resource_json)
            finally:
                _discarding.instance = None
            return
        backend = hooks.resolve("rds.backends")[self._account_id][self._region_name]
        if policy == "Snapshot" and not getattr(parsed_resource, "is_replica", False) and instance_id in backend.databases:
            stack_name = str(self._parsed_resources.get("AWS::StackName") or "stack")
            backend.delete_db_instance(instance_id, final_db_snapshot_identifier=final_snapshot_id(stack_name, logical_id))
            return
    hooks.original("cfn.delete_resource")(self, parsed_resource, resource_json)


def _rolling_back(resource_map: Any) -> bool:
    try:
        stack = hooks.resolve("cfn.backends")[resource_map._account_id][resource_map._region_name].stacks.get(resource_map.stack_id)
    except (KeyError, AttributeError):
        return False
    return stack is not None and "ROLLBACK_IN_PROGRESS" in str(getattr(stack, "status", ""))


def _modify_db_subnet_group(self, subnet_name: str, description: str, subnets):
    """moto's ModifyDBSubnetGroup removes the group from the backend (it pops it and never puts it back)."""
    subnet_group = self.subnet_groups.get(subnet_name)
    if subnet_group is None:
        raise _rds_error("DBSubnetGroupNotFoundFault", f"DBSubnetGroupName {subnet_name} not found.")
    subnet_group.subnets = subnets
    if description is not None:
        subnet_group.description = description
    return subnet_group
