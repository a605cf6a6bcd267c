"""Memory the local engine's processes use: the emulator, its Lambda workers, app instances, PostgreSQL servers; and
which lab each of them serves.

Memory is the proportional set size (a page shared by n processes counts 1/n in each), so the parts add up to what
the environment costs the machine; where the kernel does not say, the resident set size.

Which lab a process serves comes from what the kit knows, never from a process's text: the emulator says which
process or server runs for which resource (GET /_securecart/processes: a worker's function, an app process's EC2
instance and its Auto Scaling group, a DB instance's data folders and the instance a read replica copies) and what
each stack holds (as ListStackResources lists it); a lab's manifest names the stacks and functions it creates
(lab.toml `[resources]`). A read replica made by hand counts for its source's lab. The emulator reads all that in its
own process, so `status` builds no AWS client (building one costs 50 ms and more).
The emulator process, the primary PostgreSQL server and the spare Lambda worker are the shared base; what no lab
created (a function made by hand) is "other". Step Functions executions and load balancers run inside the emulator
process: their memory is the emulator's.
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil

from securecart_lab.config import ACCOUNT_ID, ACCOUNTS

LAMBDA_WORKER = "lambda_worker.py"
APP_INSTANCE = "securecart_lab.emulator.bridges.instance"
PRIMARY = "primary"  # the PostgreSQL folder of the kit's own server
PROCESSES_PATH = "/_securecart/processes"  # emulator/processes.py
_ACCOUNT_NAMES = {account: name for name, account in ACCOUNTS.items()}  # a function elsewhere reads "security:NAME"
STANDBY = "~standby"  # postgres/instances.py: a Multi-AZ instance's standby folder


@dataclass(frozen=True)
class Usage:
    part: str
    processes: int
    mib: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Entry:
    """Processes that run for one thing (one function's workers, one instance's app, one DB instance's servers)."""

    part: str
    resource: str
    key: tuple | None  # what decides its lab: ("function", account, name), ("instance", id), ("db", id); None: shared
    processes: list[psutil.Process] = field(default_factory=list)
    mib: float = 0.0


def _pss(process: psutil.Process) -> int:
    try:
        try:
            return process.memory_full_info().pss
        except (psutil.AccessDenied, AttributeError):
            return process.memory_info().rss
    except psutil.NoSuchProcess:
        return 0


def _mib(processes: list[psutil.Process]) -> float:
    return sum(_pss(process) for process in processes) / 2**20


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _cmdline(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


def _registry(endpoint_url: str | None) -> dict:
    """The emulator's answer to "what runs for which resource", or an empty one when it cannot say."""
    if not endpoint_url:
        return {}
    try:
        with urllib.request.urlopen(endpoint_url + PROCESSES_PATH, timeout=3) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return {}


def _function(arn: str) -> tuple[str, str, str]:
    """("function", account, name) of arn:aws:lambda:REGION:ACCOUNT:function:NAME."""
    parts = arn.split(":")
    return ("function", parts[4], parts[6]) if len(parts) >= 7 else ("function", "", arn)


def _entries(tree: list[psutil.Process], postgres_pid_files: list[Path], registry: dict) -> list[_Entry]:
    """`tree`: the emulator's process and its descendants."""
    workers = {item["pid"]: _function(item["function_arn"]) for item in registry.get("lambda_workers", [])}
    spares = set(registry.get("spare_workers", []))
    instances = {item["pid"]: item["instance_id"] for item in registry.get("instances", [])}
    folders = {Path(folder).name: item["db_instance_id"]
               for item in registry.get("databases", []) for folder in item["data_dirs"]}
    entries: dict[tuple, _Entry] = {}

    def add(part: str, resource: str, key: tuple | None, processes: list[psutil.Process]) -> None:
        entry = entries.setdefault((part, resource), _Entry(part, resource, key))
        entry.processes += processes

    children: dict[int, list[psutil.Process]] = defaultdict(list)
    for process in tree[1:]:
        try:
            children[process.ppid()].append(process)
        except psutil.NoSuchProcess:
            pass

    def descendants(process: psutil.Process) -> list[psutil.Process]:
        return [process, *(d for child in children[process.pid] for d in descendants(child))]

    # A worker's or an app's own children (a handler's subprocess) count with it.
    groups = {p.pid: descendants(p) for p in tree[1:] if p.pid in workers or p.pid in spares or p.pid in instances}
    inside = {child.pid for group in groups.values() for child in group}
    for index, process in enumerate(tree):
        if process.pid in groups:
            if process.pid in workers:
                key = workers[process.pid]
                add("Lambda workers", key[2] if key[1] == ACCOUNT_ID else f"{_ACCOUNT_NAMES.get(key[1], key[1])}:{key[2]}",
                    key, groups[process.pid])
            elif process.pid in instances:
                add("app instances", instances[process.pid], ("instance", instances[process.pid]), groups[process.pid])
            else:
                add("Lambda workers", "spare worker", None, groups[process.pid])
            continue
        if process.pid in inside:
            continue
        command = _cmdline(process) if index else ""
        if LAMBDA_WORKER in command:  # still starting: the emulator does not name it yet
            add("Lambda workers", "a worker starting", ("unknown",), [process])
        elif APP_INSTANCE in command:
            add("app instances", "an instance starting", ("unknown",), [process])
        else:
            add("emulator", "emulator", None, [process])
    for pid_file in postgres_pid_files:
        try:
            servers = _tree(int(pid_file.read_text().split("\n", 1)[0]))
        except (OSError, ValueError):
            continue
        folder = pid_file.parent.name
        if folder == PRIMARY:
            add("PostgreSQL", "primary", None, servers)
        elif folder in folders:
            standby = " (Multi-AZ standby)" if folder.endswith(STANDBY) else ""
            add("PostgreSQL", folders[folder] + standby, ("db", folders[folder]), servers)
        else:  # a server the emulator does not know (it is not running, or the folder was left behind)
            add("PostgreSQL", folder, ("unknown",), servers)
    for entry in entries.values():
        entry.mib = _mib(entry.processes)  # read once: the parts and the labs add up to the same total
    return list(entries.values())


def _parts(entries: list[_Entry]) -> list[Usage]:
    """Memory per part: emulator, Lambda workers, app instances, PostgreSQL (every server with a pid file: the
    primary and the labs' DB instances, standbys and replicas)."""
    parts: dict[str, list[_Entry]] = {"emulator": [], "Lambda workers": [], "app instances": [], "PostgreSQL": []}
    for entry in entries:
        parts[entry.part].append(entry)
    return [Usage(part, sum(len(e.processes) for e in group), round(sum(e.mib for e in group), 1))
            for part, group in parts.items()]


def _owners(registry: dict) -> tuple[dict, dict]:
    """({key: lab number}, {lab number: [load balancer names]}) from the labs' manifests and, for what they do not
    name, the resources of the labs' stacks."""
    from securecart_lab.labs.registry import all_labs

    owner: dict[tuple, int] = {}
    alb_owner: dict[int, list[str]] = defaultdict(list)
    stacks = {(stack["account"], stack["name"]): stack["resources"] for stack in registry.get("stacks", [])}
    balancers = {item["arn"] for item in registry.get("load_balancers", [])}
    group_of = {item["instance_id"]: item.get("group") for item in registry.get("instances", [])}
    for lab in all_labs():
        for account, name in lab.functions:
            owner[("function", account, name)] = lab.number
        for account, stack in lab.stacks:
            for resource in stacks.get((account, stack), []):
                kind, physical = resource["type"], resource["physical_id"] or ""
                if kind == "AWS::Lambda::Function":
                    owner[("function", account, physical.rsplit(":", 1)[-1])] = lab.number
                elif kind == "AWS::EC2::Instance":
                    owner[("instance", physical)] = lab.number
                elif kind == "AWS::AutoScaling::AutoScalingGroup":
                    owner.update({("instance", i): lab.number for i, group in group_of.items() if group == physical})
                elif kind == "AWS::RDS::DBInstance":
                    owner[("db", physical)] = lab.number
                elif kind == "AWS::ElasticLoadBalancingV2::LoadBalancer" and physical in balancers:
                    alb_owner[lab.number].append(physical.split("/")[-2])
    # A read replica made by hand counts for the lab of the instance it copies (or of that one's source).
    source = {item["db_instance_id"]: item.get("source") for item in registry.get("databases", [])}
    for instance in source:
        seen, current = {instance}, source[instance]
        while ("db", instance) not in owner and current and current not in seen:
            if ("db", current) in owner:
                owner[("db", instance)] = owner[("db", current)]
            seen.add(current)
            current = source.get(current)
    return owner, alb_owner


def _group(entries: list[_Entry]) -> dict:
    parts: dict[str, list[_Entry]] = defaultdict(list)
    for entry in entries:
        parts[entry.part].append(entry)
    rows = [{"part": part, "processes": sum(len(e.processes) for e in group),
             "mib": round(sum(e.mib for e in group), 1), "resources": sorted({e.resource for e in group}),
             "pids": sorted(p.pid for e in group for p in e.processes)}
            for part, group in parts.items()]
    return {"processes": sum(r["processes"] for r in rows), "mib": round(sum(r["mib"] for r in rows), 1), "parts": rows}


def measure(emulator_pid: int | None, postgres_pid_files: list[Path], endpoint_url: str | None) -> tuple[list[Usage], dict]:
    """(memory per part, memory per lab): {"shared": {...}, "labs": [{"lab", "title", "processes", "mib", "parts",
    "in_emulator"}], "other": {...}}, each with its parts [{"part", "processes", "mib", "resources", "pids"}]."""
    from securecart_lab.labs.registry import all_labs

    tree = _tree(emulator_pid) if emulator_pid else []
    # Asked after the processes are listed: a process the emulator does not name is one still starting.
    registry = _registry(endpoint_url) if tree else {}
    entries = _entries(tree, postgres_pid_files, registry)
    owner, balancers = _owners(registry)
    by_lab: dict[int, list[_Entry]] = defaultdict(list)
    shared, other = [], []
    for entry in entries:
        if entry.key is None:
            shared.append(entry)
        elif entry.key in owner:
            by_lab[owner[entry.key]].append(entry)
        else:
            other.append(entry)
    labs = [{"lab": lab.number, "title": lab.title, **_group(by_lab.get(lab.number, [])),
             "in_emulator": [f"ALB {name}" for name in sorted(balancers.get(lab.number, []))]}
            for lab in all_labs()]
    return _parts(entries), {"shared": _group(shared), "labs": labs, "other": _group(other)}
