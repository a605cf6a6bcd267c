"""The whole learner flow through the CLI, on the real engine, with a tiny fixture course
(tests/fixtures/course): start, check (fails), edit, deploy, check (passes), bad deploy, reset, solve, ci."""

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from emulator_fixture import ctrl_c_reaches_it

pytestmark = pytest.mark.integration

COURSE = Path(__file__).resolve().parents[1] / "fixtures" / "course"


@pytest.fixture
def course(engine, monkeypatch, tmp_path):
    monkeypatch.setenv("SECURECART_CONTENT", str(COURSE))
    monkeypatch.setenv("SECURECART_WORKSPACE", str(tmp_path / "ws"))
    return tmp_path / "ws" / "lab01"


def test_learner_flow(cli, course, tmp_path):
    result = cli("start", "1")
    assert result.exit_code == 0, result.output
    assert "Created" in result.output and "queue.json" in result.output
    queue_file = course / "queue.json"
    assert json.loads(queue_file.read_text()) == {"VisibilityTimeout": "30"}
    assert (course / "README.md").read_text() == (COURSE / "labs" / "01-queue" / "README.md").read_text()
    assert f"Instructions: {course / 'README.md'}" in result.output

    # The starter fails the check it should, and the exit code says so.
    result = cli("check", "1", "--json", str(tmp_path / "r.json"), "--junit", str(tmp_path / "r.xml"))
    assert result.exit_code == 1
    assert "FAIL" in result.output and "Set VisibilityTimeout to 60" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    statuses = {c["id"]: c["status"] for c in report["labs"][0]["checks"]}
    assert statuses == {"queue-exists": "pass", "timeout": "fail", "needs-rds": "pass"}
    assert report["run"]["engine"] == "local"
    assert ET.parse(tmp_path / "r.xml").getroot().get("failures") == "1"

    # The learner edits; check says the edit is not deployed yet (start deployed the starter). They deploy; start
    # again keeps their file.
    queue_file.write_text('{"VisibilityTimeout": "60"}')
    result = cli("check", "1")
    assert result.exit_code == 1 and "changed since your last deploy" in result.output
    assert cli("start", "1").exit_code == 0
    assert json.loads(queue_file.read_text()) == {"VisibilityTimeout": "60"}
    result = cli("deploy", "1")
    assert result.exit_code == 0 and "Deployed lab 1" in result.output
    result = cli("check", "1")
    assert result.exit_code == 0, result.output
    assert "changed since your last deploy" not in result.output
    assert "Score 20/20" in result.output

    # A malformed file: file and line, non-zero, and what was deployed stays deployed.
    queue_file.write_text('{\n  "VisibilityTimeout": 60,,\n}')
    result = cli("deploy", "1")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: {queue_file}:2: ")
    assert "Traceback" not in result.output
    result = cli("check", "1")
    assert result.exit_code == 0
    assert "changed since your last deploy" in result.output

    # reset backs the learner's file up before restoring the starter.
    result = cli("reset", "1")
    assert result.exit_code == 0
    backups = list((course / ".backups").glob("*/queue.json"))
    assert len(backups) == 1 and "60,," in backups[0].read_text()
    assert json.loads(queue_file.read_text()) == {"VisibilityTimeout": "30"}
    result = cli("check", "1", "--only", "timeout")
    assert result.exit_code == 1 and "changed since your last deploy" not in result.output  # reset deployed them

    # solve deploys the reference solution without touching the learner's file.
    result = cli("solve", "1")
    assert result.exit_code == 0
    assert json.loads(queue_file.read_text()) == {"VisibilityTimeout": "30"}
    assert (course / "solution" / "queue.json").exists()
    assert cli("check", "1").exit_code == 0

    status = json.loads(cli("status", "--format", "json").output)
    lab = status["labs"][0]
    assert lab["started"] and (lab["passed"], lab["total"]) == (3, 3)

    # Progress is the last full run: a run of some checks (--only) is not recorded over it.
    result = cli("check", "1", "--only", "timeout")
    assert result.exit_code == 0 and "not recorded as your progress" in " ".join(result.output.split())
    lab = json.loads(cli("status", "--format", "json").output)["labs"][0]
    assert (lab["passed"], lab["total"]) == (3, 3)


def test_unknown_check_id(cli, course):
    assert cli("start", "1").exit_code == 0
    result = cli("check", "1", "--only", "nope")
    assert result.exit_code == 1 and "Lab 1 has no check 'nope'" in result.output


