"""Typed errors. Services raise these; the CLI renders them once, as one line plus a hint."""

from __future__ import annotations


class LabError(Exception):
    """A failure the user can act on: a message (what was expected, what was found) and a hint (what to run next)."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class UnknownLab(LabError):
    pass


class NotRunning(LabError):
    pass


class PortInUse(LabError):
    pass


class EngineUnavailable(LabError):
    pass


class PostgresNotFound(LabError):
    pass


class PostgresError(LabError):
    pass


class WorkspaceFileError(LabError):
    """A learner's file is malformed: names the file and, where known, the line."""

    def __init__(self, path, message: str, line: int | None = None, hint: str | None = None):
        where = f"{path}:{line}" if line else f"{path}"
        super().__init__(f"{where}: {message}", hint)
        self.path = path
        self.line = line


class DeployError(LabError):
    pass


class StateVersionError(LabError):
    pass
