"""EC2 -> real app processes, and Auto Scaling groups that keep their capacity.

An instance whose user data runs the SecureCart app (see `userdata`) becomes a local app process (`instance`, which
runs `python -m securecart_lab.app` and ends with the emulator) on its own free port, with the user data's environment, INSTANCE_ID = the instance id and the emulator as
its AWS endpoint. As root, the process runs as the unprivileged service user (`service_user`). Stop and terminate
end the process; start runs it again. When a process dies, or cannot start, its instance is terminated (state reason
Server.InternalError) and its Auto Scaling group launches a replacement: a reconciler thread keeps every group at its
desired capacity and its instances registered in the group's target groups.

A launch whose app exits before it ever served is a failed launch. Like AWS, the group then backs off: the next
launch waits 2 s, then 4, 8... up to 5 minutes (times SECURECART_TIME_SCALE), until a launch serves or the group's
launch configuration changes.
Each launch and termination is a scaling activity (`activities`); a failed launch's says when the next try is. A crash
loop keeps the last KEEP_FAILED instances and app logs per group, not one per try. A group's instance whose app dies
after it served, or that its target groups find unhealthy (HealthCheckType ELB), shows Unhealthy first and is
replaced a little later (`asg_health`).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from securecart_lab import config, paths, service_user
from securecart_lab.config import Settings
from securecart_lab.emulator import bridges, hooks, timescale
from securecart_lab.emulator.bridges import activities, asg_health, userdata
from securecart_lab.emulator.bridges.instance import LIFELINE_ENV
from securecart_lab.errors import LabError
from securecart_lab.ports import free_port

LOG = logging.getLogger(__name__)
RECONCILE_SECONDS = 0.25
BACKOFF_FIRST_SECONDS = 2.0
BACKOFF_MAX_SECONDS = 300.0
KEEP_FAILED = 5


@dataclass
class AppProcess:
    instance_id: str
    port: int
    process: subprocess.Popen
    log_path: Path
    served: bool = False  # has it ever accepted a connection?
    served_at: float = 0.0  # when it first did (time.monotonic())

    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class _GroupLaunches:
    """A group's launch history: consecutive failed launches, when the next may start, what a crash loop left."""

    failures: int = 0
    next_launch: float = 0.0
    fingerprint: str = ""
    failed: deque = field(default_factory=deque)  # instance ids of failed launches, oldest first


_lock = threading.RLock()
_apps: dict[str, AppProcess] = {}
_launches: dict[str, userdata.AppLaunch] = {}
_cannot_start: dict[str, str] = {}  # instance id -> why its app process could not be started
_groups: dict[str, _GroupLaunches] = {}
_launch_activity: dict[str, dict] = {}  # instance id -> its launch activity
_stop = threading.Event()
# (read, write): app processes watch the read end and exit at its EOF, when this process ends however it ends.
_lifeline: tuple[int, int] | None = None


def app_port(instance_id: str) -> int | None:
    """The local port of the instance's app process while it runs, else None."""
    with _lock:
        app = _apps.get(instance_id)
        return app.port if app and app.alive() else None


def app_processes() -> dict[str, AppProcess]:
    with _lock:
        return dict(_apps)


def _create_launch_template_version(self, data: dict, description: str):
    from moto.core.types import Base64EncodedString
    from moto.ec2.utils import parse_user_data

    if isinstance(data.get("UserData"), (str, bytes)) and not isinstance(data["UserData"], Base64EncodedString):
        data = {**data, "UserData": parse_user_data(data["UserData"])}
    return hooks.original("ec2.launch_template.create_version")(self, data, description)


def install() -> None:
    global _lifeline
    _lifeline = os.pipe()
    hooks.replace("ec2.run_instances", _run_instances)
    hooks.replace("ec2.instance.start", _instance_start)
    hooks.replace("ec2.instance.stop", _instance_stop)
    hooks.replace("ec2.instance.terminate", _instance_terminate)
    hooks.replace("autoscaling.replace_instances", _replace_group_instances)
    hooks.replace("autoscaling.set_desired_capacity", _set_desired_capacity)
    hooks.replace("ec2.launch_template.create_version", _create_launch_template_version)
    hooks.replace("ec2.get_console_output", _get_console_output)

    def stop_apps() -> None:
        for instance_id in list(_apps):
            _stop_app(instance_id)

    bridges.on_shutdown(stop_apps)  # shutdown runs last-registered first: the reconciler stops before the apps
    bridges.every(RECONCILE_SECONDS, _reconcile_locked, name="asg-reconciler", what="Auto Scaling reconciler", stop=_stop)


