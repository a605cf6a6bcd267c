"""One command at a time changes an environment; progress writes never collide."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor

from securecart_lab import state

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from securecart_lab import lock
    from securecart_lab.config import Settings
    with lock.environment(Settings(home=Path(sys.argv[1])), "deploy"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
""")


def _holder(home, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(home), str(seconds)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "held"
    return proc


def test_a_second_changing_command_names_the_running_one(cli, isolated_settings):
    proc = _holder(isolated_settings.home, 30)
    try:
        for args in (("deploy", "1"), ("check", "1"), ("reset", "1"), ("up",), ("down",)):
            result = cli(*args)
            assert result.exit_code == 1, args
            assert result.output.startswith(
                f"Error: Another securecart-lab deploy is running (pid {proc.pid}) on this environment"), result.output
            assert "--wait" in result.output
        assert cli("status").exit_code == 0  # reading is never blocked
    finally:
        proc.kill()
        proc.wait()


def test_wait_runs_right_after_the_other_command(cli, isolated_settings):
    proc = _holder(isolated_settings.home, 1.5)
    began = time.monotonic()
    result = cli("down", "--wait")
    assert result.exit_code == 0, result.output
    assert "Waiting: another securecart-lab deploy is running" in result.output
    assert time.monotonic() - began >= 1.0
    proc.wait()


def test_a_lock_left_by_a_dead_process_does_not_block(cli, isolated_settings):
    proc = _holder(isolated_settings.home, 30)
    proc.kill()
    proc.wait()
    assert cli("down").exit_code == 0


def _writer(args) -> int:
    home, worker = args
    from pathlib import Path

    failures = 0
    for i in range(40):
        try:
            state.load(Path(home)).record(worker * 100 + i, passed=i)
        except Exception:
            failures += 1
    return failures


def test_parallel_progress_writes_all_land(tmp_path):
    with ProcessPoolExecutor(8) as pool:
        failures = sum(pool.map(_writer, [(str(tmp_path), w) for w in range(8)]))
    assert failures == 0
    labs = json.loads((tmp_path / "state.json").read_text())["labs"]
    assert len(labs) == 8 * 40  # no writer lost another's update
    assert not list(tmp_path.glob("*.tmp"))
