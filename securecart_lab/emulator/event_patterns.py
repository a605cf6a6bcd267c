"""EventBridge event patterns: AWS's validation and matching, used by TestEventPattern, PutRule and delivery alike.

No maintained Python library does this: PyPI's `event-ruler` (0.3.0, 2023) wraps a Go matcher, ships a CPython 3.11
wheel only and lacks numeric ranges; moto's matcher misses array consistency, `anything-but` lists of prefixes,
`$or` validation and AWS's error messages. So the kit follows AWS's open-source matcher (aws/event-ruler) here:
its rule compiler's checks, in its order and with its messages ("Event pattern is not valid. Reason: ..."), and its
matching semantics:

- a pattern is a JSON object whose leaves are arrays of match values; keys join with "." (`{"a": {"b": ..}}` and
  `{"a.b": ..}` are the same field, in patterns and in events);
- a field matches when any of its event values (every element of an array) matches any of the leaf's values;
- fields matched inside one array of objects must come from the same element (array consistency);
- `null` and `[]`: a null value exists and can be matched; an empty array or object is no value at all;
- strings match strings and numbers numbers (`[5]` matches 5.0, never "5"); `exists` works on leaves only.

The Jackson source location AWS appends to some messages ("at [Source: ...; line: 1, column: N]") is left out.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass, field
from typing import Any

_RESERVED_IN_OR = frozenset({
    "exactly", "prefix", "suffix", "anything-but", "numeric", "cidr", "exists", "equals-ignore-case", "wildcard"})
_MAX_WILDCARDS = 5
_TOO_COMPLEX = ("Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences "
                "after a wildcard character")


class InvalidPattern(ValueError):
    """A malformed pattern; `reason` is AWS's text after "Event pattern is not valid. Reason: "."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _fail(reason: str) -> None:
    raise InvalidPattern(reason)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _token(value: Any) -> str:
    """The JSON token text Jackson would name for a value (its first token for containers)."""
    if isinstance(value, list):
        return "["
    if isinstance(value, dict):
        return "{"
    if isinstance(value, str):
        return value
    return json.dumps(value)


# --- matchers: one per match value, each a predicate on one event leaf ----------------------------------------------

@dataclass(frozen=True)
class Matcher:
    kind: str
    arg: Any = None

    def __call__(self, value: Any) -> bool:  # noqa: C901 - one branch per match type
        kind, arg = self.kind, self.arg
        if kind == "exists":
            return arg  # reaching a value means the field exists
        if kind == "literal":
            return value is arg
        if kind == "number":
            if not _is_number(value):
                return False
            if isinstance(value, int) and isinstance(arg, int):
                return value == arg
            return float(value) == float(arg)
        if kind == "numeric":
            if not _is_number(value):
                return False
            low, low_open, high, high_open = arg
            number = float(value)
            if low is not None and (number < low or (low_open and number == low)):
                return False
            return not (high is not None and (number > high or (high_open and number == high)))
        if kind.startswith("anything-but"):
            return not _string_test(kind[len("anything-but-"):], arg, value) if kind != "anything-but" \
                else not _in_values(arg, value)
        if not isinstance(value, str):
            return False
        return _string_test(kind, arg, value)


def _in_values(values: tuple, value: Any) -> bool:
    if isinstance(value, str):
        return value in values
    if _is_number(value):
        return any(_is_number(v) and float(v) == float(value) for v in values)
    return False


def _string_test(kind: str, arg: Any, value: Any) -> bool:
    """A string-only test; `arg` is one operand or (for anything-but variants) a tuple of them."""
    if not isinstance(value, str):
        return False
    operands = arg if isinstance(arg, tuple) else (arg,)
    if kind == "exact":
        return value == arg
    if kind == "ip":
        try:
            return value == str(arg) or ipaddress.ip_address(value) == arg
        except ValueError:
            return False
    if kind == "prefix":
        return any(value.startswith(p) for p in operands)
    if kind == "suffix":
        return any(value.endswith(s) for s in operands)
    if kind == "prefix-ignore-case":
        return any(value.lower().startswith(p.lower()) for p in operands)
    if kind == "suffix-ignore-case":
        return any(value.lower().endswith(s.lower()) for s in operands)
    if kind == "equals-ignore-case":
        return any(value.lower() == v.lower() for v in operands)
    if kind == "wildcard":
        return any(regex.fullmatch(value) is not None for regex in operands)
    if kind == "cidr":
        try:
            return ipaddress.ip_address(value) in arg
        except ValueError:
            return False
    raise AssertionError(kind)


# --- compiling (validation in event-ruler's order and words) --------------------------------------------------------

