"""The check table learners see."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from securecart_lab.console import console
from securecart_lab.reporting import LabReport, RunInfo

MARKS = {"pass": ("PASS", "green"), "fail": ("FAIL", "red"), "skip": ("SKIP", "yellow")}


def render(report: LabReport, info: RunInfo, verbose: bool = False) -> None:
    table = Table(title=f"Lab {report.lab}: {report.title}", title_justify="left", expand=False)
    table.add_column("", no_wrap=True)
    table.add_column("Check")
    table.add_column("Points", justify="right")
    table.add_column("Result", overflow="fold")  # an ARN longer than the column is wrapped, never cut
    for o in report.outcomes:
        mark, colour = MARKS[o.status]
        detail = Text(o.message or "")
        if o.status == "fail":
            if o.expected is not None:
                detail.append(f"\nexpected: {o.expected}", style="dim")
            if o.actual is not None:
                detail.append(f"\nfound:    {o.actual}", style="dim")
            detail.append(f"\nhint: {o.hint}", style="cyan")
            if verbose and o.more:
                detail.append(f"\n{o.more}", style="cyan")
        elif verbose and o.actual:
            detail.append(f" ({o.actual})", style="dim")
        table.add_row(Text(mark, style=f"bold {colour}"), f"{o.title}\n[dim]{o.id} · {o.seconds:.1f}s[/]",
                      f"{o.earned}/{o.points}", detail)
    console.print(table)
    colour = "green" if report.ok else "red"
    console.print(
        f"[bold {colour}]Score {report.earned}/{report.points}[/] · {report.passed} passed, {report.failed} failed, "
        f"{report.skipped} skipped · {report.seconds:.1f}s on the {info.engine} engine"
        + (f" (time scale {info.time_scale:g})" if info.time_scale != 1 else "")
        + (" · IAM off" if info.iam.startswith("off") else "")
    )
    if report.partial:
        console.print(f"[dim]Some checks only: not recorded as your progress (that is the last full run of "
                      f"\"securecart-lab check {report.lab}\").[/]")
    if report.deployed_from == "solution":
        console.print(f"[yellow]This is the reference solution that \"securecart-lab solve {report.lab}\" deployed, "
                      f"not your files.[/] Run \"securecart-lab deploy {report.lab}\" to check your own work.")
    if report.failed and not verbose:
        console.print(f"[dim]More help: securecart-lab check {report.lab} --verbose[/]")
    if report.failed and verbose:
        _step_hints(report)


def _step_hints(report: LabReport) -> None:
    """The staged hints (lab.toml) of each step with a failing check, in order."""
    from securecart_lab.errors import LabError
    from securecart_lab.labs.registry import get_lab

    try:
        steps = get_lab(report.lab).steps
    except LabError:
        return
    failing = {o.id for o in report.outcomes if o.status == "fail"}
    for number, step in enumerate(steps, 1):
        if step.hints and failing & set(step.checks):
            console.print(f"[bold]Step {number}: {step.title}[/] — hints, from a nudge to nearly the answer:")
            for index, hint in enumerate(step.hints, 1):
                console.print(f"  [cyan]{index}.[/] {hint}")
