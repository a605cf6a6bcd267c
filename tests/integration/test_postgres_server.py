"""A real PostgreSQL server: lifecycle, SQL, databases, crash recovery, port conflicts, ensure_primary."""

import os
import shutil
import signal
import socket
import time

import psycopg
import pytest

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.errors import PortInUse, PostgresError
from securecart_lab.ports import free_port
from securecart_lab.postgres import bindir_for, ensure_primary, log_path_for, seed, server_for
from securecart_lab.postgres.server import PostgresServer
from securecart_lab.postgres.testing import temp_dir, temp_server

pytestmark = pytest.mark.integration


def _timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


@pytest.fixture(scope="module")
def server():
    with temp_server() as running:
        yield running


def test_init_is_idempotent_and_start_is_a_prompt_no_op(server):
    assert server.init() is False
    pid = server.pid()
    # Compared with a real start in the same run (about 0.1 s against well under 10 ms on idle cores), so a loaded
    # machine slows both alike.
    server.stop()
    started = time.perf_counter()
    server.start()
    real_start = time.perf_counter() - started
    assert server.pid() != pid
    pid = server.pid()
    no_op = min(_timed(server.start) for _ in range(3))
    assert server.pid() == pid
    assert no_op < real_start / 4, f"start on a running server took {no_op * 1000:.0f} ms, a real start {real_start * 1000:.0f} ms"
    status = server.status()
    assert status["running"] and status["role"] == "primary" and status["port"] == server.port
    assert status["pid"] == server.pid() > 0


def test_sql_round_trip(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE notes (id serial PRIMARY KEY, body text)")
        conn.execute("INSERT INTO notes (body) VALUES (%s)", ("hello, SecureCart",))
        assert conn.execute("SELECT body FROM notes").fetchone() == ("hello, SecureCart",)
        assert conn.execute("SHOW server_encoding").fetchone() == ("UTF8",)
        assert conn.execute("SHOW wal_level").fetchone() == ("replica",)


def test_stop_and_restart(server):
    old_pid = server.pid()
    server.stop()
    assert not server.is_running() and server.status()["pid"] is None
    server.stop()  # stopping a stopped server is fine
    server.start()
    assert server.is_running()
    server.restart()
    assert server.is_running() and server.pid() != old_pid


def test_create_and_drop_database_keeps_a_dump(server, tmp_path):
    server.create_database("shop", "shopkeeper", "s3cret")
    server.create_database("shop", "shopkeeper", "s3cret")  # idempotent
    with server.connect("shop", "shopkeeper", "s3cret") as conn:
        conn.execute("CREATE TABLE kept (marker text)")
        conn.execute("INSERT INTO kept VALUES ('still here')")
    dump = server.drop_database("shop", dump_to=tmp_path / "dumps" / "shop.sql")
    assert "still here" in dump.read_text()
    with server.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = 'shop'").fetchone() is None
    assert server.drop_database("shop") is None


def test_seed_loads_once_and_resets(server):
    server.create_database(config.DB_NAME, config.DB_USER, config.DB_PASSWORD)
    with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
        assert seed.load(conn) is True
        assert seed.load(conn) is False
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('o-1', 'a@example.com', 500)")
        conn.execute("UPDATE inventory SET stock = 0")
        assert seed.load(conn, reset=True) is True
        assert seed.counts(conn) == {"products": 200, "customers": 150, "inventory": 200, "orders": 0, "order_lines": 0}
        assert conn.execute("SELECT stock FROM inventory WHERE sku = 'SC-ELEC-0003'").fetchone() == (5,)
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("UPDATE inventory SET stock = -1 WHERE sku = 'SC-ELEC-0003'")


def test_crashed_server_is_detected_and_recovers(server):
    with server.connect() as conn:
        conn.execute("CREATE TABLE survives (x int)")
        conn.execute("INSERT INTO survives VALUES (42)")
    os.kill(server.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not server.is_running()
    assert (server.datadir / "postmaster.pid").exists()  # stale
    server.start()
    with server.connect() as conn:
        assert conn.execute("SELECT x FROM survives").fetchone() == (42,)


def test_port_in_use_names_port_owner_and_setting(server):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        other = PostgresServer(server.datadir.parent / "other", port, server.bindir, server.log_path, server.os_user,
                           superpassword=server.superpassword)
        other.init()
        with pytest.raises(PortInUse) as error:
            other.start()
    assert str(port) in error.value.message
    assert f"pid {os.getpid()}" in error.value.message
    assert "SECURECART_PG_PORT" in error.value.hint
    shutil.rmtree(other.datadir)


def test_same_data_dir_on_another_port_is_refused(server):
    moved = PostgresServer(server.datadir, free_port(), server.bindir, server.log_path, server.os_user,
                           superpassword=server.superpassword)
    assert not moved.is_running()
    started = time.perf_counter()
    with pytest.raises(PostgresError) as error:
        moved.start()
    assert f"already running on port {server.port}" in error.value.message
    assert time.perf_counter() - started < 1


@pytest.mark.skipif(os.geteuid() != 0, reason="only the unprivileged server user can be locked out")
def test_unreachable_data_dir_is_a_clear_error(server):
    root = temp_dir()
    (root / "private").mkdir(mode=0o700)
    locked = PostgresServer(root / "private" / "data", free_port(), server.bindir, root / "pg.log", server.os_user,
                            superpassword=server.superpassword)
    with pytest.raises(PostgresError) as error:
        locked.init()
    assert str(root / "private") in error.value.message
    shutil.rmtree(root)


def test_ensure_primary_creates_seeds_and_is_fast_when_running():
    home = temp_dir()
    settings = Settings.from_env(home=home / "home", pg_port=free_port())
    started = time.perf_counter()
    server = ensure_primary(settings)
    first = time.perf_counter() - started
    pid = server.pid()
    try:
        assert server.datadir == settings.pg_dir / "primary" and server.bindir == bindir_for(settings)
        with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
            assert seed.counts(conn)["products"] == 200
        again = min(_timed(lambda: ensure_primary(settings)) for _ in range(3))
        # Against the first call (initdb, start, seed: seconds) in the same run: nothing is redone.
        assert again < first / 10, f"ensure_primary on a running server took {again:.2f} s, the first call {first:.2f} s"
        assert server.pid() == pid
        assert (settings.logs_dir / "postgres.log").exists()
        found = server_for(settings, settings.pg_dir / "primary")
        assert (found.port, found.pid(), found.log_path) == (server.port, server.pid(), server.log_path)
        replica = server.create_replica(settings.pg_dir / "replica1", free_port(), log_path_for(settings, "replica1"))
        try:
            assert server_for(settings, settings.pg_dir / "replica1").port == replica.port
            assert replica.log_path == settings.logs_dir / "postgres-replica1.log"
        finally:
            replica.stop()
    finally:
        server.stop()
        shutil.rmtree(home)


def test_an_instance_takes_its_former_port_back_while_closed_connections_linger():
    """A stopped server closed its clients' connections first: they sit in TIME_WAIT on its port for a minute. The
    instance still gets that port back (PostgreSQL binds with SO_REUSEADDR), so its endpoint does not change."""
    import socket

    from securecart_lab.postgres import instances

    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = listener.accept()
    accepted.close()  # the server closes first: TIME_WAIT is on the server's port
    client.recv(1)
    client.close()
    listener.close()
    assert instances._free(port) == port
