"""Lab 2 on the real local engine: the starter fails, wrong templates fail the check they should, the reference
solution passes every check (and stays deployed: lab 3 builds on it)."""

from __future__ import annotations

from pathlib import Path

import json

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.config import ACCOUNT_ID
from securecart_lab.errors import DeployError, WorkspaceFileError
from securecart_lab.labs import service, stacks

pytestmark = pytest.mark.integration

STRUCTURE = {"network-tiers", "security-group-chain", "database-private", "database-resilient", "app-tier-scaling", "load-balancer"}
BEHAVIOUR = {"site-serves-products", "orders-stored", "storefront-on-s3", "load-balanced", "self-healing"}


@pytest.fixture(scope="module")
def lab2(lab_ctx):
    ctx = lab_ctx(2)
    ctx.lab.provisioner().provision(ctx)
    return ctx


@pytest.fixture
def variant(lab2, template_variant):
    """variant({old: new, ...}) -> a folder holding the solution template with those replacements."""
    return template_variant


def deploy(ctx, folder: Path) -> list[str]:
    return ctx.lab.provisioner().deploy(ctx, folder)


def outcomes(settings, only=None) -> dict[str, object]:
    return {o.id: o for o in service.check(settings, 2, only=only).outcomes}


def test_starter_fails_every_structural_and_behaviour_check(lab2, settings):
    deploy(lab2, lab2.lab.starter_dir)
    results = outcomes(settings)
    assert set(results) == STRUCTURE | BEHAVIOUR
    assert {cid for cid, o in results.items() if o.status != FAIL} == set()
    assert "public and private subnets" in results["network-tiers"].message


def test_invalid_yaml_names_the_file_and_line(lab2, tmp_path):
    (tmp_path / "template.yaml").write_text("Resources:\n  Vpc:\n    Type: AWS::EC2::VPC\n   Properties: [\n")
    with pytest.raises(WorkspaceFileError) as error:
        deploy(lab2, tmp_path)
    assert error.value.line == 4 and "template.yaml:4" in error.value.message


def test_a_failing_resource_is_reported_by_name_and_rolled_back(lab2, variant, aws):
    folder = variant({"CidrBlock: 10.20.11.0/24": "CidrBlock: 10.99.11.0/24"})
    with pytest.raises(DeployError) as error:
        deploy(lab2, folder)
    # cfn-lint sees it before anything is created: the problem's line, and nothing changed.
    assert "template.yaml:61:7: Properties validation failed for resource PrivateSubnetB" in error.value.message
    assert "nothing was changed" in error.value.message
    assert aws("rds").describe_db_instances()["DBInstances"] == []  # rolled back before the database


