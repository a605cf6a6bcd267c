"""What every engine provides."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from securecart_lab import config
from securecart_lab.config import Settings

ALL_SERVICES = frozenset(
    {
        "s3", "sqs", "sns", "dynamodb", "lambda", "stepfunctions", "events", "logs", "iam", "sts",
        "cloudwatch", "ssm", "cloudformation", "ec2", "rds", "elbv2", "autoscaling", "schemas",
    }
)


@dataclass
class Component:
    name: str
    state: str  # running | stopped | crashed | unhealthy
    detail: str = ""


@dataclass
class EngineStatus:
    engine: str
    endpoint_url: str
    components: list[Component] = field(default_factory=list)
    services: dict[str, str] = field(default_factory=dict)
    info: dict = field(default_factory=dict)
    # Memory per part of the environment: [{"part", "processes", "mib"}] (the local engine's processes).
    footprint: list[dict] = field(default_factory=list)
    # The same memory per lab: {"shared", "labs", "other"} (securecart_lab/footprint.py measure()).
    footprint_by_lab: dict = field(default_factory=dict)

    @property
    def running(self) -> bool:
        return bool(self.components) and all(c.state == "running" for c in self.components)


class Engine:
    name = "base"
    capabilities: frozenset[str] = ALL_SERVICES
    # What the engine simulates rather than runs for real: reports name it so a grade says what it was measured on.
    simulated: tuple[str, ...] = ()

    def __init__(self, settings: Settings):
        self.settings = settings

    @property
    def endpoint_url(self) -> str:
        return self.settings.endpoint_url

    def up(self) -> bool:
        """Start everything; returns False when it was already running."""
        raise NotImplementedError

    def down(self, purge: bool = False) -> bool:
        """Stop everything; returns False when nothing was running."""
        raise NotImplementedError

    def status(self) -> EngineStatus:
        raise NotImplementedError

    def postgres(self):
        raise NotImplementedError

    def pg_env(self, superuser: bool = False) -> dict[str, str]:
        """libpq variables for the SecureCart database, as `env` prints them: as the app's role, or as the server's
        superuser (with the installation's secret password)."""
        return {
            "PGHOST": self.settings.host,
            "PGPORT": str(self.settings.pg_port),
            "PGUSER": config.PG_SUPERUSER if superuser else config.DB_USER,
            "PGPASSWORD": self.settings.superpassword if superuser else config.DB_PASSWORD,
            "PGDATABASE": config.DB_NAME,
        }

    def version(self) -> str:
        raise NotImplementedError

    def missing_reason(self, services: set[str]) -> str:
        return f"The {self.name} engine has no {', '.join(sorted(services))} API."

    def require_running(self) -> None:
        from securecart_lab.errors import NotRunning

        # A loaded machine (e.g. grade running environments side by side) can take over a second to answer;
        # when nothing listens, the connection is refused at once, so the longer wait costs nothing then.
        if self.health(timeout=5) is None:
            raise NotRunning(
                f"Expected the {self.name} engine at {self.endpoint_url}, found nothing.",
                'Run "securecart-lab up" (or "securecart-lab start N", which starts it).',
            )

    def environment_id(self) -> str | None:
        """The running emulator's id, new at every start (None when nothing answers, or the engine has none)."""
        found = (self.health() or {}).get("environment_id")
        return found if isinstance(found, str) else None

    def health(self, timeout: float = 1.0) -> dict | None:
        """The emulator's /_localstack/health answer, or None when nothing answers."""
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/_localstack/health", timeout=timeout) as resp:
                return json.loads(resp.read() or b"{}")
        except (urllib.error.URLError, OSError, ValueError):
            return None
