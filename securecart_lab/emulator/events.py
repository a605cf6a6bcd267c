"""EventBridge: rules match with AWS's pattern language and deliver to their targets as AWS does.

moto delivers only to SQS, logs, archives and buses, raises NotImplementedError (HTTP 500) for the rest, answers
TestEventPattern with an empty body and matches a subset of the pattern language. The kit:
- validates and matches every pattern with `event_patterns` (TestEventPattern, PutRule and delivery share it);
- delivers to Step Functions, Lambda, SNS, SQS, logs, archives, buses and API destinations (real HTTP), with
  Input, InputPath and InputTransformer; DISABLED rules deliver nothing;
- handles a failed delivery as AWS does: errors a retry cannot fix (a target that does not exist, a bad
  parameter, no permission) fail at once; the others (throttling, timeouts, HTTP 5xx/429 from an API destination,
  internal errors) are retried with exponential backoff and jitter until the target's RetryPolicy is spent
  (MaximumRetryAttempts, default 185; MaximumEventAgeInSeconds, default 86,400; both times SECURECART_TIME_SCALE).
  Then the event goes to the target's DeadLetterConfig queue with AWS's attributes (RULE_ARN, TARGET_ARN,
  ERROR_CODE, ERROR_MESSAGE, RETRY_ATTEMPTS, EXHAUSTED_RETRY_CONDITION), or is dropped without one;
- publishes the AWS/Events metrics FailedInvocations, InvocationsSentToDLQ and InvocationsFailedToBeSentToDLQ
  (dimension RuleName), and Invocations and TriggeredRules once CloudWatch is in use.
Every accepted event also reaches the schema discoverers of its bus (schemas.py).
PutEvents never fails because a target did; retries run on one scheduler thread that sleeps until the next one is due.
"""

from __future__ import annotations

import base64
import heapq
import itertools
import json
import logging
import random
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from jsonpath_ng.ext import parse as jsonpath

from securecart_lab.emulator import event_patterns, hooks, iam, lambda_runtime, timescale

