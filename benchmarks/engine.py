"""Engine benchmark: the kit's emulator beside plain moto, measured interleaved in one run; medians are printed.

Rows (kit and plain moto alternately, each run starting fresh processes on free loopback ports):
  - process start -> first answer (`sts get-caller-identity` through boto3), and the emulator's CPU time until then
  - idle RSS of the emulator's process tree (the emulator and every process it started), a few seconds after that
  - SQS SendMessage / ReceiveMessage / DeleteMessage and DynamoDB PutItem / GetItem / Query, in req/s, sequential
    from one boto3 client, with 50 and with --depth (5,000) messages/items in the queue/table (each operation called
    once untimed first: its one-time cost is the start's)
The kit alone: `up` (emulator + PostgreSQL, existing home), `down`, Lambda cold/warm invokes, a 10-state execution.

Where the time of a throughput row goes: the CPU time per request of this process (the boto3 client: validating,
serialising, signing, parsing) and of the emulator's process tree (the server), in a second table. With one client
sending sequentially, requests/s is at most 1000 / (client ms + server ms): when the client's share alone is near
2 ms, 500 req/s is out of reach whatever the server does.

The JSON result (--out) holds every sample, so runs can be compared: --compare OLD.json prints OLD's medians beside.
Timings on a shared machine are inflated by other load: compare kit and moto from the same run.

Plain moto slows as its queue/table fills (SendMessage and Query walk everything): at 5,000 its deep rows take many
minutes on a busy machine; --moto-depth measures them at a smaller depth (the rows say which).

Usage: python benchmarks/engine.py [--runs 3] [--depth 5000] [--moto-depth N] [--out FILE] [--compare OLD.json]
       [--skip-lambda]
Targets (2 cores): first answer < 0.5 s; idle tree < 120 MiB; queue/table >= 500 req/s at 50 and at 5,000;
`up` < 1.5 s; `down` < 1 s; warm Lambda invoke < 50 ms; 10-state execution < 1 s.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from importlib.metadata import version
from pathlib import Path

import boto3
import psutil
from botocore.config import Config
from rich.console import Console
from rich.table import Table

from _harness import timed
from securecart_lab import aws
from securecart_lab.config import Settings
from securecart_lab.emulator import process as emulator_process
from securecart_lab.engines.local import LocalEngine
from securecart_lab.ports import free_port

ROLE = "arn:aws:iam::123456789012:role/bench"
HANDLER = "def handler(event, context):\n    return {'n': event.get('n', 0) + 1}\n"
BOTO3_HANDLER = "import boto3\n\nsqs = boto3.client('sqs')\n\n\n" + HANDLER
WINDOW = 50  # requests per throughput sample
KIT, MOTO = "securecart", "plain moto"


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


def _rate(fn: Callable[[int], object], indexes: range) -> float:
    """Requests per second of fn(i) for each i, one after the other."""
    started = time.perf_counter()
    for i in indexes:
        fn(i)
    return len(indexes) / (time.perf_counter() - started)


CLIENT_CPU, SERVER_CPU = " client CPU (ms/req)", " server CPU (ms/req)"


def _tree_cpu(pid: int) -> float:
    """CPU seconds (user + system, threads that ended included) of a process and its children so far."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            times = proc.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def _tree_run_time(pid: int) -> float:
    """CPU seconds of a process and its children so far, in nanoseconds (each process's CPU clock, threads that
    ended included), for a throughput window: cpu_times() counts 10 ms clock ticks, a fifth of a 50-request window.
    Falls back to cpu_times() where the clock cannot be read."""
    try:
        time.clock_gettime(_process_cpu_clock(pid))
    except OSError:
        return _tree_cpu(pid)
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        try:
            total += time.clock_gettime(_process_cpu_clock(proc.pid))
        except OSError:  # ended meanwhile
            pass
    return total


def _process_cpu_clock(pid: int) -> int:
    """Linux's clock id for a process's CPU time (what clock_getcpuclockid(3) returns: CPUCLOCK_SCHED of the pid)."""
    return ((~pid) << 3) | 2


class Rows(dict):
    """Throughput rows, each with the client's and the server's CPU time per request beside it."""

    def __init__(self, server_pid: int):
        super().__init__()
        self.server_pid = server_pid

    def rate(self, name: str, fn: Callable[[int], object], indexes: range) -> None:
        client, server = time.process_time(), _tree_run_time(self.server_pid)
        self[name] = _rate(fn, indexes)
        self[name + CLIENT_CPU] = (time.process_time() - client) * 1000 / len(indexes)
        self[name + SERVER_CPU] = (_tree_run_time(self.server_pid) - server) * 1000 / len(indexes)


def _client(service: str, url: str, **config):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test",
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config))


