"""What provisioning code and checks receive: the settings, the engine, the lab, AWS clients, the database."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from securecart_lab import aws
from securecart_lab.config import Settings
from securecart_lab.labs.model import Lab
from securecart_lab.labs.workspace import lab_dir


@dataclass
class LabContext:
    settings: Settings
    engine: Any  # securecart_lab.engines.base.Engine
    lab: Lab
    verbose: bool = False
    cache: dict = field(default_factory=dict)
    # deploy options: show what would change without changing anything; template parameters (--parameter)
    preview: bool = False
    parameters: dict = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.engine.endpoint_url

    @property
    def workspace(self) -> Path:
        """The learner's folder for this lab (`securecart-workspace/labNN`)."""
        return lab_dir(self.settings.workspace, self.lab)

    @property
    def time_scale(self) -> float:
        return self.settings.time_scale

    @property
    def account(self) -> str:
        """The account the admin clients act in (STS GetCallerIdentity, asked once per context)."""
        if "account" not in self.cache:
            self.cache["account"] = self.aws("sts").get_caller_identity()["Account"]
        return self.cache["account"]

    @property
    def region(self) -> str:
        """The region the clients talk to."""
        return self.aws("sts").meta.region_name

    def aws(self, service: str, account: str | None = None):
        """A client of the engine as SecureCart's admin, or as another account's (config.SECURITY_ACCOUNT_ID)."""
        return aws.client(service, self.endpoint_url, account) if account else aws.client(service, self.endpoint_url)

    def postgres(self):
        """The engine's primary PostgreSQL server (a securecart_lab.postgres PostgresServer on the local engine)."""
        return self.engine.postgres()

    @staticmethod
    def unique(prefix: str) -> str:
        """A fresh id for a check's own test data, e.g. unique("ord") -> "ord-3f9c0a1b2c"."""
        return f"{prefix}-{uuid.uuid4().hex[:10]}"

    def lab_context(self, lab: Lab) -> "LabContext":
        return LabContext(self.settings, self.engine, lab, self.verbose)
