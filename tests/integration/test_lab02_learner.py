"""Labs 2 and 3 walked as a learner: a lab 2 template written without the reference solution's names
(no DBInstanceIdentifier, AutoScalingGroupName, LaunchTemplateName or load balancer names; the AMI from the public
SSM parameter, as AWS's own examples do) passes lab 2 and is a sufficient base for lab 3. A template whose
instances cannot reach their database is deployed with a warning that says why, and the checks name that cause."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.labs import service, stacks
from securecart_lab.labs.registry import get_lab

pytestmark = pytest.mark.integration

LAB2 = get_lab(2)
SOLUTION = (LAB2.solution_dir / "template.yaml").read_text()
OWN_NAMES = {
    "      DBInstanceIdentifier: securecart-db\n": "",
    "      AutoScalingGroupName: securecart-app\n": "",
    "      LaunchTemplateName: securecart-app\n": "",
    "      Name: securecart-app\n": "",
    "      Name: securecart-alb\n": "",
    "        ImageId: ami-12c6146b\n": "        ImageId: !Ref LatestAmiId\n",
    "Resources:\n": "  LatestAmiId:\n    Type: AWS::SSM::Parameter::Value<AWS::EC2::Image::Id>\n"
                    "    Default: /aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64\n\nResources:\n",
}


def template(replacements: dict[str, str]) -> str:
    text = SOLUTION
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@pytest.fixture(scope="module")
def folder(settings, engine):
    path = Path(tempfile.mkdtemp(prefix="lab02-learner-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
    # Later modules expect the reference lab 2 (solve 2 replaces the generated-name database by securecart-db, with
    # the same DBName) and no lab 3 stack.
    service.solve(settings, 2)


def remove_stacks(aws, only: tuple[str, ...] = ("securecart-lab03", "securecart-lab02")) -> None:
    """Delete lab 3's and lab 2's stacks, emptying the storefront bucket first (as on AWS, a stack cannot delete a
    bucket that holds objects)."""
    cf, s3 = aws("cloudformation"), aws("s3")
    for stack in only:
        if not stacks.find(cf, stack):
            continue
        for bucket in stacks.resources(cf, stack, "AWS::S3::Bucket"):
            for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=item["Key"])
        cf.delete_stack(StackName=stack)
        stacks.wait(cf, stack)


def deploy2(settings, folder: Path, text: str) -> list[str]:
    (folder / "template.yaml").write_text(text)
    return service.deploy(settings, 2, source=folder)[1]


def test_a_lab2_with_its_own_names_passes_lab2_and_carries_lab3(settings, folder, lab_ctx, aws):
    # Over the reference lab 2: its securecart-db is replaced by an instance with a generated name and the same
    # DBName (was refused: every instance was a database on one shared server, so the names clashed).
    remove_stacks(aws, only=("securecart-lab03",))
    deploy2(settings, folder, SOLUTION)
    deploy2(settings, folder, template(OWN_NAMES))
    results = {o.id: o for o in service.check(settings, 2).outcomes}
    assert {i: o.status for i, o in results.items()} == {i: PASS for i in results}, \
        {i: o.message for i, o in results.items() if o.status != PASS}
    database = aws("rds").describe_db_instances()["DBInstances"]
    generated = [d["DBInstanceIdentifier"] for d in database if d["DBInstanceIdentifier"].startswith("securecart-lab02-")]
    assert generated, [d["DBInstanceIdentifier"] for d in database]

    # Lab 3's template names no database: deploy fills its SourceDBInstanceIdentifier with lab 2's.
    service.start(settings, 3)
    lab3_folder = folder / "lab03"
    lab3_folder.mkdir()
    shutil.copy(get_lab(3).solution_dir / "replica.yaml", lab3_folder / "replica.yaml")
    lines = service.deploy(settings, 3, source=lab3_folder)[1]
    assert f"Parameter SourceDBInstanceIdentifier = {generated[0]} (lab 2's database, from stack securecart-lab02)" in lines
    assert any(re.match(rf"DB instance securecart-db-replica: available, read replica of {generated[0]}", l) for l in lines)
    statuses = {o.id: o.status for o in service.check(settings, 3, only={"replica-streaming", "replica-read-only"}).outcomes}
    assert statuses == {"replica-streaming": PASS, "replica-read-only": PASS}
    cf = aws("cloudformation")
    cf.delete_stack(StackName="securecart-lab03")
    stacks.wait(cf, "securecart-lab03")


def test_instances_that_cannot_reach_the_database_are_reported_with_the_reason(settings, folder, aws, cli):
    # A fresh stack: updating the launch template of a running group keeps its instances (as on AWS).
    remove_stacks(aws)
    broken = template({**OWN_NAMES, "export DB_PASSWORD=${DBPassword}": "export DB_PASSWORD=not-the-password"})
    mine = settings.workspace / "lab02"
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "template.yaml").write_text(broken)
    try:
        result = cli("deploy", "2")
    finally:
        (mine / "template.yaml").unlink()
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "Deployed lab 2, but the site is not serving yet (see the warning above)." in output
    assert "Deployed lab 2. Next" not in output
    lines = deploy2(settings, folder, broken)  # unchanged: up to date, and the same warning
    warning = next((l for l in lines if l.startswith("Warning: the site is not serving yet")), None)
    assert warning is not None, lines
    assert "0 of 2 targets of" in warning and "unhealthy (Target." in warning
    assert "securecart-lab logs instance i-" in warning
    results = {o.id: o for o in service.check(settings, 2, only={"site-serves-products", "orders-stored",
                                                                   "storefront-on-s3", "load-balanced"}).outcomes}
    for check_id, outcome in results.items():
        assert outcome.status == FAIL, check_id
        assert "no healthy target" in outcome.message, (check_id, outcome.message)
        assert "unhealthy (Target." in str(outcome.actual), (check_id, outcome.actual)
        assert "could not complete" not in outcome.message
    # The instance's log says what went wrong, through the AWS API too.
    instance = re.search(r"securecart-lab logs instance (i-[0-9a-f]+)", warning).group(1)
    console = aws("ec2").get_console_output(InstanceId=instance)["Output"]
    assert "password authentication failed" in console
