"""A batch's rows in the `batches` table: the batch itself, and its rows in sealed chunks.

Partition: the organisation. Row keys: `{batch id}` for the batch; `{batch id}.r{n}` for the n-th
chunk of rows to text and `{batch id}.e{n}` for the n-th chunk of refused rows (for errors.csv).
A chunk is JSON sealed with a key derived from SESSION_KEY (AES-GCM), so mobiles, dates of birth
and the refused rows' cells are never stored in the clear; a chunk stays well under the 64 KiB a
table property may hold. A message's id is fixed by its batch and row (`row_message_id`), so the
messages of a batch are one row-key range of the organisation's partition in `messages`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from shared_code import clock
from shared_code.crypto import derive_key, seal, unseal
from shared_code.errors import NotFound
from shared_code.settings import Settings
from shared_code.storage import BATCHES
from shared_code.tables import RowChanged, Table

#: Rows per chunk to text: one queue entry's work, done well inside the function time-out.
ROWS_PER_CHUNK = 100
#: A chunk's JSON is cut before this many characters (sealed: 4/3 of it, under 32 K UTF-16 units).
MAX_CHUNK_CHARS = 20_000

READY, SCHEDULED, SENDING, DONE, CANCELLED, INVALID = "ready", "scheduled", "sending", "done", "cancelled", "invalid"


@dataclass(frozen=True)
class Batch:
    """One uploaded CSV and what to send with it (no patient data: that is in the sealed chunks)."""

    id: str
    org: str
    status: str
    created_at: datetime
    created_by: str
    practice_name: str | None
    header: tuple[str, ...]
    template_id: str | None
    template_version: int | None
    attachment_ids: tuple[str, ...]
    send_at: datetime | None
    spread_minutes: int
    rows: int
    valid: int
    invalid: int
    duplicates: int
    errors: tuple[dict[str, Any], ...]  # the first errors: row, column, message (no cell values)
    row_chunks: int
    error_chunks: int
    send_started_at: datetime | None = None
    cancelled_at: datetime | None = None
    #: When the sealed rows to text were deleted (the batch done or cancelled), and when the refused ones were.
    rows_deleted_at: datetime | None = None
    errors_deleted_at: datetime | None = None
    #: Rows whose message could not be made (a document deleted or rejected after the batch was
    #: checked), by chunk: a chunk made again writes its own count again, never adds to it.
    unmade: dict[str, int] = field(default_factory=dict)
    etag: str | None = field(default=None, compare=False)


def batches_table(tables: Any) -> Table:
    """The `batches` table of a Storage (or MemoryTables)."""
    return tables.table(BATCHES)


def chunk_key(settings: Settings) -> bytes:
    """The key that seals a batch's chunks at rest."""
    return derive_key(settings.session_key.reveal(), "batch-rows")


def row_message_id(batch_id: str, row: int) -> str:
    """The id of the message for `row` of a batch: the batch id's first 20 hex digits, then the row.

    Fixed by batch and row, so a repeated send or a chunk redone after a kill finds the message
    made before instead of making another; and in the form of a version-4 UUID (the batch id's
    version and variant digits are kept), like every other message id.
    """
    prefix = uuid.UUID(batch_id).hex[:20]
    return str(uuid.UUID(prefix + f"{row:012x}"))


def message_id_range(batch_id: str) -> tuple[str, str]:
    """The first and last message ids a batch can have (row keys compare as strings)."""
    return row_message_id(batch_id, 0), row_message_id(batch_id, 16**12 - 1)


def row_of(batch_id: str, message_id: str) -> int | None:
    """The row a message id of this batch stands for."""
    hex_id = uuid.UUID(message_id).hex
    if hex_id[:20] != uuid.UUID(batch_id).hex[:20]:
        return None
    return int(hex_id[20:], 16)


