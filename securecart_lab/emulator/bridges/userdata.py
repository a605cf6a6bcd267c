"""The user-data convention that turns an EC2 instance into a SecureCart app process.

A shell script that sets the app's environment and then runs the app, the way a real instance's boot script would:

    #!/bin/bash
    export DB_HOST=127.0.0.1 DB_PORT=15432
    export DB_NAME=securecart DB_USER=securecart_admin DB_PASSWORD=secret
    exec python3 -m securecart_lab.app        # or: securecart-app

Understood: `export NAME=value ...` and `NAME=value` lines (quotes and $NAME / ${NAME} of earlier
variables), `NAME=value python -m securecart_lab.app` on the command line, `exec`/`nohup`/`sudo -E` before the
command and a trailing `&`. Every other line (set -e, cd, comments, package installs) is ignored: the app is
already installed on the "AMI". No app command means no app process: the instance is a plain EC2 instance.
"""

from __future__ import annotations

import base64
import binascii
import re
import shlex
from dataclasses import dataclass, field

APP_COMMANDS = ("securecart-app", "securecart_lab.app")
_ASSIGN = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)=(.*)$", re.S)
_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")
_PREFIXES = {"exec", "nohup", "sudo", "-E", "env", "-u"}


@dataclass(frozen=True)
class AppLaunch:
    """The environment the user data gives the app (PORT as written: the bridge assigns the real port)."""

    env: dict[str, str] = field(default_factory=dict)


def decode(user_data) -> str:
    """User data as text, from moto's Base64EncodedString, a base64 string, bytes or plain text."""
    if user_data is None:
        return ""
    if hasattr(user_data, "decode") and not isinstance(user_data, (bytes, str)):
        try:
            return user_data.decode()
        except (ValueError, UnicodeDecodeError):
            return ""
    if isinstance(user_data, bytes):
        user_data = user_data.decode("utf-8", "replace")
    try:
        return base64.b64decode(user_data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return user_data


def _expand(value: str, env: dict[str, str]) -> str:
    return _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), ""), value)


def _is_app_command(words: list[str]) -> bool:
    if not words:
        return False
    program = words[0].rsplit("/", 1)[-1]
    if program in APP_COMMANDS:
        return True
    return program.startswith("python") and "-m" in words and words[words.index("-m") + 1:][:1] == ["securecart_lab.app"]


def _commands(line: str) -> list[list[str]]:
    """The simple commands on one line, split at ; && || & and |."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    commands: list[list[str]] = [[]]
    try:
        for token in lexer:
            if token and set(token) <= set(";&|"):
                commands.append([])
            else:
                commands[-1].append(token)
    except ValueError:  # unbalanced quotes: not a line we understand
        return []
    return [c for c in commands if c]


def parse(text: str) -> AppLaunch | None:
    """The app's environment when the script runs the SecureCart app, else None."""
    env: dict[str, str] = {}
    launch: AppLaunch | None = None
    for raw in text.replace("\\\n", " ").splitlines():
        for words in _commands(raw):
            if words[0] == "export":
                for word in words[1:]:
                    match = _ASSIGN.match(word)
                    if match:
                        env[match.group(1)] = _expand(match.group(2), env)
                continue
            local = dict(env)
            while words and (_ASSIGN.match(words[0]) or words[0] in _PREFIXES):
                match = _ASSIGN.match(words.pop(0))
                if match:
                    local[match.group(1)] = _expand(match.group(2), local)
            if not words:
                env = local  # plain NAME=value lines
            elif _is_app_command(words):
                launch = AppLaunch(env=local)
    return launch
