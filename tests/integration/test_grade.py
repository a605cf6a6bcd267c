"""`securecart-lab grade` on the real engine: each submission in a fresh environment of its own, in parallel,
into a gradebook; archives; labs built on the reference solution; signed reports; Ctrl-C leaves nothing behind."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from securecart_lab.grading.runner import processes_of
from securecart_lab.ports import port_owner

from emulator_fixture import ctrl_c_reaches_it

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
COURSE = ROOT / "tests" / "fixtures" / "course"
LAB1 = ROOT / "labs" / "01-order-workflow"


@pytest.fixture
def instructor(isolated_settings, monkeypatch):
    """The instructor's own settings: a private home and ports nobody listens on; grading must not touch them.
    TMPDIR is this test's own, so what a grade leaves there is this test's (other runs may grade at the same time)."""
    import tempfile

    monkeypatch.setenv("SECURECART_TIME_SCALE", "0.1")
    monkeypatch.delenv("SECURECART_GRADING_KEY", raising=False)
    tmp = Path(tempfile.mkdtemp(prefix="securecart-test-grade-", dir="/tmp"))  # traversable: see conftest
    tmp.chmod(0o755)
    monkeypatch.setenv("TMPDIR", str(tmp))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))
    yield isolated_settings
    shutil.rmtree(tmp, ignore_errors=True)


def _rows(out):
    return {r["id"]: r for r in csv.DictReader((out / "gradebook.csv").open())}


def _grade_roots():
    import tempfile

    return set(Path(tempfile.gettempdir()).glob("securecart-grade-*"))


def test_a_class_of_lab_1_submissions(cli, instructor, tmp_path):
    """Real lab 1: the reference solution, the starter and a malformed file, two at a time."""
    klass = tmp_path / "class"
    shutil.copytree(LAB1 / "solution", klass / "good" / "lab01")
    shutil.copytree(LAB1 / "starter", klass / "starter" / "lab01")
    shutil.copytree(LAB1 / "solution", klass / "broken" / "lab01")
    (klass / "broken" / "lab01" / "rules.json").write_text('[\n  {"Name": "x",,}\n]')
    out = tmp_path / "grades"

    result = cli("grade", str(klass), "--lab", "1", "--jobs", "2", "--out", str(out), "--sign")

    assert result.exit_code == 1, result.output
    rows = _rows(out)
    assert set(rows) == {"good", "starter", "broken"}
    good, starter, broken = rows["good"], rows["starter"], rows["broken"]
    assert good["status"] == "passed" and good["lab01_earned"] == good["lab01_possible"] == good["total_possible"]
    possible = int(good["lab01_possible"])
    assert possible > 0 and starter["lab01_possible"] == broken["lab01_possible"] == str(possible)
    assert starter["status"] == "failed" and 0 <= int(starter["lab01_earned"]) < possible
    assert "checks failed" in starter["reason"]
    assert broken["status"] == "deploy-error" and broken["lab01_earned"] == "0"
    assert broken["reason"].startswith("Deploy failed: lab01/rules.json:2"), broken["reason"]
    assert all(float(r["seconds"]) > 0 for r in rows.values())

    report = json.loads((out / "reports" / "good.json").read_text())
    run = report["run"]
    assert run["graded_state"] == "deployed from the learner's files in a fresh environment"
    assert run["engine"] == "local" and run["time_scale"] == 0.1 and run["kit_version"]
    assert run["provenance"]["labs"]["1"]["deployed_from"] == {"1": "learner's files"}
    assert set(run["provenance"]["files"]) == {f"lab01/{p.name}" for p in (LAB1 / "solution").iterdir()}
    assert report["signature"]["algorithm"] == "HMAC-SHA256"
    suite = ET.parse(out / "reports" / "starter.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["graded_state"].startswith("deployed from the learner's files") and props["submission"] == "starter"
    assert int(suite.get("failures")) > 0
    assert ET.parse(out / "reports" / "broken.xml").getroot().get("failures") == str(
        len(json.loads((out / "reports" / "broken.json").read_text())["labs"][0]["checks"]))

    book = json.loads((out / "gradebook.json").read_text())
    failed_checks = {c["check"]: c["learners"] for c in book["summary"]["most_failed_checks"]}
    assert failed_checks and set(failed_checks.values()) == {1}  # only the starter's checks ran and failed
    assert "Most-failed checks" in result.output and "Score distribution" in result.output

    # Signed reports verify; an edited one does not.
    assert cli("verify", str(out / "reports" / "good.json")).exit_code == 0
    tampered = out / "reports" / "starter.json"
    tampered.write_text(tampered.read_text().replace('"status": "fail"', '"status": "pass"', 1))
    result = cli("verify", str(tampered))
    assert result.exit_code == 1 and "changed after it was signed" in result.output

    # Nothing ran on the instructor's ports, nothing of the grade is left, their progress is untouched.
    assert port_owner(instructor.emulator_port) is None and port_owner(instructor.pg_port) is None
    assert not (instructor.home / "state.json").exists()
    assert _grade_roots() == set()


def test_a_fixture_class_in_one_grade_run(cli, instructor, tmp_path, monkeypatch):
    """Issue 12's fixture class, graded in one run of the fixture course: a correct zip, a folder with only lab 2
    (lab 1 from the reference solution), a traversal tar, valid JSON that the deploy fails on, broken JSON, a
    partially correct submission; the signed reports verify and a tampered one is rejected. (A `solve`-deployed
    environment reported as such: tests/integration/test_cli_flow.py, which checks one after solve.)"""
    monkeypatch.setenv("SECURECART_CONTENT", str(COURSE))
    klass = tmp_path / "class"
    klass.mkdir()
    with zipfile.ZipFile(klass / "alice.zip", "w") as zf:
        zf.writestr("alice/lab01/queue.json", (COURSE / "labs" / "01-queue" / "solution" / "queue.json").read_text())
    bob = klass / "bob" / "lab02"
    bob.mkdir(parents=True)
    (bob / "tags.json").write_text('{"team": "fulfilment"}')
    import tarfile, io

    with tarfile.open(klass / "mallory.tar.gz", "w:gz") as tf:
        info = tarfile.TarInfo("../../escaped.json")
        info.size = 2
        tf.addfile(info, io.BytesIO(b"{}"))
    dave = klass / "dave" / "lab01"
    dave.mkdir(parents=True)
    (dave / "queue.json").write_text('{"VisibilityTimeout": "forever"}')  # valid JSON; SQS refuses it
    (klass / "dave" / "lab02").mkdir()
    (klass / "dave" / "lab02" / "tags.json").write_text('{"team": "fulfilment"}')
    (klass / "erin" / "lab01").mkdir(parents=True)
    (klass / "erin" / "lab01" / "queue.json").write_text('{\n  "VisibilityTimeout": "60",\n}')  # broken JSON
    (klass / "frank" / "lab01").mkdir(parents=True)
    (klass / "frank" / "lab01" / "queue.json").write_text('{"VisibilityTimeout": "30"}')  # the queue, wrong timeout
    out = tmp_path / "grades"

    result = cli("grade", str(klass), "--jobs", "3", "--out", str(out), "--sign")

    rows = _rows(out)
    assert set(rows) == {"alice", "bob", "mallory", "dave", "erin", "frank"}, rows
    erin, frank = rows["erin"], rows["frank"]
    assert erin["status"] == "deploy-error" and (erin["lab01_earned"], erin["lab01_possible"]) == ("0", "20")
    assert erin["reason"].startswith("Deploy failed: lab01/queue.json:3: "), erin["reason"]
    # Partially correct: the queue exists (5) and the RDS-only check passes (5), the timeout (10) does not.
    assert frank["status"] == "failed" and (frank["lab01_earned"], frank["lab01_possible"]) == ("10", "20"), frank
    assert (frank["total_earned"], frank["total_possible"]) == ("10", "20")
    assert frank["reason"] == "1 of 3 checks failed.", frank["reason"]
    frank_checks = {c["id"]: c["status"] for c in json.loads((out / "reports" / "frank.json").read_text())["labs"][0]["checks"]}
    assert frank_checks == {"queue-exists": "pass", "timeout": "fail", "needs-rds": "pass"}
    book = json.loads((out / "gradebook.json").read_text())
    # What to re-teach: the checks learners' deployed work failed (a deploy error says nothing about a check).
    assert book["summary"]["most_failed_checks"] == [{"check": "lab01/timeout", "learners": 1}], book["summary"]
    assert book["summary"]["by_status"] == {"passed": 2, "deploy-error": 2, "failed": 1, "error": 1}

    # Every learner's signed report verifies; one edited to raise the score is rejected.
    for learner in ("alice", "frank"):
        assert cli("verify", str(out / "reports" / f"{learner}.json")).exit_code == 0
    tampered = out / "reports" / "frank.json"
    tampered.write_text(tampered.read_text().replace('"earned": 10', '"earned": 20'))
    result_verify = cli("verify", str(tampered))
    assert result_verify.exit_code == 1 and "changed after it was signed" in result_verify.output
    assert cli("verify", str(out / "gradebook.json")).exit_code == 0

    assert rows["alice"]["status"] == "passed" and rows["alice"]["lab01_earned"] == "20", rows
    assert rows["alice"]["lab02_earned"] == ""  # alice's submission has no lab 2: not graded on it
    assert rows["bob"]["status"] == "passed" and rows["bob"]["lab02_earned"] == "5"
    bob_run = json.loads((out / "reports" / "bob.json").read_text())["run"]
    assert bob_run["provenance"]["labs"]["2"]["deployed_from"] == {
        "1": "reference solution (the submission has no lab01/)", "2": "learner's files"}
    assert rows["mallory"]["status"] == "error" and "refused" in rows["mallory"]["reason"]
    assert rows["dave"]["status"] == "deploy-error" and rows["dave"]["reason"].startswith("Deploy failed: "), rows["dave"]
    assert rows["dave"]["lab01_earned"] == "0" and rows["dave"]["lab01_possible"] == "20"
    # dave's lab 2 builds on lab 1, which did not deploy: it is graded on the reference solution's lab 1, and says so.
    assert rows["dave"]["lab02_earned"] == "5"
    dave_labs = json.loads((out / "reports" / "dave.json").read_text())["run"]["provenance"]["labs"]
    assert dave_labs["2"]["status"] == "passed"
    assert dave_labs["2"]["deployed_from"]["1"].startswith("reference solution (the submission's lab 1 did not deploy: ")
    assert not (tmp_path / "escaped.json").exists() and not Path("/tmp/escaped.json").exists()
    assert result.exit_code == 1


def test_ctrl_c_stops_every_environment(instructor, tmp_path):
    klass = tmp_path / "class"
    for name in ("ann", "ben"):
        folder = klass / name / "lab01"
        folder.mkdir(parents=True)
        (folder / "queue.json").write_text('{"VisibilityTimeout": "60"}')
    env = {**os.environ, "SECURECART_CONTENT": str(COURSE)}
    assert _grade_roots() == set()
    workers_before = set(_lambda_workers())
    proc = subprocess.Popen([sys.executable, "-m", "securecart_lab", "grade", str(klass), "--jobs", "2",
                             "--out", str(tmp_path / "grades")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_reaches_it)
    try:
        root = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            new = _grade_roots()
            if new:
                root = new.pop()
                if len([p for p in processes_of(root) if _is_server(p)]) >= 2:  # an emulator and a PostgreSQL
                    break
            time.sleep(0.1)
        assert root is not None and proc.poll() is None, "grading never started its environments"
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, (stdout, stderr)
    assert "Interrupted." in stderr
    assert processes_of(root) == []
    assert not root.exists()
    assert set(_lambda_workers()) <= workers_before
    statuses = {r["status"] for r in _rows(tmp_path / "grades").values()}
    assert "interrupted" in statuses


def _is_server(pid: int) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"securecart_lab.emulator" in cmd or b"postgres" in cmd


def _lambda_workers() -> list[int]:
    script = str(ROOT / "securecart_lab" / "emulator" / "lambda_worker.py").encode()
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if script in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            continue
    return found


def test_the_command_the_github_workflow_runs(instructor, tmp_path):
    """What a learner repository's job runs, in such a repository: exit code, reports, the job summary."""
    import shlex

    import yaml

    workflow = yaml.safe_load((ROOT / "securecart_lab" / "grading" / "github-workflow.yml").read_text())
    command = next(s["run"] for s in workflow["jobs"]["grade"]["steps"] if "securecart-lab grade" in s.get("run", ""))
    repo = tmp_path / "learner-repo"
    (repo / ".git").mkdir(parents=True)
    (repo / "securecart-workspace" / "lab01").mkdir(parents=True)
    (repo / "securecart-workspace" / "lab01" / "queue.json").write_text('{"VisibilityTimeout": "60"}')
    env = {**os.environ, "SECURECART_CONTENT": str(COURSE), "LAB": "1"}
    # As the runner's shell expands it, without the signing secret (a learner's fork has none).
    command = command.replace('"$LAB"', "1").replace("${SECURECART_GRADING_KEY:+--sign}", "")
    argv = [sys.executable, "-m", "securecart_lab", *shlex.split(command)[1:]]
    done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    summary = (repo / "securecart-grades" / "summary.md").read_text()
    assert "| learner-repo | 20/20 | 20/20 | passed |" in summary
    assert (repo / "securecart-grades" / "reports" / "learner-repo.xml").exists()
