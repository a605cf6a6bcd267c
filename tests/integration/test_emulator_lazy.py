"""The emulator starts with moto's routing only; a service and the kit's extensions for it load on its first request."""

from __future__ import annotations

import json
import urllib.request

import pytest
from emulator_fixture import client, create_function, running_emulator

pytestmark = pytest.mark.integration

HEAVY = ("stepfunctions", "ec2", "cloudformation", "rds", "elbv2", "autoscaling", "lambda")


def _health(handle) -> dict:
    with urllib.request.urlopen(handle.endpoint_url + "/_securecart/health", timeout=10) as response:
        return json.load(response)


def _children(handle) -> list[int]:
    import psutil

    return [child.pid for child in psutil.Process(handle.process.pid).children(recursive=True)]


@pytest.fixture(scope="module")
def emulator():
    with running_emulator() as handle:
        yield handle


def test_first_answer_loads_no_heavy_service_and_starts_no_worker(emulator):
    assert client(emulator, "sts").get_caller_identity()["Account"] == "123456789012"
    document = _health(emulator)
    assert document["services"]["sts"] == "running"
    assert {name: document["services"][name] for name in HEAVY} == {name: "available" for name in HEAVY}
    assert document["extensions"] == ["iam.sts"]  # a patch of STS's AssumeRole, which imports nothing more
    assert _children(emulator) == [], "no Lambda worker before a function exists"


def test_a_service_loads_with_its_extensions_on_first_request(emulator):
    client(emulator, "stepfunctions").list_state_machines()
    document = _health(emulator)
    assert document["services"]["stepfunctions"] == "running"
    assert "stepfunctions" in document["extensions"]
    assert document["services"]["cloudformation"] == "available"


def test_the_first_function_starts_the_spare_worker(emulator):
    client(emulator, "lambda").list_functions()
    assert "lambda" in _health(emulator)["extensions"]
    assert _children(emulator) == []
    create_function(emulator, "lazy", "def handler(event, context):\n    return 1\n")
    import time

    def workers() -> list[int]:
        # As root the service user's Python is prepared first, by short-lived child processes.
        import psutil

        found = []
        for pid in _children(emulator):
            try:
                if any("lambda_worker" in part for part in psutil.Process(pid).cmdline()):
                    found.append(pid)
            except psutil.NoSuchProcess:
                pass
        return found

    deadline = time.monotonic() + 60
    while not workers() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(workers()) == 1


def test_cloudformation_installs_every_extension(emulator):
    client(emulator, "cloudformation").list_stacks()
    from securecart_lab.emulator import extensions

    assert sorted(_health(emulator)["extensions"]) == sorted(extensions.INSTALLERS)
