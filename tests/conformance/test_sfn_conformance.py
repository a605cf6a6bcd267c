"""Step Functions conformance: every scenario in scenarios.py against one real emulator, through boto3.

Execution scenarios start together (one create + start each) before the first assertion, so the suite costs about
as long as its slowest scenario (a 1 s task timeout), not the sum.
"""

from __future__ import annotations

import json
import time

import pytest
from botocore.config import Config
from emulator_fixture import client, create_function, ensure_role, running_emulator
from scenarios import (BUCKET, CALLBACK_QUEUE, CHILD_MACHINES, MISSING, QUEUE, ROLE_ARN, SCENARIOS, TABLE,
                       Scenario)

pytestmark = pytest.mark.integration

ECHO = "def handler(event, context):\n    return event\n"
REJECT = '''
class OrderRejected(Exception):
    pass


def handler(event, context):
    raise OrderRejected("card declined")
'''


class Context:
    """What a scenario needs: clients, and helpers to create machines and wait for executions."""

    def __init__(self, handle):
        self.handle = handle
        self.sfn = client(handle, "stepfunctions")
        # StartSyncExecution and TestState: botocore prefixes the host with "sync-" unless told not to (the kit's
        # `env` sets AWS_DISABLE_HOST_PREFIX_INJECTION for learners' clients).
        import boto3

        self.sfn_sync = boto3.client(
            "stepfunctions", endpoint_url=handle.endpoint_url, region_name="us-east-1", aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, read_timeout=60, inject_host_prefix=False))
        self.s3 = client(handle, "s3")
        self.ddb = client(handle, "dynamodb")
        self.sqs = client(handle, "sqs")

    def machine(self, name: str, definition: dict, express: bool = False) -> str:
        return self.sfn.create_state_machine(
            name=f"conformance-{name}", definition=json.dumps(definition), roleArn=ROLE_ARN,
            type="EXPRESS" if express else "STANDARD")["stateMachineArn"]

    def start(self, machine_arn: str, execution_input=None) -> str:
        return self.sfn.start_execution(stateMachineArn=machine_arn,
                                        input=json.dumps({} if execution_input is None else execution_input))[
            "executionArn"]

    def wait(self, execution_arn: str, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            described = self.sfn.describe_execution(executionArn=execution_arn)
            if described["status"] != "RUNNING" or time.monotonic() > deadline:
                return described
            time.sleep(0.05)

    def wait_history(self, execution_arn: str, event_type: str, timeout: float = 20.0) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            events = self.sfn.get_execution_history(executionArn=execution_arn)["events"]
            if any(event["type"] == event_type for event in events):
                return events
            time.sleep(0.05)
        raise AssertionError(f"no {event_type} event within {timeout} s")

    def next_token(self, timeout: float = 20.0) -> str:
        url = self.sqs.get_queue_url(QueueName=CALLBACK_QUEUE)["QueueUrl"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            messages = self.sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
            if messages:
                return json.loads(messages[0]["Body"])["token"]
        raise AssertionError("no task token was sent")


@pytest.fixture(scope="module")
def ctx():
    with running_emulator(time_scale=0.01) as handle:
        ensure_role(handle)
        create_function(handle, "echo", ECHO)
        create_function(handle, "reject", REJECT)
        context = Context(handle)
        context.s3.create_bucket(Bucket=BUCKET)
        context.s3.put_object(Bucket=BUCKET, Key="items.json",
                              Body=json.dumps([{"sku": "A"}, {"sku": "B"}, {"sku": "C"}]).encode())
        context.ddb.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
        context.sqs.create_queue(QueueName=QUEUE)
        context.sqs.create_queue(QueueName=CALLBACK_QUEUE)
        for name, definition in CHILD_MACHINES.items():
            context.machine(name, definition)
        yield context


@pytest.fixture(scope="module")
def launched(ctx):
    """scenario id -> executionArn (or the exception its start raised), for every execution scenario, started at once."""
    started: dict[str, object] = {}
    for item in SCENARIOS:
        if item.run is not None:
            continue
        try:
            machine = ctx.machine(item.id.replace("/", "-"), item.definition, express=item.express)
            started[item.id] = ctx.start(machine, item.input)
        except Exception as exc:  # reported by the scenario's own test
            started[item.id] = exc
    return started


def _check_execution(ctx, item: Scenario, execution_arn: str) -> None:
    described = ctx.wait(execution_arn)
    assert described["status"] == item.status, (
        f"status {described['status']} (expected {item.status}); error={described.get('error')!r} "
        f"cause={described.get('cause')!r}")
    if item.output is not MISSING:
        assert json.loads(described["output"]) == item.output
    if item.error is not None:
        assert described.get("error") == item.error, described.get("cause")
    if item.cause is not None:
        assert described.get("cause") == item.cause
    if item.check is not None:
        history = ctx.sfn.get_execution_history(executionArn=execution_arn, maxResults=1000)["events"]
        item.check(ctx, described, history)


@pytest.mark.parametrize("item", [
    pytest.param(item, id=item.id, marks=[pytest.mark.xfail(strict=True, reason=item.gap)] if item.gap else [])
    for item in SCENARIOS])
def test_scenario(item: Scenario, ctx, launched):
    if item.run is not None:
        item.run(ctx)
        return
    started = launched[item.id]
    if isinstance(started, Exception):
        raise started
    _check_execution(ctx, item, started)
