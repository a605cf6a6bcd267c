"""Connection pools per database target, and the routing of reads (reader, or the writer as a fallback)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, TypeVar

import psycopg
from psycopg.conninfo import make_conninfo
from psycopg_pool import ConnectionPool, PoolTimeout

from securecart_lab.app.config import AppConfig, Endpoint
from securecart_lab.errors import LabError

log = logging.getLogger("securecart.app.db")

T = TypeVar("T")

WRITER = "writer"
READER = "reader"
WRITER_FALLBACK = "writer-fallback"

# After a failed connect, a target is skipped for this long, so a dead server costs one timeout, not one per request.
RETRY_AFTER_SECONDS = 1.0


class DatabaseUnavailable(LabError):
    """The database target did not give a working connection in time."""


class Target:
    """One database server: a small pool, created lazily and rebuilt after the server was unreachable."""

    def __init__(self, endpoint: Endpoint, config: AppConfig, role: str, timeout: float):
        self.endpoint = endpoint
        self.role = role
        self._timeout = timeout
        self._conninfo = make_conninfo(
            host=endpoint.host,
            port=endpoint.port,
            dbname=config.db_name,
            user=config.db_user,
            password=config.db_password,
            connect_timeout=2,
            application_name=f"securecart-app {config.instance_id}",
        )
        self._lock = threading.Lock()
        self._pool: ConnectionPool | None = None
        self._down_until = 0.0
        self._reachable = True

    def _unavailable(self, error: Exception | str) -> DatabaseUnavailable:
        return DatabaseUnavailable(f"The {self.role} database at {self.endpoint} is unreachable: {error}")

    def _set_reachable(self, reachable: bool, error: Exception | None = None) -> None:
        # Logged on changes only: health checks would otherwise repeat the same line every few seconds.
        if reachable and not self._reachable:
            log.info("%s database %s is reachable again", self.role, self.endpoint)
        elif not reachable and self._reachable:
            log.warning("%s database %s is unreachable: %s", self.role, self.endpoint, error)
        self._reachable = reachable
        if not reachable:
            self._down_until = time.monotonic() + RETRY_AFTER_SECONDS

    def _get_pool(self) -> ConnectionPool:
        with self._lock:
            if time.monotonic() < self._down_until:
                raise self._unavailable("it failed moments ago")
            if self._pool is None:
                # One direct connection first: a refused connection fails at once, while a pool would retry
                # in the background until the caller's timeout.
                try:
                    psycopg.connect(self._conninfo).close()
                except psycopg.OperationalError as error:
                    self._set_reachable(False, error)
                    raise self._unavailable(error) from error
                self._set_reachable(True)
                self._pool = ConnectionPool(
                    self._conninfo,
                    min_size=1,
                    max_size=8,
                    kwargs={"autocommit": True},
                    check=ConnectionPool.check_connection,
                    timeout=self._timeout,
                    name=f"{self.role}@{self.endpoint}",
                    open=False,
                )
                self._pool.open(wait=False)
            return self._pool

    def _discard(self, pool: ConnectionPool, error: Exception) -> None:
        # A fresh pool reconnects at once when the server is back; the old one would back off for up to minutes.
        with self._lock:
            if self._pool is pool:
                self._pool = None
                self._set_reachable(False, error)
                threading.Thread(target=pool.close, kwargs={"timeout": 1.0}, daemon=True).start()

    def run(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run `work(conn)` on a pooled connection; DatabaseUnavailable when the server cannot be reached or drops."""
        pool = self._get_pool()
        try:
            with pool.connection() as conn:
                return work(conn)
        except (PoolTimeout, psycopg.OperationalError) as error:
            self._discard(pool, error)
            raise self._unavailable(error) from error

    def close(self) -> None:
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close(timeout=1.0)


class Database:
    """The writer and the reader the configuration (or SSM, through the lookups) names at the moment."""

    def __init__(self, config: AppConfig, reader_lookup: Callable[[], Endpoint | None],
                 writer_lookup: Callable[[], Endpoint] | None = None):
        self._config = config
        self._reader_lookup = reader_lookup
        self._writer_lookup = writer_lookup or (lambda: config.writer)
        self._writers: dict[Endpoint, Target] = {}
        self._readers: dict[Endpoint, Target] = {}
        self._lock = threading.Lock()

    @property
    def writer(self) -> Target:
        """The writer named at the moment (a failover can move it)."""
        endpoint = self._writer_lookup()
        with self._lock:
            target = self._writers.get(endpoint)
            if target is None:
                target = self._writers[endpoint] = Target(endpoint, self._config, WRITER, self._config.writer_timeout)
            return target

    def write(self, work: Callable[[psycopg.Connection], T]) -> T:
        """Run `work` on the writer (it opens its own transaction where it needs one)."""
        return self.writer.run(work)

    def read(self, work: Callable[[psycopg.Connection], T]) -> tuple[T, str]:
        """Run `work` on the reader if one is configured, else the writer. Returns (result, route)."""
        endpoint = self._reader_lookup()
        if endpoint is None or endpoint == self._writer_lookup():  # a "reader" that is the writer is the writer
            return self.writer.run(work), WRITER
        try:
            return self._reader(endpoint).run(work), READER
        except DatabaseUnavailable:
            return self.writer.run(work), WRITER_FALLBACK

    def _reader(self, endpoint: Endpoint) -> Target:
        with self._lock:
            target = self._readers.get(endpoint)
            if target is None:
                target = self._readers[endpoint] = Target(endpoint, self._config, READER, self._config.reader_timeout)
            return target

    def close(self) -> None:
        """Close every pool (the app process is stopping)."""
        with self._lock:
            targets = [*self._writers.values(), *self._readers.values()]
        for target in targets:
            target.close()
