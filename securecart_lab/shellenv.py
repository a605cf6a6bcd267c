"""What `securecart-lab env` gives a learner's shell: variables, an AWS config file and a PostgreSQL password file,
so that the AWS CLI (v1 from PyPI and v2), awslocal, boto3 and psql all reach the kit.

Why a config file and a plugin: AWS CLI v1 ignores AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>, and a
config file's endpoint_url) for sqs, rds, docdb, neptune, emr and health in us-east-1: its
overridesslcommonname customization pins those services to legacy hostnames (queue.amazonaws.com,
rds.amazonaws.com) unless --endpoint-url is given. The config file loads a tiny v1 plugin (found through
PYTHONPATH) that fills --endpoint-url from the environment first. AWS CLI v2 loads no plugin without
cli_legacy_plugin_path (the file leaves it out) and honours AWS_ENDPOINT_URL itself.

Why a password file: psql then logs in to the kit's database and to every lab RDS instance (as its master user)
without PGPASSWORD, which would send the kit's password to the lab databases too.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from securecart_lab import config, paths
from securecart_lab.config import Settings

PLUGIN_MODULE = "securecart_awscli_endpoints"
# The AWS CLI v1 commands whose endpoint the overridesslcommonname customization pins, and botocore's
# AWS_ENDPOINT_URL_<SERVICE> suffix for each.
PINNED_SERVICES = {"sqs": "SQS", "rds": "RDS", "docdb": "DOCDB", "neptune": "NEPTUNE", "emr": "EMR", "health": "HEALTH"}

PLUGIN_SOURCE = f'''"""AWS CLI v1 plugin written by `securecart-lab env`: use AWS_ENDPOINT_URL_<SERVICE> or AWS_ENDPOINT_URL for
the commands AWS CLI v1 otherwise sends to legacy AWS hostnames in us-east-1. Remove it with the
AWS_CONFIG_FILE line of `securecart-lab env`."""
import os

PINNED = {PINNED_SERVICES!r}


def awscli_initialize(cli):
    cli.register("before-building-argument-table-parser", _endpoint_from_environment)


def _endpoint_from_environment(parsed_globals=None, **kwargs):
    if parsed_globals is None or getattr(parsed_globals, "endpoint_url", None):
        return
    suffix = PINNED.get(getattr(parsed_globals, "command", None) or "")
    if suffix is None:
        return
    url = os.environ.get("AWS_ENDPOINT_URL_" + suffix) or os.environ.get("AWS_ENDPOINT_URL")
    if url:
        parsed_globals.endpoint_url = url
'''


def aws_dir(settings: Settings) -> Path:
    return settings.home / "aws"


def pgpass_path(settings: Settings) -> Path:
    return settings.home / "pgpass"


def write_aws_files(settings: Settings, endpoint_url: str) -> tuple[Path, Path]:
    """(config file, plugin directory), rewritten every time so they follow the current endpoint."""
    directory = aws_dir(settings)
    plugins = directory / "python"
    plugins.mkdir(parents=True, exist_ok=True)
    (plugins / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    config_file = directory / "config"
    config_file.write_text(
        "# Written by `securecart-lab env` for the lab shell; your own ~/.aws/config is untouched.\n"
        "[default]\n"
        f"region = {config.REGION}\n"
        "output = json\n"
        f"endpoint_url = {endpoint_url}\n"
        "disable_host_prefix_injection = true\n"
        "\n"
        "[plugins]\n"
        f"securecart = {PLUGIN_MODULE}\n"
    )
    return config_file, plugins


def add_pgpass_entry(settings: Settings, host: str, port: int | str, dbname: str, user: str, password: str) -> Path:
    """Record a login in the kit's libpq password file (0600), replacing an older entry for the same login."""
    path = pgpass_path(settings)
    paths.private_dir(path.parent)

    def escape(value) -> str:
        return str(value).replace("\\", "\\\\").replace(":", "\\:")

    key = ":".join(escape(v) for v in (host, port, dbname, user))
    lines = path.read_text().splitlines() if path.exists() else []
    lines = [line for line in lines if not line.startswith(key + ":")] + [f"{key}:{escape(password)}"]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.chmod(path, 0o600)
    return path


def variables(settings: Settings, endpoint_url: str, pg_env: dict[str, str],
              account: str = config.ACCOUNT_ID) -> tuple[dict[str, str], list[str]]:
    """(NAME -> value, extra shell lines) for `env`, the AWS credentials acting in `account` (SecureCart's unless
    told). The extra lines prepend to PYTHONPATH instead of replacing it."""
    config_file, plugins = write_aws_files(settings, endpoint_url)
    pg = dict(pg_env)
    password = pg.pop("PGPASSWORD", None)
    if password is not None:
        add_pgpass_entry(settings, pg["PGHOST"], pg["PGPORT"], pg["PGDATABASE"], pg["PGUSER"], password)
    values = {
        **config.aws_env(endpoint_url, account),
        "AWS_CONFIG_FILE": str(config_file),
        **pg,
        "PGPASSFILE": str(pgpass_path(settings)),
    }
    extra = ["unset PGPASSWORD",
             f"export PYTHONPATH={shlex.quote(str(plugins))}${{PYTHONPATH:+:$PYTHONPATH}}"]
    return values, extra
