"""The data-plane bridges through the AWS API of the real emulator: RDS is PostgreSQL, EC2 instances are app
processes, an ALB forwards real HTTP after real health checks, Auto Scaling replaces a dead instance."""

from __future__ import annotations

import json
import os
import re
import signal
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psycopg
import pytest
from botocore.exceptions import ClientError

from securecart_lab import config
from securecart_lab.postgres.testing import remove_home

from emulator_fixture import wait_for

pytestmark = pytest.mark.integration


def get(url: str) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def app_user_data(settings, password: str = config.DB_PASSWORD) -> str:
    return (f"#!/bin/bash\nexport DB_HOST=127.0.0.1 DB_PORT={settings.pg_port}\n"
            f"export DB_NAME={config.DB_NAME} DB_USER={config.DB_USER} DB_PASSWORD='{password}'\n"
            "exec python3 -m securecart_lab.app\n")


def app_pid(instance_id: str) -> int | None:
    needle = f"INSTANCE_ID={instance_id}".encode()
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if needle in (proc / "environ").read_bytes().split(b"\0"):
                    return int(proc.name)
            except OSError:
                continue
    return None


@pytest.fixture(scope="module")
def network(aws):
    """A VPC with two subnets in two AZs."""
    ec2 = aws("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.77.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.77.{i}.0/24", AvailabilityZone=f"us-east-1{az}")["Subnet"]["SubnetId"]
               for i, az in enumerate("ab")]
    return vpc, subnets


def balancer(aws, vpc, subnets, name: str, interval: int = 5):
    elbv2 = aws("elbv2")
    tg = elbv2.create_target_group(Name=name, Protocol="HTTP", Port=8080, VpcId=vpc, HealthCheckPath="/health",
                                   HealthCheckIntervalSeconds=interval, HealthyThresholdCount=2, UnhealthyThresholdCount=2)["TargetGroups"][0]
    lb = elbv2.create_load_balancer(Name=name, Subnets=subnets)["LoadBalancers"][0]
    elbv2.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": tg["TargetGroupArn"]}])
    return tg["TargetGroupArn"], lb


def target_states(aws, tg_arn: str) -> dict[str, dict]:
    return {d["Target"]["Id"]: d["TargetHealth"] for d in aws("elbv2").describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]}


def test_rds_instance_is_a_real_postgresql_server_of_its_own(aws, settings):
    """Each DB instance is its own server (own port, as AWS gives each its own endpoint); deleting it stops the server
    and keeps a dump. Was: every instance was a database on the kit's shared server (its port)."""
    rds = aws("rds")
    suffix = uuid.uuid4().hex[:8]
    ident, dbname = f"bridge-db-{suffix}", f"bridge_{suffix}"
    created = rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                                     AllocatedStorage=20, DBName=dbname, MasterUsername="bridge_admin",
                                     MasterUserPassword="bridge-secret")["DBInstance"]
    described = rds.describe_db_instances(DBInstanceIdentifier=ident)["DBInstances"][0]
    port = described["Endpoint"]["Port"]
    assert created["Endpoint"] == described["Endpoint"] and described["Endpoint"]["Address"] == "127.0.0.1"
    assert port != settings.pg_port and described["DBInstanceStatus"] == "available"
    with psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user="bridge_admin", password="bridge-secret") as conn:
        assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-bridge', 'a@example.com', 100)")
        assert conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0] is False
        assert conn.execute("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1").fetchall() == [(dbname,), ("postgres",)]
    rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(host="127.0.0.1", port=port, dbname=dbname, user="bridge_admin", password="bridge-secret", connect_timeout=2)
    assert not (settings.pg_dir / ident).exists()
    dumps = list((settings.home / "rds-final-dumps").glob(f"{ident}-*.sql"))
    assert len(dumps) == 1 and "ord-bridge" in dumps[0].read_text()


