"""Drift detection: what a stack's resources look like now, read through the services' own APIs, against what
its template says (DetectStackDrift, DetectStackResourceDrift, DescribeStackResourceDrifts,
DescribeStackDriftDetectionStatus, in AWS's shapes).

As on AWS, only properties the template sets are compared, and a resource type the kit cannot read is
NOT_CHECKED. The readers cover what labs 2 and 3 make learners change by hand: group capacities, target group
health checks, security group rules, SSM parameters, DB instance class and storage.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from securecart_lab.emulator.cloudformation.updaters import acting_in, client


class Gone(Exception):
    """The resource no longer exists."""


def _missing(exc: Exception, *codes: str) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in codes


# --- readers: physical id -> the live values of the template properties they know ------------------------------

def _group(physical_id: str) -> dict:
    groups = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[physical_id])["AutoScalingGroups"]
    if not groups:
        raise Gone()
    group = groups[0]
    return {"MinSize": group["MinSize"], "MaxSize": group["MaxSize"], "DesiredCapacity": group["DesiredCapacity"],
            "HealthCheckType": group.get("HealthCheckType"), "HealthCheckGracePeriod": group.get("HealthCheckGracePeriod"),
            "Cooldown": group.get("DefaultCooldown"), "TargetGroupARNs": sorted(group.get("TargetGroupARNs") or []),
            "VPCZoneIdentifier": sorted(s for s in (group.get("VPCZoneIdentifier") or "").split(",") if s)}


def _target_group(physical_id: str) -> dict:
    try:
        found = client("elbv2").describe_target_groups(TargetGroupArns=[physical_id])["TargetGroups"]
    except Exception as exc:
        if _missing(exc, "TargetGroupNotFound"):
            raise Gone() from None
        raise
    if not found:
        raise Gone()
    tg = found[0]
    live = {k: tg.get(k) for k in ("Port", "Protocol", "HealthCheckProtocol", "HealthCheckPort", "HealthCheckPath",
                                   "HealthCheckEnabled", "HealthCheckIntervalSeconds", "HealthCheckTimeoutSeconds",
                                   "HealthyThresholdCount", "UnhealthyThresholdCount", "TargetType")}
    if tg.get("Matcher"):
        live["Matcher"] = tg["Matcher"]
    return live


def _rules(permissions: list[dict], outbound: bool = False) -> list[dict]:
    """EC2's IpPermissions as the template's rule list (one rule per source)."""
    rules = []
    for permission in permissions:
        base: dict[str, Any] = {"IpProtocol": permission.get("IpProtocol")}
        if permission.get("IpProtocol") not in ("-1", "all"):
            base.update(FromPort=permission.get("FromPort"), ToPort=permission.get("ToPort"))
        for source in permission.get("IpRanges") or []:
            rules.append({**base, "CidrIp": source["CidrIp"]})
        for source in permission.get("Ipv6Ranges") or []:
            rules.append({**base, "CidrIpv6": source["CidrIpv6"]})
        for source in permission.get("UserIdGroupPairs") or []:
            key = "DestinationSecurityGroupId" if outbound else "SourceSecurityGroupId"
            rules.append({**base, key: source["GroupId"]})
        for source in permission.get("PrefixListIds") or []:
            key = "DestinationPrefixListId" if outbound else "SourcePrefixListId"
            rules.append({**base, key: source["PrefixListId"]})
    return rules


def _security_group(physical_id: str) -> dict:
    try:
        groups = client("ec2").describe_security_groups(GroupIds=[physical_id])["SecurityGroups"]
    except Exception as exc:
        if _missing(exc, "InvalidGroup.NotFound", "InvalidGroupId.NotFound"):
            raise Gone() from None
        raise
    group = groups[0]
    return {"GroupDescription": group.get("Description"), "SecurityGroupIngress": _rules(group.get("IpPermissions") or []),
            "SecurityGroupEgress": _rules(group.get("IpPermissionsEgress") or [], outbound=True)}


def _parameter(physical_id: str) -> dict:
    try:
        parameter = client("ssm").get_parameter(Name=physical_id)["Parameter"]
    except Exception as exc:
        if _missing(exc, "ParameterNotFound"):
            raise Gone() from None
        raise
    return {"Value": parameter["Value"], "Type": parameter["Type"]}


def _db_instance(physical_id: str) -> dict:
    try:
        db = client("rds").describe_db_instances(DBInstanceIdentifier=physical_id)["DBInstances"][0]
    except Exception as exc:
        if _missing(exc, "DBInstanceNotFound", "DBInstanceNotFoundFault"):
            raise Gone() from None
        raise
    return {"DBInstanceClass": db.get("DBInstanceClass"), "AllocatedStorage": db.get("AllocatedStorage"),
            "MultiAZ": db.get("MultiAZ"), "BackupRetentionPeriod": db.get("BackupRetentionPeriod"),
            "PubliclyAccessible": db.get("PubliclyAccessible"), "DeletionProtection": db.get("DeletionProtection"),
            "StorageType": db.get("StorageType"), "Engine": db.get("Engine")}


READERS: dict[str, Callable[[str], dict]] = {
    "AWS::AutoScaling::AutoScalingGroup": _group,
    "AWS::ElasticLoadBalancingV2::TargetGroup": _target_group,
    "AWS::EC2::SecurityGroup": _security_group,
    "AWS::SSM::Parameter": _parameter,
    "AWS::RDS::DBInstance": _db_instance,
}
# Lists whose order means nothing (compared as sets).
_UNORDERED = {"TargetGroupARNs", "VPCZoneIdentifier", "SecurityGroupIngress", "SecurityGroupEgress"}


def _plain(value: Any) -> Any:
    """Template and API values in one form: "2" and 2 are the same number, "True" and true the same boolean."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(int(value)) if float(value).is_integer() else str(value)
    if isinstance(value, str):
        return value.lower() if value.lower() in ("true", "false") else value
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    return value


