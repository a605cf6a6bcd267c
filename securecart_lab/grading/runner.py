"""Grade submissions, each in a fresh environment of its own, up to J at once, into a gradebook.

Each submission is graded by a child process (`securecart_lab.grading.worker`) with its own SECURECART_HOME,
workspace copy and free ports, so it starts its own emulator and PostgreSQL and never sees the instructor's.
Ctrl-C (or SIGTERM) stops every child; each tears its environment down, and whatever a child leaves behind
is stopped here by its home, so nothing of a grade outlives it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from securecart_lab.checking import Outcome
from securecart_lab.config import Settings
from securecart_lab.errors import LabError
from securecart_lab.grading import submissions
from securecart_lab.grading.submissions import Submission
from securecart_lab.ports import free_port
from securecart_lab.reporting import LabReport, RunInfo, machine

# Measured for one lab-1 environment at its peak (2 cores, 24 GB): emulator ~280 MB, PostgreSQL ~40 MB,
# six warm Lambda workers ~50 MB each, the grading process ~140 MB; benchmarks/grade.py saw 2.8-2.9 GB for 4 at once.
ENV_MB = 800
# A grade mostly waits (engine start-up, Step Functions waits and retries, teardown): on 2 cores, 4 at once graded
# 4.4 submissions/min against 3.8 for 2 and 2.3 for 1 (benchmarks/grade.py, 4 copies; 8 copies on a machine busy
# with other work: 2.6, 1.6, 1.6), so two per core.
PER_CORE = 2
STOP_SECONDS = 45  # how long a child may take to tear down after SIGTERM before it is killed


def default_jobs() -> int:
    """Two environments per core, fewer when 75% of the available memory would not hold them."""
    cores = os.cpu_count() or 1
    by_memory = max(1, int(_available_mb() * 0.75) // ENV_MB)
    return max(1, min(PER_CORE * cores, by_memory))


def _available_mb() -> int:
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    return ENV_MB * 2


@dataclass
class Row:
    """One learner's line in the gradebook."""

    id: str
    source: str
    status: str  # passed | failed | deploy-error | missing | error | interrupted
    reason: str | None = None
    seconds: float = 0.0
    labs: dict[int, dict] = field(default_factory=dict)  # number -> {earned, points, status, reason}
    failed_checks: list[str] = field(default_factory=list)  # "lab01/happy-path", for checks that ran
    report: dict | None = None  # the per-learner report (check's JSON format)

    @property
    def earned(self) -> int:
        return sum(lab["earned"] for lab in self.labs.values())

    @property
    def points(self) -> int:
        return sum(lab["points"] for lab in self.labs.values())


Event = Callable[[str, str, str], None]  # (kind: start|phase|done, submission id, text)


