"""The README documents every command and every setting the code reads."""

import re
from pathlib import Path

from securecart_lab import cli

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()


def _commands():
    import typer.main

    return sorted(typer.main.get_command(cli.app).commands)


def test_every_command_is_in_the_readme():
    missing = [name for name in _commands() if f"securecart-lab {name}" not in README]
    assert not missing, f"commands missing from README.md: {missing}"


def test_every_command_has_help_with_an_example():
    import typer.main

    group = typer.main.get_command(cli.app)
    for name, command in group.commands.items():
        assert command.help and re.search(r"Example: .*securecart-lab " + name, command.help), name


def test_every_setting_the_code_reads_is_documented():
    source = "\n".join(p.read_text() for p in (ROOT / "securecart_lab").rglob("*.py"))
    internal = {"SECURECART_TEST", "SECURECART_LIFELINE_FD"}  # set by the kit for its own child processes
    names = set(re.findall(r'"(SECURECART_[A-Z_]+)"', source)) - internal
    missing = sorted(n for n in names if n not in README)
    assert not missing, f"settings missing from README.md: {missing}"


def test_readme_gives_the_two_start_commands():
    assert "pip install . && securecart-lab start 1" in README
    test_command = "pip install '.[test]' && python -m pytest -q -n auto --maxprocesses 4 --dist loadfile"
    assert test_command in README
    assert (ROOT / ".ci" / "run").read_text().rstrip().endswith(test_command)
