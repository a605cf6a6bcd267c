"""Lab 2: deploy the learner's CloudFormation template as stack `securecart-lab02` and report what happened.

moto's CloudFormation creates stacks well but cannot update most of these resource types in place, so a changed
template is applied by deleting the stack and creating it again (the database is dumped first, see the RDS
bridge); an unchanged template is left alone.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml
from botocore.exceptions import ClientError

from securecart_lab.errors import DeployError, WorkspaceFileError

STACK = "securecart-lab02"
TEMPLATE = "template.yaml"
_DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
_FAILED = {"CREATE_FAILED", "ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED", "UPDATE_ROLLBACK_COMPLETE"}
HEALTHY_WAIT_SECONDS = 30


class _CfnLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt ...)."""


def _tag(loader, tag_suffix, node):
    name = "Ref" if tag_suffix == "Ref" else f"Fn::{tag_suffix}"
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
        if tag_suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return {name: value}


_CfnLoader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict:
    """Parse and sanity-check a template; WorkspaceFileError (file and line) when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkspaceFileError(path, "file not found", hint='Run "securecart-lab reset 2" to get the starter back.') from None
    try:
        document = yaml.load(text, Loader=_CfnLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise WorkspaceFileError(path, f"invalid YAML: {exc.problem or exc.context}",
                                 line=mark.line + 1 if mark else None) from None
    if not isinstance(document, dict):
        raise WorkspaceFileError(path, "a CloudFormation template is a mapping with a Resources section", line=1)
    resources = document.get("Resources")
    if not isinstance(resources, dict) or not resources:
        raise WorkspaceFileError(path, "the template has no Resources", line=_line_of(text, "Resources"))
    for name, resource in resources.items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise WorkspaceFileError(path, f"resource {name} has no Type", line=_line_of(text, f"{name}:"))
    return document


def _line_of(text: str, needle: str) -> int | None:
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith(needle):
            return number
    return None


# The AWS API each resource type needs: an engine without it (LocalStack community) gets the rest of the stack.
_SERVICE_OF_TYPE = {"AWS::RDS::": "rds", "AWS::ElasticLoadBalancingV2::": "elbv2", "AWS::AutoScaling::": "autoscaling"}
_SUB_NAMES = re.compile(r"\$\{([A-Za-z0-9]+)[.}]")


def _references(value) -> set[str]:
    """Logical ids a resource or output refers to (Ref, GetAtt, Sub, DependsOn)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else str(inner).split(".")[0])
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                found |= set(_SUB_NAMES.findall(text if isinstance(text, str) else ""))
                found |= _references(inner[1:] if isinstance(inner, list) else None)
            elif key == "DependsOn":
                found |= {inner} if isinstance(inner, str) else set(inner)
            else:
                found |= _references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= _references(inner)
    return found


def supported_part(document: dict, capabilities) -> tuple[dict, list[str]]:
    """The template without the resources the engine has no API for (and what refers to them), and their names."""
    resources = dict(document["Resources"])
    dropped = {name for name, r in resources.items()
               if any(r["Type"].startswith(prefix) and service not in capabilities for prefix, service in _SERVICE_OF_TYPE.items())}
    while True:
        more = {name for name, r in resources.items() if name not in dropped and _references(r) & dropped}
        if not more:
            break
        dropped |= more
    if not dropped:
        return document, []
    outputs = {k: v for k, v in (document.get("Outputs") or {}).items() if not _references(v) & dropped}
    kept = {**document, "Resources": {k: v for k, v in resources.items() if k not in dropped}}
    if outputs:
        kept["Outputs"] = outputs
    else:
        kept.pop("Outputs", None)
    return kept, [f"{name} ({resources[name]['Type']})" for name in sorted(dropped)]


def provision(ctx) -> None:
    """Lab 2 has no baseline of its own: everything comes from the learner's template."""


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
    """The stack once no operation is in progress (None when there is none)."""
    deadline = time.monotonic() + timeout
    while True:
        stack = _stack(cf)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def _delete(cf) -> None:
    try:
        cf.delete_stack(StackName=STACK)
    except ClientError as exc:
        raise DeployError(f"Could not delete the previous stack {STACK} to apply the changed template: "
                          f"{exc.response['Error'].get('Message', exc)}",
                          '"securecart-lab down" then "securecart-lab start 2" starts again from an empty emulator '
                          "(your files and your database dumps are kept).") from None
    _wait(cf)


