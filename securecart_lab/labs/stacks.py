"""CloudFormation for labs whose learners write templates (labs 2 and 3): apply a template to a stack the way the
AWS CLI does it (a change set, described, then executed), and report what happened readably.

The engine's CloudFormation validates the template before anything changes, updates in place what AWS updates
in place, replaces only what AWS replaces and rolls back to the previous resources when anything fails; this
module only talks to its API, and renders its answers: every problem with file:line:column, warnings as warnings,
the change set as a table, and each failed resource with its reason and the line that declares it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import yaml
from botocore.exceptions import ClientError

from securecart_lab.errors import DeployError, WorkspaceFileError

DONE = {"CREATE_COMPLETE", "UPDATE_COMPLETE"}
UPDATABLE = DONE | {"UPDATE_ROLLBACK_COMPLETE"}
# States a failed earlier attempt leaves; the stack holds nothing that runs, so the next deploy starts afresh.
LEFT_BY_A_FAILED_CREATE = {"ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS", "CREATE_FAILED", "DELETE_FAILED"}
CAPABILITIES = ["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"]
PARAMETERS_FILE = "parameters.json"
# cfn-lint's findings that are not errors: advice about the template, not a sign that what it deployed fails.
TEMPLATE_WARNING = "Template warning:"
_AT = re.compile(r"^(?P<message>.*) \(line (?P<line>\d+), column (?P<column>\d+)\)$")


class _CfnLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: 10x faster
    """YAML with CloudFormation's short forms (!Ref, !Sub, !GetAtt ...), for a first read of the file."""


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
    """Read and parse a template; WorkspaceFileError (file and line) when it cannot be read as one. The full
    validation (cfn-lint, with every problem) is the engine's, when the template is deployed."""
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


def declared_at(text: str, logical_id: str) -> int | None:
    """The line declaring resource `logical_id` (YAML `  Name:` or JSON `"Name":` under Resources)."""
    pattern = re.compile(rf'^\s+"?{re.escape(logical_id)}"?\s*:')
    in_resources = False
    for number, line in enumerate(text.splitlines(), 1):
        if re.match(r'^\s*"?Resources"?\s*:', line):
            in_resources = True
        elif in_resources and pattern.match(line):
            return number
    return None


def read_parameters(folder: Path, overrides: dict[str, str] | None = None) -> dict[str, str]:
    """Template parameters: `parameters.json` in the lab's folder (the AWS CLI's format,
    [{"ParameterKey": ..., "ParameterValue": ...}]), then --parameter KEY=VALUE overrides."""
    parameters: dict[str, str] = {}
    path = folder / PARAMETERS_FILE
    if path.is_file():
        text = path.read_text(encoding="utf-8")
        try:
            entries = json.loads(text)
        except json.JSONDecodeError as exc:
            raise WorkspaceFileError(path, f"invalid JSON: {exc.msg}", line=exc.lineno) from None
        hint = 'The AWS CLI\'s format: [{"ParameterKey": "DBPassword", "ParameterValue": "..."}]'
        if not isinstance(entries, list):
            raise WorkspaceFileError(path, "expected a list of {ParameterKey, ParameterValue} objects", line=1, hint=hint)
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("ParameterKey"), str) \
                    or "ParameterValue" not in entry or isinstance(entry["ParameterValue"], (dict, list)):
                raise WorkspaceFileError(path, f"each entry needs ParameterKey and ParameterValue, found {json.dumps(entry)}",
                                         line=_line_of(text, json.dumps(entry.get("ParameterKey")) if isinstance(entry, dict) else "") or 1,
                                         hint=hint)
            value = entry["ParameterValue"]
            parameters[entry["ParameterKey"]] = json.dumps(value) if isinstance(value, bool) else str(value)
    parameters.update(overrides or {})
    return parameters


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
        if stack is None or stack["StackStatus"] == "REVIEW_IN_PROGRESS" \
                or not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.1)


def delete(cf, name: str) -> str | None:
    """DeleteStack, then wait for its outcome (CloudFormation deletes in the background): None once the stack is
    gone, else one line saying why it is not (each resource that could not go, with AWS's reason)."""
    try:
        cf.delete_stack(StackName=name)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        return f"Stack {name} could not be deleted: {error.get('Code')}: {error.get('Message')}"
    stack = wait(cf, name)
    if stack is None:
        return None
    failed = [f"{e['LogicalResourceId']} ({e['ResourceType']}): {e.get('ResourceStatusReason') or e['ResourceStatus']}"
              for e in _failed_events(cf, name)]
    return (f"Stack {name} could not be deleted ({stack['StackStatus']}): "
            + ("; ".join(failed) or stack.get("StackStatusReason") or "see its events"))


