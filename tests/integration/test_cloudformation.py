"""CloudFormation that behaves like CloudFormation, on the real engine: a working lab 2 stack survives broken
templates and failing updates (the site still serves, the orders are still in PostgreSQL), updates happen in place
where AWS updates in place, create-only changes replace only what AWS replaces, and change sets work through the
API as the AWS CLI uses it."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg
import pytest
from botocore.exceptions import ClientError

from securecart_lab import config
from securecart_lab.errors import DeployError
from securecart_lab.labs import stacks

from emulator_fixture import ctrl_c_reaches_it

pytestmark = pytest.mark.integration
STACK = "securecart-lab02"


@pytest.fixture(scope="module")
def lab2(lab_ctx):
    ctx = lab_ctx(2)
    ctx.lab.provisioner().provision(ctx)
    ctx.lab.provisioner().deploy(ctx, ctx.lab.solution_dir)
    yield ctx
    ctx.preview, ctx.parameters = False, {}
    ctx.lab.provisioner().deploy(ctx, ctx.lab.solution_dir)  # the next modules start from the reference stack


@pytest.fixture(autouse=True)
def reference(lab2):
    """Each test starts from the reference stack (an update in place back to it, when a test changed it)."""
    deploy(lab2, lab2.lab.solution_dir)


@pytest.fixture
def variant(lab2, template_variant):
    """variant({old: new, ...}, base=None) -> a folder holding the solution template with those replacements."""
    return template_variant


def deploy(ctx, folder: Path, preview: bool = False) -> list[str]:
    ctx.preview = preview
    try:
        return ctx.lab.provisioner().deploy(ctx, folder)
    finally:
        ctx.preview = False


def table(lines: list[str]) -> dict[str, list[str]]:
    """The change set table's rows: logical id -> [Action, Replacement]."""
    rows = [line.split() for line in lines if line.startswith("  ")]
    return {row[0]: row[2:4] for row in rows if len(row) > 3 and row[1].startswith("AWS::")}


def site(ctx) -> str:
    return ctx.lab.provisioner().site_url(ctx)


def get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def place_order(ctx) -> str:
    _, body = get(f"{site(ctx)}/api/products?limit=1")
    sku = json.loads(body)["products"][0]["sku"]
    request = urllib.request.Request(f"{site(ctx)}/api/orders", method="POST", headers={"Content-Type": "application/json"},
                                     data=json.dumps({"customerEmail": f"{ctx.unique('cfn')}@example.com",
                                                      "items": [{"sku": sku, "quantity": 1}], "cardToken": "tok_visa_ok"}).encode())
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 201
        return json.loads(response.read())["orderId"]


def order_in_database(ctx, order_id: str) -> bool:
    db = ctx.aws("rds").describe_db_instances(DBInstanceIdentifier="securecart-db")["DBInstances"][0]
    with psycopg.connect(host=db["Endpoint"]["Address"], port=db["Endpoint"]["Port"], dbname="storefront",
                         user=config.RDS_SUPERUSER, password=ctx.settings.superpassword, connect_timeout=5) as conn:
        return conn.execute("SELECT 1 FROM orders WHERE id = %s", (order_id,)).fetchone() is not None


