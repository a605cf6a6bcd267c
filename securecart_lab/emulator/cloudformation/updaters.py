"""In-place updates: a resource whose changed properties AWS updates without replacement is changed through its
service's own API (the emulator's, so the bridges make the real things follow: one more app process, the same
load balancer port, the same database).

Each updater takes (physical id, properties before, properties after, names of the changed properties), with
properties resolved (Refs and GetAtts replaced by values). Rollback calls the same updater with before and after
swapped. A type or property not listed here is replaced instead (`can_update`), and the stack events say so.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import json
import os
import time
from collections.abc import Callable
from typing import Any

from securecart_lab.config import ACCOUNT_ID, SECRET_KEY, access_key_for

REFRESH_WAIT_SECONDS = 60

# The account of the stack being updated: its resources are updated in that account (lab 4's security account too).
_account: contextvars.ContextVar[str] = contextvars.ContextVar("stack_account", default=ACCOUNT_ID)


def client(service: str, region: str = "us-east-1"):
    """A boto3 client of this emulator (the services' own APIs, with their validation and the kit's bridges), acting
    as the admin of the account whose stack is being updated."""
    return _client(service, region, _account.get())


@functools.lru_cache(maxsize=None)
def _client(service: str, region: str, account: str):
    import boto3
    from botocore.config import Config

    return boto3.client(service, endpoint_url=f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}",
                        region_name=region, aws_access_key_id=access_key_for(account), aws_secret_access_key=SECRET_KEY,
                        config=Config(retries={"max_attempts": 1}, read_timeout=300))


def _tags(value) -> dict[str, str]:
    return {t["Key"]: str(t["Value"]) for t in value or [] if isinstance(t, dict) and "Key" in t}


def _tag_diff(before, after) -> tuple[dict[str, str], list[str]]:
    old, new = _tags(before), _tags(after)
    return {k: v for k, v in new.items() if old.get(k) != v}, [k for k in old if k not in new]


def _retag(before: dict, after: dict, untag: Callable[[list[str]], Any], tag: Callable[[dict[str, str]], Any]) -> None:
    """The template's new Tags through the service's calls: the keys it dropped untagged, new or changed values tagged."""
    put, removed = _tag_diff(before.get("Tags"), after.get("Tags"))
    if removed:
        untag(removed)
    if put:
        tag(put)


def _key_values(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in tags.items()]


def _bool(value) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _int(value):
    return None if value is None else int(value)


# --- EC2 -------------------------------------------------------------------------------------------------------

def _ec2_tags(physical_id: str, before: dict, after: dict) -> None:
    ec2 = client("ec2")
    _retag(before, after, lambda keys: ec2.delete_tags(Resources=[physical_id], Tags=[{"Key": k} for k in keys]),
           lambda tags: ec2.create_tags(Resources=[physical_id], Tags=_key_values(tags)))


def _vpc(physical_id, before, after, changed) -> None:
    for name in ("EnableDnsSupport", "EnableDnsHostnames"):
        if name in changed:
            client("ec2").modify_vpc_attribute(VpcId=physical_id, **{name: {"Value": _bool(after.get(name, True))}})
    _ec2_tags(physical_id, before, after)


def _subnet(physical_id, before, after, changed) -> None:
    if "MapPublicIpOnLaunch" in changed:
        client("ec2").modify_subnet_attribute(SubnetId=physical_id,
                                              MapPublicIpOnLaunch={"Value": _bool(after.get("MapPublicIpOnLaunch", False))})
    _ec2_tags(physical_id, before, after)


def _tags_only(physical_id, before, after, changed) -> None:
    _ec2_tags(physical_id, before, after)


def _route(physical_id, before, after, changed) -> None:
    targets = {k: after[k] for k in ("GatewayId", "NatGatewayId", "InstanceId", "NetworkInterfaceId",
                                      "VpcPeeringConnectionId", "TransitGatewayId") if after.get(k)}
    client("ec2").replace_route(RouteTableId=after["RouteTableId"], DestinationCidrBlock=after["DestinationCidrBlock"],
                                **targets)


def _gateway_attachment(physical_id, before, after, changed) -> None:
    ec2 = client("ec2")
    if before.get("InternetGatewayId"):
        ec2.detach_internet_gateway(InternetGatewayId=before["InternetGatewayId"], VpcId=before["VpcId"])
    if after.get("InternetGatewayId"):
        ec2.attach_internet_gateway(InternetGatewayId=after["InternetGatewayId"], VpcId=after["VpcId"])


def _permission(rule: dict) -> dict:
    protocol = str(rule.get("IpProtocol", "-1"))
    permission: dict[str, Any] = {"IpProtocol": protocol}
    if protocol not in ("-1", "all"):
        permission["FromPort"] = int(rule.get("FromPort", -1))
        permission["ToPort"] = int(rule.get("ToPort", -1))
    description = {"Description": rule["Description"]} if rule.get("Description") else {}
    if rule.get("CidrIp"):
        permission["IpRanges"] = [{"CidrIp": rule["CidrIp"], **description}]
    if rule.get("CidrIpv6"):
        permission["Ipv6Ranges"] = [{"CidrIpv6": rule["CidrIpv6"], **description}]
    group = rule.get("SourceSecurityGroupId") or rule.get("DestinationSecurityGroupId")
    if group:
        permission["UserIdGroupPairs"] = [{"GroupId": group, **description}]
    prefix = rule.get("SourcePrefixListId") or rule.get("DestinationPrefixListId")
    if prefix:
        permission["PrefixListIds"] = [{"PrefixListId": prefix, **description}]
    return permission


def _security_group(physical_id, before, after, changed) -> None:
    ec2 = client("ec2")
    for name, authorize, revoke in (("SecurityGroupIngress", ec2.authorize_security_group_ingress,
                                     ec2.revoke_security_group_ingress),
                                    ("SecurityGroupEgress", ec2.authorize_security_group_egress,
                                     ec2.revoke_security_group_egress)):
        if name not in changed:
            continue
        old = [_permission(r) for r in before.get(name) or []]
        new = [_permission(r) for r in after.get(name) or []]
        gone = [p for p in old if p not in new]
        added = [p for p in new if p not in old]
        if gone:
            revoke(GroupId=physical_id, IpPermissions=gone)
        if added:
            authorize(GroupId=physical_id, IpPermissions=added)
    _ec2_tags(physical_id, before, after)


def _launch_template(physical_id, before, after, changed) -> None:
    ec2 = client("ec2")
    if "LaunchTemplateData" in changed:
        version = ec2.create_launch_template_version(LaunchTemplateId=physical_id,
                                                     LaunchTemplateData=after.get("LaunchTemplateData") or {})
        number = version["LaunchTemplateVersion"]["VersionNumber"]
        ec2.modify_launch_template(LaunchTemplateId=physical_id, DefaultVersion=str(number))


# --- Auto Scaling ----------------------------------------------------------------------------------------------

def _group_instances(name: str) -> list[dict]:
    groups = client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"]
    return groups[0]["Instances"] if groups else []


def _refresh(name: str, desired: int) -> None:
    """Replace the group's instances with ones from its new launch template, keeping `desired` in service:
    launch the new ones first, wait until they pass the health checks, then retire the old ones (an instance
    refresh). When the new ones never pass, they go and the old ones keep serving: the update fails (and rolls
    back), as a rolling update does on AWS."""
    autoscaling = client("autoscaling")
    old = [i["InstanceId"] for i in _group_instances(name)]
    if not old:
        return
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
    target_groups = group.get("TargetGroupARNs") or []
    try:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=max(group["MaxSize"], desired + len(old)),
                                              DesiredCapacity=desired + len(old))
        deadline = time.monotonic() + REFRESH_WAIT_SECONDS
        reasons: dict[str, str] = {}
        while time.monotonic() < deadline:
            fresh = {i["InstanceId"] for i in _group_instances(name) if i["InstanceId"] not in old and i["LifecycleState"] == "InService"}
            reasons = _unhealthy(target_groups, fresh)
            if len(fresh) >= desired and not reasons:
                break
            # An instance whose user data starts no app never will: no use waiting out the deadline.
            if len(fresh) >= desired and all(_NO_APP in reason for reason in reasons.values()):
                break
            time.sleep(0.2)
        else:
            reasons = reasons or {"": f"not enough new instances in service after {REFRESH_WAIT_SECONDS} s"}
        if reasons:
            for instance in _group_instances(name):  # the new ones go; the instances the group had keep serving
                if instance["InstanceId"] not in old:
                    _terminate(instance["InstanceId"])
            found = "; ".join(f"{i}: {r}" if i else r for i, r in sorted(reasons.items()))
            logs = " ".join(f"securecart-lab logs instance {i}" for i in sorted(reasons) if i)
            raise RuntimeError(f"The instances of the new launch template did not pass the target group's health checks "
                               f"({found}); the previous instances keep serving."
                               + (f" Their logs: {logs} (or aws ec2 get-console-output)." if logs else ""))
        still = {i["InstanceId"] for i in _group_instances(name)}
        for instance_id in old:
            if instance_id in still:  # one its health checks replaced meanwhile has left the group already
                _terminate(instance_id)
        elbv2 = client("elbv2")
        for arn in target_groups:  # out of the group first, or the reconciler registers them again
            registered = {d["Target"]["Id"] for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
            if registered & set(old):  # a terminated instance has usually left already
                elbv2.deregister_targets(TargetGroupArn=arn, Targets=[{"Id": i} for i in old if i in registered])
    finally:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=name, MaxSize=group["MaxSize"], DesiredCapacity=desired)


_NO_APP = "no running app process"


def _terminate(instance_id: str) -> None:
    try:
        client("autoscaling").terminate_instance_in_auto_scaling_group(InstanceId=instance_id,
                                                                       ShouldDecrementDesiredCapacity=True)
    except Exception as exc:
        if "No managed instance found" not in str(exc):  # it left the group meanwhile: nothing to do
            raise


def _unhealthy(target_groups: list[str], instance_ids: set[str]) -> dict[str, str]:
    """Instance id -> why it is not healthy in one of the target groups (empty when all are healthy)."""
    elbv2 = client("elbv2")
    found: dict[str, str] = {}
    for arn in target_groups:
        health = {d["Target"]["Id"]: d["TargetHealth"]
                  for d in elbv2.describe_target_health(TargetGroupArn=arn)["TargetHealthDescriptions"]}
        for instance_id in instance_ids:
            state = health.get(instance_id) or {"State": "unregistered"}
            if state["State"] != "healthy":
                found[instance_id] = " ".join(filter(None, (state["State"], state.get("Reason"), state.get("Description"))))
    return found


def _group(physical_id, before, after, changed) -> None:
    autoscaling = client("autoscaling")
    update: dict[str, Any] = {}
    for name, key, convert in (("MinSize", "MinSize", int), ("MaxSize", "MaxSize", int),
                               ("DesiredCapacity", "DesiredCapacity", int),
                               ("HealthCheckGracePeriod", "HealthCheckGracePeriod", int),
                               ("HealthCheckType", "HealthCheckType", str), ("Cooldown", "DefaultCooldown", int),
                               ("TerminationPolicies", "TerminationPolicies", list)):
        if name in changed and after.get(name) is not None:
            update[key] = convert(after[name])
    if "DesiredCapacity" in changed and after.get("DesiredCapacity") is None:
        update["DesiredCapacity"] = int(after.get("MinSize", 0))
    if "VPCZoneIdentifier" in changed:
        update["VPCZoneIdentifier"] = ",".join(after.get("VPCZoneIdentifier") or [])
    if "LaunchTemplate" in changed and after.get("LaunchTemplate"):
        template = after["LaunchTemplate"]
        update["LaunchTemplate"] = {k: str(v) for k, v in template.items() if k in ("LaunchTemplateId", "LaunchTemplateName", "Version")}
    if update:
        autoscaling.update_auto_scaling_group(AutoScalingGroupName=physical_id, **update)
    if "TargetGroupARNs" in changed:
        old, new = set(before.get("TargetGroupARNs") or []), set(after.get("TargetGroupARNs") or [])
        if new - old:
            autoscaling.attach_load_balancer_target_groups(AutoScalingGroupName=physical_id, TargetGroupARNs=sorted(new - old))
        if old - new:
            autoscaling.detach_load_balancer_target_groups(AutoScalingGroupName=physical_id, TargetGroupARNs=sorted(old - new))
    if "Tags" in changed:
        common = {"ResourceId": physical_id, "ResourceType": "auto-scaling-group"}
        propagate = {t["Key"]: _bool(t.get("PropagateAtLaunch", False)) for t in after.get("Tags") or []}
        _retag(before, after, lambda keys: autoscaling.delete_tags(Tags=[{**common, "Key": k} for k in keys]),
               lambda tags: autoscaling.create_or_update_tags(Tags=[
                   {**common, "Key": k, "Value": v, "PropagateAtLaunch": propagate.get(k, False)} for k, v in tags.items()]))
    if "LaunchTemplate" in changed:
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[physical_id])["AutoScalingGroups"][0]
        _refresh(physical_id, group["DesiredCapacity"])


# --- Elastic Load Balancing v2 ---------------------------------------------------------------------------------

def _elb_tags(arn: str, before: dict, after: dict) -> None:
    elbv2 = client("elbv2")
    _retag(before, after, lambda keys: elbv2.remove_tags(ResourceArns=[arn], TagKeys=keys),
           lambda tags: elbv2.add_tags(ResourceArns=[arn], Tags=_key_values(tags)))


_HEALTH = {"HealthCheckProtocol": str, "HealthCheckPort": str, "HealthCheckPath": str, "HealthCheckEnabled": _bool,
           "HealthCheckIntervalSeconds": int, "HealthCheckTimeoutSeconds": int, "HealthyThresholdCount": int,
           "UnhealthyThresholdCount": int}


def _target_group(physical_id, before, after, changed) -> None:
    elbv2 = client("elbv2")
    update = {k: convert(after[k]) for k, convert in _HEALTH.items() if k in changed and after.get(k) is not None}
    if "Matcher" in changed and after.get("Matcher"):
        update["Matcher"] = after["Matcher"]
    if update:
        elbv2.modify_target_group(TargetGroupArn=physical_id, **update)
    if "TargetGroupAttributes" in changed and after.get("TargetGroupAttributes"):
        elbv2.modify_target_group_attributes(TargetGroupArn=physical_id, Attributes=[
            {"Key": a["Key"], "Value": str(a["Value"])} for a in after["TargetGroupAttributes"]])
    if "Targets" in changed:
        old = [{"Id": t["Id"], **({"Port": int(t["Port"])} if t.get("Port") else {})} for t in before.get("Targets") or []]
        new = [{"Id": t["Id"], **({"Port": int(t["Port"])} if t.get("Port") else {})} for t in after.get("Targets") or []]
        if [t for t in old if t not in new]:
            elbv2.deregister_targets(TargetGroupArn=physical_id, Targets=[t for t in old if t not in new])
        if [t for t in new if t not in old]:
            elbv2.register_targets(TargetGroupArn=physical_id, Targets=[t for t in new if t not in old])
    _elb_tags(physical_id, before, after)


def _load_balancer(physical_id, before, after, changed) -> None:
    elbv2 = client("elbv2")
    if "Subnets" in changed:
        elbv2.set_subnets(LoadBalancerArn=physical_id, Subnets=after.get("Subnets") or [])
    if "SecurityGroups" in changed:
        elbv2.set_security_groups(LoadBalancerArn=physical_id, SecurityGroups=after.get("SecurityGroups") or [])
    if "LoadBalancerAttributes" in changed and after.get("LoadBalancerAttributes"):
        elbv2.modify_load_balancer_attributes(LoadBalancerArn=physical_id, Attributes=[
            {"Key": a["Key"], "Value": str(a["Value"])} for a in after["LoadBalancerAttributes"]])
    _elb_tags(physical_id, before, after)


def _listener(physical_id, before, after, changed) -> None:
    update: dict[str, Any] = {}
    if "Port" in changed:
        update["Port"] = int(after["Port"])
    if "Protocol" in changed:
        update["Protocol"] = after["Protocol"]
    if "DefaultActions" in changed:
        update["DefaultActions"] = after.get("DefaultActions") or []
    if update:
        client("elbv2").modify_listener(ListenerArn=physical_id, **update)


# --- RDS -------------------------------------------------------------------------------------------------------

def _rds_tags(arn: str, before: dict, after: dict) -> None:
    rds = client("rds")
    _retag(before, after, lambda keys: rds.remove_tags_from_resource(ResourceName=arn, TagKeys=keys),
           lambda tags: rds.add_tags_to_resource(ResourceName=arn, Tags=_key_values(tags)))


def _subnet_group(physical_id, before, after, changed) -> None:
    rds = client("rds")
    if changed & {"DBSubnetGroupDescription", "SubnetIds"}:
        rds.modify_db_subnet_group(DBSubnetGroupName=physical_id, SubnetIds=after.get("SubnetIds") or [],
                                   DBSubnetGroupDescription=after.get("DBSubnetGroupDescription", ""))
    if "Tags" in changed:
        _rds_tags(f"arn:aws:rds:us-east-1:{_account.get()}:subgrp:{physical_id}", before, after)


# Template property -> (ModifyDBInstance parameter, conversion)
_DB_MODIFIABLE: dict[str, tuple[str, Callable]] = {
    "DBInstanceClass": ("DBInstanceClass", str), "AllocatedStorage": ("AllocatedStorage", int),
    "MultiAZ": ("MultiAZ", _bool), "BackupRetentionPeriod": ("BackupRetentionPeriod", int),
    "PubliclyAccessible": ("PubliclyAccessible", _bool), "EngineVersion": ("EngineVersion", str),
    "VPCSecurityGroups": ("VpcSecurityGroupIds", list), "VpcSecurityGroupIds": ("VpcSecurityGroupIds", list),
    "PreferredBackupWindow": ("PreferredBackupWindow", str),
    "PreferredMaintenanceWindow": ("PreferredMaintenanceWindow", str),
    "DeletionProtection": ("DeletionProtection", _bool), "StorageType": ("StorageType", str), "Iops": ("Iops", int),
    "CopyTagsToSnapshot": ("CopyTagsToSnapshot", _bool), "AutoMinorVersionUpgrade": ("AutoMinorVersionUpgrade", _bool),
    "MonitoringInterval": ("MonitoringInterval", int), "MaxAllocatedStorage": ("MaxAllocatedStorage", int),
    "DBParameterGroupName": ("DBParameterGroupName", str), "AllowMajorVersionUpgrade": ("AllowMajorVersionUpgrade", _bool),
    "EnablePerformanceInsights": ("EnablePerformanceInsights", _bool),
}


def _db_instance(physical_id, before, after, changed) -> None:
    update = {api: convert(after[name]) for name, (api, convert) in _DB_MODIFIABLE.items()
              if name in changed and after.get(name) is not None}
    if update:
        client("rds").modify_db_instance(DBInstanceIdentifier=physical_id, ApplyImmediately=True, **update)
    if "Tags" in changed:
        _rds_tags(f"arn:aws:rds:us-east-1:{_account.get()}:db:{physical_id}", before, after)


# --- S3, SSM, CloudWatch ---------------------------------------------------------------------------------------

def _website(config: dict) -> dict:
    website: dict[str, Any] = {}
    if config.get("IndexDocument"):
        website["IndexDocument"] = {"Suffix": config["IndexDocument"]}
    if config.get("ErrorDocument"):
        website["ErrorDocument"] = {"Key": config["ErrorDocument"]}
    if config.get("RedirectAllRequestsTo"):
        website["RedirectAllRequestsTo"] = config["RedirectAllRequestsTo"]
    if config.get("RoutingRules"):
        website["RoutingRules"] = config["RoutingRules"]
    return website


def _bucket(physical_id, before, after, changed) -> None:
    s3 = client("s3")
    if "WebsiteConfiguration" in changed:
        if after.get("WebsiteConfiguration"):
            s3.put_bucket_website(Bucket=physical_id, WebsiteConfiguration=_website(after["WebsiteConfiguration"]))
        else:
            s3.delete_bucket_website(Bucket=physical_id)
    if "PublicAccessBlockConfiguration" in changed:
        if after.get("PublicAccessBlockConfiguration"):
            block = {k: _bool(v) for k, v in after["PublicAccessBlockConfiguration"].items()}
            s3.put_public_access_block(Bucket=physical_id, PublicAccessBlockConfiguration=block)
        else:
            s3.delete_public_access_block(Bucket=physical_id)
    if "VersioningConfiguration" in changed and after.get("VersioningConfiguration"):
        s3.put_bucket_versioning(Bucket=physical_id,
                                 VersioningConfiguration={"Status": after["VersioningConfiguration"]["Status"]})
    if "Tags" in changed:
        tags = _tags(after.get("Tags"))
        if tags:
            s3.put_bucket_tagging(Bucket=physical_id, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]})
        else:
            s3.delete_bucket_tagging(Bucket=physical_id)


def _bucket_policy(physical_id, before, after, changed) -> None:
    document = after.get("PolicyDocument")
    client("s3").put_bucket_policy(Bucket=after["Bucket"],
                                   Policy=document if isinstance(document, str) else json.dumps(document))


def _parameter(physical_id, before, after, changed) -> None:
    extra = {k: after[k] for k in ("Description", "AllowedPattern", "Tier", "DataType") if after.get(k)}
    client("ssm").put_parameter(Name=physical_id, Value=str(after["Value"]), Type=after.get("Type", "String"),
                                Overwrite=True, **extra)


def _dashboard(physical_id, before, after, changed) -> None:
    client("cloudwatch").put_dashboard(DashboardName=physical_id, DashboardBody=after["DashboardBody"])


# --- EventBridge Schemas ----------------------------------------------------------------------------------------------

def _schemas_tags(arn: str, before: dict, after: dict) -> None:
    schemas = client("schemas")
    _retag(before, after, lambda keys: schemas.untag_resource(ResourceArn=arn, TagKeys=keys),
           lambda tags: schemas.tag_resource(ResourceArn=arn, Tags=tags))


def _schema_registry(physical_id, before, after, changed) -> None:
    if "Description" in changed:
        client("schemas").update_registry(RegistryName=physical_id.rsplit("/", 1)[1],
                                          Description=after.get("Description") or "")
    _schemas_tags(physical_id, before, after)


def _event_schema(physical_id, before, after, changed) -> None:
    """New Content or Type is a new version of the schema, as on AWS."""
    registry, name = physical_id.split(":schema/", 1)[1].split("/", 1)
    update: dict[str, Any] = {}
    if changed & {"Content", "Type"}:
        update.update(Content=after["Content"], Type=after["Type"])
    if "Description" in changed:
        update["Description"] = after.get("Description") or ""
    if update:
        client("schemas").update_schema(RegistryName=registry, SchemaName=name, **update)
    _schemas_tags(physical_id, before, after)


def _discoverer(physical_id, before, after, changed) -> None:
    update: dict[str, Any] = {}
    if "Description" in changed:
        update["Description"] = after.get("Description") or ""
    if "CrossAccount" in changed:
        update["CrossAccount"] = _bool(after.get("CrossAccount", True))
    if update:
        client("schemas").update_discoverer(DiscovererId=physical_id.rsplit("/", 1)[1], **update)
    _schemas_tags(physical_id, before, after)


# --- EventBridge and CloudWatch Logs (lab 4) -------------------------------------------------------------------

def _event_bus(physical_id, before, after, changed) -> None:
    from securecart_lab.emulator.events import policy_statements

    events = client("events")
    name = after.get("Name") or physical_id.rsplit("/", 1)[-1]
    arn = events.describe_event_bus(Name=name)["Arn"]
    if "Policy" in changed:
        if before.get("Policy"):
            events.remove_permission(EventBusName=name, RemoveAllPermissions=True)
        if after.get("Policy"):
            events.put_permission(EventBusName=name, Policy=json.dumps(
                {"Version": "2012-10-17", "Statement": policy_statements(after["Policy"], arn)}))


def _event_bus_policy(physical_id, before, after, changed) -> None:
    # PutPermission cannot say what a Statement says: the statement is rewritten in place, in the stack's account.
    from securecart_lab.emulator import hooks
    from securecart_lab.emulator.events import bus_policy_statement

    bus_name = (getattr(after.get("EventBusName"), "name", after.get("EventBusName")) or "default").split("/")[-1]
    bus = hooks.resolve("events.backends")[_account.get()]["us-east-1"].event_buses[bus_name]
    statement = bus_policy_statement(after, bus.arn)
    current = bus._statements.get(after["StatementId"])
    if current is None:
        current = hooks.resolve("events.bus_policy_statement").from_dict(statement)
        bus._statements[after["StatementId"]] = current
    current.principal, current.action, current.resource = statement["Principal"], statement["Action"], statement["Resource"]
    current.effect, current.condition = statement.get("Effect", "Allow"), statement.get("Condition")


def _rule(physical_id, before, after, changed) -> None:
    events = client("events")
    name = after.get("Name") or physical_id.split("|")[-1]
    bus = getattr(after.get("EventBusName"), "name", after.get("EventBusName")) or "default"
    bus = bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus
    pattern = after.get("EventPattern")
    rule = {"Name": name, "EventBusName": bus, "State": after.get("State") or "ENABLED",
            **({"EventPattern": pattern if isinstance(pattern, str) else json.dumps(pattern)} if pattern else {}),
            **{key: after[key] for key in ("ScheduleExpression", "Description", "RoleArn") if after.get(key)}}
    if changed - {"Targets"}:
        events.put_rule(**rule)
    if "Targets" in changed:
        wanted = {target["Id"]: target for target in after.get("Targets") or []}
        gone = [t["Id"] for t in events.list_targets_by_rule(Rule=name, EventBusName=bus)["Targets"] if t["Id"] not in wanted]
        if gone:
            events.remove_targets(Rule=name, EventBusName=bus, Ids=gone)
        if wanted:
            events.put_targets(Rule=name, EventBusName=bus, Targets=list(wanted.values()))


def _log_resource_policy(physical_id, before, after, changed) -> None:
    document = after["PolicyDocument"]
    client("logs").put_resource_policy(policyName=after.get("PolicyName") or physical_id,
                                       policyDocument=document if isinstance(document, str) else json.dumps(document))


# type -> (updater, the properties it updates)
UPDATERS: dict[str, tuple[Callable, frozenset[str]]] = {
    "AWS::EC2::VPC": (_vpc, frozenset({"EnableDnsSupport", "EnableDnsHostnames", "Tags"})),
    "AWS::EC2::Subnet": (_subnet, frozenset({"MapPublicIpOnLaunch", "Tags"})),
    "AWS::EC2::InternetGateway": (_tags_only, frozenset({"Tags"})),
    "AWS::EC2::RouteTable": (_tags_only, frozenset({"Tags"})),
    "AWS::EC2::Route": (_route, frozenset({"GatewayId", "NatGatewayId", "InstanceId", "NetworkInterfaceId",
                                           "VpcPeeringConnectionId", "TransitGatewayId"})),
    "AWS::EC2::VPCGatewayAttachment": (_gateway_attachment, frozenset({"InternetGatewayId"})),
    "AWS::EC2::SecurityGroup": (_security_group, frozenset({"SecurityGroupIngress", "SecurityGroupEgress", "Tags"})),
    "AWS::EC2::LaunchTemplate": (_launch_template, frozenset({"LaunchTemplateData"})),
    "AWS::AutoScaling::AutoScalingGroup": (_group, frozenset({
        "MinSize", "MaxSize", "DesiredCapacity", "HealthCheckGracePeriod", "HealthCheckType", "Cooldown",
        "TerminationPolicies", "VPCZoneIdentifier", "LaunchTemplate", "TargetGroupARNs", "Tags"})),
    "AWS::ElasticLoadBalancingV2::TargetGroup": (_target_group, frozenset({
        *_HEALTH, "Matcher", "TargetGroupAttributes", "Targets", "Tags"})),
    "AWS::ElasticLoadBalancingV2::LoadBalancer": (_load_balancer, frozenset({
        "Subnets", "SecurityGroups", "LoadBalancerAttributes", "Tags"})),
    "AWS::ElasticLoadBalancingV2::Listener": (_listener, frozenset({"Port", "Protocol", "DefaultActions"})),
    "AWS::RDS::DBSubnetGroup": (_subnet_group, frozenset({"DBSubnetGroupDescription", "SubnetIds", "Tags"})),
    "AWS::RDS::DBInstance": (_db_instance, frozenset({*_DB_MODIFIABLE, "Tags"})),
    "AWS::S3::Bucket": (_bucket, frozenset({"WebsiteConfiguration", "PublicAccessBlockConfiguration",
                                            "VersioningConfiguration", "Tags"})),
    "AWS::S3::BucketPolicy": (_bucket_policy, frozenset({"PolicyDocument"})),
    "AWS::SSM::Parameter": (_parameter, frozenset({"Value", "Description", "Type", "AllowedPattern", "Tier", "DataType"})),
    "AWS::CloudWatch::Dashboard": (_dashboard, frozenset({"DashboardBody"})),
    "AWS::EventSchemas::Registry": (_schema_registry, frozenset({"Description", "Tags"})),
    "AWS::EventSchemas::Schema": (_event_schema, frozenset({"Content", "Type", "Description", "Tags"})),
    "AWS::EventSchemas::Discoverer": (_discoverer, frozenset({"Description", "CrossAccount", "Tags"})),


    "AWS::Events::EventBus": (_event_bus, frozenset({"Policy"})),
    "AWS::Events::EventBusPolicy": (_event_bus_policy, frozenset({"Statement", "Action", "Principal", "Condition"})),
    "AWS::Events::Rule": (_rule, frozenset({"EventPattern", "State", "Description", "Targets", "RoleArn",
                                            "ScheduleExpression"})),
    "AWS::Logs::ResourcePolicy": (_log_resource_policy, frozenset({"PolicyDocument"})),
}


def can_update(resource_type: str, changed: set[str]) -> bool:
    """Whether the emulator updates these property changes in place (else it replaces the resource)."""
    entry = UPDATERS.get(resource_type)
    return entry is not None and set(changed) <= entry[1]


@contextlib.contextmanager
def acting_in(account: str | None):
    """client() acts in this account (a stack's) until the block ends."""
    token = _account.set(account or ACCOUNT_ID)
    try:
        yield
    finally:
        _account.reset(token)


def update(resource_type: str, physical_id: str, before: dict, after: dict, changed: set[str],
           account: str = ACCOUNT_ID) -> None:
    with acting_in(account):
        UPDATERS[resource_type][0](physical_id, before, after, set(changed))


# --- Serverless resources (lab 4): SQS, Lambda, event source mappings, EventBridge rules, Step Functions, IAM ---

_QUEUE_ATTRIBUTES = ("VisibilityTimeout", "DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod",
                     "ReceiveMessageWaitTimeSeconds", "RedrivePolicy", "RedriveAllowPolicy", "KmsMasterKeyId",
                     "KmsDataKeyReusePeriodSeconds", "SqsManagedSseEnabled", "ContentBasedDeduplication",
                     "DeduplicationScope", "FifoThroughputLimit")


def _queue_url(physical_id: str) -> str:
    return physical_id if physical_id.startswith("http") else client("sqs").get_queue_url(QueueName=physical_id)["QueueUrl"]


def _attribute_text(value) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, bool) else str(value)


