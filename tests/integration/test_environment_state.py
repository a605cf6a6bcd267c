"""Environment records (securecart_lab.envstate): tied to the emulator process that wrote them, gone with a purge."""

from __future__ import annotations

import json

import pytest

from securecart_lab import envstate
from securecart_lab.engines.local import LocalEngine

pytestmark = pytest.mark.integration


def test_each_emulator_start_is_a_new_environment():
    """Issue 8 item 11: what lab 3's drill record is tied to. After down/up, or a crash, the id is new."""
    import urllib.request

    from emulator_fixture import running_emulator

    ids = []
    for _ in range(2):
        with running_emulator() as emulator:
            with urllib.request.urlopen(f"{emulator.endpoint_url}/_localstack/health", timeout=5) as response:
                ids.append(json.loads(response.read())["environment_id"])
    assert all(ids) and ids[0] != ids[1]


def test_a_record_is_read_back_only_in_the_environment_that_wrote_it(isolated_settings):
    envstate.save(isolated_settings, "lab03-drill", {"instance": "securecart-db"}, "env-a")
    assert envstate.load(isolated_settings, "lab03-drill", "env-a") == {"instance": "securecart-db"}
    assert envstate.load(isolated_settings, "lab03-drill", "env-b") is None
    assert envstate.load(isolated_settings, "lab03-drill", None) is None
    (envstate.folder(isolated_settings) / "lab03-drill.json").write_text("{not json")
    assert envstate.load(isolated_settings, "lab03-drill", "env-a") is None


def test_down_purge_removes_every_environment_record(isolated_settings):
    """Issue 11 item 5: down --purge left lab03-primary-down.json behind, and the failover check then talked about a
    drill run before the purge. Progress and database dumps are the learner's and stay."""
    home = isolated_settings.home
    envstate.save(isolated_settings, "lab03-drill", {"instance": "securecart-db"}, "env-a")
    (home / "lab03-primary-down.json").write_text("{}")  # where earlier versions kept it
    (isolated_settings.pg_dir / "primary").mkdir(parents=True)
    (home / "state.json").write_text("{}")
    (home / "rds-snapshots").mkdir()
    (home / "rds-snapshots" / "db-1.sql").write_text("-- dump")

    LocalEngine(isolated_settings).down(purge=True)

    assert not envstate.folder(isolated_settings).exists() and not (home / "lab03-primary-down.json").exists()
    assert not isolated_settings.pg_dir.exists()
    assert (home / "state.json").exists() and (home / "rds-snapshots" / "db-1.sql").exists()