def _discard(cf, name: str) -> None:
    """Delete the stack a change set created for nothing (it holds no resources)."""
    delete(cf, name)


def is_complete(cf, name: str) -> bool:
    try:
        stack = find(cf, name)
    except (ClientError, OSError):
        return False
    return stack is not None and stack["StackStatus"] in UPDATABLE


def resources(cf, name: str, resource_type: str | None = None) -> list[str]:
    """Physical ids of the stack's resources (of one type, when given)."""
    return [r["PhysicalResourceId"] for r in cf.describe_stack_resources(StackName=name)["StackResources"]
            if (resource_type is None or r["ResourceType"] == resource_type) and r.get("PhysicalResourceId")]


@dataclass
class Plan:
    """A change set as the kit shows it."""

    changes: list[dict] = field(default_factory=list)  # AWS's ResourceChange objects
    warnings: list[str] = field(default_factory=list)

    def table(self) -> list[str]:
        if not self.changes:
            return ["No resource changes."]
        rows = [("Resource", "Type", "Action", "Replacement", "Why")]
        rows += [(c["LogicalResourceId"], c["ResourceType"], c["Action"], c.get("Replacement", "-"), _why(c))
                 for c in self.changes]
        widths = [max(len(row[i]) for row in rows) for i in range(4)]
        return ["  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)).rstrip() for row in rows]


def _why(change: dict) -> str:
    if change["Action"] != "Modify":
        return {"Add": "new in the template", "Remove": "no longer in the template"}.get(change["Action"], "")
    parts: list[str] = []
    for detail in change.get("Details") or []:
        target = detail.get("Target") or {}
        name = target.get("Name") or target.get("Attribute", "")
        if detail.get("CausingEntity"):
            name += f" (via {detail['CausingEntity']})"
        if target.get("RequiresRecreation") == "Always":
            name += " (create-only)"
        if name not in parts:
            parts.append(name)
    return ", ".join(parts)


def _problems(path: Path, message: str) -> list[str]:
    """AWS's error message, one problem per line, as file:line:column: text."""
    lines = []
    for line in message.splitlines():
        at = _AT.match(line)
        lines.append(f"{path.name}:{at['line']}:{at['column']}: {at['message']}" if at else line)
    return lines


def _rejected(path: Path, exc: ClientError) -> DeployError:
    problems = _problems(path, exc.response["Error"].get("Message", str(exc)))
    return DeployError(f"CloudFormation rejected {path} ({len(problems)} problem{'s' if len(problems) > 1 else ''}); "
                       "nothing was changed:\n  " + "\n  ".join(problems), "Fix the template and run deploy again.")


def check(cf, name: str, path: Path, body: str, parameters: dict[str, str] | None = None) -> None:
    """The change set `body` would make, made and dropped (apply's preview): DeployError naming every problem
    CloudFormation rejects. For a lab that applies several templates, so that a bad later one stops the deploy
    before an earlier one changes anything (ValidateTemplate, like AWS's, checks only the format)."""
    apply(cf, name, path, body, parameters, preview=True)


def apply(cf, name: str, path: Path, body: str, parameters: dict[str, str] | None = None, preview: bool = False,
          guard: Callable[[list[dict]], None] | None = None) -> list[str]:
    """Apply `body` (the template read from `path`) to stack `name` through a change set; with `preview`, only
    show the change set. `guard(changes)` runs before a change set is executed (it may raise to refuse).
    Returns the lines to show; DeployError names every problem or failed resource."""
    parameters = parameters or {}
    existing = wait(cf, name)
    status = existing["StackStatus"] if existing else None
    if status in LEFT_BY_A_FAILED_CREATE:
        if preview:
            return [f"Stack {name} is {status} (left by an earlier failed deploy): deploy deletes it and creates "
                    "every resource of the template."]
        failure = delete(cf, name)
        if failure:
            raise DeployError(failure, f"Fix what it says, then deploy again (aws cloudformation describe-stack-events "
                                       f"--stack-name {name} shows every event).")
        existing, status = None, None
    elif status == "UPDATE_ROLLBACK_FAILED" and not preview:
        cf.continue_update_rollback(StackName=name)
        status = "UPDATE_ROLLBACK_COMPLETE"
    if status is not None and status not in UPDATABLE:
        raise DeployError(f"Stack {name} is {status}; it cannot be updated now.",
                          f"aws cloudformation describe-stack-events --stack-name {name} shows what happened.")
    if status in UPDATABLE and _unchanged(cf, existing, body, parameters):
        return [f"Stack {name} is up to date ({status})"]
    kind = "UPDATE" if existing else "CREATE"
    change_set_name = f"securecart-{time.strftime('%Y%m%d-%H%M%S')}-{int(time.time() * 1000) % 1000:03d}"
    try:
        created = cf.create_change_set(StackName=name, ChangeSetName=change_set_name, TemplateBody=body,
                                       ChangeSetType=kind, Capabilities=CAPABILITIES,
                                       Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()])
    except ClientError as exc:
        raise _rejected(path, exc) from None
    change_set = cf.describe_change_set(ChangeSetName=created["Id"])
    plan = Plan([c["ResourceChange"] for c in change_set.get("Changes") or []], _warnings(cf, path, created["Id"]))
    lines = [f"{TEMPLATE_WARNING} {w}" for w in plan.warnings]
    if change_set["Status"] == "FAILED":
        cf.delete_change_set(ChangeSetName=created["Id"])
        if existing is None:
            _discard(cf, name)
        return lines + [f"Stack {name} is up to date ({status}): {change_set.get('StatusReason', '')}"]
    if preview:
        cf.delete_change_set(ChangeSetName=created["Id"])
        if existing is None:
            _discard(cf, name)
        return lines + [f"Preview of stack {name} (nothing was changed):"] + ["  " + row for row in plan.table()]
    if guard:
        try:
            guard(plan.changes)
        except Exception:
            cf.delete_change_set(ChangeSetName=created["Id"])
            if existing is None:
                _discard(cf, name)
            raise
    started = time.time()
    cf.execute_change_set(ChangeSetName=created["Id"])
    stack = wait(cf, name)
    final = stack["StackStatus"] if stack else "DELETED"
    if final not in DONE:
        raise DeployError(_failure(cf, name, path, body, final),
                          f"Fix the resource named above in {path.name} and run deploy again "
                          f"(aws cloudformation describe-stack-events --stack-name {name} shows every event).")
    lines += [f"Stack {name}: {final} in {time.time() - started:.1f} s ({len(resources(cf, name))} resources)"]
    return lines + ["  " + row for row in plan.table()]


