"""check, check --watch, ci."""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import replace
from pathlib import Path

from securecart_lab.checking import Outcome
from securecart_lab.config import Settings
from securecart_lab.console import console, spinner
from securecart_lab.engines import get_engine
from securecart_lab import lock
from securecart_lab.errors import LabError
from securecart_lab.labs import service
from securecart_lab.labs.registry import all_labs, get_lab
from securecart_lab.reporting import LabReport, graded_state, machine, table


def _numbers(lab: str | None, all_labs_flag: bool) -> list[int]:
    if all_labs_flag or lab in (None, "all"):
        if lab not in (None, "all") or (not all_labs_flag and lab is None):
            raise LabError("Which lab? Expected a lab number or --all.", "Example: securecart-lab check 1")
        return [lab.number for lab in all_labs()]
    return [get_lab(lab).number]


def _progress(outcome: Outcome) -> None:
    mark = {"pass": "[green]✓[/]", "fail": "[red]✗[/]", "skip": "[yellow]-[/]"}[outcome.status]
    console.print(f"  {mark} {outcome.title} [dim]({outcome.seconds:.1f}s)[/]")


def writable_output(path: Path | None, option: str) -> None:
    """A report path can be written, said before anything runs (not after every check passed)."""
    if path is None:
        return
    if path.is_dir():
        raise LabError(f"{option} {path} is a folder; a file name was expected.", f"Example: {option} {path / 'report.out'}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"{option} {path} cannot be written: its folder cannot be created ({exc.strerror}).",
                       f"Pick a path in a folder you can write to, e.g. {option} ./{path.name}")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LabError(f"{option} {path} cannot be written (no write permission there).",
                       f"Pick a path in a folder you can write to, e.g. {option} ./{path.name}")


def check(settings: Settings, lab: str | None, all_labs_flag: bool, json_path: Path | None, junit_path: Path | None,
          verbose: bool, only: set[str] | None = None, sign: bool = False) -> int:
    numbers = _numbers(lab, all_labs_flag)
    writable_output(json_path, "--json")
    writable_output(junit_path, "--junit")
    secret = _signing_key(settings, sign, json_path)
    get_engine(settings).require_running()
    info = service.run_info(settings)
    reports: list[LabReport] = []
    for number in numbers:
        lab_obj = get_lab(number)
        if service.workspace_changed(settings, lab_obj):
            console.print(f"[yellow]Your lab {number} files changed since your last deploy;[/] checking what is deployed. "
                          f"Run \"securecart-lab deploy {number}\" first to check your latest edits.")
        console.print(f"Checking lab {number}...")
        report = service.check(settings, number, verbose=verbose, on_outcome=_progress, only=only)
        table.render(report, info, verbose)
        reports.append(report)
    _write(reports, replace(info, graded_state=graded_state(reports)), json_path, junit_path, secret)
    return 0 if all(r.ok for r in reports) else 1


def _signing_key(settings: Settings, sign: bool, json_path: Path | None) -> bytes | None:
    from securecart_lab.grading import signing

    if not signing.wanted(sign):
        return None
    if json_path is None:
        if not sign:
            return None  # SECURECART_GRADING_KEY is set but no JSON report is written: nothing to sign
        raise LabError("--sign signs the JSON report, and none was asked for.",
                       "Example: securecart-lab check 1 --json report.json --sign")
    return signing.key(settings)


def _write(reports, info, json_path, junit_path, secret: bytes | None = None) -> None:
    if json_path:
        if secret:
            from securecart_lab.grading import signing

            signing.write_signed(json_path, machine.to_json(reports, info), secret)
            console.print(f"JSON report: {json_path} (signed: \"securecart-lab verify {json_path}\" tells if it was edited)")
        else:
            machine.write_json(json_path, reports, info)
            console.print(f"JSON report: {json_path}")
    if junit_path:
        machine.write_junit(junit_path, reports, info)
        console.print(f"JUnit report: {junit_path}")


def watch(settings: Settings, lab: str | None, verbose: bool) -> None:
    """Deploy and check now, then again after every save, until Ctrl-C."""
    from watchfiles import watch as watch_files

    if lab is None:
        raise LabError("--watch needs a lab number.", "Example: securecart-lab check 1 --watch")
    number = get_lab(lab).number
    folder = settings.workspace / f"lab{number:02d}"
    if not folder.is_dir():
        raise LabError(f"No workspace for lab {number} at {folder}.", f'Run "securecart-lab start {number}" first.')
    info = service.run_info(settings)

    def round_trip() -> None:
        try:
            with lock.environment(settings, "check --watch", wait=True):
                with spinner("Deploying..."):
                    service.deploy(settings, number)
                table.render(service.check(settings, number, verbose=verbose), info, verbose)
        except LabError as exc:  # a bad save is the learner's to fix: say so and keep watching
            console.print(f"[bold red]Error:[/] {exc.message}" + (f"\n[dim]{exc.hint}[/]" if exc.hint else ""))
        except OSError as exc:
            console.print(f"[bold red]Error:[/] {exc.filename or ''}: {exc.strerror or exc}")
        console.print(f"[dim]Watching {folder} — save a file to re-check, Ctrl-C to stop.[/]")

    round_trip()
    try:
        for _ in watch_files(folder, watch_filter=lambda change, path: "/.backups/" not in path and "/solution/" not in path):
            round_trip()
    except KeyboardInterrupt:
        console.print("Stopped watching.")


def ci(settings: Settings, lab: str | None, junit_path: Path, json_path: Path | None) -> int:
    """Headless: up, then start + solve + check each lab; tear down what this run started. It works in its own
    workspace and progress file (under SECURECART_HOME/ci), never the learner's."""
    numbers = [get_lab(lab).number] if lab is not None else [l.number for l in all_labs()]
    writable_output(junit_path, "--junit")
    writable_output(json_path, "--json")
    settings = replace(settings, workspace=settings.home / "ci" / "workspace", state_name="ci-state.json")
    shutil.rmtree(settings.workspace, ignore_errors=True)
    engine = get_engine(settings)
    started_here = False
    reports: list[LabReport] = []
    began = time.perf_counter()
    try:
        with spinner(f"Starting the {engine.name} engine..."):
            started_here = engine.up()  # what up found running (however slow to answer) is never stopped
        info = service.run_info(settings)
        for number in numbers:
            console.print(f"[bold]Lab {number}[/]: start, solve, check")
            service.start(settings, number, with_prereqs=True)
            service.solve(settings, number)
            report = service.check(settings, number, on_outcome=_progress)
            table.render(report, info)
            reports.append(report)
        _write(reports, replace(info, graded_state=graded_state(reports)), json_path, junit_path)
    finally:
        if started_here:
            engine.down()
    ok = all(r.ok for r in reports) and len(reports) == len(numbers)
    console.print(f"[bold {'green' if ok else 'red'}]CI {'passed' if ok else 'failed'}[/] in {time.perf_counter() - began:.1f}s.")
    return 0 if ok else 1
