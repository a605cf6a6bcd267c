"""The checks framework: checks are plain functions declared with @check, returning a Result.

A check observes the learner's running resources and returns pass, fail or skip with what it expected and
what it found. It may create its own test data (its own order ids) but never changes the learner's resources,
so it can run again and again.
"""

from __future__ import annotations

import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from securecart_lab.errors import LabError
from securecart_lab.paths import load_module

PASS, FAIL, SKIP = "pass", "fail", "skip"


@dataclass
class Result:
    status: str
    message: str = ""
    expected: str | None = None
    actual: str | None = None
    hint: str | None = None  # the next step for this situation, replacing the check's general hint

    @property
    def ok(self) -> bool:
        return self.status == PASS


def passed(message: str = "", actual: Any = None) -> Result:
    return Result(PASS, message, actual=None if actual is None else str(actual))


def failed(message: str, expected: Any = None, actual: Any = None, hint: str | None = None) -> Result:
    return Result(
        FAIL, message, expected=None if expected is None else str(expected), actual=None if actual is None else str(actual),
        hint=hint,
    )


def skipped(reason: str) -> Result:
    return Result(SKIP, reason)


@dataclass(frozen=True)
class Check:
    """One check: `id` is stable (reports and progress use it), `hint` is the tip shown on failure,
    `more` the longer explanation shown with --verbose, `needs` the AWS services the engine must provide."""

    id: str
    title: str
    points: int
    hint: str
    func: Callable[..., Result]
    more: str = ""
    needs: frozenset[str] = frozenset()
    order: int = 0


def check(id: str, title: str, *, points: int = 10, hint: str, more: str = "", needs=()) -> Callable:
    """Declare a check. Example:

        @check("happy-path", "A valid order is confirmed", points=15, hint="Add a Parallel state ...")
        def happy_path(ctx): ...
    """
    if not hint.strip():
        raise ValueError(f"check {id!r} needs a hint")

    def decorate(func: Callable[..., Result]) -> Callable[..., Result]:
        func.__check__ = Check(
            id=id,
            title=title,
            points=points,
            hint=hint,
            func=func,
            more=more,
            needs=frozenset(needs),
            order=func.__code__.co_firstlineno,
        )
        return func

    return decorate


@dataclass
class Outcome:
    """A check's result, timed, as reports show it."""

    id: str
    title: str
    points: int
    status: str
    message: str
    expected: str | None
    actual: str | None
    hint: str
    more: str
    seconds: float
    traceback: str | None = field(default=None, repr=False)

    @property
    def earned(self) -> int:
        return self.points if self.status == PASS else 0

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("traceback")
        data["earned"] = self.earned
        return data


def load_checks(path: Path) -> list[Check]:
    """Import a checks module by file path and return its checks in the order they are written."""
    module = load_module(path, fresh=True)
    found = [obj.__check__ for obj in vars(module).values() if callable(obj) and hasattr(obj, "__check__")]
    ids = [c.id for c in found]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise LabError(f"{path}: duplicate check ids {sorted(duplicates)}.")
    return sorted(found, key=lambda c: c.order)


def run_check(chk: Check, ctx, capabilities: frozenset[str] | set[str], missing_reason: Callable[[set], str]) -> Outcome:
    started = time.perf_counter()
    tb = None
    missing = set(chk.needs) - set(capabilities)
    if missing:
        result = skipped(missing_reason(missing))
    else:
        try:
            result = chk.func(ctx)
            if not isinstance(result, Result):
                raise TypeError(f"check {chk.id} returned {type(result).__name__}, not a Result")
        except LabError as exc:
            result = failed(exc.message, hint=exc.hint)  # its hint is the next step in this situation
        except Exception as exc:  # a check that crashes is a failure, never a pass
            tb = traceback.format_exc()
            result = failed(f"The check could not complete: {type(exc).__name__}: {exc}")
    return Outcome(
        id=chk.id,
        title=chk.title,
        points=chk.points,
        status=result.status,
        message=result.message,
        expected=result.expected,
        actual=result.actual,
        hint=result.hint or chk.hint,
        more=chk.more,
        seconds=round(time.perf_counter() - started, 3),
        traceback=tb,
    )
