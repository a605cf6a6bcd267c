"""typer's coercion of command-line values, without loading pydantic where its answer is known.

typer 0.29 coerces every parameter's value through a pydantic TypeAdapter it builds on first use; loading pydantic
for it took a tenth of a second of every command. These values take typer's own answer without the adapter:
- a missing value (None): typer answers it before asking the adapter;
- a string for a plain `str` parameter: the adapter returns it as it is;
- a choice of an Enum parameter that matches: typer's adapter calls typer's coerce_cli_choice, which this calls.
Anything else (a number, a path, a list, a choice that does not match and needs typer's error) goes to typer.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from typer._coercion import RuntimeParam
from typer._param_types import coerce_cli_choice
from typer.core import _TyperParameter

_NOTHING = object()


@dataclass(frozen=True)
class _Known(RuntimeParam):
    value: Any = None

    def _coerce_value(self, value: Any, param, ctx) -> Any:
        return self.value


def known_value(param: _TyperParameter, ctx, value: Any) -> Any:
    """What typer's coercion gives for `value`, or _NOTHING when only its adapter can say."""
    descriptor = param.type_descriptor
    annotation, info = descriptor.annotation, descriptor.parameter_info
    multiple = param.multiple or param.nargs == -1
    if value is None:
        return () if multiple else None
    if info.parser is not None or multiple:
        return _NOTHING
    if not (type(value) is str or isinstance(value, Enum)):
        return _NOTHING
    if annotation is str and type(value) is str:
        return value
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        try:
            return coerce_cli_choice(value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx)
        except ValueError:
            return _NOTHING  # typer's adapter raises its usage error
    return _NOTHING


_typer_process_value = _TyperParameter.process_value


def _process_value(self: _TyperParameter, ctx, value: Any) -> Any:
    if self._runtime_param is None:
        known = known_value(self, ctx, value)
        if known is not _NOTHING:
            self._runtime_param = _Known(parameter_info=None, annotation=None, value=known)
            try:
                return _typer_process_value(self, ctx, value)
            finally:
                self._runtime_param = None
    return _typer_process_value(self, ctx, value)


def install() -> None:
    _TyperParameter.process_value = _process_value
