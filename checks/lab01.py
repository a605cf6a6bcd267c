"""Lab 1 checks: each places its own orders (ids "ord-check-...") on its own test SKUs and observes what the
learner's state machine and rules do with them."""

from __future__ import annotations

import contextlib
import json
import re
import time

from botocore.exceptions import ClientError

from securecart_lab import paths
from securecart_lab import trace as tracing
from securecart_lab.checking import check, failed, passed

SFN = {"stepfunctions", "lambda", "dynamodb"}
EXECUTION_TIMEOUT = 25.0


# --- helpers -----------------------------------------------------------------------------------------------------


def _prov(ctx):
    return ctx.lab.provisioner()


def _schema(name: str) -> dict:
    return json.loads((paths.seed_dir() / "events" / f"{name}.schema.json").read_text())


def _schema_errors(name: str, document: dict) -> list[str]:
    from jsonschema import Draft202012Validator

    return [f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
            for e in Draft202012Validator(_schema(name)).iter_errors(document)]


def _machine(ctx) -> dict | None:
    try:
        return ctx.aws("stepfunctions").describe_state_machine(stateMachineArn=_prov(ctx).state_machine_arn(ctx))
    except ClientError:
        return None


@contextlib.contextmanager
def _test_sku(ctx, stock: int, threshold: int = 5):
    """A SKU of the check's own in the inventory table, removed afterwards."""
    prov = _prov(ctx)
    sku = ctx.unique("SC-TEST").upper()
    table = ctx.aws("dynamodb")
    table.put_item(TableName=prov.INVENTORY_TABLE, Item={
        "sku": {"S": sku}, "stock": {"N": str(stock)}, "low_stock_threshold": {"N": str(threshold)}})
    try:
        yield sku
    finally:
        table.delete_item(TableName=prov.INVENTORY_TABLE, Key={"sku": {"S": sku}})


def _order(ctx, items: list, token: str = "tok_visa_ok") -> dict:
    return {
        "orderId": ctx.unique("ord-check"),
        "customerEmail": "checks@securecart.example",
        "items": items,
        "totalCents": 1999 * sum(i.get("quantity", 0) for i in items),
        "cardToken": token,
    }


def _wait(ctx, execution_arn: str, timeout: float = EXECUTION_TIMEOUT) -> dict:
    """describe_execution once the execution has stopped (polled, starting fast)."""
    sfn = ctx.aws("stepfunctions")
    deadline, delay = time.monotonic() + timeout, 0.02
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(delay)
        delay = min(delay * 1.5, 0.25)


def _run(ctx, order: dict) -> dict:
    """Start the learner's state machine with `order` as input (named after the order) and wait for it."""
    sfn = ctx.aws("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=_prov(ctx).state_machine_arn(ctx), name=order["orderId"],
                              input=json.dumps(order))["executionArn"]
    return _wait(ctx, arn)


def _history(ctx, execution_arn: str) -> list[dict]:
    return tracing.history(ctx.aws("stepfunctions"), execution_arn)


def _ended(described: dict) -> str:
    """"FAILED (PaymentGatewayTimeout: message)": the status, and the error of a failed execution."""
    text = described["status"]
    if described.get("error"):
        cause = described.get("cause") or ""
        try:
            cause = json.loads(cause).get("errorMessage", cause)
        except (ValueError, AttributeError):
            pass
        cause = re.sub(r"\s*\(Service: [^)]*\)\s*$", "", str(cause))  # AWS's request details say nothing here
        if len(cause) > 300:  # cut on a word, never inside the action or resource a denial names
            cause = cause[:300].rsplit(" ", 1)[0] + " …"
        text += f" ({described['error']}: {cause})"
    return text


def _matching_rules(ctx, source: str, detail_type: str) -> list[str]:
    """Names of the enabled rules on the bus that may match such an event. Conservative: only plain string values
    of "source" and "detail-type" rule a rule out (moto has no TestEventPattern to ask)."""
    def may_match(pattern: dict, key: str, value: str) -> bool:
        wanted = pattern.get(key)
        if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
            return True
        return value in wanted

    names = []
    for rule in ctx.aws("events").list_rules(EventBusName=_prov(ctx).BUS).get("Rules", []):
        pattern = json.loads(rule.get("EventPattern") or "{}")
        if (rule.get("State", "ENABLED") == "ENABLED" and may_match(pattern, "source", source)
                and may_match(pattern, "detail-type", detail_type)):
            names.append(rule["Name"])
    return names