def physical_ids(ctx) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in ctx.aws("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]}


def replaced_by_the_last_update(ctx) -> set[str]:
    events = ctx.aws("cloudformation").describe_stack_events(StackName=STACK)["StackEvents"]  # newest first
    replaced = set()
    for event in events:
        if event["LogicalResourceId"] == STACK and event.get("ResourceStatusReason") == "User Initiated":
            break
        if "requires the creation of a new physical resource" in (event.get("ResourceStatusReason") or ""):
            replaced.add(event["LogicalResourceId"])
    return replaced


def assert_still_serving(ctx, url: str, order_id: str) -> None:
    assert site(ctx) == url
    status, body = get(f"{url}/api/products")
    assert status == 200 and json.loads(body)["products"]
    assert order_in_database(ctx, order_id)


@pytest.mark.parametrize("name, replacements, expected", [
    ("unresolved Ref", {"DBSubnetGroupName: !Ref DbSubnetGroup": "DBSubnetGroupName: !Ref DbSubnetGroupp"},
     ["template.yaml:146:7: Template format error: Unresolved resource dependencies [DbSubnetGroupp] in the Resources "
      "block of the template"]),
    ("unknown property", {"      EnableDnsSupport: true": "      EnableDnsSupport: true\n      EnableDNS: true"},
     ["template.yaml:23:7: Properties validation failed for resource Vpc with message: #: extraneous key [EnableDNS] is "
      "not permitted"]),
    ("bad GetAtt attribute and an unknown type", {"Version: !GetAtt AppLaunchTemplate.LatestVersionNumber":
                                                  "Version: !GetAtt AppLaunchTemplate.NewestVersion",
                                                  "Type: AWS::EC2::InternetGateway": "Type: AWS::EC2::InternetGateways"},
     ["template.yaml:27:5: Template format error: Unrecognized resource types: [AWS::EC2::InternetGateways]",
      "template.yaml:196:9: Template error: resource AppLaunchTemplate does not support attribute type NewestVersion in "
      "Fn::GetAtt"]),
])
def test_a_broken_template_is_refused_before_anything_changes(lab2, variant, name, replacements, expected):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    with pytest.raises(DeployError) as error:
        deploy(lab2, variant(replacements))
    message = error.value.message
    assert "nothing was changed" in message
    for line in expected:
        assert line in message, message
    assert f"({len(expected)} problem" in message  # every problem, none hidden behind "(N more)"
    assert physical_ids(lab2) == before
    assert_still_serving(lab2, url, order_id)


BROKEN_GROUP = """
  BrokenGroup:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: refers to a group that does not exist (only EC2 can tell)
      VpcId: !Ref Vpc
      SecurityGroupIngress:
        - {IpProtocol: tcp, FromPort: 9000, ToPort: 9000, SourceSecurityGroupId: sg-0123456789abcdef0}

Outputs:"""


def test_a_resource_failing_during_an_update_rolls_back_to_what_ran(lab2, variant):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    instances = _instances(lab2)
    # Valid for cfn-lint, refused by EC2 when it is created, after the VPC's tags, a new subnet and the group's
    # capacity were changed: all of that is rolled back.
    folder = variant({"Tags: [{Key: Name, Value: securecart-lab02}]": "Tags: [{Key: Name, Value: renamed}]",
                      'DesiredCapacity: "2"': 'DesiredCapacity: "3"',
                      "  PublicRouteTable:": "  PrivateSubnetC:\n    Type: AWS::EC2::Subnet\n    Properties: {VpcId: !Ref Vpc, "
                                             "CidrBlock: 10.20.12.0/24}\n  PublicRouteTable:",
                      "\nOutputs:": BROKEN_GROUP})
    with pytest.raises(DeployError) as error:
        deploy(lab2, folder)
    message = error.value.message
    assert "UPDATE_ROLLBACK_COMPLETE: the previous resources were restored and still run" in message
    assert "BrokenGroup (AWS::EC2::SecurityGroup, declared at template.yaml:" in message
    assert "The security group 'sg-0123456789abcdef0' does not exist" in message
    cf = lab2.aws("cloudformation")
    assert cf.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE"
    statuses = [e["ResourceStatus"] for e in reversed(cf.describe_stack_events(StackName=STACK)["StackEvents"])
                if e["LogicalResourceId"] == STACK][-4:]
    assert statuses == ["UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS",
                        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS", "UPDATE_ROLLBACK_COMPLETE"]
    assert physical_ids(lab2) == before
    ec2 = lab2.aws("ec2")
    assert {"Key": "Name", "Value": "securecart-lab02"} in ec2.describe_vpcs(VpcIds=[before["Vpc"]])["Vpcs"][0]["Tags"]
    assert not ec2.describe_subnets(Filters=[{"Name": "cidr-block", "Values": ["10.20.12.0/24"]}])["Subnets"]
    group = lab2.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["securecart-app"])["AutoScalingGroups"][0]
    assert group["DesiredCapacity"] == 2
    assert_still_serving(lab2, url, order_id)
    assert instances <= _instances(lab2) | instances
    # ...and the next deploy of a good template works from there.
    assert deploy(lab2, lab2.lab.solution_dir)[0].startswith(f"Stack {STACK} is up to date (UPDATE_ROLLBACK_COMPLETE)")


def _instances(ctx) -> set[str]:
    group = ctx.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["securecart-app"])["AutoScalingGroups"][0]
    return {i["InstanceId"] for i in group["Instances"]}


