"""GET /_securecart/processes: which process or server the emulator runs for which AWS resource, and which stack
holds what.

`securecart-lab status` reads it to say what each lab costs (securecart_lab/footprint.py): a Lambda worker's pid
and function, an EC2 instance's app process and Auto Scaling group, the PostgreSQL data folders of each DB instance
and the instance a read replica copies, the load balancers served inside the emulator, and each stack's resources as
ListStackResources lists them (the kinds that run something), read in-process so that `status` needs no AWS client.
Only what is already loaded is read: a service nobody used yet has nothing running, and asking must not load it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

from securecart_lab import config
from securecart_lab.emulator import hooks

LOG = logging.getLogger(__name__)
PATH = "/_securecart/processes"
# Stack resources that run something of their own or in the emulator.
RUNNING_KINDS = {"AWS::Lambda::Function", "AWS::EC2::Instance", "AWS::AutoScaling::AutoScalingGroup",
                 "AWS::RDS::DBInstance", "AWS::ElasticLoadBalancingV2::LoadBalancer"}


def _loaded(name: str):
    return sys.modules.get(f"securecart_lab.emulator.{name}")


def _backends(hook: str) -> list:
    """Every account's and region's backend of a moto service, when moto has loaded it."""
    if hooks.HOOKS[hook].module not in sys.modules:
        return []
    return [backend for regions in list(hooks.resolve(hook).values()) for backend in list(regions.values())]


def _stacks() -> list[dict]:
    stacks = []
    for backend in _backends("cfn.backends"):
        for stack in list(backend.stacks.values()):
            if stack.status == "DELETE_COMPLETE":
                continue
            _, resources = backend.list_stack_resources(stack.stack_id)  # what ListStackResources answers
            stacks.append({"account": stack.account_id, "name": stack.name, "resources": [
                {"type": kind, "physical_id": getattr(r, "physical_resource_id", "")}
                for r in resources if (kind := getattr(r, "cf_resource_type", "")) in RUNNING_KINDS]})
    return stacks


def _groups() -> dict[str, str]:
    """instance id -> the name of its Auto Scaling group."""
    return {state.instance.id: group.name for backend in _backends("autoscaling.backends")
            for group in list(backend.autoscaling_groups.values()) for state in list(group.instance_states)}


def document() -> dict[str, Any]:
    """{"lambda_workers": [{pid, function_arn}], "spare_workers": [pid], "instances": [{pid, instance_id, group}],
    "databases": [{db_instance_id, data_dirs, source}], "load_balancers": [{arn, port}],
    "stacks": [{account, name, resources: [{type, physical_id}]}]} (pids of processes alive now)."""
    doc: dict[str, Any] = {"lambda_workers": [], "spare_workers": [], "instances": [], "databases": [],
                           "load_balancers": [], "stacks": []}
    if runtime := _loaded("lambda_runtime"):
        pool = runtime._pool
        with pool.lock:
            workers = [worker for group in pool.workers.values() for worker in group]
            spare = pool.spare
        doc["lambda_workers"] = [{"pid": w.pid, "function_arn": w.key[0]} for w in workers if w.alive()]
        if spare is not None and spare.poll() is None:
            doc["spare_workers"] = [spare.pid]
    if ec2 := _loaded("bridges.ec2"):
        apps = {instance_id: app for instance_id, app in ec2.app_processes().items() if app.alive()}
        groups = _safely(_groups, {}) if apps else {}
        doc["instances"] = [{"pid": app.process.pid, "instance_id": instance_id, "group": groups.get(instance_id)}
                            for instance_id, app in apps.items()]
    if rds := _loaded("bridges.rds"):
        from securecart_lab.postgres.instances import STANDBY

        with rds._lock:
            handles = list(rds.registry.values())
        databases = _safely(lambda: dict(hooks.resolve("rds.backends")[config.ACCOUNT_ID][config.REGION].databases),
                            {}) if handles else {}
        for handle in handles:
            database = databases.get(handle.instance_id)
            datadir = handle.server.datadir
            # A Multi-AZ instance's standby server (either folder is the primary after a failover).
            dirs = {str(datadir), str(datadir.with_name(datadir.name.removesuffix(STANDBY) + STANDBY))}
            doc["databases"].append({"db_instance_id": handle.instance_id, "data_dirs": sorted(dirs),
                                     "source": getattr(database, "source_db_instance_identifier", None)})
    if elbv2 := _loaded("bridges.elbv2"):
        with elbv2._lock:
            doc["load_balancers"] = [{"arn": arn, "port": lb.port} for arn, lb in elbv2._balancers.items()]
    if doc["lambda_workers"] or doc["instances"] or doc["databases"] or doc["load_balancers"]:
        doc["stacks"] = _safely(_stacks, [])
    return doc


def _safely(read, default):
    """What moto says, or `default` when reading fails (a stack changing under the read): status then says "other"
    for what it could not place, and never fails."""
    try:
        return read()
    except Exception:
        LOG.exception("what runs for which resource: %s not read", getattr(read, "__name__", "moto's state"))
        return default