def _position(text: str, index: int) -> int:
    """The byte position the rule compiler reports: it counts UTF-8 bytes of the quoted value."""
    return len(text[:index].encode()) + 1


def _wildcard(text: str) -> re.Pattern:
    parts: list[str] = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "*":
            if text[i + 1:i + 2] == "*":
                _fail(f"Consecutive wildcard characters at pos {_position(text, i)}")
            parts.append(".*")
        elif char == "\\":
            following = text[i + 1:i + 2]
            if following not in ("*", "\\"):
                _fail(f"Invalid escape character at pos {_position(text, i)}")
            parts.append(re.escape(following))
            i += 1
        else:
            parts.append(re.escape(char))
        i += 1
    return re.compile("".join(parts), re.DOTALL)


def _wildcard_count(text: str) -> int:
    return len(re.findall(r"(?<!\\)\*", text.replace("\\\\", "")))


def _cidr(text: str) -> Any:
    address, slash, bits = text.partition("/")
    if not slash or "/" in bits:
        _fail("Malformed CIDR, one '/' required")
    if not bits.isdigit():
        _fail("Malformed CIDR, mask bits must be an integer")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        _fail(f"Nonstandard IP address: {address}")
    if int(bits) > ip.max_prefixlen:
        _fail(f"Malformed CIDR, mask bits must be between 0 and {ip.max_prefixlen}")
    return ipaddress.ip_network(text, strict=False)


def _numeric(terms: Any) -> Matcher:
    if not isinstance(terms, list):
        _fail("Value of numeric must be an array.")
    items = list(terms)
    end = object()

    def take() -> Any:
        return items.pop(0) if items else end

    first = take()
    if not isinstance(first, str):
        _fail(f"Invalid member in numeric match: {']' if first is end else _token(first)}")
    value = take()

    def number(operator: str, candidate: Any) -> float:
        if candidate is end or not _is_number(candidate):
            _fail(f"Value of {'equals' if operator == '=' else operator} must be numeric")
        return float(candidate)

    if first == "=":
        bound = number("=", value)
        if take() is not end:
            _fail("Too many elements in numeric expression")
        return Matcher("numeric", (bound, False, bound, False))
    if first in (">", ">="):
        low = number(first, value)
        second = take()
        if second is end:
            return Matcher("numeric", (low, first == ">", None, False))
        if not isinstance(second, str):
            _fail(f"Bad value in numeric range: {_token(second)}")
        if second not in ("<", "<="):
            _fail(f"Bad numeric range operator: {second}")
        high = number(second, take())
        if take() is not end:
            _fail("Too many terms in numeric range expression")
        if low >= high:
            _fail("Bottom must be less than top")
        return Matcher("numeric", (low, first == ">", high, second == "<"))
    if first in ("<", "<="):
        high = number(first, value)
        if take() is not end:
            _fail("Too many elements in numeric expression")
        return Matcher("numeric", (None, False, high, first == "<"))
    _fail(f"Unrecognized numeric range operator: {first}")
    raise AssertionError


def _ignore_case_operand(expression: dict, name: str) -> str:
    """`{"prefix": {"equals-ignore-case": "x"}}` and the suffix twin."""
    if not expression:
        _fail(f"{name.capitalize()} expression name not found")
    operator, operand = next(iter(expression.items()))
    if operator != "equals-ignore-case":
        _fail(f"Unsupported {name} pattern: {operator}")
    if not isinstance(operand, str):
        _fail("equals-ignore-case match pattern must be a string")
    if len(expression) > 1:
        _fail("Only one key allowed in match expression")
    return operand


def _anything_but(value: Any, extra_keys: bool) -> Matcher:
    variant = None
    inner_extra = False
    if isinstance(value, dict):
        if not value:
            _fail("Anything-But expression name not found")
        variant, value_inner = next(iter(value.items()))
        if variant not in ("equals-ignore-case", "prefix", "suffix", "wildcard"):
            _fail(f"Unsupported anything-but pattern: {variant}")
        inner_extra = len(value) > 1
        value = value_inner
    if not (isinstance(value, (list, str)) or _is_number(value)):
        _fail("Value of anything-but must be an array or single string/number value.")
    values = value if isinstance(value, list) else [value]
    if variant is None:
        for item in values:
            if not (isinstance(item, str) or _is_number(item)):
                _fail("Inside anything but list, start|null|boolean is not supported.")
        kinds = {isinstance(item, str) for item in values}
        if isinstance(value, list) and len(kinds) != 1:
            _fail("Inside anything but list, either all values are number or string, mixed type is not supported")
        matcher = Matcher("anything-but", tuple(values))
    else:
        for item in values:
            if not isinstance(item, str):
                if variant == "equals-ignore-case":
                    _fail("Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported.")
                _fail("wildcard match pattern must be a string" if variant == "wildcard"
                      else "prefix/suffix match pattern must be a string")
            if variant in ("prefix", "suffix") and not item:
                _fail("Null prefix/suffix not allowed")
        operands = tuple(_wildcard(item) for item in values) if variant == "wildcard" else tuple(values)
        matcher = Matcher(f"anything-but-{variant}", operands)
    if inner_extra or extra_keys:
        _fail("Too many elements in numeric expression")
    return matcher


