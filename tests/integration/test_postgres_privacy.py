"""PostgreSQL's secrets and files (issue 8, items 3 and 4), on real servers: the superuser's password is the
installation's secret (the old public one is refused, and rotated away on an old installation), SECURECART_HOME is
0700 with 0600 files, dumps of customer data are 0600, and as root the service user's data lives beside the home."""

from __future__ import annotations

import os
import stat
import time

import psycopg
import pytest

from securecart_lab import config, credentials, postgres, state
from securecart_lab.config import Settings
from securecart_lab.ports import free_port
from securecart_lab.postgres import ensure_primary, log_path_for
from securecart_lab.postgres.binaries import os_user
from securecart_lab.postgres.server import PostgresServer
from securecart_lab.postgres.testing import remove_home, temp_dir

pytestmark = pytest.mark.integration


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def superuser_login(settings: Settings, password: str) -> bool:
    try:
        with psycopg.connect(host="127.0.0.1", port=settings.pg_port, dbname="postgres", user=config.PG_SUPERUSER,
                             password=password, connect_timeout=5):
            return True
    except psycopg.OperationalError as exc:
        assert "password authentication failed" in str(exc)
        return False


@pytest.fixture
def home():
    root = temp_dir()
    yield root / "home"
    for pid_file in root.rglob("postmaster.pid"):
        try:
            os.kill(int(pid_file.read_text().split()[0]), 3)
        except (OSError, ValueError):
            pass
    remove_home(root / "home")
    remove_home(root)


def test_a_new_installation_keeps_its_secret_and_files_private(home):
    settings = Settings.from_env(home=home, pg_port=free_port())
    server = ensure_primary(settings)
    try:
        assert not superuser_login(settings, credentials.LEGACY_SUPERPASSWORD)
        assert superuser_login(settings, settings.superpassword)
        assert mode(home) == 0o700 and home.stat().st_uid == os.geteuid()
        assert mode(home / credentials.SECRET_FILE) == 0o600
        assert mode(settings.logs_dir) == 0o700 and mode(settings.logs_dir / "postgres.log") == 0o600
        if os.geteuid() == 0:
            service = os_user(settings.pg_os_user)
            assert settings.pg_dir == home.with_name("home-service") / "postgres"
            assert settings.service_dir.stat().st_uid == service.uid and mode(settings.service_dir) == 0o700
            assert not (home / "postgres").exists()
        server.create_database("privacy_dump", config.DB_USER, config.DB_PASSWORD)
        dump = server.drop_database("privacy_dump", dump_to=home / "rds-final-dumps" / "privacy.sql")
        assert dump.read_text().startswith("--") and mode(dump) == 0o600 and mode(dump.parent) == 0o700
    finally:
        server.stop()


def test_an_old_installation_is_moved_rotated_and_narrowed(home):
    """Made by an earlier kit: the public superuser password, the data in the home (0755), 0644 files."""
    settings = Settings.from_env(home=home, pg_port=free_port())
    home.mkdir(mode=0o755)
    home.chmod(0o755)
    old_dir = home / "postgres" / "primary"
    (home / "postgres").mkdir(mode=0o755)
    old = PostgresServer(old_dir, settings.pg_port, postgres.bindir_for(settings), log_path_for(settings, "primary"),
                         settings.pg_os_user, superpassword=credentials.LEGACY_SUPERPASSWORD)
    old.init()
    old.start()
    for name, text in {"logs/emulator.log": "log\n", "state.json": "{}", "rds-final-dumps/shop-1.sql": "-- orders\n"}.items():
        path = home / name
        path.parent.mkdir(mode=0o755, exist_ok=True)
        path.write_text(text)
        path.chmod(0o644)
    assert superuser_login(settings, credentials.LEGACY_SUPERPASSWORD)

    server = ensure_primary(settings)
    try:
        assert not superuser_login(settings, credentials.LEGACY_SUPERPASSWORD)
        assert superuser_login(settings, settings.superpassword)
        assert mode(home) == 0o700
        for name in ("logs/emulator.log", "state.json", "rds-final-dumps/shop-1.sql", "logs/postgres.log"):
            assert mode(home / name) == 0o600, name
        assert mode(home / "rds-final-dumps") == 0o700 and (home / "rds-final-dumps/shop-1.sql").read_text() == "-- orders\n"
        if os.geteuid() == 0:
            assert server.datadir == settings.pg_dir / "primary" != old_dir and not old_dir.exists()
        assert state.load(home).data["format_version"] == state.VERSION
        started = time.perf_counter()
        assert ensure_primary(settings).pid() == server.pid()  # already done: no second rotation or move
        assert time.perf_counter() - started < 1
    finally:
        server.stop()
