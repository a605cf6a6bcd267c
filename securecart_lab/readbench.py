"""`bench 3`: product-search throughput and p95 latency under a concurrent order-writing load, with every read on
the writer ("primary only") and then with reads on the read replica, plus the replica's lag over both runs.

Each phase runs its own SecureCart app process (the same code the lab's instances run) against the lab's real
writer and replica, so the learner's instances and routing are left as they are. The bench places real orders
(customer bench-<run>@example.com) on the writer: that is the write load.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from securecart_lab import config, paths
from securecart_lab.postgres import topology as replicas
from securecart_lab.config import Settings
from securecart_lab.errors import LabError
from securecart_lab.ports import free_port

SEARCH_TERMS = ("wireless", "steel", "organic", "cotton", "battery", "warranty", "kit", "pro", "mini", "set", "e", "a")
LAG_SAMPLE_SECONDS = 0.25
APP_START_SECONDS = 15.0


@dataclass
class Phase:
    """One run: search latencies (seconds), orders placed, errors, and (elapsed s, replica lag s) samples."""

    name: str
    seconds: float
    latencies: list[float] = field(default_factory=list)
    orders: int = 0
    errors: int = 0
    lag: list[tuple[float, float]] = field(default_factory=list)

    @property
    def searches_per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    @property
    def p95_ms(self) -> float:
        if len(self.latencies) < 2:
            return self.latencies[0] * 1000 if self.latencies else 0.0
        return statistics.quantiles(self.latencies, n=20)[-1] * 1000

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies) * 1000 if self.latencies else 0.0

    @property
    def max_lag_ms(self) -> float:
        return max((lag for _, lag in self.lag), default=0.0) * 1000


@dataclass
class BenchResult:
    writer: str
    replica: str
    readers: int
    writers: int
    phases: list[Phase]


class _App:
    """A SecureCart app process on a free port, stopped on exit."""

    def __init__(self, settings: Settings, writer: replicas.DbInstance, reader: replicas.DbInstance | None, name: str):
        self.port = free_port()
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PORT": str(self.port), "HOST": "127.0.0.1", "INSTANCE_ID": name,
            "DB_HOST": writer.host, "DB_PORT": str(writer.port), "DB_NAME": writer.dbname,
            "DB_USER": config.RDS_SUPERUSER, "DB_PASSWORD": settings.superpassword,
            **({"DB_READER_HOST": reader.host, "DB_READER_PORT": str(reader.port)} if reader else {}),
        }
        log_path = settings.logs_dir / f"bench-{name}.log"
        paths.private_dir(log_path.parent)
        self._log = paths.open_private(log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "-m", "securecart_lab.app"], env=env, stdin=subprocess.DEVNULL,
                                        stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + APP_START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.05)
        self.stop()
        raise LabError(f"The bench's app process did not start within {APP_START_SECONDS:.0f} s.", f"See {log_path}.")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> "_App":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _request(url: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return 0


def _run_phase(phase: Phase, app: _App, writer: replicas.DbInstance, replica: replicas.DbInstance, skus: list[str],
               email: str, readers: int, writers: int) -> None:
    lock = threading.Lock()
    stop = threading.Event()
    started = time.perf_counter()

    def search(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            begin = time.perf_counter()
            status = _request(f"{app.url}/api/products?q={rng.choice(SEARCH_TERMS)}&limit=50")
            took = time.perf_counter() - begin
            with lock:
                if status == 200:
                    phase.latencies.append(took)
                else:
                    phase.errors += 1

    def order(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            items = [{"sku": sku, "quantity": 1} for sku in rng.sample(skus, k=min(3, len(skus)))]
            status = _request(f"{app.url}/api/orders", {"customerEmail": email, "items": items, "cardToken": "tok_visa_ok"})
            with lock:
                if status == 201:
                    phase.orders += 1
                else:
                    phase.errors += 1

    def sample_lag() -> None:
        # replay_lag, as the writer's WAL sender measures it: from a commit's WAL flush to its replay on the standby.
        with replica.connect() as conn:
            slot = conn.execute("SELECT slot_name FROM pg_stat_wal_receiver").fetchone()
        with writer.connect() as conn:
            while not stop.wait(LAG_SAMPLE_SECONDS):
                row = conn.execute("SELECT EXTRACT(EPOCH FROM replay_lag) FROM pg_stat_replication WHERE application_name = %s",
                                   (slot[0] if slot else "",)).fetchone()
                phase.lag.append((time.perf_counter() - started, float(row[0] or 0) if row else 0.0))

    counter = itertools.count()
    threads = [threading.Thread(target=search, args=(next(counter),)) for _ in range(readers)]
    threads += [threading.Thread(target=order, args=(next(counter),)) for _ in range(writers)]
    threads.append(threading.Thread(target=sample_lag))
    for thread in threads:
        thread.start()
    time.sleep(phase.seconds)
    stop.set()
    for thread in threads:
        thread.join()


def run(settings: Settings, seconds: float, readers: int = 8, writers: int = 4) -> BenchResult:
    """Both phases against the lab's writer and its first available read replica."""
    if seconds <= 0:
        raise LabError(f"--seconds must be positive, found {seconds}.", "Try --seconds 10.")
    topo = replicas.topology(settings.endpoint_url)
    writer = topo.require_writer()
    replica = next((r for r in topo.replicas if r.status == "available"), None)
    if replica is None:
        raise LabError(f"bench 3 compares the writer with its read replica, and {writer.id} has none available.",
                       'Deploy one first: securecart-lab deploy 3 (or "securecart-lab solve 3").')
    with writer.connect() as conn:
        skus = [r[0] for r in conn.execute("SELECT sku FROM inventory WHERE stock > 100 ORDER BY sku LIMIT 20")]
    if not skus:
        raise LabError(f"No product with stock in {writer.id}'s database to order.", "Re-deploy lab 2 to reload the seed.")
    email = f"bench-{time.strftime('%Y%m%d%H%M%S')}@example.com"
    result = BenchResult(writer.id, replica.id, readers, writers, [])
    for name, reader in (("primary only", None), ("reads on replica", replica)):
        phase = Phase(name, seconds)
        with _App(settings, writer, reader, name.replace(" ", "-")) as app:
            _run_phase(phase, app, writer, replica, skus, email, readers, writers)
        result.phases.append(phase)
    return result


def chart(result: BenchResult, path: Path) -> Path:
    """A PNG: searches/s and p95 latency per phase, and the replica's lag over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [p.name for p in result.phases]
    colors = ["#888888", "#2a7ab9"]
    fig, (throughput, latency, lag) = plt.subplots(1, 3, figsize=(13, 4))
    throughput.bar(names, [p.searches_per_second for p in result.phases], color=colors)
    throughput.set_title("Product searches per second")
    latency.bar(names, [p.p95_ms for p in result.phases], color=colors)
    latency.set_title("Search latency p95 (ms)")
    for phase, color in zip(result.phases, colors):
        lag.plot([t for t, _ in phase.lag], [v * 1000 for _, v in phase.lag], color=color, label=phase.name)
    lag.set_title(f"{result.replica} replay lag (ms)")
    lag.set_xlabel("seconds into the run")
    lag.legend()
    fig.suptitle(f"SecureCart: {result.readers} searching and {result.writers} ordering clients, writer {result.writer}")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
