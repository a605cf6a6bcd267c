"""Settings, read from the environment once. Every name here is documented in `securecart-lab --help` and the README."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

ENGINES = ("local", "localstack")

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"
ACCESS_KEY = "test"
SECRET_KEY = "test"
# Lab 4's second account, where SecureCart's compliance events go. As with LocalStack, a 12-digit access key id
# selects the account it names (emulator/accounts.py); the kit knows these two accounts and refuses others.
SECURITY_ACCOUNT_ID = "222222222222"
ACCOUNTS = {"securecart": ACCOUNT_ID, "security": SECURITY_ACCOUNT_ID}
# The organization both accounts belong to (condition key aws:PrincipalOrgID in resource policies).
ORGANIZATION_ID = "o-securecartlab"


def access_key_for(account: str = ACCOUNT_ID) -> str:
    """The access key id that selects the account: SecureCart's is the kit's usual key, the others their own id."""
    return ACCESS_KEY if account == ACCOUNT_ID else account


def account_named(name: str) -> str:
    """An account id from its name (securecart, security) or its id; LabError when the kit has no such account."""
    if name in ACCOUNTS.values():
        return name
    if name.lower() in ACCOUNTS:
        return ACCOUNTS[name.lower()]
    from securecart_lab.errors import LabError

    choices = ", ".join(f"{key} ({value})" for key, value in ACCOUNTS.items())
    raise LabError(f"Unknown account {name!r}: the kit has {choices}.", "Use e.g. --account security.")

# The SecureCart database and the role the app and the learner use.
DB_NAME = "securecart"
DB_USER = "securecart"
DB_PASSWORD = "securecart"
# The server's superuser (used by the kit for administration only). Its password is the installation's
# secret: securecart_lab.credentials.
PG_SUPERUSER = "postgres"
# The superuser of every RDS DB instance's server (as on RDS, where rdsadmin is the engine's own superuser and the
# master user is an ordinary role): the learner's MasterUsername may then be postgres.
RDS_SUPERUSER = "rdsadmin"


def default_home() -> Path:
    if os.geteuid() == 0:
        # Beside it, /var/lib/securecart-lab-service holds what the unprivileged service user must reach.
        return Path("/var/lib/securecart-lab")
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "securecart-lab"


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        from securecart_lab.errors import LabError

        raise LabError(f"{name} must be a number, found {raw!r}.", f"Unset it or set e.g. {name}={default}.")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw in (None, ""):
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if value <= 0:
        from securecart_lab.errors import LabError

        raise LabError(f"{name} must be a positive number, found {raw!r}.", f"Unset it or set e.g. {name}=0.1.")
    return value


def _switch(name: str, default: str) -> str:
    raw = (os.environ.get(name) or default).strip().lower()
    if raw in ("on", "1", "true", "yes", "enabled"):
        return "on"
    if raw in ("off", "0", "false", "no", "disabled"):
        return "off"
    from securecart_lab.errors import LabError

    raise LabError(f"{name} must be on or off, found {raw!r}.", f"Unset it (on) or set {name}=off.")


@dataclass(frozen=True)
class Settings:
    engine: str = "local"
    home: Path = field(default_factory=default_home)
    workspace: Path = field(default_factory=lambda: Path("securecart-workspace"))
    host: str = "127.0.0.1"
    emulator_port: int = 4566
    pg_port: int = 15432
    pg_bin: str | None = None
    pg_os_user: str = "securecart"
    time_scale: float = 1.0
    # "on": the emulator evaluates the roles services act as (Step Functions, EventBridge targets, Lambda).
    iam: str = "on"
    # Progress file under home: the learner's is state.json; `ci` keeps its own so it never writes theirs.
    state_name: str = "state.json"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        env = os.environ
        settings = cls(
            engine=env.get("SECURECART_ENGINE") or "local",
            home=Path(env["SECURECART_HOME"]) if env.get("SECURECART_HOME") else default_home(),
            workspace=Path(env.get("SECURECART_WORKSPACE") or "securecart-workspace"),
            emulator_port=_int("SECURECART_EMULATOR_PORT", 4566),
            pg_port=_int("SECURECART_PG_PORT", 15432),
            pg_bin=env.get("SECURECART_PG_BIN") or None,
            pg_os_user=env.get("SECURECART_PG_OS_USER") or "securecart",
            time_scale=_float("SECURECART_TIME_SCALE", 1.0),
            iam=_switch("SECURECART_IAM", "on"),
        )
        overrides = {k: v for k, v in overrides.items() if v is not None}
        settings = replace(settings, **overrides)
        if settings.engine not in ENGINES:
            from securecart_lab.errors import LabError

            raise LabError(
                f"Unknown engine {settings.engine!r}: expected one of {', '.join(ENGINES)}.",
                "Use --engine local (the default, no Docker needed) or --engine localstack.",
            )
        return settings

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.emulator_port}"

    @property
    def state_path(self) -> Path:
        return self.home / self.state_name

    @property
    def logs_dir(self) -> Path:
        return self.home / "logs"

    @property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def service_dir(self) -> Path:
        """What the unprivileged service user owns (see service_user): the home itself, except as root, where the
        home stays root's and 0700 and this is a sibling folder, `<home>-service`."""
        if os.geteuid() == 0:
            return self.home.with_name(self.home.name + "-service")
        return self.home

    @property
    def pg_dir(self) -> Path:
        return self.service_dir / "postgres"

    @property
    def superpassword(self) -> str:
        """The PostgreSQL superuser's password (generated on first use, 0600 in the home)."""
        from securecart_lab import credentials

        return credentials.superuser_password(self.home)

    def child_env(self) -> dict[str, str]:
        """Environment for processes the kit starts (emulator, app instances): settings travel as env vars."""
        return {
            "SECURECART_ENGINE": self.engine,
            "SECURECART_HOME": str(self.home),
            "SECURECART_EMULATOR_PORT": str(self.emulator_port),
            "SECURECART_PG_PORT": str(self.pg_port),
            "SECURECART_PG_OS_USER": self.pg_os_user,
            "SECURECART_TIME_SCALE": repr(self.time_scale),
            "SECURECART_IAM": self.iam,
            **({"SECURECART_PG_BIN": self.pg_bin} if self.pg_bin else {}),
            **aws_env(self.endpoint_url),
        }


def aws_env(endpoint_url: str, account: str = ACCOUNT_ID) -> dict[str, str]:
    return {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_ACCESS_KEY_ID": access_key_for(account),
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        # botocore sends StartSyncExecution and TestState to "sync-<host>", which 127.0.0.1 is not.
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",
    }
