"""Lab 4 checks: real orders through the kit's checkout (securecart-checkout), observed where a learner would look:
the orders table (status), the fraud model's reviews table (which orders the workflow scored), the payment
gateway's charges table (which orders were charged, how often), the queues and their dead-letter queue.

Each check places orders with its own ids (prefix chk4-) and never changes the learner's resources. The kit's
observer rule (securecart-lab04-observer) copies the fraud workflow's events to a log group the checks read.
"""

from __future__ import annotations

import json
import re
import statistics
import time
from datetime import datetime, timedelta, timezone

from botocore.exceptions import ClientError

from securecart_lab.checking import check, failed, passed
from securecart_lab.config import ACCOUNT_ID, SECURITY_ACCOUNT_ID
from securecart_lab.errors import LabError
from securecart_lab.labs.registry import get_lab

LAB = get_lab(4)
KIT = LAB.provisioner()
NEEDS = ("events", "stepfunctions", "lambda", "sqs", "dynamodb", "cloudformation")
THRESHOLD = KIT.HIGH_TOTAL_CENTS
SETTLE_SECONDS = 20.0  # how long an order may take from checkout to its final state (paid, held) before it counts as lost


# --- helpers ------------------------------------------------------------------------------------------------------


def _stack(ctx) -> list[dict]:
    if "stack" not in ctx.cache:
        resources = KIT.stack_resources(ctx)
        if not resources:
            raise LabError(f"Expected stack {KIT.STACK} (your template.yaml), found none.",
                           'Run "securecart-lab deploy 4" (and "securecart-lab start 4" first if the lab is not set up).')
        ctx.cache["stack"] = resources
    return ctx.cache["stack"]


def _of_type(ctx, resource_type: str) -> list[str]:
    return [r["PhysicalResourceId"] for r in _stack(ctx) if r["ResourceType"] == resource_type]


def _order(ctx, **fields) -> dict:
    """An ordinary order (a known customer, a US card shipped to the US, $25.00) with the check's own id."""
    order = {"orderId": ctx.unique("chk4"), "customerId": "cus-check", "customerEmail": "check@example.com",
             "totalCents": 2500, "cardToken": "tok_visa_ok", "cardCountry": "US", "shippingCountry": "US"}
    order.update(fields)
    return {k: v for k, v in order.items() if v is not None}


def _checkout(ctx, orders: list[dict]) -> None:
    """Place `orders` through the kit's checkout function (one invocation per 100 orders)."""
    lam = ctx.aws("lambda")
    for start in range(0, len(orders), 100):
        response = lam.invoke(FunctionName=KIT.CHECKOUT, Payload=json.dumps({"orders": orders[start:start + 100]}))
        body = json.loads(response["Payload"].read() or b"{}")
        if response.get("FunctionError"):
            raise LabError(f"The kit's {KIT.CHECKOUT} function failed: {body.get('errorMessage', body)}",
                           'Run "securecart-lab start 4" to set the lab up again, then check again.')


def _items(ctx, table: str, key: str, ids: list[str]) -> dict[str, dict]:
    """The items of `table` whose key `key` is one of `ids` (BatchGetItem, consistent reads)."""
    dynamodb = ctx.aws("dynamodb")
    found: dict[str, dict] = {}
    for start in range(0, len(ids), 100):
        request = {table: {"Keys": [{key: {"S": i}} for i in ids[start:start + 100]], "ConsistentRead": True}}
        while request:
            answer = dynamodb.batch_get_item(RequestItems=request)
            for item in answer["Responses"].get(table, []):
                found[item[key]["S"]] = item
            request = answer.get("UnprocessedKeys") or None
    return found


def _statuses(ctx, ids: list[str]) -> dict[str, str]:
    return {i: item.get("status", {}).get("S", "?") for i, item in _items(ctx, KIT.ORDERS_TABLE, "orderId", ids).items()}


def _reviews(ctx, ids: list[str]) -> dict[str, int]:
    """orderId -> how many times the fraud model scored it."""
    return {i: int(item.get("reviews", {}).get("N", "1")) for i, item in
            _items(ctx, KIT.REVIEWS_TABLE, "orderId", ids).items()}


def _charges(ctx, ids: list[str]) -> dict[str, list[dict]]:
    """orderId -> its charges at the gateway (each {"chargeId", "calls", "chargedAt"})."""
    wanted = set(ids)
    found: dict[str, list[dict]] = {}
    scan = {"TableName": KIT.CHARGES_TABLE, "ConsistentRead": True}
    if len(ids) <= 100:  # the table keeps every charge of every run: only these orders' come back
        values = {f":o{n}": {"S": i} for n, i in enumerate(ids)}
        scan.update(FilterExpression=f"orderId IN ({', '.join(values)})", ExpressionAttributeValues=values)
    for page in ctx.aws("dynamodb").get_paginator("scan").paginate(**scan):
        for item in page["Items"]:
            order_id = item.get("orderId", {}).get("S")
            if order_id in wanted:
                found.setdefault(order_id, []).append({"chargeId": item["chargeId"]["S"],
                                                       "calls": int(item.get("calls", {}).get("N", "1")),
                                                       "chargedAt": int(item.get("chargedAt", {}).get("N", "0"))})
    return found