def instance_log_path(instance_id: str, settings: Settings | None = None) -> Path:
    """Where an instance's user data and app output go (`securecart-lab logs instance ID` reads it)."""
    return (settings or Settings.from_env()).logs_dir / "instances" / f"{instance_id}.log"


CONSOLE_OUTPUT_BYTES = 64 * 1024  # AWS returns at most 64 KB
CONSOLE_HEAD_BYTES = 16 * 1024


def _console_text(path: Path) -> str:
    """The log's start (how the app booted, or why it did not) and its most recent part, 64 KB in all."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        if size <= CONSOLE_OUTPUT_BYTES:
            return fh.read().decode("utf-8", errors="replace")
        head = fh.read(CONSOLE_HEAD_BYTES).decode("utf-8", errors="replace")
        fh.seek(size - (CONSOLE_OUTPUT_BYTES - CONSOLE_HEAD_BYTES))
        tail = fh.read().decode("utf-8", errors="replace")
    return f"{head}\n[... {size - CONSOLE_OUTPUT_BYTES} bytes left out ...]\n{tail}"


def _get_console_output(self):
    """GetConsoleOutput: the instance's real log (base64, as AWS), not moto's canned boot log."""
    from moto.core.responses import ActionResult
    from moto.core.types import Base64EncodedString
    from moto.core.utils import utcnow

    instance = self.ec2_backend.get_instance(self._get_param("InstanceId"))  # InvalidInstanceID.NotFound as AWS
    result = {"InstanceId": instance.id, "Timestamp": utcnow()}
    path = instance_log_path(instance.id)
    if path.is_file():
        result["Output"] = Base64EncodedString.from_raw_string(_console_text(path))
    return ActionResult(result)


# --- processes -----------------------------------------------------------------------------------------------

def _app_env(instance_id: str, launch: userdata.AppLaunch, port: int, settings: Settings, python: service_user.Python) -> dict[str, str]:
    package_parent = str(Path(__file__).resolve().parents[3])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        **python.env,
        "PYTHONPATH": os.pathsep.join(p for p in (package_parent, python.env.get("PYTHONPATH"), os.environ.get("PYTHONPATH")) if p),
        "PYTHONUNBUFFERED": "1",
        **{name: os.environ[name] for name in ("SECURECART_ALLOWED_ORIGINS",) if os.environ.get(name)},
        **config.aws_env(settings.endpoint_url),
        **launch.env,
        "PORT": str(port),
        "HOST": "127.0.0.1",
        "INSTANCE_ID": instance_id,
        LIFELINE_ENV: str(_lifeline[0]),
    }


def _start_app(instance_id: str) -> None:
    """Start the instance's app process, as the service user, in its working folder. When it cannot start (home
    not writable, no Python the service user can run), the reconciler terminates the instance: no phantom runs."""
    with _lock:
        launch = _launches.get(instance_id)
        if launch is None or (instance_id in _apps and _apps[instance_id].alive()):
            return
        settings = Settings.from_env()
        port = free_port()
        log_path = instance_log_path(instance_id, settings)
        try:
            python = service_user.python(settings)
            workdir = service_user.folder(settings, "instances")
            paths.private_dir(log_path.parent)
            prefix, run_as = service_user.launcher(settings)
            with paths.open_private(log_path, "ab") as log:
                proc = subprocess.Popen(
                    [*prefix, python.executable, "-m", "securecart_lab.emulator.bridges.instance"],
                    env=_app_env(instance_id, launch, port, settings, python),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=str(workdir),
                    start_new_session=True,
                    pass_fds=(_lifeline[0],),
                    **run_as,
                )
        except (OSError, LabError) as exc:
            reason = exc.message if isinstance(exc, LabError) else f"{exc.strerror or exc}: {exc.filename or log_path}"
            _cannot_start[instance_id] = f"the instance's app process could not start: {reason}"
            LOG.warning("EC2 %s: app process not started: %s", instance_id, reason)
            return
        _cannot_start.pop(instance_id, None)
        _apps[instance_id] = AppProcess(instance_id, port, proc, log_path)
        LOG.info("EC2 %s -> SecureCart app pid %s on 127.0.0.1:%s (log %s)", instance_id, proc.pid, port, log_path)


def _stop_app(instance_id: str, timeout: float = 5.0) -> None:
    with _lock:
        app = _apps.pop(instance_id, None)
    if app is None:
        return
    if app.alive():
        try:
            os.killpg(app.process.pid, signal.SIGTERM)
            app.process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(app.process.pid, signal.SIGKILL)
            app.process.wait()
        except ProcessLookupError:
            pass
    else:
        app.process.wait()


# --- moto patches ----------------------------------------------------------------------------------------------

def _run_instances(self, image_id, count, user_data, security_group_names, **kwargs):
    reservation = hooks.original("ec2.run_instances")(self, image_id, count, user_data, security_group_names, **kwargs)
    for instance in reservation.instances:
        launch = userdata.parse(userdata.decode(instance.user_data))
        if launch is not None:
            with _lock:
                _launches[instance.id] = launch
            _start_app(instance.id)
    return reservation


def _instance_start(self):
    previous = hooks.original("ec2.instance.start")(self)
    _start_app(self.id)
    return previous


def _instance_stop(self):
    previous = hooks.original("ec2.instance.stop")(self)
    _stop_app(self.id)
    return previous


def _instance_terminate(self):
    previous = hooks.original("ec2.instance.terminate")(self)
    why = getattr(self, "_kit_termination", None)
    if why is not None:  # the kit's reason (_terminate), before anything slower: moto has just set a user's shutdown
        self._reason, self.state_reason = why
    _stop_app(self.id)
    # However it ends (the API, an instance refresh, the reconciler), a terminated instance leaves its target groups,
    # as Auto Scaling deregisters it on AWS: a stale target would keep the group from ever being all healthy.
    _backends()[2].notify_terminate_instances([self.id])
    with _lock:
        _launches.pop(self.id, None)
        _cannot_start.pop(self.id, None)
    return previous


def _replace_group_instances(self, count_needed: int, propagated_tags: dict) -> None:
    """Every launch of a group passes here: none while the group backs off after failed launches; one instance at a
    time into the group's subnet (and AZ) with the fewest instances; each launch recorded as a scaling activity."""
    with _lock:
        if time.monotonic() < _group_launches(self).next_launch:
            return None
        before = {state.instance.id for state in self.instance_states}
        capacity = len(self.active_instances())
        try:
            _launch_balanced(self, count_needed, propagated_tags)
        finally:
            for state in self.instance_states:
                instance = state.instance
                if instance.id not in before:
                    capacity += 1
                    _launch_activity[instance.id] = activities.record(
                        self, f"Launching a new EC2 instance: {instance.id}",
                        "an instance was started in response to a difference between desired and actual capacity, "
                        f"increasing the capacity from {capacity - 1} to {capacity}.",
                        details={"Subnet ID": instance.subnet_id, "Availability Zone": getattr(instance.placement, "zone", "")})


