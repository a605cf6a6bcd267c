"""The read-replica bridge on the real local engine: the RDS API drives real PostgreSQL standbys."""

from __future__ import annotations

import datetime
import time

import psycopg
import pytest
from botocore.exceptions import ClientError

from securecart_lab import postgres, replicas

pytestmark = pytest.mark.integration

SOURCE, REPLICA, OTHER = "bridge-src", "bridge-replica", "bridge-replica-b"


def describe(rds, instance_id: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=instance_id)["DBInstances"][0]


def wait_available(rds, instance_id: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    while (found := describe(rds, instance_id))["DBInstanceStatus"] != "available":
        assert time.monotonic() < deadline, found["DBInstanceStatus"]
        time.sleep(0.05)
    return found


def connect(found: dict, dbname: str = "bridgedb") -> psycopg.Connection:
    return replicas.connect(found["Endpoint"]["Address"], found["Endpoint"]["Port"], dbname)


@pytest.fixture(scope="module")
def rds(aws):
    client = aws("rds")
    client.create_db_instance(DBInstanceIdentifier=SOURCE, Engine="postgres", DBInstanceClass="db.t3.micro",
                              MasterUsername="bridge_admin", MasterUserPassword="bridge-secret", DBName="bridgedb",
                              AllocatedStorage=20)
    yield client
    for instance_id in (OTHER, REPLICA, SOURCE):
        try:
            client.delete_db_instance(DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)
        except ClientError:
            pass


def test_a_replica_is_a_streaming_standby_listed_both_ways(rds, settings):
    created = rds.create_db_instance_read_replica(DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=SOURCE)["DBInstance"]
    assert created["DBInstanceStatus"] == "creating"
    found = wait_available(rds, REPLICA)
    assert found["ReadReplicaSourceDBInstanceIdentifier"] == SOURCE
    assert describe(rds, SOURCE)["ReadReplicaDBInstanceIdentifiers"] == [REPLICA]
    assert found["Endpoint"]["Port"] not in (settings.pg_port, 3306)
    assert (settings.pg_dir / REPLICA / "standby.signal").exists()
    with connect(found) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is True
        assert conn.execute("select count(*) from products").fetchone()[0] > 0
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("update products set price_cents = 1")


def test_replica_lag_is_published_to_cloudwatch(rds, aws):
    now = datetime.datetime.now(datetime.timezone.utc)
    deadline = time.monotonic() + 12
    while True:
        points = aws("cloudwatch").get_metric_statistics(
            Namespace="AWS/RDS", MetricName="ReplicaLag", Dimensions=[{"Name": "DBInstanceIdentifier", "Value": REPLICA}],
            StartTime=now - datetime.timedelta(hours=1), EndTime=now + datetime.timedelta(hours=1), Period=60,
            Statistics=["Maximum"])["Datapoints"]
        if points or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert points and 0 <= points[0]["Maximum"] < 5


def test_errors_keep_the_rds_shape(rds):
    with pytest.raises(ClientError, match="DBInstanceAlreadyExists"):
        rds.create_db_instance_read_replica(DBInstanceIdentifier=REPLICA, SourceDBInstanceIdentifier=SOURCE)
    with pytest.raises(ClientError, match="not a read replica"):
        rds.promote_read_replica(DBInstanceIdentifier=SOURCE)


def test_reboot_restarts_the_replica_server(rds, settings):
    server = postgres.server_for(settings, settings.pg_dir / REPLICA)
    before = server.pid()
    rds.reboot_db_instance(DBInstanceIdentifier=REPLICA)
    assert server.pid() not in (None, before)
    with connect(wait_available(rds, REPLICA)) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is True


def test_promote_makes_it_writable_and_standalone(rds, settings):
    promoted = rds.promote_read_replica(DBInstanceIdentifier=REPLICA)["DBInstance"]
    assert "ReadReplicaSourceDBInstanceIdentifier" not in promoted
    assert describe(rds, SOURCE).get("ReadReplicaDBInstanceIdentifiers", []) == []
    with connect(promoted) as conn:
        assert conn.execute("select pg_is_in_recovery()").fetchone()[0] is False
        conn.execute("create table promoted_probe (id int)")
    # It left replication: its slot no longer holds WAL on the source's server.
    with postgres.server_for(settings, settings.pg_dir / SOURCE).connect() as conn:
        slots = [r[0] for r in conn.execute("select slot_name from pg_replication_slots")]
    assert "bridge_replica" not in slots


def test_delete_removes_a_replica_and_keeps_a_promoted_instance_data(rds, settings):
    rds.create_db_instance_read_replica(DBInstanceIdentifier=OTHER, SourceDBInstanceIdentifier=SOURCE)
    wait_available(rds, OTHER)
    rds.delete_db_instance(DBInstanceIdentifier=OTHER, SkipFinalSnapshot=True)
    assert not (settings.pg_dir / OTHER).exists()
    assert describe(rds, SOURCE).get("ReadReplicaDBInstanceIdentifiers", []) == []

    rds.delete_db_instance(DBInstanceIdentifier=REPLICA, SkipFinalSnapshot=True)
    assert not (settings.pg_dir / REPLICA).exists()
    kept = list((settings.home / "rds-final-dumps").glob(f"{REPLICA}-*"))
    assert kept and (kept[0] / "data" / "PG_VERSION").exists()