def _wait(condition, timeout: float, interval: float = 0.2):
    """Poll `condition()` until it returns something truthy or `timeout` seconds pass; returns its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


QUIET_SECONDS = 3.0


def _settle(progress, done, timeout: float = SETTLE_SECONDS):
    """Poll until done(value) for value = progress(), or until the value, once something happened, stays the same
    for QUIET_SECONDS (what has not happened by then is not going to: rules route when checkout publishes).
    Returns the last value."""
    deadline = time.monotonic() + timeout
    last, since = progress(), time.monotonic()
    while not done(last) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = progress()
        if value != last:
            last, since = value, time.monotonic()
        elif value and time.monotonic() - since > QUIET_SECONDS:
            break
    return last


def _require_workflow(ctx) -> str:
    machines = _of_type(ctx, "AWS::StepFunctions::StateMachine")
    if not machines:
        raise LabError("Expected a state machine (the fraud-check workflow) in section 2 of template.yaml, found none.",
                       "Add an AWS::StepFunctions::StateMachine with StateMachineType: EXPRESS and a rule that starts it "
                       "(README, step 2), then deploy 4.")
    return machines[0]


def _dollars(cents: int) -> str:
    return f"${cents / 100:,.2f}"


# --- 1. Schemas ---------------------------------------------------------------------------------------------------

REGISTRY = "securecart"
EVENT_SCHEMAS = ("OrderPlaced", "PaymentAuthorized", "InventoryLow", "SuspiciousOrder")
DISCOVERED = "discovered-schemas"


def _registered(ctx, event: str) -> dict | None:
    """The learner's schema of `event` in the securecart registry (named OrderPlaced, or <source>@OrderPlaced), as
    ListSchemas describes it; None when there is none."""
    schemas = ctx.aws("schemas")
    try:
        listed = schemas.list_schemas(RegistryName=REGISTRY)["Schemas"]
    except ClientError:
        return None
    return next((s for s in listed if s["SchemaName"] == event or s["SchemaName"].endswith(f"@{event}")), None)


def _custom_registries(ctx) -> list[str]:
    return [r["RegistryName"] for r in ctx.aws("schemas").list_registries(Scope="LOCAL")["Registries"]
            if r["RegistryName"] != DISCOVERED]


@check("schema-registry", "A schema registry holds SecureCart's four event schemas, versioned", points=10,
       hint="In section 1 of template.yaml, add an AWS::EventSchemas::Registry named securecart and one "
            "AWS::EventSchemas::Schema per event (OrderPlaced, PaymentAuthorized, InventoryLow, SuspiciousOrder) "
            "in it, then deploy 4.",
       more="Each schema is a JSONSchemaDraft4 or OpenApi3 document (seed/events/ has OrderPlaced and InventoryLow as "
            "JSON Schema: change $schema to http://json-schema.org/draft-04/schema#). Every change of a schema's "
            "Content is a new version: list them with aws schemas list-schema-versions --registry-name securecart "
            "--schema-name OrderPlaced.",
       needs={"schemas", "cloudformation"})
def schema_registry(ctx):
    schemas = ctx.aws("schemas")
    try:
        schemas.describe_registry(RegistryName=REGISTRY)
    except ClientError:
        others = _custom_registries(ctx)
        return failed(f"No schema registry named {REGISTRY}.", expected=f"registry {REGISTRY}",
                      actual=f"registries: {', '.join(others)}" if others else "no registry of yours")
    found, missing = [], []
    for event in EVENT_SCHEMAS:
        summary = _registered(ctx, event)
        if summary is None:
            missing.append(event)
            continue
        versions = schemas.list_schema_versions(RegistryName=REGISTRY, SchemaName=summary["SchemaName"])[
            "SchemaVersions"]
        latest = schemas.describe_schema(RegistryName=REGISTRY, SchemaName=summary["SchemaName"])
        document = json.loads(latest["Content"])
        if not _declares_fields(document):
            return failed(f"Schema {summary['SchemaName']} describes no field of the {event} event.",
                          expected="a schema with the event's properties and the ones it requires",
                          actual=latest["Content"][:200],
                          hint=f"Describe the {event} detail's fields (properties, required) in its Content.")
        found.append(f"{summary['SchemaName']} ({latest['Type']}, {len(versions)} version"
                     f"{'s' if len(versions) != 1 else ''}, latest {latest['SchemaVersion']})")
    if missing:
        elsewhere = [f"{r}/{s['SchemaName']}" for r in _custom_registries(ctx) if r != REGISTRY
                     for s in schemas.list_schemas(RegistryName=r)["Schemas"]
                     if any(s["SchemaName"].endswith(e) for e in missing)]
        return failed(f"Registry {REGISTRY} has no schema for {', '.join(missing)}.",
                      expected=", ".join(EVENT_SCHEMAS),
                      actual=("; ".join(found) or "no schema") + (f" (found in other registries: "
                                                                   f"{', '.join(elsewhere)})" if elsewhere else ""))
    return passed(f"Registry {REGISTRY}: " + "; ".join(found))


def _declares_fields(document: dict) -> bool:
    """Whether a schema document declares properties somewhere (its own, or a component's)."""
    if isinstance(document.get("properties"), dict) and document["properties"]:
        return True
    components = (document.get("components") or {}).get("schemas") or {}
    definitions = document.get("definitions") or {}
    return any(isinstance(c, dict) and c.get("properties") for c in (*components.values(), *definitions.values()))


def _draft4(ctx, name: str) -> tuple[dict, str]:
    """The learner's schema as JSON Schema draft 4 (ExportSchema for OpenApi3), and its version."""
    schemas = ctx.aws("schemas")
    described = schemas.describe_schema(RegistryName=REGISTRY, SchemaName=name)
    if described["Type"] == "JSONSchemaDraft4":
        return json.loads(described["Content"]), described["SchemaVersion"]
    exported = schemas.export_schema(RegistryName=REGISTRY, SchemaName=name, Type="JSONSchemaDraft4")
    return json.loads(exported["Content"]), exported["SchemaVersion"]


def _first_error(schema: dict, event: dict) -> str | None:
    """The first field the event breaks ("detail/totalCents: '12' is not of type 'integer'"), or None. A schema of
    the whole event (a "detail" property, as discovered schemas are) validates the event, else its detail."""
    from jsonschema import Draft4Validator

    whole = "detail" in (schema.get("properties") or {})
    document = event if whole else event["detail"]
    errors = sorted(Draft4Validator(schema).iter_errors(document), key=lambda e: (len(e.absolute_path), e.message))
    if not errors:
        return None
    error = errors[0]
    path = "/".join(str(p) for p in error.absolute_path)
    prefix = "" if whole else "detail"
    where = "/".join(p for p in (prefix, path) if p) or "(the event)"
    return f"{where}: {error.message}"


def _capture_orders(ctx, orders: list[dict], timeout: float = 15.0) -> list[dict]:
    """Place `orders` through the kit's checkout and return the OrderPlaced events it put on the bus, caught by a
    rule and a queue of the check's own (removed afterwards)."""
    prov = KIT
    events, sqs = ctx.aws("events"), ctx.aws("sqs")
    name = ctx.unique("securecart-check-orders")
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    try:
        queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        rule_arn = events.put_rule(Name=name, EventBusName=prov.BUS, EventPattern=json.dumps({
            "source": [prov.ORDER_SOURCE], "detail-type": ["OrderPlaced"],
            "detail": {"orderId": [o["orderId"] for o in orders]}}))["RuleArn"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sqs:SendMessage",
                "Resource": queue_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}]})})
        events.put_targets(Rule=name, EventBusName=prov.BUS, Targets=[{"Id": "check", "Arn": queue_arn}])
        try:
            _checkout(ctx, orders)
            caught: dict[str, dict] = {}
            deadline = time.monotonic() + timeout
            while len(caught) < len(orders) and time.monotonic() < deadline:
                for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                                   WaitTimeSeconds=1).get("Messages", []):
                    event = json.loads(message["Body"])
                    caught[event["detail"]["orderId"]] = event
            return [caught[o["orderId"]] for o in orders if o["orderId"] in caught]
        finally:
            events.remove_targets(Rule=name, EventBusName=prov.BUS, Ids=["check"])
            events.delete_rule(Name=name, EventBusName=prov.BUS)
    finally:
        sqs.delete_queue(QueueUrl=url)


def _schema_orders(ctx) -> list[dict]:
    """Orders as SecureCart's customers place them: a member's with one line, a guest's with several."""
    return [
        _order(ctx, items=[{"sku": "SC-ELEC-0001", "quantity": 1, "unitPriceCents": 2500}]),
        _order(ctx, customerId=None, totalCents=None, customerEmail="guest@example.com",
               items=[{"sku": "SC-HOME-0002", "quantity": 3, "unitPriceCents": 1250},
                      {"sku": "SC-ELEC-0003", "quantity": 1, "unitPriceCents": 8999}]),
    ]


@check("schemas-match-orders", "Real OrderPlaced events validate against the registered OrderPlaced schema",
       points=10,
       hint="Make the OrderPlaced schema in the securecart registry describe the events checkout really sends "
            "(aws schemas describe-schema --registry-name discovered-schemas --schema-name "
            "securecart.checkout@OrderPlaced shows what discovery saw), with orderId required.",
       more="The check places orders through the kit's checkout function, catches the OrderPlaced events it puts on "
            "the securecart bus, and validates each against your schema (an OpenApi3 schema is exported as JSON "
            "Schema draft 4 first). A schema of the detail is checked against the detail; one of the whole event "
            "(with a detail property, as discovered schemas are) against the event. The schema must also reject an "
            "order without orderId, or it standardises nothing.",
       needs={"schemas", "events", "lambda", "sqs"})
def schemas_match_orders(ctx):
    summary = _registered(ctx, "OrderPlaced")
    if summary is None:
        return failed(f"Registry {REGISTRY} has no OrderPlaced schema to validate orders against.",
                      expected=f"{REGISTRY}/OrderPlaced", actual="none",
                      hint="Do step 1's schema-registry first: add the OrderPlaced schema to section 1.")
    schema, version = _draft4(ctx, summary["SchemaName"])
    label = f"{REGISTRY}/{summary['SchemaName']} version {version}"
    orders = _schema_orders(ctx)
    events = _capture_orders(ctx, orders)
    if len(events) < len(orders):
        raise LabError(f"Checkout put {len(events)} of {len(orders)} OrderPlaced events on the bus within 15 s.",
                       "Run securecart-lab start 4 again to restore the kit's checkout function.")
    for event in events:
        error = _first_error(schema, event)
        if error is not None:
            return failed(f"The OrderPlaced event of order {event['detail']['orderId']} does not validate against "
                          f"{label}: {error}.", expected="every real OrderPlaced event valid",
                          actual=f"{error} (detail: {json.dumps(event['detail'])[:300]})")
    broken = json.loads(json.dumps(events[0]))
    broken["detail"].pop("orderId")
    if _first_error(schema, broken) is None:
        return failed(f"{label} accepts an order without orderId: it does not standardise the order events.",
                      expected='"required": ["orderId", ...] in the detail\'s schema',
                      actual="an OrderPlaced event without orderId is valid",
                      hint="List the fields every order has (orderId first) under required.")
    return passed(f"{len(events)} real OrderPlaced events from checkout validate against {label}, and an order "
                  "without orderId does not.")


