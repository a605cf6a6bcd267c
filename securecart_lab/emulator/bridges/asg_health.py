"""Auto Scaling health checks: an instance shows Unhealthy before its group replaces it, as on AWS.

An InService instance becomes Unhealthy when its app process dies after it served (the kit's EC2 status check), when
SetInstanceHealth says so, or, for a group with HealthCheckType ELB, when a target group it is registered in reports
it unhealthy once the group's HealthCheckGracePeriod is over. It then shows HealthStatus Unhealthy in
DescribeAutoScalingGroups and DescribeAutoScalingInstances for REPLACE_AFTER_SECONDS before the EC2 bridge's
reconciler terminates it (a scaling activity names the cause) and launches a replacement.

Both waits are multiplied by SECURECART_TIME_SCALE. The grace period counts from when the instance's app first
accepted a connection: the kit boots an instance in a second, not in minutes, and an app still starting up is not
judged on its refused health checks. Instances without the app (nothing answers their health checks) are not judged
on ELB health: they could never pass, and would be replaced forever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from securecart_lab.emulator import timescale

LOG = logging.getLogger(__name__)
REPLACE_AFTER_SECONDS = 10.0
UNHEALTHY = "Unhealthy"
ELB_CAUSE = "an instance was taken out of service in response to an ELB system health check failure."
USER_CAUSE = "an instance was taken out of service in response to a user health-check."


@dataclass
class Verdict:
    """Why an instance is Unhealthy and since when; `crash` is the app's exit when the instance itself failed."""

    cause: str
    since: float
    crash: str | None = None


_unhealthy: dict[str, Verdict] = {}  # instance id -> verdict; callers hold the EC2 bridge's lock


def mark(state, cause: str, crash: str | None = None) -> None:
    """Mark a group's instance (a moto InstanceState) Unhealthy, once; it is replaced REPLACE_AFTER_SECONDS later."""
    state.health_status = UNHEALTHY
    if state.instance.id not in _unhealthy:
        _unhealthy[state.instance.id] = Verdict(cause, time.monotonic(), crash)
        LOG.warning("Auto Scaling group %s: instance %s is Unhealthy (%s)", state.auto_scaling_group_name,
                    state.instance.id, cause)


def judge(group, served_since: dict[str, float], target_state) -> None:
    """Mark the group's InService instances that SetInstanceHealth or, after the grace period, its target groups
    found unhealthy. `served_since`: instance id -> when its app first served; `target_state(tg_arn, id)`: the
    load balancer's view of a target ("healthy", "unhealthy", ...)."""
    elb = (group.health_check_type or "EC2").upper() == "ELB" and group.target_group_arns
    grace = timescale.scaled(float(group.health_check_grace_period or 0))
    now = time.monotonic()
    for state in group.instance_states:
        instance_id = state.instance.id
        if state.lifecycle_state != "InService" or instance_id in _unhealthy:
            continue
        if state.health_status == UNHEALTHY:
            mark(state, USER_CAUSE)
        elif elb and instance_id in served_since and now - served_since[instance_id] >= grace:
            if any(target_state(arn, instance_id) == "unhealthy" for arn in group.target_group_arns):
                mark(state, ELB_CAUSE)


def due(members: set[str]) -> list[tuple[str, Verdict]]:
    """The Unhealthy instances whose time to be replaced has come; forgets those that left their groups."""
    for instance_id in [i for i in _unhealthy if i not in members]:
        del _unhealthy[instance_id]
    wait = timescale.scaled(REPLACE_AFTER_SECONDS)
    now = time.monotonic()
    ready = [(i, v) for i, v in _unhealthy.items() if now - v.since >= wait]
    for instance_id, _ in ready:
        del _unhealthy[instance_id]
    return ready


def pending(instance_id: str) -> bool:
    return instance_id in _unhealthy
