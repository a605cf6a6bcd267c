"""The CloudFormation API on top of the engine: CreateStack, UpdateStack, ValidateTemplate, change sets
(Create/Describe/Execute/Delete/List), DescribeEvents, DeleteStack and
UpdateTerminationProtection, answering in AWS's shapes and with AWS's errors.

Each function replaces the method of the same name of moto's CloudFormationResponse (see install()).
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from securecart_lab.emulator import hooks
from securecart_lab.emulator.cloudformation import changes as changes_module
from securecart_lab.emulator.cloudformation import drift, engine, template

_UPDATABLE = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"}
_NO_CHANGES = ("The submitted information didn't contain changes. Submit different information to create a change "
               "set.")
_IAM_TYPES = ("AWS::IAM::",)


def _error(message: str, code: str = "ValidationError"):
    error = hooks.resolve("cfn.validation_error")(message=message)
    error.code = code
    return error


def _result(value):
    return hooks.resolve("cfn.action_result")(value)


@dataclass
class ChangeSet:
    id: str
    name: str
    stack: Any
    type: str
    body: str
    document: dict
    parameters: dict
    description: str | None
    capabilities: list[str]
    changes: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    status: str = "CREATE_COMPLETE"
    status_reason: str | None = None
    execution_status: str = "AVAILABLE"
    created: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def summary(self) -> dict:
        summary = {"StackId": self.stack.stack_id, "StackName": self.stack.name, "ChangeSetId": self.id,
                   "ChangeSetName": self.name, "ExecutionStatus": self.execution_status, "Status": self.status,
                   "CreationTime": self.created, "IncludeNestedStacks": False}
        if self.status_reason:
            summary["StatusReason"] = self.status_reason
        if self.description:
            summary["Description"] = self.description
        return summary


def _change_sets(backend) -> dict[str, ChangeSet]:
    if not hasattr(backend, "kit_change_sets"):
        backend.kit_change_sets = {}
    return backend.kit_change_sets


def _find_change_set(backend, name: str, stack_name: str | None) -> ChangeSet:
    for change_set in _change_sets(backend).values():
        if name == change_set.id or (name == change_set.name and _of_stack(change_set, stack_name)):
            return change_set
    raise _error(f"ChangeSet [{name}] does not exist", "ChangeSetNotFound")


def _of_stack(change_set: ChangeSet, stack_name: str | None) -> bool:
    """A stack's name means the live stack of that name: a deleted one's change sets went with it."""
    stack = change_set.stack
    return stack_name == stack.stack_id or (stack_name == stack.name and stack.status != "DELETE_COMPLETE")


def _body(response) -> str:
    body = response._get_param("TemplateBody")
    url = response._get_param("TemplateURL")
    if not body and url:
        body = response._get_stack_from_s3_url(url)
    return body


def _check(body: str) -> tuple[dict, list]:
    """(long-form template, warnings); AWS's ValidationError naming every error (each with its line)."""
    try:
        return template.check(body)
    except template.TemplateError as exc:
        raise _error(str(exc)) from None


def _given_parameters(response, stack=None) -> dict[str, str]:
    given = {}
    for parameter in response._get_param("Parameters", []) or []:
        key = parameter["ParameterKey"]
        if str(parameter.get("UsePreviousValue", "")).lower() == "true":
            if stack is None or key not in stack.resource_map.input_parameters:
                if stack is not None and key in stack.resource_map.resolved_parameters:
                    given[key] = _as_input(stack.resource_map.resolved_parameters[key])
                    continue
                raise _error(f"Invalid input for parameter key {key}. Cannot specify usePreviousValue as true for a "
                             "parameter key that does not exist in the previous template")
            given[key] = stack.resource_map.input_parameters[key]
        else:
            given[key] = parameter.get("ParameterValue", "")
    return given


def _as_input(value) -> str:
    return ",".join(str(v) for v in value) if isinstance(value, list) else str(value)


