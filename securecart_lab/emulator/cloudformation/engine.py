"""Applying a new template to a stack: create what is new, update in place what AWS updates in place, replace
what AWS replaces (new one first, the old one deleted in the cleanup phase), and on any failure roll back to the
previous resources, so what ran before the update still runs. Deleting a stack: dependents first, and a resource
that cannot go (a bucket holding objects) leaves the stack DELETE_FAILED with the rest gone. Each step is a stack
event, in AWS's order.
"""

from __future__ import annotations

import copy
import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from securecart_lab.emulator import hooks
from securecart_lab.emulator.bridges.cloudformation import error_text, event, gone
from securecart_lab.emulator.cloudformation import changes as changes_module
from securecart_lab.emulator.cloudformation import template, updaters

LOG = logging.getLogger(__name__)
_locks: dict[str, threading.Lock] = {}
_PASSES = 5  # deletes that fail on a dependency are retried after the others, as CloudFormation waits for them


class UpdateFailed(Exception):
    """A resource could not be updated; `logical_id` names it."""

    def __init__(self, logical_id: str, reason: str):
        super().__init__(reason)
        self.logical_id = logical_id
        self.reason = reason


@dataclass
class _Step:
    kind: str  # created | modified | replaced
    logical_id: str
    resource_type: str
    resource: Any = None  # the new resource (created, replaced) or the one modified
    before: dict = field(default_factory=dict)
    after: dict = field(default_factory=dict)
    changed: set = field(default_factory=set)
    old: Any = None  # the resource a replacement replaces
    json: dict = field(default_factory=dict)  # the template's declaration of the new resource


def lock(stack) -> threading.Lock:
    return _locks.setdefault(stack.stack_id, threading.Lock())


def new_resource_map(stack, document: dict, parameters: dict, exports):
    """moto's resource map for `document` (parameters checked, nothing created yet)."""
    resource_map = hooks.resolve("cfn.resource_map")(
        stack.stack_id, stack.name, parameters, stack.tags, region_name=stack.region_name,
        account_id=stack.account_id, template=document, cross_stack_resources=exports,
    )
    resource_map.load()
    resource_map.tags.update({"aws:cloudformation:stack-name": stack.name, "aws:cloudformation:stack-id": stack.stack_id})
    return resource_map


def resolve(resource_json: dict, resource_map) -> dict:
    """A resource's properties with every intrinsic function evaluated."""
    properties = copy.deepcopy(resource_json.get("Properties") or {})
    return hooks.resolve("cfn.clean_json")(properties, resource_map) or {}


def physical_id(resource) -> str | None:
    for attribute in ("physical_resource_id", "resource_id", "name"):
        physical = getattr(resource, attribute, None)
        if isinstance(physical, str):
            return physical
    return None


def _tag_ec2(resource_map, logical_id: str, resource) -> None:
    if isinstance(resource, hooks.resolve("ec2.tagged_resource")):
        tags = {**resource_map.tags, "aws:cloudformation:logical-id": logical_id}
        hooks.resolve("ec2.backends")[resource_map._account_id][resource_map._region_name].create_tags(
            [resource.physical_resource_id], tags)


def _create(resource_map, logical_id: str):
    """Create one resource of `resource_map` (events come from the create hook); UpdateFailed on failure."""
    resource_map._parsed_resources.pop(logical_id, None)
    try:
        resource = resource_map[logical_id]
    except Exception as exc:
        raise UpdateFailed(logical_id, error_text(exc)) from exc
    _tag_ec2(resource_map, logical_id, resource)
    return resource


def _remove(resource_map, resource_json: dict, resource) -> str | None:
    """Delete one resource through its service: why it could not be, or None. One deleted by hand is gone, as
    CloudFormation counts it."""
    try:
        resource_map._delete_resource(resource, resource_json)
    except Exception as exc:
        if not gone(exc):
            return error_text(exc)
    return None


def delete_resource(resource_map, stack, logical_id: str, resource_json: dict, resource) -> None:
    """Delete one resource with its DeletionPolicy honoured (Retain keeps it), with stack events."""
    resource_type = resource_json.get("Type", "")
    policy = resource_json.get("DeletionPolicy")
    physical = physical_id(resource)
    if policy == "Retain":
        event(stack, logical_id, resource_type, "DELETE_SKIPPED", physical)
        return
    event(stack, logical_id, resource_type, "DELETE_IN_PROGRESS", physical)
    reason = _remove(resource_map, resource_json, resource)
    if reason is not None:
        event(stack, logical_id, resource_type, "DELETE_FAILED", physical, reason)
        raise UpdateFailed(logical_id, reason)
    event(stack, logical_id, resource_type, "DELETE_COMPLETE", physical)


