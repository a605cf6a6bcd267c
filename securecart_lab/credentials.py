"""The PostgreSQL superuser's password: random per installation, kept 0600 in SECURECART_HOME (0700).

The kit uses it for administration (creating RDS databases, dumps, replicas); the learner gets it from
`securecart-lab env --superuser` only. Installations made before it existed used a fixed public password
(LEGACY_SUPERPASSWORD): `up` rotates it away (see `postgres.ensure_primary`).
"""

from __future__ import annotations

import os
import secrets
import tempfile
from pathlib import Path

from securecart_lab import paths
from securecart_lab.errors import LabError

SECRET_FILE = "pg-superuser-password"
# The password every installation had before: public, so it is replaced wherever it is found.
LEGACY_SUPERPASSWORD = "securecart-admin"


def superuser_password(home: Path) -> str:
    """The installation's superuser password from home/SECRET_FILE, generated (secrets module) on first use."""
    path = Path(home) / SECRET_FILE
    existing = _read(path)
    if existing:
        return existing
    try:
        paths.private_dir(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{SECRET_FILE}.")  # 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(secrets.token_urlsafe(24) + "\n")
            try:
                os.link(tmp, path)  # atomic and exclusive: a concurrent first use keeps the winner's secret
            except FileExistsError:
                pass
        finally:
            Path(tmp).unlink(missing_ok=True)
    except OSError as exc:
        raise LabError(f"Cannot write the PostgreSQL password file {path}: {exc.strerror or exc}.",
                       "SECURECART_HOME must be a writable folder; set it to one, e.g. export SECURECART_HOME=~/.securecart-lab") from None
    secret = _read(path)
    if not secret:
        raise LabError(f"The PostgreSQL password file {path} is empty.", "Delete it and run `securecart-lab down --purge`, then `securecart-lab up`.")
    return secret


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise LabError(f"Cannot read the PostgreSQL password file {path}: {exc}.",
                       "It must be a text file readable by you (mode 0600).") from None