@check("schema-discovery", "Schema discovery on the securecart bus infers schemas of new events", points=10,
       hint="In section 1, add an AWS::EventSchemas::Discoverer whose SourceArn is the securecart bus's ARN "
            "(!Sub arn:aws:events:${AWS::Region}:${AWS::AccountId}:event-bus/securecart), then deploy 4.",
       more="The check puts an event of a detail-type never seen before on the securecart bus (source "
            "securecart.checks) and waits for discovery to write <source>@<DetailType> into the discovered-schemas "
            "registry, then removes that schema again.",
       needs={"schemas", "events"})
def schema_discovery(ctx):
    prov = KIT
    schemas, events = ctx.aws("schemas"), ctx.aws("events")
    bus_arn = events.describe_event_bus(Name=prov.BUS)["Arn"]
    discoverers = schemas.list_discoverers()["Discoverers"]
    mine = [d for d in discoverers if d["SourceArn"] == bus_arn]
    if not mine:
        return failed(f"No discoverer on the {prov.BUS} bus.", expected=f"a discoverer with SourceArn {bus_arn}",
                      actual="discoverers on: " + ", ".join(d["SourceArn"] for d in discoverers) if discoverers
                      else "no discoverer")
    if mine[0]["State"] != "STARTED":
        return failed(f"Discoverer {mine[0]['DiscovererId']} is {mine[0]['State']}.", expected="STARTED",
                      actual=mine[0]["State"],
                      hint=f"aws schemas start-discoverer --discoverer-id {mine[0]['DiscovererId']}")
    detail_type = f"Check Probe {ctx.unique('p').replace('-', ' ')}"
    name = "securecart.checks@" + "".join(p[:1].upper() + p[1:] for p in re.split(r"[^A-Za-z0-9]+", detail_type) if p)
    events.put_events(Entries=[{"EventBusName": prov.BUS, "Source": "securecart.checks", "DetailType": detail_type,
                                "Detail": json.dumps({"probeId": ctx.unique("probe"), "seenAt": "2026-01-01T00:00:00Z"})}])
    deadline, described = time.monotonic() + 10, None
    while described is None and time.monotonic() < deadline:
        try:
            described = schemas.describe_schema(RegistryName=DISCOVERED, SchemaName=name)
        except ClientError:
            time.sleep(0.2)
    if described is None:
        return failed(f"No schema {name} in {DISCOVERED} 10 s after an event of detail-type {detail_type!r}.",
                      expected=f"{DISCOVERED}/{name}", actual="none")
    try:
        schemas.delete_schema(RegistryName=DISCOVERED, SchemaName=name)
    except ClientError:
        pass
    others = [s["SchemaName"] for s in schemas.list_schemas(RegistryName=DISCOVERED)["Schemas"]
              if not s["SchemaName"].startswith("securecart.checks@")]
    return passed(f"Discoverer {mine[0]['DiscovererId']} wrote {name} for a new detail-type"
                  + (f"; discovered so far: {', '.join(others[:6])}" if others else ""))


# --- 2. Fraud detection -------------------------------------------------------------------------------------------

SUSPICIOUS = {
    "a total of $1,000 or more": {"totalCents": 150000},
    "a card issued outside the US": {"cardCountry": "GB"},
    "a guest checkout (no customerId)": {"customerId": None},
}


@check("fraud-routing", "Only suspicious orders start the fraud-check workflow", points=15, needs=NEEDS,
       hint="The fraud rule's pattern needs $or over three conditions: totalCents numeric >= 100000, cardCountry "
            "anything-but US, customerId exists false. Its target is the EXPRESS state machine, with a RoleArn.",
       more="The checks place one ordinary order and one order per suspicious trait through securecart-checkout, then "
            "read securecart-fraud-reviews: the fraud model records every order the workflow scored. Every suspicious "
            "order must be scored exactly once (two rules matching one order start two executions; one rule with $or "
            "starts one) and the ordinary one never.")
def fraud_routing(ctx):
    machine = _require_workflow(ctx)
    kind = ctx.aws("stepfunctions").describe_state_machine(stateMachineArn=machine).get("type")
    ordinary = _order(ctx)
    suspicious = {why: _order(ctx, **fields) for why, fields in SUSPICIOUS.items()}
    rules = _rules_starting(ctx, machine)
    refused_before = {rule: _failed_invocations(ctx, rule) for rule in rules}
    _checkout(ctx, [ordinary, *suspicious.values()])
    ids = [o["orderId"] for o in suspicious.values()]
    # An order EventBridge failed to deliver (FailedInvocations) is settled too: it will not be scored.
    _settle(lambda: (_reviews(ctx, ids), sum(_failed_invocations(ctx, r) - refused_before[r] for r in rules)),
            lambda found: len(found[0]) + found[1] >= len(ids))
    # Routing happens when checkout publishes; the ordinary order is settled once paid (or a moment later).
    _wait(lambda: _statuses(ctx, [ordinary["orderId"]]).get(ordinary["orderId"]) == "PAID", 3.0)
    reviews = _reviews(ctx, [*ids, ordinary["orderId"]])
    if ordinary["orderId"] in reviews:
        return failed("An ordinary order (a known customer, a US card, $25.00) was scored by the fraud model: the rule "
                      "that starts the workflow matches orders that are not suspicious.",
                      expected="no fraud check for an ordinary order", actual=f"{ordinary['orderId']} scored")
    missed = [why for why, order in suspicious.items() if order["orderId"] not in reviews]
    if missed:
        why = _why_unscreened(ctx, machine, rules, refused_before)
        return failed(f"Suspicious orders never reached the fraud model: the one with {', the one with '.join(missed)}."
                      + (f" {why}" if why else ""),
                      expected="every suspicious order scored", actual=f"{len(ids) - len(missed)} of {len(ids)} scored",
                      hint="Check the rule's pattern for each condition (aws events test-event-pattern tells you "
                           "whether an event matches), that its target is the state machine with a RoleArn allowed to "
                           "states:StartExecution, and the workflow's execution (securecart-lab trace 4).")
    twice = [why for why, order in suspicious.items() if reviews[order["orderId"]] > 1]
    if twice:
        return failed(f"An order was screened more than once: the one with {', the one with '.join(twice)}. Two rules "
                      "(or two targets) start the workflow for the same order.",
                      expected="each suspicious order scored once", actual="scored twice",
                      hint="Use one rule with $or instead of one rule per condition.")
    if kind != "EXPRESS":
        return failed(f"The fraud-check workflow is a {kind} state machine: a check at checkout volume that ends in "
                      "seconds is what EXPRESS workflows are for (cheaper, faster to start; STANDARD suits long "
                      "workflows).", expected="StateMachineType EXPRESS", actual=kind,
                      hint="Set StateMachineType: EXPRESS (changing it replaces the state machine) and deploy 4.")
    return passed(f"{len(ids)} suspicious orders scored once each; the ordinary order was not screened.")


_OPERATORS = {">", ">=", "<", "<=", "="}


def _rules_starting(ctx, machine: str) -> list[str]:
    """The enabled rules on the securecart bus with the state machine `machine` as a target."""
    events, found = ctx.aws("events"), []
    for rule in events.list_rules(EventBusName=KIT.BUS).get("Rules", []):
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=KIT.BUS)["Targets"]
        if rule.get("State") != "DISABLED" and any(target["Arn"] == machine for target in targets):
            found.append(rule["Name"])
    return found


