"""Lab 3: deploy the learner's replica.yaml as stack `securecart-lab03` on top of lab 2's stack, and wait until
every read replica in it streams.

As in lab 2, the template is applied through a change set: what AWS updates in place is updated in place, a
failure rolls back to what ran before. Deploying the reference solution (`solve 3`) also runs the
reference failover runbook (drill.py), the commands the README asks the learner to type, so every check can pass
headless.
"""

from __future__ import annotations

import time
from pathlib import Path

from botocore.exceptions import ClientError

from securecart_lab.postgres import topology as replicas
from securecart_lab.app.config import WRITER_PARAMETER
from securecart_lab.errors import DeployError
from securecart_lab.labs import stacks

STACK = "securecart-lab03"
TEMPLATE = "replica.yaml"
REPLICA_WAIT_SECONDS = 60


def provision(ctx) -> None:
    """Lab 3's baseline is lab 2's stack (lab.toml `requires`); nothing else."""


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
    """Apply source/replica.yaml to stack securecart-lab03, wait for its replicas to stream, and report them.
    With ctx.preview, only show the change set."""
    path = source / TEMPLATE
    document = stacks.load_template(path, 3)
    body = path.read_text(encoding="utf-8")
    cf = ctx.aws("cloudformation")
    found = lab2_parameters(ctx, document)
    parameters = {**found, **stacks.read_parameters(source, ctx.parameters)}  # the learner's own choice wins
    lines = stacks.apply(cf, STACK, path, body, parameters=parameters, preview=ctx.preview,
                         guard=lambda changes: _refuse_to_delete_the_writer(ctx, changes))
    if ctx.preview:
        return lines
    lines += [f"Parameter {k} = {v} (lab 2's database, from stack {replicas.LAB2_STACK})"
              for k, v in found.items() if parameters.get(k) == v]
    lines += _report(ctx, cf)
    if source.resolve() == ctx.lab.solution_dir.resolve():
        lines += _drill(ctx).run(ctx)
    return lines


SOURCE_PARAMETER = "SourceDBInstanceIdentifier"


def lab2_parameters(ctx, document: dict) -> dict[str, str]:
    """Lab 3 builds on whatever lab 2's stack holds, however the learner named it: the template's
    SourceDBInstanceIdentifier parameter gets lab 2's DB instance, read from stack securecart-lab02."""
    if SOURCE_PARAMETER not in (document.get("Parameters") or {}):
        return {}
    database = replicas.lab_database_id(ctx.aws("cloudformation"))
    if database is None:
        raise DeployError(f"Expected lab 2's DB instance in stack {replicas.LAB2_STACK}, found none: lab 3's "
                          "replica copies it.", replicas.NO_DATABASE_HINT)
    return {SOURCE_PARAMETER: database}


def _refuse_to_delete_the_writer(ctx, changes: list[dict]) -> None:
    """After a failover the stack's replica is the writer: a change set that deletes or replaces it would delete
    the database and its orders."""
    doomed = {c.get("PhysicalResourceId") for c in changes if c["ResourceType"] == "AWS::RDS::DBInstance"
              and (c["Action"] == "Remove" or c.get("Replacement") in ("True", "Conditional"))}
    writer = replicas.topology(ctx.endpoint_url).writer
    if writer is not None and writer.id in doomed:
        raise DeployError(
            f"Stack {STACK} holds {writer.id}, which is the writer now ({WRITER_PARAMETER} = {writer.endpoint}); "
            "this replica.yaml would delete or replace it (deploy 3 --preview shows the change set).",
            REDO_HINT)


REDO_HINT = ('To redo lab 3 from scratch, run "securecart-lab reset 3 --environment": it backs up your files, removes '
             "the replicas, the failover drill and the routing parameters (the promoted writer's data is kept in an RDS "
             "snapshot) and deploys the starter on lab 2's database. Or keep the replica's resource as it was deployed "
             "(other changes are fine).")


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
    return ctx.lab.module("drill.py")


def is_deployed(ctx) -> bool:
    """The stack is complete and holds a DB instance."""
    cf = ctx.aws("cloudformation")
    if not stacks.is_complete(cf, STACK):
        return False
    try:
        return bool(stacks.resources(cf, STACK, "AWS::RDS::DBInstance"))
    except (ClientError, OSError):
        return False


def before_reset(ctx) -> None:
    """`reset 3` deploys the starter: refuse before any file changes when that would delete the promoted writer."""
    cf = ctx.aws("cloudformation")
    if stacks.find(cf, STACK) is None:
        return
    # The starter declares no DB instance: deploying it removes every one the stack holds.
    removals = [{"ResourceType": "AWS::RDS::DBInstance", "PhysicalResourceId": pid, "Action": "Remove"}
                for pid in stacks.resources(cf, STACK, "AWS::RDS::DBInstance")]
    try:
        _refuse_to_delete_the_writer(ctx, removals)
    except DeployError as exc:
        raise DeployError(f"reset 3 would deploy the starter replica.yaml over what runs: {exc.message} "
                          "Your files are unchanged.", REDO_HINT) from None


def teardown(ctx) -> list[str]:
    """`reset 3 --environment`: remove lab 3's resources and drill state (outage.py)."""
    return ctx.lab.module("outage.py").teardown(ctx)
