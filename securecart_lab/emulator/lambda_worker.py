"""A Lambda execution environment: one process, one handler, one invocation at a time.

Run as a script by lambda_runtime.py (it imports nothing from the kit, so start-up stays fast). Protocol:
the first line on stdin is the function's environment ({"env": {...}}), then one JSON request per line;
one JSON response per line on a private copy of the original stdout, starting with {"ready": true}.
File descriptor 1 is pointed at stderr and sys.stdout/sys.stderr capture per invocation, so handler
prints and logging reach the function's log, never the channel.

With --preload the process imports boto3 before it knows its function: that is a spare worker, started
ahead of time so a cold start does not pay the ~0.2-0.4 s boto3/botocore import.
"""

import importlib
import io
import json
import logging
import os
import sys
import time
import traceback


class _Context:
    def __init__(self, fields: dict, deadline: float):
        self.aws_request_id = fields["aws_request_id"]
        self.function_name = fields["function_name"]
        self.function_version = fields["function_version"]
        self.invoked_function_arn = fields["invoked_function_arn"]
        self.memory_limit_in_mb = fields["memory_limit_in_mb"]
        self.log_group_name = fields["log_group_name"]
        self.log_stream_name = fields["log_stream_name"]
        self.identity = None
        self.client_context = None
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.time()) * 1000))


class _CurrentStream(io.TextIOBase):
    """Logging writes here; it forwards to whatever sys.stdout is during the invocation."""

    def write(self, text: str) -> int:
        return sys.stdout.write(text)


def _as_on_aws(filename: str) -> str:
    """The function's code is in the kit's cache; on AWS it is /var/task, and that is what traces show."""
    root = os.environ.get("LAMBDA_TASK_ROOT", "").rstrip("/")
    if root and filename.startswith(root + "/"):
        return "/var/task/" + filename[len(root) + 1:]
    return filename


def _error_payload(exc: BaseException, error_type: str | None = None) -> dict:
    frames = [traceback.FrameSummary(_as_on_aws(f.filename), f.lineno, f.name, line=f.line)
              for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
    stack = traceback.format_list(frames)
    return {"errorMessage": str(exc), "errorType": error_type or type(exc).__name__, "stackTrace": stack}


def _load_handler():
    spec = os.environ["_HANDLER"]
    module_name, _, func_name = spec.rpartition(".")
    if not module_name or not func_name:
        raise ValueError(f"Bad handler '{spec}': expected module.function")
    module = importlib.import_module(module_name.replace("/", "."))
    handler = getattr(module, func_name, None)
    if handler is None:
        raise AttributeError(f"Handler '{func_name}' missing on module '{module_name}'")
    return handler


def _preload() -> None:
    """Import what most handlers import, creating nothing (no session, no client, no env var read)."""
    try:
        import boto3  # noqa: F401
    except ImportError:
        pass


def _receive_environment() -> bool:
    """Become the function's environment: its variables (the first line on stdin), its code directory on
    sys.path and as cwd. False when the runtime closed the pipe first (the emulator stopped)."""
    line = sys.stdin.readline()
    if not line:
        return False
    os.environ.update(json.loads(line)["env"])
    time.tzset()
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    os.chdir(task_root)
    sys.path.insert(0, task_root)
    return True


def main() -> None:
    channel = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    if "--preload" in sys.argv[1:]:
        _preload()
    if not _receive_environment():
        return
    root = logging.getLogger()
    handler_stream = logging.StreamHandler(_CurrentStream())
    handler_stream.setFormatter(logging.Formatter("[%(levelname)s]\t%(asctime)s\t%(message)s"))
    root.addHandler(handler_stream)
    root.setLevel(logging.WARNING)
    real_stdout, real_stderr = sys.stdout, sys.stderr

    handler, init_error = None, None
    captured = io.StringIO()
    sys.stdout = sys.stderr = captured
    try:
        handler = _load_handler()
    except Exception as exc:
        error_type = "Runtime.ImportModuleError" if isinstance(exc, ImportError) else "Runtime.HandlerNotFound"
        if isinstance(exc, SyntaxError):
            error_type = "Runtime.UserCodeSyntaxError"
        init_error = _error_payload(exc, error_type)
        init_error["errorMessage"] = f"Unable to import module '{os.environ['_HANDLER']}': {exc}"
    finally:
        sys.stdout, sys.stderr = real_stdout, real_stderr
    init_logs = captured.getvalue()
    channel.write(json.dumps({"ready": True, "pid": os.getpid()}) + "\n")

    for line in sys.stdin:
        request = json.loads(line)
        captured = io.StringIO(init_logs)
        init_logs = ""
        sys.stdout = sys.stderr = captured
        try:
            if init_error is not None:
                response = {"ok": False, "payload": init_error}
            else:
                event = json.loads(request["event"]) if request["event"] else {}
                context = _Context(request["context"], request["deadline"])
                result = handler(event, context)
                response = {"ok": True, "payload": result}
        except Exception as exc:
            response = {"ok": False, "payload": _error_payload(exc)}
        finally:
            sys.stdout, sys.stderr = real_stdout, real_stderr
        response["logs"] = captured.getvalue()
        try:
            text = json.dumps(response)
        except (TypeError, ValueError) as exc:
            text = json.dumps({
                "ok": False, "logs": response["logs"],
                "payload": {"errorMessage": f"Unable to marshal response: {exc}", "errorType": "Runtime.MarshalError",
                            "stackTrace": []},
            })
        channel.write(text + "\n")


if __name__ == "__main__":
    main()
