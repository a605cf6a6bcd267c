"""Lab 2 iterated as a learner iterates: a template with its own names (no DBInstanceIdentifier, the AMI from the
public SSM parameter), changed again and again with `deploy 2 --preview` first. The preview shows only what
changes, and a change that replaces the database (a new DBName) gives the instances the new user data, so the
site serves from the new database."""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.request
from pathlib import Path

import pytest

from securecart_lab.errors import DeployError
from securecart_lab.labs import service, stacks
from test_lab02_learner import OWN_NAMES, template  # the learner template with its own names

pytestmark = pytest.mark.integration
STACK = "securecart-lab02"


def delete_stack(aws) -> None:
    # The reference stack names its database: a template without the name would replace it, and two DB instances
    # with the same DBName cannot share the local engine's PostgreSQL server.
    cf, s3 = aws("cloudformation"), aws("s3")
    if stacks.find(cf, STACK):
        for bucket in stacks.resources(cf, STACK, "AWS::S3::Bucket"):  # as on AWS, a bucket must be empty to go
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents") or []:
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        cf.delete_stack(StackName=STACK)
        stacks.wait(cf, STACK)


@pytest.fixture(scope="module")
def folder(settings, engine, aws):
    path = Path(tempfile.mkdtemp(prefix="lab02-updates-", dir="/tmp"))
    delete_stack(aws)
    yield path
    shutil.rmtree(path, ignore_errors=True)
    delete_stack(aws)
    service.solve(settings, 2)  # later modules expect the reference lab 2


def deploy2(settings, folder: Path, text: str, preview: bool = False) -> list[str]:
    (folder / "template.yaml").write_text(text)
    return service.deploy(settings, 2, source=folder, preview=preview)[1]


def rows(lines: list[str]) -> dict[str, list[str]]:
    """The change set table: logical id -> [Action, Replacement]."""
    found = {}
    for line in lines:
        cells = line.split()
        if len(cells) > 3 and cells[1].startswith("AWS::"):
            found[cells[0]] = cells[2:4]
    return found


def group_instances(aws) -> set[str]:
    name = stacks.resources(aws("cloudformation"), STACK, "AWS::AutoScaling::AutoScalingGroup")[0]
    group = aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    return {i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"}


def site_url(aws) -> str:
    outputs = aws("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["Outputs"]
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "SiteURL")


def test_an_unchanged_ssm_parameter_is_not_a_change(settings, folder, aws):
    deploy2(settings, folder, template(OWN_NAMES))
    interval = template({**OWN_NAMES, "HealthCheckIntervalSeconds: 10": "HealthCheckIntervalSeconds: 15"})
    preview = deploy2(settings, folder, interval, preview=True)
    # Was: the launch template "LaunchTemplateData (via LatestAmiId)" and the group after it, on every preview.
    assert rows(preview) == {"AppTargetGroup": ["Modify", "False"]}, preview


def test_a_replaced_database_reaches_the_instances_through_new_user_data(settings, folder, aws):
    deploy2(settings, folder, template(OWN_NAMES))
    old_instances = group_instances(aws)
    url = site_url(aws)
    renamed = template({**OWN_NAMES, "DBName: storefront": "DBName: shop", "export DB_NAME=storefront": "export DB_NAME=shop"})
    preview = deploy2(settings, folder, renamed, preview=True)
    assert rows(preview) == {"Database": ["Modify", "True"], "AppLaunchTemplate": ["Modify", "False"],
                             "AppGroup": ["Modify", "False"]}, preview
    deploy2(settings, folder, renamed)
    new_instances = group_instances(aws)
    # Was: the launch template got a new version but the group kept its instances, still started with the old
    # database's name and address; the old database went in the cleanup, and every request answered 503.
    assert new_instances and not new_instances & old_instances, (old_instances, new_instances)
    assert site_url(aws) == url
    with urllib.request.urlopen(f"{url}/api/products?limit=1", timeout=10) as response:
        assert response.status == 200 and json.loads(response.read())["products"]


def test_a_template_warning_is_not_a_site_that_does_not_work(settings, folder, cli, tmp_path):
    # The learner's DBPassword parameter draws cfn-lint's W1011 (use dynamic references for secrets): advice.
    workspace = tmp_path / "ws"
    (workspace / "lab02").mkdir(parents=True)
    (workspace / "lab02" / "template.yaml").write_text(template(OWN_NAMES))
    result = cli("--workspace", str(workspace), "deploy", "2")
    assert result.exit_code == 0, result.output
    assert "Template warning: template.yaml:" in result.output and "(W1011)" in result.output, result.output
    # Was: "Deployed lab 2, with a warning (above): it is not working yet" while every target was healthy.
    assert "not working yet" not in result.output, result.output
    assert "Deployed lab 2." in result.output and "2 of 2 targets healthy" in result.output, result.output


def test_new_user_data_that_starts_no_app_fails_the_update_and_the_old_instances_keep_serving(settings, folder, aws):
    deploy2(settings, folder, template(OWN_NAMES))
    url = site_url(aws)
    broken = template({**OWN_NAMES, "exec python3 -m securecart_lab.app": "exec python3 -m securecart_lab.appp"})
    with pytest.raises(DeployError) as failure:
        deploy2(settings, folder, broken)
    message = failure.value.message
    # Was: UPDATE_COMPLETE after 60 s, the old instances terminated anyway, and every request answered 503.
    assert "UPDATE_ROLLBACK_COMPLETE" in message and "AppGroup (AWS::AutoScaling::AutoScalingGroup" in message, message
    assert "did not pass the target group's health checks" in message and "no running app process" in message, message
    assert site_url(aws) == url
    with urllib.request.urlopen(f"{url}/api/products?limit=1", timeout=10) as response:
        assert response.status == 200
    assert len(group_instances(aws)) == 2
    # A stack deleted and created again under its name does not list the old stack's change sets.
    cf = aws("cloudformation")
    failed = {s["ChangeSetName"] for s in cf.list_change_sets(StackName=STACK)["Summaries"] if s["ExecutionStatus"] == "EXECUTE_FAILED"}
    assert failed
    delete_stack(aws)
    deploy2(settings, folder, template(OWN_NAMES))
    assert not failed & {s["ChangeSetName"] for s in cf.list_change_sets(StackName=STACK)["Summaries"]}