def _operator_lists(pattern, path: str = "") -> list[str]:
    """Where a pattern holds a list like [">=", 100000]: a list of exact values, not the numeric filter it resembles."""
    found = []
    if isinstance(pattern, dict):
        for key, value in pattern.items():
            if key == "$or" and isinstance(value, list):
                for branch in value:
                    found += _operator_lists(branch, path)
            else:
                found += _operator_lists(value, f"{path}.{key}" if path else key)
    elif isinstance(pattern, list) and any(isinstance(v, str) and v in _OPERATORS for v in pattern) \
            and any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in pattern):
        found.append(f"{path}: {json.dumps(pattern)}")
    return found


def _why_unscreened(ctx, machine: str, rules: list[str], refused_before: dict[str, int]) -> str | None:
    """Why suspicious orders did not start the workflow, when the rules say so: a look-alike numeric filter, or
    EventBridge failing to start the workflow (the rule's FailedInvocations rose)."""
    if not rules:
        return (f"No enabled rule on the {KIT.BUS} bus has the state machine {machine.rsplit(':', 1)[1]} as its "
                "target.")
    for rule in rules:
        refused = _failed_invocations(ctx, rule) - refused_before.get(rule, 0)
        if refused > 0:
            return (f"EventBridge could not start the workflow: rule {rule}'s FailedInvocations rose by {refused} "
                    "(AWS/Events). Its target's role (RoleArn) must allow states:StartExecution on the state "
                    "machine; \"securecart-lab logs emulator\" shows the refusal.")
    for rule in rules:
        try:
            pattern = json.loads(ctx.aws("events").describe_rule(Name=rule, EventBusName=KIT.BUS)["EventPattern"])
        except (ClientError, KeyError, ValueError):
            continue
        lists = _operator_lists(pattern)
        if lists:
            return (f"Rule {rule}'s pattern has {lists[0]}: a list of exact values, which matches only those values "
                    '(the string ">=" or exactly that number), never a range. A range is a numeric filter: '
                    '[{"numeric": [">=", 100000]}].')
    return None


@check("fraud-boundaries", "An order of exactly $1,000 is screened, $999.99 is not, and nothing is paid before review",
       points=10, needs=NEEDS,
       hint='"At least $1,000" is {"numeric": [">=", 100000]} on totalCents (a number, in cents); the payment rule '
            'needs the exact complement, {"numeric": ["<", 100000]}.',
       more="At the threshold, exactly one of the two rules must match: an order matched by neither is never paid, "
            "one matched by both is charged before the fraud check has looked at it. A pattern value written as a "
            'string ("100000") matches only the string, never the number the event carries.')
def fraud_boundaries(ctx):
    _require_workflow(ctx)
    at = _order(ctx, totalCents=THRESHOLD)
    below = _order(ctx, totalCents=THRESHOLD - 1)
    _checkout(ctx, [at, below])
    ids = [at["orderId"], below["orderId"]]
    _settle(lambda: (_reviews(ctx, ids), _charges(ctx, ids)),
            lambda found: at["orderId"] in found[0] and len(found[1]) == 2)
    reviews, charges = _reviews(ctx, ids), _charges(ctx, ids)
    if at["orderId"] not in reviews:
        return failed(f"An order of exactly {_dollars(THRESHOLD)} (totalCents {THRESHOLD}) was not screened: the rule "
                      "says 'at least $1,000'.", expected=f"totalCents {THRESHOLD} screened", actual="not screened",
                      hint='Use {"numeric": [">=", 100000]} (not ">"), with the number 100000, not the string "100000".')
    if below["orderId"] in reviews:
        return failed(f"An order of {_dollars(THRESHOLD - 1)} was screened: the threshold is $1,000.",
                      expected=f"totalCents {THRESHOLD - 1} not screened", actual="screened")
    for order, label in ((below, _dollars(THRESHOLD - 1)), (at, _dollars(THRESHOLD))):
        found = charges.get(order["orderId"], [])
        if not found:
            return failed(f"The order of {label} was never charged: neither the payment rule nor the fraud workflow's "
                          "release sent it to the payment queue.", expected="charged once", actual="not charged",
                          hint='The payment rule matches the complement of the fraud rule: totalCents {"numeric": '
                               '["<", 100000]}, cardCountry ["US"], customerId {"exists": true}.')
        if sum(c["calls"] for c in found) > 1 or len(found) > 1:
            return failed(f"The order of {label} was sent to payment twice: both the payment rule and the fraud "
                          "workflow matched it.", expected="one payment request", actual=f"{sum(c['calls'] for c in found)}",
                          hint="At the boundary exactly one rule may match: fraud >= 100000, payment < 100000.")
    scored_at = int(_items(ctx, KIT.REVIEWS_TABLE, "orderId", [at["orderId"]])[at["orderId"]]["scoredAt"]["N"])
    if charges[at["orderId"]][0]["chargedAt"] < scored_at:
        return failed(f"The order of {_dollars(THRESHOLD)} was charged before the fraud check scored it.",
                      expected="charged after review", actual="charged first")
    return passed(f"{_dollars(THRESHOLD)} screened then paid once; {_dollars(THRESHOLD - 1)} paid without screening.")


HIGH_RISK = {"totalCents": 250000, "cardCountry": "NG", "shippingCountry": "US", "customerId": None}


@check("held-orders-not-charged", "A high-risk order is held (ON_HOLD, SuspiciousOrder event) and never charged",
       points=15, needs=NEEDS,
       hint="After ScoreOrder, a Choice on the score (>= 70): hold = DynamoDB UpdateItem status ON_HOLD on "
            "securecart-orders, then events:putEvents a SuspiciousOrder (source securecart.fraud); release = "
            "sqs:sendMessage to the payment queue. The payment rule must not match suspicious orders.",
       more="The check places a $2,500 guest order paid with a Nigerian card shipped to the US (score 100) beside an "
            "ordinary order. Once the ordinary order is paid, the held one must be ON_HOLD, never charged, and its "
            "SuspiciousOrder event must have been put on the securecart bus.")
def held_orders_not_charged(ctx):
    _require_workflow(ctx)
    risky, control = _order(ctx, **HIGH_RISK), _order(ctx)
    _checkout(ctx, [risky, control])  # the control order is queued after the risky one
    ids = [risky["orderId"], control["orderId"]]

    _settle(lambda: (_statuses(ctx, ids), _reviews(ctx, ids)),
            lambda found: found[0].get(control["orderId"]) == "PAID" and found[0].get(risky["orderId"]) != "PLACED")
    _payment_queue_drained(ctx)  # a charge of the risky order may still be on its way
    statuses, charges = _statuses(ctx, ids), _charges(ctx, ids)
    if risky["orderId"] in charges:
        return failed("A high-risk order (score 100) was charged: "
                      + ("the fraud workflow scored it, so either the payment rule also matches suspicious orders "
                         "(it must match only the complement of the fraud rule) or the workflow's Choice released it."
                         if risky["orderId"] in _reviews(ctx, ids) else "it was paid without a fraud check."),
                      expected="never charged", actual=f"status {statuses.get(risky['orderId'])}, charged",
                      hint="Narrow the payment rule to ordinary orders (the complement of the fraud rule), and make the "
                           "workflow's Choice send scores of 70 or more to the hold branch only.")
    if statuses.get(control["orderId"]) != "PAID":
        return failed("An ordinary order placed beside it was not paid either, so the check cannot tell whether the "
                      "high-risk one was held or just stuck.", expected="ordinary order PAID",
                      actual=f"status {statuses.get(control['orderId'])}",
                      hint="Fix the payment path first: the payment rule, queue, function and event source mapping "
                           "(securecart-lab check 4 --only payment-burst).")
    if statuses.get(risky["orderId"]) != "ON_HOLD":
        error = _workflow_error(ctx, risky["orderId"])
        why = f": its fraud check failed: {error}" if error else (
            ". Your workflow logs nothing, so the check cannot read why: give it a LoggingConfiguration (Level ALL, "
            "a log group) and run securecart-lab trace 4." if not _logs_executions(ctx) else ".")
        return failed("The high-risk order was not held" + why,
                      expected="status ON_HOLD in securecart-orders",
                      actual=f"status {statuses.get(risky['orderId'])}",
                      hint="The hold branch: arn:aws:states:::dynamodb:updateItem on securecart-orders, "
                           "SET #status = :held with :held = ON_HOLD (the role needs dynamodb:UpdateItem).")
    if not _wait(lambda: _suspicious_event(ctx, risky["orderId"]), 5.0):
        return failed("The order is ON_HOLD, but no SuspiciousOrder event for it reached the securecart bus.",
                      expected="a SuspiciousOrder event (source securecart.fraud)", actual="none",
                      hint="Add an arn:aws:states:::events:putEvents task after the hold (EventBusName securecart, "
                           "Source securecart.fraud, DetailType SuspiciousOrder); the role needs events:PutEvents.")
    return passed("The high-risk order is ON_HOLD, was never charged, and a SuspiciousOrder event was published.")


