"""moto's per-request overheads in server mode, cached: answers that never change while the server runs.

On every request moto's dispatcher lists its package folder (to recognise a service named by module) and matches
the Host against some 200 URL patterns; and the service's response class lists its own methods with
inspect.getmembers. The kit computes each once (per Host, per class).
"""

from __future__ import annotations

from functools import lru_cache

from securecart_lab.emulator import hooks


def install() -> None:
    modules = tuple(hooks.original("server.moto_modules")())
    hooks.replace("server.moto_modules", lambda: modules)

    backend_for_host = lru_cache(maxsize=1024)(hooks.original("server.backend_for_host"))
    hooks.replace("server.backend_for_host", backend_for_host)

    method_names = hooks.original("responses.method_names")
    hooks.replace("responses.method_names", lru_cache(maxsize=None)(lambda cls: frozenset(method_names(cls))))
