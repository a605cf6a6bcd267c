"""Auto Scaling activities, as DescribeScalingActivities reports them (moto answers an empty list).

The EC2 bridge's reconciler records each launch and termination with AWS's wording and causes; a launch whose app
never served is marked Failed, and its message says when Auto Scaling tries again (the backoff).
"""

from __future__ import annotations

import json
import threading
import uuid
from datetime import datetime, timezone

from securecart_lab.emulator import hooks

KEEP_PER_GROUP = 100  # AWS keeps six weeks; a crash loop must not grow memory without bound

_lock = threading.Lock()
_by_group: dict[str, list[dict]] = {}  # newest first
_by_id: dict[str, dict] = {}


def install() -> None:
    hooks.replace("autoscaling.describe_scaling_activities", _describe_scaling_activities)
    hooks.replace("autoscaling.terminate_instance", _terminate_instance)


def _terminate_instance(self, instance_id: str, should_decrement: bool):
    group = next((group for group in self.autoscaling_groups.values()
                  if any(state.instance.id == instance_id for state in group.instance_states)), None)
    if group is None:
        raise hooks.resolve("autoscaling.validation_error")(
            f"Instance Id not found - No managed instance found for instance ID: {instance_id}")
    desired = group.desired_capacity or 0
    shrinking = f", shrinking the capacity from {desired} to {desired - 1}" if should_decrement and desired else ""
    record(group, f"Terminating EC2 instance: {instance_id}",
           f"instance {instance_id} was taken out of service in response to a user request{shrinking}.")
    return hooks.original("autoscaling.terminate_instance")(self, instance_id, should_decrement)


def _now() -> datetime:
    return datetime.now(timezone.utc)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def record(group, description: str, cause: str, status: str = "Successful", message: str = "", details: dict | None = None) -> dict:
    """Add an activity to `group` (a moto FakeAutoScalingGroup); returns it, so its status can change later."""
    now = _now()
    activity = {
        "ActivityId": str(uuid.uuid4()),
        "AutoScalingGroupName": group.name,
        "AutoScalingGroupARN": getattr(group, "arn", ""),
        "Description": description,
        "Cause": f"At {_stamp(now)} {cause}",
        "StartTime": now,
        "EndTime": now,
        "StatusCode": status,
        "Progress": 100,
        "Details": json.dumps(details or {}),
    }
    if message:
        activity["StatusMessage"] = message
    with _lock:
        entries = _by_group.setdefault(group.name, [])
        entries.insert(0, activity)
        _by_id[activity["ActivityId"]] = activity
        for old in entries[KEEP_PER_GROUP:]:
            _by_id.pop(old["ActivityId"], None)
        del entries[KEEP_PER_GROUP:]
    return activity


def fail(activity: dict, message: str) -> None:
    """Mark an activity Failed with AWS's StatusMessage."""
    with _lock:
        activity["StatusCode"] = "Failed"
        activity["StatusMessage"] = message
        activity["EndTime"] = _now()


def for_group(name: str) -> list[dict]:
    with _lock:
        return [dict(a) for a in _by_group.get(name, [])]


def _describe_scaling_activities(self):
    action_result = hooks.resolve("core.action_result")
    group = self._get_param("AutoScalingGroupName")
    wanted = self._get_param("ActivityIds", []) or []
    limit = int(self._get_param("MaxRecords") or 100)
    start = int(self._get_param("NextToken") or 0)
    with _lock:
        if wanted:
            found = [_by_id[i] for i in wanted if i in _by_id]
        elif group:
            found = list(_by_group.get(group, []))
        else:
            found = sorted((a for entries in _by_group.values() for a in entries), key=lambda a: a["StartTime"], reverse=True)
        page = [dict(a) for a in found[start:start + limit]]
    result: dict = {"Activities": page}
    if start + limit < len(found):
        result["NextToken"] = str(start + limit)
    return action_result(result)