def test_master_username_postgres_works_as_on_rds(aws):
    """Was refused ("reserved by the kit"): on RDS `postgres` is an ordinary master user name."""
    rds = aws("rds")
    ident = f"bridge-pg-{uuid.uuid4().hex[:6]}"
    db = rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                                DBName="shop", MasterUsername="postgres", MasterUserPassword="learner-secret")["DBInstance"]
    try:
        with psycopg.connect(host="127.0.0.1", port=db["Endpoint"]["Port"], dbname="shop", user="postgres",
                             password="learner-secret") as conn:
            assert conn.execute("SELECT count(*) FROM products").fetchone()[0] > 0
    finally:
        rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)


@pytest.mark.parametrize("field, value", [("DBName", "template1"), ("MasterUsername", config.RDS_SUPERUSER)])
def test_rds_refuses_the_engines_reserved_names(aws, field, value):
    params = dict(DBInstanceIdentifier=f"bridge-bad-{uuid.uuid4().hex[:6]}", Engine="postgres", DBInstanceClass="db.t3.micro",
                  AllocatedStorage=20, DBName="whatever", MasterUsername="someone", MasterUserPassword="long-enough")
    params[field] = value
    with pytest.raises(ClientError) as error:
        aws("rds").create_db_instance(**params)
    assert error.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert f"{field} {value} cannot be used as it is a reserved word used by the engine" in str(error.value)
    assert not [d for d in aws("rds").describe_db_instances()["DBInstances"] if d["DBInstanceIdentifier"] == params["DBInstanceIdentifier"]]


def test_an_instance_behind_a_load_balancer_serves_real_http(aws, settings, network):
    vpc, subnets = network
    ec2 = aws("ec2")
    tg_arn, lb = balancer(aws, vpc, subnets, "bridge-http")
    assert lb["DNSName"].startswith("127.0.0.1:")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnets[0],
                                 UserData=app_user_data(settings))["Instances"][0]["InstanceId"]
    aws("elbv2").register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": instance}])
    assert target_states(aws, tg_arn)[instance]["State"] in ("initial", "healthy")
    wait_for(lambda: target_states(aws, tg_arn)[instance]["State"] == "healthy", what="a healthy target")
    status, headers, body = get(f"http://{lb['DNSName']}/api/products?limit=3")
    assert status == 200 and headers["X-SecureCart-Instance"] == instance and b'"sku"' in body

    ec2.stop_instances(InstanceIds=[instance])
    assert target_states(aws, tg_arn)[instance]["State"] == "unused"
    assert app_pid(instance) is None
    assert get(f"http://{lb['DNSName']}/api/products")[0] == 503

    ec2.terminate_instances(InstanceIds=[instance])
    aws("elbv2").delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{lb['DNSName']}/", timeout=2)


