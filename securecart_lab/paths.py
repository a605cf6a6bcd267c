"""Where the kit's own content lives: the repository root in a checkout, or inside the installed wheel."""

from __future__ import annotations

import importlib.util
import os
import sys
import zlib
from pathlib import Path
from types import ModuleType

_PACKAGE = Path(__file__).resolve().parent


def content_root() -> Path:
    """The kit's own content: labs/, checks/, seed/, docker-compose.yml."""
    bundled = _PACKAGE / "_content"
    if (bundled / "labs").is_dir():
        return bundled
    return _PACKAGE.parent


def course_root() -> Path:
    """Where labs/ and checks/ come from: SECURECART_CONTENT (for lab authors) or the kit's own."""
    override = os.environ.get("SECURECART_CONTENT")
    return Path(override) if override else content_root()


def labs_dir() -> Path:
    return course_root() / "labs"


def checks_dir() -> Path:
    return course_root() / "checks"


def seed_dir() -> Path:
    return content_root() / "seed"


def compose_file() -> Path:
    return content_root() / "docker-compose.yml"


def load_module(path: Path, fresh: bool = False) -> ModuleType:
    """Import a lab's or a checks file by path, once (or again when `fresh`). Keyed by path: two courses
    (the kit's, a test fixture's) may both have a lab 1."""
    path = path.resolve()
    name = f"securecart_{path.parent.name}_{path.stem}_{zlib.crc32(str(path).encode()):08x}".replace("-", "_")
    if name in sys.modules and not fresh:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        from securecart_lab.errors import LabError

        raise LabError(f"Cannot load {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


# --- private files under SECURECART_HOME ---------------------------------------------------------------------
# The home holds progress, logs, database dumps (customer data) and the PostgreSQL superuser password: it is
# 0700 and everything the kit writes there is 0600, whatever the umask.

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """`mkdir -p path`, creating the missing folders 0700 (existing ones are left as they are)."""
    path = Path(path)
    missing = []
    for folder in [path, *path.parents]:
        if folder.exists():
            break
        missing.append(folder)
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            pass
        narrow(folder, PRIVATE_DIR)
    return path


def narrow(path: Path, mode: int) -> None:
    try:
        st = path.stat()
        if st.st_uid == os.geteuid() and st.st_mode & 0o777 != mode:
            path.chmod(mode)
    except OSError:
        pass  # not ours, or gone: nothing to narrow


def open_private(path: Path, mode: str = "ab", exclusive: bool = False):
    """Open a file for writing with mode 0600 (an existing one is narrowed to 0600). `mode` is "ab", "wb", "a"
    or "w"; `exclusive` refuses an existing file (FileExistsError), so nothing is ever overwritten."""
    path = Path(path)
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_APPEND if mode.startswith("a") else os.O_TRUNC
    if exclusive:
        flags |= os.O_EXCL
    fd = os.open(path, flags, PRIVATE_FILE)
    try:
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, PRIVATE_FILE)
        return os.fdopen(fd, mode, **({} if "b" in mode else {"encoding": "utf-8"}))
    except BaseException:
        os.close(fd)
        raise


def write_private(path: Path, data: str | bytes) -> None:
    """Replace path's content atomically (a unique temporary file, then rename), mode 0600."""
    import tempfile

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