def _queue(physical_id, before, after, changed) -> None:
    sqs, url = client("sqs"), _queue_url(physical_id)
    attributes = {name: _attribute_text(after[name]) if after.get(name) is not None else "" for name in changed
                  if name in _QUEUE_ATTRIBUTES}
    if attributes:
        sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
    if "Tags" in changed:
        _retag(before, after, lambda keys: sqs.untag_queue(QueueUrl=url, TagKeys=keys),
               lambda tags: sqs.tag_queue(QueueUrl=url, Tags=tags))


def _queue_policy(physical_id, before, after, changed) -> None:
    sqs = client("sqs")
    document = after["PolicyDocument"]
    for url in set(before.get("Queues") or []) - set(after.get("Queues") or []):
        sqs.set_queue_attributes(QueueUrl=_queue_url(url), Attributes={"Policy": ""})
    for url in after.get("Queues") or []:
        sqs.set_queue_attributes(QueueUrl=_queue_url(url), Attributes={
            "Policy": document if isinstance(document, str) else json.dumps(document)})


_FUNCTION_CONFIGURATION = ("Role", "Handler", "Description", "Timeout", "MemorySize", "Environment", "Runtime",
                           "Layers", "TracingConfig", "DeadLetterConfig", "EphemeralStorage")


def _function(physical_id, before, after, changed) -> None:
    lam = client("lambda")
    waiter = {"Delay": 0.2, "MaxAttempts": 300}
    if "Code" in changed:
        code = after["Code"]
        if "ZipFile" in code:
            from moto.awslambda.models import LambdaFunction

            lam.update_function_code(FunctionName=physical_id,
                                     ZipFile=LambdaFunction._create_zipfile_from_plaintext_code(code["ZipFile"]))
        else:
            lam.update_function_code(FunctionName=physical_id, **{k: v for k, v in code.items()
                                                                 if k in ("S3Bucket", "S3Key", "S3ObjectVersion", "ImageUri")})
        lam.get_waiter("function_updated_v2").wait(FunctionName=physical_id, WaiterConfig=waiter)
    configuration = {k: after[k] for k in changed & set(_FUNCTION_CONFIGURATION) if after.get(k) is not None}
    for name in changed & set(_FUNCTION_CONFIGURATION):
        if after.get(name) is None:  # a property removed from the template goes back to AWS's default
            configuration[name] = {"Timeout": 3, "MemorySize": 128, "Description": "", "Environment": {"Variables": {}},
                                   "Layers": []}.get(name)
    configuration = {k: v for k, v in configuration.items() if v is not None}
    if configuration:
        lam.update_function_configuration(FunctionName=physical_id, **configuration)
        lam.get_waiter("function_updated_v2").wait(FunctionName=physical_id, WaiterConfig=waiter)
    if "Tags" in changed:
        arn = lam.get_function(FunctionName=physical_id)["Configuration"]["FunctionArn"]
        _retag(before, after, lambda keys: lam.untag_resource(Resource=arn, TagKeys=keys),
               lambda tags: lam.tag_resource(Resource=arn, Tags=tags))


