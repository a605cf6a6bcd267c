"""up, down, status, env, logs."""

from __future__ import annotations

import json
import shlex
from collections import deque

from rich.table import Table

from securecart_lab import aws, config, shellenv, state
from securecart_lab.config import Settings
from securecart_lab.console import console, spinner
from securecart_lab.engines import get_engine
from securecart_lab.errors import LabError
from securecart_lab.labs.registry import all_labs


def up(settings: Settings) -> None:
    engine = get_engine(settings)
    with spinner(f"Starting the {engine.name} engine..."):
        started = engine.up()
    verb = "is up" if started else "is already running"
    console.print(f"[green]The {engine.name} engine {verb}[/]: AWS at {engine.endpoint_url}, "
                  f"PostgreSQL at {settings.host}:{settings.pg_port}.")
    console.print('Next: "securecart-lab start 1", or \'eval "$(securecart-lab env)"\' to use the AWS CLI and psql.')


def down(settings: Settings, purge: bool) -> None:
    engine = get_engine(settings)
    with spinner(f"Stopping the {engine.name} engine..."):
        stopped = engine.down(purge=purge)
    if stopped:
        console.print(f"Stopped the {engine.name} engine." + (" PostgreSQL data removed." if purge else " PostgreSQL data kept."))
    else:
        console.print(f"Nothing was running on the {engine.name} engine." + (" PostgreSQL data removed." if purge else ""))
    console.print("[dim]Your workspace files are untouched.[/]")


def status(settings: Settings, fmt: str) -> int:
    engine = get_engine(settings)
    st = engine.status()
    progress = state.load(settings)
    labs = []
    for lab in all_labs():
        entry = progress.lab(lab.number)
        last = entry.get("last_check") or {}
        labs.append({
            "lab": lab.number,
            "title": lab.title,
            "started": bool(entry.get("started_at")),
            "passed": last.get("passed"),
            "total": last.get("total"),
            "last_check": last.get("at"),
            "deployed_from": entry.get("deployed_from"),
            "checked_solution": last.get("deployed_from") == "solution",
        })
    urls = _lab_urls(engine, st.services) if st.running else {}
    if fmt == "json":
        console.print_json(json.dumps({
            "engine": st.engine,
            "endpoint_url": st.endpoint_url,
            "running": st.running,
            "components": [c.__dict__ for c in st.components],
            "services": st.services,
            "info": st.info,
            "urls": urls,
            "footprint": {"parts": st.footprint, "total_mib": round(sum(p["mib"] for p in st.footprint), 1),
                          **st.footprint_by_lab},
            "labs": labs,
        }))
        return 0
    console.print(f"Engine [bold]{st.engine}[/] ({st.info.get('version', '')}) at {st.endpoint_url}"
                  + (f", time scale {st.info['time_scale']:g}" if st.info.get("time_scale", 1) != 1 else ""))
    comps = Table("Component", "State", "Where", title=None)
    for c in st.components:
        colour = {"running": "green", "stopped": "dim"}.get(c.state, "red")
        comps.add_row(c.name, f"[{colour}]{c.state}[/]", c.detail)
    console.print(comps)
    if st.services:
        console.print("Services: " + ", ".join(
            f"[green]{name}[/]" if s in ("running", "available") else f"[red]{name} ({s})[/]"
            for name, s in sorted(st.services.items())))
    for name, url in urls.items():
        console.print(f"{name}: [link={url}]{url}[/link]")
    if any(part["processes"] for part in st.footprint):
        console.print(_memory_table(st.footprint, st.footprint_by_lab))
    table = Table("Lab", "Title", "Started", "Checks passed", "Last check")
    for row in labs:
        checks = f"{row['passed']}/{row['total']}" if row["total"] else "-"
        if row["checked_solution"]:
            checks += " (solve's solution)"
        table.add_row(str(row["lab"]), row["title"], "yes" if row["started"] else "no", checks, row["last_check"] or "-")
    console.print(table)
    if any(c.state == "crashed" for c in st.components):
        console.print('[red]Something crashed.[/] Run "securecart-lab up" to recover; "securecart-lab logs" shows why.')
    elif not st.running:
        console.print('Not running. Run "securecart-lab up" or "securecart-lab start 1".')
    return 0


def _memory_table(parts: list[dict], by_lab: dict) -> Table:
    """Who costs what: the shared base, each lab with something running, then what no lab made."""
    memory = Table("For", "Part", "Processes", "Memory", "What", title="Memory by lab (proportional set size)")
    groups = [("shared", by_lab.get("shared")), *((f"lab {lab['lab']}", lab) for lab in by_lab.get("labs", [])),
              ("other", by_lab.get("other"))]
    for name, group in groups:
        rows = [(part["part"], str(part["processes"]), f"{part['mib']:.0f} MiB", ", ".join(part["resources"]))
                for part in (group or {}).get("parts", [])]
        if name == "shared":
            rows = [(p, n, m, "AWS APIs; Step Functions executions and ALBs run in it" if p == "emulator" else what)
                    for p, n, m, what in rows]
        rows += [("in the emulator", "-", "-", what) for what in (group or {}).get("in_emulator", [])]
        for index, row in enumerate(rows):
            memory.add_row(f"[bold]{name}[/]" if index == 0 else "", *row, end_section=index == len(rows) - 1)
    memory.add_row("[bold]total[/]", "", str(sum(p["processes"] for p in parts)),
                   f"[bold]{sum(p['mib'] for p in parts):.0f} MiB[/]", "")
    return memory


