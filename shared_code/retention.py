"""The timer's work: purge expired links, and re-queue any message a crash left behind.

Purge: within an hour of a link's expiry its documents are deleted and the mobile
number and date-of-birth hash are dropped; the event log is kept for the practice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta

from shared_code import clock
from shared_code.messages import (
    AWAITING_SCAN,
    DELIVERED,
    QUEUED,
    SCHEDULED,
    SENT,
    Message,
    advance_message,
    delete_documents,
    enqueue_dispatch,
    message_from_entity,
    transition,
)
from shared_code.settings import Settings
from shared_code.storage import MESSAGES, Storage

log = logging.getLogger(__name__)

#: A queued message untouched this long has lost its queue entry (a crash between
#: the state change and the enqueue): it is queued again. Sending twice is impossible.
STUCK_AFTER = timedelta(minutes=10)


@dataclass(frozen=True)
class RetentionReport:
    """What one run did (counts only)."""

    purged: int = 0
    requeued: int = 0


def purge_expired(storage: Storage) -> int:
    """Purge every expired, not yet purged link (revoked ones too); returns how many."""
    now = clock.now()
    rows = storage.table(MESSAGES).query_entities("linkExpiresAt le @now", parameters={"now": clock.iso(now)})
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

    def to_purged(m: Message) -> Message | None:
        if m.purged_at:
            return None
        if m.state in (SENT, DELIVERED) and not m.revoked_at:
            m = m.with_event("expired", at=m.link_expires_at)
        return replace(m, purged_at=clock.now(), mobile=None, dob_hash=None, body=None, sealed_token=None).with_event(
            "purged"
        )

    purged, won = transition(storage, message.org, message.id, to_purged)
    if won:
        log.info("message %s purged", message.id)
    return won


def requeue_stuck(storage: Storage, settings: Settings) -> int:
    """Queue again any message left in a sending state without progress; returns how many."""
    cutoff = clock.now() - STUCK_AFTER
    rows = storage.table(MESSAGES).query_entities(
        "status eq @a or status eq @q or status eq @s",
        parameters={"a": AWAITING_SCAN, "q": QUEUED, "s": SCHEDULED},
    )
    count = 0
    for row in rows:
        message = message_from_entity(row)
        if message.revoked_at or row.metadata.get("timestamp") is None:
            continue
        changed = row.metadata["timestamp"]
        if changed.tzinfo is None:
            changed = changed.replace(tzinfo=clock.now().tzinfo)
        if changed > cutoff:
            continue
        if message.state == AWAITING_SCAN:
            advance_message(storage, settings, message.org, message.id)
            continue
        if message.send_at and message.send_at - clock.now() > timedelta(hours=1):
            continue  # a long wait: its queue entry is hidden, not lost

        # Touch the row first, so the next sweep does not queue it yet again.
        def touch(m: Message) -> Message | None:
            return replace(m, queued_at=clock.now()) if m.state in (QUEUED, SCHEDULED) else None

        message, won = transition(storage, message.org, message.id, touch)
        if won:
            enqueue_dispatch(storage, message)
            count += 1
    return count


def run_retention(storage: Storage, settings: Settings) -> RetentionReport:
    """One timer run: purge, then sweep."""
    return RetentionReport(purged=purge_expired(storage), requeued=requeue_stuck(storage, settings))
