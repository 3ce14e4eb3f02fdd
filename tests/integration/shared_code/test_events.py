"""The patient's activity log against real Azurite: repeated opens are one event, and each log is capped."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

from shared_code.events import MAX_ACTIVITY_EVENTS, OPENED_WINDOW, list_events, record_event
from shared_code.portal import note_opened
from shared_code.storage import EVENTS
from shared_code.tables import eq
from tests.support.records import new_message

START = datetime(2026, 11, 30, 9, 0, tzinfo=timezone.utc)


def rows(storage, message_id: str) -> list[dict]:
    return list(storage.table(EVENTS).query(eq("PartitionKey", message_id)))


def test_opening_a_link_in_a_loop_is_one_event(storage, settings) -> None:
    message = new_message(storage, settings)
    for _ in range(20):
        note_opened(storage, message)
    assert [e.type for e in list_events(storage, message.id)] == ["portal_opened"]
    # The loop added one event row (and the log's counter), nothing per fetch.
    assert len(rows(storage, message.id)) == 2


def test_opens_in_a_later_window_are_a_new_event(storage) -> None:
    message_id = str(uuid.uuid4())
    first = record_event(storage, message_id, "portal_opened", at=START, once_per=OPENED_WINDOW)
    assert (
        record_event(storage, message_id, "portal_opened", at=START + timedelta(minutes=4), once_per=OPENED_WINDOW)
        is None
    )
    later = record_event(storage, message_id, "portal_opened", at=START + OPENED_WINDOW, once_per=OPENED_WINDOW)
    assert first is not None and later is not None
    assert [e.at for e in list_events(storage, message_id)] == [START, START + OPENED_WINDOW]


def test_parallel_opens_in_one_window_are_one_event(storage) -> None:
    message_id = str(uuid.uuid4())
    with ThreadPoolExecutor(8) as pool:
        list(
            pool.map(
                lambda _: record_event(storage, message_id, "portal_opened", at=START, once_per=OPENED_WINDOW),
                range(16),
            )
        )
    assert [e.type for e in list_events(storage, message_id)] == ["portal_opened"]


def test_a_message_keeps_at_most_the_cap_of_activity_events(storage) -> None:
    message_id = str(uuid.uuid4())
    recorded = [
        record_event(storage, message_id, "downloaded", attachment_id="a1", at=START + timedelta(seconds=i))
        for i in range(MAX_ACTIVITY_EVENTS + 5)
    ]
    assert all(e is not None for e in recorded[:MAX_ACTIVITY_EVENTS])
    assert all(e is None for e in recorded[MAX_ACTIVITY_EVENTS:])
    events = list_events(storage, message_id)
    assert len(events) == MAX_ACTIVITY_EVENTS and events[-1].at == START + timedelta(seconds=MAX_ACTIVITY_EVENTS - 1)
    # Opens count against the same cap: a full log takes no more rows of any kind.
    assert (
        record_event(storage, message_id, "portal_opened", at=START + timedelta(days=1), once_per=OPENED_WINDOW) is None
    )
    assert len(rows(storage, message_id)) == MAX_ACTIVITY_EVENTS + 1


def test_parallel_events_cannot_overrun_the_cap(storage) -> None:
    message_id = str(uuid.uuid4())
    for i in range(MAX_ACTIVITY_EVENTS - 3):
        record_event(storage, message_id, "dob_failed", at=START + timedelta(seconds=i))
    with ThreadPoolExecutor(8) as pool:
        results = list(
            pool.map(lambda _: record_event(storage, message_id, "downloaded", attachment_id="a1"), range(12))
        )
    assert sum(r is not None for r in results) == 3
    assert len(list_events(storage, message_id)) == MAX_ACTIVITY_EVENTS
