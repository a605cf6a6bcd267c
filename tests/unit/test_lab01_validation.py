"""Lab 1's deploy-time validation without an engine: ASL problems, JSON errors and line numbers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from securecart_lab.errors import WorkspaceFileError
from securecart_lab.labs.registry import get_lab

LAB = get_lab(1)
PROV = LAB.provisioner()
ASL = PROV.asl


def _solution(name="state_machine.asl.json"):
    return json.loads((LAB.solution_dir / name).read_text())


def _problems(definition):
    return [p.message for p in ASL.validate(definition, lambda name: name in PROV.FUNCTIONS, lambda name: name in PROV.TABLES)]


def test_starter_and_solution_definitions_are_valid():
    assert _problems(_solution()) == []
    assert _problems(json.loads((LAB.starter_dir / "state_machine.asl.json").read_text())) == []


def test_next_to_a_missing_state_and_unreachable_states_are_reported():
    definition = _solution()
    definition["States"]["ValidateOrder"]["Next"] = "Authorize"
    problems = _problems(definition)
    assert any("Next of state 'ValidateOrder' is 'Authorize', which is not a state" in p for p in problems)
    assert any("state 'AuthorizePayment' is not reachable" in p for p in problems)


def test_a_misspelt_state_name_gets_a_did_you_mean():
    definition = _solution()
    definition["States"]["ValidateOrder"]["Next"] = "AuthorisePayment"
    problems = _problems(definition)
    assert any("Next of state 'ValidateOrder' is 'AuthorisePayment', which is not a state: did you mean "
               "'AuthorizePayment'? (states: " in p for p in problems), problems
    definition = _solution()
    definition["StartAt"] = "validateorder"  # another case
    assert any("StartAt names 'validateorder', which is not a state here: did you mean 'ValidateOrder'?" in p
               for p in _problems(definition)), _problems(definition)
    definition = _solution()
    definition["States"]["ValidateOrder"]["Next"] = "Zzzzzz"  # nothing near: no guess
    assert any("is 'Zzzzzz', which is not a state (states: " in p for p in _problems(definition))


def test_problems_inside_parallel_branches_are_found():
    definition = _solution()
    branch = definition["States"]["FulfilOrder"]["Branches"][0]
    branch["States"]["ReserveInventory"].pop("End")
    assert _problems(definition) == ["state 'ReserveInventory' needs a Next or \"End\": true"]


def test_unknown_resource_and_missing_type_are_reported():
    definition = _solution()
    definition["States"]["MarkConfirmed"]["Resource"] = "arn:aws:states:::dynamodb:scan"
    definition["States"]["OrderConfirmed"]["Type"] = "Success"
    problems = _problems(definition)
    assert any("'arn:aws:states:::dynamodb:scan', which is not a Lambda function or a service integration" in p for p in problems)
    assert any("Type 'Success'" in p for p in problems)


def test_function_name_accepts_names_and_arns():
    assert ASL.function_name("validate-order") == "validate-order"
    assert ASL.function_name("arn:aws:lambda:us-east-1:123456789012:function:restock:$LATEST") == "restock"


def test_invalid_json_gives_line_and_column(tmp_path):
    path = tmp_path / "rules.json"
    text = '[\n  {"Name": "x",\n   "EventPattern": {}\n  ]\n'
    with pytest.raises(WorkspaceFileError) as error:
        PROV.parse_json(path, text)
    assert error.value.line == 4
    assert str(error.value).startswith(f"{path}:4: invalid JSON at line 4, column 3")


def test_line_of_follows_the_key_path():
    text = (LAB.solution_dir / "state_machine.asl.json").read_text()
    line = PROV.line_of(text, ("States", "FulfilOrder", "Branches", "0", "States", "ReserveInventory", "Parameters"))
    assert '"Parameters"' in text.splitlines()[line - 1]
    assert text.splitlines()[line - 4].strip().startswith('"ReserveInventory"')


@pytest.mark.parametrize("rules, message", [
    ({"Name": "x"}, "must be a JSON list"),
    ([{"Name": "r", "EventPattern": {"source": "securecart.orders"}, "Targets": [{"Id": "t", "Arn": "a"}]}],
     "'source' must be a list of values"),
    ([{"Name": "r", "EventBusName": "default", "EventPattern": {"source": ["s"]}, "Targets": [{"Id": "t", "Arn": "a"}]}],
     "belong on the 'securecart' bus"),
    ([{"Name": "r", "EventPattern": {"source": ["s"]},
       "Targets": [{"Id": "t", "Arn": "arn:aws:states:us-east-1:1:stateMachine:m"}]}], "needs \"RoleArn\""),
])
def test_rules_are_validated(tmp_path, rules, message):
    text = json.dumps(rules, indent=2)
    with pytest.raises(WorkspaceFileError) as error:
        PROV._validate_rules(tmp_path / "rules.json", text, rules)
    assert message in error.value.message


def test_logging_on_needs_a_destination(tmp_path):
    with pytest.raises(WorkspaceFileError) as error:
        PROV._validate_logging(Path("logging.json"), '{"level": "ALL"}', {"level": "ALL"})
    assert "needs a destination" in error.value.message and error.value.line == 1


def test_a_target_arn_must_be_an_arn(tmp_path):
    rules = [{"Name": "r", "EventPattern": {"source": ["s"]}, "Targets": [{"Id": "t", "Arn": "restock"}]}]
    text = json.dumps(rules, indent=2)
    with pytest.raises(WorkspaceFileError) as error:
        PROV._validate_rules(tmp_path / "rules.json", text, rules)
    assert "${FunctionArn:restock}" in error.value.message
    assert error.value.line == text[:text.index('"Arn"')].count("\n") + 1


def test_a_misspelt_retrier_or_catcher_field_is_named_with_the_field_meant():
    # "BackOffRate" deployed as the moto parser's "mismatched input" at a line of the re-serialised definition.
    definition = _solution()
    definition["States"]["AuthorizePayment"]["Retry"][0]["BackOffRate"] = definition["States"]["AuthorizePayment"]["Retry"][0].pop("BackoffRate")
    definition["States"]["AuthorizePayment"]["Catch"][0]["ResultsPath"] = "$.error"
    problems = _problems(definition)
    assert ("Retry[0] of state 'AuthorizePayment' has an unknown field 'BackOffRate': did you mean 'BackoffRate'? "
            "(field names are case-sensitive)") in problems
    assert any("Catch[0] of state 'AuthorizePayment' has an unknown field 'ResultsPath': did you mean 'ResultPath'?" in p
               for p in problems)


def test_role_policy_statements_may_use_not_action_and_not_resource(tmp_path):
    """IAM's NotAction/NotResource are valid (the emulator evaluates them); a statement with neither form is not."""
    policy = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Deny", "NotAction": ["sqs:SendMessage"], "NotResource": "arn:aws:sqs:*:*:securecart-support"}]}
    PROV._validate_policy(tmp_path / "role_policy.json", json.dumps(policy), policy)
    del policy["Statement"][0]["NotResource"]
    with pytest.raises(WorkspaceFileError) as error:
        PROV._validate_policy(tmp_path / "role_policy.json", json.dumps(policy), policy)
    assert "Statement[0] needs Resource (or NotResource)" in error.value.message
