"""Lambda without Docker: moto's invoke path runs handler code in warm local Python worker processes.

Cold starts use a spare: one idle worker process, started ahead of time, that has already imported boto3
(the bulk of a lab function's cold start) but knows no function yet. The first spare starts when a function is
created (an emulator without functions keeps no worker); a function that needs a new worker takes the spare,
sends it its environment, and a new spare starts in the background.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from securecart_lab import service_user
from securecart_lab.config import REGION, SECRET_KEY, Settings, access_key_for
from securecart_lab.emulator import hooks, iam
from securecart_lab.errors import LabError

LOG = logging.getLogger(__name__)

WORKER_SCRIPT = Path(__file__).with_name("lambda_worker.py")
MAX_IDLE_PER_KEY = 4
_START_TIMEOUT = 30.0


@dataclass
class Invocation:
    """What the worker returned: the payload bytes, whether the handler failed, the log text."""

    payload: bytes
    errored: bool
    logs: str


class WorkerDied(Exception):
    pass


@dataclass(eq=False)
class Worker:
    key: tuple
    process: subprocess.Popen
    log_stream: str
    buffer: bytes = b""
    busy: bool = False
    stale: bool = False
    init_ms: float | None = None  # how long its Init phase took, until its first invocation reports it

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def read_line(self, deadline: float) -> dict | None:
        """The next JSON line from the worker, or None when the deadline passes."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([fd], [], [], remaining)
            if not ready:
                continue
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                raise WorkerDied(f"worker {self.pid} exited with code {self.process.wait()}")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return json.loads(line)

    def stop(self) -> None:
        _stop_process(self.process)


def _stop_process(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    for stream in (process.stdin, process.stdout):
        try:
            stream.close()
        except OSError:
            pass


@dataclass
class _Pool:
    lock: threading.Lock = field(default_factory=threading.Lock)
    workers: dict[tuple, list[Worker]] = field(default_factory=dict)
    current_key: dict[str, tuple] = field(default_factory=dict)
    spare: subprocess.Popen | None = None
    warming: bool = False  # a spare is being started
    closed: bool = False


_pool = _Pool()
_async = ThreadPoolExecutor(max_workers=8, thread_name_prefix="lambda-async")


def code_root() -> Path:
    """Where function code is extracted: a folder of the service user (the user workers run as)."""
    return service_user.folder(Settings.from_env(), "lambda")


def _code_dir(fn) -> Path:
    """The function's code, extracted once per code sha256."""
    digest = getattr(fn, "code_digest", None) or hashlib.sha256(fn.code_bytes).hexdigest()
    target = code_root() / digest
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=".extract-"))
    try:
        with zipfile.ZipFile(io.BytesIO(fn.code_bytes)) as archive:
            archive.extractall(staging)
        _read_only_for_everyone(staging)
        os.replace(staging, target)
    except OSError:
        if not target.is_dir():  # another thread won the race otherwise
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _read_only_for_everyone(root: Path) -> None:
    """Code is read-only to the function, as /var/task is on AWS: ours, readable (and runnable) by the worker's user."""
    for directory, _, files in os.walk(root):
        os.chmod(directory, 0o755)
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                os.chmod(path, 0o755 if os.stat(path).st_mode & 0o100 else 0o644)


def _endpoint() -> str:
    return f"http://127.0.0.1:{os.environ.get('MOTO_PORT', '4566')}"


def _key(fn) -> tuple:
    env = tuple(sorted((fn.environment_vars or {}).items()))
    return (fn.function_arn, getattr(fn, "code_digest", ""), fn.handler, fn.run_time, fn.timeout, fn.memory_size, env,
            getattr(fn, "role", None))


def _process_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "C.UTF-8",
        "TZ": ":UTC",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