def _rule_key(rule: dict) -> str:
    rule = _plain({k: v for k, v in rule.items() if k != "Description"})
    if rule.get("IpProtocol") in ("-1", "all"):
        rule = {k: v for k, v in rule.items() if k not in ("FromPort", "ToPort")}
        rule["IpProtocol"] = "-1"
    return json.dumps(rule, sort_keys=True)


def differences(expected: dict, actual: dict) -> list[dict]:
    """AWS's PropertyDifferences for the properties set in the template that the reader knows."""
    found = []
    for name, wanted in expected.items():
        if name not in actual:
            continue
        live = actual[name]
        if name in ("SecurityGroupIngress", "SecurityGroupEgress"):
            wanted_keys = [_rule_key(r) for r in wanted or []]
            live_keys = [_rule_key(r) for r in live or []]
            for index, key in enumerate(wanted_keys):
                if key not in live_keys:
                    found.append({"PropertyPath": f"/{name}/{index}", "ExpectedValue": _text(wanted[index]),
                                  "ActualValue": "null", "DifferenceType": "REMOVE"})
            for index, key in enumerate(live_keys):
                if key not in wanted_keys:
                    found.append({"PropertyPath": f"/{name}/{index}", "ExpectedValue": "null",
                                  "ActualValue": _text(live[index]), "DifferenceType": "ADD"})
            continue
        left, right = _plain(wanted), _plain(live)
        if name in _UNORDERED and isinstance(left, list) and isinstance(right, list):
            left, right = sorted(left, key=json.dumps), sorted(right, key=json.dumps)
        if name == "Matcher" and isinstance(left, dict) and isinstance(right, dict):
            right = {k: v for k, v in right.items() if k in left}
        if left != right:
            found.append({"PropertyPath": f"/{name}", "ExpectedValue": _text(wanted), "ActualValue": _text(live),
                          "DifferenceType": "NOT_EQUAL"})
    return found


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@dataclass
class Detection:
    id: str
    stack: Any
    drifts: dict[str, dict] = field(default_factory=dict)  # logical id -> StackResourceDrift
    timestamp: datetime = field(default_factory=lambda: datetime.now(timezone.utc))

    def status(self) -> dict:
        drifted = [d for d in self.drifts.values() if d["StackResourceDriftStatus"] in ("MODIFIED", "DELETED")]
        return {"StackId": self.stack.stack_id, "StackDriftDetectionId": self.id,
                "StackDriftStatus": "DRIFTED" if drifted else "IN_SYNC", "DetectionStatus": "DETECTION_COMPLETE",
                "DriftedStackResourceCount": len(drifted), "Timestamp": self.timestamp}


def resource_drift(stack, logical_id: str, expected: dict, resource_type: str, physical_id: str | None) -> dict:
    """One StackResourceDrift: `expected` are the resource's template properties, resolved."""
    drift: dict[str, Any] = {"StackId": stack.stack_id, "LogicalResourceId": logical_id, "ResourceType": resource_type,
                             "Timestamp": datetime.now(timezone.utc)}
    if physical_id:
        drift["PhysicalResourceId"] = physical_id
    reader = READERS.get(resource_type)
    if reader is None or not physical_id:
        return {**drift, "StackResourceDriftStatus": "NOT_CHECKED"}
    drift["ExpectedProperties"] = json.dumps(expected, sort_keys=True, default=str)
    try:
        with acting_in(getattr(stack, "account_id", None)):
            live = reader(physical_id)
    except Gone:
        return {**drift, "StackResourceDriftStatus": "DELETED"}
    found = differences(expected, live)
    actual = {**expected, **{k: v for k, v in live.items() if k in expected}}
    drift["ActualProperties"] = json.dumps(actual, sort_keys=True, default=str)
    drift["PropertyDifferences"] = found
    drift["StackResourceDriftStatus"] = "MODIFIED" if found else "IN_SYNC"
    return drift


def new_id() -> str:
    return str(uuid.uuid4())
