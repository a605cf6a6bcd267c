"""Schema discovery's inference, as AWS writes discovered schemas (emulator/schemas.py), without a server."""

from __future__ import annotations

import datetime
import json

import pytest
from jsonschema import Draft4Validator

from securecart_lab.emulator import schemas


@pytest.mark.parametrize("detail_type, name", [
    ("EC2 Instance State-change Notification", "EC2InstanceStateChangeNotification"),
    ("OrderPlaced", "OrderPlaced"),
    ("order placed", "OrderPlaced"),
])
def test_schema_names_are_pascal_case_as_aws_names_them(detail_type, name):
    assert schemas.pascal(detail_type) == name


def test_a_new_field_widens_the_schema_and_a_missing_one_is_no_longer_required():
    first = schemas.infer_schema("securecart.orders", "OrderPlaced", {"orderId": "o-1", "totalCents": 5})
    second = schemas.infer_schema("securecart.orders", "OrderPlaced", {"orderId": "o-2", "coupon": "X"})
    merged = schemas.merge(first, second)
    detail = merged["components"]["schemas"]["OrderPlaced"]
    assert set(detail["properties"]) == {"orderId", "totalCents", "coupon"}
    assert detail["required"] == ["orderId"]
    assert schemas.merge(merged, second) == merged  # nothing new: the same schema, so no new version


def test_nested_objects_become_components_and_export_resolves_them():
    inferred = schemas.infer_schema("securecart.orders", "OrderPlaced", {
        "orderId": "o-1", "shipping": {"country": "US"}, "items": [{"sku": "A", "quantity": 1}], "note": None,
        "placedAt": "2026-01-01T10:00:00.123Z", "rate": 0.5})
    components = inferred["components"]["schemas"]
    assert set(components) == {"AWSEvent", "OrderPlaced", "Shipping", "ItemsItem"}
    assert components["OrderPlaced"]["properties"]["note"] == {"type": "object", "nullable": True}
    version = schemas.Version("1", json.dumps(inferred), "OpenApi3", datetime.datetime.now(datetime.timezone.utc))
    exported = json.loads(schemas.export_draft4(version))
    Draft4Validator.check_schema(exported)
    assert exported["definitions"]["OrderPlaced"]["properties"]["note"]["type"] == ["object", "null"]
    event = {"version": "0", "id": "1", "detail-type": "OrderPlaced", "source": "securecart.orders",
             "account": "123456789012", "time": "2026-01-01T10:00:00Z", "region": "us-east-1", "resources": [],
             "detail": {"orderId": "o-1", "shipping": {"country": "US"}, "items": [{"sku": "A", "quantity": 1}],
                        "note": None, "placedAt": "2026-01-01T10:00:00.123Z", "rate": 0.5}}
    assert Draft4Validator(exported).is_valid(event)
    event["detail"]["items"][0]["quantity"] = "one"
    assert not Draft4Validator(exported).is_valid(event)
