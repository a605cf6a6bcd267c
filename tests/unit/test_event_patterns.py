"""EventBridge's pattern language as AWS documents it (eb-event-patterns*, eb-create-pattern-operators) and as its
open-source matcher (aws/event-ruler) validates it: the matcher TestEventPattern, PutRule and delivery share."""

from __future__ import annotations

import json

import pytest

from securecart_lab.emulator.event_patterns import InvalidPattern, compile_pattern, evaluate

EVENT = {
    "version": "0", "id": "6a7e8feb-b491-4cf7-a9f1-bf3703467718", "detail-type": "OrderPlaced",
    "source": "securecart.orders", "account": "123456789012", "time": "2026-11-30T10:00:00Z",
    "region": "us-east-1", "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-0123"],
    "detail": {
        "orderId": "ord-42", "total": 250.5, "quantity": 3, "country": "FR", "card": {"origin": "foreign"},
        "email": "Ada@Example.COM", "note": None, "tags": ["gift", "express"], "empty": [], "flag": True,
        "sourceIPAddress": "10.0.0.7", "ipv6": "2001:db8::ff00:42:8329", "path": "/Users/ada/dir/doc.txt",
        "account": 123456789012, "nested.key": "dotted",
        "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 5}],
    },
}


def matches(pattern: dict, event: dict = EVENT) -> bool:
    return compile_pattern(json.dumps(pattern)).matches(event)


@pytest.mark.parametrize("pattern, expected", [
    # exact values: strings, numbers (as numbers), booleans, null
    ({"source": ["securecart.orders"]}, True),
    ({"source": ["securecart.payments", "securecart.orders"]}, True),
    ({"source": ["Securecart.orders"]}, False),
    ({"detail": {"total": [250.5]}}, True),
    ({"detail": {"quantity": [3.0]}}, True),
    ({"detail": {"quantity": ["3"]}}, False),
    ({"detail": {"flag": [True]}}, True),
    ({"detail": {"flag": [1]}}, False),
    ({"detail": {"note": [None]}}, True),
    ({"detail": {"empty": [None]}}, False),
    ({"detail": {"account": [123456789012]}}, True),
    # arrays in the event: any element
    ({"detail": {"tags": ["express"]}}, True),
    ({"resources": [{"prefix": "arn:aws:ec2:"}]}, True),
    # nested objects and dot-joined keys are the same field
    ({"detail": {"card": {"origin": ["foreign"]}}}, True),
    ({"detail.card.origin": ["foreign"]}, True),
    ({"detail": {"nested": {"key": ["dotted"]}}}, True),
    ({"detail": {"card": ["foreign"]}}, False),
    # prefix / suffix / equals-ignore-case and their combinations
    ({"detail": {"orderId": [{"prefix": "ord-"}]}}, True),
    ({"detail": {"orderId": [{"prefix": "ORD-"}]}}, False),
    ({"detail": {"orderId": [{"prefix": {"equals-ignore-case": "ORD-"}}]}}, True),
    ({"detail": {"path": [{"suffix": ".txt"}]}}, True),
    ({"detail": {"path": [{"suffix": {"equals-ignore-case": ".TXT"}}]}}, True),
    ({"detail": {"email": [{"equals-ignore-case": "ada@example.com"}]}}, True),
    ({"detail": {"quantity": [{"prefix": "3"}]}}, False),
    # anything-but: values, lists, prefix/suffix/ignore-case/wildcard, and how it treats null and missing fields
    ({"detail": {"country": [{"anything-but": "US"}]}}, True),
    ({"detail": {"country": [{"anything-but": ["US", "FR"]}]}}, False),
    ({"detail": {"quantity": [{"anything-but": [1, 2]}]}}, True),
    ({"detail": {"quantity": [{"anything-but": 3}]}}, False),
    ({"detail": {"orderId": [{"anything-but": {"prefix": "ord-"}}]}}, False),
    ({"detail": {"orderId": [{"anything-but": {"prefix": ["tmp-", "test-"]}}]}}, True),
    ({"detail": {"path": [{"anything-but": {"suffix": [".png", ".txt"]}}]}}, False),
    ({"detail": {"country": [{"anything-but": {"equals-ignore-case": ["fr", "de"]}}]}}, False),
    ({"detail": {"path": [{"anything-but": {"wildcard": "/Users/*/dir/*"}}]}}, False),
    ({"detail": {"quantity": [{"anything-but": {"prefix": "3"}}]}}, True),
    ({"detail": {"note": [{"anything-but": "x"}]}}, True),
    ({"detail": {"missing": [{"anything-but": "x"}]}}, False),
    ({"detail": {"tags": [{"anything-but": "gift"}]}}, True),
    # numeric ranges, with the threshold itself on each side
    ({"detail": {"total": [{"numeric": [">", 100]}]}}, True),
    ({"detail": {"total": [{"numeric": [">", 250.5]}]}}, False),
    ({"detail": {"total": [{"numeric": [">=", 250.5]}]}}, True),
    ({"detail": {"total": [{"numeric": [">", 0, "<=", 250.5]}]}}, True),
    ({"detail": {"total": [{"numeric": [">", 0, "<", 250.5]}]}}, False),
    ({"detail": {"total": [{"numeric": ["=", 250.5]}]}}, True),
    ({"detail": {"total": [{"numeric": ["<", 10]}]}}, False),
    ({"detail": {"orderId": [{"numeric": [">", 0]}]}}, False),
    # exists, on leaves only; [] is no value; null is one
    ({"detail": {"orderId": [{"exists": True}]}}, True),
    ({"detail": {"missing": [{"exists": False}]}}, True),
    ({"detail": {"orderId": [{"exists": False}]}}, False),
    ({"detail": {"empty": [{"exists": True}]}}, False),
    ({"detail": {"empty": [{"exists": False}]}}, True),
    ({"detail": {"note": [{"exists": True}]}}, True),
    ({"detail": {"card": [{"exists": True}]}}, False),
    # cidr, and plain IP values compared as addresses
    ({"detail": {"sourceIPAddress": [{"cidr": "10.0.0.0/24"}]}}, True),
    ({"detail": {"sourceIPAddress": [{"cidr": "10.0.1.0/24"}]}}, False),
    ({"detail": {"ipv6": [{"cidr": "2001:db8::/32"}]}}, True),
    ({"detail": {"ipv6": ["2001:0db8:0000:0000:0000:ff00:0042:8329"]}}, True),
    # wildcard: * is any run of characters, \\* a star
    ({"detail": {"path": [{"wildcard": "/Users/*/dir/*.txt"}]}}, True),
    ({"detail": {"path": [{"wildcard": "/Users/*/other/*"}]}}, False),
    ({"detail": {"orderId": [{"wildcard": "ord-\\*"}]}}, False),
    # $or, at the top and nested, and with other fields
    ({"source": ["securecart.orders"], "$or": [{"detail": {"total": [{"numeric": [">", 1000]}]}},
                                               {"detail": {"country": [{"anything-but": ["FR"]}]}}]}, False),
    ({"detail": {"$or": [{"total": [{"numeric": [">", 1000]}]}, {"card": {"origin": ["foreign"]}}]}}, True),
    ({"$or": [{"source": ["x"]}, {"$or": [{"source": ["y"]}, {"detail-type": ["OrderPlaced"]}]}]}, True),
    # arrays of objects: fields match within one element
    ({"detail": {"items": {"sku": ["B"], "qty": [5]}}}, True),
    ({"detail": {"items": {"sku": ["A"], "qty": [5]}}}, False),
    # every field must match
    ({"source": ["securecart.orders"], "detail-type": ["OrderShipped"]}, False),
])
def test_matching(pattern, expected):
    assert matches(pattern) is expected


