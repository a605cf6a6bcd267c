"""The moto objects the lab 2 bridges patch, added to the kit's hook list (securecart_lab.emulator.hooks.HOOKS),
so `hooks.replace()` guards them and a moto upgrade that moves one fails at start-up and in the tests."""

from __future__ import annotations

from securecart_lab.emulator.hooks import HOOKS, Hook

_CFN, _RDS, _EC2, _ASG, _ELB = (
    "moto.cloudformation", "moto.rds.models", "moto.ec2.models", "moto.autoscaling.models", "moto.elbv2.models",
)

BRIDGE_HOOKS: tuple[Hook, ...] = (
    Hook("cfn.clean_json", f"{_CFN}.parsing", "clean_json",
         "Fn::Sub splits ${Database.Endpoint.Address} at every dot; the kit resolves dotted attributes"),
    Hook("cfn.create_resource", f"{_CFN}.parsing", "parse_and_create_resource",
         "per-resource stack events and property fixes (DBInstance VPCSecurityGroups, Port)"),
    Hook("cfn.stack.create_resources", f"{_CFN}.models", "Stack.create_resources",
         "a resource that fails rolls the stack back (ROLLBACK_COMPLETE), as on AWS, instead of an API error"),
    Hook("cfn.event", f"{_CFN}.models", "Event", "stack events the kit records per resource"),
    Hook("cfn.backends", f"{_CFN}.models", "cloudformation_backends", "find a stack by id"),
    Hook("ec2.create_subnet_association", f"{_EC2}.subnets", "SubnetBackend.create_subnet_association",
         "AWS::EC2::SubnetRouteTableAssociation records the association but never associates the route table"),
    Hook("rds.create_db_instance", _RDS, "RDSBackend.create_db_instance", "a real PostgreSQL database"),
    Hook("rds.delete_db_instance", _RDS, "RDSBackend.delete_db_instance", "drop the database after a final dump"),
    Hook("rds.address", _RDS, "DBInstance.address", "report the real endpoint host"),
    Hook("rds.error", "moto.rds.exceptions", "RDSClientError", "errors returned by the RDS API"),
    Hook("ec2.run_instances", f"{_EC2}.instances", "InstanceBackend.run_instances",
         "instances whose user data starts the SecureCart app become app processes"),
    Hook("ec2.instance.start", f"{_EC2}.instances", "Instance.start", "start the app process again"),
    Hook("ec2.instance.stop", f"{_EC2}.instances", "Instance.stop", "stop the app process"),
    Hook("ec2.instance.terminate", f"{_EC2}.instances", "Instance.terminate", "end the app process"),
    Hook("ec2.backends", _EC2, "ec2_backends", "find instances"),
    Hook("autoscaling.replace_instances", _ASG, "FakeAutoScalingGroup.replace_autoscaling_group_instances",
         "moto puts every instance in the group's first subnet; the kit balances them over the subnets"),
    Hook("autoscaling.backends", _ASG, "autoscaling_backends", "keep each group at its desired capacity"),
    Hook("elbv2.create_load_balancer", _ELB, "ELBv2Backend.create_load_balancer",
         "a local HTTP load balancer; DNSName becomes its 127.0.0.1:port"),
    Hook("elbv2.delete_load_balancer", _ELB, "ELBv2Backend.delete_load_balancer", "stop the local load balancer"),
    Hook("elbv2.health_for", _ELB, "FakeTargetGroup.health_for", "report real health check results"),
    Hook("elbv2.health_status", _ELB, "FakeHealthStatus", "the target health moto serialises"),
    Hook("elbv2.backends", _ELB, "elbv2_backends", "load balancers, listeners and target groups"),
)

HOOKS.update({hook.name: hook for hook in BRIDGE_HOOKS})
