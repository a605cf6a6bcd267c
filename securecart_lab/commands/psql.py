"""psql: a psql session on the lab's RDS database as its master user."""

from __future__ import annotations

import os
import subprocess

from securecart_lab import labdb
from securecart_lab.console import err_console
from securecart_lab.engines import get_engine
from securecart_lab.config import Settings


def psql(settings: Settings, replica: bool, instance: str | None, extra: list[str]) -> int:
    engine = get_engine(settings)
    engine.require_running()
    login = labdb.login(engine.endpoint_url, replica=replica, instance=instance)
    argv = login.psql_argv(labdb.psql_binary(settings), extra)
    err_console.print(f"[dim]{login.instance_id} ({login.role}) at {login.host}:{login.port}, database "
                      f"{login.dbname}, user {login.user}[/]", highlight=False)
    env = {k: v for k, v in os.environ.items() if k != "PGPASSWORD"}
    env.update(labdb.psql_env(settings))
    return subprocess.call(argv, env=env)
