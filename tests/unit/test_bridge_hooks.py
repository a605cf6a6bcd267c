"""The emulator installs the lab 2 and lab 3 bridges. (Every moto point they patch is checked, with all the
others, in test_emulator_hooks.py.)"""

from securecart_lab.emulator.bridges import BRIDGES


def test_the_bridges_are_installed_by_the_emulator():
    assert {"cloudformation", "rds", "ec2", "elbv2", "replicas"} <= set(BRIDGES)
