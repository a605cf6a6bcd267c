"""The localstack engine's behaviour without a Docker daemon (none runs here)."""

import pytest

from securecart_lab.config import Settings
from securecart_lab.engines import get_engine
from securecart_lab.errors import EngineUnavailable


@pytest.fixture
def engine(monkeypatch, isolated_settings):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    return get_engine(Settings.from_env(engine="localstack"))


def test_no_daemon_is_a_clear_error_suggesting_local(engine):
    with pytest.raises(EngineUnavailable) as info:
        engine.up()
    assert "none answered at unix:///nonexistent/docker.sock" in info.value.message
    assert "--engine local" in info.value.hint


def test_no_docker_command_at_all(engine, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(EngineUnavailable, match="no docker command was found"):
        engine.down()


def test_apis_community_lacks_are_skipped_with_the_reason(engine):
    assert {"rds", "elbv2", "autoscaling"}.isdisjoint(engine.capabilities)
    assert {"stepfunctions", "lambda", "events", "sqs", "dynamodb"} <= engine.capabilities
    reason = engine.missing_reason({"rds"})
    assert reason.startswith("LocalStack community has no rds API") and "--engine local" in reason


def test_version_honours_localstack_image(engine, monkeypatch):
    assert engine.version() == "localstack/localstack:4.14.0"
    monkeypatch.setenv("LOCALSTACK_IMAGE", "localstack/localstack-pro:2026.11")
    assert engine.version() == "localstack/localstack-pro:2026.11"
