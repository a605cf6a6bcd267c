"""DynamoDB Query that stays fast as a table fills; UpdateItem with an undefined #name, and GetItem/DeleteItem with
a key of the wrong type or missing a key attribute, answer AWS's ValidationException.

moto 5.2's Table.query (on the table, not an index) sorts every item of the table by key, comparing DynamoType
values that rebuild a Decimal at each comparison, then keeps the partition's items: 0.3 s per Query at 5,000 items.
The kit hands moto's own query the one partition it reads (a dict lookup), so key conditions, filters, Limit,
ExclusiveStartKey, ScanIndexForward and projections stay moto's; a sort key condition of equality (`sk = :v`, the
Query of one item) gets that item alone, as a table's key lookup does, instead of every item of the partition.
An index query reads every item, as moto's does, but unsorted: moto sorts what it keeps by the index's keys and then
the table's, a total order.
"""

from __future__ import annotations

from typing import Any

from securecart_lab.emulator import hooks


class _Partition:
    """The table as moto's query sees it, except that all_items() is one partition's items."""

    __slots__ = ("_table", "_items")

    def __init__(self, table, items: list) -> None:
        self._table = table
        self._items = items

    def all_items(self) -> list:
        return self._items

    def __getattr__(self, name: str) -> Any:
        return getattr(self._table, name)


_EQUAL = ("=", "EQ")


def _partition_items(table, hash_key, range_comparison=None, range_objs=()) -> list:
    partition = table.items.get(hash_key)  # items is a defaultdict: get() does not add the key
    if partition is None:
        return []
    if not table.range_key_attr:
        return [partition]
    if range_comparison in _EQUAL and len(range_objs) == 1:
        # Keyed by the sort key's DynamoType, whose hash and equality are moto's EQ comparison's (type, cast value).
        item = partition.get(range_objs[0])
        return [] if item is None else [item]
    return list(partition.values())


def _every_item(table) -> list:
    if not table.range_key_attr:
        return list(table.items.values())
    return [item for partition in table.items.values() for item in partition.values()]


def _query(original):
    def query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key, scan_index_forward,
              projection_expressions, index_name=None, *args, **kwargs):
        if index_name is None and hash_key is not None:
            target = _Partition(self, _partition_items(self, hash_key, range_comparison, range_objs))
        else:
            target = _Partition(self, _every_item(self))
        return original(target, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                        scan_index_forward, projection_expressions, index_name, *args, **kwargs)

    return query


def _names_defined_first(original):
    """moto looks up each SET/REMOVE path's #name before checking it is defined (a KeyError, answered as a 500);
    AWS answers ValidationException "An expression attribute name used in the document path is not defined"."""
    not_defined = hooks.resolve("dynamodb.name_not_defined")

    def check_for_overlapping_paths(self, node):
        for name in _placeholders(node):
            if name not in (self.expression_attribute_names or {}):
                raise not_defined(name)
        return original(self, node)

    return check_for_overlapping_paths


def _placeholders(node) -> list[str]:
    found, todo = [], [node]
    while todo:
        current = todo.pop()
        if hasattr(current, "get_attribute_name_placeholder"):
            found.append(current.get_attribute_name_placeholder())
        todo.extend(child for child in getattr(current, "children", None) or () if child is not None)
    return found


def _keys_value(original):
    """GetItem/DeleteItem: `{"orderId": {"N": "1"}}` for a string key found nothing (GetItem answered {}, DeleteItem
    succeeded), and a missing key attribute said "Validation Exception"; AWS answers "The provided key element does
    not match the schema" for both."""
    mismatch = hooks.resolve("dynamodb.key_mismatch")

    def get_keys_value(self, table, keys):
        types = {a["AttributeName"]: a["AttributeType"] for a in table.attr or ()}
        for name in (table.hash_key_attr, table.range_key_attr):
            if not name:
                continue
            value = keys.get(name)
            if not isinstance(value, dict) or len(value) != 1 or next(iter(value)) != types.get(name, next(iter(value))):
                raise mismatch()
        return original(self, table, keys)

    return get_keys_value


def install() -> None:
    hooks.replace("dynamodb.keys_value", _keys_value(hooks.original("dynamodb.keys_value")))
    hooks.replace("dynamodb.table.query", _query(hooks.original("dynamodb.table.query")))
    hooks.replace("dynamodb.overlapping_paths", _names_defined_first(hooks.original("dynamodb.overlapping_paths")))
