"""RDS footprint benchmark: `up` on a fresh home, then lab 2's reference solution deployed (`deploy 2`: its
database is a Multi-AZ RDS instance), with the time of each and the memory of the environment afterwards; then the
time of one CreateDBInstance, single-AZ and Multi-AZ.

Runs the real local engine in a temporary SECURECART_HOME on free ports.
Usage: python benchmarks/rds.py [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import time

from _harness import scratch
from securecart_lab import aws
from securecart_lab.engines.local import LocalEngine
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.registry import get_lab


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    home, settings = scratch()
    engine = LocalEngine(settings)
    result: dict[str, float] = {}
    try:
        started = time.perf_counter()
        engine.up()
        result["up_s"] = time.perf_counter() - started
        result["after_up_mib"] = sum(part["mib"] for part in engine.status().footprint)
        lab = get_lab(2)
        folder = home / "template"
        folder.mkdir()
        shutil.copy(lab.solution_dir / "template.yaml", folder / "template.yaml")
        started = time.perf_counter()
        lab.provisioner().deploy(LabContext(settings, engine, lab), folder)
        result["deploy2_s"] = time.perf_counter() - started
        time.sleep(2)  # let the app instances settle
        footprint = engine.status().footprint
        result["after_deploy2_mib"] = sum(part["mib"] for part in footprint)
        for part in footprint:
            result[f"after_deploy2_{part['part'].replace(' ', '_')}_mib"] = part["mib"]
            result[f"after_deploy2_{part['part'].replace(' ', '_')}_processes"] = part["processes"]
        rds = aws.client("rds", settings.endpoint_url)
        for label, multi_az in (("create_db_instance_s", False), ("create_db_instance_multi_az_s", True)):
            ident = f"bench-{label.replace('_', '-')[:20]}"
            started = time.perf_counter()
            rds.create_db_instance(DBInstanceIdentifier=ident, Engine="postgres", DBInstanceClass="db.t3.micro",
                                   AllocatedStorage=20, DBName="bench", MasterUsername="bench_admin",
                                   MasterUserPassword="bench-secret", MultiAZ=multi_az)
            result[label] = time.perf_counter() - started
            rds.delete_db_instance(DBInstanceIdentifier=ident, SkipFinalSnapshot=True)
    finally:
        engine.down(purge=True)
        shutil.rmtree(home, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key:40} {value:8.2f}")


if __name__ == "__main__":
    main()