def _set_desired_capacity(self, new_capacity) -> None:
    """A lower desired capacity terminates instances: each is a scaling activity, as on AWS."""
    with _lock:
        before = [state.instance.id for state in self.instance_states]
        capacity = len(self.active_instances())
        hooks.original("autoscaling.set_desired_capacity")(self, new_capacity)
        kept = {state.instance.id for state in self.instance_states}
        for instance_id in (i for i in before if i not in kept):
            capacity -= 1
            activities.record(self, f"Terminating EC2 instance: {instance_id}",
                              "an instance was taken out of service in response to a difference between desired and "
                              f"actual capacity, shrinking the capacity from {capacity + 1} to {capacity}.")


def _launch_balanced(group, count_needed: int, propagated_tags: dict) -> None:
    original = hooks.original("autoscaling.replace_instances")
    subnets = [s for s in (group.vpc_zone_identifier or "").split(",") if s]
    if len(subnets) < 2:
        return original(group, count_needed, propagated_tags)
    ec2 = group.autoscaling_backend.ec2_backend
    zone_identifier, zones = group.vpc_zone_identifier, group.availability_zones
    try:
        for _ in range(count_needed):
            used = [state.instance.subnet_id for state in group.instance_states]
            subnet = min(subnets, key=lambda s: (used.count(s), subnets.index(s)))
            group.vpc_zone_identifier = ",".join([subnet] + [s for s in subnets if s != subnet])
            group.availability_zones = [ec2.get_subnet(subnet).availability_zone]
            original(group, 1, dict(propagated_tags))
    finally:
        group.vpc_zone_identifier, group.availability_zones = zone_identifier, zones


