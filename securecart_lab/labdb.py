"""The lab database as a learner logs in to it: which RDS instance (the app's writer, one of its read replicas, or one
named), its endpoint, database and master user, read through the RDS API. `securecart-lab psql` runs on this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from botocore.exceptions import ClientError

from securecart_lab import aws, replicas, shellenv
from securecart_lab.config import Settings
from securecart_lab.errors import LabError
from securecart_lab.postgres import binaries


@dataclass(frozen=True)
class Login:
    instance_id: str
    role: str  # "writer", "read replica of X", "DB instance"
    host: str
    port: int
    dbname: str
    user: str

    def psql_argv(self, psql: Path | str, extra: list[str]) -> list[str]:
        return [str(psql), "-h", self.host, "-p", str(self.port), "-U", self.user, "-d", self.dbname, *extra]


def _describe(rds, instance_id: str) -> dict:
    try:
        return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]
    except ClientError as exc:
        raise LabError(f"No DB instance {instance_id!r}: {exc.response['Error'].get('Message', '')}",
                       "List them with: aws rds describe-db-instances --query 'DBInstances[].DBInstanceIdentifier'") from None


def _login(rds, raw: dict, role: str) -> Login:
    user = raw.get("MasterUsername")
    source = raw.get("ReadReplicaSourceDBInstanceIdentifier")
    if not user and source:  # a replica logs in with its source's users
        user = _describe(rds, source).get("MasterUsername")
    endpoint = raw.get("Endpoint") or {}
    return Login(raw["DBInstanceIdentifier"], role, endpoint.get("Address", ""), int(endpoint.get("Port") or 0),
                 raw.get("DBName") or "postgres", user or "postgres")


def login(endpoint_url: str, replica: bool = False, instance: str | None = None) -> Login:
    rds = aws.client("rds", endpoint_url)
    if instance:
        raw = _describe(rds, instance)
        source = raw.get("ReadReplicaSourceDBInstanceIdentifier")
        return _login(rds, raw, f"read replica of {source}" if source else "DB instance")
    topo = replicas.topology(endpoint_url)
    writer = topo.writer
    if writer is None:
        standalone = [i for i in topo.instances.values() if not i.source]
        if len(standalone) != 1 or topo.writer_parameter:
            topo.require_writer()  # says what is missing
        writer = standalone[0]
    if not replica:
        return _login(rds, _describe(rds, writer.id), "writer")
    ready = [r for r in topo.replicas if r.status == "available"] or topo.replicas
    if not ready:
        raise LabError(f"Expected a read replica of {writer.id} (the writer), found none.",
                       "Lab 3 step 1 adds one: an AWS::RDS::DBInstance with SourceDBInstanceIdentifier in replica.yaml.")
    return _login(rds, _describe(rds, ready[0].id), f"read replica of {writer.id}")


def psql_binary(settings: Settings) -> Path:
    return binaries.find_bindir(settings.pg_bin) / "psql"


def psql_env(settings: Settings) -> dict[str, str]:
    """The kit's password file holds every RDS master login (written when the instance was created)."""
    return {"PGPASSFILE": str(shellenv.pgpass_path(settings)), "PGCONNECT_TIMEOUT": "5"}
