"""Lab 3's primary-failure drill on the real servers, and undoing lab 3 to do it again.

`chaos primary-down` crashes (immediate stop) the PostgreSQL server behind the app's writer, after noting every
confirmed order, and, when the writer is Multi-AZ, its standby first: the whole instance is lost (as when a Region
or both AZs go down), which Multi-AZ does not cover, so the replica must be promoted. A `<data dir>.halted` file
tells the emulator not to repair it (bridges/rds_status.py). `chaos primary-up` starts it again.

`chaos az-down` crashes only the primary server of a Multi-AZ writer, as when its AZ fails: RDS fails over to the
standby behind the same endpoint by itself, and there is nothing to undo. It notes the instance as it was (endpoint,
AZ, standby AZ, the writer parameter) and every confirmed order, for the `multi-az-failover` check.

What each drill stopped is an environment record (securecart_lab.envstate) of the emulator that ran it: after
`down`/`up` or a crash it is stale, and no drill happened here.

`teardown` (used by `securecart-lab reset 3 --environment`) removes what lab 3 made: the replicas, the promoted writer
(snapshotted first, as a stack delete does), the routing parameters, the lab 3 stack and the drill record, and brings
back a primary the drill left down, so lab 3 starts again on lab 2's database. The app instances are moved back to
that database before the writer they use is deleted, and teardown returns once lab 2's site serves again.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import ClassVar, Self

import psycopg
from botocore.exceptions import BotoCoreError, ClientError

from securecart_lab import aws, envstate, paths, postgres
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER, AppConfig
from securecart_lab.config import Settings
from securecart_lab.errors import LabError
from securecart_lab.labs import stacks
from securecart_lab.labs.registry import get_lab
from securecart_lab.postgres import instances, topology as db
from securecart_lab.postgres.server import PostgresServer

RECORD = "lab03-drill"
AZ_RECORD = "lab03-az-down"
PROBE_DB = "securecart_lab_probe"  # the checks' own database (replication probe rows)
STACK = "securecart-lab03"
SITE_WAIT_SECONDS = 30


class _Recorded:
    """A drill's record, kept per environment (envstate) under the class's RECORD."""

    RECORD: ClassVar[str]

    def save(self, settings: Settings, environment: str | None) -> Path:
        return envstate.save(settings, self.RECORD, asdict(self), environment)

    @classmethod
    def load(cls, settings: Settings, environment: str | None = None) -> "Self | None":
        """The drill the running environment (or `environment`) ran; None when it ran none."""
        data = envstate.load(settings, cls.RECORD, envstate.current_id(settings) if environment is None else environment)
        try:
            return cls(**data) if data is not None else None
        except TypeError:
            return None


@dataclass
class Outage(_Recorded):
    """What `primary_down` stopped, and the orders that were confirmed when it did."""

    RECORD: ClassVar[str] = RECORD
    instance: str
    host: str
    port: int
    datadir: str
    dbname: str
    at: str
    orders: list[str]
    shared_with: list[str]  # the other databases on the stopped server


@dataclass
class AzOutage(_Recorded):
    """What `az_down` crashed: the Multi-AZ writer as it was, and the orders confirmed at that moment."""

    RECORD: ClassVar[str] = AZ_RECORD
    instance: str
    endpoint: str  # host:port, which a Multi-AZ failover keeps
    zone: str  # AvailabilityZone then
    standby_zone: str  # SecondaryAvailabilityZone then: where the failover moves the instance
    at: float  # epoch seconds
    orders: list[str]
    writer_parameter: str | None  # /securecart/db/writer-endpoint then (None: unset)
    events_before: int  # how many RDS events the instance had then: the failover's come after


def _server_of(settings: Settings, instance: db.DbInstance) -> PostgresServer:
    if instance.port == settings.pg_port:
        return postgres.primary(settings)
    server = postgres.server_for(settings, settings.pg_dir / instance.id)
    server.port = instance.port
    return server


def _topology(settings: Settings) -> db.Topology:
    try:
        return db.topology(settings.endpoint_url)
    except (ClientError, BotoCoreError) as exc:
        raise LabError(f"Cannot read the DB instances from the emulator: {exc}", 'Run "securecart-lab up".') from None


def _writer(settings: Settings) -> db.DbInstance:
    return _topology(settings).require_writer()


def _halted(server: PostgresServer) -> Path:
    return server.datadir.with_name(server.datadir.name + ".halted")


def az_down(settings: Settings) -> db.DbInstance:
    """Crash the primary server of the Multi-AZ writer (its AZ fails); RDS fails over to the standby by itself.
    Notes the instance as it was and the confirmed orders first."""
    topo = _topology(settings)
    writer = topo.require_writer()
    if not writer.multi_az:
        raise LabError(f"The writer {writer.id} is not Multi-AZ: with its AZ gone nothing would take over.",
                       "Lab 2 asks for MultiAZ: true. For the read replica drill, use chaos primary-down.")
    server = _server_of(settings, writer)
    if not server.is_running():
        raise LabError(f"The writer {writer.id} ({writer.endpoint}) is already down.", 'Bring it back with "securecart-lab chaos primary-up".')
    rds = aws.client("rds", settings.endpoint_url)
    described = rds.describe_db_instances(DBInstanceIdentifier=writer.id)["DBInstances"][0]
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier=writer.id)["Events"]
    with writer.connect() as conn:
        orders = [row[0] for row in conn.execute("SELECT id FROM orders ORDER BY created_at, id")]
    record = AzOutage(writer.id, writer.endpoint, described.get("AvailabilityZone", ""),
                      described.get("SecondaryAvailabilityZone", ""), time.time(), orders, topo.writer_parameter,
                      len(events))
    environment = envstate.current_id(settings)
    server.stop(mode="immediate")
    record.save(settings, environment)
    return writer


def primary_down(settings: Settings) -> Outage:
    """Crash (immediate stop) the PostgreSQL server behind the writer, and its Multi-AZ standby, after noting every
    confirmed order."""
    writer = _writer(settings)
    server = _server_of(settings, writer)
    if not server.is_running():
        raise LabError(f"The writer {writer.id} ({writer.endpoint}) is already down.",
                       'Bring it back with "securecart-lab chaos primary-up", or carry on with the failover.')
    with writer.connect() as conn:
        orders = [row[0] for row in conn.execute("SELECT id FROM orders ORDER BY created_at, id")]
        shared = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE NOT datistemplate AND datname NOT IN ('postgres', %s, %s) ORDER BY 1",
            (writer.dbname, PROBE_DB))]
    outage = Outage(writer.id, writer.host, writer.port, str(server.datadir), writer.dbname,
                    time.strftime("%Y-%m-%dT%H:%M:%S"), orders, shared)
    environment = envstate.current_id(settings)
    paths.write_private(_halted(server), outage.at)
    standby = instances.standby_server(settings, writer.id)
    if standby is not None and standby.pid() is not None:
        standby.stop(mode="immediate")
    server.stop(mode="immediate")
    outage.save(settings, environment)
    return outage


def primary_up(settings: Settings) -> Outage:
    """Start again the server the running environment's primary_down stopped."""
    outage = Outage.load(settings)
    if outage is None:
        raise LabError("No primary-down drill to undo.", 'Start one with "securecart-lab chaos primary-down".')
    _start(settings, outage)
    return outage


