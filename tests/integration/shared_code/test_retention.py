"""Purge and sweep against real Azurite."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from shared_code import clock
from shared_code.lifecycle import QUEUED
from shared_code.message_store import get_message, transition
from shared_code.message_views import message_events
from shared_code.retention import purge_expired, requeue_stuck
from shared_code.storage import DISPATCH, DOCUMENTS
from tests.support.records import mark_sent, new_message


def _expire(storage, message, ago: timedelta = timedelta(minutes=1)):
    return transition(storage, message.org, message.id, lambda m: replace(m, link_expires_at=clock.now() - ago))[0]


def _document_exists(storage, message) -> bool:
    blob = storage.container(DOCUMENTS).get_blob_client(message.document_blob(message.attachment_ids[0]))
    return blob.exists()


def test_expired_link_is_purged_keeping_its_log(storage, settings) -> None:
    message = mark_sent(storage, new_message(storage, settings))
    assert _document_exists(storage, message)
    _expire(storage, message)
    assert purge_expired(storage) >= 1
    purged = get_message(storage, message.org, message.id)
    assert purged.purged_at is not None
    assert purged.mobile is None and purged.dob_hash is None and purged.body is None and purged.sealed_token is None
    assert not _document_exists(storage, message)
    events = message_events(storage, get_message(storage, message.org, message.id))
    types = [e.type for e in events]
    assert types[-1] == "purged" and types.count("expired") == 1
    # `expired` is dated when the link expired, not when the timer noticed.
    expired = next(e for e in events if e.type == "expired")
    assert abs((expired.at - purged.link_expires_at).total_seconds()) < 0.01
    assert "created" in types
    assert purged.status == "expired"


def test_purge_runs_once(storage, settings) -> None:
    message = _expire(storage, mark_sent(storage, new_message(storage, settings)))
    purge_expired(storage)
    purge_expired(storage)
    types = [e.type for e in message_events(storage, get_message(storage, message.org, message.id))]
    assert types.count("purged") == 1


def test_live_links_are_untouched(storage, settings) -> None:
    message = mark_sent(storage, new_message(storage, settings))
    purge_expired(storage)
    live = get_message(storage, message.org, message.id)
    assert live.purged_at is None and live.mobile and _document_exists(storage, message)


def test_a_queued_message_without_progress_is_queued_again(storage, settings) -> None:
    message = new_message(storage, settings)
    assert message.state == QUEUED
    queue = storage.queue(DISPATCH)
    queue.clear_messages()
    # Untouched for long enough: the row's Timestamp is set by the service, so move the cutoff instead.
    import shared_code.retention as retention

    original = retention.STUCK_AFTER
    retention.STUCK_AFTER = timedelta(seconds=-5)
    try:
        assert requeue_stuck(storage, settings) >= 1
    finally:
        retention.STUCK_AFTER = original
    bodies = [m.content for m in queue.receive_messages(messages_per_page=32, visibility_timeout=1)]
    assert any(message.id.encode() in body for body in bodies)