def _delete_all(resource_map, stack, items: list[tuple[str, dict, Any]]) -> list[str]:
    """Delete (logical id, json, resource) items, dependents first, retrying those that wait on others.
    Returns the logical ids that could not be deleted."""
    pending = list(items)
    for _ in range(_PASSES):
        failed = []
        for logical_id, resource_json, resource in pending:
            try:
                delete_resource(resource_map, stack, logical_id, resource_json, resource)
            except Exception:
                failed.append((logical_id, resource_json, resource))
        if not failed or len(failed) == len(pending):
            pending = failed
            break
        pending = failed
    return [logical_id for logical_id, _, _ in pending]


def update(stack, body: str, document: dict, parameters: dict, exports) -> None:
    """Update `stack` to template `document` (its text `body`) with `parameters`; never raises: the outcome is
    the stack's status (UPDATE_COMPLETE or UPDATE_ROLLBACK_COMPLETE) and its events."""
    with lock(stack):
        try:
            _update(stack, body, document, parameters, exports)
        except Exception:  # a bug must not leave the stack IN_PROGRESS forever
            LOG.exception("stack %s: update crashed", stack.name)
            stack.status = "UPDATE_ROLLBACK_FAILED"
            stack._add_stack_event("UPDATE_ROLLBACK_FAILED", resource_status_reason="Internal error in the emulator; "
                                   "see securecart-lab logs emulator")