def _failures(cf, stack_id: str) -> list[str]:
    events = cf.describe_stack_events(StackName=stack_id)["StackEvents"]
    return [
        f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason') or e['ResourceStatus']}"
        for e in reversed(events) if e["ResourceStatus"].endswith("_FAILED")
    ]


def deploy(ctx, source: Path) -> list[str]:
    """Create stack securecart-lab02 from source/template.yaml (recreating it when the template changed),
    wait for it, and report its resources, outputs and the load balancer's healthy targets."""
    path = source / TEMPLATE
    document, skipped = supported_part(load_template(path), ctx.engine.capabilities)
    body = json.dumps(document, indent=1) if skipped else path.read_text(encoding="utf-8")
    cf = ctx.aws("cloudformation")
    lines: list[str] = [f"Not deployed: the {ctx.engine.name} engine has no API for " + ", ".join(skipped)] if skipped else []
    existing = _wait(cf)
    if existing is not None:
        current = cf.get_template(StackName=STACK)["TemplateBody"]
        if existing["StackStatus"] in _DONE and current == body:
            return [*lines, f"Stack {STACK} is up to date ({existing['StackStatus']})", *_summary(ctx, cf)]
        _delete(cf)
        lines.append(f"Deleted the previous stack {STACK} ({existing['StackStatus']}) to apply the changed template")
    try:
        stack_id = cf.create_stack(StackName=STACK, TemplateBody=body,
                                   Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
    except ClientError as exc:
        raise DeployError(f"CloudFormation rejected {path}: {exc.response['Error'].get('Message', exc)}",
                          "Fix the template and run deploy again.") from None
    stack = _wait(cf)
    status = stack["StackStatus"] if stack else "DELETED"
    if status not in _DONE:
        failures = _failures(cf, stack_id) or [f"the stack ended in {status}"]
        raise DeployError(
            f"Stack {STACK} failed ({status}): " + "; ".join(failures),
            "Fix the resource named above in template.yaml and run deploy again "
            f"(aws cloudformation describe-stack-events --stack-name {STACK} shows every event).",
        )
    resources = cf.describe_stack_resources(StackName=STACK)["StackResources"]
    lines.append(f"Stack {STACK}: {status} ({len(resources)} resources)")
    return lines + _summary(ctx, cf)


def _summary(ctx, cf) -> list[str]:
    stack = _stack(cf) or {}
    lines = [f"Output {o['OutputKey']} = {o['OutputValue']}" for o in stack.get("Outputs") or []]
    lines += _wait_for_targets(ctx)
    return lines


def _stack_resources(ctx, resource_type: str) -> list[str]:
    cf = ctx.aws("cloudformation")
    return [r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName=STACK)["StackResources"]
            if r["ResourceType"] == resource_type and r.get("PhysicalResourceId")]


def _wait_for_targets(ctx) -> list[str]:
    """Wait (up to HEALTHY_WAIT_SECONDS) until every target of the stack's target groups is healthy."""
    if "elbv2" not in ctx.engine.capabilities:
        return []
    elbv2 = ctx.aws("elbv2")
    lines = []
    for lb_arn in _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        lb = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
        lines.append(f"Site: http://{lb['DNSName']}/")
    deadline = time.monotonic() + HEALTHY_WAIT_SECONDS
    for tg_arn in _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::TargetGroup"):
        while True:
            states = [d["TargetHealth"]["State"] for d in elbv2.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]]
            healthy = states.count("healthy")
            if (states and healthy == len(states)) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        name = tg_arn.split("/")[-2]
        lines.append(f"Target group {name}: {healthy} of {len(states)} targets healthy")
    return lines


def site_url(ctx) -> str | None:
    """http://DNSName of the stack's load balancer, when there is one."""
    try:
        arns = _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    except ClientError:
        return None
    if not arns:
        return None
    lb = ctx.aws("elbv2").describe_load_balancers(LoadBalancerArns=arns[:1])["LoadBalancers"][0]
    return f"http://{lb['DNSName']}"


def is_deployed(ctx) -> bool:
    """The stack is complete and has a database and a load balancer that serves the site."""
    try:
        stack = _stack(ctx.aws("cloudformation"))
    except (ClientError, OSError):
        return False
    if stack is None or stack["StackStatus"] not in _DONE:
        return False
    url = site_url(ctx)
    if url is None or not _stack_resources(ctx, "AWS::RDS::DBInstance"):
        return False
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
