"""grade, verify."""

from __future__ import annotations

import json
import os
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from securecart_lab.config import Settings
from securecart_lab.console import console
from securecart_lab.errors import LabError
from securecart_lab.grading import gradebook, runner, signing, submissions
from securecart_lab.engines import get_engine
from securecart_lab.labs.registry import get_lab
from securecart_lab.reporting import GRADED_FRESH

COLOURS = {"passed": "green", "failed": "yellow", "deploy-error": "red", "missing": "red", "error": "red",
           "interrupted": "dim"}


def grade(settings: Settings, paths: list[Path], lab: str | None, all_labs: bool, jobs: int | None, out: Path,
          sign: bool, init: bool = False) -> int:
    if init:
        init_workflow(paths[0] if paths else Path("."), lab)
        return 0
    if lab and all_labs:
        raise LabError("Give either --lab N or --all, not both.", "Example: securecart-lab grade submissions/ --lab 1")
    if not paths:
        raise LabError("Which submissions? Expected one or more folders or archives.",
                       "Example: securecart-lab grade submissions/ --lab 1")
    labs = [get_lab(lab).number] if lab else None
    subs = submissions.discover(paths)
    _writable_folder(out)
    secret = signing.key(settings) if signing.wanted(sign) else None
    chosen = jobs or runner.default_jobs()
    console.print(f"Grading {len(subs)} submission{'s' * (len(subs) != 1)}, {chosen} at a time"
                  + ("" if jobs else f" (default: cores and memory allow {chosen})")
                  + f", each in a fresh environment. Reports: {out}/")
    progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    overall = progress.add_task("Grading", total=len(subs))
    tasks: dict[str, int] = {}

    def on_event(kind: str, sub_id: str, text: str) -> None:
        if kind == "start":
            tasks[sub_id] = progress.add_task(f"  {sub_id}: {text}", total=None)
        elif kind == "phase" and sub_id in tasks:
            progress.update(tasks[sub_id], description=f"  {sub_id}: {text}")
        elif kind == "done":
            if sub_id in tasks:
                progress.remove_task(tasks.pop(sub_id))
            progress.advance(overall)
            progress.console.print(f"  [{COLOURS.get(text, 'white')}]{text}[/] {sub_id}")

    grader = runner.Grader(settings, subs, labs, all_labs, chosen, on_event, logs_dir=out / "logs")
    interrupted = False
    with progress:
        try:
            rows = grader.run()
        except KeyboardInterrupt:
            rows, interrupted = grader.rows, True
    run = _run_description(settings, rows, labs, all_labs, chosen, secret is not None)
    for row in rows:
        _write_reports(out, row, secret)
    csv_path, json_path = gradebook.write(out, rows, run)
    gradebook.write_markdown(out, rows)
    if secret:
        signing.write_signed(json_path, json.loads(json_path.read_text(encoding="utf-8")), secret)
    render_summary(rows)
    console.print(f"Gradebook: {csv_path} and {json_path}; per-learner JSON and JUnit in {out / 'reports'}/, "
                  f"grading logs in {out / 'logs'}/"
                  + (" (JSON signed: verify with \"securecart-lab verify FILE\")." if secret else "."))
    if interrupted:
        raise KeyboardInterrupt
    return 0 if rows and all(row.status == "passed" for row in rows) else 1


def _writable_folder(out: Path) -> None:
    """Said before grading starts, not after every submission was graded."""
    if out.exists() and not out.is_dir():
        raise LabError(f"--out {out} is a file; a folder was expected.", "Example: --out grades")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise LabError(f"--out {out} cannot be created: {exc.strerror}.", "Pick a folder you can write to, e.g. --out ./grades")
    if not os.access(out, os.W_OK | os.X_OK):
        raise LabError(f"--out {out} cannot be written (no write permission there).",
                       "Pick a folder you can write to, e.g. --out ./grades")