def _start_process(preload: bool) -> subprocess.Popen:
    """A worker process that knows no function yet; it waits for its environment on stdin. As root, it runs as
    the unprivileged service user (service_user), never as root."""
    settings = Settings.from_env()
    python = service_user.python(settings)
    prefix, run_as = service_user.launcher(settings)
    return subprocess.Popen(
        [*prefix, python.executable, "-u", str(WORKER_SCRIPT), *(["--preload"] if preload else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env={**_process_env(), **python.env},
        cwd="/",
        start_new_session=True,
        **run_as,
    )


def _replace_spare() -> None:
    try:
        process = _start_process(preload=True)
    except (OSError, LabError) as exc:
        LOG.warning("spare Lambda worker not started: %s", exc)
        with _pool.lock:
            _pool.warming = False
        return
    with _pool.lock:
        _pool.warming = False
        keep = not _pool.closed and _pool.spare is None
        if keep:
            _pool.spare = process
    if not keep:
        _stop_process(process)


def prewarm() -> None:
    """Start a spare worker in the background, unless there is one or one is starting."""
    with _pool.lock:
        if _pool.warming or _pool.spare is not None or _pool.closed:
            return
        _pool.warming = True
    threading.Thread(target=_replace_spare, name="lambda-spare", daemon=True).start()


def _take_process(task_root: Path) -> subprocess.Popen:
    """The spare, replaced in the background, or a fresh process when there is none (or the code bundles
    its own boto3, which must win over the preloaded one as it does on AWS)."""
    if any((task_root / name).exists() for name in ("boto3", "botocore")):
        return _start_process(preload=False)
    with _pool.lock:
        spare, _pool.spare = _pool.spare, None
    if spare is None:
        return _start_process(preload=False)
    prewarm()
    if spare.poll() is not None:
        _stop_process(spare)
        return _start_process(preload=False)
    return spare


def _spawn(fn, key: tuple) -> Worker:
    task_root = _code_dir(fn)
    env = {
        **_process_env(),
        **{k: str(v) for k, v in (fn.environment_vars or {}).items()},
        "_HANDLER": fn.handler or "",
        "LAMBDA_TASK_ROOT": str(task_root),
        "AWS_ENDPOINT_URL": _endpoint(),
        # The execution role's temporary credentials, as on AWS (the kit's admin keys when IAM is off).
        **(iam.function_credentials(fn) or {"AWS_ACCESS_KEY_ID": access_key_for(fn.account_id),
                                            "AWS_SECRET_ACCESS_KEY": SECRET_KEY}),
        "AWS_DEFAULT_REGION": fn.region or REGION,
        "AWS_REGION": fn.region or REGION,
        "AWS_DISABLE_HOST_PREFIX_INJECTION": "true",  # StartSyncExecution would go to sync-127.0.0.1
        "AWS_LAMBDA_FUNCTION_NAME": fn.function_name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": fn.logs_group_name,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{fn.run_time}",
    }
    now = datetime.now(timezone.utc)
    log_stream = f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
    env["AWS_LAMBDA_LOG_STREAM_NAME"] = log_stream
    began = time.monotonic()
    worker = Worker(key=key, process=_take_process(task_root), log_stream=log_stream)
    try:
        worker.process.stdin.write((json.dumps({"env": env}) + "\n").encode())
        worker.process.stdin.flush()
        hello = worker.read_line(time.monotonic() + _START_TIMEOUT)
    except (WorkerDied, OSError):
        hello = None
    if not hello or not hello.get("ready"):
        worker.stop()
        raise WorkerDied(f"Lambda worker for {fn.function_name} did not start")
    worker.init_ms = (time.monotonic() - began) * 1000
    return worker


def _acquire(fn) -> Worker:
    key = _key(fn)
    to_stop: list[Worker] = []
    with _pool.lock:
        previous = _pool.current_key.get(fn.function_arn)
        if previous is not None and previous != key:
            # Code or configuration changed: the old environments are retired.
            for worker in _pool.workers.pop(previous, []):
                worker.stale = True
                if not worker.busy:
                    to_stop.append(worker)
        _pool.current_key[fn.function_arn] = key
        candidates = _pool.workers.setdefault(key, [])
        worker = next((w for w in candidates if not w.busy and w.alive()), None)
        if worker is not None:
            worker.busy = True
    for old in to_stop:
        old.stop()
    if worker is not None:
        return worker
    worker = _spawn(fn, key)
    worker.busy = True
    with _pool.lock:
        _pool.workers.setdefault(key, []).append(worker)
    return worker


def _release(worker: Worker, healthy: bool) -> None:
    with _pool.lock:
        worker.busy = False
        peers = _pool.workers.get(worker.key, [])
        idle = [w for w in peers if not w.busy]
        retire = worker.stale or not healthy or len(idle) > MAX_IDLE_PER_KEY
        if retire and worker in peers:
            peers.remove(worker)
    if retire:
        worker.stop()


def _error(error_type: str, message: str) -> dict:
    return {"errorType": error_type, "errorMessage": message, "stackTrace": []}


def invoke(fn, event: str | None) -> Invocation:
    """Run the function once, synchronously, and write its log lines to /aws/lambda/NAME."""
    request_id = str(uuid.uuid4())
    if not (fn.run_time or "").startswith("python"):
        payload = _error("Runtime.InvalidRuntime", f"securecart-local runs python Lambda runtimes only, not {fn.run_time!r}.")
        return Invocation(json.dumps(payload).encode(), True, "")
    try:
        worker = _acquire(fn)
    except (WorkerDied, OSError, zipfile.BadZipFile, LabError) as exc:
        payload = _error("Runtime.InitError", f"{exc} {exc.hint}" if isinstance(exc, LabError) and exc.hint else str(exc))
        return Invocation(json.dumps(payload).encode(), True, "")
    # As on AWS, the Init phase of a cold start (runtime start, handler import) does not count against the
    # function's timeout; its duration is reported as Init Duration.
    started, init_ms, worker.init_ms = time.monotonic(), worker.init_ms, None
    timeout = float(fn.timeout or 3)
    context = {
        "aws_request_id": request_id,
        "function_name": fn.function_name,
        "function_version": "$LATEST",
        "invoked_function_arn": fn.function_arn,
        "memory_limit_in_mb": int(fn.memory_size),
        "log_group_name": fn.logs_group_name,
        "log_stream_name": worker.log_stream,
    }
    healthy = True
    try:
        request = {"event": event or "", "context": context, "deadline": time.time() + timeout}
        worker.process.stdin.write((json.dumps(request) + "\n").encode())
        worker.process.stdin.flush()
        response = worker.read_line(started + timeout)
        if response is None:
            healthy = False
            message = f"RequestId: {request_id} Error: Task timed out after {timeout:.2f} seconds"
            response = {"ok": False, "payload": _error("Sandbox.Timedout", message), "logs": ""}
    except (WorkerDied, BrokenPipeError, ValueError) as exc:
        healthy = False
        response = {"ok": False, "payload": _error("Runtime.ExitError", f"RequestId: {request_id} Error: {exc}"), "logs": ""}
    finally:
        _release(worker, healthy)
    duration_ms = (time.monotonic() - started) * 1000
    payload = response.get("payload")
    errored = not response.get("ok")
    logs = _log_text(request_id, response.get("logs", ""), payload if errored else None, duration_ms, fn.memory_size,
                     init_ms)
    _write_logs(fn, worker.log_stream, logs)
    return Invocation(json.dumps(payload).encode(), errored, logs)


def _log_text(request_id: str, output: str, error: dict | None, duration_ms: float, memory: int,
              init_ms: float | None = None) -> str:
    lines = [f"START RequestId: {request_id} Version: $LATEST"]
    lines += output.splitlines()
    if error is not None:
        lines.append(f"[ERROR] {error.get('errorType')}: {error.get('errorMessage')}")
        lines += [frame.rstrip("\n") for frame in error.get("stackTrace", [])]
    lines.append(f"END RequestId: {request_id}")
    lines.append(
        f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {max(1, round(duration_ms))} ms"
        f"\tMemory Size: {memory} MB\tMax Memory Used: {min(memory, 40)} MB"
        + (f"\tInit Duration: {init_ms:.2f} ms" if init_ms is not None else "")
    )
    return "\n".join(lines) + "\n"


def _write_logs(fn, stream: str, text: str) -> None:
    backend = fn.logs_backend
    now_ms = int(time.time() * 1000)
    try:
        backend.ensure_log_group(fn.logs_group_name)
        if stream not in backend.groups[fn.logs_group_name].streams:
            backend.create_log_stream(fn.logs_group_name, stream)
        events = [{"timestamp": now_ms, "message": line} for line in text.splitlines() if line]
        backend.put_log_events(fn.logs_group_name, stream, events)
    except Exception as exc:  # logs must never fail an invocation
        LOG.warning("Lambda log for %s not written: %s", fn.function_name, exc)


def invoke_async(fn, event: str | None) -> None:
    """An `Event` invocation: queued, run in the background."""

    def run() -> None:
        result = invoke(fn, event)
        if result.errored:
            LOG.info("async invocation of %s failed: %s", fn.function_name, result.payload[:500])

    _async.submit(run)


def _tail(logs: str) -> str:
    return base64.b64encode(logs.encode()[-4096:]).decode()


def _invoke_lambda(self, event: str | None = None) -> tuple[str, bool, str]:
    result = invoke(self, event if isinstance(event, str) or event is None else json.dumps(event))
    return result.payload.decode(), result.errored, result.logs


def _invoke(self, body: str, request_headers: Any, response_headers: Any) -> bytes:
    invocation_type = request_headers.get("x-amz-invocation-type", "RequestResponse")
    if invocation_type == "Event":
        invoke_async(self, body)
        return b""
    if invocation_type == "DryRun":
        return b""
    result = invoke(self, body)
    if result.errored:
        response_headers["x-amz-function-error"] = "Unhandled"
    response_headers["x-amz-log-result"] = _tail(result.logs)
    response_headers["x-amz-executed-version"] = "$LATEST"
    return result.payload


def _create_function_with_spare(create_function):
    def create(self, spec):
        fn = create_function(self, spec)
        prewarm()
        return fn

    return create


def install() -> None:
    """Route moto's Lambda invocations to the local worker processes."""
    hooks.replace("lambda.invoke_lambda", _invoke_lambda)
    hooks.replace("lambda.invoke", _invoke)
    hooks.replace("lambda.create_function", _create_function_with_spare(hooks.original("lambda.create_function")))


def shutdown() -> None:
    """Stop every worker and the spare (called when the emulator exits), after the event source pollers."""
    if "securecart_lab.emulator.event_sources" in sys.modules:
        sys.modules["securecart_lab.emulator.event_sources"].shutdown()
    _async.shutdown(wait=False, cancel_futures=True)
    with _pool.lock:
        _pool.closed = True
        workers = [w for peers in _pool.workers.values() for w in peers]
        _pool.workers.clear()
        spare, _pool.spare = _pool.spare, None
    for worker in workers:
        worker.stop()
    if spare is not None:
        _stop_process(spare)

