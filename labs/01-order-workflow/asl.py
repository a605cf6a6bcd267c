"""Static checks of an Amazon States Language definition, with the JSON path of each problem.

Step Functions rejects a broken definition with one terse message; these checks say which state is wrong and
why, so `deploy` can point at the file and line before anything is changed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

STATE_TYPES = {"Task", "Pass", "Choice", "Wait", "Succeed", "Fail", "Parallel", "Map"}
TERMINAL = {"Succeed", "Fail"}
LAMBDA_INVOKE = re.compile(r"^arn:aws:states:::lambda:invoke(\.waitForTaskToken)?$")
LAMBDA_ARN = re.compile(r"^arn:aws:lambda:[^:]+:[^:]+:function:([^:]+)(:[^:]+)?$")
INTEGRATIONS = re.compile(
    r"^arn:aws:states:::("
    r"sqs:sendMessage|sns:publish|events:putEvents|dynamodb:(getItem|putItem|updateItem|deleteItem)"
    r"|states:startExecution(\.sync(:2)?)?|aws-sdk:[a-z0-9]+:[A-Za-z0-9]+"
    r")(\.waitForTaskToken)?$"
)


@dataclass(frozen=True)
class Problem:
    path: tuple[str, ...]  # keys from the document root to the offending value
    message: str


def function_name(reference: str) -> str:
    """The function name in a FunctionName value or a Lambda ARN ("validate-order", "arn:...:function:x:$LATEST")."""
    match = LAMBDA_ARN.match(reference)
    return match.group(1) if match else reference.split(":")[0]


def validate(definition, function_exists: Callable[[str], bool], table_exists: Callable[[str], bool]) -> list[Problem]:
    """Every problem found in `definition` (a parsed JSON document); an empty list means it looks deployable."""
    if not isinstance(definition, dict):
        return [Problem((), "the state machine definition must be a JSON object with StartAt and States")]
    problems: list[Problem] = []
    _machine(definition, (), problems, function_exists, table_exists)
    return problems


def _machine(machine: dict, path: tuple, problems: list, function_exists, table_exists) -> None:
    states = machine.get("States")
    start = machine.get("StartAt")
    if not isinstance(states, dict) or not states:
        problems.append(Problem(path + ("States",), "States must be an object with at least one state"))
        return
    if not isinstance(start, str):
        problems.append(Problem(path + ("StartAt",), "StartAt must name the first state"))
    elif start not in states:
        problems.append(Problem(path + ("StartAt",), f"StartAt names {start!r}, which is not a state here"
                                                     f"{_did_you_mean(start, states)} (states: {', '.join(states)})"))
    for name, state in states.items():
        where = path + ("States", name)
        if len(name) > 80:
            problems.append(Problem(where, f"state name {name[:20]!r}... is longer than 80 characters"))
        if not isinstance(state, dict):
            problems.append(Problem(where, f"state {name!r} must be an object"))
            continue
        _state(name, state, where, states, problems, function_exists, table_exists)
    if isinstance(start, str) and start in states:
        unreachable = [n for n in states if n not in _reachable(start, states)]
        for name in unreachable:
            problems.append(Problem(path + ("States", name), f"state {name!r} is not reachable from {start!r}: "
                                                             "no Next, Default, Choice or Catch leads to it"))


def _did_you_mean(value, names) -> str:
    """": did you mean 'X'?" for a state name that is a near miss (a typo, another case), else ""."""
    import difflib

    if not isinstance(value, str):
        return ""
    close = [n for n in names if n.lower() == value.lower()] or difflib.get_close_matches(value, list(names), n=1,
                                                                                          cutoff=0.6)
    return f": did you mean {close[0]!r}?" if close else ""


def _state(name, state, where, states, problems, function_exists, table_exists) -> None:
    kind = state.get("Type")
    if kind not in STATE_TYPES:
        problems.append(Problem(where + ("Type",), f"state {name!r} has Type {kind!r}; expected one of "
                                                  f"{', '.join(sorted(STATE_TYPES))}"))
        return

    def target(value, key_path, what):
        if not isinstance(value, str) or value not in states:
            problems.append(Problem(key_path, f"{what} of state {name!r} is {value!r}, which is not a state"
                                              f"{_did_you_mean(value, states)} (states: {', '.join(states)})"))

    if kind not in TERMINAL and kind != "Choice":
        has_next, ends = "Next" in state, state.get("End") is True
        if has_next and ends:
            problems.append(Problem(where, f"state {name!r} has both Next and End; keep one"))
        elif not has_next and not ends:
            problems.append(Problem(where, f"state {name!r} needs a Next or \"End\": true"))
        elif has_next:
            target(state["Next"], where + ("Next",), "Next")
    if kind == "Choice":
        choices = state.get("Choices")
        if not isinstance(choices, list) or not choices:
            problems.append(Problem(where, f"Choice state {name!r} needs a non-empty Choices list"))
        else:
            for i, choice in enumerate(choices):
                target(choice.get("Next") if isinstance(choice, dict) else None, where + ("Choices", str(i)), f"Choices[{i}].Next")
        if "Default" in state:
            target(state["Default"], where + ("Default",), "Default")
    for i, retrier in enumerate(_list(state, "Retry", where, problems)):
        _retrier(name, retrier, where + ("Retry", str(i)), problems)
    for i, catcher in enumerate(_list(state, "Catch", where, problems)):
        at = where + ("Catch", str(i))
        if not isinstance(catcher, dict) or not _error_list(catcher.get("ErrorEquals")):
            problems.append(Problem(at, f"Catch[{i}] of state {name!r} needs ErrorEquals, a non-empty list of error names"))
            continue
        _unknown_fields(f"Catch[{i}] of state {name!r}", catcher, CATCHER_FIELDS, at, problems)
        target(catcher.get("Next"), at + ("Next",), f"Catch[{i}].Next")
    if kind == "Task":
        _task(name, state, where, problems, function_exists, table_exists)
    elif kind == "Parallel":
        branches = state.get("Branches")
        if not isinstance(branches, list) or not branches:
            problems.append(Problem(where, f"Parallel state {name!r} needs a non-empty Branches list"))
        else:
            for i, branch in enumerate(branches):
                if not isinstance(branch, dict):
                    problems.append(Problem(where + ("Branches", str(i)), f"Branches[{i}] of {name!r} must be an object"))
                else:
                    _machine(branch, where + ("Branches", str(i)), problems, function_exists, table_exists)
    elif kind == "Map":
        key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        processor = state.get(key)
        if not isinstance(processor, dict):
            problems.append(Problem(where, f"Map state {name!r} needs an ItemProcessor"))
        else:
            _machine(processor, where + (key,), problems, function_exists, table_exists)


def _list(state, key, where, problems) -> list:
    value = state.get(key, [])
    if not isinstance(value, list):
        problems.append(Problem(where + (key,), f"{key} must be a list"))
        return []
    return value


def _error_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


RETRIER_FIELDS = ("ErrorEquals", "IntervalSeconds", "MaxAttempts", "BackoffRate", "MaxDelaySeconds", "JitterStrategy",
                  "Comment")
CATCHER_FIELDS = ("ErrorEquals", "Next", "ResultPath", "Comment", "Output", "Assign")


def _unknown_fields(what: str, value: dict, known: tuple[str, ...], at, problems) -> None:
    """Step Functions rejects fields it does not know; say which, and the field meant when it is a near miss."""
    import difflib

    for key in value:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1, cutoff=0.6) or [k for k in known if k.lower() == key.lower()]
            problems.append(Problem(at + (key,), f"{what} has an unknown field {key!r}"
                                    + (f": did you mean {close[0]!r}? (field names are case-sensitive)" if close else "")))


def _retrier(name, retrier, at, problems) -> None:
    index = at[-1]
    if not isinstance(retrier, dict) or not _error_list(retrier.get("ErrorEquals")):
        problems.append(Problem(at, f"Retry[{index}] of state {name!r} needs ErrorEquals, a non-empty list of error names"))
        return
    _unknown_fields(f"Retry[{index}] of state {name!r}", retrier, RETRIER_FIELDS, at, problems)
    checks = (
        ("IntervalSeconds", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 1, "a whole number >= 1"),
        ("MaxAttempts", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0, "a whole number >= 0"),
        ("BackoffRate", lambda v: isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1, "a number >= 1.0"),
    )
    for key, ok, expected in checks:
        if key in retrier and not ok(retrier[key]):
            problems.append(Problem(at + (key,), f"Retry[{index}].{key} of state {name!r} must be {expected}, "
                                                 f"found {retrier[key]!r}"))


def _task(name, state, where, problems, function_exists, table_exists) -> None:
    resource = state.get("Resource")
    at = where + ("Resource",)
    params = state.get("Parameters") if isinstance(state.get("Parameters"), dict) else {}
    if not isinstance(resource, str):
        problems.append(Problem(where, f"Task state {name!r} needs a Resource"))
    elif LAMBDA_INVOKE.match(resource):
        fn = params.get("FunctionName")
        if fn is None and "FunctionName.$" not in params:
            problems.append(Problem(where, f"Task state {name!r} invokes Lambda but its Parameters have no FunctionName"))
        elif isinstance(fn, str) and not function_exists(function_name(fn)):
            problems.append(Problem(where + ("Parameters", "FunctionName"), f"state {name!r} invokes function "
                                    f"{fn!r}, which does not exist"))
    elif LAMBDA_ARN.match(resource):
        if not function_exists(function_name(resource)):
            problems.append(Problem(at, f"state {name!r} invokes function {function_name(resource)!r}, which does not exist"))
    elif INTEGRATIONS.match(resource):
        table = params.get("TableName")
        if resource.startswith("arn:aws:states:::dynamodb:") and isinstance(table, str) and not table_exists(table):
            problems.append(Problem(where + ("Parameters", "TableName"), f"state {name!r} uses table {table!r}, "
                                                                        "which does not exist"))
    else:
        problems.append(Problem(at, f"state {name!r} has Resource {resource!r}, which is not a Lambda function or a "
                                    "service integration this lab supports (lambda:invoke, sqs:sendMessage, "
                                    "dynamodb:updateItem, events:putEvents, ...)"))


def _reachable(start: str, states: dict) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name] if isinstance(states[name], dict) else {}
        todo += [state.get("Next"), state.get("Default")]
        for key in ("Choices", "Catch"):
            todo += [c.get("Next") for c in state.get(key, []) if isinstance(c, dict)] if isinstance(state.get(key), list) else []
    return seen