def _near_misses(ctx, source: str, detail_type: str) -> str:
    """What the learner's rules almost match: the `actual` of a failed "no matching rule" check."""
    bus = _prov(ctx).BUS
    events = ctx.aws("events")
    notes, others = [], []
    for rule in events.list_rules(EventBusName=bus).get("Rules", []):
        pattern = json.loads(rule.get("EventPattern") or "{}")
        wrong, near = [], False
        for key, value in (("source", source), ("detail-type", detail_type)):
            wanted = pattern.get(key)
            if isinstance(wanted, list) and all(isinstance(w, str) for w in wanted) and value not in wanted:
                close = any(_squash(w) == _squash(value) for w in wanted)
                near = near or close
                wrong.append(f'"{key}": {json.dumps(wanted)}' + (f' (the event says "{value}": spelling matters, '
                                                                  "exactly)" if close else f' (the event says "{value}")'))
            else:
                near = True  # this key lets the event through: the rule is meant for it
        for key in pattern:
            if key not in ("source", "detail-type", "detail", "account", "region", "resources", "id", "time", "version"):
                wrong.append(f'unknown key "{key}" (the envelope has "source", "detail-type", "detail", ...)')
        if not wrong and rule.get("State", "ENABLED") != "ENABLED":
            notes.append(f"rule {rule['Name']} would match but is {rule['State']}")
        elif wrong and near:
            notes.append(f"rule {rule['Name']} has " + "; ".join(wrong))
        elif wrong:
            others.append(f"{rule['Name']} ({', '.join(json.dumps(pattern.get(k)) for k in ('source', 'detail-type'))})")
    if not notes and others:
        notes.append(f"the rules on the {bus} bus are for other events: {', '.join(others)}")
    if not notes:
        try:
            elsewhere = [r["Name"] for r in events.list_rules().get("Rules", [])]
        except ClientError:
            elsewhere = []
        if elsewhere:
            notes.append(f"rules on the default bus ({', '.join(elsewhere)}) never see events put on {bus}: "
                         f'add "EventBusName": "{bus}"')
    return "; ".join(notes) or f"no rules on the {bus} bus"


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _squash(text: str) -> str:
    return "".join(ch for ch in text.lower() if ch.isalnum())


def _targets(ctx, rules: list[str]) -> str:
    """"rule-name -> target ARNs" for the rules, to say where matching events went instead."""
    events = ctx.aws("events")
    out = []
    for name in rules:
        arns = [t["Arn"] for t in events.list_targets_by_rule(Rule=name, EventBusName=_prov(ctx).BUS).get("Targets", [])]
        out.append(f"{name} -> {', '.join(arns) or 'no targets'}")
    return "; ".join(out)


def _order_item(ctx, order_id: str) -> dict:
    item = ctx.aws("dynamodb").get_item(TableName=_prov(ctx).ORDERS_TABLE, Key={"orderId": {"S": order_id}},
                                        ConsistentRead=True).get("Item") or {}
    return {k: next(iter(v.values())) for k, v in item.items()}


def _status(ctx, order_id: str) -> str | None:
    return _order_item(ctx, order_id).get("status")


def _stock(ctx, sku: str) -> int:
    item = ctx.aws("dynamodb").get_item(TableName=_prov(ctx).INVENTORY_TABLE, Key={"sku": {"S": sku}},
                                        ConsistentRead=True)["Item"]
    return int(item["stock"]["N"])


def _payment(ctx, order_id: str) -> dict:
    item = ctx.aws("dynamodb").get_item(TableName=_prov(ctx).PAYMENTS_TABLE, Key={"orderId": {"S": order_id}},
                                        ConsistentRead=True).get("Item") or {}
    return {k: next(iter(v.values())) for k, v in item.items()}


def _messages_for(ctx, queue: str, order_id: str) -> list[dict]:
    """The messages on `queue` about `order_id` (removed: they are the check's own); others are left visible."""
    sqs = ctx.aws("sqs")
    url = _prov(ctx).queue_url(ctx, queue)
    ours, others = [], []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30, WaitTimeSeconds=0,
                                    MessageAttributeNames=["All"]).get("Messages", [])
        if not batch:
            break
        for message in batch:
            (ours if order_id in message["Body"] else others).append(message)
    for start in range(0, len(others), 10):
        sqs.change_message_visibility_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
            for i, m in enumerate(others[start:start + 10])])
    for start in range(0, len(ours), 10):
        sqs.delete_message_batch(QueueUrl=url, Entries=[
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(ours[start:start + 10])])
    return [json.loads(m["Body"]) if m["Body"].startswith("{") else {"body": m["Body"]} for m in ours]


def _invoked_function(ctx, event: dict) -> str | None:
    """The Lambda function a TaskScheduled / LambdaFunctionScheduled history event invokes."""
    asl = _prov(ctx).asl
    if event["type"] == "TaskScheduled":
        details = event["taskScheduledEventDetails"]
        if details.get("resourceType") != "lambda":
            return None
        name = json.loads(details.get("parameters") or "{}").get("FunctionName")
        return asl.function_name(name) if isinstance(name, str) else None
    if event["type"] == "LambdaFunctionScheduled":
        return asl.function_name(event["lambdaFunctionScheduledEventDetails"]["resource"])
    return None


def _retry_failures(history: list[dict], error: str) -> int:
    return sum(1 for e in history if e["type"] in ("TaskFailed", "LambdaFunctionFailed")
               and (e.get("taskFailedEventDetails") or e.get("lambdaFunctionFailedEventDetails") or {}).get("error") == error)


def _states(definition: dict):
    """Every state in a definition, branches and Map processors included: (name, state)."""
    for name, state in (definition.get("States") or {}).items():
        yield name, state
        for branch in state.get("Branches", []) if isinstance(state, dict) else []:
            yield from _states(branch)
        for key in ("ItemProcessor", "Iterator"):
            if isinstance(state, dict) and isinstance(state.get(key), dict):
                yield from _states(state[key])


