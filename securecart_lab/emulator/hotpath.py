"""What moto recomputes on every response in server mode, computed once: which attribute holds a field, request ids.

moto 5.2 serialises a response by asking, for every field of the output shape, which attribute of the result holds
it: six alias providers and botocore's xform_name run per field per request, though the answer depends only on the
field, its shape and the result's type. A DynamoDB item is a map of AttributeValue structures of ten fields each, so
GetItem spent 40 % of its time there. The kit remembers the candidate names per (field, shape, result type) and asks
moto's own picker for anything it would compute differently (another set of alias providers).

Each response's request id took 52 calls to random.choice; one call to choices draws the same kind of id from the
same (seedable) generator.

moto wraps every service's Flask app in flask-cors, whose after-request hook runs on every response; the kit's Guard
removes those headers and answers CORS itself, so the backend apps are built without it.
"""

from __future__ import annotations

import string
import threading
from typing import Any

from securecart_lab.emulator import hooks

_REQUEST_ID_POOL = string.ascii_letters + string.digits
_MAX_ENTRIES = 100_000  # shapes live as long as moto's cached service models; a bound in case some do not

_candidates: dict[tuple, tuple[tuple[str, ...], bool]] = {}  # names to try, whether one is a path
_lock = threading.Lock()


def _serializer_get_value(original, picker_class, default_providers, context_class, missing, get_value):
    """ResponseSerializer.get_value with the picker's candidate names remembered (see the module doc)."""

    def serializer_get_value(self, value: Any, key: str, shape) -> Any:
        picker = self._value_picker
        if type(picker) is not picker_class or picker.alias_providers is not default_providers \
                or picker.response_transformers:
            return original(self, value, key, shape)
        # What the alias providers read: the field, the result's class (its Meta, its name) and the shape with its
        # parent (which the serializer sets as it walks the output).
        cache_key = (type(value), key, shape, getattr(shape, "parent", None))
        candidates = _candidates.get(cache_key)
        if candidates is None:
            context = context_class(obj=value, key=key, shape=shape, operation_model=self.operation_model,
                                    service_model=self.operation_model.service_model, key_path=".".join(self.path))
            names = tuple(picker.get_possible_keys(context))
            candidates = (names, any("." in name for name in names))
            with _lock:
                if len(_candidates) >= _MAX_ENTRIES:
                    _candidates.clear()
                _candidates[cache_key] = candidates
        names, dotted = candidates
        if type(value) is dict and not dotted:
            for name in names:
                found = value.get(name, missing)
                if found is not missing:
                    return found
            return None
        for name in names:
            found = get_value(value, name, missing)
            if found is not missing:
                return found
        return None

    return serializer_get_value


def _request_id():
    random = None  # moto's generator, resolved on the first response (moto.moto_api is not loaded at start)

    def gen_amzn_requestid_long(headerdict: dict[str, Any] | None = None) -> str:
        nonlocal random
        if random is None:
            random = hooks.resolve("core.random")
        request_id = "".join(random.choices(_REQUEST_ID_POOL, k=52))
        if headerdict is not None and isinstance(headerdict, dict):
            headerdict.update({"x-amzn-requestid": request_id})
        return request_id

    return gen_amzn_requestid_long


def install() -> None:
    hooks.replace("serialize.serializer.get_value", _serializer_get_value(
        hooks.original("serialize.serializer.get_value"), hooks.resolve("serialize.picker"),
        hooks.resolve("serialize.alias_providers"), hooks.resolve("serialize.picker_context"),
        hooks.resolve("serialize.missing"), hooks.resolve("serialize.get_value")))
    hooks.replace("responses.request_id", _request_id())


def install_dispatcher() -> None:
    """Before moto's dispatcher builds its first Flask app (server.py builds the dispatcher when first needed)."""
    hooks.replace("server.global_cors", True)
