"""Issue 13 item 5 through boto3 and the AWS CLI on the real local engine: an RDS instance's status follows its real
PostgreSQL server, and `MultiAZ: true` is a real synchronous standby that takes over behind the same endpoint when
the primary dies (on its own, or through RebootDBInstance --force-failover)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid

import psycopg
import pytest
from botocore.exceptions import ClientError

from securecart_lab.postgres import instances, topology

pytestmark = pytest.mark.integration

PASSWORD = "multiaz-secret"


def describe(rds, ident: str) -> dict:
    return rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]


def wait_status(rds, ident: str, status: str, timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while (found := describe(rds, ident))["DBInstanceStatus"] != status:
        assert time.monotonic() < deadline, f"{ident} is {found['DBInstanceStatus']}, expected {status}"
        time.sleep(0.1)
    return found


def admin(found: dict) -> psycopg.Connection:
    return topology.connect(found["Endpoint"]["Address"], found["Endpoint"]["Port"], found["DBName"])


def standby_state(found: dict) -> list[tuple[str, str]]:
    with admin(found) as conn:
        return conn.execute("SELECT state, sync_state FROM pg_stat_replication WHERE application_name LIKE %s",
                            ("%standby",)).fetchall()


def wait_sync_standby(found: dict, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while standby_state(found) != [("streaming", "sync")]:
        assert time.monotonic() < deadline, standby_state(found)
        time.sleep(0.1)


def create(rds, ident: str, multi_az: bool) -> dict:
    rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                           DBName="shop", MasterUsername="postgres", MasterUserPassword=PASSWORD, MultiAZ=multi_az)
    return describe(rds, ident)


@pytest.fixture
def ident(aws):
    name = f"maz-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        aws("rds").delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    except ClientError:
        pass


def test_status_follows_the_real_server(aws, settings, ident):
    """Was: `available` whatever happened to the server. A stopped server is `failed`, then `available` again."""
    rds = aws("rds")
    found = create(rds, ident, multi_az=False)
    assert found["DBInstanceStatus"] == "available" and found["MultiAZ"] is False and "SecondaryAvailabilityZone" not in found
    server = instances.server(settings, ident)
    server.stop(mode="immediate")
    wait_status(rds, ident, "failed")
    server.start()
    wait_status(rds, ident, "available")
    messages = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=ident)["Events"]]
    assert "DB instance shutdown" in messages and "DB instance restarted" in messages
    # StopDBInstance stops the real server (was: `stopped` in the API while the server still served)
    rds.stop_db_instance(DBInstanceIdentifier=ident)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=found["Endpoint"]["Port"], dbname="shop", user="postgres", password=PASSWORD,
                        connect_timeout=2)
    time.sleep(1)  # two monitor passes: a stopped instance stays `stopped`, not `failed`
    assert describe(rds, ident)["DBInstanceStatus"] == "stopped"
    rds.start_db_instance(DBInstanceIdentifier=ident)
    with admin(wait_status(rds, ident, "available")) as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
    with pytest.raises(ClientError) as error:  # nothing to fail over to
        rds.reboot_db_instance(DBInstanceIdentifier=ident, ForceFailover=True)
    assert error.value.response["Error"]["Code"] == "InvalidParameterCombination"


def test_multi_az_is_a_synchronous_standby_that_takes_over_behind_the_same_endpoint(aws, settings, ident):
    """Was: MultiAZ was a flag; the instance was one database and lost with its server."""
    rds = aws("rds")
    found = create(rds, ident, multi_az=True)
    assert found["MultiAZ"] is True and found["SecondaryAvailabilityZone"] not in ("", found["AvailabilityZone"])
    assert standby_state(found) == [("streaming", "sync")]  # a commit is on both servers before it is confirmed
    endpoint = found["Endpoint"]
    with psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], dbname="shop", user="postgres", password=PASSWORD) as conn:
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-before-crash', 'm@example.com', 1)")
    primary = instances.server(settings, ident)
    crashed_pid = primary.pid()
    primary.stop(mode="immediate")  # what `chaos az-down` does

    deadline = time.monotonic() + 30
    while True:  # the app's view: the same host:port answers again, writable, with every confirmed order
        try:
            with psycopg.connect(host=endpoint["Address"], port=endpoint["Port"], dbname="shop", user="postgres",
                                 password=PASSWORD, connect_timeout=2) as conn:
                if not conn.execute("SELECT pg_is_in_recovery()").fetchone()[0]:
                    assert conn.execute("SELECT count(*) FROM orders WHERE id = 'ord-before-crash'").fetchone()[0] == 1
                    conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-after', 'm@example.com', 1)")
                    break
        except psycopg.OperationalError:
            pass
        assert time.monotonic() < deadline, "no writable server behind the endpoint after the failover"
        time.sleep(0.1)
    assert instances.server(settings, ident).pid() not in (None, crashed_pid)
    after = wait_status(rds, ident, "available")
    assert after["Endpoint"] == endpoint
    # The instance now runs in its former standby's AZ, as RDS reports after a failover.
    assert (after["AvailabilityZone"], after["SecondaryAvailabilityZone"]) == (
        found["SecondaryAvailabilityZone"], found["AvailabilityZone"])
    events = rds.describe_events(SourceType="db-instance", SourceIdentifier=ident)["Events"]
    failover = [e["Message"] for e in events if "failover" in e["EventCategories"]]
    assert failover == ["Multi-AZ instance failover started.", "Multi-AZ instance failover completed"]
    wait_sync_standby(after)  # and a new standby follows the new primary


def test_force_failover_through_the_aws_cli(aws, settings, ident):
    rds = aws("rds")
    found = create(rds, ident, multi_az=True)
    before = instances.server(settings, ident).pid()
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run([sys.executable, "-m", "awscli", "rds", "reboot-db-instance", "--db-instance-identifier", ident,
                             "--force-failover", "--endpoint-url", settings.endpoint_url, "--output", "json"],
                            capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["DBInstance"]["Endpoint"] == found["Endpoint"]
    assert instances.server(settings, ident).pid() not in (None, before)
    with admin(found) as conn:
        assert conn.execute("SELECT pg_is_in_recovery()").fetchone()[0] is False
    messages = [e["Message"] for e in rds.describe_events(SourceType="db-instance", SourceIdentifier=ident)["Events"]]
    assert "Multi-AZ instance failover completed" in messages


def test_a_promoted_replica_of_a_multi_az_instance_does_not_wait_for_its_sources_standby(aws, ident):
    """A replica copies its source's settings, synchronous_standby_names included: promoted, its commits waited
    forever for a standby it does not have (lab 3's drill hung on its first order)."""
    rds = aws("rds")
    create(rds, ident, multi_az=True)
    replica = f"{ident}-r"
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=ident)
    try:
        listed = wait_status(rds, replica, "available")
        assert listed["MultiAZ"] is False and "SecondaryAvailabilityZone" not in listed  # AWS's default for a replica
        rds.promote_read_replica(DBInstanceIdentifier=replica)
        found = wait_status(rds, replica, "available")
        with psycopg.connect(host="127.0.0.1", port=found["Endpoint"]["Port"], dbname="shop", user="postgres",
                             password=PASSWORD, options="-c statement_timeout=5000") as conn:
            assert conn.execute("SHOW synchronous_standby_names").fetchone()[0] == ""
            conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-promoted', 'm@example.com', 1)")
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=replica, SkipFinalSnapshot=True)


