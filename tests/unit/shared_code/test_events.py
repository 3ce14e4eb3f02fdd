"""The event log's pieces that need no storage: types and the history kept in a message row."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timezone

import pytest

from shared_code.events import (
    ACTIVITY_EVENTS,
    LIFECYCLE_EVENTS,
    Event,
    download_counts,
    history_from_json,
    history_to_json,
    new_event,
)

AT = datetime(2026, 11, 27, 9, 30, 15, 123000, tzinfo=timezone.utc)


def test_history_round_trips_through_its_stored_form() -> None:
    history = (Event("created", AT), Event("scan_clean", AT, "att-1"), Event("queued", AT))
    stored = history_to_json(history)
    assert history_from_json(stored) == history
    assert stored == (
        '[["created","2026-11-27T09:30:15.123Z",null],'
        '["scan_clean","2026-11-27T09:30:15.123Z","att-1"],'
        '["queued","2026-11-27T09:30:15.123Z",null]]'
    )


def test_an_empty_history_reads_back_empty() -> None:
    assert history_from_json(history_to_json(())) == ()


def test_history_is_kept_to_whole_milliseconds() -> None:
    precise = AT.replace(microsecond=123456)
    assert history_from_json(history_to_json([Event("sent", precise)]))[0].at == AT


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        new_event("opened_by_mistake")
    assert new_event("sent", at=AT) == Event("sent", AT)


def test_lifecycle_and_activity_events_are_kept_apart() -> None:
    # Lifecycle events go in the message row with their change; activity in the events table.
    assert not LIFECYCLE_EVENTS & ACTIVITY_EVENTS
    with pytest.raises(ValueError):
        new_event("downloaded", kinds=LIFECYCLE_EVENTS)
    with pytest.raises(ValueError):
        new_event("sent", kinds=ACTIVITY_EVENTS)
    assert new_event("downloaded", at=AT, kinds=ACTIVITY_EVENTS).type == "downloaded"


def test_downloads_are_counted_per_attachment() -> None:
    events = [
        Event("downloaded", AT, "a"),
        Event("downloaded", AT, "a"),
        Event("downloaded", AT, "b"),
        Event("portal_opened", AT),
        Event("scan_clean", AT, "a"),
    ]
    assert download_counts(events) == Counter({"a": 2, "b": 1})
