"""CloudWatch Logs: a log group named by `logGroupIdentifier` is that group, and a missing stream is named as one.

moto 5.2's lookup by identifier (DescribeLogStreams, GetLogEvents and StartLiveTail with `--log-group-identifier`)
compares each group's ARN in a loop whose variable it then returns: whatever the identifier, even one naming no
group, it answered with the last group created (a learner's `get-log-events` read another group's events). AWS
takes a group's name or ARN. And GetLogEvents for a stream that does not exist
said "The specified log group does not exist." of a group that does.
"""

from __future__ import annotations

import re

from securecart_lab.emulator import hooks

_IDENTIFIER = re.compile(r"[\w#+=/:,.@-]*")


def _find_log_group(self, log_group_id=None, log_group_name=None):
    invalid, not_found = hooks.resolve("logs.invalid_parameter"), hooks.resolve("logs.not_found")
    if log_group_name:
        group = self.groups.get(log_group_name)
    elif log_group_id:
        if not _IDENTIFIER.fullmatch(log_group_id):
            raise invalid(msg="1 validation error detected: Value at 'logGroupIdentifier' failed to satisfy "
                              "constraint: Member must satisfy regular expression pattern: [\\w#+=/:,.@-]*")
        group = self.groups.get(log_group_id)  # a name
        if group is None and log_group_id.startswith("arn:"):
            group = next((g for g in self.groups.values() if g.arn == log_group_id), None)
    else:
        raise invalid("Should provider either name or id, but not both")
    if group is None:
        raise not_found()
    return group


def _get_log_events(original):
    def get_log_events(self, log_stream_name, *args, **kwargs):
        if log_stream_name not in self.streams:
            raise hooks.resolve("logs.not_found")("The specified log stream does not exist.")
        return original(self, log_stream_name, *args, **kwargs)

    return get_log_events


def install() -> None:
    hooks.replace("logs.find_log_group", _find_log_group)
    hooks.replace("logs.group.get_log_events", _get_log_events(hooks.original("logs.group.get_log_events")))