def _update(stack, body: str, document: dict, parameters: dict, exports) -> None:
    old_map, old_document = stack.resource_map, stack.template_dict
    old_resources, new_resources = old_document.get("Resources") or {}, document["Resources"]
    stack.status = "UPDATE_IN_PROGRESS"
    stack._add_stack_event("UPDATE_IN_PROGRESS", resource_status_reason="User Initiated")
    try:
        # moto writes the names it generates into the template it creates from: the stack keeps the learner's.
        new_map = new_resource_map(stack, copy.deepcopy(document), parameters, exports)
    except Exception as exc:
        _roll_back(stack, old_map, [], None, error_text(exc))
        return
    for name, resource_json in new_resources.items():
        old_json = old_resources.get(name)
        if old_json and old_json.get("Type") == resource_json.get("Type") and name in old_map._parsed_resources:
            new_map._parsed_resources[name] = old_map._parsed_resources[name]
    # What every kept resource resolved to before anything changes: an update in place changes the attributes
    # others read (a launch template's LatestVersionNumber), and the group reading it must still see a change.
    befores = {}
    for name in new_resources:
        if name in old_resources:
            try:
                befores[name] = resolve(old_resources[name], old_map)
            except Exception:  # resolved again in _apply, where a failure fails that resource
                pass
    steps: list[_Step] = []
    try:
        for name in template.order(new_resources):
            _apply(stack, old_map, new_map, old_resources, new_resources, name, steps, befores)
    except UpdateFailed as failure:
        _roll_back(stack, old_map, steps, failure.logical_id, failure.reason)
        return
    # Every resource is in place: the stack now is the new template. Then the cleanup phase.
    stack.resource_map = new_map
    stack.template, stack.template_dict = body, document
    stack.parameters = parameters
    stack.description = document.get("Description")
    stack.output_map = stack._create_output_map()
    stack.status = "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"
    stack._add_stack_event("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
    old_order = template.order(old_resources)
    # A replaced resource goes as its UpdateReplacePolicy says (bridges/rds.py applies the policy).
    doomed = [(step.logical_id, _replace_policy(old_resources[step.logical_id]), step.old) for step in reversed(steps)
              if step.kind == "replaced" and step.old is not None]
    doomed += [(name, old_resources[name], old_map._parsed_resources[name]) for name in reversed(old_order)
               if name not in new_resources and name in old_map._parsed_resources]
    left = _delete_all(old_map, stack, doomed)
    if left:
        LOG.warning("stack %s: cleanup could not delete %s", stack.name, left)
    stack.status = "UPDATE_COMPLETE"
    stack._add_stack_event("UPDATE_COMPLETE")


def _replace_policy(resource_json: dict) -> dict:
    resource_json = {k: v for k, v in resource_json.items() if k != "DeletionPolicy"}
    if "UpdateReplacePolicy" in resource_json:
        resource_json["DeletionPolicy"] = resource_json["UpdateReplacePolicy"]
    return resource_json


def _apply(stack, old_map, new_map, old_resources, new_resources, name, steps, befores=None) -> None:
    resource_json = new_resources[name]
    resource_type = resource_json["Type"]
    condition = resource_json.get("Condition")
    if condition and not new_map.lazy_condition_map[condition]:
        return
    if name not in new_map._parsed_resources:
        resource = _create(new_map, name)
        steps.append(_Step("created", name, resource_type, resource, json=resource_json))
        return
    resource = new_map._parsed_resources[name]
    try:
        before = (befores or {}).get(name)
        if before is None:
            before = resolve(old_resources[name], old_map)
        after = resolve(resource_json, new_map)
    except Exception as exc:
        raise UpdateFailed(name, error_text(exc)) from exc
    changed = {key for key in set(before) | set(after) if before.get(key) != after.get(key)}
    if not changed:
        return
    physical = physical_id(resource)
    create_only = changed & changes_module.create_only(resource_type)
    if not create_only and updaters.can_update(resource_type, changed):
        event(stack, name, resource_type, "UPDATE_IN_PROGRESS", physical)
        try:
            updaters.update(resource_type, physical, before, after, changed, account=stack.account_id)
        except Exception as exc:
            # What did change is part of the rollback too.
            steps.append(_Step("modified", name, resource_type, resource, before, after, changed))
            event(stack, name, resource_type, "UPDATE_FAILED", physical, error_text(exc))
            raise UpdateFailed(name, error_text(exc)) from exc
        steps.append(_Step("modified", name, resource_type, resource, before, after, changed))
        event(stack, name, resource_type, "UPDATE_COMPLETE", physical)
        return
    # A replacement: the new resource first; the old one goes in the cleanup phase.
    name_property = changes_module.name_property(resource_type)
    custom_name = after.get(name_property) if name_property else None
    if custom_name and custom_name == before.get(name_property):
        reason = (f"CloudFormation cannot update a stack when a custom-named resource requires replacing. "
                  f"Rename {custom_name} and update the stack again.")
        if not create_only:
            reason = (f"The emulator cannot update {', '.join(sorted(changed))} of {resource_type} in place and "
                      f"cannot replace {custom_name}, which has a custom name. Rename it and update the stack again.")
        event(stack, name, resource_type, "UPDATE_FAILED", physical, reason)
        raise UpdateFailed(name, reason)
    why = "Requested update requires the creation of a new physical resource; hence creating one."
    if not create_only:
        why += f" (The emulator cannot update {', '.join(sorted(changed))} of {resource_type} in place.)"
    event(stack, name, resource_type, "UPDATE_IN_PROGRESS", physical, why)
    new_map._parsed_resources.pop(name, None)
    try:
        replacement = _create(new_map, name)
    except UpdateFailed as failure:
        event(stack, name, resource_type, "UPDATE_FAILED", physical, failure.reason)
        raise
    steps.append(_Step("replaced", name, resource_type, replacement, before, after, changed, old=resource,
                       json=resource_json))
    event(stack, name, resource_type, "UPDATE_COMPLETE", physical_id(replacement))


def _roll_back(stack, old_map, steps: list[_Step], failed: str | None, reason: str) -> None:
    stack.status = "UPDATE_ROLLBACK_IN_PROGRESS"
    stack._add_stack_event("UPDATE_ROLLBACK_IN_PROGRESS", resource_status_reason=(
        f"The following resource(s) failed to update: [{failed}]. " if failed else f"{reason} "))
    problems = []
    created = []
    for step in reversed(steps):
        if step.kind == "modified":
            physical = physical_id(step.resource)
            event(stack, step.logical_id, step.resource_type, "UPDATE_IN_PROGRESS", physical)
            try:
                updaters.update(step.resource_type, physical, step.after, step.before, step.changed,
                                 account=stack.account_id)
            except Exception as exc:
                event(stack, step.logical_id, step.resource_type, "UPDATE_FAILED", physical, error_text(exc))
                problems.append(step.logical_id)
                continue
            event(stack, step.logical_id, step.resource_type, "UPDATE_COMPLETE", physical)
        elif step.kind == "replaced":
            event(stack, step.logical_id, step.resource_type, "UPDATE_COMPLETE", physical_id(step.old))
            created.append(step)
        else:
            created.append(step)
    # What the failed update created goes while the stack still says ROLLBACK_IN_PROGRESS: a database it made
    # holds nothing of the learner's, and is discarded without a snapshot (bridges/rds.py).
    items = [(s.logical_id, s.json or {"Type": s.resource_type}, s.resource) for s in created if s.resource is not None]
    problems += _delete_all(old_map, stack, items)
    stack.status = "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
    if problems:
        stack.status = "UPDATE_ROLLBACK_FAILED"
        stack._add_stack_event("UPDATE_ROLLBACK_FAILED",
                               resource_status_reason=f"Rollback could not restore: [{', '.join(problems)}]")
        return
    stack.status = "UPDATE_ROLLBACK_COMPLETE"
    stack._add_stack_event("UPDATE_ROLLBACK_COMPLETE")


def create(stack) -> None:
    """Create every resource of a new stack; a failure rolls it back to ROLLBACK_COMPLETE (nothing left)."""
    with lock(stack):
        stack._add_stack_event("CREATE_IN_PROGRESS", resource_status_reason="User Initiated")
        as_written = copy.deepcopy(stack.template_dict)
        try:
            stack.create_resources()
        finally:
            keep_as_written(stack, as_written)


def keep_as_written(stack, document: dict) -> None:
    """The stack's template as the learner wrote it, without the names moto generated into its copy (else an
    unchanged template would differ from it: UpdateStack would not answer "No updates are to be performed")."""
    stack.template_dict = document


def delete(backend, stack, retain: set[str]) -> None:
    """DeleteStack's work: every resource of `stack` deleted (dependents first; DeletionPolicy Retain and
    `retain` keep theirs). Never raises: the outcome is the stack's status, DELETE_COMPLETE (the stack is gone) or
    DELETE_FAILED with the reason, its deleted resources gone, so that DeleteStack again continues."""
    with lock(stack):
        try:
            _delete(backend, stack, retain)
        except Exception:  # a bug must not leave the stack IN_PROGRESS forever
            LOG.exception("stack %s: delete crashed", stack.name)
            _delete_failed(stack, "Internal error in the emulator; see securecart-lab logs emulator")


def _delete(backend, stack, retain: set[str]) -> None:
    # moto evaluates outputs and exports when read, creating again a resource they name that is gone: the stack
    # shows them as they were before its delete began (bridges/cloudformation.py).
    if not hasattr(stack, "kit_outputs"):
        try:
            stack.kit_outputs = stack.outputs
        except Exception:  # an output that cannot be evaluated must not keep the stack
            LOG.info("stack %s: its outputs cannot be evaluated", stack.name, exc_info=True)
            stack.kit_outputs = None
    stack.status, stack.status_reason = "DELETE_IN_PROGRESS", None
    stack._add_stack_event("DELETE_IN_PROGRESS", resource_status_reason="User Initiated")
    resource_map = stack.resource_map
    declared = (stack.template_dict or {}).get("Resources") or {}
    held = {name: resource_map._parsed_resources.get(name) for name in reversed(template.order(declared))}
    left = [name for name, resource in held.items() if resource is not None and not isinstance(resource, str)]
    for name in [n for n in left if n in retain]:
        event(stack, name, declared[name].get("Type", ""), "DELETE_SKIPPED", physical_id(held[name]))
        resource_map._parsed_resources.pop(name, None)
        left.remove(name)
    started: set[str] = set()
    failed: dict[str, str] = {}
    # Dependents first, as CloudFormation orders a delete; one that fails on a dependency the template does not
    # name (a group's instances in a subnet) is tried again after the others, as CloudFormation waits for them.
    for _ in range(_PASSES):
        progress = False
        for name in list(left):
            if any(name in template.dependencies(declared[other], declared) for other in left if other != name):
                continue  # what depends on it is still there
            resource_json, resource = declared[name], held[name]
            resource_type, physical = resource_json.get("Type", ""), physical_id(resource)
            if resource_json.get("DeletionPolicy") == "Retain":
                event(stack, name, resource_type, "DELETE_SKIPPED", physical)
            else:
                if name not in started:
                    started.add(name)
                    event(stack, name, resource_type, "DELETE_IN_PROGRESS", physical)
                reason = _remove(resource_map, resource_json, resource)
                if reason is not None:
                    failed[name] = reason
                    continue
                failed.pop(name, None)
                event(stack, name, resource_type, "DELETE_COMPLETE", physical)
            resource_map._parsed_resources.pop(name, None)
            left.remove(name)
            progress = True
        if not left or not progress:
            break
    if failed:
        for name, reason in failed.items():
            event(stack, name, declared[name].get("Type", ""), "DELETE_FAILED", physical_id(held[name]), reason)
        _delete_failed(stack, f"The following resource(s) failed to delete: [{', '.join(failed)}]. ")
        return
    stack.status = "DELETE_COMPLETE"
    stack._add_stack_event("DELETE_COMPLETE")
    backend.deleted_stacks[stack.stack_id] = stack
    backend.stacks.pop(stack.stack_id, None)
    for name, export in list(backend.exports.items()):
        if export.exporting_stack_id == stack.stack_id:
            del backend.exports[name]


def _delete_failed(stack, reason: str) -> None:
    stack.status, stack.status_reason = "DELETE_FAILED", reason
    stack._add_stack_event("DELETE_FAILED", resource_status_reason=reason)
