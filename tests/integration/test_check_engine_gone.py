"""A check run during which the engine dies stops at once, says so, and does not record its score over the
learner's (issue: a crashed emulator turned 10/10 into a recorded 3/10)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from pathlib import Path

import pytest

from securecart_lab import state
from securecart_lab.config import Settings
from securecart_lab.errors import EngineUnavailable
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

from emulator_fixture import start_emulator

pytestmark = pytest.mark.integration

COURSE = Path(__file__).resolve().parents[1] / "fixtures" / "course"


def test_a_crash_mid_check_stops_and_keeps_the_recorded_score(monkeypatch):
    monkeypatch.setenv("SECURECART_CONTENT", str(COURSE))
    home = Path(tempfile.mkdtemp(prefix="securecart-gone-", dir="/tmp"))
    handle = start_emulator(home)
    settings = Settings(home=home, workspace=home / "ws", emulator_port=handle.port)
    try:
        service.deploy(settings, 1, source=get_lab(1).solution_dir)
        report = service.check(settings, 1)
        assert (report.passed, len(report.outcomes)) == (3, 3)
        before = state.load(settings).lab(1)["last_check"]

        seen = []

        def crash_after_first(outcome):
            seen.append(outcome)
            if len(seen) == 1:
                os.kill(handle.process.pid, signal.SIGKILL)

        with pytest.raises(EngineUnavailable, match=r"stopped answering .* during check 'timeout' \(2 of 3\).*not recorded"):
            service.check(settings, 1, on_outcome=crash_after_first)
        assert len(seen) == 1  # the check that met the dead engine is not shown as a FAIL
        assert state.load(settings).lab(1)["last_check"] == before
    finally:
        handle.stop()
        shutil.rmtree(home, ignore_errors=True)
