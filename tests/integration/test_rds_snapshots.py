"""RDS snapshots and final dumps on the real local engine: a snapshot is a real dump, a restore brings its data
back in a new real database, a stack honours DeletionPolicy, and no dump ever overwrites another."""

from __future__ import annotations

import json
import stat
import uuid

import psycopg
import pytest
from botocore.exceptions import ClientError

from securecart_lab.labs import stacks
from securecart_lab.postgres import dumps, instances, topology

pytestmark = pytest.mark.integration

PASSWORD = "snap-secret-1"


def create_instance(rds, ident: str, dbname: str) -> dict:
    return rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                                  AllocatedStorage=20, DBName=dbname, MasterUsername="snap_admin",
                                  MasterUserPassword=PASSWORD)["DBInstance"]


def connect(rds, ident: str) -> psycopg.Connection:
    found = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return psycopg.connect(host=found["Endpoint"]["Address"], port=found["Endpoint"]["Port"], dbname=found["DBName"],
                           user="snap_admin", password=PASSWORD, autocommit=True, connect_timeout=5)


def admin(rds, ident: str) -> psycopg.Connection:
    """The kit's administrator on the instance's own server (the checks' instrument)."""
    found = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    return topology.connect(found["Endpoint"]["Address"], found["Endpoint"]["Port"], found["DBName"])


def place_order(rds, ident: str, order_id: str) -> None:
    with connect(rds, ident) as conn:
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES (%s, 'a@example.com', 100)", (order_id,))


def has_order(rds, ident: str, order_id: str) -> bool:
    with connect(rds, ident) as conn:
        return conn.execute("SELECT 1 FROM orders WHERE id = %s", (order_id,)).fetchone() is not None


def private(path) -> bool:
    return stat.S_IMODE(path.stat().st_mode) == 0o600


def names() -> tuple[str, str]:
    suffix = uuid.uuid4().hex[:8]
    return f"snap-db-{suffix}", f"snap_{suffix}"


def test_two_deletes_in_the_same_second_keep_two_dumps(aws, settings):
    """Issue 8 item 7: a deploy's rollback deleted a fresh database of the same name within the second, and its dump
    replaced the one holding the learner's orders."""
    rds = aws("rds")
    ident, dbname = names()
    create_instance(rds, ident, dbname)
    place_order(rds, ident, "ord-learner")
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    create_instance(rds, ident, dbname)  # the failed deploy's fresh, empty database
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)

    kept = sorted(dumps.final_dump_dir(settings).glob(f"{ident}-*.sql"))
    assert len(kept) == 2, kept
    assert sum("ord-learner" in path.read_text() for path in kept) == 1
    assert all(private(path) for path in kept), [oct(p.stat().st_mode) for p in kept]


def test_a_snapshot_is_a_real_dump_and_a_restore_brings_the_data_back(aws, settings):
    rds = aws("rds")
    ident, dbname = names()
    create_instance(rds, ident, dbname)
    place_order(rds, ident, "ord-before-snapshot")
    manual = rds.create_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=f"{ident}-manual")["DBSnapshot"]
    assert manual["Status"] == "available" and manual["Engine"] == "postgres"
    dump = next(dumps.snapshot_dir(settings).glob(f"{ident}-manual-*.sql"))
    assert "ord-before-snapshot" in dump.read_text() and private(dump)
    place_order(rds, ident, "ord-after-snapshot")

    finals_before = set(dumps.final_dump_dir(settings).glob(f"{ident}-*"))
    rds.delete_db_instance(DBInstanceIdentifier=ident, FinalDBSnapshotIdentifier=f"{ident}-final")
    listed = {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots(DBInstanceIdentifier=ident)["DBSnapshots"]}
    assert {f"{ident}-manual", f"{ident}-final"} <= listed
    assert set(dumps.final_dump_dir(settings).glob(f"{ident}-*")) == finals_before  # the snapshot is the final dump

    restored = f"{ident}-restored"
    created = rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=restored, DBSnapshotIdentifier=f"{ident}-final")
    assert created["DBInstance"]["DBName"] == dbname
    assert has_order(rds, restored, "ord-before-snapshot") and has_order(rds, restored, "ord-after-snapshot")
    with connect(rds, restored) as conn:  # the master user owns what it restored: it can write
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-restored', 'b@example.com', 1)")

    # Each instance is a server of its own: a second restore of the same DBName is a second, separate database.
    twice = rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{ident}-twice", DBSnapshotIdentifier=f"{ident}-manual")
    assert twice["DBInstance"]["DBName"] == dbname
    assert has_order(rds, f"{ident}-twice", "ord-before-snapshot") and not has_order(rds, f"{ident}-twice", "ord-restored")

    rds.delete_db_instance(DBInstanceIdentifier=f"{ident}-twice", SkipFinalSnapshot=True)
    rds.delete_db_instance(DBInstanceIdentifier=restored, SkipFinalSnapshot=True)
    rds.delete_db_snapshot(DBSnapshotIdentifier=f"{ident}-manual")
    assert not dump.exists()
    assert f"{ident}-manual" not in {s["DBSnapshotIdentifier"] for s in rds.describe_db_snapshots()["DBSnapshots"]}


