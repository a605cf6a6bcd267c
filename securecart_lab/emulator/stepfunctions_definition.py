"""Static checks of a state machine definition, with the diagnostic codes and locations AWS reports.

ValidateStateMachineDefinition returns them as diagnostics; CreateStateMachine/UpdateStateMachine refuse a
definition with any ERROR as InvalidDefinition ("Invalid State Machine Definition: 'CODE: message at /path'").
Grammar errors come from moto's ASL parser (SCHEMA_VALIDATION_FAILED).
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    location: str | None = None
    severity: str = "ERROR"


COMMON = {"Type", "Comment", "Next", "End", "InputPath", "OutputPath", "QueryLanguage", "Assign", "Output"}
FIELDS = {
    "Pass": COMMON | {"Result", "ResultPath", "Parameters"},
    "Task": COMMON | {"Resource", "Parameters", "Arguments", "ResultPath", "ResultSelector", "Retry", "Catch",
                      "TimeoutSeconds", "TimeoutSecondsPath", "HeartbeatSeconds", "HeartbeatSecondsPath",
                      "Credentials"},
    "Choice": {"Type", "Comment", "InputPath", "OutputPath", "QueryLanguage", "Assign", "Output", "Choices",
               "Default"},
    "Wait": COMMON | {"Seconds", "SecondsPath", "Timestamp", "TimestampPath"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath", "QueryLanguage", "Output"},
    "Fail": {"Type", "Comment", "Error", "ErrorPath", "Cause", "CausePath", "QueryLanguage"},
    "Parallel": COMMON | {"Branches", "ResultPath", "ResultSelector", "Retry", "Catch", "Parameters", "Arguments"},
    "Map": COMMON | {"Iterator", "ItemProcessor", "ItemsPath", "Items", "ItemSelector", "Parameters", "MaxConcurrency",
                     "MaxConcurrencyPath", "ResultPath", "ResultSelector", "Retry", "Catch", "ItemReader",
                     "ItemBatcher", "ResultWriter", "ToleratedFailureCount", "ToleratedFailureCountPath",
                     "ToleratedFailurePercentage", "ToleratedFailurePercentagePath", "Label"},
}


def invalid_definition_message(diagnostics: list[Diagnostic]) -> str:
    parts = [f"{d.code}: {d.message}" + (f" at {d.location}" if d.location else "") for d in diagnostics]
    return "Invalid State Machine Definition: '" + ", ".join(parts) + "'"


def _graph(machine: dict, path: str, found: list[Diagnostic]) -> None:
    states = machine.get("States")
    if not isinstance(states, dict) or "StartAt" not in machine:
        missing = [name for name in ("StartAt", "States") if name not in machine]
        if missing:
            found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", f"These fields are required: [{', '.join(missing)}]",
                                    path or "/"))
        return
    start = machine["StartAt"]
    if start not in states:
        found.append(Diagnostic("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {start}", f"{path}/StartAt"))
    for name, state in states.items():
        where = f"{path}/States/{name}"
        if not isinstance(state, dict):
            found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", "Expected value of type: object", where))
            continue
        kind = state.get("Type")
        if kind not in FIELDS:
            found.append(Diagnostic("SCHEMA_VALIDATION_FAILED",
                                    f"The value for the field 'Type' must be one of {sorted(FIELDS)}"
                                    if kind else "These fields are required: [Type]", where))
            continue
        for field in state:
            if field not in FIELDS[kind]:
                found.append(Diagnostic("SCHEMA_VALIDATION_FAILED",
                                        f'The field "{field}" is not supported by Step Functions', where))
        targets = []
        if "Next" in state:
            targets.append((state["Next"], f"{where}/Next"))
        if kind == "Choice":
            for i, rule in enumerate(state.get("Choices") or []):
                if isinstance(rule, dict) and "Next" in rule:
                    targets.append((rule["Next"], f"{where}/Choices/{i}/Next"))
            if "Default" in state:
                targets.append((state["Default"], f"{where}/Default"))
        for i, catcher in enumerate(state.get("Catch") or []):
            if isinstance(catcher, dict) and "Next" in catcher:
                targets.append((catcher["Next"], f"{where}/Catch/{i}/Next"))
        for target, location in targets:
            if target not in states:
                found.append(Diagnostic("MISSING_TRANSITION_TARGET", f"Missing 'Next' target: {target}", location))
        if kind not in ("Choice", "Succeed", "Fail") and "Next" not in state and state.get("End") is not True:
            found.append(Diagnostic("SCHEMA_VALIDATION_FAILED", "No transition found for state", where))
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state.get(key), dict):
                _graph(state[key], f"{where}/{key}", found)
        for i, branch in enumerate(state.get("Branches") or []):
            if isinstance(branch, dict):
                _graph(branch, f"{where}/Branches/{i}", found)


def _parser_message(exc: Exception) -> str:
    args = getattr(exc, "errors", None) or getattr(exc, "args", ())
    first = str(args[0] if isinstance(args, (list, tuple)) and args else exc)
    if isinstance(args, (list, tuple)) and args and isinstance(args[0], (list, tuple)) and args[0]:
        first = str(args[0][0])
    return re.sub(r" expecting \{.*$", "", first).strip() or type(exc).__name__


def without_batchers(definition: str) -> tuple[str, dict[str, dict]]:
    """(the definition without ItemBatcher fields, Map state name -> its ItemBatcher): moto's grammar lacks the field,
    so the kit parses without it and batches the items itself (stepfunctions.py)."""
    if '"ItemBatcher"' not in definition:
        return definition, {}
    machine = json.loads(definition)
    batchers: dict[str, dict] = {}

    def walk(node: dict) -> None:
        for name, state in (node.get("States") or {}).items():
            if not isinstance(state, dict):
                continue
            if "ItemBatcher" in state:
                batchers[name] = state.pop("ItemBatcher")
            for key in ("ItemProcessor", "Iterator"):
                if isinstance(state.get(key), dict):
                    walk(state[key])
            for branch in state.get("Branches") or []:
                if isinstance(branch, dict):
                    walk(branch)

    walk(machine)
    return json.dumps(machine), batchers


@functools.lru_cache(maxsize=256)
def _parse_error(definition: str) -> str | None:
    """moto's ASL parser's complaint, or None (cached: a parse costs 50 ms, and create and validate both ask)."""
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    try:
        AmazonStateLanguageParser.parse(definition)
    except Exception as exc:
        return _parser_message(exc)
    return None


def diagnose(definition: str | None, machine_type: str = "STANDARD") -> list[Diagnostic]:
    if not definition:
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", "The definition is empty", "/")]
    try:
        machine = json.loads(definition)
    except ValueError as exc:
        message = getattr(exc, "msg", str(exc))
        where = f" at (line: {exc.lineno}, column: {exc.colno})" if hasattr(exc, "lineno") else ""
        return [Diagnostic("INVALID_JSON_DESCRIPTION", f"{message}{where}")]
    if not isinstance(machine, dict):
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", "Expected value of type: object", "/")]
    found: list[Diagnostic] = []
    _graph(machine, "", found)
    if found:
        return found
    error = _parse_error(without_batchers(definition)[0])
    if error is not None:
        return [Diagnostic("SCHEMA_VALIDATION_FAILED", error)]
    if machine_type == "EXPRESS" and re.search(r"\.(sync|waitForTaskToken)(:2)?\"", definition):
        return [Diagnostic("SCHEMA_VALIDATION_FAILED",
                           "Express state machine does not support '.sync' or '.waitForTaskToken' service integration")]
    return []
