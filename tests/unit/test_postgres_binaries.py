"""Where the kit looks for PostgreSQL, and how it makes the binaries reachable for an unprivileged user."""

import os
import shutil
from pathlib import Path

import pytest

from securecart_lab.errors import PostgresError, PostgresNotFound
from securecart_lab.postgres import binaries
from securecart_lab.postgres.binaries import REQUIRED, can_traverse, find_bindir, os_user, runnable_bindir
from securecart_lab.postgres.testing import temp_dir

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="privilege dropping only happens as root")


@pytest.fixture
def root():
    """Not pytest's tmp_path: /tmp/pytest-of-root is private, and these tests need dirs the server user can enter."""
    path = temp_dir()
    yield path
    shutil.rmtree(path)


def fake_bindir(path: Path, names=REQUIRED) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    for name in names:
        (path / name).write_text("#!/bin/sh\nexit 0\n")
        (path / name).chmod(0o755)
    return path


def test_explicit_pg_bin_wins(tmp_path):
    fake = fake_bindir(tmp_path / "bin")
    assert find_bindir(str(fake)) == fake


def test_incomplete_pg_bin_is_an_error_not_skipped(tmp_path):
    fake = fake_bindir(tmp_path / "bin", names=("initdb", "postgres"))
    with pytest.raises(PostgresNotFound) as error:
        find_bindir(str(fake))
    assert "SECURECART_PG_BIN" in error.value.message
    assert "pg_basebackup" in error.value.message and "initdb," not in error.value.message
    assert "pip install pgserver" in error.value.hint


def test_bundled_pgserver_comes_first():
    kind, first = next(binaries.candidates())
    assert kind == "pgserver"
    assert first.parts[-3:] == ("pgserver", "pginstall", "bin")
    assert find_bindir(None) == first


def test_initdb_on_path_is_found(tmp_path, monkeypatch):
    fake = fake_bindir(tmp_path / "pg" / "bin")
    monkeypatch.setenv("PATH", str(fake))
    assert binaries._path_bindir() == fake


def test_system_installs_highest_version_first(tmp_path):
    for version in ("9.6", "16", "15"):
        fake_bindir(tmp_path / version / "bin")
    assert [p.parent.name for p in binaries._system_bindirs(tmp_path)] == ["16", "15", "9.6"]


def test_nothing_found_says_how_to_install(monkeypatch):
    monkeypatch.setattr(binaries, "candidates", lambda: iter(()))
    with pytest.raises(PostgresNotFound) as error:
        find_bindir(None)
    assert "\n" not in error.value.message
    assert "apt-get install postgresql" in error.value.hint and "SECURECART_PG_BIN" in error.value.hint


@as_root
def test_private_dirs_are_not_traversable_for_the_server_user(root):
    user = os_user("securecart")
    (root / "private").mkdir(mode=0o700)
    assert can_traverse(root, user)
    assert not can_traverse(root / "private", user)


@as_root
def test_unreachable_install_is_copied_once_with_its_libs(root):
    user = os_user("securecart")
    install = root / "private" / "site-packages" / "pgserver" / "pginstall"
    (root / "private").mkdir(mode=0o700)
    fake_bindir(install / "bin")
    (install / "lib").mkdir()
    (install / "share").mkdir()
    (install.parent.parent / "pgserver.libs").mkdir()
    (install.parent.parent / "pgserver.libs" / "libpq.so").write_text("lib")

    copied = runnable_bindir(install / "bin", user, root / "home")
    assert copied.parts[-3:] == ("pgserver", "pginstall", "bin")
    assert (copied / "postgres").is_file() and (copied.parent / "lib").is_dir()
    assert (copied.parents[2] / "pgserver.libs" / "libpq.so").is_file()  # where the RPATH $ORIGIN/../../../ points
    assert can_traverse(copied, user)
    assert runnable_bindir(install / "bin", user, root / "home") == copied


@as_root
def test_root_as_server_user_is_refused():
    with pytest.raises(PostgresError):
        os_user("root")
