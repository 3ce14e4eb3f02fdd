"""Batch sending, the sending half: start, cancel, make each chunk's messages, and send batch
messages behind single sends (see `shared_code.batches` for the whole story and the reading half).

* Send (`send_batch`): the batch becomes `sending` (or `scheduled`) and one `batch-rows` entry per
  chunk is written; each chunk (`make_chunk_messages`) makes its rows' messages under ids fixed by
  batch and row, so a redone chunk or a repeated send makes no second message.
* Single sends first (`dispatch_batch_message`): a batch message waits while the `dispatch`
  queue has a single send visible, without counting a try.
* Cancel (`cancel_batch`): made messages not yet sent are revoked by the ETag-checked write the
  send claim races against, so exactly one wins.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from shared_code import clock, lifecycle
from shared_code.auth import Principal
from shared_code.batch_rows import ValidRow
from shared_code.batch_store import (
    CANCELLED,
    DONE,
    INVALID,
    READY,
    SCHEDULED,
    SENDING,
    Batch,
    change_batch,
    delete_chunks,
    get_batch,
    load_chunk,
    row_message_id,
)
from shared_code.batches import batch_message_rows, batch_summary, batch_view
from shared_code.errors import Conflict, Unprocessable
from shared_code.storage import BATCH_DISPATCH, BATCH_ROWS, Storage

log = logging.getLogger(__name__)

#: How long a batch message waits, while single sends are queued, before it looks again.
YIELD_SECONDS = 2


def send_batch(storage: Storage, org: str, batch_id: str) -> dict[str, Any]:
    """Start sending: `sending` (or `scheduled`), and a `batch-rows` entry per chunk.

    A batch already sending or scheduled is started again: its chunks are queued again, which
    makes only the messages a stopped run did not make (ids fixed by batch and row). A cancelled
    or invalid batch cannot be sent (409).
    """
    now = clock.now()

    def start(batch: Batch) -> Batch | None:
        if batch.status in (CANCELLED, INVALID, DONE):
            raise Conflict(f"This batch is {batch.status} and cannot be sent.")
        if batch.status != READY:
            return None
        status = SCHEDULED if batch.send_at is not None and batch.send_at > now else SENDING
        return replace(batch, status=status, send_started_at=now)

    batch, _ = change_batch(storage, org, batch_id, start)
    queue = storage.queue(BATCH_ROWS)
    for index in range(batch.row_chunks):
        queue.send_message(json.dumps({"org": org, "batch": batch.id, "chunk": index}).encode())
    log.info("batch %s: %d chunk(s) queued", batch.id, batch.row_chunks)
    return {**batch_summary(batch), "status": batch.status}


def cancel_batch(storage: Storage, org: str, batch_id: str) -> dict[str, Any]:
    """Stop a batch: no more messages are made, and every made one not yet sent is revoked."""
    from shared_code.message_model import message_from_entity

    now = clock.now()

    def stop(batch: Batch) -> Batch | None:
        if batch.status in (CANCELLED, INVALID):
            return None
        return replace(batch, status=CANCELLED, cancelled_at=now, rows_deleted_at=batch.rows_deleted_at or now)

    batch, stopped = change_batch(storage, org, batch_id, stop)
    if stopped:
        # Its rows to text are not needed any more: a chunk not yet made finds nothing to make.
        delete_chunks(storage, org, batch.id, "r", batch.row_chunks)
    # Its sender also checks the batch (`dispatch_batch_message`), so a message made after this
    # look (a chunk still being made) is never sent either; this makes the counters right at once.
    for row in batch_message_rows(storage, batch):
        message = message_from_entity(row)
        if message.first_sent_at is None and not message.revoked_at:
            _revoke_unsent(storage, org, message.id, now)
    log.info("batch %s cancelled", batch.id)
    return batch_view(storage, org, batch.id)


def _revoke_unsent(storage: Storage, org: str, message_id: str, now: datetime) -> None:
    """Revoke a batch message that has not started sending (one already on its way is unaffected):
    the ETag-checked write its send claim races against, so exactly one of them wins."""
    from shared_code.message_store import delete_documents, transition

    def unsent_revoked(message: Any) -> Any:
        if message.first_sent_at is not None or not lifecycle.waiting_to_send(message):
            return None
        return lifecycle.revoked(message, now)

    changed, won = transition(storage, org, message_id, unsent_revoked)
    if won:
        delete_documents(storage, changed)


def make_chunk_messages(storage: Storage, settings: Any, org: str, batch_id: str, chunk: int) -> int:
    """Make the messages of one chunk of rows (the `batch-rows` worker); how many were made or found.

    Safe to run any number of times: each row's message id is fixed, so a row already made is
    found and finished (queued if it was not), never made twice. Stops at once for a cancelled batch.
    """
    from shared_code.message_create import create_message
    from shared_code.message_request import NewMessage

    batch = get_batch(storage, org, batch_id)
    if batch.status not in (SENDING, SCHEDULED):
        return 0
    principal = Principal(org, batch.created_by, batch.practice_name)
    rows = [ValidRow.from_json(doc) for doc in load_chunk(storage, settings, org, batch.id, "r", chunk)]
    made = refused_rows = 0
    for position, row in enumerate(rows):
        if position % 20 == 0 and position and get_batch(storage, org, batch_id).status == CANCELLED:
            break  # cancelled while this chunk was being made
        request = NewMessage(
            date_of_birth=date.fromisoformat(row.date_of_birth),
            mobile=row.mobile,
            body=row.body,
            attachment_ids=batch.attachment_ids,
            send_at=_send_time(batch, row.row),
            template_id=batch.template_id,
            template_version=batch.template_version,
            batch_id=batch.id,
        )
        try:
            create_message(
                storage,
                settings,
                principal,
                request,
                message_id=row_message_id(batch.id, row.row),
                counted=False,
            )
        except Unprocessable as refused:
            # A document deleted or rejected since the batch was checked: this row cannot go.
            log.warning("batch %s row %d not made: %s", batch.id, row.row, [e.field for e in refused.errors])
            refused_rows += 1
            continue
        made += 1
    if refused_rows or str(chunk) in batch.unmade:
        # Counted as failed, so the batch can still be done; by chunk, so a chunk made again counts once.
        change_batch(
            storage,
            org,
            batch.id,
            lambda b: (
                None
                if b.unmade.get(str(chunk)) == refused_rows
                else replace(b, unmade={**b.unmade, str(chunk): refused_rows})
            ),
        )
    return made


def _send_time(batch: Batch, row: int) -> datetime | None:
    """When a row is due: the send time, plus the row's share of the spread (by its place in the file)."""
    start = batch.send_at
    if batch.spread_minutes and batch.rows > 1:
        share = (row - 2) / (batch.rows - 1)
        start = (start or batch.send_started_at or clock.now()) + timedelta(minutes=batch.spread_minutes * share)
    if start is not None and start <= clock.now():
        return None
    return start


