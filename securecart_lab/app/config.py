"""The app's configuration, read only from the environment (the way an EC2 instance's user data would set it)."""

from __future__ import annotations

import ipaddress
import os
import socket
from dataclasses import dataclass, field, replace

from securecart_lab.config import DB_NAME, DB_PASSWORD, DB_USER
from securecart_lab.errors import LabError

READER_PARAMETER = "/securecart/db/reader-endpoint"
# Where a failover moves the writer without redeploying instances: when set, it wins over DB_HOST/DB_PORT.
WRITER_PARAMETER = "/securecart/db/writer-endpoint"


class AppConfigError(LabError):
    pass


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True)
class Endpoint:
    """A database server address."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @classmethod
    def parse(cls, value: str, default_port: int) -> "Endpoint":
        """Parse `host:port` (or a bare host); raises AppConfigError when malformed."""
        host, sep, port = value.strip().rpartition(":")
        if not sep:
            host, port = port, str(default_port)
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise AppConfigError(f"Expected a database endpoint as host:port, found {value!r}.")
        return cls(host, int(port))


@dataclass(frozen=True)
class AppConfig:
    """Everything the app reads at start; build it with from_env() (a process) or directly (in-process tests)."""

    port: int = 8080
    host: str = "127.0.0.1"
    instance_id: str = field(default_factory=_default_instance_id)
    db_host: str = "127.0.0.1"
    db_port: int = 5432
    db_name: str = DB_NAME
    db_user: str = DB_USER
    db_password: str = DB_PASSWORD
    db_reader_host: str | None = None
    db_reader_port: int | None = None
    aws_endpoint_url: str | None = None
    event_bus_name: str = "securecart"
    # Seconds to wait for a pooled connection before the writer is reported down (503).
    writer_timeout: float = 2.0
    # Seconds to wait for the reader before a read falls back to the writer.
    reader_timeout: float = 1.0
    # Seconds an SSM reader-endpoint lookup (or its absence) is reused.
    reader_cache_seconds: float = 5.0

    @property
    def writer(self) -> Endpoint:
        return Endpoint(self.db_host, self.db_port)

    @property
    def static_reader(self) -> Endpoint | None:
        """The reader named by DB_READER_HOST/PORT, if any."""
        if not self.db_reader_host:
            return None
        return Endpoint(self.db_reader_host, self.db_reader_port or self.db_port)

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "AppConfig":
        """Build the configuration from PORT, HOST, INSTANCE_ID, DB_*, AWS_ENDPOINT_URL and EVENT_BUS_NAME."""
        env = os.environ if env is None else env

        def text(name: str, default: str | None) -> str | None:
            return env.get(name) or default

        def port(name: str, default: int | None) -> int | None:
            raw = env.get(name)
            if not raw:
                return default
            if not raw.isdigit() or int(raw) > 65535:
                raise AppConfigError(f"{name} must be a TCP port number, found {raw!r}.", f"Unset it or set e.g. {name}=8080.")
            return int(raw)

        config = cls(
            port=port("PORT", 8080),
            host=text("HOST", "127.0.0.1"),
            instance_id=text("INSTANCE_ID", None) or _default_instance_id(),
            db_host=text("DB_HOST", "127.0.0.1"),
            db_port=port("DB_PORT", 5432),
            db_name=text("DB_NAME", DB_NAME),
            db_user=text("DB_USER", DB_USER),
            db_password=env.get("DB_PASSWORD", DB_PASSWORD),
            db_reader_host=text("DB_READER_HOST", None),
            db_reader_port=port("DB_READER_PORT", None),
            aws_endpoint_url=text("AWS_ENDPOINT_URL", None),
            event_bus_name=text("EVENT_BUS_NAME", "securecart"),
        )
        config = replace(config, **overrides)
        _require_loopback(config.host)
        return config


def _require_loopback(host: str) -> None:
    # The kit's instances are reached through the local ALB only; never expose them on the network.
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise AppConfigError(f"HOST must be a loopback address, found {host!r}.", "Unset HOST or set HOST=127.0.0.1.")