def test_check_before_start_fails_every_check_with_the_command_to_run(cli, course, aws, tmp_path):
    sqs = aws("sqs")
    for url in sqs.list_queues(QueueNamePrefix="fixture-").get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)
    result = cli("check", "1", "--json", str(tmp_path / "r.json"))
    assert result.exit_code == 1
    checks = json.loads((tmp_path / "r.json").read_text())["labs"][0]["checks"]
    assert {c["status"] for c in checks} == {"fail"}
    assert all(c["message"].endswith('Run "securecart-lab start 1".') for c in checks)


def test_ci_on_a_running_engine_keeps_it_running(cli, course, engine, tmp_path):
    result = cli("ci", "--lab", "1", "--junit", str(tmp_path / "ci.xml"))
    assert result.exit_code == 0, result.output
    assert "CI passed" in result.output
    suite = ET.parse(tmp_path / "ci.xml").getroot().find("testsuite")
    assert suite.get("failures") == "0" and suite.get("tests") == "3"
    assert engine.health() is not None


def _delete_fixture_queues(aws):
    sqs = aws("sqs")
    for url in sqs.list_queues(QueueNamePrefix="fixture-").get("QueueUrls", []):
        sqs.delete_queue(QueueUrl=url)


def test_a_lab_building_on_a_missing_one_never_prompts_without_a_terminal(cli, course, aws):
    _delete_fixture_queues(aws)
    result = cli("start", "2")
    assert result.exit_code == 1
    assert "Error: Lab 2 needs lab 1's resources, and they are not deployed." in result.output
    assert "--with-prereqs" in result.output
    assert not aws("sqs").list_queues(QueueNamePrefix="fixture-queue").get("QueueUrls")


def test_with_prereqs_deploys_the_earlier_lab_solution(cli, course, aws):
    _delete_fixture_queues(aws)
    result = cli("start", "2", "--with-prereqs")
    assert result.exit_code == 0, result.output
    assert "Deployed lab 1's reference solution" in result.output
    assert cli("check", "1").exit_code == 0  # lab 1's solution is what was deployed
    assert cli("solve", "2").exit_code == 0 and cli("check", "2").exit_code == 0


def test_a_yes_at_the_prompt_deploys_the_prerequisite(settings, course, aws, monkeypatch):
    from securecart_lab.labs import service

    _delete_fixture_queues(aws)
    monkeypatch.setenv("SECURECART_CONTENT", str(COURSE))
    asked = []
    result = service.start(settings.__class__.from_env(), 2, confirm=lambda q: asked.append(q) or True)
    assert result.prerequisites == [1]
    assert "builds on lab 1 (Make a queue), which is not deployed" in asked[0]


def test_check_watch_redeploys_and_rechecks_on_save(cli, course, tmp_path):
    """Black box: the real CLI in a subprocess, watching the workspace; the learner saves a fix."""
    import os
    import signal
    import subprocess
    import sys
    import time

    assert cli("start", "1").exit_code == 0
    queue_file = course / "queue.json"
    queue_file.write_text('{"VisibilityTimeout": "30"}')
    log = tmp_path / "watch.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "securecart_lab", "check", "1", "--watch"], stdout=out,
                                stderr=subprocess.STDOUT, env={**os.environ}, start_new_session=True,
                                preexec_fn=ctrl_c_reaches_it)

    def wait_for(text, count=1, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.read_text().count(text) >= count:
                return
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not seen {count}x in:\n{log.read_text()}")

    try:
        wait_for("Watching")
        assert "Score 10/20" in log.read_text()
        queue_file.write_text('{"VisibilityTimeout": "60"}')
        wait_for("Watching", count=2)
        assert "Score 20/20" in log.read_text()
        queue_file.write_text('{"VisibilityTimeout": ')
        wait_for("Watching", count=3)
        assert f"Error: {queue_file}:1:" in log.read_text()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=10)
    assert "Traceback" not in log.read_text()


def test_instructor_grades_every_lab_with_one_junit_report(cli, course, aws, tmp_path):
    _delete_fixture_queues(aws)
    assert cli("start", "2", "--with-prereqs").exit_code == 0
    result = cli("check", "--all", "--junit", str(tmp_path / "class.xml"), "--json", str(tmp_path / "class.json"))
    assert result.exit_code == 1  # lab 2 is at its starter: not every check passes
    suites = ET.parse(tmp_path / "class.xml").getroot().findall("testsuite")
    assert [(s.get("name"), s.get("failures")) for s in suites] == [("lab01", "0"), ("lab02", "1")]
    data = json.loads((tmp_path / "class.json").read_text())
    assert [lab["lab"] for lab in data["labs"]] == [1, 2] and data["ok"] is False


