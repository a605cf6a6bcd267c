"""EventBridge Schemas in the embedded emulator, through boto3 and the AWS CLI as a learner calls it: registries,
versioned schemas, export, search, discoverers fed by PutEvents, AWS's errors, and the CloudFormation types."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid

import pytest
from botocore.exceptions import ClientError
from jsonschema import Draft4Validator

from securecart_lab import config

pytestmark = pytest.mark.integration

DRAFT4 = {"$schema": "http://json-schema.org/draft-04/schema#", "type": "object", "required": ["orderId"],
          "properties": {"orderId": {"type": "string"}, "totalCents": {"type": "integer"}}}
OPENAPI = {"openapi": "3.0.0", "info": {"version": "1.0.0", "title": "OrderPlaced"}, "paths": {},
           "components": {"schemas": {"AWSEvent": {"type": "object", "required": ["detail"], "properties": {
               "detail": {"$ref": "#/components/schemas/OrderPlaced"}}},
               "OrderPlaced": {"type": "object", "required": ["orderId"], "properties": {
                   "orderId": {"type": "string"}, "coupon": {"type": "string", "nullable": True}}}}}}


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def _error(call) -> tuple[str, int, str]:
    with pytest.raises(ClientError) as caught:
        call()
    response = caught.value.response
    return response["Error"]["Code"], response["ResponseMetadata"]["HTTPStatusCode"], response["Error"]["Message"]


@pytest.fixture(scope="module")
def schemas(aws):
    return aws("schemas")


@pytest.fixture
def registry(schemas):
    name = _name("reg")
    schemas.create_registry(RegistryName=name, Description="test registry")
    yield name
    try:
        schemas.delete_registry(RegistryName=name)
    except ClientError:
        pass


def test_the_aws_managed_registries_are_there_and_cannot_be_deleted(schemas):
    names = {r["RegistryName"] for r in schemas.list_registries()["Registries"]}
    assert {"aws.events", "discovered-schemas"} <= names
    assert [r["RegistryName"] for r in schemas.list_registries(Scope="AWS")["Registries"]] == ["aws.events"]
    code, status, _ = _error(lambda: schemas.delete_registry(RegistryName="discovered-schemas"))
    assert (code, status) == ("BadRequestException", 400)


def test_registry_lifecycle_with_aws_errors(schemas):
    name = _name("reg")
    created = schemas.create_registry(RegistryName=name, Description="first", Tags={"team": "orders"})
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 201
    assert created["RegistryArn"] == f"arn:aws:schemas:us-east-1:123456789012:registry/{name}"
    assert _error(lambda: schemas.create_registry(RegistryName=name))[:2] == ("ConflictException", 409)
    schemas.update_registry(RegistryName=name, Description="second")
    described = schemas.describe_registry(RegistryName=name)
    assert (described["Description"], described["Tags"]) == ("second", {"team": "orders"})
    assert name in {r["RegistryName"] for r in schemas.list_registries(RegistryNamePrefix=name)["Registries"]}
    deleted = schemas.delete_registry(RegistryName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    code, status, message = _error(lambda: schemas.describe_registry(RegistryName=name))
    assert (code, status) == ("NotFoundException", 404) and name in message


def test_an_update_with_new_content_is_a_new_version(schemas, registry):
    created = schemas.create_schema(RegistryName=registry, SchemaName="OrderPlaced", Type="JSONSchemaDraft4",
                                    Content=json.dumps(DRAFT4), Description="v1")
    assert (created["SchemaVersion"], created["Type"]) == ("1", "JSONSchemaDraft4")
    assert created["SchemaArn"].endswith(f":schema/{registry}/OrderPlaced")
    second = {**DRAFT4, "required": ["orderId", "totalCents"]}
    assert schemas.update_schema(RegistryName=registry, SchemaName="OrderPlaced",
                                 Content=json.dumps(second))["SchemaVersion"] == "2"
    # The same content again, or only a new description, is no new version.
    assert schemas.update_schema(RegistryName=registry, SchemaName="OrderPlaced", Content=json.dumps(second),
                                 Description="v2")["SchemaVersion"] == "2"
    latest = schemas.describe_schema(RegistryName=registry, SchemaName="OrderPlaced")
    assert (latest["SchemaVersion"], json.loads(latest["Content"]), latest["Description"]) == ("2", second, "v2")
    first = schemas.describe_schema(RegistryName=registry, SchemaName="OrderPlaced", SchemaVersion="1")
    assert json.loads(first["Content"]) == DRAFT4
    versions = schemas.list_schema_versions(RegistryName=registry, SchemaName="OrderPlaced")["SchemaVersions"]
    assert [v["SchemaVersion"] for v in versions] == ["1", "2"]
    listed = schemas.list_schemas(RegistryName=registry)["Schemas"]
    assert [(s["SchemaName"], s["VersionCount"]) for s in listed] == [("OrderPlaced", 2)]
    assert _error(lambda: schemas.describe_schema(RegistryName=registry, SchemaName="OrderPlaced",
                                                  SchemaVersion="9"))[:2] == ("NotFoundException", 404)
    assert _error(lambda: schemas.delete_schema_version(RegistryName=registry, SchemaName="OrderPlaced",
                                                        SchemaVersion="2"))[:2] == ("BadRequestException", 400)
    schemas.delete_schema_version(RegistryName=registry, SchemaName="OrderPlaced", SchemaVersion="1")
    versions = schemas.list_schema_versions(RegistryName=registry, SchemaName="OrderPlaced")["SchemaVersions"]
    assert [v["SchemaVersion"] for v in versions] == ["2"]
    assert schemas.delete_schema(RegistryName=registry, SchemaName="OrderPlaced")[
        "ResponseMetadata"]["HTTPStatusCode"] == 204
    assert _error(lambda: schemas.describe_schema(RegistryName=registry, SchemaName="OrderPlaced"))[:2] == (
        "NotFoundException", 404)


@pytest.mark.parametrize("schema_type, content, says", [
    ("JSONSchemaDraft4", '{"type": "object", "properties": {"total": {"type": "money"}}}', "properties/total/type"),
    ("JSONSchemaDraft4", '{"type": "object"', "not valid JSON"),
    ("OpenApi3", '{"openapi": "3.0.0", "paths": {}}', "'info' is a required property"),
    ("OpenApi3", '{"type": "object"}', '"openapi": "3.0.0"'),
    ("Avro", '{"type": "record"}', "Type 'Avro' is not valid"),
])
def test_invalid_content_is_refused_with_a_bad_request(schemas, registry, schema_type, content, says):
    code, status, message = _error(lambda: schemas.create_schema(
        RegistryName=registry, SchemaName="Broken", Type=schema_type, Content=content))
    assert (code, status) == ("BadRequestException", 400)
    assert says in message
    assert schemas.list_schemas(RegistryName=registry)["Schemas"] == []


def test_a_schema_needs_its_registry_and_a_new_name(schemas, registry):
    assert _error(lambda: schemas.create_schema(RegistryName=_name("missing"), SchemaName="X", Type="OpenApi3",
                                                Content=json.dumps(OPENAPI)))[:2] == ("NotFoundException", 404)
    schemas.create_schema(RegistryName=registry, SchemaName="X", Type="OpenApi3", Content=json.dumps(OPENAPI))
    assert _error(lambda: schemas.create_schema(RegistryName=registry, SchemaName="X", Type="OpenApi3",
                                                Content=json.dumps(OPENAPI)))[:2] == ("ConflictException", 409)


def test_export_gives_json_schema_draft4_that_validates_the_event(schemas, registry):
    schemas.create_schema(RegistryName=registry, SchemaName="OrderPlaced", Type="OpenApi3", Content=json.dumps(OPENAPI))
    exported = schemas.export_schema(RegistryName=registry, SchemaName="OrderPlaced", Type="JSONSchemaDraft4")
    assert (exported["Type"], exported["SchemaVersion"]) == ("JSONSchemaDraft4", "1")
    document = json.loads(exported["Content"])
    Draft4Validator.check_schema(document)
    assert document["$schema"] == "http://json-schema.org/draft-04/schema#"
    assert document["properties"]["detail"] == {"$ref": "#/definitions/OrderPlaced"}
    assert document["definitions"]["OrderPlaced"]["properties"]["coupon"]["type"] == ["string", "null"]
    validator = Draft4Validator(document)
    assert validator.is_valid({"detail": {"orderId": "o-1", "coupon": None}})
    assert not validator.is_valid({"detail": {"coupon": "X"}})
    assert _error(lambda: schemas.export_schema(RegistryName=registry, SchemaName="OrderPlaced",
                                                Type="OpenApi3"))[:2] == ("BadRequestException", 400)


def test_search_finds_schemas_by_keyword(schemas, registry):
    schemas.create_schema(RegistryName=registry, SchemaName="OrderPlaced", Type="OpenApi3", Content=json.dumps(OPENAPI))
    schemas.create_schema(RegistryName=registry, SchemaName="InventoryLow", Type="JSONSchemaDraft4",
                          Content=json.dumps({"type": "object", "properties": {"sku": {"type": "string"}}}))
    found = schemas.search_schemas(RegistryName=registry, Keywords="order")["Schemas"]
    assert [s["SchemaName"] for s in found] == ["OrderPlaced"]
    assert found[0]["SchemaVersions"][0]["SchemaVersion"] == "1"
    assert [s["SchemaName"] for s in schemas.search_schemas(RegistryName=registry, Keywords="sku")["Schemas"]] == [
        "InventoryLow"]


def _put(events, bus: str, source: str, detail_type: str, detail: dict) -> None:
    response = events.put_events(Entries=[{"Source": source, "DetailType": detail_type, "EventBusName": bus,
                                           "Detail": json.dumps(detail)}])
    assert response["FailedEntryCount"] == 0, response


def _versions(schemas, name: str) -> list[str]:
    try:
        return [v["SchemaVersion"] for v in schemas.list_schema_versions(
            RegistryName="discovered-schemas", SchemaName=name)["SchemaVersions"]]
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "NotFoundException"
        return []


def test_a_discoverer_infers_versioned_schemas_from_the_events_on_its_bus(aws, schemas):
    events = aws("events")
    bus = _name("bus")
    bus_arn = events.create_event_bus(Name=bus)["EventBusArn"]
    source = f"securecart.{uuid.uuid4().hex[:6]}"
    _put(events, bus, source, "Order Placed", {"orderId": "o-1"})  # no discoverer yet: nothing is discovered
    discoverer = schemas.create_discoverer(SourceArn=bus_arn, Description="orders")
    try:
        assert discoverer["State"] == "STARTED" and discoverer["CrossAccount"] is True
        assert _error(lambda: schemas.create_discoverer(SourceArn=bus_arn))[:2] == ("ConflictException", 409)
        name = f"{source}@OrderPlaced"
        assert _versions(schemas, name) == []
        order = {"orderId": "o-1", "items": [{"sku": "SC-1", "quantity": 2}], "totalCents": 1999,
                 "placedAt": "2026-03-01T10:00:00Z"}
        _put(events, bus, source, "Order Placed", order)
        assert _versions(schemas, name) == ["1"]
        described = schemas.describe_schema(RegistryName="discovered-schemas", SchemaName=name)
        content = json.loads(described["Content"])
        event_schema = content["components"]["schemas"]["AWSEvent"]
        assert (event_schema["x-amazon-events-source"], event_schema["x-amazon-events-detail-type"]) == (
            source, "Order Placed")
        detail = content["components"]["schemas"]["OrderPlaced"]
        assert detail["properties"]["totalCents"] == {"type": "integer", "format": "int64"}
        assert detail["properties"]["placedAt"] == {"type": "string", "format": "date-time"}
        assert detail["properties"]["items"]["items"] == {"$ref": "#/components/schemas/ItemsItem"}
        _put(events, bus, source, "Order Placed", order)  # the same shape: no new version
        assert _versions(schemas, name) == ["1"]
        _put(events, bus, source, "Order Placed", {**order, "coupon": "SPRING"})  # a new field: a new version
        assert _versions(schemas, name) == ["1", "2"]
        latest = json.loads(schemas.describe_schema(RegistryName="discovered-schemas", SchemaName=name)["Content"])
        assert "coupon" in latest["components"]["schemas"]["OrderPlaced"]["properties"]
        exported = json.loads(schemas.export_schema(RegistryName="discovered-schemas", SchemaName=name,
                                                    Type="JSONSchemaDraft4")["Content"])
        assert Draft4Validator(exported).is_valid({
            "version": "0", "id": "1", "detail-type": "Order Placed", "source": source, "account": "123456789012",
            "time": "2026-03-01T10:00:00Z", "region": "us-east-1", "resources": [], "detail": order})

        stopped = schemas.stop_discoverer(DiscovererId=discoverer["DiscovererId"])
        assert stopped["State"] == "STOPPED"
        _put(events, bus, source, "Order Shipped", {"orderId": "o-1"})
        assert _versions(schemas, f"{source}@OrderShipped") == []
        schemas.start_discoverer(DiscovererId=discoverer["DiscovererId"])
        _put(events, bus, source, "Order Shipped", {"orderId": "o-1"})
        assert _versions(schemas, f"{source}@OrderShipped") == ["1"]
        listed = schemas.list_discoverers(SourceArnPrefix=bus_arn)["Discoverers"]
        assert [d["DiscovererId"] for d in listed] == [discoverer["DiscovererId"]]
    finally:
        schemas.delete_discoverer(DiscovererId=discoverer["DiscovererId"])
    assert _error(lambda: schemas.describe_discoverer(DiscovererId=discoverer["DiscovererId"]))[:2] == (
        "NotFoundException", 404)


def test_cross_account_events_are_discovered_only_when_the_discoverer_allows_them(engine, aws):
    """A SecureCart rule forwards to the security account's bus (its policy allows SecureCart): that account's
    discoverer with CrossAccount false ignores the forwarded events, with CrossAccount true it discovers them."""
    from securecart_lab import aws as kit_aws
    from securecart_lab.config import ACCOUNT_ID, SECURITY_ACCOUNT_ID

    def security(service):
        return kit_aws.client(service, engine.endpoint_url, SECURITY_ACCOUNT_ID)

    suffix = uuid.uuid4().hex[:8]
    target_arn = security("events").create_event_bus(Name=f"compliance-{suffix}")["EventBusArn"]
    security("events").put_permission(EventBusName=f"compliance-{suffix}", Action="events:PutEvents",
                                      Principal=ACCOUNT_ID, StatementId="securecart")
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole"}]}
    role_arn = aws("iam").create_role(RoleName=f"forwarder-{suffix}",
                                      AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    aws("iam").put_role_policy(RoleName=f"forwarder-{suffix}", PolicyName="put", PolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "events:PutEvents",
                                                "Resource": target_arn}]}))
    source = f"securecart.payments{suffix}"
    events = aws("events")
    events.create_event_bus(Name=f"payments-{suffix}")
    events.put_rule(Name=f"forward-{suffix}", EventBusName=f"payments-{suffix}",
                    EventPattern=json.dumps({"source": [source]}))
    events.put_targets(Rule=f"forward-{suffix}", EventBusName=f"payments-{suffix}",
                       Targets=[{"Id": "security", "Arn": target_arn, "RoleArn": role_arn}])
    their_schemas = security("schemas")
    discoverer = their_schemas.create_discoverer(SourceArn=target_arn, CrossAccount=False)["DiscovererId"]
    try:
        _put(events, f"payments-{suffix}", source, "PaymentAuthorized", {"orderId": "o-1", "ignored": True})
        _put(security("events"), f"compliance-{suffix}", source, "LocalEvent", {"orderId": "o-1"})
        assert _versions(their_schemas, f"{source}@LocalEvent") == ["1"]  # the bus's own account: discovered
        assert _versions(their_schemas, f"{source}@PaymentAuthorized") == []
        their_schemas.update_discoverer(DiscovererId=discoverer, CrossAccount=True)
        _put(events, f"payments-{suffix}", source, "PaymentAuthorized", {"orderId": "o-2"})
        deadline = time.monotonic() + 10  # delivery to the other account's bus runs beside PutEvents
        while not _versions(their_schemas, f"{source}@PaymentAuthorized") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _versions(their_schemas, f"{source}@PaymentAuthorized") == ["1"]
        content = their_schemas.describe_schema(RegistryName="discovered-schemas",
                                                SchemaName=f"{source}@PaymentAuthorized")["Content"]
        assert "orderId" in content and "ignored" not in content  # the event sent while CrossAccount was false
        assert _versions(aws("schemas"), f"{source}@PaymentAuthorized") == []  # SecureCart's registry: untouched
    finally:
        their_schemas.delete_discoverer(DiscovererId=discoverer)


def test_a_discoverer_needs_an_existing_bus(schemas):
    code, status, message = _error(lambda: schemas.create_discoverer(
        SourceArn=f"arn:aws:events:us-east-1:123456789012:event-bus/{_name('nobus')}"))
    assert (code, status) == ("BadRequestException", 400) and "does not exist" in message


def test_get_discovered_schema_infers_without_storing(schemas):
    content = json.loads(schemas.get_discovered_schema(Type="OpenApi3", Events=[json.dumps({"a": 1, "b": "x"})])[
        "Content"])
    assert content["components"]["schemas"]["Event"]["properties"] == {
        "a": {"type": "integer", "format": "int64"}, "b": {"type": "string"}}


def test_tags_by_arn(schemas, registry):
    arn = schemas.describe_registry(RegistryName=registry)["RegistryArn"]
    schemas.tag_resource(ResourceArn=arn, Tags={"a": "1", "b": "2"})
    schemas.untag_resource(ResourceArn=arn, TagKeys=["a"])
    assert schemas.list_tags_for_resource(ResourceArn=arn)["Tags"] == {"b": "2"}


def _raw(engine, method: str, path: str) -> tuple[int, dict, str]:
    request = urllib.request.Request(f"{engine.endpoint_url}{path}", method=method, headers={
        "Authorization": "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/schemas/aws4_request, "
                         "SignedHeaders=host, Signature=x"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode()


def test_errors_are_aws_json_never_html(engine):
    status, headers, body = _raw(engine, "GET", f"/v1/registries/name/{_name('missing')}")
    assert status == 404 and headers.get("x-amzn-ErrorType") == "NotFoundException"
    assert set(json.loads(body)) == {"Code", "Message"} and json.loads(body)["Code"] == "NotFoundException"
    status, _, body = _raw(engine, "GET", "/v1/no-such-operation")
    assert status == 400 and "<html" not in body.lower() and json.loads(body)["Code"] == "UnsupportedOperation"


@pytest.mark.skipif(importlib.util.find_spec("awscli") is None, reason="AWS CLI v1 (the 'test' extra) is not installed")
def test_the_aws_cli_works_unchanged(engine):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "BOTO"))}
    env.update(config.aws_env(engine.endpoint_url))
    name = _name("cli")

    def aws(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "awscli", "schemas", *arguments, "--output", "json"], env=env,
                              capture_output=True, text=True, timeout=120)

    created = aws("create-registry", "--registry-name", name)
    assert created.returncode == 0, created.stderr
    schema = aws("create-schema", "--registry-name", name, "--schema-name", "OrderPlaced", "--type",
                 "JSONSchemaDraft4", "--content", json.dumps(DRAFT4))
    assert schema.returncode == 0 and json.loads(schema.stdout)["SchemaVersion"] == "1", schema.stderr
    missing = aws("describe-schema", "--registry-name", name, "--schema-name", "Nope")
    assert missing.returncode != 0 and "(NotFoundException)" in missing.stderr
    assert aws("delete-schema", "--registry-name", name, "--schema-name", "OrderPlaced").returncode == 0
    assert aws("delete-registry", "--registry-name", name).returncode == 0


# --- CloudFormation ------------------------------------------------------------------------------------------------

def _template(bus_arn: str, registry: str, properties: dict, description: str) -> str:
    return json.dumps({
        "Resources": {
            "Registry": {"Type": "AWS::EventSchemas::Registry",
                         "Properties": {"RegistryName": registry, "Description": description}},
            "OrderPlaced": {"Type": "AWS::EventSchemas::Schema", "Properties": {
                "RegistryName": {"Fn::GetAtt": ["Registry", "RegistryName"]}, "SchemaName": "OrderPlaced",
                "Type": "JSONSchemaDraft4", "Content": json.dumps({"type": "object", "properties": properties})}},
            "Discoverer": {"Type": "AWS::EventSchemas::Discoverer",
                           "Properties": {"SourceArn": bus_arn, "Description": description}},
        },
        "Outputs": {
            "RegistryRef": {"Value": {"Ref": "Registry"}},
            "RegistryName": {"Value": {"Fn::GetAtt": ["Registry", "RegistryName"]}},
            "SchemaRef": {"Value": {"Ref": "OrderPlaced"}},
            "SchemaVersion": {"Value": {"Fn::GetAtt": ["OrderPlaced", "SchemaVersion"]}},
            "DiscovererRef": {"Value": {"Ref": "Discoverer"}},
            "DiscovererId": {"Value": {"Fn::GetAtt": ["Discoverer", "DiscovererId"]}},
            "DiscovererState": {"Value": {"Fn::GetAtt": ["Discoverer", "State"]}},
        },
    })


def _settled(cloudformation, stack: str) -> dict:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = cloudformation.describe_stacks(StackName=stack)["Stacks"][0]
        if not found["StackStatus"].endswith("IN_PROGRESS"):
            return found
        time.sleep(0.2)
    raise AssertionError(f"stack {stack} still in progress after 60 s")


def _outputs(stack: dict) -> dict:
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def test_cloudformation_creates_updates_in_place_and_deletes_the_schema_types(aws, schemas):
    cloudformation, events = aws("cloudformation"), aws("events")
    bus_arn = events.create_event_bus(Name=_name("cfnbus"))["EventBusArn"]
    registry, stack = _name("cfnreg"), _name("schemas-stack")
    cloudformation.create_stack(StackName=stack, TemplateBody=_template(
        bus_arn, registry, {"orderId": {"type": "string"}}, "first"))
    created = _settled(cloudformation, stack)
    assert created["StackStatus"] == "CREATE_COMPLETE", created
    outputs = _outputs(created)
    assert outputs["RegistryRef"] == f"arn:aws:schemas:us-east-1:123456789012:registry/{registry}"
    assert outputs["RegistryName"] == registry
    assert outputs["SchemaRef"] == f"arn:aws:schemas:us-east-1:123456789012:schema/{registry}/OrderPlaced"
    assert outputs["SchemaVersion"] == "1" and outputs["DiscovererState"] == "STARTED"
    discoverer_id = outputs["DiscovererId"]
    assert outputs["DiscovererRef"].endswith(f":discoverer/{discoverer_id}")
    assert schemas.describe_discoverer(DiscovererId=discoverer_id)["SourceArn"] == bus_arn

    cloudformation.update_stack(StackName=stack, TemplateBody=_template(
        bus_arn, registry, {"orderId": {"type": "string"}, "totalCents": {"type": "integer"}}, "second"))
    updated = _settled(cloudformation, stack)
    assert updated["StackStatus"] == "UPDATE_COMPLETE", updated
    outputs = _outputs(updated)
    assert outputs["SchemaVersion"] == "2" and outputs["DiscovererId"] == discoverer_id  # in place, not replaced
    assert schemas.describe_registry(RegistryName=registry)["Description"] == "second"
    assert schemas.describe_discoverer(DiscovererId=discoverer_id)["Description"] == "second"

    # Content AWS refuses fails the update, which rolls back; what ran before still runs.
    cloudformation.update_stack(StackName=stack, TemplateBody=_template(
        bus_arn, registry, {"orderId": {"type": "text"}}, "third"))
    failed = _settled(cloudformation, stack)
    assert failed["StackStatus"] == "UPDATE_ROLLBACK_COMPLETE", failed
    reasons = [e.get("ResourceStatusReason", "") for e in cloudformation.describe_stack_events(StackName=stack)[
        "StackEvents"] if e["LogicalResourceId"] == "OrderPlaced" and e["ResourceStatus"] == "UPDATE_FAILED"]
    assert reasons and "BadRequestException" in reasons[0], reasons
    assert schemas.describe_registry(RegistryName=registry)["Description"] == "second"
    latest = json.loads(schemas.describe_schema(RegistryName=registry, SchemaName="OrderPlaced")["Content"])
    assert set(latest["properties"]) == {"orderId", "totalCents"}

    cloudformation.delete_stack(StackName=stack)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if cloudformation.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE":
                break
        except ClientError:  # a deleted stack is no longer found by name
            break
        time.sleep(0.2)
    assert _error(lambda: schemas.describe_registry(RegistryName=registry))[0] == "NotFoundException"
    assert _error(lambda: schemas.describe_discoverer(DiscovererId=discoverer_id))[0] == "NotFoundException"