def _invokes(ctx, state: dict) -> str | None:
    asl = _prov(ctx).asl
    resource = state.get("Resource", "")
    if asl.LAMBDA_INVOKE.match(resource):
        name = (state.get("Parameters") or {}).get("FunctionName")
        return asl.function_name(name) if isinstance(name, str) else None
    if asl.LAMBDA_ARN.match(resource):
        return asl.function_name(resource)
    return None


# --- checks --------------------------------------------------------------------------------------------------------


@check("deployment", "The order-processing state machine is deployed and valid", points=5,
       hint='Run "securecart-lab deploy 1" and fix any error it reports.',
       more="deploy validates your four files, then creates the securecart-order-processing state machine with the "
            "securecart-order-processing-role role and puts your rules on the securecart bus.",
       needs={"stepfunctions", "events"})
def deployment(ctx):
    prov = _prov(ctx)
    machine = _machine(ctx)
    if machine is None:
        return failed(f"No state machine named {prov.STATE_MACHINE}.", expected=prov.STATE_MACHINE, actual="nothing")
    if machine.get("status", "ACTIVE") != "ACTIVE":
        return failed("The state machine is not active.", expected="ACTIVE", actual=machine["status"])
    definition = json.loads(machine["definition"])
    problems = prov.asl.validate(definition, lambda name: True, lambda name: True)
    if problems:
        return failed(f"The deployed definition has problems: {problems[0].message}.", actual=len(problems))
    if not machine["roleArn"].endswith(f"role/{prov.ROLE}"):
        return failed("The state machine does not use the lab's role.", expected=prov.ROLE, actual=machine["roleArn"])
    rules = ctx.aws("events").list_rules(EventBusName=prov.BUS).get("Rules", [])
    if not rules:
        return failed(f"No EventBridge rules on the {prov.BUS} bus.", expected="rules from rules.json", actual="none")
    return passed(f"{_plural(len(definition['States']), 'state')}, {_plural(len(rules), 'rule')}")


@check("order-event-starts-execution", "An OrderPlaced event starts an execution", points=10,
       hint="In rules.json, route OrderPlaced events from securecart.orders on the securecart bus to the state "
            "machine, passing only the event's detail as input.",
       more="The check puts an OrderPlaced event (valid against reference/events/OrderPlaced.schema.json) on the bus and "
            "waits up to 10 s for an execution whose input carries its order id. The rule: "
            '{"source": ["securecart.orders"], "detail-type": ["OrderPlaced"]} with a target "Arn": '
            '"${StateMachineArn}", "RoleArn": "${EventsRoleArn}", "InputPath": "$.detail".',
       needs={"stepfunctions", "events", "lambda", "dynamodb"})
def order_event_starts_execution(ctx):
    prov = _prov(ctx)
    if _machine(ctx) is None:
        return failed(f"No state machine named {prov.STATE_MACHINE}: deploy first.")
    sfn = ctx.aws("stepfunctions")
    arn = prov.state_machine_arn(ctx)
    with _test_sku(ctx, stock=50) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 1, "unitPriceCents": 1999}])
        order["placedAt"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        errors = _schema_errors("OrderPlaced", order)
        if errors:
            raise AssertionError(f"the check's own event breaks the OrderPlaced schema: {errors[0]}")
        matching = _matching_rules(ctx, "securecart.orders", "OrderPlaced")
        if not matching:
            return failed(f"No enabled rule on the {prov.BUS} bus matches an OrderPlaced event from securecart.orders.",
                          expected='a rule with "source": ["securecart.orders"], "detail-type": ["OrderPlaced"]',
                          actual=_near_misses(ctx, "securecart.orders", "OrderPlaced"))
        before = {e["executionArn"] for e in sfn.list_executions(stateMachineArn=arn, maxResults=100)["executions"]}
        response = ctx.aws("events").put_events(Entries=[{
            "Source": "securecart.orders", "DetailType": "OrderPlaced", "Detail": json.dumps(order),
            "EventBusName": prov.BUS}])
        if response.get("FailedEntryCount"):
            return failed("PutEvents rejected the event.", actual=response["Entries"][0].get("ErrorMessage"))
        deadline, seen, others = time.monotonic() + 10, set(before), []
        while time.monotonic() < deadline:
            for execution in sfn.list_executions(stateMachineArn=arn, maxResults=100)["executions"]:
                if execution["executionArn"] in seen:
                    continue
                seen.add(execution["executionArn"])
                described = sfn.describe_execution(executionArn=execution["executionArn"])
                if order["orderId"] in described.get("input", ""):
                    _wait(ctx, execution["executionArn"])  # let it finish before the test SKU goes
                    return passed(f"event started {execution['name']}")
                # Started by the event, with something else than the order (an InputPath that selects nothing or
                # too much): no need to wait the whole 10 s for one that carries it.
                others.append((execution["name"], described.get("input", "")))
                deadline = min(deadline, time.monotonic() + 3)
            time.sleep(0.1)
    if others:
        name, given = others[0]
        return failed(f"The OrderPlaced event for {order['orderId']} started {name}, but not with the order as its "
                      "input.",
                      expected='the order (the event\'s detail) as input: the target\'s "InputPath": "$.detail"',
                      actual=f"input {given[:120]}; matching rules: {_targets(ctx, matching)}")
    return failed(f"No execution started within 10 s of an OrderPlaced event for {order['orderId']}.",
                  expected=f"a new execution of {prov.STATE_MACHINE} with the order as input",
                  actual=f"none; matching rules: {_targets(ctx, matching)}")


@check("happy-path", "A valid order is CONFIRMED, its stock reserved and the customer notified", points=15,
       hint="After AuthorizePayment, reserve the stock and notify the customer, then mark the order CONFIRMED "
            "and end in a Succeed state.",
       more="Order of 3 units of a fresh SKU with 50 in stock, paid with tok_visa_ok. Expected: execution SUCCEEDED, "
            "order status CONFIRMED, stock 47, exactly one message for the order on securecart-notifications. "
            "Call reserve-inventory and notify-customer (see the Parallel step), and set the status with a "
            "dynamodb:updateItem task.",
       needs=SFN | {"sqs"})
def happy_path(ctx):
    with _test_sku(ctx, stock=50) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 3}])
        described = _run(ctx, order)
        if described["status"] != "SUCCEEDED":
            return failed("The execution did not succeed.", expected="SUCCEEDED", actual=_ended(described))
        status = _status(ctx, order["orderId"])
        if status != "CONFIRMED":
            return failed("The order was not marked CONFIRMED.", expected="CONFIRMED", actual=status)
        stock = _stock(ctx, sku)
        if stock != 47:
            return failed("Stock did not go down by exactly the ordered quantity (3).", expected=47, actual=stock)
    notes = _messages_for(ctx, _prov(ctx).NOTIFICATIONS_QUEUE, order["orderId"])
    if len(notes) != 1:
        return failed("Expected exactly one notification for the order on securecart-notifications.",
                      expected=1, actual=len(notes))
    return passed("SUCCEEDED, CONFIRMED, stock 50 -> 47, 1 notification")


