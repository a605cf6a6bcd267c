"""moto's per-request overheads in server mode, cached: answers that never change while the server runs.

On every request moto's dispatcher lists its package folder (to recognise a service named by module) and matches
the Host against some 200 URL patterns; and the service's response class lists its own methods with
inspect.getmembers. The kit computes each once (per Host, per class). Hosts of the services the kit adds (Schemas)
name them.
"""

from __future__ import annotations

from functools import lru_cache

from securecart_lab.emulator import extensions, hooks


def install() -> None:
    method_names = hooks.original("responses.method_names")
    hooks.replace("responses.method_names", lru_cache(maxsize=None)(lambda cls: frozenset(method_names(cls))))


def install_dispatcher() -> None:
    """moto's dispatcher's own work, cached (server.py builds the dispatcher on the first request it serves)."""
    modules = tuple(hooks.original("server.moto_modules")())
    hooks.replace("server.moto_modules", lambda: modules)

    moto_backend_for_host = hooks.original("server.backend_for_host")

    def backend_for_host(dispatcher, host):
        # Services moto lacks (extensions.KIT_SERVICES) are named before moto's patterns, which know none of them.
        for name, pattern in extensions.KIT_SERVICES.items():
            if host and pattern.match(f"http://{host}"):
                return name
        return moto_backend_for_host(dispatcher, host)

    hooks.replace("server.backend_for_host", lru_cache(maxsize=1024)(backend_for_host))
