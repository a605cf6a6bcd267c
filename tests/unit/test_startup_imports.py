"""Commands that build no AWS client and open no database connection start without loading boto3, psycopg or
pydantic (typer's coercion, securecart_lab/typer_coercion.py): a fifth to half a second of every such command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from securecart_lab.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("boto3", "botocore.client", "psycopg", "pydantic")  # botocore.exceptions alone is light

RUN = r'''
import json, sys
from securecart_lab.cli import app
try:
    app(sys.argv[1:], prog_name="securecart-lab")
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "loaded": [name for name in %r if name in sys.modules]}))
''' % (HEAVY,)


def _run(tmp_path: Path, *args: str) -> dict:
    env = {**os.environ, "SECURECART_HOME": str(tmp_path / "home"), "SECURECART_WORKSPACE": str(tmp_path / "ws"),
           "SECURECART_EMULATOR_PORT": str(free_port()), "SECURECART_PG_PORT": str(free_port())}
    result = subprocess.run([sys.executable, "-c", RUN, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("args, code", [
    (("down",), 0), (("--help",), 0), (("down", "--help"), 0),
    (("deploy", "99"), 1),  # a lab number (a str argument) is checked without them: there is no lab 99
    (("status",), 0), (("status", "--format", "json"), 0),  # an Enum option's default and a valid choice
])
def test_a_command_without_clients_or_connections_loads_none_of_them(tmp_path, args, code):
    outcome = _run(tmp_path, *args)
    assert outcome == {"code": code, "loaded": []}


def test_an_option_given_a_value_is_still_coerced_and_checked(tmp_path):
    # The shortcut is for missing values only: a given one goes through typer's coercion (a bad choice is refused).
    outcome = _run(tmp_path, "--engine", "nosuch", "down")
    assert outcome["code"] == 2


def _typer_parameters():
    import typer.main
    from typer.core import _TyperParameter

    from securecart_lab.cli import app

    group = typer.main.get_command(app)
    commands = [group, *group.commands.values()]
    return [(command.name, param) for command in commands for param in command.params
            if isinstance(param, _TyperParameter)]


def test_values_coerced_without_pydantic_are_what_typer_gives():
    from enum import Enum

    from securecart_lab import typer_coercion

    checked = 0
    for command, param in _typer_parameters():
        annotation = param.type_descriptor.annotation
        candidates = [None, "1", "some text", param.default]
        if isinstance(annotation, type) and issubclass(annotation, Enum):
            candidates += [*annotation, *(m.value for m in annotation), *(str(m.value).upper() for m in annotation)]
        for value in candidates:
            if callable(value):
                continue
            known = typer_coercion.known_value(param, None, value)
            if known is typer_coercion._NOTHING:
                continue
            typers = param.get_runtime_param().coerce(value, param=param, ctx=None)
            assert known == typers and type(known) is type(typers), (command, param.name, value, known, typers)
            checked += 1
    assert checked > 50
