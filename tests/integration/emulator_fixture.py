"""Start the real emulator process for tests: `start_emulator(home) -> EmulatorHandle`."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from securecart_lab.emulator import process as emulator_process


@dataclass
class EmulatorHandle:
    process: subprocess.Popen
    endpoint_url: str
    log_path: Path
    port: int

    def stop(self) -> int:
        return emulator_process.stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_emulator(home: Path, port: int | None = None, time_scale: float = 1.0, extra_env=None) -> EmulatorHandle:
    """Start the emulator on a free port under `home`; returns once /_localstack/health answers."""
    port = port or emulator_process.free_port()
    log_path = Path(home) / "logs" / f"emulator-{port}.log"
    proc = emulator_process.start(port=port, home=Path(home), log_path=log_path, time_scale=time_scale,
                                  extra_env=extra_env)
    url = f"http://127.0.0.1:{port}"
    try:
        emulator_process.wait_healthy(url, timeout=60, process=proc)
    except Exception:
        emulator_process.stop(proc)
        raise
    return EmulatorHandle(process=proc, endpoint_url=url, log_path=log_path, port=port)
