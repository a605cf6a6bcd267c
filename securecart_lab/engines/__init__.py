"""Engines run the AWS APIs and databases the labs use: `local` (embedded, default) or `localstack` (Docker)."""

from __future__ import annotations

from securecart_lab.config import Settings
from securecart_lab.engines.base import Engine


def get_engine(settings: Settings) -> Engine:
    if settings.engine == "localstack":
        from securecart_lab.engines.localstack import LocalStackEngine

        return LocalStackEngine(settings)
    from securecart_lab.engines.local import LocalEngine

    return LocalEngine(settings)
