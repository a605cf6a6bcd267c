"""The checks framework: a failing check fails, a passing one passes, a crashing one never passes."""

import textwrap

import pytest

from securecart_lab.checking import FAIL, PASS, SKIP, check, failed, load_checks, passed, run_check
from securecart_lab.errors import LabError


def _reason(missing):
    return f"no {', '.join(sorted(missing))}"


def _check(func, needs=()):
    return check("demo", "Demo", points=5, hint="Do the thing.", needs=needs)(func).__check__


def test_passing_check_passes_and_earns_its_points():
    outcome = run_check(_check(lambda ctx: passed("all good", actual=3)), None, set(), _reason)
    assert (outcome.status, outcome.earned, outcome.actual) == (PASS, 5, "3")


def test_failing_check_fails_with_expected_and_found():
    outcome = run_check(_check(lambda ctx: failed("wrong", expected="SUCCEEDED", actual="FAILED")), None, set(), _reason)
    assert (outcome.status, outcome.earned, outcome.expected, outcome.actual) == (FAIL, 0, "SUCCEEDED", "FAILED")
    assert outcome.hint == "Do the thing."


def test_crashing_check_fails_never_passes():
    def boom(ctx):
        raise KeyError("missing")

    outcome = run_check(_check(boom), None, set(), _reason)
    assert outcome.status == FAIL
    assert "KeyError" in outcome.message and outcome.traceback


def test_lab_error_in_a_check_is_a_failure_with_its_message_and_its_hint_as_the_next_step():
    def nope(ctx):
        raise LabError("No queue.", "Run start.")

    outcome = run_check(_check(nope), None, set(), _reason)
    assert outcome.status == FAIL and outcome.message == "No queue." and outcome.hint == "Run start."
    assert run_check(_check(lambda ctx: failed("No.", hint="Do this.")), None, set(), _reason).hint == "Do this."
    assert run_check(_check(lambda ctx: failed("No.")), None, set(), _reason).hint == _check(nope).hint


def test_check_returning_something_else_fails():
    outcome = run_check(_check(lambda ctx: True), None, set(), _reason)
    assert outcome.status == FAIL and "returned bool" in outcome.message


def test_check_needing_a_missing_service_is_skipped_with_the_reason():
    outcome = run_check(_check(lambda ctx: passed(), needs={"rds"}), None, {"sqs"}, _reason)
    assert (outcome.status, outcome.message, outcome.earned) == (SKIP, "no rds", 0)


def test_a_check_needs_a_hint():
    with pytest.raises(ValueError):
        check("x", "X", hint="  ")


def test_checks_load_in_written_order_and_reject_duplicate_ids(tmp_path):
    module = tmp_path / "labxx.py"
    module.write_text(textwrap.dedent('''
        from securecart_lab.checking import check, passed

        @check("second", "B", hint="h")
        def b(ctx): return passed()

        @check("first", "A", hint="h")
        def a(ctx): return passed()
    '''))
    assert [c.id for c in load_checks(module)] == ["second", "first"]
    module.write_text(module.read_text().replace('"first"', '"second"'))
    with pytest.raises(LabError, match="duplicate check ids"):
        load_checks(module)
