"""Lab 3's view of the database tier, read through the AWS API, and the primary-failure drill.

The *writer* is where the app sends orders: the SSM parameter /securecart/db/writer-endpoint when it is set
(a failover moves it there), else lab 2's DB instance. Its *replicas* are the DB instances whose
ReadReplicaSourceDBInstanceIdentifier names it. Checks, `chaos` and `bench` all start from `topology()`.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
from botocore.exceptions import BotoCoreError, ClientError
from psycopg.conninfo import make_conninfo

from securecart_lab import aws, config, postgres
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER
from securecart_lab.config import Settings
from securecart_lab.errors import LabError, PostgresError
from securecart_lab.postgres.server import PostgresServer

LAB2_STACK = "securecart-lab02"
DRILL_FILE = "lab03-primary-down.json"
PROBE_DB = "securecart_lab_probe"  # the checks' own database (replication probe rows)
NO_DATABASE_HINT = 'Run "securecart-lab start 3 --with-prereqs" (it deploys lab 2\'s reference solution), or finish lab 2.'


@dataclass(frozen=True)
class DbInstance:
    """One RDS DB instance as describe_db_instances reports it."""

    id: str
    status: str
    host: str
    port: int
    dbname: str
    source: str | None = None
    replicas: tuple[str, ...] = ()

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit connection as the kit's administrator (the checks' instrument, not the app's login)."""
        return connect(self.host, self.port, dbname or self.dbname)


def connect(host: str, port: int, dbname: str) -> psycopg.Connection:
    info = make_conninfo(host=host, port=port, dbname=dbname, user=config.PG_SUPERUSER,
                         password=Settings.from_env().superpassword, connect_timeout=3, application_name="securecart-lab check")
    try:
        return psycopg.connect(info, autocommit=True)
    except psycopg.OperationalError as exc:
        raise PostgresError(f"Cannot connect to the database at {host}:{port}: {str(exc).strip().splitlines()[-1]}") from None


@dataclass
class Topology:
    """The writer the app uses, how that was decided, its replicas, and the SSM routing parameters."""

    instances: dict[str, DbInstance]
    lab_database: DbInstance | None
    writer: DbInstance | None
    writer_parameter: str | None
    reader_parameter: str | None
    replicas: list[DbInstance] = field(default_factory=list)

    def instance_at(self, endpoint: str | None) -> DbInstance | None:
        """The DB instance serving host:port (lab 2's when several databases share that server)."""
        if not endpoint:
            return None
        found = [i for i in self.instances.values() if i.endpoint == endpoint.strip()]
        if self.lab_database in found:
            return self.lab_database
        return found[0] if found else None

    def require_writer(self) -> DbInstance:
        if self.writer is None:
            if self.writer_parameter:
                raise LabError(f"{WRITER_PARAMETER} is {self.writer_parameter!r}, which is no DB instance's endpoint.",
                               "Set it to an instance's Endpoint.Address:Endpoint.Port (aws rds describe-db-instances).")
            raise LabError("Expected lab 2's database (stack securecart-lab02), found none.", NO_DATABASE_HINT)
        return self.writer


def _instance(raw: dict) -> DbInstance:
    endpoint = raw.get("Endpoint") or {}
    return DbInstance(
        id=raw["DBInstanceIdentifier"],
        status=raw.get("DBInstanceStatus", ""),
        host=endpoint.get("Address", ""),
        port=int(endpoint.get("Port") or 0),
        dbname=raw.get("DBName") or config.DB_NAME,
        source=raw.get("ReadReplicaSourceDBInstanceIdentifier"),
        replicas=tuple(raw.get("ReadReplicaDBInstanceIdentifiers") or ()),
    )


def parameter(ssm, name: str) -> str | None:
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise


def lab_database_id(cloudformation) -> str | None:
    try:
        resources = cloudformation.describe_stack_resources(StackName=LAB2_STACK)["StackResources"]
    except ClientError:
        return None
    ids = [r.get("PhysicalResourceId") for r in resources if r["ResourceType"] == "AWS::RDS::DBInstance"]
    return ids[0] if ids else None


def topology(endpoint_url: str) -> Topology:
    """Read the database tier through the RDS, SSM and CloudFormation APIs."""
    rds = aws.client("rds", endpoint_url)
    instances = {i.id: i for i in map(_instance, rds.describe_db_instances()["DBInstances"])}
    ssm = aws.client("ssm", endpoint_url)
    lab_id = lab_database_id(aws.client("cloudformation", endpoint_url))
    topo = Topology(
        instances=instances,
        lab_database=instances.get(lab_id or ""),
        writer=None,
        writer_parameter=parameter(ssm, WRITER_PARAMETER),
        reader_parameter=parameter(ssm, READER_PARAMETER),
    )
    topo.writer = topo.instance_at(topo.writer_parameter) if topo.writer_parameter else topo.lab_database
    if topo.writer is not None:
        topo.replicas = [i for i in instances.values() if i.source == topo.writer.id]
    return topo


# --- the drill: stop the writer's server, bring it back --------------------------------------------------------

@dataclass
class Outage:
    """What `primary_down` stopped, and the orders that were confirmed when it did."""

    instance: str
    host: str
    port: int
    datadir: str
    dbname: str
    at: str
    orders: list[str]
    shared_with: list[str]  # the other databases on the stopped server

    def save(self, settings: Settings) -> Path:
        path = settings.home / DRILL_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self), indent=2))
        return path

    @classmethod
    def load(cls, settings: Settings) -> "Outage | None":
        try:
            return cls(**json.loads((settings.home / DRILL_FILE).read_text()))
        except (OSError, ValueError, TypeError):
            return None


def _server_of(settings: Settings, instance: DbInstance) -> PostgresServer:
    if instance.port == settings.pg_port:
        return postgres.primary(settings)
    datadir = settings.pg_dir / instance.id
    server = postgres.server_for(settings, datadir)
    server.port = instance.port
    return server


def primary_down(settings: Settings) -> Outage:
    """Crash (immediate stop) the PostgreSQL server behind the writer, after noting every confirmed order."""
    try:
        topo = topology(settings.endpoint_url)
    except (ClientError, BotoCoreError) as exc:
        raise LabError(f"Cannot read the DB instances from the emulator: {exc}", 'Run "securecart-lab up".') from None
    writer = topo.require_writer()
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
    server.stop(mode="immediate")
    outage.save(settings)
    return outage


def primary_up(settings: Settings) -> Outage:
    """Start again the server the last primary_down stopped."""
    outage = Outage.load(settings)
    if outage is None:
        raise LabError("No primary-down drill to undo.", 'Start one with "securecart-lab chaos primary-down".')
    datadir = Path(outage.datadir)
    if outage.port == settings.pg_port:
        server = postgres.primary(settings)
    else:
        server = postgres.server_for(settings, datadir)
        server.port = outage.port
    if not (datadir / "PG_VERSION").exists():
        raise LabError(f"The stopped server's data ({datadir}) is gone.", "Its DB instance was deleted; nothing to bring back.")
    server.start()
    _drop_slots_of_promoted_replicas(settings, server)
    return outage


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
