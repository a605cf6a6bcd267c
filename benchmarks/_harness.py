"""What the benchmarks share: a stopwatch, a private SECURECART_HOME on free ports, and the CLI run as a learner runs
it (a new process). Imported by the scripts of this folder (`python benchmarks/NAME.py` puts it on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from securecart_lab.config import Settings
from securecart_lab.ports import free_port


def timed(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def scratch() -> tuple[Path, Settings]:
    """A new folder under /tmp (readable by PostgreSQL's unprivileged user) and settings for an engine of its own
    in it: home, workspace, free ports. The caller removes the folder."""
    home = Path(tempfile.mkdtemp(prefix="securecart-bench-", dir="/tmp"))
    home.chmod(0o755)
    return home, Settings(home=home / "home", workspace=home / "ws", emulator_port=free_port(), pg_port=free_port())


def cli_runner(settings: Settings) -> Callable[..., None]:
    """cli("deploy", "2"): securecart-lab in a new process on `settings`' engine; on failure its output and an exit
    (with check=False, nothing)."""
    env = {**os.environ, **settings.child_env(), "SECURECART_WORKSPACE": str(settings.workspace)}

    def cli(*command: str, check: bool = True) -> None:
        done = subprocess.run([sys.executable, "-m", "securecart_lab", *command], env=env, capture_output=True, text=True)
        if done.returncode and check:
            print(done.stdout[-4000:], done.stderr[-2000:])
            raise SystemExit(f"securecart-lab {' '.join(command)} failed")

    return cli
