"""Templates as CloudFormation reads them: every short form parsed (cfn-lint's decoder, with line numbers), then
checked with cfn-lint before anything changes. Errors are worded as AWS words them; warnings stay warnings."""

from __future__ import annotations

import functools
import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

REGION = "us-east-1"
_NOT_OF_TYPE = re.compile(r"is not of type (.+)$")
_JSON_TYPES = {list: "JSONArray", dict: "JSONObject", str: "String", bool: "Boolean", int: "Number", float: "Number"}


@dataclass(frozen=True)
class Problem:
    """One finding: `severity` error or warning, `rule` cfn-lint's id, `message` in AWS's words."""

    severity: str
    rule: str
    message: str
    line: int | None = None
    column: int | None = None
    path: tuple = field(default=())
    template_format: bool = False  # what ValidateTemplate rejects (the rest fails CreateStack/UpdateStack)

    def text(self) -> str:
        return f"{self.message} (line {self.line}, column {self.column})" if self.line else self.message

    def path_text(self) -> str:
        return "/" + "/".join(str(p) for p in self.path)


class TemplateError(Exception):
    """The template cannot be applied: every error found, each with its line."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(p.text() for p in problems))


def _plain(value: Any) -> Any:
    """cfn-lint's decoded nodes (str/dict/list subclasses with marks) as plain JSON values."""
    return json.loads(json.dumps(value))


def decode(body: str):
    """cfn-lint's decoded template (nodes carry line marks); TemplateError when it is not well-formed."""
    from cfnlint.decode import decode_str

    if not isinstance(body, str) or not body.strip():
        raise TemplateError([Problem("error", "E0000", "Template format error: The template is empty", template_format=True)])
    decoded, matches = decode_str(body)
    if matches:
        kind = "JSON" if body.lstrip().startswith("{") else "YAML"
        raise TemplateError([
            Problem("error", m.rule.id, f"Template format error: {kind} not well-formed. {m.message}".rstrip(),
                    m.linenumber, m.columnnumber, template_format=True)
            for m in matches
        ])
    if not isinstance(decoded, dict):
        raise TemplateError([Problem("error", "E1001", "Template format error: a template is a JSON or YAML object",
                                     1, 1, template_format=True)])
    return decoded


def parse(body: str) -> dict:
    """The template in long form (Ref, Fn::GetAtt [A, B.C], Fn::Sub ...), as a plain dict."""
    return _checked(_plain(decode(body)))


def _checked(document: dict) -> dict:
    if not isinstance(document.get("Resources"), dict) or not document["Resources"]:
        raise TemplateError([Problem("error", "E1001",
                                     "Template format error: At least one Resources member must be defined.",
                                     template_format=True)])
    for name, resource in document["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise TemplateError([Problem("error", "E3001", f"Template format error: [/Resources/{name}] "
                                         "Every Resources object must contain a Type member.", template_format=True)])
    return document


def _at(document: Any, path) -> Any:
    for part in path:
        try:
            document = document[part]
        except (KeyError, IndexError, TypeError):
            return None
    return document


def _aws_message(match, document: dict) -> tuple[str, bool]:
    """(AWS's wording for a cfn-lint error, whether ValidateTemplate rejects it)."""
    rule, path, message = match.rule.id, list(match.path.path if hasattr(match.path, "path") else match.path), match.message
    block = path[0] if path else "Resources"
    resource = path[1] if len(path) > 1 and block == "Resources" else None
    unresolved = re.match(r"'([^']+)' is not one of", message)
    if rule in ("E1019", "E6101") and unresolved and re.search(r"\] in \[", message):  # ${Resource.Attribute}
        attribute = unresolved.group(1)
        text = _at(document, path)
        text = text[0] if isinstance(text, list) and text else text
        owner = re.search(rf"\$\{{(\w+)\.{re.escape(attribute)}\}}", text if isinstance(text, str) else "")
        return (f"Template error: resource {owner.group(1) if owner else '?'} does not support attribute type "
                f"{attribute} in Fn::GetAtt"), True
    if (rule.startswith("E10") or rule == "E6101") and unresolved and (
            "Ref" in path or "Fn::Sub" in path or (path[-2:-1] == ["Fn::GetAtt"] and path[-1] == 0)):
        return (f"Template format error: Unresolved resource dependencies [{unresolved.group(1)}] in the {block} block "
                "of the template"), True
    if rule == "E1010":
        target = _at(document, path[:-1]) or []
        name = target[0] if isinstance(target, list) and target else "?"
        attribute = _at(document, path)
        return f"Template error: resource {name} does not support attribute type {attribute} in Fn::GetAtt", True
    if rule == "E3006":
        return f"Template format error: Unrecognized resource types: [{_at(document, path)}]", True
    if rule == "E3004":
        names = re.findall(r"resource (\w+)\.", message) + re.findall(r"\[([^\]]+)\]", message) or [message]
        return f"Template error: Circular dependency between resources: [{', '.join(dict.fromkeys(names))}]", True
    if resource and len(path) > 2 and path[2] == "Properties":
        where = "#" + "".join(f"/{p}" for p in path[3:])
        if rule == "E3002":
            extra = re.findall(r"'([^']+)' was unexpected", message)
            return (f"Properties validation failed for resource {resource} with message: "
                    f"{where.rsplit('/', 1)[0] if extra else where}: extraneous key [{extra[0] if extra else path[-1]}] is not permitted"), False
        if rule == "E3003":
            required = re.findall(r"'([^']+)' is a required property", message)
            return (f"Properties validation failed for resource {resource} with message: "
                    f"{where}: required key [{required[0] if required else message}] not found"), False
        if rule == "E3012":
            expected = _NOT_OF_TYPE.search(message)
            found = _JSON_TYPES.get(type(_at(document, path)), "JSONObject")
            wanted = expected.group(1).strip("'").replace("'", "") if expected else "?"
            return (f"Properties validation failed for resource {resource} with message: "
                    f"{where}: expected type: {wanted.capitalize()}, found: {found}"), False
        return f"Properties validation failed for resource {resource} with message: {where}: {message}", False
    if rule.startswith(("E0", "E1")) or rule in ("E3001", "E3005", "E6101"):
        return f"Template format error: {message}", True
    return f"Template error: {message}", False