def _server_at(settings: Settings, outage: Outage) -> PostgresServer:
    if outage.port == settings.pg_port:
        return postgres.primary(settings)
    server = postgres.server_for(settings, Path(outage.datadir))
    server.port = outage.port
    return server


def _start(settings: Settings, outage: Outage) -> None:
    datadir = Path(outage.datadir)
    server = _server_at(settings, outage)
    if not (datadir / "PG_VERSION").exists():
        raise LabError(f"The stopped server's data ({datadir}) is gone.", "Its DB instance was deleted; nothing to bring back.")
    server.start()
    _halted(server).unlink(missing_ok=True)  # the emulator starts its standby again
    _drop_slots_of_promoted_replicas(settings, server)


def _drop_slots_of_promoted_replicas(settings: Settings, server) -> None:
    """A replica promoted while this server was down left its replication slot here; drop it so it stops
    holding WAL. Slots of replicas that are still standbys are kept: they catch up."""
    for folder in sorted(settings.pg_dir.glob("*/postmaster.pid")):
        other = postgres.server_for(settings, folder.parent)
        if other.datadir == server.datadir or not other.is_running():
            continue
        try:
            if not other.is_in_recovery():
                server.drop_replication_slot(other.slot_name)
        except (LabError, psycopg.Error):
            continue


# --- redo: undo what lab 3 made ---------------------------------------------------------------------------------

def _stack_instances(cf) -> set[str]:
    try:
        return set(stacks.resources(cf, STACK, "AWS::RDS::DBInstance")) if stacks.find(cf, STACK) else set()
    except ClientError:
        return set()


