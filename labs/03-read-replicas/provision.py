"""Lab 3: deploy the learner's replica.yaml as stack `securecart-lab03` on top of lab 2's stack, and wait until
every read replica in it streams.

As in lab 2, a changed template is applied by deleting the stack and creating it again (moto cannot update these
resources in place); an unchanged one is left alone. Deploying the reference solution (`solve 3`) also runs the
reference failover runbook (drill.py), the commands the README asks the learner to type, so every check can pass
headless.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from pathlib import Path

from botocore.exceptions import ClientError

from securecart_lab import replicas
from securecart_lab.app.config import WRITER_PARAMETER
from securecart_lab.errors import DeployError
from securecart_lab.labs.registry import get_lab

STACK = "securecart-lab03"
TEMPLATE = "replica.yaml"
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
REPLICA_WAIT_SECONDS = 60


def provision(ctx) -> None:
    """Lab 3's baseline is lab 2's stack (lab.toml `requires`); nothing else."""


def _stack(cf) -> dict | None:
    try:
        stacks = cf.describe_stacks(StackName=STACK)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def _wait(cf, timeout: float = 300) -> dict | None:
    deadline = time.monotonic() + timeout
    while True:
        stack = _stack(cf)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def wait_available(rds, instance_ids: list[str], timeout: float = REPLICA_WAIT_SECONDS) -> dict[str, dict]:
    """describe_db_instances for each id once all are `available` (DeployError naming the laggards on timeout)."""
    deadline = time.monotonic() + timeout
    while True:
        found = {i: rds.describe_db_instances(DBInstanceIdentifier=i)["DBInstances"][0] for i in instance_ids}
        waiting = {i: d["DBInstanceStatus"] for i, d in found.items() if d["DBInstanceStatus"] != "available"}
        if not waiting:
            return found
        if time.monotonic() > deadline:
            raise DeployError(f"DB instances not available after {timeout:.0f} s: "
                              + ", ".join(f"{i} is {s}" for i, s in waiting.items()),
                              'See "securecart-lab logs emulator" and the replica\'s log in SECURECART_HOME/logs/.')
        time.sleep(0.2)


def deploy(ctx, source: Path) -> list[str]:
    """Create stack securecart-lab03 from source/replica.yaml, wait for its replicas to stream, and report them."""
    path = source / TEMPLATE
    get_lab(2).provisioner().load_template(path)
    body = path.read_text(encoding="utf-8")
    cf = ctx.aws("cloudformation")
    lines: list[str] = []
    existing = _wait(cf)
    if existing is not None and existing["StackStatus"] in _DONE and cf.get_template(StackName=STACK)["TemplateBody"] == body:
        lines.append(f"Stack {STACK} is up to date ({existing['StackStatus']})")
    else:
        if existing is not None:
            _refuse_to_delete_the_writer(ctx, cf)
            cf.delete_stack(StackName=STACK)
            _wait(cf)
            lines.append(f"Deleted the previous stack {STACK} ({existing['StackStatus']}) to apply the changed template")
        lines += _create(ctx, cf, path, body)
    lines += _report(ctx, cf)
    if source.resolve() == ctx.lab.solution_dir.resolve():
        lines += _drill(ctx).run(ctx)
    return lines


def _refuse_to_delete_the_writer(ctx, cf) -> None:
    """After a failover the stack's replica is the writer: re-creating the stack would delete it and its orders."""
    resources = cf.describe_stack_resources(StackName=STACK)["StackResources"]
    ids = {r.get("PhysicalResourceId") for r in resources if r.get("ResourceType") == "AWS::RDS::DBInstance"}
    writer = replicas.topology(ctx.endpoint_url).writer
    if writer is not None and writer.id in ids:
        raise DeployError(
            f"Stack {STACK} holds {writer.id}, which is the writer now ({WRITER_PARAMETER} = {writer.endpoint}); "
            "applying a changed replica.yaml re-creates the stack and would delete it.",
            "Keep replica.yaml as it was deployed, or move the writer elsewhere first.")


def _create(ctx, cf, path: Path, body: str) -> list[str]:
    try:
        stack_id = cf.create_stack(StackName=STACK, TemplateBody=body)["StackId"]
    except ClientError as exc:
        raise DeployError(f"CloudFormation rejected {path}: {exc.response['Error'].get('Message', exc)}",
                          "Fix the template and run deploy again.") from None
    stack = _wait(cf)
    status = stack["StackStatus"] if stack else "DELETED"
    if status not in _DONE:
        events = cf.describe_stack_events(StackName=stack_id)["StackEvents"]
        failures = [f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason') or e['ResourceStatus']}"
                    for e in reversed(events) if e["ResourceStatus"].endswith("_FAILED")]
        raise DeployError(f"Stack {STACK} failed ({status}): " + "; ".join(failures or [f"the stack ended in {status}"]),
                          "Fix the resource named above in replica.yaml and run deploy again "
                          f"(aws cloudformation describe-stack-events --stack-name {STACK} shows every event).")
    count = len(cf.describe_stack_resources(StackName=STACK)["StackResources"])
    return [f"Stack {STACK}: {status} ({count} resources)"]


def _report(ctx, cf) -> list[str]:
    resources = cf.describe_stack_resources(StackName=STACK)["StackResources"]
    ids = [r["PhysicalResourceId"] for r in resources if r.get("ResourceType") == "AWS::RDS::DBInstance"]
    lines = []
    for instance_id, found in wait_available(ctx.aws("rds"), ids).items() if ids else ():
        endpoint = found["Endpoint"]
        source = found.get("ReadReplicaSourceDBInstanceIdentifier")
        role = f"read replica of {source}" if source else "standalone (promoted)"
        lines.append(f"DB instance {instance_id}: {found['DBInstanceStatus']}, {role}, at {endpoint['Address']}:{endpoint['Port']}")
    for r in resources:
        if r.get("ResourceType") == "AWS::SSM::Parameter":
            value = ctx.aws("ssm").get_parameter(Name=r["PhysicalResourceId"])["Parameter"]["Value"]
            lines.append(f"Parameter {r['PhysicalResourceId']} = {value}")
    return lines


def _drill(ctx):
    """The lab's drill.py: the reference failover runbook."""
    name = "securecart_lab03_drill"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ctx.lab.path / "drill.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def is_deployed(ctx) -> bool:
    """The stack is complete and holds a DB instance."""
    try:
        stack = _stack(ctx.aws("cloudformation"))
        if stack is None or stack["StackStatus"] not in _DONE:
            return False
        resources = ctx.aws("cloudformation").describe_stack_resources(StackName=STACK)["StackResources"]
    except (ClientError, OSError):
        return False
    return any(r.get("ResourceType") == "AWS::RDS::DBInstance" for r in resources)
