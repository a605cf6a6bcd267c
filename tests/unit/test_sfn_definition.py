"""Definition diagnostics: AWS's codes and JSON-pointer locations, for the mistakes learners make."""

from __future__ import annotations

import json

from securecart_lab.emulator.stepfunctions_definition import diagnose, invalid_definition_message


def _codes(definition) -> list[tuple[str, str | None]]:
    return [(d.code, d.location) for d in diagnose(json.dumps(definition))]


def test_a_valid_definition_has_no_diagnostics():
    assert diagnose(json.dumps({"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}})) == []


def test_missing_targets_are_located():
    definition = {"StartAt": "C", "States": {
        "C": {"Type": "Choice", "Choices": [{"Variable": "$.a", "IsPresent": True, "Next": "Gone"}], "Default": "Nope"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True,
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Handler"}]}}}
    assert _codes(definition) == [("MISSING_TRANSITION_TARGET", "/States/C/Choices/0/Next"),
                                  ("MISSING_TRANSITION_TARGET", "/States/C/Default"),
                                  ("MISSING_TRANSITION_TARGET", "/States/T/Catch/0/Next")]


def test_a_misspelt_field_and_a_state_without_transition():
    definition = {"StartAt": "P", "States": {"P": {"Type": "Pass", "Nxt": "Q"}, "Q": {"Type": "Succeed"}}}
    messages = [(d.code, d.message, d.location) for d in diagnose(json.dumps(definition))]
    assert messages == [
        ("SCHEMA_VALIDATION_FAILED", 'The field "Nxt" is not supported by Step Functions', "/States/P"),
        ("SCHEMA_VALIDATION_FAILED", "No transition found for state", "/States/P")]


def test_nested_map_and_parallel_are_checked():
    definition = {"StartAt": "M", "States": {"M": {"Type": "Map", "End": True, "ItemProcessor": {
        "StartAt": "I", "States": {"I": {"Type": "Pass", "Next": "X"}}}}, }}
    assert _codes(definition) == [("MISSING_TRANSITION_TARGET", "/States/M/ItemProcessor/States/I/Next")]


def test_invalid_json_and_the_create_message():
    (diagnostic,) = diagnose('{"StartAt": ')
    assert diagnostic.code == "INVALID_JSON_DESCRIPTION" and "line: 1" in diagnostic.message
    message = invalid_definition_message(diagnose(json.dumps({"StartAt": "A", "States": {}})))
    assert message == "Invalid State Machine Definition: 'MISSING_TRANSITION_TARGET: Missing 'Next' target: A at /StartAt'"