# --- the two emulators ----------------------------------------------------------------------------------------

class Emulator:
    """A fresh emulator process: the kit's (`python -m securecart_lab.emulator`) or plain `python -m moto.server`."""

    def __init__(self, kind: str, scratch: Path):
        self.kind = kind
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = Path(tempfile.mkdtemp(prefix=f"{'kit' if kind == KIT else 'moto'}-", dir=scratch))
        self.process: subprocess.Popen | None = None
        self.start_cpu = 0.0

    def start(self) -> float:
        """Start the process; seconds until boto3's `sts get-caller-identity` first succeeds."""
        sts = _client("sts", self.url, connect_timeout=0.5, read_timeout=30)
        started = time.perf_counter()
        if self.kind == KIT:
            self.process = emulator_process.start(port=self.port, home=self.home, log_path=self.home / "emulator.log")
        else:
            env = {k: v for k, v in os.environ.items() if k != "MOTO_PORT"}
            with open(self.home / "moto.log", "ab") as log:
                self.process = subprocess.Popen(
                    [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = started + 60
        while True:
            try:
                sts.get_caller_identity()
                elapsed = time.perf_counter() - started
                self.start_cpu = _tree_cpu(self.process.pid)
                return elapsed
            except Exception:
                if self.process.poll() is not None or time.perf_counter() > deadline:
                    raise RuntimeError(f"{self.kind} emulator did not answer; see {self.home}") from None
                time.sleep(0.005)

    def tree_rss_mib(self) -> float:
        root = psutil.Process(self.process.pid)
        total = 0
        for proc in [root, *root.children(recursive=True)]:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    def stop(self) -> float:
        """Seconds from SIGTERM until the process (and its group) is gone."""
        started = time.perf_counter()
        emulator_process.stop(self.process)
        return time.perf_counter() - started


# --- workloads ------------------------------------------------------------------------------------------------

def _warm_sqs(sqs, tag: str) -> None:
    """Each SQS operation once, untimed, on a queue of its own: a first call's one-time cost (loading the
    operation's model) is the start's, measured by the first-answer row, not any queue depth's."""
    queue = sqs.create_queue(QueueName=f"bench-{tag}-warm")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody="warm")
    for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1).get("Messages", []):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    sqs.delete_queue(QueueUrl=queue)


def sqs_rates(url: str, depth: int, tag: str, server_pid: int) -> dict[str, float]:
    """SendMessage at 50 messages and at `depth`; ReceiveMessage and DeleteMessage on a queue holding 50 and `depth`."""
    sqs = _client("sqs", url)
    rows = Rows(server_pid)
    _warm_sqs(sqs, tag)
    for size in (WINDOW, depth):
        queue = sqs.create_queue(QueueName=f"bench-{tag}-{size}", Attributes={"VisibilityTimeout": "300"})["QueueUrl"]

        def send(i: int) -> None:
            sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({"order": i, "pad": "x" * 200}))

        if size > WINDOW:
            _rate(send, range(size - WINDOW))
        rows.rate(f"SQS SendMessage @{size}", send, range(size - WINDOW, size))
        handles: list[str] = []

        def receive(_: int) -> None:
            handles.extend(m["ReceiptHandle"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=1)["Messages"])

        rows.rate(f"SQS ReceiveMessage @{size}", receive, range(WINDOW))
        rows.rate(f"SQS DeleteMessage @{size}", lambda i: sqs.delete_message(QueueUrl=queue, ReceiptHandle=handles[i]),
                  range(WINDOW))
        sqs.delete_queue(QueueUrl=queue)
    return rows


def dynamodb_rates(url: str, depth: int, tag: str, server_pid: int) -> dict[str, float]:
    """PutItem, GetItem and Query (one partition) with 50 and with `depth` items in the table."""
    ddb = _client("dynamodb", url)
    rows = Rows(server_pid)
    warm = True
    for size in (WINDOW, depth):
        table = f"bench-{tag}-{size}"
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                               {"AttributeName": "sk", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}])

        def put(i: int) -> None:
            ddb.put_item(TableName=table, Item={"pk": {"S": f"customer-{i % 100}"}, "sk": {"S": f"order-{i:06d}"},
                                                "total": {"N": str(i)}, "pad": {"S": "x" * 200}})

        if warm:  # each operation once, untimed: its first call's one-time cost belongs to no queue depth
            put(-1)
            ddb.get_item(TableName=table, Key={"pk": {"S": "customer-99"}, "sk": {"S": "order--00001"}})
            ddb.query(TableName=table, KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "x"}})
            ddb.delete_item(TableName=table, Key={"pk": {"S": "customer-99"}, "sk": {"S": "order--00001"}})
            warm = False
        if size > WINDOW:
            _rate(put, range(size - WINDOW))
        rows.rate(f"DynamoDB PutItem @{size}", put, range(size - WINDOW, size))
        rows.rate(
            f"DynamoDB GetItem @{size}",
            lambda i: ddb.get_item(TableName=table, Key={"pk": {"S": f"customer-{i % 100}"}, "sk": {"S": f"order-{i:06d}"}}),
            range(size - WINDOW, size))
        rows.rate(
            f"DynamoDB Query @{size}",
            lambda i: ddb.query(TableName=table, KeyConditionExpression="pk = :p AND sk = :s", ExpressionAttributeValues={
                ":p": {"S": f"customer-{i % 100}"}, ":s": {"S": f"order-{i:06d}"}}),
            range(size - WINDOW, size))
        ddb.delete_table(TableName=table)
    return rows