def _event_source_mapping(physical_id, before, after, changed) -> None:
    update: dict[str, Any] = {}
    for name in changed:
        value = after.get(name)
        if name == "FunctionResponseTypes":
            update[name] = value or []
        elif name == "Enabled":
            update[name] = True if value is None else _bool(value)
        elif name in ("BatchSize", "MaximumBatchingWindowInSeconds"):
            update[name] = _int(value) if value is not None else (10 if name == "BatchSize" else 0)
        elif value is not None:
            update[name] = value
    client("lambda").update_event_source_mapping(UUID=physical_id, **update)


def _state_machine(physical_id, before, after, changed) -> None:
    from securecart_lab.emulator.cloudformation.state_machines import api_arguments, definition_text

    update: dict[str, Any] = {"stateMachineArn": physical_id}
    if changed & {"Definition", "DefinitionString", "DefinitionSubstitutions"}:
        update["definition"] = definition_text(after)
    if "RoleArn" in changed:
        update["roleArn"] = after["RoleArn"]
    arguments = api_arguments(after)
    if "LoggingConfiguration" in changed:
        update["loggingConfiguration"] = arguments.get("loggingConfiguration") or {"level": "OFF"}
    if "TracingConfiguration" in changed:
        update["tracingConfiguration"] = arguments.get("tracingConfiguration") or {"enabled": False}
    client("stepfunctions").update_state_machine(**update)


