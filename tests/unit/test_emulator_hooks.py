"""Every moto attribute the emulator patches still exists: a moto upgrade that moves one fails here, loudly."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from securecart_lab.emulator import hooks

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", sorted(hooks.HOOKS))
def test_hook_point_exists(name):
    hook = hooks.HOOKS[name]
    assert hooks.resolve(name) is not None, f"{hook.module}.{hook.attribute} ({hook.why})"


def test_moto_is_in_the_tested_range():
    major, minor = (int(part) for part in version("moto").split(".")[:2])
    assert (major, minor) == (5, 2), "hooks.py was verified against moto 5.2; re-check every hook before widening"


def test_jsonata_is_imported_by_name_where_hooks_say():
    # moto binds eval_jsonata_expression by name in these modules; a new importer would escape the patch.
    import moto.stepfunctions.parser as parser

    root = Path(parser.__file__).parent
    importers = {
        str(path.relative_to(root)) for path in root.rglob("*.py")
        if "import" in path.read_text() and "eval_jsonata_expression" in path.read_text()
    }
    assert importers == {
        "asl/jsonata/jsonata.py", "asl/jsonata/validations.py", "asl/component/common/string/string_expression.py"}


def test_missing_hook_is_reported_by_name():
    hooks.HOOKS["test.missing"] = hooks.Hook("test.missing", "moto.awslambda.models", "LambdaFunction.gone", "test")
    try:
        with pytest.raises(hooks.HookMissing, match="test.missing"):
            hooks.resolve("test.missing")
    finally:
        del hooks.HOOKS["test.missing"]


def test_extensions_install_cleanly_in_a_fresh_process():
    # Patching moto globally would leak into other tests: install in a child process.
    code = (
        "import os; os.environ['MOTO_PORT'] = '1'\n"
        "from securecart_lab.emulator import hooks, server\n"
        "server.install_extensions()\n"
        "from securecart_lab.emulator import lambda_runtime, events, stepfunctions\n"
        "assert hooks.resolve('lambda.invoke_lambda') is lambda_runtime._invoke_lambda\n"
        "assert hooks.resolve('events.send_to_targets') is events.send_to_targets\n"
        "assert hooks.resolve('events.event_pattern') is events.EventPattern\n"
        "assert hooks.resolve('events.response.test_event_pattern') is events.test_event_pattern\n"
        "for name in ('sfn.jsonata', 'sfn.jsonata.string_expression', 'sfn.jsonata.validations'):\n"
        "    assert hooks.resolve(name) is stepfunctions.eval_jsonata, name\n"
        "assert hooks.resolve('config')['stepfunctions']['execute_state_machine'] is True\n"
        "from securecart_lab.emulator import stepfunctions_api\n"
        "for name, action in stepfunctions_api.NEW_ACTIONS.items():\n"
        "    assert getattr(hooks.resolve('sfn.response'), name) is action, name\n"
        "print('installed')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "installed" in result.stdout


def test_actions_the_kit_adds_are_still_missing_from_moto():
    # hooks.add refuses to shadow an action moto implements; a moto upgrade that adds one must be re-checked.
    from moto.stepfunctions.responses import StepFunctionResponse

    from securecart_lab.emulator import stepfunctions_api

    assert stepfunctions_api.NEW_ACTIONS
    for name in stepfunctions_api.NEW_ACTIONS:
        assert not hasattr(StepFunctionResponse, name), f"moto now implements {name}: compare it with the kit's"


def test_add_refuses_to_shadow_what_moto_has():
    with pytest.raises(hooks.HookMissing, match="moto now has describe_execution"):
        hooks.add("sfn.response", "describe_execution", lambda self: None)