# --- the reconciler --------------------------------------------------------------------------------------------

def _backends():
    account, region = config.ACCOUNT_ID, config.REGION
    return (hooks.resolve("ec2.backends")[account][region],
            hooks.resolve("autoscaling.backends")[account][region],
            hooks.resolve("elbv2.backends")[account][region])


def _fingerprint(group) -> str:
    """What the group launches: a change (a fixed launch template) ends the backoff, as a new try deserves."""
    try:
        return repr((group.image_id, userdata.decode(group.user_data)))
    except Exception:
        return ""


def _group_launches(group) -> _GroupLaunches:
    state = _groups.setdefault(group.name, _GroupLaunches())
    fingerprint = _fingerprint(group)
    if fingerprint != state.fingerprint:
        state.fingerprint, state.failures, state.next_launch = fingerprint, 0, 0.0
    return state


def _serves(app: AppProcess) -> bool:
    with socket.socket() as probe:
        probe.settimeout(0.05)
        return probe.connect_ex(("127.0.0.1", app.port)) == 0


def _launch_failed(group, instance_id: str, reason: str, ec2) -> None:
    """Count a failed launch: mark its activity Failed, back off, and keep only the last KEEP_FAILED such instances."""
    state = _group_launches(group)
    state.failures += 1
    delay = timescale.scaled(min(BACKOFF_FIRST_SECONDS * 2 ** (state.failures - 1), BACKOFF_MAX_SECONDS))
    state.next_launch = time.monotonic() + delay
    activity = _launch_activity.pop(instance_id, None)
    message = (f"Instance {instance_id} failed to start: {reason}. {state.failures} failed launch(es) in a row; "
               f"Auto Scaling launches again in {delay:.1f} s.")
    if activity is not None:
        activities.fail(activity, message)
    else:
        activities.record(group, f"Launching a new EC2 instance: {instance_id}", "an instance was started.", "Failed", message)
    LOG.warning("Auto Scaling group %s: %s", group.name, message)
    state.failed.append(instance_id)
    while len(state.failed) > KEEP_FAILED:
        _forget_instance(state.failed.popleft(), ec2)


def _forget_instance(instance_id: str, ec2) -> None:
    """Drop a long-terminated instance of a crash loop and its app log (AWS forgets terminated instances too)."""
    _launch_activity.pop(instance_id, None)
    try:
        instance_log_path(instance_id).unlink(missing_ok=True)
    except OSError:
        pass
    for reservation_id, reservation in list(ec2.reservations.items()):
        kept = [i for i in reservation.instances if i.id != instance_id]
        if len(kept) != len(reservation.instances):
            reservation.instances = kept
            if not kept:
                ec2.reservations.pop(reservation_id, None)


def _terminate(instance, reason: str) -> None:
    """Terminate with Server.InternalError and the reason, which DescribeInstances shows from the moment the state
    says terminated (set after moto's terminate, a describe meanwhile saw no reason or a user's shutdown)."""
    text = f"Server.InternalError: {reason}"
    state_reason = hooks.resolve("ec2.state_reason")(text, "Server.InternalError")
    instance.state_reason = state_reason
    instance._kit_termination = (text, state_reason)
    instance.terminate()


