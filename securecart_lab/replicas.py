"""Moved. The database tier as the app sees it (writer, replicas, routing parameters) is platform:
securecart_lab.postgres.topology. Lab 3's failure drill lives with the lab: labs/03-read-replicas/outage.py.
This module keeps older imports working."""

from __future__ import annotations

from securecart_lab.postgres.topology import (  # noqa: F401
    LAB2_STACK, NO_DATABASE_HINT, DbInstance, Topology, connect, lab_database_id, parameter, topology,
)

_lab_database_id = lab_database_id
_DRILL_NAMES = {"Outage", "primary_down", "primary_up", "PROBE_DB"}


def __getattr__(name: str):
    if name in _DRILL_NAMES:
        from securecart_lab.labs.registry import get_lab

        return getattr(get_lab(3).module("outage.py"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
