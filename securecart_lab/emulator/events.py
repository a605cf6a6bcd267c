"""EventBridge: deliver matched events to Step Functions, Lambda, SNS and SQS, as AWS does.

moto delivers only to SQS, logs, archives and buses, and raises NotImplementedError (HTTP 500) for the rest.
Targets honour Input, InputPath and InputTransformer. A failing target is logged and skipped, never
failing PutEvents (AWS retries and dead-letters it instead).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timezone
from typing import Any

from jsonpath_ng.ext import parse as jsonpath

from securecart_lab.emulator import hooks, lambda_runtime

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
        hooks.resolve("events.send_to_logs")(rule, parsed.resource_id.split(":")[0], dict(event))
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
    elif service == "events" and parsed.resource_type == "event-bus":
        hooks.resolve("events.backends")[account][region].put_events([{
            "Source": event["source"], "DetailType": event["detail-type"], "Detail": json.dumps(event["detail"]),
            "Resources": event.get("resources", []), "EventBusName": parsed.resource_id,
        }])
    else:
        LOG.warning("EventBridge target %s is not supported by the local engine; event %s not delivered", arn, event["id"])


def _json_text(payload: str) -> str:
    try:
        json.loads(payload)
        return payload
    except ValueError:
        return json.dumps(payload)


def send_to_targets(self, original_event: dict[str, Any], transform_input: bool = True) -> None:
    if not self.event_pattern.matches_event(original_event):
        return
    for target in self.targets:
        service = target["Arn"].split(":")[2] if target["Arn"].count(":") >= 2 else ""
        # Archives and buses keep moto's internal event shape (epoch time, ingestion-time).
        internal = service == "events"
        event = dict(original_event) if internal else aws_event(original_event)
        payload = "" if internal else transform({**target, "_rule_arn": getattr(self, "arn", None)}, event)
        try:
            _deliver(self, target, event, payload)
        except Exception:
            LOG.exception("EventBridge rule %s: delivery to %s failed", self.name, target["Arn"])


def install() -> None:
    """Replace moto's rule delivery with the kit's."""
    hooks.replace("events.send_to_targets", send_to_targets)
