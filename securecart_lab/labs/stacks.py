"""CloudFormation for labs whose learners write templates (labs 2 and 3): parse with file and line errors,
and apply a template as a stack, reporting CloudFormation's failures readably.

moto's CloudFormation creates stacks well but cannot update most resource types in place, so a changed
template is applied by deleting the stack and creating it again; an unchanged one is left alone.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import yaml
from botocore.exceptions import ClientError

from securecart_lab.errors import DeployError, WorkspaceFileError

DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}


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


def load_template(path: Path, lab_number: int) -> dict:
    """Parse and sanity-check a template; WorkspaceFileError (file and line) when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise WorkspaceFileError(path, "file not found",
                                 hint=f'Run "securecart-lab reset {lab_number}" to get the starter back.') from None
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


def find(cf, name: str) -> dict | None:
    """The live stack called `name`, or None."""
    try:
        stacks = cf.describe_stacks(StackName=name)["Stacks"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise
    live = [s for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"]
    return live[0] if live else None


def wait(cf, name: str, timeout: float = 300) -> dict | None:
    """The stack once no operation is in progress (None when there is none)."""
    deadline = time.monotonic() + timeout
    while True:
        stack = find(cf, name)
        if stack is None or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.2)


def is_complete(cf, name: str) -> bool:
    try:
        stack = find(cf, name)
    except (ClientError, OSError):
        return False
    return stack is not None and stack["StackStatus"] in DONE


def resources(cf, name: str, resource_type: str | None = None) -> list[str]:
    """Physical ids of the stack's resources (of one type, when given)."""
    return [r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName=name)["StackResources"]
            if (resource_type is None or r["ResourceType"] == resource_type) and r.get("PhysicalResourceId")]


def apply(cf, name: str, path: Path, body: str, before_replace: Callable[[], None] | None = None,
          parameters: dict[str, str] | None = None) -> list[str]:
    """Create stack `name` from `body` (the template read from `path`) with `parameters`, replacing it when the
    template or a parameter changed.

    `before_replace` runs before an existing stack is deleted (it may raise to refuse). Returns one line per
    thing done; DeployError names each failed resource and its reason.
    """
    lines: list[str] = []
    parameters = parameters or {}
    existing = wait(cf, name)
    if existing is not None:
        current = {p["ParameterKey"]: p.get("ParameterValue") for p in existing.get("Parameters") or []}
        if (existing["StackStatus"] in DONE and cf.get_template(StackName=name)["TemplateBody"] == body
                and all(current.get(k) == v for k, v in parameters.items())):
            return [f"Stack {name} is up to date ({existing['StackStatus']})"]
        if before_replace:
            before_replace()
        try:
            cf.delete_stack(StackName=name)
        except ClientError as exc:
            raise DeployError(f"Could not delete the previous stack {name} to apply the changed template: "
                              f"{exc.response['Error'].get('Message', exc)}",
                              '"securecart-lab down" then "securecart-lab start N" starts again from an empty emulator '
                              "(your files and your database dumps are kept).") from None
        wait(cf, name)
        lines.append(f"Deleted the previous stack {name} ({existing['StackStatus']}) to apply the changed template")
    try:
        stack_id = cf.create_stack(StackName=name, TemplateBody=body,
                                   Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                                   Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"])["StackId"]
    except ClientError as exc:
        raise DeployError(f"CloudFormation rejected {path}: {exc.response['Error'].get('Message', exc)}",
                          "Fix the template and run deploy again.") from None
    stack = wait(cf, name)
    status = stack["StackStatus"] if stack else "DELETED"
    if status not in DONE:
        events = cf.describe_stack_events(StackName=stack_id)["StackEvents"]
        failures = [f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason') or e['ResourceStatus']}"
                    for e in reversed(events) if e["ResourceStatus"].endswith("_FAILED")]
        raise DeployError(
            f"Stack {name} failed ({status}): " + "; ".join(failures or [f"the stack ended in {status}"]),
            f"Fix the resource named above in {path.name} and run deploy again "
            f"(aws cloudformation describe-stack-events --stack-name {name} shows every event).",
        )
    lines.append(f"Stack {name}: {status} ({len(resources(cf, name))} resources)")
    return lines