def test_non_replacement_updates_happen_in_place(lab2, variant):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    old_instances = _instances(lab2)
    folder = variant({
        "Tags: [{Key: Name, Value: securecart-lab02}]": "Tags: [{Key: Name, Value: securecart-lab02}, {Key: team, Value: web}]",
        "HealthCheckIntervalSeconds: 10": "HealthCheckIntervalSeconds: 15",
        'DesiredCapacity: "2"': 'DesiredCapacity: "3"',
        "{IpProtocol: tcp, FromPort: 80, ToPort: 80, CidrIp: 0.0.0.0/0}":
            "{IpProtocol: tcp, FromPort: 80, ToPort: 80, CidrIp: 0.0.0.0/0}\n        - {IpProtocol: tcp, FromPort: 443, ToPort: 443, CidrIp: 0.0.0.0/0}",
    })
    preview = deploy(lab2, folder, preview=True)
    assert table(preview) == {
        "Vpc": ["Modify", "False"], "AlbSecurityGroup": ["Modify", "False"], "AppTargetGroup": ["Modify", "False"],
        "AppGroup": ["Modify", "False"]}
    assert physical_ids(lab2) == before and _instances(lab2) == old_instances  # a preview changes nothing
    applied = deploy(lab2, folder)
    assert any(line.startswith(f"Stack {STACK}: UPDATE_COMPLETE") for line in applied), applied
    assert physical_ids(lab2) == before
    assert_still_serving(lab2, url, order_id)
    new_instances = _instances(lab2)
    assert old_instances < new_instances and len(new_instances - old_instances) == 1  # exactly one more
    tg_arn = before["AppTargetGroup"]
    assert lab2.aws("elbv2").describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 15
    ec2 = lab2.aws("ec2")
    assert {"Key": "team", "Value": "web"} in ec2.describe_vpcs(VpcIds=[before["Vpc"]])["Vpcs"][0]["Tags"]
    ports = {p.get("FromPort") for p in ec2.describe_security_groups(GroupIds=[before["AlbSecurityGroup"]])["SecurityGroups"][0]["IpPermissions"]}
    assert ports == {80, 443}


def test_a_create_only_change_replaces_only_what_aws_replaces(lab2, variant):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    db_name = deploy(lab2, variant({"DBName: storefront": "DBName: shop"}), preview=True)
    assert table(db_name) == {"Database": ["Modify", "True"], "AppLaunchTemplate": ["Modify", "False"],
                              "AppGroup": ["Modify", "False"]}, db_name
    assert any("DBName (create-only)" in line for line in db_name)
    folder = variant({"CidrBlock: 10.20.11.0/24": "CidrBlock: 10.20.12.0/24"})
    preview = deploy(lab2, folder, preview=True)
    assert table(preview) == {"PrivateSubnetB": ["Modify", "True"], "PrivateSubnetBRoutes": ["Modify", "Conditional"],
                    "DbSubnetGroup": ["Modify", "False"], "AppGroup": ["Modify", "False"]}, preview
    deploy(lab2, folder)
    after = physical_ids(lab2)
    assert {name for name in before if after.get(name) != before[name]} == {"PrivateSubnetB"}
    assert replaced_by_the_last_update(lab2) == {"PrivateSubnetB", "PrivateSubnetBRoutes"}
    ec2 = lab2.aws("ec2")
    assert ec2.describe_subnets(SubnetIds=[after["PrivateSubnetB"]])["Subnets"][0]["CidrBlock"] == "10.20.12.0/24"
    assert not ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [before["PrivateSubnetB"]]}])["Subnets"]
    assert_still_serving(lab2, url, order_id)