def chunked(items: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Items in chunks of at most ROWS_PER_CHUNK and MAX_CHUNK_CHARS of JSON."""
    chunk: list[dict[str, Any]] = []
    size = 2
    for item in items:
        length = len(json.dumps(item)) + 1
        if chunk and (len(chunk) == ROWS_PER_CHUNK or size + length > MAX_CHUNK_CHARS):
            yield chunk
            chunk, size = [], 2
        chunk.append(item)
        size += length
    if chunk:
        yield chunk


def save_chunks(tables: Any, settings: Settings, org: str, batch_id: str, kind: str, items: list[dict]) -> int:
    """Store items as sealed chunks `{batch}.{kind}{n}`; how many chunks."""
    table, key = batches_table(tables), chunk_key(settings)
    count = 0
    for count, chunk in enumerate(chunked(items), start=1):
        table.replace(
            {
                "PartitionKey": org,
                "RowKey": f"{batch_id}.{kind}{count - 1:05d}",
                "sealed": seal(key, json.dumps(chunk, separators=(",", ":"))),
            },
            etag=None,
        )
    return count


def load_chunk(tables: Any, settings: Settings, org: str, batch_id: str, kind: str, index: int) -> list[dict]:
    """One sealed chunk's items (empty when it is gone)."""
    row = batches_table(tables).get(org, f"{batch_id}.{kind}{index:05d}")
    if row is None:
        return []
    return json.loads(unseal(chunk_key(settings), row["sealed"]))


def delete_chunks(tables: Any, org: str, batch_id: str, kind: str, count: int) -> None:
    """Delete a batch's sealed chunks of one kind (those already gone are no error)."""
    table = batches_table(tables)
    for index in range(count):
        table.delete(org, f"{batch_id}.{kind}{index:05d}")


def insert_batch(tables: Any, batch: Batch) -> Batch:
    """Store a new batch."""
    etag = batches_table(tables).insert(_to_entity(batch))
    return replace(batch, etag=etag)


def find_batch(tables: Any, org: str, batch_id: str) -> Batch | None:
    """The organisation's batch, or None (another organisation's is never found)."""
    try:
        uuid.UUID(batch_id)
    except ValueError:
        return None
    row = batches_table(tables).get(org, batch_id)
    return None if row is None else batch_from_entity(row)


def get_batch(tables: Any, org: str, batch_id: str) -> Batch:
    """The organisation's batch; 404 otherwise."""
    batch = find_batch(tables, org, batch_id)
    if batch is None:
        raise NotFound("There is no batch with this id.")
    return batch


def change_batch(tables: Any, org: str, batch_id: str, change: Any) -> tuple[Batch, bool]:
    """Apply `change` (a Batch -> Batch or None) by an ETag-checked write, again on a lost race;
    the batch as stored, and whether this call changed it."""
    while True:
        batch = get_batch(tables, org, batch_id)
        new = change(batch)
        if new is None:
            return batch, False
        try:
            etag = batches_table(tables).replace(_to_entity(new), etag=batch.etag)
        except RowChanged:
            continue
        return replace(new, etag=etag), True


_DATES = ("created_at", "send_at", "send_started_at", "cancelled_at", "rows_deleted_at", "errors_deleted_at")
_JSON = ("header", "attachment_ids", "errors")


def _to_entity(batch: Batch) -> dict[str, Any]:
    entity: dict[str, Any] = {"PartitionKey": batch.org, "RowKey": batch.id}
    for name in Batch.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = getattr(batch, name)
        if name in _DATES:
            value = clock.iso(value) if value is not None else None
        elif name in _JSON:
            value = json.dumps(list(value))
        elif name == "unmade":
            value = json.dumps(value, sort_keys=True)
        entity[name] = value
    return entity


def batch_from_entity(row: Any) -> Batch:
    """A Batch from its table row (a `shared_code.tables.Row`, whose `etag` it keeps)."""
    values: dict[str, Any] = {"id": row["RowKey"], "org": row["PartitionKey"], "etag": row.etag}
    for name in Batch.__dataclass_fields__:
        if name in ("id", "org", "etag"):
            continue
        value = row.get(name)
        if name in _DATES:
            value = clock.parse_iso(value) if value else None
        elif name in _JSON:
            value = tuple(json.loads(value))
        elif name == "unmade":
            value = {str(k): int(v) for k, v in json.loads(value or "{}").items()}
        elif name in ("rows", "valid", "invalid", "duplicates", "row_chunks", "error_chunks", "spread_minutes"):
            value = int(value or 0)
        elif name == "template_version":
            value = None if value is None else int(value)
        values[name] = value
    return Batch(**values)