def _expression(expression: dict, wildcards: list[str]) -> Matcher:  # noqa: C901 - one branch per match type
    if not expression:
        _fail("Match expression name not found")
    name, value = next(iter(expression.items()))
    extra = len(expression) > 1

    def single(matcher: Matcher) -> Matcher:
        if extra:
            _fail("Only one key allowed in match expression")
        return matcher

    if name == "exactly":
        if not isinstance(value, str):
            _fail("exact match pattern must be a string")
        return single(Matcher("exact", value))
    if name in ("prefix", "suffix"):
        if isinstance(value, dict):
            return single(Matcher(f"{name}-ignore-case", _ignore_case_operand(value, name)))
        if not isinstance(value, str):
            _fail(f"{name} match pattern must be a string")
        return single(Matcher(name, value))
    if name == "numeric":
        matcher = _numeric(value)
        if extra:
            _fail("Too many elements in numeric expression")
        return matcher
    if name == "anything-but":
        return _anything_but(value, extra)
    if name == "exists":
        if not isinstance(value, bool):
            _fail("exists match pattern must be either true or false.")
        return single(Matcher("exists", value))
    if name == "cidr":
        if not isinstance(value, str):
            _fail("prefix match pattern must be a string")
        return single(Matcher("cidr", _cidr(value)))
    if name == "equals-ignore-case":
        if not isinstance(value, str):
            _fail("equals-ignore-case match pattern must be a string")
        return single(Matcher("equals-ignore-case", value))
    if name == "wildcard":
        if not isinstance(value, str):
            _fail("wildcard match pattern must be a string")
        wildcards.append(value)
        return single(Matcher("wildcard", _wildcard(value)))
    _fail(f"Unrecognized match type {name}")
    raise AssertionError


def _values(values: list, wildcards: list[str]) -> tuple[Matcher, ...]:
    matchers: list[Matcher] = []
    for value in values:
        if isinstance(value, dict):
            matchers.append(_expression(value, wildcards))
        elif isinstance(value, str):
            try:
                matchers.append(Matcher("ip", ipaddress.ip_address(value)))
            except ValueError:
                matchers.append(Matcher("exact", value))
        elif _is_number(value):
            matchers.append(Matcher("number", value))
        elif value is None or isinstance(value, bool):
            matchers.append(Matcher("literal", value))
        else:
            _fail("Match value must be String, number, true, false, or null")
    if not matchers:
        _fail("Empty arrays are not allowed")
    return tuple(matchers)


Branch = dict  # field path -> tuple of matchers


def _object(node: dict, path: tuple[str, ...], branches: list[Branch], in_or: bool, wildcards: list[str]) -> list[Branch]:
    for key, value in node.items():
        if key == "$or":
            branches = _or(value, path, branches, wildcards)
            continue
        if in_or and key in _RESERVED_IN_OR:
            _fail(f"{key} is Ruler reserved fieldName which cannot be used inside $or.")
        if isinstance(value, dict):
            branches = _object(value, (*path, key), branches, in_or, wildcards)
        elif isinstance(value, list):
            matchers = _values(value, wildcards)
            name = ".".join((*path, key))
            branches = [{**branch, name: matchers} for branch in (branches or [{}])]
        else:
            _fail(f'"{key}" must be an object or an array')
    if not node:
        _fail("Empty objects are not allowed")
    return branches


def _or(value: Any, path: tuple[str, ...], branches: list[Branch], wildcards: list[str]) -> list[Branch]:
    if not isinstance(value, list):
        _fail("It must be an Array followed with $or.")
    result: list[Branch] = []
    for alternative in value:
        if not isinstance(alternative, dict):
            _fail("Only JSON object is allowed in array of $or relationship.")
        result += _object(alternative, path, [dict(b) for b in branches] or [{}], True, wildcards)
    if len(value) < 2:
        _fail("There must have at least 2 Objects in $or relationship.")
    return result


# --- JSON syntax errors in Jackson's words ---------------------------------------------------------------------------

def _char(text: str, position: int) -> str:
    if position >= len(text):
        return ""
    return f"Unexpected character ('{text[position]}' (code {ord(text[position])}))"