def read_chunk_entry(body: bytes) -> tuple[str, str, int] | None:
    """A `batch-rows` entry's (org, batch id, chunk), or None when it is not one of ours."""
    try:
        doc = json.loads(body)
        return str(doc["org"]), str(doc["batch"]), int(doc["chunk"])
    except (ValueError, KeyError, TypeError):
        return None


def single_sends_waiting(storage: Storage) -> bool:
    """Whether a single send's entry is visible on the dispatch queue (so batch messages wait)."""
    from shared_code.storage import DISPATCH

    return bool(list(storage.queue(DISPATCH).peek_messages(max_messages=1)))


def _cancelled(storage: Storage, org: str, batch_id: str) -> bool:
    from shared_code.batch_store import find_batch

    batch = find_batch(storage, org, batch_id)
    return batch is None or batch.status == CANCELLED


def dispatch_batch_message(storage: Storage, settings: Any, body: bytes, dequeue_count: int) -> str:
    """The `batch-dispatch` worker: send one batch message, unless single sends are waiting."""
    from shared_code.dispatch import dispatch_message
    from shared_code.dispatch_queue import DispatchRequest, poison_unreadable, requeue_dispatch

    request = DispatchRequest.from_bytes(body)
    if request is None:
        poison_unreadable(storage, body)
        return "unreadable"
    request = replace(request, queue=BATCH_DISPATCH)
    if request.batch_id is not None and _cancelled(storage, request.org, request.batch_id):
        # Cancelled after this message was made: `cancel_batch` may not have seen it.
        _revoke_unsent(storage, request.org, request.message_id, clock.now())
        return "batch cancelled"
    if single_sends_waiting(storage):
        # Not a try: the same entry comes back shortly with the same count.
        requeue_dispatch(storage, replace(request, attempts=request.attempts + dequeue_count - 1), YIELD_SECONDS)
        return "behind single sends"
    return dispatch_message(storage, settings, request, dequeue_count=dequeue_count)
