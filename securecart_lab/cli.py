"""Command-line declarations only. Each command parses its arguments and calls one function in commands/.

Settings come from options or environment variables: SECURECART_ENGINE, SECURECART_HOME, SECURECART_WORKSPACE,
SECURECART_EMULATOR_PORT, SECURECART_PG_PORT, SECURECART_PG_BIN, SECURECART_TIME_SCALE, SECURECART_IAM,
SECURECART_GRADING_KEY.
"""

from __future__ import annotations

import sys
import traceback
from enum import Enum
from pathlib import Path
from typing import Optional

import click
import typer
from typer.core import TyperGroup

from securecart_lab import __version__, typer_coercion
from securecart_lab.config import Settings
from securecart_lab.console import err_console
from securecart_lab.errors import LabError


# Typer 0.2x parses with its own copy of click (typer._click), whose exceptions do not derive from click's:
# both are passed on to the framework, which prints usage plus one line and exits 2 (usage) or 1.
_FRAMEWORK_EXITS = (typer.Exit, typer.Abort, typer.TyperException, click.exceptions.Exit, click.ClickException,
                    click.Abort, SystemExit)


class SecureCartGroup(TyperGroup):
    """Errors are handled here, once: a LabError becomes a red one-line `Error:` plus its hint;
    anything else is wrapped the same way, with the traceback only under --debug."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LabError as exc:
            _fail(exc.message, exc.hint, exc.exit_code, ctx)
        except _FRAMEWORK_EXITS:
            raise
        except KeyboardInterrupt:
            _fail("Interrupted.", None, 130, ctx)
        except OSError as exc:  # a file or folder the kit cannot use: name it (a read-only home, a full disk)
            where = f"{exc.filename}: " if exc.filename else ""
            _fail(f"{where}{exc.strerror or exc}.", "Check that path's permissions and free space, then run the command again.", 1, ctx)
        except Exception as exc:  # an unexpected failure still gets one line, not a traceback
            _fail(f"Unexpected {type(exc).__name__}: {exc}", "Run again with --debug for the traceback, and report it.", 1, ctx)


def _fail(message: str, hint: str | None, code: int, ctx: click.Context) -> None:
    if _debug(ctx):
        err_console.print(traceback.format_exc(), markup=False, highlight=False)
    from rich.markup import escape  # messages quote learners' text and AWS's [brackets]

    err_console.print(f"[bold red]Error:[/] {escape(message)}", markup=True, highlight=False, soft_wrap=True)
    if hint:
        err_console.print(f"[dim]{escape(hint)}[/]", soft_wrap=True)
    raise SystemExit(code)


def _debug(ctx: click.Context) -> bool:
    obj = ctx.find_root().obj
    return bool(getattr(obj, "debug", False)) or "--debug" in sys.argv


typer_coercion.install()  # typer's coercion without pydantic where its answer is known


app = typer.Typer(
    cls=SecureCartGroup,
    help="securecart-lab: hands-on AWS labs for SecureCart, offline. Start with: securecart-lab start 1",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class Engine(str, Enum):
    local = "local"
    localstack = "localstack"


class Format(str, Enum):
    table = "table"
    json = "json"


class Obj:
    def __init__(self, engine: str | None, workspace: Path | None, debug: bool):
        self.engine = engine
        self.workspace = workspace
        self.debug = debug

    def settings(self, **overrides) -> Settings:
        return Settings.from_env(engine=self.engine, workspace=self.workspace, **overrides)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"securecart-lab {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    ctx: typer.Context,
    engine: Optional[Engine] = typer.Option(None, "--engine", help="local (default, no Docker) or localstack. Env: SECURECART_ENGINE."),
    workspace: Optional[Path] = typer.Option(None, "--workspace", file_okay=False, help="Where your lab files live. Env: SECURECART_WORKSPACE (default ./securecart-workspace)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for unexpected errors."),
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version."),
):
    ctx.obj = Obj(engine.value if engine else None, workspace, debug)


def _settings(ctx: typer.Context) -> Settings:
    return ctx.find_root().obj.settings()


def _locked(settings: Settings, command: str, wait: bool):
    """Commands that change the environment take its lock: one at a time per SECURECART_HOME."""
    from securecart_lab import lock

    return lock.environment(settings, command, wait)


LabArg = typer.Argument(..., help="Lab number (see: securecart-lab list).")
WaitOpt = typer.Option(False, "--wait", help="If another securecart-lab command is changing this environment, wait for it instead of stopping.")


@app.command()
def up(ctx: typer.Context, wait: bool = WaitOpt):
    """Start the engine: the AWS emulator and PostgreSQL (idempotent).

    Example: securecart-lab up
    """
    from securecart_lab.commands import lifecycle

    settings = _settings(ctx)
    with _locked(settings, "up", wait):
        lifecycle.up(settings)


@app.command()
def down(ctx: typer.Context, purge: bool = typer.Option(False, "--purge", help="Also delete PostgreSQL data and caches."),
         wait: bool = WaitOpt):
    """Stop everything the engine runs. Your workspace files are never touched.

    Example: securecart-lab down --purge
    """
    from securecart_lab.commands import lifecycle

    settings = _settings(ctx)
    with _locked(settings, "down", wait):
        lifecycle.down(settings, purge)


@app.command()
def status(ctx: typer.Context, format: Format = typer.Option(Format.table, "--format", help="table or json.")):
    """Show the engine, its endpoints, each service's health and your progress per lab.

    Example: securecart-lab status --format json
    """
    from securecart_lab.commands import lifecycle

    raise typer.Exit(lifecycle.status(_settings(ctx), format.value))


@app.command("list")
def list_labs(ctx: typer.Context):
    """List the labs.

    Example: securecart-lab list
    """
    from securecart_lab.commands import labs

    labs.list_labs(_settings(ctx))


@app.command()
def start(
    ctx: typer.Context,
    lab: str = LabArg,
    with_prereqs: bool = typer.Option(False, "--with-prereqs", help="Deploy earlier labs' reference solutions this lab builds on, without asking."),
    wait: bool = WaitOpt,
):
    """Start a lab: bring the engine up, provision the lab's baseline, copy the starter files (never overwriting yours).

    Example: securecart-lab start 1
    """
    from securecart_lab.commands import labs

    settings = _settings(ctx)
    with _locked(settings, "start", wait):
        labs.start(settings, lab, with_prereqs)


@app.command()
def deploy(
    ctx: typer.Context,
    lab: str = LabArg,
    wait: bool = WaitOpt,
    preview: bool = typer.Option(False, "--preview", help="Labs 2 and 3: show the change set (what would be added, "
                                 "modified, replaced or removed) and change nothing."),
    parameter: Optional[list[str]] = typer.Option(None, "--parameter", metavar="KEY=VALUE",
                                                  help="Labs 2 and 3: a template parameter (repeatable); overrides "
                                                  "parameters.json in the lab's folder."),
):
    """Validate your workspace files and apply them to the running engine.

    Example: securecart-lab deploy 2 --preview
    """
    from securecart_lab.commands import labs

    settings = _settings(ctx)
    with _locked(settings, "deploy", wait):
        labs.deploy(settings, lab, preview=preview, parameters=parameter or [])


@app.command()
def check(
    ctx: typer.Context,
    lab: Optional[str] = typer.Argument(None, help="Lab number; omit with --all."),
    all_labs: bool = typer.Option(False, "--all", help="Check every lab."),
    json_path: Optional[Path] = typer.Option(None, "--json", dir_okay=False, help="Also write a JSON report to this file."),
    junit_path: Optional[Path] = typer.Option(None, "--junit", dir_okay=False, help="Also write a JUnit XML report to this file."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="Longer hints and measured values."),
    watch: bool = typer.Option(False, "--watch", help="Re-deploy and re-check whenever you save a workspace file."),
    only: Optional[list[str]] = typer.Option(None, "--only", help="Run only this check id (repeatable)."),
    sign: bool = typer.Option(False, "--sign", help="Sign the --json report so \"securecart-lab verify\" can tell if it was edited (HMAC; key: SECURECART_GRADING_KEY, which also turns signing on, else one kept in SECURECART_HOME)."),
    wait: bool = WaitOpt,
):
    """Check a lab (or --all). Exits 0 only when every check passes.

    Example: securecart-lab check 1 --junit report.xml
    """
    from securecart_lab.commands import checks

    settings = _settings(ctx)
    if watch:
        checks.watch(settings, lab, verbose)
        return
    with _locked(settings, "check", wait):
        code = checks.check(settings, lab, all_labs, json_path, junit_path, verbose, set(only or ()), sign)
    raise typer.Exit(code)


@app.command()
def solve(ctx: typer.Context, lab: str = LabArg, wait: bool = WaitOpt):
    """Deploy the reference solution (for instructors and CI). Your files are not touched; checks then score the
    solution, and your progress says so.

    Example: securecart-lab solve 1
    """
    from securecart_lab.commands import labs

    settings = _settings(ctx)
    with _locked(settings, "solve", wait):
        labs.solve(settings, lab)


@app.command()
def reset(
    ctx: typer.Context,
    lab: str = LabArg,
    environment: bool = typer.Option(False, "--environment", help="Redo the lab from scratch: also remove what the lab made "
                                     "in the running environment (lab 3: replicas, failover drill, routing parameters; "
                                     "a promoted writer is snapshotted first), then deploy the starter."),
    wait: bool = WaitOpt,
):
    """Put a lab's starter files back. Your current files are backed up first, with a timestamp.

    Example: securecart-lab reset 3 --environment
    """
    from securecart_lab.commands import labs

    settings = _settings(ctx)
    with _locked(settings, "reset", wait):
        labs.reset(settings, lab, environment=environment)


@app.command()
def env(
    ctx: typer.Context,
    superuser: bool = typer.Option(False, "--superuser", help="PostgreSQL as its superuser (postgres, with this installation's password) instead of the app's role."),
    account: str = typer.Option("securecart", "--account", help="The AWS account the credentials act in: securecart (123456789012, the default) or security (222222222222, lab 4's security account)."),
):
    """Print export lines for your shell: AWS endpoint and credentials, PostgreSQL connection.

    Example: eval "$(securecart-lab env)"; eval "$(securecart-lab env --account security)" for lab 4's security account
    """
    from securecart_lab.commands import lifecycle

    lifecycle.env(_settings(ctx), superuser=superuser, account=account)


@app.command()
def logs(
    ctx: typer.Context,
    what: str = typer.Argument("emulator", help="emulator, postgres, lambda or instance."),
    name: Optional[str] = typer.Argument(None, help="The Lambda function's name (logs lambda NAME) or the EC2 instance id (logs instance ID)."),
    lines: int = typer.Option(50, "--lines", "-n", min=1, help="How many lines from the end."),
):
    """Show recent logs of the emulator, PostgreSQL, a Lambda function, or an EC2 instance (its app's output).

    Example: securecart-lab logs lambda authorize-payment
    """
    from securecart_lab.commands import lifecycle

    lifecycle.logs(_settings(ctx), what, name, lines)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def psql(
    ctx: typer.Context,
    replica: bool = typer.Option(False, "--replica", help="Connect to a read replica of the writer (lab 3)."),
    instance: Optional[str] = typer.Option(None, "--instance", help="Connect to this DB instance identifier."),
):
    """Open psql on the lab's RDS database (the app's writer) as its master user; extra arguments go to psql.

    Example: securecart-lab psql --replica -c 'select pg_is_in_recovery()'
    """
    from securecart_lab.commands import psql as psql_cmd

    raise typer.Exit(psql_cmd.psql(_settings(ctx), replica, instance, list(ctx.args)))


@app.command()
def ci(
    ctx: typer.Context,
    lab: Optional[str] = typer.Option(None, "--lab", help="Only this lab (default: all)."),
    junit_path: Path = typer.Option(Path("securecart-ci.xml"), "--junit", dir_okay=False, help="Where to write the JUnit report."),
    json_path: Optional[Path] = typer.Option(None, "--json", dir_okay=False, help="Also write a JSON report."),
    wait: bool = WaitOpt,
):
    """Headless run for CI: up, then for each lab start, solve and check; JUnit report; non-zero on any failure.
    It uses its own workspace and progress (under SECURECART_HOME/ci), never yours.

    Example: securecart-lab ci --lab 1 --junit reports/ci.xml
    """
    from securecart_lab.commands import checks

    settings = _settings(ctx)
    with _locked(settings, "ci", wait):
        code = checks.ci(settings, lab, junit_path, json_path)
    raise typer.Exit(code)


@app.command()
def trace(
    ctx: typer.Context,
    lab: str = typer.Argument("1", help="Lab number (lab 1 has the state machine)."),
    execution: Optional[str] = typer.Option(None, "--execution", "-e", help="Execution name or ARN (default: the latest)."),
    limit: int = typer.Option(10, "--limit", min=1, max=1000, help="How many recent executions to list."),
):
    """Show recent executions of a lab's state machine and a tree of one execution's states, retries and errors.

    Example: securecart-lab trace 1
    """
    from securecart_lab.commands import trace as trace_cmd

    trace_cmd.trace(_settings(ctx), lab, execution, limit)


@app.command()
def bench(
    ctx: typer.Context,
    lab: str = typer.Argument("3", help="Lab number (lab 3 compares primary-only reads with replica reads)."),
    seconds: float = typer.Option(10.0, "--seconds", min=0.5, max=3600, help="Duration of each phase."),
    chart: Path = typer.Option(Path("securecart-bench.png"), "--chart", dir_okay=False, help="Where to write the PNG chart."),
    wait: bool = WaitOpt,
):
    """Measure product-search throughput and p95 latency under write load, primary only vs. reads on the replica.

    Example: securecart-lab bench 3 --seconds 5
    """
    from securecart_lab.commands import bench as bench_cmd

    settings = _settings(ctx)
    with _locked(settings, "bench", wait):
        bench_cmd.bench(settings, lab, seconds, chart)


@app.command()
def chaos(ctx: typer.Context, action: str = typer.Argument(..., help="primary-down, primary-up or az-down."), wait: bool = WaitOpt):
    """Failure drills: lose the lab database's writer instance (primary-down) or bring it back (primary-up); crash
    only its primary server, as when its AZ fails, for a Multi-AZ failover (az-down).

    Example: securecart-lab chaos primary-down
    """
    from securecart_lab.commands import chaos as chaos_cmd

    settings = _settings(ctx)
    with _locked(settings, "chaos", wait):
        chaos_cmd.chaos(settings, action)


@app.command()
def grade(
    ctx: typer.Context,
    paths: Optional[list[Path]] = typer.Argument(None, help="Submissions: workspace folders (labNN/ inside), git checkouts, "
                                                           ".zip/.tar.gz archives, or folders of them (one per learner)."),
    lab: Optional[str] = typer.Option(None, "--lab", help="Grade only this lab (default: the labs each submission contains)."),
    all_labs: bool = typer.Option(False, "--all", help="Grade every lab; a lab missing from a submission scores 0."),
    jobs: Optional[int] = typer.Option(None, "--jobs", "-j", min=1, help="Submissions graded at once (default: what cores and memory allow)."),
    out: Path = typer.Option(Path("securecart-grades"), "--out", help="Where to write gradebook.csv, gradebook.json and reports/."),
    sign: bool = typer.Option(False, "--sign", help="Sign the JSON reports (HMAC; key: SECURECART_GRADING_KEY, which also turns signing on, else one kept in SECURECART_HOME)."),
    init_workflow: bool = typer.Option(False, "--init-workflow", help="Write a GitHub Actions workflow into the repository at PATH (default .) that grades it on every push."),
):
    """Grade learners' submitted files, each in a fresh environment of its own, into a gradebook.

    Example: securecart-lab grade submissions/ --lab 1 --out grades
    """
    from securecart_lab.commands import grade as grade_cmd

    raise typer.Exit(grade_cmd.grade(_settings(ctx), paths or [], lab, all_labs, jobs, out, sign, init_workflow))


@app.command()
def verify(ctx: typer.Context, report: Path = typer.Argument(..., help="A JSON report written by grade --sign or check --json FILE --sign.")):
    """Check that a signed report is unchanged since it was signed, and say how its graded state was produced.
    Exits 0 only when it is unchanged.

    Example: securecart-lab verify grades/reports/alice.json
    """
    from securecart_lab.commands import grade as grade_cmd

    grade_cmd.verify(_settings(ctx), report)


def main() -> None:
    app()
