"""JSON and JUnit reports say what a grade was measured on."""

import json
import xml.etree.ElementTree as ET

from securecart_lab.checking import Outcome
from securecart_lab.reporting import LabReport, RunInfo
from securecart_lab.reporting.machine import write_json, write_junit

INFO = RunInfo("local", "securecart-local 0.1.0 (moto 5.2.5)", ("Lambda runs in local workers",), 0.1, "2026-11-24T05:00:00")


def _report():
    mk = lambda id, status, points: Outcome(id, id.title(), points, status, f"{id} message", "a" if status == "fail" else None,
                                            "b" if status == "fail" else None, f"{id} hint", "", 0.5)
    return LabReport(1, "Demo", [mk("good", "pass", 10), mk("bad", "fail", 5), mk("later", "skip", 5)])


def test_report_totals():
    r = _report()
    assert (r.passed, r.failed, r.skipped, r.earned, r.points, r.ok) == (1, 1, 1, 10, 15, False)


def test_json_report(tmp_path):
    write_json(tmp_path / "r.json", [_report()], INFO)
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["ok"] is False
    assert data["run"]["engine"] == "local" and data["run"]["simulated"] == ["Lambda runs in local workers"]
    assert data["run"]["iam"].startswith("not enforced")
    lab = data["labs"][0]
    assert (lab["earned"], lab["points"]) == (10, 15)
    assert [c["status"] for c in lab["checks"]] == ["pass", "fail", "skip"]


def test_junit_report(tmp_path):
    write_junit(tmp_path / "r.xml", [_report()], INFO)
    root = ET.parse(tmp_path / "r.xml").getroot()
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("3", "1", "1")
    suite = root.find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["engine"] == "local" and props["engine_version"].startswith("securecart-local")
    assert props["score"] == "10/15" and props["time_scale"] == "0.1"
    assert props["iam"].startswith("not enforced")
    failure = suite.find("testcase/failure")
    assert "expected: a" in failure.text and "hint: bad hint" in failure.text
    assert suite.find("testcase/skipped").get("message") == "later message"


def test_the_graded_state_says_which_labs_solve_deployed():
    from securecart_lab.reporting import LabReport, graded_state

    learner, solved = LabReport(1, "a", deployed_from="workspace"), LabReport(2, "b", deployed_from="solution")
    assert graded_state([learner]) == "checked in place"
    assert graded_state([solved]) == "deployed by solve"
    assert graded_state([learner, solved]) == "deployed by solve for lab 2; the other labs checked in place"


def test_reports_say_whether_iam_was_enforced_from_the_engine_health():
    from securecart_lab.reporting import IAM_ENFORCED, IAM_NOT_ENFORCED, IAM_OFF, iam_setting

    assert iam_setting({"iam": "enforced"}) == IAM_ENFORCED and IAM_ENFORCED.startswith("enforced")
    assert iam_setting({"iam": "off"}) == IAM_OFF and "SECURECART_IAM=off" in IAM_OFF
    assert iam_setting({}) == iam_setting(None) == IAM_NOT_ENFORCED  # LocalStack's community edition says nothing


def test_iam_setting_is_on_or_off(monkeypatch):
    import pytest

    from securecart_lab.config import Settings
    from securecart_lab.errors import LabError

    monkeypatch.delenv("SECURECART_IAM", raising=False)
    assert Settings.from_env().iam == "on" and Settings.from_env().child_env()["SECURECART_IAM"] == "on"
    monkeypatch.setenv("SECURECART_IAM", "OFF")
    assert Settings.from_env().iam == "off"
    monkeypatch.setenv("SECURECART_IAM", "sometimes")
    with pytest.raises(LabError, match="SECURECART_IAM must be on or off"):
        Settings.from_env()


def test_the_table_shows_a_long_arn_whole(capsys):
    """A found value longer than the column (an ARN) is wrapped, not cut with an ellipsis: the learner needs its end."""
    from securecart_lab.reporting import table

    arn = "arn:aws:lambda:us-east-1:123456789012:function:" + "x" * 120 + "-its-end"
    outcome = Outcome("role", "Role", 10, "fail", "Too much", "only what it uses", f"lambda:InvokeFunction on {arn}",
                      "hint", "", 0.1)
    table.render(LabReport(1, "Demo", [outcome]), INFO)
    printed = "".join(line.strip(" │┃") for line in capsys.readouterr().out.splitlines())
    assert "…" not in printed and "x" * 120 + "-its-end" in printed.replace(" ", "")


def test_verbose_shows_the_staged_hints_of_each_step_with_a_failing_check(capsys):
    from securecart_lab.reporting import table

    def outcome(check_id: str, status: str) -> Outcome:
        return Outcome(check_id, check_id, 10, status, "", None, None, "the check's hint", "", 0.1)

    report = LabReport(4, "Demo", [outcome("fraud-routing", "fail"), outcome("payment-burst", "pass")])
    table.render(report, INFO)
    assert "hints, from a nudge" not in capsys.readouterr().out  # first the check's own hint
    table.render(report, INFO, verbose=True)
    printed = capsys.readouterr().out
    assert "Step 2: Fraud detection" in printed and "1. Place one order of each kind" in printed
    assert "3. The workflow: ScoreOrder" in printed.replace("\n", " ")
    assert "Step 4" not in printed  # its checks passed
