"""EventBridge Schemas (the schema registry), which moto lacks, speaking AWS's REST-JSON protocol.

Registries (the AWS-managed `aws.events` and `discovered-schemas` are there from the start), schemas with versions
(an update with new content is a new version), ExportSchema to JSONSchemaDraft4, SearchSchemas, resource policies,
tags, GetDiscoveredSchema, and discoverers: a STARTED discoverer on a bus infers an OpenApi3 schema named
`<source>@<DetailType>` in `discovered-schemas` from every event put on that bus (events.py calls `discover`), and
writes a new version when the events show fields the latest version lacks. Content is validated as AWS does
(JSONSchemaDraft4 with jsonschema's draft 4 metaschema, OpenApi3 with openapi-spec-validator); a bad request answers
AWS's error body ({"Code": ..., "Message": ...}, x-amzn-ErrorType) with the model's status.

Code bindings are not generated: those actions answer an AWS-shaped error saying so.
The CloudFormation types AWS::EventSchemas::Registry, Schema and Discoverer are defined at `install()`.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from securecart_lab.emulator import hooks

AWS_REGISTRY = "aws.events"
DISCOVERED_REGISTRY = "discovered-schemas"
MANAGED_REGISTRIES = (AWS_REGISTRY, DISCOVERED_REGISTRY)
TYPES = ("OpenApi3", "JSONSchemaDraft4")
DRAFT4 = "http://json-schema.org/draft-04/schema#"
_PAGE = 100
_lock = threading.RLock()


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.timezone.utc)


class SchemasError(Exception):
    """An error in AWS's shape: the model's status for `code`, body {"Code", "Message"}."""

    STATUS = {"BadRequestException": 400, "UnauthorizedException": 401, "ForbiddenException": 403,
              "NotFoundException": 404, "ConflictException": 409, "GoneException": 410,
              "PreconditionFailedException": 412, "TooManyRequestsException": 429}

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message
        self.status = self.STATUS.get(code, 400)


def _bad(message: str) -> SchemasError:
    return SchemasError("BadRequestException", message)


def _not_found(message: str) -> SchemasError:
    return SchemasError("NotFoundException", message)


# --- the model ---------------------------------------------------------------------------------------------------

@dataclass
class Version:
    number: str
    content: str
    type: str
    created: datetime.datetime


@dataclass
class Schema:
    registry: str
    name: str
    arn: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    versions: dict[str, Version] = field(default_factory=dict)
    last_number: int = 0
    last_modified: datetime.datetime = field(default_factory=_now)

    @property
    def latest(self) -> Version:
        return self.versions[next(reversed(self.versions))]

    def add_version(self, content: str, type_: str) -> Version:
        self.last_number += 1
        version = Version(str(self.last_number), content, type_, _now())
        self.versions[version.number] = version
        self.last_modified = version.created
        return version

    def version(self, number: str | None) -> Version:
        if not number:
            return self.latest
        if number not in self.versions:
            raise _not_found(f"Schema version {number} of schema {self.name} in registry {self.registry} "
                             "does not exist.")
        return self.versions[number]


@dataclass
class Registry:
    name: str
    arn: str
    description: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    schemas: dict[str, Schema] = field(default_factory=dict)
    policy: str | None = None
    revision: str | None = None


@dataclass
class Discoverer:
    id: str
    arn: str
    source_arn: str
    description: str | None = None
    cross_account: bool = True
    state: str = "STARTED"
    tags: dict[str, str] = field(default_factory=dict)


class SchemasBackend:
    """One account's schema registry in one region."""

    def __init__(self, account_id: str, region: str):
        self.account_id, self.region = account_id, region
        self.registries: dict[str, Registry] = {}
        self.discoverers: dict[str, Discoverer] = {}
        for name in MANAGED_REGISTRIES:
            self.registries[name] = Registry(name, self._arn("registry", name))

    def _arn(self, kind: str, name: str) -> str:
        return f"arn:aws:schemas:{self.region}:{self.account_id}:{kind}/{name}"

    # registries
    def registry(self, name: str) -> Registry:
        if name not in self.registries:
            raise _not_found(f"Registry {name} does not exist.")
        return self.registries[name]

    def create_registry(self, name: str, description: str | None, tags: dict | None) -> Registry:
        _check_name("RegistryName", name)
        _check_description(description)
        if name in self.registries:
            raise SchemasError("ConflictException", f"Registry {name} already exists.")
        registry = Registry(name, self._arn("registry", name), description, dict(tags or {}))
        self.registries[name] = registry
        return registry

    def update_registry(self, name: str, description: str | None) -> Registry:
        registry = self.registry(name)
        _check_description(description)
        if name in MANAGED_REGISTRIES:
            raise _bad(f"Registry {name} is managed by AWS and cannot be updated.")
        if description is not None:
            registry.description = description
        return registry

    def delete_registry(self, name: str) -> None:
        self.registry(name)
        if name in MANAGED_REGISTRIES:
            raise _bad(f"Registry {name} is managed by AWS and cannot be deleted.")
        del self.registries[name]

    # schemas
    def schema(self, registry: str, name: str) -> Schema:
        schemas = self.registry(registry).schemas
        if name not in schemas:
            raise _not_found(f"Schema {name} does not exist in registry {registry}.")
        return schemas[name]

    def create_schema(self, registry_name: str, name: str, type_: str, content: str, description: str | None,
                      tags: dict | None) -> Schema:
        registry = self.registry(registry_name)
        _check_name("SchemaName", name)
        _check_description(description)
        if registry_name == AWS_REGISTRY:
            raise _bad(f"Registry {AWS_REGISTRY} is managed by AWS: schemas cannot be created in it.")
        if name in registry.schemas:
            raise SchemasError("ConflictException", f"Schema {name} already exists in registry {registry_name}.")
        validate_content(type_, content)
        schema = Schema(registry_name, name, self._arn("schema", f"{registry_name}/{name}"), description,
                        dict(tags or {}))
        schema.add_version(content, type_)
        registry.schemas[name] = schema
        return schema

    def update_schema(self, registry: str, name: str, type_: str | None, content: str | None,
                      description: str | None) -> Schema:
        schema = self.schema(registry, name)
        _check_description(description)
        if type_ is not None and content is None:
            raise _bad("Content is required when Type is given.")
        if content is not None:
            type_ = type_ or schema.latest.type
            validate_content(type_, content)
            if (content, type_) != (schema.latest.content, schema.latest.type):
                schema.add_version(content, type_)
        if description is not None:
            schema.description = description
            schema.last_modified = _now()
        return schema

    def delete_schema(self, registry: str, name: str) -> None:
        self.schema(registry, name)
        del self.registries[registry].schemas[name]

    def delete_schema_version(self, registry: str, name: str, number: str) -> None:
        schema = self.schema(registry, name)
        schema.version(number)
        if number == schema.latest.number:
            raise _bad(f"Version {number} is the latest version of schema {name}: it cannot be deleted. "
                       "Delete the schema instead, or update it first.")
        del schema.versions[number]

    # discoverers
    def discoverer(self, discoverer_id: str) -> Discoverer:
        if discoverer_id not in self.discoverers:
            raise _not_found(f"Discoverer {discoverer_id} does not exist.")
        return self.discoverers[discoverer_id]

    def create_discoverer(self, source_arn: str, description: str | None, cross_account: bool | None,
                          tags: dict | None) -> Discoverer:
        _check_description(description)
        match = re.fullmatch(r"arn:aws[\w-]*:events:([\w-]+):(\d{12}):event-bus/([\w.\-/]+)", source_arn or "")
        if not match:
            raise _bad(f"SourceArn {source_arn} is not the ARN of an event bus.")
        region, account, bus = match.groups()
        if (region, account) != (self.region, self.account_id):
            raise _bad(f"SourceArn {source_arn} is not an event bus of account {self.account_id} in {self.region}.")
        _require_bus(account, region, bus, source_arn)
        if any(d.source_arn == source_arn for d in self.discoverers.values()):
            raise SchemasError("ConflictException", f"A discoverer for {source_arn} already exists.")
        base = "events-event-bus-" + re.sub(r"[^\w.-]", "-", bus)
        discoverer_id, n = base, 1
        while discoverer_id in self.discoverers:
            n += 1
            discoverer_id = f"{base}-{n}"
        discoverer = Discoverer(discoverer_id, self._arn("discoverer", discoverer_id), source_arn, description,
                                True if cross_account is None else bool(cross_account), "STARTED", dict(tags or {}))
        self.discoverers[discoverer_id] = discoverer
        return discoverer

    # tags
    def tagged(self, arn: str) -> dict[str, str]:
        for registry in self.registries.values():
            if registry.arn == arn:
                return registry.tags
            for schema in registry.schemas.values():
                if schema.arn == arn:
                    return schema.tags
        for discoverer in self.discoverers.values():
            if discoverer.arn == arn:
                return discoverer.tags
        raise _not_found(f"Resource {arn} does not exist.")


