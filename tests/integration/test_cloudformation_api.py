"""CloudFormation's API on a small stack of its own (no lab): UpdateStack on an unchanged template, names AWS
generates, and drift detection after changes made by hand, in AWS's shapes."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

from securecart_lab.errors import DeployError
from securecart_lab.labs import stacks

pytestmark = pytest.mark.integration

TEMPLATE = """
Resources:
  Setting:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: one
  Spare:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: spare
  Web:
    Type: AWS::EC2::SecurityGroup
    Properties:
      GroupDescription: web
      SecurityGroupIngress:
        - IpProtocol: tcp
          FromPort: 80
          ToPort: 80
          CidrIp: 0.0.0.0/0
  Jobs:
    Type: AWS::SQS::Queue
"""


@pytest.fixture(scope="module")
def stack(aws):
    cf = aws("cloudformation")
    name = f"api-{uuid.uuid4().hex[:8]}"
    cf.create_stack(StackName=name, TemplateBody=TEMPLATE)
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"
    yield name
    cf.delete_stack(StackName=name)
    stacks.wait(cf, name)


def physical(aws, name: str) -> dict[str, str]:
    return {r["LogicalResourceId"]: r["PhysicalResourceId"]
            for r in aws("cloudformation").describe_stack_resources(StackName=name)["StackResources"]}


def test_a_parameter_without_a_name_gets_one_from_cloudformation(aws, stack):
    # Was: CREATE_FAILED "'NoneType' object has no attribute 'lower'" (moto needs a Name).
    name = physical(aws, stack)["Setting"]
    assert name.startswith("CFN-Setting-")
    assert aws("ssm").get_parameter(Name=name)["Parameter"]["Value"] == "one"


def test_an_unchanged_template_right_after_create_is_no_update(aws, stack):
    cf = aws("cloudformation")
    # Was: an update started (moto had written the queue's generated name into the stack's template).
    for request in ({"TemplateBody": TEMPLATE}, {"UsePreviousTemplate": True}):
        with pytest.raises(ClientError) as raised:
            cf.update_stack(StackName=stack, **request)
        assert raised.value.response["Error"] == {"Type": "Sender", "Code": "ValidationError",
                                                  "Message": "No updates are to be performed."}
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    empty = cf.create_change_set(StackName=stack, ChangeSetName="nothing", TemplateBody=TEMPLATE)
    described = cf.describe_change_set(ChangeSetName=empty["Id"])
    assert described["Status"] == "FAILED" and described["Changes"] == []
    cf.delete_change_set(ChangeSetName=empty["Id"])


def test_drift_detection_reports_what_was_changed_by_hand(aws, stack):
    cf, ids = aws("cloudformation"), physical(aws, stack)
    assert cf.describe_stacks(StackName=stack)["Stacks"][0]["DriftInformation"] == {"StackDriftStatus": "NOT_CHECKED"}
    detection = cf.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    status = cf.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    assert (status["DetectionStatus"], status["StackDriftStatus"], status["DriftedStackResourceCount"]) == (
        "DETECTION_COMPLETE", "IN_SYNC", 0)

    aws("ssm").put_parameter(Name=ids["Setting"], Value="two", Overwrite=True)
    aws("ssm").delete_parameter(Name=ids["Spare"])
    aws("ec2").authorize_security_group_ingress(GroupId=ids["Web"], IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
    detection = cf.detect_stack_drift(StackName=stack)["StackDriftDetectionId"]
    status = cf.describe_stack_drift_detection_status(StackDriftDetectionId=detection)
    assert (status["StackDriftStatus"], status["DriftedStackResourceCount"]) == ("DRIFTED", 3)
    information = cf.describe_stacks(StackName=stack)["Stacks"][0]["DriftInformation"]
    assert information["StackDriftStatus"] == "DRIFTED" and information["LastCheckTimestamp"] == status["Timestamp"]

    drifts = {d["LogicalResourceId"]: d for d in cf.describe_stack_resource_drifts(StackName=stack)["StackResourceDrifts"]}
    assert {k: d["StackResourceDriftStatus"] for k, d in drifts.items()} == {
        "Setting": "MODIFIED", "Spare": "DELETED", "Web": "MODIFIED", "Jobs": "NOT_CHECKED"}
    setting = drifts["Setting"]
    assert setting["PhysicalResourceId"] == ids["Setting"] and setting["ResourceType"] == "AWS::SSM::Parameter"
    assert setting["PropertyDifferences"] == [{"PropertyPath": "/Value", "ExpectedValue": "one", "ActualValue": "two",
                                               "DifferenceType": "NOT_EQUAL"}]
    assert json.loads(setting["ExpectedProperties"])["Value"] == "one"
    assert json.loads(setting["ActualProperties"])["Value"] == "two"
    added = drifts["Web"]["PropertyDifferences"]
    assert [(d["PropertyPath"], d["DifferenceType"], d["ExpectedValue"]) for d in added] == [
        ("/SecurityGroupIngress/1", "ADD", "null")]
    assert json.loads(added[0]["ActualValue"]) == {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "10.0.0.0/8"}

    only = cf.describe_stack_resource_drifts(StackName=stack, StackResourceDriftStatusFilters=["DELETED"])
    assert [d["LogicalResourceId"] for d in only["StackResourceDrifts"]] == ["Spare"]
    single = cf.detect_stack_resource_drift(StackName=stack, LogicalResourceId="Setting")["StackResourceDrift"]
    assert single["StackResourceDriftStatus"] == "MODIFIED"
    with pytest.raises(ClientError, match="Resource Nothing does not exist for stack"):
        cf.detect_stack_resource_drift(StackName=stack, LogicalResourceId="Nothing")
    with pytest.raises(ClientError, match="does not exist"):
        cf.describe_stack_drift_detection_status(StackDriftDetectionId=str(uuid.uuid4()))


def test_a_stack_whose_resource_was_deleted_by_hand_is_deleted(aws):
    cf, name = aws("cloudformation"), f"api-{uuid.uuid4().hex[:8]}"
    cf.create_stack(StackName=name, TemplateBody=TEMPLATE)
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"
    ids = physical(aws, name)
    aws("ssm").delete_parameter(Name=ids["Spare"])
    cf.delete_stack(StackName=name)  # was: ParameterNotFound, and the stack and its other resources stayed
    assert stacks.wait(cf, name) is None
    with pytest.raises(ClientError, match="ParameterNotFound"):
        aws("ssm").get_parameter(Name=ids["Setting"])
    with pytest.raises(ClientError, match="InvalidGroup.NotFound"):
        aws("ec2").describe_security_groups(GroupIds=[ids["Web"]])


UPLOADS = """
Resources:
  Uploads:
    Type: AWS::S3::Bucket
  Pointer:
    Type: AWS::SSM::Parameter
    Properties:
      Type: String
      Value: !Ref Uploads
  Jobs:
    Type: AWS::SQS::Queue
