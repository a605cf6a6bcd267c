"""Lab 4, step 1 (schemas) on the real local engine: the reference solution passes schema-registry,
schemas-match-orders and schema-discovery; each fails for the reason it names when the registry, the OrderPlaced
schema or the discoverer is made wrong through the Schemas API (and put back afterwards)."""

from __future__ import annotations

import json

import pytest

from securecart_lab.checking import FAIL, PASS
from securecart_lab.labs import service

pytestmark = pytest.mark.integration

STEP1 = {"schema-registry", "schemas-match-orders", "schema-discovery"}


@pytest.fixture(scope="module")
def lab4(settings, engine, lab_ctx):
    service.start(settings, 4, with_prereqs=True)
    service.solve(settings, 4)
    return lab_ctx(4)


def outcomes(settings, *ids: str) -> dict:
    return {o.id: o for o in service.check(settings, 4, only=set(ids or STEP1)).outcomes}


@pytest.fixture
def order_schema(lab4):
    """The solution's OrderPlaced schema; whatever a test sets, its content is put back (as a new version)."""
    schemas = lab4.aws("schemas")
    original = schemas.describe_schema(RegistryName="securecart", SchemaName="OrderPlaced")
    yield schemas, json.loads(original["Content"])
    latest = schemas.describe_schema(RegistryName="securecart", SchemaName="OrderPlaced")
    if latest["Content"] != original["Content"]:
        schemas.update_schema(RegistryName="securecart", SchemaName="OrderPlaced", Type=original["Type"],
                              Content=original["Content"])


def test_the_solution_passes_step_1(settings, lab4):
    found = outcomes(settings)
    assert {i: o.status for i, o in found.items()} == {i: PASS for i in STEP1}, {
        i: o.message for i, o in found.items()}
    assert "OrderPlaced" in found["schema-registry"].message and "version" in found["schema-registry"].message


def test_schema_registry_fails_naming_the_missing_schema(settings, lab4):
    schemas = lab4.aws("schemas")
    kept = schemas.describe_schema(RegistryName="securecart", SchemaName="SuspiciousOrder")
    schemas.delete_schema(RegistryName="securecart", SchemaName="SuspiciousOrder")
    try:
        outcome = outcomes(settings, "schema-registry")["schema-registry"]
        assert outcome.status == FAIL
        assert "no schema for SuspiciousOrder" in outcome.message
    finally:
        schemas.create_schema(RegistryName="securecart", SchemaName="SuspiciousOrder", Type=kept["Type"],
                              Content=kept["Content"], Description=kept.get("Description", ""))


def test_schema_registry_fails_on_a_schema_that_describes_nothing(settings, order_schema):
    schemas, _ = order_schema
    schemas.update_schema(RegistryName="securecart", SchemaName="OrderPlaced", Type="JSONSchemaDraft4",
                          Content=json.dumps({"$schema": "http://json-schema.org/draft-04/schema#", "type": "object"}))
    outcome = outcomes(settings, "schema-registry")["schema-registry"]
    assert outcome.status == FAIL and "describes no field of the OrderPlaced event" in outcome.message


def test_schemas_match_orders_fails_with_the_first_offending_field(settings, order_schema):
    schemas, schema = order_schema
    wrong = json.loads(json.dumps(schema))
    wrong["properties"]["totalCents"] = {"type": "string"}
    schemas.update_schema(RegistryName="securecart", SchemaName="OrderPlaced", Type="JSONSchemaDraft4",
                          Content=json.dumps(wrong))
    outcome = outcomes(settings, "schemas-match-orders")["schemas-match-orders"]
    assert outcome.status == FAIL
    assert "detail/totalCents" in outcome.message and "is not of type 'string'" in outcome.message, outcome.message


def test_schemas_match_orders_fails_on_a_schema_that_accepts_any_order(settings, order_schema):
    schemas, schema = order_schema
    loose = {**schema, "required": ["items"]}
    schemas.update_schema(RegistryName="securecart", SchemaName="OrderPlaced", Type="JSONSchemaDraft4",
                          Content=json.dumps(loose))
    outcome = outcomes(settings, "schemas-match-orders")["schemas-match-orders"]
    assert outcome.status == FAIL and "accepts an order without orderId" in outcome.message


def _bus_discoverer(lab4) -> tuple[object, str, dict]:
    """(Schemas client, the securecart bus's ARN, the discoverer on it)."""
    schemas = lab4.aws("schemas")
    bus_arn = lab4.aws("events").describe_event_bus(Name="securecart")["Arn"]
    return schemas, bus_arn, next(d for d in schemas.list_discoverers()["Discoverers"] if d["SourceArn"] == bus_arn)


def _discovery_fails_saying(settings, text: str) -> None:
    outcome = outcomes(settings, "schema-discovery")["schema-discovery"]
    assert outcome.status == FAIL and text in outcome.message, outcome


def test_schema_discovery_fails_while_the_discoverer_is_stopped(settings, lab4):
    schemas, _, discoverer = _bus_discoverer(lab4)
    schemas.stop_discoverer(DiscovererId=discoverer["DiscovererId"])
    try:
        _discovery_fails_saying(settings, "STOPPED")
    finally:
        schemas.start_discoverer(DiscovererId=discoverer["DiscovererId"])


def test_schema_discovery_fails_without_a_discoverer_on_the_bus(settings, lab4):
    schemas, bus_arn, discoverer = _bus_discoverer(lab4)
    schemas.delete_discoverer(DiscovererId=discoverer["DiscovererId"])
    try:
        _discovery_fails_saying(settings, "No discoverer on the securecart bus")
    finally:
        recreated = schemas.create_discoverer(SourceArn=bus_arn, Description=discoverer.get("Description", ""))
        assert recreated["DiscovererId"] == discoverer["DiscovererId"]