def test_an_unhealthy_target_gets_no_traffic_until_no_target_is_healthy_then_the_balancer_fails_open(aws, settings, network):
    vpc, subnets = network
    tg_arn, lb = balancer(aws, vpc, subnets, "bridge-unhealthy")
    good, bad = (aws("ec2").run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnets[0],
                                          UserData=app_user_data(settings, **extra))["Instances"][0]["InstanceId"]
                 for extra in ({}, {"password": "wrong-password"}))
    aws("elbv2").register_targets(TargetGroupArn=tg_arn, Targets=[{"Id": good}, {"Id": bad}])
    # While the app process starts, probes are refused (Target.FailedHealthChecks); once it answers, its 503s
    # (it cannot log in to the database) are the reason.
    health = wait_for(lambda: (h := target_states(aws, tg_arn)[bad])["State"] == "unhealthy"
                      and h["Reason"] == "Target.ResponseCodeMismatch" and h, what="a target unhealthy for its 503s")
    assert "[503]" in health["Description"]
    wait_for(lambda: target_states(aws, tg_arn)[good]["State"] == "healthy", what="a healthy target")
    served = {get(f"http://{lb['DNSName']}/health")[1]["X-SecureCart-Instance"] for _ in range(6)}
    assert served == {good}

    # With no healthy target an ALB fails open: it routes to every target rather than answer 503 itself.
    aws("ec2").stop_instances(InstanceIds=[good])
    status, headers, body = get(f"http://{lb['DNSName']}/health")
    assert status == 503 and headers["X-SecureCart-Instance"] == bad and b'"db": "unreachable"' in body.replace(b'":"', b'": "')
    aws("ec2").terminate_instances(InstanceIds=[good, bad])
    aws("elbv2").delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_auto_scaling_replaces_an_instance_whose_app_dies(aws, settings, network):
    vpc, subnets = network
    tg_arn, lb = balancer(aws, vpc, subnets, "bridge-asg")
    aws("ec2").create_launch_template(LaunchTemplateName="bridge-asg", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "UserData": __import__("base64").b64encode(app_user_data(settings).encode()).decode()})
    autoscaling = aws("autoscaling")
    autoscaling.create_auto_scaling_group(AutoScalingGroupName="bridge-asg", MinSize=2, MaxSize=3, DesiredCapacity=2,
                                          LaunchTemplate={"LaunchTemplateName": "bridge-asg"}, VPCZoneIdentifier=",".join(subnets),
                                          TargetGroupARNs=[tg_arn])

    def in_service():
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["bridge-asg"])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"] if i["LifecycleState"] == "InService"]

    first = in_service()
    assert len(first) == 2
    reservations = aws("ec2").describe_instances(InstanceIds=first)["Reservations"]
    assert {i["SubnetId"] for r in reservations for i in r["Instances"]} == set(subnets), "spread over both subnets"
    wait_for(lambda: all(target_states(aws, tg_arn).get(i, {}).get("State") == "healthy" for i in first), what="2 healthy targets")

    os.kill(wait_for(lambda: app_pid(first[0]), what="the app process"), signal.SIGKILL)
    # The crashed instance shows Unhealthy (still InService, still running) before the group replaces it.
    seen = wait_for(lambda: _health_of(autoscaling, first[0]), what="the crashed instance's health")
    assert seen == ("InService", "Unhealthy"), seen
    group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=["bridge-asg"])["AutoScalingGroups"][0]
    assert {i["InstanceId"]: i["HealthStatus"] for i in group["Instances"]}[first[0]] == "Unhealthy"
    replaced = wait_for(lambda: (now := in_service()) and first[0] not in now and len(now) == 2 and now, what="a replacement")
    state = aws("ec2").describe_instances(InstanceIds=[first[0]])["Reservations"][0]["Instances"][0]["State"]
    assert state["Name"] == "terminated" and state["Code"] == 48
    # Scaling activities in AWS's shape: the termination and its cause, then the launch that restored capacity.
    activities = autoscaling.describe_scaling_activities(AutoScalingGroupName="bridge-asg")["Activities"]
    terminating = next(a for a in activities if a["Description"] == f"Terminating EC2 instance: {first[0]}")
    assert re.fullmatch(r"At \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ an instance was taken out of service in response to an "
                        r"EC2 instance status check failure: the instance's app process exited with code -9\.",
                        terminating["Cause"]), terminating["Cause"]
    assert terminating["StatusCode"] == "Successful" and terminating["Progress"] == 100
    assert terminating["AutoScalingGroupName"] == "bridge-asg" and terminating["ActivityId"]
    launch = next(a for a in activities if a["Description"].startswith("Launching a new EC2 instance: ")
                  and a["Description"].rsplit(" ", 1)[1] in replaced and a["StartTime"] >= terminating["StartTime"])
    assert launch["Cause"].endswith("an instance was started in response to a difference between desired and actual "
                                    "capacity, increasing the capacity from 1 to 2."), launch["Cause"]
    assert json.loads(launch["Details"])["Subnet ID"] in subnets
    wait_for(lambda: all(target_states(aws, tg_arn).get(i, {}).get("State") == "healthy" for i in replaced), what="the replacement healthy")
    status, headers, _ = get(f"http://{lb['DNSName']}/health")
    assert status == 200 and headers["X-SecureCart-Instance"] in replaced
    # A terminated instance leaves the target group, as Auto Scaling deregisters it on AWS (a stale target would
    # keep the group from ever being all healthy), whether its app died or it was terminated through the API.
    assert set(target_states(aws, tg_arn)) == set(replaced)
    # An instance marked Unhealthy through the API is replaced too, and the activity says so.
    autoscaling.set_instance_health(InstanceId=replaced[1], HealthStatus="Unhealthy")
    aws("ec2").terminate_instances(InstanceIds=[replaced[0]])
    again = wait_for(lambda: (now := in_service()) and not set(replaced) & set(now) and len(now) == 2 and now,
                     what="two replacements")
    causes = {a["Description"]: a["Cause"] for a in autoscaling.describe_scaling_activities(AutoScalingGroupName="bridge-asg")["Activities"]}
    assert causes[f"Terminating EC2 instance: {replaced[1]}"].endswith("in response to a user health-check.")
    assert causes[f"Terminating EC2 instance: {replaced[0]}"].endswith(
        "in response to an EC2 health check indicating it has been terminated or stopped.")
    wait_for(lambda: set(target_states(aws, tg_arn)) == set(again), what="only the group's instances registered")
    # An instance that has left its group: AWS's ValidationError (was: StopIteration, an HTTP 500).
    with pytest.raises(ClientError) as raised:
        autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=replaced[0], ShouldDecrementDesiredCapacity=False)
    assert raised.value.response["Error"]["Code"] == "ValidationError"
    assert raised.value.response["Error"]["Message"] == f"Instance Id not found - No managed instance found for instance ID: {replaced[0]}"
    # A scale-in's termination is an activity too.
    autoscaling.update_auto_scaling_group(AutoScalingGroupName="bridge-asg", MinSize=1, DesiredCapacity=1)
    [left] = in_service()
    [gone] = set(again) - {left}
    causes = {a["Description"]: a["Cause"] for a in autoscaling.describe_scaling_activities(AutoScalingGroupName="bridge-asg")["Activities"]}
    assert causes[f"Terminating EC2 instance: {gone}"].endswith(
        "an instance was taken out of service in response to a difference between desired and actual capacity, "
        "shrinking the capacity from 2 to 1.")
    # So is TerminateInstanceInAutoScalingGroup, before the launch of its replacement.
    autoscaling.terminate_instance_in_auto_scaling_group(InstanceId=left, ShouldDecrementDesiredCapacity=False)
    wait_for(lambda: (now := in_service()) and left not in now, what="a replacement")
    activities = autoscaling.describe_scaling_activities(AutoScalingGroupName="bridge-asg")["Activities"]
    assert activities[1]["Description"] == f"Terminating EC2 instance: {left}", activities[:2]
    assert re.fullmatch(rf"At \S+Z instance {left} was taken out of service in response to a user request\.",
                        activities[1]["Cause"]), activities[1]["Cause"]
    assert activities[0]["Description"].startswith("Launching a new EC2 instance: ")

    autoscaling.delete_auto_scaling_group(AutoScalingGroupName="bridge-asg", ForceDelete=True)
    wait_for(lambda: all(app_pid(i) is None for i in again), what="the group's app processes to stop")
    aws("elbv2").delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def _health_of(autoscaling, instance_id: str):
    """(LifecycleState, HealthStatus) as DescribeAutoScalingInstances reports them; ("gone", None) once it left its
    group (so a wait for Unhealthy fails at once when the instance was replaced without ever showing it)."""
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    if not found:
        return ("gone", None)
    state = (found[0]["LifecycleState"], found[0]["HealthStatus"])
    return state if state[1] != "Healthy" else None


