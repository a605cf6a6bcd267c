"""The database tier as the SecureCart app sees it, read through the AWS API.

The *writer* is where the app sends orders: the SSM parameter /securecart/db/writer-endpoint when it is set
(a failover moves it there), else the DB instance of the app's stack (lab 2's). Its *replicas* are the DB instances
whose ReadReplicaSourceDBInstanceIdentifier names it. Checks (labs 2 and 3), `chaos` and `bench` start from
`topology()`, so they follow the writer wherever it is now.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from botocore.exceptions import ClientError
from psycopg.conninfo import make_conninfo

from securecart_lab import aws, config
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER
from securecart_lab.config import Settings
from securecart_lab.errors import LabError, PostgresError

LAB2_STACK = "securecart-lab02"
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
    multi_az: bool = False

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def connect(self, dbname: str | None = None) -> psycopg.Connection:
        """An autocommit connection as the kit's administrator (the checks' instrument, not the app's login)."""
        return connect(self.host, self.port, dbname or self.dbname)


def connect(host: str, port: int, dbname: str) -> psycopg.Connection:
    info = make_conninfo(host=host, port=port, dbname=dbname, user=config.RDS_SUPERUSER,
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
        """The DB instance serving host:port."""
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
        multi_az=bool(raw.get("MultiAZ")),
    )


def parameter(ssm, name: str) -> str | None:
    try:
        return ssm.get_parameter(Name=name)["Parameter"]["Value"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise


def lab_database_id(cloudformation) -> str | None:
    """The DB instance of lab 2's stack (the app's database), however the learner named it."""
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
