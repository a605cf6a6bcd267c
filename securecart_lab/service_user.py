"""Who runs what the kit starts, and where its files live.

When the kit runs as root, PostgreSQL and learner code (Lambda workers, EC2 app instances, custom-resource
Lambdas) run as one unprivileged OS user, SECURECART_PG_OS_USER (default `securecart`, created if missing).
SECURECART_HOME stays 0700 and root's: that user's files (PostgreSQL data, Lambda code, the instances' working
folder, a copy of binaries it could not reach) live in a sibling folder, `<home>-service`, that it owns (0700).
When the kit does not run as root, everything runs as the learner, and that folder is the home itself.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from securecart_lab import paths
from securecart_lab.config import Settings
from securecart_lab.errors import LabError
from securecart_lab.postgres.binaries import OsUser, first_blocking_dir, os_user

_PACKAGE_PARENT = Path(__file__).resolve().parent.parent


class ServiceUserError(LabError):
    pass


def user(settings: Settings) -> OsUser:
    """The account learner code and PostgreSQL run as: the current user, or SECURECART_PG_OS_USER as root."""
    return os_user(settings.pg_os_user)


def folder(settings: Settings, *parts: str) -> Path:
    """settings.service_dir / parts, created 0700 and owned by the service user (each level)."""
    owner = user(settings)
    path = settings.service_dir
    for part in ("", *parts):
        path = path / part if part else path
        paths.private_dir(path)
        if not owner.is_current:
            st = path.stat()
            if (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
                os.chown(path, owner.uid, owner.gid)
            if st.st_mode & 0o777 != paths.PRIVATE_DIR:
                path.chmod(paths.PRIVATE_DIR)
    if not owner.is_current:
        blocking = first_blocking_dir(path, owner)
        if blocking is not None:
            raise ServiceUserError(
                f"The OS user {owner.name!r} that runs PostgreSQL and learner code cannot enter {blocking}, so it cannot reach {path}.",
                f"chmod o+x {blocking}, or set SECURECART_HOME to a folder whose parent it can enter (e.g. under /var/lib).",
            )
    return path


def launcher(settings: Settings) -> tuple[list[str], dict]:
    """How to start a process as the service user, with a private umask: a command prefix and subprocess keyword
    arguments. As root, util-linux's setpriv drops the privileges when it is there: subprocess can then vfork, where
    its own user= forks the whole emulator (50 ms and more for a 200 MB process, on every Lambda cold start)."""
    owner = user(settings)
    if owner.is_current:
        return [], {"umask": 0o077}
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin:/usr/sbin:/sbin")
    if setpriv:
        return [setpriv, f"--reuid={owner.uid}", f"--regid={owner.gid}", "--clear-groups", "--no-new-privs", "--"], {"umask": 0o077}
    return [], {**owner.run_kwargs(), "umask": 0o077}


@dataclass(frozen=True)
class Python:
    """How the service user runs Python with the kit's packages: an interpreter and the extra env it needs."""

    executable: str
    env: dict[str, str]


def python(settings: Settings) -> Python:
    """An interpreter of this Python's version that the service user can run, with the kit's packages on its
    path. ServiceUserError (saying what blocks it) when there is none."""
    return _python(user(settings))


@functools.cache
def _python(owner: OsUser) -> Python:
    if owner.is_current:
        return Python(sys.executable, {})
    needed = [_PACKAGE_PARENT, *_site_dirs()]
    for directory in needed:
        blocking = first_blocking_dir(directory, owner)
        if blocking is not None:
            raise ServiceUserError(
                f"Learner code runs as the unprivileged user {owner.name!r} when the kit runs as root, and it cannot enter "
                f"{blocking}, so it cannot import the kit's packages from {directory}.",
                "Install securecart-lab in a virtual environment outside root's home (e.g. python3 -m venv /opt/securecart-lab), "
                "or run securecart-lab as a normal user.",
            )
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    pythonpath = os.pathsep.join(str(d) for d in needed)
    for candidate in _candidates(version):
        if _runs(candidate, version, owner, {}):
            return Python(candidate, {"PYTHONPATH": pythonpath})
    linked = _shared_copy(version)
    if linked is not None and _runs(linked.executable, version, owner, linked.env):
        return Python(linked.executable, {**linked.env, "PYTHONPATH": pythonpath})
    raise ServiceUserError(
        f"Learner code runs as the unprivileged user {owner.name!r} when the kit runs as root, and no Python {version} it can "
        f"run was found ({sys.executable} is blocked at {first_blocking_dir(Path(os.path.realpath(sys.executable)), owner)}).",
        f"Install python{version} system-wide (e.g. apt-get install python{version}), or install securecart-lab in a "
        "virtual environment outside root's home, or run securecart-lab as a normal user.",
    )