def test_elb_health_checks_replace_an_instance_the_target_group_finds_unhealthy_after_the_grace_period(aws, settings, network):
    """An app that runs but answers /health with 503 (it cannot log in to its database): with HealthCheckType ELB its
    group marks it Unhealthy once HealthCheckGracePeriod is over, then replaces it; with EC2 it keeps it."""
    vpc, subnets = network
    tg_arn, lb = balancer(aws, vpc, subnets, "bridge-elb-health")
    user_data = __import__("base64").b64encode(app_user_data(settings, password="wrong-password").encode()).decode()
    aws("ec2").create_launch_template(LaunchTemplateName="bridge-elb-health", LaunchTemplateData={
        "ImageId": "ami-12c6146b", "UserData": user_data})
    autoscaling = aws("autoscaling")
    grace = 20  # x SECURECART_TIME_SCALE (0.1) = 2 s, counted from when the app first answered
    for name, kind, targets in (("bridge-elb-health", "ELB", [tg_arn]), ("bridge-ec2-health", "EC2", [])):
        autoscaling.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=1, MaxSize=1, DesiredCapacity=1, HealthCheckType=kind,
            HealthCheckGracePeriod=grace, LaunchTemplate={"LaunchTemplateName": "bridge-elb-health"},
            VPCZoneIdentifier=subnets[0], TargetGroupARNs=targets)

    def members(name):
        group = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]
        return [i["InstanceId"] for i in group["Instances"]]

    try:
        first, kept = members("bridge-elb-health")[0], members("bridge-ec2-health")[0]
        wait_for(lambda: target_states(aws, tg_arn).get(first, {}).get("State") == "unhealthy", what="an unhealthy target")
        target_unhealthy = time.monotonic()
        assert _health_of(autoscaling, first) is None  # within the grace period: still Healthy to Auto Scaling
        seen = wait_for(lambda: _health_of(autoscaling, first), what="the instance's health")
        marked = time.monotonic()
        assert seen == ("InService", "Unhealthy"), seen
        assert marked - target_unhealthy >= 1.0, "marked Unhealthy before the grace period was over"
        assert aws("ec2").describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
        replacement = wait_for(lambda: (now := members("bridge-elb-health")) and first not in now and now,
                               what="a replacement")[0]
        state = aws("ec2").describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]["State"]["Name"]
        assert state == "terminated" and first not in target_states(aws, tg_arn)
        activities = autoscaling.describe_scaling_activities(AutoScalingGroupName="bridge-elb-health")["Activities"]
        terminating = next(a for a in activities if a["Description"] == f"Terminating EC2 instance: {first}")
        assert terminating["Cause"].endswith("an instance was taken out of service in response to an ELB system "
                                             "health check failure."), terminating["Cause"]
        assert any(a["Description"] == f"Launching a new EC2 instance: {replacement}" for a in activities)
        # The same app in a group with EC2 health checks: its instance runs, so it stays.
        assert members("bridge-ec2-health") == [kept] and _health_of(autoscaling, kept) is None
    finally:
        for name in ("bridge-elb-health", "bridge-ec2-health"):
            autoscaling.delete_auto_scaling_group(AutoScalingGroupName=name, ForceDelete=True)
        aws("elbv2").delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])


