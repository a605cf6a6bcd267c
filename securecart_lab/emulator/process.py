"""Start, wait for and stop the emulator process (used by the local engine and by the tests)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from securecart_lab import paths
from securecart_lab.errors import EngineUnavailable

HEALTH_PATH = "/_localstack/health"


def start(
    *,
    host: str = "127.0.0.1",
    port: int,
    home: Path,
    log_path: Path,
    time_scale: float = 1.0,
    extra_env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """Start `python -m securecart_lab.emulator` in its own process group, logging to `log_path`."""
    paths.private_dir(log_path.parent)
    env = {
        **os.environ,
        "SECURECART_HOME": str(home),
        "SECURECART_EMULATOR_PORT": str(port),
        "SECURECART_TIME_SCALE": repr(float(time_scale)),
        **(extra_env or {}),
    }
    env.pop("MOTO_PORT", None)
    # The kit may run from a checkout that is not installed: the child must import the same package.
    package_parent = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
    with paths.open_private(log_path, "ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "securecart_lab.emulator", "--host", host, "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            umask=0o077,  # what the emulator writes in SECURECART_HOME (logs, dumps) is private
        )


def health(url: str, timeout: float = 2.0) -> dict | None:
    """The emulator's health document, or None if nothing healthy answers at `url`."""
    try:
        with urllib.request.urlopen(url.rstrip("/") + HEALTH_PATH, timeout=timeout) as response:
            return json.load(response)
    except (OSError, urllib.error.URLError, ValueError):
        return None


def wait_healthy(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> dict:
    """Poll the health endpoint until it answers; raise EngineUnavailable on timeout or if `process` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        document = health(url, timeout=1.0)
        if document is not None:
            return document
        if process is not None and process.poll() is not None:
            raise EngineUnavailable(
                f"The emulator exited with code {process.returncode} before it was ready.",
                "Read the emulator log for the cause.",
            )
        time.sleep(0.01)
    raise EngineUnavailable(f"The emulator at {url} did not become healthy within {timeout:.0f} s.",
                            "Read the emulator log for the cause.")


def stop(process: subprocess.Popen, timeout: float = 10.0) -> int:
    """SIGTERM the emulator (it stops its Lambda workers), then SIGKILL its process group if it lingers."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    return process.returncode
