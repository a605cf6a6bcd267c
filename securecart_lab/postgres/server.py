"""One real PostgreSQL server: a data directory, a port, and the processes that serve it."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from securecart_lab import config, paths
from securecart_lab.errors import PortInUse, PostgresError
from securecart_lab.ports import port_owner
from securecart_lab.postgres.binaries import OsUser, first_blocking_dir, os_user as resolve_os_user

if TYPE_CHECKING:
    import psycopg

# psycopg loads with the first connection: starting and stopping servers (up, down) never connect.

# Written into postgresql.conf by init(); replicas inherit it through pg_basebackup.
SERVER_CONF = """
# --- securecart-lab ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
password_encryption = scram-sha-256
wal_level = replica
max_wal_senders = 10
max_replication_slots = 10
hot_standby = on
hot_standby_feedback = on
wal_receiver_status_interval = 1s
# A lab kit: data only needs to survive a crash of PostgreSQL, not of the machine, so no fsync.
# synchronous_commit stays on: with it off, a killed server loses its last commits.
fsync = off
shared_buffers = 16MB
max_connections = 100
log_line_prefix = '%m [%p] '
"""

PG_HBA = """# securecart-lab: TCP on loopback only, passwords (scram-sha-256) for everything.
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
"""

STOP_SIGNALS = {"smart": signal.SIGTERM, "fast": signal.SIGINT, "immediate": signal.SIGQUIT}


class PostgresServer:
    """A PostgreSQL server in `datadir` on host:port, run by `os_user` (None: the current user, or the
    default unprivileged user when we are root), whose superuser has password `superpassword` (the
    installation's secret, see `credentials`)."""

    def __init__(
        self,
        datadir: Path,
        port: int,
        bindir: Path,
        log_path: Path,
        os_user: str | None,
        host: str = "127.0.0.1",
        *,
        superpassword: str,
        superuser: str = config.PG_SUPERUSER,
    ):
        self.datadir = Path(datadir)
        self.superpassword = superpassword
        self.superuser = superuser
        self.port = port
        self.bindir = Path(bindir)
        self.log_path = Path(log_path)
        self.os_user = os_user
        self.host = host
        self._user: OsUser | None = None
        self._proc: subprocess.Popen | None = None
        self._log_offset = 0

    def __repr__(self) -> str:
        return f"PostgresServer({str(self.datadir)!r}, port={self.port})"

    # ---- processes -------------------------------------------------------------------------------------

    @property
    def user(self) -> OsUser:
        if self._user is None:
            self._user = resolve_os_user(self.os_user or "securecart")
        return self._user

    def _env(self, password: str | None = None) -> dict[str, str]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
        if password is not None:
            env["PGPASSWORD"] = password
        return env

    def _run(self, args: list[str], *, as_user: bool = True, password: str | None = None, timeout: float = 120, **kwargs) -> str:
        """Run a PostgreSQL program from bindir; PostgresError with its stderr when it fails."""
        cmd = [str(self.bindir / args[0]), *args[1:]]
        # stdout=<file> sends the program's output there (pg_dump); stderr is still captured for errors.
        capture = {"stderr": subprocess.PIPE} if "stdout" in kwargs else {"capture_output": True}
        try:
            result = subprocess.run(
                cmd,
                **capture,
                text=True,
                cwd="/",
                env=self._env(password),
                timeout=timeout,
                **(self.user.run_kwargs() if as_user else {}),
                **kwargs,
            )
        except subprocess.TimeoutExpired:
            raise PostgresError(f"{args[0]} did not finish within {timeout:.0f} s (data dir {self.datadir}).", f"See {self.log_path}.") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout or "").strip().splitlines()
            raise PostgresError(
                f"{args[0]} failed for {self.datadir}: {detail[-1] if detail else 'exit code ' + str(result.returncode)}",
                f"Full output: {' | '.join(detail[-5:])}" if len(detail) > 1 else f"See {self.log_path}.",
            )
        return result.stdout or ""

    def _prepare_dir(self, path: Path) -> None:
        """Create an empty data dir owned by the server's user, mode 700."""
        path.mkdir(parents=True, exist_ok=True)
        blocking = first_blocking_dir(path.parent, self.user)
        if blocking is not None:
            raise PostgresError(
                f"The OS user {self.user.name!r} that runs PostgreSQL cannot enter {blocking}, so it cannot reach {path}.",
                f"chmod o+x {blocking}, or set SECURECART_HOME to a directory outside it.",
            )
        if any(path.iterdir()):
            raise PostgresError(f"{path} is not empty and is not a PostgreSQL data directory.", "Move its contents away or choose another directory.")
        if not self.user.is_current:
            os.chown(path, self.user.uid, self.user.gid)
        path.chmod(0o700)

    # ---- lifecycle -------------------------------------------------------------------------------------

    def init(self) -> bool:
        """initdb (UTF8, scram-sha-256, replication-ready) unless already initialised. True when it ran."""
        if (self.datadir / "PG_VERSION").exists():
            return False
        self._prepare_dir(self.datadir)
        # initdb refuses a non-empty data dir, so the password file lives beside it for a moment.
        pwfile = self.datadir.parent / f".{self.datadir.name}.pw"
        pwfile.unlink(missing_ok=True)  # left by an interrupted init
        with paths.open_private(pwfile, "w", exclusive=True) as out:
            out.write(self.superpassword + "\n")
        try:
            if not self.user.is_current:
                os.chown(pwfile, self.user.uid, self.user.gid)
            self._run(
                [
                    "initdb", "-D", str(self.datadir), "-U", self.superuser, "-E", "UTF8", "--locale=C",
                    "--auth=scram-sha-256", f"--pwfile={pwfile}", "--no-sync", "--no-instructions", "--wal-segsize=1",
                ]
            )  # fmt: skip
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.datadir / "postgresql.conf", "a") as conf:
            conf.write(SERVER_CONF)
        (self.datadir / "pg_hba.conf").write_text(PG_HBA)
        return True

    def _read_pidfile(self) -> list[str]:
        try:
            return (self.datadir / "postmaster.pid").read_text().splitlines()
        except (FileNotFoundError, PermissionError):
            return []

    def pid(self) -> int | None:
        """The postmaster's pid when it is alive, else None (also for a stale pid file left by a crash)."""
        lines = self._read_pidfile()
        if not lines or not lines[0].strip().lstrip("-").isdigit():
            return None
        pid = abs(int(lines[0]))
        return pid if _is_postgres_process(pid) else None

    def is_up(self) -> bool:
        """Ready by its pid file and alive, without connecting (a connection costs the server a process): for
        polling often."""
        lines = self._read_pidfile()
        return len(lines) >= 8 and lines[7].strip() in ("ready", "standby") and self.pid() is not None

    def _accepts_tcp(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def is_running(self) -> bool:
        """Pid file present, postmaster alive and ready, port accepting connections."""
        if self._proc is not None:
            self._proc.poll()  # reap our child if it died, so it does not linger as a zombie
        lines = self._read_pidfile()
        ready = len(lines) >= 8 and lines[7].strip() in ("ready", "standby")
        return ready and self.pid() is not None and self._accepts_tcp()

    def start(self, timeout: float = 15) -> None:
        """Start the server and wait until it accepts connections. No-op when it already runs; recovers
        from a crash (stale pid file)."""
        if self.is_running():
            return
        if not (self.datadir / "PG_VERSION").exists():
            raise PostgresError(f"{self.datadir} is not an initialised data directory.", "Call init() first (securecart-lab up does).")
        deadline = time.monotonic() + timeout
        lines = self._read_pidfile()
        if self.pid() is not None and len(lines) >= 4 and lines[3].strip() != str(self.port):
            raise PostgresError(
                f"PostgreSQL in {self.datadir} is already running on port {lines[3].strip()}, not {self.port}.",
                f"Stop it first (`securecart-lab down`), or set SECURECART_PG_PORT={lines[3].strip()}.",
            )
        if self.pid() is not None:  # already starting (e.g. from another process): wait for it
            if self._wait_ready(deadline):
                return
            if self.pid() is not None:
                raise PostgresError(f"PostgreSQL in {self.datadir} did not become ready within {timeout:.0f} s.", f"See {self.log_path}.")
        while True:
            self._wait_stale_pid_gone(deadline)
            self._wait_orphans_gone(deadline)
            self._check_port()
            self._spawn()
            if self._wait_ready(deadline):
                return
            tail = self.log_tail()
            # After a kill -9, old backends may hold shared memory, or the dead pid linger, for a moment.
            transient = ("shared memory block is still in use", 'lock file "postmaster.pid" already exists')
            if any(message in tail for message in transient) and time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            if self._proc is not None and self._proc.poll() is None:
                raise PostgresError(f"PostgreSQL in {self.datadir} did not become ready within {timeout:.0f} s.", f"See {self.log_path}.")
            last = tail.strip().splitlines()
            raise PostgresError(
                f"PostgreSQL in {self.datadir} exited during startup: {last[-1] if last else 'no log output'}",
                f"See {self.log_path}.",
            )

    def _wait_stale_pid_gone(self, deadline: float) -> None:
        """After a crash, make way for a new postmaster. PostgreSQL refuses to start while the pid in its
        lock file exists, even as a zombie, and reaping orphans can take PID 1 seconds. A zombie postmaster
        with no live process left in the data dir (every PostgreSQL process works there) is safely gone."""
        lines = self._read_pidfile()
        if not lines or not lines[0].strip().isdigit():
            return
        stale = int(lines[0])
        while time.monotonic() < deadline and Path(f"/proc/{stale}").exists():
            if self._proc is not None:
                self._proc.poll()
            if _process_state(stale) == "Z" and not _processes_in(self.datadir):
                (self.datadir / "postmaster.pid").unlink(missing_ok=True)
                return
            if _is_postgres_process(stale) or _process_state(stale) not in ("Z", "X", None):
                return  # alive, e.g. a reused pid: PostgreSQL itself decides and reports
            time.sleep(0.01)

    def _wait_orphans_gone(self, deadline: float) -> None:
        """After a crash, the dead postmaster's children leave as they notice its death; until the last one has,
        one of them may still hold the port (PortInUse by an unknown process). Nothing waits when none is left."""
        if self.pid() is not None:
            return
        while time.monotonic() < deadline and any(_is_postgres_process(pid) for pid in _processes_in(self.datadir)):
            time.sleep(0.01)

    def _spawn(self) -> None:
        paths.private_dir(self.log_path.parent)
        # setsid -f forks the postmaster off and exits at once, so the postmaster is never our child:
        # nothing here can leave it a zombie that blocks a restart after a crash.
        detach = shutil.which("setsid")
        command = [str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port), "-c", f"listen_addresses={self.host}"]
        with paths.open_private(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            proc = subprocess.Popen(
                [detach, "-f", *command] if detach else command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                env=self._env(),
                start_new_session=True,  # a Ctrl-C in the CLI must not take the database down
                **self.user.run_kwargs(),
            )
        if detach:
            proc.wait()
        self._proc = None if detach else proc

    def _wait_ready(self, deadline: float) -> bool:
        """True once running; False as soon as the postmaster is known to have died."""
        while time.monotonic() < deadline:
            if self.is_running():
                return True
            if self.pid() is None:
                if self._proc is not None and self._proc.poll() is not None:
                    return False
                tail = self.log_tail()
                if self._proc is None and ("FATAL:" in tail or "PANIC:" in tail):
                    return False
            time.sleep(0.01)
        return False

    def log_tail(self, lines: int = 20) -> str:
        """The last lines this server wrote to its log since the last start attempt."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_offset)
                text = log.read().decode(errors="replace")
        except FileNotFoundError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, mode: str = "fast", timeout: float = 30) -> None:
        """Stop the server (smart, fast or immediate, as pg_ctl). No-op when it is not running."""
        if mode not in STOP_SIGNALS:
            raise PostgresError(f"Unknown stop mode {mode!r}.", "Use smart, fast or immediate.")
        pid = self.pid()
        if pid is None and self._proc is not None and self._proc.poll() is None:
            pid = self._proc.pid  # still starting: no pid file yet
        if pid is not None:
            os.kill(pid, STOP_SIGNALS[mode])
            if not _wait_gone(pid, timeout):
                os.kill(pid, signal.SIGQUIT)
                if not _wait_gone(pid, 10):
                    raise PostgresError(f"PostgreSQL (pid {pid}) in {self.datadir} did not stop.", f"kill -9 {pid}; see {self.log_path}.")
        if self._proc is not None:
            self._proc.wait(timeout=10)
            self._proc = None

    def restart(self, timeout: float = 15) -> None:
        """Stop (fast) and start again."""
        self.stop()
        self.start(timeout=timeout)

    def status(self) -> dict:
        """running, pid, port, datadir, role (primary or replica)."""
        return {
            "running": self.is_running(),
            "pid": self.pid(),
            "port": self.port,
            "datadir": str(self.datadir),
            "role": "replica" if (self.datadir / "standby.signal").exists() else "primary",
        }

    def _check_port(self) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as PostgreSQL does
            try:
                probe.bind((self.host, self.port))
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise
                owner = port_owner(self.port, self.host)
                raise PortInUse(
                    f"Port {self.port} on {self.host} is already in use{' by ' + owner if owner else ''}; PostgreSQL for {self.datadir} cannot listen there.",
                    "Stop that process, or set SECURECART_PG_PORT to a free port.",
                ) from None

    # ---- SQL ---------------------------------------------------------------------------------------

    def conninfo(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> str:
        """libpq connection string for this server (default: its superuser)."""
        user = user or self.superuser
        if password is None:
            password = self.superpassword if user == self.superuser else config.DB_PASSWORD
        from psycopg.conninfo import make_conninfo

        return make_conninfo(host=self.host, port=self.port, dbname=dbname, user=user, password=password, connect_timeout=5)

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None) -> psycopg.Connection:
        """An autocommit connection (default: the superuser on the postgres database)."""
        import psycopg

        user = user or self.superuser
        try:
            return psycopg.connect(self.conninfo(dbname, user, password), autocommit=True)
        except psycopg.OperationalError as exc:
            raise PostgresError(
                f"Cannot connect to PostgreSQL at {self.host}:{self.port} as {user} (database {dbname}): {str(exc).strip().splitlines()[-1]}",
                "Is it running? `securecart-lab up` starts it.",
            ) from None

    def create_database(self, name: str, owner: str, password: str) -> None:
        """Create role `owner` (LOGIN, password) if missing and database `name` owned by it if missing."""
        import psycopg
        from psycopg import sql

        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (owner,)).fetchone():
                try:
                    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(sql.Identifier(owner), sql.Literal(password)))
                except (psycopg.errors.DuplicateObject, psycopg.errors.UniqueViolation):
                    pass  # created concurrently
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                try:
                    conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(sql.Identifier(name), sql.Identifier(owner)))
                except (psycopg.errors.DuplicateDatabase, psycopg.errors.UniqueViolation):
                    pass

    def drop_database(self, name: str, dump_to: Path | None = None) -> Path | None:
        """Drop database `name` (if it exists), first saving a pg_dump to dump_to when given."""
        from psycopg import sql

        with self.connect() as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                return None
            if dump_to is not None:
                dump_to = Path(dump_to)
                paths.private_dir(dump_to.parent)
                paths.open_private(dump_to, "ab").close()  # customer data: 0600 before pg_dump writes it
                self._run(
                    ["pg_dump", "-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", name, "-f", str(dump_to)],
                    as_user=False,
                    password=self.superpassword,
                )
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        return dump_to

    def dump(self, name: str, out) -> None:
        """pg_dump database `name` as plain SQL into `out`, an open binary file."""
        self._run(
            ["pg_dump", "-h", self.host, "-p", str(self.port), "-U", self.superuser, "-d", name],
            as_user=False,
            password=self.superpassword,
            stdout=out,
        )

    def restore(self, name: str, dump: Path) -> None:
        """Load a plain SQL dump into database `name` (created empty beforehand); stops at the first error."""
        self._run(
            ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", self.host, "-p", str(self.port), "-U", self.superuser,
             "-d", name, "-f", str(dump)],
            as_user=False,
            password=self.superpassword,
        )

    def create_empty_database(self, name: str, owner: str) -> None:
        """CREATE DATABASE `name` OWNER `owner` from template0 (nothing in it, for a restore)."""
        from psycopg import sql

        with self.connect() as conn:
            conn.execute(sql.SQL("CREATE DATABASE {} OWNER {} TEMPLATE template0").format(sql.Identifier(name), sql.Identifier(owner)))

    # ---- replication -------------------------------------------------------------------------------

    def create_replica(self, datadir: Path, port: int, log_path: Path) -> "PostgresServer":
        """A streaming standby of this server in datadir on port (pg_basebackup -R -X stream, with a
        replication slot named after the replica's directory), started. Reuses an existing replica dir."""
        replica = PostgresServer(datadir, port, self.bindir, log_path, self.os_user, self.host, superpassword=self.superpassword,
                                 superuser=self.superuser)
        replica._user = self._user
        if not (replica.datadir / "PG_VERSION").exists():
            slot = replica.slot_name
            self.drop_replication_slot(slot)
            replica._prepare_dir(replica.datadir)
            from psycopg.conninfo import make_conninfo

            source = make_conninfo(host=self.host, port=self.port, user=self.superuser, application_name=slot)
            self._run(
                ["pg_basebackup", "-d", source, "-D", str(replica.datadir), "-R", "-X", "stream", "-C", "-S", slot, "-c", "fast", "--no-sync", "--no-manifest"],
                password=self.superpassword,
            )
        replica.start()
        return replica

    def drop_replication_slot(self, slot: str) -> bool:
        """Drop an inactive replication slot, one a replica left behind (promoted or deleted), so it stops holding
        WAL on this server. An active slot (a replica streaming now) is never dropped. True when one was dropped."""
        with self.connect() as conn:
            row = conn.execute("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                               "WHERE slot_name = %s AND NOT active", (slot,)).fetchone()
        return row is not None

    @property
    def slot_name(self) -> str:
        """Replication slot (and application_name) this server uses as a replica."""
        return re.sub(r"[^a-z0-9_]", "_", self.datadir.name.lower())[:63]

    def is_in_recovery(self) -> bool:
        """True on a standby (replica) that has not been promoted."""
        with self.connect() as conn:
            return bool(conn.execute("SELECT pg_is_in_recovery()").fetchone()[0])

    def promote(self, timeout: float = 30) -> None:
        """Turn this standby into a writable primary (pg_ctl promote) and wait until it accepts writes."""
        self._run(["pg_ctl", "promote", "-D", str(self.datadir), "-W"])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.is_in_recovery():
                # A copy of a server with a synchronous standby (RDS Multi-AZ) inherits synchronous_standby_names:
                # promoted, its commits would wait for a standby it does not have.
                with self.connect() as conn:
                    conn.execute("ALTER SYSTEM RESET synchronous_standby_names")
                    conn.execute("SELECT pg_reload_conf()")
                return
            time.sleep(0.02)
        raise PostgresError(f"{self.datadir} was asked to promote but is still in recovery after {timeout:.0f} s.", f"See {self.log_path}.")

    def replication_status(self) -> list[dict]:
        """On a primary: one row per connected standby (application_name, state, replay_lag in seconds or None)."""
        with self.connect() as conn:
            rows = conn.execute("SELECT application_name, state, replay_lag FROM pg_stat_replication ORDER BY application_name").fetchall()
        return [
            {"application_name": name, "state": state, "replay_lag": lag.total_seconds() if isinstance(lag, timedelta) else None}
            for name, state, lag in rows
        ]

    def replay_lag_seconds(self) -> float:
        """On a replica: seconds its replay is behind (0 when it has replayed everything it received)."""
        with self.connect() as conn:
            lag = conn.execute(
                "SELECT CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0"
                " ELSE COALESCE(EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp()), 0) END"
            ).fetchone()[0]
        return float(lag)


def _process_state(pid: int) -> str | None:
    """The state letter from /proc/<pid>/stat (R, S, Z...), None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def _is_postgres_process(pid: int) -> bool:
    """Alive (not a zombie) and a postgres binary: a stale pid file's pid may have been reused."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return _process_state(pid) not in ("Z", "X", None) and os.path.basename(cmdline).startswith(b"postgres")


def _processes_in(directory: Path) -> list[int]:
    """Pids of live processes whose working directory is `directory`."""
    target = str(directory.resolve())
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "cwd") == target:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _is_postgres_process(pid):
            return True
        time.sleep(0.01)
    return False