class Grader:
    def __init__(self, settings: Settings, subs: list[Submission], labs: list[int] | None, all_labs: bool,
                 jobs: int, on_event: Event | None = None, logs_dir: Path | None = None):
        if settings.engine != "local":
            raise LabError(f"grade runs each submission on its own local engine; --engine {settings.engine} "
                           "cannot give every submission a fresh environment.", "Run it with --engine local.")
        self.settings = settings
        self.subs = subs
        self.labs = labs
        self.all_labs = all_labs
        self.jobs = max(1, jobs)
        self.on_event = on_event or (lambda kind, sub_id, text: None)
        self.logs_dir = logs_dir  # each grading process's log is kept there, to read when a grade looks wrong
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._ports: set[int] = set()
        self._children: dict[str, subprocess.Popen] = {}
        self.rows: list[Row] = []
        # In the temporary folder (TMPDIR), not under the instructor's home: nothing of theirs is in reach.
        # World-traversable because, run as root, PostgreSQL runs as an unprivileged user that must reach its data.
        self.root = Path(tempfile.mkdtemp(prefix="securecart-grade-"))
        self.root.chmod(0o755)

    # -- the pool ----------------------------------------------------------------
    def run(self) -> list[Row]:
        """Grade every submission; on Ctrl-C, stop, clean up, and raise KeyboardInterrupt with `self.rows` set."""
        previous = signal.signal(signal.SIGTERM, _as_interrupt) if threading.current_thread() is threading.main_thread() else None
        pool = ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="grade")
        futures = {pool.submit(self._grade, i, sub): sub for i, sub in enumerate(self.subs)}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                self.rows += [f.result() for f in done]
        except KeyboardInterrupt:
            self._interrupt(pool, futures)
            raise
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            shutil.rmtree(self.root, ignore_errors=True)
        return self.rows

    def _interrupt(self, pool, futures) -> None:
        self.stopping.set()
        with self._lock:
            children = list(self._children.values())
        for child in children:
            _signal(child.pid, signal.SIGTERM)
        graded = {row.id for row in self.rows}
        while True:
            try:
                for future in futures:
                    if not future.cancelled():
                        try:
                            row = future.result()
                        except Exception:
                            continue
                        if row.id not in graded:
                            self.rows.append(row)
                            graded.add(row.id)
                break
            except KeyboardInterrupt:  # a second Ctrl-C: no more waiting for teardowns
                with self._lock:
                    for child in self._children.values():
                        _signal(-child.pid, signal.SIGKILL)
        for sub in self.subs:
            if sub.id not in graded:
                self.rows.append(Row(sub.id, str(sub.path), "interrupted", "Grading was interrupted (Ctrl-C)."))

    def _port(self) -> int:
        with self._lock:
            port = free_port(self.settings.host)
            while port in self._ports:
                port = free_port(self.settings.host)
            self._ports.add(port)
            return port

    # -- one submission ------------------------------------------------------------
    def _grade(self, index: int, sub: Submission) -> Row:
        began = time.perf_counter()
        if self.stopping.is_set():
            return Row(sub.id, str(sub.path), "interrupted", "Grading was interrupted (Ctrl-C).")
        self.on_event("start", sub.id, "preparing")
        base = self.root / f"{index:04d}-{sub.id}"
        base.mkdir()
        child_settings = replace(self.settings, home=base / "home", workspace=base / "workspace",
                                 emulator_port=self._port(), pg_port=self._port())
        self.on_event("phase", sub.id, "copying its files")
        try:
            files = submissions.prepare(sub, base, child_settings.workspace)
            row = self._run_child(sub, base, child_settings, files)
        except LabError as exc:
            row = Row(sub.id, str(sub.path), "error", exc.message)
        except Exception as exc:  # one submission's trouble never stops the others
            row = Row(sub.id, str(sub.path), "error", f"{type(exc).__name__}: {exc}")
        finally:
            cleanup(child_settings)
        row.seconds = round(time.perf_counter() - began, 1)
        self.on_event("done", sub.id, row.status)
        return row

    def _run_child(self, sub: Submission, base: Path, settings: Settings, files: dict[str, str]) -> Row:
        job = {"id": sub.id, "source": str(sub.path), "labs": self.labs, "all": self.all_labs, "files": files}
        (base / "job.json").write_text(json.dumps(job), encoding="utf-8")
        env = {**os.environ, **settings.child_env(), "SECURECART_WORKSPACE": str(settings.workspace)}
        env.pop("SECURECART_GRADING_KEY", None)  # the signing key never reaches a submission's environment
        package_parent = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_parent, env.get("PYTHONPATH")) if p)
        log_path = base / "worker.log"
        with self._lock:
            if self.stopping.is_set():
                return Row(sub.id, str(sub.path), "interrupted", "Grading was interrupted (Ctrl-C).")
            with open(log_path, "wb") as log:
                child = subprocess.Popen([sys.executable, "-m", "securecart_lab.grading.worker", str(base)],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         cwd=base, start_new_session=True)
            self._children[sub.id] = child
        try:
            self._follow(sub, base, child)
        finally:
            with self._lock:
                self._children.pop(sub.id, None)
            if self.logs_dir is not None:
                self.logs_dir.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(log_path, self.logs_dir / f"{sub.id}.log")
        result = base / "result.json"
        if self.stopping.is_set() and not result.exists():
            return Row(sub.id, str(sub.path), "interrupted", "Grading was interrupted (Ctrl-C).")
        if not result.exists():
            tail = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
            return Row(sub.id, str(sub.path), "error",
                       f"The grading process exited with code {child.returncode}: {tail[-1] if tail else 'no output'}")
        return row_from_report(sub, json.loads(result.read_text(encoding="utf-8")))

    def _follow(self, sub: Submission, base: Path, child: subprocess.Popen) -> None:
        """Relay the child's progress lines until it exits; after a stop, kill it if it lingers."""
        phases = base / "phases"
        seen = 0
        stop_deadline = None
        while child.poll() is None:
            if self.stopping.is_set() and stop_deadline is None:
                stop_deadline = time.monotonic() + STOP_SECONDS
            if stop_deadline is not None and time.monotonic() > stop_deadline:
                _signal(-child.pid, signal.SIGKILL)
            if phases.exists():
                lines = phases.read_text(encoding="utf-8", errors="replace").splitlines()
                for line in lines[seen:]:
                    self.on_event("phase", sub.id, line)
                seen = len(lines)
            time.sleep(0.2)


