"""Bad input gets one clear line and a non-zero exit, never a traceback."""

import json
import socket

import pytest

from securecart_lab import state
from securecart_lab.errors import StateVersionError


def _one_error(result):
    lines = [l for l in result.output.splitlines() if l.strip()]
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert lines[0].startswith("Error: ")
    return lines


def test_unknown_lab_lists_valid_ones(cli, isolated_settings):
    lines = _one_error(cli("start", "9"))
    assert lines[0] == "Error: There is no lab 9: valid labs are 1, 2, 3, 4."
    assert "securecart-lab list" in lines[1]


def test_non_numeric_lab(cli, isolated_settings):
    lines = _one_error(cli("check", "banana"))
    assert "There is no lab banana" in lines[0]


def test_check_without_a_lab_or_all(cli, isolated_settings):
    lines = _one_error(cli("check"))
    assert "Expected a lab number or --all" in lines[0]


def test_check_when_nothing_runs_says_what_to_run(cli, isolated_settings):
    lines = _one_error(cli("check", "1"))
    assert "found nothing" in lines[0] and isolated_settings.endpoint_url in lines[0]
    assert "securecart-lab up" in lines[1]


def test_deploy_when_nothing_runs(cli, isolated_settings):
    lines = _one_error(cli("deploy", "1"))
    assert "No workspace for lab 1" in lines[0] and "start 1" in lines[1]
    from securecart_lab.labs import workspace
    from securecart_lab.labs.registry import get_lab

    workspace.copy_starter(isolated_settings.workspace, get_lab(1))
    lines = _one_error(cli("deploy", "1"))
    assert "found nothing" in lines[0]


def test_down_when_nothing_runs_is_fine(cli, isolated_settings):
    result = cli("down")
    assert result.exit_code == 0
    assert "Nothing was running" in result.output


def test_localstack_without_docker_suggests_local(cli, isolated_settings, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    lines = _one_error(cli("--engine", "localstack", "up"))
    assert "needs" in lines[0] and "Docker" in lines[0]
    assert "--engine local" in lines[1]


def test_unknown_engine_from_env(cli, isolated_settings, monkeypatch):
    monkeypatch.setenv("SECURECART_ENGINE", "azure")
    lines = _one_error(cli("status"))
    assert "Unknown engine 'azure'" in lines[0]


def test_bad_port_setting(cli, isolated_settings, monkeypatch):
    monkeypatch.setenv("SECURECART_EMULATOR_PORT", "forty")
    lines = _one_error(cli("status"))
    assert lines[0] == "Error: SECURECART_EMULATOR_PORT must be a number, found 'forty'."


def test_bad_time_scale(cli, isolated_settings, monkeypatch):
    monkeypatch.setenv("SECURECART_TIME_SCALE", "0")
    lines = _one_error(cli("status"))
    assert "SECURECART_TIME_SCALE must be a positive number" in lines[0]


def test_port_in_use_names_port_owner_and_setting(cli, isolated_settings):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", isolated_settings.emulator_port))
        sock.listen()
        lines = _one_error(cli("up"))
    assert f"Port {isolated_settings.emulator_port} is already in use by pid" in lines[0]
    assert "SECURECART_EMULATOR_PORT" in lines[1]


def test_logs_before_anything_ran(cli, isolated_settings):
    lines = _one_error(cli("logs", "emulator"))
    assert "No emulator log" in lines[0]
    lines = _one_error(cli("logs", "nonsense"))
    assert "Unknown log 'nonsense'" in lines[0]


def test_env_prints_exports(cli, isolated_settings):
    result = cli("env")
    assert result.exit_code == 0
    names = [l.split("=")[0].removeprefix("export ") for l in result.output.splitlines()]
    assert names == ["AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
                     "AWS_DISABLE_HOST_PREFIX_INJECTION", "AWS_CONFIG_FILE", "PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSFILE", "unset PGPASSWORD",
                     "PYTHONPATH"]
    assert f"export AWS_ENDPOINT_URL={isolated_settings.endpoint_url}" in result.output
    # The password lives in the kit's 0600 password file, not in the shell's environment.
    pgpass = isolated_settings.home / "pgpass"
    assert oct(pgpass.stat().st_mode & 0o777) == "0o600"
    assert f"127.0.0.1:{isolated_settings.pg_port}:securecart:securecart:securecart" in pgpass.read_text()
    config = (isolated_settings.home / "aws" / "config").read_text()
    assert f"endpoint_url = {isolated_settings.endpoint_url}" in config and "securecart = securecart_awscli_endpoints" in config


def test_env_for_the_security_account_selects_it_by_its_key(cli, isolated_settings):
    lines = cli("env", "--account", "security").output.splitlines()
    assert "export AWS_ACCESS_KEY_ID=222222222222" in lines
    assert "export AWS_ACCESS_KEY_ID=test" in cli("env").output.splitlines()
    assert "export AWS_ACCESS_KEY_ID=test" in cli("env", "--account", "123456789012").output.splitlines()
    lines = _one_error(cli("env", "--account", "audit"))
    assert "Unknown account 'audit'" in lines[0] and "security (222222222222)" in lines[0]


def test_status_when_stopped(cli, isolated_settings):
    result = cli("status", "--format", "json")
    assert result.exit_code == 0
    data = json.loads(result.output)
    assert data["running"] is False
    assert {c["name"]: c["state"] for c in data["components"]} == {"emulator": "stopped", "postgres": "stopped"}
    assert [l["lab"] for l in data["labs"]] == [1, 2, 3, 4]


def test_newer_state_file_is_refused_with_upgrade_message(cli, isolated_settings):
    path = isolated_settings.home / "state.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format_version": 99, "labs": {}}))
    with pytest.raises(StateVersionError):
        state.load(isolated_settings.home)
    lines = _one_error(cli("status"))
    assert "newer securecart-lab" in lines[0] and "pip install -U" in lines[1]


def test_version(cli):
    result = cli("--version")
    assert result.exit_code == 0 and result.output.startswith("securecart-lab ")