def test_a_custom_named_resource_that_needs_replacing_fails_as_on_aws_and_rolls_back(lab2, variant):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    with pytest.raises(DeployError) as error:
        deploy(lab2, variant({"DBName: storefront": "DBName: shop"}))
    assert ("CloudFormation cannot update a stack when a custom-named resource requires replacing. Rename securecart-db "
            "and update the stack again.") in error.value.message
    assert physical_ids(lab2) == before
    assert_still_serving(lab2, url, order_id)


def test_change_sets_round_trip_through_the_api(lab2):
    cf = lab2.aws("cloudformation")
    body = (lab2.lab.solution_dir / "template.yaml").read_text().replace("HealthyThresholdCount: 2", "HealthyThresholdCount: 3")
    created = cf.create_change_set(StackName=STACK, ChangeSetName="api-round-trip", TemplateBody=body,
                                   Capabilities=["CAPABILITY_IAM"])
    described = cf.describe_change_set(ChangeSetName="api-round-trip", StackName=STACK)
    assert described["Status"] == "CREATE_COMPLETE" and described["ExecutionStatus"] == "AVAILABLE"
    assert described["Parameters"] == [{"ParameterKey": "DBPassword", "ParameterValue": "****"}]
    assert described["Changes"] == [{"Type": "Resource", "ResourceChange": {
        "Action": "Modify", "LogicalResourceId": "AppTargetGroup", "PhysicalResourceId": physical_ids(lab2)["AppTargetGroup"],
        "ResourceType": "AWS::ElasticLoadBalancingV2::TargetGroup", "Replacement": "False", "Scope": ["Properties"],
        "Details": [{"Target": {"Attribute": "Properties", "Name": "HealthyThresholdCount", "RequiresRecreation": "Never"},
                     "Evaluation": "Static", "ChangeSource": "DirectModification"}]}}]
    listed = {s["ChangeSetName"]: s["ExecutionStatus"] for s in cf.list_change_sets(StackName=STACK)["Summaries"]}
    assert listed["api-round-trip"] == "AVAILABLE"
    cf.execute_change_set(ChangeSetName=created["Id"])
    stack = stacks.wait(cf, STACK)
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    tg = lab2.aws("elbv2").describe_target_groups(Names=["securecart-app"])["TargetGroups"][0]
    assert tg["HealthyThresholdCount"] == 3
    assert cf.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    with pytest.raises(ClientError, match="No updates are to be performed"):
        cf.update_stack(StackName=STACK, TemplateBody=body, Capabilities=["CAPABILITY_IAM"])
    empty = cf.create_change_set(StackName=STACK, ChangeSetName="nothing", TemplateBody=body)
    described = cf.describe_change_set(ChangeSetName=empty["Id"])
    assert described["Status"] == "FAILED" and "didn't contain changes" in described["StatusReason"]
    cf.delete_change_set(ChangeSetName=empty["Id"])
    # Executing a change set made the stack's other change sets obsolete; the executed one stays listed.
    assert [(s["ChangeSetName"], s["ExecutionStatus"]) for s in cf.list_change_sets(StackName=STACK)["Summaries"]] == [
        ("api-round-trip", "EXECUTE_COMPLETE")]


def test_validate_template_answers_in_aws_shape(lab2):
    cf = lab2.aws("cloudformation")
    body = (lab2.lab.solution_dir / "template.yaml").read_text()
    answer = cf.validate_template(TemplateBody=body)
    assert answer["Parameters"] == [{"ParameterKey": "DBPassword", "DefaultValue": "securecart-lab02", "NoEcho": True,
                                     "Description": "Master password of the SecureCart database."}]
    assert answer["Description"].startswith("SecureCart lab 2 (reference solution)")
    assert answer["Capabilities"] == []
    with pytest.raises(ClientError) as error:
        cf.validate_template(TemplateBody=body.replace("!Ref DbSubnetGroup\n", "!Ref DbSubnetGroupp\n"))
    assert error.value.response["Error"]["Message"] == (
        "Template format error: Unresolved resource dependencies [DbSubnetGroupp] in the Resources block of the template "
        "(line 146, column 7)")
    iam = "Resources:\n  Role:\n    Type: AWS::IAM::Role\n    Properties:\n      AssumeRolePolicyDocument: {}\n"
    answer = cf.validate_template(TemplateBody=iam)
    assert answer["Capabilities"] == ["CAPABILITY_IAM"]
    assert answer["CapabilitiesReason"] == "The following resource(s) require capabilities: [AWS::IAM::Role]"