def reconcile() -> None:
    """Terminate instances whose app died (or never started), and replace the groups' Unhealthy instances once they
    have shown so for a while; then bring every Auto Scaling group back to its desired capacity, unless it backs off
    after failed launches."""
    ec2, autoscaling, elbv2 = _backends()
    from securecart_lab.emulator.bridges.elbv2 import target_state

    # (instance id, why, failed launch?, the termination activity's cause)
    ended: list[tuple[str, str, bool, str]] = []
    served_since: dict[str, float] = {}
    for app in app_processes().values():
        if app.alive():
            if not app.served and _serves(app):
                app.served, app.served_at = True, time.monotonic()
                group = _group_of(app.instance_id, autoscaling)
                if group is not None:
                    state = _group_launches(group)
                    state.failures, state.next_launch = 0, 0.0
            if app.served:
                served_since[app.instance_id] = app.served_at
            continue
        code = app.process.returncode
        if app.served:
            reason = f"the instance's app process exited with code {code}"
            member = _member(app.instance_id, autoscaling)
            if member is not None:  # Unhealthy first; replaced when due (below)
                asg_health.mark(member, f"{STATUS_CHECK_CAUSE}: {reason}.", crash=reason)
            else:
                ended.append((app.instance_id, reason, False, f"{STATUS_CHECK_CAUSE}: {reason}."))
        else:
            reason = (f"the instance's app process exited with code {code} before it served "
                      f"(see logs/instances/{app.instance_id}.log)")
            ended.append((app.instance_id, reason, True, f"{STATUS_CHECK_CAUSE}: {reason}."))
    ended += [(instance_id, reason, True, f"{STATUS_CHECK_CAUSE}: {reason}.") for instance_id, reason in _cannot_start.items()]
    members: set[str] = set()
    for group in list(autoscaling.autoscaling_groups.values()):
        asg_health.judge(group, served_since, target_state)
        members |= {state.instance.id for state in group.instance_states}
    for instance_id, verdict in asg_health.due(members):
        if verdict.crash is not None:
            ended.append((instance_id, verdict.crash, False, verdict.cause))
        else:
            _replace_unhealthy(instance_id, verdict.cause, ec2, autoscaling)
    for instance_id, reason, failed, cause in ended:
        LOG.warning("EC2 %s: %s; terminating the instance", instance_id, reason)
        _stop_app(instance_id)
        _cannot_start.pop(instance_id, None)
        try:
            instance = ec2.get_instance(instance_id)
        except Exception:
            continue
        if instance.state in ("running", "pending"):
            _terminate(instance, reason)
            elbv2.notify_terminate_instances([instance_id])
        group = _group_of(instance_id, autoscaling)
        if group is not None:
            group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
            activities.record(group, f"Terminating EC2 instance: {instance_id}", cause)
            if failed:
                _launch_failed(group, instance_id, reason, ec2)
    for name, group in list(autoscaling.autoscaling_groups.items()):
        gone = [s for s in group.instance_states if s.instance.state not in ("running", "pending")]
        if gone:
            group.instance_states = [s for s in group.instance_states if s not in gone]
            for s in gone:
                activities.record(group, f"Terminating EC2 instance: {s.instance.id}",
                                  "an instance was taken out of service in response to an EC2 health check indicating "
                                  "it has been terminated or stopped.")
        desired = group.desired_capacity or 0
        if len(group.active_instances()) < desired:
            if time.monotonic() < _group_launches(group).next_launch:
                continue
            LOG.info("Auto Scaling group %s: %d of %d instances in service; launching replacements",
                     name, len(group.active_instances()), desired)
            group.set_desired_capacity(desired)
        elif group.target_group_arns and _unregistered(group, elbv2):
            autoscaling.update_attached_target_groups(name)


STATUS_CHECK_CAUSE = "an instance was taken out of service in response to an EC2 instance status check failure"


def _replace_unhealthy(instance_id: str, cause: str, ec2, autoscaling) -> None:
    """Terminate a running instance its group found Unhealthy (ELB health, SetInstanceHealth), as Auto Scaling does:
    it leaves the group and its target groups, and the group launches a replacement."""
    group = _group_of(instance_id, autoscaling)
    if group is None:
        return
    group.instance_states = [s for s in group.instance_states if s.instance.id != instance_id]
    activities.record(group, f"Terminating EC2 instance: {instance_id}", cause)
    LOG.warning("Auto Scaling group %s: replacing Unhealthy instance %s", group.name, instance_id)
    try:
        instance = ec2.get_instance(instance_id)
    except Exception:
        return
    if instance.state in ("running", "pending", "stopped"):
        instance.terminate()


def _member(instance_id: str, autoscaling):
    """The instance's InstanceState in its Auto Scaling group, or None."""
    for group in autoscaling.autoscaling_groups.values():
        for state in group.instance_states:
            if state.instance.id == instance_id:
                return state
    return None


def _group_of(instance_id: str, autoscaling):
    for group in autoscaling.autoscaling_groups.values():
        if any(state.instance.id == instance_id for state in group.instance_states):
            return group
    return None


def _unregistered(group, elbv2) -> bool:
    """Does a target group of the group miss one of its instances? (moto registers replacements only sometimes)"""
    members = {state.instance.id for state in group.instance_states}
    return any(tg is not None and not members <= set(tg.targets)
               for tg in (elbv2.target_groups.get(arn) for arn in group.target_group_arns))


def _reconcile_locked() -> None:
    with _lock:
        reconcile()
