"""trace: recent executions of a lab's state machine, and one execution as a tree of states."""

from __future__ import annotations

from datetime import datetime, timezone

from botocore.exceptions import ClientError
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from securecart_lab import trace as tracing
from securecart_lab.config import Settings
from securecart_lab.console import console
from securecart_lab.errors import LabError
from securecart_lab.labs import service
from securecart_lab.labs.registry import get_lab

_STATUS_STYLE = {"SUCCEEDED": "green", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "yellow", "RUNNING": "cyan"}
_OUTCOME = {"succeeded": "[green]✓[/]", "caught": "[yellow]↪ caught[/]", "failed": "[red]✗[/]", "running": "[cyan]…[/]"}


def trace(settings: Settings, lab: str, execution: str | None, limit: int) -> None:
    """Print the executions table, then the tree of `execution` (a name or ARN; default: the latest)."""
    chosen_lab = get_lab(lab)
    ctx = service.context(settings, chosen_lab)
    ctx.engine.require_running()
    provisioner = chosen_lab.provisioner()
    if not hasattr(provisioner, "state_machine_arn"):
        raise LabError(f"Lab {chosen_lab.number} has no state machine to trace.", 'Try "securecart-lab trace 1".')
    if not service.is_deployed(ctx):
        raise LabError(f"Lab {chosen_lab.number}'s state machine is not deployed on the {ctx.engine.name} engine.",
                       f'Run "securecart-lab start {chosen_lab.number}" (or "securecart-lab deploy {chosen_lab.number}").')
    sfn = ctx.aws("stepfunctions")
    machine_arn = provisioner.state_machine_arn(ctx)
    machine = sfn.describe_state_machine(stateMachineArn=machine_arn)
    histories = None
    if machine.get("type") == "EXPRESS":  # no execution history on AWS: its log is the history
        group = tracing.log_group_of(machine)
        if group is None:
            raise LabError(f"{machine['name']} is an EXPRESS state machine without execution logs at level ALL: its "
                           "executions keep no history to trace.",
                           "Give it a LoggingConfiguration (Level: ALL, IncludeExecutionData: true, a log group "
                           f"destination) and deploy {chosen_lab.number} (README, step 2).")
        executions, histories = tracing.express_executions(ctx.aws("logs"), group)
    else:
        executions = sfn.list_executions(stateMachineArn=machine_arn, maxResults=max(1, min(limit, 1000)))["executions"]
        executions.sort(key=lambda e: e["startDate"], reverse=True)
    if not executions and execution is None:
        console.print(f"No executions of {machine_arn.rsplit(':', 1)[1]} yet. Start one, e.g.:")
        console.print(getattr(provisioner, "TRACE_EXAMPLE", None)
                      or '  aws --endpoint-url $AWS_ENDPOINT_URL events put-events --entries file://order-event.json')
        return
    console.print(_table(executions[:limit]))
    if histories is not None:
        target = next((e for e in executions if execution is None or execution in (e["name"], e["executionArn"])), None)
        if target is None:
            raise LabError(f"No execution {execution!r} in {machine['name']}'s log.",
                           "Pick a name from the table above, or leave out --execution for the latest.")
        events = histories[target["executionArn"]]
    else:
        target = _find(sfn, machine_arn, executions, execution)
        events = tracing.history(sfn, target["executionArn"])
    console.print(render(target, tracing.build(events)), soft_wrap=False)  # long errors fold, not cut


def _table(executions: list[dict]) -> Table:
    table = Table("Started", "Execution", "Status", "Duration", title="Recent executions (newest first)")
    for e in executions:
        stop = e.get("stopDate")
        duration = _seconds((stop - e["startDate"]).total_seconds()) if stop else "running"
        style = _STATUS_STYLE.get(e["status"], "")
        table.add_row(_clock(e["startDate"]), e["name"], f"[{style}]{e['status']}[/]", duration)
    return table


def _find(sfn, machine_arn: str, executions: list[dict], wanted: str | None) -> dict:
    if wanted is None:
        return executions[0]
    for e in executions:
        if wanted in (e["name"], e["executionArn"]):
            return e
    arn = wanted if wanted.startswith("arn:") else \
        machine_arn.replace(":stateMachine:", ":execution:") + f":{wanted}"
    try:
        described = sfn.describe_execution(executionArn=arn)
    except ClientError:
        raise LabError(f"No execution {wanted!r} of this state machine.",
                       "Pick a name from the table above, or leave out --execution for the latest.")
    return {**described, "name": described.get("name", wanted)}


def render(execution: dict, trace: tracing.ExecutionTrace) -> Tree:
    """The Rich tree of one execution."""
    style = _STATUS_STYLE.get(trace.status, "")
    seconds = trace.seconds
    if execution.get("startDate") and execution.get("stopDate"):  # what the executions table shows
        seconds = (execution["stopDate"] - execution["startDate"]).total_seconds()
    took = f" in {_seconds(seconds)}" if seconds is not None else ""
    root = Tree(f"[bold]{execution['name']}[/]  [{style}]{trace.status}[/]{took}")
    _add(root, trace.states)
    if trace.error:
        root.add(Text(trace.error, style="red", overflow="fold"))  # an error is read whole, however narrow the terminal
    return root


def _add(node: Tree, runs: list[tracing.StateRun]) -> None:
    for run in runs:
        parts = [_OUTCOME[run.outcome], f"[bold]{run.name}[/]", f"[dim]{run.type}[/]"]
        if run.resource:
            parts.append(f"[dim]{run.resource}[/]")
        if run.seconds is not None:
            parts.append(_seconds(run.seconds))
        if run.retries:
            parts.append(f"[yellow]{run.attempts} attempts ({run.retries} retries)[/]")
        child = node.add("  ".join(parts))
        for number, error in enumerate(run.errors, 1):
            label = f"attempt {number}: " if run.attempts > 1 else ""
            child.add(Text(f"{label}{error}", style="red", overflow="fold"))
        for index, branch in enumerate(run.branches, 1):
            _add(child.add(f"[dim]{'branch' if run.type == 'Parallel' else 'iteration'} {index}[/]"), branch)


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def _clock(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
