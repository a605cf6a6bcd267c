"""What the emulator loads before its first answer, and no more than that answer needs.

Before moto is first imported (defer_imports, from __main__): moto's package __init__ modules, which import its mock
machinery, run only if a name they define is used (hooks.LAZY_PACKAGES); modules moto uses in a few actions load on
first use (hooks.DEFERRED_MODULES); moto's routing table compiles a URL pattern only when a Host could match it.

Once moto is imported (install, from build_app): moto loads a service's botocore model through a new botocore loader
each time, and the loader checks the service's name by listing the folders of all ~450 services botocore and moto
ship: 25 ms before each service's first answer. The kit keeps one loader, which looks for that service's folder.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import sys
import threading
import types
from collections.abc import Callable, Iterator
from typing import Any

from securecart_lab.emulator import hooks

# --- before moto loads ------------------------------------------------------------------------------------------


class _DeferredModule(types.ModuleType):
    """Stands in sys.modules for a module until one of its attributes is read, then imports it and passes on."""

    def __init__(self, name: str):
        super().__init__(name)
        self.__dict__["_deferred_lock"] = threading.Lock()
        self.__dict__["_deferred_module"] = None

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._load(), attribute)

    def _load(self) -> types.ModuleType:
        with self._deferred_lock:
            if self._deferred_module is None:
                if sys.modules.get(self.__name__) is self:
                    del sys.modules[self.__name__]
                self.__dict__["_deferred_module"] = importlib.import_module(self.__name__)
        return self._deferred_module


def _lazy_package(name: str, names: dict[str, Callable[[], Any]]) -> types.ModuleType:
    spec = importlib.util.find_spec(name)
    module = importlib.util.module_from_spec(spec)  # __path__, __file__, __spec__: what finding submodules needs
    module.__dict__.update(hooks.EAGER_PACKAGE_NAMES.get(name, {}))

    def __getattr__(attribute: str) -> Any:
        if attribute not in names:
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        value = names[attribute]()
        setattr(module, attribute, value)
        return value

    module.__getattr__ = __getattr__
    return module


_SCHEME = re.compile(r"https\?://|http://|https://")
_META = set(".^$*+?{}[]\\|()")


def literal_prefix(pattern: str) -> str | None:
    """What every URL the pattern matches starts with, after its scheme: the literal characters up to the first
    special one (an escaped dot is a dot). None when the pattern does not start with a scheme or has an
    alternative (|) that could bypass the prefix."""
    scheme = _SCHEME.match(pattern)
    if scheme is None or "|" in pattern:
        return None
    out, i = [], scheme.end()
    while i < len(pattern):
        if pattern[i] == "\\" and pattern[i + 1:i + 2] in (".", "-", "/"):
            char, end = pattern[i + 1], i + 2
        elif pattern[i] not in _META:
            char, end = pattern[i], i + 1
        else:
            break
        if pattern[end:end + 1] in ("?", "*", "+", "{"):
            break  # the character may be absent or repeated
        out.append(char)
        i = end
    return "".join(out)


class CompiledOnUse:
    """A regular expression compiled when a string could match it (one starting with its scheme and literal prefix
    is asked); what else is read of it compiles it."""

    __slots__ = ("pattern", "_starts", "_compiled")

    def __init__(self, pattern: str):
        self.pattern = pattern
        prefix = literal_prefix(pattern)
        self._starts = None if not prefix else (f"http://{prefix}", f"https://{prefix}")
        self._compiled = None

    def _regex(self) -> re.Pattern:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern)
        return self._compiled

    def match(self, string: str, *args) -> re.Match | None:
        if self._starts is not None and not args and not string.startswith(self._starts):
            return None
        return self._regex().match(string, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._regex(), name)

    def __repr__(self) -> str:
        return f"CompiledOnUse({self.pattern!r})"


def url_patterns_module() -> types.ModuleType:
    """moto.backend_index with its (service, pattern) pairs read from its source, each pattern compiled on use."""
    hook = hooks.HOOKS["server.url_patterns"]
    spec = importlib.util.find_spec(hook.module)
    tree = ast.parse(spec.loader.get_source(hook.module))
    pairs = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and [getattr(t, "id", None) for t in node.targets] == [hook.attribute]:
            for element in node.value.elts:
                name, call = element.elts
                if call.keywords or len(call.args) != 1 or ast.unparse(call.func) != "re.compile":
                    raise hooks.HookMissing(f"hook {hook.name}: {hook.module} builds its patterns another way")
                pairs.append((ast.literal_eval(name), CompiledOnUse(ast.literal_eval(call.args[0]))))
    if not pairs:
        raise hooks.HookMissing(f"hook {hook.name}: {hook.module} has no {hook.attribute} list")
    module = importlib.util.module_from_spec(spec)
    module.re = re
    setattr(module, hook.attribute, pairs)
    return module


def defer_imports() -> None:
    """Before moto is first imported (see the module doc)."""
    for name in hooks.DEFERRED_MODULES:
        if name not in sys.modules:
            sys.modules[name] = _DeferredModule(name)
    for name, names in hooks.LAZY_PACKAGES.items():
        if name not in sys.modules:
            sys.modules[name] = module = _lazy_package(name, names)
            parent, _, child = name.rpartition(".")
            if parent:
                setattr(sys.modules[parent], child, module)
    patterns = hooks.HOOKS["server.url_patterns"].module
    if patterns not in sys.modules:
        sys.modules[patterns] = module = url_patterns_module()
        parent, _, child = patterns.rpartition(".")
        setattr(sys.modules[parent], child, module)


# --- once moto is loaded ----------------------------------------------------------------------------------------


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