def emulator_run(kind: str, scratch: Path, depth: int, settle: float, tag: str) -> dict[str, float]:
    emulator = Emulator(kind, scratch)
    rows = {"start -> first answer (s)": emulator.start()}
    # CPU time the emulator spent until then: what start-up costs whatever else the machine is doing.
    rows["start -> first answer, emulator CPU (s)"] = emulator.start_cpu
    try:
        time.sleep(settle)
        rows["idle RSS of the process tree (MiB)"] = emulator.tree_rss_mib()
        rows.update(sqs_rates(emulator.url, depth, tag, emulator.process.pid))
        rows.update(dynamodb_rates(emulator.url, depth, tag, emulator.process.pid))
        rows["RSS after the queue/table rows (MiB)"] = emulator.tree_rss_mib()
    finally:
        rows["emulator stop (s)"] = emulator.stop()
        shutil.rmtree(emulator.home, ignore_errors=True)
    return rows


def engine_rows(scratch: Path, runs: int, with_lambda: bool) -> dict[str, list[float]]:
    """The kit alone: `up` and `down` with an existing home, Lambda invokes, a 10-state execution."""
    home = Path(tempfile.mkdtemp(prefix="engine-", dir=scratch))
    home.chmod(0o755)
    settings = Settings(home=home, emulator_port=free_port(), pg_port=free_port())
    engine = LocalEngine(settings)
    rows: dict[str, list[float]] = {"up (emulator + PostgreSQL, existing home) (s)": [], "down (s)": []}
    engine.up()  # the first includes initdb: not counted
    engine.down()
    for _ in range(runs):
        rows["up (emulator + PostgreSQL, existing home) (s)"].append(timed(engine.up))
        rows["down (s)"].append(timed(engine.down))
    if not with_lambda:
        engine.down(purge=True)
        return rows
    engine.up()
    try:
        aws.client("iam", engine.endpoint_url).create_role(
            RoleName="bench", AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
                 "Action": "sts:AssumeRole"}]}))
        lam = aws.client("lambda", engine.endpoint_url)
        sfn = aws.client("stepfunctions", engine.endpoint_url)
        cold, cold_boto3, warm, execs = [], [], [], []
        for i in range(runs):
            name = f"bench-{i}"
            arn = lam.create_function(FunctionName=name, Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                      Code={"ZipFile": _zip()})["FunctionArn"]
            time.sleep(1)  # a pause, as between a learner's commands: the background spare worker gets ready
            cold.append(timed(lambda: lam.invoke(FunctionName=name, Payload=b"{}")))
            for _ in range(5):
                warm.append(timed(lambda: lam.invoke(FunctionName=name, Payload=b"{}")))
            lam.create_function(FunctionName=f"{name}-boto3", Runtime="python3.12", Role=ROLE, Handler="app.handler",
                                Code={"ZipFile": _zip(BOTO3_HANDLER)})
            time.sleep(1)
            cold_boto3.append(timed(lambda: lam.invoke(FunctionName=f"{name}-boto3", Payload=b"{}")))
        machine = sfn.create_state_machine(name="bench-10", definition=_ten_states(arn), roleArn=ROLE)["stateMachineArn"]

        def run_execution():
            exec_arn = sfn.start_execution(stateMachineArn=machine, input="{}")["executionArn"]
            while sfn.describe_execution(executionArn=exec_arn)["status"] == "RUNNING":
                time.sleep(0.005)

        run_execution()  # warms the Lambda worker
        for _ in range(runs):
            execs.append(timed(run_execution))
        rows["Lambda cold invoke (s)"] = cold
        rows["Lambda cold invoke, handler imports boto3 (s)"] = cold_boto3
        rows["Lambda warm invoke (s)"] = warm
        rows["10-state execution, 3 Lambda tasks (s)"] = execs
    finally:
        engine.down(purge=True)
    return rows