LOG = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def aws_event(message: dict[str, Any]) -> dict[str, Any]:
    """The event as targets receive it on AWS (moto keeps the time as epoch seconds internally)."""
    when = message.get("time")
    if isinstance(when, (int, float)):
        when = datetime.fromtimestamp(when, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif isinstance(when, datetime):
        when = when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {
        "version": message.get("version", "0"),
        "id": message.get("id"),
        "detail-type": message.get("detail-type"),
        "source": message.get("source"),
        "account": message.get("account"),
        "time": when,
        "region": message.get("region"),
        "resources": message.get("resources", []),
        "detail": message.get("detail", {}),
    }


def _first(path: str, document: Any) -> Any:
    matches = jsonpath(path).find(document)
    return matches[0].value if matches else None


def transform(target: dict[str, Any], event: dict[str, Any]) -> str:
    """The payload text a target receives: Input, InputPath, InputTransformer, or the whole event."""
    if target.get("Input") is not None:
        return target["Input"]
    if target.get("InputPath"):
        return json.dumps(_first(target["InputPath"], event))
    transformer = target.get("InputTransformer")
    if not transformer:
        return json.dumps(event)
    values = {name: _first(path, event) for name, path in (transformer.get("InputPathsMap") or {}).items()}
    values["aws.events.event"] = event
    values["aws.events.event.json"] = event
    values["aws.events.rule-arn"] = target.get("_rule_arn")
    template = transformer["InputTemplate"]

    def substitute(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            return match.group(0)
        value = values[name]
        quoted = match.start() > 0 and template[match.start() - 1] == '"' and template[match.end():match.end() + 1] == '"'
        if isinstance(value, str):
            # Inside a JSON string the text is escaped; outside, a string value is inserted as is (AWS does too).
            return json.dumps(value)[1:-1] if quoted else value
        if value is None:
            return "" if quoted else "null"
        return json.dumps(value)

    return _PLACEHOLDER.sub(substitute, template)


def _deliver(rule, target: dict[str, Any], event: dict[str, Any], payload: str) -> None:
    from moto.utilities.arns import parse_arn

    arn = target["Arn"]
    parsed = parse_arn(arn)
    service = parsed.service
    account, region = parsed.account or rule.account_id, parsed.region or rule.region_name
    iam.authorize_target(rule, target, account, region)  # TargetAccessDenied: NO_PERMISSIONS, not retried
    if service == "states":
        backend = hooks.resolve("sfn.backend")(account, region)
        backend.start_execution(arn, name=None, execution_input=_json_text(payload))
    elif service == "lambda":
        backends = hooks.resolve("lambda.backends")[account][region]
        lambda_runtime.invoke_async(backends.get_function(arn), payload)
    elif service == "sns":
        hooks.resolve("sns.backends")[account][region].publish(payload, arn=arn)
    elif service == "sqs":
        group_id = target.get("SqsParameters", {}).get("MessageGroupId")
        hooks.resolve("sqs.backends")[account][region].send_message(queue_name=parsed.resource_id, message_body=payload, group_id=group_id)
    elif service == "logs":
        _deliver_to_logs(rule, event, payload, account, region, parsed.resource_id.split(":")[0])
    elif service == "events" and not parsed.resource_type:
        template = hooks.resolve("events.template_parser")
        transformer = target.get("InputTransformer", {})
        archive_event = template.parse(
            input_template=transformer.get("InputTemplate"),
            input_paths_map=transformer.get("InputPathsMap", {}),
            event=event,
        )
        archive_arn = parse_arn(archive_event["archive-arn"])
        hooks.resolve("events.send_to_archive")(rule, archive_arn.resource_id, event)
    elif service == "events" and parsed.resource_type == "api-destination":
        _invoke_api_destination(rule, target, parsed.resource_id, payload)
    elif service == "events" and parsed.resource_type == "event-bus" and account != rule.account_id:
        _deliver_to_other_account(rule, target, event, account, region, parsed.resource_id)
    elif service == "events" and parsed.resource_type == "event-bus":
        hooks.resolve("events.backends")[account][region].put_events([{
            "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []), "EventBusName": parsed.resource_id,
        }])
    else:
        raise DeliveryError("INVALID_PARAMETER", f"Target {arn} is not supported by the local engine.", False)


def _deliver_to_other_account(rule, target: dict[str, Any], event: dict[str, Any], account: str, region: str,
                              bus_name: str) -> None:
    """An event bus of another account: delivered only if its resource policy lets the rule's account (or the
    target's role) put events on it. The event arrives as it was (its id, source account and time), and the rules
    of that bus route it on."""
    backend = hooks.resolve("events.backends")[account][region]
    bus = backend.event_buses.get(bus_name)
    if bus is None:
        raise DeliveryError("NO_RESOURCE", f"Event bus {bus_name} does not exist in account {account}.", False)
    iam.authorize_bus(rule, target, bus, aws_event(event), region)
    _to_discoverers(account, region, bus_name, aws_event(event))
    for next_rule in list(bus.rules.values()):
        next_rule.send_to_targets(dict(event))


def _deliver_to_logs(rule, event: dict[str, Any], payload: str, account: str, region: str, group: str) -> None:
    """A CloudWatch Logs log group: the event (or the target's transformed input) as one log event, in a stream
    named after the event's id, if the group's account has a resource policy letting EventBridge write there."""
    backend = hooks.resolve("logs.backends")[account][region]
    if group not in backend.groups:
        raise DeliveryError("NO_RESOURCE", f"The specified log group does not exist: {group}", False)
    stream = str(event.get("id") or uuid.uuid4())
    group_arn = f"arn:aws:logs:{region}:{account}:log-group:{group}"
    iam.authorize_log_delivery(rule, group_arn, stream, list(backend.resource_policies.values()), region)
    if stream not in backend.groups[group].streams:
        backend.create_log_stream(group, stream)
    backend.put_log_events(group, stream, [{"timestamp": int(time.time() * 1000), "message": payload}])


def _json_text(payload: str) -> str:
    try:
        json.loads(payload)
        return payload
    except ValueError:
        return json.dumps(payload)


# --- patterns: moto's EventPattern, backed by event_patterns ---------------------------------------------------------

class EventPattern:
    """What moto's Rule and Archive keep as `event_pattern` (load, matches_event, get_pattern, dump)."""

    def __init__(self, raw: str | None, compiled: event_patterns.Pattern | None):
        self._raw = raw
        self._compiled = compiled

    @classmethod
    def load(cls, raw: str | None) -> EventPattern:
        if not raw:
            return cls(raw, None)
        try:
            return cls(raw, event_patterns.compile_pattern(raw))
        except event_patterns.InvalidPattern as exc:
            raise hooks.resolve("events.invalid_pattern")(reason=exc.reason) from None

    def get_pattern(self) -> dict[str, Any]:
        return self._compiled.source if self._compiled else {}

    def dump(self) -> str | None:
        return self._raw

    def matches_event(self, event: dict[str, Any]) -> bool:
        if self._compiled is None:
            return True
        # moto keeps the time as epoch seconds and adds ingestion-time: match the event AWS would match.
        return self._compiled.matches(aws_event(event) if "ingestion-time" in event else event)


def test_event_pattern(self) -> str:
    """TestEventPattern: {"Result": true|false}, InvalidEventPatternException, or ValidationException."""
    try:
        result = event_patterns.evaluate(self._get_param("EventPattern") or "", self._get_param("Event") or "")
    except event_patterns.InvalidPattern as exc:
        raise hooks.resolve("events.invalid_pattern")(reason=exc.reason) from None
    except ValueError as exc:
        raise hooks.resolve("events.validation_error")(str(exc)) from None
    return json.dumps({"Result": result})


# --- delivery, retries and dead letters ----------------------------------------------------------------------------

class DeliveryError(Exception):
    """A failed delivery: AWS's DLQ ERROR_CODE, its message, and whether a retry can succeed."""

    def __init__(self, code: str, message: str, retriable: bool):
        super().__init__(message)
        self.code, self.message, self.retriable = code, message, retriable


def _classify(exc: Exception) -> DeliveryError:
    if isinstance(exc, DeliveryError):
        return exc
    name = str(getattr(exc, "error_type", "") or type(exc).__name__)
    message = str(getattr(exc, "message", "") or exc) or name
    lowered = name.lower()
    if any(word in lowered for word in ("notfound", "doesnotexist", "nonexistent", "unknownfunction")):
        return DeliveryError("NO_RESOURCE", message, False)
    if any(word in lowered for word in ("accessdenied", "notauthorized", "unauthorized", "forbidden")):
        return DeliveryError("NO_PERMISSIONS", message, False)
    if any(word in lowered for word in ("throttl", "toomanyrequests", "limitexceeded")):
        return DeliveryError("THROTTLING", message, True)
    if "alreadyexists" in lowered:
        return DeliveryError("RESOURCE_ALREADY_EXISTS", message, False)
    if "invalidexecutioninput" in lowered:
        return DeliveryError("INVALID_JSON", message, False)
    if any(word in lowered for word in ("validation", "invalidparameter", "missingparameter", "invalidargument")):
        return DeliveryError("INVALID_PARAMETER", message, False)
    if getattr(exc, "code", 500) in range(400, 500):
        return DeliveryError("SDK_CLIENT_ERROR", message, False)
    LOG.debug("EventBridge delivery failed inside the engine", exc_info=exc)
    return DeliveryError("INTERNAL_ERROR", f"{name}: {message}", True)


_API_DESTINATION_TIMEOUT = 5.0  # seconds, as on AWS
_RETRIABLE_HTTP = {401, 407, 409, 429}


def _invoke_api_destination(rule, target: dict[str, Any], resource_id: str, payload: str) -> None:
    backend = hooks.resolve("events.backends")[rule.account_id][rule.region_name]
    destination = backend.destinations.get(resource_id.split("/")[0])
    if destination is None:
        raise DeliveryError("NO_RESOURCE", f"An api-destination '{resource_id.split('/')[0]}' does not exist.", False)
    connection = backend.connections.get(destination.connection_arn.split("/")[-2]) \
        if destination.connection_arn.count("/") >= 2 else None
    auth = (connection.auth_parameters or {}) if connection else {}
    parameters = target.get("HttpParameters") or {}
    headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "Amazon/EventBridge/ApiDestinations"}
    query: dict[str, str] = {}
    invocation = auth.get("InvocationHttpParameters") or {}
    headers.update({p["Key"]: p["Value"] for p in invocation.get("HeaderParameters", [])})
    query.update({p["Key"]: p["Value"] for p in invocation.get("QueryStringParameters", [])})
    if "ApiKeyAuthParameters" in auth:
        headers[auth["ApiKeyAuthParameters"]["ApiKeyName"]] = auth["ApiKeyAuthParameters"]["ApiKeyValue"]
    if "BasicAuthParameters" in auth:
        basic = auth["BasicAuthParameters"]
        token = base64.b64encode(f"{basic['Username']}:{basic['Password']}".encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    headers.update(parameters.get("HeaderParameters") or {})
    query.update(parameters.get("QueryStringParameters") or {})
    url = destination.invocation_endpoint
    for value in parameters.get("PathParameterValues") or []:
        url = url.replace("*", urllib.parse.quote(value, safe=""), 1)
    if query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
    method = (destination.http_method or "POST").upper()
    data = None if method in ("GET", "HEAD") else payload.encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=_API_DESTINATION_TIMEOUT) as response:  # noqa: S310 - the learner's endpoint
            response.read()
    except urllib.error.HTTPError as exc:
        status = exc.code
        raise DeliveryError("ERROR_FROM_TARGET", f"Received response status [{status}] from the API destination "
                            f"endpoint {destination.invocation_endpoint}",
                            status in _RETRIABLE_HTTP or status >= 500) from None
    except TimeoutError:
        raise DeliveryError("TIMEOUT", f"The API destination endpoint {destination.invocation_endpoint} did not answer "
                            f"within {_API_DESTINATION_TIMEOUT:.0f} seconds", True) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError):
            raise DeliveryError("TIMEOUT", f"The API destination endpoint {destination.invocation_endpoint} did not "
                                f"answer within {_API_DESTINATION_TIMEOUT:.0f} seconds", True) from None
        raise DeliveryError("CONNECTION_FAILURE", f"Could not connect to {destination.invocation_endpoint}: {reason}",
                            True) from None


