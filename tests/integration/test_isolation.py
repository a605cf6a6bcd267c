"""Learner code never runs as root, and a crash-looping Auto Scaling group backs off (issue 8, items 2 and 18).

Through the real emulator: a Lambda handler and an EC2 app instance report who they run as; a group whose user data
crashes the app (DB_PORT=notaport) launches a few instances with growing waits, not four a second, and says so in
its scaling activities."""

from __future__ import annotations

import base64
import json
import os
import pwd
from pathlib import Path

import pytest

from emulator_fixture import client, start_emulator, zip_bytes
from test_bridges import app_pid, app_user_data, wait_for

from securecart_lab.postgres.testing import remove_home

pytestmark = pytest.mark.integration

as_root = pytest.mark.skipif(os.geteuid() != 0, reason="not root: learner code runs as the learner, as documented")

WHOAMI = '''
import os

def handler(event, context):
    try:
        with open(event["path"], "w") as out:
            out.write("written by a Lambda")
        wrote = True
    except OSError as exc:
        wrote = type(exc).__name__
    try:
        open(os.path.join(os.environ["LAMBDA_TASK_ROOT"], "changed.py"), "w").close()
        code_writable = True
    except OSError:
        code_writable = False
    return {"uid": os.getuid(), "euid": os.geteuid(), "wrote": wrote, "code_writable": code_writable}
'''


def _service_uid(settings) -> int:
    return pwd.getpwnam(settings.pg_os_user).pw_uid


