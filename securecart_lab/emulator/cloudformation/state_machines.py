"""AWS::StepFunctions::StateMachine as CloudFormation creates it. moto reads DefinitionString, RoleArn and Tags only:
a template's `Definition` (an object), `DefinitionSubstitutions`, `StateMachineType: EXPRESS` and
`LoggingConfiguration` were dropped, so the stack held a STANDARD state machine with an empty definition."""

from __future__ import annotations

import json
from typing import Any

from securecart_lab.emulator import hooks


def definition_text(properties: dict[str, Any]) -> str:
    """The definition CloudFormation sends: `Definition` as JSON (else `DefinitionString`), with each
    ${Key} of `DefinitionSubstitutions` replaced by its value."""
    definition = properties.get("Definition")
    text = json.dumps(definition) if definition is not None else str(properties.get("DefinitionString") or "")
    for key, value in (properties.get("DefinitionSubstitutions") or {}).items():
        replacement = value if isinstance(value, str) else json.dumps(value)
        text = text.replace("${" + key + "}", json.dumps(replacement)[1:-1])
    return text


def _lower_keys(value: Any) -> Any:
    """CloudFormation's LoggingConfiguration/TracingConfiguration (Level, Destinations...) in the API's casing."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _lower_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_lower_keys(v) for v in value]
    return value


def api_arguments(properties: dict[str, Any]) -> dict[str, Any]:
    """CreateStateMachine's optional arguments from the resource's properties."""
    arguments: dict[str, Any] = {"sm_type": properties.get("StateMachineType") or "STANDARD"}
    if properties.get("LoggingConfiguration"):
        arguments["loggingConfiguration"] = _lower_keys(properties["LoggingConfiguration"])
    if properties.get("TracingConfiguration"):
        arguments["tracingConfiguration"] = _lower_keys(properties["TracingConfiguration"])
    return arguments


def install() -> None:
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        tags = [{"key": t["Key"], "value": t["Value"]} for t in properties.get("Tags") or []]
        backend = hooks.resolve("sfn.model_backends")[account_id][region_name]
        return backend.create_state_machine(properties.get("StateMachineName") or resource_name,
                                            definition_text(properties), properties.get("RoleArn", ""), tags=tags,
                                            **api_arguments(properties))

    hooks.replace("sfn.create_from_cfn", classmethod(create_from_cloudformation_json))