def test_a_stopped_instance_can_be_snapshotted_and_stays_stopped(aws, settings):
    """RDS snapshots an instance's storage whatever its engine does (was: InvalidDBInstanceState, pg_dump could not
    connect; reset 3 --environment failed so when the stack's final snapshot met a server that was not up)."""
    rds = aws("rds")
    ident, dbname = names()
    create_instance(rds, ident, dbname)
    place_order(rds, ident, "ord-before-stop")
    rds.stop_db_instance(DBInstanceIdentifier=ident)
    snapshot = rds.create_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=f"{ident}-stopped")["DBSnapshot"]
    assert snapshot["Status"] == "available"
    dump = next(dumps.snapshot_dir(settings).glob(f"{ident}-stopped-*.sql"))
    assert "ord-before-stop" in dump.read_text()
    assert not instances.server(settings, ident).is_running()
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    rds.delete_db_snapshot(DBSnapshotIdentifier=f"{ident}-stopped")


def test_a_snapshot_of_an_instance_that_does_not_exist_is_an_aws_error(aws):
    with pytest.raises(ClientError) as error:
        aws("rds").create_db_snapshot(DBInstanceIdentifier="snap-no-such-db", DBSnapshotIdentifier="snap-none")
    assert error.value.response["Error"]["Code"] == "DBInstanceNotFound"


def template(ident: str, dbname: str, policy: str | None, extra: dict | None = None) -> str:
    database = {"Type": "AWS::RDS::DBInstance",
                "Properties": {"DBInstanceIdentifier": ident, "Engine": "postgres", "DBInstanceClass": "db.t3.micro",
                               "AllocatedStorage": "20", "DBName": dbname, "MasterUsername": "snap_admin",
                               "MasterUserPassword": PASSWORD}}
    if policy:
        database["DeletionPolicy"] = policy
    return json.dumps({"Resources": {"Database": database, **(extra or {})}})


def parameter(name: str) -> dict:
    return {"Marker": {"Type": "AWS::SSM::Parameter", "Properties": {"Name": f"/snap/{name}", "Type": "String", "Value": "x"}}}


def create_stack(cf, name: str, body: str) -> None:
    cf.create_stack(StackName=name, TemplateBody=body)
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"


@pytest.mark.parametrize("policy", ["Snapshot", None])
def test_a_stack_delete_snapshots_a_db_instance_and_the_snapshot_restores(aws, policy):
    """Issue 9 item 6: DeletionPolicy Snapshot (AWS's default for a DB instance) leaves a real RDS snapshot."""
    rds, cf = aws("rds"), aws("cloudformation")
    ident, dbname = names()
    stack = f"snapstack-{ident[-8:]}"
    create_stack(cf, stack, template(ident, dbname, policy))
    place_order(rds, ident, "ord-in-stack")
    cf.delete_stack(StackName=stack)
    stacks.wait(cf, stack)
    assert ident not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=ident)["DBSnapshots"]
    assert [s["DBSnapshotIdentifier"].startswith(f"{stack}-database-") for s in snapshots] == [True], snapshots
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=snapshots[0]["DBSnapshotIdentifier"])
    assert has_order(rds, ident, "ord-in-stack")
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)


