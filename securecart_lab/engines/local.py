"""The embedded engine: the emulator process (moto + the kit's extensions) and real PostgreSQL servers."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from securecart_lab import __version__, paths
from securecart_lab.engines.base import Component, Engine, EngineStatus
from securecart_lab.errors import LabError, PortInUse
from securecart_lab.ports import owner_pid, port_owner

EDITION = "securecart-local"


# How long a live emulator of this environment may take to answer before `up` calls it hung and replaces it.
BUSY_HEALTH_TIMEOUT = 15.0


class LocalEngine(Engine):
    name = "local"
    simulated = (
        "Lambda runs in local Python worker processes, not containers",
        "EC2 instances running the SecureCart app are local processes",
        "ALB is a local HTTP load balancer with real health checks",
        "RDS instances are databases on local PostgreSQL 16 servers",
    )

    @property
    def pid_file(self) -> Path:
        return self.settings.run_dir / "emulator.pid"

    @property
    def log_path(self) -> Path:
        return self.settings.logs_dir / "emulator.log"

    def version(self) -> str:
        from importlib.metadata import version  # not moto.__version__: importing moto takes a third of a second

        return f"securecart-local {__version__} (moto {version('moto')})"

    # -- emulator process -------------------------------------------------
    def _emulator_pid(self) -> int | None:
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
        return pid

    def _emulator_healthy(self) -> bool:
        health = self.health()
        if health is None and (pid := self._emulator_pid()) is not None and self._ours(pid):
            # A loaded laptop can keep a live emulator from answering within a second; replacing it would throw
            # away every resource the learner created, so a live process of ours gets longer to answer.
            health = self.health(timeout=BUSY_HEALTH_TIMEOUT)
        return bool(health) and health.get("edition") == EDITION

    def _ours(self, pid: int) -> bool:
        """Is `pid` this environment's emulator (not a reused pid, not another home's)? Read from /proc where there
        is one; elsewhere the pid file is trusted."""
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            return not Path("/proc/self").exists()
        except OSError:
            return False
        if b"securecart_lab.emulator" not in argv or str(self.settings.emulator_port).encode() not in argv:
            return False
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            return True
        return f"SECURECART_HOME={self.settings.home}".encode() in environ

    def _start_emulator(self) -> None:
        owner = port_owner(self.settings.emulator_port, self.settings.host)
        stale = owner_pid(self.settings.emulator_port) if owner else None
        if stale and self._ours(stale):  # our own emulator, hung or orphaned without its pid file: replace it
            _terminate(stale)
            owner = port_owner(self.settings.emulator_port, self.settings.host)
        if owner:
            raise PortInUse(
                f"Port {self.settings.emulator_port} is already in use by {owner}; the emulator needs it.",
                "Stop that process, or pick another port: export SECURECART_EMULATOR_PORT=4567",
            )
        from securecart_lab.emulator import process

        paths.private_dir(self.settings.run_dir)
        proc = process.start(
            host=self.settings.host,
            port=self.settings.emulator_port,
            home=self.settings.home,
            log_path=self.log_path,
            time_scale=self.settings.time_scale,
            extra_env=self.settings.child_env(),
        )
        paths.write_private(self.pid_file, str(proc.pid))
        try:
            process.wait_healthy(self.endpoint_url, timeout=30, process=proc)
        except LabError as exc:
            raise LabError(exc.message, f'See the emulator log: {self.log_path} (or "securecart-lab logs emulator").')

    def _stop_emulator(self) -> bool:
        pid = self._emulator_pid()
        stopped = pid is not None and self._ours(pid) and _terminate(pid)
        self.pid_file.unlink(missing_ok=True)
        return bool(stopped)

    # -- postgres -----------------------------------------------------------
    def postgres(self):
        from securecart_lab import postgres

        return postgres.primary(self.settings)

    # -- lifecycle ------------------------------------------------------------
    def up(self) -> bool:
        (self.settings.pg_dir / STOPPING).unlink(missing_ok=True)
        emulator_ok = self._emulator_healthy()
        pg = self.postgres()
        pg_ok = pg.is_running()
        if emulator_ok and pg_ok:
            return False
        errors: list[BaseException] = []

        def start_pg():
            try:
                from securecart_lab import postgres

                postgres.ensure_primary(self.settings)
            except BaseException as exc:  # re-raised in the caller's thread
                errors.append(exc)

        pg_thread = threading.Thread(target=start_pg)
        pg_thread.start()
        try:
            try:
                if not emulator_ok:
                    self._stop_emulator()  # a crashed or hung one leaves a pid file behind
                    self._start_emulator()
            finally:
                pg_thread.join()
            if errors:
                raise errors[0]
        except BaseException:
            # a failed up leaves nothing of its own running: what it started is stopped again
            if not emulator_ok:
                self._stop_emulator()
            if not pg_ok and pg.is_running():
                pg.stop()
            raise
        return True

    def _postgres_pid_files(self) -> list[Path]:
        """The primary and any replica a lab created: every server with a pid file under the PostgreSQL folder."""
        return sorted(self.settings.pg_dir.glob("*/postmaster.pid")) if self.settings.pg_dir.exists() else []

    def down(self, purge: bool = False) -> bool:
        servers = []
        if self.settings.pg_dir.is_dir():
            # The emulator must not take servers stopping with it for failures (bridges/rds_status.py: no failover).
            (self.settings.pg_dir / STOPPING).touch()
        if pid_files := self._postgres_pid_files():
            from securecart_lab import postgres

            servers = [server for server in (postgres.server_for(self.settings, f.parent) for f in pid_files)
                       if server.is_running()]
        # The emulator and the PostgreSQL servers stop at the same time: each takes a fraction of a second.
        with ThreadPoolExecutor(max_workers=1 + len(servers), thread_name_prefix="down") as pool:
            emulator = pool.submit(self._stop_emulator)
            for stopping in [pool.submit(server.stop) for server in servers]:
                stopping.result()
            stopped = emulator.result() or bool(servers)
        if purge:
            for folder in (self.settings.pg_dir, self.settings.run_dir, self.settings.service_dir / "lambda"):
                shutil.rmtree(folder, ignore_errors=True)
            # The RDS master logins recorded for psql (securecart_lab/shellenv.py): their databases are gone.
            (self.settings.home / "pgpass").unlink(missing_ok=True)
            from securecart_lab import envstate

            envstate.purge(self.settings)
        return stopped

    def status(self) -> EngineStatus:
        health = self.health()
        if health and health.get("edition") == EDITION:
            emulator = Component("emulator", "running", self.endpoint_url)
        elif health:
            emulator = Component("emulator", "unhealthy", f"{self.endpoint_url} answers but is not the securecart emulator")
        elif self.pid_file.exists():
            emulator = Component("emulator", "crashed", f"pid file left behind; see {self.log_path}")
        else:
            emulator = Component("emulator", "stopped", self.endpoint_url)
        pid_file = self.settings.pg_dir / "primary" / "postmaster.pid"
        if pid_file.exists() and self.postgres().is_running():
            postgres_c = Component("postgres", "running", f"{self.settings.host}:{self.settings.pg_port}")
        elif pid_file.exists():
            postgres_c = Component("postgres", "crashed", f"stale pid file; see {self.settings.logs_dir / 'postgres.log'}")
        else:
            postgres_c = Component("postgres", "stopped", f"{self.settings.host}:{self.settings.pg_port}")
        from securecart_lab import footprint

        pid = self._emulator_pid()
        usage, by_lab = footprint.measure(pid if pid is not None and self._ours(pid) else None,
                                          self._postgres_pid_files(),
                                          self.endpoint_url if emulator.state == "running" else None)
        return EngineStatus(
            engine=self.name,
            endpoint_url=self.endpoint_url,
            components=[emulator, postgres_c],
            services=(health or {}).get("services", {}),
            info={"time_scale": (health or {}).get("time_scale", self.settings.time_scale), "version": self.version()},
            footprint=[part.as_dict() for part in usage],
            footprint_by_lab=by_lab,
        )


STOPPING = ".stopping"  # in the PostgreSQL folder while `down` stops the servers


def _alive(pid: int) -> bool:
    _reap(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie nobody reaps (pid 1 in a container may not) is gone for our purposes
        zombie = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True
    if zombie and _reap(pid) is False:
        # Our child, not yet waitable: its main thread has ended, its other threads are still exiting.
        return True
    return not zombie


def _terminate(pid: int, grace: float = 10) -> bool:
    """SIGTERM (after SIGCONT, for a stopped one), then SIGKILL to its process group; True once it is gone."""
    for sig in (signal.SIGCONT, signal.SIGTERM):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
    if _wait_gone(pid, grace):
        return True
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return _wait_gone(pid, 5)


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _reap(pid: int) -> bool | None:
    """Collect `pid` if it is our child and has exited: True when collected, False when our child still runs, None
    when it is not our child."""
    try:
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return None
