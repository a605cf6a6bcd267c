"""list, start, deploy, solve, reset."""

from __future__ import annotations

from rich.markup import escape
from rich.panel import Panel
from rich.table import Table

from securecart_lab.config import Settings
from securecart_lab.console import console, is_interactive, spinner
from securecart_lab.labs import service, stacks
from securecart_lab.labs.registry import all_labs


def list_labs(settings: Settings) -> None:
    table = Table("Lab", "Title", "Minutes", "Services")
    for lab in all_labs():
        table.add_row(str(lab.number), f"[bold]{lab.title}[/]\n[dim]{lab.summary}[/]", str(lab.estimated_minutes),
                      ", ".join(lab.services))
    console.print(table)
    console.print('Start one with: securecart-lab start 1')


def _confirm(question: str) -> bool:
    if not is_interactive():
        return False  # never prompt without a terminal
    return console.input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def start(settings: Settings, number: str, with_prereqs: bool) -> None:
    with spinner(f"Starting lab {number}..."):
        result = service.start(settings, number, with_prereqs=with_prereqs, confirm=_confirm)
    lab = result.lab
    body = [f"[bold]{lab.summary}[/]", "", "You will:"]
    body += [f"  • {o}" for o in lab.objectives]
    console.print(Panel("\n".join(body), title=f"Lab {lab.number}: {lab.title}", subtitle=f"~{lab.estimated_minutes} min"),
                  soft_wrap=False)
    for number in result.prerequisites:
        console.print(f"Deployed lab {number}'s reference solution, which this lab builds on.")
    for number in result.restored:
        console.print(f"Deployed your lab {number} files again, which this lab builds on.")
    for path in result.created:
        console.print(f"Created [cyan]{path}[/]")
    if not result.created:
        console.print(f"Your files in [cyan]{result.workspace}[/] were kept as they are.")
    if result.deploy_error:
        console.print(f"[yellow]Your workspace was not deployed:[/] {result.deploy_error.message}")
    console.print()
    instructions = result.instructions
    console.print(f"Instructions: [cyan]{instructions.path}[/]"
                  + (" (updated: this kit's README for the lab has changed)" if instructions.refreshed else ""))
    if instructions.newer is not None:
        console.print(f"[yellow]This kit's README for lab {lab.number} has changed; yours has your edits, so the new one "
                      f"is beside it:[/] [cyan]{instructions.newer}[/]")
    console.print("Next steps:")
    console.print(f"  1. Edit the files in {result.workspace}/")
    console.print(f"  2. securecart-lab deploy {lab.number}")
    console.print(f"  3. securecart-lab check {lab.number}     (or: check {lab.number} --watch)")


NOT_SERVING = "the site is not serving yet"  # lab 2's deploy says so when no target is healthy


def deploy(settings: Settings, number: str, preview: bool = False, parameters: list[str] | None = None) -> None:
    with spinner(f"{'Previewing' if preview else 'Deploying'} lab {number}..."):
        lab, applied = service.deploy(settings, number, preview=preview, parameters=parameters)
    warnings = [line for line in applied if line.startswith("Warning:")]  # what was deployed does not work yet
    for line in applied:
        yellow = line in warnings or line.startswith(stacks.TEMPLATE_WARNING)
        console.print(f"  [yellow]{escape(line)}[/]" if yellow else f"  {escape(line)}", highlight=False)
    if preview:
        console.print(f"Nothing was changed. Apply it with: securecart-lab deploy {lab.number}")
        return
    if any(NOT_SERVING in line for line in warnings):
        console.print(f"[yellow]Deployed lab {lab.number}, but the site is not serving yet (see the warning above).[/] "
                      f"Fix that, deploy again, then: securecart-lab check {lab.number}")
    else:
        console.print(f"[green]Deployed lab {lab.number}.[/] Next: securecart-lab check {lab.number}")


def solve(settings: Settings, number: str) -> None:
    with spinner(f"Deploying lab {number}'s reference solution..."):
        result = service.solve(settings, number)
    lab = result.lab
    for line in result.applied:
        console.print(f"  {line}", markup=False, highlight=False)
    console.print(f"[green]Deployed the reference solution of lab {lab.number}.[/] A copy to read is in [cyan]{result.copy}[/].")
    if result.backup:
        console.print(f"You had edited files in that copy: they are backed up in [cyan]{result.backup}[/].")
    console.print(f"Your own files were not touched; \"securecart-lab deploy {lab.number}\" puts them back in place. "
                  "Until then, checks score the reference solution and your progress says so.")


def reset(settings: Settings, number: str, environment: bool = False) -> None:
    if environment:
        with spinner(f"Removing what lab {number} made and deploying its starter..."):
            lab, saved, applied = service.reset(settings, number, environment=True)
        for line in applied:
            console.print(f"  [yellow]{escape(line)}[/]" if line.startswith("Warning:") else f"  {escape(line)}",
                          highlight=False)
    else:
        lab, saved, applied = service.reset(settings, number)
    if saved:
        console.print(f"Backed up your files to [cyan]{saved}[/].")
    console.print(f"Lab {lab.number} is back at its starter files" + (" and they are deployed." if applied else "."))
