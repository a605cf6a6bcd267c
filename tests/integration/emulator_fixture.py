"""Start the real emulator process for tests: `start_emulator(home) -> EmulatorHandle`."""

from __future__ import annotations

import contextlib
import signal
import time
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from securecart_lab.emulator import process as emulator_process
from securecart_lab.ports import free_port
from securecart_lab.postgres.testing import remove_home


@dataclass
class EmulatorHandle:
    process: subprocess.Popen
    endpoint_url: str
    log_path: Path
    port: int

    def stop(self) -> int:
        return emulator_process.stop(self.process)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def start_emulator(home: Path, port: int | None = None, time_scale: float = 1.0, extra_env=None) -> EmulatorHandle:
    """Start the emulator on a free port under `home`; returns once /_localstack/health answers."""
    port = port or free_port()
    log_path = Path(home) / "logs" / f"emulator-{port}.log"
    proc = emulator_process.start(port=port, home=Path(home), log_path=log_path, time_scale=time_scale,
                                  extra_env=extra_env)
    url = f"http://127.0.0.1:{port}"
    try:
        emulator_process.wait_healthy(url, timeout=60, process=proc)
    except Exception:
        emulator_process.stop(proc)
        raise
    return EmulatorHandle(process=proc, endpoint_url=url, log_path=log_path, port=port)


@contextlib.contextmanager
def running_emulator(time_scale: float = 1.0):
    """A private emulator in a fresh temporary home, stopped and cleaned up on exit (for a module fixture)."""
    home = Path(tempfile.mkdtemp(prefix="securecart-emu-", dir="/tmp"))
    handle = start_emulator(home, time_scale=time_scale)
    try:
        yield handle
    finally:
        handle.stop()
        remove_home(home)


# --- helpers for tests that drive the emulator ----------------------------------------------------------------

ROLE_ARN = "arn:aws:iam::123456789012:role/securecart-test"


def client(handle: EmulatorHandle, service: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        service,
        endpoint_url=handle.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"max_attempts": 1}, read_timeout=60),
    )


def zip_bytes(files: dict[str, str]) -> bytes:
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


ALLOW_ALL = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}'


def ensure_role(handle: EmulatorHandle) -> str:
    """The tests' role: it may do anything (the emulator evaluates the roles services act as)."""
    iam = client(handle, "iam")
    try:
        iam.create_role(RoleName="securecart-test", AssumeRolePolicyDocument="{}")
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    iam.put_role_policy(RoleName="securecart-test", PolicyName="everything", PolicyDocument=ALLOW_ALL)
    return ROLE_ARN


def create_function(handle: EmulatorHandle, name: str, source: str, handler: str = "app.handler", **extra) -> str:
    """A python3.11 function whose app.py is `source`; returns its ARN."""
    response = client(handle, "lambda").create_function(
        FunctionName=name, Runtime="python3.11", Role=ensure_role(handle), Handler=handler,
        Code={"ZipFile": zip_bytes({"app.py": source})}, **extra,
    )
    return response["FunctionArn"]


def wait_execution(handle: EmulatorHandle, execution_arn: str, timeout: float = 20.0) -> dict:
    """DescribeExecution once the execution has left RUNNING."""
    import time

    sfn = client(handle, "stepfunctions")
    deadline = time.monotonic() + timeout
    while True:
        described = sfn.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() > deadline:
            return described
        time.sleep(0.05)


def wait_for(predicate, timeout: float = 20, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def ctrl_c_reaches_it() -> None:
    """preexec_fn for a CLI a test interrupts with SIGINT: SIGINT's default disposition, as a terminal's foreground
    job has it. A suite run as a background job (`pytest &`, `bash -c '...' &`) starts every child with SIGINT
    ignored, and Python then never raises KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
