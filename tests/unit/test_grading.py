"""grade's parts that need no engine: finding submissions, unpacking them safely, the gradebook, signing."""

import csv
import io
import json
import os
import tarfile
import time
import zipfile

import pytest

from securecart_lab.errors import LabError
from securecart_lab.grading import gradebook, runner, signing, submissions
from securecart_lab.grading.runner import Row
from securecart_lab.grading.submissions import Submission, SubmissionError


def _workspace(folder, files=None):
    for rel, text in (files or {"lab01/queue.json": '{"VisibilityTimeout": "60"}'}).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


# -- finding submissions ---------------------------------------------------------------
def test_a_workspace_folder_is_one_submission_and_a_class_folder_holds_many(tmp_path):
    alice = _workspace(tmp_path / "class" / "alice")
    _workspace(tmp_path / "class" / "bob" / "securecart-workspace")  # a checkout holding a workspace
    (tmp_path / "class" / "carol.zip").write_bytes(b"")
    (tmp_path / "class" / "notes.txt").write_text("not a submission")
    (tmp_path / "class" / ".git").mkdir()
    assert submissions.discover([alice]) == [Submission("alice", alice)]
    found = submissions.discover([tmp_path / "class"])
    assert [s.id for s in found] == ["alice", "bob", "carol"]
    assert submissions.workspace_root(tmp_path / "class" / "bob") == tmp_path / "class" / "bob" / "securecart-workspace"


def test_same_names_get_unique_ids(tmp_path):
    a = _workspace(tmp_path / "a" / "sam")
    b = _workspace(tmp_path / "b" / "sam")
    assert [s.id for s in submissions.discover([a, b])] == ["sam", "sam-2"]


def test_a_path_that_is_nothing_gradable_is_an_error(tmp_path):
    with pytest.raises(LabError, match="No submission at"):
        submissions.discover([tmp_path / "nope"])
    (tmp_path / "empty" / "just-a-folder").mkdir(parents=True)
    with pytest.raises(LabError, match="holds no submission"):
        submissions.discover([tmp_path / "empty"])
    _workspace(tmp_path / "empty" / "alice")  # now a class: the folder without labs is a learner too
    assert [s.id for s in submissions.discover([tmp_path / "empty"])] == ["alice", "just-a-folder"]
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(LabError, match="is not a submission"):
        submissions.discover([tmp_path / "x.txt"])


def test_copy_takes_lab_files_only_with_their_hashes(tmp_path):
    src = _workspace(tmp_path / "alice", {
        "lab01/queue.json": "{}",
        "lab01/.backups/20260101/queue.json": "old",
        "lab01/solution/queue.json": "the reference",
        "notes.md": "not graded",
    })
    (src / ".git").mkdir()
    hashes = submissions.copy_workspace(src, tmp_path / "ws")
    assert list(hashes) == ["lab01/queue.json"]
    assert hashes["lab01/queue.json"] == "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
    assert sorted(p.relative_to(tmp_path / "ws").as_posix() for p in (tmp_path / "ws").rglob("*") if p.is_file()) \
        == ["lab01/queue.json"]


def test_a_link_leaving_the_submission_is_refused_and_one_inside_is_followed(tmp_path):
    src = _workspace(tmp_path / "alice", {"lab01/real.json": "{}"})
    (src / "lab01" / "queue.json").symlink_to(src / "lab01" / "real.json")
    assert "lab01/queue.json" in submissions.copy_workspace(src, tmp_path / "ws")
    secret = tmp_path / "secret.txt"
    secret.write_text("instructor's")
    (src / "lab01" / "leak.json").symlink_to(secret)
    with pytest.raises(SubmissionError, match="links outside the submission"):
        submissions.copy_workspace(src, tmp_path / "ws2")


