"""What the API shows of a message, against real Azurite: its lifecycle from the row, its activity from the table."""

from __future__ import annotations

from shared_code.events import record_event
from shared_code.message_links import revoke_message
from shared_code.message_store import get_message
from shared_code.message_views import message_view
from shared_code.storage import EVENTS
from shared_code.tables import eq
from tests.support.records import new_message


def test_the_lifecycle_is_written_into_the_row_with_the_state_it_records(storage, settings) -> None:
    # Created, scanned and queued arrive with the row itself: no separate writes that a crash
    # could leave out, and none in the events table, which keeps the patient's activity.
    message = new_message(storage, settings)
    stored = get_message(storage, message.org, message.id)
    assert [e.type for e in stored.history] == ["created", "scan_clean", "queued"]
    assert stored.history[1].attachment_id == message.attachment_ids[0]
    assert list(storage.table(EVENTS).query(eq("PartitionKey", message.id))) == []

    record_event(storage, message.id, "portal_opened")
    revoke_message(storage, message.org, message.id)
    view = message_view(storage, get_message(storage, message.org, message.id))
    assert [e["type"] for e in view["events"]] == ["created", "scan_clean", "queued", "portal_opened", "revoked"]