def _run_description(settings: Settings, rows: list[runner.Row], labs, all_labs: bool, jobs: int, sign: bool) -> dict:
    graded = next((row.report["run"] for row in rows if row.report), None)
    engine = get_engine(settings)  # named only: the instructor's own engine is never touched
    return {
        "graded_state": GRADED_FRESH,
        "engine": engine.name,
        # What the environments reported (asking the engine here would import moto for nothing).
        "engine_version": graded["engine_version"] if graded else engine.version(),
        "time_scale": settings.time_scale,
        "iam": graded["iam"] if graded else settings.iam,
        "labs": labs or ("all" if all_labs else "contained"),
        "jobs": jobs,
        "signed": sign,
    }


def _write_reports(out: Path, row: runner.Row, secret: bytes | None) -> None:
    runner.write_learner_reports(out, row)
    if secret and row.report is not None:
        path = out / "reports" / f"{row.id}.json"
        signing.write_signed(path, json.loads(path.read_text(encoding="utf-8")), secret)


def render_summary(rows: list[runner.Row]) -> None:
    numbers = gradebook.lab_numbers(rows)
    table = Table("Learner", *(f"Lab {n}" for n in numbers), "Total", "Status", "Reason", "Time", title="Gradebook",
                  title_justify="left")
    for row in sorted(rows, key=lambda r: r.id):
        cells = [f"{row.labs[n]['earned']}/{row.labs[n]['points']}" if n in row.labs else "-" for n in numbers]
        colour = COLOURS.get(row.status, "white")
        table.add_row(row.id, *cells, f"{row.earned}/{row.points}", f"[{colour}]{row.status}[/]", row.reason or "",
                      f"{row.seconds:.0f}s")
    console.print(table)
    summary = gradebook.summarize(rows)
    dist = Table("Score", "Learners", "", title="Score distribution", title_justify="left")
    for band, count in summary.distribution:
        dist.add_row(band, str(count), "█" * count)
    console.print(dist)
    if summary.most_failed:
        failed = Table("Check", "Learners who failed it", title="Most-failed checks (what to re-teach)",
                       title_justify="left")
        for check_id, count in summary.most_failed:
            failed.add_row(check_id, f"{count} of {summary.learners}")
        console.print(failed)
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.by_status.items()))
    mean = f"; mean score {summary.mean_percent:g}%" if summary.mean_percent is not None else ""
    console.print(f"{summary.learners} learner{'s' * (summary.learners != 1)}: {statuses}{mean}.")


WORKFLOW = Path(__file__).resolve().parents[1] / "grading" / "github-workflow.yml"
WORKFLOW_PATH = Path(".github") / "workflows" / "securecart-grade.yml"


def init_workflow(repo: Path, lab: str | None) -> None:
    """Write the GitHub Actions workflow that grades a learner's repository on every push (never over another file)."""
    text = WORKFLOW.read_text(encoding="utf-8")
    if lab:
        number = str(get_lab(lab).number)
        text = text.replace("inputs.lab || '1'", f"inputs.lab || '{number}'").replace('default: "1"', f'default: "{number}"')
    target = repo / WORKFLOW_PATH
    if target.exists():
        if target.read_text(encoding="utf-8", errors="replace") == text:
            console.print(f"{target} is already up to date.")
            return
        raise LabError(f"{target} already exists and differs from the kit's workflow; it was left as it is.",
                       "Move it away and run again to get the kit's version.")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    console.print(f"Wrote {target}: on every push, GitHub Actions grades this repository's lab "
                  f"{lab or 1}, uploads the reports and shows the score in the job summary. Commit and push it.")


def verify(settings: Settings, report: Path) -> None:
    key_id, document = signing.verify(report, signing.key(settings, create=False))
    console.print(f"[green]{report}: signature valid[/] (HMAC-SHA256, key {key_id}); it is unchanged since it was signed.")
    run = document.get("run") if isinstance(document.get("run"), dict) else {}
    labs = [lab for lab in document.get("labs", []) if isinstance(lab, dict)] if isinstance(document.get("labs"), list) else []
    if run.get("graded_state"):
        scores = ", ".join(f"lab {lab.get('lab')} {lab.get('earned')}/{lab.get('points')}" for lab in labs)
        console.print(f"Graded state: {run['graded_state']}" + (f"; {scores}" if scores else "") + ".")