def _site_dirs() -> list[Path]:
    """Where the packages learner code and the app import live (the venv's or the system's site-packages)."""
    import importlib.util

    dirs: list[Path] = []
    for name in ("boto3", "botocore", "psycopg"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            directory = Path(spec.origin).resolve().parent.parent
            if directory not in dirs and directory != _PACKAGE_PARENT:
                dirs.append(directory)
    return dirs


def _candidates(version: str) -> list[str]:
    found: list[str] = []
    for name in (sys.executable, getattr(sys, "_base_executable", None), f"/usr/local/bin/python{version}",
                 f"/usr/bin/python{version}", shutil.which(f"python{version}")):
        if name and os.path.exists(name) and name not in found:
            found.append(name)
    return found


# Python's own files (nothing secret), linked where the service user can read them when this interpreter lives in a
# folder it cannot enter (pyenv or a venv's base under /root). Shared by every SECURECART_HOME: one copy per interpreter.
SHARED_PYTHON_ROOT = Path("/var/cache/securecart-lab/python")
_SKIPPED_STDLIB = {"test", "site-packages", "dist-packages", "idlelib", "tkinter", "turtledemo", "ensurepip"}
# Bumped when what a copy holds changes, so an older copy is not reused (layout 2: with the standard library's bytecode;
# without it every process the service user started compiled what it imported, 2 s and more before a Lambda ran).
_SHARED_LAYOUT = 2


def _shared_copy(version: str) -> Python | None:
    """This interpreter's installation (binary, libpython, standard library) under SHARED_PYTHON_ROOT, hard-linked
    (copied across file systems), world-readable. None when it cannot be made (not root, read-only /var)."""
    import hashlib
    import sysconfig

    base = Path(sys.base_prefix).resolve()
    executable = Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))
    stdlib = Path(sysconfig.get_paths(vars={"installed_base": str(base), "base": str(base)})["stdlib"]).resolve()
    if os.geteuid() != 0 or not executable.is_file() or not (stdlib / "os.py").is_file():
        return None
    st = executable.stat()
    digest = hashlib.sha256(f"{base}:{st.st_mtime_ns}:{st.st_size}:{_SHARED_LAYOUT}".encode()).hexdigest()[:12]
    target = SHARED_PYTHON_ROOT / digest
    binary = target / "bin" / f"python{version}"
    libs = sorted(Path(sysconfig.get_config_var("LIBDIR") or base / "lib").glob(f"libpython{version}*.so*"))
    env = {"LD_LIBRARY_PATH": str(target / "lib")} if libs else {}
    if binary.is_file():
        return Python(str(binary), env)
    staging = SHARED_PYTHON_ROOT / f".{digest}.{os.getpid()}"
    try:
        for folder in (SHARED_PYTHON_ROOT.parent, SHARED_PYTHON_ROOT):
            folder.mkdir(mode=0o755, exist_ok=True)
            folder.chmod(0o755)
        shutil.rmtree(staging, ignore_errors=True)
        (staging / "bin").mkdir(parents=True)
        (staging / "lib").mkdir()
        for folder in (staging, staging / "bin", staging / "lib"):
            folder.chmod(0o755)
        _link(executable, staging / "bin" / f"python{version}")
        for lib in libs:
            _link(lib, staging / "lib" / lib.name)
        shutil.copytree(stdlib, staging / "lib" / stdlib.name, symlinks=True, copy_function=_link,
                        ignore=lambda folder, names: [n for n in names if n in _SKIPPED_STDLIB or n.startswith("config-")])
        # The links share the sources' mtimes, so the interpreter's own bytecode is valid for them; compile what it
        # lacks once, here (the service user cannot write it, and would otherwise compile on every start).
        import compileall

        compileall.compile_dir(staging / "lib" / stdlib.name, quiet=2)
        try:
            staging.rename(target)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # a concurrent copy won
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        return None
    return Python(str(binary), env) if binary.is_file() else None


def _link(source, destination) -> None:
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)


def _runs(executable: str, version: str, owner: OsUser, env: dict[str, str]) -> bool:
    try:
        out = subprocess.run(
            [executable, "-I", "-c", "import sys, os; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=20, cwd="/", env={"PATH": "/usr/bin:/bin", **env},
            **owner.run_kwargs(),
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and out.stdout.strip() == version


# Folders of the service user that lived in the home before it became 0700 (root) and what must not be walked.
_SERVICE_FOLDERS = ("postgres", "pgbin", "lambda", "instances")


def migrate(settings: Settings) -> None:
    """Bring an installation made by an earlier kit to today's layout and modes: as root, its PostgreSQL data moves
    from the home to the service folder; the home becomes 0700 and the kit's files in it 0600."""
    home = settings.home
    if not home.is_dir():
        return
    old_pg = home / "postgres"
    if settings.service_dir != home and old_pg.is_dir() and not settings.pg_dir.exists():
        from securecart_lab import postgres

        for pid_file in sorted(old_pg.glob("*/postmaster.pid")):
            server = postgres.server_for(settings, pid_file.parent)
            if server.pid() is not None:
                server.stop()
        folder(settings)
        shutil.move(str(old_pg), str(settings.pg_dir))
        for cache in ("pgbin", "lambda"):
            shutil.rmtree(home / cache, ignore_errors=True)
    paths.narrow(home, paths.PRIVATE_DIR)
    for entry in home.iterdir():
        if settings.service_dir == home and entry.name in _SERVICE_FOLDERS:
            continue
        _narrow_tree(entry)


def _narrow_tree(path: Path) -> None:
    try:
        if path.is_symlink():
            return
        if path.is_dir():
            paths.narrow(path, paths.PRIVATE_DIR)
            for entry in path.iterdir():
                _narrow_tree(entry)
        else:
            paths.narrow(path, paths.PRIVATE_FILE)
    except OSError:
        pass
