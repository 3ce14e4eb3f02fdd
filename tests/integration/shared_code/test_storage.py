"""Storage helpers against the session's Azurite."""

from __future__ import annotations

import uuid

import pytest
from azure.core.exceptions import ResourceExistsError

from shared_code.storage import EVENTS, insert_entity


def test_an_inserted_row_comes_back_as_its_etag_only(storage) -> None:
    table = storage.table(EVENTS)
    key = str(uuid.uuid4())
    meta = insert_entity(table, {"PartitionKey": key, "RowKey": "1", "type": "opened", "count": 3})
    assert meta["etag"] and meta["preference_applied"] == "return-no-content"
    assert meta.get("content") is None  # the service did not echo the row
    stored = table.get_entity(key, "1")
    assert (stored["type"], stored["count"], stored.metadata["etag"]) == ("opened", 3, meta["etag"])


def test_inserting_a_taken_key_is_refused_and_keeps_the_first_row(storage) -> None:
    table = storage.table(EVENTS)
    key = str(uuid.uuid4())
    insert_entity(table, {"PartitionKey": key, "RowKey": "1", "type": "first"})
    with pytest.raises(ResourceExistsError):
        insert_entity(table, {"PartitionKey": key, "RowKey": "1", "type": "second"})
    assert table.get_entity(key, "1")["type"] == "first"
