"""Lab 4, step 3 (cross-account compliance), end to end on the session's real engine: `deploy 4` deploys security.yaml
into the security account first; the starter fails both checks; the reference solution passes them; a bus policy
open to everyone, one naming another account, and a rule matching only some payment events each fail the check that
names the mistake."""

from __future__ import annotations


import pytest

from securecart_lab import aws as kit_aws
from securecart_lab.checking import FAIL, PASS
from securecart_lab.config import ACCOUNT_ID, SECURITY_ACCOUNT_ID
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

pytestmark = pytest.mark.integration

LAB = get_lab(4)
KIT = LAB.provisioner()
STEP_3 = ("compliance-delivery", "compliance-policy")
SECURITY = (LAB.solution_dir / "security.yaml").read_text()
PRINCIPAL = 'AWS: !Sub "arn:aws:iam::${SecureCartAccountId}:root"'


def _outcomes(settings) -> dict:
    report = service.check(settings, 4, only=set(STEP_3))
    return {o.id: o for o in report.outcomes}


def test_deploy_puts_security_yaml_in_the_security_account(lab4, engine):
    security = kit_aws.client("cloudformation", engine.endpoint_url, SECURITY_ACCOUNT_ID)
    stack = security.describe_stacks(StackName=KIT.SECURITY_STACK)["Stacks"][0]
    assert stack["StackId"].split(":")[4] == SECURITY_ACCOUNT_ID
    bus = kit_aws.client("events", engine.endpoint_url, SECURITY_ACCOUNT_ID).describe_event_bus(Name=KIT.COMPLIANCE_BUS)
    assert bus["Arn"] == f"arn:aws:events:us-east-1:{SECURITY_ACCOUNT_ID}:event-bus/{KIT.COMPLIANCE_BUS}"
    mine = kit_aws.client("cloudformation", engine.endpoint_url)
    assert [s["StackName"] for s in mine.describe_stacks()["Stacks"] if s["StackName"] == KIT.SECURITY_STACK] == []


def test_the_starter_fails_both_checks(lab4):
    outcomes = _outcomes(lab4)
    delivery, policy = outcomes["compliance-delivery"], outcomes["compliance-policy"]
    assert delivery.status == FAIL and "No enabled rule on the securecart bus" in delivery.message, delivery.message
    assert policy.status == FAIL and "does not name SecureCart's account" in policy.message, policy.message
    assert "only the security account itself" in policy.message


def test_the_solution_passes_both_checks(lab4):
    service.deploy(lab4, 4, source=LAB.solution_dir)
    outcomes = _outcomes(lab4)
    for check in STEP_3:
        assert outcomes[check].status == PASS, (check, outcomes[check].message)
    assert "3 of 3 payment events arrived once each" in outcomes["compliance-delivery"].message


def test_a_policy_open_to_every_account_fails_compliance_policy(lab4, variant):
    service.deploy(lab4, 4, source=variant(security={PRINCIPAL: 'AWS: "*"'}))
    outcomes = _outcomes(lab4)
    assert outcomes["compliance-delivery"].status == PASS  # it works, and that is the problem
    policy = outcomes["compliance-policy"]
    assert policy.status == FAIL and "lets every AWS account put events" in policy.message, policy.message


def test_a_policy_naming_another_account_drops_the_events_and_says_so(lab4, variant):
    service.deploy(lab4, 4, source=variant(security={'Default: "123456789012"': 'Default: "333333333333"'}))
    outcomes = _outcomes(lab4)
    delivery, policy = outcomes["compliance-delivery"], outcomes["compliance-policy"]
    assert delivery.status == FAIL and "3 of 3 payment events never reached" in delivery.message, delivery.message
    assert "securecart-compliance-forwarding's FailedInvocations rose by 3" in delivery.message
    assert policy.status == FAIL and f"does not name SecureCart's account ({ACCOUNT_ID})" in policy.message
    assert "FailedInvocations rose by 1" in policy.message, policy.message


def test_a_rule_matching_one_detail_type_fails_compliance_delivery(lab4, variant):
    narrow = {"        source: [securecart.payments]\n":
              "        source: [securecart.payments]\n        detail-type: [PaymentAuthorized]\n"}
    service.deploy(lab4, 4, source=variant(template=narrow))
    delivery = _outcomes(lab4)["compliance-delivery"]
    assert delivery.status == FAIL, delivery.message
    assert "2 of 3 payment events never reached" in delivery.message
    assert "pattern matches PaymentCaptured, PaymentRefunded events" in delivery.message


def test_a_forwarding_role_that_may_not_put_events_fails_delivery_not_the_policy(lab4, variant):
    """A right bus policy with a forwarding role too narrow: the events are dropped, and compliance-delivery names
    the role; compliance-policy, which judges the bus's policy, passes."""
    grant = "Action: events:PutEvents\n                Resource: !Sub \"arn:aws:events:${AWS::Region}:222222222222"
    narrow = {grant: grant.replace("events:PutEvents", "events:DescribeRule")}
    service.deploy(lab4, 4, source=variant(template=narrow))
    outcomes = _outcomes(lab4)
    delivery, policy = outcomes["compliance-delivery"], outcomes["compliance-policy"]
    assert delivery.status == FAIL and "FailedInvocations rose by 3" in delivery.message, delivery.message
    assert "role arn:aws:iam::123456789012:role/securecart-lab04-compliance-forwarder may not events:PutEvents" \
        in delivery.message, delivery.message
    assert policy.status == PASS and "dropped, by the forwarding rule's role" in policy.message, policy.message