def test_an_update_that_removes_a_db_instance_snapshots_it_first(aws):
    """DeletionPolicy also applies to a resource an update removes (AWS's default for a DB instance: Snapshot)."""
    rds, cf = aws("rds"), aws("cloudformation")
    ident, dbname = names()
    stack = f"removed-{ident[-8:]}"
    create_stack(cf, stack, template(ident, dbname, None, parameter(stack)))
    place_order(rds, ident, "ord-removed")
    cf.update_stack(StackName=stack, TemplateBody=json.dumps({"Resources": parameter(stack)}))
    assert stacks.wait(cf, stack)["StackStatus"] == "UPDATE_COMPLETE"
    snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=ident, SnapshotType="manual")["DBSnapshots"]
    assert len(snapshots) == 1, snapshots
    rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=snapshots[0]["DBSnapshotIdentifier"])
    assert has_order(rds, ident, "ord-removed")
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    cf.delete_stack(StackName=stack)
    stacks.wait(cf, stack)


@pytest.mark.parametrize("replace_policy", [None, "Retain"])
def test_an_update_that_replaces_a_db_instance_keeping_its_dbname_succeeds(aws, replace_policy):
    """Issue 9: a create-only change (here DBInstanceIdentifier) with the same DBName replaces the instance. Was:
    UPDATE_ROLLBACK_COMPLETE, as both instances wanted database DBName on the one shared server. As on AWS the new
    instance is a new, empty server (only the seed); the old one is snapshotted (the default UpdateReplacePolicy
    for a DB instance) or, with Retain, kept as it is."""
    rds, cf = aws("rds"), aws("cloudformation")
    ident, dbname = names()
    stack = f"replaced-{ident[-8:]}"
    def body(name: str) -> str:
        document = json.loads(template(name, dbname, None))
        if replace_policy:
            document["Resources"]["Database"]["UpdateReplacePolicy"] = replace_policy
        return json.dumps(document)

    create_stack(cf, stack, body(ident))
    place_order(rds, ident, "ord-old-instance")
    old_port = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]["Endpoint"]["Port"]
    cf.update_stack(StackName=stack, TemplateBody=body(f"{ident}-new"))
    assert stacks.wait(cf, stack)["StackStatus"] == "UPDATE_COMPLETE", cf.describe_stack_events(StackName=stack)["StackEvents"][:3]
    new = rds.describe_db_instances(DBInstanceIdentifier=f"{ident}-new")["DBInstances"][0]
    assert new["DBName"] == dbname and new["DBInstanceStatus"] == "available" and new["Endpoint"]["Port"] != old_port
    assert not has_order(rds, f"{ident}-new", "ord-old-instance")
    with connect(rds, f"{ident}-new") as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
    if replace_policy == "Retain":
        assert has_order(rds, ident, "ord-old-instance")
        rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    else:
        assert ident not in {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
        snapshots = rds.describe_db_snapshots(DBInstanceIdentifier=ident, SnapshotType="manual")["DBSnapshots"]
        assert len(snapshots) == 1, snapshots
        rds.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=f"{ident}-back", DBSnapshotIdentifier=snapshots[0]["DBSnapshotIdentifier"])
        assert has_order(rds, f"{ident}-back", "ord-old-instance")
        rds.delete_db_instance(DBInstanceIdentifier=f"{ident}-back", SkipFinalSnapshot=True)
    cf.delete_stack(StackName=stack)
    stacks.wait(cf, stack)