@dataclass(eq=False)
class Delivery:
    rule: Any
    target: dict[str, Any]
    event: dict[str, Any]  # what the target receives before transformation (moto's shape for buses and archives)
    payload: str
    first_attempt: float = field(default_factory=time.monotonic)
    retries: int = 0

    def policy(self) -> tuple[int, float]:
        retry = self.target.get("RetryPolicy") or {}
        attempts = int(retry.get("MaximumRetryAttempts", 185))
        age = float(retry.get("MaximumEventAgeInSeconds", 86400))
        return attempts, timescale.scaled(age)


_BACKOFF_BASE, _BACKOFF_CAP = 1.0, 300.0  # seconds, before the time scale


def _backoff(retry: int) -> float:
    """Exponential backoff with jitter: about 1, 2, 4, ... seconds, at most 5 minutes, times the time scale."""
    ceiling = min(_BACKOFF_CAP, _BACKOFF_BASE * 2 ** retry)
    return timescale.scaled(ceiling / 2 + random.uniform(0, ceiling / 2))


class _Scheduler:
    """Retries due later: one thread, started at the first retry, asleep until the next is due (no polling)."""

    def __init__(self) -> None:
        self._due: list[tuple[float, int, Delivery]] = []
        self._order = itertools.count()
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="events-delivery")

    def submit(self, delivery: Delivery) -> None:
        """An attempt now, off the request thread (API destinations: PutEvents must not wait on HTTP)."""
        self._pool.submit(_attempt, delivery)

    def later(self, delay: float, delivery: Delivery) -> None:
        with self._wake:
            heapq.heappush(self._due, (time.monotonic() + delay, next(self._order), delivery))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="events-retries", daemon=True)
                self._thread.start()
            self._wake.notify()

    def _run(self) -> None:
        while True:
            with self._wake:
                while not self._due:
                    self._wake.wait()
                due, _, delivery = self._due[0]
                wait = due - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._due)
            self._pool.submit(_attempt, delivery)