def _role(physical_id, before, after, changed) -> None:
    iam = client("iam")
    if "AssumeRolePolicyDocument" in changed:
        document = after["AssumeRolePolicyDocument"]
        iam.update_assume_role_policy(RoleName=physical_id, PolicyDocument=document if isinstance(document, str)
                                      else json.dumps(document))
    if "Description" in changed or "MaxSessionDuration" in changed:
        iam.update_role(RoleName=physical_id, Description=after.get("Description") or "",
                        **({"MaxSessionDuration": int(after["MaxSessionDuration"])} if after.get("MaxSessionDuration") else {}))
    if "Policies" in changed:
        wanted = {p["PolicyName"]: p["PolicyDocument"] for p in after.get("Policies") or []}
        for name in {p["PolicyName"] for p in before.get("Policies") or []} - set(wanted):
            iam.delete_role_policy(RoleName=physical_id, PolicyName=name)
        for name, document in wanted.items():
            iam.put_role_policy(RoleName=physical_id, PolicyName=name,
                                PolicyDocument=document if isinstance(document, str) else json.dumps(document))
    if "ManagedPolicyArns" in changed:
        old, new = set(before.get("ManagedPolicyArns") or []), set(after.get("ManagedPolicyArns") or [])
        for arn in old - new:
            iam.detach_role_policy(RoleName=physical_id, PolicyArn=arn)
        for arn in new - old:
            iam.attach_role_policy(RoleName=physical_id, PolicyArn=arn)
    if "Tags" in changed:
        _retag(before, after, lambda keys: iam.untag_role(RoleName=physical_id, TagKeys=keys),
               lambda tags: iam.tag_role(RoleName=physical_id, Tags=_key_values(tags)))


UPDATERS.update({
    "AWS::SQS::Queue": (_queue, frozenset({*_QUEUE_ATTRIBUTES, "Tags"})),
    "AWS::SQS::QueuePolicy": (_queue_policy, frozenset({"PolicyDocument", "Queues"})),
    "AWS::Lambda::Function": (_function, frozenset({"Code", *_FUNCTION_CONFIGURATION, "Tags"})),
    "AWS::Lambda::EventSourceMapping": (_event_source_mapping, frozenset({
        "BatchSize", "Enabled", "FunctionName", "FunctionResponseTypes", "MaximumBatchingWindowInSeconds",
        "ScalingConfig", "FilterCriteria"})),
    "AWS::StepFunctions::StateMachine": (_state_machine, frozenset({
        "Definition", "DefinitionString", "DefinitionSubstitutions", "RoleArn", "LoggingConfiguration",
        "TracingConfiguration"})),
    "AWS::IAM::Role": (_role, frozenset({"AssumeRolePolicyDocument", "Description", "MaxSessionDuration", "Policies",
                                         "ManagedPolicyArns", "Tags"})),
})
