"""The kit's two accounts through boto3: a 12-digit access key id selects its account (as in LocalStack), each account
keeps its own resources, STS AssumeRole reaches a role of the security account, and credentials the kit never issued
are refused."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from securecart_lab import aws as kit_aws
from securecart_lab.config import ACCOUNT_ID, SECURITY_ACCOUNT_ID

pytestmark = pytest.mark.integration


def _client(engine, service: str, key: str, secret: str = "test", token: str | None = None):
    return boto3.client(service, endpoint_url=engine.endpoint_url, region_name="us-east-1", aws_access_key_id=key,
                        aws_secret_access_key=secret, aws_session_token=token,
                        config=Config(retries={"max_attempts": 1}))


def test_a_12_digit_key_selects_the_security_account(engine, aws):
    assert _client(engine, "sts", SECURITY_ACCOUNT_ID).get_caller_identity()["Account"] == SECURITY_ACCOUNT_ID
    assert _client(engine, "sts", ACCOUNT_ID).get_caller_identity()["Account"] == ACCOUNT_ID
    assert aws("sts").get_caller_identity()["Account"] == ACCOUNT_ID  # the kit's own key: SecureCart's
    security = kit_aws.client("sts", engine.endpoint_url, SECURITY_ACCOUNT_ID)
    assert security.get_caller_identity()["Account"] == SECURITY_ACCOUNT_ID


def test_each_account_keeps_its_own_resources(engine, aws):
    name = f"acct-{uuid.uuid4().hex[:8]}"
    sqs = _client(engine, "sqs", SECURITY_ACCOUNT_ID)
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    assert SECURITY_ACCOUNT_ID in url
    assert url in sqs.list_queues(QueueNamePrefix=name).get("QueueUrls", [])
    assert aws("sqs").list_queues(QueueNamePrefix=name).get("QueueUrls", []) == []
    events = _client(engine, "events", SECURITY_ACCOUNT_ID)
    arn = events.create_event_bus(Name=name)["EventBusArn"]
    assert arn == f"arn:aws:events:us-east-1:{SECURITY_ACCOUNT_ID}:event-bus/{name}"
    with pytest.raises(ClientError) as missing:
        aws("events").describe_event_bus(Name=name)
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # The same name in SecureCart's account is another bus.
    assert aws("events").create_event_bus(Name=name)["EventBusArn"].split(":")[4] == ACCOUNT_ID
    aws("events").delete_event_bus(Name=name)
    events.delete_event_bus(Name=name)
    sqs.delete_queue(QueueUrl=url)


@pytest.mark.parametrize("service, call, code", [
    ("sts", lambda c: c.get_caller_identity(), "InvalidClientTokenId"),
    ("events", lambda c: c.list_event_buses(), "UnrecognizedClientException"),
])
def test_a_key_naming_an_account_the_kit_does_not_have_is_refused(engine, service, call, code):
    with pytest.raises(ClientError) as refused:
        call(_client(engine, service, "999999999999"))
    assert refused.value.response["Error"]["Code"] == code
    assert "999999999999" in refused.value.response["Error"]["Message"]


def test_a_temporary_key_the_emulator_never_issued_is_refused(engine):
    with pytest.raises(ClientError) as refused:
        _client(engine, "sqs", "ASIA" + uuid.uuid4().hex[:16].upper(), token="made-up").list_queues()
    assert refused.value.response["Error"]["Code"] in ("InvalidClientTokenId", "UnrecognizedClientException")
    assert "not issued by this emulator" in refused.value.response["Error"]["Message"]


def test_assume_role_into_the_security_account(engine, aws):
    name = f"auditor-{uuid.uuid4().hex[:8]}"
    iam = _client(engine, "iam", SECURITY_ACCOUNT_ID)
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT_ID}:root"}, "Action": "sts:AssumeRole"}]}
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    iam.put_role_policy(RoleName=name, PolicyName="read-logs", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "logs:Describe*", "Resource": "*"}]}))
    group = f"/securecart/{name}"
    _client(engine, "logs", SECURITY_ACCOUNT_ID).create_log_group(logGroupName=group)

    creds = aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="audit")["Credentials"]
    keys = (creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"])
    who = _client(engine, "sts", *keys).get_caller_identity()
    assert who["Account"] == SECURITY_ACCOUNT_ID
    assert who["Arn"] == f"arn:aws:sts::{SECURITY_ACCOUNT_ID}:assumed-role/{name}/audit"
    logs = _client(engine, "logs", *keys)
    found = logs.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in found] == [group]  # the security account's group, through the role
    with pytest.raises(ClientError) as denied:  # the role may only describe
        logs.create_log_group(logGroupName=group + "-2")
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    assert f"assumed-role/{name}/audit" in denied.value.response["Error"]["Message"]


def test_a_role_of_the_other_account_is_assumed_only_if_its_trust_policy_allows_the_caller(engine, aws):
    name = f"closed-{uuid.uuid4().hex[:8]}"
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::333333333333:root"}, "Action": "sts:AssumeRole"}]}
    iam = _client(engine, "iam", SECURITY_ACCOUNT_ID)
    role_arn = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    with pytest.raises(ClientError) as denied:
        aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="xx")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    assert denied.value.response["Error"]["Message"] == (
        f"User: arn:aws:iam::{ACCOUNT_ID}:root is not authorized to perform: sts:AssumeRole on resource: {role_arn}")
    with pytest.raises(ClientError):  # a role that does not exist cannot be assumed from another account either
        aws("sts").assume_role(RoleArn=role_arn + "-missing", RoleSessionName="xx")
    trust["Statement"][0]["Principal"] = {"AWS": ACCOUNT_ID}
    iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    assert aws("sts").assume_role(RoleArn=role_arn, RoleSessionName="xx")["AssumedRoleUser"]["Arn"].startswith(
        f"arn:aws:sts::{SECURITY_ACCOUNT_ID}:assumed-role/{name}/")


@pytest.mark.skipif(importlib.util.find_spec("awscli") is None, reason="AWS CLI v1 (the test extra) not installed")
def test_the_aws_cli_acts_in_the_security_account_after_env_account_security(engine, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "BOTO"))}
    env["PY"] = sys.executable
    script = ('set -e; eval "$("$PY" -m securecart_lab env --account security)"; '
              '"$PY" -m awscli sts get-caller-identity --output json; '
              'AWS_ACCESS_KEY_ID=123456789012 "$PY" -m awscli sts get-caller-identity --output json')
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=120,
                            cwd=str(settings.home.parent))
    assert result.returncode == 0, result.stderr
    decoder, text = json.JSONDecoder(), result.stdout.strip()
    first, end = decoder.raw_decode(text)
    second, _ = decoder.raw_decode(text[end:].strip())
    assert first["Account"] == SECURITY_ACCOUNT_ID and second["Account"] == ACCOUNT_ID
