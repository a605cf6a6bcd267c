"""CloudFormation as the labs need it, on top of moto's: what a learner's template does on AWS, it does here.

- `!Sub "${Database.Endpoint.Address}"` resolves (moto splits the attribute name at every dot).
- AWS::RDS::DBInstance honours `VPCSecurityGroups` and the engine's default port (moto reads other names).
- Each resource gets CREATE_IN_PROGRESS / CREATE_COMPLETE / CREATE_FAILED stack events with the reason.
- AWS::EC2::SubnetRouteTableAssociation really associates the subnet with the route table (and undoes it), and
  route tables, internet gateways and target groups are deleted with their stack (moto leaves them behind, so
  the VPC could not be deleted and a new stack's target group name would clash); a bucket that holds objects is
  not (BucketNotEmpty, as on AWS; moto kept it and said it was deleted).
- A resource that fails rolls the stack back to ROLLBACK_COMPLETE, as on AWS, instead of failing CreateStack.
"""

from __future__ import annotations

import logging
import re
import secrets
import string
from typing import Any

from securecart_lab.emulator import hooks

LOG = logging.getLogger(__name__)

# ${Resource.Attribute.Part}: an attribute name with a dot in it (Endpoint.Address, Endpoint.Port).
_DOTTED_SUB = re.compile(r"\$\{([A-Za-z0-9]+)\.([A-Za-z0-9]+\.[A-Za-z0-9.]+)\}")
_DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306, "mariadb": 3306}


def install() -> None:
    from securecart_lab.emulator import cloudformation

    cloudformation.install()
    hooks.replace("cfn.stack.stack_resources", property(_stack_resources))
    hooks.replace("cfn.stack.outputs", property(_outputs))
    hooks.replace("cfn.clean_json", _clean_json)
    hooks.replace("cfn.create_resource", _create_resource)
    hooks.replace("cfn.stack.create_resources", _create_resources)
    hooks.replace("cfn.resource_map.delete", _delete_resources)
    hooks.replace("ec2.create_subnet_association", _create_subnet_association)


def gone(exc: BaseException) -> bool:
    """Whether a delete failed because the resource no longer exists (CloudFormation then counts it deleted)."""
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None) or type(exc).__name__
    message = str(getattr(exc, "message", None) or exc).lower()
    return (isinstance(code, str) and (code.endswith(("NotFound", "NotFoundFault", "NotFoundException")) or
                                       code in ("NoSuchBucket", "NoSuchEntity", "ResourceNotFoundException")))\
        or "not found" in message or "does not exist" in message


def _delete_resources(self) -> None:
    original = hooks.original("cfn.resource_map.delete")
    try:
        original(self)
        return
    except Exception as exc:
        if not gone(exc):
            raise
    for name, resource in list(self._parsed_resources.items()):
        resource_json = self._resource_json_map.get(name)
        if resource is None or isinstance(resource, str) or resource_json is None \
                or resource_json.get("DeletionPolicy") == "Retain":
            continue
        try:
            self._delete_resource(resource, resource_json)
        except Exception as exc:
            if not gone(exc):
                continue
            LOG.info("stack resource %s was deleted already", name)
        self._parsed_resources.pop(name, None)
    original(self)  # what waited on those, and the error of anything that still cannot go


def _create_subnet_association(self, route_table_id: str, subnet_id: str):
    association = hooks.original("ec2.create_subnet_association")(self, route_table_id, subnet_id)
    association_id = self.associate_route_table(route_table_id, subnet_id=subnet_id)
    # The stack's delete calls resource.delete(account, region): disassociate so the route table can go.
    association.delete = lambda account_id, region_name: self.disassociate_route_table(association_id)
    return association


def _keeping_nulls(value: Any, resources_map: Any) -> Any:
    """A JSON-typed property (a state machine's Definition) keeps its literal nulls: `ResultPath: null` discards a
    task's result, where moto's clean_json drops null-valued keys as absent properties."""
    if isinstance(value, dict) and not (len(value) == 1 and next(iter(value)) in ("Ref", "Condition")
                                        or any(k.startswith("Fn::") for k in value)):
        return {k: None if v is None else _keeping_nulls(v, resources_map) for k, v in value.items()}
    if isinstance(value, list):
        return [_keeping_nulls(v, resources_map) for v in value]
    return _clean_json(value, resources_map)