@check("payment-retry", "Transient payment failures are retried with backoff", points=15,
       hint="Give AuthorizePayment a Retry for PaymentGatewayTimeout only: at least 3 attempts, each wait longer "
            "than the last (exponential backoff).",
       more="A tok_flaky_2 card times out twice, then approves. Expected: the execution SUCCEEDED, the history shows "
            "two PaymentGatewayTimeout failures, the payment was authorized on attempt 3, and the retrier waits "
            "longer each time (BackoffRate > 1) for at least 3 retries. E.g. \"Retry\": [{\"ErrorEquals\": "
            "[\"PaymentGatewayTimeout\"], \"IntervalSeconds\": 1, \"MaxAttempts\": 3, \"BackoffRate\": 2.0}].",
       needs=SFN)
def payment_retry(ctx):
    with _test_sku(ctx, stock=50) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 1}], token="tok_flaky_2")
        described = _run(ctx, order)
    failures = _retry_failures(_history(ctx, described["executionArn"]), "PaymentGatewayTimeout")
    if described["status"] != "SUCCEEDED":
        return failed("A payment that times out twice and then succeeds did not get through.",
                      expected="SUCCEEDED after 2 retries", actual=_ended(described) + _retry_near_miss(ctx))
    payment = _payment(ctx, order["orderId"])
    if not payment.get("authorizationId") or int(payment.get("attempts", 0)) != 3 or failures < 2:
        return failed("The payment was not authorized on the third attempt after two timeouts.",
                      expected="3 attempts, 2 PaymentGatewayTimeout in the history",
                      actual=f"{payment.get('attempts', 0)} attempts, {failures} timeouts")
    definition = json.loads(_machine(ctx)["definition"])
    retriers = [r for _, s in _states(definition) if isinstance(s, dict) and _invokes(ctx, s) == "authorize-payment"
                for r in s.get("Retry", []) if {"PaymentGatewayTimeout", "States.ALL", "States.TaskFailed"} & set(r.get("ErrorEquals", []))]
    if not retriers:
        return failed("No Retry on the state that calls authorize-payment matches PaymentGatewayTimeout.")
    retrier = retriers[0]
    attempts, rate = retrier.get("MaxAttempts", 3), retrier.get("BackoffRate", 2.0)
    if attempts < 3 or rate <= 1:
        return failed("The retry needs exponential backoff and room for at least 3 retries.",
                      expected="MaxAttempts >= 3, BackoffRate > 1", actual=f"MaxAttempts {attempts}, BackoffRate {rate}")
    declined = _declined_attempts(ctx)
    if declined != 1:
        matched = sorted({e for r in _authorize_retriers(ctx, definition) for e in r.get("ErrorEquals", [])}
                         & {"PaymentDeclinedError", "States.ALL", "States.TaskFailed"})
        return failed(f"A declined card was charged {declined} times: retrying a declined card just declines it again "
                      "(and a gateway counts every attempt against the customer). Retry only the error that can go "
                      "away, PaymentGatewayTimeout; let PaymentDeclinedError reach the Catch at once.",
                      expected="1 attempt for tok_declined",
                      actual=f"{declined} attempts" + (f"; the Retry matches {', '.join(matched)}" if matched else ""))
    return passed(f"authorized on attempt 3 after {failures} timeouts; a declined card tried once")