def _check_parameters(document: dict, given: dict[str, str]) -> None:
    declared = document.get("Parameters") or {}
    unknown = [key for key in given if key not in declared]
    if unknown:
        raise _error(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    missing = [key for key, p in declared.items() if key not in given and "Default" not in (p or {})]
    if missing:
        raise _error(f"Parameters: [{', '.join(missing)}] must have values")


def _effective(document: dict, given: dict[str, str]) -> dict[str, str]:
    values = {k: _as_input(p.get("Default")) for k, p in (document.get("Parameters") or {}).items()
              if isinstance(p, dict) and "Default" in p}
    return {**values, **given}


def _required_capabilities(document: dict) -> list[str]:
    named = [r for r in document["Resources"].values() if r["Type"].startswith(_IAM_TYPES)
             and any(k in (r.get("Properties") or {}) for k in ("RoleName", "UserName", "GroupName", "ManagedPolicyName", "InstanceProfileName"))]
    if named:
        return ["CAPABILITY_NAMED_IAM"]
    if any(r["Type"].startswith(_IAM_TYPES) for r in document["Resources"].values()):
        return ["CAPABILITY_IAM"]
    return []


def _check_capabilities(document: dict, given: list[str]) -> None:
    required = _required_capabilities(document)
    if required and not (set(required) <= set(given) or (required == ["CAPABILITY_IAM"] and "CAPABILITY_NAMED_IAM" in given)):
        raise _error(f"Requires capabilities : [{', '.join(required)}]", "InsufficientCapabilitiesException")


def _try_load(stack, document: dict, parameters: dict, backend) -> dict[str, str]:
    """moto's parameter and output checks, before anything is created (nothing is). Returns the parameters as
    resolved (defaults applied, SSM parameter types read from Parameter Store), to compare with the stack's."""
    try:
        resource_map = engine.new_resource_map(stack, document, parameters, backend.exports)
        return {k: _as_input(v) for k, v in resource_map.resolved_parameters.items()}
    except Exception as exc:
        message = getattr(exc, "message", None) or str(exc)
        raise _error(message) from None


def _run(target, *args) -> None:
    threading.Thread(target=target, args=args, name="cloudformation", daemon=True).start()


# --- handlers (methods of moto's CloudFormationResponse) --------------------------------------------------------

def validate_template(self):
    body = _body(self)
    try:
        document, problems = template.lint(body)
    except template.TemplateError as exc:
        raise _error(str(exc)) from None
    rejected = [p for p in problems if p.severity == "error" and p.template_format]
    if rejected:
        raise _error("\n".join(p.text() for p in rejected))
    parameters = []
    for key, parameter in (document.get("Parameters") or {}).items():
        entry = {"ParameterKey": key, "NoEcho": str(parameter.get("NoEcho", "false")).lower() == "true"}
        if "Default" in parameter:
            entry["DefaultValue"] = _as_input(parameter["Default"])
        if parameter.get("Description"):
            entry["Description"] = parameter["Description"]
        parameters.append(entry)
    result: dict[str, Any] = {"Parameters": parameters, "Capabilities": _required_capabilities(document),
                              "DeclaredTransforms": [document["Transform"]] if isinstance(document.get("Transform"), str)
                              else list(document.get("Transform") or [])}
    if document.get("Description"):
        result["Description"] = document["Description"]
    if result["Capabilities"]:
        types = sorted({r["Type"] for r in document["Resources"].values() if r["Type"].startswith(_IAM_TYPES)})
        result["CapabilitiesReason"] = f"The following resource(s) require capabilities: [{', '.join(types)}]"
    return _result(result)


def create_stack(self):
    backend = self.cloudformation_backend
    name, body = self._get_param("StackName"), _body(self)
    if any(s.name == name for s in backend.stacks.values()):
        raise _error(f"Stack [{name}] already exists", "AlreadyExistsException")
    document, _ = _check(body)
    given = _given_parameters(self)
    _check_parameters(document, given)
    _check_capabilities(document, self._get_param("Capabilities", []) or [])
    tags = {item["Key"]: item["Value"] for item in self._get_param("Tags", []) or []}
    try:
        stack = backend.create_stack(name=name, template=json.dumps(document), parameters=given,
                                     notification_arns=self._get_param("NotificationARNs", []), tags=tags,
                                     role_arn=self._get_param("RoleARN"),
                                     enable_termination_protection=_flag(self, "EnableTerminationProtection"))
    except Exception as exc:
        if hasattr(exc, "code"):
            raise
        raise _error(getattr(exc, "message", None) or str(exc)) from None
    stack.template = body
    engine.keep_as_written(stack, document)
    return _result({"StackId": stack.stack_id})


def update_stack(self):
    backend = self.cloudformation_backend
    stack = backend.get_stack(self._get_param("StackName"))
    _require_updatable(stack)
    body = stack.template if str(self._get_param("UsePreviousTemplate", "")).lower() == "true" else _body(self)
    document, _ = _check(body)
    given = _given_parameters(self, stack)
    _check_parameters(document, given)
    _check_capabilities(document, self._get_param("Capabilities", []) or [])
    resolved = _try_load(stack, document, given, backend)
    if document == stack.template_dict and resolved == _current_parameters(stack):
        raise _error("No updates are to be performed.")
    stack.status = "UPDATE_IN_PROGRESS"
    _run(engine.update, stack, body, document, given, backend.exports)
    return _result({"StackId": stack.stack_id})


def _flag(response, name: str) -> bool:
    return str(response._get_param(name, "")).lower() == "true"


def update_termination_protection(self):
    """moto keeps the flag CreateStack is given but ignores it and lacks this action; DeleteStack enforces it."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    if stack.status == "DELETE_COMPLETE":
        raise _error(f"Stack [{self._get_param('StackName')}] does not exist")
    stack.enable_termination_protection = _flag(self, "EnableTerminationProtection")
    return _result({"StackId": stack.stack_id})


def _current_parameters(stack) -> dict[str, str]:
    return {k: _as_input(v) for k, v in stack.resource_map.resolved_parameters.items()}


def _require_updatable(stack) -> None:
    if stack.status not in _UPDATABLE:
        raise _error(f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")


def create_change_set(self):
    backend = self.cloudformation_backend
    stack_name, name = self._get_param("StackName"), self._get_param("ChangeSetName")
    hooks.resolve("cfn.validate_change_set_name")(name)
    kind = self._get_param("ChangeSetType", "UPDATE") or "UPDATE"
    existing = next((s for s in backend.stacks.values() if s.name == stack_name), None)
    if kind == "UPDATE":
        if existing is None:
            raise _error(f"Stack [{stack_name}] does not exist")
        _require_updatable(existing)
    elif existing is not None and existing.status != "REVIEW_IN_PROGRESS":
        raise _error(f"Stack [{stack_name}] already exists and cannot be created again with the changeSet [{name}].",
                     "AlreadyExistsException")
    if any(cs.name == name and cs.stack is existing for cs in _change_sets(backend).values()):
        raise _error(f"ChangeSet [{name}] already exists", "AlreadyExistsException")
    use_previous = str(self._get_param("UsePreviousTemplate", "")).lower() == "true"
    body = existing.template if use_previous and existing is not None else _body(self)
    document, warnings = _check(body)
    given = _given_parameters(self, existing if kind == "UPDATE" else None)
    _check_parameters(document, given)
    capabilities = self._get_param("Capabilities", []) or []
    _check_capabilities(document, capabilities)
    if existing is None:
        stack_class = hooks.resolve("cfn.stack")
        existing = stack_class(stack_id=hooks.resolve("cfn.stack_id")(stack_name, backend.region_name, backend.account_id),
                               name=stack_name, template={}, parameters=given, account_id=backend.account_id,
                               region_name=backend.region_name,
                               tags={t["Key"]: t["Value"] for t in self._get_param("Tags", []) or []})
        existing.status = "REVIEW_IN_PROGRESS"
        existing._add_stack_event("REVIEW_IN_PROGRESS", resource_status_reason="User Initiated")
        backend.stacks[existing.stack_id] = existing
    resolved = _try_load(existing, document, given, backend)
    change_set = ChangeSet(id=hooks.resolve("cfn.change_set_id")(name, backend.region_name, backend.account_id),
                           name=name, stack=existing, type=kind, body=body, document=document, parameters=given,
                           description=self._get_param("Description"), capabilities=capabilities, warnings=warnings)
    if kind == "CREATE":
        change_set.changes = changes_module.diff({}, document, {}, {})
    else:
        physical = {k: getattr(v, "physical_resource_id", None) for k, v in existing.resource_map._parsed_resources.items()
                    if k in (existing.template_dict.get("Resources") or {})}
        # Resolved values on both sides: an SSM-typed parameter (an AMI id) changes only when its value does.
        change_set.changes = changes_module.diff(existing.template_dict, document, _current_parameters(existing),
                                                 resolved, physical)
        if not change_set.changes and document == existing.template_dict:
            change_set.status, change_set.execution_status, change_set.status_reason = "FAILED", "UNAVAILABLE", _NO_CHANGES
    _change_sets(backend)[change_set.id] = change_set
    return _result({"Id": change_set.id, "StackId": existing.stack_id})


def describe_change_set(self):
    change_set = _find_change_set(self.cloudformation_backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    secret = {k for k, p in (change_set.document.get("Parameters") or {}).items()
              if str(p.get("NoEcho", "false")).lower() == "true"}
    result = {**change_set.summary(),
              # moto's serialiser turns this dict into [{ParameterKey, ParameterValue}] and wraps each change
              # as {Type: Resource, ResourceChange: ...}.
              "Parameters": {k: "****" if k in secret else v
                             for k, v in _effective(change_set.document, change_set.parameters).items()},
              "NotificationARNs": [], "Capabilities": change_set.capabilities, "Tags": [],
              "Changes": [c.as_aws()["ResourceChange"] for c in change_set.changes]}
    return _result(result)


def list_change_sets(self):
    stack_name = self._get_param("StackName")
    summaries = [cs.summary() for cs in _change_sets(self.cloudformation_backend).values()
                 if _of_stack(cs, stack_name)]
    return _result({"Summaries": summaries})


def delete_change_set(self):
    backend = self.cloudformation_backend
    change_set = _find_change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    if change_set.execution_status == "EXECUTE_IN_PROGRESS":
        raise _error(f"Cannot delete ChangeSet in status {change_set.execution_status}", "InvalidChangeSetStatus")
    del _change_sets(backend)[change_set.id]
    return hooks.resolve("cfn.empty_result")()


def execute_change_set(self):
    backend = self.cloudformation_backend
    change_set = _find_change_set(backend, self._get_param("ChangeSetName"), self._get_param("StackName"))
    if change_set.execution_status != "AVAILABLE":
        raise _error(f"ChangeSet [{change_set.id}] cannot be executed in its current execution status of "
                     f"[{change_set.execution_status}]", "InvalidChangeSetStatus")
    stack = change_set.stack
    if change_set.type == "UPDATE":
        _require_updatable(stack)
    change_set.execution_status = "EXECUTE_IN_PROGRESS"
    # Executing one change set makes the stack's other change sets obsolete, as on AWS.
    for other in list(_change_sets(backend).values()):
        if other.stack is stack and other is not change_set:
            del _change_sets(backend)[other.id]
    stack.status = "UPDATE_IN_PROGRESS" if change_set.type == "UPDATE" else "CREATE_IN_PROGRESS"
    _run(_execute, backend, change_set)
    return hooks.resolve("cfn.empty_result")()


def _execute(backend, change_set: ChangeSet) -> None:
    stack = change_set.stack
    if change_set.type == "UPDATE":
        engine.update(stack, change_set.body, change_set.document, change_set.parameters, backend.exports)
        done = stack.status == "UPDATE_COMPLETE"
    else:
        stack.template, stack.parameters = json.dumps(change_set.document), change_set.parameters
        stack._parse_template()
        stack.resource_map = stack._create_resource_map()
        stack.output_map = stack._create_output_map()
        stack.template = change_set.body
        stack.description = change_set.document.get("Description")
        try:
            engine.create(stack)
        except Exception:
            engine.LOG.exception("stack %s: create crashed", stack.name)
            stack.status = "ROLLBACK_FAILED"
        done = stack.status == "CREATE_COMPLETE"
        if done:
            for export in stack.exports:
                backend.exports[export.name] = export
    change_set.execution_status = "EXECUTE_COMPLETE" if done else "EXECUTE_FAILED"


def delete_stack(self):
    """Answers at once; the stack goes DELETE_IN_PROGRESS, then DELETE_COMPLETE or DELETE_FAILED (the resources
    that could not go are named in its events). Again on a DELETE_FAILED stack, it continues, keeping the
    RetainResources."""
    backend = self.cloudformation_backend
    name = self._get_param("StackName")
    retain = set(self._get_param("RetainResources", []) or [])
    stack = next((s for s in backend.stacks.values() if name in (s.name, s.stack_id)), None)
    if stack is None or stack.status == "DELETE_IN_PROGRESS":  # nothing (more) to do, as AWS answers
        return hooks.resolve("cfn.empty_result")()
    if getattr(stack, "enable_termination_protection", False):
        raise _error(f"Stack [{stack.name}] cannot be deleted while TerminationProtection is enabled")
    if retain and stack.status != "DELETE_FAILED":
        raise _error(f"Stack [{stack.name}] is in {stack.status} state: RetainResources can be specified only for a "
                     "stack in the DELETE_FAILED state.")
    held = {k for k, v in stack.resource_map._parsed_resources.items() if v is not None and not isinstance(v, str)}
    if retain - held:
        raise _error("The specified resources to retain must be in a valid state. Do not specify resources that are "
                     "in the DELETE_COMPLETE state.")
    if stack.status.endswith("_IN_PROGRESS") and stack.status != "REVIEW_IN_PROGRESS":
        raise _error(f"Stack [{stack.name}] cannot be deleted while in status {stack.status}")
    stack.status = "DELETE_IN_PROGRESS"
    _run(engine.delete, backend, stack, retain)
    return hooks.resolve("cfn.empty_result")()


def describe_events(self):
    """Validation findings of a change set (cfn-lint's warnings), as AWS's pre-deployment validation events."""
    backend = self.cloudformation_backend
    name = self._get_param("ChangeSetName")
    events = []
    if name:
        change_set = _find_change_set(backend, name, self._get_param("StackName"))
        for problem in change_set.warnings:
            event = {"EventId": str(uuid.uuid5(uuid.NAMESPACE_URL, change_set.id + problem.text())),
                     "StackId": change_set.stack.stack_id, "OperationType": "CREATE_CHANGESET",
                     "EventType": "VALIDATION_ERROR", "Timestamp": change_set.created,
                     "ValidationFailureMode": "WARN", "ValidationName": problem.rule, "ValidationStatus": "FAILED",
                     "ValidationStatusReason": problem.text(), "ValidationPath": problem.path_text()}
            if len(problem.path) > 1 and problem.path[0] == "Resources":
                event["LogicalResourceId"] = problem.path[1]
            events.append(event)
    return _result({"OperationEvents": events})


def continue_update_rollback(self):
    """Resources that could not be rolled back are left as they are (AWS's ResourcesToSkip, for all of them)."""
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    if stack.status != "UPDATE_ROLLBACK_FAILED":
        raise _error(f"Stack {stack.name} is in {stack.status} state and can not continue its rollback.")
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")
    return hooks.resolve("cfn.empty_result")()


# --- drift ------------------------------------------------------------------------------------------------------

def _detections(backend) -> dict[str, drift.Detection]:
    if not hasattr(backend, "kit_drift_detections"):
        backend.kit_drift_detections = {}
    return backend.kit_drift_detections


def _live_resources(stack) -> dict[str, tuple[dict, Any]]:
    """Logical id -> (template declaration, moto's resource) of what the stack holds."""
    declared = (stack.template_dict or {}).get("Resources") or {}
    parsed = stack.resource_map._parsed_resources
    return {name: (declared[name], parsed[name]) for name in declared if parsed.get(name) is not None}


def _drift_of(stack, logical_id: str, resource_json: dict, resource) -> dict:
    try:
        expected = engine.resolve(resource_json, stack.resource_map)
    except Exception:  # a property that cannot be evaluated any more: nothing to compare it with
        expected = {}
    return drift.resource_drift(stack, logical_id, expected, resource_json["Type"], engine.physical_id(resource))


def _require_stable(stack) -> None:
    if stack.status.endswith("_IN_PROGRESS") or stack.status in ("ROLLBACK_COMPLETE", "DELETE_COMPLETE"):
        raise _error(f"Stack {stack.name} is in {stack.status} state; drift detection needs a stack that is not "
                     "being changed and holds resources.")


def drift_information(stack) -> dict:
    """A stack's DriftInformation: the last detection's outcome (NOT_CHECKED before any)."""
    detection = getattr(stack, "kit_drift", None)
    if detection is None:
        return {"StackDriftStatus": "NOT_CHECKED"}
    status = detection.status()
    return {"StackDriftStatus": status["StackDriftStatus"], "LastCheckTimestamp": status["Timestamp"]}


def detect_stack_drift(self):
    backend = self.cloudformation_backend
    stack = backend.get_stack(self._get_param("StackName"))
    _require_stable(stack)
    wanted = self._get_param("LogicalResourceIds", []) or []
    detection = drift.Detection(drift.new_id(), stack)
    for name, (resource_json, resource) in _live_resources(stack).items():
        if not wanted or name in wanted:
            detection.drifts[name] = _drift_of(stack, name, resource_json, resource)
    _detections(backend)[detection.id] = detection
    stack.kit_drift = detection
    return _result({"StackDriftDetectionId": detection.id})


def describe_stack_drift_detection_status(self):
    detection_id = self._get_param("StackDriftDetectionId")
    detection = _detections(self.cloudformation_backend).get(detection_id)
    if detection is None:
        raise _error(f"Drift detection with id [{detection_id}] does not exist")
    return _result(detection.status())


def describe_stack_resource_drifts(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    detection = getattr(stack, "kit_drift", None)
    filters = set(self._get_param("StackResourceDriftStatusFilters", []) or [])
    drifts = [d for d in (detection.drifts.values() if detection else [])
              if not filters or d["StackResourceDriftStatus"] in filters]
    return _result({"StackResourceDrifts": drifts})


def detect_stack_resource_drift(self):
    stack = self.cloudformation_backend.get_stack(self._get_param("StackName"))
    _require_stable(stack)
    logical_id = self._get_param("LogicalResourceId")
    found = _live_resources(stack).get(logical_id)
    if found is None:
        raise _error(f"Resource {logical_id} does not exist for stack {stack.name}")
    return _result({"StackResourceDrift": _drift_of(stack, logical_id, *found)})


HANDLERS = {
    "validate_template": validate_template, "create_stack": create_stack, "update_stack": update_stack,
    "create_change_set": create_change_set, "describe_change_set": describe_change_set,
    "list_change_sets": list_change_sets, "delete_change_set": delete_change_set,
    "execute_change_set": execute_change_set, "describe_events": describe_events,
    "continue_update_rollback": continue_update_rollback, "delete_stack": delete_stack,
    "detect_stack_drift": detect_stack_drift,
    "describe_stack_drift_detection_status": describe_stack_drift_detection_status,
    "describe_stack_resource_drifts": describe_stack_resource_drifts,
    "detect_stack_resource_drift": detect_stack_resource_drift,
    "update_termination_protection": update_termination_protection,
}
