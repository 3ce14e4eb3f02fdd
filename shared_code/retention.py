"""The timer's work: purge expired links, re-queue any message a crash left behind, and settle
and clear batches (`batch_retention`).

Purge: within an hour of a link's expiry its documents are deleted and the mobile
number and date-of-birth hash are dropped; the event log is kept for the practice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from shared_code import clock, lifecycle
from shared_code.dispatch_queue import enqueue_dispatch
from shared_code.message_create import advance_message
from shared_code.message_model import Message, message_from_entity
from shared_code.message_store import delete_documents, transition
from shared_code.settings import Settings
from shared_code.storage import MESSAGES, Storage
from shared_code.tables import any_of, at_most

log = logging.getLogger(__name__)

#: A queued message untouched this long has lost its queue entry (a crash between
#: the state change and the enqueue): it is queued again. Sending twice is impossible.
STUCK_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class RetentionReport:
    """What one run did (counts only)."""

    purged: int = 0
    requeued: int = 0
    batches_done: int = 0
    batch_rows_deleted: int = 0
    verdicts_forgotten: int = 0


def purge_expired(storage: Storage) -> int:
    """Purge every expired, not yet purged link (revoked ones too); returns how many."""
    now = clock.now()
    rows = storage.table(MESSAGES).query(at_most("linkExpiresAt", clock.iso(now)))
    count = 0
    for row in rows:
        message = message_from_entity(row)
        if message.purged_at:
            continue
        if purge_message(storage, message):
            count += 1
    return count


def purge_message(storage: Storage, message: Message) -> bool:
    """Delete a message's documents and personal data, keep its log; True if this call did it."""
    delete_documents(storage, message)
    purged, won = transition(storage, message.org, message.id, lambda m: lifecycle.purged(m, clock.now()))
    if won:
        log.info("message %s purged", message.id)
    return won


def requeue_stuck(storage: Storage, settings: Settings) -> int:
    """Queue again any message left in a sending state without progress; returns how many."""
    cutoff = clock.now() - STUCK_AFTER
    rows = storage.table(MESSAGES).query(
        any_of("status", [lifecycle.AWAITING_SCAN, lifecycle.QUEUED, lifecycle.SCHEDULED])
    )
    count = 0
    for row in rows:
        message = message_from_entity(row)
        if message.revoked_at or row.timestamp is None:
            continue
        changed = row.timestamp
        if changed.tzinfo is None:
            changed = changed.replace(tzinfo=clock.now().tzinfo)
        if changed > cutoff:
            continue
        if message.state == lifecycle.AWAITING_SCAN:
            advance_message(storage, settings, message.org, message.id)
            continue
        if message.send_at and message.send_at - clock.now() > timedelta(hours=1):
            continue  # a long wait: its queue entry is hidden, not lost

        # Touch the row first, so the next sweep does not queue it yet again.
        message, won = transition(storage, message.org, message.id, lambda m: lifecycle.requeued(m, clock.now()))
        if won:
            enqueue_dispatch(storage, message)
            count += 1
    return count


def run_retention(storage: Storage, settings: Settings) -> RetentionReport:
    """One timer run: purge, sweep, the batches (`batch_retention`: done ones settled, old rows
    deleted), and Defender results no scan claimed."""
    from shared_code.batch_retention import delete_old_batch_rows, settle_finished_batches
    from shared_code.scan_verdicts import forget_unclaimed_scan_results

    return RetentionReport(
        purged=purge_expired(storage),
        requeued=requeue_stuck(storage, settings),
        batches_done=settle_finished_batches(storage),
        batch_rows_deleted=delete_old_batch_rows(storage, settings),
        verdicts_forgotten=forget_unclaimed_scan_results(storage),
    )