def test_a_replica_promoted_before_it_follows_its_failed_over_source_keeps_its_data(aws, settings, ident):
    """A CI flake of lab 3's reset, end to end through the API (test_replica_follow.py calls the thread itself):
    after a failover the kit waits up to 20 s for each replica to stream from the new primary and rebuilt one that
    did not. A replica promoted before it did (the drill promotes it right after chaos primary-down) never streams:
    the promoted writer was stopped and its data dir deleted, and its final snapshot failed with 'could not be
    snapshotted (pg_dump failed): ... not an initialised data directory'. Forced order: fail over, promote, stop
    the source."""
    rds = aws("rds")
    create(rds, ident, multi_az=True)
    replica = f"{ident}-r"
    rds.create_db_instance_read_replica(DBInstanceIdentifier=replica, SourceDBInstanceIdentifier=ident)
    log = settings.logs_dir / "emulator.log"
    try:
        wait_status(rds, replica, "available")
        rds.reboot_db_instance(DBInstanceIdentifier=ident, ForceFailover=True)  # answers once it has failed over
        rds.promote_read_replica(DBInstanceIdentifier=replica)  # before its WAL receiver retried: it never streams
        found = wait_status(rds, replica, "available")
        rds.stop_db_instance(DBInstanceIdentifier=ident)  # the source goes down too, as in the drill
        # The follow of the failover decides about the replica: it leaves a promoted one alone (was: after 20 s it
        # stopped it and deleted its data dir).
        left, rebuilt = f"RDS {replica}: promoted or deleted since", f"RDS {replica}: the replica does not follow"
        deadline = time.monotonic() + 40
        while not any(left in line or rebuilt in line for line in log.read_text().splitlines()):
            assert time.monotonic() < deadline, f"no decision about {replica} after the failover of {ident}"
            time.sleep(0.1)
        assert rebuilt not in log.read_text()
        with psycopg.connect(host="127.0.0.1", port=found["Endpoint"]["Port"], dbname="shop", user="postgres",
                             password=PASSWORD, connect_timeout=5) as conn:
            conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-kept', 'm@example.com', 1)")
        snapshot = f"{replica}-final"
        rds.delete_db_instance(DBInstanceIdentifier=replica, FinalDBSnapshotIdentifier=snapshot)
        assert rds.describe_db_snapshots(DBSnapshotIdentifier=snapshot)["DBSnapshots"][0]["Status"] == "available"
        rds.delete_db_snapshot(DBSnapshotIdentifier=snapshot)
    finally:
        try:
            rds.delete_db_instance(DBInstanceIdentifier=replica, SkipFinalSnapshot=True)
        except ClientError:
            pass
