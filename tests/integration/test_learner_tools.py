"""The tools a learner uses beside the kit, after `eval "$(securecart-lab env)"`: the AWS CLI from PyPI (v1), boto3
and psql reach the lab's services and databases; an instance's real log is behind GetConsoleOutput and
`securecart-lab logs instance ID`."""

from __future__ import annotations

import importlib.util
import json
import os
import shlex
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

needs_awscli = pytest.mark.skipif(importlib.util.find_spec("awscli") is None,
                                  reason="the AWS CLI v1 is a test dependency: pip install '.[test]'")


@pytest.fixture(scope="module")
def lab2(lab_ctx):
    ctx = lab_ctx(2)
    ctx.lab.provisioner().provision(ctx)
    ctx.lab.provisioner().deploy(ctx, ctx.lab.solution_dir)
    return ctx


def shell(script: str, settings) -> subprocess.CompletedProcess:
    """Run `script` in bash after eval "$(securecart-lab env)", from an environment with no AWS or PG settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PG", "BOTO"))}
    env["PY"] = sys.executable
    prelude = 'set -e; eval "$("$PY" -m securecart_lab env)"; '
    return subprocess.run(["bash", "-c", prelude + script], env=env, capture_output=True, text=True, timeout=120,
                          cwd=str(settings.home.parent))


@needs_awscli
def test_aws_cli_v1_reaches_every_service_the_labs_use(lab2, settings):
    # AWS CLI v1 pins rds and sqs to rds.amazonaws.com and queue.amazonaws.com in us-east-1 whatever
    # AWS_ENDPOINT_URL says; env's config file and plugin make it follow the kit's endpoint.
    commands = {
        "rds describe-db-instances": "DBInstances",
        "sqs list-queues --queue-name-prefix securecart": None,
        "stepfunctions list-state-machines": "stateMachines",
        "events list-event-buses": "EventBuses",
        "dynamodb list-tables": "TableNames",
        "lambda list-functions": "Functions",
        "logs describe-log-groups": "logGroups",
        "iam list-roles": "Roles",
        "ec2 describe-instances": "Reservations",
        "elbv2 describe-load-balancers": "LoadBalancers",
        "autoscaling describe-auto-scaling-groups": "AutoScalingGroups",
        "cloudformation describe-stacks --stack-name securecart-lab02": "Stacks",
        "ssm describe-parameters": "Parameters",
        "cloudwatch list-metrics": "Metrics",
        "s3api list-buckets": "Buckets",
        "sts get-caller-identity": "Account",
    }
    outputs = aws_cli_v1(list(commands), settings)
    for command, key in commands.items():
        code, stdout = outputs[command]
        assert code == 0, (command, stdout[:300], outputs["stderr"])
        if key:
            assert key in json.loads(stdout), (command, stdout[:300])
    rds = json.loads(outputs["rds describe-db-instances"][1])
    assert "securecart-db" in [i["DBInstanceIdentifier"] for i in rds["DBInstances"]]


def aws_cli_v1(commands: list[str], settings) -> dict:
    """Run AWS CLI v1 commands after eval "$(securecart-lab env)", each as `aws COMMAND --output json` does (a new
    driver reading the config file and loading the plugin), in one interpreter: {command: (exit code, stdout)}."""
    marker = "--- securecart-test "
    script = "\n".join([
        "import shlex, sys",
        "from awscli.clidriver import create_clidriver",
        f"for command in {commands!r}:",
        f"    print({marker!r} + command, flush=True)",
        "    code = create_clidriver().main(shlex.split(command) + ['--output', 'json'])",
        "    sys.stdout.flush()",
        f"    print({marker!r} + 'exit ' + str(code), flush=True)",
    ])
    result = shell(f'"$PY" -c {shlex.quote(script)}', settings)
    assert result.returncode == 0, result.stderr
    outputs, lines = {"stderr": result.stderr}, result.stdout.split("\n")
    while lines:
        line = lines.pop(0)
        if line.startswith(marker):
            command, body = line[len(marker):], []
            while not lines[0].startswith(marker):
                body.append(lines.pop(0))
            outputs[command] = (int(lines.pop(0)[len(marker) + len("exit "):]), "\n".join(body))
    return outputs


@needs_awscli
def test_aws_cli_v1_sqs_sees_the_lab_queues(lab_ctx, settings):
    ctx = lab_ctx(1)
    ctx.lab.provisioner().provision(ctx)
    result = shell('"$PY" -m awscli sqs get-queue-url --queue-name securecart-support --output text', settings)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("/securecart-support")


def test_boto3_and_psql_after_env(lab2, settings):
    result = shell('"$PY" -c "import boto3; print(len(boto3.client(\'rds\').describe_db_instances()[\'DBInstances\']))"',
                   settings)
    assert result.returncode == 0 and int(result.stdout) >= 1, result.stderr
    from securecart_lab import labdb

    psql = labdb.psql_binary(settings)
    # The kit's own database (PGUSER & co.) and, with the same environment, the lab's RDS database as its master.
    result = shell(f'"{psql}" -tAc "select current_user"', settings)
    assert result.returncode == 0 and result.stdout.strip() == "securecart", result.stderr
    port = lab2.aws("rds").describe_db_instances(DBInstanceIdentifier="securecart-db")["DBInstances"][0]["Endpoint"]["Port"]
    result = shell(f'"{psql}" -tAc "select current_user || \'@\' || current_database()" '
                   f'"host=127.0.0.1 port={port} dbname=storefront user=securecart_admin"', settings)
    assert result.returncode == 0 and result.stdout.strip() == "securecart_admin@storefront", result.stderr


def test_psql_command_logs_in_to_the_lab_database_as_its_master(lab2, settings):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env["PGPASSWORD"] = "wrong"  # a stale PGPASSWORD in the learner's shell must not get in the way
    result = subprocess.run([sys.executable, "-m", "securecart_lab", "psql", "-tAc",
                             "select current_user || '@' || current_database() || ' ' || pg_is_in_recovery()"],
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "securecart_admin@storefront false"
    assert "securecart-db (writer)" in result.stderr


def test_psql_replica_says_what_is_missing(lab2, cli, settings):
    from securecart_lab import replicas

    if replicas.topology(lab2.endpoint_url).replicas:
        pytest.skip("a replica exists in this session")
    result = cli("psql", "--replica")
    assert result.exit_code == 1
    assert "Expected a read replica of securecart-db (the writer), found none." in result.output


def test_instance_log_through_get_console_output_and_logs_command(lab2, cli):
    ec2 = lab2.aws("ec2")
    running = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]
               if i["State"]["Name"] == "running"]
    assert running
    instance = running[0]
    text = ec2.get_console_output(InstanceId=instance)["Output"]  # botocore decodes the base64
    assert f"SecureCart app {instance} listening on http://127.0.0.1:" in text
    assert "Xen" not in text
    result = cli("logs", "instance", instance, "-n", "100000")
    assert result.exit_code == 0 and f"SecureCart app {instance} listening" in result.output
    result = cli("logs", "instance", "i-nope")
    assert result.exit_code == 1 and "No log for instance 'i-nope'" in result.output and instance in result.output


def test_logs_of_a_misspelt_function_names_the_function_meant(lab_ctx, cli):
    ctx = lab_ctx(1)
    ctx.lab.provisioner().provision(ctx)
    result = cli("logs", "lambda", "authorise-payment")
    assert result.exit_code == 1
    assert "There is no function 'authorise-payment': did you mean 'authorize-payment'?" in result.output
    assert "Functions: authorize-payment, " in result.output