def _logs_executions(ctx) -> bool:
    from securecart_lab import trace

    try:
        return trace.log_group_of(ctx.aws("stepfunctions").describe_state_machine(
            stateMachineArn=_require_workflow(ctx))) is not None
    except (ClientError, LabError):
        return False


def _payment_queue_drained(ctx) -> None:
    """Wait (up to SETTLE_SECONDS) until the payment queue has nothing waiting or in flight, when there is one."""
    try:
        url = _payment_path(ctx)[0]
    except (LabError, ClientError):
        return
    _wait(lambda: _queue_empty(ctx, url), SETTLE_SECONDS)


def _workflow_error(ctx, order_id: str) -> str | None:
    """Why the fraud workflow's execution for `order_id` failed, read from its execution log (an EXPRESS workflow's
    history is its log); None when it did not fail or logs nothing."""
    try:
        machine = ctx.aws("stepfunctions").describe_state_machine(stateMachineArn=_require_workflow(ctx))
        arn = machine["loggingConfiguration"]["destinations"][0]["cloudWatchLogsLogGroup"]["logGroupArn"]
        group = arn.split(":log-group:", 1)[1].removesuffix(":*")
        logs = ctx.aws("logs")
        mentions = logs.filter_log_events(logGroupName=group, filterPattern=f'"{order_id}"')["events"]
        executions = {json.loads(e["message"]).get("execution_arn") for e in mentions}
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern='"ExecutionFailed"'):
            for event in page["events"]:
                record = json.loads(event["message"])
                if record.get("type") == "ExecutionFailed" and record.get("execution_arn") in executions:
                    details = record.get("details") or {}
                    return f"{details.get('error')}: {str(details.get('cause'))[:300]}"
    except (ClientError, KeyError, IndexError, ValueError, LabError):
        return None
    return None


def _suspicious_event(ctx, order_id: str) -> bool:
    try:
        events = ctx.aws("logs").filter_log_events(logGroupName=KIT.OBSERVER_LOG_GROUP,
                                                   filterPattern=f'"{order_id}"')["events"]
    except ClientError:
        return False
    for event in events:
        try:
            message = json.loads(event["message"])
        except ValueError:
            continue
        if message.get("detail-type") == "SuspiciousOrder" and (message.get("detail") or {}).get("orderId") == order_id:
            return True
    return False


# --- 3. Compliance forwarding -------------------------------------------------------------------------------------
# The checks put their own payment events (source securecart.payments, their own payment ids) on the securecart bus
# and read the security account's log group with the security account's credentials.

PAYMENT_TYPES = ("PaymentAuthorized", "PaymentCaptured", "PaymentRefunded")
ARRIVAL_SECONDS = 5.0  # delivery runs while PutEvents answers; this covers a retry or two
OPEN_PRINCIPALS = ("*", "arn:aws:iam::*:root")


def _security(ctx, service: str):
    return ctx.aws(service, SECURITY_ACCOUNT_ID)


def _compliance_bus(ctx) -> dict:
    try:
        return _security(ctx, "events").describe_event_bus(Name=KIT.COMPLIANCE_BUS)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
            raise
    raise LabError(f"Expected the event bus {KIT.COMPLIANCE_BUS} in the security account ({SECURITY_ACCOUNT_ID}), "
                   "found none.", 'security.yaml declares it: run "securecart-lab deploy 4", which deploys security.yaml '
                   "into the security account first.")


def _forwarding_rules(ctx, bus_arn: str) -> list[str]:
    """The rules of SecureCart's securecart bus with a target that is the compliance bus."""
    events = ctx.aws("events")
    found = []
    for page in events.get_paginator("list_rules").paginate(EventBusName=KIT.BUS):
        for rule in page["Rules"]:
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=KIT.BUS)["Targets"]
            if any(target["Arn"] == bus_arn for target in targets) and rule.get("State") != "DISABLED":
                found.append(rule["Name"])
    return found


def _failed_invocations(ctx, rule: str, account: str | None = None) -> int:
    """The rule's AWS/Events FailedInvocations over the last hour."""
    cloudwatch = ctx.aws("cloudwatch", account) if account else ctx.aws("cloudwatch")
    now = datetime.now(timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/Events", MetricName="FailedInvocations", Dimensions=[{"Name": "RuleName", "Value": rule}],
        StartTime=now - timedelta(hours=1), EndTime=now + timedelta(minutes=1), Period=3600, Statistics=["Sum"])
    return int(sum(point["Sum"] for point in points["Datapoints"]))


def _put_payments(ctx, detail_types) -> dict[str, str]:
    """Put one payment event per detail type, each with the check's own payment id; payment id -> event id."""
    entries = [{"Source": KIT.PAYMENTS_SOURCE, "DetailType": detail_type, "EventBusName": KIT.BUS,
                "Detail": json.dumps({"paymentId": ctx.unique("chk4-pay"), "orderId": ctx.unique("chk4"),
                                      "amountCents": 2500, "currency": "USD"})}
               for detail_type in detail_types]
    answer = ctx.aws("events").put_events(Entries=entries)
    if answer.get("FailedEntryCount"):
        raise LabError(f"PutEvents refused the check's payment events: {answer['Entries']}",
                       'Run "securecart-lab start 4" to set the lab up again.')
    return {json.loads(entry["Detail"])["paymentId"]: result["EventId"]
            for entry, result in zip(entries, answer["Entries"])}


