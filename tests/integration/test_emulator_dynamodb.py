"""DynamoDB Query through the kit's partition lookup (emulator/dynamodb.py) answers as DynamoDB: key conditions,
filters, Limit and ExclusiveStartKey pages, ScanIndexForward, projections, hash-only tables, indexes."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from emulator_fixture import client, running_emulator

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def ddb():
    with running_emulator() as handle:
        ddb = client(handle, "dynamodb")
        ddb.create_table(
            TableName="orders", BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[{"AttributeName": "customer", "AttributeType": "S"},
                                  {"AttributeName": "order", "AttributeType": "N"},
                                  {"AttributeName": "status", "AttributeType": "S"}],
            KeySchema=[{"AttributeName": "customer", "KeyType": "HASH"}, {"AttributeName": "order", "KeyType": "RANGE"}],
            GlobalSecondaryIndexes=[{"IndexName": "by-status", "Projection": {"ProjectionType": "ALL"},
                                     "KeySchema": [{"AttributeName": "status", "KeyType": "HASH"},
                                                   {"AttributeName": "order", "KeyType": "RANGE"}]}])
        # Written out of order, in several partitions: the answer's order must come from the sort key.
        for order in (7, 3, 12, 1, 10, 5, 2, 11, 4, 9, 6, 8):
            for customer in ("alice", "bob", "carol"):
                ddb.put_item(TableName="orders", Item={
                    "customer": {"S": customer}, "order": {"N": str(order)}, "total": {"N": str(order * 10)},
                    "status": {"S": "PAID" if order % 2 else "NEW"}, "note": {"S": f"{customer}-{order}"}})
        yield ddb


def _orders(response: dict) -> list[int]:
    return [int(item["order"]["N"]) for item in response["Items"]]


def _query(ddb, condition: str, values: dict, **extra) -> dict:
    return ddb.query(TableName="orders", KeyConditionExpression=condition,
                     ExpressionAttributeValues={key: ({"S": v} if isinstance(v, str) else {"N": str(v)})
                                                for key, v in values.items()}, **extra)


@pytest.mark.parametrize("condition, values, expected", [
    ("customer = :c", {":c": "bob"}, list(range(1, 13))),
    ("customer = :c AND #o = :n", {":c": "bob", ":n": 5}, [5]),
    ("customer = :c AND #o < :n", {":c": "bob", ":n": 4}, [1, 2, 3]),
    ("customer = :c AND #o <= :n", {":c": "bob", ":n": 4}, [1, 2, 3, 4]),
    ("customer = :c AND #o > :n", {":c": "bob", ":n": 10}, [11, 12]),
    ("customer = :c AND #o >= :n", {":c": "bob", ":n": 10}, [10, 11, 12]),
    ("customer = :c AND #o BETWEEN :a AND :b", {":c": "bob", ":a": 4, ":b": 6}, [4, 5, 6]),
    ("customer = :c", {":c": "nobody"}, []),
])
def test_key_conditions_read_one_partition_in_sort_key_order(ddb, condition, values, expected):
    extra = {"ExpressionAttributeNames": {"#o": "order"}} if "#o" in condition else {}
    response = _query(ddb, condition, values, **extra)
    assert _orders(response) == expected
    assert {item["customer"]["S"] for item in response["Items"]} <= {values[":c"]}
    assert response["Count"] == len(expected)


def test_scan_index_forward_false_reverses(ddb):
    response = _query(ddb, "customer = :c AND #o <= :n", {":c": "carol", ":n": 5},
                      ExpressionAttributeNames={"#o": "order"}, ScanIndexForward=False)
    assert _orders(response) == [5, 4, 3, 2, 1]


def test_filter_expression_counts_what_it_scanned(ddb):
    response = _query(ddb, "customer = :c", {":c": "alice", ":s": "PAID", ":t": 50},
                      FilterExpression="#s = :s AND #t > :t", ExpressionAttributeNames={"#s": "status", "#t": "total"})
    assert _orders(response) == [7, 9, 11]
    assert response["ScannedCount"] == 12 and response["Count"] == 3


@pytest.mark.parametrize("forward", [True, False])
def test_pages_with_limit_and_exclusive_start_key(ddb, forward):
    pages, start = [], {}
    while True:
        response = _query(ddb, "customer = :c", {":c": "bob"}, Limit=5, ScanIndexForward=forward, **start)
        pages.append(_orders(response))
        if "LastEvaluatedKey" not in response:
            break
        assert response["LastEvaluatedKey"] == {"customer": {"S": "bob"}, "order": {"N": str(pages[-1][-1])}}
        start = {"ExclusiveStartKey": response["LastEvaluatedKey"]}
    everything = list(range(1, 13)) if forward else list(range(12, 0, -1))
    assert pages == [everything[:5], everything[5:10], everything[10:]]


def test_projection_returns_only_the_named_attributes(ddb):
    response = _query(ddb, "customer = :c AND #o = :n", {":c": "alice", ":n": 3},
                      ProjectionExpression="#o, note", ExpressionAttributeNames={"#o": "order"})
    assert response["Items"] == [{"order": {"N": "3"}, "note": {"S": "alice-3"}}]


def test_an_index_query_still_reads_every_partition(ddb):
    response = ddb.query(TableName="orders", IndexName="by-status", KeyConditionExpression="#s = :s AND #o < :n",
                         ExpressionAttributeNames={"#s": "status", "#o": "order"},
                         ExpressionAttributeValues={":s": {"S": "NEW"}, ":n": {"N": "5"}})
    assert sorted((item["customer"]["S"], int(item["order"]["N"])) for item in response["Items"]) == [
        (customer, order) for customer in ("alice", "bob", "carol") for order in (2, 4)]


@pytest.mark.parametrize("forward", [True, False])
def test_index_pages_follow_the_index_keys_then_the_table_keys(ddb, forward):
    pages, start = [], {}
    while True:
        response = ddb.query(TableName="orders", IndexName="by-status", KeyConditionExpression="#s = :s",
                             ExpressionAttributeNames={"#s": "status"}, ExpressionAttributeValues={":s": {"S": "PAID"}},
                             Limit=7, ScanIndexForward=forward, **start)
        pages.append([(int(item["order"]["N"]), item["customer"]["S"]) for item in response["Items"]])
        if "LastEvaluatedKey" not in response:
            break
        start = {"ExclusiveStartKey": response["LastEvaluatedKey"]}
    everything = sorted((order, customer) for order in (1, 3, 5, 7, 9, 11) for customer in ("alice", "bob", "carol"))
    if not forward:
        everything.reverse()
    assert [len(page) for page in pages] == [7, 7, 4]
    assert [entry for page in pages for entry in page] == everything


def test_a_hash_only_table_and_a_begins_with_sort_key(ddb):
    ddb.create_table(TableName="carts", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
    for cart in ("c1", "c2", "c3"):
        ddb.put_item(TableName="carts", Item={"id": {"S": cart}, "items": {"N": cart[1]}})
    response = ddb.query(TableName="carts", KeyConditionExpression="id = :i", ExpressionAttributeValues={":i": {"S": "c2"}})
    assert response["Items"] == [{"id": {"S": "c2"}, "items": {"N": "2"}}]
    assert ddb.query(TableName="carts", KeyConditionExpression="id = :i",
                     ExpressionAttributeValues={":i": {"S": "c9"}})["Items"] == []
    # Querying a missing partition adds nothing to the table.
    assert sorted(item["id"]["S"] for item in ddb.scan(TableName="carts")["Items"]) == ["c1", "c2", "c3"]
    assert ddb.describe_table(TableName="carts")["Table"]["ItemCount"] == 3

    ddb.create_table(TableName="events", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "S"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])
    for sk in ("order#2", "refund#1", "order#1", "order#10"):
        ddb.put_item(TableName="events", Item={"pk": {"S": "alice"}, "sk": {"S": sk}})
    response = ddb.query(TableName="events", KeyConditionExpression="pk = :p AND begins_with(sk, :b)",
                         ExpressionAttributeValues={":p": {"S": "alice"}, ":b": {"S": "order#"}})
    assert [item["sk"]["S"] for item in response["Items"]] == ["order#1", "order#10", "order#2"]


def test_a_wrong_key_condition_is_an_aws_error(ddb):
    with pytest.raises(ClientError) as error:
        _query(ddb, "note = :n", {":n": "x"})
    assert error.value.response["Error"]["Code"] == "ValidationException"


def test_put_then_query_sees_updates_and_deletes(ddb):
    ddb.put_item(TableName="orders", Item={"customer": {"S": "dave"}, "order": {"N": "1"}, "total": {"N": "5"}})
    ddb.update_item(TableName="orders", Key={"customer": {"S": "dave"}, "order": {"N": "1"}},
                    UpdateExpression="SET #t = :t", ExpressionAttributeNames={"#t": "total"},
                    ExpressionAttributeValues={":t": {"N": "6"}})
    assert _query(ddb, "customer = :c", {":c": "dave"})["Items"][0]["total"] == {"N": "6"}
    ddb.delete_item(TableName="orders", Key={"customer": {"S": "dave"}, "order": {"N": "1"}})
    assert _query(ddb, "customer = :c", {":c": "dave"})["Items"] == []


def test_every_attribute_type_comes_back_as_it_was_written(ddb):
    # Responses are serialised with remembered field names (emulator/hotpath.py): each AttributeValue member must
    # still be found, nested ones too, and the response's own fields (ConsumedCapacity) kept.
    item = {"customer": {"S": "erin"}, "order": {"N": "1"}, "price": {"N": "12.50"}, "blob": {"B": b"\x00\xffbytes"},
            "tags": {"SS": ["a", "b"]}, "sizes": {"NS": ["1", "2.5"]}, "blobs": {"BS": [b"x", b"y"]},
            "address": {"M": {"lines": {"L": [{"S": "1 Main St"}, {"NULL": True}, {"BOOL": False}]},
                              "zip": {"N": "12345"}}},
            "gift": {"BOOL": True}, "note": {"NULL": True}}
    ddb.put_item(TableName="orders", Item=item)
    key = {"customer": {"S": "erin"}, "order": {"N": "1"}}
    got = ddb.get_item(TableName="orders", Key=key, ReturnConsumedCapacity="TOTAL")
    assert _sets_sorted(got["Item"]) == _sets_sorted(item)
    assert got["ConsumedCapacity"]["TableName"] == "orders"
    assert _sets_sorted(_query(ddb, "customer = :c", {":c": "erin"})["Items"][0]) == _sets_sorted(item)
    old = ddb.delete_item(TableName="orders", Key=key, ReturnValues="ALL_OLD")["Attributes"]
    assert _sets_sorted(old) == _sets_sorted(item)


def _sets_sorted(item: dict) -> dict:
    return {name: {kind: sorted(value) if kind in ("SS", "NS", "BS") else value for kind, value in attr.items()}
            for name, attr in item.items()}