# -- archives ------------------------------------------------------------------------
def _zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _tar(path, members, links=()):
    with tarfile.open(path, "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
        for name, target, kind in links:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = target
            tf.addfile(info)
    return path


def test_archives_of_a_workspace_or_of_a_folder_holding_one_unpack(tmp_path):
    flat = _zip(tmp_path / "alice.zip", {"lab01/queue.json": b"{}"})
    nested = _tar(tmp_path / "bob.tar.gz", {"bob/securecart-workspace/lab01/queue.json": b"{}"})
    for archive in (flat, nested):
        sub = submissions.discover([archive])[0]
        hashes = submissions.prepare(sub, tmp_path / f"scratch-{sub.id}", tmp_path / f"ws-{sub.id}")
        assert list(hashes) == ["lab01/queue.json"], archive
    assert [s.id for s in submissions.discover([flat, nested])] == ["alice", "bob"]


@pytest.mark.parametrize("name", ["../evil.json", "lab01/../../evil.json", "/tmp/evil.json"])
def test_archive_members_leaving_the_folder_are_refused(tmp_path, name):
    for archive in (_zip(tmp_path / "a.zip", {name: b"x"}), _tar(tmp_path / "a.tar.gz", {name: b"x"})):
        with pytest.raises(SubmissionError, match="refused"):
            submissions.extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.json").exists() and not os.path.exists("/tmp/evil.json")


def test_archive_links_leaving_the_folder_are_refused(tmp_path):
    for target, kind in (("/etc/passwd", tarfile.SYMTYPE), ("../../outside", tarfile.SYMTYPE),
                         ("../outside", tarfile.LNKTYPE)):
        archive = _tar(tmp_path / "l.tar.gz", {"lab01/a.json": b"{}"}, [("lab01/queue.json", target, kind)])
        with pytest.raises(SubmissionError, match="leaves the extraction folder"):
            submissions.extract(archive, tmp_path / "out")
    inside = _tar(tmp_path / "ok.tar.gz", {"lab01/a.json": b"{}"}, [("lab01/queue.json", "a.json", tarfile.SYMTYPE)])
    submissions.extract(inside, tmp_path / "ok")
    assert (tmp_path / "ok" / "lab01" / "queue.json").read_text() == "{}"
    info = zipfile.ZipInfo("lab01/queue.json")
    info.external_attr = (0o120777 << 16)
    with zipfile.ZipFile(tmp_path / "l.zip", "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(SubmissionError, match="is a link"):
        submissions.extract(tmp_path / "l.zip", tmp_path / "out")


def test_archives_are_bounded_in_size(tmp_path, monkeypatch):
    monkeypatch.setattr(submissions, "MAX_BYTES", 1000)
    for archive in (_zip(tmp_path / "big.zip", {"lab01/big.json": b"0" * 2000}),
                    _tar(tmp_path / "big.tar.gz", {"lab01/big.json": b"0" * 2000})):
        with pytest.raises(SubmissionError, match="more than"):
            submissions.extract(archive, tmp_path / "out")


def test_a_damaged_archive_is_an_error_not_a_crash(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    with pytest.raises(SubmissionError, match="not a readable zip"):
        submissions.extract(tmp_path / "bad.zip", tmp_path / "out")


# -- gradebook -----------------------------------------------------------------------
def _rows():
    return [
        Row("bob", "b", "failed", "1 of 3 checks failed.", 12.0, {1: {"earned": 10, "points": 20, "status": "failed"}},
            ["lab01/timeout"]),
        Row("alice", "a", "passed", None, 10.0, {1: {"earned": 20, "points": 20, "status": "passed"}}),
        Row("carol", "c", "deploy-error", "Deploy failed: lab01/queue.json:2: x", 3.0,
            {1: {"earned": 0, "points": 20, "status": "deploy-error"}}),
        Row("dave", "d", "failed", None, 9.0, {1: {"earned": 5, "points": 20, "status": "failed"}},
            ["lab01/timeout", "lab01/queue-exists"]),
    ]


def test_gradebook_csv_and_json(tmp_path):
    csv_path, json_path = gradebook.write(tmp_path, _rows(), {"graded_state": "x"})
    rows = list(csv.DictReader(csv_path.open()))
    assert [r["id"] for r in rows] == ["alice", "bob", "carol", "dave"]
    assert rows[2] == {"id": "carol", "lab01_earned": "0", "lab01_possible": "20", "total_earned": "0",
                       "total_possible": "20", "status": "deploy-error", "reason": "Deploy failed: lab01/queue.json:2: x",
                       "seconds": "3.0"}
    doc = json.loads(json_path.read_text())
    assert doc["summary"]["most_failed_checks"] == [{"check": "lab01/timeout", "learners": 2},
                                                    {"check": "lab01/queue-exists", "learners": 1}]
    assert doc["summary"]["distribution"] == {"90-100%": 1, "70-89%": 0, "50-69%": 1, "0-49%": 2}
    assert doc["summary"]["mean_percent"] == 43.8 and doc["run"] == {"graded_state": "x"}


def test_summary_markdown_for_a_ci_job_summary(tmp_path):
    path = gradebook.write_markdown(tmp_path, _rows())
    lines = path.read_text().splitlines()
    assert lines[2] == "| Learner | Lab 1 | Total | Status | Reason |"
    assert "| carol | 0/20 | 0/20 | deploy-error | Deploy failed: lab01/queue.json:2: x |" in lines
    assert lines[-1] == "Failed checks: `lab01/timeout` (2 of 4), `lab01/queue-exists` (1 of 4)"


def test_default_jobs_follows_cores_and_memory(monkeypatch):
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    monkeypatch.setattr(runner, "_available_mb", lambda: 100_000)
    assert runner.default_jobs() == 16
    monkeypatch.setattr(runner, "_available_mb", lambda: 2 * runner.ENV_MB)
    assert runner.default_jobs() == 1
    monkeypatch.setattr(runner, "_available_mb", lambda: 0)
    assert runner.default_jobs() == 1


# -- signing -------------------------------------------------------------------------
def test_signed_reports_verify_and_edits_are_caught(isolated_settings, tmp_path, monkeypatch):
    monkeypatch.delenv("SECURECART_GRADING_KEY", raising=False)
    with pytest.raises(LabError, match="No grading key"):
        signing.key(isolated_settings, create=False)
    secret = signing.key(isolated_settings)
    key_file = isolated_settings.home / "grading.key"
    assert key_file.stat().st_mode & 0o777 == 0o600 and signing.key(isolated_settings) == secret
    report = tmp_path / "r.json"
    signing.write_signed(report, {"labs": [{"earned": 10}]}, secret)
    assert signing.verify(report, secret)[0] == signing.key_id(secret)
    report.write_text(report.read_text().replace('"earned": 10', '"earned": 20'))
    with pytest.raises(LabError, match="changed after it was signed"):
        signing.verify(report, secret)
    signing.write_signed(report, {"labs": []}, b"another key")
    with pytest.raises(LabError, match="signed with another key"):
        signing.verify(report, secret)
    report.write_text("{}")
    with pytest.raises(LabError, match="is not signed"):
        signing.verify(report, secret)
    monkeypatch.setenv("SECURECART_GRADING_KEY", "shared-secret")
    assert signing.key(isolated_settings) == b"shared-secret"


# -- GitHub Actions ------------------------------------------------------------------
def _workflow(path):
    import yaml

    data = yaml.safe_load(path.read_text())
    return data, data.get("on", data.get(True))  # YAML 1.1 reads the key `on` as true


def test_the_workflow_grades_on_push_and_keeps_the_reports(cli, tmp_path):
    result = cli("grade", "--init-workflow", str(tmp_path), "--lab", "2")
    assert result.exit_code == 0, result.output
    written = tmp_path / ".github" / "workflows" / "securecart-grade.yml"
    data, triggers = _workflow(written)
    assert {"push", "workflow_dispatch", "workflow_call"} <= set(triggers)
    assert triggers["workflow_call"]["inputs"]["lab"]["default"] == "2"
    assert data["env"]["LAB"] == "${{ inputs.lab || '2' }}"
    steps = data["jobs"]["grade"]["steps"]
    uses = [s.get("uses", "") for s in steps]
    assert uses[0].startswith("actions/checkout@") and uses[1].startswith("actions/setup-python@")
    runs = [s.get("run", "") for s in steps]
    grade = next(s for s in steps if "securecart-lab grade" in s.get("run", ""))
    assert grade["run"] == 'securecart-lab grade . --lab "$LAB" --out securecart-grades ${SECURECART_GRADING_KEY:+--sign}'
    assert "if" not in grade and grade["env"]["SECURECART_GRADING_KEY"] == "${{ secrets.SECURECART_GRADING_KEY }}"
    assert any('pip install "$KIT"' in r for r in runs)
    summary = next(s for s in steps if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    assert summary["if"] == "always()" and "securecart-grades/summary.md" in summary["run"]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "always()" and upload["with"]["path"] == "securecart-grades/"
    assert steps.index(grade) < steps.index(summary) < steps.index(upload)

    # Run again: unchanged; a different file there is never overwritten.
    assert "already up to date" in cli("grade", "--init-workflow", str(tmp_path), "--lab", "2").output
    written.write_text("name: mine\n")
    result = cli("grade", "--init-workflow", str(tmp_path))
    assert result.exit_code == 1 and "already exists and differs" in result.output
    assert written.read_text() == "name: mine\n"


def test_grade_without_submissions_says_what_it_expects(cli, isolated_settings):
    result = cli("grade", "--lab", "1")
    assert result.exit_code == 1 and "Error: Which submissions?" in result.output


def test_a_slow_engine_still_counts_as_running(isolated_settings):
    """Under load (several grading environments at once) the emulator may answer its health check in over 1 s."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from securecart_lab.engines.local import LocalEngine

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(1.5)
            body = b'{"edition": "securecart-local"}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        from dataclasses import replace

        LocalEngine(replace(isolated_settings, emulator_port=server.server_address[1])).require_running()
    finally:
        server.shutdown()
        server.server_close()


# -- which labs a submission is graded on ----------------------------------------------
COURSE = __import__("pathlib").Path(__file__).resolve().parents[1] / "fixtures" / "course"


def _worker(tmp_path, settings, **job):
    from securecart_lab.grading.worker import Worker

    base = tmp_path / "base"
    base.mkdir(parents=True)
    (base / "job.json").write_text(json.dumps({"id": "sam", "source": "x", "labs": None, "all": False, **job}))
    return Worker(base, settings)


def test_labs_graded_are_the_ones_contained_asked_for_or_all(isolated_settings, tmp_path, monkeypatch):
    from securecart_lab.grading import worker as worker_module

    monkeypatch.setenv("SECURECART_CONTENT", str(COURSE))
    (isolated_settings.workspace / "lab02").mkdir(parents=True)
    assert _worker(tmp_path / "a", isolated_settings).numbers() == [2]
    assert _worker(tmp_path / "b", isolated_settings, all=True).numbers() == [1, 2]
    assert _worker(tmp_path / "c", isolated_settings, labs=[1]).numbers() == [1]
    from securecart_lab.labs.registry import get_lab

    assert worker_module._prerequisites(get_lab(2)) == [1]

    # A lab asked for but not in the submission: every check fails with the reason, before any engine is asked.
    entry, report = _worker(tmp_path / "d", isolated_settings, labs=[1]).grade_lab(1)
    assert entry == {"status": "missing", "reason": "The submission has no lab01/ folder.", "deployed_from": {}}
    unjudged = worker_module._unjudged(get_lab(1), entry["reason"])
    assert [o.status for o in unjudged.outcomes] == ["fail"] * 3 and unjudged.points == 20
    assert unjudged.outcomes[0].message == "Not graded: The submission has no lab01/ folder."
    assert worker_module._overall({"1": entry, "2": {"status": "passed", "reason": None}}, [1, 2]) == \
        {"status": "missing", "reason": "The submission has no lab01/ folder."}