def row_from_report(sub: Submission, data: dict) -> Row:
    grade = data["grade"]
    row = Row(sub.id, str(sub.path), grade["status"], grade.get("reason"), report=data)
    statuses = data["run"]["provenance"].get("labs", {})
    for lab in data["labs"]:
        entry = statuses.get(str(lab["lab"]), {})
        row.labs[lab["lab"]] = {"earned": lab["earned"], "points": lab["points"],
                                "status": entry.get("status"), "reason": entry.get("reason")}
        if entry.get("status") in ("passed", "failed"):
            row.failed_checks += [f"lab{lab['lab']:02d}/{c['id']}" for c in lab["checks"] if c["status"] == "fail"]
    return row


def reports_of(data: dict) -> tuple[list[LabReport], RunInfo]:
    """The LabReports and RunInfo a per-learner JSON report was made from (to write its JUnit twin)."""
    run = dict(data["run"])
    run["simulated"] = tuple(run.get("simulated", ()))
    info = RunInfo(**run)
    names = [f for f in Outcome.__dataclass_fields__ if f != "traceback"]
    reports = [LabReport(lab["lab"], lab["title"], [Outcome(**{n: c.get(n) for n in names}) for c in lab["checks"]],
                         deployed_from=lab.get("deployed_from")) for lab in data["labs"]]
    return reports, info


def write_learner_reports(out: Path, row: Row) -> None:
    if row.report is None:
        return
    reports, info = reports_of(row.report)
    machine.write_json(out / "reports" / f"{row.id}.json", reports, info)
    machine.write_junit(out / "reports" / f"{row.id}.xml", reports, info)


# -- teardown ----------------------------------------------------------------------
def _as_interrupt(signum, frame):
    raise KeyboardInterrupt()


def _signal(pid: int, sig: int) -> None:
    try:
        if pid < 0:
            os.killpg(-pid, sig)
        else:
            os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def cleanup(settings: Settings) -> None:
    """Stop whatever a grading environment left running: its engine, then any process still naming its home."""
    from securecart_lab.engines.local import LocalEngine

    try:
        LocalEngine(settings).down(purge=True)
    except Exception:  # the sweep below still runs: nothing of a grade may outlive it
        pass
    for pid in processes_of(settings.home):
        _signal(pid, signal.SIGKILL)


def processes_of(home: Path) -> list[int]:
    """Processes whose command line or environment names `home` (emulator, PostgreSQL servers, app instances)."""
    needle = str(home).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        for name in ("cmdline", "environ"):
            try:
                with open(f"/proc/{entry}/{name}", "rb") as fh:
                    if needle in fh.read():
                        found.append(int(entry))
                        break
            except OSError:
                continue
    return found
