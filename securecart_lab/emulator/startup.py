"""What moto loads before a service's first answer, loaded once and no more than that answer needs.

moto loads a service's botocore model (the shapes it parses requests and serialises responses with) through a new
botocore loader each time, and the loader checks the service's name by listing the folders of all ~450 services
botocore and moto ship: 25 ms on a 2-core laptop before each service's first answer. The kit keeps one loader, which
checks a name by looking for that service's folder alone.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from securecart_lab.emulator import hooks


class _KnownServices:
    """What botocore's Loader.load_service_model asks of the list of every service: whether a name is in it (and,
    to name them in its error, what they are)."""

    def __init__(self, loader, type_name: str, list_all):
        self._loader, self._type_name, self._list_all = loader, type_name, list_all

    def __contains__(self, service_name: object) -> bool:
        from botocore.exceptions import DataNotFoundError

        try:
            return bool(self._loader.list_api_versions(service_name, self._type_name))
        except DataNotFoundError:
            return False

    def __iter__(self) -> Iterator[str]:
        return iter(self._list_all(self._type_name))


def _model_loader():
    loader = None
    lock = threading.Lock()

    def load_service_model(service_name: str, model_name: str) -> dict[str, Any]:
        nonlocal loader
        with lock:
            if loader is None:
                created = hooks.resolve("core.create_loader")()
                list_all = created.list_available_services
                created.list_available_services = lambda type_name: _KnownServices(created, type_name, list_all)
                loader = created
        return loader.load_service_model(service_name, model_name)

    return load_service_model


def install() -> None:
    hooks.replace("core.load_service_model", _model_loader())