@pytest.mark.parametrize("pattern, reason", [
    ('{"source": "securecart.orders"}', '"source" must be an object or an array'),
    ('{"int": 42}', '"int" must be an object or an array'),
    ('{"resources": []}', "Empty arrays are not allowed"),
    ('{"detail": {}}', "Empty objects are not allowed"),
    ('["not", "an", "object"]', "Filter is not an object"),
    ('{"my_key": [{"EXISTS": true}]}', "Unrecognized match type EXISTS"),
    ('{"detail": {"equal": [{"NUMERIC": ["=", 5]}]}}', "Unrecognized match type NUMERIC"),
    ('{"a": [{"exists": "yes"}]}', "exists match pattern must be either true or false."),
    ('{"a": [{"prefix": 123}]}', "prefix match pattern must be a string"),
    ('{"time": [{"prefix": ["2022-07-13"]}]}', "prefix match pattern must be a string"),
    ('{"a": [{"suffix": [".png"]}]}', "suffix match pattern must be a string"),
    ('{"a": [{"prefix": {"wildcard": "x"}}]}', "Unsupported prefix pattern: wildcard"),
    ('{"a": [{"equals-ignore-case": ["ec2"]}]}', "equals-ignore-case match pattern must be a string"),
    ('{"a": [{"prefix": "x", "suffix": "y"}]}', "Only one key allowed in match expression"),
    ('{"a": [{"numeric": [">", 0, ">", 0]}]}', "Bad numeric range operator: >"),
    ('{"a": [{"numeric": [">", 0, "<"]}]}', "Value of < must be numeric"),
    ('{"a": [{"numeric": ["=", "5"]}]}', "Value of equals must be numeric"),
    ('{"a": [{"numeric": ["<", 5, ">", 1]}]}', "Too many elements in numeric expression"),
    ('{"a": [{"numeric": [">", 10, "<", 5]}]}', "Bottom must be less than top"),
    ('{"a": [{"numeric": ["!=", 5]}]}', "Unrecognized numeric range operator: !="),
    ('{"a": [{"numeric": []}]}', "Invalid member in numeric match: ]"),
    ('{"a": [{"numeric": [5]}]}', "Invalid member in numeric match: 5"),
    ('{"a": [{"numeric": ">"}]}', "Value of numeric must be an array."),
    ('{"a": [{"numeric": [">", 0, "<", 5, 6]}]}', "Too many terms in numeric range expression"),
    ('{"a": [{"anything-but": null}]}', "Value of anything-but must be an array or single string/number value."),
    ('{"a": [{"anything-but": ["x", 1]}]}',
     "Inside anything but list, either all values are number or string, mixed type is not supported"),
    ('{"a": [{"anything-but": [null]}]}', "Inside anything but list, start|null|boolean is not supported."),
    ('{"a": [{"anything-but": {"equals-ignore-case": 123}}]}',
     "Inside anything-but/equals-ignore-case list, number|start|null|boolean is not supported."),
    ('{"a": [{"anything-but": {"prefix": [123, "x"]}}]}', "prefix/suffix match pattern must be a string"),
    ('{"a": [{"anything-but": {"suffix": 123}}]}', "prefix/suffix match pattern must be a string"),
    ('{"a": [{"anything-but": {"prefix": ""}}]}', "Null prefix/suffix not allowed"),
    ('{"a": [{"anything-but": {"prefix": {"equals-ignore-case": "file"}}}]}',
     "Value of anything-but must be an array or single string/number value."),
    ('{"a": [{"anything-but": {"numeric": [">", 1]}}]}', "Unsupported anything-but pattern: numeric"),
    ('{"a": [{"anything-but": {"wildcard": [123]}}]}', "wildcard match pattern must be a string"),
    ('{"a": [{"wildcard": 123}]}', "wildcard match pattern must be a string"),
    ('{"EventBusArn": [{"wildcard": "arn:aws:events:us-east-1:**:event-bus/*"}]}',
     "Consecutive wildcard characters at pos 26"),
    ('{"a": [{"wildcard": "x\\\\y"}]}', "Invalid escape character at pos 2"),
    ('{"EventBusArn": [{"wildcard": "*:*:*:*:*:event-bus/*"}]}',
     "Rule is too complex - try using fewer wildcard characters or fewer repeating character sequences after a "
     "wildcard character"),
    ('{"a": [{"cidr": ["bad-type"]}]}', "prefix match pattern must be a string"),
    ('{"a": [{"cidr": "10.0.0.1"}]}', "Malformed CIDR, one '/' required"),
    ('{"a": [{"cidr": "10.0.0.0/x"}]}', "Malformed CIDR, mask bits must be an integer"),
    ('{"a": [{"cidr": "xx.11.xx/24"}]}', "Nonstandard IP address: xx.11.xx"),
    ('{"a": [["nested"]]}', "Match value must be String, number, true, false, or null"),
    ('{"a": [{}]}', "Match expression name not found"),
    ('{"$or": {"a": ["b"]}}', "It must be an Array followed with $or."),
    ('{"$or": [{"a": ["b"]}]}', "There must have at least 2 Objects in $or relationship."),
    ('{"$or": [{"a": ["b"]}, "c"]}', "Only JSON object is allowed in array of $or relationship."),
    ('{"$or": [{"a": ["b"]}, {"prefix": ["c"]}]}', "prefix is Ruler reserved fieldName which cannot be used inside $or."),
    # JSON syntax errors, in the words of AWS's JSON parser
    ("this is not json", "Unrecognized token 'this': was expecting (JSON String, Number, Array, Object or token "
                         "'null', 'true' or 'false')"),
    ("{'bad': 'quotation'}", "Unexpected character (''' (code 39)): was expecting double-quote to start field name"),
    ('{"source": ["a"],}', "Unexpected character ('}' (code 125)): was expecting double-quote to start field name"),
    ('{"source": ["a",]}', "Unexpected character (']' (code 93)): expected a value"),
    ('{"source" ["a"]}', "Unexpected character ('[' (code 91)): was expecting a colon to separate field name and value"),
    ('{"source": ["a" "b"]}', "Unexpected character ('\"' (code 34)): was expecting comma to separate Array entries"),
    ('{"source": ["a"]', "Unexpected end-of-input: expected close marker for Object"),
])
def test_malformed_patterns_give_aws_reasons(pattern, reason):
    with pytest.raises(InvalidPattern) as raised:
        compile_pattern(pattern)
    assert raised.value.reason == reason


def test_test_event_requires_the_envelope_fields_aws_requires():
    pattern = '{"source": ["securecart.orders"]}'
    assert evaluate(pattern, json.dumps(EVENT)) is True
    for missing in ("id", "account", "source", "time", "region", "detail-type"):
        event = {k: v for k, v in EVENT.items() if k != missing}
        with pytest.raises(ValueError, match="Parameter Event is not valid."):
            evaluate(pattern, json.dumps(event))
    with pytest.raises(ValueError, match="Parameter Event is not valid."):
        evaluate(pattern, "not json")
    without_resources = {k: v for k, v in EVENT.items() if k != "resources"}
    assert evaluate(pattern, json.dumps(without_resources)) is True
