"""Private files (issue 8, items 3 and 4): what the kit writes in SECURECART_HOME is 0600 whatever the umask, and
the PostgreSQL superuser's password is a random secret per installation, never the old public one."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from securecart_lab import credentials, paths, state
from securecart_lab.config import Settings
from securecart_lab.engines.localstack import LocalStackEngine


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture(autouse=True)
def loose_umask():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def test_open_private_creates_0600_narrows_existing_and_refuses_overwrite_when_exclusive(tmp_path):
    with paths.open_private(tmp_path / "new.log") as out:
        out.write(b"x")
    assert mode(tmp_path / "new.log") == 0o600
    old = tmp_path / "old.log"
    old.write_text("kept\n")
    old.chmod(0o644)
    with paths.open_private(old, "a") as out:
        out.write("more\n")
    assert mode(old) == 0o600 and old.read_text() == "kept\nmore\n"
    with pytest.raises(FileExistsError):
        paths.open_private(old, "wb", exclusive=True)
    assert old.read_text() == "kept\nmore\n"


def test_private_dir_creates_0700_and_write_private_is_atomic_and_0600(tmp_path):
    folder = paths.private_dir(tmp_path / "a" / "b")
    assert mode(tmp_path / "a") == mode(folder) == 0o700
    target = folder / "state.json"
    errors = []

    def write(n):
        try:
            paths.write_private(target, f'{{"n": {n}}}')
        except OSError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and mode(target) == 0o600
    assert [p.name for p in folder.iterdir()] == ["state.json"]  # no temporary file left behind


def test_progress_file_is_0600(tmp_path):
    progress = state.load(tmp_path / "home")
    progress.record(1, started=True)
    assert mode(tmp_path / "home" / "state.json") == 0o600
    assert mode(tmp_path / "home") == 0o700


def test_superuser_password_is_random_per_installation_kept_0600_and_stable(tmp_path):
    first = credentials.superuser_password(tmp_path / "one")
    assert first == credentials.superuser_password(tmp_path / "one")
    other = credentials.superuser_password(tmp_path / "two")
    assert first != other and credentials.LEGACY_SUPERPASSWORD not in (first, other)
    assert len(first) >= 24
    secret_file = tmp_path / "one" / credentials.SECRET_FILE
    assert mode(secret_file) == 0o600 and mode(tmp_path / "one") == 0o700


def test_concurrent_first_use_agrees_on_one_password(tmp_path):
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(credentials.superuser_password(tmp_path))) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(seen)) == 1


def test_env_gives_the_superuser_password_only_when_asked_and_never_on_screen(cli, isolated_settings):
    secret = isolated_settings.superpassword
    pgpass = isolated_settings.home / "pgpass"
    plain = cli("env")
    assert plain.exit_code == 0 and secret not in plain.output and "PGUSER=securecart" in plain.output
    assert secret not in pgpass.read_text()
    admin = cli("env", "--superuser")
    assert admin.exit_code == 0, admin.output
    assert "PGUSER=postgres" in admin.output and secret not in admin.output
    assert f":postgres:{secret}" in pgpass.read_text() and mode(pgpass) == 0o600


def test_localstack_engine_uses_the_secret_for_the_compose_postgres(tmp_path):
    settings = Settings.from_env(home=tmp_path / "home", engine="localstack")
    assert LocalStackEngine(settings).pg_env()["PGPASSWORD"] == settings.superpassword
    compose = paths.compose_file().read_text()
    assert "POSTGRES_PASSWORD: ${SECURECART_PG_PASSWORD:?" in compose and "PGPASSWORD: ${SECURECART_PG_PASSWORD:?" in compose
    assert "PASSWORD: securecart" not in compose and "securecart-admin" not in compose
