"""The event log of a message: what happened to it and when, kept after the purge.

Events carry types, times and attachment ids only, never personal data. They live in two
places, chosen by who causes them:

* The message's lifecycle (created, scanned, queued, sent, delivered, locked, revoked,
  purged...; see `shared_code.lifecycle`) is kept in the message row itself, appended in
  the same ETag-checked write that makes the change (`Message.history`): a state is never
  stored without its event, nor an event without its state, and the busy send path makes
  no extra writes for it. Each kind happens a bounded number of times (locked and
  unlocked: once per practice unlock), so the row stays far below the 64 KiB a table
  property can hold.
* The patient's activity (opening the link, date-of-birth checks, downloads) can happen any
  number of times, so it is appended to the `events` table, one row each. Someone fetching a
  link in a loop must not grow storage or slow the practice's view, so opens of one link
  within `OPENED_WINDOW` are one `portal_opened` event, and at most `MAX_ACTIVITY_EVENTS` are
  kept per message (counted in one counter row of its partition, by ETag-checked writes).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from shared_code import clock
from shared_code.counters import take_slot
from shared_code.storage import EVENTS, Storage
from shared_code.tables import RowExists, Table, eq

#: Kept in the message row, written with the change they record (`Message.with_event`).
LIFECYCLE_EVENTS = frozenset(
    {
        "created",
        "scan_clean",
        "scan_rejected",
        "scheduled",
        "queued",
        "sent",
        "send_retry",
        "delivered",
        "delivery_failed",
        "locked",
        "unlocked",
        "revoked",
        "expired",
        "purged",
        # A template document the scheduled re-scan found infected, taken from the message.
        "document_withdrawn",
    }
)
#: The patient's doing, any number of times: one row each in the `events` table (`record_event`).
ACTIVITY_EVENTS = frozenset({"portal_opened", "dob_failed", "dob_verified", "downloaded"})
EVENT_TYPES = LIFECYCLE_EVENTS | ACTIVITY_EVENTS
#: Activity events kept per message; later ones are not recorded. Far more than a patient does:
#: five date-of-birth tries per unlock and a few downloads of at most five documents.
MAX_ACTIVITY_EVENTS = 200
#: Opens of one link within the same window of this length are one `portal_opened` event
#: (a phone's link preview and the patient's own tap, or reloads, are one open).
OPENED_WINDOW = timedelta(minutes=5)
#: The counter row of a message's partition: `~` sorts after every event's row key (a time).
_COUNTER_ROW_KEY = "~count"
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """One thing that happened to a message."""

    type: str
    at: datetime
    attachment_id: str | None = None


def new_event(
    event_type: str,
    *,
    attachment_id: str | None = None,
    at: datetime | None = None,
    kinds: frozenset[str] = EVENT_TYPES,
) -> Event:
    """An event of a known type (one of `kinds`), at `at` or now."""
    if event_type not in kinds:
        raise ValueError(f"unknown event type {event_type!r} here")
    return Event(event_type, at or clock.now(), attachment_id)


def history_to_json(history: Iterable[Event]) -> str:
    """A message's lifecycle events as stored in its row: `[[type, at, attachmentId], ...]`."""
    return json.dumps([[e.type, clock.iso(e.at), e.attachment_id] for e in history], separators=(",", ":"))


def history_from_json(text: str) -> tuple[Event, ...]:
    """The lifecycle events stored in a message row."""
    return tuple(Event(t, clock.parse_iso(at), attachment_id) for t, at, attachment_id in json.loads(text))


def record_event(
    storage: Storage,
    message_id: str,
    event_type: str,
    *,
    attachment_id: str | None = None,
    at: datetime | None = None,
    once_per: timedelta | None = None,
    org: str | None = None,
    status: str | None = None,
    batch_id: str | None = None,
) -> Event | None:
    """Append an activity event to a message's log in the `events` table.

    With `once_per`, one event of this type per window of that length: a second in the same
    window is not recorded. None when the event was not recorded (a repeat in its window, or
    the message's log is full at MAX_ACTIVITY_EVENTS). With `org` (and the message's `status`),
    a recorded receipt is queued for the organisation's status callback.
    """
    event = new_event(event_type, attachment_id=attachment_id, at=at, kinds=ACTIVITY_EVENTS)
    table = storage.table(EVENTS)
    if once_per is None:
        # Time first so the log reads in order; the suffix (the write's nanoseconds, then a
        # random tail) keeps events that share a time apart and in the order they were written.
        row_key = f"{clock.iso(event.at)}|{time.time_ns() % 10**12:012d}{uuid.uuid4().hex[:4]}"
    else:
        # One row key per window: the window's repeats find it taken, at the cost of one read.
        row_key = f"{clock.iso(_window_start(event.at, once_per))}|{event_type}"
        if table.get(message_id, row_key) is not None:
            return None
    if not _take_slot(table, message_id):
        return None
    entity = {"PartitionKey": message_id, "RowKey": row_key, "type": event_type, "at": clock.iso(event.at)}
    if attachment_id:
        entity["attachmentId"] = attachment_id
    try:
        table.insert(entity)
    except RowExists:
        return None  # a parallel repeat in the same window recorded it (its slot stays used: harmless)
    if org is not None:
        from shared_code.callbacks import announce

        announce(storage, org, message_id, [event], status, batch_id=batch_id)
    return event


def _window_start(at: datetime, length: timedelta) -> datetime:
    """The start of the fixed window of `length` (counted from 1970) that `at` falls in."""
    return _EPOCH + ((at - _EPOCH) // length) * length


def _take_slot(table: Table, message_id: str) -> bool:
    """Count one more activity event for the message; False once MAX_ACTIVITY_EVENTS are counted."""
    taken = take_slot(table, message_id, _COUNTER_ROW_KEY, MAX_ACTIVITY_EVENTS)
    if taken is None:
        # Only a flood of parallel requests for one link gets here: that is what the cap is against.
        log.warning("message %s: an activity event was not recorded (too many at once)", message_id)
    return bool(taken)


def list_events(storage: Storage, message_id: str, *, history: Iterable[Event] = ()) -> list[Event]:
    """A message's events, oldest first: its lifecycle `history` (from its row) with its activity."""
    rows = storage.table(EVENTS).query(eq("PartitionKey", message_id))
    rows = sorted((r for r in rows if r["RowKey"] != _COUNTER_ROW_KEY), key=lambda r: r["RowKey"])
    activity = [Event(r["type"], clock.parse_iso(r["at"]), r.get("attachmentId")) for r in rows]
    # Stable sort: at the same time, lifecycle events come before activity.
    return sorted([*history, *activity], key=lambda e: e.at)


def download_counts(events: list[Event]) -> Counter[str]:
    """How many times each attachment was downloaded."""
    return Counter(e.attachment_id for e in events if e.type == "downloaded" and e.attachment_id)
