"""Malformed input to every command (walked from the command tree, so a new command is covered the day it is added):
a non-zero exit, one `Error:` line (or click's usage line), no traceback, no "Unexpected", and nothing started."""

from __future__ import annotations

import enum
import shutil
import typing
from pathlib import Path

import typer.main

from securecart_lab import cli as cli_module

VALID = {"lab": "1", "action": "primary-down", "what": "emulator"}  # a valid value for required arguments not under test


def _group():
    return typer.main.get_command(cli_module.app)


def _kind(param) -> type:
    annotation = param.type_descriptor.annotation
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    while args and typing.get_origin(annotation) is not None:
        annotation = args[0]
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return annotation


def _bad_values(param, tmp_path: Path) -> list[str]:
    kind = _kind(param)
    if isinstance(kind, type) and issubclass(kind, bool):
        return []
    if isinstance(kind, type) and issubclass(kind, (int, float)):
        return ["abc", "-5", "1e999999"]
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        return ["bogus"]
    if isinstance(kind, type) and issubclass(kind, Path):
        a_file = tmp_path / "a-file"
        a_file.write_text("x")
        info = param.type_descriptor.parameter_info
        return [str(tmp_path) if info.file_okay else str(a_file), "/proc/no/such/place/out"]
    return ["", "../../../etc/passwd", "-1", "99999999999999999999999", "\udcff\udcfe", "x" * 5000]


def _cases(tmp_path: Path):
    group = _group()
    for name, command in sorted(group.commands.items()):
        base = [name] + [VALID.get(p.name, "1") for p in command.params if p.param_type_name == "argument" and p.required]
        yield name, [*base, "--no-such-option"]
        for param in command.params:
            for value in _bad_values(param, tmp_path):
                if param.param_type_name == "argument":
                    args = [name]
                    for p in command.params:
                        if p.param_type_name != "argument":
                            continue
                        if p is param:
                            args.append(value)
                            break
                        args.append(VALID.get(p.name, "1"))
                    yield name, args
                else:
                    yield name, [*base, param.opts[0], value]
    for param in group.params:
        for value in _bad_values(param, tmp_path):
            yield "(root)", [param.opts[0], value, "reset", "1"]


def test_the_walk_covers_every_command(tmp_path):
    covered = {name for name, _ in _cases(tmp_path)}
    assert covered >= set(_group().commands) and len(covered) > 10


def test_malformed_input_to_every_command(cli, isolated_settings, tmp_path):
    bad = []
    started = (isolated_settings.home / "run", isolated_settings.home / "postgres")
    for name, args in _cases(tmp_path):
        result = cli(*args)
        out = result.output
        lines = [l for l in out.splitlines() if l.strip()]
        problems = []
        if result.exit_code == 0:
            problems.append("exit 0")
        if "Traceback" in out or "Unexpected" in out:
            problems.append("traceback/Unexpected")
        if not any(l.startswith("Error: ") for l in lines):
            problems.append("no Error: line")
        if any(p.exists() for p in started):
            problems.append("started something")
            for p in started:
                shutil.rmtree(p, ignore_errors=True)
        if problems:
            bad.append(f"{[a[:40] for a in args]!r}: {problems}: {out[:300]!r}")
    assert not bad, "\n".join(bad)


def test_unknown_option_shows_usage_and_exits_2_like_click(cli, isolated_settings):
    result = cli("start", "1", "--bogus")
    assert result.exit_code == 2
    assert "Usage: " in result.output and " start [OPTIONS]" in result.output
    assert "Error: No such option: --bogus" in result.output
    assert "Unexpected" not in result.output


def test_negative_line_count_is_a_usage_error(cli, isolated_settings):
    log = isolated_settings.logs_dir / "emulator.log"
    log.parent.mkdir(parents=True)
    log.write_text("one\ntwo\n")
    result = cli("logs", "emulator", "-n", "-5")
    assert result.exit_code == 2 and "'--lines' / '-n'" in result.output
    assert cli("logs", "emulator", "-n", "1").output == "two\n"


def test_a_report_path_that_is_a_folder_is_refused_before_checking(cli, isolated_settings, tmp_path):
    result = cli("check", "1", "--junit", str(tmp_path))
    assert result.exit_code == 2 and "is a directory" in result.output
    result = cli("check", "1", "--json", "/proc/nowhere/report.json")
    assert result.exit_code == 1
    assert "--json /proc/nowhere/report.json cannot be written" in result.output
    assert "found nothing" not in result.output  # said before asking the engine anything


def test_a_workspace_that_is_a_file_is_refused_before_the_engine_starts(cli, isolated_settings, monkeypatch, tmp_path):
    a_file = tmp_path / "not-a-folder"
    a_file.write_text("x")
    monkeypatch.setenv("SECURECART_WORKSPACE", str(a_file))
    for args in (("start", "1"), ("reset", "1"), ("solve", "1"), ("deploy", "1")):
        result = cli(*args)
        assert result.exit_code == 1, args
        assert f"Error: The workspace {a_file} is a file, not a folder." in result.output, args
        assert not (isolated_settings.home / "run").exists() and not (isolated_settings.home / "postgres").exists()


def test_an_unusable_home_is_named_before_anything_starts(cli, isolated_settings, monkeypatch, tmp_path):
    import os

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    monkeypatch.setenv("SECURECART_HOME", str(a_file / "home"))
    result = cli("up")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: SECURECART_HOME {a_file / 'home'} cannot be written: Not a directory.")
    if os.geteuid() != 0:  # root writes through read-only permissions
        home = tmp_path / "ro"
        home.mkdir(mode=0o500)
        monkeypatch.setenv("SECURECART_HOME", str(home))
        result = cli("up")
        assert result.output.startswith(f"Error: SECURECART_HOME {home} cannot be written: Permission denied.")
