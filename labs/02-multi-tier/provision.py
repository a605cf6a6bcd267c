"""Lab 2: deploy the learner's CloudFormation template as stack `securecart-lab02` and report what happened.

The template is applied through a change set (see securecart_lab/labs/stacks.py): what AWS updates in place is
updated in place (the load balancer keeps its URL, the database its rows), a failure rolls back to what ran
before. When the stack has an S3 bucket with website hosting, the storefront's files are uploaded to it with a
config.js naming the load balancer.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlsplit

from botocore.exceptions import ClientError

from securecart_lab.app import static_dir
from securecart_lab.labs import stacks

STACK = "securecart-lab02"
TEMPLATE = "template.yaml"
HEALTHY_WAIT_SECONDS = 30
CONTENT_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
                 ".css": "text/css; charset=utf-8"}
CONFIG_JS = "config.js"


def load_template(path: Path) -> dict:
    """Parse and sanity-check the learner's template (file and line on errors)."""
    return stacks.load_template(path, 2)


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


def deploy(ctx, source: Path) -> list[str]:
    """Apply source/template.yaml to stack securecart-lab02 (parameters from source/parameters.json and
    --parameter), wait for it, and report the change set, outputs and the load balancer's healthy targets.
    With ctx.preview, only show the change set."""
    path = source / TEMPLATE
    document, skipped = supported_part(load_template(path), ctx.engine.capabilities)
    body = json.dumps(document, indent=1) if skipped else path.read_text(encoding="utf-8")
    cf = ctx.aws("cloudformation")
    lines: list[str] = [f"Not deployed: the {ctx.engine.name} engine has no API for " + ", ".join(skipped)] if skipped else []
    lines += stacks.apply(cf, STACK, path, body, parameters=stacks.read_parameters(source, ctx.parameters),
                          preview=ctx.preview, guard=lambda changes: _empty_buckets(ctx, changes))
    if ctx.preview:
        return lines
    return lines + _summary(ctx, cf) + _upload_storefront(ctx)


def _summary(ctx, cf) -> list[str]:
    stack = stacks.find(cf, STACK) or {}
    lines = [f"Output {o['OutputKey']} = {o['OutputValue']}" for o in stack.get("Outputs") or []]
    lines += _wait_for_targets(ctx)
    return lines


def _stack_resources(ctx, resource_type: str) -> list[str]:
    return stacks.resources(ctx.aws("cloudformation"), STACK, resource_type)


def _wait_for_targets(ctx) -> list[str]:
    """Wait (up to HEALTHY_WAIT_SECONDS) until every target of the stack's target groups is healthy, or until, none
    being healthy, the Auto Scaling group replaced a target its health checks had found unhealthy: the verdict is in
    (with HealthCheckType ELB that happens once the grace period is over), and the replacements would fail alike."""
    if "elbv2" not in ctx.engine.capabilities:
        return []
    elbv2 = ctx.aws("elbv2")
    lines = []
    for lb_arn in _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::LoadBalancer"):
        lb = elbv2.describe_load_balancers(LoadBalancerArns=[lb_arn])["LoadBalancers"][0]
        lines.append(f"Site: http://{lb['DNSName']}/")
    deadline = time.monotonic() + HEALTHY_WAIT_SECONDS
    for tg_arn in _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::TargetGroup"):
        verdicts: dict[str, str] = {}  # target -> its last unhealthy verdict, kept after the target is replaced
        size = 0
        while True:
            health = target_health(ctx, tg_arn)
            replaced = set(verdicts) - set(health.states)
            verdicts.update(health.verdicts)
            size = max(size, health.total)
            if (health.total and health.healthy == health.total) or time.monotonic() > deadline \
                    or (replaced and not health.healthy):
                break
            time.sleep(0.2)
        health = health.with_replaced(verdicts, max(size, _desired_capacity(ctx)))
        lines.append(f"Target group {health.name}: {health.healthy} of {health.total} targets healthy")
        if health.healthy == 0:
            lines.append(f"Warning: the site is not serving yet: {health.explain()}")
    return lines


