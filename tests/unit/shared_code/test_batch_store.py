"""A batch's rows on the in-memory table: message ids fixed by batch and row, sealed chunks within
a table property's size, the batch's round trip and ETag-checked changes, another organisation's 404."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from shared_code.batch_store import (
    MAX_CHUNK_CHARS,
    READY,
    ROWS_PER_CHUNK,
    SENDING,
    Batch,
    change_batch,
    chunked,
    find_batch,
    get_batch,
    insert_batch,
    load_chunk,
    message_id_range,
    row_message_id,
    row_of,
    save_chunks,
)
from shared_code.errors import NotFound
from shared_code.settings import Secret, Settings
from shared_code.storage import BATCHES
from shared_code.tables import MemoryTables

SETTINGS = Settings(session_key=Secret("SESSION_KEY", b"k" * 32, problem=""))
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def _batch(**changes) -> Batch:
    fields = dict(
        id=str(uuid.uuid4()),
        org="A12345",
        status=READY,
        created_at=NOW,
        created_by="gp1",
        practice_name="Riverside Surgery",
        header=("NHS Number", "DOB", "Mobile"),
        template_id=None,
        template_version=None,
        attachment_ids=("doc-1",),
        send_at=None,
        spread_minutes=0,
        rows=3,
        valid=2,
        invalid=1,
        duplicates=0,
        errors=({"row": 4, "column": "DOB", "message": "Enter a date"},),
        row_chunks=1,
        error_chunks=1,
    )
    fields.update(changes)
    return Batch(**fields)


def test_a_rows_message_id_is_fixed_by_batch_and_row_and_a_uuid4() -> None:
    batch_id = str(uuid.uuid4())
    first = row_message_id(batch_id, 2)
    assert first == row_message_id(batch_id, 2)
    assert first != row_message_id(batch_id, 3)
    assert first != row_message_id(str(uuid.uuid4()), 2)
    parsed = uuid.UUID(first)
    assert parsed.version == 4 and str(parsed) == first
    assert row_of(batch_id, first) == 2
    assert row_of(str(uuid.uuid4()), first) is None
    low, high = message_id_range(batch_id)
    ids = [row_message_id(batch_id, row) for row in (2, 15, 16, 255, 10_001)]
    assert all(low <= i <= high for i in ids)
    assert ids == sorted(ids)  # row order is row-key order


def test_chunks_hold_at_most_a_chunk_of_rows_and_characters() -> None:
    rows = [{"r": i, "b": "x"} for i in range(ROWS_PER_CHUNK * 2 + 1)]
    assert [len(c) for c in chunked(rows)] == [ROWS_PER_CHUNK, ROWS_PER_CHUNK, 1]
    big = [{"r": i, "b": "y" * 5000} for i in range(10)]
    chunks = list(chunked(big))
    assert all(len(json.dumps(c)) <= MAX_CHUNK_CHARS for c in chunks)
    assert sum(len(c) for c in chunks) == 10


def test_chunks_are_sealed_and_read_back() -> None:
    tables = MemoryTables()
    items = [{"r": i, "m": f"+44770090{i:04d}"} for i in range(150)]
    assert save_chunks(tables, SETTINGS, "A12345", "b1", "r", items) == 2
    stored = tables.table(BATCHES).get("A12345", "b1.r00000")
    assert "+44770090" not in stored["sealed"]
    assert (
        load_chunk(tables, SETTINGS, "A12345", "b1", "r", 0) + load_chunk(tables, SETTINGS, "A12345", "b1", "r", 1)
        == items
    )
    assert load_chunk(tables, SETTINGS, "A12345", "b1", "r", 2) == []
    assert load_chunk(tables, SETTINGS, "B99999", "b1", "r", 0) == []


def test_a_batch_round_trips_and_another_organisations_is_not_found() -> None:
    tables = MemoryTables()
    batch = insert_batch(tables, _batch())
    assert replace(get_batch(tables, "A12345", batch.id), etag=None) == replace(batch, etag=None)
    assert find_batch(tables, "B99999", batch.id) is None
    assert find_batch(tables, "A12345", "not-a-uuid") is None
    with pytest.raises(NotFound):
        get_batch(tables, "B99999", batch.id)


def test_a_change_is_made_once_and_none_leaves_it() -> None:
    tables = MemoryTables()
    batch = insert_batch(tables, _batch())
    changed, won = change_batch(tables, "A12345", batch.id, lambda b: replace(b, status=SENDING, send_started_at=NOW))
    assert won and changed.status == SENDING
    again, won = change_batch(tables, "A12345", batch.id, lambda b: None if b.status == SENDING else b)
    assert not won and again.status == SENDING