def lint(body: str) -> tuple[dict, list[Problem]]:
    """(the template in long form, every cfn-lint finding in AWS's words, errors first). Raises TemplateError
    only when the template cannot be read at all."""
    document, problems = _lint(body)
    return json.loads(document), list(problems)


_linter_lock = threading.Lock()


@functools.cache
def _linter():
    """cfn-lint's configuration and rules, built once per process: loading the ~300 rules and their data files
    takes longer than linting a lab's template with them."""
    from cfnlint.config import ConfigMixIn, ManualArgs
    from cfnlint.runner import Runner

    config = ConfigMixIn(**ManualArgs(regions=[REGION], ignore_checks=["I"]))
    return config, Runner(config).rules


@functools.lru_cache(maxsize=8)  # a preview then a deploy, or validate-template then a change set: one lint
def _lint(body: str) -> tuple[str, tuple[Problem, ...]]:
    from cfnlint.runner import run_template_by_data

    decoded = decode(body)
    document = _checked(_plain(decoded))  # before cfn-lint, whose rules may normalise values in place
    # The rules keep per-template state while they run: one template at a time.
    with _linter_lock:
        config, rules = _linter()
        matches = list(run_template_by_data(decoded, config, rules))
    problems = []
    for match in matches:
        severity = "error" if match.rule.id.startswith("E") else "warning"
        path = tuple(match.path.path if hasattr(match.path, "path") else match.path)
        if severity == "error":
            message, template_format = _aws_message(match, document)
        else:
            message, template_format = match.message, False
        problems.append(Problem(severity, match.rule.id, message, match.linenumber, match.columnnumber, path,
                                template_format))
    problems.sort(key=lambda p: (p.severity != "error", p.line or 0))
    return json.dumps(document), tuple(problems)


def check(body: str) -> tuple[dict, list[Problem]]:
    """(long-form template, warnings); TemplateError listing every error when there is any."""
    document, problems = lint(body)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise TemplateError(errors)
    return document, [p for p in problems if p.severity == "warning"]


_SUB_NAMES = re.compile(r"\$\{([A-Za-z0-9:]+)(?:\.([A-Za-z0-9.]+))?\}")


def references(value: Any) -> set[tuple[str, str | None]]:
    """(logical id, attribute or None) pairs a value refers to through Ref, Fn::GetAtt and Fn::Sub."""
    found: set[tuple[str, str | None]] = set()
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add((inner, None))
            elif key == "Fn::GetAtt" and isinstance(inner, list) and inner:
                found.add((str(inner[0]), str(inner[1]) if len(inner) > 1 else None))
            elif key == "Fn::Sub":
                text = inner[0] if isinstance(inner, list) else inner
                variables = inner[1] if isinstance(inner, list) and len(inner) > 1 and isinstance(inner[1], dict) else {}
                if isinstance(text, str):
                    found |= {(n, a) for n, a in _SUB_NAMES.findall(text.replace("${!", "")) if n not in variables}
                found |= references(variables)
            else:
                found |= references(inner)
    elif isinstance(value, list):
        for inner in value:
            found |= references(inner)
    return {(n, a or None) for n, a in found}


def dependencies(resource: dict, names) -> set[str]:
    """Logical ids (among `names`) a resource depends on: references and DependsOn."""
    depends = resource.get("DependsOn") or []
    depends = [depends] if isinstance(depends, str) else list(depends)
    found = {name for name, _ in references({k: v for k, v in resource.items() if k != "DependsOn"})}
    return (found | set(depends)) & set(names)


def order(resources: dict) -> list[str]:
    """Logical ids, each after everything it depends on (the template is known to have no cycle)."""
    done: list[str] = []
    seen: set[str] = set()

    def visit(name: str, stack: tuple = ()) -> None:
        if name in seen or name in stack:
            return
        for dep in sorted(dependencies(resources[name], resources)):
            visit(dep, stack + (name,))
        seen.add(name)
        done.append(name)

    for name in resources:
        visit(name)
    return done


def line_of(body: str, logical_id: str) -> int | None:
    """The line where a resource is declared (for messages about it)."""
    try:
        decoded = decode(body)
        node = decoded.get("Resources", {})
        for key in node:
            if key == logical_id:
                return key.start_mark.line + 1
    except (TemplateError, AttributeError):
        pass
    return None