def _lab_urls(engine, services: dict[str, str]) -> dict[str, str]:
    """URLs learners open: the ALBs of deployed labs (from the ELBv2 API)."""
    if "elbv2" not in engine.capabilities or services.get("elbv2") == "available":
        return {}  # "available": not loaded yet, so no load balancer exists (and asking would load it)
    try:
        lbs = aws.client("elbv2", engine.endpoint_url).describe_load_balancers()["LoadBalancers"]
    except Exception:
        return {}
    urls = {}
    for lb in lbs:
        url = lb.get("DNSName", "")
        urls[f"ALB {lb['LoadBalancerName']}"] = url if url.startswith("http") else f"http://{url}"
    return urls


def env(settings: Settings, superuser: bool = False, account: str = "securecart") -> None:
    engine = get_engine(settings)
    values, extra = shellenv.variables(settings, engine.endpoint_url, engine.pg_env(superuser=superuser),
                                       account=config.account_named(account))
    health = engine.health()
    urls = _lab_urls(engine, health.get("services", {})) if health is not None else {}
    if urls:
        values["SECURECART_SITE_URL"] = next(iter(urls.values()))
    for name, value in values.items():
        print(f"export {name}={shlex.quote(value)}")
    for line in extra:
        print(line)


def logs(settings: Settings, what: str, name: str | None, lines: int) -> None:
    if what in ("emulator", "postgres"):
        if name:
            raise LabError(f"logs {what} takes no name (found {name!r}).", f"Run: securecart-lab logs {what} -n 100")
        path = settings.logs_dir / f"{what}.log"
        if not path.exists():
            raise LabError(f"No {what} log at {path} yet.", 'Run "securecart-lab up" first.')
        with open(path, errors="replace") as fh:
            for line in deque(fh, maxlen=lines):
                print(line, end="")
        return
    if what == "lambda":
        if not name:
            raise LabError("Which function? Expected: securecart-lab logs lambda NAME.",
                           "List functions with: aws --endpoint-url $AWS_ENDPOINT_URL lambda list-functions")
        engine = get_engine(settings)
        engine.require_running()
        client = aws.client("logs", engine.endpoint_url)
        group = f"/aws/lambda/{name}"
        try:
            events = client.filter_log_events(logGroupName=group)["events"]
        except client.exceptions.ResourceNotFoundException:
            raise _no_function_log(engine, name, group) from None
        for event in events[-lines:]:
            print(event["message"].rstrip("\n"))
        return
    if what == "instance":
        for line in instance_log(settings, name, lines):
            print(line, end="")
        return
    raise LabError(f"Unknown log {what!r}: expected emulator, postgres, lambda NAME or instance ID.")


def _no_function_log(engine, name: str, group: str) -> LabError:
    """No log group: a function that has not run yet, or a name that is not a function (say which, and the near miss)."""
    import difflib

    try:
        names = [f["FunctionName"] for f in aws.client("lambda", engine.endpoint_url).list_functions()["Functions"]]
    except Exception:
        names = []
    if name in names:
        return LabError(f"No log group {group} yet: the function {name!r} has not run.", "Invoke it (or run a check), then look again.")
    close = difflib.get_close_matches(name, names, n=1)
    return LabError(f"There is no function {name!r}" + (f": did you mean {close[0]!r}?" if close else "."),
                    "Functions: " + (", ".join(sorted(names)) or "none (start a lab first)"))


def instance_log(settings: Settings, instance_id: str | None, lines: int) -> list[str]:
    """The last lines of an EC2 instance's log: what its user data and app printed (also served by GetConsoleOutput)."""
    directory = settings.logs_dir / "instances"
    logs = sorted(directory.glob("i-*.log"), key=lambda p: p.stat().st_mtime, reverse=True) if directory.is_dir() else []
    listing = ", ".join(p.stem for p in logs[:8]) or "none yet"  # the most recently written first: running instances
    if not instance_id:
        raise LabError(f"Which instance? Expected: securecart-lab logs instance ID. Instance logs: {listing}.",
                       "List instances with: aws ec2 describe-instances --query 'Reservations[].Instances[].InstanceId'")
    path = directory / f"{instance_id}.log"
    if "/" in instance_id or not path.is_file():
        raise LabError(f"No log for instance {instance_id!r} at {path}. Instance logs: {listing}.",
                       "An instance has a log once it has started (its user data starts the SecureCart app).")
    with open(path, errors="replace") as fh:
        return list(deque(fh, maxlen=lines))
