"""The embedded engine: the emulator process (moto + the kit's extensions) and real PostgreSQL servers."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from securecart_lab import __version__, config
from securecart_lab.engines.base import Component, Engine, EngineStatus
from securecart_lab.errors import LabError, PortInUse
from securecart_lab.ports import port_owner

EDITION = "securecart-local"


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
        import moto

        return f"securecart-local {__version__} (moto {moto.__version__})"

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
        return bool(health) and health.get("edition") == EDITION

    def _start_emulator(self) -> None:
        owner = port_owner(self.settings.emulator_port, self.settings.host)
        if owner:
            raise PortInUse(
                f"Port {self.settings.emulator_port} is already in use by {owner}; the emulator needs it.",
                "Stop that process, or pick another port: export SECURECART_EMULATOR_PORT=4567",
            )
        self.settings.logs_dir.mkdir(parents=True, exist_ok=True)
        self.settings.run_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.settings.child_env(), "MOTO_PORT": str(self.settings.emulator_port)}
        with open(self.log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "securecart_lab.emulator", "--host", self.settings.host,
                 "--port", str(self.settings.emulator_port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # survives the CLI; `down` stops it
            )
        self.pid_file.write_text(str(proc.pid))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise LabError(
                    f"The emulator exited during start-up (exit code {proc.returncode}).",
                    f"See its log: {self.log_path} (or run \"securecart-lab logs emulator\").",
                )
            if self._emulator_healthy():
                return
            time.sleep(0.05)
        raise LabError(f"The emulator did not answer on {self.endpoint_url} within 30 s.", f"See {self.log_path}.")

    def _stop_emulator(self) -> bool:
        pid = self._emulator_pid()
        if pid is None:
            self.pid_file.unlink(missing_ok=True)
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            _reap(pid)
            time.sleep(0.05)
        else:
            try:
                os.killpg(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.pid_file.unlink(missing_ok=True)
        return True

    # -- postgres -----------------------------------------------------------
    def postgres(self):
        from securecart_lab import postgres

        return postgres.primary(self.settings)

    # -- lifecycle ------------------------------------------------------------
    def up(self) -> bool:
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
            if not emulator_ok:
                self._stop_emulator()  # a crashed or hung one leaves a pid file behind
                self._start_emulator()
        finally:
            pg_thread.join()
        if errors:
            raise errors[0]
        return True

    def down(self, purge: bool = False) -> bool:
        stopped = self._stop_emulator()
        pg = self.postgres()
        if pg.is_running():
            pg.stop()
            stopped = True
        from securecart_lab import postgres

        stopped = postgres.stop_all(self.settings) or stopped
        if purge:
            for folder in (self.settings.pg_dir, self.settings.run_dir, self.settings.home / "lambda"):
                shutil.rmtree(folder, ignore_errors=True)
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
        pg = self.postgres()
        pg_state = pg.status() if pg.datadir.exists() else {"running": False}
        if pg_state.get("running"):
            postgres_c = Component("postgres", "running", f"{self.settings.host}:{self.settings.pg_port}")
        elif (pg.datadir / "postmaster.pid").exists():
            postgres_c = Component("postgres", "crashed", f"stale pid file; see {self.settings.logs_dir / 'postgres.log'}")
        else:
            postgres_c = Component("postgres", "stopped", f"{self.settings.host}:{self.settings.pg_port}")
        return EngineStatus(
            engine=self.name,
            endpoint_url=self.endpoint_url,
            components=[emulator, postgres_c],
            services=(health or {}).get("services", {}),
            info={"time_scale": (health or {}).get("time_scale", self.settings.time_scale), "version": self.version()},
        )


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
