"""The local engine for real: idempotent up, status, crash recovery, SQL, and the installed console script."""

import contextlib
import json
import os
import socket
import tempfile
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from securecart_lab import config

pytestmark = pytest.mark.integration


def test_up_twice_is_idempotent_and_says_so(engine, cli):
    result = cli("up")
    assert result.exit_code == 0
    assert "already running" in result.output


def test_status_shows_components_and_services(engine, cli):
    result = cli("status", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["running"] is True
    assert {c["name"]: c["state"] for c in data["components"]} == {"emulator": "running", "postgres": "running"}
    for service in ("stepfunctions", "lambda", "events", "rds", "elbv2"):
        assert data["services"][service] in ("running", "available")  # running once a request loaded it
    assert data["info"]["time_scale"] == pytest.approx(0.1)


def test_status_reports_the_environments_memory(engine, cli):
    data = json.loads(cli("status", "--format", "json").output)
    parts = {part["part"]: part for part in data["footprint"]["parts"]}
    assert parts["emulator"]["processes"] == 1 and 20 < parts["emulator"]["mib"] < 1024
    assert parts["PostgreSQL"]["processes"] >= 2 and parts["PostgreSQL"]["mib"] > 1  # postmaster and its workers
    assert data["footprint"]["total_mib"] == pytest.approx(sum(p["mib"] for p in parts.values()), abs=0.2)
    table = cli("status").output
    assert "Memory" in table and "PostgreSQL" in table and "total" in table


def test_sql_round_trip_on_the_real_postgres(engine):
    server = engine.postgres()
    with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
        assert conn.execute("select count(*) from products").fetchone()[0] >= 100
        conn.execute("create temporary table t (x int)")
        conn.execute("insert into t values (41)")
        assert conn.execute("select x + 1 from t").fetchone()[0] == 42
        assert conn.execute("select current_setting('server_version_num')::int").fetchone()[0] >= 160000


def test_aws_api_works_through_boto3(aws):
    sqs = aws("sqs")
    url = sqs.create_queue(QueueName="engine-test")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == "hello"


def test_crashed_emulator_shows_in_status_and_up_recovers(engine, cli):
    pid = int(engine.pid_file.read_text())
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while engine.health() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    data = json.loads(cli("status", "--format", "json").output)
    assert {c["name"]: c["state"] for c in data["components"]}["emulator"] == "crashed"
    result = cli("up")
    assert result.exit_code == 0 and "is up" in result.output
    assert engine.health()["edition"] == "securecart-local"


def test_up_waits_for_a_busy_emulator_instead_of_replacing_it(engine):
    """A loaded laptop: the emulator answers only after a few seconds. up (and ci, start, deploy, which go through it)
    must wait for it, not replace it and lose every resource the learner created; ci stops only what up started."""
    pid = int(engine.pid_file.read_text())
    os.kill(pid, signal.SIGSTOP)
    resume = threading.Timer(3.0, os.kill, (pid, signal.SIGCONT))
    resume.start()
    try:
        started = engine.up()
    finally:
        resume.cancel()
        os.kill(pid, signal.SIGCONT)
    assert started is False
    assert int(engine.pid_file.read_text()) == pid


def _start_time(pid: int) -> str | None:
    """When process `pid` started (clock ticks after boot); None when there is no such process."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def test_up_replaces_its_own_hung_emulator(engine, cli, monkeypatch):
    """A hung (SIGSTOPped) emulator holds the port: up recognises it as its own (pid file, or /proc when the pid
    file is gone) and replaces it instead of failing with "Port ... is already in use by pid <its own emulator>"."""
    from securecart_lab.engines import local

    monkeypatch.setattr(local, "BUSY_HEALTH_TIMEOUT", 1.0)  # hung, not busy: no need to wait the full grace
    for lose_pid_file in (False, True):
        pid = int(engine.pid_file.read_text())
        born = _start_time(pid)
        os.kill(pid, signal.SIGSTOP)
        if lose_pid_file:
            engine.pid_file.unlink()
        try:
            result = cli("up")
            assert result.exit_code == 0 and "is up" in result.output, result.output
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        assert int(engine.pid_file.read_text()) != pid
        assert engine.health()["edition"] == "securecart-local"
        # Gone, and reaped (up started it in this process): no zombie left. Its pid may already name a new process
        # (pids wrap at 32768 on a busy machine), never the same one.
        assert _start_time(pid) != born


def test_a_failed_up_leaves_nothing_running(tmp_path):
    from securecart_lab.config import Settings
    from securecart_lab.engines.local import LocalEngine
    from securecart_lab.errors import PortInUse
    from securecart_lab.ports import free_port

    home = Path(tempfile.mkdtemp(prefix="securecart-failed-up-", dir="/tmp"))
    home.chmod(0o755)
    settings = Settings(home=home / "home", workspace=tmp_path / "ws", emulator_port=free_port(), pg_port=free_port())
    engine = LocalEngine(settings)
    try:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", settings.emulator_port))
            sock.listen()
            with pytest.raises(PortInUse):
                engine.up()
        assert not engine.postgres().is_running()
        assert not (settings.pg_dir / "primary" / "postmaster.pid").exists()
    finally:
        engine.down()
        shutil.rmtree(home, ignore_errors=True)


def test_crashed_postgres_shows_in_status_and_up_recovers(engine, cli):
    server = engine.postgres()
    os.kill(server.pid(), signal.SIGKILL)
    deadline = time.monotonic() + 5
    while server.is_running() and time.monotonic() < deadline:
        time.sleep(0.05)
    data = json.loads(cli("status", "--format", "json").output)
    assert {c["name"]: c["state"] for c in data["components"]}["postgres"] == "crashed"
    assert cli("up").exit_code == 0
    with server.connect(config.DB_NAME, config.DB_USER, config.DB_PASSWORD) as conn:
        assert conn.execute("select 1").fetchone()[0] == 1


def test_installed_console_script_runs_as_a_subprocess(engine):
    script = shutil.which("securecart-lab", path=os.path.dirname(sys.executable)) or shutil.which("securecart-lab")
    if script is None:
        pytest.skip("securecart-lab is not installed in this environment (pip install . installs it)")
    out = subprocess.run([script, "status", "--format", "json"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["running"] is True
    bad = subprocess.run([script, "start", "42"], capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1
    assert bad.stderr.startswith("Error: There is no lab 42") and "Traceback" not in bad.stderr


def test_logs_of_the_emulator_postgres_and_a_lambda(engine, cli, aws):
    import io
    import zipfile

    assert cli("logs", "emulator").exit_code == 0
    assert "database system is ready" in cli("logs", "postgres", "-n", "500").output

    iam = aws("iam")
    role = iam.create_role(RoleName="logs-test", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }))["Role"]["Arn"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", "def handler(event, context):\n    print('hello from', context.function_name)\n")
    aws("lambda").create_function(FunctionName="logs-test", Runtime="python3.12", Role=role, Handler="app.handler",
                                  Code={"ZipFile": buf.getvalue()})
    aws("lambda").invoke(FunctionName="logs-test", Payload=b"{}")
    result = cli("logs", "lambda", "logs-test")
    assert result.exit_code == 0
    assert "hello from logs-test" in result.output and "REPORT RequestId" in result.output

    result = cli("logs", "lambda", "never-ran")
    assert result.exit_code == 1
    assert result.output.startswith("Error: There is no function 'never-ran'.") and "logs-test" in result.output
