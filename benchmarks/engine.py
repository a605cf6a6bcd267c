"""Engine benchmark: cold `up` to healthy, `down`, a 10-state Step Functions execution, Lambda cold and warm invokes.

Runs the real local engine in a temporary SECURECART_HOME on free ports; prints medians of several runs.
Usage: python benchmarks/engine.py [--runs 5]
Targets: cold up < 5 s, warm Lambda invoke < 50 ms, 10-state execution < 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
import zipfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from securecart_lab import aws
from securecart_lab.config import Settings
from securecart_lab.engines.local import LocalEngine
from securecart_lab.ports import free_port

ROLE = "arn:aws:iam::123456789012:role/bench"
HANDLER = "def handler(event, context):\n    return {'n': event.get('n', 0) + 1}\n"
BOTO3_HANDLER = "import boto3\n\nsqs = boto3.client('sqs')\n\n\n" + HANDLER


def _zip(source: str = HANDLER) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("app.py", source)
    return buf.getvalue()


def _ten_states(lambda_arn: str) -> str:
    states = {}
    names = [f"S{i}" for i in range(10)]
    for i, name in enumerate(names):
        state = {"Type": "Pass", "Result": {"n": i}} if i % 3 else {"Type": "Task", "Resource": lambda_arn}
        if i == 4:
            state = {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 0, "Next": names[i + 1]}],
                     "Default": names[i + 1]}
        else:
            state.update({"Next": names[i + 1]} if i < 9 else {"End": True})
        states[name] = state
    return json.dumps({"StartAt": "S0", "States": states})


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="securecart-bench-", dir="/tmp"))
    home.chmod(0o755)
    settings = Settings(home=home, emulator_port=free_port(), pg_port=free_port())
    engine = LocalEngine(settings)
    rows: dict[str, list[float]] = {"cold up (emulator + PostgreSQL)": [], "down": []}
    engine.up()  # first run includes initdb; not counted
    engine.down()
    for _ in range(args.runs):
        rows["cold up (emulator + PostgreSQL)"].append(_timed(engine.up))
        rows["down"].append(_timed(engine.down))
    engine.up()
    try:
        aws.client("iam", engine.endpoint_url).create_role(
            RoleName="bench", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                 "Action": "sts:AssumeRole"}]}))
        lam = aws.client("lambda", engine.endpoint_url)
        sfn = aws.client("stepfunctions", engine.endpoint_url)
        cold, cold_boto3, warm, execs = [], [], [], []
        for i in range(args.runs):
            name = f"bench-{i}"
            arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                      Code={"ZipFile": _zip()})["FunctionArn"]
            time.sleep(1)  # a pause, as between a learner's commands: the background spare worker gets ready
            cold.append(_timed(lambda: lam.invoke(FunctionName=name, Payload=b"{}")))
            for _ in range(5):
                warm.append(_timed(lambda: lam.invoke(FunctionName=name, Payload=b"{}")))
            lam.create_function(FunctionName=f"{name}-boto3", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": _zip(BOTO3_HANDLER)})
            time.sleep(1)
            cold_boto3.append(_timed(lambda: lam.invoke(FunctionName=f"{name}-boto3", Payload=b"{}")))
        machine = sfn.create_state_machine(name="bench-10", definition=_ten_states(arn), roleArn=ROLE)["stateMachineArn"]

        def run_execution():
            exec_arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            while sfn.describe_execution(executionArn=exec_arn)["status"] == "RUNNING":
                time.sleep(0.005)

        run_execution()  # warms the Lambda worker
        for _ in range(args.runs):
            execs.append(_timed(run_execution))
        rows["Lambda cold invoke"] = cold
        rows["Lambda cold invoke (handler imports boto3)"] = cold_boto3
        rows["Lambda warm invoke"] = warm
        rows["10-state execution (3 Lambda tasks)"] = execs
    finally:
        engine.down(purge=True)
    table = Table("Measure", "Median", "Min", "Max", "Runs", title="securecart-lab local engine")
    for name, values in rows.items():
        fmt = (lambda v: f"{v * 1000:.0f} ms") if statistics.median(values) < 1 else (lambda v: f"{v:.2f} s")
        table.add_row(name, fmt(statistics.median(values)), fmt(min(values)), fmt(max(values)), str(len(values)))
    Console().print(table)


if __name__ == "__main__":
    main()