def test_app_processes_end_when_the_emulator_is_killed(settings):
    from emulator_fixture import client, start_emulator

    home = Path(tempfile.mkdtemp(prefix="securecart-crash-", dir="/tmp"))
    handle = start_emulator(home, extra_env={"SECURECART_PG_PORT": str(settings.pg_port)})
    try:
        ec2 = client(handle, "ec2")
        instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                     UserData=app_user_data(settings))["Instances"][0]["InstanceId"]
        pid = wait_for(lambda: app_pid(instance), what="the app process")
        os.kill(handle.process.pid, signal.SIGKILL)
        handle.process.wait()
        wait_for(lambda: not Path(f"/proc/{pid}").exists() or b"Z" in Path(f"/proc/{pid}/stat").read_bytes().split(b")")[-1][:3],
                 timeout=10, what="the app to exit with its emulator")
    finally:
        handle.stop()
        remove_home(home)


def test_a_database_left_on_the_shared_server_moves_to_the_instance_and_to_the_new_master(aws, settings):
    """Installations before one server per instance kept instance databases on the kit's shared server: creating
    the instance again moves that data to its own server (a dump stays in rds-final-dumps)."""
    from securecart_lab.postgres import primary, seed

    suffix = uuid.uuid4().hex[:8]
    dbname, earlier = f"kept_{suffix}", f"earlier_{suffix}"
    server = primary(settings)
    server.create_database(dbname, earlier, "earlier-secret")
    with server.connect(dbname, earlier, "earlier-secret") as conn:
        seed.load(conn)
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-kept', 'k@example.com', 1)")
    ident = f"kept-{suffix}"
    db = aws("rds").create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                                       DBName=dbname, MasterUsername=f"now_{suffix}", MasterUserPassword="now-secret")["DBInstance"]
    with psycopg.connect(host="127.0.0.1", port=db["Endpoint"]["Port"], dbname=dbname, user=f"now_{suffix}", password="now-secret") as conn:
        assert conn.execute("SELECT count(*) FROM orders WHERE id = 'ord-kept'").fetchone()[0] == 1
        conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-new', 'n@example.com', 1)")
    with server.connect() as conn:
        assert conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)).fetchone() is None
    assert any("ord-kept" in path.read_text() for path in (settings.home / "rds-final-dumps").glob(f"{dbname}-*.sql"))
    aws("rds").delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)


