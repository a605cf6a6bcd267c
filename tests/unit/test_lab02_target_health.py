"""Lab 2's deploy warning and checks explain a site with no healthy target by the health checks' verdict, also
when Auto Scaling has just replaced the instances that failed them (their replacements are not checked yet)."""

from __future__ import annotations

from securecart_lab.labs.registry import get_lab

PROVISION = get_lab(2).provisioner()
FAILED = "Target.ResponseCodeMismatch: Health checks failed with these codes: [503]"


def health(states: dict[str, str]):
    problems = {i: f"{i}: {s} ({FAILED if s == 'unhealthy' else 'Elb.RegistrationInProgress: Target registration is in progress'})"
                for i, s in states.items()}
    return PROVISION.TargetHealth("tg", 0, len(states), list(problems.values()), list(states), dict(states),
                                  {i: p for i, p in problems.items() if states[i] == "unhealthy"})


def test_replaced_targets_keep_their_verdict_and_lead_the_explanation():
    earlier = health({"i-old1": "unhealthy", "i-old2": "unhealthy"})
    now = health({"i-new1": "initial", "i-new2": "initial"}).with_replaced(earlier.verdicts)
    text = now.explain()
    assert text.startswith(f"0 of 2 targets of tg healthy: i-old1: unhealthy ({FAILED}), then replaced; "
                           f"i-old2: unhealthy ({FAILED}), then replaced; i-new1: initial"), text
    assert "securecart-lab logs instance i-old1; securecart-lab logs instance i-old2" in text


def test_replaced_targets_come_first_then_those_found_unhealthy_then_waiting_ones():
    now = health({"i-new": "initial", "i-b": "unhealthy"}).with_replaced({"i-a": f"i-a: unhealthy ({FAILED})"}, 3)
    assert [p.split(":")[0] for p in now.problems] == ["i-a", "i-b", "i-new"]
    assert now.unhealthy_ids == ["i-a", "i-b", "i-new"]
    assert now.total == 3  # the replacement of i-a is not registered yet
    unchanged = health({"i-b": "unhealthy"}).with_replaced({"i-b": "i-b: unhealthy (old reason)"})
    assert unchanged.problems == [f"i-b: unhealthy ({FAILED})"]
