"""EC2 -> real app processes, and Auto Scaling groups that keep their capacity.

An instance whose user data runs the SecureCart app (see `userdata`) becomes a local app process (`instance`, which
runs `python -m securecart_lab.app` and ends with the emulator) on its own free port, with the user data's environment, INSTANCE_ID = the instance id and the emulator as
its AWS endpoint. Stop and terminate end the process; start runs it again. When a process dies, its instance is
terminated (state reason Server.InternalError) and its Auto Scaling group launches a replacement: a reconciler
thread keeps every group at its desired capacity and its instances registered in the group's target groups.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from securecart_lab import config
from securecart_lab.config import Settings
from securecart_lab.emulator import bridges, hooks
from securecart_lab.emulator.bridges import userdata
from securecart_lab.emulator.bridges.instance import LIFELINE_ENV
from securecart_lab.ports import free_port

LOG = logging.getLogger(__name__)
RECONCILE_SECONDS = 0.25


@dataclass
class AppProcess:
    instance_id: str
    port: int
    process: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.process.poll() is None


_lock = threading.RLock()
_apps: dict[str, AppProcess] = {}
_launches: dict[str, userdata.AppLaunch] = {}
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


def install() -> None:
    global _lifeline
    _lifeline = os.pipe()
    hooks.replace("ec2.run_instances", _run_instances)
    hooks.replace("ec2.instance.start", _instance_start)
    hooks.replace("ec2.instance.stop", _instance_stop)
    hooks.replace("ec2.instance.terminate", _instance_terminate)
    hooks.replace("autoscaling.replace_instances", _replace_group_instances)
    hooks.replace("ec2.get_console_output", _get_console_output)
    thread = threading.Thread(target=_reconcile_forever, name="asg-reconciler", daemon=True)
    thread.start()

    def shutdown() -> None:
        _stop.set()
        thread.join(timeout=5)
        for instance_id in list(_apps):
            _stop_app(instance_id)

    bridges.on_shutdown(shutdown)


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

def _app_env(instance_id: str, launch: userdata.AppLaunch, port: int, settings: Settings) -> dict[str, str]:
    package_parent = str(Path(__file__).resolve().parents[3])
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONPATH": os.pathsep.join(p for p in (package_parent, os.environ.get("PYTHONPATH")) if p),
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
    with _lock:
        launch = _launches.get(instance_id)
        if launch is None or (instance_id in _apps and _apps[instance_id].alive()):
            return
        settings = Settings.from_env()
        port = free_port()
        log_path = instance_log_path(instance_id, settings)
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "securecart_lab.emulator.bridges.instance"],
                env=_app_env(instance_id, launch, port, settings),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=str(settings.home) if settings.home.exists() else "/",
                start_new_session=True,
                pass_fds=(_lifeline[0],),
            )
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
    _stop_app(self.id)
    with _lock:
        _launches.pop(self.id, None)
    return previous


def _replace_group_instances(self, count_needed: int, propagated_tags: dict) -> None:
    """Launch one instance at a time into the group's subnet (and AZ) with the fewest instances."""
    original = hooks.original("autoscaling.replace_instances")
    subnets = [s for s in (self.vpc_zone_identifier or "").split(",") if s]
    if len(subnets) < 2:
        return original(self, count_needed, propagated_tags)
    ec2 = self.autoscaling_backend.ec2_backend
    zone_identifier, zones = self.vpc_zone_identifier, self.availability_zones
    try:
        for _ in range(count_needed):
            used = [state.instance.subnet_id for state in self.instance_states]
            subnet = min(subnets, key=lambda s: (used.count(s), subnets.index(s)))
            self.vpc_zone_identifier = ",".join([subnet] + [s for s in subnets if s != subnet])
            self.availability_zones = [ec2.get_subnet(subnet).availability_zone]
            original(self, 1, dict(propagated_tags))
    finally:
        self.vpc_zone_identifier, self.availability_zones = zone_identifier, zones


# --- the reconciler --------------------------------------------------------------------------------------------

def _backends():
    account, region = config.ACCOUNT_ID, config.REGION
    return (hooks.resolve("ec2.backends")[account][region],
            hooks.resolve("autoscaling.backends")[account][region],
            hooks.resolve("elbv2.backends")[account][region])


def reconcile() -> None:
    """Terminate instances whose app died, then bring every Auto Scaling group back to its desired capacity."""
    ec2, autoscaling, elbv2 = _backends()
    dead = [app for app in app_processes().values() if not app.alive()]
    for app in dead:
        LOG.warning("EC2 %s: app process exited with code %s; terminating the instance", app.instance_id, app.process.returncode)
        _stop_app(app.instance_id)
        try:
            instance = ec2.get_instance(app.instance_id)
        except Exception:
            continue
        if instance.state in ("running", "pending"):
            ec2.terminate_instances([app.instance_id])
            instance._reason = "Server.InternalError: the instance's app process exited"
            elbv2.notify_terminate_instances([app.instance_id])
            autoscaling.notify_terminate_instances([app.instance_id])
    for name, group in list(autoscaling.autoscaling_groups.items()):
        gone = [s for s in group.instance_states if s.instance.state not in ("running", "pending")]
        if gone:
            group.instance_states = [s for s in group.instance_states if s not in gone]
        desired = group.desired_capacity or 0
        if len(group.active_instances()) < desired:
            LOG.info("Auto Scaling group %s: %d of %d instances in service; launching replacements",
                     name, len(group.active_instances()), desired)
            group.set_desired_capacity(desired)
        elif group.target_group_arns and _unregistered(group, elbv2):
            autoscaling.update_attached_target_groups(name)


def _unregistered(group, elbv2) -> bool:
    """Does a target group of the group miss one of its instances? (moto registers replacements only sometimes)"""
    members = {state.instance.id for state in group.instance_states}
    return any(tg is not None and not members <= set(tg.targets)
               for tg in (elbv2.target_groups.get(arn) for arn in group.target_group_arns))


def _reconcile_forever() -> None:
    while not _stop.wait(RECONCILE_SECONDS):
        try:
            with _lock:
                reconcile()
        except Exception:
            LOG.exception("Auto Scaling reconciler failed; retrying")
