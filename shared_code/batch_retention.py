"""What happens to a batch after it is sent: `done` noticed without anyone reading the batch, and
its patients' rows deleted as soon as they are no longer needed. The retention timer runs both.

* Done (`settle_finished_batches`): a sending batch none of whose rows is still to be sent becomes
  `done` and the practice's callback hears it once (`batches.settle_batch`), whether or not anyone
  reads the batch; its sealed rows to text (mobiles, dates of birth, texts) are deleted then, as
  they are when a batch is cancelled.
* Kept for the link's lifetime (`delete_old_batch_rows`): `LINK_TTL_DAYS` after upload, the refused
  rows behind errors.csv are deleted, and a batch never sent by then is cancelled with its rows
  deleted. A batch still sending (a spread or a send time ahead) keeps its rows until it is done.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import timedelta

from shared_code import clock
from shared_code.batch_store import (
    CANCELLED,
    READY,
    SCHEDULED,
    SENDING,
    Batch,
    batch_from_entity,
    batches_table,
    change_batch,
    delete_chunks,
)
from shared_code.settings import Settings
from shared_code.storage import Storage
from shared_code.tables import any_of, at_most

log = logging.getLogger(__name__)


def settle_finished_batches(storage: Storage) -> int:
    """Mark `done` every sending batch with nothing left to send; how many this run settled."""
    from shared_code.batches import is_finished, settle_batch

    count = 0
    for row in batches_table(storage).query(any_of("status", [SENDING, SCHEDULED])):
        batch = batch_from_entity(row)
        if batch.status == SCHEDULED and (batch.send_at is None or batch.send_at > clock.now()):
            continue
        if is_finished(storage, batch) and settle_batch(storage, batch).status != batch.status:
            count += 1
    return count


def delete_old_batch_rows(storage: Storage, settings: Settings) -> int:
    """Delete the rows of batches uploaded more than LINK_TTL_DAYS ago; how many batches."""
    now = clock.now()
    cutoff = now - timedelta(days=settings.link_ttl_days)
    count = 0
    for row in batches_table(storage).query(at_most("created_at", clock.iso(cutoff))):
        batch = batch_from_entity(row)
        if batch.errors_deleted_at is not None or batch.status in (SENDING, SCHEDULED):
            continue

        def expire(b: Batch) -> Batch | None:
            if b.errors_deleted_at is not None or b.status in (SENDING, SCHEDULED):
                return None
            stale = b.status == READY  # never sent: it cannot be any more
            return replace(
                b,
                status=CANCELLED if stale else b.status,
                cancelled_at=now if stale else b.cancelled_at,
                rows_deleted_at=b.rows_deleted_at or now,
                errors_deleted_at=now,
            )

        batch, won = change_batch(storage, batch.org, batch.id, expire)
        if won:
            delete_chunks(storage, batch.org, batch.id, "r", batch.row_chunks)
            delete_chunks(storage, batch.org, batch.id, "e", batch.error_chunks)
            log.info("batch %s: its rows were deleted %d days after upload", batch.id, settings.link_ttl_days)
            count += 1
    return count