_backends: dict[tuple[str, str], SchemasBackend] = {}


def backend(account_id: str, region: str) -> SchemasBackend:
    with _lock:
        key = (account_id, region)
        if key not in _backends:
            _backends[key] = SchemasBackend(account_id, region)
        return _backends[key]


def _check_name(what: str, name: str | None) -> None:
    if not name or len(name) > 385 or not re.fullmatch(r"[\w.@\-/]+", name):
        raise _bad(f"{what} {name!r} is not valid: use letters, digits and . _ - @ / (at most 385 characters).")


def _check_description(description: str | None) -> None:
    if description is not None and len(description) > 256:
        raise _bad("Description must be at most 256 characters long.")


def _require_bus(account: str, region: str, bus: str, arn: str) -> None:
    try:
        hooks.resolve("events.backends")[account][region].describe_event_bus(bus)
    except Exception as exc:
        raise _bad(f"Event bus {arn} does not exist.") from exc


# --- content: validation and export -------------------------------------------------------------------------------

def validate_content(type_: str | None, content: str | None) -> dict:
    """The parsed content, or AWS's BadRequestException for a type it does not know or content that is not a
    valid document of that type."""
    if type_ not in TYPES:
        raise _bad(f"Type {type_!r} is not valid: use one of {', '.join(TYPES)}.")
    if not content:
        raise _bad("Content is required.")
    if len(content) > 100_000:
        raise _bad("Content must be at most 100000 characters long.")
    try:
        document = json.loads(content)
    except ValueError as exc:
        raise _bad(f"Invalid {type_} schema: the content is not valid JSON ({exc}).") from None
    if not isinstance(document, dict):
        raise _bad(f"Invalid {type_} schema: the content must be a JSON object.")
    if type_ == "JSONSchemaDraft4":
        from jsonschema import Draft4Validator
        from jsonschema.exceptions import best_match

        error = best_match(Draft4Validator(Draft4Validator.META_SCHEMA).iter_errors(document))
        if error is not None:
            where = "/".join(str(p) for p in error.absolute_path) or "(root)"
            raise _bad(f"Invalid JSONSchemaDraft4 schema at {where}: {error.message}")
    else:
        if not str(document.get("openapi", "")).startswith("3."):
            raise _bad('Invalid OpenApi3 schema: the document must declare "openapi": "3.0.0".')
        from openapi_spec_validator import OpenAPIV30SpecValidator

        for error in OpenAPIV30SpecValidator(document).iter_errors():
            where = "/".join(str(p) for p in getattr(error, "absolute_path", ())) or "(root)"
            raise _bad(f"Invalid OpenApi3 schema at {where}: {error.message}")
    return document