def teardown(ctx) -> list[str]:
    """Remove lab 3's resources and drill state so lab 3 starts again on lab 2's database. Returns what it did."""
    settings = ctx.settings
    rds, ssm, cf = ctx.aws("rds"), ctx.aws("ssm"), ctx.aws("cloudformation")
    lines: list[str] = []
    outage = Outage.load(settings)
    if outage is not None and Path(outage.datadir).exists() and not _server_at(settings, outage).is_running():
        _start(settings, outage)
        lines.append(f"Started {outage.instance}'s server again (the drill had stopped it)")
    topo = db.topology(ctx.endpoint_url)
    lab2 = topo.lab_database.id if topo.lab_database else None
    in_stack = _stack_instances(cf)
    # Lab 3's instances: the stack's, the writer a failover moved elsewhere, and every replica down those lines.
    ours = {i for i in in_stack | ({topo.writer.id} if topo.writer else set()) if i != lab2}
    while True:
        more = {i.id for i in topo.instances.values() if i.source in ours | ({lab2} if lab2 else set()) and i.id != lab2}
        if more <= ours:
            break
        ours |= more
    # The app instances cache the writer parameter (AppConfig.reader_cache_seconds): point them back at lab 2's
    # database and let their caches expire before deleting the writer they use, or their next requests fail (503).
    if topo.writer_parameter is not None and (topo.writer is None or topo.writer.id != lab2):
        lines += _delete_parameters(ssm, [WRITER_PARAMETER])
        time.sleep(AppConfig.reader_cache_seconds + 0.5)
    # Replicas first (deleted as they are, as on AWS), then the promoted ones outside the stack (final snapshot).
    for instance in sorted((topo.instances[i] for i in ours if i in topo.instances and i not in in_stack),
                           key=lambda i: i.source is None):
        args = {"SkipFinalSnapshot": True} if instance.source else \
            {"FinalDBSnapshotIdentifier": f"{instance.id}-redo-{time.strftime('%Y%m%d%H%M%S')}"}
        rds.delete_db_instance(DBInstanceIdentifier=instance.id, **args)
        lines.append(f"Deleted DB instance {instance.id}" + ("" if instance.source else " (final snapshot taken)"))
    if stacks.find(cf, STACK) is not None:
        failure = stacks.delete(cf, STACK)
        if failure:
            raise LabError(failure, f"Fix what it says, then run reset 3 --environment again (aws cloudformation "
                                    f"describe-stack-events --stack-name {STACK} shows every event).")
        lines.append(f"Deleted stack {STACK}" + (f" (with {', '.join(sorted(in_stack))})" if in_stack else ""))
    lines += _delete_parameters(ssm, [WRITER_PARAMETER, READER_PARAMETER])
    if outage is not None:
        lines.append(f"Cleared the failover drill of {outage.at}")
    envstate.remove(settings, RECORD)
    envstate.remove(settings, AZ_RECORD)
    return lines + _wait_for_site(ctx)


def _delete_parameters(ssm, names: list[str]) -> list[str]:
    lines = []
    for name in names:
        try:
            ssm.delete_parameter(Name=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            continue
        role = "writes" if name == WRITER_PARAMETER else "reads"
        lines.append(f"Deleted parameter {name}: the app {role} on lab 2's database again")
    return lines


def _wait_for_site(ctx, timeout: float = SITE_WAIT_SECONDS) -> list[str]:
    """Until lab 2's site answers product searches through its load balancer several times in a row (every
    instance, round robin), so the learner's next request is served. A warning line when it does not in time."""
    lab2 = get_lab(2)
    url = lab2.provisioner().site_url(ctx.lab_context(lab2))
    if url is None:
        return []
    deadline = time.monotonic() + timeout
    streak, needed, last = 0, 2, "no answer"
    while True:
        if streak == 0:
            health = lab2.provisioner().site_health(ctx.lab_context(lab2))
            needed = 2 * max(1, health.total if health else 1)
        try:
            with urllib.request.urlopen(f"{url}/api/products?limit=1", timeout=5) as response:
                response.read()
            streak += 1
        except urllib.error.HTTPError as exc:
            streak, last = 0, f"{exc.code} {exc.read()[:200].decode(errors='replace').strip()}"
        except OSError as exc:
            streak, last = 0, str(exc)
        if streak >= needed:
            return [f"Lab 2's site serves again: {url}/"]
        if time.monotonic() > deadline:
            return [f"Warning: lab 2's site at {url}/ is not serving after {timeout:.0f} s (last answer: {last}); "
                    '"securecart-lab check 2" says why.']
        if streak == 0:
            time.sleep(0.2)
