"""What the replica bridge's follow thread (run after its source fails over) does on real PostgreSQL servers, with
the orderings lab 3's drill can produce forced: the source halted on purpose (chaos primary-down) and the replica
promoted while the thread still waits for it to stream. Only a standby whose running source it cannot follow is
rebuilt; a promoted replica is a writer nothing may rebuild, and a replica whose source is down keeps serving reads."""

from __future__ import annotations

import time

import psycopg
import pytest

from securecart_lab.emulator.bridges import rds, replicas
from securecart_lab.ports import free_port
from securecart_lab.postgres.testing import temp_server

pytestmark = pytest.mark.integration

FOLLOW_SECONDS = 0.5  # the thread's wait for streaming; the emulator's is 20 s


@pytest.fixture(scope="module")
def source():
    with temp_server() as server:
        with server.connect() as conn:
            conn.execute("CREATE TABLE orders (id text PRIMARY KEY)")
            conn.execute("INSERT INTO orders VALUES ('before-the-outage')")
        yield server


@pytest.fixture
def replica(source, monkeypatch, request):
    """A streaming standby of `source`, registered with the RDS bridge as the emulator does."""
    source.start()  # a test before this one may have halted it
    name = request.node.name.split("_", 1)[1][:40].replace("_", "-")
    replica = source.create_replica(source.datadir.parent / name, free_port(), source.datadir.parent / f"{name}.log")
    monkeypatch.setattr(replicas, "_servers", {})
    monkeypatch.setitem(rds.registry, name, rds.DatabaseHandle(name, replica, "postgres", source.superuser))
    deadline = time.monotonic() + 10
    while not any(r["application_name"] == replica.slot_name and r["state"] == "streaming" for r in source.replication_status()):
        assert time.monotonic() < deadline, f"{name} did not start streaming from {source.port}"
        time.sleep(0.05)
    yield name, replica
    replica.stop(mode="immediate")


def orders(server) -> list[str]:
    with server.connect() as conn:
        return [row[0] for row in conn.execute("SELECT id FROM orders ORDER BY id")]


def test_a_replica_promoted_while_its_source_is_down_is_left_alone(source, replica):
    """The race seen in lab 3's drill: the follow thread still waits when the replica is promoted."""
    instance_id, server = replica
    source.stop(mode="immediate")  # chaos primary-down
    server.promote()
    with server.connect() as conn:
        conn.execute("INSERT INTO orders VALUES ('on-the-promoted-writer')")
    replicas.follow(instance_id, source, timeout=FOLLOW_SECONDS)
    assert rds.registry[instance_id].server is server
    assert server.is_running() and not server.is_in_recovery(), "the promoted writer was stopped or made a standby"
    assert orders(server) == ["before-the-outage", "on-the-promoted-writer"]
    assert not (server.datadir / "standby.signal").exists()


def test_a_replica_whose_source_is_down_keeps_serving_reads(source, replica):
    instance_id, server = replica
    source.stop(mode="immediate")
    replicas.follow(instance_id, source, timeout=FOLLOW_SECONDS)
    assert rds.registry[instance_id].server is server
    assert server.is_running() and server.is_in_recovery()
    assert orders(server) == ["before-the-outage"]


def test_a_standby_that_does_not_stream_from_its_running_source_is_rebuilt_on_its_port(source, replica):
    instance_id, server = replica
    server.stop(mode="immediate")  # it streams no more: what a replica that cannot follow a new timeline looks like
    replicas.follow(instance_id, source, timeout=FOLLOW_SECONDS)
    rebuilt = rds.registry[instance_id].server
    assert rebuilt is not server and rebuilt.port == server.port and rebuilt.datadir == server.datadir
    try:
        assert rebuilt.is_running() and rebuilt.is_in_recovery()
        assert orders(rebuilt) == ["before-the-outage"]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction), rebuilt.connect() as conn:
            conn.execute("INSERT INTO orders VALUES ('refused')")
    finally:
        rebuilt.stop(mode="immediate")