def test_a_failed_first_create_leaves_nothing_and_the_next_deploy_recovers(lab2, tmp_path):
    cf, ec2 = lab2.aws("cloudformation"), lab2.aws("ec2")
    vpcs = {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]}
    bad = ("Resources:\n  Net:\n    Type: AWS::EC2::VPC\n    Properties: {CidrBlock: 10.50.0.0/16}\n"
           "  Sub:\n    Type: AWS::EC2::SecurityGroup\n    Properties:\n      GroupDescription: x\n      VpcId: !Ref Net\n"
           "      SecurityGroupIngress: [{IpProtocol: tcp, FromPort: 1, ToPort: 2, SourceSecurityGroupId: sg-0123456789abcdef0}]\n")
    path = tmp_path / "template.yaml"
    path.write_text(bad)
    with pytest.raises(DeployError) as error:
        stacks.apply(cf, "cfn-first-create", path, bad)
    assert "ROLLBACK_COMPLETE: nothing of it was left behind" in error.value.message
    assert "Sub (AWS::EC2::SecurityGroup, declared at template.yaml:5)" in error.value.message
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == vpcs
    good = bad.replace("SourceSecurityGroupId: sg-0123456789abcdef0", "CidrIp: 10.50.0.0/16")
    path.write_text(good)
    assert stacks.apply(cf, "cfn-first-create", path, good)[0].startswith("Stack cfn-first-create: CREATE_COMPLETE")
    cf.delete_stack(StackName="cfn-first-create")
    assert stacks.wait(cf, "cfn-first-create") is None
    assert {v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]} == vpcs


def test_deletion_policies_are_honoured(lab2, tmp_path):
    cf, ssm = lab2.aws("cloudformation"), lab2.aws("ssm")
    body = ("Resources:\n"
            "  Kept:\n    Type: AWS::SSM::Parameter\n    DeletionPolicy: Retain\n    Properties: {Name: /cfn-test/kept, Type: String, Value: a}\n"
            "  Gone:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /cfn-test/gone, Type: String, Value: b}\n"
            "  Other:\n    Type: AWS::SSM::Parameter\n    Properties: {Name: /cfn-test/other, Type: String, Value: c}\n")
    path = tmp_path / "template.yaml"
    path.write_text(body)
    stacks.apply(cf, "cfn-policies", path, body)
    smaller = body.split("  Kept:")[0] + "  Other:" + body.split("  Other:")[1].replace("Value: c", "Value: d")
    applied = stacks.apply(cf, "cfn-policies", path, smaller)
    assert table(applied) == {"Kept": ["Remove", "-"], "Gone": ["Remove", "-"], "Other": ["Modify", "False"]}, applied
    assert ssm.get_parameter(Name="/cfn-test/kept")["Parameter"]["Value"] == "a"  # Retain keeps it
    assert ssm.get_parameter(Name="/cfn-test/other")["Parameter"]["Value"] == "d"  # updated in place
    with pytest.raises(ClientError):
        ssm.get_parameter(Name="/cfn-test/gone")
    cf.delete_stack(StackName="cfn-policies")
    ssm.delete_parameter(Name="/cfn-test/kept")


def test_parameters_come_from_parameters_json_and_the_command_line(lab2, tmp_path):
    cf = lab2.aws("cloudformation")
    body = ("Parameters:\n  Greeting: {Type: String}\n  Name: {Type: String, Default: world}\n"
            "Resources:\n  P:\n    Type: AWS::SSM::Parameter\n"
            "    Properties: {Name: /cfn-test/greeting, Type: String, Value: !Sub '${Greeting}, ${Name}'}\n")
    (tmp_path / "template.yaml").write_text(body)
    (tmp_path / "parameters.json").write_text(json.dumps([{"ParameterKey": "Greeting", "ParameterValue": "hello"}]))
    parameters = stacks.read_parameters(tmp_path, {"Name": "lab"})
    stacks.apply(cf, "cfn-parameters", tmp_path / "template.yaml", body, parameters=parameters)
    assert lab2.aws("ssm").get_parameter(Name="/cfn-test/greeting")["Parameter"]["Value"] == "hello, lab"
    with pytest.raises(DeployError, match=r"Parameters: \[Greeting\] must have values"):
        stacks.apply(cf, "cfn-parameters-missing", tmp_path / "template.yaml", body)
    cf.delete_stack(StackName="cfn-parameters")