# --- report ---------------------------------------------------------------------------------------------------

def _fmt(name: str, value: float | None) -> str:
    if value is None:
        return "-"
    if name.endswith("(s)"):
        return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"
    if name.endswith("(MiB)"):
        return f"{value:.0f} MiB"
    if name.endswith("(ms/req)"):
        return f"{value:.2f} ms"
    return f"{value:.0f} req/s"


def _median(samples: list[float] | None) -> float | None:
    return statistics.median(samples) if samples else None


def _names(result: dict) -> list[str]:
    """Every row name, the kit's first (plain moto's deep rows may be at another depth)."""
    return list(dict.fromkeys([*result["samples"][KIT], *result["samples"][MOTO]]))


def report(result: dict, previous: dict | None) -> Table:
    title = f"engine benchmark, {result['runs']} interleaved runs, medians (load avg {result['load_before']} -> {result['load_after']})"
    columns = ["Measure", KIT, MOTO, f"{KIT} min-max"]
    if previous:
        columns += [f"{KIT} ({previous['when']})", f"{MOTO} ({previous['when']})"]
    table = Table(*columns, title=title)
    for name in _names(result):
        if name.endswith(CLIENT_CPU) or name.endswith(SERVER_CPU):
            continue
        kit = result["samples"][KIT].get(name) or []
        row = [name.replace(" (s)", "").replace(" (MiB)", ""), _fmt(name, _median(kit)),
               _fmt(name, _median(result["samples"][MOTO].get(name))),
               f"{_fmt(name, min(kit))} - {_fmt(name, max(kit))}" if kit else "-"]
        if previous:
            row += [_fmt(name, _median(previous["samples"][who].get(name))) for who in (KIT, MOTO)]
        table.add_row(*row)
    return table


def cpu_report(result: dict) -> Table:
    """Per throughput row: CPU ms per request of the boto3 client and of the emulator, kit and plain moto."""
    table = Table("Throughput row", f"{KIT} client", f"{KIT} server", f"{MOTO} client", f"{MOTO} server",
                  title="where a request's time goes: CPU ms per request (medians)")
    for name in _names(result):
        if not any(name + CLIENT_CPU in result["samples"][who] for who in (KIT, MOTO)):
            continue
        table.add_row(name, *(_fmt(name + part, _median(result["samples"][who].get(name + part)))
                              for who in (KIT, MOTO) for part in (CLIENT_CPU, SERVER_CPU)))
    return table


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--depth", type=int, default=5000, help="messages/items for the deep queue/table rows")
    parser.add_argument("--moto-depth", type=int, default=None, help="plain moto's deep rows at this depth instead")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds after the first answer before idle RSS")
    parser.add_argument("--out", type=Path, default=None, help="JSON result file (default engine-bench-<time>.json)")
    parser.add_argument("--compare", type=Path, default=None, help="a previous JSON result to print beside")
    parser.add_argument("--skip-lambda", action="store_true", help="skip the Lambda and Step Functions rows")
    parser.add_argument("--skip-engine", action="store_true", help="skip up/down, Lambda and Step Functions rows")
    args = parser.parse_args()
    when = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    scratch = Path(tempfile.mkdtemp(prefix="securecart-bench-", dir="/tmp"))
    scratch.chmod(0o755)
    samples: dict[str, dict[str, list[float]]] = {KIT: {}, MOTO: {}}
    load_before = " ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        for run in range(args.runs):
            order = (KIT, MOTO) if run % 2 == 0 else (MOTO, KIT)
            for kind in order:
                depth = args.moto_depth if kind == MOTO and args.moto_depth else args.depth
                for name, value in emulator_run(kind, scratch, depth, args.settle, f"{run}").items():
                    samples[kind].setdefault(name, []).append(value)
        if not args.skip_engine:
            samples[KIT].update(engine_rows(scratch, args.runs, with_lambda=not args.skip_lambda))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    result = {
        "when": when, "commit": _git_commit(), "runs": args.runs, "depth": args.depth, "moto_depth": args.moto_depth or args.depth, "cpus": os.cpu_count(),
        "python": platform.python_version(), "moto": version("moto"), "load_before": load_before,
        "load_after": " ".join(f"{x:.1f}" for x in os.getloadavg()), "samples": samples,
    }
    out = args.out or Path(f"engine-bench-{when}.json")
    out.write_text(json.dumps(result, indent=1))
    previous = json.loads(args.compare.read_text()) if args.compare else None
    console = Console()
    console.print(report(result, previous))
    console.print(cpu_report(result))
    console.print(f"Samples: {out}. Other load on the machine inflates every figure; compare columns of one run.")


if __name__ == "__main__":
    main()
