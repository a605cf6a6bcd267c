"""Streaming replication between real servers: a replica follows, refuses writes, and can be promoted."""

import time

import psycopg
import pytest

from securecart_lab.ports import free_port
from securecart_lab.postgres.testing import temp_server

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def pair():
    with temp_server() as primary:
        replica = primary.create_replica(primary.datadir.parent / "replica1", free_port(), primary.datadir.parent / "replica1.log")
        try:
            yield primary, replica
        finally:
            replica.stop(mode="immediate")


def wait_for(predicate, timeout=1.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return predicate()


def test_replica_streams_rows_within_a_second(pair):
    primary, replica = pair
    assert replica.status()["role"] == "replica" and replica.is_in_recovery()
    with primary.connect() as conn:
        conn.execute("CREATE TABLE stream_check (id int)")
        conn.execute("INSERT INTO stream_check VALUES (7)")
    with replica.connect() as conn:

        def visible():
            try:
                return conn.execute("SELECT id FROM stream_check").fetchall() == [(7,)]
            except psycopg.errors.UndefinedTable:
                return False

        assert wait_for(visible, timeout=1.0)
    assert wait_for(lambda: replica.replay_lag_seconds() == 0.0)
    rows = primary.replication_status()
    assert [(row["application_name"], row["state"]) for row in rows] == [("replica1", "streaming")]


def test_replica_refuses_writes(pair):
    _, replica = pair
    with replica.connect() as conn:
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TABLE nope (x int)")


def test_create_replica_reuses_an_existing_one(pair):
    primary, replica = pair
    again = primary.create_replica(replica.datadir, replica.port, replica.log_path)
    assert again.pid() == replica.pid()


def test_promote_makes_the_replica_writable(pair):
    _, replica = pair
    replica.promote()
    assert not replica.is_in_recovery()
    assert replica.status()["role"] == "primary"
    with replica.connect() as conn:
        conn.execute("INSERT INTO stream_check VALUES (8)")
        assert conn.execute("SELECT count(*) FROM stream_check").fetchone() == (2,)