def test_deletion_policy_retain_keeps_the_instance_on_stack_delete_and_on_update(aws):
    rds, cf = aws("rds"), aws("cloudformation")
    ident, dbname = names()
    stack = f"retain-{ident[-8:]}"
    create_stack(cf, stack, template(ident, dbname, "Retain", parameter(stack)))
    place_order(rds, ident, "ord-retained")
    # An update that removes the resource: Retain keeps it (moto's own update deleted it).
    cf.update_stack(StackName=stack, TemplateBody=json.dumps({"Resources": parameter(stack)}))
    assert stacks.wait(cf, stack)["StackStatus"] == "UPDATE_COMPLETE"
    assert has_order(rds, ident, "ord-retained")
    cf.delete_stack(StackName=stack)
    stacks.wait(cf, stack)
    assert has_order(rds, ident, "ord-retained")
    assert not rds.describe_db_snapshots(DBInstanceIdentifier=ident, SnapshotType="manual")["DBSnapshots"]
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)


BROKEN_AFTER_DATABASE = """Resources:
  BrokenAfterDatabase:
    Type: AWS::RDS::DBInstance
    DependsOn: Database
    Properties:
      Engine: postgres
      DBInstanceClass: db.t3.micro
      AllocatedStorage: "20"
      DBName: template1
      MasterUsername: someone
      MasterUserPassword: long-enough-1
"""


def test_a_bad_deploy_2_keeps_the_learners_orders_and_says_where(settings, engine, tmp_path):
    """Issue 8 item 7, the learner's path: orders in lab 2's database, then a deploy whose new stack fails after its
    database was created. The orders are either still in the running database or in a dump the deploy names."""
    from securecart_lab.errors import DeployError
    from securecart_lab.labs import service
    from securecart_lab.labs.registry import get_lab

    lab = get_lab(2)
    service.deploy(settings, 2, source=lab.solution_dir)
    ctx = service.context(settings, lab)
    rds = ctx.aws("rds")
    ident = stacks.resources(ctx.aws("cloudformation"), "securecart-lab02", "AWS::RDS::DBInstance")[0]
    order = f"ord-{uuid.uuid4().hex[:8]}"
    with admin(rds, ident) as conn:
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES (%s, 'learner@example.com', 100)", (order,))

    text = (lab.solution_dir / "template.yaml").read_text()
    (tmp_path / "template.yaml").write_text(text.replace("Resources:\n", BROKEN_AFTER_DATABASE, 1))
    try:
        with pytest.raises(DeployError) as error:
            service.deploy(settings, 2, source=tmp_path)
        live = [d["DBName"] for d in rds.describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == ident]
        if live:
            with admin(rds, ident) as conn:
                assert conn.execute("SELECT 1 FROM orders WHERE id = %s", (order,)).fetchone()
        else:
            named = [p for p in dumps.listing(settings) if str(p) in (error.value.hint or "")]
            # One dump, the replaced database's: the fresh one the failed create made is not dumped beside it.
            assert len(named) == 1 and order in named[0].read_text(), (error.value.message, error.value.hint)
            assert all(private(p) for p in named)
    finally:
        service.deploy(settings, 2, source=lab.solution_dir)


def test_snapshots_outlive_the_emulator(aws, settings):
    """After down/up (a new emulator: its memory starts empty) DescribeDBSnapshots still lists a snapshot, and it
    restores: deploy points learners at their snapshots, so they must be there after a restart."""
    from emulator_fixture import client, start_emulator

    rds = aws("rds")
    ident, dbname = names()
    create_instance(rds, ident, dbname)
    place_order(rds, ident, "ord-kept")
    rds.create_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=f"{ident}-kept")
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)

    restarted = start_emulator(settings.home)
    try:
        rds2 = client(restarted, "rds")
        listed = rds2.describe_db_snapshots(DBSnapshotIdentifier=f"{ident}-kept")["DBSnapshots"]
        assert [(s["DBInstanceIdentifier"], s["Engine"], s["MasterUsername"]) for s in listed] == [(ident, "postgres", "snap_admin")]
        rds2.restore_db_instance_from_db_snapshot(DBInstanceIdentifier=ident, DBSnapshotIdentifier=f"{ident}-kept")
        assert has_order(rds2, ident, "ord-kept")
        rds2.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
        rds2.delete_db_snapshot(DBSnapshotIdentifier=f"{ident}-kept")
        assert not list(dumps.snapshot_dir(settings).glob(f"{ident}-kept-*"))
    finally:
        restarted.stop()
