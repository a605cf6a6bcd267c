"""What the lab commands do: start, deploy, solve, reset and check a lab. The CLI calls one function each."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from securecart_lab import paths, state
from securecart_lab.checking import FAIL, Outcome, failed, load_checks, run_check
from securecart_lab.config import Settings
from securecart_lab.engines import get_engine
from securecart_lab.errors import EngineUnavailable, LabError, WorkspaceFileError
from securecart_lab.labs import workspace
from securecart_lab.labs.context import LabContext
from securecart_lab.labs.model import Lab
from securecart_lab.labs.registry import get_lab
from securecart_lab.reporting import LabReport, RunInfo, iam_setting


# Where what runs came from, recorded per lab and shown with progress: the learner's files, or solve's reference solution.
WORKSPACE, SOLUTION = "workspace", "solution"


@dataclass
class StartResult:
    lab: Lab
    workspace: Path
    created: list[Path]
    instructions: workspace.Instructions
    deployed: list[str] = field(default_factory=list)
    deploy_error: LabError | None = None
    prerequisites: list[int] = field(default_factory=list)
    restored: list[int] = field(default_factory=list)  # earlier labs deployed again from the learner's own files


def context(settings: Settings, lab: Lab, verbose: bool = False) -> LabContext:
    return LabContext(settings=settings, engine=get_engine(settings), lab=lab, verbose=verbose)


def is_provisioned(ctx: LabContext) -> bool:
    probe = getattr(ctx.lab.provisioner(), "is_provisioned", None)
    return True if probe is None else bool(probe(ctx))


def is_deployed(ctx: LabContext) -> bool:
    probe = getattr(ctx.lab.provisioner(), "is_deployed", None)
    return is_provisioned(ctx) if probe is None else bool(probe(ctx))


def start(settings: Settings, number, with_prereqs: bool = False, confirm: Callable[[str], bool] | None = None) -> StartResult:
    """Ensure the engine is up, provision the lab's baseline, copy the starter (never overwriting) and deploy it once."""
    lab = get_lab(number)
    workspace.preflight(settings.workspace, lab)
    ctx = context(settings, lab)
    ctx.engine.up()
    restored: list[int] = []
    prereqs = ensure_prerequisites(ctx, with_prereqs, confirm, restored)
    lab.provisioner().provision(ctx)
    created = workspace.copy_starter(settings.workspace, lab)
    instructions = workspace.copy_instructions(settings.workspace, lab,
                                               state.load(settings).lab(lab.number).get("readme_sha256"))
    workspace.copy_references(settings.workspace, lab)
    result = StartResult(lab=lab, workspace=ctx.workspace, created=created, instructions=instructions,
                         prerequisites=prereqs, restored=restored)
    progress = {"started_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "readme_sha256": instructions.written_sha256}
    try:
        result.deployed = _deploy(ctx, ctx.workspace)
        progress.update(_deployed_workspace(ctx))
    except LabError as exc:  # the learner's files are theirs to fix; start still succeeds
        result.deploy_error = exc
    state.load(settings).record(lab.number, **progress)
    return result


def ensure_prerequisites(ctx: LabContext, with_prereqs: bool, confirm: Callable[[str], bool] | None,
                         restored: list[int] | None = None) -> list[int]:
    """Deploy each lab this one builds on when it is missing: again as it was before the engine lost it (down/up keeps
    nothing), from the learner's own files (numbers appended to `restored`) or the reference solution they chose;
    else the reference solution, when allowed. Returns the labs deployed from their reference solution."""
    deployed = []
    for number in ctx.lab.requires:
        req = get_lab(number)
        req_ctx = ctx.lab_context(req)
        if is_deployed(req_ctx):
            continue
        record = state.load(ctx.settings).lab(number)
        # Deployed into an engine that has stopped since (down/up keeps nothing): deploy it again as it was.
        lost = record.get("deployed_environment") not in (None, ctx.engine.environment_id())
        before = record.get("deployed_from") if lost else None
        if before == WORKSPACE and req_ctx.workspace.is_dir():
            req.provisioner().provision(req_ctx)
            try:
                _deploy(req_ctx, req_ctx.workspace)
            except LabError as exc:
                if not with_prereqs:
                    raise LabError(
                        f"Lab {ctx.lab.number} needs lab {number}'s resources, and deploying your lab {number} files "
                        f"again failed: {exc.message}",
                        f'Fix them and run "securecart-lab deploy {number}", or run "securecart-lab start '
                        f'{ctx.lab.number} --with-prereqs" (deploys lab {number}\'s reference solution).') from exc
            else:
                if restored is not None:
                    restored.append(number)
                continue
        question = f"Lab {ctx.lab.number} builds on lab {number} ({req.title}), which is not deployed. Deploy its reference solution now?"
        if before != SOLUTION and not with_prereqs and not (confirm and confirm(question)):
            raise LabError(
                f"Lab {ctx.lab.number} needs lab {number}'s resources, and they are not deployed.",
                f'Run "securecart-lab start {ctx.lab.number} --with-prereqs" (deploys lab {number}\'s reference solution), '
                f'or complete lab {number} first.',
            )
        req.provisioner().provision(req_ctx)
        _deploy(req_ctx, req.solution_dir)
        state.load(ctx.settings).record(number, deployed_from=SOLUTION, deployed_environment=ctx.engine.environment_id())
        deployed.append(number)
    return deployed


def _deploy(ctx: LabContext, source: Path) -> list[str]:
    _check_source(ctx.lab, source)
    from securecart_lab.postgres import dumps  # not at import time: it loads psycopg

    before = dumps.listing(ctx.settings)
    try:
        lines = list(ctx.lab.provisioner().deploy(ctx, source) or [])
    except LabError as exc:
        kept = _dumped_since(ctx, before)
        if kept:
            exc.hint = " ".join(filter(None, [exc.hint, *kept]))
        raise
    return lines + _dumped_since(ctx, before)


def _dumped_since(ctx: LabContext, before: set[Path]) -> list[str]:
    """Where the data of each database the deploy deleted is now (a stack's DB instance is snapshotted first)."""
    from securecart_lab.postgres import dumps

    lines = []
    for path in sorted(dumps.listing(ctx.settings) - before):
        if path.parent == dumps.snapshot_dir(ctx.settings):
            lines.append(f"A deleted database's data is kept in an RDS snapshot (aws rds describe-db-snapshots), dump {path}")
        else:
            lines.append(f"A deleted database's data is kept in {path}")
    return lines


def _check_source(lab: Lab, source: Path) -> None:
    missing = [n for n in lab.workspace_files if not ((source / n).exists() or (source / n).is_symlink())]
    if missing:
        raise WorkspaceFileError(source / missing[0], "file not found",
                                 hint=f'Run "securecart-lab reset {lab.number}" to get the starter files back.')
    workspace.check_files(source, lab)


def deploy(settings: Settings, number, source: Path | None = None, preview: bool = False,
           parameters: list[str] | None = None) -> tuple[Lab, list[str]]:
    """Validate and apply the learner's workspace (or `source`) to the running engine. For labs that deploy a
    CloudFormation stack: `preview` shows the change set and changes nothing; `parameters` are KEY=VALUE
    template parameters (over the workspace's parameters.json)."""
    lab = get_lab(number)
    ctx = context(settings, lab)
    if source is None:
        workspace.preflight(settings.workspace, lab)
    if (preview or parameters) and getattr(lab.provisioner(), "STACK", None) is None:
        raise LabError(f"Lab {lab.number} deploys no CloudFormation template: --preview and --parameter apply to "
                       "the labs that do (2 and 3).", f'Run "securecart-lab deploy {lab.number}".')
    ctx.preview, ctx.parameters = preview, parse_parameters(parameters or [])
    folder = source or ctx.workspace
    if not folder.exists():
        raise LabError(f"No workspace for lab {lab.number} at {folder}.", f'Run "securecart-lab start {lab.number}" first.')
    _check_source(lab, folder)  # the files are readable text before the engine is asked anything
    ctx.engine.require_running()
    lab.provisioner().provision(ctx)
    applied = _deploy(ctx, folder)
    if source is None and not preview:
        state.load(settings).record(lab.number, **_deployed_workspace(ctx))
    return lab, applied


def _deployed_workspace(ctx: LabContext) -> dict[str, str]:
    """The record of a deploy of the learner's files (deploy, start, reset): check compares their fingerprint with
    the files to say "changed since your last deploy"."""
    return {"deployed_at": time.strftime("%Y-%m-%dT%H:%M:%S"), "deployed_from": WORKSPACE,
            "deployed_hash": workspace.fingerprint(ctx.workspace, ctx.lab),
            "deployed_environment": ctx.engine.environment_id()}


def parse_parameters(pairs: list[str]) -> dict[str, str]:
    """--parameter KEY=VALUE options as a dict (LabError naming a malformed one)."""
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LabError(f"--parameter {pair!r}: expected KEY=VALUE, e.g. --parameter DBPassword=s3cret-pass.",
                           "One --parameter per template parameter; values may contain '='.")
        parameters[key.strip()] = value
    return parameters


@dataclass
class SolveResult:
    lab: Lab
    applied: list[str]
    copy: Path
    backup: Path | None  # where edits the learner made in labNN/solution/ were saved before the copy was refreshed


def solve(settings: Settings, number) -> SolveResult:
    """Deploy the reference solution (for instructors and CI). The learner's files are not touched:
    a copy of the solution is put beside them, in labNN/solution/, to read (their edits there are backed up first).
    Progress checked from now on is marked as the solution's until they deploy their own files again."""
    lab = get_lab(number)
    workspace.preflight(settings.workspace, lab)
    ctx = context(settings, lab)
    ctx.engine.up()
    ensure_prerequisites(ctx, with_prereqs=True, confirm=None)
    lab.provisioner().provision(ctx)
    applied = _deploy(ctx, lab.solution_dir)
    state.load(settings).record(lab.number, deployed_from=SOLUTION, solved_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
                                deployed_environment=ctx.engine.environment_id())
    copy, backup = workspace.save_solution_copy(settings.workspace, lab)
    return SolveResult(lab, applied, copy, backup)


RUNNING_TIMEOUT = 10.0  # seconds an engine that runs may take to answer its health check under load


def reset(settings: Settings, number, environment: bool = False) -> tuple[Lab, Path | None, list[str]]:
    """Back up the learner's files with a timestamp, restore the starter, and deploy it if the engine runs.

    With `environment`, redo the lab from scratch: bring the engine up, deploy what the lab builds on if it is missing,
    remove what the lab made (its provisioner's `teardown`, e.g. lab 3's replicas and failover drill), then reset the
    files and deploy the starter. Without it, a lab whose provisioner's `before_reset` says the starter cannot be
    deployed over what runs is refused before any file changes."""
    lab = get_lab(number)
    workspace.preflight(settings.workspace, lab)
    ctx = context(settings, lab)
    provisioner = lab.provisioner()
    applied: list[str] = []
    # Asked once, and patiently: a busy engine that missed a 1 s answer between the two decisions below reset the files
    # without the before_reset guard, then deployed over what runs.
    running = environment or ctx.engine.health(timeout=RUNNING_TIMEOUT) is not None
    if environment:
        ctx.engine.up()
        ensure_prerequisites(ctx, with_prereqs=True, confirm=None)
        teardown = getattr(provisioner, "teardown", None)
        if teardown is None:
            applied.append(f"Lab {lab.number} has nothing to remove beyond what its files deploy: deploying its "
                           "starter over what runs resets it")
        else:
            from securecart_lab.postgres import dumps

            before = dumps.listing(settings)
            applied += list(teardown(ctx) or [])
            applied += _dumped_since(ctx, before)
    elif running and getattr(provisioner, "before_reset", None) is not None:
        provisioner.before_reset(ctx)
    saved = workspace.reset(settings.workspace, lab)
    if running:
        provisioner.provision(ctx)
        applied += _deploy(ctx, ctx.workspace)
        state.load(settings).record(lab.number, **_deployed_workspace(ctx))
    return lab, saved, applied


def run_info(settings: Settings) -> RunInfo:
    engine = get_engine(settings)
    health = engine.health() or {}
    return RunInfo(
        engine=engine.name,
        engine_version=engine.version(),
        simulated=tuple(engine.simulated),
        time_scale=float(health.get("time_scale", settings.time_scale)),
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S"),
        iam=iam_setting(health),
    )


def check(settings: Settings, number, verbose: bool = False, on_outcome: Callable[[Outcome], None] | None = None,
          only: set[str] | None = None) -> LabReport:
    """Run a lab's checks against the running engine and record the score."""
    lab = get_lab(number)
    ctx = context(settings, lab, verbose=verbose)
    ctx.engine.require_running()
    checks = load_checks(lab.checks_file(paths.checks_dir()))
    if only:
        unknown = only - {c.id for c in checks}
        if unknown:
            raise LabError(f"Lab {lab.number} has no check {sorted(unknown)[0]!r}.",
                           f"Its checks: {', '.join(c.id for c in checks)}.")
        checks = [c for c in checks if c.id in only]
    progress = state.load(settings)
    report = LabReport(lab=lab.number, title=lab.title, deployed_from=progress.lab(lab.number).get("deployed_from"))
    started = is_provisioned(ctx)
    for index, chk in enumerate(checks):
        if started:
            outcome = run_check(chk, ctx, ctx.engine.capabilities, ctx.engine.missing_reason)
            if outcome.status == FAIL and ctx.engine.health(timeout=3) is None:
                # the engine went away under the check: its failures say nothing about the learner's work
                raise EngineUnavailable(
                    f"The {ctx.engine.name} engine stopped answering at {ctx.endpoint_url} during check "
                    f"{chk.id!r} ({index + 1} of {len(checks)}); stopped checking, and this run was not recorded.",
                    'Run "securecart-lab up" (its log: "securecart-lab logs emulator"), then check again.')
        else:
            outcome = _not_started(chk, lab)
        report.outcomes.append(outcome)
        if on_outcome:
            on_outcome(outcome)
    report.partial = bool(only)
    if not report.partial:  # progress is the last full run: a few checks say nothing about the others
        progress.record_check(lab.number, report.passed, len(report.outcomes), report.earned, report.points,
                              deployed_from=report.deployed_from)
    return report


def _not_started(chk, lab: Lab) -> Outcome:
    # One next step: the check's own hint (deploy, edit...) would contradict it until the lab is set up again.
    result = failed(f'Lab {lab.number} is not set up on the running engine. Run "securecart-lab start {lab.number}".')
    hint = (f'Run "securecart-lab start {lab.number}": it sets up the lab\'s baseline again (the engine keeps nothing '
            "across down/up) and deploys your files, which are untouched.")
    return Outcome(chk.id, chk.title, chk.points, result.status, result.message, None, None, hint, "", 0.0)


def workspace_changed(settings: Settings, lab: Lab) -> bool:
    """True when the learner's files differ from what they last deployed."""
    folder = workspace.lab_dir(settings.workspace, lab)
    recorded = state.load(settings).lab(lab.number).get("deployed_hash")
    if state.load(settings).lab(lab.number).get("deployed_from") == SOLUTION:
        return False
    return bool(recorded) and folder.exists() and recorded != workspace.fingerprint(folder, lab)