def _syntax_reason(text: str, error: json.JSONDecodeError) -> str:
    position, message = error.pos, error.msg
    if position >= len(text.rstrip()) and not message.startswith("Unterminated string"):
        inside = {"[": "Array", "{": "Object"}.get(_innermost(text, position))
        return f"Unexpected end-of-input: expected close marker for {inside}" if inside else "Unexpected end-of-input"
    if message.startswith("Expecting value"):
        word = re.match(r"[A-Za-z0-9_$+\-.]+", text[position:])
        if word:
            return (f"Unrecognized token '{word.group(0)}': was expecting (JSON String, Number, Array, Object or "
                    "token 'null', 'true' or 'false')")
        return f"{_char(text, position)}: expected a value"
    if message.startswith("Expecting property name"):
        return f"{_char(text, position)}: was expecting double-quote to start field name"
    if message.startswith("Expecting ':'"):
        return f"{_char(text, position)}: was expecting a colon to separate field name and value"
    if message.startswith("Expecting ','"):
        inside = "Array" if _innermost(text, position) == "[" else "Object"
        return f"{_char(text, position)}: was expecting comma to separate {inside} entries"
    if message.startswith("Unterminated string"):
        return "Unexpected end-of-input: was expecting closing quote for a string value"
    return message


def _innermost(text: str, position: int) -> str:
    depth: list[str] = []
    in_string = escaped = False
    for char in text[:position]:
        if in_string:
            escaped, in_string = (False, in_string) if escaped else (char == "\\", char != '"')
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth.append(char)
        elif char in "]}" and depth:
            depth.pop()
    return depth[-1] if depth else ""


def parse_json(text: str) -> Any:
    """The first JSON value of `text` (the rule compiler reads one value), or InvalidPattern in Jackson's words."""
    stripped = text.lstrip()
    try:
        value, _ = json.JSONDecoder().raw_decode(stripped)
    except json.JSONDecodeError as exc:
        raise InvalidPattern(_syntax_reason(stripped, exc)) from None
    return value


# --- the compiled pattern --------------------------------------------------------------------------------------------

@dataclass
class Pattern:
    source: dict
    branches: list[Branch]
    _prefixes: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        prefixes: set[str] = set()
        for branch in self.branches:
            for name in branch:
                parts = name.split(".")
                prefixes.update(".".join(parts[:i]) for i in range(1, len(parts) + 1))
        self._prefixes = frozenset(prefixes)

    def matches(self, event: dict) -> bool:
        leaves: dict[str, list[tuple[Any, tuple]]] = {}
        self._flatten(event, "", (), leaves)
        return any(_branch_matches(list(branch.items()), leaves, {}) for branch in self.branches)

    def _flatten(self, node: Any, path: str, context: tuple, leaves: dict) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                child = f"{path}.{key}" if path else str(key)
                if child in self._prefixes:
                    self._flatten(value, child, context, leaves)
        elif isinstance(node, list):
            for index, item in enumerate(node):
                self._flatten(item, path, (*context, (id(node), index)), leaves)
        else:
            leaves.setdefault(path, []).append((node, context))


def _branch_matches(fields: list, leaves: dict, chosen: dict) -> bool:
    if not fields:
        return True
    (name, matchers), rest = fields[0], fields[1:]
    values = leaves.get(name, ())
    if not values and any(m.kind == "exists" and m.arg is False for m in matchers):
        return _branch_matches(rest, leaves, chosen)
    for value, context in values:
        if any(chosen.get(array, index) != index for array, index in context):
            continue  # another field already matched in a different element of this array
        if any(matcher(value) for matcher in matchers):
            if _branch_matches(rest, leaves, {**chosen, **dict(context)}):
                return True
    return False


def compile_pattern(text: str | dict) -> Pattern:
    """Validate a pattern as AWS does; raises InvalidPattern with AWS's reason."""
    source = parse_json(text) if isinstance(text, str) else text
    if not isinstance(source, dict):
        _fail("Filter is not an object")
    wildcards: list[str] = []
    branches = _object(source, (), [], False, wildcards)
    if any(_wildcard_count(w) > _MAX_WILDCARDS for w in wildcards):
        _fail(_TOO_COMPLEX)
    return Pattern(source, branches)


def evaluate(pattern: str, event: str) -> bool:
    """TestEventPattern's answer; raises InvalidPattern for the pattern, ValueError for an invalid event."""
    compiled = compile_pattern(pattern)
    try:
        document = json.loads(event)
    except ValueError:
        raise ValueError("Parameter Event is not valid.") from None
    required = ("id", "account", "source", "time", "region", "detail-type")
    if not isinstance(document, dict) or any(name not in document for name in required):
        raise ValueError("Parameter Event is not valid.")
    return compiled.matches(document)

