"""Find PostgreSQL binaries, and the unprivileged OS user that runs them when the kit runs as root."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import pwd
import re
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from securecart_lab.errors import PostgresError, PostgresNotFound

REQUIRED = ("initdb", "pg_ctl", "postgres", "pg_basebackup", "pg_dump", "psql")

INSTALL_HINT = "Run `pip install pgserver` (bundles PostgreSQL 16) or `apt-get install postgresql`, or set SECURECART_PG_BIN to a directory holding initdb and postgres."


def missing_binaries(bindir: Path) -> list[str]:
    """Names from REQUIRED that are not executable files in bindir."""
    return [name for name in REQUIRED if not os.access(bindir / name, os.X_OK) or not (bindir / name).is_file()]


def _pgserver_bindir() -> Path | None:
    # find_spec locates the wheel without importing (and so without starting) anything.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.origin:
        return None
    return Path(spec.origin).parent / "pginstall" / "bin"


def _path_bindir() -> Path | None:
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                bindir = Path(out.stdout.strip())
                if not missing_binaries(bindir):
                    return bindir
        except (OSError, subprocess.TimeoutExpired):
            pass
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def _system_bindirs(root: Path = Path("/usr/lib/postgresql")) -> list[Path]:
    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(part) for part in re.findall(r"\d+", path.parent.name)) or (0,)

    return sorted(root.glob("*/bin"), key=version, reverse=True)


def candidates() -> Iterator[tuple[str, Path]]:
    """Automatic search order after SECURECART_PG_BIN: pgserver's bundled PostgreSQL 16, PATH, /usr/lib/postgresql.
    Lazy, so that the usual first hit costs no subprocess."""
    bundled = _pgserver_bindir()
    if bundled:
        yield "pgserver", bundled
    on_path = _path_bindir()
    if on_path:
        yield "PATH", on_path
    for bindir in _system_bindirs():
        yield "system", bindir


def find_bindir(pg_bin: str | None = None) -> Path:
    """Directory holding initdb, pg_ctl, postgres, pg_basebackup, pg_dump and psql.

    An explicit pg_bin (SECURECART_PG_BIN) must be complete: it is what the user asked for, so it is never
    silently skipped. Otherwise the first complete candidate wins.
    """
    if pg_bin:
        bindir = Path(pg_bin).expanduser()
        missing = missing_binaries(bindir)
        if missing:
            raise PostgresNotFound(
                f"SECURECART_PG_BIN={pg_bin} lacks {', '.join(missing)}.",
                "Point SECURECART_PG_BIN at a PostgreSQL bin directory, or unset it to use the bundled one. " + INSTALL_HINT,
            )
        return bindir
    for _, bindir in candidates():
        if not missing_binaries(bindir):
            return bindir
    raise PostgresNotFound("No PostgreSQL installation found (need " + ", ".join(REQUIRED) + ").", INSTALL_HINT)


@dataclass(frozen=True)
class OsUser:
    """The account PostgreSQL processes run as."""

    name: str
    uid: int
    gid: int

    @property
    def is_current(self) -> bool:
        return self.uid == os.geteuid()

    def run_kwargs(self) -> dict:
        """subprocess keyword arguments that drop privileges to this user (empty when it is us)."""
        if self.is_current:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}


def os_user(name: str) -> OsUser:
    """The user servers run as: `name` (created if missing) when we are root, else the current user."""
    if os.geteuid() != 0:
        entry = pwd.getpwuid(os.geteuid())
        return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        result = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
            capture_output=True,
            text=True,
        )
        try:
            entry = pwd.getpwnam(name)  # another process may have created it concurrently
        except KeyError:
            raise PostgresError(
                f"Could not create the OS user {name!r} that runs PostgreSQL: {result.stderr.strip() or 'useradd failed'}.",
                "Create it with `useradd --system " + name + "`, or set SECURECART_PG_OS_USER to an existing unprivileged user.",
            ) from None
    if entry.pw_uid == 0:
        raise PostgresError(f"SECURECART_PG_OS_USER={name} is root; initdb refuses to run as root.", "Use an unprivileged user.")
    return OsUser(entry.pw_name, entry.pw_uid, entry.pw_gid)


def can_traverse(path: Path, user: OsUser) -> bool:
    """True when `user` can search every directory from / down to path (and path itself)."""
    if user.is_current or user.uid == 0:
        return True
    groups = {user.gid}
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        try:
            st = directory.stat()
        except OSError:
            return False
        if st.st_uid == user.uid:
            allowed = st.st_mode & stat.S_IXUSR
        elif st.st_gid in groups:
            allowed = st.st_mode & stat.S_IXGRP
        else:
            allowed = st.st_mode & stat.S_IXOTH
        if not allowed:
            return False
    return True


def first_blocking_dir(path: Path, user: OsUser) -> Path | None:
    """The first directory on the way to path that `user` cannot enter, or None."""
    path = path.resolve()
    for directory in [*reversed(path.parents), path]:
        if not can_traverse(directory, user):
            return directory
    return None


def runnable_bindir(bindir: Path, user: OsUser, cache_root: Path) -> Path:
    """bindir itself when `user` can run it; else a copy of the install tree under cache_root/pgbin/<hash>/.

    The copy keeps the layout the binaries' relative RPATHs expect (pgserver's `../../../pgserver.libs`).
    """
    bindir = bindir.resolve()
    if can_traverse(bindir, user):
        return bindir
    root = bindir.parent
    postgres = bindir / "postgres"
    digest = hashlib.sha256(f"{root}:{postgres.stat().st_mtime_ns}:{postgres.stat().st_size}".encode()).hexdigest()[:12]
    dest = cache_root / "pgbin" / digest
    target = dest / root.parent.name / root.name
    if (target / "bin" / "postgres").is_file():
        return target / "bin"
    staging = cache_root / "pgbin" / f".{digest}.{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    for part in ("bin", "lib", "share"):
        if (root / part).is_dir():
            shutil.copytree(root / part, staging / root.parent.name / root.name / part, symlinks=True)
    for libs in root.parent.parent.glob("*.libs"):
        shutil.copytree(libs, staging / libs.name, symlinks=True)
    for directory in [cache_root, cache_root / "pgbin"]:
        directory.chmod(directory.stat().st_mode | 0o755)
    try:
        if dest.exists():
            shutil.rmtree(dest)  # an earlier copy was interrupted
        staging.rename(dest)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)  # a concurrent copy won
    if not can_traverse(target / "bin", user):
        raise PostgresError(
            f"The OS user {user.name!r} cannot reach the PostgreSQL binaries copied to {target / 'bin'}.",
            f"Make {first_blocking_dir(target / 'bin', user)} traversable (chmod o+x) or set SECURECART_HOME elsewhere.",
        )
    return target / "bin"