_scheduler = _Scheduler()


def _attempt(delivery: Delivery) -> None:
    try:
        _deliver(delivery.rule, delivery.target, delivery.event, delivery.payload)
    except Exception as exc:  # every failure is EventBridge's to handle, never the caller's
        _failed(delivery, _classify(exc))


def _failed(delivery: Delivery, error: DeliveryError) -> None:
    max_attempts, max_age = delivery.policy()
    if error.retriable:
        if delivery.retries >= max_attempts:
            return _give_up(delivery, error, "MaximumRetryAttempts")
        delay = _backoff(delivery.retries)
        if time.monotonic() + delay - delivery.first_attempt > max_age:
            return _give_up(delivery, error, "MaximumEventAgeInSeconds")
        delivery.retries += 1
        LOG.info("EventBridge rule %s: delivery to %s failed (%s), retry %d in %.2f s", delivery.rule.name,
                 delivery.target["Arn"], error.code, delivery.retries, delay)
        _scheduler.later(delay, delivery)
        return None
    return _give_up(delivery, error, None)


def _give_up(delivery: Delivery, error: DeliveryError, exhausted: str | None) -> None:
    rule, target = delivery.rule, delivery.target
    _metric(rule, "FailedInvocations")
    dead_letter = (target.get("DeadLetterConfig") or {}).get("Arn")
    LOG.warning("EventBridge rule %s: event %s not delivered to %s (%s: %s)%s", rule.name, delivery.event.get("id"),
                target["Arn"], error.code, error.message, f"; sent to {dead_letter}" if dead_letter else "; dropped")
    if not dead_letter:
        return
    attributes = {
        "RULE_ARN": rule.arn, "TARGET_ARN": target["Arn"], "ERROR_CODE": error.code,
        "ERROR_MESSAGE": error.message or error.code, "RETRY_ATTEMPTS": str(delivery.retries),
    }
    if exhausted:
        attributes["EXHAUSTED_RETRY_CONDITION"] = exhausted
    event = delivery.event if "ingestion-time" not in delivery.event else aws_event(delivery.event)
    try:
        from moto.utilities.arns import parse_arn

        queue = parse_arn(dead_letter)
        hooks.resolve("sqs.backends")[queue.account or rule.account_id][queue.region or rule.region_name].send_message(
            queue_name=queue.resource_id, message_body=json.dumps(event),
            message_attributes={name: {"DataType": "String", "StringValue": value} for name, value in attributes.items()})
    except Exception as exc:  # noqa: BLE001 - a DLQ that fails is counted, as AWS does
        LOG.warning("EventBridge rule %s: dead-letter queue %s refused the event: %s", rule.name, dead_letter, exc)
        _metric(rule, "InvocationsFailedToBeSentToDLQ")
    else:
        _metric(rule, "InvocationsSentToDLQ")


