"""A short cut through the Tables SDK's generic serializer, for entities that need none.

Why: azure-data-tables turns an entity into JSON-ready values itself (`_add_entity_properties`:
dates to strings with their `@odata.type`, and so on), then hands the dict to its generated
layer, which runs it through a vendored msrest `Serializer` as a generic `{object}`. For
strings, numbers and booleans that pass returns every value unchanged, but it raises and
catches two exceptions per key and per string on the way, and reading a row back pays the same
toll in the `Deserializer`. For a message row that was about a quarter of a millisecond per
write and a tenth per read, several times per message (`python -m bench send`).

The short cut takes only a flat dict of str keys and JSON scalars, which the generic pass would
return as an equal dict; anything else (a model, a nested value, another type) goes the SDK's
own way. What goes on the wire and what the app reads back are the same either way, as the
tests check against the SDK's own output.
"""

from __future__ import annotations

import threading
from typing import Any

_SCALARS = (str, int, float, bool, type(None))
_lock = threading.Lock()
_installed = False


def is_flat(data: Any) -> bool:
    """Whether the generic serializer would return this value as an equal dict: str keys, scalar values."""
    return type(data) is dict and all(type(key) is str and type(value) in _SCALARS for key, value in data.items())


def install() -> None:
    """Put the short cut in front of the Tables SDK's serializer and deserializer (once per process)."""
    global _installed
    with _lock:
        if _installed:
            return
        from azure.data.tables._generated import _serialization as generated

        serialize_body = generated.Serializer.body
        deserialize_data = generated.Deserializer.deserialize_data

        def body(self: Any, data: Any, data_type: str, **kwargs: Any) -> Any:
            if data_type == "{object}" and not kwargs and is_flat(data):
                return dict(data)
            return serialize_body(self, data, data_type, **kwargs)

        def deserialize(self: Any, data: Any, data_type: str) -> Any:
            if data_type == "{object}" and is_flat(data):
                return dict(data)
            return deserialize_data(self, data, data_type)

        generated.Serializer.body = body
        generated.Deserializer.deserialize_data = deserialize
        _installed = True
