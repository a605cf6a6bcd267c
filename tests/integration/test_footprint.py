"""`status` says what each lab costs (issue 10): every process of the environment is the shared base's, a lab's, or
"other" (made by hand), and the groups add up to the total.

On an engine of this module's own (the session's carries whatever other modules deployed, and the first test needs
an environment where nothing is): nothing deployed, then labs 1 to 4 deployed, a function and a read replica made
by hand. A process's lab is checked against what the process itself says: a handler returns its pid, an app
process carries its instance id in its environment, a PostgreSQL server's pid file is in its instance's folder.
"""

from __future__ import annotations

import io
import json
import shutil
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_bridges import app_pid

from securecart_lab import aws as aws_clients
from securecart_lab.config import SECURITY_ACCOUNT_ID, Settings
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab
from securecart_lab.ports import free_port

pytestmark = pytest.mark.integration

WHO_AM_I = "import os\n\ndef handler(event, context):\n    return {'pid': os.getpid()}\n"


@pytest.fixture(scope="module")
def own():
    """(settings, engine) of an engine of this module's own, with the env vars the CLI and child processes read."""
    from securecart_lab.engines.local import LocalEngine

    home = Path(tempfile.mkdtemp(prefix="securecart-footprint-", dir="/tmp"))
    home.chmod(0o755)  # PostgreSQL and learner code run as the service user
    env = {"SECURECART_ENGINE": "local", "SECURECART_HOME": str(home / "home"),
           "SECURECART_WORKSPACE": str(home / "workspace"), "SECURECART_EMULATOR_PORT": str(free_port()),
           "SECURECART_PG_PORT": str(free_port()), "SECURECART_TIME_SCALE": "0.1", "SECURECART_IAM": "on"}
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        settings = Settings.from_env()
        engine = LocalEngine(settings)
        engine.up()
        try:
            yield settings, engine
        finally:
            engine.down(purge=True)
            shutil.rmtree(home, ignore_errors=True)