def _desired_capacity(ctx) -> int:
    """How many instances the stack's Auto Scaling groups keep (a replaced one may not be registered yet)."""
    if "autoscaling" not in ctx.engine.capabilities:
        return 0
    names = _stack_resources(ctx, "AWS::AutoScaling::AutoScalingGroup")
    groups = ctx.aws("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=names)["AutoScalingGroups"] if names else []
    return sum(g.get("DesiredCapacity") or 0 for g in groups)


@dataclass
class TargetHealth:
    """A target group's health as describe-target-health reports it, and what to read to find out why."""

    name: str
    healthy: int
    total: int
    problems: list[str]  # "i-0abc: unhealthy (Target.ResponseCodeMismatch: Health checks failed with these codes: [503])"
    unhealthy_ids: list[str]
    states: dict[str, str] = field(default_factory=dict)  # every registered target -> its state ("initial"...)
    verdicts: dict[str, str] = field(default_factory=dict)  # target -> its problem, for targets found unhealthy

    def explain(self) -> str:
        if not self.total:
            return (f"target group {self.name} has no targets (is the Auto Scaling group's TargetGroupARNs this "
                    "target group, and does the group launch instances?)")
        logs = "; ".join(f"securecart-lab logs instance {i}" for i in self.unhealthy_ids[:2])
        return (f"{self.healthy} of {self.total} targets of {self.name} healthy: " + "; ".join(self.problems[:3])
                + (f". The instance's log says why (its user data and app output): {logs}, or "
                   "aws ec2 get-console-output --instance-id ID" if logs else ""))

    def with_replaced(self, verdicts: dict[str, str], size: int = 0) -> "TargetHealth":
        """This health, naming first the targets found unhealthy earlier (`verdicts`) and replaced since (Auto Scaling
        acted on that verdict, and their logs say why), then the others. `size`: how many targets the group had
        (a replacement may not be registered yet)."""
        current = dict(zip(self.unhealthy_ids, self.problems))
        gone = {i: f"{p}, then replaced" for i, p in verdicts.items() if i not in self.states}
        ordered = {**gone, **{i: p for i, p in current.items() if i in self.verdicts}, **current}
        return replace(self, total=max(self.total, size), problems=list(ordered.values()), unhealthy_ids=list(ordered))


def target_health(ctx, tg_arn: str) -> TargetHealth:
    descriptions = ctx.aws("elbv2").describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
    healthy, problems, unhealthy, verdicts = 0, [], [], {}
    for d in descriptions:
        target, state = d["Target"]["Id"], d["TargetHealth"]
        if state.get("State") == "healthy":
            healthy += 1
            continue
        unhealthy.append(target)
        reason = ": ".join(x for x in (state.get("Reason"), state.get("Description")) if x)
        problems.append(f"{target}: {state.get('State')}" + (f" ({reason})" if reason else ""))
        if state.get("State") == "unhealthy":
            verdicts[target] = problems[-1]
    return TargetHealth(tg_arn.split("/")[-2], healthy, len(descriptions), problems, unhealthy,
                        {d["Target"]["Id"]: d["TargetHealth"].get("State") for d in descriptions}, verdicts)


def site_health(ctx, settle: float = 0) -> TargetHealth | None:
    """The health of the target groups behind the stack's load balancer, when there are any (None: no elbv2).
    With `settle`, waits up to that many seconds while targets are still `initial` (just registered, e.g. the
    replacements of instances that failed), so that what is reported is the health checks' verdict."""
    if "elbv2" not in ctx.engine.capabilities:
        return None
    try:
        arns = _stack_resources(ctx, "AWS::ElasticLoadBalancingV2::TargetGroup")
    except ClientError:
        return None
    deadline = time.monotonic() + settle
    while True:
        found = [target_health(ctx, arn) for arn in arns]
        if not found:
            return None
        waiting = any(state == "initial" for h in found for state in h.states.values())
        if not waiting or time.monotonic() >= deadline:
            break
        time.sleep(0.2)
    return TargetHealth(", ".join(h.name for h in found), sum(h.healthy for h in found), sum(h.total for h in found),
                        [p for h in found for p in h.problems], [i for h in found for i in h.unhealthy_ids],
                        {i: st for h in found for i, st in h.states.items()},
                        {i: p for h in found for i, p in h.verdicts.items()})


def website_buckets(ctx) -> list[str]:
    """The stack's S3 buckets that have static website hosting."""
    s3 = ctx.aws("s3")
    found = []
    for name in _stack_resources(ctx, "AWS::S3::Bucket"):
        try:
            s3.get_bucket_website(Bucket=name)
        except ClientError:
            continue
        found.append(name)
    return found


def storefront_url(ctx, bucket: str) -> str:
    """The bucket's website endpoint: path-style on the local engine, LocalStack's website host otherwise."""
    if ctx.engine.name == "local":
        return f"{ctx.endpoint_url}/{bucket}/"
    return f"http://{bucket}.s3-website.localhost.localstack.cloud:{urlsplit(ctx.endpoint_url).port or 80}/"


def config_js(api_url: str | None) -> str:
    """The storefront's config.js: the API's origin (the load balancer), or same-origin when there is none."""
    return f"window.SECURECART_API = {json.dumps(api_url or '')};\n"


def _upload_storefront(ctx) -> list[str]:
    """Upload the storefront (and a config.js naming the ALB) to each website bucket of the stack."""
    if not stacks.is_complete(ctx.aws("cloudformation"), STACK):
        return []
    s3 = ctx.aws("s3")
    lines = []
    for bucket in website_buckets(ctx):
        files = {f.name: f.read_bytes() for f in sorted(static_dir().iterdir()) if f.suffix in CONTENT_TYPES}
        files[CONFIG_JS] = config_js(site_url(ctx)).encode()
        # Only what differs is sent (S3's ETag of a single-part object is its MD5): a redeploy stays quick, and a
        # file the learner removed or changed in the bucket by hand comes back.
        stored = {o["Key"]: o["ETag"].strip('"') for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
        for name, body in files.items():
            if stored.get(name) != hashlib.md5(body, usedforsecurity=False).hexdigest():
                s3.put_object(Bucket=bucket, Key=name, Body=body, ContentType=CONTENT_TYPES[Path(name).suffix])
        lines.append(f"Storefront: {storefront_url(ctx, bucket)}")
    return lines


def _empty_buckets(ctx, changes: list[dict]) -> None:
    """Delete the objects in the stack's buckets that the change set deletes, so they can go, as on AWS after
    `aws s3 rm --recursive`."""
    s3 = ctx.aws("s3")
    doomed = [c.get("PhysicalResourceId") for c in changes if c["ResourceType"] == "AWS::S3::Bucket"
              and (c["Action"] == "Remove" or c.get("Replacement") == "True")]
    for bucket in filter(None, doomed):
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
                keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
                if keys:
                    s3.delete_objects(Bucket=bucket, Delete={"Objects": keys})
        except ClientError:
            continue  # already gone


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
    if not stacks.is_complete(ctx.aws("cloudformation"), STACK):
        return False
    url = site_url(ctx)
    if url is None or not _stack_resources(ctx, "AWS::RDS::DBInstance"):
        return False
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False
