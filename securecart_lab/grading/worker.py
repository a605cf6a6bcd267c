"""Grade one submission in the fresh environment this process was started in (`grade` starts one per submission).

    python -m securecart_lab.grading.worker BASE

BASE/job.json says what to grade; the submission's lab files are in SECURECART_WORKSPACE, and SECURECART_HOME and the
ports are this process's own. It starts the engine, deploys what each graded lab builds on (from the submission,
else from the reference solution), deploys the learner's files, runs the kit's checks, writes BASE/result.json and
tears everything down, also on SIGTERM or SIGINT. Progress lines go to BASE/phases.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import traceback
from dataclasses import replace
from pathlib import Path

from securecart_lab import paths
from securecart_lab.checking import FAIL, Outcome, load_checks
from securecart_lab.config import Settings
from securecart_lab.engines import get_engine
from securecart_lab.errors import LabError
from securecart_lab.labs import service
from securecart_lab.labs.registry import all_labs, get_lab
from securecart_lab.reporting import GRADED_FRESH, LabReport, machine

LEARNER = "learner's files"
REFERENCE = "reference solution"


class Stop(BaseException):
    """SIGTERM or SIGINT from `grade`: stop what is being done and tear down."""


def _stop(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the teardown itself must not be interrupted
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise Stop()


class Worker:
    def __init__(self, base: Path, settings: Settings):
        self.base = base
        self.settings = settings
        self.job = json.loads((base / "job.json").read_text(encoding="utf-8"))
        self.deployed: dict[int, str] = {}

    def phase(self, text: str) -> None:
        with open(self.base / "phases", "a", encoding="utf-8") as fh:
            fh.write(text + "\n")
        print(f"{time.strftime('%H:%M:%S')} {text}", file=sys.stderr, flush=True)  # the worker's log

    def _relative(self, message: str) -> str:
        """Error messages name the submission's files as the learner knows them (lab01/x.json), not our copy."""
        return message.replace(f"{self.settings.workspace}/", "")

    def numbers(self) -> list[int]:
        if self.job.get("labs"):
            return sorted(get_lab(n).number for n in self.job["labs"])
        known = {lab.key: lab.number for lab in all_labs()}
        if self.job.get("all"):
            return sorted(known.values())
        return sorted(n for key, n in known.items() if (self.settings.workspace / key).is_dir())

    def run(self) -> dict:
        numbers = self.numbers()
        engine = get_engine(self.settings)
        labs: dict[str, dict] = {}
        reports: list[LabReport] = []
        provenance = {
            "submission": self.job["id"],
            "source": self.job["source"],
            "labs": labs,
            "files": self.job.get("files", {}),
        }
        info = service.run_info(self.settings)
        failure = None
        if numbers:
            self.phase("starting a fresh environment")
            try:
                engine.up()
                info = service.run_info(self.settings)
            except LabError as exc:
                failure = f"The grading environment did not start: {exc.message}"
        for number in numbers:
            lab = get_lab(number)
            if failure:
                entry, report = {"status": "error", "reason": failure, "deployed_from": {}}, None
            else:
                entry, report = self.grade_lab(number)
            labs[str(number)] = entry
            reports.append(report or _unjudged(lab, entry["reason"]))
        info = replace(info, graded_state=GRADED_FRESH, provenance=provenance)
        data = machine.to_json(reports, info)
        data["grade"] = _overall(labs, numbers)
        return data

    def grade_lab(self, number: int) -> tuple[dict, LabReport | None]:
        lab = get_lab(number)
        entry: dict = {"status": None, "reason": None, "deployed_from": {}}
        folder = self.settings.workspace / lab.key
        if not folder.is_dir():
            entry.update(status="missing", reason=f"The submission has no {lab.key}/ folder.")
            return entry, None
        try:
            for req in _prerequisites(lab):
                if req not in self.deployed:
                    self.deployed[req] = self.deploy_prerequisite(req)
                entry["deployed_from"][str(req)] = self.deployed[req]
            self.phase(f"deploying lab {number}")
            self.deployed.pop(number, None)
            service.deploy(self.settings, number, source=folder)
        except LabError as exc:
            entry.update(status="deploy-error", reason=f"Deploy failed: {self._relative(exc.message)}")
            return entry, None
        except Exception as exc:  # e.g. an AWS error the lab's deploy code did not name: still the learner's deploy
            traceback.print_exc()
            entry.update(status="deploy-error", reason=f"Deploy failed: {type(exc).__name__}: {self._relative(str(exc))}")
            return entry, None
        self.deployed[number] = LEARNER
        entry["deployed_from"][str(number)] = LEARNER
        self.phase(f"checking lab {number}")
        report = service.check(self.settings, number)
        report.deployed_from = service.WORKSPACE
        entry["status"] = "passed" if report.ok else "failed"
        if not report.ok:
            entry["reason"] = f"{report.failed} of {len(report.outcomes)} checks failed."
        return entry, report

    def deploy_prerequisite(self, number: int) -> str:
        lab = get_lab(number)
        folder = self.settings.workspace / lab.key
        if folder.is_dir():
            self.phase(f"deploying lab {number} (a prerequisite) from the submission")
            try:
                service.deploy(self.settings, number, source=folder)
                return LEARNER
            except Exception as exc:  # LabError, or an error the lab's deploy code did not name
                message = exc.message if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
                why = f"the submission's lab {number} did not deploy: {self._relative(message)}"
        else:
            why = f"the submission has no {lab.key}/"
        self.phase(f"deploying lab {number} (a prerequisite) from the reference solution")
        service.deploy(self.settings, number, source=lab.solution_dir)
        return f"{REFERENCE} ({why})"


def _prerequisites(lab) -> list[int]:
    """Every lab `lab` builds on, transitively, each before the labs that build on it."""
    order: list[int] = []
    for number in lab.requires:
        for n in [*_prerequisites(get_lab(number)), get_lab(number).number]:
            if n not in order:
                order.append(n)
    return order


def _unjudged(lab, reason: str) -> LabReport:
    """A lab whose checks could not run: each counts as failed, with the reason."""
    checks = load_checks(lab.checks_file(paths.checks_dir()))
    report = LabReport(lab=lab.number, title=lab.title)
    report.outcomes = [Outcome(c.id, c.title, c.points, FAIL, f"Not graded: {reason}", None, None, c.hint, c.more, 0.0)
                       for c in checks]
    return report


RANK = ("error", "deploy-error", "missing", "failed", "passed")


def _overall(labs: dict[str, dict], numbers: list[int]) -> dict:
    if not numbers:
        return {"status": "missing", "reason": "The submission has no labNN/ folder of a lab this kit has."}
    worst = min(labs.values(), key=lambda e: RANK.index(e["status"]))
    return {"status": worst["status"], "reason": worst["reason"]}


def main(argv: list[str]) -> int:
    base = Path(argv[0])
    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    settings = Settings.from_env()
    worker = Worker(base, settings)
    began = time.perf_counter()
    try:
        data = worker.run()
        data["grade"]["seconds"] = round(time.perf_counter() - began, 1)
        tmp = base / "result.json.tmp"
        tmp.write_text(json.dumps(data, indent=2), encoding="utf-8")
        tmp.replace(base / "result.json")
        return 0
    except Stop:
        return 130
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        worker.phase("tearing down")
        get_engine(settings).down(purge=True)
        worker.phase("done")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
