"""Step Functions conformance: one emulator for every scenario, and a pass rate per feature at the end of the run.

`python -m pytest tests/conformance -q` prints the table; SECURECART_CONFORMANCE_JSON=path also writes it as JSON.
A scenario marked xfail (a known gap) counts as failed in the rate.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

_OUTCOMES: dict[str, dict[str, int]] = defaultdict(lambda: {"passed": 0, "run": 0})


def _feature(item_or_report) -> str | None:
    nodeid = item_or_report.nodeid
    if "test_sfn_conformance.py::test_scenario[" not in nodeid:
        return None
    return nodeid.split("[", 1)[1].split("/", 1)[0]


def pytest_runtest_logreport(report):
    feature = _feature(report)
    if feature is None:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        if report.when == "setup" and report.skipped:
            return
        _OUTCOMES[feature]["run"] += 1
        if report.passed and not hasattr(report, "wasxfail"):
            _OUTCOMES[feature]["passed"] += 1


def pass_rates() -> dict[str, dict[str, int]]:
    return {feature: dict(counts) for feature, counts in sorted(_OUTCOMES.items())}


def pytest_terminal_summary(terminalreporter):
    rates = pass_rates()
    if not rates:
        return
    write = terminalreporter.write_line
    terminalreporter.section("Step Functions conformance: pass rate by feature")
    total_passed = total_run = 0
    for feature, counts in rates.items():
        total_passed += counts["passed"]
        total_run += counts["run"]
        write(f"{feature:<16} {counts['passed']:>3}/{counts['run']:<3} {100 * counts['passed'] / counts['run']:5.1f}%")
    write(f"{'all':<16} {total_passed:>3}/{total_run:<3} {100 * total_passed / total_run:5.1f}%")
    target = os.environ.get("SECURECART_CONFORMANCE_JSON")
    if target:
        Path(target).write_text(json.dumps(rates, indent=2) + "\n")
