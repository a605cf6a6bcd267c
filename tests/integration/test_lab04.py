"""Lab 4, steps 2 (fraud detection) and 4 (payment queue), end to end on the session's real engine: the starter fails
what it should, each typical mistake fails the check that names it, a bad template changes nothing, and `ci --lab 4`
passes with the reference solution."""

from __future__ import annotations

import json

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.errors import DeployError
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

pytestmark = pytest.mark.integration

LAB = get_lab(4)
STEP_2 = ("fraud-routing", "fraud-boundaries", "held-orders-not-charged")
STEP_4 = ("payment-burst", "payment-poison-dlq", "payment-visibility")


def _outcomes(settings, *only: str) -> dict:
    report = service.check(settings, 4, only=set(only) if only else None)
    return {o.id: o for o in report.outcomes}


def test_starter_fails_fraud_detection_and_the_payment_queue(lab4):
    outcomes = _outcomes(lab4, *STEP_2, *STEP_4)
    for check in STEP_2:
        assert outcomes[check].status == FAIL and "fraud-check workflow" in outcomes[check].message
    burst = outcomes["payment-burst"]
    assert burst.status == FAIL and "charged more than once" in burst.message, burst.message  # no idempotency key
    assert "idempotencyKey" in burst.hint
    poison = outcomes["payment-poison-dlq"]
    assert poison.status == FAIL and "no dead-letter queue" in poison.message
    assert outcomes["payment-visibility"].status == PASS  # AWS refuses to map a queue shorter than the function


def test_deploying_lab_1_again_keeps_lab_4s_rules(lab4, aws):
    # Lab 1's deploy deletes the bus's rules that its rules.json does not name; a stack's rules and the kit's are not its.
    service.deploy(lab4, 1, source=get_lab(1).solution_dir)
    names = {r["Name"] for r in aws("events").list_rules(EventBusName="securecart")["Rules"]}
    assert {"securecart-payment-requests", "securecart-lab04-observer", "securecart-order-placed"} <= names


def test_a_missing_pattern_condition_fails_fraud_routing(lab4, variant):
    service.deploy(lab4, 4, source=variant({"            - customerId: [{exists: false}]\n": ""}))
    outcome = _outcomes(lab4, "fraud-routing")["fraud-routing"]
    assert outcome.status == FAIL
    assert "never reached the fraud model: the one with a guest checkout" in outcome.message


def test_greater_than_at_the_threshold_fails_fraud_boundaries(lab4, variant):
    service.deploy(lab4, 4, source=variant({'totalCents: [{numeric: [">=", 100000]}]': 'totalCents: [{numeric: [">", 100000]}]'}))
    outcome = _outcomes(lab4, "fraud-boundaries")["fraud-boundaries"]
    assert outcome.status == FAIL
    assert "exactly $1,000.00 (totalCents 100000) was not screened" in outcome.message


def test_a_numeric_pattern_with_a_string_value_is_refused_and_changes_nothing(lab4, variant):
    service.deploy(lab4, 4)  # the learner's running stack (the starter)
    with pytest.raises(DeployError) as raised:
        service.deploy(lab4, 4, source=variant({'[{numeric: [">=", 100000]}]': '[{numeric: [">=", "100000"]}]'}))
    assert "FraudRule" in raised.value.message and "numeric" in raised.value.message.lower()
    assert "UPDATE_ROLLBACK_COMPLETE" in raised.value.message or "nothing was changed" in raised.value.message
    assert _outcomes(lab4, "payment-visibility")["payment-visibility"].status == PASS  # the starter still runs


def test_a_payment_rule_matching_every_order_fails_held_orders_not_charged(lab4, variant):
    payment_rule = '''          totalCents: [{numeric: ["<", 100000]}]
          cardCountry: [US]
          customerId: [{exists: true}]
'''
    service.deploy(lab4, 4, source=variant({payment_rule: "          totalCents: [{exists: true}]\n"}))
    outcome = _outcomes(lab4, "held-orders-not-charged")["held-orders-not-charged"]
    assert outcome.status == FAIL
    assert "was charged" in outcome.message and "payment rule also matches suspicious orders" in outcome.message


def test_a_workflow_role_without_dynamodb_fails_held_orders_and_says_why_and_trace_shows_it(lab4, variant, cli):
    service.deploy(lab4, 4, source=variant({"                Action: dynamodb:UpdateItem\n                Resource: !Sub arn:aws:dynamodb:${AWS::Region}:${AWS::AccountId}:table/securecart-orders\n              - Effect: Allow\n                Action: events:PutEvents":
                                            "                Action: events:PutEvents"}))
    outcome = _outcomes(lab4, "held-orders-not-charged")["held-orders-not-charged"]
    assert outcome.status == FAIL
    assert "was not held: its fraud check failed" in outcome.message and "dynamodb:UpdateItem" in outcome.message
    traced = cli("trace", "4")  # the EXPRESS workflow's history is its log
    assert traced.exit_code == 0, traced.output
    assert "FAILED" in traced.output and "HoldOrder" in traced.output and "dynamodb:UpdateItem" in traced.output


def test_a_mapping_without_report_batch_item_failures_loses_the_poison_message(lab4, variant):
    service.deploy(lab4, 4, source=variant({"      FunctionResponseTypes: [ReportBatchItemFailures]\n": ""}))
    outcome = _outcomes(lab4, "payment-poison-dlq")["payment-poison-dlq"]
    assert outcome.status == FAIL
    assert "deleted from the queue without reaching the dead-letter queue" in outcome.message
    assert "FunctionResponseTypes: [ReportBatchItemFailures]" in outcome.message


def test_a_function_timeout_raised_above_the_visibility_timeout_is_caught_by_its_duplicates(lab4, aws):
    # cfn-lint refuses such a template (and AWS such a mapping): the state comes from changes made beside it,
    # e.g. a timeout raised in the console during an incident.
    service.deploy(lab4, 4, source=LAB.solution_dir)
    aws("lambda").update_function_configuration(FunctionName="securecart-process-payment", Timeout=12)
    url = aws("sqs").get_queue_url(QueueName="securecart-payment-requests")["QueueUrl"]
    aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "2"})
    try:
        outcome = _outcomes(lab4, "payment-visibility")["payment-visibility"]
    finally:  # what the stack says again (a redeploy of the same template changes nothing, as on AWS)
        aws("lambda").update_function_configuration(FunctionName="securecart-process-payment", Timeout=10)
        aws("sqs").set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "12"})
    assert outcome.status == FAIL
    assert "VisibilityTimeout (2 s) is shorter than securecart-process-payment's Timeout (12 s)" in outcome.message
    assert "reached the gateway 2 times" in outcome.message or "reached the gateway 3 times" in outcome.message, \
        outcome.message


def test_ci_lab_4_passes_with_the_reference_solution(lab4, cli, tmp_path):
    junit, report = tmp_path / "junit.xml", tmp_path / "report.json"
    result = cli("ci", "--lab", "4", "--junit", str(junit), "--json", str(report))
    assert result.exit_code == 0, result.output
    outcomes = {o["id"]: o for o in json.loads(report.read_text())["labs"][0]["checks"]}
    assert {*STEP_2, *STEP_4} <= set(outcomes)
    assert all(o["status"] == PASS for o in outcomes.values()), outcomes
    assert "orders/s" in outcomes["payment-burst"]["message"]
    assert 'name="payment-burst"' in junit.read_text() or "payment-burst" in junit.read_text()