def test_ci_leaves_the_learners_workspace_and_progress_alone(cli, course, tmp_path, settings):
    assert cli("start", "1").exit_code == 0
    assert cli("check", "1").exit_code == 1  # the starter: 2 of 3
    before = json.loads(cli("status", "--format", "json").output)["labs"][0]
    starter = (course / "queue.json").read_text()
    assert cli("ci", "--lab", "1", "--junit", str(tmp_path / "ci.xml")).exit_code == 0
    after = json.loads(cli("status", "--format", "json").output)["labs"][0]
    assert (after["passed"], after["total"], after["last_check"]) == (before["passed"], before["total"], before["last_check"])
    assert (course / "queue.json").read_text() == starter and not (course / "solution").exists()
    assert (settings.home / "ci-state.json").exists()


def test_progress_from_solve_is_marked_and_solution_edits_are_kept(cli, course, tmp_path, monkeypatch):
    monkeypatch.delenv("SECURECART_GRADING_KEY", raising=False)
    assert cli("start", "1").exit_code == 0
    assert cli("solve", "1").exit_code == 0
    (course / "solution" / "queue.json").write_text('{"my": "notes"}')
    result = cli("solve", "1")
    assert result.exit_code == 0 and "backed up" in result.output
    saved = list((course / ".backups").glob("*/solution/queue.json"))
    assert [p.read_text() for p in saved] == ['{"my": "notes"}']

    result = cli("check", "1", "--json", str(tmp_path / "r.json"), "--sign")
    assert result.exit_code == 0 and "reference solution" in result.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["labs"][0]["deployed_from"] == "solution"
    assert report["run"]["graded_state"] == "deployed by solve"
    lab = json.loads(cli("status", "--format", "json").output)["labs"][0]
    assert lab["deployed_from"] == "solution" and lab["checked_solution"] is True
    assert "(solve's solution)" in cli("status").output

    # The signed report a learner hands in: verify says it is intact and how it was produced; an edit is caught.
    result = cli("verify", str(tmp_path / "r.json"))
    assert result.exit_code == 0 and "signature valid" in result.output, result.output
    assert "Graded state: deployed by solve; lab 1 20/20." in result.output
    handed_in = tmp_path / "handed-in.json"
    handed_in.write_text((tmp_path / "r.json").read_text().replace('"deployed by solve"', '"checked in place"'))
    result = cli("verify", str(handed_in))
    assert result.exit_code == 1 and "changed after it was signed" in result.output
    result = cli("check", "1", "--sign")
    assert result.exit_code == 1 and "--sign signs the JSON report, and none was asked for" in result.output

    assert cli("deploy", "1").exit_code == 0  # the learner's own files again
    # An instructor who sets SECURECART_GRADING_KEY gets signed reports without --sign, verifiable with that key only.
    monkeypatch.setenv("SECURECART_GRADING_KEY", "class-of-2026")
    cli("check", "1", "--json", str(tmp_path / "r.json"))
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["labs"][0]["deployed_from"] == "workspace" and report["run"]["graded_state"] == "checked in place"
    assert report["signature"]["algorithm"] == "HMAC-SHA256"
    assert cli("verify", str(tmp_path / "r.json")).exit_code == 0
    monkeypatch.delenv("SECURECART_GRADING_KEY")
    result = cli("verify", str(tmp_path / "r.json"))
    assert result.exit_code == 1 and "signed with another key" in result.output
    assert json.loads(cli("status", "--format", "json").output)["labs"][0]["checked_solution"] is False


def test_watch_keeps_watching_after_a_non_utf8_save(cli, course, monkeypatch):
    import watchfiles

    assert cli("start", "1").exit_code == 0

    def one_bad_save(folder, watch_filter=None):
        (course / "queue.json").write_bytes(b'{"VisibilityTimeout": "\xff\xfe"}')
        yield {(watchfiles.Change.modified, str(course / "queue.json"))}
        (course / "queue.json").write_text('{"VisibilityTimeout": "60"}')
        yield {(watchfiles.Change.modified, str(course / "queue.json"))}

    monkeypatch.setattr(watchfiles, "watch", one_bad_save)
    result = cli("check", "1", "--watch")
    assert result.exit_code == 0, result.output
    assert f"Error: {course / 'queue.json'}:1: is not UTF-8 text" in result.output
    assert "Unexpected" not in result.output and "Traceback" not in result.output
    assert result.output.count("Watching") == 3 and "Score 20/20" in result.output  # the next save was checked
