"""Cross-account EventBridge through boto3: a SecureCart rule forwards to an event bus of the security account only
when that bus's resource policy allows SecureCart's account (and the rule's role may put events there); otherwise
the event is dropped and the rule's FailedInvocations metric rises. In the security account, a rule delivers to a
CloudWatch Logs group that a resource policy opens to EventBridge."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from securecart_lab import aws as kit_aws
from securecart_lab.config import ACCOUNT_ID, ORGANIZATION_ID, SECURITY_ACCOUNT_ID

pytestmark = pytest.mark.integration

SOURCE = "securecart.payments"


def _logs_policy(group: str) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": ["events.amazonaws.com", "delivery.logs.amazonaws.com"]},
        "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
        "Resource": f"arn:aws:logs:us-east-1:{SECURITY_ACCOUNT_ID}:log-group:{group}:*"}]})


@pytest.fixture(scope="module")
def world(engine, aws):
    """Security account: bus, log group (with a resource policy), rule bus -> group. SecureCart: bus, role,
    forwarding rule -> the security bus (with the role)."""
    suffix = uuid.uuid4().hex[:8]
    sec = lambda service: kit_aws.client(service, engine.endpoint_url, SECURITY_ACCOUNT_ID)  # noqa: E731
    w = {"suffix": suffix, "sec": sec, "bus": f"compliance-{suffix}", "group": f"/securecart/compliance-{suffix}",
         "source_bus": f"payments-{suffix}", "rule": f"forward-{suffix}"}
    w["bus_arn"] = sec("events").create_event_bus(Name=w["bus"])["EventBusArn"]
    sec("logs").create_log_group(logGroupName=w["group"])
    sec("logs").put_resource_policy(policyName=f"events-{suffix}", policyDocument=_logs_policy(w["group"]))
    sec("events").put_rule(Name=f"to-logs-{suffix}", EventBusName=w["bus"], EventPattern=json.dumps({"source": [SOURCE]}))
    sec("events").put_targets(Rule=f"to-logs-{suffix}", EventBusName=w["bus"], Targets=[
        {"Id": "logs", "Arn": f"arn:aws:logs:us-east-1:{SECURITY_ACCOUNT_ID}:log-group:{w['group']}"}])

    iam = aws("iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    w["role_arn"] = iam.create_role(RoleName=f"forwarder-{suffix}", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    _role_may_put(aws, w, w["bus_arn"])
    aws("events").create_event_bus(Name=w["source_bus"])
    aws("events").put_rule(Name=w["rule"], EventBusName=w["source_bus"], EventPattern=json.dumps({"source": [SOURCE]}))
    _forward(aws, w, role=True)
    return w


def _role_may_put(aws, w, resource: str) -> None:
    aws("iam").put_role_policy(RoleName=f"forwarder-{w['suffix']}", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents", "Resource": resource}]}))


def _forward(aws, w, role: bool) -> None:
    target = {"Id": "security", "Arn": w["bus_arn"], **({"RoleArn": w["role_arn"]} if role else {})}
    aws("events").put_targets(Rule=w["rule"], EventBusName=w["source_bus"], Targets=[target])


def _allow(w, principal: str = ACCOUNT_ID, **extra) -> None:
    events = w["sec"]("events")
    events.remove_permission(EventBusName=w["bus"], RemoveAllPermissions=True)
    if principal:
        events.put_permission(EventBusName=w["bus"], Action="events:PutEvents", Principal=principal,
                              StatementId="securecart", **extra)


def _pay(aws, w) -> str:
    payment = uuid.uuid4().hex
    entries = aws("events").put_events(Entries=[{"Source": SOURCE, "DetailType": "PaymentAuthorized",
                                                 "Detail": json.dumps({"paymentId": payment}),
                                                 "EventBusName": w["source_bus"]}])
    assert entries["FailedEntryCount"] == 0
    return payment


def _arrived(w, payment: str) -> list[dict]:
    logs = w["sec"]("logs")
    found = []
    for stream in logs.describe_log_streams(logGroupName=w["group"])["logStreams"]:
        for event in logs.get_log_events(logGroupName=w["group"], logStreamName=stream["logStreamName"])["events"]:
            if payment in event["message"]:
                found.append(json.loads(event["message"]))
    return found


def _failed(aws, rule: str, account_client=None) -> float:
    cloudwatch = account_client or aws("cloudwatch")
    now = datetime.now(timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Events", MetricName="FailedInvocations", Dimensions=[{"Name": "RuleName", "Value": rule}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=5), Period=3600, Statistics=["Sum"])
    return sum(point["Sum"] for point in points["Datapoints"])


def _poll(condition, what: str, deadline: float = 10.0):
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.1)


def _refused(aws, world) -> None:
    """A payment event is not delivered, and the forwarding rule counts a failed invocation."""
    before = _failed(aws, world["rule"])
    payment = _pay(aws, world)
    _poll(lambda: _failed(aws, world["rule"]) >= before + 1, "FailedInvocations to rise")
    assert _arrived(world, payment) == []


def test_delivered_exactly_once_when_the_bus_policy_allows_securecart(aws, world):
    _allow(world)
    payment = _pay(aws, world)
    arrived = _poll(lambda: _arrived(world, payment), "the event in the security account's log group")
    time.sleep(0.3)  # a duplicate would have arrived by now: delivery is synchronous
    arrived = _arrived(world, payment)
    assert len(arrived) == 1, arrived
    event = arrived[0]
    assert event["account"] == ACCOUNT_ID and event["source"] == SOURCE and event["detail"] == {"paymentId": payment}
    assert event["detail-type"] == "PaymentAuthorized"


@pytest.mark.parametrize("principal", ["", "333333333333"], ids=["no-policy", "another-account"])
def test_dropped_and_counted_when_the_bus_policy_does_not_allow_securecart(aws, world, principal):
    _allow(world, principal)
    _refused(aws, world)


def test_a_refused_event_goes_to_the_targets_dead_letter_queue_at_once(aws, world):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName=f"forward-dlq-{world['suffix']}")["QueueUrl"]
    dlq = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    _allow(world, "")
    aws("events").put_targets(Rule=world["rule"], EventBusName=world["source_bus"], Targets=[
        {"Id": "security", "Arn": world["bus_arn"], "RoleArn": world["role_arn"], "DeadLetterConfig": {"Arn": dlq},
         "RetryPolicy": {"MaximumRetryAttempts": 3}}])
    try:
        payment = _pay(aws, world)
        messages = _poll(lambda: sqs.receive_message(QueueUrl=url, MessageAttributeNames=["All"],
                                                     WaitTimeSeconds=1).get("Messages"), "the dead letter")
        attributes = {k: v["StringValue"] for k, v in messages[0]["MessageAttributes"].items()}
        assert attributes["ERROR_CODE"] == "NO_PERMISSIONS" and attributes["RETRY_ATTEMPTS"] == "0"
        assert "because the event bus has no resource-based policy" in attributes["ERROR_MESSAGE"]
        assert json.loads(messages[0]["Body"])["detail"] == {"paymentId": payment}
    finally:
        _forward(aws, world, role=True)


def test_the_forwarding_role_must_allow_put_events_on_the_bus(aws, world):
    _allow(world)
    _role_may_put(aws, world, world["bus_arn"] + "-other")
    try:
        _refused(aws, world)
    finally:
        _role_may_put(aws, world, world["bus_arn"])


def test_a_grant_through_the_organization_needs_a_role(aws, world):
    _allow(world, "*", Condition={"Type": "StringEquals", "Key": "aws:PrincipalOrgID", "Value": ORGANIZATION_ID})
    _forward(aws, world, role=False)
    try:
        _refused(aws, world)
    finally:
        _forward(aws, world, role=True)
    payment = _pay(aws, world)
    assert len(_poll(lambda: _arrived(world, payment), "delivery with the role")) == 1


def test_a_log_group_target_needs_a_resource_policy_for_eventbridge(engine, aws, world):
    sec = world["sec"]
    group, rule = f"/securecart/closed-{world['suffix']}", f"closed-{world['suffix']}"
    sec("logs").create_log_group(logGroupName=group)
    sec("events").put_rule(Name=rule, EventBusName=world["bus"], EventPattern=json.dumps({"source": [SOURCE]}))
    sec("events").put_targets(Rule=rule, EventBusName=world["bus"], Targets=[
        {"Id": "logs", "Arn": f"arn:aws:logs:us-east-1:{SECURITY_ACCOUNT_ID}:log-group:{group}"}])
    _allow(world)
    before = _failed(aws, rule, sec("cloudwatch"))
    payment = _pay(aws, world)
    _poll(lambda: _arrived(world, payment), "the event in the open log group")
    _poll(lambda: _failed(aws, rule, sec("cloudwatch")) >= before + 1, "the closed group's FailedInvocations to rise")
    assert sec("logs").describe_log_streams(logGroupName=group)["logStreams"] == []
    sec("events").remove_targets(Rule=rule, EventBusName=world["bus"], Ids=["logs"])
    sec("events").delete_rule(Name=rule, EventBusName=world["bus"])


def test_bus_policies_in_cloudformation(engine, world):
    sec = world["sec"]
    name = f"policies-{world['suffix']}"
    template = {"Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": name, "Policy": {
            "Version": "2012-10-17", "Statement": [{"Sid": "org", "Effect": "Allow", "Principal": "*",
                                                     "Action": "events:PutEvents", "Resource": "*",
                                                     "Condition": {"StringEquals": {"aws:PrincipalOrgID": ORGANIZATION_ID}}}]}}},
        "Audit": {"Type": "AWS::Events::Rule", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "EventPattern": {"source": [SOURCE]}}},
        "FromSecureCart": {"Type": "AWS::Events::EventBusPolicy", "Properties": {
            "EventBusName": {"Ref": "Bus"}, "StatementId": "securecart", "Statement": {
                "Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "events:PutEvents",
                "Resource": {"Fn::GetAtt": ["Bus", "Arn"]}}}},
    }}
    cf = sec("cloudformation")
    cf.create_stack(StackName=name, TemplateBody=json.dumps(template))
    _poll(lambda: cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"].endswith("_COMPLETE"), "the stack")
    status = cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"]
    assert status == "CREATE_COMPLETE", [e.get("ResourceStatusReason") for e in cf.describe_stack_events(StackName=name)["StackEvents"]]
    policy = json.loads(sec("events").describe_event_bus(Name=name)["Policy"])
    assert {s["Sid"] for s in policy["Statement"]} == {"org", "securecart"}
    assert policy["Statement"][-1]["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}
    assert len(sec("events").list_rules(EventBusName=name)["Rules"]) == 1  # a Ref to the bus is its name

    template["Resources"]["FromSecureCart"]["Properties"]["Statement"]["Principal"] = {"AWS": "333333333333"}
    cf.update_stack(StackName=name, TemplateBody=json.dumps(template))
    _poll(lambda: cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"].endswith("_COMPLETE"), "the update")
    assert cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "UPDATE_COMPLETE"
    policy = json.loads(sec("events").describe_event_bus(Name=name)["Policy"])
    assert [s["Principal"] for s in policy["Statement"] if s["Sid"] == "securecart"] == [{"AWS": "333333333333"}]
    cf.delete_stack(StackName=name)
    _poll(lambda: _gone(sec, name), "the bus to go with its stack")


def _gone(sec, name: str) -> bool:
    try:
        sec("events").describe_event_bus(Name=name)
    except ClientError:
        return True
    return False