def _retry_near_miss(ctx) -> str:
    """What the deployed Retry on authorize-payment almost says."""
    machine = _machine(ctx)
    if machine is None:
        return ""
    retriers = _authorize_retriers(ctx, json.loads(machine["definition"]))
    if not retriers:
        return "; the state that calls authorize-payment has no Retry"
    names = [e for r in retriers for e in r.get("ErrorEquals", []) if isinstance(e, str)]
    close = [e for e in names if e != "PaymentGatewayTimeout" and _squash(e) == _squash("PaymentGatewayTimeout")]
    if close:
        return (f"; the Retry names {close[0]!r}, the function raises 'PaymentGatewayTimeout' "
                "(error names are case-sensitive)")
    if "PaymentGatewayTimeout" not in names and not {"States.ALL", "States.TaskFailed"} & set(names):
        return f"; the Retry matches {', '.join(names)}, not PaymentGatewayTimeout"
    return ""


def _authorize_retriers(ctx, definition: dict) -> list[dict]:
    """Every retrier on the states that call authorize-payment."""
    return [r for _, s in _states(definition) if isinstance(s, dict) and _invokes(ctx, s) == "authorize-payment"
            for r in s.get("Retry", []) if isinstance(r, dict)]


def _declined_attempts(ctx) -> int:
    """How many times authorize-payment ran for a tok_declined order (the payments table counts attempts)."""
    with _test_sku(ctx, stock=10) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 1}], token="tok_declined")
        _run(ctx, order)
    _messages_for(ctx, _prov(ctx).SUPPORT_QUEUE, order["orderId"])
    return int(_payment(ctx, order["orderId"]).get("attempts", 0))


@check("payment-declined-to-support", "A declined payment goes to support and is marked PAYMENT_FAILED", points=15,
       hint="Catch PaymentDeclinedError on AuthorizePayment, keep the order in the state (ResultPath), send it to "
            "the securecart-support queue and mark it PAYMENT_FAILED.",
       more="A tok_declined card. Expected: a message carrying the order id on securecart-support, the order "
            'PAYMENT_FAILED, and the stock untouched. E.g. "Catch": [{"ErrorEquals": ["PaymentDeclinedError"], '
            '"ResultPath": "$.error", "Next": "SendToSupport"}]; SendToSupport uses arn:aws:states:::sqs:sendMessage '
            'with "QueueUrl": "${QueueUrl:securecart-support}", then a dynamodb:updateItem task sets PAYMENT_FAILED.',
       needs=SFN | {"sqs"})
def payment_declined_to_support(ctx):
    with _test_sku(ctx, stock=20) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 2}], token="tok_declined")
        described = _run(ctx, order)
        stock = _stock(ctx, sku)
    if described["status"] == "RUNNING":
        return failed("The execution was still running after 25 s.", expected="stopped", actual="RUNNING")
    to_support = _messages_for(ctx, _prov(ctx).SUPPORT_QUEUE, order["orderId"])
    status = _status(ctx, order["orderId"])
    if not to_support:
        return failed("Nothing about the declined order reached the securecart-support queue.",
                      expected="1 message with the order id", actual=f"none; execution {_ended(described)}")
    if not any(isinstance(m, dict) and m.get("orderId") == order["orderId"] for m in to_support):
        found = to_support[0]
        keys = ", ".join(found) if isinstance(found, dict) and "body" not in found else "a message that is not a JSON object"
        return failed("The support message has no orderId field: support looks orders up by it, so it must be a "
                      'field of the message, e.g. "MessageBody": {"orderId.$": "$.orderId", ...}.',
                      expected=f'"orderId": "{order["orderId"]}"', actual=f"fields: {keys}")
    if status != "PAYMENT_FAILED":
        return failed("The declined order was not marked PAYMENT_FAILED.", expected="PAYMENT_FAILED", actual=status)
    if stock != 20:
        return failed("A declined order changed the stock.", expected=20, actual=stock)
    return passed("support queue message, PAYMENT_FAILED, stock unchanged")


@check("invalid-order-rejected", "An invalid order is REJECTED without calling payment", points=10,
       hint="Catch InvalidOrderError on ValidateOrder and mark the order REJECTED on a path that never reaches "
            "AuthorizePayment.",
       more="An order with quantity 0. Expected: the order REJECTED, and authorize-payment never invoked for it "
            '(neither in the execution history nor in the payments table). E.g. "Catch": [{"ErrorEquals": '
            '["InvalidOrderError"], "ResultPath": "$.error", "Next": "RejectOrder"}], RejectOrder a '
            "dynamodb:updateItem task.",
       needs=SFN)
