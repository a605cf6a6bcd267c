"""The reference failover runbook: the README's step 3, as the API calls `solve 3` makes.

    securecart-lab chaos az-down            # Multi-AZ fails over by itself, same endpoint
    curl -X POST $SITE/api/orders ...       # and the site still takes orders
    securecart-lab chaos primary-down
    aws rds promote-read-replica --db-instance-identifier securecart-db-replica
    aws ssm put-parameter --name /securecart/db/writer-endpoint --type String --overwrite --value HOST:PORT
    aws rds create-db-instance-read-replica --db-instance-identifier securecart-db-replica2 \
        --source-db-instance-identifier securecart-db-replica
    aws ssm put-parameter --name /securecart/db/reader-endpoint --type String --overwrite --value HOST2:PORT2
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import psycopg

from securecart_lab.postgres import topology as replicas
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER, AppConfig
from securecart_lab.errors import DeployError, LabError
from securecart_lab.labs.registry import get_lab

SITE_WAIT_SECONDS = 60


def run(ctx) -> list[str]:
    """Fail the writer, promote its replica, move the writer there, give it a replica of its own. Idempotent:
    nothing happens when the writer is already a promoted replica of the instance that failed."""
    settings = ctx.settings
    topo = replicas.topology(ctx.endpoint_url)
    drill = ctx.lab.module("outage.py")
    outage = drill.Outage.load(settings)
    writer = topo.require_writer()
    rds, ssm = ctx.aws("rds"), ctx.aws("ssm")
    if outage is not None and writer.id != outage.instance and writer.source is None:
        missed = [] if drill.AzOutage.load(settings) else [
            f"Drill: chaos az-down was not run before {outage.instance} was lost, so multi-az-failover cannot pass; to "
            "do step 3 again in order: securecart-lab reset 3 --environment"]
        if topo.replicas:
            return [f"Failover drill already done: the writer is {writer.id}, with replica {topo.replicas[0].id}", *missed]
        # The failover happened in this environment (by hand, perhaps) but the new writer has no replica yet.
        standby = topo.instances[writer.id]
        lines = [f"Drill: the writer is already {writer.id}, promoted after the failure", *missed]
    else:
        standby = next((r for r in topo.replicas if r.status == "available"), None)
        if standby is None:
            raise DeployError(f"The writer {writer.id} has no available read replica to fail over to.",
                              "Deploy replica.yaml first (securecart-lab deploy 3).")
        lines = _multi_az(ctx, drill, writer) if writer.multi_az else []
        outage = drill.primary_down(settings)
        lines.append(f"Drill: stopped {outage.instance}'s server ({outage.host}:{outage.port}) with "
                     f"{len(outage.orders)} orders confirmed")
        rds.promote_read_replica(DBInstanceIdentifier=standby.id)
        promoted = get_lab(3).provisioner().wait_available(rds, [standby.id])[standby.id]
        endpoint = f"{promoted['Endpoint']['Address']}:{promoted['Endpoint']['Port']}"
        ssm.put_parameter(Name=WRITER_PARAMETER, Value=endpoint, Type="String", Overwrite=True)
        lines.append(f"Drill: promoted {standby.id}; {WRITER_PARAMETER} = {endpoint}")

    new_id = f"{standby.id}2"
    rds.create_db_instance_read_replica(DBInstanceIdentifier=new_id, SourceDBInstanceIdentifier=standby.id)
    replica = get_lab(3).provisioner().wait_available(rds, [new_id])[new_id]
    reader = f"{replica['Endpoint']['Address']}:{replica['Endpoint']['Port']}"
    ssm.put_parameter(Name=READER_PARAMETER, Value=reader, Type="String", Overwrite=True)
    lines.append(f"Drill: new read replica {new_id}; {READER_PARAMETER} = {reader}")
    lines.append(_wait_for_site(ctx))
    # Until their cache expires, instances may still read from the old replica, which is the writer now.
    time.sleep(AppConfig.reader_cache_seconds + 0.5)
    return lines


def _multi_az(ctx, drill, writer) -> list[str]:
    """chaos az-down, RDS's failover behind the same endpoint, then an order through the site (writer unchanged)."""
    drill.az_down(ctx.settings)
    az = drill.AzOutage.load(ctx.settings)
    rds = ctx.aws("rds")
    deadline = time.monotonic() + SITE_WAIT_SECONDS
    while not any(e["Message"] == "Multi-AZ instance failover completed" for e in rds.describe_events(
            SourceType="db-instance", SourceIdentifier=writer.id)["Events"][az.events_before:]):
        if time.monotonic() > deadline:
            raise DeployError(f"{writer.id} did not fail over within {SITE_WAIT_SECONDS} s of chaos az-down.",
                              'See "securecart-lab logs emulator".')
        time.sleep(0.2)
    lines = [f"Drill: chaos az-down; {writer.id} failed over to its standby behind {writer.endpoint}"]
    url = get_lab(2).provisioner().site_url(ctx.lab_context(get_lab(2)))
    if url is None:
        return lines
    with writer.connect() as conn:
        sku = conn.execute("SELECT sku FROM inventory WHERE stock > 10 ORDER BY stock DESC LIMIT 1").fetchone()[0]
    order = json.dumps({"customerEmail": "drill@example.com", "items": [{"sku": sku, "quantity": 1}],
                        "cardToken": "tok_visa_ok"}).encode()
    deadline = time.monotonic() + SITE_WAIT_SECONDS
    key = f"drill-{time.time_ns()}"  # one order, however many tries the failover window takes
    while True:
        request = urllib.request.Request(f"{url}/api/orders", data=order, method="POST", headers={
            "Content-Type": "application/json", "Idempotency-Key": key})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                placed = json.loads(response.read())["orderId"]
                break
        except (urllib.error.URLError, OSError):  # 502/503 and refused connections while instances recover
            if time.monotonic() > deadline:
                raise DeployError(f"The site at {url} took no order within {SITE_WAIT_SECONDS} s of the failover.",
                                  'See "securecart-lab logs emulator" and the instances\' logs.') from None
            time.sleep(0.2)
    lines.append(f"Drill: the site took order {placed} on {writer.id} after the failover, writer parameter unchanged")
    # The replica follows the new primary asynchronously: wait until it has that order, or the next drill loses it.
    replica = next(r for r in replicas.topology(ctx.endpoint_url).replicas if r.status == "available")
    deadline = time.monotonic() + SITE_WAIT_SECONDS
    while True:
        try:
            with replica.connect() as conn:
                if conn.execute("SELECT 1 FROM orders WHERE id = %s", (placed,)).fetchone():
                    break
        except (LabError, psycopg.Error):  # the replica reconnects to the new primary
            pass
        if time.monotonic() > deadline:
            raise DeployError(f"The replica {replica.id} did not receive order {placed} within {SITE_WAIT_SECONDS} s.",
                              'See "securecart-lab logs postgres".')
        time.sleep(0.1)
    return lines


def _wait_for_site(ctx) -> str:
    """The app instances pick the new writer up within their 5 s cache; wait until the site is healthy again."""
    url = get_lab(2).provisioner().site_url(ctx.lab_context(get_lab(2)))
    if url is None:
        return "Drill: no load balancer to wait for"
    deadline = time.monotonic() + SITE_WAIT_SECONDS
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/orders/none", timeout=5):
                pass
        except urllib.error.HTTPError as exc:
            if exc.code == 404:  # answered by an app instance from the (new) writer
                return f"Drill: the site answers from the new writer ({url})"
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise DeployError(f"The site at {url} did not recover within {SITE_WAIT_SECONDS} s after the failover.",
                      'See "securecart-lab logs emulator" and the instances\' logs.')