"""


def _since_last_delete(cf, name: str) -> list[tuple[str, str, str | None]]:
    """(logical id, status, reason) of the events of the last DeleteStack, oldest first."""
    events = []
    for event in cf.describe_stack_events(StackName=name)["StackEvents"]:  # newest first
        if event["ResourceStatus"] == "DELETE_IN_PROGRESS" and event["ResourceType"] == "AWS::CloudFormation::Stack":
            break
        events.append((event["LogicalResourceId"], event["ResourceStatus"], event.get("ResourceStatusReason")))
    return events[::-1]


def test_a_resource_that_cannot_be_deleted_leaves_the_stack_delete_failed_and_retaining_it_deletes_it(aws, tmp_path):
    """As on AWS: DeleteStack answers at once; a bucket holding objects is not deleted (was: moto kept it and the
    stack said DELETE_COMPLETE), so the stack goes DELETE_FAILED naming it, with what could go gone; DeleteStack
    again (deploy's) continues; RetainResources (only on a DELETE_FAILED stack) deletes the stack, keeping the
    bucket."""
    cf, s3, name = aws("cloudformation"), aws("s3"), f"api-del-{uuid.uuid4().hex[:8]}"
    cf.create_stack(StackName=name, TemplateBody=UPLOADS)
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"
    ids = physical(aws, name)
    s3.put_object(Bucket=ids["Uploads"], Key="orders.csv", Body=b"ord-1")
    with pytest.raises(ClientError, match="RetainResources can be specified only for a stack in the DELETE_FAILED"):
        cf.delete_stack(StackName=name, RetainResources=["Uploads"])

    cf.delete_stack(StackName=name)
    failed = stacks.wait(cf, name)
    assert (failed["StackStatus"], failed.get("StackStatusReason")) == (
        "DELETE_FAILED", "The following resource(s) failed to delete: [Uploads]. ")
    events = _since_last_delete(cf, name)
    assert events == [
        ("Jobs", "DELETE_IN_PROGRESS", None), ("Jobs", "DELETE_COMPLETE", None),
        ("Pointer", "DELETE_IN_PROGRESS", None), ("Pointer", "DELETE_COMPLETE", None),
        ("Uploads", "DELETE_IN_PROGRESS", None),
        ("Uploads", "DELETE_FAILED", "BucketNotEmpty: The bucket you tried to delete is not empty"),
        (name, "DELETE_FAILED", "The following resource(s) failed to delete: [Uploads]. "),
    ], events
    assert list(physical(aws, name)) == ["Uploads"]
    with pytest.raises(ClientError, match="ParameterNotFound"):
        aws("ssm").get_parameter(Name=ids["Pointer"])

    # deploy deletes a DELETE_FAILED stack before creating it again: only what is left is tried, and it says why not.
    (tmp_path / "template.yaml").write_text(UPLOADS)
    with pytest.raises(DeployError) as error:
        stacks.apply(cf, name, tmp_path / "template.yaml", UPLOADS)
    assert error.value.message == (f"Stack {name} could not be deleted (DELETE_FAILED): Uploads (AWS::S3::Bucket): "
                                   "BucketNotEmpty: The bucket you tried to delete is not empty")
    assert stacks.wait(cf, name)["StackStatus"] == "DELETE_FAILED"
    assert [e[:2] for e in _since_last_delete(cf, name)] == [
        ("Uploads", "DELETE_IN_PROGRESS"), ("Uploads", "DELETE_FAILED"), (name, "DELETE_FAILED")]
    with pytest.raises(ClientError, match="Do not specify resources that are in the DELETE_COMPLETE state"):
        cf.delete_stack(StackName=name, RetainResources=["Pointer"])

    stack_id = failed["StackId"]
    cf.delete_stack(StackName=name, RetainResources=["Uploads"])
    assert stacks.wait(cf, name) is None
    assert cf.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
    assert [e[:2] for e in _since_last_delete(cf, stack_id)] == [
        ("Uploads", "DELETE_SKIPPED"), (name, "DELETE_COMPLETE")]
    assert s3.get_object(Bucket=ids["Uploads"], Key="orders.csv")["Body"].read() == b"ord-1"
    s3.delete_object(Bucket=ids["Uploads"], Key="orders.csv")
    s3.delete_bucket(Bucket=ids["Uploads"])


def _tagged(tags: dict[str, str]) -> str:
    listed = json.dumps([{"Key": k, "Value": v} for k, v in tags.items()])
    return json.dumps({"Resources": {
        "Jobs": {"Type": "AWS::SQS::Queue", "Properties": {"Tags": json.loads(listed)}},
        "Runner": {"Type": "AWS::IAM::Role", "Properties": {
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "Tags": json.loads(listed)}},
    }})


def test_changed_tags_are_updated_in_place(aws):
    """A key dropped from Tags is untagged, a new or changed value tagged; the resources stay the same ones."""
    cf, name = aws("cloudformation"), f"api-tags-{uuid.uuid4().hex[:8]}"
    cf.create_stack(StackName=name, TemplateBody=_tagged({"team": "orders", "tier": "gold"}),
                    Capabilities=["CAPABILITY_IAM"])
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"
    before = physical(aws, name)
    cf.update_stack(StackName=name, TemplateBody=_tagged({"tier": "silver", "owner": "ana"}),
                    Capabilities=["CAPABILITY_IAM"])
    assert stacks.wait(cf, name)["StackStatus"] == "UPDATE_COMPLETE"
    assert physical(aws, name) == before
    queue = aws("sqs").get_queue_url(QueueName=before["Jobs"].rsplit("/", 1)[-1])["QueueUrl"]
    assert aws("sqs").list_queue_tags(QueueUrl=queue)["Tags"] == {"tier": "silver", "owner": "ana"}
    role = aws("iam").list_role_tags(RoleName=before["Runner"])["Tags"]
    assert {t["Key"]: t["Value"] for t in role} == {"tier": "silver", "owner": "ana"}
    cf.delete_stack(StackName=name)
    assert stacks.wait(cf, name) is None


def test_termination_protection_refuses_delete_stack_until_it_is_turned_off(aws):
    cf, name = aws("cloudformation"), f"api-{uuid.uuid4().hex[:8]}"
    cf.create_stack(StackName=name, TemplateBody=TEMPLATE, EnableTerminationProtection=True)
    assert stacks.wait(cf, name)["StackStatus"] == "CREATE_COMPLETE"
    assert cf.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is True
    refused = f"Stack [{name}] cannot be deleted while TerminationProtection is enabled"
    with pytest.raises(ClientError, match="ValidationError") as caught:
        cf.delete_stack(StackName=name)
    assert caught.value.response["Error"]["Message"] == refused
    assert cf.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    assert stacks.delete(cf, name) == f"Stack {name} could not be deleted: ValidationError: {refused}"

    stack_id = cf.update_termination_protection(StackName=name, EnableTerminationProtection=False)["StackId"]
    assert stack_id == cf.describe_stacks(StackName=name)["Stacks"][0]["StackId"]
    assert cf.describe_stacks(StackName=name)["Stacks"][0]["EnableTerminationProtection"] is False
    cf.update_termination_protection(StackName=name, EnableTerminationProtection=True)
    with pytest.raises(ClientError, match="TerminationProtection is enabled"):
        cf.delete_stack(StackName=name)
    cf.update_termination_protection(StackName=name, EnableTerminationProtection=False)
    assert stacks.delete(cf, name) is None
    with pytest.raises(ClientError, match="does not exist"):
        cf.update_termination_protection(StackName=name, EnableTerminationProtection=True)
