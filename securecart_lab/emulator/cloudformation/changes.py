"""Change sets: what a new template does to a stack, resource by resource, in AWS's `Changes` shape.

Which property changes need a new resource comes from AWS's resource provider schemas (`createOnlyProperties`),
as cfn-lint ships them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

from securecart_lab.emulator.cloudformation import template

# Attributes that an update in place changes (others change only with a replacement).
_VOLATILE_ATTRIBUTES = {"LatestVersionNumber", "DefaultVersionNumber"}
# Top-level resource attributes whose change is an update of the resource (Properties are compared one by one).
_ATTRIBUTES = ("Metadata", "UpdatePolicy", "CreationPolicy", "Condition")


@functools.lru_cache(maxsize=None)
def create_only(resource_type: str) -> frozenset[str]:
    """Top-level property names AWS cannot change without a new resource."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(template.REGION, resource_type).schema
    except Exception:  # an unknown type (custom resources) has no schema: everything is updatable
        return frozenset()
    return frozenset(p.split("/")[2] for p in schema.get("createOnlyProperties", []) if p.startswith("/properties/"))


@functools.lru_cache(maxsize=None)
def name_property(resource_type: str) -> str | None:
    """The property that names a resource (a custom name cannot be kept by a replacement)."""
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(template.REGION, resource_type).schema
    except Exception:
        return None
    only = create_only(resource_type)
    for path in schema.get("primaryIdentifier", []):
        name = path.split("/")[-1]
        if name in only and name in schema.get("properties", {}):
            return name
    for name in ("Name", f"{resource_type.split('::')[-1]}Name"):
        if name in only:
            return name
    return None


@dataclass
class ResourceChange:
    action: str  # Add | Modify | Remove
    logical_id: str
    resource_type: str
    physical_id: str | None = None
    replacement: str | None = None  # True | False | Conditional (Modify only)
    details: list[dict] = field(default_factory=list)
    scope: list[str] = field(default_factory=list)

    def as_aws(self) -> dict:
        change: dict[str, Any] = {"Action": self.action, "LogicalResourceId": self.logical_id,
                                  "ResourceType": self.resource_type, "Scope": self.scope, "Details": self.details}
        if self.physical_id:
            change["PhysicalResourceId"] = self.physical_id
        if self.action == "Modify":
            change["Replacement"] = self.replacement
        return {"Type": "Resource", "ResourceChange": change}


def _detail(attribute: str, name: str | None, recreation: str, evaluation: str = "Static",
            source: str = "DirectModification", causing: str | None = None) -> dict:
    target: dict[str, Any] = {"Attribute": attribute, "RequiresRecreation": recreation}
    if name is not None:
        target["Name"] = name
    detail: dict[str, Any] = {"Target": target, "Evaluation": evaluation, "ChangeSource": source}
    if causing:
        detail["CausingEntity"] = causing
    return detail


def diff(old: dict, new: dict, old_parameters: dict, new_parameters: dict,
         physical_ids: dict[str, str] | None = None) -> list[ResourceChange]:
    """The changes that turn a stack of template `old` (with `old_parameters`) into `new`.

    Templates are in long form. A property that refers to a replaced resource, or to an attribute of a modified
    one, is a dynamic change, as AWS reports it.
    """
    physical_ids = physical_ids or {}
    old_resources, new_resources = old.get("Resources") or {}, new.get("Resources") or {}
    changed_parameters = {name for name in set(old_parameters) | set(new_parameters)
                          if old_parameters.get(name) != new_parameters.get(name)}
    changes: dict[str, ResourceChange] = {}
    for name in template.order(new_resources):
        resource = new_resources[name]
        if name not in old_resources:
            changes[name] = ResourceChange("Add", name, resource["Type"])
            continue
        before, details, scope = old_resources[name], [], []
        only = create_only(resource["Type"])
        props_before, props_after = before.get("Properties") or {}, resource.get("Properties") or {}
        for prop in sorted(set(props_before) | set(props_after)):
            recreation = "Always" if prop in only else "Never"
            if props_before.get(prop) != props_after.get(prop):
                details.append(_detail("Properties", prop, recreation))
            for ref, attribute in sorted(template.references(props_after.get(prop)), key=str):
                if ref in changed_parameters and attribute is None:
                    details.append(_detail("Properties", prop, recreation, source="ParameterReference", causing=ref))
                elif ref in changes and changes[ref].action == "Modify":
                    replaced = changes[ref].replacement in ("True", "Conditional")
                    if attribute is None and replaced:
                        details.append(_detail("Properties", prop, "Conditional" if recreation == "Always" else "Never",
                                               "Dynamic", "ResourceReference", ref))
                    elif attribute is not None and (replaced or attribute in _VOLATILE_ATTRIBUTES):
                        details.append(_detail("Properties", prop, "Conditional" if recreation == "Always" else "Never",
                                               "Dynamic", "ResourceAttribute", f"{ref}.{attribute}"))
        if details:
            scope.append("Properties")
        for attribute in _ATTRIBUTES:
            if before.get(attribute) != resource.get(attribute):
                details.append(_detail(attribute, None, "Never"))
                scope.append(attribute)
        if resource["Type"] != before["Type"]:
            details.append(_detail("Properties", "Type", "Always"))
        if not details:
            continue
        recreations = {d["Target"]["RequiresRecreation"] for d in details}
        replacement = "True" if "Always" in recreations else "Conditional" if "Conditional" in recreations else "False"
        changes[name] = ResourceChange("Modify", name, resource["Type"], physical_ids.get(name), replacement, details,
                                       sorted(set(scope)))
    removed = [ResourceChange("Remove", name, old_resources[name]["Type"], physical_ids.get(name))
               for name in old_resources if name not in new_resources]
    return list(changes.values()) + removed


def why(change: ResourceChange) -> str:
    """One line saying what causes a change (for tables)."""
    if change.action != "Modify":
        return {"Add": "new in the template", "Remove": "no longer in the template"}[change.action]
    parts = []
    for detail in change.details:
        target = detail["Target"]
        name = target.get("Name") or target["Attribute"]
        if detail.get("CausingEntity"):
            name += f" (via {detail['CausingEntity']})"
        if target["RequiresRecreation"] == "Always":
            name += " [create-only]"
        if name not in parts:
            parts.append(name)
    return ", ".join(parts)
