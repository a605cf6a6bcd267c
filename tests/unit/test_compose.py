"""The localstack engine's compose file, checked statically (no Docker engine runs here)."""

import yaml

from securecart_lab import paths


def _compose():
    return yaml.safe_load(paths.compose_file().read_text())


def test_localstack_is_pinned_to_the_last_community_tag_and_overridable():
    ls = _compose()["services"]["localstack"]
    assert ls["image"] == "${LOCALSTACK_IMAGE:-localstack/localstack:4.14.0}"
    assert ls["environment"]["LOCALSTACK_AUTH_TOKEN"] == "${LOCALSTACK_AUTH_TOKEN:-}"
    assert "/var/run/docker.sock:/var/run/docker.sock" in ls["volumes"]
    assert ls["ports"] == ["127.0.0.1:${SECURECART_EMULATOR_PORT:-4566}:4566"]
    assert "_localstack/health" in " ".join(ls["healthcheck"]["test"])


def test_postgres_primary_is_ready_for_replication_and_healthchecked():
    pg = _compose()["services"]["postgres"]
    assert pg["image"] == "postgres:16"
    assert pg["ports"][0].startswith("127.0.0.1:")
    assert "wal_level=replica" in pg["command"]
    assert "pg_isready" in pg["healthcheck"]["test"][1]
    mounts = " ".join(pg["volumes"])
    assert "schema.sql" in mounts and "docker-replication.sh" in mounts
    assert (paths.seed_dir() / "docker-replication.sh").exists() and (paths.seed_dir() / "docker-load.sh").exists()


def test_replica_is_a_profile_bootstrapped_by_pg_basebackup_from_the_primary():
    services = _compose()["services"]
    replica = services["replica"]
    assert replica["profiles"] == ["replica"]
    assert replica["image"] == "postgres:16"
    assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"
    script = replica["entrypoint"][-1]
    assert "pg_basebackup -h postgres" in script and " -R " in script
    assert "pg_is_in_recovery" in replica["healthcheck"]["test"][1]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s["ports"])
