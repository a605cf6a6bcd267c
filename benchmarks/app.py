"""App instance start benchmark: a SecureCart app process (what lab 2's user data runs) from exec to its
"listening" line, median of 5. The database is not contacted before the first request, so none is started.

Usage: python benchmarks/app.py [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from securecart_lab.ports import free_port


def start_seconds() -> float:
    port = free_port()
    env = {**os.environ, "PORT": str(port), "INSTANCE_ID": "i-0bench", "DB_HOST": "127.0.0.1", "DB_PORT": str(free_port())}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "securecart_lab.app"], env=env, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        took = time.perf_counter() - started
        if "listening" not in line:
            raise SystemExit(f"the app did not start: {line.strip() or 'no output'}")
        return took
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs = [start_seconds() for _ in range(5)]
    result = {"app_start_median_s": statistics.median(runs), "app_start_max_s": max(runs)}
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:24} {value:.2f}")


if __name__ == "__main__":
    main()