def test_sigint_during_a_deploy_leaves_the_old_or_the_new_state(lab2, variant, settings):
    url, order_id = site(lab2), place_order(lab2)
    folder = variant({'DesiredCapacity: "2"': 'DesiredCapacity: "3"', "HealthCheckIntervalSeconds: 10": "HealthCheckIntervalSeconds: 11"})
    workspace = lab2.workspace
    workspace.mkdir(parents=True, exist_ok=True)
    shutil.copy(folder / "template.yaml", workspace / "template.yaml")
    cf = lab2.aws("cloudformation")
    process = subprocess.Popen([sys.executable, "-m", "securecart_lab", "deploy", "2"], env=os.environ.copy(),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, preexec_fn=ctrl_c_reaches_it)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        if cf.describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"] == "UPDATE_IN_PROGRESS":
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=60)
    stack = stacks.wait(cf, STACK)
    assert stack["StackStatus"] in ("UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE")
    assert_still_serving(lab2, url, order_id)


needs_awscli = pytest.mark.skipif(importlib.util.find_spec("awscli") is None,
                                  reason="the AWS CLI v1 is a test dependency: pip install '.[test]'")


def aws_cli(arguments: str, settings) -> dict:
    """`aws ARGUMENTS --output json` (the AWS CLI v1 from PyPI) after eval "$(securecart-lab env)"."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "BOTO"))}
    env["PY"] = sys.executable
    script = f'set -e; eval "$("$PY" -m securecart_lab env)"; "$PY" -m awscli {arguments} --output json'
    result = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=300,
                            cwd=str(settings.home.parent))
    assert result.returncode == 0, (arguments, result.stderr)
    return json.loads(result.stdout) if result.stdout.strip() else {}


@needs_awscli
def test_the_aws_cli_validates_and_round_trips_a_change_set(lab2, settings, tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text((lab2.lab.solution_dir / "template.yaml").read_text())
    validated = aws_cli(f"cloudformation validate-template --template-body file://{template}", settings)
    assert validated["Parameters"][0]["ParameterKey"] == "DBPassword" and validated["Parameters"][0]["NoEcho"] is True
    assert "Stack with id" not in json.dumps(validated)
    template.write_text(template.read_text().replace('MaxSize: "4"', 'MaxSize: "5"'))
    created = aws_cli(f"cloudformation create-change-set --stack-name {STACK} --change-set-name from-the-cli "
                      f"--template-body file://{template} --capabilities CAPABILITY_IAM", settings)
    described = aws_cli(f"cloudformation describe-change-set --change-set-name {created['Id']}", settings)
    assert [(c["ResourceChange"]["LogicalResourceId"], c["ResourceChange"]["Replacement"]) for c in described["Changes"]] == [
        ("AppGroup", "False")]
    aws_cli(f"cloudformation execute-change-set --change-set-name {created['Id']}", settings)
    aws_cli(f"cloudformation wait stack-update-complete --stack-name {STACK}", settings)
    group = lab2.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["securecart-app"])["AutoScalingGroups"][0]
    assert group["MaxSize"] == 5


def test_getatt_with_a_dotted_attribute_deploys_in_lab_3(lab2, lab_ctx, tmp_path):
    lab3 = lab_ctx(3)
    text = (lab3.lab.solution_dir / "replica.yaml").read_text()
    old = 'Value: !Sub "${ReadReplica.Endpoint.Address}:${ReadReplica.Endpoint.Port}"'
    assert old in text
    (tmp_path / "replica.yaml").write_text(text.replace(
        old, 'Value: !Join [":", [!GetAtt ReadReplica.Endpoint.Address, !GetAtt [ReadReplica, Endpoint.Port]]]'))
    cf = lab3.aws("cloudformation")
    try:
        lab3.lab.provisioner().deploy(lab3, tmp_path)
        replica = lab3.aws("rds").describe_db_instances(DBInstanceIdentifier="securecart-db-replica")["DBInstances"][0]
        value = lab3.aws("ssm").get_parameter(Name="/securecart/db/reader-endpoint")["Parameter"]["Value"]
        assert value == f"{replica['Endpoint']['Address']}:{replica['Endpoint']['Port']}"
    finally:
        cf.delete_stack(StackName="securecart-lab03")  # lab 3's own tests start from no stack
        stacks.wait(cf, "securecart-lab03")


def test_changed_user_data_rolls_new_instances_in_and_the_site_keeps_serving(lab2, variant):
    url, order_id, before = site(lab2), place_order(lab2), physical_ids(lab2)
    old_instances = _instances(lab2)
    applied = deploy(lab2, variant({"export PORT=8080": "export PORT=8080\n            export GREETING=hello"}))
    assert table(applied) == {"AppLaunchTemplate": ["Modify", "False"], "AppGroup": ["Modify", "False"]}, applied
    new_instances = _instances(lab2)
    health = lab2.aws("elbv2").describe_target_health(TargetGroupArn=before["AppTargetGroup"])["TargetHealthDescriptions"]
    assert not {d["Target"]["Id"] for d in health} & old_instances  # the old instances left the target group
    assert len(new_instances) == 2 and not new_instances & old_instances  # an instance refresh: new ones in, old out
    group = lab2.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["securecart-app"])["AutoScalingGroups"][0]
    assert group["LaunchTemplate"]["Version"] == "2"
    assert physical_ids(lab2) == before
    assert_still_serving(lab2, url, order_id)


@needs_awscli
def test_drift_detection_finds_a_capacity_changed_with_the_cli(lab2, settings):
    group = "securecart-app"
    aws_cli(f"autoscaling set-desired-capacity --auto-scaling-group-name {group} --desired-capacity 3", settings)
    try:
        detection = aws_cli(f"cloudformation detect-stack-drift --stack-name {STACK}", settings)["StackDriftDetectionId"]
        status = aws_cli(f"cloudformation describe-stack-drift-detection-status --stack-drift-detection-id {detection}",
                         settings)
        assert (status["DetectionStatus"], status["StackDriftStatus"], status["DriftedStackResourceCount"]) == (
            "DETECTION_COMPLETE", "DRIFTED", 1)
        drifts = aws_cli(f"cloudformation describe-stack-resource-drifts --stack-name {STACK}", settings)
        by_id = {d["LogicalResourceId"]: d for d in drifts["StackResourceDrifts"]}
        assert by_id["AppGroup"]["StackResourceDriftStatus"] == "MODIFIED"
        assert by_id["AppGroup"]["PropertyDifferences"] == [
            {"PropertyPath": "/DesiredCapacity", "ExpectedValue": "2", "ActualValue": "3", "DifferenceType": "NOT_EQUAL"}]
        # What the learner did not touch is in sync (the template's values read back as the services report them).
        checked = {k: d["StackResourceDriftStatus"] for k, d in by_id.items() if d["StackResourceDriftStatus"] != "NOT_CHECKED"}
        assert checked == {"AppGroup": "MODIFIED", "AppTargetGroup": "IN_SYNC", "AlbSecurityGroup": "IN_SYNC",
                           "AppSecurityGroup": "IN_SYNC", "DbSecurityGroup": "IN_SYNC", "Database": "IN_SYNC"}, checked
    finally:
        lab2.aws("autoscaling").set_desired_capacity(AutoScalingGroupName=group, DesiredCapacity=2)
    detection = lab2.aws("cloudformation").detect_stack_drift(StackName=STACK)["StackDriftDetectionId"]
    assert lab2.aws("cloudformation").describe_stack_drift_detection_status(
        StackDriftDetectionId=detection)["StackDriftStatus"] == "IN_SYNC"