def invalid_order_rejected(ctx):
    order = _order(ctx, [{"sku": "SC-ELEC-0001", "quantity": 0}])
    described = _run(ctx, order)
    history = _history(ctx, described["executionArn"])
    payment_calls = sum(1 for e in history if _invoked_function(ctx, e) == "authorize-payment")
    if payment_calls or _payment(ctx, order["orderId"]):
        return failed("authorize-payment was called for an invalid order.", expected="0 payment calls",
                      actual=max(payment_calls, 1))
    status = _status(ctx, order["orderId"])
    if status != "REJECTED":
        return failed("The invalid order was not marked REJECTED.", expected="REJECTED",
                      actual=f"{status or 'no status'}; execution {_ended(described)}")
    return passed("REJECTED, payment never called")


@check("parallel-fulfilment", "Stock reservation and the customer notification run in one Parallel state", points=10,
       hint="Stock reservation and the notification don't depend on each other: run them side by side in one "
            "Parallel state.",
       more="From the history of a valid order: both functions are invoked between the same ParallelStateEntered "
            'and ParallelStateExited, each in its own branch: a "Type": "Parallel" state with two Branches, one '
            "running reserve-inventory, the other notify-customer.",
       needs=SFN | {"sqs"})
def parallel_fulfilment(ctx):
    with _test_sku(ctx, stock=50) as sku:
        order = _order(ctx, [{"sku": sku, "quantity": 1}])
        described = _run(ctx, order)
    _messages_for(ctx, _prov(ctx).NOTIFICATIONS_QUEUE, order["orderId"])
    history = _history(ctx, described["executionArn"])
    by_id = {e["id"]: e for e in history}
    parallel_starts = {e["id"] for e in history if e["type"] == "ParallelStateStarted"}

    def branch_of(event):
        """(parallel start id, branch root id) of the event, following previousEventId back; None outside Parallel."""
        current = event
        while current.get("previousEventId") in by_id:
            previous = current["previousEventId"]
            if previous in parallel_starts:
                return previous, current["id"]
            current = by_id[previous]
        return None

    branches = {}
    for event in history:
        name = _invoked_function(ctx, event)
        if name in ("reserve-inventory", "notify-customer"):
            branches[name] = branch_of(event)
    missing = [n for n in ("reserve-inventory", "notify-customer") if n not in branches]
    if missing:
        return failed(f"A valid order never invoked {', '.join(missing)}.", expected="both functions invoked",
                      actual=f"execution {_ended(described)}")
    reserve, notify = branches["reserve-inventory"], branches["notify-customer"]
    if reserve is None or notify is None:
        return failed("reserve-inventory and notify-customer do not run inside a Parallel state.",
                      expected="both inside one Parallel", actual="run in sequence")
    if reserve[0] != notify[0]:
        return failed("reserve-inventory and notify-customer run in two different Parallel states.",
                      expected="one Parallel state", actual="two")
    if reserve[1] == notify[1]:
        return failed("reserve-inventory and notify-customer run one after the other in the same branch.",
                      expected="two branches", actual="one branch")
    return passed("two branches of one Parallel state")


@check("restock-on-low-inventory", "An InventoryLow event triggers restock", points=10,
       hint="Add a rule to rules.json that sends InventoryLow events (source securecart.inventory) on the "
            "securecart bus to the restock function.",
       more="The check puts an InventoryLow event (valid against reference/events/InventoryLow.schema.json) for a test "
            "SKU on the bus, the event reserve-inventory emits, and waits up to 10 s for restock to record a "
            "request for that SKU in securecart-restock-requests. The target: "
            '{"Id": "restock", "Arn": "${FunctionArn:restock}"}.',
       needs={"events", "lambda", "dynamodb"})
