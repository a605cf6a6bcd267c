"""Shared fixtures. Integration tests run against one real embedded engine per test session:
the emulator process and real PostgreSQL, on free ports, in a temporary SECURECART_HOME."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from securecart_lab.config import Settings
from securecart_lab.ports import free_port

TIME_SCALE = 0.1


@pytest.fixture(scope="session")
def session_home():
    # Not pytest's tmp_path: /tmp/pytest-of-root is private, and PostgreSQL runs as an unprivileged user.
    home = Path(tempfile.mkdtemp(prefix="securecart-test-", dir="/tmp"))
    home.chmod(0o755)
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def settings(session_home):
    """Settings for the session's engine; also exported as env vars so the CLI and child processes agree."""
    s = Settings(
        engine="local",
        home=session_home / "home",
        workspace=session_home / "workspace",
        emulator_port=free_port(),
        pg_port=free_port(),
        time_scale=TIME_SCALE,
    )
    env = {
        "SECURECART_ENGINE": "local",
        "SECURECART_HOME": str(s.home),
        "SECURECART_WORKSPACE": str(s.workspace),
        "SECURECART_EMULATOR_PORT": str(s.emulator_port),
        "SECURECART_PG_PORT": str(s.pg_port),
        "SECURECART_TIME_SCALE": str(TIME_SCALE),
        "SECURECART_IAM": "on",
    }
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        yield s


@pytest.fixture(scope="session")
def engine(settings):
    """The real local engine, started once for the session and stopped at the end."""
    from securecart_lab.engines.local import LocalEngine

    eng = LocalEngine(settings)
    eng.up()
    yield eng
    eng.down(purge=True)


@pytest.fixture(scope="session")
def aws(engine):
    """aws("sqs") -> a boto3 client for the session's engine."""
    from securecart_lab import aws as aws_clients

    return lambda service: aws_clients.client(service, engine.endpoint_url)


@pytest.fixture
def cli():
    """cli("check", "1") -> click Result, run in-process through the real CLI."""
    from securecart_lab.cli import app

    runner = CliRunner()

    def invoke(*args: str, input: str | None = None):
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    return invoke


@pytest.fixture
def isolated_settings(tmp_path, monkeypatch):
    """Settings for tests that need no engine: a private home and workspace, ports nobody listens on."""
    home = tmp_path / "home"
    monkeypatch.setenv("SECURECART_HOME", str(home))
    monkeypatch.setenv("SECURECART_WORKSPACE", str(tmp_path / "ws"))
    monkeypatch.setenv("SECURECART_EMULATOR_PORT", str(free_port()))
    monkeypatch.setenv("SECURECART_PG_PORT", str(free_port()))
    monkeypatch.delenv("SECURECART_ENGINE", raising=False)
    return Settings.from_env()


def lab_context(settings, engine, number):
    from securecart_lab.labs.context import LabContext
    from securecart_lab.labs.registry import get_lab

    return LabContext(settings=settings, engine=engine, lab=get_lab(number))


@pytest.fixture(scope="session")
def lab_ctx(settings, engine):
    """lab_ctx(1) -> a LabContext for lab 1 on the session's engine."""
    return lambda number: lab_context(settings, engine, number)


@pytest.fixture
def template_variant():
    """template_variant({old: new, ...}, base=None) -> a new folder holding lab 2's reference template (or `base`)
    with those replacements, each of which must occur; the folders go at the end of the test."""
    from securecart_lab.labs.registry import get_lab

    folders = []

    def make(replacements: dict[str, str], base: str | None = None) -> Path:
        text = base or (get_lab(2).solution_dir / "template.yaml").read_text()
        for old, new in replacements.items():
            assert old in text, old
            text = text.replace(old, new)
        folder = Path(tempfile.mkdtemp(prefix="lab02-", dir="/tmp"))
        folders.append(folder)
        (folder / "template.yaml").write_text(text)
        return folder

    yield make
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)


os.environ.setdefault("SECURECART_TEST", "1")
