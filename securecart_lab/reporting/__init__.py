"""Rendering check results: a Rich table for people, JSON and JUnit XML for machines."""

from __future__ import annotations

from dataclasses import dataclass, field

from securecart_lab import __version__
from securecart_lab.checking import FAIL, PASS, SKIP, Outcome


@dataclass
class LabReport:
    """One lab's check outcomes, plus what they were measured on."""

    lab: int
    title: str
    outcomes: list[Outcome] = field(default_factory=list)
    # "solution" when what was checked is the reference solution `solve` deployed, not the learner's files.
    deployed_from: str | None = None
    # Only some checks ran (--only): not recorded as progress, which is the last full run.
    partial: bool = False

    @property
    def passed(self) -> int:
        return sum(o.status == PASS for o in self.outcomes)

    @property
    def failed(self) -> int:
        return sum(o.status == FAIL for o in self.outcomes)

    @property
    def skipped(self) -> int:
        return sum(o.status == SKIP for o in self.outcomes)

    @property
    def earned(self) -> int:
        return sum(o.earned for o in self.outcomes)

    @property
    def points(self) -> int:
        return sum(o.points for o in self.outcomes if o.status != SKIP)

    @property
    def ok(self) -> bool:
        return self.failed == 0

    @property
    def seconds(self) -> float:
        return round(sum(o.seconds for o in self.outcomes), 3)


CHECKED_IN_PLACE = "checked in place"
DEPLOYED_BY_SOLVE = "deployed by solve"
GRADED_FRESH = "deployed from the learner's files in a fresh environment"
IAM_NOT_ENFORCED = "not enforced: policies are read by the checks, not evaluated at run time"
IAM_ENFORCED = ("enforced: the roles services act as (Step Functions executions, EventBridge targets, Lambda "
                "functions) are evaluated at run time")
IAM_OFF = "off (SECURECART_IAM=off): roles are not evaluated at run time"


def iam_setting(health: dict | None) -> str:
    """What a report says about IAM, from the engine's health document (the emulator says whether it evaluates
    roles; an engine that does not say, LocalStack's community edition, does not)."""
    value = (health or {}).get("iam")
    return IAM_ENFORCED if value == "enforced" else IAM_OFF if value == "off" else IAM_NOT_ENFORCED


@dataclass
class RunInfo:
    """What a grade was measured on: engine, its version, what it simulates, the time scale, and how the
    graded state was produced (`graded_state`: checked in place by `check`, deployed by solve (`check` after
    `solve`), or deployed from the learner's files by `grade`; `provenance`: which labs came from where and a SHA-256 of each graded file)."""

    engine: str
    engine_version: str
    simulated: tuple[str, ...]
    time_scale: float
    started_at: str
    graded_state: str = CHECKED_IN_PLACE
    kit_version: str = __version__
    provenance: dict = field(default_factory=dict)
    # Whether the roles services act as were evaluated at run time (iam_setting): a grade says so, since without
    # it a role that is too narrow or too wide is judged only by what the checks read.
    iam: str = IAM_NOT_ENFORCED


def graded_state(reports: list[LabReport]) -> str:
    """How what `check` judged was produced: a lab `solve` deployed is the reference solution, not the learner's work."""
    solved = [r.lab for r in reports if r.deployed_from == "solution"]
    if not solved:
        return CHECKED_IN_PLACE
    if len(solved) == len(reports):
        return DEPLOYED_BY_SOLVE
    return f"{DEPLOYED_BY_SOLVE} for lab {', '.join(map(str, solved))}; the other labs {CHECKED_IN_PLACE}"
