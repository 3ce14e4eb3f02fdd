"""What the toolbar API shows of a message: the 202 answer, and its status, receipts and events."""

from __future__ import annotations

from typing import Any

from shared_code import clock
from shared_code.attachments import find_attachment
from shared_code.events import Event, download_counts, list_events
from shared_code.message_model import Message
from shared_code.record_entry import record_entry
from shared_code.storage import Storage


def message_events(storage: Storage, message: Message) -> list[Event]:
    """Everything that happened to the message, oldest first: its lifecycle and the patient's activity."""
    return list_events(storage, message.id, history=message.history)


def message_view(storage: Storage, message: Message) -> dict[str, Any]:
    """The message as `GET /api/v1/messages/{id}` shows it."""
    events = message_events(storage, message)
    counts = download_counts(events)
    attachments = []
    for attachment_id in message.attachment_ids:
        found = find_attachment(storage, message.org, attachment_id)
        attachments.append(
            {
                "id": attachment_id,
                "filename": found.filename if found else None,
                "downloads": counts.get(attachment_id, 0),
            }
        )
    return {
        "id": message.id,
        "status": message.status,
        "createdAt": clock.iso(message.created_at),
        "sentAt": clock.iso(message.sent_at),
        "deliveredAt": clock.iso(message.delivered_at),
        "failureReason": message.failure_reason,
        "linkExpiresAt": clock.iso(message.link_expires_at),
        "segments": message.segments,
        "attachments": attachments,
        "events": [{"type": e.type, "at": clock.iso(e.at)} for e in events],
        "templateId": message.template_id,
        "templateVersion": message.template_version,
        "recordEntry": record_entry(message, events, [a["filename"] for a in attachments], at=clock.now()).to_json(),
    }


def accepted_view(message: Message) -> dict[str, Any]:
    """The 202 answer to a new message."""
    return {
        "id": message.id,
        "status": message.status,
        "segments": message.segments,
        "encoding": message.encoding,
        "linkExpiresAt": clock.iso(message.link_expires_at),
    }