@pytest.mark.parametrize("name, replacements, failing", [
    ("database publicly accessible", {"PubliclyAccessible: false": "PubliclyAccessible: true"}, {"database-private"}),
    ("database group open to the internet",
     {"{IpProtocol: tcp, FromPort: 5432, ToPort: 5432, SourceSecurityGroupId: !Ref AppSecurityGroup}":
      "{IpProtocol: tcp, FromPort: 5432, ToPort: 5432, CidrIp: 0.0.0.0/0}"}, {"security-group-chain"}),
    ("single Availability Zone", {'AvailabilityZone: !Select [1, !GetAZs ""]': 'AvailabilityZone: !Select [0, !GetAZs ""]',
                                  "MultiAZ: true": "MultiAZ: false"},
     {"network-tiers", "database-resilient", "app-tier-scaling", "load-balancer"}),
    ("Auto Scaling group of one", {'MinSize: "2"': 'MinSize: "1"', 'DesiredCapacity: "2"': 'DesiredCapacity: "1"'},
     {"app-tier-scaling", "load-balanced"}),
    ("storefront bucket without website hosting", {"      WebsiteConfiguration:\n        IndexDocument: index.html\n": ""},
     {"storefront-on-s3"}),
    ("storefront bucket nobody may read", {"            Principal: \"*\"\n": "            Principal: {AWS: !Sub \"arn:aws:iam::${AWS::AccountId}:root\"}\n"},
     {"storefront-on-s3"}),
])
def test_a_wrong_template_fails_the_check_it_should(lab2, settings, variant, name, replacements, failing, aws):
    if lab2.lab.provisioner().site_url(lab2):
        # Moving a subnet to another AZ with the same CIDR fails as an update, on AWS too (the new subnet is created
        # before the old one is deleted, and their CIDRs conflict): each variant starts from no stack.
        for bucket in lab2.lab.provisioner().website_buckets(lab2):  # a stack cannot delete a bucket with objects
            for page in aws("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    aws("s3").delete_objects(Bucket=bucket, Delete={"Objects": keys})
        aws("cloudformation").delete_stack(StackName="securecart-lab02")
        stacks.wait(aws("cloudformation"), "securecart-lab02")
    deploy(lab2, variant(replacements))
    results = outcomes(settings, only=STRUCTURE | {"site-serves-products", "storefront-on-s3", "load-balanced"})
    assert {cid for cid, o in results.items() if o.status == FAIL} == failing, {c: o.message for c, o in results.items()}


def test_an_engine_without_rds_elbv2_autoscaling_gets_the_rest_and_skips_those_checks(lab2, settings):
    from dataclasses import replace as copy_with

    from securecart_lab import paths
    from securecart_lab.checking import SKIP, load_checks, run_check
    from securecart_lab.engines.base import ALL_SERVICES

    class NetworkOnly(type(lab2.engine)):
        name = "network-only"
        capabilities = ALL_SERVICES - {"rds", "elbv2", "autoscaling"}

    ctx = copy_with(lab2, engine=NetworkOnly(settings), cache={})
    applied = deploy(ctx, lab2.lab.solution_dir)
    assert applied[0].startswith("Not deployed: the network-only engine has no API for AppGroup (AWS::AutoScaling::AutoScalingGroup)")
    assert "Database (AWS::RDS::DBInstance)" in applied[0] and "AppLaunchTemplate (AWS::EC2::LaunchTemplate)" in applied[0]
    results = {c.id: run_check(c, ctx, ctx.engine.capabilities, ctx.engine.missing_reason)
               for c in load_checks(lab2.lab.checks_file(paths.checks_dir()))}
    assert results.pop("network-tiers").status == PASS
    assert {o.status for o in results.values()} == {SKIP}
    assert "network-only engine has no autoscaling, elbv2 API" in results["load-balanced"].message


def test_reference_solution_passes_every_check_and_stays_deployed(lab2, settings):
    applied = deploy(lab2, lab2.lab.solution_dir)
    assert any(line.startswith("Site: http://127.0.0.1:") for line in applied)
    assert f"Storefront: {lab2.endpoint_url}/securecart-storefront-{ACCOUNT_ID}/" in applied
    assert "Target group securecart-app: 2 of 2 targets healthy" in applied
    results = outcomes(settings)
    assert {cid: o.status for cid, o in results.items()} == {cid: PASS for cid in STRUCTURE | BEHAVIOUR}, \
        {c: o.message for c, o in results.items() if o.status != PASS}
    # A redeploy sends only the storefront files that differ: one removed by hand comes back, the rest stay as
    # they were (their LastModified is from before the checks ran, seconds ago).
    s3, bucket = lab2.aws("s3"), f"securecart-storefront-{ACCOUNT_ID}"
    s3.delete_object(Bucket=bucket, Key="index.html")
    stored = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert deploy(lab2, lab2.lab.solution_dir)[0].startswith("Stack securecart-lab02 is up to date")
    again = {o["Key"]: o["LastModified"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert set(again) == set(stored) | {"index.html"}
    assert {k: again[k] for k in stored} == stored
    assert lab2.lab.provisioner().is_deployed(lab2)


def test_status_and_env_show_the_site_url(lab2, cli):
    deploy(lab2, lab2.lab.solution_dir)
    url = lab2.lab.provisioner().site_url(lab2)
    assert url.startswith("http://127.0.0.1:")
    assert f"export SECURECART_SITE_URL={url}" in cli("env").output
    urls = json.loads(cli("status", "--format", "json").output)["urls"]
    assert url in urls.values()
