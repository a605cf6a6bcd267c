"""AWS::EventSchemas::Registry, Schema and Discoverer, which moto's CloudFormation lacks, on the kit's Schemas API
(emulator/schemas.py). Ref and Fn::GetAtt answer as AWS documents them: Ref is the ARN of each; GetAtt RegistryArn,
RegistryName; SchemaArn, SchemaName, SchemaVersion (the latest); DiscovererArn, DiscovererId, State, CrossAccount.
Updates in place go through the API (updaters.py): a Schema's new Content is a new version.
"""

from __future__ import annotations

from typing import Any

from securecart_lab.emulator import hooks

_defined: list[type] = []


def _tags(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return {str(k): str(v) for k, v in value.items()}
    return {str(t["Key"]): str(t["Value"]) for t in value or [] if isinstance(t, dict) and "Key" in t}


def _bool(value: Any, default: bool) -> bool:
    if value is None:
        return default
    return value if isinstance(value, bool) else str(value).lower() == "true"


def define() -> None:
    """Define the three models once (moto finds CloudFormation models as CloudFormationModel's subclasses)."""
    if _defined:
        return
    from securecart_lab.emulator import schemas

    base = hooks.resolve("cfn.model")

    class _Resource:  # a mixin: moto lists CloudFormationModel's direct subclasses only
        TYPE = ""
        NAME_TYPE = ""  # the property that names the resource ("": named by the API)
        ATTRIBUTES: tuple[str, ...] = ()

        def __init__(self, account_id: str, region_name: str, key: str):
            self.account_id, self.region_name, self.key = account_id, region_name, key

        @property
        def backend(self) -> schemas.SchemasBackend:
            return schemas.backend(self.account_id, self.region_name)

        @classmethod
        def cloudformation_type(cls) -> str:
            return cls.TYPE

        @classmethod
        def cloudformation_name_type(cls) -> str:
            return cls.NAME_TYPE

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return attr in cls.ATTRIBUTES

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json.get("Properties") or {}
            with schemas._lock:
                return cls._create(account_id, region_name, resource_name, properties)

        def get_cfn_attribute(self, attribute_name: str) -> Any:
            from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

            if attribute_name not in self.ATTRIBUTES:
                raise UnformattedGetAttTemplateException()
            with schemas._lock:
                return self._attribute(attribute_name)

        def delete(self, account_id: str, region_name: str) -> None:
            with schemas._lock:
                self._delete()

        def is_created(self) -> bool:
            return True

    class Registry(_Resource, base):
        TYPE, NAME_TYPE = "AWS::EventSchemas::Registry", "RegistryName"
        ATTRIBUTES = ("RegistryArn", "RegistryName")

        @classmethod
        def _create(cls, account_id: str, region_name: str, name: str, properties: dict) -> "Registry":
            schemas.backend(account_id, region_name).create_registry(
                name, properties.get("Description"), _tags(properties.get("Tags")))
            return cls(account_id, region_name, name)

        @property
        def physical_resource_id(self) -> str:
            return self.backend._arn("registry", self.key)

        def _attribute(self, name: str) -> Any:
            return self.physical_resource_id if name == "RegistryArn" else self.key

        def _delete(self) -> None:
            self.backend.delete_registry(self.key)

    class Schema(_Resource, base):
        TYPE, NAME_TYPE = "AWS::EventSchemas::Schema", "SchemaName"
        ATTRIBUTES = ("SchemaArn", "SchemaName", "SchemaVersion", "LastModified", "VersionCreatedDate")

        def __init__(self, account_id: str, region_name: str, registry: str, name: str):
            super().__init__(account_id, region_name, name)
            self.registry = registry

        @classmethod
        def _create(cls, account_id: str, region_name: str, name: str, properties: dict) -> "Schema":
            registry = properties.get("RegistryName")
            schemas.backend(account_id, region_name).create_schema(
                registry, name, properties.get("Type"), properties.get("Content"), properties.get("Description"),
                _tags(properties.get("Tags")))
            return cls(account_id, region_name, registry, name)

        @property
        def physical_resource_id(self) -> str:
            return self.backend._arn("schema", f"{self.registry}/{self.key}")

        def _attribute(self, name: str) -> Any:
            if name == "SchemaArn":
                return self.physical_resource_id
            if name == "SchemaName":
                return self.key
            schema = self.backend.schema(self.registry, self.key)
            if name == "SchemaVersion":
                return schema.latest.number
            when = schema.last_modified if name == "LastModified" else schema.latest.created
            return when.isoformat()

        def _delete(self) -> None:
            self.backend.delete_schema(self.registry, self.key)

    class Discoverer(_Resource, base):
        TYPE = "AWS::EventSchemas::Discoverer"
        ATTRIBUTES = ("DiscovererArn", "DiscovererId", "State", "CrossAccount")

        @classmethod
        def _create(cls, account_id: str, region_name: str, name: str, properties: dict) -> "Discoverer":
            discoverer = schemas.backend(account_id, region_name).create_discoverer(
                properties.get("SourceArn"), properties.get("Description"),
                _bool(properties.get("CrossAccount"), True), _tags(properties.get("Tags")))
            return cls(account_id, region_name, discoverer.id)

        @property
        def physical_resource_id(self) -> str:
            return self.backend._arn("discoverer", self.key)

        def _attribute(self, name: str) -> Any:
            if name == "DiscovererArn":
                return self.physical_resource_id
            if name == "DiscovererId":
                return self.key
            discoverer = self.backend.discoverer(self.key)
            return discoverer.state if name == "State" else discoverer.cross_account

        def _delete(self) -> None:
            self.backend.discoverer(self.key)
            del self.backend.discoverers[self.key]

    _defined.extend((Registry, Schema, Discoverer))
