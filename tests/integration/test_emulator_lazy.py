"""The emulator starts with moto's routing only; a service and the kit's extensions for it load on its first request."""

from __future__ import annotations

import json
import urllib.request

import pytest
from emulator_fixture import client, create_function, running_emulator

pytestmark = pytest.mark.integration

HEAVY = ("stepfunctions", "ec2", "cloudformation", "rds", "elbv2", "autoscaling", "lambda")


def _health(handle) -> dict:
    with urllib.request.urlopen(handle.endpoint_url + "/_securecart/health", timeout=10) as response:
        return json.load(response)


def _children(handle) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(handle.process.pid).children(recursive=True)]


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


def test_first_answer_loads_no_heavy_service_and_starts_no_worker(emulator):
    assert client(emulator, "sts").get_caller_identity()["Account"] == "123456789012"
    document = _health(emulator)
    assert document["services"]["sts"] == "running"
    assert {name: document["services"][name] for name in HEAVY} == {name: "available" for name in HEAVY}
    assert document["extensions"] == ["iam.sts"]  # a patch of STS's AssumeRole, which imports nothing more
    assert _children(emulator) == [], "no Lambda worker before a function exists"


def test_a_role_assumed_before_anything_else_is_enforced_from_its_first_call(emulator):
    # IAM evaluation loads on the first request signed with a role session (server._evaluate_role_sessions).
    import boto3
    from botocore.exceptions import ClientError

    iam = client(emulator, "iam")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="lazy-reader", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName="lazy-reader", PolicyName="list-only", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:ListQueues", "Resource": "*"}]}))
    creds = client(emulator, "sts").assume_role(RoleArn=role, RoleSessionName="lazy")["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA")
    session = boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                            aws_session_token=creds["SessionToken"], region_name="us-east-1")
    sqs = session.client("sqs", endpoint_url=emulator.endpoint_url)
    with pytest.raises(ClientError) as denied:
        sqs.create_queue(QueueName="lazy-denied")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert "sqs:createqueue" in str(denied.value).lower()
    sqs.list_queues()
    s3 = session.client("s3", endpoint_url=emulator.endpoint_url)
    with pytest.raises(ClientError) as denied_s3:
        s3.create_bucket(Bucket="lazy-denied")
    assert denied_s3.value.response["Error"]["Code"] == "AccessDenied"
    assert client(emulator, "sqs").create_queue(QueueName="lazy-admin")["QueueUrl"]


def test_a_service_loads_with_its_extensions_on_first_request(emulator):
    client(emulator, "stepfunctions").list_state_machines()
    document = _health(emulator)
    assert document["services"]["stepfunctions"] == "running"
    assert "stepfunctions" in document["extensions"]
    assert document["services"]["cloudformation"] == "available"


def test_the_first_function_starts_the_spare_worker(emulator):
    client(emulator, "lambda").list_functions()
    assert "lambda" in _health(emulator)["extensions"]
    assert _children(emulator) == []
    create_function(emulator, "lazy", "def handler(event, context):\n    return 1\n")
    import time

    def workers() -> list[int]:
        # As root the service user's Python is prepared first, by short-lived child processes.
        import psutil

        found = []
        for pid in _children(emulator):
            try:
                if any("lambda_worker" in part for part in psutil.Process(pid).cmdline()):
                    found.append(pid)
            except psutil.NoSuchProcess:
                pass
        return found

    deadline = time.monotonic() + 60
    while not workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers()) == 1


def test_cloudformation_installs_every_extension(emulator):
    client(emulator, "cloudformation").list_stacks()
    from securecart_lab.emulator import extensions

    assert sorted(_health(emulator)["extensions"]) == sorted(extensions.INSTALLERS)
