"""The reference failover runbook: the README's step 3, as the API calls `solve 3` makes.

    securecart-lab chaos primary-down
    aws rds promote-read-replica --db-instance-identifier securecart-db-replica
    aws ssm put-parameter --name /securecart/db/writer-endpoint --type String --overwrite --value HOST:PORT
    aws rds create-db-instance-read-replica --db-instance-identifier securecart-db-replica2 \
        --source-db-instance-identifier securecart-db-replica
    aws ssm put-parameter --name /securecart/db/reader-endpoint --type String --overwrite --value HOST2:PORT2
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request

from securecart_lab.postgres import topology as replicas
from securecart_lab.app.config import READER_PARAMETER, WRITER_PARAMETER, AppConfig
from securecart_lab.errors import DeployError
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
        if topo.replicas:
            return [f"Failover drill already done: the writer is {writer.id}, with replica {topo.replicas[0].id}"]
        # The failover happened in this environment (by hand, perhaps) but the new writer has no replica yet.
        standby, lines = topo.instances[writer.id], [f"Drill: the writer is already {writer.id}, promoted after the failure"]
    else:
        standby = next((r for r in topo.replicas if r.status == "available"), None)
        if standby is None:
            raise DeployError(f"The writer {writer.id} has no available read replica to fail over to.",
                              "Deploy replica.yaml first (securecart-lab deploy 3).")
        outage = drill.primary_down(settings)
        lines = [f"Drill: stopped {outage.instance}'s server ({outage.host}:{outage.port}) with {len(outage.orders)} orders confirmed"]
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
