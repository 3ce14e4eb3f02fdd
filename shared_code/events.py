"""The event log of a message: what happened to it and when, kept after the purge.

Events carry types, times and attachment ids only, never personal data.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from shared_code import clock
from shared_code.storage import EVENTS, Storage

EVENT_TYPES = frozenset({
    "created", "scan_clean", "scan_rejected", "scheduled", "queued", "sent", "send_retry",
    "delivered", "delivery_failed", "portal_opened", "dob_failed", "dob_verified", "locked",
    "unlocked", "downloaded", "revoked", "expired", "purged",
})


@dataclass(frozen=True)
class Event:
    """One thing that happened to a message."""

    type: str
    at: datetime
    attachment_id: str | None = None


def record_event(storage: Storage, message_id: str, event_type: str, *,
                 attachment_id: str | None = None, at: datetime | None = None) -> Event:
    """Append an event to a message's log."""
    if event_type not in EVENT_TYPES:
        raise ValueError(f"unknown event type {event_type!r}")
    at = at or clock.now()
    entity = {
        "PartitionKey": message_id,
        # Time first so the log reads in order; the suffix (the write's nanoseconds, then a
        # random tail) keeps events that share a time apart and in the order they were written.
        "RowKey": f"{clock.iso(at)}|{time.time_ns() % 10**12:012d}{uuid.uuid4().hex[:4]}",
        "type": event_type,
        "at": clock.iso(at),
    }
    if attachment_id:
        entity["attachmentId"] = attachment_id
    storage.table(EVENTS).create_entity(entity)
    return Event(event_type, at, attachment_id)


def record_events(storage: Storage, message_id: str, events: list[tuple[str, str | None]], *,
                  at: datetime | None = None) -> None:
    """Append several events (type, attachment id) with one time.

    One insert each: measured against Azurite, the SDK's batch transaction costs more than
    three plain inserts (it builds a multipart request on a thread pool).
    """
    at = at or clock.now()
    for event_type, attachment_id in events:
        record_event(storage, message_id, event_type, attachment_id=attachment_id, at=at)


def list_events(storage: Storage, message_id: str) -> list[Event]:
    """A message's events, oldest first."""
    rows = storage.table(EVENTS).query_entities(
        "PartitionKey eq @pk", parameters={"pk": message_id}
    )
    rows = sorted(rows, key=lambda r: r["RowKey"])
    events = [Event(r["type"], clock.parse_iso(r["at"]), r.get("attachmentId")) for r in rows]
    return sorted(events, key=lambda e: e.at)


def download_counts(events: list[Event]) -> Counter[str]:
    """How many times each attachment was downloaded."""
    return Counter(e.attachment_id for e in events if e.type == "downloaded" and e.attachment_id)