def _clean_json(resource_json: Any, resources_map: Any) -> Any:
    original = hooks.original("cfn.clean_json")
    if isinstance(resource_json, dict) and isinstance(resource_json.get("Definition"), dict):
        rest = _clean_json({k: v for k, v in resource_json.items() if k != "Definition"}, resources_map)
        return {**rest, "Definition": _keeping_nulls(resource_json["Definition"], resources_map)}
    if isinstance(resource_json, dict) and isinstance(resource_json.get("Ref"), str):
        try:
            target = resources_map[resource_json["Ref"]]
        except KeyError:
            target = None
        if getattr(target, "kit_ref_is_model", False):
            return target
    if isinstance(resource_json, dict) and "Fn::Sub" in resource_json:
        template = resource_json["Fn::Sub"]

        def resolve(text: str) -> str:
            return _DOTTED_SUB.sub(
                lambda m: str(original({"Fn::GetAtt": [m.group(1), m.group(2)]}, resources_map)), text
            )

        if isinstance(template, str):
            resource_json = {"Fn::Sub": resolve(template)}
        elif isinstance(template, list) and template and isinstance(template[0], str):
            resource_json = {"Fn::Sub": [resolve(template[0]), *template[1:]]}
    return original(resource_json, resources_map)


def _fix_properties(logical_id: str, resource_json: dict) -> dict:
    if resource_json.get("Type") == "AWS::SSM::Parameter" and not (resource_json.get("Properties") or {}).get("Name"):
        # AWS names a parameter without a Name itself (moto fails on it).
        suffix = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(12))
        return {**resource_json, "Properties": {**(resource_json.get("Properties") or {}),
                                                "Name": f"CFN-{logical_id}-{suffix}"}}
    if resource_json.get("Type") != "AWS::RDS::DBInstance":
        return resource_json
    props = dict(resource_json.get("Properties") or {})
    if "VPCSecurityGroups" in props and "VpcSecurityGroupIds" not in props:
        props["VpcSecurityGroupIds"] = props["VPCSecurityGroups"]
    engine = props.get("Engine")
    if "Port" not in props and isinstance(engine, str) and engine in _DEFAULT_PORTS:
        props["Port"] = _DEFAULT_PORTS[engine]
    return {**resource_json, "Properties": props}


class ResourceError(Exception):
    """A service's refusal to delete a resource, as AWS words it (the stack's DELETE_FAILED event shows it)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code, self.message = code, message


def _delete_internet_gateway(account_id: str, region_name: str, igw) -> None:
    backend = hooks.resolve("ec2.backends")[account_id][region_name]
    if igw.vpc is not None:
        backend.detach_internet_gateway(igw.id, igw.vpc.id)
    backend.delete_internet_gateway(igw.id)


def _delete_bucket(account_id: str, region_name: str, bucket) -> None:
    """As AWS, a bucket that holds objects is not deleted (moto's CloudFormation kept it and said it was)."""
    backend = hooks.resolve("s3.backends")[account_id][bucket.partition]
    if bucket.keys:
        raise ResourceError("BucketNotEmpty", "The bucket you tried to delete is not empty")
    backend.delete_bucket(bucket.name)


_DELETERS = {
    "AWS::EC2::RouteTable": lambda account_id, region_name, table:
        hooks.resolve("ec2.backends")[account_id][region_name].delete_route_table(table.id),
    "AWS::EC2::InternetGateway": _delete_internet_gateway,
    "AWS::ElasticLoadBalancingV2::TargetGroup": lambda account_id, region_name, group:
        hooks.resolve("elbv2.backends")[account_id][region_name].delete_target_group(group.arn),
    "AWS::S3::Bucket": _delete_bucket,
}


def _stack_resources(self) -> list:
    """The resources created so far (moto's map would create the others when read, from any request thread)."""
    resource_map = self.resource_map
    parsed = dict(resource_map._parsed_resources)
    return [parsed[name] for name in list(resource_map._resource_json_map) if parsed.get(name) is not None]


def _outputs(self):
    if self.status.endswith("_IN_PROGRESS") and self.status.startswith(("CREATE", "ROLLBACK", "REVIEW")):
        return None
    if self.status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "REVIEW_IN_PROGRESS"):
        return None
    if self.status.startswith("DELETE_") and hasattr(self, "kit_outputs"):
        return self.kit_outputs  # as before the delete began (cloudformation/engine.py)
    return hooks.original("cfn.stack.outputs").fget(self)


