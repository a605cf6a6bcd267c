"""A lab's own Lambda functions (the `functions/` folder next to its provision.py): packaged reproducibly and created
or brought back to the kit's settings in one pass, so a redeploy calls Lambda only for what differs."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

from botocore.exceptions import ClientError

_WAIT = {"Delay": 1, "MaxAttempts": 60}


def package(source: Path) -> bytes:
    """The deployment package of one source file, with fixed timestamps so equal code zips equally."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(source.name, date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = 0o644 << 16
        archive.writestr(info, source.read_bytes())
    return buffer.getvalue()


def ensure(lam, folder: Path, functions: dict[str, str], *, role_arn: str, environment: dict[str, str],
           timeout: int, label: str) -> None:
    """Each function `name` runs `folder/module.py` with these settings: created if missing, its code and
    configuration updated only where they differ (a learner's change to a kit function is put back)."""
    for name, module in functions.items():
        code = package(folder / f"{module}.py")
        digest = base64.b64encode(hashlib.sha256(code).digest()).decode()
        settings = {"Runtime": "python3.12", "Handler": f"{module}.handler", "Timeout": timeout, "MemorySize": 128,
                    "Environment": {"Variables": environment}, "Role": role_arn}
        try:
            current = lam.get_function(FunctionName=name)["Configuration"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            lam.create_function(FunctionName=name, Code={"ZipFile": code},
                                Description=f"{label}: functions/{module}.py", **settings)
            lam.get_waiter("function_active_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
            continue
        if current.get("CodeSha256") != digest:
            lam.update_function_code(FunctionName=name, ZipFile=code)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
        now = {**current, "Environment": {"Variables": (current.get("Environment") or {}).get("Variables")}}
        if any(now.get(key) != value for key, value in settings.items()):
            lam.update_function_configuration(FunctionName=name, **settings)
            lam.get_waiter("function_updated_v2").wait(FunctionName=name, WaiterConfig=_WAIT)