def _metric(rule, name: str, always: bool = True) -> None:
    # Success counts wait until CloudWatch is in use: its first import costs about a second of CPU.
    if not always and "moto.cloudwatch.models" not in sys.modules:
        return
    try:
        backend = hooks.resolve("cloudwatch.backends")[rule.account_id][rule.region_name]
        backend.put_metric_data("AWS/Events", [{"MetricName": name, "Value": 1, "Unit": "Count",
                                                "Dimensions": [{"Name": "RuleName", "Value": rule.name}]}])
    except Exception as exc:  # noqa: BLE001 - metrics never fail a delivery
        LOG.debug("AWS/Events %s not published: %s", name, exc)


def send_to_targets(self, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if self.state == "DISABLED" or not self.event_pattern.matches_event(original_event):
        return
    _metric(self, "TriggeredRules", always=False)
    for target in self.targets:
        parts = target["Arn"].split(":")
        service = parts[2] if len(parts) > 2 else ""
        api_destination = service == "events" and ":api-destination/" in target["Arn"]
        # Archives and buses keep moto's internal event shape (epoch time, ingestion-time).
        internal = service == "events" and not api_destination
        event = dict(original_event) if internal else aws_event(original_event)
        try:
            payload = "" if internal else transform({**target, "_rule_arn": getattr(self, "arn", None)}, event)
        except Exception as exc:  # noqa: BLE001 - a transformer AWS would refuse fails the delivery, not PutEvents
            _failed(Delivery(self, target, event, ""), DeliveryError("INVALID_PARAMETER", str(exc), False))
            continue
        _metric(self, "Invocations", always=False)
        delivery = Delivery(self, target, event, payload)
        if api_destination:
            _scheduler.submit(delivery)
        else:
            _attempt(delivery)


def put_events(self, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """moto's PutEvents, then every accepted event goes to the schema discoverers of its bus (schemas.py; loaded
    only once the Schemas API or CloudFormation was used, so without it no discoverer exists)."""
    results = hooks.original("events.put_events")(self, entries)
    if "securecart_lab.emulator.schemas" not in sys.modules:
        return results
    for entry, result in zip(entries, results):
        if "EventId" in result:
            bus = entry.get("EventBusName") or "default"
            bus = bus.split("event-bus/", 1)[1] if bus.startswith("arn:") and "event-bus/" in bus else bus
            _to_discoverers(self.account_id, self.region_name, bus, {
                "source": entry.get("Source"), "detail-type": entry.get("DetailType"), "account": self.account_id,
                "detail": json.loads(entry["Detail"])})
    return results


def _to_discoverers(account: str, region: str, bus: str, event: dict[str, Any]) -> None:
    """An event that arrived on a bus goes to that bus's schema discoverers (its "account" is where it was put)."""
    schemas = sys.modules.get("securecart_lab.emulator.schemas")
    if schemas is None:
        return
    try:
        schemas.discover(account, region, f"arn:aws:events:{region}:{account}:event-bus/{bus}", event)
    except Exception:  # noqa: BLE001 - discovery never fails PutEvents
        LOG.exception("schema discovery failed for an event on bus %s", bus)


# --- event bus resource policies in CloudFormation ------------------------------------------------------------------

def policy_statements(policy: Any, bus_arn: str) -> list[dict[str, Any]]:
    """The statements of a bus policy document (a dict or JSON text), each with the Sid, Effect and Resource AWS
    fills in when they are left out."""
    document = json.loads(policy) if isinstance(policy, str) else (policy or {})
    statements = document.get("Statement") or []
    statements = statements if isinstance(statements, list) else [statements]
    return [{"Sid": f"Statement{index}", "Effect": "Allow", "Resource": bus_arn, **statement}
            for index, statement in enumerate(statements) if isinstance(statement, dict)]


def _put_statement(bus, statement: dict[str, Any]):
    # Straight into the bus: moto's put_permission also drops every other statement naming the same principal.
    made = hooks.resolve("events.bus_policy_statement").from_dict(statement)
    bus._statements[statement["Sid"]] = made
    return made


def _bus_from_cfn(original):
    def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        bus = original(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        policy = (cloudformation_json.get("Properties") or {}).get("Policy")
        for statement in policy_statements(policy, bus.arn) if policy else []:
            _put_statement(bus, statement)
        return bus

    return classmethod(create_from_cloudformation_json)


def bus_policy_statement(properties: dict[str, Any], bus_arn: str) -> dict[str, Any]:
    """AWS::Events::EventBusPolicy's statement: its Statement, or the older Action/Principal/Condition form."""
    sid = properties["StatementId"]
    if properties.get("Statement"):
        return {**policy_statements({"Statement": [properties["Statement"]]}, bus_arn)[0], "Sid": sid}
    principal = str(properties.get("Principal") or "")
    statement = {"Sid": sid, "Effect": "Allow", "Action": properties.get("Action") or "events:PutEvents",
                 "Resource": bus_arn, "Principal": "*" if principal == "*" else {"AWS": f"arn:aws:iam::{principal}:root"}}
    condition = properties.get("Condition")
    if condition:
        statement["Condition"] = {condition["Type"]: {condition["Key"]: condition["Value"]}}
    return statement


def _define_bus_policy_model() -> None:
    backends = hooks.resolve("events.backends")

    def find_bus(account_id: str, region_name: str, name: Any):
        name = getattr(name, "name", name)  # moto resolves a Ref to a bus to the bus itself; AWS, to its name
        name = (name or "default").split("/")[-1]
        return backends[account_id][region_name].event_buses.get(name)

    class EventBusPolicy(hooks.resolve("cfn.model")):
        def __init__(self, bus_name: str, sid: str, statement):
            self.bus_name, self.sid, self.statement = bus_name, sid, statement

        @property
        def physical_resource_id(self) -> str:
            return self.sid

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "AWS::Events::EventBusPolicy"

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            properties = cloudformation_json["Properties"]
            bus = find_bus(account_id, region_name, properties.get("EventBusName"))
            if bus is None:
                raise hooks.resolve("events.validation_error")(
                    f"Event bus {getattr(properties.get('EventBusName'), 'name', properties.get('EventBusName'))} "
                    "does not exist.")
            made = _put_statement(bus, bus_policy_statement(properties, bus.arn))
            return cls(bus.name, properties["StatementId"], made)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json,
                                            account_id, region_name):
            return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

        def delete(self, account_id: str, region_name: str) -> None:
            bus = find_bus(account_id, region_name, self.bus_name)
            # A replacement with the same StatementId put its own statement there first: leave that one.
            if bus is not None and bus._statements.get(self.sid) is self.statement:
                bus.remove_statement(self.sid)

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            properties = cloudformation_json["Properties"]
            bus = find_bus(account_id, region_name, properties.get("EventBusName"))
            if bus is not None:
                bus.remove_statement(properties.get("StatementId"))

        def is_created(self) -> bool:
            return True


def install() -> None:
    """Replace moto's pattern matcher, TestEventPattern and rule delivery with the kit's; bus policies in
    CloudFormation (the bus's Policy property, AWS::Events::EventBusPolicy)."""
    hooks.replace("events.event_pattern", EventPattern)
    hooks.replace("events.response.test_event_pattern", test_event_pattern)
    hooks.replace("events.send_to_targets", send_to_targets)
    hooks.replace("events.put_events", put_events)
    hooks.replace("events.bus.create_from_cfn", _bus_from_cfn(hooks.original("events.bus.create_from_cfn")))
    hooks.add("events.bus", "physical_resource_id", property(lambda bus: bus.name))
    _define_bus_policy_model()
