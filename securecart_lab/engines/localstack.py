"""The Docker engine: LocalStack community 4.14.0 plus postgres:16 (and a streaming replica), via docker compose."""

from __future__ import annotations

import os
import shutil
import subprocess
import time

from securecart_lab import config, paths
from securecart_lab.engines.base import ALL_SERVICES, Component, Engine, EngineStatus
from securecart_lab.errors import EngineUnavailable, LabError

IMAGE = "localstack/localstack:4.14.0"
# LocalStack community has no RDS, ELBv2, Auto Scaling or EventBridge Schemas: checks that need them are skipped,
# never passed.
MISSING = frozenset({"rds", "elbv2", "autoscaling", "schemas"})
# The compose postgres service's password before it came from the installation's secret (SECURECART_PG_PASSWORD).
LEGACY_PASSWORD = "securecart"


class LocalStackEngine(Engine):
    name = "localstack"
    capabilities = ALL_SERVICES - MISSING
    simulated = ("PostgreSQL runs in the compose postgres service, not behind an RDS API",)

    def version(self) -> str:
        return os.environ.get("LOCALSTACK_IMAGE") or IMAGE

    def missing_reason(self, services: set[str]) -> str:
        return (
            f"LocalStack community has no {', '.join(sorted(services))} API; "
            "this check runs on the local engine (--engine local)."
        )

    def _compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        self.require_docker()
        env = {
            **os.environ,
            "SECURECART_EMULATOR_PORT": str(self.settings.emulator_port),
            "SECURECART_PG_PORT": str(self.settings.pg_port),
            "SECURECART_PG_PASSWORD": self.settings.superpassword,
        }
        cmd = ["docker", "compose", "-f", str(paths.compose_file()), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
        if check and proc.returncode != 0:
            last = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            raise LabError(f"docker compose {' '.join(args)} failed: {last[0]}", "Run it by hand to see the full output.")
        return proc

    def require_docker(self) -> None:
        """Raise EngineUnavailable unless a Docker daemon answers."""
        if shutil.which("docker") is None:
            raise EngineUnavailable(
                "The localstack engine needs Docker, and no docker command was found.",
                "Use the embedded engine instead: --engine local (no Docker needed).",
            )
        try:
            import docker

            client = docker.from_env(timeout=3)
            client.ping()
        except Exception as exc:
            where = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
            raise EngineUnavailable(
                f"The localstack engine needs a Docker daemon, and none answered at {where} ({type(exc).__name__}).",
                "Start Docker, or use the embedded engine: --engine local (no Docker needed).",
            ) from None

    def up(self) -> bool:
        if self.health() is not None:
            return False
        self._compose("up", "-d", "--wait")
        self._adopt_secret()
        deadline = time.monotonic() + 120
        while self.health() is None:
            if time.monotonic() > deadline:
                raise LabError(f"LocalStack did not become healthy at {self.endpoint_url} within 120 s.",
                               'See "docker compose logs localstack".')
            time.sleep(1)
        return True

    def down(self, purge: bool = False) -> bool:
        was_running = self.health() is not None
        self._compose("--profile", "replica", "down", *(["--volumes"] if purge else []))
        return was_running

    def status(self) -> EngineStatus:
        health = self.health()
        return EngineStatus(
            engine=self.name,
            endpoint_url=self.endpoint_url,
            components=[Component("localstack", "running" if health else "stopped", self.endpoint_url)],
            services=(health or {}).get("services", {}),
            info={"version": self.version()},
        )

    def pg_env(self, superuser: bool = False) -> dict[str, str]:
        # The compose service's only role, securecart, is its superuser: its password is the installation's secret.
        return {**super().pg_env(), "PGPASSWORD": self.settings.superpassword}

    def _adopt_secret(self) -> None:
        """A postgres volume made before the secret existed has the public password: change it to the secret."""
        import psycopg
        from psycopg import sql

        def connect(password: str):
            return psycopg.connect(host=self.settings.host, port=self.settings.pg_port, dbname=config.DB_NAME,
                                   user=config.DB_USER, password=password, connect_timeout=5, autocommit=True)

        try:
            connect(self.settings.superpassword).close()
            return
        except psycopg.OperationalError:
            pass
        try:
            conn = connect(LEGACY_PASSWORD)
        except psycopg.OperationalError:
            return  # not reachable or already another password: `env` and the checks will say so
        with conn:
            conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(config.DB_USER), sql.Literal(self.settings.superpassword)))

    def postgres(self):
        raise EngineUnavailable(
            "On the localstack engine PostgreSQL is the compose service `postgres`, not a server the kit manages.",
            'Connect with the PG* variables from "securecart-lab env", or use --engine local.',
        )