def _stack(resources_map: Any, account_id: str, region_name: str):
    backend = hooks.resolve("cfn.backends")[account_id][region_name]
    return backend.stacks.get(resources_map.stack_id)


def event(stack, logical_id: str, resource_type: str, status: str, physical_id: str | None = None,
           reason: str | None = None) -> None:
    if stack is None:
        return
    stack.events.append(hooks.resolve("cfn.event")(
        stack_id=stack.stack_id,
        stack_name=stack.name,
        logical_resource_id=logical_id,
        physical_resource_id=physical_id,
        resource_type=resource_type,
        resource_status=status,
        resource_status_reason=reason,
        resource_properties=None,
    ))


def error_text(exc: BaseException) -> str:
    """An AWS-style 'Code: message' for a moto or botocore error (or the exception's text)."""
    error = getattr(exc, "response", None)
    error = error.get("Error") if isinstance(error, dict) else None
    if isinstance(error, dict) and error.get("Code"):  # botocore's "An error occurred (...) when calling ..." is not AWS's
        return f"{error['Code']}: {error.get('Message') or error['Code']}"
    code = getattr(exc, "error_type", None) or getattr(exc, "code", None)
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{code}: {message}" if isinstance(code, str) and code not in message else str(message)


def _create_resource(logical_id: str, resource_json: dict, resources_map: Any, account_id: str, region_name: str):
    original = hooks.original("cfn.create_resource")
    resource_json = _fix_properties(logical_id, resource_json)
    stack = _stack(resources_map, account_id, region_name)
    resource_type = resource_json.get("Type", "")
    event(stack, logical_id, resource_type, "CREATE_IN_PROGRESS")
    try:
        resource = original(logical_id, resource_json, resources_map, account_id, region_name)
    except Exception as exc:
        event(stack, logical_id, resource_type, "CREATE_FAILED", reason=error_text(exc))
        if stack is not None:
            stack.kit_failed_resource = logical_id
        raise
    if resource_type in _DELETERS and resource is not None:
        # ResourceMap._delete_resource calls resource.delete(account, region); a failure (still in use) is retried.
        delete = _DELETERS[resource_type]
        resource.delete = lambda account, region, res=resource: delete(account, region, res)
    if resource is not None and not isinstance(getattr(resource, "physical_resource_id", None), str):
        # Some moto models (DBSubnetGroup) have no physical id: Ref and DescribeStackResources use their name.
        name = getattr(resource, "resource_id", None) or getattr(resource, "name", None)
        if isinstance(name, str):
            try:
                resource.physical_resource_id = name
                resource.kit_ref_is_model = True  # moto's models expect the object itself from a Ref to it
            except AttributeError:
                pass
    physical = getattr(resource, "physical_resource_id", None) if resource is not None else None
    event(stack, logical_id, resource_type, "CREATE_COMPLETE", physical_id=physical if isinstance(physical, str) else None)
    return resource


def _create_resources(self) -> None:
    try:
        hooks.original("cfn.stack.create_resources")(self)
    except Exception as exc:
        failed = getattr(self, "kit_failed_resource", None)
        LOG.info("stack %s: %s failed: %s; rolling back", self.name, failed, error_text(exc))
        self.status = "ROLLBACK_IN_PROGRESS"
        self._add_stack_event(
            "ROLLBACK_IN_PROGRESS",
            resource_status_reason=f"The following resource(s) failed to create: [{failed}]. Rollback requested by user."
            if failed else error_text(exc),
        )
        try:
            self.resource_map.delete()
        except Exception:
            LOG.exception("stack %s: rollback could not delete every resource", self.name)
        # moto's maps create resources lazily when read: a rolled-back stack has no resources and no outputs.
        self.resource_map._resource_json_map = {}
        self.output_map = type(self.output_map)(self.resource_map, {"Outputs": {}}, self.stack_id)
        self.status = "ROLLBACK_COMPLETE"
        self._add_stack_event("ROLLBACK_COMPLETE")