def _draft4(node: Any) -> Any:
    """An OpenApi3 schema object as JSON Schema draft 4: refs to #/definitions, nullable as a type list."""
    if isinstance(node, list):
        return [_draft4(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            converted[key] = value.replace("#/components/schemas/", "#/definitions/")
        elif key == "nullable":
            continue
        else:
            converted[key] = _draft4(value)
    if node.get("nullable") is True and isinstance(node.get("type"), str):
        converted["type"] = [node["type"], "null"]
    return converted


def export_draft4(version: Version) -> str:
    """ExportSchema's content: the event's schema (AWSEvent, else the component the title names, else the first)
    as a JSON Schema draft 4 document with the other components as definitions."""
    document = json.loads(version.content)
    if version.type == "JSONSchemaDraft4":
        return json.dumps(document)
    components = dict((document.get("components") or {}).get("schemas") or {})
    title = (document.get("info") or {}).get("title")
    root_name = next((n for n in ("AWSEvent", title) if n in components), next(iter(components), None))
    root = _draft4(components.pop(root_name, {"type": "object"})) if root_name else {"type": "object"}
    exported = {"$schema": DRAFT4, **root}
    if title:
        exported["title"] = title
    if components:
        exported["definitions"] = {name: _draft4(value) for name, value in components.items()}
    return json.dumps(exported)


# --- discovery ----------------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")
_ENVELOPE = ("detail-type", "resources", "detail", "id", "source", "time", "region", "version", "account")


def pascal(text: str) -> str:
    """EC2 Instance State-change Notification -> EC2InstanceStateChangeNotification (AWS's schema names)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", text) if part) or "Event"


def _infer(value: Any, name: str, components: dict[str, dict]) -> dict:
    if isinstance(value, dict):
        component_name, n = name, 1
        while component_name in components:  # another object of the same name elsewhere in the event
            n += 1
            component_name = f"{name}_{n}"
        component = components[component_name] = {"type": "object", "required": list(value)}
        component["properties"] = {key: _infer(item, pascal(key), components) for key, item in value.items()}
        return {"$ref": f"#/components/schemas/{component_name}"}
    if isinstance(value, list):
        items: dict = {"type": "object"}
        for item in value:
            if item is not None:
                items = _infer(item, f"{name}Item", components)
                break
        return {"type": "array", "items": items}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer", "format": "int64"}
    if isinstance(value, float):
        return {"type": "number", "format": "double"}
    if isinstance(value, str):
        return {"type": "string", "format": "date-time"} if _TIMESTAMP.match(value) else {"type": "string"}
    return {"type": "object", "nullable": True}


def infer_schema(source: str, detail_type: str, detail: Any) -> dict:
    """The OpenApi3 document AWS's discovery writes for one event."""
    title = pascal(detail_type)
    components: dict[str, dict] = {}
    detail_schema = _infer(detail if isinstance(detail, dict) else {}, title, components)
    event = {
        "type": "object",
        "required": list(_ENVELOPE),
        "x-amazon-events-detail-type": detail_type,
        "x-amazon-events-source": source,
        "properties": {
            "detail": detail_schema,
            "account": {"type": "string"},
            "detail-type": {"type": "string"},
            "id": {"type": "string"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "source": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "version": {"type": "string"},
        },
    }
    return {"openapi": "3.0.0", "info": {"version": "1.0.0", "title": title}, "paths": {},
            "components": {"schemas": {"AWSEvent": event, **components}}}


def _merge_property(old: dict, new: dict) -> dict:
    if old == new or "$ref" in old or "$ref" in new:
        return old
    if old.get("type") == "array" and new.get("type") == "array":
        return {**old, "items": _merge_property(old.get("items") or {}, new.get("items") or {})}
    if old.get("nullable") and not new.get("nullable"):
        return {**new, "nullable": True}
    return old


def merge(old: dict, new: dict) -> dict:
    """The schema of every event seen: properties of both, required only what every event had."""
    merged = copy.deepcopy(old)
    old_components = merged.setdefault("components", {}).setdefault("schemas", {})
    for name, component in new["components"]["schemas"].items():
        if name not in old_components:
            old_components[name] = copy.deepcopy(component)
            continue
        target = old_components[name]
        properties = target.setdefault("properties", {})
        for key, value in (component.get("properties") or {}).items():
            properties[key] = _merge_property(properties[key], value) if key in properties else copy.deepcopy(value)
        if name != "AWSEvent":
            target["required"] = [key for key in target.get("required", []) if key in component.get("required", [])]
    return merged


def discover(account_id: str, region: str, bus_arn: str, event: dict) -> None:
    """Called for every event put on a bus: a STARTED discoverer of that bus updates `<source>@<DetailType>` in
    discovered-schemas (a new version only when the merged schema differs from the latest)."""
    with _lock:
        owner = _backends.get((account_id, region))
        if owner is None:
            return
        discoverer = next((d for d in owner.discoverers.values() if d.source_arn == bus_arn), None)
        if discoverer is None or discoverer.state != "STARTED":
            return
        if not discoverer.cross_account and event.get("account", account_id) != account_id:
            return
        source, detail_type = event.get("source"), event.get("detail-type")
        if not source or not detail_type:
            return
        inferred = infer_schema(source, detail_type, event.get("detail"))
        registry = owner.registries[DISCOVERED_REGISTRY]
        name = f"{source}@{pascal(detail_type)}"
        schema = registry.schemas.get(name)
        if schema is None:
            schema = Schema(DISCOVERED_REGISTRY, name, owner._arn("schema", f"{DISCOVERED_REGISTRY}/{name}"))
            schema.add_version(json.dumps(inferred), "OpenApi3")
            registry.schemas[name] = schema
            return
        latest = json.loads(schema.latest.content)
        merged = merge(latest, inferred)
        if merged != latest:
            schema.add_version(json.dumps(merged), "OpenApi3")


def discovered_schema(events: list[str], type_: str) -> str:
    """GetDiscoveredSchema: the schema of the given events (each a JSON text), merged."""
    if type_ not in TYPES:
        raise _bad(f"Type {type_!r} is not valid: use one of {', '.join(TYPES)}.")
    if not events:
        raise _bad("Events must hold at least one event.")
    merged = None
    for text in events:
        try:
            event = json.loads(text)
        except ValueError:
            raise _bad("Each event must be a JSON object.") from None
        if not isinstance(event, dict):
            raise _bad("Each event must be a JSON object.")
        title = "Event"
        components: dict[str, dict] = {}
        _infer(event, title, components)
        document = {"openapi": "3.0.0", "info": {"version": "1.0.0", "title": title}, "paths": {},
                    "components": {"schemas": components}}
        merged = document if merged is None else merge(merged, document)
    if type_ == "JSONSchemaDraft4":
        return export_draft4(Version("1", json.dumps(merged), "OpenApi3", _now()))
    return json.dumps(merged)


# --- the API ---------------------------------------------------------------------------------------------------------

def _page(items: list, limit: Any, token: str | None) -> tuple[list, str | None]:
    try:
        start = int(token) if token else 0
        size = int(limit) if limit else _PAGE
    except ValueError:
        raise _bad("NextToken or Limit is not valid.") from None
    end = start + max(1, size)
    return items[start:end], (str(end) if end < len(items) else None)


def _schema_result(schema: Schema, version: Version, content: bool = False) -> dict:
    result = {"SchemaArn": schema.arn, "SchemaName": schema.name, "SchemaVersion": version.number,
              "Type": version.type, "LastModified": schema.last_modified, "VersionCreatedDate": version.created,
              "Tags": schema.tags}
    if schema.description is not None:
        result["Description"] = schema.description
    if content:
        result["Content"] = version.content
    return result


def _registry_result(registry: Registry) -> dict:
    result = {"RegistryArn": registry.arn, "RegistryName": registry.name, "Tags": registry.tags}
    if registry.description is not None:
        result["Description"] = registry.description
    return result


def _discoverer_result(discoverer: Discoverer) -> dict:
    result = {"DiscovererArn": discoverer.arn, "DiscovererId": discoverer.id, "SourceArn": discoverer.source_arn,
              "State": discoverer.state, "CrossAccount": discoverer.cross_account, "Tags": discoverer.tags}
    if discoverer.description is not None:
        result["Description"] = discoverer.description
    return result


class _Actions:
    """The operations, by moto's method names (camel case to snake case); each returns a result dict."""

    def create_registry(self, b: SchemasBackend, p) -> dict:
        return _registry_result(b.create_registry(p("RegistryName"), p("Description"), p("Tags")))

    def describe_registry(self, b, p) -> dict:
        return _registry_result(b.registry(p("RegistryName")))

    def update_registry(self, b, p) -> dict:
        return _registry_result(b.update_registry(p("RegistryName"), p("Description")))

    def delete_registry(self, b, p) -> None:
        b.delete_registry(p("RegistryName"))

    def list_registries(self, b, p) -> dict:
        scope, prefix = p("Scope"), p("RegistryNamePrefix") or ""
        if scope not in (None, "LOCAL", "AWS"):
            raise _bad(f"Scope {scope!r} is not valid: use LOCAL or AWS.")
        registries = [r for r in b.registries.values() if r.name.startswith(prefix)
                      and (scope is None or (scope == "AWS") == (r.name == AWS_REGISTRY))]
        page, token = _page(registries, p("Limit"), p("NextToken"))
        return {"Registries": [_registry_result(r) for r in page], **({"NextToken": token} if token else {})}

    def create_schema(self, b, p) -> dict:
        schema = b.create_schema(p("RegistryName"), p("SchemaName"), p("Type"), p("Content"), p("Description"),
                                 p("Tags"))
        return _schema_result(schema, schema.latest)

    def update_schema(self, b, p) -> dict:
        schema = b.update_schema(p("RegistryName"), p("SchemaName"), p("Type"), p("Content"), p("Description"))
        return _schema_result(schema, schema.latest)

    def describe_schema(self, b, p) -> dict:
        schema = b.schema(p("RegistryName"), p("SchemaName"))
        return _schema_result(schema, schema.version(p("SchemaVersion")), content=True)

    def delete_schema(self, b, p) -> None:
        b.delete_schema(p("RegistryName"), p("SchemaName"))

    def delete_schema_version(self, b, p) -> None:
        b.delete_schema_version(p("RegistryName"), p("SchemaName"), p("SchemaVersion"))

    def list_schemas(self, b, p) -> dict:
        prefix = p("SchemaNamePrefix") or ""
        schemas = [s for s in b.registry(p("RegistryName")).schemas.values() if s.name.startswith(prefix)]
        page, token = _page(schemas, p("Limit"), p("NextToken"))
        return {"Schemas": [{"SchemaArn": s.arn, "SchemaName": s.name, "LastModified": s.last_modified,
                             "VersionCount": len(s.versions), "Tags": s.tags} for s in page],
                **({"NextToken": token} if token else {})}

    def list_schema_versions(self, b, p) -> dict:
        schema = b.schema(p("RegistryName"), p("SchemaName"))
        page, token = _page(list(schema.versions.values()), p("Limit"), p("NextToken"))
        return {"SchemaVersions": [{"SchemaArn": schema.arn, "SchemaName": schema.name, "SchemaVersion": v.number,
                                    "Type": v.type} for v in page], **({"NextToken": token} if token else {})}

    def search_schemas(self, b, p) -> dict:
        keywords = (p("Keywords") or "").lower().split()
        if not keywords:
            raise _bad("Keywords is required.")
        registry = b.registry(p("RegistryName"))
        found = [s for s in registry.schemas.values()
                 if all(k in s.name.lower() or k in s.latest.content.lower() for k in keywords)]
        page, token = _page(found, p("Limit"), p("NextToken"))
        return {"Schemas": [{"RegistryName": registry.name, "SchemaArn": s.arn, "SchemaName": s.name,
                             "SchemaVersions": [{"CreatedDate": v.created, "SchemaVersion": v.number, "Type": v.type}
                                                for v in s.versions.values()]} for s in page],
                **({"NextToken": token} if token else {})}

    def export_schema(self, b, p) -> dict:
        schema = b.schema(p("RegistryName"), p("SchemaName"))
        version = schema.version(p("SchemaVersion"))
        if p("Type") != "JSONSchemaDraft4":
            raise _bad(f"Type {p('Type')!r} is not valid for export: use JSONSchemaDraft4.")
        return {"Content": export_draft4(version), "SchemaArn": schema.arn, "SchemaName": schema.name,
                "SchemaVersion": version.number, "Type": "JSONSchemaDraft4"}

    def get_discovered_schema(self, b, p) -> dict:
        return {"Content": discovered_schema(p("Events") or [], p("Type"))}

    def create_discoverer(self, b, p) -> dict:
        return _discoverer_result(b.create_discoverer(p("SourceArn"), p("Description"), p("CrossAccount"),
                                                      p("Tags")))

    def describe_discoverer(self, b, p) -> dict:
        return _discoverer_result(b.discoverer(p("DiscovererId")))

    def update_discoverer(self, b, p) -> dict:
        discoverer = b.discoverer(p("DiscovererId"))
        _check_description(p("Description"))
        if p("Description") is not None:
            discoverer.description = p("Description")
        if p("CrossAccount") is not None:
            discoverer.cross_account = bool(p("CrossAccount"))
        return _discoverer_result(discoverer)

    def delete_discoverer(self, b, p) -> None:
        b.discoverer(p("DiscovererId"))
        del b.discoverers[p("DiscovererId")]

    def list_discoverers(self, b, p) -> dict:
        id_prefix, arn_prefix = p("DiscovererIdPrefix") or "", p("SourceArnPrefix") or ""
        found = [d for d in b.discoverers.values() if d.id.startswith(id_prefix) and d.source_arn.startswith(arn_prefix)]
        page, token = _page(found, p("Limit"), p("NextToken"))
        return {"Discoverers": [_discoverer_result(d) for d in page], **({"NextToken": token} if token else {})}

    def start_discoverer(self, b, p) -> dict:
        discoverer = b.discoverer(p("DiscovererId"))
        discoverer.state = "STARTED"
        return {"DiscovererId": discoverer.id, "State": discoverer.state}

    def stop_discoverer(self, b, p) -> dict:
        discoverer = b.discoverer(p("DiscovererId"))
        discoverer.state = "STOPPED"
        return {"DiscovererId": discoverer.id, "State": discoverer.state}

    def put_resource_policy(self, b, p) -> dict:
        registry = b.registry(p("RegistryName") or "")
        policy = p("Policy")
        try:
            json.loads(policy if isinstance(policy, str) else json.dumps(policy))
        except ValueError:
            raise _bad("Policy is not valid JSON.") from None
        if p("RevisionId") and p("RevisionId") != registry.revision:
            raise SchemasError("PreconditionFailedException",
                               f"RevisionId {p('RevisionId')} does not match the policy's current revision.")
        registry.policy = policy if isinstance(policy, str) else json.dumps(policy)
        registry.revision = str(uuid.uuid4())
        return {"Policy": registry.policy, "RevisionId": registry.revision}

    def get_resource_policy(self, b, p) -> dict:
        registry = b.registry(p("RegistryName") or "")
        if registry.policy is None:
            raise _not_found(f"Registry {registry.name} has no resource policy.")
        return {"Policy": registry.policy, "RevisionId": registry.revision}

    def delete_resource_policy(self, b, p) -> None:
        registry = b.registry(p("RegistryName") or "")
        if registry.policy is None:
            raise _not_found(f"Registry {registry.name} has no resource policy.")
        registry.policy = registry.revision = None

    def tag_resource(self, b, p) -> None:
        b.tagged(p("ResourceArn")).update(p("Tags") or {})

    def untag_resource(self, b, p) -> None:
        tags = b.tagged(p("ResourceArn"))
        for key in p("TagKeys") or []:
            tags.pop(key, None)

    def list_tags_for_resource(self, b, p) -> dict:
        return {"Tags": dict(b.tagged(p("ResourceArn")))}

    def _code_bindings(self, b, p):
        raise _bad("Code bindings are not generated by the securecart-lab emulator: ExportSchema gives the "
                   "schema as JSON Schema, from which a code generator can build types.")

    put_code_binding = describe_code_binding = get_code_binding_source = _code_bindings


_ACTIONS = _Actions()


def _error(status: int, code: str, message: str) -> tuple[int, dict, str]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code, "x-amzn-RequestId": str(uuid.uuid4())}
    return status, headers, json.dumps({"Code": code, "Message": message})


def _response_class():
    from moto.core.utils import camelcase_to_underscores

    class SchemasResponse(hooks.resolve("core.base_response")):
        def __init__(self) -> None:
            super().__init__(service_name="schemas")
            self.automated_parameter_parsing = True

        def call_action(self):
            action = self._get_action()
            handler = getattr(_ACTIONS, camelcase_to_underscores(action), None) if action else None
            if handler is None:
                return _error(400, "UnsupportedOperation", f"{self.method} {self.path} is not supported by the "
                              "securecart-lab emulator (schemas): no such operation")
            try:
                with _lock:
                    result = handler(backend(self.current_account, self.region), self._get_param)
            except SchemasError as exc:
                return _error(exc.status, exc.code, exc.message)
            if result is None:
                return self.serialized(hooks.resolve("cfn.empty_result")())
            return self.serialized(hooks.resolve("core.action_result")(result))

    return SchemasResponse


def backend_app():
    """The WSGI app the dispatcher serves Schemas requests with (extensions.backend_app registers its errors)."""
    from flask import Flask
    from moto.core.utils import convert_to_flask_response

    response = _response_class()
    app = Flask("securecart-schemas")
    app.request_class = hooks.resolve("server.request_class")
    view = convert_to_flask_response(response.dispatch)
    app.add_url_rule("/", "schemas", view, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    app.add_url_rule("/<path:path>", "schemas_path", view, methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"])
    return app


def install() -> None:
    """The CloudFormation types (moto's CloudFormation reads its model map once, after every installer ran)."""
    from securecart_lab.emulator.cloudformation import eventschemas

    eventschemas.define()
