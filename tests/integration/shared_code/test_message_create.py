"""Making a message against real Azurite: its own copies, waiting on scans, checks, and runs under one id."""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest

from shared_code.attachments import REJECTED, _settle, delete_attachment, find_attachment, upload_attachment
from shared_code.errors import NotFound, Unprocessable
from shared_code.lifecycle import AWAITING_SCAN, FAILED, QUEUED, SCHEDULED
from shared_code.message_create import create_message, on_attachment_scanned
from shared_code.message_store import get_message
from shared_code.message_views import message_events
from shared_code.storage import DOCUMENTS
from shared_code.tables import eq
from tests.support.records import clean_attachment, new_message, principal
from tests.support.stack import sample_pdf


def test_a_message_with_clean_attachments_is_queued_with_its_own_copies(storage, settings) -> None:
    attachment = clean_attachment(storage, settings)
    message = new_message(storage, settings, attachment_ids=[attachment.id])
    assert message.state == QUEUED
    documents = storage.container(DOCUMENTS)
    copy = documents.get_blob_client(message.document_blob(attachment.id))
    assert copy.download_blob().readall() == documents.get_blob_client(attachment.blob_name).download_blob().readall()
    # Deleting the attachment does not break the message.
    delete_attachment(storage, attachment.org, attachment.id)
    assert copy.exists()
    with pytest.raises(NotFound):
        delete_attachment(storage, attachment.org, attachment.id)


def test_a_message_waits_for_a_scan_and_fails_when_it_is_rejected(storage, settings) -> None:
    data = sample_pdf("x")
    attachment = upload_attachment(storage, settings, principal(), "x.pdf", data)
    message = new_message(storage, settings, attachment_ids=[attachment.id])
    assert message.state == AWAITING_SCAN
    _settle(
        storage,
        replace(
            find_attachment(storage, attachment.org, attachment.id),
            status=REJECTED,
            reason="contains a virus",
            scan_engine="test",
        ),
        data,
    )
    on_attachment_scanned(storage, settings, attachment.org, attachment.id)
    failed = get_message(storage, message.org, message.id)
    assert failed.state == FAILED and "contains a virus" in failed.failure_reason
    assert "scan_rejected" in [e.type for e in message_events(storage, get_message(storage, message.org, message.id))]


def test_a_rejected_or_unknown_attachment_is_a_422(storage, settings) -> None:
    data = sample_pdf("x")
    attachment = upload_attachment(storage, settings, principal(), "x.pdf", data)
    _settle(storage, replace(attachment, status=REJECTED, reason="bad", scan_engine="test"), data)
    with pytest.raises(Unprocessable) as error:
        new_message(storage, settings, attachment_ids=[attachment.id])
    assert error.value.errors[0].field == "attachmentIds[0]"
    other_org = clean_attachment(storage, settings, org="B99999")
    with pytest.raises(Unprocessable):
        new_message(storage, settings, attachment_ids=[other_org.id])


def test_a_future_send_time_schedules_the_message(storage, settings) -> None:
    from datetime import timedelta

    from shared_code import clock

    message = new_message(storage, settings, sendAt=clock.iso(clock.now() + timedelta(hours=2)))
    assert message.state == SCHEDULED and message.status == "scheduled"
    assert message.link_expires_at - message.send_at == timedelta(days=settings.link_ttl_days)


def test_a_failure_after_the_message_is_accepted_is_not_an_error(storage, settings, monkeypatch) -> None:
    """An error answer would make the caller retry and the patient get two texts; the sweeper finishes it."""
    from datetime import timedelta

    from azure.core.exceptions import ServiceRequestError

    import shared_code.message_create as message_create
    import shared_code.retention as retention
    from shared_code.storage import DISPATCH

    def queue_down(*_args, **_kwargs):
        raise ServiceRequestError("queue unreachable")

    monkeypatch.setattr(message_create, "enqueue_dispatch", queue_down)
    message = new_message(storage, settings)
    assert get_message(storage, message.org, message.id).state == QUEUED
    monkeypatch.undo()

    queue = storage.queue(DISPATCH)
    monkeypatch.setattr(retention, "STUCK_AFTER", timedelta(seconds=-5))
    retention.requeue_stuck(storage, settings)
    bodies = [m.content for m in queue.receive_messages(messages_per_page=32, visibility_timeout=1)]
    assert any(message.id.encode() in body for body in bodies)


def _runs_under_one_id(storage, settings, text: str):
    """A function making the same message request under one message id, as runs under one key do."""
    from shared_code.message_request import parse_new_message

    attachment = clean_attachment(storage, settings)
    payload = {
        "patient": {"nhsNumber": "9434765919", "dateOfBirth": "1970-01-31", "mobile": "07700900123"},
        "body": text,
        "attachmentIds": [attachment.id],
    }
    message_id = str(uuid.uuid4())
    return message_id, lambda: create_message(
        storage, settings, principal(), parse_new_message(payload, settings), message_id=message_id
    )


def test_a_second_run_under_one_message_id_finds_the_first_run_s_message(storage, settings) -> None:
    # An earlier run (under the same Idempotency-Key) died after making the message, perhaps
    # before queueing it: the next run returns that message and queues it, making no other.
    from shared_code.storage import DISPATCH, LINKS

    message_id, run = _runs_under_one_id(storage, settings, "Once only")
    first = run()
    again = run()
    assert again.id == first.id == message_id and again.token_hash == first.token_hash
    links = list(storage.table(LINKS).query(eq("messageId", message_id)))
    assert len(links) == 1
    queued = [
        m
        for m in storage.queue(DISPATCH).receive_messages(messages_per_page=32, visibility_timeout=1)
        if message_id.encode() in m.content
    ]
    assert len(queued) == 2  # queued again, in case the first run died before it could; sent once


def test_two_runs_racing_under_one_message_id_make_one_message_and_one_link(storage, settings, monkeypatch) -> None:
    import shared_code.message_create as message_create
    from shared_code.storage import LINKS

    message_id, run = _runs_under_one_id(storage, settings, "Raced")
    first = run()
    # The second run looked before the first had written its row, so it goes on to write its own.
    real_find, looked = message_create.find_message, []

    def not_there_yet(*args):
        if not looked:
            looked.append(1)
            return None
        return real_find(*args)

    monkeypatch.setattr(message_create, "find_message", not_there_yet)
    second = run()
    assert second.id == first.id and second.token_hash == first.token_hash
    links = list(storage.table(LINKS).query(eq("messageId", message_id)))
    assert [link["PartitionKey"] for link in links] == [first.token_hash]
