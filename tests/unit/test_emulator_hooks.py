"""Every moto attribute the emulator patches still exists: a moto upgrade that moves one fails here, loudly."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest

from securecart_lab.emulator import hooks, startup

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


def _bound_names(path: Path) -> set[str]:
    """Names a module binds at its top level (imports and assignments)."""
    import ast

    names = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
        elif isinstance(node, ast.Assign):
            names |= {target.id for target in node.targets if isinstance(target, ast.Name)}
    return names


@pytest.mark.parametrize("package", sorted(hooks.LAZY_PACKAGES))
def test_a_deferred_package_init_defines_what_motos_does(package):
    # The emulator registers these packages without running their __init__: every name moto's __init__ defines
    # must resolve to the same object, and the names set at once must equal moto's.
    import importlib

    real = importlib.import_module(package)
    names = hooks.LAZY_PACKAGES[package]
    assert _bound_names(Path(real.__file__)) - {"annotations"} == set(names), f"{package}/__init__.py changed"
    for name, resolve in names.items():
        assert resolve() is getattr(real, name) or resolve() == getattr(real, name), name
    for name, value in hooks.EAGER_PACKAGE_NAMES.get(package, {}).items():
        assert value == getattr(real, name) and name in names, name


FIRST_ANSWER = r'''
import os, sys
os.environ["MOTO_PORT"] = "1"
from securecart_lab.emulator import startup
startup.defer_imports()
from securecart_lab.emulator import server
from werkzeug.test import Client
app = server.build_app("127.0.0.1", 1)
response = Client(app).post("/", data="Action=GetCallerIdentity&Version=2011-06-15", headers={
    "Host": "127.0.0.1:1", "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/sts/aws4_request, "
                     "SignedHeaders=host, Signature=abc", "X-Amz-Date": "20260101T000000Z"})
assert response.status_code == 200 and b"<Account>123456789012</Account>" in response.data, response.data
loaded = [name for name in ("moto.core.models", "responses", "unittest.mock") if name in sys.modules]
assert not loaded, f"loaded for the first answer: {loaded}"
assert type(sys.modules["cryptography.x509"]).__name__ == "_DeferredModule"
assert "flask" not in sys.modules, "the first answer built moto's Flask dispatcher (direct.py serves STS)"
# A request moto's dispatcher routes compiles only the URL patterns its Host may match.
response = Client(app).get("/", headers={
    "Host": "127.0.0.1:1", "X-Amz-Date": "20260101T000000Z",
    "Authorization": "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/us-east-1/s3/aws4_request, "
                     "SignedHeaders=host, Signature=abc"})
assert response.status_code == 200 and b"ListAllMyBucketsResult" in response.data, response.data
import moto.backend_index
compiled = [name for name, pattern in moto.backend_index.backend_url_patterns if pattern._compiled is not None]
assert len(compiled) < 30, compiled
# What was deferred still works when used: moto's mock decorator, and IAM's certificate parser.
import moto, moto.core, moto.iam.models
assert moto.mock_aws.__module__ == "moto.core.decorator" and moto.__version__
assert moto.core.patch_client.__module__ == "moto.core.models"
assert moto.core.set_initial_no_auth_action_count is not None
load_pem = moto.iam.models.x509.load_pem_x509_certificate  # imports cryptography.x509
real = sys.modules["cryptography.x509"]
assert type(real).__name__ == "module" and load_pem is real.load_pem_x509_certificate
from cryptography import x509
assert x509 is real
print("deferred")
'''


def test_the_first_answer_loads_no_mock_machinery_and_what_is_deferred_still_works():
    result = subprocess.run([sys.executable, "-c", FIRST_ANSWER], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "deferred" in result.stdout


def test_the_shared_model_loader_answers_as_motos():
    from botocore.exceptions import UnknownServiceError

    load = startup._model_loader()
    moto_load = hooks.original("core.load_service_model")
    for service, model in (("sts", "service-2"), ("dynamodb", "paginators-1"), ("sqs", "service-2")):
        assert load(service, model) == moto_load(service, model), (service, model)
    with pytest.raises(UnknownServiceError) as unknown:
        load("no-such-service", "service-2")
    assert "sts" in str(unknown.value)  # botocore's message names the services it knows


def _required_prefix(pattern: str) -> str | None:
    """What sre's own parse of the pattern says every match starts with after its scheme: the literal characters
    before anything repeated, optional, grouped or alternative."""
    import re._parser as sre_parse

    items = list(sre_parse.parse(pattern))

    def literals(start: int) -> tuple[str, int]:
        end = start
        while end < len(items) and items[end][0] == sre_parse.LITERAL:
            end += 1
        return "".join(chr(value) for _, value in items[start:end]), end

    head, i = literals(0)
    if head == "http" and i < len(items) and items[i][0] == sre_parse.MAX_REPEAT:
        low, high, repeated = items[i][1]  # the optional s of https?
        if (low, high) != (0, 1) or list(repeated) != [(sre_parse.LITERAL, ord("s"))]:
            return None
        rest, _ = literals(i + 1)
        head = "https?" + rest
    for scheme in ("https?://", "https://", "http://"):
        if head.startswith(scheme):
            return head[len(scheme):]
    return None


def test_the_routing_table_read_from_source_is_motos_and_each_prefix_is_one_every_match_has():
    import re

    import moto.backend_index as real

    module = startup.url_patterns_module()
    assert [(name, p.pattern) for name, p in module.backend_url_patterns] == [
        (name, p.pattern) for name, p in real.backend_url_patterns]
    assert len(module.backend_url_patterns) > 150
    for name, lazy in module.backend_url_patterns:
        prefix = startup.literal_prefix(lazy.pattern)
        if prefix:
            required = _required_prefix(lazy.pattern)
            assert required is not None and required.startswith(prefix), (name, lazy.pattern, prefix, required)
        # The same answers as the compiled pattern, for a Host of each service and near misses.
        for host in {f"{name}.us-east-1.amazonaws.com", f"{prefix or name}us-east-1.amazonaws.com",
                     f"x.{name}.us-east-1.amazonaws.com", "sts.us-east-1.amazonaws.com", "s3.amazonaws.com",
                     "bucket.s3.us-east-1.amazonaws.com", "127.0.0.1:4566"}:
            for url in (f"http://{host}", f"https://{host}"):
                assert bool(lazy.match(url)) == bool(re.compile(lazy.pattern).match(url)), (name, url)


@pytest.mark.parametrize("pattern, prefix", [
    (r"https?://sts\.(.*\.)?amazonaws\.com", "sts."),
    (r"https?://api\.ecr\.(.+)\.amazonaws\.com", "api.ecr."),
    (r"https?://abc?d", "ab"),  # c is optional
    (r"https?://ab+c", "a"),
    (r"https?://ab|cd", None),  # an alternative without the prefix
    (r"https?://(.*\.)?s3", ""),
    (r"http://169.254.169.254", "169"),  # an unescaped dot is any character
    (r"ftp://x", None),
])
def test_literal_prefix(pattern, prefix):
    assert startup.literal_prefix(pattern) == prefix