def _status() -> dict:
    from securecart_lab.cli import app

    result = CliRunner().invoke(app, ["status", "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["footprint"]


def _pids(group: dict, part: str | None = None) -> set[int]:
    return {pid for row in group["parts"] if part in (None, row["part"]) for pid in row["pids"]}


def _lab(footprint: dict, number: int) -> dict:
    return next(lab for lab in footprint["labs"] if lab["lab"] == number)


def _assert_adds_up(footprint: dict) -> None:
    groups = [footprint["shared"], *footprint["labs"], footprint["other"]]
    total_processes = sum(part["processes"] for part in footprint["parts"])
    assert sum(group["processes"] for group in groups) == total_processes
    # Each group is rounded to 0.1 MiB on its own.
    assert sum(group["mib"] for group in groups) == pytest.approx(footprint["total_mib"], abs=0.05 * len(groups) + 0.1)
    every_pid = [pid for group in groups for pid in _pids(group)]
    assert len(every_pid) == len(set(every_pid)) == total_processes, "a process counted twice, or not at all"


def test_with_nothing_deployed_everything_is_the_shared_base(own):
    _settings, engine = own
    unused = {name for name, state in engine.health()["services"].items() if state == "available"}
    footprint = _status()
    assert unused and {name for name, state in engine.health()["services"].items() if state == "available"} == unused, \
        "asking what runs loaded a service"
    assert footprint["labs"] and all(lab["processes"] == 0 and lab["mib"] == 0 and lab["parts"] == []
                                     for lab in footprint["labs"]), footprint["labs"]
    assert footprint["other"] == {"processes": 0, "mib": 0, "parts": []}
    parts = {row["part"]: row for row in footprint["shared"]["parts"]}
    assert parts["emulator"]["processes"] == 1 and parts["emulator"]["mib"] > 10
    assert parts["PostgreSQL"]["resources"] == ["primary"] and parts["PostgreSQL"]["processes"] >= 2
    assert footprint["shared"]["mib"] == pytest.approx(footprint["total_mib"], abs=0.1)
    _assert_adds_up(footprint)


def _invoke(settings, name: str, payload: dict, account: str | None = None) -> dict:
    lam = aws_clients.client("lambda", settings.endpoint_url, *([account] if account else []))
    response = lam.invoke(FunctionName=name, Payload=json.dumps(payload).encode())
    return json.loads(response["Payload"].read() or b"null")


@pytest.fixture(scope="module")
def deployed(own):
    """Labs 1 to 4 deployed (lab 3 without its drill), one function of each of labs 1 and 4 invoked, a function and
    a read replica of lab 3's replica made by hand; returns what the processes themselves say."""
    settings, _engine = own
    service.start(settings, 1)
    _invoke(settings, "validate-order", {"orderId": "fp-1", "items": []})
    service.solve(settings, 2)
    folder = Path(tempfile.mkdtemp(prefix="lab03-", dir="/tmp"))  # not solution/: its deploy runs the drill
    shutil.copy(get_lab(3).solution_dir / "replica.yaml", folder)
    try:
        service.deploy(settings, 3, source=folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    service.start(settings, 4, with_prereqs=True)
    _invoke(settings, "securecart-checkout", {"totalCents": 1000})
    lam = aws_clients.client("lambda", settings.endpoint_url)
    role = aws_clients.client("iam", settings.endpoint_url).create_role(
        RoleName="footprint-by-hand", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", WHO_AM_I)
    lam.create_function(FunctionName="made-by-hand", Runtime="python3.12", Role=role, Handler="index.handler",
                        Code={"ZipFile": code.getvalue()})
    lam.get_waiter("function_active_v2").wait(FunctionName="made-by-hand")
    by_hand_pid = _invoke(settings, "made-by-hand", {})["pid"]
    # Lab 4's function name, but in the security account: not lab 4's (a function is its account's and its name's).
    security = aws_clients.client("lambda", settings.endpoint_url, SECURITY_ACCOUNT_ID)
    security_role = aws_clients.client("iam", settings.endpoint_url, SECURITY_ACCOUNT_ID).create_role(
        RoleName="footprint-by-hand", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    security.create_function(FunctionName="securecart-checkout", Runtime="python3.12", Role=security_role,
                             Handler="index.handler", Code={"ZipFile": code.getvalue()})
    security.get_waiter("function_active_v2").wait(FunctionName="securecart-checkout")
    security_pid = _invoke(settings, "securecart-checkout", {}, SECURITY_ACCOUNT_ID)["pid"]
    rds = aws_clients.client("rds", settings.endpoint_url)
    rds.create_db_instance_read_replica(DBInstanceIdentifier="footprint-replica",
                                        SourceDBInstanceIdentifier="securecart-db-replica")
    deadline = time.monotonic() + 60
    while (status := rds.describe_db_instances(DBInstanceIdentifier="footprint-replica")["DBInstances"][0][
            "DBInstanceStatus"]) != "available":
        assert time.monotonic() < deadline, f"the replica made by hand is still {status}"
        time.sleep(0.2)
    # Each invocation that took the spare worker starts another in the background: status names it once it is up.
    deadline = time.monotonic() + 30
    while not _registry(settings)["spare_workers"]:
        assert time.monotonic() < deadline, "no spare Lambda worker came up"
        time.sleep(0.1)
    asg = aws_clients.client("autoscaling", settings.endpoint_url)
    instances = [i["InstanceId"] for i in asg.describe_auto_scaling_instances()["AutoScalingInstances"]]
    return {"by_hand_pid": by_hand_pid, "security_pid": security_pid, "instances": instances}


def _registry(settings) -> dict:
    with urllib.request.urlopen(settings.endpoint_url + "/_securecart/processes", timeout=5) as response:
        return json.loads(response.read())


def _postmaster(settings, folder: str) -> int:
    return int((settings.pg_dir / folder / "postmaster.pid").read_text().split("\n", 1)[0])


def test_each_labs_processes_are_that_labs(own, deployed):
    settings, _engine = own
    footprint = _status()
    lab1, lab2, lab3, lab4 = (_lab(footprint, n) for n in (1, 2, 3, 4))

    assert "validate-order" in _resources(lab1, "Lambda workers")
    assert "securecart-checkout" in _resources(lab4, "Lambda workers")
    assert not _pids(lab1) & _pids(lab4)

    assert deployed["instances"], "lab 2's Auto Scaling group has no instance"
    expected = {app_pid(instance) for instance in deployed["instances"]} - {None}
    assert expected and expected <= _pids(lab2, "app instances"), (expected, lab2)
    assert _postmaster(settings, "securecart-db") in _pids(lab2, "PostgreSQL")
    assert lab2["in_emulator"] == ["ALB securecart-alb"]

    assert _postmaster(settings, "securecart-db-replica") in _pids(lab3, "PostgreSQL")
    # Made by hand, but a copy of lab 3's replica: lab 3's (its source's lab, not its source's source's).
    assert "footprint-replica" in _resources(lab3, "PostgreSQL")
    assert _postmaster(settings, "footprint-replica") in _pids(lab3, "PostgreSQL")

    assert {deployed["by_hand_pid"], deployed["security_pid"]} <= _pids(footprint["other"], "Lambda workers")
    assert _resources(footprint["other"], "Lambda workers") == ["made-by-hand", "security:securecart-checkout"]
    assert _postmaster(settings, "primary") in _pids(footprint["shared"], "PostgreSQL")
    for lab in (lab1, lab2, lab3, lab4):
        assert lab["mib"] > 0 and lab["processes"] > 0, lab
    _assert_adds_up(footprint)


def _resources(group: dict, part: str) -> list[str]:
    return next((row["resources"] for row in group["parts"] if row["part"] == part), [])


def test_the_table_shows_each_lab_with_what_it_runs(own, deployed):
    from securecart_lab.cli import app

    output = CliRunner().invoke(app, ["status"], catch_exceptions=False, terminal_width=200).output
    table = output[output.index("Memory by lab"):]
    for text in ("shared", "lab 1", "lab 2", "lab 3", "lab 4", "other", "validate-order", "securecart-db-replica",
                 "ALB securecart-alb", "made-by-hand", "total"):
        assert text in table, text
