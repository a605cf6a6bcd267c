"""SQS -> Lambda event source mapping benchmark: how fast the local pollers drain a burst, and their idle cost.

One fresh emulator on a free loopback port. Rows:
  - drain: N messages (--messages, default 500) queued while the mapping is disabled, then enabled; time until the
    queue is empty (every message deleted after its batch succeeded), for batch size 10 and 1, 2 and 5 batches in
    flight (ScalingConfig.MaximumConcurrency); messages/s. The function does nothing but return.
  - latency: one message at a time, SendMessage -> deleted (the batch succeeded), p50/p95 over --samples.
  - idle: CPU seconds the emulator spends in 5 s with the enabled mappings and empty queues (no busy polling: ~0).

Usage: python benchmarks/event_sources.py [--messages 500] [--samples 30] [--out FILE]
Timings on a shared machine are inflated by other load.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import boto3
import psutil
from botocore.config import Config

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from securecart_lab.emulator import process as emulator_process  # noqa: E402
from securecart_lab.ports import free_port  # noqa: E402

HANDLER = "def handler(event, context):\n    return {'batchItemFailures': []}\n"


def _client(url: str, service: str):
    return boto3.client(service, endpoint_url=url, region_name="us-east-1", aws_access_key_id="test",
                        aws_secret_access_key="test", config=Config(retries={"max_attempts": 1}))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", HANDLER)
    return buffer.getvalue()


def _empty(sqs, url: str) -> bool:
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    return attributes["ApproximateNumberOfMessages"] == "0" and attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def _wait_empty(sqs, url: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not _empty(sqs, url):
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} did not drain in {timeout} s")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=500)
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="securecart-bench-esm-", dir="/tmp"))
    port = free_port()
    proc = emulator_process.start(port=port, home=home, log_path=home / "emulator.log")
    url = f"http://127.0.0.1:{port}"
    result: dict = {"messages": args.messages, "drain": {}, "latency_ms": {}, "idle_cpu_s": None}
    try:
        emulator_process.wait_healthy(url, timeout=60, process=proc)
        sqs, lam, iam = _client(url, "sqs"), _client(url, "lambda"), _client(url, "iam")
        role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
        function = lam.create_function(FunctionName="consume", Runtime="python3.11", Role=role, Handler="app.handler",
                                       Code={"ZipFile": _zip()})["FunctionArn"]
        for concurrency in (2, 5):
            queue = sqs.create_queue(QueueName=f"burst-{concurrency}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            mapping = lam.create_event_source_mapping(
                EventSourceArn=arn, FunctionName=function, BatchSize=10, Enabled=False,
                FunctionResponseTypes=["ReportBatchItemFailures"],
                ScalingConfig={"MaximumConcurrency": concurrency})["UUID"]
            for start in range(0, args.messages, 10):
                sqs.send_message_batch(QueueUrl=queue, Entries=[
                    {"Id": str(i), "MessageBody": json.dumps({"order": i})}
                    for i in range(start, min(start + 10, args.messages))])
            started = time.monotonic()
            lam.update_event_source_mapping(UUID=mapping, Enabled=True)
            _wait_empty(sqs, queue)
            elapsed = time.monotonic() - started
            label = f"{concurrency} in flight"
            result["drain"][label] = round(args.messages / elapsed, 1)
            print(f"drain {args.messages} messages, batch 10, {label}: {elapsed:.2f} s, "
                  f"{args.messages / elapsed:.0f} messages/s", flush=True)

        queue = sqs.create_queue(QueueName="latency")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=function, BatchSize=10)
        samples = []
        for index in range(args.samples):
            started = time.monotonic()
            sqs.send_message(QueueUrl=queue, MessageBody=str(index))
            _wait_empty(sqs, queue, timeout=30)
            samples.append((time.monotonic() - started) * 1000)
        samples.sort()
        p50, p95 = statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]
        result["latency_ms"] = {"p50": round(p50, 1), "p95": round(p95, 1)}
        print(f"send -> processed and deleted, one at a time: p50 {p50:.0f} ms, p95 {p95:.0f} ms", flush=True)

        time.sleep(1)
        tree = psutil.Process(proc.pid)
        before = tree.cpu_times()
        time.sleep(5)
        after = tree.cpu_times()
        idle = (after.user + after.system) - (before.user + before.system)
        result["idle_cpu_s"] = round(idle, 3)
        print(f"idle with 3 enabled mappings: {idle:.3f} CPU s in 5 s", flush=True)
    finally:
        emulator_process.stop(proc)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
