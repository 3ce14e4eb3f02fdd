"""The Tables short cut: it gives what the SDK's generic pass gives, and is taken only where it may be."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from azure.data.tables import EdmType, EntityProperty
from azure.data.tables._generated import _serialization as generated
from azure.data.tables._serialize import _add_entity_properties

from shared_code import table_serialization

ENTITY = {
    "PartitionKey": "org-1",
    "RowKey": str(uuid.uuid4()),
    "state": "queued",
    "body": "Llythyr – café ✓",
    "segments": 2,
    "ratio": 0.5,
    "revoked": False,
    "sentAt": datetime(2026, 11, 27, 6, 0, tzinfo=UTC),
    "blob": b"\x00\x01",
    "id": uuid.uuid4(),
    "typed": EntityProperty("12", EdmType.INT64),
    "empty": None,
}


@pytest.fixture(autouse=True, scope="module")
def installed() -> None:
    table_serialization.install()


def test_a_row_is_serialised_as_the_sdk_would() -> None:
    entity = _add_entity_properties(ENTITY)
    serializer = generated.Serializer()
    assert serializer.body(entity, "{object}") == serializer._serialize(entity, "{object}")  # the SDK's own pass
    assert serializer.body(entity, "{object}") is not entity  # a copy, as the SDK's pass makes


def test_a_row_read_back_is_deserialised_as_the_sdk_would() -> None:
    data = {
        "odata.etag": 'W/"1"',
        "PartitionKey": "org-1",
        "RowKey": "1",
        "Timestamp": "2026-11-27T06:00:00Z",
        "body": "Llythyr – café ✓",
        "segments": 2,
        "ratio": 0.5,
        "revoked": True,
        "sentAt@odata.type": "Edm.DateTime",
        "sentAt": "2026-11-27T06:00:00.000Z",
        "empty": None,
    }
    deserializer = generated.Deserializer()
    assert deserializer("{object}", data) == deserializer.deserialize_dict(data, "object") == data


def test_the_short_cut_takes_flat_rows_only(monkeypatch) -> None:
    generic: list[str] = []
    original = generated.Serializer._serialize

    def noted(self, data, data_type=None, **kwargs):
        generic.append(data_type)
        return original(self, data, data_type, **kwargs)

    monkeypatch.setattr(generated.Serializer, "_serialize", noted)
    serializer = generated.Serializer()
    serializer.body({"a": "b", "n": 1}, "{object}")
    assert generic == []  # flat: the short cut
    assert serializer.body({"a": {"nested": "b"}}, "{object}") == {"a": {"nested": "b"}}
    assert serializer.body({"a": ["b"]}, "{object}") == {"a": ["b"]}
    assert serializer.body({"a": "b"}, "str") == "{'a': 'b'}"
    assert generic == ["{object}", "{object}", "str"]  # anything else: the SDK's own way


@pytest.mark.parametrize(
    "value", [{"a": {"b": 1}}, {"a": [1]}, {1: "a"}, {"a": datetime(2026, 1, 1, tzinfo=UTC)}, ["a"], "a"]
)
def test_anything_but_a_flat_dict_of_scalars_is_not_flat(value) -> None:
    assert not table_serialization.is_flat(value)


def test_installing_twice_wraps_once() -> None:
    body = generated.Serializer.body
    table_serialization.install()
    assert generated.Serializer.body is body