def _arrivals(ctx, payments: dict[str, str]) -> dict[str, int]:
    """payment id -> how many times it is in the security account's log group (EventBridge writes each event to a
    stream named after the event's id)."""
    logs = _security(ctx, "logs")
    counts = {}
    for payment, event_id in payments.items():
        try:
            found = logs.get_log_events(logGroupName=KIT.COMPLIANCE_LOG_GROUP, logStreamName=event_id,
                                        startFromHead=True)["events"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            found = []
        counts[payment] = sum(1 for event in found if payment in event["message"])
    return counts


def _delivered(ctx, payments: dict[str, str]) -> dict[str, int]:
    _wait(lambda: all(_arrivals(ctx, payments).values()), ARRIVAL_SECONDS)
    time.sleep(0.5)  # a second copy (two rules, two targets) would be there by now
    return _arrivals(ctx, payments)


def _matches(ctx, rule: str, detail_type: str) -> bool:
    events = ctx.aws("events")
    pattern = events.describe_rule(Name=rule, EventBusName=KIT.BUS).get("EventPattern")
    if not pattern:
        return False
    sample = {"id": "1", "account": ACCOUNT_ID, "source": KIT.PAYMENTS_SOURCE, "time": "2026-01-01T00:00:00Z",
              "region": "us-east-1", "resources": [], "detail-type": detail_type,
              "detail": {"paymentId": "p", "orderId": "o", "amountCents": 2500, "currency": "USD"}}
    return events.test_event_pattern(EventPattern=pattern, Event=json.dumps(sample))["Result"]


def _roles_denied(ctx, rules: list[str], bus_arn: str) -> list[str]:
    """The roles of forwarding targets that may not events:PutEvents on the compliance bus (IAM's simulator)."""
    events, iam = ctx.aws("events"), ctx.aws("iam")
    denied = []
    for rule in rules:
        for target in events.list_targets_by_rule(Rule=rule, EventBusName=KIT.BUS)["Targets"]:
            role = target.get("RoleArn")
            if target["Arn"] != bus_arn or not role:
                continue
            try:
                result = iam.simulate_principal_policy(PolicySourceArn=role, ActionNames=["events:PutEvents"],
                                                       ResourceArns=[bus_arn])["EvaluationResults"][0]
            except ClientError:
                denied.append(role)  # a role that does not exist cannot put anything
                continue
            if result["EvalDecision"] != "allowed":
                denied.append(role)
    return denied


def _why_missing(ctx, rules: list[str], before: dict[str, int], missing_types: list[str]) -> str:
    rose = {rule: _failed_invocations(ctx, rule) - before[rule] for rule in rules}
    rose = {rule: count for rule, count in rose.items() if count > 0}
    if rose:
        rule, count = next(iter(rose.items()))
        denied = _roles_denied(ctx, rules, _compliance_bus(ctx)["Arn"])
        if denied:
            return (f"EventBridge dropped them: rule {rule}'s FailedInvocations rose by {count}, and its target's role "
                    f"{denied[0]} may not events:PutEvents on {KIT.COMPLIANCE_BUS} (IAM denies it): allow that "
                    "action on the bus's ARN in the role's policy.")
        return (f"EventBridge dropped them: rule {rule}'s FailedInvocations rose by {count}. The bus "
                f"{KIT.COMPLIANCE_BUS} must let SecureCart's account ({ACCOUNT_ID}) put events (its resource policy, "
                "security.yaml), and the rule's role must allow events:PutEvents on it.")
    unmatched = [t for t in missing_types if not any(_matches(ctx, rule, t) for rule in rules)]
    if unmatched:
        return (f"No forwarding rule's pattern matches {', '.join(unmatched)} events: forward every "
                f"{KIT.PAYMENTS_SOURCE} event (\"source\": [\"{KIT.PAYMENTS_SOURCE}\"]), whatever its detail-type.")
    archive = _archive_rules(ctx)
    if not archive:
        return (f"They reached nothing in the security account: no rule of {KIT.COMPLIANCE_BUS} has the log group "
                f"{KIT.COMPLIANCE_LOG_GROUP} as its target (security.yaml).")
    refused = [rule for rule in archive if _failed_invocations(ctx, rule, SECURITY_ACCOUNT_ID)]
    if refused:
        return (f"The security account's rule {refused[0]} failed to write them: CloudWatch Logs lets EventBridge "
                f"write to {KIT.COMPLIANCE_LOG_GROUP} only with a resource policy (AWS::Logs::ResourcePolicy) "
                "allowing events.amazonaws.com logs:CreateLogStream and logs:PutLogEvents on the group.")
    return (f"Check that a rule of {KIT.COMPLIANCE_BUS} matches events from account {ACCOUNT_ID} and writes to "
            f"{KIT.COMPLIANCE_LOG_GROUP}.")


def _archive_rules(ctx) -> list[str]:
    events = _security(ctx, "events")
    group_arn = f"arn:aws:logs:{events.meta.region_name}:{SECURITY_ACCOUNT_ID}:log-group:{KIT.COMPLIANCE_LOG_GROUP}"
    found = []
    for rule in events.list_rules(EventBusName=KIT.COMPLIANCE_BUS)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=KIT.COMPLIANCE_BUS)["Targets"]
        if any(target["Arn"].split(":*")[0] == group_arn for target in targets):
            found.append(rule["Name"])
    return found


@check("compliance-delivery", "Every payment event reaches the security account's log group, once",
       points=10, needs=("events", "logs", "cloudwatch"),
       hint="In section 3 of template.yaml, add a rule on the securecart bus matching every securecart.payments event, "
            "with the security account's bus (arn:aws:events:us-east-1:222222222222:event-bus/securecart-compliance) "
            "as its target and a role that may events:PutEvents on it; in security.yaml, let SecureCart's account put "
            "events on that bus. Then deploy 4.",
       more="The check puts one PaymentAuthorized, one PaymentCaptured and one PaymentRefunded event (source "
            "securecart.payments, its own payment ids) on the securecart bus, then reads /securecart/compliance with "
            "the security account's credentials (securecart-lab env --account security): each must be there exactly "
            "once. On AWS, as here, an event the target bus refuses is dropped, and the forwarding rule's "
            "FailedInvocations metric (AWS/Events, RuleName) counts it.")
def compliance_delivery(ctx):
    bus = _compliance_bus(ctx)
    rules = _forwarding_rules(ctx, bus["Arn"])
    if not rules:
        return failed(f"No enabled rule on the {KIT.BUS} bus sends events to the security account's bus.",
                      expected=f"a rule on {KIT.BUS} with the target {bus['Arn']}", actual="none")
    before = {rule: _failed_invocations(ctx, rule) for rule in rules}
    payments = _put_payments(ctx, PAYMENT_TYPES)
    types = dict(zip(payments, PAYMENT_TYPES))
    counts = _delivered(ctx, payments)
    missing = [p for p, n in counts.items() if n == 0]
    repeated = {p: n for p, n in counts.items() if n > 1}
    expected = f"{len(payments)} payment events, each once in {KIT.COMPLIANCE_LOG_GROUP} (security account)"
    if missing:
        kinds = [types[p] for p in missing]
        return failed(f"{len(missing)} of {len(payments)} payment events never reached {KIT.COMPLIANCE_LOG_GROUP} "
                      f"({', '.join(kinds)}). " + _why_missing(ctx, rules, before, kinds),
                      expected=expected, actual=f"{len(payments) - len(missing)} arrived")
    if repeated:
        return failed(f"Payment events arrived more than once ({', '.join(f'{types[p]}: {n} times' for p, n in repeated.items())}): "
                      f"the forwarding rules {', '.join(rules)} (or their targets) send each event more than once, "
                      "and compliance would count every payment twice.",
                      expected=expected, actual=f"duplicates, forwarded by {', '.join(rules)}")
    return passed(f"{len(payments)} of {len(payments)} payment events arrived once each in "
                  f"{KIT.COMPLIANCE_LOG_GROUP}, forwarded by {', '.join(rules)}.")


def _principals(statement: dict) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, dict):
        values = principal.get("AWS", [])
        return [str(v) for v in (values if isinstance(values, list) else [values])]
    return []


def _names_securecart(value: str) -> bool:
    return value in (ACCOUNT_ID, f"arn:aws:iam::{ACCOUNT_ID}:root") or value.startswith(f"arn:aws:iam::{ACCOUNT_ID}:")


def _allows_put_events(statement: dict) -> bool:
    actions = statement.get("Action", [])
    actions = actions if isinstance(actions, list) else [actions]
    return statement.get("Effect") == "Allow" and any(a in ("events:PutEvents", "events:*", "*") for a in actions)


@check("compliance-policy", "The compliance bus lets SecureCart's account in, and only it",
       points=10, needs=("events", "cloudwatch"),
       hint="In security.yaml, give the securecart-compliance bus a resource policy (AWS::Events::EventBusPolicy, or "
            "the bus's Policy) allowing events:PutEvents to SecureCart's account: Principal "
            "{\"AWS\": \"arn:aws:iam::123456789012:root\"}, never \"*\". Then deploy 4.",
       more="An event bus accepts events from its own account only, unless its resource policy names others. A "
            "policy with Principal \"*\" lets every AWS account write to the security account's compliance log; one "
            "naming another account (or with conditions that exclude the payment events) makes EventBridge drop "
            "SecureCart's events, which the forwarding rule's FailedInvocations metric shows.")
