"""Signed reports: an HMAC-SHA256 over a JSON report, so a report handed back later can be checked for edits.

The key is SECURECART_GRADING_KEY when set (e.g. a CI secret shared by the instructor's machines), else a
per-installation key generated once in SECURECART_HOME/grading.key (0600).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path

from securecart_lab.config import Settings
from securecart_lab.errors import LabError

ALGORITHM = "HMAC-SHA256"


def wanted(sign_flag: bool) -> bool:
    """--sign, or SECURECART_GRADING_KEY set (an instructor who sets the key wants what is handed in signed)."""
    return sign_flag or bool(os.environ.get("SECURECART_GRADING_KEY"))


def key(settings: Settings, create: bool = True) -> bytes:
    from_env = os.environ.get("SECURECART_GRADING_KEY")
    if from_env:
        return from_env.encode()
    path = settings.home / "grading.key"
    if not path.exists() and not create:
        raise LabError(f"No grading key at {path}: reports can only be verified with the key that signed them.",
                       "Run verify where grade --sign ran, or set SECURECART_GRADING_KEY to that key.")
    if not path.exists():
        settings.home.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


def key_id(secret: bytes) -> str:
    """Names the key without revealing it, so a mismatch can say "signed with another key"."""
    return hashlib.sha256(b"securecart-key-id:" + secret).hexdigest()[:12]


def _canonical(document: dict) -> bytes:
    body = {k: v for k, v in document.items() if k != "signature"}
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def sign(document: dict, secret: bytes) -> dict:
    mac = hmac.new(secret, _canonical(document), hashlib.sha256).hexdigest()
    return {**document, "signature": {"algorithm": ALGORITHM, "key_id": key_id(secret), "value": mac}}


def write_signed(path: Path, document: dict, secret: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sign(document, secret), indent=2) + "\n", encoding="utf-8")


def verify(path: Path, secret: bytes) -> tuple[str, dict]:
    """Returns the key id and the report when `path` is unchanged since it was signed with `secret`; raises
    LabError otherwise."""
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LabError(f"No report at {path}.")
    except (ValueError, UnicodeDecodeError) as exc:
        raise LabError(f"{path} is not a JSON report ({exc}).", "Verify the .json report, not the JUnit XML.")
    signature = document.get("signature") if isinstance(document, dict) else None
    if not isinstance(signature, dict) or "value" not in signature:
        raise LabError(f"{path} is not signed.",
                       'Reports are signed by "securecart-lab grade --sign" and "securecart-lab check N --json FILE --sign".')
    if signature.get("algorithm") != ALGORITHM:
        raise LabError(f"{path} is signed with {signature.get('algorithm')!r}; this kit verifies {ALGORITHM}.")
    expected = hmac.new(secret, _canonical(document), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(signature["value"])):
        other = signature.get("key_id") not in (None, key_id(secret))
        raise LabError(
            f"{path} does not match its signature: "
            + ("it was signed with another key." if other else "it was changed after it was signed."),
            "Set SECURECART_GRADING_KEY to the key it was signed with." if other else "Do not trust its grades.",
        )
    return key_id(secret), document
