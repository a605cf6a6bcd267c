"""Every moto object the lab 2 bridges patch still exists: a moto upgrade that moves one fails here."""

import pytest

from securecart_lab.emulator import hooks
from securecart_lab.emulator.bridges import BRIDGES
from securecart_lab.emulator.bridges.moto_points import BRIDGE_HOOKS


@pytest.mark.parametrize("hook", BRIDGE_HOOKS, ids=lambda h: h.name)
def test_bridge_hook_resolves(hook):
    assert hooks.HOOKS[hook.name] is hook
    assert hooks.resolve(hook.name) is not None


def test_the_lab2_bridges_are_installed_by_the_emulator():
    assert {"cloudformation", "rds", "ec2", "elbv2"} <= set(BRIDGES)