def compliance_policy(ctx):
    bus = _compliance_bus(ctx)
    policy = json.loads(bus.get("Policy") or "{}")
    statements = [s for s in (policy.get("Statement") or []) if isinstance(s, dict) and _allows_put_events(s)]
    expected = f"a statement allowing events:PutEvents to {ACCOUNT_ID} (SecureCart), none to *"
    open_to_all = [s.get("Sid", "?") for s in statements if any(p in OPEN_PRINCIPALS for p in _principals(s))]
    if open_to_all:
        return failed(f"The policy of {KIT.COMPLIANCE_BUS} lets every AWS account put events on it (statement "
                      f"{open_to_all[0]}, Principal \"*\"): anyone could write to the compliance log.",
                      expected=expected, actual=f"Principal \"*\" in statement {open_to_all[0]}")
    names = [s for s in statements if any(_names_securecart(p) for p in _principals(s))]
    rules = _forwarding_rules(ctx, bus["Arn"])
    dropped = _probe(ctx, rules) if rules else None
    if not names:
        found = "no resource policy" if not policy else \
            f"principals {sorted({p for s in statements for p in _principals(s)}) or 'none allowing events:PutEvents'}"
        why = f" {dropped}" if dropped else ""
        return failed(f"The policy of {KIT.COMPLIANCE_BUS} does not name SecureCart's account ({ACCOUNT_ID}): only "
                      f"{'the security account itself' if not policy else 'the accounts it names'} may put events "
                      f"on it.{why}", expected=expected, actual=found)
    if dropped and _roles_denied(ctx, rules, bus["Arn"]):
        return passed(f"{KIT.COMPLIANCE_BUS} accepts events from {ACCOUNT_ID} (statement {names[0].get('Sid', '?')}) "
                      "and from no one else. (Events are still dropped, by the forwarding rule's role: "
                      "compliance-delivery says why.)")
    if dropped:
        return failed(f"The policy of {KIT.COMPLIANCE_BUS} names SecureCart's account, but SecureCart's payment events "
                      f"are still refused: {dropped} Look at its conditions, and at the forwarding rule's role.",
                      expected=expected, actual=dropped)
    return passed(f"{KIT.COMPLIANCE_BUS} accepts events from {ACCOUNT_ID} (statement {names[0].get('Sid', '?')}) and "
                  "from no one else.")


def _probe(ctx, rules: list[str]) -> str | None:
    """Put one payment event; if a forwarding rule's FailedInvocations rises, say so (else None)."""
    before = {rule: _failed_invocations(ctx, rule) for rule in rules}
    _put_payments(ctx, PAYMENT_TYPES[:1])
    rose = _wait(lambda: {r: n - before[r] for r in rules if (n := _failed_invocations(ctx, r)) > before[r]}, 1.0)
    if not rose:
        return None
    rule, count = next(iter(rose.items()))
    return (f"The forwarding rule {rule}'s FailedInvocations rose by {count} for the check's payment event: "
            "EventBridge dropped it.")


# --- 4. Payment queue ---------------------------------------------------------------------------------------------

BURST = 200
DUPLICATES = 10
DRAIN_SECONDS = 90.0


