"""GET /_securecart/processes: which process or server the emulator runs for which AWS resource.

`securecart-lab status` reads it to say what each lab costs (securecart_lab/footprint.py): a Lambda worker's pid
and function, an EC2 instance's app process, the PostgreSQL data folders of each DB instance, the load balancers
served inside the emulator. Only bridges already loaded are read: a service nobody used yet has nothing running,
and asking must not load it.
"""

from __future__ import annotations

import sys
from typing import Any

PATH = "/_securecart/processes"


def _loaded(name: str):
    return sys.modules.get(f"securecart_lab.emulator.{name}")


def document() -> dict[str, Any]:
    """{"lambda_workers": [{pid, function_arn}], "spare_workers": [pid], "instances": [{pid, instance_id}],
    "databases": [{db_instance_id, data_dirs}], "load_balancers": [{arn, port}]} (pids of processes alive now)."""
    doc: dict[str, Any] = {"lambda_workers": [], "spare_workers": [], "instances": [], "databases": [],
                           "load_balancers": []}
    if runtime := _loaded("lambda_runtime"):
        pool = runtime._pool
        with pool.lock:
            workers = [worker for group in pool.workers.values() for worker in group]
            spare = pool.spare
        doc["lambda_workers"] = [{"pid": w.pid, "function_arn": w.key[0]} for w in workers if w.alive()]
        if spare is not None and spare.poll() is None:
            doc["spare_workers"] = [spare.pid]
    if ec2 := _loaded("bridges.ec2"):
        doc["instances"] = [{"pid": app.process.pid, "instance_id": instance_id}
                            for instance_id, app in ec2.app_processes().items() if app.alive()]
    if rds := _loaded("bridges.rds"):
        from securecart_lab.postgres.instances import STANDBY

        with rds._lock:
            handles = list(rds.registry.values())
        for handle in handles:
            datadir = handle.server.datadir
            # A Multi-AZ instance's standby server (either folder is the primary after a failover).
            dirs = {str(datadir), str(datadir.with_name(datadir.name.removesuffix(STANDBY) + STANDBY))}
            doc["databases"].append({"db_instance_id": handle.instance_id, "data_dirs": sorted(dirs)})
    if elbv2 := _loaded("bridges.elbv2"):
        with elbv2._lock:
            doc["load_balancers"] = [{"arn": arn, "port": lb.port} for arn, lb in elbv2._balancers.items()]
    return doc