def _create(aws, name: str, code: str) -> None:
    iam = aws("iam")
    try:
        role = iam.create_role(RoleName="isolation-test", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    except iam.exceptions.EntityAlreadyExistsException:
        role = iam.get_role(RoleName="isolation-test")["Role"]["Arn"]
    aws("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=role,
                                  Handler="index.handler", Code={"ZipFile": zip_bytes({"index.py": code})}, Timeout=30)


@as_root
def test_lambda_handlers_run_as_the_service_user_not_root(aws, settings, tmp_path):
    target = Path("/root") / f".securecart-lambda-probe-{os.getpid()}"
    # Two functions: the first takes the pre-warmed spare worker, the second a freshly started one (or the next spare).
    for name in ("whoami-one", "whoami-two"):
        _create(aws, name, WHOAMI)
        result = aws("lambda").invoke(FunctionName=name, Payload=json.dumps({"path": str(target)}).encode())
        body = json.loads(result["Payload"].read())
        assert "FunctionError" not in result, body
        assert body["uid"] == body["euid"] == _service_uid(settings) != 0
        assert body["wrote"] == "PermissionError" and not target.exists()
        assert body["code_writable"] is False  # read-only code, as /var/task on AWS
        aws("lambda").delete_function(FunctionName=name)  # the session's emulator is shared: leave no function behind


@as_root
def test_an_app_instance_runs_as_the_service_user_in_its_own_folder(aws, settings):
    ec2 = aws("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 UserData=app_user_data(settings))["Instances"][0]["InstanceId"]
    try:
        pid = wait_for(lambda: app_pid(instance), what="the app process")
        status = Path(f"/proc/{pid}/status").read_text()
        uids = next(line.split()[1:] for line in status.splitlines() if line.startswith("Uid:"))
        assert set(map(int, uids)) == {_service_uid(settings)}
        workdir = Path(os.readlink(f"/proc/{pid}/cwd"))
        assert workdir == settings.service_dir / "instances"
        assert workdir.stat().st_uid == _service_uid(settings) and workdir.stat().st_mode & 0o777 == 0o700
        assert settings.home.stat().st_uid == 0 and settings.home.stat().st_mode & 0o777 == 0o700
    finally:
        ec2.terminate_instances(InstanceIds=[instance])


def _group_instances(aws, group: str) -> list[dict]:
    pages = aws("ec2").describe_instances(Filters=[{"Name": "tag:aws:autoscaling:groupName", "Values": [group]}])
    return [i for r in pages["Reservations"] for i in r["Instances"]]


def test_a_crash_looping_group_backs_off_and_keeps_few_instances_and_logs(aws, settings):
    """At SECURECART_TIME_SCALE=0.1 the waits after failed launches are 0.2, 0.4, 0.8, 1.6, 3.2 s. The old reconciler
    relaunched every 0.25 s, recorded no activity, and left one instance and one log per try."""
    group = "crash-loop"
    user_data = app_user_data(settings).replace(f"DB_PORT={settings.pg_port}", "DB_PORT=notaport")
    aws("ec2").create_launch_template(LaunchTemplateName=group, LaunchTemplateData={
        "ImageId": "ami-12c6146b", "UserData": base64.b64encode(user_data.encode()).decode()})
    autoscaling = aws("autoscaling")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
                                          LaunchTemplate={"LaunchTemplateName": group}, AvailabilityZones=["us-east-1a"])

    def launches():
        found = autoscaling.describe_scaling_activities(AutoScalingGroupName=group)["Activities"]
        return [a for a in found if a["Description"].startswith("Launching a new EC2 instance")]

    try:
        wait_for(lambda: len([a for a in launches() if a["StatusCode"] == "Failed"]) >= 6, timeout=120,
                 what="six failed launches")
        activities = autoscaling.describe_scaling_activities(AutoScalingGroupName=group)["Activities"]
        assert activities == sorted(activities, key=lambda a: a["StartTime"], reverse=True)
        tried = list(reversed(launches()))  # oldest first
        failed = [a for a in tried if a["StatusCode"] == "Failed"]
        assert "failed to start" in failed[0]["StatusMessage"] and "before it served" in failed[0]["StatusMessage"]
        assert any(a["Description"].startswith("Terminating EC2 instance") and "status check failure" in a["Cause"]
                   for a in activities)
        # The waits double, and each next launch really waited that long after the failure.
        waits = [float(a["StatusMessage"].split("launches again in ")[1].split(" s")[0]) for a in failed]
        assert waits[:5] == [0.2, 0.4, 0.8, 1.6, 3.2], waits
        for before, after, wait in zip(tried, tried[1:], waits):
            assert (after["StartTime"] - before["EndTime"]).total_seconds() >= wait - 0.05, (before, after)
        # A crash loop leaves at most KEEP_FAILED (5) failed instances and logs, plus the one being tried.
        instances = _group_instances(aws, group)
        assert len(instances) <= 6 and len(instances) < len(tried)
        terminated = [i for i in instances if i["State"]["Name"] == "terminated"]
        assert terminated and all(i["StateReason"]["Code"] == "Server.InternalError" for i in terminated)
        logs = {p.stem for p in (settings.logs_dir / "instances").glob("*.log")}
        assert len(logs & {a["Description"].rsplit(" ", 1)[1] for a in tried}) <= 6
    finally:
        autoscaling.delete_auto_scaling_group(AutoScalingGroupName=group, ForceDelete=True)


def test_an_instance_that_cannot_start_is_terminated_not_left_running(settings):
    """With a home where the app's log cannot be written, the instance is terminated with a reason (no phantom)."""
    home = Path(__import__("tempfile").mkdtemp(prefix="securecart-unwritable-", dir="/tmp"))
    (home / "logs").mkdir()
    (home / "logs" / "instances").write_text("a file where the instances' log folder should be")
    handle = start_emulator(home, extra_env={"SECURECART_PG_PORT": str(settings.pg_port)})
    try:
        ec2 = client(handle, "ec2")
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                     UserData=app_user_data(settings))["Instances"][0]["InstanceId"]

        def state():
            found = ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]
            return found if found["State"]["Name"] == "terminated" else None

        found = wait_for(state, timeout=10, what="the instance to be terminated")
        assert found["StateReason"]["Code"] == "Server.InternalError"
        assert "could not start" in found["StateReason"]["Message"]
        assert app_pid(instance) is None
    finally:
        handle.stop()
        remove_home(home)


@as_root
def test_an_interpreter_the_service_user_cannot_enter_is_linked_where_it_can(settings):
    """pyenv under /root (0700): the service user gets the interpreter's own files linked under /var/cache."""
    import subprocess
    import sys

    from securecart_lab import service_user

    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    linked = service_user._shared_copy(version)
    assert linked is not None and linked.executable.startswith(str(service_user.SHARED_PYTHON_ROOT))
    prefix, run_as = service_user.launcher(settings)
    # The standard library's bytecode comes along (was: none, so every Lambda worker and app instance compiled what
    # it imported on each start, 2 s and more before a cold start could run).
    script = ("import os, sys, json, ssl, email.parser, http.client; print(os.getuid(), '%d.%d' % sys.version_info[:2]); "
              "print(*[m.__cached__ for m in (json, ssl, email.parser, http.client) if not os.path.isfile(m.__cached__)])")
    out = subprocess.run([*prefix, linked.executable, "-c", script],
                         env={"PATH": "/usr/bin:/bin", **linked.env}, capture_output=True, text=True, cwd="/", **run_as)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0].split() == [str(_service_uid(settings)), version]
    assert out.stdout.splitlines()[1:] == [""], f"no bytecode for: {out.stdout.splitlines()[1:]}"