def _unchanged(cf, stack: dict, body: str, parameters: dict[str, str]) -> bool:
    current = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters") or []}
    if any(current.get(k) != v for k, v in parameters.items()):
        return False
    return cf.get_template(StackName=stack["StackName"])["TemplateBody"] == body


def _warnings(cf, path: Path, change_set_id: str) -> list[str]:
    try:
        events = cf.describe_events(ChangeSetName=change_set_id)["OperationEvents"]
    except (ClientError, AttributeError):  # an engine without DescribeEvents (LocalStack) has no findings to show
        return []
    warnings = []
    for event in events:
        if event.get("ValidationFailureMode") == "WARN":
            for line in _problems(path, event.get("ValidationStatusReason", "")):
                warnings.append(f"{line} ({event.get('ValidationName')})")
    return warnings


def _failed_events(cf, name: str) -> list[dict]:
    """The resources' *_FAILED events of the stack's last operation, oldest first."""
    recent = []
    for event in cf.describe_stack_events(StackName=name)["StackEvents"]:  # newest first
        recent.append(event)
        if event["ResourceType"] == "AWS::CloudFormation::Stack" and event.get("ResourceStatusReason") == "User Initiated":
            break
    return [e for e in reversed(recent)
            if e["ResourceStatus"].endswith("_FAILED") and e["ResourceType"] != "AWS::CloudFormation::Stack"]


def _failure(cf, name: str, path: Path, body: str, status: str) -> str:
    failures = []
    for event in _failed_events(cf, name):
        line = declared_at(body, event["LogicalResourceId"])
        where = f", declared at {path.name}:{line}" if line else ""
        failures.append(f"{event['LogicalResourceId']} ({event['ResourceType']}{where}): "
                        f"{event.get('ResourceStatusReason') or event['ResourceStatus']}")
    outcome = ("the previous resources were restored and still run" if status == "UPDATE_ROLLBACK_COMPLETE"
               else "nothing of it was left behind" if status == "ROLLBACK_COMPLETE" else "")
    return (f"Stack {name} failed ({status}{': ' + outcome if outcome else ''}):\n  "
            + "\n  ".join(dict.fromkeys(failures) or [f"the stack ended in {status}"]))