def test_after_an_emulator_restart_a_new_instance_with_the_same_dbname_finds_its_data(settings, engine):
    """CloudFormation names an instance anew at each stack creation: after `down`/`up` and `deploy`, the instance
    with the same DBName takes over the server data the earlier one left (its orders), on its former port."""
    from emulator_fixture import client, start_emulator

    suffix = uuid.uuid4().hex[:8]
    dbname, params = f"kept_{suffix}", dict(Engine="postgres", DBInstanceClass="db.t3.micro", AllocatedStorage=20,
                                            MasterUsername="kept_admin", MasterUserPassword="kept-secret")
    env = {"SECURECART_PG_PORT": str(settings.pg_port)}
    first = start_emulator(settings.home, extra_env=env)
    try:
        db = client(first, "rds").create_db_instance(DBInstanceIdentifier=f"stack-database-{suffix}a", DBName=dbname, **params)["DBInstance"]
        with psycopg.connect(host="127.0.0.1", port=db["Endpoint"]["Port"], dbname=dbname, user="kept_admin", password="kept-secret") as conn:
            conn.execute("INSERT INTO orders (id, customer_email, total_cents) VALUES ('ord-kept', 'k@example.com', 1)")
    finally:
        first.stop()
    second = start_emulator(settings.home, extra_env=env)
    try:
        rds = client(second, "rds")
        again = rds.create_db_instance(DBInstanceIdentifier=f"stack-database-{suffix}b", DBName=dbname, **params)["DBInstance"]
        assert again["Endpoint"]["Port"] == db["Endpoint"]["Port"]
        with psycopg.connect(host="127.0.0.1", port=again["Endpoint"]["Port"], dbname=dbname, user="kept_admin", password="kept-secret") as conn:
            assert conn.execute("SELECT count(*) FROM orders WHERE id = 'ord-kept'").fetchone()[0] == 1
        assert not (settings.pg_dir / f"stack-database-{suffix}a").exists()
        rds.delete_db_instance(DBInstanceIdentifier=f"stack-database-{suffix}b", SkipFinalSnapshot=True)
    finally:
        second.stop()