def restock_on_low_inventory(ctx):
    prov = _prov(ctx)
    sku = ctx.unique("SC-TEST").upper()
    detail = {"sku": sku, "stock": 2, "threshold": 3, "orderId": ctx.unique("ord-check"),
              "detectedAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    errors = _schema_errors("InventoryLow", detail)
    if errors:
        raise AssertionError(f"the check's own event breaks the InventoryLow schema: {errors[0]}")
    matching = _matching_rules(ctx, "securecart.inventory", "InventoryLow")
    if not matching:
        return failed(f"No enabled rule on the {prov.BUS} bus matches an InventoryLow event from securecart.inventory.",
                      expected='a rule with "source": ["securecart.inventory"], "detail-type": ["InventoryLow"] and '
                               "the restock function as target",
                      actual=_near_misses(ctx, "securecart.inventory", "InventoryLow"))
    ctx.aws("events").put_events(Entries=[{"Source": "securecart.inventory", "DetailType": "InventoryLow",
                                           "Detail": json.dumps(detail), "EventBusName": prov.BUS}])
    dynamodb = ctx.aws("dynamodb")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        items = dynamodb.query(TableName=prov.RESTOCK_TABLE, KeyConditionExpression="sku = :sku",
                               ExpressionAttributeValues={":sku": {"S": sku}}, ConsistentRead=True)["Items"]
        if items:
            for item in items:
                dynamodb.delete_item(TableName=prov.RESTOCK_TABLE, Key={"sku": item["sku"], "requestId": item["requestId"]})
            return passed(f"restock requested {items[0]['quantity']['N']} x {sku}")
        time.sleep(0.1)
    return failed("No restock request was recorded within 10 s of an InventoryLow event.",
                  expected=f"a row for {sku} in {prov.RESTOCK_TABLE}, written by the restock function",
                  actual=f"none; matching rules: {_targets(ctx, matching)}")


@check("execution-logs", "Executions are logged to CloudWatch Logs", points=10,
       hint="Turn logging on in logging.json (level ALL) with the lab's log group as destination, then deploy.",
       more="The check runs one (invalid, so quick) order and looks for its execution's events in the log group "
            'named by the state machine\'s logging configuration. E.g. {"level": "ALL", "includeExecutionData": true, '
            '"destinations": [{"cloudWatchLogsLogGroup": {"logGroupArn": "${LogGroupArn}"}}]}.',
       needs={"stepfunctions", "logs", "lambda"})
def execution_logs(ctx):
    machine = _machine(ctx)
    if machine is None:
        return failed("No state machine: deploy first.")
    config = machine.get("loggingConfiguration") or {}
    level = config.get("level", "OFF")
    destinations = config.get("destinations") or []
    if level == "OFF" or not destinations:
        return failed("Logging is off for the state machine.", expected="level ALL with a log group", actual=level)
    group_arn = destinations[0]["cloudWatchLogsLogGroup"]["logGroupArn"]
    group = group_arn.split(":log-group:", 1)[1].rsplit(":*", 1)[0]
    started_ms = int(time.time() * 1000) - 1000
    described = _run(ctx, _order(ctx, []))
    logs = ctx.aws("logs")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            events = logs.filter_log_events(logGroupName=group, startTime=started_ms)["events"]
        except ClientError as exc:
            return failed(f"Cannot read log group {group}: {exc.response['Error'].get('Message')}")
        mine = [e for e in events if described["executionArn"] in e["message"]]
        if mine:
            return passed(f"{len(mine)} log events in {group}")
        time.sleep(0.1)
    return failed(f"No log events for a new execution in {group}.", expected="execution history events",
                  actual="none")


@check("least-privilege-role", "The state machine's role lets every path run, and allows nothing else", points=10,
       hint="In role_policy.json, allow exactly the actions the state machine calls, on exactly the resources it "
            "uses: enough for every path (a confirmed, a declined and a rejected order), and nothing more.",
       more="The emulator enforces the role (as AWS does): the check runs a valid, a declined and an invalid order and "
            "fails on any call the role denied (the execution history names the action and resource). Then it asks "
            "IAM's policy simulator (aws iam simulate-principal-policy) whether the role allows everything the "
            "deployed definition uses, and whether it allows what the workflow never does (another function or "
            "queue, other tables, deleting or scanning items, changing the role, ...). E.g. lambda:InvokeFunction "
            "on ${FunctionArn:validate-order}, dynamodb:UpdateItem on ${TableArn:securecart-orders}, "
            "sqs:SendMessage on ${QueueArn:securecart-support}, plus the CloudWatch Logs delivery actions "
            "(logs:CreateLogDelivery etc., which AWS requires on \"*\").",
       needs={"iam", "stepfunctions", "lambda", "dynamodb"})
def least_privilege_role(ctx):
    machine = _machine(ctx)
    if machine is None:
        return failed("No state machine: deploy first.")
    role_arn = machine["roleArn"]
    required = list(dict.fromkeys(_required(ctx, json.loads(machine["definition"]))))
    enforced = (ctx.engine.health() or {}).get("iam") == "enforced"
    if enforced:
        denied = _denied_on_every_path(ctx)
        if denied:
            return failed("The role does not let every path of the workflow run: the state machine was denied "
                          f"{_plural(len(denied), 'call')}.", expected="every path runs",
                          actual="; ".join(denied[:4]))
    decisions = _simulate(ctx, role_arn, required)
    missing = [f"{action} on {resource}" for (action, resource), decision in decisions.items() if decision != "allowed"]
    if missing:
        return failed("The role does not allow something the state machine uses.", expected="allowed",
                      actual="; ".join(missing))
    used = {(action.lower(), resource) for action, resource in required}
    probes = [(action, resource) for action, resource in _probes(ctx, role_arn) if (action.lower(), resource) not in used]
    extra = [f"{action} on {resource}" for (action, resource), decision in _simulate(ctx, role_arn, probes).items()
             if decision == "allowed"]
    if extra:
        return failed(f"The role allows more than the workflow uses ({_plural(len(extra), 'thing')} it never does).",
                      expected="only the calls the workflow makes", actual="; ".join(extra[:4])
                      + (f"; and {len(extra) - 4} more" if len(extra) > 4 else ""))
    runs = "every path ran with it; " if enforced else "IAM enforcement is off (SECURECART_IAM=off), paths not run; "
    return passed(f"{runs}{_plural(len(required), 'call')} allowed, {_plural(len(probes), 'other')} denied")


_DENIED = re.compile(r"is not authorized to perform: (\S+) on resource: (\S+)")


def _denied_on_every_path(ctx) -> list[str]:
    """Run a valid, a declined and an invalid order at once; the calls the role denied (from their histories)."""
    sfn, machine_arn = ctx.aws("stepfunctions"), _prov(ctx).state_machine_arn(ctx)
    with _test_sku(ctx, stock=20) as sku:
        orders = [_order(ctx, [{"sku": sku, "quantity": 1}]), _order(ctx, [{"sku": sku, "quantity": 1}], "tok_declined"),
                  _order(ctx, [{"sku": sku, "quantity": 0}])]
        arns = [sfn.start_execution(stateMachineArn=machine_arn, name=o["orderId"], input=json.dumps(o))["executionArn"]
                for o in orders]
        for arn in arns:
            _wait(ctx, arn)
    _messages_for(ctx, _prov(ctx).SUPPORT_QUEUE, orders[1]["orderId"])  # take the check's message off the queue
    _messages_for(ctx, _prov(ctx).NOTIFICATIONS_QUEUE, orders[0]["orderId"])
    denied: list[str] = []
    for arn in arns:
        for event in _history(ctx, arn):
            details = event.get("taskFailedEventDetails") or event.get("lambdaFunctionFailedEventDetails") or {}
            match = _DENIED.search(details.get("cause") or "")
            if match:
                text = f"{match.group(1)} on {match.group(2)} ({details.get('error')})"
                if text not in denied:
                    denied.append(text)
    return denied


def _simulate(ctx, role_arn: str, pairs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """IAM's policy simulator on (action, resource) pairs: {pair: "allowed" | "implicitDeny" | "explicitDeny"}."""
    iam = ctx.aws("iam")
    by_resource: dict[str, list[str]] = {}
    for action, resource in pairs:
        by_resource.setdefault(resource, []).append(action)
    decisions = {}
    for resource, actions in by_resource.items():
        for result in iam.simulate_principal_policy(PolicySourceArn=role_arn, ActionNames=actions,
                                                    ResourceArns=[resource])["EvaluationResults"]:
            decisions[(result["EvalActionName"], resource)] = result["EvalDecision"]
    return {pair: decisions.get(pair, "implicitDeny") for pair in pairs}


def _probes(ctx, role_arn: str) -> list[tuple[str, str]]:
    """Calls lab 1's workflow never makes: a least-privilege role denies every one."""
    prov = _prov(ctx)
    account, region = ctx.account, ctx.region

    def arn(service: str, rest: str) -> str:
        return f"arn:aws:{service}:{region}:{account}:{rest}"

    orders = arn("dynamodb", f"table/{prov.ORDERS_TABLE}")
    support = arn("sqs", prov.SUPPORT_QUEUE)
    return [
        ("lambda:InvokeFunction", arn("lambda", "function:restock")),
        ("lambda:UpdateFunctionCode", arn("lambda", "function:authorize-payment")),
        ("lambda:DeleteFunction", arn("lambda", "function:validate-order")),
        ("dynamodb:UpdateItem", arn("dynamodb", f"table/{prov.INVENTORY_TABLE}")),
        ("dynamodb:UpdateItem", arn("dynamodb", f"table/{prov.PAYMENTS_TABLE}")),
        ("dynamodb:PutItem", orders), ("dynamodb:DeleteItem", orders), ("dynamodb:Scan", orders),
        ("dynamodb:DeleteTable", orders),
        ("sqs:SendMessage", arn("sqs", prov.NOTIFICATIONS_QUEUE)),
        ("sqs:ReceiveMessage", support), ("sqs:PurgeQueue", support), ("sqs:DeleteQueue", support),
        ("logs:DeleteLogGroup", arn("logs", f"log-group:{prov.LOG_GROUP}")),
        ("states:StartExecution", prov.state_machine_arn(ctx)),
        ("iam:PutRolePolicy", role_arn), ("iam:PassRole", role_arn),
        ("events:PutEvents", arn("events", f"event-bus/{prov.BUS}")),
        ("s3:GetObject", "arn:aws:s3:::securecart-assets/orders.csv"),
    ]


def _required(ctx, definition: dict) -> list[tuple[str, str]]:
    """(action, resource ARN) for every Lambda function, DynamoDB table and SQS queue the definition uses."""
    account, region = ctx.account, ctx.region
    needed = []
    for _, state in _states(definition):
        if not isinstance(state, dict) or state.get("Type") != "Task":
            continue
        resource, params = state.get("Resource", ""), state.get("Parameters") or {}
        function = _invokes(ctx, state)
        if function:
            needed.append(("lambda:InvokeFunction", f"arn:aws:lambda:{region}:{account}:function:{function}"))
        elif resource.startswith("arn:aws:states:::dynamodb:") and isinstance(params.get("TableName"), str):
            api = resource.rsplit(":", 1)[1].split(".")[0]
            needed.append((f"dynamodb:{api[0].upper()}{api[1:]}",
                           f"arn:aws:dynamodb:{region}:{account}:table/{params['TableName']}"))
        elif resource.startswith("arn:aws:states:::sqs:sendMessage") and isinstance(params.get("QueueUrl"), str):
            needed.append(("sqs:SendMessage", f"arn:aws:sqs:{region}:{account}:{params['QueueUrl'].rstrip('/').rsplit('/', 1)[1]}"))
    return needed