def _payment_path(ctx) -> tuple[str, dict, str | None, dict]:
    """(queue url, its attributes, its dead-letter queue url or None, the event source mapping) of the stack."""
    sqs, lam = ctx.aws("sqs"), ctx.aws("lambda")
    mappings = []
    for uuid in _of_type(ctx, "AWS::Lambda::EventSourceMapping"):
        try:
            mappings.append(lam.get_event_source_mapping(UUID=uuid))
        except ClientError:
            continue
    sqs_mappings = [m for m in mappings if ":sqs:" in m.get("EventSourceArn", "")]
    if not sqs_mappings:
        raise LabError("Expected an event source mapping from the payment queue to the payment function in section 4, "
                       "found none.", "Add an AWS::Lambda::EventSourceMapping (EventSourceArn: the queue's Arn, "
                                      "FunctionName: the payment function) and deploy 4.")
    mapping = sqs_mappings[0]
    queue_name = mapping["EventSourceArn"].rsplit(":", 1)[1]
    url = sqs.get_queue_url(QueueName=queue_name)["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    dlq = None
    if attributes.get("RedrivePolicy"):
        target = json.loads(attributes["RedrivePolicy"]).get("deadLetterTargetArn", "")
        try:
            dlq = sqs.get_queue_url(QueueName=target.rsplit(":", 1)[1])["QueueUrl"]
        except ClientError:
            dlq = None
    return url, attributes, dlq, mapping


@check("payment-burst", f"A burst of {BURST} orders drains: none lost, none charged twice", points=15, needs=NEEDS,
       hint="Pass an idempotency key (the orderId) to the gateway: SQS delivers at least once, and a retried batch or a "
            "re-published event must not charge again.",
       more=f"The check places {BURST} ordinary orders through checkout at once, then publishes {DUPLICATES} of their "
            "OrderPlaced events a second time (as a retried publisher does). Every order must end PAID with exactly one "
            "charge at the gateway, none left in the queues. It reports the throughput and checkout-to-charge latency.")
def payment_burst(ctx):
    url, _, dlq, _ = _payment_path(ctx)
    orders = [_order(ctx, totalCents=1000 + n) for n in range(BURST)]
    ids = [o["orderId"] for o in orders]
    began = time.monotonic()
    _checkout(ctx, orders)
    duplicates = [{"EventBusName": KIT.BUS, "Source": KIT.ORDER_SOURCE, "DetailType": "OrderPlaced",
                   "Detail": json.dumps({**o, "placedAt": "retry"})} for o in orders[:DUPLICATES]]
    ctx.aws("events").put_events(Entries=duplicates)
    paid = _wait(lambda: _count_paid(ctx, ids) == len(ids), DRAIN_SECONDS, interval=0.5)
    drained = time.monotonic() - began
    charges = _charges(ctx, ids)
    twice = {i: c for i, c in charges.items() if len(c) > 1}
    if twice:
        example, found = next(iter(twice.items()))
        return failed(f"{len(twice)} of {BURST} orders were charged more than once (e.g. {example}: {len(found)} charges).",
                      expected="one charge per order", actual=f"{len(twice)} charged twice",
                      hint="Send idempotencyKey = the orderId with each gateway request: the gateway then answers a "
                           "repeated request with the first charge instead of charging again.")
    missing = [i for i in ids if i not in charges]
    if missing:
        depth = _depths(ctx, url, dlq)
        return failed(f"{len(missing)} of {BURST} orders were not charged within {DRAIN_SECONDS:.0f} s ({depth}).",
                      expected=f"{BURST} orders charged", actual=f"{BURST - len(missing)} charged",
                      hint="See the function's log (securecart-lab logs lambda securecart-process-payment): a failing "
                           "message, a missing permission on its role, or a mapping that is disabled.")
    if not paid:
        return failed(f"Every order was charged, but {BURST - _count_paid(ctx, ids)} are not marked PAID in "
                      "securecart-orders.", expected="status PAID", actual="another status",
                      hint="After the charge, set status = PAID on the order (dynamodb:UpdateItem on securecart-orders).")
    placed = {i: int(item["placedAtMs"]["N"]) for i, item in _items(ctx, KIT.ORDERS_TABLE, "orderId", ids).items()
              if "placedAtMs" in item}
    latencies = sorted(charges[i][0]["chargedAt"] - placed[i] for i in ids if i in placed)
    p50 = statistics.median(latencies) / 1000
    p95 = latencies[int(len(latencies) * 0.95) - 1] / 1000
    return passed(f"{BURST} orders charged once each in {drained:.1f} s ({BURST / drained:.0f} orders/s); checkout to "
                  f"charge p50 {p50:.2f} s, p95 {p95:.2f} s; {DUPLICATES} re-published events charged nothing.")


def _count_paid(ctx, ids: list[str]) -> int:
    return sum(1 for status in _statuses(ctx, ids).values() if status == "PAID")


def _depths(ctx, url: str, dlq: str | None) -> str:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    sqs = ctx.aws("sqs")
    queue = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    text = f"{queue[names[0]]} waiting and {queue[names[1]]} in flight in the queue"
    if dlq:
        text += f", {sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=names[:1])['Attributes'][names[0]]} in its DLQ"
    return text


@check("payment-poison-dlq", "A poison message lands in the DLQ after maxReceiveCount receives; the rest of its batch "
       "is paid", points=15, needs=NEEDS,
       hint="A RedrivePolicy on the payment queue (deadLetterTargetArn, maxReceiveCount), FunctionResponseTypes: "
            "[ReportBatchItemFailures] on the mapping, and a function that returns {\"batchItemFailures\": "
            "[{\"itemIdentifier\": messageId}]} for each message it could not process instead of raising.",
       more="The check places 4 ordinary orders and one the gateway can never accept (card token tok_corrupt) in one "
            "checkout. The 4 must be charged once each; the poison message must fail alone, come back after each "
            "visibility timeout, and move to the dead-letter queue after maxReceiveCount receives.")
def payment_poison_dlq(ctx):
    url, attributes, dlq, mapping = _payment_path(ctx)
    if dlq is None:
        return failed("The payment queue has no dead-letter queue: a message that always fails comes back forever "
                      "(until its retention period ends) and is never looked at.",
                      expected="RedrivePolicy with deadLetterTargetArn", actual="no RedrivePolicy",
                      hint="Add an AWS::SQS::Queue for the dead letters and RedrivePolicy: {deadLetterTargetArn: "
                           "!GetAtt PaymentDeadLetterQueue.Arn, maxReceiveCount: 3} on the payment queue.")
    max_receives = int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
    visibility = int(attributes.get("VisibilityTimeout", 30))
    budget = max_receives * visibility + 15
    if budget > 120:
        return failed(f"With VisibilityTimeout {visibility} s and maxReceiveCount {max_receives}, a poison message "
                      f"needs about {max_receives * visibility} s to reach the DLQ; this check waits at most 105 s.",
                      expected="maxReceiveCount x VisibilityTimeout <= 105 s", actual=f"{max_receives * visibility} s",
                      hint="The README's values: function Timeout 10, VisibilityTimeout 12, maxReceiveCount 2.")
    good = [_order(ctx) for _ in range(4)]
    poison = _order(ctx, cardToken="tok_corrupt")
    _checkout(ctx, [*good, poison])
    good_ids = [o["orderId"] for o in good]
    deadline = time.monotonic() + budget
    found = None
    while time.monotonic() < deadline:
        found = _in_dlq(ctx, dlq, poison["orderId"])
        if found:
            break
        charged = _charges(ctx, good_ids)
        if len(charged) == len(good) and _queue_empty(ctx, url):
            found = _in_dlq(ctx, dlq, poison["orderId"])
            if not found:
                reports = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
                return failed("The poison message was deleted from the queue without reaching the dead-letter queue: "
                              + ("your function reported success for it (catch the error and list the message in "
                                 "batchItemFailures)." if reports else
                                 "the mapping does not have FunctionResponseTypes: [ReportBatchItemFailures], so the "
                                 "batchItemFailures your function returns are ignored and the whole batch counts as "
                                 "processed."),
                              expected="the poison message in the DLQ", actual="deleted after processing")
            break
        time.sleep(0.3)
    charges = _charges(ctx, good_ids)
    unpaid = [i for i in good_ids if i not in charges]
    if not found:
        return failed(f"The poison message did not reach the dead-letter queue within {budget} s.",
                      expected=f"in the DLQ after {max_receives} receives", actual=_depths(ctx, url, dlq))
    if unpaid:
        return failed(f"{len(unpaid)} of the 4 good orders in the poison message's batch were not paid: when one message "
                      "fails, the function fails the whole batch.", expected="4 charged", actual=f"{4 - len(unpaid)}",
                      hint="Catch the error per message and return it in batchItemFailures; let the others succeed.")
    if any(len(c) > 1 for c in charges.values()):
        return failed("A good order of the poison message's batch was charged twice: the batch was retried because of "
                      "the poison message.", expected="one charge each", actual="charged twice",
                      hint="Report failures per message (ReportBatchItemFailures), and pass an idempotency key.")
    # The DLQ keeps the message's receive count; the check's own receive from the DLQ added one.
    receives = int(found.get("Attributes", {}).get("ApproximateReceiveCount", max_receives + 1)) - 1
    return passed(f"The poison message moved to the DLQ after {receives} receives (maxReceiveCount {max_receives}); the 4 "
                  "other orders were charged once each.")


def _queue_empty(ctx, url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = ctx.aws("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(int(attributes[n]) == 0 for n in names)


def _in_dlq(ctx, dlq: str, order_id: str) -> dict | None:
    """The check's own message for `order_id` in the DLQ (deleted once found: it is the check's test data). The
    others it receives on the way are made visible again at the end."""
    sqs = ctx.aws("sqs")
    seen: dict[str, str] = {}
    try:
        while True:
            messages = sqs.receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, VisibilityTimeout=20,
                                           AttributeNames=["All"]).get("Messages", [])
            if not messages:
                return None
            for message in messages:
                if order_id in message["Body"]:
                    sqs.delete_message(QueueUrl=dlq, ReceiptHandle=message["ReceiptHandle"])
                    return message
                seen[message["MessageId"]] = message["ReceiptHandle"]
    finally:
        for handle in seen.values():
            try:
                sqs.change_message_visibility(QueueUrl=dlq, ReceiptHandle=handle, VisibilityTimeout=0)
            except ClientError:
                pass


@check("payment-visibility", "The payment queue's visibility timeout is longer than the function's timeout",
       points=10, needs=NEEDS,
       hint="The queue's VisibilityTimeout must exceed the payment function's Timeout (AWS recommends six times it), "
            "or a batch still being processed is delivered again to another invocation.",
       more="While a batch runs, its messages are invisible for the queue's visibility timeout. If the function may run "
            "longer, the messages reappear and the event source mapping hands them to a second invocation: the same "
            "payment is processed twice at once. The check measures it with an order whose card the gateway answers "
            "slowly, when the timeouts allow.")
def payment_visibility(ctx):
    url, attributes, _, mapping = _payment_path(ctx)
    visibility = int(attributes.get("VisibilityTimeout", 30))
    function = ctx.aws("lambda").get_function_configuration(FunctionName=mapping["FunctionArn"])
    timeout = int(function.get("Timeout", 3))
    name = function["FunctionName"]
    if visibility >= timeout:
        advice = "" if visibility >= 6 * timeout else f" (AWS recommends at least 6 x the timeout, {6 * timeout} s, to " \
                                                       "leave room for retries when the function is throttled)"
        return passed(f"VisibilityTimeout {visibility} s >= {name}'s Timeout {timeout} s{advice}.")
    measured = ""
    slow = visibility + 1.5
    if slow < timeout and slow <= 10:
        order = _order(ctx, cardToken=f"tok_slow_{slow:g}")
        _checkout(ctx, [order])
        _wait(lambda: sum(c["calls"] for c in _charges(ctx, [order["orderId"]]).get(order["orderId"], [])) > 1,
              slow + visibility + 5)
        calls = sum(c["calls"] for c in _charges(ctx, [order["orderId"]]).get(order["orderId"], []))
        measured = (f" Measured: an order whose payment took {slow:g} s reached the gateway {calls} times"
                    f"{' (its idempotency key kept it to one charge)' if calls > 1 else ''}.")
    return failed(f"The payment queue's VisibilityTimeout ({visibility} s) is shorter than {name}'s Timeout ({timeout} s): "
                  f"a batch that runs longer than {visibility} s becomes visible again while it is being processed, and "
                  f"the event source mapping delivers it to a second invocation.{measured}",
                  expected=f"VisibilityTimeout >= {timeout} s", actual=f"{visibility} s",
                  hint=f"Raise the queue's VisibilityTimeout (AWS recommends 6 x the function timeout, {6 * timeout} s), "
                       "or lower the function's Timeout.")
